// `tandem cluster certs`: installs this node's TLS files (seed 1's two forms),
// checked with the agent's own start-up check before anything is written.
//
//   tandem cluster certs SERVER_KEY SERVER_CERT CLIENT_KEY CLIENT_CERT CA_CERT
//   tandem cluster certs CLIENT_KEY CLIENT_CERT CA_CERT   (keeps the server pair)
//
// The files are copied into <state_dir>/certs (keys 0600), each atomically,
// and the config's tls section is pointed at them (added when there is none;
// every other line of the file is kept as it is). A bad file, or a new CA
// while the node already runs TLS with another one (the peers would stop
// trusting it), changes nothing.
#include <openssl/x509.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <regex>
#include <sstream>

#include "agent/config.h"
#include "agent/tls_files.h"
#include "base/file.h"
#include "base/strings.h"
#include "cli/commands.h"
#include "pki/pem.h"

namespace tandem::cli {
namespace {

// Every certificate of `part` is also in `whole` (compared as certificates,
// so line endings and text between the blocks do not matter).
bool HoldsEvery(const std::vector<pki::X509Ptr>& whole, const std::vector<pki::X509Ptr>& part) {
  return std::all_of(part.begin(), part.end(), [&](const pki::X509Ptr& c) {
    return std::any_of(whole.begin(), whole.end(),
                       [&](const pki::X509Ptr& x) { return X509_cmp(x.get(), c.get()) == 0; });
  });
}

int Fail(const std::string& msg) {
  std::fprintf(stderr, "ERROR : %s\n", msg.c_str());
  return 1;
}

// A YAML double-quoted scalar.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

Result<std::string> WithTlsPaths(const std::string& yaml, const TlsPaths& p) {
  return WithTlsKeys(yaml, {{"server_key", p.server_key},
                            {"server_cert", p.server_cert},
                            {"client_key", p.client_key},
                            {"client_cert", p.client_cert},
                            {"ca_cert", p.ca_cert}});
}

Result<std::string> WithTlsKeys(const std::string& yaml,
                                const std::vector<std::pair<std::string, std::string>>& keys) {
  std::vector<std::string> lines;
  {
    std::istringstream in(yaml);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
  }
  static const std::regex kTls(R"(^tls:\s*(#.*)?$)");
  static const std::regex kTlsInline(R"(^tls:.*)");
  size_t at = lines.size();
  for (size_t i = 0; i < lines.size(); ++i) {
    if (std::regex_match(lines[i], kTls)) {
      at = i;
      break;
    }
    if (std::regex_match(lines[i], kTlsInline)) {
      return Error(ErrorCode::kInvalidArgument,
                   "the config's tls section is written inline ('" + lines[i] +
                       "'); write it as a block (tls: on its own line, one key per line) or set "
                       "the five tls paths by hand");
    }
  }
  if (at == lines.size()) {
    if (!lines.empty() && !Trim(lines.back()).empty()) lines.push_back("");
    lines.push_back("tls:  # installed by `tandem cluster certs`");
    for (const auto& [name, value] : keys) lines.push_back("  " + name + ": " + Quote(value));
  } else {
    // The section: the lines after `tls:` that are indented, blank or comments.
    size_t end = at + 1;
    std::string indent = "  ";
    bool indent_seen = false;
    while (end < lines.size()) {
      const std::string& l = lines[end];
      if (!l.empty() && l[0] != ' ' && l[0] != '\t' && l[0] != '#') break;
      if (!indent_seen && !Trim(l).empty() && l[0] != '#') {
        indent = l.substr(0, l.find_first_not_of(" \t"));
        indent_seen = true;
      }
      ++end;
    }
    std::vector<std::string> missing;
    for (const auto& [name, value] : keys) {
      const std::regex re("^([ \\t]+)" + name + ":.*$");
      bool found = false;
      for (size_t i = at + 1; i < end; ++i) {
        std::smatch m;
        if (std::regex_match(lines[i], m, re)) {
          lines[i] = m[1].str() + name + ": " + Quote(value);
          found = true;
        }
      }
      if (!found) missing.push_back(indent + name + ": " + Quote(value));
    }
    lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(at) + 1, missing.begin(),
                 missing.end());
  }
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

Result<agent::Config> RewriteConfig(const std::string& path, const std::string& text) {
  auto parsed = agent::ParseConfig(text, path);
  if (!parsed) {
    return Error(ErrorCode::kInvalidArgument, "the updated config would not load (" +
                                                  parsed.error().message() + "); " + path +
                                                  " was left as it was");
  }
  struct stat sb {};
  const mode_t mode = ::stat(path.c_str(), &sb) == 0 ? (sb.st_mode & 07777) : 0640;
  TANDEM_TRY(WriteFileAtomic(path, text, mode));
  return parsed;
}

namespace {

constexpr const char* kGiveThreeOrFive =
    "give 5 files (SERVER_KEY SERVER_CERT CLIENT_KEY CLIENT_CERT CA_CERT) or 3 (CLIENT_KEY "
    "CLIENT_CERT CA_CERT, keeping the server pair)";

// The config with the given files (3 or 5) in place of the ones it names
// (the 3-file form keeps the server pair); an Error with the message to print.
Result<agent::Config> WithGivenFiles(const agent::Config& cfg,
                                     const std::vector<std::string>& files) {
  agent::Config want = cfg;
  size_t i = 0;
  if (files.size() == 5) {
    want.tls_server_key = AbsolutePath(files[i++]);
    want.tls_server_cert = AbsolutePath(files[i++]);
  } else if (cfg.tls_server_key.empty() || cfg.tls_server_cert.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "the 3-file form replaces the client pair and the CA and keeps the server pair, "
                 "but this node has none configured (tls.server_key, tls.server_cert in " +
                     cfg.path + "); give all 5 files");
  }
  want.tls_client_key = AbsolutePath(files[i++]);
  want.tls_client_cert = AbsolutePath(files[i++]);
  want.tls_ca_cert = AbsolutePath(files[i++]);
  return want;
}

// The same CA, or a CA rotation's steps: a bundle that keeps the current CA
// (old + new), and then, once every node has its new pair, the new CA alone
// out of the bundle in use. The refusal's text, or "" when the CA may change.
std::string CaChangeRefusal(const agent::Config& cfg, const agent::Config& want) {
  auto old_ca = pki::LoadCertificates(cfg.tls_ca_cert);
  auto new_ca = pki::LoadCertificates(want.tls_ca_cert);
  if (!old_ca || !new_ca || HoldsEvery(*new_ca, *old_ca) || HoldsEvery(*old_ca, *new_ca)) {
    return "";
  }
  return "the new CA certificate " + want.tls_ca_cert + " is not the one this node uses now (" +
         cfg.tls_ca_cert +
         "): the other nodes trust only the old CA, so they and this node would stop "
         "accepting each other. Rotate the CA in steps: first a bundle of the old and "
         "the new CA (both in one file) as CA_CERT on every node, then the new pairs "
         "node by node, then the new CA alone; or pass --force. Nothing was "
         "installed.";
}

// Copies the five files into `dir`, keys first (a certificate never without
// its key), and points `want` at the copies. Every file is read, then all
// are staged (a full disk fails there, with nothing replaced), then renamed
// into place. An Error with the message to print.
Status InstallCopies(const std::string& dir, agent::Config& want) {
  struct Install {
    std::string* path;  // in `want`: replaced by the installed copy's path
    const char* name;
    mode_t mode;
  };
  Install installs[] = {{&want.tls_server_key, "server.key", 0600},
                        {&want.tls_client_key, "client.key", 0600},
                        {&want.tls_server_cert, "server.crt", 0644},
                        {&want.tls_client_cert, "client.crt", 0644},
                        {&want.tls_ca_cert, "ca.crt", 0644}};
  std::vector<std::pair<std::string, std::string>> contents;  // read all before writing any
  for (const Install& f : installs) {
    auto text = ReadFile(*f.path);
    if (!text) return Error(ErrorCode::kIo, text.error().message() + "; nothing was installed");
    contents.emplace_back(dir + "/" + f.name, std::move(*text));
  }
  for (size_t k = 0; k < contents.size(); ++k) {
    if (auto st = WriteFileAtomic(contents[k].first + ".new", contents[k].second, installs[k].mode);
        !st.ok()) {
      for (size_t j = 0; j <= k; ++j) (void)RemoveAll(contents[j].first + ".new");
      return Error(ErrorCode::kIo, st.error().message() + "; nothing was installed");
    }
  }
  for (size_t k = 0; k < contents.size(); ++k) {
    if (auto st = RenamePath(contents[k].first + ".new", contents[k].first); !st.ok()) {
      return Error(ErrorCode::kIo, st.error().message());
    }
    *installs[k].path = contents[k].first;
  }
  return Ok();
}

bool SameFiles(const agent::Config& a, const agent::Config& b) {
  return a.tls_server_key == b.tls_server_key && a.tls_server_cert == b.tls_server_cert &&
         a.tls_client_key == b.tls_client_key && a.tls_client_cert == b.tls_client_cert &&
         a.tls_ca_cert == b.tls_ca_cert;
}

// Points the config's tls section at the installed files. An Error with the
// message to print.
Status PointConfigAt(const agent::Config& cfg, const agent::Config& want, const std::string& dir) {
  auto text = ReadFile(cfg.path);
  if (!text) return Error(ErrorCode::kIo, text.error().message());
  auto updated =
      WithTlsPaths(*text, TlsPaths{want.tls_server_key, want.tls_server_cert, want.tls_client_key,
                                   want.tls_client_cert, want.tls_ca_cert});
  if (!updated) {
    return Error(ErrorCode::kIo, updated.error().message() + " (the files are in " + dir + ")");
  }
  if (auto written = RewriteConfig(cfg.path, *updated); !written) {
    return Error(ErrorCode::kIo, written.error().message() + "; the files are in " + dir);
  }
  return Ok();
}

void PrintInstalled(const std::string& dir, bool same, const agent::Config& cfg,
                    const agent::Config& want) {
  std::printf(
      "Installed and checked this node's certificates in %s:\n"
      "  Server Key          : server.key (0600)\n"
      "  Server Certificate  : server.crt\n"
      "  Client Key          : client.key (0600)\n"
      "  Client Certificate  : client.crt\n"
      "  CA Certificate      : ca.crt\n"
      "%s"
      "A running agent checks them again and uses them within a second (tls.mode %s): "
      "PostgreSQL (reloaded, no restart), etcd, the API and its own connections; "
      "connections already open keep working. `tandem cluster status` shows the new "
      "certificates; a new CA reaches etcd only when the agent restarts.\n",
      dir.c_str(),
      same ? "The config already pointed at them.\n"
           : ("The tls section of " + cfg.path + " now points at them.\n").c_str(),
      agent::TlsModeName(want.tls_mode));
}

}  // namespace

int ClusterCerts(const Clock& clock, const std::string& config_path,
                 const std::vector<std::string>& files, bool force) {
  if (files.size() != 3 && files.size() != 5) {
    return Fail(kGiveThreeOrFive);
  }
  auto cfg = agent::LoadConfig(config_path);
  if (!cfg) return Fail(cfg.error().message());
  auto wanted = WithGivenFiles(*cfg, files);
  if (!wanted) return Fail(wanted.error().message());
  agent::Config want = std::move(*wanted);
  // The agent's own start-up check: if it passes here, the agent accepts them.
  if (auto st = agent::ValidateTlsFiles(want, clock.WallSeconds()); !st.ok()) {
    return Fail(st.error().message() +
                "\nNothing was installed; the node keeps its current files.");
  }
  if (cfg->tls_enabled() && !force) {
    if (std::string refusal = CaChangeRefusal(*cfg, want); !refusal.empty()) return Fail(refusal);
  }
  const std::string dir = cfg->state_dir + "/certs";
  if (auto st = MakeDirs(dir, 0700); !st.ok()) return Fail(st.error().message());
  if (auto st = InstallCopies(dir, want); !st.ok()) return Fail(st.error().message());
  // Point the config at the installed files, if it does not already.
  const bool same = SameFiles(*cfg, want);
  if (!same) {
    if (auto st = PointConfigAt(*cfg, want, dir); !st.ok()) return Fail(st.error().message());
  }
  PrintInstalled(dir, same, *cfg, want);
  return 0;
}

}  // namespace tandem::cli
