// GET /metrics: what the agent reports to Prometheus, in two sets
// (docs/design/metrics.md lists every metric, its source and how it differs
// from Patroni's):
//   - patroni_*: Patroni's names, labels ({scope, name}) and meanings, so
//     dashboards and alert rules written for Patroni work unchanged;
//   - tandem_*: Tandem's own, by Prometheus conventions (base units, _total
//     counters, histograms for durations).
// PatroniFamilies / TandemFamilies are pure (a snapshot in, families out);
// the route takes the snapshot (agent::Agent::MetricsSnapshot) and renders it
// (metrics_text.h). Runs on an API worker: the snapshot queries PostgreSQL.
#pragma once

#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/metrics_snapshot.h"
#include "api/http_types.h"
#include "api/metrics_text.h"

namespace tandem::api {

// Tandem's version in the form patroni_version uses: each part zero-padded
// to two digits, "0.1.0" -> 100 (Patroni's "3.0.2" -> 30002).
uint64_t PaddedVersion(const std::string& version);

std::vector<prom::Family> PatroniFamilies(const agent::NodeMetrics& m, const std::string& version);
std::vector<prom::Family> TandemFamilies(const agent::NodeMetrics& m, const std::string& version);
// Both sets, rendered.
std::string RenderMetrics(const agent::NodeMetrics& m, const std::string& version);

// GET /metrics (schema in ApiRequestSchemas: no query parameter accepted).
void AddMetricsRoute(Routes& routes, agent::Agent& agent);

}  // namespace tandem::api
