// The cluster event log in the store (agent/events.h) on an in-memory store:
// the record's JSON, one compare-guarded write per event, the order the
// store's revisions give (the same for every reader, whatever the nodes'
// clocks say), pruning to the cap, malformed records skipped, and the alarm
// keeper's events: one per raise and clear, nothing at all while idle.
#include <gtest/gtest.h>

#include "agent/alarms.h"
#include "agent/events.h"
#include "dcs/memory_dcs.h"

namespace tandem::agent {
namespace {

const std::string kPrefix = "/tandem/c/";

// A MemoryDcs that counts the calls reaching it.
class CountingDcs : public dcs::Dcs {
 public:
  explicit CountingDcs(const Clock& clock) : mem_(clock) {}
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
  void SetUnavailable(bool u) { mem_.SetUnavailable(u); }
  int reads = 0, writes = 0;

 private:
  dcs::MemoryDcs mem_;
};

core::Event Ev(const std::string& node, int64_t time_ms, const std::string& message) {
  core::Event e;
  e.node = node;
  e.time_ms = time_ms;
  e.kind = "leader-change";
  e.message = message;
  e.fields = {{"timeline", "3"}};
  return e;
}

TEST(EventRecord, EncodesAndDecodesEveryFieldButTheSeq) {
  core::Event e = Ev("n1", 1234, "n1 became primary (timeline 3)");
  e.seq = 99;
  auto back = DecodeEvent(EncodeEvent(e));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->seq, 0);
  EXPECT_EQ(back->node, "n1");
  EXPECT_EQ(back->time_ms, 1234);
  EXPECT_EQ(back->kind, "leader-change");
  EXPECT_EQ(back->message, "n1 became primary (timeline 3)");
  EXPECT_EQ(back->fields.at("timeline"), "3");
  EXPECT_FALSE(DecodeEvent("{}").ok());
  EXPECT_FALSE(DecodeEvent("not json").ok());
}

TEST(EventRecord, ApiFormHasTheAgreedFields) {
  core::Event e = Ev("node1", 1796328000123, "node1 became primary (timeline 4)");
  e.seq = 17;
  auto j = EventJson(e);
  EXPECT_EQ(j["seq"], 17);
  EXPECT_EQ(j["time"], "2026-12-03T20:00:00.123Z");
  EXPECT_EQ(j["node"], "node1");
  EXPECT_EQ(j["kind"], "leader-change");
  EXPECT_EQ(j["message"], "node1 became primary (timeline 4)");
  EXPECT_EQ(j["fields"]["timeline"], "3");
}

TEST(EventLog, OneWriteEachAndTheStoreOrderForEveryReader) {
  ManualClock clock;
  CountingDcs store(clock);
  // n2's clock is behind n1's: the order is the store's, not the clocks'.
  ASSERT_TRUE(AppendEvent(store, kPrefix, Ev("n1", 5000, "first")));
  ASSERT_TRUE(AppendEvent(store, kPrefix, Ev("n2", 1000, "second")));
  ASSERT_TRUE(AppendEvent(store, kPrefix, Ev("n1", 5000, "third")));  // same ms, same node
  auto read = ReadEvents(store, kPrefix);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 3u);
  EXPECT_EQ((*read)[0].message, "first");
  EXPECT_EQ((*read)[1].message, "second");
  EXPECT_EQ((*read)[2].message, "third");
  EXPECT_LT((*read)[0].seq, (*read)[1].seq);
  EXPECT_LT((*read)[1].seq, (*read)[2].seq);
  const int writes = store.writes;
  ASSERT_TRUE(AppendEvent(store, kPrefix, Ev("n3", 1, "fourth")));
  EXPECT_EQ(store.writes, writes + 1) << "under the cap an event is one write";
}

TEST(EventLog, PrunedToTheCapOldestFirst) {
  ManualClock clock;
  CountingDcs store(clock);
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(AppendEvent(store, kPrefix, Ev("n1", i, "e" + std::to_string(i)), 3));
  }
  auto read = ReadEvents(store, kPrefix);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 3u);
  EXPECT_EQ((*read)[0].message, "e4");
  EXPECT_EQ((*read)[2].message, "e6");
}

TEST(EventLog, MalformedRecordsAreSkippedAndAnUnreachableStoreIsNoCrash) {
  ManualClock clock;
  CountingDcs store(clock);
  ASSERT_TRUE(store.Put(EventsPrefix(kPrefix) + "junk", "{not json").ok());
  ASSERT_TRUE(AppendEvent(store, kPrefix, Ev("n1", 1, "ok")));
  auto read = ReadEvents(store, kPrefix);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 1u);
  store.SetUnavailable(true);
  EXPECT_FALSE(AppendEvent(store, kPrefix, Ev("n1", 2, "lost")));
  EXPECT_FALSE(ReadEvents(store, kPrefix).ok());
}

AlarmOwnership Own(const std::string& self) {
  AlarmOwnership o;
  o.self = self;
  o.steward = true;
  o.registered = {"n1", "n2"};
  return o;
}

TEST(EventLog, AlarmsRaiseAndClearOneEventEachAndNothingAtIdle) {
  ManualClock clock;
  CountingDcs store(clock);
  AlarmKeeper keeper(kPrefix);
  const std::vector<core::AlarmCondition> wanted = {
      {core::AlarmId::kReplicationFailure, "n1", "not streaming"}};
  keeper.Update(store, wanted, Own("n1"), 1000, clock.Now());
  auto read = ReadEvents(store, kPrefix);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ((*read)[0].kind, "alarm-raised");
  EXPECT_EQ((*read)[0].node, "n1");
  EXPECT_NE((*read)[0].message.find("not streaming"), std::string::npos);
  // Idle: the same set, cycle after cycle: no store call at all.
  const int reads = store.reads, writes = store.writes;
  for (int i = 0; i < 50; ++i) {
    clock.Advance(100);
    keeper.Update(store, wanted, Own("n1"), 1000 + i, clock.Now());
  }
  EXPECT_EQ(store.reads, reads);
  EXPECT_EQ(store.writes, writes);
  keeper.Update(store, {}, Own("n1"), 9000, clock.Now());
  read = ReadEvents(store, kPrefix);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[1].kind, "alarm-cleared");
  EXPECT_EQ((*read)[1].time_ms, 9000);
}

}  // namespace
}  // namespace tandem::agent
