// `tandem cluster log` (cli/log_command.h): pages of GET /v1/events from the
// local agent, filtered by time and node here, printed oldest first;
// --follow asks again every poll_ms on the process's Clock.
#include "cli/log_command.h"

#include <signal.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "agent/config.h"
#include "agent/tls_files.h"
#include "base/strings.h"
#include "core/events.h"
#include "net/http_client.h"

namespace tandem::cli {
using nlohmann::json;

namespace {

int Fail(int code, const std::string& msg) {
  std::fprintf(stderr, "ERROR : %s\n", msg.c_str());
  return code;
}

std::string ApiUrl(const agent::Config& cfg) {
  const bool wildcard = cfg.api_listen == "0.0.0.0" || cfg.api_listen == "::";
  std::string host =
      wildcard ? (cfg.tls_enabled() ? cfg.node_address : "127.0.0.1") : cfg.api_listen;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return cfg.url_scheme() + host + ":" + std::to_string(cfg.api_port);
}

// One page after `since`; the error text on failure.
Result<json> FetchPage(const std::string& url, int64_t since) {
  auto r = net::HttpCall("GET",
                         url + "/v1/events?since=" + std::to_string(since) +
                             "&limit=" + std::to_string(core::kEventPageLimit),
                         "", 10'000);
  if (!r) {
    return Error(ErrorCode::kUnavailable, "cannot reach the local agent at " + url + " (" +
                                              r.error().message() + "); is it running?");
  }
  if (r->status == 404) {
    return Error(ErrorCode::kNotFound,
                 "the local agent has no event log (GET /v1/events: 404); it runs an older "
                 "version: upgrade it");
  }
  try {
    json j = json::parse(r->body);
    if (r->status != 200) return Error(ErrorCode::kUnavailable, j.value("error", r->body));
    if (!j.contains("events") || !j["events"].is_array()) {
      return Error(ErrorCode::kInternal, "unexpected answer from the agent: no \"events\"");
    }
    return j;
  } catch (const std::exception&) {
    return Error(ErrorCode::kInternal,
                 "unexpected answer from the agent (HTTP " + std::to_string(r->status) + ")");
  }
}

core::Event FromJson(const json& j) {
  core::Event e;
  e.seq = j.value("seq", int64_t{0});
  e.node = j.value("node", "");
  e.kind = j.value("kind", "");
  e.message = j.value("message", "");
  return e;
}

// Prints every event after *since that passes the filter; moves *since on.
Status PrintNew(const std::string& url, const LogOptions& opts, int64_t since_ms, int64_t* since) {
  for (;;) {
    auto page = FetchPage(url, *since);
    if (!page) return page.error();
    const json& events = (*page)["events"];
    for (const auto& ev : events) {
      const int64_t seq = ev.value("seq", int64_t{0});
      if (seq > *since) *since = seq;
      auto t = core::ParseSince(ev.value("time", ""), 0);
      if (since_ms != 0 && t.ok() && *t < since_ms) continue;
      if (!opts.node.empty() && ev.value("node", "") != opts.node) continue;
      std::printf("%s\n", opts.json ? ev.dump().c_str() : RenderEventLine(ev).c_str());
    }
    *since = std::max(*since, page->value("next", *since));
    std::fflush(stdout);
    if (events.size() < static_cast<size_t>(core::kEventPageLimit)) return Ok();
  }
}

}  // namespace

std::string RenderEventLine(const json& event) {
  core::Event e = FromJson(event);
  auto t = core::ParseSince(event.value("time", ""), 0);  // RFC 3339 from the agent
  e.time_ms = t.ok() ? *t : 0;
  return core::RenderEvent(e);
}

int ClusterLog(const Clock& clock, const std::string& config_path, const LogOptions& opts) {
  int64_t since_ms = 0;
  if (!opts.since.empty()) {
    auto t = core::ParseSince(opts.since, clock.WallNow());
    if (!t) return Fail(2, t.error().message());
    since_ms = *t;
  }
  if (!opts.node.empty() && !IsValidName(opts.node)) {
    return Fail(2, "--node '" + opts.node +
                       "' is not a node name (1-63 of a-z 0-9 - _ ., starting with a letter or "
                       "digit); see `tandem cluster status` for the names");
  }
  auto cfg = agent::LoadConfig(config_path);
  if (!cfg) return Fail(1, cfg.error().message());
  net::SetHttpClientTls(agent::ClientTlsFor(*cfg));
  ::signal(SIGPIPE, SIG_IGN);
  const std::string url = ApiUrl(*cfg);
  int64_t since = 0;
  if (auto st = PrintNew(url, opts, since_ms, &since); !st.ok()) {
    return Fail(1, st.error().message());
  }
  while (opts.follow) {
    clock.SleepFor(opts.poll_ms);
    // A failed poll (the agent restarting) is reported and retried.
    if (auto st = PrintNew(url, opts, since_ms, &since); !st.ok()) {
      std::fprintf(stderr, "WARNING : %s; retrying\n", st.error().message().c_str());
    }
  }
  return 0;
}

}  // namespace tandem::cli
