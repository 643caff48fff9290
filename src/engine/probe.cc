#include "engine/probe.h"

#include <event2/event.h>

#include <cmath>

#include "checks/delivery/delivery.h"
#include "checks/replication/replication.h"
#include "engine/run_context.h"
#include "protocols/registry.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strings.h"

namespace mw {

constexpr size_t kPortTestMaxBytes = 4 * 1024 * 1024;

std::string CheckResult::reason() const {
  if (ok) return "ok";
  std::string out = std::string(failure_class_name(cls)) + ": " + message;
  if (!server_line.empty() && message.find(server_line) == std::string::npos)
    out += " [server: " + server_line + "]";
  return out;
}

Probe::Probe(IoContext& io, Scope& scope, const config::Check& check, const config::PortCheck& port,
             std::string log_prefix)
    : io_(io), scope_(scope), port_(port) {
  ConnectionOptions opts;
  opts.timeout_ms = check.timeout_ms;
  // A protocol test reads a few kilobytes; a hostile server must not make a thousand of them
  // hold 64 MiB each.
  opts.max_bytes = kPortTestMaxBytes;
  opts.log_prefix = std::move(log_prefix);
  opts.on_certificate = [this](const CertInfo& c) { cert_ = c; };
  conn_ = std::make_unique<Connection>(io, scope, std::move(opts));
}

Task<void> Probe::open() {
  co_await conn_->connect(port_.endpoint);
  if (port_.tls_mode == config::TlsMode::implicit) co_await conn_->start_tls(port_.tls, host());
}

Task<void> Probe::starttls() {
  co_await conn_->start_tls(port_.tls, host());
}

void Probe::require_password_allowed(const std::string& secure_ways) const {
  if (may_send_password()) return;
  throw ProbeError(FailureClass::missing_feature, "not sending the password of " +
                                                      port_.options.username +
                                                      " over an unencrypted connection (use " +
                                                      secure_ways + ", or 'allow plaintext')");
}

namespace {

// The checks every protocol gets, applied after a successful dialogue.
void apply_common_limits(const config::PortCheck& pc, CheckResult& r) {
  if (!r.ok) return;
  if (pc.cert_min_days) {
    if (!r.certificate) {
      r.ok = false;
      r.cls = FailureClass::certificate;
      r.message = "no certificate was seen";
      return;
    }
    if (r.certificate->days_left <= *pc.cert_min_days) {
      r.ok = false;
      r.cls = FailureClass::certificate;
      r.message = "certificate expires in " + std::to_string(r.certificate->days_left) +
                  " days (the rule wants more than " + std::to_string(*pc.cert_min_days) + ")";
      return;
    }
  }
  if (!pc.cert_sha256.empty() && r.certificate && r.certificate->sha256 != pc.cert_sha256) {
    r.ok = false;
    r.cls = FailureClass::certificate;
    r.message = "certificate SHA-256 fingerprint is " + r.certificate->sha256 + ", expected " +
                pc.cert_sha256;
    return;
  }
  if (pc.max_response_ms && r.response_ms > static_cast<double>(*pc.max_response_ms)) {
    r.ok = false;
    r.cls = FailureClass::responsetime;
    char buf[128];
    snprintf(buf, sizeof buf, "response time %.1f ms exceeds the limit of %lld ms", r.response_ms,
             static_cast<long long>(*pc.max_response_ms));
    r.message = buf;
  }
}

Task<void> port_dialogue(Probe& probe) {
  co_await probe.open();
  co_await probe.port().protocol->run(probe);
}

// The run of a composite check kind: one row per kind (the variant's alternatives after
// PortCheck), each in its own folder under src/checks/.
Task<void> composite_run(RunContext& ctx) {
  const auto& what = ctx.check().what;
  if (std::holds_alternative<config::ReplicationCheck>(what))
    co_return co_await checks::replication::run(ctx);
  if (std::holds_alternative<config::DeliveryCheck>(what))
    co_return co_await checks::delivery::run(ctx);
  throw ProbeError(FailureClass::internal,
                   "no runner for the check kind of " + ctx.check().description);
}

// One run of one check: attempts (1 + retry), each with its own scope and deadline.
class CheckRun {
 public:
  CheckRun(IoContext& io, std::shared_ptr<const config::Config> owner,
           const config::Service& service, const config::Check& check, nlohmann::json memory,
           std::function<void(const CheckResult&)> done)
      : io_(io),
        owner_(std::move(owner)),
        service_(service),
        check_(check),
        memory_(std::move(memory)),
        done_(std::move(done)) {}

