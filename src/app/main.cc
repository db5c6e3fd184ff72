// tandem: one binary for the node agent, the operator CLI and the sandbox.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "pki/ca.h"

#ifndef TANDEM_VERSION
#define TANDEM_VERSION "0.1.0"
#endif

int main(int argc, char** argv) {
  using namespace tandem::cli;
  CLI::App app{
      "Tandem: high availability for PostgreSQL (one agent per node, etcd for "
      "consensus, a stable client endpoint)",
      "tandem"};
  app.require_subcommand(1);
  std::string config = kDefaultConfig;
  app.add_option("-c,--config", config, "the node's config file")->capture_default_str();
  app.set_version_flag("--version", TANDEM_VERSION);

  // tandem agent
  auto* agent =
      app.add_subcommand("agent", "run the node agent in the foreground (systemd runs this)");
  agent->add_option("-c,--config", config, "the node's config file")->capture_default_str();

  // tandem cluster ...
  auto* cluster = app.add_subcommand("cluster", "operate the cluster (talks to the local agent)");
  cluster->require_subcommand(1);
  auto* init = cluster->add_subcommand("initialize",
                                       "make this node's database the primary of a new cluster");
  std::string join_address;
  auto* join = cluster->add_subcommand(
      "join", "become a replica: copy the database from the cluster (the local one is kept aside)");
  join->add_option("ADDRESS", join_address, "HOST:PORT of any member's agent API")->required();
  bool status_json = false;
  auto* status = cluster->add_subcommand("status", "show the cluster as this node sees it");
  status->add_flag("--json", status_json, "machine-readable output");
  std::string remove_node;
  bool remove_force = false;
  auto* remove = cluster->add_subcommand(
      "remove",
      "remove NODE (default: this node) from the cluster; a removed node's pre-join "
      "database is put back");
  remove->add_option("NODE", remove_node, "the node to remove (default: this node)");
  remove->add_flag("--force", remove_force, "allow removing the primary (a replica takes over)");
  auto* clear = cluster->add_subcommand("clear-error", "clear the error state of the last command");
  std::string sw_to, sw_at;
  int64_t wait_s = 60;
  auto* switchover = cluster->add_subcommand(
      "switchover",
      "move the primary role to a replica cleanly (no write lost; the old primary "
      "becomes a replica without a rewind)");
  switchover->add_option("--to", sw_to, "the replica to promote (default: the most advanced one)");
  switchover->add_option("--at", sw_at,
                         "when: +DURATION (e.g. +10m) or a UTC time like 2026-11-22T03:00:00Z "
                         "(default: now)");
  switchover->add_option("--wait", wait_s, "seconds to wait for it to complete")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  std::string fo_to;
  bool fo_accept = false;
  auto* failover = cluster->add_subcommand(
      "failover", "promote NODE when there is no primary (with a primary: a switchover to NODE)");
  failover->add_option("--to", fo_to, "the replica to promote")->required();
  failover->add_flag("--accept-data-loss", fo_accept,
                     "promote it even if it may miss acknowledged writes (when the primary and "
                     "every synchronous replica were lost)");
  failover->add_option("--wait", wait_s, "seconds to wait for it to complete")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  auto* pause = cluster->add_subcommand(
      "pause", "maintenance mode: the agents take no automatic action until resume");
  auto* resume = cluster->add_subcommand("resume", "end maintenance mode");
  bool history_json = false;
  auto* history = cluster->add_subcommand(
      "history", "every leader change: time, new primary, timeline, reason");
  history->add_flag("--json", history_json, "machine-readable output");
  bool uri_read_only = false;
  auto* uri = cluster->add_subcommand(
      "uri",
      "print a libpq connection URI with every node (and, when the proxy is on, one through "
      "the proxies)");
  uri->add_flag("--read-only", uri_read_only,
                "for reads: target_session_attrs=prefer-standby, the read-only proxy ports");

  std::vector<std::string> certs_files;
  bool certs_force = false;
  auto* certs = cluster->add_subcommand(
      "certs",
      "install this node's certificates, checked first: SERVER_KEY SERVER_CERT CLIENT_KEY "
      "CLIENT_CERT CA_CERT, or CLIENT_KEY CLIENT_CERT CA_CERT to keep the server pair");
  certs->add_option("files", certs_files, "the key and certificate files (PEM)")
      ->required()
      ->expected(3, 5);
  certs->add_flag("--force", certs_force,
                  "install a CA other than the one this node uses now (the other nodes must "
                  "get it too)");

  std::string tls_mode;
  bool tls_mode_force = false;
  auto* tlsmode = cluster->add_subcommand(
      "tls-mode",
      "set this node's tls.mode; switching to enforce first checks every peer's certificates "
      "from here and refuses, listing each failing peer, unless --force");
  tlsmode->add_option("mode", tls_mode, "enforce or permissive")
      ->required()
      ->check(CLI::IsMember({"enforce", "permissive"}));
  tlsmode->add_flag("--force", tls_mode_force, "switch to enforce even with failing peers");

  // tandem sandbox ...
  SandboxOptions sb;
  auto* sandbox = app.add_subcommand("sandbox", "a whole cluster on 127.0.0.1 in one directory");
  sandbox->require_subcommand(1);
  auto add_common = [&sb](CLI::App* c) {
    c->add_option("--dir", sb.dir, "the sandbox directory")->capture_default_str();
  };
  auto* up = sandbox->add_subcommand("up", "start an N-node cluster and wait until it is healthy");
  add_common(up);
  up->add_option("--nodes", sb.nodes, "number of nodes (1-9)")
      ->capture_default_str()
      ->check(CLI::Range(1, 9));
  up->add_option("--base-port", sb.base_port, "node i uses ports P+10i .. P+10i+5")
      ->capture_default_str()
      ->check(CLI::Range(1024, 65435));
  up->add_flag("!--no-tls", sb.tls,
               "no TLS: skip the CA and certificates, and leave the tls section out of the "
               "configs (PostgreSQL replication is plain)");
  auto* down = sandbox->add_subcommand("down", "stop every process of the sandbox");
  add_common(down);
  down->add_flag("--purge", sb.purge, "also delete the sandbox directory");
  auto* sstatus = sandbox->add_subcommand("status", "nodes, ports, configs and pids");
  add_common(sstatus);
  sstatus->add_flag("--json", sb.json, "machine-readable output");
  std::string node;
  auto* kill =
      sandbox->add_subcommand("kill", "SIGKILL a node's agent, PostgreSQL and etcd (a crash)");
  add_common(kill);
  kill->add_option("NODE", node, "node name, e.g. node1")->required();
  auto* start = sandbox->add_subcommand("start", "start a node's agent again");
  add_common(start);
  start->add_option("NODE", node, "node name, e.g. node1")->required();

  // tandem pki ...
  auto* pki = app.add_subcommand(
      "pki",
      "the cluster's certificates: a CA, key and request (CSR), signing, issuing a node's "
      "pairs, inspection (local files; no agent needed)");
  pki->require_subcommand(1);
  auto* ca = pki->add_subcommand("ca", "the cluster's certificate authority");
  ca->require_subcommand(1);
  std::string pki_dir, ca_cn = "Tandem cluster CA";
  int ca_days = tandem::pki::kDefaultCaDays, cert_days = tandem::pki::kDefaultCertDays;
  auto* ca_init = ca->add_subcommand(
      "init",
      "create the cluster CA: DIR/ca.key (EC P-256, mode 0600) and DIR/ca.crt (self-signed, "
      "CA:TRUE, keyCertSign and cRLSign); refuses to replace an existing CA");
  ca_init->add_option("--dir", pki_dir, "the CA's directory (created with mode 0700)")->required();
  ca_init->add_option("--cn", ca_cn, "the CA's Common Name")->capture_default_str();
  ca_init->add_option("--days", ca_days, "validity in days (default: 10 years)")
      ->capture_default_str()
      ->check(CLI::Range(1, 36500));
  std::string csr_name, csr_cn;
  std::vector<std::string> csr_sans;
  auto* csr = pki->add_subcommand(
      "csr",
      "make a private key and a certificate signing request: DIR/NAME.key (EC P-256, mode "
      "0600) and DIR/NAME.csr, for this CA (`tandem pki sign`) or another one");
  csr->add_option("NAME", csr_name, "file name of the pair, e.g. node1")->required();
  csr->add_option("--cn", csr_cn, "the Common Name, e.g. the node's name")->required();
  csr->add_option("--san", csr_sans,
                  "a subjectAltName, DNS:NAME or IP:ADDRESS; repeat it, or separate with commas")
      ->allow_extra_args(false)
      ->delimiter(',');
  csr->add_option("--dir", pki_dir, "where to write NAME.key and NAME.csr")->required();
  std::string sign_csr, ca_dir;
  bool sign_server = false, sign_client = false, sign_both = false;
  auto* sign = pki->add_subcommand(
      "sign",
      "sign a certificate request with the cluster CA; writes NAME.crt beside NAME.csr. "
      "Copies the request's subjectAltNames; refuses a request whose signature does not verify");
  sign->add_option("CSR", sign_csr, "the request (PEM), e.g. node1.csr")->required();
  sign->add_option("--ca-dir", ca_dir, "the CA's directory (ca.key, ca.crt)")->required();
  sign->add_option("--days", cert_days, "validity in days")
      ->capture_default_str()
      ->check(CLI::Range(1, 36500));
  auto* f_server = sign->add_flag("--server", sign_server,
                                  "a server certificate: extendedKeyUsage serverAuth (default)");
  auto* f_client =
      sign->add_flag("--client", sign_client, "a client certificate: extendedKeyUsage clientAuth");
  auto* f_both = sign->add_flag("--both", sign_both, "serverAuth and clientAuth");
  f_server->excludes(f_client)->excludes(f_both);
  f_client->excludes(f_both);
  std::string issue_node, issue_address, issue_out;
  std::vector<std::string> issue_dns;
  bool issue_force = false;
  auto* issue = pki->add_subcommand(
      "issue",
      "issue a node's certificates in one step into OUT: server.key/server.crt (CN=NODE, SAN "
      "IP:ADDRESS and the DNS names, serverAuth), client.key/client.crt (CN=postgres, the "
      "database user, clientAuth) and a copy of ca.crt");
  issue->add_option("NODE", issue_node, "the node's name (node.name in its config)")->required();
  issue->add_option("--ca-dir", ca_dir, "the CA's directory (ca.key, ca.crt)")->required();
  issue->add_option("--address", issue_address, "the IP the node clusters on (node.address)")
      ->required();
  issue->add_option("--dns", issue_dns, "a DNS name of the node; repeat for more")
      ->allow_extra_args(false)
      ->delimiter(',');
  issue->add_option("--out", issue_out, "the node's certificate directory (created 0700)")
      ->required();
  issue->add_option("--days", cert_days, "validity in days")
      ->capture_default_str()
      ->check(CLI::Range(1, 36500));
  issue->add_flag("--force", issue_force, "replace the keys and certificates already in OUT");
  PkiInspectOptions insp;
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

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "ERROR : %s (see `tandem --help`, or --help after any command)\n",
                 e.what());
    return 2;
  }

  if (*agent) return RunAgent(config);
  if (*init) return ClusterInitialize(config);
  if (*join) return ClusterJoin(config, join_address);
  if (*status) return ClusterStatus(config, status_json);
  if (*remove) return ClusterRemove(config, remove_node, remove_force);
  if (*clear) return ClusterClearError(config);
  if (*switchover) return ClusterSwitchover(config, sw_to, sw_at, wait_s * 1000);
  if (*failover) return ClusterFailover(config, fo_to, fo_accept, wait_s * 1000);
  if (*pause) return ClusterPause(config, true);
  if (*resume) return ClusterPause(config, false);
  if (*history) return ClusterHistory(config, history_json);
  if (*uri) return ClusterUri(config, uri_read_only);
  if (*certs) return ClusterCerts(config, certs_files, certs_force);
  if (*tlsmode) return ClusterTlsMode(config, tls_mode, tls_mode_force);
  if (*up) return SandboxUp(sb);
  if (*down) return SandboxDown(sb);
  if (*sstatus) return SandboxStatus(sb);
  if (*kill) return SandboxKill(sb, node);
  if (*start) return SandboxStart(sb, node);
  if (*ca_init) return PkiCaInit(pki_dir, ca_cn, ca_days);
  if (*csr) return PkiCsr(csr_name, csr_cn, csr_sans, pki_dir);
  if (*sign) {
    return PkiSign(sign_csr, ca_dir, cert_days,
                   sign_client ? "client"
                   : sign_both ? "both"
                               : "server");
  }
  if (*issue) {
    return PkiIssue(issue_node, ca_dir, issue_address, issue_dns, issue_out, cert_days,
                    issue_force);
  }
  if (*inspect) return PkiInspect(insp);
  return 2;
}
