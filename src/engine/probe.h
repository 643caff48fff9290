// What a protocol dialogue is given: the port test's connection (made and, for implicit TLS,
// wrapped before the dialogue starts) inside the run context the engine's base set up (deadline,
// retries, certificate record). A protocol file only speaks its dialogue through its Probe.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "config/model.h"
#include "engine/result.h"
#include "net/connection.h"
#include "net/io_context.h"
#include "net/scope.h"

namespace mw {

class RunContext;

class Probe {
 public:
  Probe(RunContext& ctx, const config::PortCheck& port);

  [[nodiscard]] const config::PortCheck& port() const { return port_; }
  [[nodiscard]] const config::ProbeOptions& options() const { return port_.options; }
  [[nodiscard]] Connection& conn() { return *conn_; }
  [[nodiscard]] Scope& scope() { return scope_; }
  [[nodiscard]] IoContext& io() { return io_; }
  [[nodiscard]] const std::string& host() const { return port_.endpoint.host; }
  // The name TLS sends (SNI) and verifies: an http hostheader, else the host.
  [[nodiscard]] std::string tls_name() const;

  // True when the rule asks for STARTTLS: the dialogue sends its STARTTLS command, reads the
  // go-ahead, then calls starttls().
  [[nodiscard]] bool wants_starttls() const { return port_.tls_mode == config::TlsMode::starttls; }
  Task<void> starttls();
  // A password may be sent: the connection is encrypted, or the rule says "allow plaintext".
  [[nodiscard]] bool may_send_password() const {
    return conn_->tls_active() || port_.options.allow_plaintext;
  }
  // Throws missing-feature unless may_send_password(); `secure_ways` says how to get TLS
  // ("starttls or imaps").
  void require_password_allowed(const std::string& secure_ways) const;

  // Connects (and wraps implicit TLS); the base calls this before the dialogue.
  Task<void> open();

 private:
  IoContext& io_;
  Scope& scope_;
  const config::PortCheck& port_;
  std::unique_ptr<Connection> conn_;
};

// Runs a check once (with its retries) and calls `done` with the result, always later from the
// event loop, never from inside the call. `memory` is what the check's last run left for this
// one (composite checks resume from it); the result carries the new memory.
void run_check(IoContext& io, std::shared_ptr<const config::Config> owner,
               const config::Service& service, const config::Check& check, nlohmann::json memory,
               std::function<void(const CheckResult&)> done);

}  // namespace mw
