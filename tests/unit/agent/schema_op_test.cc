// The schema operation record (agent/schema_op.h): it round-trips through its
// JSON, the API's view never carries the SQL, progress is bounded, and the
// request's "files" text is refused when it is not a list of {name, sql}.
#include "agent/schema_op.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace tandem::agent {
namespace {

TEST(SchemaOperation, RoundTripsThroughItsJson) {
  SchemaOperation op;
  op.id = "abc";
  op.command = "tandem cluster upgrade-schema mig";
  op.database = "app";
  op.target = 3;
  op.timeout_ms = 5000;
  op.files = {{"V1__a.sql", "SELECT 1;", Sha256Hex("SELECT 1;")}};
  op.state = "running";
  op.runner = "node2";
  op.applied = {1, 2};
  auto back = DecodeSchemaOperation(EncodeSchemaOperation(op));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->database, "app");
  EXPECT_EQ(back->target, 3u);
  EXPECT_EQ(back->files.at(0).sql, "SELECT 1;");
  EXPECT_EQ(back->applied, (std::vector<uint64_t>{1, 2}));
  EXPECT_FALSE(DecodeSchemaOperation("{").ok());
}

TEST(SchemaOperation, TheApiViewAndAFinishedRecordCarryNoSql) {
  SchemaOperation op;
  op.id = "x";
  op.state = "done";
  op.files = {{"V1__a.sql", "SELECT 'secret';", "s"}};
  EXPECT_EQ(SchemaOperationView(op).dump().find("secret"), std::string::npos);
  DropSchemaSql(&op);
  EXPECT_EQ(EncodeSchemaOperation(op).find("secret"), std::string::npos);
}

TEST(SchemaOperation, ProgressIsBounded) {
  SchemaOperation op;
  op.id = "p";
  op.state = "running";
  for (int i = 0; i < 100; ++i) AddSchemaProgress(&op, "line " + std::to_string(i));
  ASSERT_EQ(op.progress.size(), kMaxSchemaProgress);
  EXPECT_EQ(op.progress.back(), "line 99");
  EXPECT_EQ(op.progress_total, 100u);  // a follower prints what it has not seen by this count
  EXPECT_EQ(DecodeSchemaOperation(EncodeSchemaOperation(op))->progress_total, 100u);
}

TEST(SchemaOperation, Sha256IsTheStandardDigest) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(SchemaOperation, RequestFilesThatAreNotAListOfNameAndSqlAreRefused) {
  EXPECT_FALSE(DecodeSchemaFiles("not json").ok());
  EXPECT_FALSE(DecodeSchemaFiles("{}").ok());
  EXPECT_FALSE(DecodeSchemaFiles(R"([{"name": "V1__a.sql"}])").ok());
  EXPECT_FALSE(DecodeSchemaFiles(R"([{"name": 1, "sql": ""}])").ok());
  EXPECT_FALSE(DecodeSchemaFiles(R"([{"name": "V1__a.sql", "sql": "", "x": 1}])").ok());
  auto ok = DecodeSchemaFiles(R"([{"name": "V1__a.sql", "sql": "abc"}])");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->at(0).sha256, Sha256Hex("abc"));
}

}  // namespace
}  // namespace tandem::agent
