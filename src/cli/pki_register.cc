// `tandem pki ...`: the subcommands, their options, footers and handlers (the
// commands themselves: pki_commands.cc).
#include <CLI/CLI.hpp>
#include <memory>

#include "cli/commands.h"
#include "cli/registry.h"
#include "pki/ca.h"

namespace tandem::cli {
namespace {

struct PkiArgs {
  std::string pki_dir, ca_cn = "Tandem cluster CA";
  int ca_days = pki::kDefaultCaDays, cert_days = pki::kDefaultCertDays;
  std::string csr_name, csr_cn;
  std::vector<std::string> csr_sans;
  std::string sign_csr, ca_dir;
  bool sign_server = false, sign_client = false, sign_both = false;
  std::string issue_node, issue_address, issue_out;
  std::vector<std::string> issue_dns;
  bool issue_force = false;
  PkiInspectOptions insp;
};

void AddFooters(CLI::App* pki, CLI::App* ca_init, CLI::App* csr, CLI::App* sign, CLI::App* issue,
                CLI::App* inspect) {
  ca_init->footer("Example: tandem pki ca init --dir /etc/tandem/ca --cn \"Example cluster CA\"");
  csr->footer(
      "Example: tandem pki csr node1 --cn node1 --san IP:10.0.0.1 --san DNS:db1.example.com "
      "--dir /etc/tandem/tls");
  sign->footer("Example: tandem pki sign /tmp/node1.csr --ca-dir /etc/tandem/ca --server");
  issue->footer(
      "Example: tandem pki issue node1 --ca-dir /etc/tandem/ca --address 10.0.0.1 --dns "
      "db1.example.com --out /tmp/node1-tls\n"
      "Copy OUT to the node (keep the keys' mode 0600) and set the tls: keys of its config.");
  inspect->footer(
      "Example: tandem pki inspect server.crt --key server.key --ca ca.crt --role server "
      "--host 10.0.0.1\n"
      "Each of --key, --ca, --role, --host applies to every FILE.");
  pki->footer(
      "Typical use:\n"
      "  tandem pki ca init --dir /etc/tandem/ca\n"
      "  tandem pki issue node1 --ca-dir /etc/tandem/ca --address 10.0.0.1 --out /etc/tandem/tls\n"
      "  tandem pki inspect /etc/tandem/tls/server.crt --key /etc/tandem/tls/server.key \\\n"
      "      --ca /etc/tandem/tls/ca.crt --role server --host 10.0.0.1\n"
      "Private keys are written with mode 0600 and never printed.");
}

using Args = std::shared_ptr<PkiArgs>;

// Each Add* adds one subcommand, its options and handler, and returns it.

CLI::App* AddCaInit(CLI::App* ca, const Args& a, Context& ctx) {
  auto* ca_init = ca->add_subcommand(
      "init",
      "create the cluster CA: DIR/ca.key (EC P-256, mode 0600) and DIR/ca.crt (self-signed, "
      "CA:TRUE, keyCertSign and cRLSign); refuses to replace an existing CA");
  ca_init->add_option("--dir", a->pki_dir, "the CA's directory (created with mode 0700)")
      ->required();
  ca_init->add_option("--cn", a->ca_cn, "the CA's Common Name")->capture_default_str();
  ca_init->add_option("--days", a->ca_days, "validity in days (default: 10 years)")
      ->capture_default_str()
      ->check(CLI::Range(1, 36500));
  ctx.Handle(ca_init, [a, &ctx] { return PkiCaInit(ctx.clock, a->pki_dir, a->ca_cn, a->ca_days); });
  return ca_init;
}

CLI::App* AddCsr(CLI::App* pki, const Args& a, Context& ctx) {
  auto* csr = pki->add_subcommand(
      "csr",
      "make a private key and a certificate signing request: DIR/NAME.key (EC P-256, mode "
      "0600) and DIR/NAME.csr, for this CA (`tandem pki sign`) or another one");
  csr->add_option("NAME", a->csr_name, "file name of the pair, e.g. node1")->required();
  csr->add_option("--cn", a->csr_cn, "the Common Name, e.g. the node's name")->required();
  csr->add_option("--san", a->csr_sans,
                  "a subjectAltName, DNS:NAME or IP:ADDRESS; repeat it, or separate with commas")
      ->allow_extra_args(false)
      ->delimiter(',');
  csr->add_option("--dir", a->pki_dir, "where to write NAME.key and NAME.csr")->required();
  ctx.Handle(csr, [a] { return PkiCsr(a->csr_name, a->csr_cn, a->csr_sans, a->pki_dir); });
  return csr;
}

CLI::App* AddSign(CLI::App* pki, const Args& a, Context& ctx) {
  auto* sign = pki->add_subcommand(
      "sign",
      "sign a certificate request with the cluster CA; writes NAME.crt beside NAME.csr. "
      "Copies the request's subjectAltNames; refuses a request whose signature does not verify");
  sign->add_option("CSR", a->sign_csr, "the request (PEM), e.g. node1.csr")->required();
  sign->add_option("--ca-dir", a->ca_dir, "the CA's directory (ca.key, ca.crt)")->required();
  sign->add_option("--days", a->cert_days, "validity in days")
      ->capture_default_str()
      ->check(CLI::Range(1, 36500));
  auto* f_server = sign->add_flag("--server", a->sign_server,
                                  "a server certificate: extendedKeyUsage serverAuth (default)");
  auto* f_client = sign->add_flag("--client", a->sign_client,
                                  "a client certificate: extendedKeyUsage clientAuth");
  auto* f_both = sign->add_flag("--both", a->sign_both, "serverAuth and clientAuth");
  f_server->excludes(f_client)->excludes(f_both);
  f_client->excludes(f_both);
  ctx.Handle(sign, [a, &ctx] {
    return PkiSign(ctx.clock, a->sign_csr, a->ca_dir, a->cert_days,
                   a->sign_client ? "client"
                   : a->sign_both ? "both"
                                  : "server");
  });
  return sign;
}

CLI::App* AddIssue(CLI::App* pki, const Args& a, Context& ctx) {
  auto* issue = pki->add_subcommand(
      "issue",
      "issue a node's certificates in one step into OUT: server.key/server.crt (CN=NODE, SAN "
      "IP:ADDRESS and the DNS names, serverAuth), client.key/client.crt (CN=postgres, the "
      "database user, clientAuth) and a copy of ca.crt");
  issue->add_option("NODE", a->issue_node, "the node's name (node.name in its config)")->required();
  issue->add_option("--ca-dir", a->ca_dir, "the CA's directory (ca.key, ca.crt)")->required();
  issue->add_option("--address", a->issue_address, "the IP the node clusters on (node.address)")
      ->required();
  issue->add_option("--dns", a->issue_dns, "a DNS name of the node; repeat for more")
      ->allow_extra_args(false)
      ->delimiter(',');
  issue->add_option("--out", a->issue_out, "the node's certificate directory (created 0700)")
      ->required();
  issue->add_option("--days", a->cert_days, "validity in days")
      ->capture_default_str()
      ->check(CLI::Range(1, 36500));
  issue->add_flag("--force", a->issue_force, "replace the keys and certificates already in OUT");
  ctx.Handle(issue, [a, &ctx] {
    return PkiIssue(ctx.clock, a->issue_node, a->ca_dir, a->issue_address, a->issue_dns,
                    a->issue_out, a->cert_days, a->issue_force);
  });
  return issue;
}

CLI::App* AddInspect(CLI::App* pki, const Args& a, Context& ctx) {
  PkiInspectOptions& insp = a->insp;
  auto* inspect = pki->add_subcommand(
      "inspect",
      "show each certificate (subject, SANs, issuer, serial, validity and days left, key type) "
      "and check it: the key matches (--key), it chains to the CA (--ca), it fits the role "
      "(--role) and the host (--host). Exits non-zero if any check fails");
  inspect->add_option("FILE", insp.files, "certificates (PEM)")->required();
  inspect->add_option("--ca", insp.ca, "the CA certificate it must chain to, e.g. ca.crt");
  inspect->add_option("--key", insp.key, "the private key that must match it");
  inspect->add_option("--role", insp.role, "the use it must fit: server or client")
      ->check(CLI::IsMember({"server", "client"}));
  inspect->add_option("--host", insp.host, "a DNS name or IP address its SANs must match");
  inspect->add_flag("--json", insp.json, "machine-readable output");
  ctx.Handle(inspect, [a, &ctx] { return PkiInspect(ctx.clock, a->insp); });
  return inspect;
}

}  // namespace

void RegisterPkiCommands(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<PkiArgs>();
  auto* pki = app.add_subcommand(
      "pki",
      "the cluster's certificates: a CA, key and request (CSR), signing, issuing a node's "
      "pairs, inspection (local files; no agent needed)");
  pki->require_subcommand(1);
  auto* ca = pki->add_subcommand("ca", "the cluster's certificate authority");
  ca->require_subcommand(1);
  auto* ca_init = AddCaInit(ca, a, ctx);
  auto* csr = AddCsr(pki, a, ctx);
  auto* sign = AddSign(pki, a, ctx);
  auto* issue = AddIssue(pki, a, ctx);
  auto* inspect = AddInspect(pki, a, ctx);
  AddFooters(pki, ca_init, csr, sign, issue, inspect);
}

}  // namespace tandem::cli
