// postgresql.parameters checked at load (internal to the config loader):
// the parameters Tandem writes itself are refused, each naming the key that
// sets it or saying Tandem owns it; names and values are checked against the
// catalog of the node's PostgreSQL binary (pg/parameter_catalog.h) when one
// could be read. Every message names 'postgresql.parameters.<name>'.
//
// Pure; any thread.
#pragma once

#include <string>
#include <vector>

#include "agent/config.h"
#include "base/result.h"
#include "pg/parameter_catalog.h"

namespace tandem::agent::config_internal {

// The parameters Tandem writes into tandem.conf (pg::RenderConfig) or
// otherwise owns, lower case; the ssl ones count only when tls is set.
std::vector<std::string> ManagedParameterNames();

// Why `name` (any case) may not be set in postgresql.parameters under `c`
// (what sets it instead); "" when it may be.
std::string ManagedParameterReason(const std::string& name, const Config& c);

// Every entry of c.pg_parameters: a valid name, not managed, and (catalog
// not null) known to the binary with a value of its type and range.
Status CheckPgParameters(const Config& c, const pg::ParameterCatalog* catalog,
                         const std::string& file);

}  // namespace tandem::agent::config_internal
