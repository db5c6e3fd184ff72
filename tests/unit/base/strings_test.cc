// The string utilities: parsing durations, integers, byte sizes and LSNs,
// base64, random tokens, names, split/join/trim.
#include "base/strings.h"

#include <gtest/gtest.h>

namespace tandem {
namespace {

TEST(Strings, ParseDurationMs) {
  EXPECT_EQ(ParseDurationMs("500ms"), 500);
  EXPECT_EQ(ParseDurationMs("2s"), 2000);
  EXPECT_EQ(ParseDurationMs("1.5s"), 1500);
  EXPECT_EQ(ParseDurationMs("3"), 3000);
  EXPECT_EQ(ParseDurationMs("2m"), 120000);
  EXPECT_EQ(ParseDurationMs(" 10s "), 10000);
  EXPECT_FALSE(ParseDurationMs(""));
  EXPECT_FALSE(ParseDurationMs("-1s"));
  EXPECT_FALSE(ParseDurationMs("10 parsecs"));
  EXPECT_FALSE(ParseDurationMs("1e400s"));
  EXPECT_FALSE(ParseDurationMs("999999999999999999999h"));
}

TEST(Strings, ParseInt) {
  EXPECT_EQ(ParseInt("42"), 42);
  EXPECT_EQ(ParseInt("-7"), -7);
  EXPECT_FALSE(ParseInt("4x"));
  EXPECT_FALSE(ParseInt(""));
  EXPECT_FALSE(ParseInt("99999999999999999999"));
}

TEST(Strings, LsnRoundTrip) {
  EXPECT_EQ(ParseLsn("16/B374D848"), (uint64_t{0x16} << 32) | 0xB374D848u);
  EXPECT_EQ(FormatLsn(*ParseLsn("16/B374D848")), "16/B374D848");
  EXPECT_EQ(FormatLsn(0), "0/0");
  EXPECT_FALSE(ParseLsn("16B374D848"));
  EXPECT_FALSE(ParseLsn("/1"));
  EXPECT_FALSE(ParseLsn("1/zz"));
}

TEST(Strings, Base64RoundTrip) {
  for (const std::string& s : std::vector<std::string>{
           "", "a", "ab", "abc", "abcd", "/tandem/c/leader", std::string("\0\xff", 2)}) {
    auto d = Base64Decode(Base64Encode(s));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(Base64Encode("leader"), "bGVhZGVy");
  EXPECT_FALSE(Base64Decode("!!!"));
}

TEST(Strings, RandomTokenIsAlphanumericAndFresh) {
  auto a = RandomToken(32), b = RandomToken(32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  for (char c : a) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)));
}

TEST(Strings, IsValidName) {
  EXPECT_TRUE(IsValidName("node1"));
  EXPECT_TRUE(IsValidName("db-a.site_2"));
  EXPECT_FALSE(IsValidName(""));
  EXPECT_FALSE(IsValidName("a/b"));
  EXPECT_FALSE(IsValidName("Node1"));
  EXPECT_FALSE(IsValidName("-x"));
  EXPECT_FALSE(IsValidName(std::string(64, 'a')));
}

TEST(Strings, SplitJoinTrim) {
  EXPECT_EQ(Split("a,b,,c", ','), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(Join({"a", "b"}, ", "), "a, b");
  EXPECT_EQ(Trim("  x y \n"), "x y");
}

TEST(ParseBytes, TakesPostgresUnitsAsPatroniDoesForLag) {
  EXPECT_EQ(ParseBytes("16777216"), 16777216u);
  EXPECT_EQ(ParseBytes("16MB"), 16777216u);
  EXPECT_EQ(ParseBytes("512kB"), 524288u);
  EXPECT_EQ(ParseBytes(" 1 GB "), 1073741824u);
  EXPECT_EQ(ParseBytes("0"), 0u);
  EXPECT_EQ(ParseBytes(""), std::nullopt);
  EXPECT_EQ(ParseBytes("-1"), std::nullopt);
  EXPECT_EQ(ParseBytes("16mb"), std::nullopt);
  EXPECT_EQ(ParseBytes("1.5MB"), std::nullopt);
  EXPECT_EQ(ParseBytes("99999999999999999999"), std::nullopt);
  EXPECT_EQ(ParseBytes("9999999TB"), std::nullopt);
}

}  // namespace
}  // namespace tandem
