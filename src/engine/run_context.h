// What a check of any kind gets from the engine's base for one attempt: the loop, the attempt's
// scope and deadline, connections made the same way as every port test's, and places to put
// what it measured.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "config/model.h"
#include "net/connection.h"
#include "net/io_context.h"
#include "net/scope.h"

namespace mw {

class RunContext {
 public:
  RunContext(IoContext& io, Scope& scope, const config::Check& check, std::string log_prefix,
             nlohmann::json memory);

  [[nodiscard]] IoContext& io() { return io_; }
  [[nodiscard]] Scope& scope() { return scope_; }
  [[nodiscard]] const config::Check& check() const { return check_; }
  // "'service' description", the start of every log line of this run.
  [[nodiscard]] const std::string& log_prefix() const { return log_prefix_; }

  // A new, unconnected connection with the check's timeouts and logging.
  [[nodiscard]] std::unique_ptr<Connection> connection(const std::string& label);
  // Connects to `endpoint` and, for TLS from the first byte, does the handshake (verified
  // against `tls`, with `endpoint.host` as the expected name).
  Task<std::unique_ptr<Connection>> open(const Endpoint& endpoint, config::TlsMode mode,
                                         const TlsSettings& tls, const std::string& label);

  // Read by the check's rules: "out_of_sync", "invalid_users", "latency_ms".
  std::map<std::string, double> metrics;
  // Shown by status --json under the check (merged into the test object).
  nlohmann::json details = nlohmann::json::object();
  // Kept across cycles and restarts: a check resumes from here.
  nlohmann::json memory;
  // The last certificate any of its connections saw.
  std::shared_ptr<const CertInfo> certificate;
  // Port tests: the server's first line and when it came (clock::now_us()), for the Nagios
  // drop-ins (check_tcp's "response time" and "[greeting]").
  std::optional<std::string> first_line;
  int64_t first_line_at_us = 0;

 private:
  IoContext& io_;
  Scope& scope_;
  const config::Check& check_;
  std::string log_prefix_;
};

}  // namespace mw
