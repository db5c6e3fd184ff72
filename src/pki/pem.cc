// Reading PEM files: finding the blocks, telling the kinds apart, and an error
// for each way a file can be wrong (missing, empty, DER, truncated, wrong
// kind, encrypted key) that names the file and the fix. Never prompts for a
// passphrase; no key material in a message.
#include "pki/pem.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <vector>

#include "base/file.h"

namespace tandem::pki {

namespace {

struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Never prompt on a terminal for a passphrase: the agent and the CLI run unattended.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
  return -1;
}

const char* DerCommand(PemKind kind) {
  switch (kind) {
    case PemKind::kCertificate:
      return "x509";
    case PemKind::kPrivateKey:
      return "pkey";
    case PemKind::kRequest:
      return "req";
  }
  return "x509";
}

bool Accepts(PemKind kind, const std::string& label) {
  switch (kind) {
    case PemKind::kCertificate:
      return label == "CERTIFICATE" || label == "X509 CERTIFICATE" ||
             label == "TRUSTED CERTIFICATE";
    case PemKind::kPrivateKey:
      return label == "PRIVATE KEY" || label == "EC PRIVATE KEY" || label == "RSA PRIVATE KEY" ||
             label == "ENCRYPTED PRIVATE KEY";
    case PemKind::kRequest:
      return label == "CERTIFICATE REQUEST" || label == "NEW CERTIFICATE REQUEST";
  }
  return false;
}

std::string Describe(const std::string& label) {
  if (label.find("PRIVATE KEY") != std::string::npos) return "a private key";
  if (label.find("CERTIFICATE REQUEST") != std::string::npos) return "a certificate request";
  if (label.find("CERTIFICATE") != std::string::npos) return "a certificate";
  if (label == "PUBLIC KEY") return "a public key";
  if (label == "X509 CRL") return "a certificate revocation list";
  return "a '" + label + "' block";
}

std::string Hint(PemKind wanted, const std::string& label) {
  if (wanted == PemKind::kCertificate && label.find("PRIVATE KEY") != std::string::npos) {
    return "; give the certificate (.crt) here, and the key with --key";
  }
  if (wanted == PemKind::kCertificate && label.find("REQUEST") != std::string::npos) {
    return "; sign it first with `tandem pki sign`";
  }
  if (wanted == PemKind::kRequest && label.find("CERTIFICATE") != std::string::npos) {
    return "; it is already signed";
  }
  return "";
}

struct Block {
  std::string label;
  size_t begin = 0;    // offset of "-----BEGIN"
  bool ended = false;  // its "-----END <label>-----" line follows
  size_t end = 0;      // offset just past the END line
};

std::vector<Block> Blocks(const std::string& content) {
  std::vector<Block> out;
  const std::string kBegin = "-----BEGIN ";
  size_t pos = 0;
  while ((pos = content.find(kBegin, pos)) != std::string::npos) {
    Block b;
    b.begin = pos;
    size_t label_start = pos + kBegin.size();
    size_t label_end = content.find("-----", label_start);
    size_t eol = content.find('\n', label_start);
    if (label_end == std::string::npos || (eol != std::string::npos && label_end > eol)) {
      b.label = content.substr(label_start,
                               eol == std::string::npos ? std::string::npos : eol - label_start);
      out.push_back(b);  // a BEGIN line cut in the middle
      break;
    }
    b.label = content.substr(label_start, label_end - label_start);
    std::string end_line = "-----END " + b.label + "-----";
    size_t e = content.find(end_line, label_end);
    if (e != std::string::npos) {
      b.ended = true;
      b.end = e + end_line.size();
      pos = b.end;
    } else {
      pos = label_end;
    }
    out.push_back(b);
    if (!b.ended) break;
  }
  return out;
}

// Checks the PEM framing and picks the block to decode; every failure names path.
Result<Block> FindBlock(const std::string& path, const std::string& content, PemKind kind) {
  const std::string what = PemKindName(kind);
  if (content.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Error(ErrorCode::kInvalidArgument,
                 path + " is empty; expected a " + what + " in PEM form");
  }
  std::vector<Block> blocks = Blocks(content);
  if (blocks.empty()) {
    if (static_cast<unsigned char>(content[0]) == 0x30) {
      return Error(ErrorCode::kInvalidArgument,
                   path + " is not PEM; is it DER? convert with `openssl " + DerCommand(kind) +
                       " -inform der -in " + path + " -out " + path + ".pem`");
    }
    return Error(ErrorCode::kInvalidArgument,
                 path + " is not PEM (no '-----BEGIN' line); expected a " + what + " in PEM form");
  }
  for (const Block& b : blocks) {
    if (!b.ended) {
      return Error(ErrorCode::kInvalidArgument, path + " is truncated: '-----BEGIN " + b.label +
                                                    "-----' has no '-----END " + b.label +
                                                    "-----' line; copy the whole file again");
    }
    if (!Accepts(kind, b.label)) continue;
    if (b.label == "ENCRYPTED PRIVATE KEY" ||
        (kind == PemKind::kPrivateKey &&
         content.substr(b.begin, b.end - b.begin).find("Proc-Type: 4,ENCRYPTED") !=
             std::string::npos)) {
      return Error(ErrorCode::kInvalidArgument,
                   path +
                       ": the key is encrypted (protected by a passphrase), and Tandem "
                       "never asks for one because the agent starts unattended; decrypt it "
                       "with `openssl pkey -in " +
                       path + " -out " + path +
                       ".plain` (it asks for the passphrase) and protect the plain key "
                       "with mode 0600 instead");
    }
    return b;
  }
  // A key's label is not quoted: nothing of a key file goes into a message.
  const std::string& label = blocks[0].label;
  std::string quoted =
      label.find("PRIVATE KEY") != std::string::npos ? "" : " ('-----BEGIN " + label + "-----')";
  return Error(ErrorCode::kInvalidArgument,
               path + " holds " + Describe(label) + quoted + ", not a " + what + Hint(kind, label));
}

// PEM files of certificates, keys and requests are a few kB; a chain a few tens.
constexpr off_t kMaxPemBytes = 1 << 20;

Result<std::string> Read(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      return Error(ErrorCode::kInvalidArgument, path + " is a directory; give the file in it");
    }
    if (!S_ISREG(st.st_mode)) {
      return Error(ErrorCode::kInvalidArgument,
                   path + " is not a regular file (a device or a pipe?); give a PEM file");
    }
    if (st.st_size > kMaxPemBytes) {
      return Error(ErrorCode::kInvalidArgument, path + " is too large for a PEM file (" +
                                                    std::to_string(st.st_size) +
                                                    " bytes); is it the right file?");
    }
  }
  auto content = ReadFile(path);
  if (content) return content;
  if (content.error().code() == ErrorCode::kNotFound) {
    return Error(ErrorCode::kNotFound, path + ": no such file (check the path)");
  }
  return Error(content.error().code(),
               content.error().message() + " (run as a user that may read it, e.g. root)");
}

