#include "plugin/run_once.h"

#include <event2/dns.h>
#include <event2/event.h>

#include <cstdio>

#include "checks/registry.h"
#include "daemon/daemon.h"
#include "engine/probe.h"
#include "net/gate.h"
#include "net/io_context.h"
#include "report/nagios.h"
#include "util/handles.h"

namespace mw::plugin {

std::vector<CheckResult> run_once(const std::shared_ptr<const config::Config>& config,
                                  const config::Service& service,
                                  const std::vector<const config::Check*>& checks,
                                  const std::vector<nlohmann::json>& memory) {
  daemon::prepare_process(config->settings.concurrency);
  EventBasePtr base(event_base_new());
  // Name servers are read only when a check names a host rather than an address.
  EvdnsBasePtr dns(evdns_base_new(base.get(), EVDNS_BASE_INITIALIZE_NAMESERVERS));
  if (!dns) dns.reset(evdns_base_new(base.get(), 0));
  TlsContextCache tls;
  Gate handshakes(static_cast<size_t>(config->settings.handshakes));
  IoContext io{base.get(), dns.get(), &tls, &handshakes};
  std::vector<CheckResult> results(checks.size());
  size_t pending = checks.size();
  for (size_t i = 0; i < checks.size(); ++i) {
    nlohmann::json m = i < memory.size() ? memory[i] : nlohmann::json();
    run_check(io, config, service, *checks[i], std::move(m), [&, i](const CheckResult& r) {
      results[i] = r;
      if (--pending == 0) event_base_loopexit(base.get(), nullptr);
    });
  }
  if (pending > 0) event_base_dispatch(base.get());
  return results;
}

namespace {

using report::nagios::Range;
using report::nagios::Report;
using report::nagios::Thresholds;

int print(const Report& r) {
  fputs(r.text.c_str(), stdout);
  return static_cast<int>(r.state);
}

}  // namespace

std::shared_ptr<config::Config> one_check_model(
    const std::string& service, config::ServiceKind service_kind, const std::string& kind,
    const std::string& description, std::shared_ptr<config::Spec> spec, int64_t deadline_ms) {
  auto cfg = std::make_shared<config::Config>();
  config::Service svc;
  svc.name = service;
  svc.kind = service_kind;
  config::Check chk;
  chk.timeout_ms = 30000;
  chk.deadline_ms = deadline_ms;
  chk.description = description;
  chk.id = description;
  chk.kind = &checks::get(kind);
  chk.spec = std::move(spec);
  chk.rules.emplace_back();
  svc.checks.push_back(std::move(chk));
  cfg->services.push_back(std::move(svc));
  return cfg;
}

int plugin_command(const std::shared_ptr<const config::Config>& config,
                   const std::string& parse_error, const std::vector<std::string>& args) {
  std::string service_name, check_name;
  Thresholds t;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-w" || a == "-c" || a == "--warning" || a == "--critical") {
      if (i + 1 >= args.size())
        return print(report::nagios::unknown(service_name, a + " needs a range"));
      std::string error;
      auto r = Range::parse(args[++i], error);
      if (!r) return print(report::nagios::unknown(service_name, error));
      (a == "-w" || a == "--warning" ? t.warning : t.critical) = *r;
    } else if (!a.empty() && a[0] == '-') {
      return print(report::nagios::unknown(service_name, "unknown option " + a +
                                                             " (plugin SERVICE [CHECK] "
                                                             "[-w RANGE] [-c RANGE])"));
    } else if (service_name.empty()) {
      service_name = a;
    } else if (check_name.empty()) {
      check_name = a;
    } else {
      return print(report::nagios::unknown(service_name, "unexpected argument " + a));
    }
  }
  if (service_name.empty())
    return print(report::nagios::unknown("", "plugin needs a service name"));
  if (!config) return print(report::nagios::unknown(service_name, "control file: " + parse_error));
  const config::Service* service = nullptr;
  for (const auto& s : config->services)
    if (s.name == service_name) service = &s;
  if (!service)
    return print(report::nagios::unknown(service_name,
                                         "no service '" + service_name + "' in the control file"));
  // CHECK: its id or description as `validate` shows it, or its number (1 = the first).
  std::vector<const config::Check*> checks;
  for (size_t i = 0; i < service->checks.size(); ++i) {
    const auto& c = service->checks[i];
    if (check_name.empty() || c.id == check_name || c.description == check_name ||
        check_name == std::to_string(i + 1))
      checks.push_back(&c);
  }
  if (checks.empty())
    return print(report::nagios::unknown(
        service_name, check_name.empty()
                          ? "the service has no checks"
                          : "service '" + service_name + "' has no check '" + check_name + "'"));
  auto results = run_once(config, *service, checks);
  std::vector<report::nagios::CheckOutcome> outcomes;
  for (size_t i = 0; i < checks.size(); ++i) outcomes.push_back({checks[i], results[i]});
  return print(report::nagios::service_report(*service, outcomes, t));
}

}  // namespace mw::plugin
