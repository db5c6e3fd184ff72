// The pure text functions of pg/conf.h: quoting, conninfo, tandem.conf,
// pg_hba.conf and pg_ident.conf for each TLS mode, and the parsers of
// PostgreSQL's files and tool output.
#include "pg/conf.h"

#include <gtest/gtest.h>

#include "pg/postgres.h"

namespace tandem::pg {
namespace {

bool Has(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

Source StandbySource() {
  Source s;
  s.host = "10.0.0.1";
  s.port = 5432;
  s.user = "replicator";
  s.password = "s3cr'et:pw";
  s.application_name = "node2";
  s.slot_name = "tandem_node2";
  return s;
}

TEST(SlotNameFor, MapsEveryOtherCharToUnderscore) {
  EXPECT_EQ(SlotNameFor("node1"), "tandem_node1");
  EXPECT_EQ(SlotNameFor("db-2.example"), "tandem_db_2_example");
  EXPECT_EQ(SlotNameFor("Node_A"), "tandem_node_a");
  EXPECT_EQ(SlotNameFor(""), "tandem_");
  EXPECT_LE(SlotNameFor(std::string(100, 'x')).size(), 63u);
  EXPECT_TRUE(IsValidSlotName(SlotNameFor("Weird Name!/x")));
}

TEST(QuoteConfValue, QuotesAndEscapes) {
  EXPECT_EQ(*QuoteConfValue("plain"), "'plain'");
  EXPECT_EQ(*QuoteConfValue(""), "''");
  EXPECT_EQ(*QuoteConfValue("O'Brien"), "'O''Brien'");
  EXPECT_EQ(*QuoteConfValue("a\\b"), "'a\\\\b'");
  EXPECT_EQ(*QuoteConfValue("/tmp/with space"), "'/tmp/with space'");
}

TEST(QuoteConfValue, RejectsNewlinesAndNul) {
  EXPECT_EQ(QuoteConfValue("a\nb").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(QuoteConfValue("a\rb").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(QuoteConfValue(std::string("a\0b", 3)).ok());
}

TEST(QuoteConninfoValue, BareOrQuoted) {
  EXPECT_EQ(QuoteConninfoValue("10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(QuoteConninfoValue("/var/lib/pg/tandem.pgpass"), "/var/lib/pg/tandem.pgpass");
  EXPECT_EQ(QuoteConninfoValue(""), "''");
  EXPECT_EQ(QuoteConninfoValue("a b"), "'a b'");
  EXPECT_EQ(QuoteConninfoValue("it's"), "'it\\'s'");
  EXPECT_EQ(QuoteConninfoValue("back\\slash"), "'back\\\\slash'");
  EXPECT_EQ(QuoteConninfoValue("k=v"), "'k=v'");
}

TEST(BuildConninfo, SkipsEmptyValues) {
  EXPECT_EQ(
      BuildConninfo({{"host", "h"}, {"port", "5"}, {"user", ""}, {"application_name", "a b"}}),
      "host=h port=5 application_name='a b'");
}

TEST(PassFileLine, EscapesColonAndBackslash) {
  EXPECT_EQ(*PassFileLine("rep", "a:b\\c"), "*:*:*:rep:a\\:b\\\\c\n");
  auto bad = PassFileLine("rep", "line\nbreak");
  ASSERT_FALSE(bad.ok());
  EXPECT_FALSE(Has(bad.error().message(), "line\nbreak"));
  EXPECT_FALSE(Has(bad.error().message(), "break"));
}

TEST(RenderConfig, PrimaryHasEveryManagedSetting) {
  Settings s;
  s.port = 25432;
  s.synchronous_standby_names = "ANY 1 (node2, node3)";
  s.extra["work_mem"] = "64MB";
  s.extra["log_line_prefix"] = "%m [%p] it's ";
  auto r = RenderConfig(s, "/run/tandem/pg", std::nullopt, "/data/tandem.pgpass");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  const std::string& c = *r;
  for (const char* want :
       {"listen_addresses = '127.0.0.1'\n", "port = 25432\n",
        "unix_socket_directories = '/run/tandem/pg'\n", "max_connections = 100\n",
        "wal_level = replica\n", "hot_standby = on\n", "max_wal_senders = 10\n",
        "max_replication_slots = 10\n", "wal_keep_size = '256MB'\n", "wal_log_hints = on\n",
        "hot_standby_feedback = on\n", "password_encryption = 'scram-sha-256'\n",
        "synchronous_standby_names = 'ANY 1 (node2, node3)'\n", "work_mem = '64MB'\n",
        "log_line_prefix = '%m [%p] it''s '\n", "primary_conninfo = ''\n",
        "primary_slot_name = ''\n"}) {
    EXPECT_TRUE(Has(c, want)) << "missing: " << want << "\nin:\n" << c;
  }
  EXPECT_FALSE(Has(c, "passfile"));
}

TEST(RenderConfig, StandbyConninfoReferencesPassfileNotPassword) {
  Settings s;
  auto src = StandbySource();
  auto r = RenderConfig(s, "/run/pg", src, "/data dir/tandem.pgpass");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_FALSE(Has(*r, "s3cr")) << *r;
  EXPECT_FALSE(Has(*r, "password=")) << *r;
  // Conninfo quoting inside conf quoting: the space in the path needs both.
  EXPECT_TRUE(Has(*r,
                  "primary_conninfo = 'host=10.0.0.1 port=5432 user=replicator "
                  "application_name=node2 passfile=''/data dir/tandem.pgpass'' "
                  "connect_timeout=5'\n"))
      << *r;
  EXPECT_TRUE(Has(*r, "primary_slot_name = 'tandem_node2'\n")) << *r;
}

TEST(RenderConfig, StandbyWithoutSlot) {
  auto src = StandbySource();
  src.slot_name.clear();
  auto r = RenderConfig(Settings{}, "/s", src, "/d/p");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(Has(*r, "primary_slot_name = ''\n"));
}

TEST(RenderConfig, RejectsBadInput) {
  Settings s;
  s.extra["wal_level"] = "minimal";
  auto r = RenderConfig(s, "/s", std::nullopt, "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Has(r.error().message(), "wal_level")) << r.error().message();

  s.extra.clear();
  s.extra["bad name"] = "1";
  EXPECT_FALSE(RenderConfig(s, "/s", std::nullopt, "").ok());

  s.extra.clear();
  s.extra["work_mem"] = "1MB\nwal_level = minimal";
  EXPECT_FALSE(RenderConfig(s, "/s", std::nullopt, "").ok());

  s.extra.clear();
  s.port = 70000;
  EXPECT_FALSE(RenderConfig(s, "/s", std::nullopt, "").ok());

  Settings ok;
  auto src = StandbySource();
  src.host.clear();
  EXPECT_FALSE(RenderConfig(ok, "/s", src, "/p").ok());
  src = StandbySource();
  src.slot_name = "Bad-Slot";
  EXPECT_FALSE(RenderConfig(ok, "/s", src, "/p").ok());
  EXPECT_FALSE(RenderConfig(ok, "", std::nullopt, "/p").ok());
}

TEST(RenderHba, RulesInOrder) {
  std::vector<HbaPeer> peers = {{"node1", "10.0.0.1"}, {"node2", "fd00::2"}};
  auto r = RenderHba(peers, "replicator");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  const std::string& h = *r;
  auto pos = [&](const std::string& s) {
    auto p = h.find(s);
    EXPECT_NE(p, std::string::npos) << "missing: " << s << "\nin:\n" << h;
    return p;
  };
  auto local = pos("local   all          all                   trust\n");
  auto r1 = pos("host   replication   replicator   10.0.0.1/32   scram-sha-256");
  auto r2 = pos("host   replication   replicator   fd00::2/128   scram-sha-256");
  auto r3 = pos("host   replication   replicator   127.0.0.1/32   scram-sha-256");
  auto s1 = pos("host   all   postgres   10.0.0.1/32   scram-sha-256");
  auto s2 = pos("host   all   postgres   fd00::2/128   scram-sha-256");
  auto rej = pos("host   all   postgres   all   reject");
  auto all = pos("host   all   all   all   scram-sha-256");
  EXPECT_LT(local, r1);
  EXPECT_LT(r1, r2);
  EXPECT_LT(r2, r3);
  EXPECT_LT(r3, s1);
  EXPECT_LT(s1, s2);
  EXPECT_LT(s2, rej);
  EXPECT_LT(rej, all);
  EXPECT_FALSE(Has(h, "host   all   all   all   trust"));
}

TEST(RenderHba, LoopbackPeerNotDuplicated) {
  auto r = RenderHba({{"a", "127.0.0.1"}, {"b", "127.0.0.1"}}, "replicator");
  ASSERT_TRUE(r.ok());
  size_t n = 0;
  for (size_t p = r->find("replication   replicator   127.0.0.1/32"); p != std::string::npos;
       p = r->find("replication   replicator   127.0.0.1/32", p + 1)) {
    ++n;
  }
  EXPECT_EQ(n, 1u) << *r;
}

TEST(RenderHba, NoPeers) {
  auto r = RenderHba({}, "repl_user");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(Has(*r, "replication   repl_user   127.0.0.1/32"));
  EXPECT_TRUE(Has(*r, "host   all   all   all   scram-sha-256"));
}

TEST(RenderHba, RejectsAnythingButAnIpAddress) {
  for (const char* bad : {"node1.example.com", "10.0.0.1/24", "10.0.0", "", "256.1.1.1",
                          "fe80::1%eth0", "10.0.0.1 trust", "all",
                          "10.0.0.1\nhost all all "
                          "all trust"}) {
    auto r = RenderHba({{"n", bad}}, "replicator");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_TRUE(Has(r.error().message(), "not an IP address")) << r.error().message();
  }
}

TEST(RenderHba, RejectsBadReplicationUser) {
  EXPECT_FALSE(RenderHba({}, "").ok());
  EXPECT_FALSE(RenderHba({}, "rep user").ok());
  EXPECT_FALSE(RenderHba({}, "rep\nlocal").ok());
  EXPECT_FALSE(RenderHba({}, "postgres").ok());
}

TEST(HostCidr, V4AndV6) {
  EXPECT_EQ(*HostCidr("192.168.1.7"), "192.168.1.7/32");
  EXPECT_EQ(*HostCidr("::1"), "::1/128");
  EXPECT_EQ(*HostCidr("2001:db8::5"), "2001:db8::5/128");
  EXPECT_FALSE(HostCidr("localhost").has_value());
}

TEST(EnsureIncludeLast, ExactlyOnceAtTheEnd) {
  std::string base = "port = 5432\n# comment\n";
  std::string once = EnsureIncludeLast(base);
  EXPECT_EQ(once, "port = 5432\n# comment\ninclude 'tandem.conf'\n");
  EXPECT_EQ(EnsureIncludeLast(once), once);
  std::string twice = "include 'tandem.conf'\nport = 1\n  include 'tandem.conf'  \nx = 2\n\n";
  EXPECT_EQ(EnsureIncludeLast(twice), "port = 1\nx = 2\ninclude 'tandem.conf'\n");
  EXPECT_EQ(EnsureIncludeLast(""), "include 'tandem.conf'\n");
}

TEST(RemoveConfKeys, DropsOnlyThoseKeys) {
  std::string in =
      "# Do not edit this file manually!\n"
      "primary_conninfo = 'user=replicator password=secret host=10.0.0.1'\n"
      "work_mem = '4MB'\n"
      "  primary_slot_name='tandem_x'\n"
      "primary_conninfo_other = 1\n";
  std::string out = RemoveConfKeys(in, {"primary_conninfo", "primary_slot_name"});
  EXPECT_FALSE(Has(out, "secret"));
  EXPECT_FALSE(Has(out, "tandem_x"));
  EXPECT_TRUE(Has(out, "work_mem = '4MB'"));
  EXPECT_TRUE(Has(out, "primary_conninfo_other = 1"));
  EXPECT_TRUE(Has(out, "# Do not edit"));
}

TEST(ParsePostmasterPid, FirstLine) {
  EXPECT_EQ(ParsePostmasterPid("12345\n/var/lib/pg\n1700000000\n5432\n"), 12345);
  EXPECT_EQ(ParsePostmasterPid("  77  \n"), 77);
  EXPECT_FALSE(ParsePostmasterPid("").has_value());
  EXPECT_FALSE(ParsePostmasterPid("abc\n").has_value());
  EXPECT_FALSE(ParsePostmasterPid("-5\n").has_value());
  EXPECT_FALSE(ParsePostmasterPid("0\n").has_value());
  EXPECT_FALSE(ParsePostmasterPid("99999999999999\n").has_value());
}

TEST(ParseControlData, ReadsTheFieldsWeUse) {
  const char* out =
      "pg_control version number:            1300\n"
      "Catalog version number:               202209061\n"
      "Database system identifier:           7305284468376545121\n"
      "Database cluster state:               in archive recovery\n"
      "pg_control last modified:             Sun Nov 22 03:00:00 2026\n"
      "Latest checkpoint location:           0/3000060\n"
      "Latest checkpoint's REDO location:    0/3000028\n"
      "Latest checkpoint's TimeLineID:       2\n"
      "Latest checkpoint's PrevTimeLineID:   1\n";
  auto cd = ParseControlData(out);
  ASSERT_TRUE(cd.ok()) << cd.error().ToString();
  EXPECT_EQ(cd->system_identifier, 7305284468376545121ULL);
  EXPECT_EQ(cd->cluster_state, "in archive recovery");
  EXPECT_EQ(cd->checkpoint_lsn, 0x3000060u);
  EXPECT_EQ(cd->timeline, 2u);
  EXPECT_FALSE(ParseControlData("garbage\n").ok());
  EXPECT_FALSE(ParseControlData("").ok());
}

TEST(TimelineFromWalFileName, FirstEightHexDigits) {
  EXPECT_EQ(*TimelineFromWalFileName("000000010000000000000003"), 1u);
  EXPECT_EQ(*TimelineFromWalFileName("0000000A0000000000000003"), 10u);
  EXPECT_EQ(*TimelineFromWalFileName("000000ff00000001000000A3"), 255u);
  EXPECT_FALSE(TimelineFromWalFileName("00000001").has_value());
  EXPECT_FALSE(TimelineFromWalFileName("00000000000000000000000Z").has_value());
  EXPECT_FALSE(TimelineFromWalFileName("000000000000000000000003").has_value());
}

TEST(OutputTail, LastLines) {
  EXPECT_EQ(OutputTail("a\n\nb\r\nc\n", 2), "b | c");
  EXPECT_EQ(OutputTail("", 3), "(no output)");
  EXPECT_EQ(OutputTail("x\ry\rz", 10), "x | y | z");
}

TEST(Names, Validators) {
  EXPECT_TRUE(IsValidGucName("work_mem"));
  EXPECT_TRUE(IsValidGucName("auto_explain.log_min_duration"));
  EXPECT_FALSE(IsValidGucName("1abc"));
  EXPECT_FALSE(IsValidGucName("a=b"));
  EXPECT_FALSE(IsValidGucName(""));
  EXPECT_TRUE(IsValidRoleName("replicator"));
  EXPECT_FALSE(IsValidRoleName("rep-user"));
  EXPECT_FALSE(IsValidRoleName("\"x\""));
  EXPECT_TRUE(IsValidSlotName("tandem_node1"));
  EXPECT_FALSE(IsValidSlotName("Tandem"));
  EXPECT_FALSE(IsValidSlotName(std::string(64, 'a')));
}

}  // namespace
}  // namespace tandem::pg

namespace tandem::pg {
namespace {

TlsSettings Tls(TlsMode mode, bool verify_hostname = true) {
  TlsSettings t;
  t.mode = mode;
  t.verify_hostname = verify_hostname;
  t.server_cert = "/s/tls/server.crt";
  t.server_key = "/s/tls/server.key";
  t.ca_cert = "/s/tls/ca.crt";
  t.client_cert = "/s/tls/client.crt";
  t.client_key = "/s/tls/client.key";
  return t;
}

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(Tls, ClientParamsPerMode) {
  EXPECT_TRUE(ClientTlsParams(Tls(TlsMode::kOff)).empty());
  using KV = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(ClientTlsParams(Tls(TlsMode::kPermissive)), (KV{{"sslmode", "require"},
                                                            {"sslcert", "/s/tls/client.crt"},
                                                            {"sslkey", "/s/tls/client.key"}}));
  EXPECT_EQ(ClientTlsParams(Tls(TlsMode::kEnforce)), (KV{{"sslmode", "verify-full"},
                                                         {"sslrootcert", "/s/tls/ca.crt"},
                                                         {"sslcert", "/s/tls/client.crt"},
                                                         {"sslkey", "/s/tls/client.key"}}));
  EXPECT_EQ(ClientTlsParams(Tls(TlsMode::kEnforce, false))[0].second, "verify-ca");
}

TEST(Tls, PrimaryConninfoCarriesTheTlsParameters) {
  Source s;
  s.host = "10.0.0.1";
  s.user = "replicator";
  s.password = "never-shown";
  EXPECT_EQ(PrimaryConninfo(s, "/d/pgpass", Tls(TlsMode::kEnforce)),
            "host=10.0.0.1 port=5432 user=replicator passfile=/d/pgpass connect_timeout=5 "
            "sslmode=verify-full sslrootcert=/s/tls/ca.crt sslcert=/s/tls/client.crt "
            "sslkey=/s/tls/client.key");
  EXPECT_FALSE(Contains(PrimaryConninfo(s, "/p", Tls(TlsMode::kPermissive)), "never-shown"));
}

TEST(Tls, ConfigTurnsSslOn) {
  Settings st;
  st.tls = Tls(TlsMode::kEnforce);
  auto r = RenderConfig(st, "/run", std::nullopt, "/p");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(Contains(*r, "ssl = on\n")) << *r;
  EXPECT_TRUE(Contains(*r, "ssl_cert_file = '/s/tls/server.crt'\n")) << *r;
  EXPECT_TRUE(Contains(*r, "ssl_key_file = '/s/tls/server.key'\n")) << *r;
  EXPECT_TRUE(Contains(*r, "ssl_ca_file = '/s/tls/ca.crt'\n")) << *r;
  // permissive: no client certificate is requested, so none is verified.
  st.tls = Tls(TlsMode::kPermissive);
  r = RenderConfig(st, "/run", std::nullopt, "/p");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(Contains(*r, "ssl_ca_file = ''\n")) << *r;
  // off: nothing about ssl.
  st.tls = {};
  r = RenderConfig(st, "/run", std::nullopt, "/p");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(Contains(*r, "ssl")) << *r;
  // With TLS on, the operator cannot override the ssl settings.
  st.tls = Tls(TlsMode::kEnforce);
  st.extra = {{"ssl_key_file", "/etc/other.key"}};
  r = RenderConfig(st, "/run", std::nullopt, "/p");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.error().message(), "managed by Tandem when the tls section is set"));
}

TEST(Tls, HbaEnforceUsesCertificatesAndRejectsPlainReplication) {
  auto r =
      RenderHba({{"node1", "10.0.0.1"}, {"node2", "10.0.0.2"}}, "replicator", TlsMode::kEnforce);
  ASSERT_TRUE(r.ok());
  const std::string& h = *r;
  auto pos = [&](const std::string& s) {
    auto p = h.find(s);
    EXPECT_NE(p, std::string::npos) << "missing: " << s << "\nin:\n" << h;
    return p;
  };
  pos("local   all          all                   trust\n");
  auto r1 = pos("hostssl   replication   replicator   10.0.0.1/32   cert map=tandem");
  pos("hostssl   replication   replicator   127.0.0.1/32   cert map=tandem");
  auto rej = pos("hostnossl   replication   all   all   reject");
  auto su = pos("hostssl   all   postgres   10.0.0.1/32   scram-sha-256");
  pos("host   all   postgres   all   reject");
  pos("host   all   all   all   scram-sha-256");  // applications: TLS allowed, not forced
  EXPECT_LT(r1, rej);
  EXPECT_LT(rej, su);
  EXPECT_FALSE(Contains(h, "host   replication")) << h;
}

TEST(Tls, HbaPermissiveKeepsPasswordsOverTls) {
  auto r = RenderHba({{"node1", "10.0.0.1"}}, "replicator", TlsMode::kPermissive);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(Contains(*r, "hostssl   replication   replicator   10.0.0.1/32   scram-sha-256"));
  EXPECT_TRUE(Contains(*r, "hostnossl   replication   all   all   reject"));
  EXPECT_FALSE(Contains(*r, "cert")) << *r;
}

TEST(Tls, IdentMapsTheClientCertificateCn) {
  EXPECT_EQ(RenderIdent("replicator"),
            "# Written by Tandem; every change here is overwritten.\n"
            "# MAPNAME   SYSTEM-USERNAME (certificate CN)   PG-USERNAME\n"
            "tandem   postgres   replicator\n"
            "tandem   postgres   postgres\n");
}

}  // namespace
}  // namespace tandem::pg
