// What the HTTP interface needs from the running daemon: the status model to show, and the few
// actions a read-write user may take. The daemon implements it over its engine; the server only
// routes, authorises and formats.
#pragma once

#include <string>

#include "report/metrics.h"
#include "state/snapshot.h"

namespace mw::http {

class Control {
 public:
  virtual ~Control() = default;

  // The live state, from which the server builds the status model every face formats.
  [[nodiscard]] virtual state::Snapshot snapshot(bool history) = 0;
  // Grows whenever the status changes: a response made at the same version is still right.
  [[nodiscard]] virtual uint64_t version() = 0;
  // Counters and figures of the daemon itself (cycle time, actions taken).
  [[nodiscard]] virtual report::DaemonFacts facts() = 0;

  // Each returns an empty string on success, else why not (no such service, ...).
  [[nodiscard]] virtual std::string check_now(const std::string& service) = 0;
  [[nodiscard]] virtual std::string monitor(const std::string& service) = 0;
  [[nodiscard]] virtual std::string unmonitor(const std::string& service) = 0;
  // start, stop, restart (the service's programs; see daemon/control.h): `message` says what
  // was done. Empty on success, else why not.
  [[nodiscard]] virtual std::string act(const std::string& verb, const std::string& service,
                                        std::string& message) = 0;
};

}  // namespace mw::http
