// Reading and writing state.json and secrets.json in node.state_dir (atomic
// writes; secrets.json mode 0600, never logged), and the warning for a state
// directory that lost its state.json. Runs on the caller's thread (agent
// start-up, the operation thread); no locks of its own.
#include "agent/local_state.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "base/file.h"

namespace tandem::agent {
using nlohmann::json;

Result<LocalState> LoadLocalState(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) {
    if (text.error().code() == ErrorCode::kNotFound) return LocalState{};
    return text.error();
  }
  if (text->find_first_not_of(" \t\r\n") == std::string::npos) {
    return Error(ErrorCode::kInvalidArgument,
                 path +
                     " is empty (half-written?); restore it from a backup, or move it aside "
                     "and, if this node was a member, remove it from the cluster and join it "
                     "again");
  }
  try {
    auto j = json::parse(*text);
    if (!j.is_object()) throw std::runtime_error("not a JSON object");
    LocalState s;
    s.member = j.value("member", false);
    s.cluster = j.value("cluster", "");
    s.kept_aside_dir = j.value("kept_aside_dir", "");
    s.was_primary = j.value("was_primary", false);
    s.needs_rewind = j.value("needs_rewind", false);
    s.needs_reclone = j.value("needs_reclone", false);
    s.witness = j.value("witness", false);
    s.error = j.value("error", false);
    s.lease_id = j.value("lease_id", int64_t{0});
    s.guard_pid = j.value("guard_pid", int64_t{0});
    s.guard_start_time = j.value("guard_start_time", uint64_t{0});
    if (j.contains("last_command")) {
      const auto& c = j["last_command"];
      s.last_command.command = c.value("command", "");
      s.last_command.result = c.value("result", "");
      s.last_command.error = c.value("error", "");
      s.last_command.at_ms = c.value("at_ms", int64_t{0});
    }
    return s;
  } catch (const std::exception& e) {
    return Error(ErrorCode::kInvalidArgument,
                 path + " is corrupt (" + e.what() +
                     "); move it aside and re-join the node, or restore it from a backup");
  }
}

std::string MissingStateWarning(const std::string& path, const std::vector<std::string>& leftovers,
                                const std::string& node_name) {
  if (PathExists(path)) return "";
  std::string found;
  for (const auto& p : leftovers) {
    if (PathExists(p)) found += (found.empty() ? "" : ", ") + p;
  }
  if (found.empty()) return "";
  return path + " is missing, but " + found +
         " exist(s): this node was a cluster member and now waits as a new node. Restore " + path +
         " from a backup and restart the agent, or remove the node from the cluster "
         "(`tandem cluster remove " +
         node_name + "` on another node) and join it again (`tandem cluster join`)";
}

Status SaveLocalState(const std::string& path, const LocalState& s) {
  json j{{"member", s.member},
         {"cluster", s.cluster},
         {"kept_aside_dir", s.kept_aside_dir},
         {"was_primary", s.was_primary},
         {"needs_rewind", s.needs_rewind},
         {"needs_reclone", s.needs_reclone},
         {"witness", s.witness},
         {"error", s.error},
         {"lease_id", s.lease_id},
         {"guard_pid", s.guard_pid},
         {"guard_start_time", s.guard_start_time},
         {"last_command",
          {{"command", s.last_command.command},
           {"result", s.last_command.result},
           {"error", s.last_command.error},
           {"at_ms", s.last_command.at_ms}}}};
  return WriteFileAtomic(path, j.dump(2) + "\n", 0644);
}

Result<Secrets> LoadSecrets(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) return text.error();
  try {
    auto j = json::parse(*text);
    return Secrets{j.at("superuser_password").get<std::string>(),
                   j.at("replication_password").get<std::string>()};
  } catch (const std::exception&) {
    // Do not echo the content: it holds secrets.
    return Error(ErrorCode::kInvalidArgument, path + " is corrupt; re-join the node");
  }
}

Status SaveSecrets(const std::string& path, const Secrets& s) {
  json j{{"superuser_password", s.superuser_password},
         {"replication_password", s.replication_password}};
  return WriteFileAtomic(path, j.dump() + "\n", 0600);
}

}  // namespace tandem::agent
