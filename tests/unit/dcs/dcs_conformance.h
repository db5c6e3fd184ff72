// Semantic checks every Dcs implementation must pass. Shared by the
// MemoryDcs unit test and the EtcdDcs integration test so the fake and the
// real store are held to the same contract. Each check takes a key prefix
// that no other check uses (so they can share one store).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "dcs/dcs.h"

namespace tandem::dcs::conformance {

inline void GetPutDelete(Dcs& dcs, const std::string& p) {
  const std::string k = p + "key";
  auto missing = dcs.Get(k);
  ASSERT_TRUE(missing.ok()) << missing.error().ToString();
  EXPECT_FALSE(missing->has_value());

  auto r1 = dcs.Put(k, "v1");
  ASSERT_TRUE(r1.ok()) << r1.error().ToString();
  EXPECT_GT(*r1, 0);
  auto g1 = dcs.Get(k);
  ASSERT_TRUE(g1.ok());
  ASSERT_TRUE(g1->has_value());
  EXPECT_EQ((*g1)->key, k);
  EXPECT_EQ((*g1)->value, "v1");
  EXPECT_EQ((*g1)->create_revision, *r1);
  EXPECT_EQ((*g1)->mod_revision, *r1);
  EXPECT_EQ((*g1)->lease, 0);

  auto r2 = dcs.Put(k, "v2");
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(*r2, *r1 + 1);
  auto g2 = dcs.Get(k);
  ASSERT_TRUE(g2.ok() && g2->has_value());
  EXPECT_EQ((*g2)->value, "v2");
  EXPECT_EQ((*g2)->create_revision, *r1);
  EXPECT_EQ((*g2)->mod_revision, *r2);

  // Empty values and binary bytes survive the round trip.
  const std::string binary("\x00\x01\xff\xfe zero", 9);
  ASSERT_TRUE(dcs.Put(p + "bin", binary).ok());
  ASSERT_TRUE(dcs.Put(p + "empty", "").ok());
  auto gb = dcs.Get(p + "bin");
  ASSERT_TRUE(gb.ok() && gb->has_value());
  EXPECT_EQ((*gb)->value, binary);
  auto ge = dcs.Get(p + "empty");
  ASSERT_TRUE(ge.ok() && ge->has_value());
  EXPECT_EQ((*ge)->value, "");

  auto d = dcs.Delete(k);
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  EXPECT_GT(*d, *r2);
  auto g3 = dcs.Get(k);
  ASSERT_TRUE(g3.ok());
  EXPECT_FALSE(g3->has_value());
  // Deleting a missing key is not an error and changes nothing.
  auto d2 = dcs.Delete(k);
  ASSERT_TRUE(d2.ok());
  EXPECT_EQ(*d2, *d);

  auto empty = dcs.Get("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidArgument);
}

inline void Prefix(Dcs& dcs, const std::string& p) {
  ASSERT_TRUE(dcs.Put(p + "dir/b", "2").ok());
  ASSERT_TRUE(dcs.Put(p + "dir/a", "1").ok());
  ASSERT_TRUE(dcs.Put(p + "dir/c/d", "3").ok());
  ASSERT_TRUE(dcs.Put(p + "dir0", "outside").ok());
  auto last = dcs.Put(p + "dirx", "outside");
  ASSERT_TRUE(last.ok());

  auto r = dcs.GetPrefix(p + "dir/");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(r->kvs.size(), 3u);
  EXPECT_EQ(r->kvs[0].key, p + "dir/a");
  EXPECT_EQ(r->kvs[1].key, p + "dir/b");
  EXPECT_EQ(r->kvs[2].key, p + "dir/c/d");
  EXPECT_EQ(r->kvs[2].value, "3");
  EXPECT_GE(r->revision, *last);

  auto none = dcs.GetPrefix(p + "nothing/");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->kvs.empty());
  EXPECT_GE(none->revision, *last);

  // A prefix ending in 0xff: the range end must carry into the byte before.
  const std::string ff = p + "ff\xff";
  ASSERT_TRUE(dcs.Put(ff + "\x01", "in").ok());
  ASSERT_TRUE(dcs.Put(ff + "\xff", "in").ok());
  ASSERT_TRUE(dcs.Put(p + "fg", "out").ok());
  auto rf = dcs.GetPrefix(ff);
  ASSERT_TRUE(rf.ok());
  ASSERT_EQ(rf->kvs.size(), 2u);
  EXPECT_EQ(rf->kvs[0].key, ff + "\x01");

  // DeletePrefix inside a txn removes exactly the prefix.
  auto t = dcs.Txn({}, {Op::DeletePrefix(p + "dir/")});
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  EXPECT_TRUE(t->succeeded);
  auto after = dcs.GetPrefix(p + "dir");
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->kvs.size(), 2u);
  EXPECT_EQ(after->kvs[0].key, p + "dir0");
  EXPECT_EQ(after->kvs[1].key, p + "dirx");
}

