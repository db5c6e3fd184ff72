// PgConn and PgResult: one libpq connection (connect, Exec, ExecParams,
// quoting, SCRAM verifiers) and one result. Errors name the label the caller
// gave and libpq's message on one line, never the SQL or a password. Not
// thread-safe: one thread uses a connection at a time.
#include "pg/libpq_conn.h"

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>

#include "base/strings.h"

namespace tandem::pg {
namespace {

std::string OneLine(const char* msg) {
  std::string s = msg ? msg : "";
  for (auto& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return Trim(s);
}

}  // namespace

PgResult::PgResult(pg_result* r) : r_(r, [](pg_result* p) { PQclear(p); }) {}
int PgResult::rows() const {
  return PQntuples(r_.get());
}
int PgResult::cols() const {
  return PQnfields(r_.get());
}
bool PgResult::IsNull(int row, int col) const {
  return PQgetisnull(r_.get(), row, col) != 0;
}
std::string PgResult::Get(int row, int col) const {
  if (IsNull(row, col)) return "";
  return std::string(PQgetvalue(r_.get(), row, col),
                     static_cast<size_t>(PQgetlength(r_.get(), row, col)));
}
std::optional<std::string> PgResult::GetOpt(int row, int col) const {
  if (IsNull(row, col)) return std::nullopt;
  return Get(row, col);
}

PgConn::PgConn(pg_conn* c) : conn_(c, [](pg_conn* p) { PQfinish(p); }) {}

Result<PgConn> PgConn::Connect(const std::map<std::string, std::string>& params,
                               const std::string& what) {
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : params) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  pg_conn* c = PQconnectdbParams(keys.data(), values.data(), 0);
  if (c == nullptr) return Error(ErrorCode::kInternal, "libpq: out of memory");
  PgConn conn(c);
  conn.what_ = what;
  if (PQstatus(c) != CONNECTION_OK) {
    return Error(ErrorCode::kUnavailable,
                 "cannot connect to " + what + ": " + OneLine(PQerrorMessage(c)));
  }
  return conn;
}

namespace {
Result<PgResult> Check(pg_conn* c, pg_result* r, const std::string& label,
                       const std::string& what) {
  if (r == nullptr) {
    return Error(ErrorCode::kUnavailable,
                 label + " on " + what + " failed: " + OneLine(PQerrorMessage(c)));
  }
  PgResult res(r);
  auto st = PQresultStatus(r);
  if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK || st == PGRES_EMPTY_QUERY) return res;
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  std::string sqlstate = state ? state : "";
  std::string msg = label + " on " + what + " failed: " + OneLine(PQresultErrorMessage(r));
  if (sqlstate == "57014") return Error(ErrorCode::kTimeout, msg + " (statement timeout)");
  if (PQstatus(c) != CONNECTION_OK || StartsWith(sqlstate, "08") || StartsWith(sqlstate, "57P")) {
    return Error(ErrorCode::kUnavailable, msg);
  }
  return Error(ErrorCode::kInternal, msg);
}
}  // namespace

Result<PgResult> PgConn::Exec(const std::string& sql, const std::string& label) {
  return Check(conn_.get(), PQexec(conn_.get(), sql.c_str()), label, what_);
}

Result<PgResult> PgConn::ExecParams(const std::string& sql, const std::vector<std::string>& params,
                                    const std::string& label) {
  std::vector<const char*> vals;
  for (const auto& p : params) vals.push_back(p.c_str());
  return Check(conn_.get(),
               PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(vals.size()), nullptr,
                            vals.data(), nullptr, nullptr, 0),
               label, what_);
}

bool PgConn::Reusable() const {
  pg_conn* c = conn_.get();
  if (c == nullptr || PQstatus(c) != CONNECTION_OK) return false;
  if (PQtransactionStatus(c) != PQTRANS_IDLE) return false;
  const int fd = PQsocket(c);
  if (fd < 0) return false;
  struct pollfd p {
    fd, POLLIN, 0
  };
  int n;
  do {
    n = ::poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  // Anything to read while idle (a FATAL notice, EOF, an asynchronous
  // parameter report): not worth interpreting, the caller opens a new one.
  return n == 0;
}

Result<std::string> PgConn::QuoteLiteral(const std::string& s) {
  char* q = PQescapeLiteral(conn_.get(), s.data(), s.size());
  if (q == nullptr) {
    return Error(ErrorCode::kInvalidArgument,
                 "cannot quote a value: " + OneLine(PQerrorMessage(conn_.get())));
  }
  std::string out(q);
  PQfreemem(q);
  return out;
}

Result<std::string> PgConn::QuoteIdent(const std::string& s) {
  char* q = PQescapeIdentifier(conn_.get(), s.data(), s.size());
  if (q == nullptr) {
    return Error(ErrorCode::kInvalidArgument,
                 "cannot quote a name: " + OneLine(PQerrorMessage(conn_.get())));
  }
  std::string out(q);
  PQfreemem(q);
  return out;
}

Result<std::string> PgConn::ScramVerifier(const std::string& user, const std::string& password) {
  char* v = PQencryptPasswordConn(conn_.get(), password.c_str(), user.c_str(), "scram-sha-256");
  if (v == nullptr) {
    return Error(ErrorCode::kInternal, "cannot compute the SCRAM verifier for role " + user + ": " +
                                           OneLine(PQerrorMessage(conn_.get())));
  }
  std::string out(v);
  PQfreemem(v);
  return out;
}

}  // namespace tandem::pg
