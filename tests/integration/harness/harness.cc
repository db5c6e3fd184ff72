// The integration tests' helpers: temp dirs, the test's base port, the
// service user, running tandem and psql, polling with a deadline, reading
// HTTP JSON, sandbox up and down, killing a process group. Runs on the test's
// thread; real time (these tests run real processes).
#include "integration/harness/harness.h"

#include <httplib.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "base/clock.h"
#include "base/file.h"
#include "base/process.h"
#include "base/strings.h"

namespace tandem::testing {

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  char* p = ::mkdtemp(tmpl.data());
  TANDEM_CHECK(p != nullptr, "mkdtemp failed");
  path_ = p;
  ::chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
  if (std::getenv("TANDEM_KEEP_TEST_DIRS") == nullptr) (void)RemoveAll(path_);
}

bool WaitUntil(const std::function<bool()>& cond, int64_t timeout_ms) {
  const MonoMs start = SystemClock::Get().Now();
  while (true) {
    if (cond()) return true;
    ReapChildren();
    if (SystemClock::Get().Now() - start > timeout_ms) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::string NodeYaml(const std::string& name, const std::string& state_dir, int port,
                     const std::string& extra) {
  return "cluster: sandbox\nnode:\n  name: " + name +
         "\n  address: 127.0.0.1\n  state_dir: " + state_dir +
         "\napi:\n  port: " + std::to_string(port + 1) +
         "\npostgresql:\n  port: " + std::to_string(port) +
         "\ndcs:\n  etcd_client_port: " + std::to_string(port + 4) +
         "\n  etcd_peer_port: " + std::to_string(port + 5) + "\n" + extra;
}

int TestBasePort(int default_port) {
  const char* env = std::getenv("TANDEM_TEST_BASE_PORT");
  if (env != nullptr) {
    auto v = ParseInt(env);
    if (v && *v > 1024 && *v < 60000) return static_cast<int>(*v);
  }
  return default_port;
}

std::string ServiceUser() {
  return ::geteuid() == 0 ? "postgres" : "";
}

}  // namespace tandem::testing

namespace tandem::testing {

CommandResult RunCmd(const std::vector<std::string>& argv, int64_t timeout_ms,
                     const std::map<std::string, std::string>& env) {
  SpawnOptions opts;
  opts.env = env;
  auto r = RunCommand(argv, opts, timeout_ms);
  if (!r) return {-1, r.error().message()};
  return {r->exit_code, r->output};
}

std::string TandemBin() {
  const char* bin = std::getenv("TANDEM_BIN");
  return AbsolutePath(bin != nullptr ? bin : "build/tandem");
}

pid_t LivePidFromFile(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) return 0;
  auto pid = ParseInt(Trim(Split(*text, '\n')[0]));
  if (!pid || *pid <= 1 || !IsAlive(static_cast<pid_t>(*pid))) return 0;
  return static_cast<pid_t>(*pid);
}

std::optional<nlohmann::json> HttpGetJson(const std::string& host, int port,
                                          const std::string& path) {
  httplib::Client c(host, port);
  c.set_connection_timeout(1, 0);
  c.set_read_timeout(3, 0);
  auto r = c.Get(path);
  if (!r || r->status != 200) return std::nullopt;
  auto j = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::string UnhealthyBecause(const nlohmann::json& s, size_t members, bool failover_ready) {
  if (!s.is_object() || !s.value("primary", nlohmann::json()).is_string() ||
      !s.contains("members") || s["members"].size() != members) {
    return "no primary, or not every member registered";
  }
  size_t primaries = 0, replicas = 0;
  for (const auto& m : s["members"]) {
    if (m.value("role", "") == "primary") ++primaries;
    if (m.value("role", "") == "replica" && m.value("in_sync", false)) ++replicas;
  }
  if (primaries != 1 || replicas != members - 1) {
    return "not one primary and " + std::to_string(members - 1) + " in-sync replicas";
  }
  if (failover_ready &&
      !(s.contains("sync") && s["sync"].is_object() && s["sync"].value("failover_ready", false))) {
    return "the sync record does not allow a failover yet";
  }
  return "";
}

void KillGroup(pid_t pid, int sig) {
  if (pid <= 0) return;
  const pid_t pgid = ::getpgid(pid);
  if (pgid > 1 && pgid != ::getpgrp()) ::kill(-pgid, sig);
  ::kill(pid, sig);
}

CommandResult RunTandem(const std::vector<std::string>& args, int64_t timeout_ms) {
  std::vector<std::string> argv = {TandemBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCmd(argv, timeout_ms);
}

std::string PrimaryOf(const std::string& config) {
  auto s = ClusterStatusJson(config);
  if (!s || !(*s)["primary"].is_string()) return "";
  return (*s)["primary"].get<std::string>();
}

std::optional<nlohmann::json> ClusterStatusJson(const std::string& config) {
  auto r = RunTandem({"-c", config, "cluster", "status", "--json"}, 30'000);
  if (r.exit_code != 0) return std::nullopt;
  try {
    return nlohmann::json::parse(r.output);
  } catch (...) {
    return std::nullopt;
  }
}

CommandResult SandboxUp(const std::string& dir, int base_port, int nodes, bool tls) {
  std::vector<std::string> args = {"sandbox", "up", "--nodes",     std::to_string(nodes),
                                   "--dir",   dir,  "--base-port", std::to_string(base_port)};
  if (!tls) args.push_back("--no-tls");
  return RunTandem(args, 600'000);
}

void SandboxDown(const std::string& dir) {
  auto r = RunTandem({"sandbox", "down", "--dir", dir}, 300'000);
  if (r.exit_code != 0) std::fprintf(stderr, "sandbox down: %s\n", r.output.c_str());
}

CommandResult Psql(int port, const std::string& pgpass, const std::string& sql) {
  return RunCmd({"psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                 std::to_string(port), "-U", "postgres", "-d", "postgres", "-c", sql},
                30'000, {{"PGPASSFILE", pgpass}, {"PGCONNECT_TIMEOUT", "5"}});
}

}  // namespace tandem::testing
