// What every connection of the process shares: the loop, the resolver, the TLS contexts.
#pragma once

#include <event2/dns.h>
#include <event2/event.h>

#include "net/gate.h"
#include "net/tls.h"

namespace mw {

struct IoContext {
  event_base* base = nullptr;
  evdns_base* dns = nullptr;
  TlsContextCache* tls = nullptr;
  Gate* handshakes = nullptr;  // admission for TLS handshakes; null: no limit
};

}  // namespace mw
