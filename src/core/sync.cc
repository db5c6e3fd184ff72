// Synchronous replication: PlanSync (the one step the primary takes this
// cycle, widening the record before PostgreSQL's set and narrowing it after),
// SyncForPromotion, and synchronous_standby_names rendered and parsed.
// Pure: no I/O, no clock.
#include "core/sync.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "base/strings.h"

namespace tandem::core {
namespace {

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

bool IsStar(const PgSyncSet& s) {
  return s.names.size() == 1 && s.names[0] == kAnyStandby;
}

// a is a subset of b.
bool Subset(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return std::all_of(a.begin(), a.end(), [&](const std::string& x) { return Contains(b, x); });
}

std::vector<std::string> Union(const std::vector<std::string>& a,
                               const std::vector<std::string>& b) {
  std::set<std::string> u(a.begin(), a.end());
  u.insert(b.begin(), b.end());
  return {u.begin(), u.end()};
}

// The primary counts as a holder of every write it acknowledged when the
// record lists it (right after a failover, until the standbys catch up).
int SelfCount(const SyncRecord& rec, const std::string& self) {
  return Contains(rec.members, self) ? 1 : 0;
}

SyncStep Write(SyncRecord r, std::string reason) {
  SyncStep s;
  s.kind = SyncStep::Kind::kWriteRecord;
  s.record = std::move(r);
  s.reason = std::move(reason);
  return s;
}

SyncStep SetPg(PgSyncSet pg, std::string reason) {
  SyncStep s;
  s.kind = SyncStep::Kind::kSetPg;
  s.pg = std::move(pg);
  s.reason = std::move(reason);
  return s;
}

SyncStep None(std::string reason) {
  SyncStep s;
  s.reason = std::move(reason);
  return s;
}

std::string Describe(const SyncRecord& r) {
  return DescribeSync(r.members, r.quorum);
}
std::string Describe(const PgSyncSet& s) {
  return DescribeSync(s.names, s.quorum);
}

}  // namespace

std::string DescribeSync(const std::vector<std::string>& names, int quorum) {
  if (quorum == 0) return "none";
  std::string out = "ANY " + std::to_string(quorum) + " (";
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out + ")";
}

namespace {

// PlanSync's steps, in order. Each returns the step to take, or nullopt
// when the next one decides.

SyncStep PlanOff(const SyncInput& in) {
  const SyncRecord off{in.self, SyncMode::kOff, {}, 0};
  if (!in.record || !(*in.record == off)) {
    return Write(off,
                 "synchronous replication is off: recording that no standby is known to "
                 "hold every write");
  }
  if (!(in.pg == PgSyncSet{})) return SetPg({}, "synchronous replication is off");
  return None("asynchronous replication");
}

// 1. A new primary takes the record over. If it is listed, the record stays
//    true (it holds every write itself); otherwise it starts from nothing.
//    Then the record follows the configured mode.
std::optional<SyncStep> TakeOver(const SyncInput& in) {
  if (!in.record || in.record->leader != in.self || in.record->mode == SyncMode::kOff) {
    SyncRecord r{in.self, in.mode, {}, 0};
    if (in.record && in.record->mode != SyncMode::kOff && in.record->quorum > 0 &&
        Contains(in.record->members, in.self)) {
      r.members = in.record->members;
      r.quorum = in.record->quorum;
    }
    return Write(r, "recording the sync set as the new primary: " + Describe(r));
  }
  if (in.record->mode != in.mode) {
    SyncRecord r = *in.record;
    r.mode = in.mode;
    return Write(r, std::string("synchronous mode is now ") + SyncModeName(in.mode));
  }
  return std::nullopt;
}

// 2. Repair: PostgreSQL must not wait for other or fewer standbys than the
//    record counts (after a crash between two steps, or a hand edit).
std::optional<SyncStep> Repair(const SyncInput& in, const SyncRecord& rec, int self_count) {
  if (IsStar(in.pg)) {
    if (rec.quorum > 0) {
      SyncRecord r = rec;
      r.quorum = 0;
      return Write(r,
                   "PostgreSQL accepts any standby's acknowledgement: the record can count none");
    }
  } else if (!Subset(in.pg.names, rec.members) || in.pg.quorum + self_count < rec.quorum) {
    SyncRecord r = rec;
    r.members = Union(rec.members, in.pg.names);
    r.quorum = std::min(rec.quorum, in.pg.quorum + self_count);
    return Write(r, "PostgreSQL waits for " + Describe(in.pg) + ", which the record (" +
                        Describe(rec) + ") does not cover: widening the record to " + Describe(r));
  }
  return std::nullopt;
}

// 3. The target: PostgreSQL waits for every healthy standby.
PgSyncSet Target(const SyncInput& in) {
  std::vector<std::string> healthy;
  for (const SyncStandby& s : in.standbys) {
    if ((s.streaming || s.reconnecting) && s.eligible && !s.witness && s.name != in.self &&
        !Contains(healthy, s.name)) {
      healthy.push_back(s.name);
    }
  }
  std::sort(healthy.begin(), healthy.end());
  PgSyncSet target;
  if (!healthy.empty()) {
    target.names = healthy;
    target.quorum = std::clamp(in.count, 1, static_cast<int>(healthy.size()));
  } else if (in.mode == SyncMode::kStrict) {
    // Block rather than run alone: keep waiting for the standbys we had.
    target = in.pg.quorum > 0 ? in.pg : PgSyncSet{{kAnyStandby}, 1};
  }
  return target;
}

// PostgreSQL is not at the target: widen the record first, then move
// PostgreSQL.
SyncStep TowardTarget(const SyncRecord& rec, int self_count, const PgSyncSet& target) {
  if (IsStar(target)) {
    if (rec.quorum > 0) {
      SyncRecord r = rec;
      r.quorum = 0;
      return Write(r, "no standby to wait for in strict mode: the record can count none");
    }
  } else if (!Subset(target.names, rec.members)) {
    SyncRecord r = rec;
    r.members = Union(rec.members, target.names);
    return Write(
        r, "adding standbys to the sync record before PostgreSQL waits for them: " + Describe(r));
  } else if (target.quorum + self_count < rec.quorum) {
    SyncRecord r = rec;
    r.quorum = target.quorum + self_count;
    return Write(r, "lowering the record's quorum before PostgreSQL waits for fewer standbys: " +
                        Describe(r));
  }
  if (target.quorum == 0) {
    return SetPg(target,
                 "no healthy standby: writes continue without synchronous replication "
                 "(quorum mode) and no automatic failover is possible");
  }
  return SetPg(target, "PostgreSQL now waits for " + Describe(target));
}

// 4. PostgreSQL is at the target. Narrow the record to it once enough of
//    those standbys flushed past a position read from the primary: then
//    they hold every write acknowledged before, and PostgreSQL's set covers
//    every write after.
SyncStep Narrow(const SyncInput& in, const SyncRecord& rec) {
  if (IsStar(in.pg)) return None("strict mode: writes wait for any standby to connect");
  const SyncRecord want{in.self, in.mode, in.pg.names, in.pg.quorum};
  if (rec == want) return None("synchronous standbys: " + Describe(rec));
  if (want.quorum == 0) {
    return Write(want, "no synchronous standby: the record can count none (no automatic failover)");
  }
  int caught_up = 0;
  for (const SyncStandby& s : in.standbys) {
    if (Contains(want.members, s.name) && !s.reconnecting && !s.witness &&
        s.flush_lsn >= in.primary_flush_lsn) {
      ++caught_up;
    }
  }
  if (caught_up >= want.quorum) {
    return Write(want, std::to_string(caught_up) + " standby(s) flushed past " +
                           FormatLsn(in.primary_flush_lsn) + ": the record now counts " +
                           Describe(want));
  }
  return None("waiting for the standbys to flush past " + FormatLsn(in.primary_flush_lsn) +
              " before the record counts " + Describe(want) + " (it counts " + Describe(rec) + ")");
}

}  // namespace

SyncStep PlanSync(const SyncInput& in) {
  if (in.mode == SyncMode::kOff) return PlanOff(in);
  if (auto step = TakeOver(in)) return *step;
  const SyncRecord& rec = *in.record;
  const int self_count = SelfCount(rec, in.self);
  if (auto step = Repair(in, rec, self_count)) return *step;
  const PgSyncSet target = Target(in);
  if (!(in.pg == target)) return TowardTarget(rec, self_count, target);
  return Narrow(in, rec);
}

PromotionSync SyncForPromotion(const std::optional<SyncRecord>& record, const std::string& self,
                               SyncMode mode, int count) {
  PromotionSync p;
  if (mode == SyncMode::kOff) {
    if (record && record->mode != SyncMode::kOff)
      p.record = SyncRecord{self, SyncMode::kOff, {}, 0};
    return p;
  }
  const bool listed = record && record->mode != SyncMode::kOff && record->quorum > 0 &&
                      Contains(record->members, self);
  if (listed) {
    // We hold every acknowledged write and count as one holder: the others
    // need only quorum - 1 acknowledgements for the record to stay true. The
    // record is rewritten with us as its writer (same members and quorum).
    std::vector<std::string> others;
    for (const std::string& m : record->members) {
      if (m != self) others.push_back(m);
    }
    int k = record->quorum - 1;
    if (mode == SyncMode::kStrict) k = std::max(k, 1);
    // The record's writer must be the primary whose writes it describes.
    p.record = *record;
    p.record->leader = self;
    if (k == 0) return p;
    if (others.empty()) {
      p.pg = PgSyncSet{{kAnyStandby}, 1};
    } else {
      // A true record lists at least quorum members, so others has k of them.
      p.pg = PgSyncSet{others, std::min<int>(k, static_cast<int>(others.size()))};
    }
    return p;
  }
  // Not listed (or no record): we may hold writes no standby has, and the
  // standbys may miss writes we hold. Claim nothing until they catch up.
  (void)count;
  p.record = SyncRecord{self, mode, {}, 0};
  if (mode == SyncMode::kStrict) p.pg = PgSyncSet{{kAnyStandby}, 1};
  return p;
}

std::string RenderSyncStandbyNames(const PgSyncSet& set) {
  if (set.quorum <= 0 || set.names.empty()) return "";
  std::string out = "ANY " + std::to_string(set.quorum) + " (";
  for (size_t i = 0; i < set.names.size(); ++i) {
    if (i) out += ", ";
    out += set.names[i] == kAnyStandby ? std::string(kAnyStandby) : "\"" + set.names[i] + "\"";
  }
  return out + ")";
}

namespace {

// A cursor over synchronous_standby_names' text.
struct Cursor {
  const std::string& text;
  size_t i = 0;
  void Skip() {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  }
  std::string Word() {
    Skip();
    size_t b = i;
    while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) ||
                               text[i] == '_' || text[i] == '-' || text[i] == '.')) {
      ++i;
    }
    return text.substr(b, i - b);
  }
  bool At(char c) const { return i < text.size() && text[i] == c; }
};