  void start_attempt() {
    ++attempts_;
    scope_ = std::make_unique<Scope>(io_.base);
    scope_->set_deadline(check_.deadline_ms);
    started_us_ = clock::now_us();
    std::string prefix = "'" + service_.name + "' " + check_.description;
    if (const auto* pc = std::get_if<config::PortCheck>(&check_.what)) {
      probe_ = std::make_unique<Probe>(io_, *scope_, check_, *pc, prefix);
      start_detached(port_dialogue(*probe_), [this](std::exception_ptr e) { on_attempt_done(e); });
    } else {
      context_ = std::make_unique<RunContext>(io_, *scope_, check_, prefix, memory_);
      start_detached(composite_run(*context_),
                     [this](std::exception_ptr e) { on_attempt_done(e); });
    }
  }

 private:
  void on_attempt_done(std::exception_ptr error) {
    CheckResult r;
    r.attempts = attempts_;
    r.checked_at = clock::wall();
    r.response_ms = std::round(static_cast<double>(clock::now_us() - started_us_) / 100.0) / 10.0;
    if (probe_) {
      r.certificate = probe_->certificate();
      if (const auto& line = probe_->conn().first_line()) {
        r.greeting = *line;
        r.greeting_ms =
            std::round(static_cast<double>(probe_->conn().first_line_at_us() - started_us_) /
                       100.0) /
            10.0;
      }
    }
    if (context_) {
      r.certificate = context_->certificate;
      r.metrics = context_->metrics;
      r.details = context_->details;
      r.memory = context_->memory;
    } else {
      r.memory = memory_;
    }
    r.ok = true;
    if (error) {
      r.ok = false;
      try {
        std::rethrow_exception(error);
      } catch (const ProbeError& e) {
        r.cls = e.cls();
        r.message = e.what();
        r.server_line = str::printable(e.server_line(), 300);
      } catch (const std::exception& e) {
        r.cls = FailureClass::internal;
        r.message = e.what();
      }
    }
    if (const auto* pc = std::get_if<config::PortCheck>(&check_.what)) apply_common_limits(*pc, r);
    result_ = std::move(r);
    // Leave the callback stack (we may be inside the scope's cancel loop or a bufferevent
    // callback) before tearing the attempt down.
    timeval now{0, 0};
    event_base_once(io_.base, -1, EV_TIMEOUT, &CheckRun::after_attempt, this, &now);
  }

  static void after_attempt(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<CheckRun*>(arg);
    self->probe_.reset();
    self->context_.reset();
    self->scope_.reset();
    if (!self->result_.ok && self->attempts_ <= self->check_.retry) {
      log::debug("'%s' %s: attempt %d failed (%s), retrying", self->service_.name.c_str(),
                 self->check_.description.c_str(), self->attempts_, self->result_.reason().c_str());
      self->start_attempt();
      return;
    }
    auto done = std::move(self->done_);
    CheckResult result = std::move(self->result_);
    delete self;
    done(result);
  }

  IoContext& io_;
  std::shared_ptr<const config::Config> owner_;  // keeps service_ and check_ alive over reloads
  const config::Service& service_;
  const config::Check& check_;
  nlohmann::json memory_;
  std::function<void(const CheckResult&)> done_;
  std::unique_ptr<Scope> scope_;
  std::unique_ptr<Probe> probe_;
  std::unique_ptr<RunContext> context_;
  CheckResult result_;
  int attempts_ = 0;
  int64_t started_us_ = 0;
};

}  // namespace

void run_check(IoContext& io, std::shared_ptr<const config::Config> owner,
               const config::Service& service, const config::Check& check, nlohmann::json memory,
               std::function<void(const CheckResult&)> done) {
  auto* run =
      new CheckRun(io, std::move(owner), service, check, std::move(memory), std::move(done));
  run->start_attempt();
}

}  // namespace mw
