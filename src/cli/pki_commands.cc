// `tandem pki ...`: the cluster CA, CSRs, signing, issuing a node's pairs, inspection.
// Local files only (no agent needed). Private keys are written with mode 0600 and never
// printed: only their paths appear in the output.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "cli/commands.h"
#include "pki/ca.h"
#include "pki/csr.h"
#include "pki/inspect.h"

namespace tandem::cli {
using nlohmann::json;

namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "ERROR : %s\n", msg.c_str());
  return 1;
}

std::string Day(int64_t t) {
  return pki::FormatUtc(t);
}

std::string Join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

json ToJson(const pki::Inspection& in, int warn_days) {
  json j;
  j["file"] = in.path;
  j["ok"] = in.ok();
  auto summary = pki::Summarize(in, warn_days);
  j["state"] = summary.state == pki::CertState::kValid      ? "valid"
               : summary.state == pki::CertState::kExpiring ? "expiring"
                                                            : "invalid";
  j["summary"] = summary.text;
  if (in.cert) {
    const auto& c = *in.cert;
    j["subject"] = c.subject;
    j["common_name"] = c.common_name;
    j["issuer"] = c.issuer;
    j["serial"] = c.serial;
    j["sans"] = c.sans;
    j["not_before"] = Day(c.not_before);
    j["not_after"] = Day(c.not_after);
    j["days_left"] = c.days_left;
    j["key_type"] = c.key_type;
    j["is_ca"] = c.is_ca;
    j["extended_key_usage"] = c.extended_key_usage;
  }
  j["checks"] = json::array();
  for (const auto& f : in.findings) {
    j["checks"].push_back({{"check", pki::CheckName(f.check)},
                           {"ok", f.ok},
                           {"reason", f.reason},
                           {"detail", f.detail}});
  }
  return j;
}

std::string Render(const pki::Inspection& in, int warn_days) {
  std::string out = in.path + "\n";
  auto line = [&](const std::string& k, const std::string& v) {
    out += "  " + Pad(k, 14) + ": " + v + "\n";
  };
  if (in.cert) {
    const auto& c = *in.cert;
    line("Subject", c.subject);
    line("SANs", c.sans.empty() ? "(none)" : Join(c.sans));
    line("Issuer", c.issuer + (c.issuer == c.subject ? " (self-signed)" : ""));
    line("Serial", c.serial);
    line("Not before", Day(c.not_before));
    line("Not after",
         Day(c.not_after) + (c.days_left >= 0 ? " (" + std::to_string(c.days_left) + " days left)"
                                              : " (expired)"));
    line("Key type", c.key_type);
    std::string usage = c.is_ca ? "CA" : "";
    if (!c.extended_key_usage.empty()) {
      usage += (usage.empty() ? "" : ", ") + Join(c.extended_key_usage);
    } else if (!c.is_ca) {
      usage = "any (no extendedKeyUsage)";
    }
    line("Usage", usage);
  }
  out += "  Checks\n";
  for (const auto& f : in.findings) {
    out += "    " + Pad(pki::CheckName(f.check), 12) + ": " +
           (f.ok ? "OK (" + f.detail + ")" : "FAILED (" + f.reason + ")") + "\n";
  }
  line("State", pki::Summarize(in, warn_days).text);
  return out;
}

}  // namespace

int PkiCaInit(const Clock& clock, const std::string& dir, const std::string& cn, int days) {
  const int64_t now = clock.WallSeconds();
  auto st = pki::InitCa(dir, cn, pki::ValidFor(now, days));
  if (!st) return Fail(st.error().message());
  auto files = pki::CaFiles(dir);
  std::printf(
      "Created the cluster CA '%s' in %s, valid until %s.\n"
      "  Certificate : %s (give it to every node)\n"
      "  Private key : %s (mode 0600; keep it on this machine only, and back it up safely)\n"
      "Next: tandem pki issue NODE --ca-dir %s --address IP --out DIR\n",
      cn.c_str(), dir.c_str(), Day(pki::ValidFor(now, days).not_after).c_str(), files.cert.c_str(),
      files.key.c_str(), dir.c_str());
  return 0;
}

int PkiCsr(const std::string& name, const std::string& cn, const std::vector<std::string>& sans,
           const std::string& dir) {
  auto r = pki::MakeKeyAndRequest(dir, name, cn, sans);
  if (!r) return Fail(r.error().message());
  std::printf(
      "Created a key and a certificate request for CN=%s%s%s.\n"
      "  Request     : %s (send it to the CA)\n"
      "  Private key : %s (mode 0600; it stays on this node)\n"
      "Next, where the CA is: tandem pki sign %s --ca-dir CA_DIR --server\n",
      cn.c_str(), sans.empty() ? "" : ", SAN ", Join(sans).c_str(), r->csr.c_str(), r->key.c_str(),
      r->csr.c_str());
  return 0;
}

