// Whole-agent scenarios as data, in the manner of etcd's raft interaction
// tests: each row is a moment (ms of clock after the scenario's zero), an
// event the test injects then, and what must hold then. Times are exact: the
// harness steps 5 ms and settles every thread before each check.
//
// Events:   partition N | heal N | crash N (its PostgreSQL) | pause N | resume N
// Checks (";"-separated):
//   N primary|standby|stopped     N's PostgreSQL
//   N demoted                     N's PostgreSQL is not a primary (stopped or standby)
//   N follows M                   N is a standby configured to stream from M
//   leader N|none                 the leader key in the store
//   route@N M|none                the write target of N's last route, if valid now
// Defaults: ttl 2 s, loop 250 ms, safety margin 500 ms; the fence watchdog
// polls every 20 ms, so a deadline at D is acted on in [D, D + 20].
#include <gtest/gtest.h>

#include <sstream>

#include "base/strings.h"
#include "unit/agent/agent_harness.h"

namespace tandem::agenttest {
namespace {

struct Beat {
  MonoMs at;
  const char* event;
  const char* expect;
};

int NodeIndex(AgentHarness& h, const std::string& name) {
  for (int i = 0; i < h.size(); ++i) {
    if (h.node(i).name == name) return i;
  }
  ADD_FAILURE() << "no node " << name;
  return 0;
}

std::vector<std::string> Words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> w;
  for (std::string x; in >> x;) w.push_back(x);
  return w;
}

void Apply(AgentHarness& h, const std::string& event) {
  const auto w = Words(event);
  if (w.empty()) return;
  ASSERT_EQ(w.size(), 2u) << event;
  const int i = NodeIndex(h, w[1]);
  if (w[0] == "partition") {
    h.Partition(i, true, 250);
  } else if (w[0] == "heal") {
    h.Partition(i, false);
  } else if (w[0] == "crash") {
    h.pg(i).Crash();
  } else if (w[0] == "pause") {
    h.Pause(i);
  } else if (w[0] == "resume") {
    h.Resume(i);
  } else {
    FAIL() << "unknown event: " << event;
  }
}

std::string Observed(AgentHarness& h, const std::vector<std::string>& w) {
  if (w[0] == "leader") {
    const std::string l = h.LeaderHolder();
    return "leader " + (l.empty() ? std::string("none") : l);
  }
  if (StartsWith(w[0], "route@")) {
    bool valid = false;
    const std::string t = h.RouteWriteTarget(NodeIndex(h, w[0].substr(6)), &valid);
    return w[0] + " " + (valid && !t.empty() ? t : "none");
  }
  const int i = NodeIndex(h, w[0]);
  if (w.size() == 3 && w[1] == "follows") {
    auto up = h.pg(i).upstream();
    std::string of = "nobody";
    for (int k = 0; k < h.size(); ++k) {
      if (up && up->port == h.node(k).cfg.pg_port) of = h.node(k).name;
    }
    return w[0] + (h.pg(i).state() == FakePostgres::State::kStandby
                       ? " follows " + of
                       : std::string(" is not a standby"));
  }
  if (w.size() == 2 && w[1] == "demoted") {
    return w[0] + (h.pg(i).state() != FakePostgres::State::kPrimary ? " demoted" : " primary");
  }
  return w[0] + " " + StateName(h.pg(i).state());
}

void Check(AgentHarness& h, const std::string& expect) {
  for (const std::string& clause : Split(expect, ';')) {
    const auto w = Words(clause);
    if (w.empty()) continue;
    std::string want;
    for (const auto& x : w) want += (want.empty() ? "" : " ") + x;
    EXPECT_EQ(Observed(h, w), want);
  }
}

// Runs the beats from `zero` (clock time); the first beat may be at 0.
void RunBeats(AgentHarness& h, MonoMs zero, const std::vector<Beat>& beats) {
  for (const Beat& b : beats) {
    SCOPED_TRACE("at +" + std::to_string(b.at) + " ms: " + b.event + " | " + b.expect);
    ASSERT_GE(zero + b.at, h.clock().Now()) << "beats out of order";
    ASSERT_TRUE(h.Step(zero + b.at - h.clock().Now(), 5));
    Apply(h, b.event);
    ASSERT_TRUE(h.Settle());
    Check(h, b.expect);
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << h.Describe();
      return;
    }
  }
}

// Steps until node i has just renewed its lease (its last successful renewal
// is now): the scenario's zero.
MonoMs RightAfterARenewal(AgentHarness& h, int i) {
  EXPECT_TRUE(h.AdvanceUntil(
      [&] {
        const auto ok = h.node(i).store->KeepAliveTimes(true);
        return !ok.empty() && ok.back() == h.clock().Now();
      },
      1'000, 5));
  return h.clock().Now();
}

TEST(AgentScenario, APartitionedPrimaryFencesAtItsDeadlineAndTheReplicaTakesOverAtExpiry) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  const MonoMs zero = RightAfterARenewal(h, 0);
  RunBeats(h, zero,
           {
               {0, "partition n1", "n1 primary; leader n1; route@n1 n1; route@n2 n1"},
               // deadline = last renewal + ttl - margin = +1500
               {1495, "", "n1 primary; n2 standby; leader n1; route@n1 n1"},
               {1500 + 20, "", "n1 stopped; route@n1 none; leader n1; n2 standby"},
               // the lease expires in the store at +2000 (ttl after the renewal)
               {1995, "", "leader n1; n2 standby"},
               {2000 + 10, "", "leader n2; n2 primary; route@n2 n2"},
               {2500, "heal n1", "n1 stopped; n2 primary"},
               // the old primary is rewound onto n2's timeline and follows it
               {3500, "", "n1 follows n2; leader n2; route@n1 n2; route@n2 n2"},
           });
}

TEST(AgentScenario, APostgresCrashOnThePrimaryIsRestartedAndTheKeyStays) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  const MonoMs zero = RightAfterARenewal(h, 0);
  RunBeats(h, zero,
           {
               {0, "crash n1", "n1 stopped; leader n1"},
               {250 + 10, "", "n1 primary; leader n1; n2 follows n1"},
               {2500, "", "n1 primary; leader n1; n2 follows n1; route@n2 n1"},
           });
}

TEST(AgentScenario, AFrozenPrimaryNodeIsReplacedAndRejoinsAsAStandby) {
  AgentHarness h;
  ASSERT_TRUE(h.StartCluster()) << h.Describe();
  const MonoMs zero = RightAfterARenewal(h, 0);
  RunBeats(h, zero,
           {
               {0, "pause n1", "leader n1"},
               {1995, "", "leader n1; n2 standby"},
               {2000 + 10, "", "leader n2; n2 primary"},
               {3000, "resume n1", ""},
               // demoted at once (stopped, or already rewound and restarted)
               {3000 + 5, "", "n1 demoted; leader n2"},
               {4500, "", "n1 follows n2; route@n1 n2"},
           });
}

}  // namespace
}  // namespace tandem::agenttest
