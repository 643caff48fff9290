#include "engine/run_context.h"

namespace mw {

RunContext::RunContext(IoContext& io, Scope& scope, const config::Check& check,
                       std::string log_prefix, nlohmann::json memory_in)
    : memory(std::move(memory_in)),
      io_(io),
      scope_(scope),
      check_(check),
      log_prefix_(std::move(log_prefix)) {
  if (memory.is_null()) memory = nlohmann::json::object();
}

std::unique_ptr<Connection> RunContext::connection(const std::string& label) {
  ConnectionOptions opts;
  opts.timeout_ms = check_.timeout_ms;
  opts.log_prefix = log_prefix_ + " " + label;
  opts.on_certificate = [this](const std::shared_ptr<const CertInfo>& c) { certificate = c; };
  return std::make_unique<Connection>(io_, scope_, std::move(opts));
}

Task<std::unique_ptr<Connection>> RunContext::open(const Endpoint& endpoint, config::TlsMode mode,
                                                   const TlsSettings& tls,
                                                   const std::string& label) {
  auto conn = connection(label);
  co_await conn->connect(endpoint);
  if (mode == config::TlsMode::implicit) co_await conn->start_tls(tls, endpoint.host);
  co_return conn;
}

}  // namespace mw
