#include "checks/port/port.h"

#include <cstdio>

#include "engine/probe.h"
#include "engine/run_context.h"
#include "protocols/registry.h"

namespace mw::checks::port {

Task<void> run(RunContext& ctx) {
  const auto& pc = *ctx.check().as<config::PortCheck>();
  Probe probe(ctx, pc);
  std::exception_ptr failure;
  try {
    co_await probe.open();
    co_await pc.protocol->run(probe);
  } catch (...) {
    failure = std::current_exception();
  }
  // The greeting is kept whether or not the dialogue went on to succeed.
  ctx.first_line = probe.conn().first_line();
  ctx.first_line_at_us = probe.conn().first_line_at_us();
  if (failure) std::rethrow_exception(failure);
}

void finish(const config::Check& check, CheckResult& r) {
  const auto& pc = *check.as<config::PortCheck>();
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

std::pair<std::string, std::string> labels(const config::Check& check) {
  const auto& pc = *check.as<config::PortCheck>();
  return {pc.protocol_name, pc.endpoint.describe()};
}

}  // namespace mw::checks::port
