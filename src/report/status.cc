#include "report/status.h"

namespace mw::report {
namespace {

// A check is failed when any of its rules is in the failed state.
std::string check_state(const state::CheckSnapshot& c) {
  bool any_ok = false;
  for (const auto& r : c.rules) {
    if (r.state == RuleState::failed) return "failed";
    if (r.state == RuleState::ok) any_ok = true;
  }
  return any_ok ? "ok" : "init";
}

std::string service_state(const ServiceStatus& s) {
  if (!s.monitored) return "unmonitored";
  bool any_ok = false;
  for (const auto& c : s.checks) {
    if (c.state == "failed") return "failed";
    if (c.state == "ok") any_ok = true;
  }
  return any_ok ? "ok" : "init";
}

}  // namespace

Status build(const state::Snapshot& snap, const DaemonInfo& daemon) {
  Status out;
  out.daemon = daemon;
  out.written = snap.written;
  out.cycles = snap.cycles;
  for (const auto& ss : snap.services) {
    ServiceStatus svc;
    svc.name = ss.name;
    svc.type = ss.type.empty() ? "host" : ss.type;
    svc.monitored = ss.monitored;
    svc.groups = ss.groups;
    for (const auto& cs : ss.checks) {
      CheckStatus c;
      c.id = cs.id;
      c.description = cs.description;
      c.kind = cs.kind;
      c.protocol = cs.protocol;
      c.target = cs.target;
      c.state = check_state(cs);
      c.last = cs.last;
      c.runs = cs.runs;
      c.since = cs.since;
      c.history = cs.history;
      if (c.last && !c.kind.empty()) {
        for (const auto& k : checks::all())
          if (k.name == c.kind && k.rows) k.rows(*c.last, c.rows);
      }
      svc.checks.push_back(std::move(c));
    }
    svc.state = service_state(svc);
    out.services.push_back(std::move(svc));
  }
  return out;
}

bool all_ok(const Status& s) {
  for (const auto& svc : s.services)
    for (const auto& c : svc.checks)
      if (!c.last || !c.last->ok) return false;
  return true;
}

}  // namespace mw::report
