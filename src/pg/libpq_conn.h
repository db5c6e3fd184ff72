// A small RAII wrapper around one libpq connection (not thread-safe: one
// thread uses a connection at a time; pg/local_conn.h keeps them). Errors never contain the
// SQL text (it may carry a password verifier) nor any password: callers give
// a label that names what was attempted.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

struct pg_conn;
struct pg_result;

namespace tandem::pg {

class PgResult {
 public:
  explicit PgResult(pg_result* r);
  int rows() const;
  int cols() const;
  bool IsNull(int row, int col) const;
  // "" for NULL.
  std::string Get(int row, int col) const;
  std::optional<std::string> GetOpt(int row, int col) const;

 private:
  std::shared_ptr<pg_result> r_;
};

class PgConn {
 public:
  // libpq keywords (host, port, user, dbname, password, connect_timeout,
  // options, application_name, ...). `what` names the server in errors
  // ("local PostgreSQL on /run/tandem port 5432"). Connection failures are
  // kUnavailable.
  static Result<PgConn> Connect(const std::map<std::string, std::string>& params,
                                const std::string& what);

  // Runs one statement (or several without parameters). `label` names it in
  // errors. A statement_timeout cancel is kTimeout, a lost connection
  // kUnavailable, anything else kInternal with the server's message.
  Result<PgResult> Exec(const std::string& sql, const std::string& label);
  Result<PgResult> ExecParams(const std::string& sql, const std::vector<std::string>& params,
                              const std::string& label);

  // PQescapeLiteral / PQescapeIdentifier.
  Result<std::string> QuoteLiteral(const std::string& s);
  Result<std::string> QuoteIdent(const std::string& s);
  // A SCRAM-SHA-256 verifier computed in the client (PQencryptPasswordConn),
  // so the plain password never reaches the server or its logs.
  Result<std::string> ScramVerifier(const std::string& user, const std::string& password);

  // Whether this connection can run the next statement: the connection is
  // up, no transaction is open, and the server sent nothing while it was
  // idle (a server that stops, restarts or crashes closes its sessions,
  // usually with a FATAL message first: the socket turns readable). One
  // poll() with no wait; no round trip.
  bool Reusable() const;

  pg_conn* raw() const { return conn_.get(); }

 private:
  explicit PgConn(pg_conn* c);
  std::shared_ptr<pg_conn> conn_;
  std::string what_;
};

}  // namespace tandem::pg
