// Result<T> and Error: the error policy of Tandem.
//
// Everything the environment can make fail returns a [[nodiscard]] Result<T>.
// No exceptions cross module boundaries. Callers return the first error.
// A broken invariant of our own is not an Error: it is TANDEM_CHECK (a crash
// with a message).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace tandem {

enum class ErrorCode {
  kInvalidArgument,     // bad input from an operator, a config file or a request
  kNotFound,            // the thing asked for does not exist
  kConflict,            // someone else holds it / a compare failed (not an outage)
  kUnavailable,         // a peer or the store could not be reached (may be retried)
  kTimeout,             // gave up waiting; the outcome is unknown
  kFailedPrecondition,  // the system is not in a state that allows this
  kIo,                  // a local file or process operation failed
  kInternal,            // anything else
};

const char* ErrorCodeName(ErrorCode code);

class [[nodiscard]] Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "conflict: leader key held by node2"
  std::string ToString() const;
  // Prepends context: Wrap("initdb") -> "initdb: <message>".
  Error Wrap(const std::string& context) const { return Error(code_, context + ": " + message_); }

 private:
  ErrorCode code_;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  const T& value() const& { return std::get<0>(v_); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : e_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *e_; }

 private:
  std::optional<Error> e_;
};

using Status = Result<void>;
inline Status Ok() {
  return Status();
}

// [[noreturn]] crash with a message: for broken invariants of our own code.
[[noreturn]] void CheckFailed(const char* file, int line, const char* expr, const std::string& msg);

}  // namespace tandem

#define TANDEM_CHECK(cond, msg)                                           \
  do {                                                                    \
    if (!(cond)) ::tandem::CheckFailed(__FILE__, __LINE__, #cond, (msg)); \
  } while (0)

// Returns the error of a Result-returning expression from the enclosing function.
#define TANDEM_TRY(expr)                                      \
  do {                                                        \
    auto _tandem_r = (expr);                                  \
    if (!_tandem_r.ok()) return std::move(_tandem_r).error(); \
  } while (0)
