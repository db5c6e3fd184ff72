// The embedded etcd's TLS flags follow the tls section: none without one,
// https on both ports with the node's server pair, client-certificate
// authentication only in enforce mode.
#include <gtest/gtest.h>

#include <algorithm>

#include "agent/config.h"
#include "agent/etcd_member.h"
#include "unit/agent/config_text.h"

namespace tandem::agent {
namespace {

constexpr const char* kNode = config_testing::kMinimalNode;
constexpr const char* kTls =
    "tls:\n  server_key: /t/server.key\n  server_cert: /t/server.crt\n"
    "  client_key: /t/client.key\n  client_cert: /t/client.crt\n  ca_cert: /t/ca.crt\n";

bool Has(const std::vector<std::string>& flags, const std::string& f) {
  return std::find(flags.begin(), flags.end(), f) != flags.end();
}

TEST(EtcdTlsFlags, NoneWithoutATlsSection) {
  auto c = ParseConfig(kNode, "t.yaml");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(EtcdTlsFlags(*c, "/s/tls/etcd").empty());
}

TEST(EtcdTlsFlags, EnforceUsesTheServerPairForClientsAndPeersAndRequiresClientCertificates) {
  auto c = ParseConfig(std::string(kNode) + kTls, "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  auto f = EtcdTlsFlags(*c, "/s/tls/etcd");
  for (const char* want :
       {"--cert-file=/s/tls/etcd/server.crt", "--key-file=/s/tls/etcd/server.key",
        "--trusted-ca-file=/s/tls/etcd/ca.crt", "--peer-cert-file=/s/tls/etcd/server.crt",
        "--peer-key-file=/s/tls/etcd/server.key", "--peer-trusted-ca-file=/s/tls/etcd/ca.crt",
        "--client-cert-auth=true", "--peer-client-cert-auth=true"}) {
    EXPECT_TRUE(Has(f, want)) << want;
  }
  EXPECT_FALSE(Has(f, "--experimental-peer-skip-client-san-verification=true"));
}

TEST(EtcdTlsFlags, PermissiveAsksClientsForNoCertificateButPeersStillVerifyEachOther) {
  auto c = ParseConfig(std::string(kNode) + kTls + "  mode: permissive\n", "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  auto f = EtcdTlsFlags(*c, "/d");
  EXPECT_TRUE(Has(f, "--cert-file=/d/server.crt"));
  // etcd 3.4 requires client certificates whenever a client CA is given.
  EXPECT_FALSE(Has(f, "--trusted-ca-file=/d/ca.crt"));
  EXPECT_FALSE(Has(f, "--client-cert-auth=true"));
  // Without the peer CA etcd could not verify its peers at all.
  EXPECT_TRUE(Has(f, "--peer-cert-file=/d/server.crt"));
  EXPECT_TRUE(Has(f, "--peer-trusted-ca-file=/d/ca.crt"));
  EXPECT_TRUE(Has(f, "--peer-client-cert-auth=true"));
}

TEST(EtcdTlsFlags, NoHostnameChecksSkipsThePeerClientSanCheck) {
  auto c = ParseConfig(std::string(kNode) + kTls + "  verify_hostname: false\n", "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_TRUE(Has(EtcdTlsFlags(*c, "/d"), "--experimental-peer-skip-client-san-verification=true"));
}

TEST(EtcdTlsFlags, EnforceLogsOnlyErrorsBecauseEtcdWarnsOnEveryGatewayRequest) {
  auto plain = ParseConfig(kNode, "t.yaml");
  auto enforce = ParseConfig(std::string(kNode) + kTls, "t.yaml");
  auto permissive = ParseConfig(std::string(kNode) + kTls + "  mode: permissive\n", "t.yaml");
  ASSERT_TRUE(plain.ok() && enforce.ok() && permissive.ok());
  EXPECT_EQ(EtcdLogLevel(*plain), "warn");
  EXPECT_EQ(EtcdLogLevel(*enforce), "error");
  EXPECT_EQ(EtcdLogLevel(*permissive), "warn");
}

}  // namespace
}  // namespace tandem::agent
