#include "engine/probe.h"

#include <event2/event.h>

#include <algorithm>
#include <cmath>

#include "checks/registry.h"
#include "engine/run_context.h"
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

Probe::Probe(RunContext& ctx, const config::PortCheck& port)
    : io_(ctx.io()), scope_(ctx.scope()), port_(port) {
  ConnectionOptions opts;
  opts.timeout_ms = ctx.check().timeout_ms;
  // A protocol test reads a few kilobytes; a hostile server must not make a thousand of them
  // hold 64 MiB each.
  opts.max_bytes = kPortTestMaxBytes;
  opts.log_prefix = ctx.log_prefix();
  // Recorded even when the dialogue later fails.
  opts.on_certificate = [&ctx](const std::shared_ptr<const CertInfo>& c) { ctx.certificate = c; };
  conn_ = std::make_unique<Connection>(io_, scope_, std::move(opts));
}

Task<void> Probe::open() {
  co_await conn_->connect(port_.endpoint);
  if (port_.tls_mode == config::TlsMode::implicit) co_await conn_->start_tls(port_.tls, tls_name());
}

Task<void> Probe::starttls() {
  co_await conn_->start_tls(port_.tls, tls_name());
}

std::string Probe::tls_name() const {
  // http's virtual host is the name the certificate must carry (SNI), without a port.
  std::string name = port_.options.http_request().hostheader;
  if (name.empty()) return host();
  if (name.front() == '[') return name.substr(1, name.find(']') - 1);  // [v6]:port
  if (std::count(name.begin(), name.end(), ':') == 1) name.erase(name.find(':'));
  return name;
}

void Probe::require_password_allowed(const std::string& secure_ways) const {
  if (may_send_password()) return;
  throw ProbeError(FailureClass::missing_feature, "not sending the password of " +
                                                      port_.options.username +
                                                      " over an unencrypted connection (use " +
                                                      secure_ways + ", or 'allow plaintext')");
}

namespace {

void redact_strings(const Scope& scope, nlohmann::json& j) {
  if (j.is_string()) {
    j = scope.redact(j.get<std::string>());
  } else if (j.is_structured()) {
    for (auto& v : j) redact_strings(scope, v);
  }
}

// One run of one check: attempts (1 + retry), each with its own scope and deadline.
class CheckRun {
 public:
  void cancel() {
    cancelled_ = true;
    if (scope_) scope_->cancel(ProbeError(FailureClass::internal, "mailwarden is stopping"));
  }

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
    context_ = std::make_unique<RunContext>(io_, *scope_, check_, prefix, memory_);
    start_detached(check_.kind->run(*context_),
                   [this](std::exception_ptr e) { on_attempt_done(e); });
  }

 private:
  void on_attempt_done(std::exception_ptr error) {
    CheckResult r;
    r.attempts = attempts_;
    r.checked_at = clock::wall();
    r.response_ms = std::round(static_cast<double>(clock::now_us() - started_us_) / 100.0) / 10.0;
    r.certificate = context_->certificate;
    r.metrics = context_->metrics;
    r.details = context_->details;
    r.memory = context_->memory;
    if (context_->first_line) {
      r.greeting = *context_->first_line;
      r.greeting_ms =
          std::round(static_cast<double>(context_->first_line_at_us - started_us_) / 100.0) / 10.0;
    }
    r.ok = true;
    if (error) {
      r.ok = false;
      try {
        std::rethrow_exception(error);
      } catch (const ProbeError& e) {
        r.cls = e.cls();
        r.message = e.what();
        r.server_line = str::printable(scope_->redact(e.server_line()), 300);
      } catch (const std::exception& e) {
        r.cls = FailureClass::internal;
        r.message = e.what();
      }
    }
    // A server may echo a password (or its base64) back: nothing it said is kept with it.
    r.message = scope_->redact(r.message);
    r.server_line = scope_->redact(r.server_line);
    redact_strings(*scope_, r.details);
    if (check_.kind->finish) check_.kind->finish(check_, r);
    result_ = std::move(r);
    // Leave the callback stack (we may be inside the scope's cancel loop or a bufferevent
    // callback) before tearing the attempt down.
    timeval now{0, 0};
    event_base_once(io_.base, -1, EV_TIMEOUT, &CheckRun::after_attempt, this, &now);
  }

  static void after_attempt(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<CheckRun*>(arg);
    self->context_.reset();
    self->scope_.reset();
    if (!self->result_.ok && self->attempts_ <= self->check_.retry && !self->cancelled_) {
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
  std::unique_ptr<RunContext> context_;
  CheckResult result_;
  int attempts_ = 0;
  int64_t started_us_ = 0;
  bool cancelled_ = false;
};

}  // namespace

std::function<void()> run_check(IoContext& io, std::shared_ptr<const config::Config> owner,
                                const config::Service& service, const config::Check& check,
                                nlohmann::json memory,
                                std::function<void(const CheckResult&)> done) {
  auto* run =
      new CheckRun(io, std::move(owner), service, check, std::move(memory), std::move(done));
  run->start_attempt();
  return [run] { run->cancel(); };
}

}  // namespace mw