inline void TxnCreateRace(Dcs& dcs, const std::string& p) {
  const std::string leader = p + "leader";
  auto a = dcs.Txn({Compare::CreateRevisionIs(leader, 0)}, {Op::Put(leader, "node1")},
                   {Op::Put(p + "lost/node1", "1")});
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_TRUE(a->succeeded);
  auto b = dcs.Txn({Compare::CreateRevisionIs(leader, 0)}, {Op::Put(leader, "node2")},
                   {Op::Put(p + "lost/node2", "1")});
  ASSERT_TRUE(b.ok()) << b.error().ToString();
  EXPECT_FALSE(b->succeeded);               // a failed compare is not an error
  EXPECT_EQ(b->revision, a->revision + 1);  // the failure op was applied
  auto g = dcs.Get(leader);
  ASSERT_TRUE(g.ok() && g->has_value());
  EXPECT_EQ((*g)->value, "node1");
  EXPECT_EQ((*g)->create_revision, a->revision);
  auto lost = dcs.GetPrefix(p + "lost/");
  ASSERT_TRUE(lost.ok());
  ASSERT_EQ(lost->kvs.size(), 1u);
  EXPECT_EQ(lost->kvs[0].key, p + "lost/node2");

  // A failed compare with no failure ops changes nothing.
  auto c = dcs.Txn({Compare::CreateRevisionIs(leader, 0)}, {Op::Put(leader, "node3")});
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->succeeded);
  EXPECT_EQ(c->revision, b->revision);

  // Many threads race for a fresh key: exactly one wins.
  const std::string race = p + "race";
  std::atomic<int> wins{0}, losses{0}, errors{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto r = dcs.Txn({Compare::CreateRevisionIs(race, 0)}, {Op::Put(race, std::to_string(i))});
      if (!r.ok()) {
        ++errors;
      } else if (r->succeeded) {
        ++wins;
      } else {
        ++losses;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(losses.load(), 7);
  EXPECT_EQ(errors.load(), 0);
}

inline void TxnModRevisionCas(Dcs& dcs, const std::string& p) {
  const std::string k = p + "cas";
  auto r = dcs.Put(k, "v1");
  ASSERT_TRUE(r.ok());
  auto ok = dcs.Txn({Compare::ModRevisionIs(k, *r)}, {Op::Put(k, "v2")});
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_TRUE(ok->succeeded);
  EXPECT_EQ(ok->revision, *r + 1);
  auto stale = dcs.Txn({Compare::ModRevisionIs(k, *r)}, {Op::Put(k, "v3")});
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(stale->succeeded);
  auto g = dcs.Get(k);
  ASSERT_TRUE(g.ok() && g->has_value());
  EXPECT_EQ((*g)->value, "v2");
  EXPECT_EQ((*g)->mod_revision, ok->revision);

  // Value compares, including "all compares must hold" and the missing-key rule.
  auto v = dcs.Txn({Compare::ValueIs(k, "v2"), Compare::ModRevisionIs(k, ok->revision)},
                   {Op::Put(k, "v4")});
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->succeeded);
  auto v2 = dcs.Txn({Compare::ValueIs(k, "v4"), Compare::ModRevisionIs(k, 1)}, {Op::Put(k, "x")});
  ASSERT_TRUE(v2.ok());
  EXPECT_FALSE(v2->succeeded);
  auto vm = dcs.Txn({Compare::ValueIs(p + "missing", "")}, {Op::Put(k, "x")});
  ASSERT_TRUE(vm.ok());
  EXPECT_FALSE(vm->succeeded);
  auto mm = dcs.Txn({Compare::ModRevisionIs(p + "missing", 0), Compare::LeaseIs(p + "missing", 0)},
                    {Op::Delete(k)});
  ASSERT_TRUE(mm.ok());
  EXPECT_TRUE(mm->succeeded);
  auto gone = dcs.Get(k);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
}

