// MakeKeyAndRequest (`tandem pki csr`): a new private key written 0600 and a
// signing request with the node's names; the key never leaves the node.
#include "pki/csr.h"

#include "base/file.h"
#include "pki/names.h"
#include "pki/ossl.h"

namespace tandem::pki {

Result<RequestFiles> MakeKeyAndRequest(const std::string& dir, const std::string& name,
                                       const std::string& common_name,
                                       const std::vector<std::string>& san_specs) {
  TANDEM_TRY(CheckFileName("NAME", name));
  TANDEM_TRY(CheckCommonName(common_name));
  auto sans = ParseSans(san_specs);
  if (!sans) return sans.error();
  RequestFiles f{dir + "/" + name + ".key", dir + "/" + name + ".csr"};
  if (PathExists(f.key)) {
    return Error(ErrorCode::kFailedPrecondition,
                 f.key + " already exists; a new request for it would need a new key. Remove " +
                     f.key + " first if it is no longer used, or choose another NAME");
  }
  TANDEM_TRY(MakeDirs(dir, 0700));
  auto key = GenerateKey();
  if (!key) return key.error();
  auto req = MakeRequest(key->get(), common_name, *sans);
  if (!req) return req.error();
  auto pem = RequestPem(req->get());
  if (!pem) return pem.error();
  TANDEM_TRY(WritePrivateKey(f.key, key->get()));
  TANDEM_TRY(WriteFileAtomic(f.csr, *pem, 0644));
  return f;
}

}  // namespace tandem::pki
