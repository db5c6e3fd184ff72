// The log targets (base/log.h): journald's native datagram and the syslog
// line as built, a line delivered to a socket the test binds, the refusals
// that name the fix, the fallback to stderr, and the event catalogue
// (log_events.h) in step with docs/logging.md.
#include "base/log.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "base/log_events.h"

namespace tandem::log {
namespace {

bool Has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A datagram socket bound in a fresh directory; closes and removes itself.
class Receiver {
 public:
  Receiver() {
    char tmpl[] = "/tmp/tandem-log-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/socket";
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{5, 0};  // a generous bound: the datagram is sent before Receive
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Receiver() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  std::string Receive() {
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
  int fd_ = -1;
};

// Every test leaves the process logging to stderr again.
class LogTargetTest : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_EQ(SetSink(Sink{}), "");
    SetNode("");
    SetCluster("");
  }
};

TEST(LogJournal, CarriesTheStructuredFieldsAndTheEventsMessageId) {
  Record r{Level::kWarn, "ha", "demoting: stopping PostgreSQL fast", "node1", "prod", "demote"};
  const std::string d = EncodeJournal(r);
  EXPECT_TRUE(Has(d, "PRIORITY=4\n")) << d;
  EXPECT_TRUE(Has(d, "SYSLOG_IDENTIFIER=tandem\n"));
  EXPECT_TRUE(Has(d, "MESSAGE=demoting: stopping PostgreSQL fast\n"));
  EXPECT_TRUE(Has(d, "TANDEM_MODULE=ha\n"));
  EXPECT_TRUE(Has(d, "TANDEM_NODE=node1\n"));
  EXPECT_TRUE(Has(d, "TANDEM_CLUSTER=prod\n"));
  EXPECT_TRUE(Has(d, "TANDEM_EVENT=demote\n"));
  EXPECT_TRUE(Has(d, std::string("MESSAGE_ID=") + FindEvent("demote")->id + "\n"));
  Record plain{Level::kInfo, "pg", "checkpoint", "", "", nullptr};
  const std::string p = EncodeJournal(plain);
  EXPECT_TRUE(Has(p, "PRIORITY=6\n"));
  EXPECT_FALSE(Has(p, "MESSAGE_ID=")) << "no event, no id";
  EXPECT_FALSE(Has(p, "TANDEM_NODE="));
}

TEST(LogJournal, AValueWithANewlineTakesTheBinaryForm) {
  Record r{Level::kError, "pg", "line one\nline two", "", "", nullptr};
  const std::string d = EncodeJournal(r);
  const std::string value = "line one\nline two";
  std::string want = "MESSAGE\n";
  for (int i = 0; i < 8; ++i) want += static_cast<char>(i == 0 ? value.size() : 0);
  want += value + "\n";
  EXPECT_TRUE(Has(d, want));
  EXPECT_FALSE(Has(d, "MESSAGE=line one"));
}

TEST(LogSyslog, IsOneRfc3164LineWithIdentTandemAndTheFacilitysPriority) {
  Record r{Level::kError, "ha", "fenced\nnow", "node2", "", "fence"};
  const std::string line = EncodeSyslog(r, ParseFacility("local3"), 0, 4242);
  // local3 = 19; error = 3: 19 * 8 + 3
  EXPECT_EQ(line.rfind("<155>", 0), 0u) << line;
  EXPECT_TRUE(Has(line, " tandem[4242]: node=node2 module=ha event=fence fenced now")) << line;
  EXPECT_FALSE(Has(line, "\n"));
  EXPECT_EQ(EncodeSyslog(r, ParseFacility("daemon"), 0, 1).rfind("<27>", 0), 0u);
}

TEST(LogSyslog, FacilitiesAndTargetsAreParsedOrRefused) {
  EXPECT_EQ(ParseFacility("daemon"), 3);
  EXPECT_EQ(ParseFacility("user"), 1);
  EXPECT_EQ(ParseFacility("local0"), 16);
  EXPECT_EQ(ParseFacility("local7"), 23);
  EXPECT_EQ(ParseFacility("local8"), -1);
  EXPECT_EQ(ParseFacility("kern"), -1);
  Target t{};
  EXPECT_TRUE(ParseTarget("journald", &t));
  EXPECT_EQ(t, Target::kJournald);
  EXPECT_TRUE(ParseTarget("file", &t));
  EXPECT_EQ(t, Target::kFile);
  EXPECT_FALSE(ParseTarget("journal", &t));
}

TEST_F(LogTargetTest, ALineReachesTheJournalSocketWithItsFields) {
  Receiver rx;
  SetNode("node7");
  SetCluster("c1");
  Sink s;
  s.target = Target::kJournald;
  s.socket_path = rx.path();
  ASSERT_EQ(SetSink(s), "");
  TLOG_EVENT(Info, "ha", "promote") << "promoted";
  const std::string d = rx.Receive();
  EXPECT_TRUE(Has(d, "MESSAGE=promoted\n")) << d;
  EXPECT_TRUE(Has(d, "TANDEM_NODE=node7\n"));
  EXPECT_TRUE(Has(d, "TANDEM_CLUSTER=c1\n"));
  EXPECT_TRUE(Has(d, std::string("MESSAGE_ID=") + FindEvent("promote")->id));
}

TEST_F(LogTargetTest, ALineTheTargetRefusesGoesToStderr) {
  Receiver rx;
  Sink s;
  s.target = Target::kSyslog;
  s.socket_path = rx.path();
  ASSERT_EQ(SetSink(s), "");
  rx.Close();  // the daemon went away
  ::testing::internal::CaptureStderr();
  TLOG(Warn, "ha") << "still visible";
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(Has(err, "msg=\"still visible\"")) << err;
  EXPECT_TRUE(Has(err, "the log target refused a line")) << err;
}

TEST_F(LogTargetTest, AnUnusableTargetIsRefusedNamingTheFix) {
  Sink j;
  j.target = Target::kJournald;
  j.socket_path = "/nonexistent/journal/socket";
  const std::string why = SetSink(j);
  EXPECT_TRUE(Has(why, "no socket at /nonexistent/journal/socket")) << why;
  EXPECT_TRUE(Has(why, "systemd-journald")) << why;
  Sink f;
  f.target = Target::kFile;
  EXPECT_TRUE(Has(SetSink(f), "log.file")) << "a file target needs a file";
  f.file = "/nonexistent/dir/agent.log";
  EXPECT_TRUE(Has(SetSink(f), "cannot open the log file /nonexistent/dir/agent.log"));
}

TEST_F(LogTargetTest, AFileTargetGetsTheTextLines) {
  char tmpl[] = "/tmp/tandem-log-file-XXXXXX";
  const int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ::close(fd);
  Sink f;
  f.target = Target::kFile;
  f.file = tmpl;
  ASSERT_EQ(SetSink(f), "");
  ::testing::internal::CaptureStderr();
  TLOG_EVENT(Info, "agent", "paused") << "cluster paused";
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "") << "the file instead of stderr";
  std::ifstream in(tmpl);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_TRUE(Has(text.str(), "module=agent event=paused msg=\"cluster paused\"")) << text.str();
  ::unlink(tmpl);
}

TEST(LogEvents, IdsAreUniqueJournalIdsAndDocsLoggingListsEveryOne) {
  std::set<std::string> names, ids;
  std::ifstream in(std::string(TANDEM_SOURCE_DIR) + "/docs/logging.md");
  ASSERT_TRUE(in.good());
  std::stringstream doc;
  doc << in.rdbuf();
  for (const Event& e : kEvents) {
    EXPECT_TRUE(names.insert(e.name).second) << e.name;
    EXPECT_TRUE(ids.insert(e.id).second) << e.id;
    const std::string id = e.id;
    EXPECT_EQ(id.size(), 32u) << e.name;
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << e.name;
    EXPECT_TRUE(Has(doc.str(), "| `" + std::string(e.name) + "` | `" + id + "` |"))
        << e.name << " is missing from docs/logging.md's table";
  }
}

}  // namespace
}  // namespace tandem::log
