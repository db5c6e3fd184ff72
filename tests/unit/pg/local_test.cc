// Parts of the local-server control that need no server: the kept-connection
// pool's error path and the postmaster's identification from postmaster.pid.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "base/file.h"
#include "pg/local_conn.h"
#include "pg/postmaster.h"

namespace tandem::pg {
namespace {

class Dir {
 public:
  Dir() {
    char tmpl[] = "/tmp/tandem-unit-pg-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~Dir() { (void)RemoveAll(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ConnPoolTest, ADownServerIsReportedAsUnavailableAndNothingIsKept) {
  Dir d;
  ConnPool pool;
  ConnPool::Params params = {
      {"host", d.path()}, {"port", "1"}, {"dbname", "postgres"}, {"connect_timeout", "1"}};
  bool ran = false;
  for (int i = 0; i < 2; ++i) {
    Status st = pool.Run(params, "local PostgreSQL", ConnPool::Retry::kOnce, [&](PgConn&) {
      ran = true;
      return Ok();
    });
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code(), ErrorCode::kUnavailable);
    EXPECT_NE(st.error().message().find("cannot connect to local PostgreSQL"), std::string::npos)
        << st.error().message();
  }
  EXPECT_FALSE(ran);
  EXPECT_EQ(pool.idle(), 0u);
  EXPECT_EQ(pool.opened(), 0u);
}

TEST(PostmasterTest, NoPidFileOrAPidThatIsNotPostgresIsNotAPostmaster) {
  Dir d;
  EXPECT_EQ(IdentifyPostmaster(d.path()), 0);
  PostmasterTracker tracker(d.path());
  EXPECT_EQ(tracker.Pid(), 0);
  // Our own live pid: alive, but not a postgres process working there.
  ASSERT_TRUE(
      WriteFileAtomic(d.path() + "/postmaster.pid", std::to_string(::getpid()) + "\n" + d.path())
          .ok());
  EXPECT_EQ(IdentifyPostmaster(d.path()), 0);
  EXPECT_EQ(tracker.Pid(), 0);
  ASSERT_TRUE(WriteFileAtomic(d.path() + "/postmaster.pid", "junk\n").ok());
  EXPECT_EQ(tracker.Pid(), 0);
}

}  // namespace
}  // namespace tandem::pg
