// Internal to the etcd client (etcd_dcs.cc, etcd_watch.cc, etcd_wire.cc):
// the JSON gateway's wire format and error mapping. Not an API.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "dcs/etcd_dcs.h"

namespace tandem::dcs {

using json = nlohmann::json;

// "http://h:p", "https://h:p", "h:p" (http) -> "scheme://h:p"; nullopt when malformed.
std::optional<std::string> NormalizeEndpoint(std::string ep);

// Fields of a gateway answer; 0 / false / "" / {} when absent or malformed
// (the gateway omits fields equal to their zero value).
int64_t JInt(const json& j, const char* name);
uint64_t JUint(const json& j, const char* name);
bool JBool(const json& j, const char* name);
std::string JStr(const json& j, const char* name);
std::vector<std::string> JStrList(const json& j, const char* name);
Result<std::string> JBytes(const json& j, const char* name);  // base64 -> bytes
Result<KeyValue> ParseKv(const json& j);
Revision HeaderRevision(const json& j);
// A range answer: its kvs sorted by key, and the header's revision.
Result<RangeResult> ParseRange(const json& j);
Member ParseMember(const json& j);

// How bad an error is for the endpoint that produced it.
enum class Scope {
  kFinal,     // the answer to the request (not found, bad argument, precondition)
  kEndpoint,  // this endpoint cannot serve now (down, no leader): another one may
};

struct CallError {
  Error error;
  Scope scope;
};

// Maps an etcd/gRPC error (message + gRPC code, HTTP status when known).
CallError MapEtcdError(const std::string& ep, int http_status, int grpc_code,
                       const std::string& message);
// Extracts an error from a parsed gateway answer ({"error": "..."} or the
// streaming {"error": {...}}); nullopt when there is none.
std::optional<CallError> ErrorFromBody(const std::string& ep, int http_status, const json& j);

// Request pieces: a key range for a prefix, a txn op, a txn compare.
json KeyRange(const std::string& prefix);
json OpJson(const Op& op);
json CompareJson(const Compare& c);

}  // namespace tandem::dcs
