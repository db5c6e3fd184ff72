// The rules of migration files (core/schema_files.h): each test names the rule
// it protects: names, duplicates, gaps, UTF-8, the no-transaction directive,
// transaction control refused, the history table refused, statements and
// their lines.
#include "core/schema_files.h"

#include <gtest/gtest.h>

namespace tandem::core {
namespace {

MigrationFile F(const std::string& name, const std::string& sql = "SELECT 1;") {
  return {name, sql, "sha-" + name};
}

bool Has(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

TEST(SchemaNames, AVersionedNameParsesIntoVersionAndDescription) {
  auto m = ParseMigrationName("V0012__create_calls.sql");
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(m->version, 12u);
  EXPECT_EQ(m->description, "create calls");
  EXPECT_EQ(m->file, "V0012__create_calls.sql");
}

TEST(SchemaNames, NamesThatDoNotParseAreRefusedNamingTheRule) {
  for (const char* bad : {"v1__x.sql", "V__x.sql", "V1_x.sql", "V1__.sql", "V1__x.txt",
                          "V1__x-y.sql", "V0__x.sql", "README.md", "V1234567890123456789__x.sql"}) {
    auto m = ParseMigrationName(bad);
    ASSERT_FALSE(m.ok()) << bad;
    EXPECT_TRUE(Has(m.error().message(), bad)) << m.error().message();
    EXPECT_TRUE(Has(m.error().message(), "V0001__create_calls.sql") ||
                Has(m.error().message(), "start at 1"))
        << m.error().message();
  }
}

TEST(SchemaSet, AnEmptyDirectoryIsRefused) {
  auto r = CheckMigrationSet({});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Has(r.error().message(), "no migration")) << r.error().message();
}

TEST(SchemaSet, TwoFilesWithOneVersionAreRefusedNamingBoth) {
  auto r = CheckMigrationSet({F("V1__a.sql"), F("V0001__b.sql")});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Has(r.error().message(), "V1__a.sql")) << r.error().message();
  EXPECT_TRUE(Has(r.error().message(), "V0001__b.sql")) << r.error().message();
}

TEST(SchemaSet, AGapInTheVersionsIsRefusedNamingTheMissingOne) {
  auto r = CheckMigrationSet({F("V1__a.sql"), F("V3__c.sql")});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Has(r.error().message(), "version 2 is missing")) << r.error().message();
  EXPECT_TRUE(Has(r.error().message(), "V3__c.sql")) << r.error().message();
  auto late = CheckMigrationSet({F("V2__b.sql")});
  ASSERT_FALSE(late.ok());
  EXPECT_TRUE(Has(late.error().message(), "version 1 is missing")) << late.error().message();
}

TEST(SchemaSet, TheSetIsSortedByVersionNotByName) {
  auto r = CheckMigrationSet({F("V10__j.sql"), F("V2__b.sql"), F("V1__a.sql"), F("V3__c.sql"),
                              F("V4__d.sql"), F("V5__e.sql"), F("V6__f.sql"), F("V7__g.sql"),
                              F("V8__h.sql"), F("V9__i.sql")});
  ASSERT_TRUE(r.ok()) << r.error().message();
  for (size_t i = 0; i < r->size(); ++i) EXPECT_EQ((*r)[i].version, i + 1);
  EXPECT_EQ((*r)[0].sha256, "sha-V1__a.sql");
}

TEST(SchemaSet, AFileThatIsNotUtf8IsRefusedNamingIt) {
  auto r = CheckMigrationSet({F("V1__a.sql", "SELECT '\xff\xfe';")});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Has(r.error().message(), "V1__a.sql")) << r.error().message();
  EXPECT_TRUE(Has(r.error().message(), "UTF-8")) << r.error().message();
}

TEST(SchemaSet, AFileWithNoStatementIsRefused) {
  auto r = CheckMigrationSet({F("V1__a.sql", "-- nothing here\n/* nor here */\n")});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Has(r.error().message(), "no SQL statement")) << r.error().message();
}

TEST(SchemaSet, TheFirstLineDirectiveMakesAFileNonTransactional) {
  auto r = CheckMigrationSet(
      {F("V1__a.sql", "SELECT 1;"),
       F("V2__b.sql", "-- tandem:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);")});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE((*r)[0].transactional);
  EXPECT_FALSE((*r)[1].transactional);
  // Only on the first line.
  auto later = CheckMigrationSet({F("V1__a.sql", "SELECT 1;\n-- tandem:no-transaction\n")});
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE((*later)[0].transactional);
}

TEST(SchemaSet, TransactionControlInATransactionalFileIsRefusedWithItsLine) {
  auto r = CheckMigrationSet({F("V1__a.sql", "CREATE TABLE t (x int);\n\nCOMMIT;\n")});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Has(r.error().message(), "V1__a.sql' line 3: COMMIT")) << r.error().message();
  EXPECT_TRUE(
      CheckMigrationSet({F("V1__a.sql", "-- tandem:no-transaction\nBEGIN;\nSELECT 1;\nCOMMIT;\n")})
          .ok());
}

TEST(SchemaSet, AMigrationNamingTheHistoryTableIsRefused) {
  for (const char* sql : {"DELETE FROM tandem.schema_history;", "DROP TABLE TANDEM.Schema_History;",
                          "UPDATE \"tandem\".\"schema_history\" SET success = true;"}) {
    auto r = CheckMigrationSet({F("V1__a.sql", sql)});
    ASSERT_FALSE(r.ok()) << sql;
    EXPECT_TRUE(Has(r.error().message(), "tandem.schema_history")) << r.error().message();
  }
  // In a comment or a string it is harmless.
  EXPECT_TRUE(
      CheckMigrationSet({F("V1__a.sql", "-- not schema_history\nSELECT 'schema_history';")}).ok());
}

TEST(SchemaSet, MoreSqlThanOneRunCarriesIsRefused) {
  const std::string big = "SELECT '" + std::string(kMaxMigrationBytes, 'x') + "';";
  auto r = CheckMigrationSet({F("V1__a.sql", big)});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Has(r.error().message(), "over the limit")) << r.error().message();
}

TEST(SchemaUtf8, ValidAndInvalidSequences) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // beyond U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\x80"));
}

TEST(SchemaStatements, SplitAtTopLevelSemicolonsOnlyWithTheirLines) {
  const std::string sql =
      "-- header; not a statement\n"
      "CREATE TABLE t (x text DEFAULT 'a;b');\n"
      "\n"
      "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n"
      "/* a; /* nested; */ comment */ SELECT \"odd;name\" FROM t;\n"
      "SELECT E'it\\'s; fine'";
  auto s = SplitStatements(sql);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].line, 2);
  EXPECT_EQ(s[1].line, 4);
  EXPECT_EQ(s[2].line, 5);
  EXPECT_EQ(s[3].line, 6);
  EXPECT_TRUE(Has(s[0].sql, "'a;b'"));
  EXPECT_TRUE(Has(s[1].sql, "$body$ SELECT 1; $body$"));
}

TEST(SchemaStatements, AnErrorPositionMapsToTheFileLine) {
  auto s = SplitStatements("SELECT 1;\n\nSELECT\n  nope\nFROM x;");
  ASSERT_EQ(s.size(), 2u);
  const size_t at = s[1].sql.find("nope");
  EXPECT_EQ(s[1].first_line + LineOfPosition(s[1].sql, static_cast<int>(at) + 1) - 1, 4);
  EXPECT_EQ(LineOfPosition("abc", 99), 1);
}

}  // namespace
}  // namespace tandem::core
