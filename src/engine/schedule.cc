#include "engine/schedule.h"

#include <set>
#include <vector>

namespace mw {
namespace {

// The first failing service among svc's dependencies (depth first, each service once: the
// parser refuses cycles, and the visited set keeps this bounded anyway).
std::optional<std::string> failing_dependency(const config::Service& svc,
                                              const ScheduleContext& ctx) {
  std::set<std::string> seen = {svc.name};
  std::vector<const config::Service*> stack = {&svc};
  while (!stack.empty()) {
    const config::Service* s = stack.back();
    stack.pop_back();
    for (const auto& dep : s->depends) {
      if (!seen.insert(dep).second) continue;
      if (ctx.failing(dep)) return dep;
      if (const config::Service* d = ctx.service(dep)) stack.push_back(d);
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> skip_reason(const config::Service& svc, const ScheduleContext& ctx) {
  if (auto dep = failing_dependency(svc, ctx)) return "depends on '" + *dep + "', which is failing";
  const auto& s = svc.when();
  switch (s.kind) {
    case config::ServiceSchedule::Kind::always:
      break;
    case config::ServiceSchedule::Kind::cycles:
      // The first cycle checks every service; then every Nth.
      if (s.cycles > 1 && (ctx.cycle - 1) % s.cycles != 0)
        return "checked every " + std::to_string(s.cycles) + " cycles";
      break;
    case config::ServiceSchedule::Kind::cron:
      if (!cron_matches(s.cron, ctx.now)) return "outside its schedule every \"" + s.source + "\"";
      break;
    case config::ServiceSchedule::Kind::not_cron:
      if (cron_matches(s.cron, ctx.now))
        return "inside its schedule not every \"" + s.source + "\"";
      break;
  }
  return std::nullopt;
}

}  // namespace mw