// A count PostgreSQL accepts before the list: up to 4 digits.
bool IsCount(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), ::isdigit) && s.size() <= 4;
}

// The head: "ANY n", "FIRST n" or "n" before a parenthesised list, or none
// (a bare list, one standby). Sets *quorum and *list_form; false when the
// text is not a valid head.
bool ParseHead(Cursor& c, int* quorum, bool* list_form) {
  const size_t start = c.i;
  std::string first = c.Word();
  std::string upper = first;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  *quorum = 1;
  *list_form = false;
  if (upper == "ANY" || upper == "FIRST") {
    std::string n = c.Word();
    if (!IsCount(n)) return false;
    *quorum = std::stoi(n);
    *list_form = true;
  } else if (IsCount(first)) {
    c.Skip();
    if (c.At('(')) {
      *quorum = std::stoi(first);
      *list_form = true;
    } else {
      c.i = start;
    }
  } else {
    c.i = start;
  }
  return true;
}

// The comma-separated names: bare words, "quoted names" or *.
std::optional<std::set<std::string>> ParseNames(Cursor& c) {
  std::set<std::string> names;
  while (true) {
    c.Skip();
    std::string name;
    if (c.At('"')) {
      size_t end = c.text.find('"', c.i + 1);
      if (end == std::string::npos) return std::nullopt;
      name = c.text.substr(c.i + 1, end - c.i - 1);
      c.i = end + 1;
    } else if (c.At('*')) {
      name = kAnyStandby;
      ++c.i;
    } else {
      name = c.Word();
    }
    if (name.empty()) return std::nullopt;
    names.insert(name);
    c.Skip();
    if (c.At(',')) {
      ++c.i;
      continue;
    }
    return names;
  }
}

}  // namespace

std::optional<PgSyncSet> ParseSyncStandbyNames(const std::string& text) {
  Cursor c{text};
  c.Skip();
  if (c.i == text.size()) return PgSyncSet{};
  int quorum = 1;
  bool list_form = false;
  if (!ParseHead(c, &quorum, &list_form)) return std::nullopt;
  c.Skip();
  if (list_form) {
    if (!c.At('(')) return std::nullopt;
    ++c.i;
  }
  auto names = ParseNames(c);
  if (!names) return std::nullopt;
  if (list_form) {
    if (!c.At(')')) return std::nullopt;
    ++c.i;
  }
  c.Skip();
  if (c.i != text.size()) return std::nullopt;
  PgSyncSet out;
  out.names.assign(names->begin(), names->end());
  out.quorum = quorum;
  return out;
}

}  // namespace tandem::core