template <typename T, typename Reader>
Result<T> Decode(const std::string& path, const std::string& content, PemKind kind, Reader reader) {
  auto block = FindBlock(path, content, kind);
  if (!block) return block.error();
  DrainOpenSslErrors();
  BioPtr bio(
      BIO_new_mem_buf(content.data() + block->begin, static_cast<int>(block->end - block->begin)));
  if (!bio) return OpenSslError(ErrorCode::kInternal, "cannot allocate a buffer");
  T value(reader(bio.get()));
  if (!value) {
    return OpenSslError(ErrorCode::kInvalidArgument,
                        path + ": the PEM " + std::string(PemKindName(kind)) +
                            " does not decode (corrupt, or cut inside the base64?)");
  }
  DrainOpenSslErrors();
  return value;
}

}  // namespace

const char* PemKindName(PemKind kind) {
  switch (kind) {
    case PemKind::kCertificate:
      return "certificate";
    case PemKind::kPrivateKey:
      return "private key";
    case PemKind::kRequest:
      return "certificate request";
  }
  return "?";
}

Result<X509Ptr> ParseCertificate(const std::string& path, const std::string& content) {
  return Decode<X509Ptr>(path, content, PemKind::kCertificate, [](BIO* b) {
    // PEM_read_bio_X509_AUX also reads "TRUSTED CERTIFICATE".
    return PEM_read_bio_X509_AUX(b, nullptr, NoPassphrase, nullptr);
  });
}

Result<PkeyPtr> ParsePrivateKey(const std::string& path, const std::string& content) {
  return Decode<PkeyPtr>(path, content, PemKind::kPrivateKey, [](BIO* b) {
    return PEM_read_bio_PrivateKey(b, nullptr, NoPassphrase, nullptr);
  });
}

Result<X509ReqPtr> ParseRequest(const std::string& path, const std::string& content) {
  return Decode<X509ReqPtr>(path, content, PemKind::kRequest, [](BIO* b) {
    return PEM_read_bio_X509_REQ(b, nullptr, NoPassphrase, nullptr);
  });
}

Result<X509Ptr> LoadCertificate(const std::string& path) {
  auto content = Read(path);
  if (!content) return content.error();
  return ParseCertificate(path, *content);
}

Result<std::vector<X509Ptr>> LoadCertificates(const std::string& path) {
  auto content = Read(path);
  if (!content) return content.error();
  auto first = ParseCertificate(path, *content);
  if (!first) return first.error();
  std::vector<X509Ptr> out;
  BIO* bio = BIO_new_mem_buf(content->data(), static_cast<int>(content->size()));
  if (bio != nullptr) {
    while (X509* x = PEM_read_bio_X509_AUX(bio, nullptr, NoPassphrase, nullptr))
      out.emplace_back(x);
    BIO_free(bio);
  }
  DrainOpenSslErrors();  // the read past the last block leaves "no start line"
  if (out.empty()) out.push_back(std::move(*first));
  return out;
}

Result<PkeyPtr> LoadPrivateKey(const std::string& path) {
  auto content = Read(path);
  if (!content) return content.error();
  auto key = ParsePrivateKey(path, *content);
  OPENSSL_cleanse(content->data(), content->size());
  return key;
}

Result<X509ReqPtr> LoadRequest(const std::string& path) {
  auto content = Read(path);
  if (!content) return content.error();
  return ParseRequest(path, *content);
}

}  // namespace tandem::pki
