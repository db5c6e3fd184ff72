// `tandem cluster uri`: libpq multi-host URIs from the status document.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace tandem::cli {
namespace {
using nlohmann::json;

json Status(bool proxies) {
  json s = {{"members", json::array()}};
  for (int i = 1; i <= 3; ++i) {
    s["members"].push_back({{"name", "node" + std::to_string(i)},
                            {"host", "127.0.0.1"},
                            {"port", 15400 + 10 * i},
                            {"proxy_read_write_port", proxies ? 15400 + 10 * i + 2 : 0},
                            {"proxy_read_only_port", proxies ? 15400 + 10 * i + 3 : 0}});
  }
  return s;
}

TEST(ClusterUri, ListsEveryNodeForWrites) {
  EXPECT_EQ(ClusterUris(Status(false), false),
            "postgresql://127.0.0.1:15410,127.0.0.1:15420,127.0.0.1:15430/postgres"
            "?target_session_attrs=read-write\n");
}

TEST(ClusterUri, ReadOnlyPrefersStandbysAndUsesTheReadOnlyProxyPorts) {
  EXPECT_EQ(ClusterUris(Status(true), true),
            "postgresql://127.0.0.1:15410,127.0.0.1:15420,127.0.0.1:15430/postgres"
            "?target_session_attrs=prefer-standby\n"
            "postgresql://127.0.0.1:15413,127.0.0.1:15423,127.0.0.1:15433/postgres"
            "?target_session_attrs=prefer-standby\n");
}

TEST(ClusterUri, ProxyLineListsTheReadWritePorts) {
  const std::string out = ClusterUris(Status(true), false);
  EXPECT_NE(out.find("postgresql://127.0.0.1:15412,127.0.0.1:15422,127.0.0.1:15432/postgres"
                     "?target_session_attrs=read-write\n"),
            std::string::npos)
      << out;
}

TEST(ClusterUri, AWitnessIsNoDirectHostButItsProxyIs) {
  json s = Status(true);
  s["members"][2]["witness"] = true;
  s["members"][2]["port"] = 0;
  EXPECT_EQ(ClusterUris(s, false),
            "postgresql://127.0.0.1:15410,127.0.0.1:15420/postgres"
            "?target_session_attrs=read-write\n"
            "postgresql://127.0.0.1:15412,127.0.0.1:15422,127.0.0.1:15432/postgres"
            "?target_session_attrs=read-write\n");
}

TEST(ClusterUri, Ipv6HostsAreBracketedAndNoMembersGiveNothing) {
  json s = {{"members", {{{"name", "a"}, {"host", "fd00::1"}, {"port", 5432}}}}};
  EXPECT_EQ(ClusterUris(s, false),
            "postgresql://[fd00::1]:5432/postgres"
            "?target_session_attrs=read-write\n");
  EXPECT_EQ(ClusterUris(json{{"members", json::array()}}, false), "");
}

}  // namespace
}  // namespace tandem::cli
