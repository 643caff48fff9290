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

// The registry row of a kind, by name (a status read from a state file names its kinds).
const checks::Kind* kind_named(const std::string& name) {
  if (name.empty()) return nullptr;
  for (const auto& k : checks::all())
    if (k.name == name) return &k;
  return nullptr;
}

}  // namespace

Status build(state::Snapshot&& snap, const DaemonInfo& daemon) {
  Status out;
  out.daemon = daemon;
  out.written = snap.written;
  out.cycles = snap.cycles;
  out.services.reserve(snap.services.size());
  const checks::Kind* kind = nullptr;  // checks of one kind tend to follow each other
  for (auto& ss : snap.services) {
    ServiceStatus& svc = out.services.emplace_back();
    svc.name = std::move(ss.name);
    svc.type = ss.type.empty() ? "host" : std::move(ss.type);
    svc.monitored = ss.monitored;
    svc.groups = std::move(ss.groups);
    svc.checks.reserve(ss.checks.size());
    for (auto& cs : ss.checks) {
      CheckStatus& c = svc.checks.emplace_back();
      c.state = check_state(cs);
      c.id = std::move(cs.id);
      c.description = std::move(cs.description);
      c.kind = std::move(cs.kind);
      c.protocol = std::move(cs.protocol);
      c.target = std::move(cs.target);
      c.last = std::move(cs.last);
      c.runs = cs.runs;
      c.since = cs.since;
      c.history = std::move(cs.history);
      c.failures = std::move(cs.failures);
      if (c.last && !c.kind.empty()) {
        if (!kind || kind->name != c.kind) kind = kind_named(c.kind);
        if (kind && kind->rows) kind->rows(*c.last, c.rows);
      }
    }
    svc.state = service_state(svc);
    // What was moved out is given back as the model grows: a snapshot of 10,000 checks and
    // their model are never whole at the same time.
    std::vector<state::CheckSnapshot>().swap(ss.checks);
  }
  return out;
}

Status build(const state::Snapshot& snap, const DaemonInfo& daemon) {
  return build(state::Snapshot(snap), daemon);
}

bool all_ok(const Status& s) {
  for (const auto& svc : s.services)
    for (const auto& c : svc.checks)
      if (!c.last || !c.last->ok) return false;
  return true;
}

}  // namespace mw::report
