// Transitional: the peer-certificate check moved to src/net
// (net/peer_certs.h), below the agent and the CLI. This header keeps the
// agent's existing spellings compiling; new code includes net/peer_certs.h,
// and this one goes once the agent's files do.
#pragma once

#include "net/peer_certs.h"

namespace tandem::agent {
using net::CheckPeerCertificate;
using net::FetchServerCertificate;
using net::HostPortOfUrl;
using net::JudgePeerCertificate;
using net::PeerCertificate;
using net::TlsService;
}  // namespace tandem::agent