inline void Leases(Dcs& dcs, const std::string& p) {
  auto l = dcs.GrantLease(5);
  ASSERT_TRUE(l.ok()) << l.error().ToString();
  EXPECT_NE(l->id, 0);
  EXPECT_GE(l->ttl_seconds, 5);
  const std::string k = p + "leased";
  ASSERT_TRUE(dcs.Put(k, "v", l->id).ok());
  auto g = dcs.Get(k);
  ASSERT_TRUE(g.ok() && g->has_value());
  EXPECT_EQ((*g)->lease, l->id);

  auto lc = dcs.Txn({Compare::LeaseIs(k, l->id)}, {Op::Put(p + "lease-ok", "1")});
  ASSERT_TRUE(lc.ok());
  EXPECT_TRUE(lc->succeeded);
  auto lw = dcs.Txn({Compare::LeaseIs(k, l->id + 1)}, {Op::Put(p + "lease-bad", "1")});
  ASSERT_TRUE(lw.ok());
  EXPECT_FALSE(lw->succeeded);

  auto ka = dcs.KeepAlive(l->id);
  ASSERT_TRUE(ka.ok()) << ka.error().ToString();
  EXPECT_GE(*ka, 5);

  // Revoking deletes the key; the lease is then gone for every call.
  ASSERT_TRUE(dcs.Revoke(l->id).ok());
  auto g2 = dcs.Get(k);
  ASSERT_TRUE(g2.ok());
  EXPECT_FALSE(g2->has_value());
  auto ka2 = dcs.KeepAlive(l->id);
  ASSERT_FALSE(ka2.ok());
  EXPECT_EQ(ka2.error().code(), ErrorCode::kNotFound) << ka2.error().ToString();
  auto rv2 = dcs.Revoke(l->id);
  ASSERT_FALSE(rv2.ok());
  EXPECT_EQ(rv2.error().code(), ErrorCode::kNotFound);
  auto put = dcs.Put(k, "v", l->id);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().code(), ErrorCode::kNotFound) << put.error().ToString();
  auto txn = dcs.Txn({Compare::CreateRevisionIs(k, 0)}, {Op::Put(k, "v", l->id)});
  ASSERT_FALSE(txn.ok());
  EXPECT_EQ(txn.error().code(), ErrorCode::kNotFound);

  // A key moved from a lease to no lease survives that lease's revocation.
  auto l2 = dcs.GrantLease(5);
  ASSERT_TRUE(l2.ok());
  ASSERT_TRUE(dcs.Put(k, "v", l2->id).ok());
  ASSERT_TRUE(dcs.Put(k, "v2").ok());
  ASSERT_TRUE(dcs.Revoke(l2->id).ok());
  auto g3 = dcs.Get(k);
  ASSERT_TRUE(g3.ok() && g3->has_value());
  EXPECT_EQ((*g3)->lease, 0);
}

// blocked(): returns once the calling test's other thread is blocked in
// WaitForChange (on a ManualClock: the clock has a waiter; on a real store: a
// short pause). Timeouts are each implementation's own test: they pass on
// its clock.
inline void WaitForChange(Dcs& dcs, const std::string& p, const std::function<void()>& blocked) {
  const std::string dir = p + "watched/";
  auto base = dcs.Put(dir + "a", "1");
  ASSERT_TRUE(base.ok());
  // A change already in the past is reported at once.
  auto past = dcs.WaitForChange(dir, *base - 1, 5000);
  ASSERT_TRUE(past.ok()) << past.error().ToString();
  EXPECT_TRUE(*past);

  // A change outside the prefix does not count.
  auto outside = dcs.Put(p + "unwatched", "x");
  ASSERT_TRUE(outside.ok());
  auto none = dcs.WaitForChange(dir, *outside, 0);
  ASSERT_TRUE(none.ok()) << none.error().ToString();
  EXPECT_FALSE(*none);
  // Nor does the change the caller has already seen.
  auto seen = dcs.WaitForChange(dir, *base, 0);
  ASSERT_TRUE(seen.ok()) << seen.error().ToString();
  EXPECT_FALSE(*seen);

  // A put from another thread wakes the waiter (whose timeout never passes).
  auto rev = dcs.GetPrefix(dir);
  ASSERT_TRUE(rev.ok());
  std::atomic<bool> put_done{false};
  std::thread writer([&] {
    blocked();
    EXPECT_TRUE(dcs.Put(dir + "b", "2").ok());
    put_done = true;
  });
  auto woke = dcs.WaitForChange(dir, rev->revision, 600'000);
  writer.join();
  ASSERT_TRUE(woke.ok()) << woke.error().ToString();
  EXPECT_TRUE(*woke);
  EXPECT_TRUE(put_done.load());

  // A delete is a change too.
  auto before_delete = dcs.GetPrefix(dir);
  ASSERT_TRUE(before_delete.ok());
  ASSERT_TRUE(dcs.Delete(dir + "a").ok());
  auto del = dcs.WaitForChange(dir, before_delete->revision, 5000);
  ASSERT_TRUE(del.ok());
  EXPECT_TRUE(*del);
}

}  // namespace tandem::dcs::conformance
