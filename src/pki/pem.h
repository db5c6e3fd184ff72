// Reading certificates, keys and requests from PEM files, with errors an operator can
// act on. Every error names the file and says what is wrong with it and how to fix it:
//   - missing or unreadable file;
//   - empty, or not PEM at all ("not PEM; is it DER? convert with openssl x509 -inform der");
//   - truncated (a BEGIN line without its END line);
//   - the wrong kind of PEM (a key where a certificate was expected, ...);
//   - an encrypted private key: never prompts for a passphrase, says how to decrypt it;
//   - a PEM block that does not decode.
// Nothing here prints, logs or puts key material in an error message.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "pki/ossl.h"

namespace tandem::pki {

enum class PemKind { kCertificate, kPrivateKey, kRequest };

// "certificate", "private key", "certificate request".
const char* PemKindName(PemKind kind);

// The first certificate in path (a chain file's leaf).
Result<X509Ptr> LoadCertificate(const std::string& path);
// Every certificate in path, in file order (a CA bundle: the old and the new CA
// during a CA rotation). The errors are LoadCertificate's, for the first one.
Result<std::vector<X509Ptr>> LoadCertificates(const std::string& path);
// An unencrypted private key (PKCS#8, or the traditional EC/RSA form).
Result<PkeyPtr> LoadPrivateKey(const std::string& path);
Result<X509ReqPtr> LoadRequest(const std::string& path);

// The same, on a file's content already read (path is used for messages only).
Result<X509Ptr> ParseCertificate(const std::string& path, const std::string& content);
Result<PkeyPtr> ParsePrivateKey(const std::string& path, const std::string& content);
Result<X509ReqPtr> ParseRequest(const std::string& path, const std::string& content);

}  // namespace tandem::pki
