// AlarmKeeper and the alarm records on an in-memory store: raised once with
// the time and node, cleared into the history, no store access while nothing
// changes, two nodes never writing one key, the history bounded.
#include <gtest/gtest.h>

#include "agent/alarms.h"
#include "dcs/memory_dcs.h"

namespace tandem::agent {
namespace {

using core::AlarmCondition;
using core::AlarmId;

const std::string kPrefix = "/tandem/c/";

// A MemoryDcs that counts the calls reaching it.
class CountingDcs : public dcs::Dcs {
 public:
  explicit CountingDcs(const Clock& clock) : mem_(clock) {}
  void SetUnavailable(bool u) { mem_.SetUnavailable(u); }
  Result<std::optional<dcs::KeyValue>> Get(const std::string& k) override {
    ++reads;
    return mem_.Get(k);
  }
  Result<dcs::RangeResult> GetPrefix(const std::string& p) override {
    ++reads;
    return mem_.GetPrefix(p);
  }
  Result<dcs::Revision> Put(const std::string& k, const std::string& v,
                            dcs::LeaseId l = 0) override {
    ++writes;
    return mem_.Put(k, v, l);
  }
  Result<dcs::Revision> Delete(const std::string& k) override {
    ++writes;
    return mem_.Delete(k);
  }
  Result<dcs::TxnResult> Txn(const std::vector<dcs::Compare>& c, const std::vector<dcs::Op>& s,
                             const std::vector<dcs::Op>& f) override {
    ++writes;
    return mem_.Txn(c, s, f);
  }
  Result<dcs::LeaseGrant> GrantLease(int64_t ttl) override { return mem_.GrantLease(ttl); }
  Result<int64_t> KeepAlive(dcs::LeaseId l) override { return mem_.KeepAlive(l); }
  Status Revoke(dcs::LeaseId l) override { return mem_.Revoke(l); }
  Result<bool> WaitForChange(const std::string& p, dcs::Revision r, int64_t t) override {
    return mem_.WaitForChange(p, r, t);
  }
  Result<std::vector<dcs::Member>> MemberList() override { return mem_.MemberList(); }
  Result<dcs::Member> MemberAdd(const std::vector<std::string>& u, bool l) override {
    return mem_.MemberAdd(u, l);
  }
  Status MemberPromote(uint64_t id) override { return mem_.MemberPromote(id); }
  Status MemberRemove(uint64_t id) override { return mem_.MemberRemove(id); }
  int reads = 0, writes = 0;

