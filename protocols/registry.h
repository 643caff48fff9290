// The protocol registry: a protocol is one file under protocols/ and one row in registry.cc.
// The parser asks the registry which names exist and which options each accepts; the engine
// asks it for the dialogue to run.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "config/model.h"
#include "net/task.h"

namespace mw {
class Probe;
}

namespace mw::protocols {

// Options of a port test that a protocol may accept (ProbeOptions fields).
enum Accepts : unsigned {
  kLogin = 1u << 0,       // username / password / credentials
  kMasterUser = 1u << 1,  // masteruser: SASL PLAIN with an authorization identity
  kMailbox = 1u << 2,     // select "MAILBOX"
  kEnvelope = 1u << 3,    // mail from / rcpt to [expect reject]
  kSteps = 1u << 4,       // send / expect
  kHelo = 1u << 5,        // helo NAME
  kHttp = 1u << 6,        // request, status, content, hostheader, checksum, http headers
};

using Dialogue = Task<void> (*)(Probe&);

struct ProtocolInfo {
  std::string_view name;
  uint16_t default_port;
  config::TlsMode default_tls;
  uint16_t starttls_port;  // monit compatibility: this implicit-TLS name on that port = STARTTLS
  bool starttls;           // the dialogue knows how to upgrade with STARTTLS
  unsigned accepts;
  Dialogue run;
  std::string_view summary;
  // monit knows the protocol but mailwarden has no dialogue for it: the test is the connect
  // (and TLS, if asked), and -t says so in one warning.
  bool connect_only = false;
};

[[nodiscard]] const ProtocolInfo* find(std::string_view name);
[[nodiscard]] const std::vector<ProtocolInfo>& all();

}  // namespace mw::protocols
