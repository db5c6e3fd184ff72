// The operator commands behind `tandem ...`. Each returns the process exit code
// (0 success, 1 failure, 2 bad usage) and prints what an operator needs.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

namespace tandem::cli {

constexpr const char* kDefaultConfig = "/etc/tandem/tandem.yaml";

int RunAgent(const std::string& config_path);

int ClusterInitialize(const std::string& config_path);
int ClusterJoin(const std::string& config_path, const std::string& address);
int ClusterStatus(const std::string& config_path, bool json);
int ClusterRemove(const std::string& config_path, const std::string& node, bool force);
int ClusterClearError(const std::string& config_path);

// The human status view (seed 1's shape) from the status document.
std::string RenderStatus(const nlohmann::json& status);

struct SandboxOptions {
  int nodes = 3;
  std::string dir = "sandbox";
  int base_port = 15400;
  bool json = false;
  bool purge = false;
};
int SandboxUp(const SandboxOptions& opts);
int SandboxDown(const SandboxOptions& opts);
int SandboxStatus(const SandboxOptions& opts);
int SandboxKill(const SandboxOptions& opts, const std::string& node);
int SandboxStart(const SandboxOptions& opts, const std::string& node);

}  // namespace tandem::cli