 private:
  dcs::MemoryDcs mem_;
};

AlarmOwnership Own(const std::string& self, bool steward) {
  AlarmOwnership o;
  o.self = self;
  o.steward = steward;
  o.registered = {"n1", "n2", "n3"};
  return o;
}

TEST(AlarmRecord, EncodesAndDecodesEveryField) {
  AlarmRecord r;
  r.id = 1002;
  r.name = "replication-failure";
  r.severity = "major";
  r.node = "n2";
  r.detail = "not streaming";
  r.raised_ms = 1234;
  r.cleared_ms = 5678;
  r.raised_by = "n2";
  auto back = DecodeAlarm(EncodeAlarm(r));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->id, 1002);
  EXPECT_EQ(back->node, "n2");
  EXPECT_EQ(back->detail, "not streaming");
  EXPECT_EQ(back->raised_ms, 1234);
  EXPECT_EQ(back->cleared_ms, 5678);
  EXPECT_EQ(back->raised_by, "n2");
  EXPECT_FALSE(DecodeAlarm("{}").ok());
  EXPECT_FALSE(DecodeAlarm("not json").ok());
}

TEST(AlarmOwnership, ANodeOwnsItsAlarmsTheStewardTheClusterOnesAndThoseOfRemovedNodes) {
  auto rec = [](int id, const std::string& node) {
    AlarmRecord r;
    r.id = id;
    r.node = node;
    return r;
  };
  const AlarmRecord own = rec(1002, "n2"), other = rec(1002, "n3"), cluster = rec(1007, ""),
                    removed = rec(1002, "n9");
  EXPECT_TRUE(Own("n2", false).Owns(own));
  EXPECT_FALSE(Own("n2", false).Owns(other));
  EXPECT_FALSE(Own("n2", false).Owns(cluster));
  EXPECT_FALSE(Own("n2", false).Owns(removed));
  EXPECT_TRUE(Own("n1", true).Owns(cluster));
  EXPECT_TRUE(Own("n1", true).Owns(removed));
  EXPECT_FALSE(Own("n1", true).Owns(other));
}

TEST(AlarmKeeper, RaisesOnceWithTimeAndNodeAndClearsIntoTheHistory) {
  ManualClock clock;
  CountingDcs store(clock);
  AlarmKeeper keeper(kPrefix);
  const std::vector<AlarmCondition> repl = {{AlarmId::kReplicationFailure, "n2", "not streaming"}};
  keeper.Update(store, repl, Own("n2", false), 1'000, 0);
  auto s = ReadAlarms(store, keeper.keys(), true);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->active.size(), 1u);
  EXPECT_EQ(s->active[0].id, 1002);
  EXPECT_EQ(s->active[0].name, "replication-failure");
  EXPECT_EQ(s->active[0].node, "n2");
  EXPECT_EQ(s->active[0].raised_ms, 1'000);
  EXPECT_EQ(keeper.RaisedHere().size(), 1u);
  // The detail changes (the lag grows): not a new raise, no write.
  const int writes = store.writes;
  keeper.Update(store, {{AlarmId::kReplicationFailure, "n2", "other"}}, Own("n2", false), 2'000,
                250);
  EXPECT_EQ(store.writes, writes);
  keeper.Update(store, {}, Own("n2", false), 3'000, 500);
  s = ReadAlarms(store, keeper.keys(), true);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->active.empty());
  ASSERT_EQ(s->history.size(), 1u);
  EXPECT_EQ(s->history[0].raised_ms, 1'000);
  EXPECT_EQ(s->history[0].cleared_ms, 3'000);
  EXPECT_TRUE(keeper.RaisedHere().empty());
}

TEST(AlarmKeeper, NothingChangedMeansNoStoreAccessUntilTheResync) {
  ManualClock clock;
  CountingDcs store(clock);
  AlarmKeeper keeper(kPrefix);
  const std::vector<AlarmCondition> cert = {{AlarmId::kCertificateExpiring, "n1", "12 days"}};
  keeper.Update(store, cert, Own("n1", true), 1'000, 0);
  const int reads = store.reads, writes = store.writes;
  for (MonoMs t = 250; t < AlarmKeeper::kResyncMs; t += 250) {
    keeper.Update(store, cert, Own("n1", true), 1'000 + t, t);
  }
  EXPECT_EQ(store.reads, reads);
  EXPECT_EQ(store.writes, writes);
  keeper.Update(store, cert, Own("n1", true), 1'000 + AlarmKeeper::kResyncMs,
                AlarmKeeper::kResyncMs);
  EXPECT_EQ(store.reads, reads + 1) << "the periodic resync reads";
  EXPECT_EQ(store.writes, writes) << "and writes nothing";
}

TEST(AlarmKeeper, ANewStewardAdoptsTheClusterAlarmsAndNeverRaisesThemTwice) {
  ManualClock clock;
  CountingDcs store(clock);
  AlarmKeeper old_steward(kPrefix), new_steward(kPrefix);
  const std::vector<AlarmCondition> comm = {{AlarmId::kCommunicationFailure, "n3", "gone"}};
  old_steward.Update(store, comm, Own("n1", true), 1'000, 0);
  new_steward.Update(store, comm, Own("n2", true), 5'000, 0);
  auto s = ReadAlarms(store, new_steward.keys(), true);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->active.size(), 1u);
  EXPECT_EQ(s->active[0].raised_ms, 1'000) << "raised once, at the first time";
  EXPECT_EQ(s->active[0].raised_by, "n1");
  EXPECT_EQ(new_steward.RaisedHere().size(), 1u);
  // A node that is not the steward leaves the cluster alarms alone.
  AlarmKeeper bystander(kPrefix);
  bystander.Update(store, {}, Own("n3", false), 6'000, 0);
  s = ReadAlarms(store, bystander.keys(), false);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->active.size(), 1u);
  new_steward.Update(store, {}, Own("n2", true), 7'000, 250);
  s = ReadAlarms(store, new_steward.keys(), false);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->active.empty());
}

TEST(AlarmKeeper, TheHistoryKeepsTheNewestEntriesOnly) {
  ManualClock clock;
  CountingDcs store(clock);
  AlarmKeeper keeper(kPrefix);
  const std::vector<AlarmCondition> cert = {{AlarmId::kCertificateInvalid, "n1", "x"}};
  for (int i = 0; i < static_cast<int>(kAlarmHistoryLimit) + 5; ++i) {
    keeper.Update(store, cert, Own("n1", false), 10'000 + 2 * i, 0);
    keeper.Update(store, {}, Own("n1", false), 10'001 + 2 * i, 0);
  }
  auto s = ReadAlarms(store, keeper.keys(), true);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->history.size(), kAlarmHistoryLimit);
  EXPECT_EQ(s->history.front().raised_ms, 10'010) << "the 5 oldest are gone";
}

TEST(AlarmKeeper, AStoreThatCannotBeReachedIsTriedAgainNextCycle) {
  ManualClock clock;
  CountingDcs store(clock);
  store.SetUnavailable(true);
  AlarmKeeper keeper(kPrefix);
  const std::vector<AlarmCondition> cert = {{AlarmId::kCertificateInvalid, "n1", "x"}};
  keeper.Update(store, cert, Own("n1", false), 1'000, 0);
  store.SetUnavailable(false);
  keeper.Update(store, cert, Own("n1", false), 2'000, 250);
  auto s = ReadAlarms(store, keeper.keys(), false);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->active.size(), 1u);
  EXPECT_EQ(s->active[0].raised_ms, 2'000);
}

}  // namespace
}  // namespace tandem::agent