int PkiSign(const Clock& clock, const std::string& csr, const std::string& ca_dir, int days,
            const std::string& usage_name) {
  pki::Usage usage = usage_name == "client" ? pki::Usage::kClient
                     : usage_name == "both" ? pki::Usage::kBoth
                                            : pki::Usage::kServer;
  auto r = pki::SignRequestFile(csr, ca_dir, usage, pki::ValidFor(clock.WallSeconds(), days));
  if (!r) return Fail(r.error().message());
  std::printf(
      "Signed %s: a %s certificate for %s%s%s, serial %s, valid until %s.\n"
      "  Certificate : %s\n",
      csr.c_str(), pki::UsageName(usage), r->subject.c_str(), r->sans.empty() ? "" : ", SAN ",
      Join(r->sans).c_str(), r->serial.c_str(), Day(r->not_after).c_str(), r->path.c_str());
  if (r->shortened) {
    std::printf("WARNING : valid only until %s, when the CA itself expires\n",
                Day(r->not_after).c_str());
  }
  if (usage != pki::Usage::kClient && r->sans.empty()) {
    std::printf(
        "WARNING : the request has no subjectAltName: clients that verify the host may refuse "
        "it; make the request with --san IP:ADDRESS\n");
  }
  return 0;
}

int PkiIssue(const Clock& clock, const std::string& node, const std::string& ca_dir,
             const std::string& address, const std::vector<std::string>& dns,
             const std::string& out, int days, bool force) {
  pki::NodeRequest req;
  req.node = node;
  req.address = address;
  req.dns = dns;
  req.out_dir = out;
  req.force = force;
  const int64_t now = clock.WallSeconds();
  auto r = pki::IssueNode(ca_dir, req, pki::ValidFor(now, days));
  if (!r) return Fail(r.error().message());
  std::string sans = "IP:" + address;
  for (const auto& d : dns) sans += ", DNS:" + d;
  std::printf(
      "Issued %s's certificates in %s, valid until %s:\n"
      "  Server : %s, %s (CN=%s, %s; serverAuth+clientAuth)\n"
      "  Client : %s, %s (CN=%s, the database user; clientAuth)\n"
      "  CA     : %s\n"
      "Keys have mode 0600. For the node's config file:\n"
      "tls:\n"
      "  server_key: %s\n"
      "  server_cert: %s\n"
      "  client_key: %s\n"
      "  client_cert: %s\n"
      "  ca_cert: %s\n",
      node.c_str(), out.c_str(), Day(r->not_after).c_str(), r->server_cert.c_str(),
      r->server_key.c_str(), node.c_str(), sans.c_str(), r->client_cert.c_str(),
      r->client_key.c_str(), req.client_cn.c_str(), r->ca_cert.c_str(), r->server_key.c_str(),
      r->server_cert.c_str(), r->client_key.c_str(), r->client_cert.c_str(), r->ca_cert.c_str());
  if (r->shortened) {
    std::printf("WARNING : valid only until %s, when the CA itself expires\n",
                Day(r->not_after).c_str());
  }
  return 0;
}

int PkiInspect(const Clock& clock, const PkiInspectOptions& o) {
  pki::InspectOptions opts;
  opts.ca_path = o.ca;
  opts.key_path = o.key;
  if (o.role == "server") opts.role = pki::Role::kServer;
  if (o.role == "client") opts.role = pki::Role::kClient;
  opts.host = o.host;
  opts.now = clock.WallSeconds();
  constexpr int kWarnDays = 30;
  bool all_ok = true;
  json list = json::array();
  std::string text;
  std::vector<std::string> errors;
  for (const auto& file : o.files) {
    auto in = pki::Inspect(file, opts);
    all_ok = all_ok && in.ok();
    for (const auto& f : in.findings) {
      if (!f.ok) errors.push_back(f.detail);
    }
    if (o.json) {
      list.push_back(ToJson(in, kWarnDays));
    } else {
      text += (text.empty() ? "" : "\n") + Render(in, kWarnDays);
    }
  }
  if (o.json) {
    std::printf("%s\n", json{{"ok", all_ok}, {"certificates", list}}.dump(2).c_str());
  } else {
    std::printf("%s", text.c_str());
  }
  std::fflush(stdout);
  for (const auto& e : errors) std::fprintf(stderr, "ERROR : %s\n", e.c_str());
  return all_ok ? 0 : 1;
}

}  // namespace tandem::cli
