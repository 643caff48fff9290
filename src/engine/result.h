// The outcome of one run of a check.
#pragma once

#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "net/failure.h"
#include "net/tls.h"

namespace mw {

struct CheckResult {
  bool ok = false;
  FailureClass cls = FailureClass::none;
  std::string message;      // why it failed (empty when ok)
  std::string server_line;  // the server's line that caused the failure, if any
  double response_ms = 0;   // connect to end of dialogue, last attempt
  // Port tests: the server's first line (at most 1 KiB) and the time from the start of the
  // attempt to it (what check_tcp calls the response time); -1 when no line came.
  std::string greeting;
  double greeting_ms = -1;
  int attempts = 0;
  time_t checked_at = 0;
  // Shared: the probes of one server see the same certificate, and 10,000 results would
  // otherwise each keep a copy of it (see TlsContextCache::intern).
  std::shared_ptr<const CertInfo> certificate;
  // Composite checks (replication, delivery): what they measured, read by their rules
  // ("out_of_sync", "invalid_users", "latency_ms"), what status --json shows, and what they
  // carry over to the next cycle (kept in the state file).
  std::map<std::string, double> metrics;
  nlohmann::json details;
  nlohmann::json memory;

  // "tls: certificate verification failed: certificate has expired"
  [[nodiscard]] std::string reason() const;
};

}  // namespace mw
