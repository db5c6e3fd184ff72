// `tandem cluster upgrade-schema DIR` and `tandem cluster schema`: the
// registration, the directory read on this node (the primary may be another
// machine, so the files' text travels in the request), following the run
// through the local agent (any node: the operation is in the store), and the
// text views (docs/schema-upgrades.md). Time through the process's Clock.
#include "cli/schema_commands.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "agent/config.h"
#include "agent/tls_files.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/strings.h"
#include "cli/registry.h"
#include "core/schema_plan.h"
#include "net/http_client.h"

namespace tandem::cli {
using nlohmann::json;

namespace {

int PrintError(const std::string& msg) {
  std::fflush(stdout);
  std::fprintf(stderr, "ERROR : %s\n", msg.c_str());
  return 1;
}

std::string LocalApiUrl(const agent::Config& cfg) {
  const bool wildcard = cfg.api_listen == "0.0.0.0" || cfg.api_listen == "::";
  std::string host =
      wildcard ? (cfg.tls_enabled() ? cfg.node_address : "127.0.0.1") : cfg.api_listen;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return cfg.url_scheme() + host + ":" + std::to_string(cfg.api_port);
}

// The local agent's answer, or the error to print (its own words when it
// refused). *reached: the agent answered at all.
Result<json> Call(const agent::Config& cfg, const std::string& method, const std::string& path,
                  const std::string& body, int64_t timeout_ms, bool* reached = nullptr) {
  const std::string url = LocalApiUrl(cfg);
  auto r = net::HttpCall(method, url + path, body, timeout_ms);
  if (reached != nullptr) *reached = r.ok();
  if (!r) {
    return Error(ErrorCode::kUnavailable, "cannot reach the local agent at " + url + " (" +
                                              r.error().message() + "); is `tandem agent -c " +
                                              cfg.path + "` running?");
  }
  try {
    auto j = json::parse(r->body);
    if (r->status != 200) return Error(ErrorCode::kFailedPrecondition, j.value("error", r->body));
    return j;
  } catch (...) {
    return Error(ErrorCode::kInternal,
                 "unexpected answer from the agent (HTTP " + std::to_string(r->status) + ")");
  }
}

std::optional<agent::Config> Load(const std::string& path) {
  auto cfg = agent::LoadConfig(path);
  if (!cfg) {
    PrintError(cfg.error().message());
    return std::nullopt;
  }
  net::SetHttpClientTls(agent::ClientTlsFor(*cfg));
  ::signal(SIGPIPE, SIG_IGN);
  return *cfg;
}

// A query parameter's value, percent-encoded (a database name may hold anything).
std::string UrlEncode(const std::string& v) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

struct UpgradeArgs {
  std::string dir;
  std::string database = "postgres";
  std::string target;
  std::string timeout;
  bool dry_run = false;
  bool json_out = false;
};

std::string RequestBody(const UpgradeArgs& a, const std::vector<core::MigrationFile>& files,
                        bool dry_run, int64_t timeout_ms) {
  json list = json::array();
  for (const auto& f : files) list.push_back({{"name", f.name}, {"sql", f.sql}});
  return json{{"dir", a.dir},       {"files", list.dump()}, {"database", a.database},
              {"target", a.target}, {"dry_run", dry_run},   {"timeout_ms", timeout_ms}}
      .dump();
}

// Prints the lines of the operation's progress not printed yet (the record
// keeps the last lines and counts every line ever added).
void PrintNewProgress(const json& op, uint64_t* printed) {
  const json progress = op.value("progress", json::array());
  const uint64_t total = op.value("progress_total", uint64_t{progress.size()});
  const uint64_t fresh = total > *printed ? total - *printed : 0;
  const size_t from = progress.size() > fresh ? progress.size() - fresh : 0;
  for (size_t i = from; i < progress.size(); ++i) {
    std::printf("  %s\n", progress[i].get<std::string>().c_str());
  }
  *printed = std::max(*printed, total);
  std::fflush(stdout);
}

// Follows operation `id` until it ends: 0 done, 1 failed or lost.
int Follow(const Clock& clock, const agent::Config& cfg, const std::string& id) {
  uint64_t printed = 0;
  MonoMs unreachable_since = 0;
  for (;;) {
    bool reached = false;
    auto r = Call(cfg, "GET", "/v1/schema/operation", "", 10'000, &reached);
    if (!r) {
      // The local agent may restart, or its store be out of reach a moment.
      if (unreachable_since == 0) unreachable_since = clock.Now();
      if (clock.Now() - unreachable_since > 60'000) {
        return PrintError(
            r.error().message() +
            "; the upgrade goes on without this command: see `tandem cluster schema`");
      }
      clock.SleepFor(500);
      continue;
    }
    unreachable_since = 0;
    const json& op = (*r)["operation"];
    if (!op.is_object() || op.value("id", "") != id) {
      return PrintError(
          "the schema operation was replaced or cleared meanwhile; see `tandem "
          "cluster schema`");
    }
    PrintNewProgress(op, &printed);
    const std::string state = op.value("state", "");
    if (state == "done") return 0;
    if (state == "failed") {
      return PrintError("Couldn't upgrade the schema: " + op.value("error", std::string()) +
                        " (then `tandem cluster clear-error` and run the command again)");
    }
    clock.SleepFor(250);
  }
}

int UpgradeSchema(const Clock& clock, const std::string& config, const UpgradeArgs& a) {
  auto cfg = Load(config);
  if (!cfg) return 1;
  if (!a.target.empty()) {
    if (auto t = core::ParseTargetVersion(a.target); !t) return PrintError(t.error().message());
  }
  int64_t timeout_ms = 0;
  if (!a.timeout.empty()) {
    auto t = ParseDurationMs(a.timeout);
    if (!t || *t <= 0) {
      return PrintError("--timeout '" + a.timeout +
                        "' is not a duration; give it as 30s, 5m or 2h");
    }
    timeout_ms = *t;
  }
  auto files = ReadMigrationDir(a.dir);
  if (!files) return PrintError(files.error().message());
  auto r = Call(*cfg, "POST", "/v1/schema/upgrade", RequestBody(a, *files, a.dry_run, timeout_ms),
                120'000);
  if (!r) return PrintError(r.error().message());
  if (a.dry_run) {
    std::printf("%s", RenderSchemaPlan(*r).c_str());
    return 0;
  }
  if (!r->contains("operation")) {
    std::printf("The schema of database %s is up to date; nothing to do.\n", a.database.c_str());
    return 0;
  }
  std::printf(
      "Schema upgrade of database %s: %zu migration(s) pending, run by the primary's agent\n",
      a.database.c_str(), (*r)["pending"].size());
  std::fflush(stdout);
  return Follow(clock, *cfg, (*r)["operation"].value("id", ""));
}

int ShowSchema(const std::string& config, const UpgradeArgs& a) {
  auto cfg = Load(config);
  if (!cfg) return 1;
  auto s = Call(*cfg, "GET", "/v1/schema?database=" + UrlEncode(a.database), "", 30'000);
  if (!s) return PrintError(s.error().message());
  json plan;
  if (!a.dir.empty()) {
    auto files = ReadMigrationDir(a.dir);
    if (!files) return PrintError(files.error().message());
    auto p = Call(*cfg, "POST", "/v1/schema/upgrade", RequestBody(a, *files, true, 0), 60'000);
    if (!p) return PrintError(p.error().message());
    plan = *p;
  }
  if (a.json_out) {
    json out = *s;
    if (!plan.is_null()) out["pending"] = plan["pending"];
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("%s", RenderSchema(*s, plan).c_str());
  }
  return 0;
}

}  // namespace

Result<std::vector<core::MigrationFile>> ReadMigrationDir(const std::string& dir) {
  if (!PathExists(dir)) {
    return Error(ErrorCode::kNotFound, "the directory " + dir + " does not exist");
  }
  if (!IsDirectory(dir)) return Error(ErrorCode::kInvalidArgument, dir + " is not a directory");
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return Error(ErrorCode::kIo, "cannot read the directory " + dir);
  std::vector<core::MigrationFile> files;
  while (struct dirent* e = ::readdir(d.get())) {
    const std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    const std::string path = dir + "/" + name;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (static_cast<size_t>(st.st_size) > core::kMaxMigrationBytes) {
      return Error(ErrorCode::kInvalidArgument,
                   path + " is " + std::to_string(st.st_size) + " bytes, over the limit of " +
                       std::to_string(core::kMaxMigrationBytes) + " for one run");
    }
    auto text = ReadFile(path);
    if (!text) return text.error();
    files.push_back({name, *text, ""});
  }
  std::sort(files.begin(), files.end(),
            [](const auto& x, const auto& y) { return x.name < y.name; });
  auto checked = core::CheckMigrationSet(files);
  if (!checked) return checked.error().Wrap(dir);
  return files;
}

std::string RenderSchemaPlan(const json& plan) {
  std::string out = "Database : " + plan.value("database", std::string()) + "\n";
  std::vector<std::string> applied;
  for (const auto& v : plan.value("applied", json::array())) {
    applied.push_back(core::VersionName(v.get<uint64_t>()));
  }
  out += "Applied  : " + (applied.empty() ? std::string("none") : Join(applied, ", ")) + "\n";
  const json pending = plan.value("pending", json::array());
  out += "Pending  : " + (pending.empty() ? std::string("none") : std::to_string(pending.size())) +
         "\n";
  for (const auto& m : pending) {
    out += "  " + core::VersionName(m.value("version", uint64_t{0})) + "  " +
           m.value("file", std::string()) +
           (m.value("transactional", true) ? "" : "  (non-transactional)") + "\n";
  }
  std::vector<std::string> beyond;
  for (const auto& v : plan.value("beyond_target", json::array())) {
    beyond.push_back(core::VersionName(v.get<uint64_t>()));
  }
  if (!beyond.empty()) out += "Beyond --target: " + Join(beyond, ", ") + "\n";
  return out;
}

std::string RenderSchema(const json& s, const json& plan) {
  std::string out = "Database : " + s.value("database", std::string()) + "\n";
  auto rows = [&](const char* key) {
    std::string t;
    for (const auto& r : s.value(key, json::array())) {
      t += "  " + core::VersionName(r.value("version", uint64_t{0})) + "  " +
           r.value("description", std::string()) + "  (" + r.value("applied_at", std::string()) +
           " by " + r.value("applied_by", std::string()) + ", " +
           std::to_string(r.value("duration_ms", int64_t{0})) + " ms)\n";
    }
    return t.empty() ? std::string("  none\n") : t;
  };
  out += "Applied  :\n" + rows("applied");
  out += "Failed   :\n" + rows("failed");
  if (plan.is_object()) {
    std::string p;
    for (const auto& m : plan.value("pending", json::array())) {
      p += "  " + core::VersionName(m.value("version", uint64_t{0})) + "  " +
           m.value("file", std::string()) + "\n";
    }
    out += "Pending  :\n" + (p.empty() ? std::string("  none\n") : p);
  }
  const json op = s.value("operation", json());
  if (op.is_object()) {
    out += "Last run : '" + op.value("command", std::string()) + "' " +
           op.value("state", std::string()) + " (requested on " +
           op.value("requested_on", std::string()) + ", run by " +
           op.value("runner", std::string()) + ")\n";
    if (!op.value("error", std::string()).empty()) {
      out += "Error    : " + op.value("error", std::string()) + "\n";
    }
  }
  return out;
}

void AddSchemaCommands(CLI::App* cluster, Context& ctx) {
  auto a = std::make_shared<UpgradeArgs>();
  auto* up = cluster->add_subcommand(
      "upgrade-schema",
      "apply the versioned SQL files of DIR (V0001__name.sql, ...) once for the whole cluster, "
      "on the primary, after the replicas settle; follows the run and exits with its result");
  up->add_option("DIR", a->dir, "the directory of migrations (read on this node)")->required();
  up->add_option("--database", a->database, "the database to migrate")->capture_default_str();
  up->add_flag("--dry-run", a->dry_run, "print the plan (applied, pending); run nothing");
  up->add_option("--target", a->target, "the last version to apply (default: all)");
  up->add_option("--timeout", a->timeout,
                 "the most one migration may run (30s, 5m, 2h); past it, it is cancelled and "
                 "rolled back (default: no limit)");
  ctx.Handle(up, [a, &ctx] { return UpgradeSchema(ctx.clock, ctx.config, *a); });

  auto s = std::make_shared<UpgradeArgs>();
  auto* show = cluster->add_subcommand(
      "schema",
      "the applied and failed migrations of a database, the last run, and with DIR "
      "what is pending");
  show->add_option("DIR", s->dir, "a directory of migrations, to list the pending ones");
  show->add_option("--database", s->database, "the database")->capture_default_str();
  show->add_flag("--json", s->json_out, "machine-readable output");
  ctx.Handle(show, [s, &ctx] { return ShowSchema(ctx.config, *s); });
}

}  // namespace tandem::cli
