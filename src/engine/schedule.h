// Whether a service is checked in this cycle: its "every" schedule and its dependencies. One
// function, so that every reason a service is left out of a cycle (a failing dependency, a
// schedule, later "unmonitored") is decided in one place, in this order.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <string>

#include "config/model.h"

namespace mw {

struct ScheduleContext {
  int64_t cycle = 1;  // this cycle's number (the first cycle is 1)
  std::tm now{};      // local time at the start of the cycle
  // The service of that name, or null (a name of a service type mailwarden does not run).
  std::function<const config::Service*(const std::string&)> service;
  // Whether a rule of the service is in the failed state.
  std::function<bool(const std::string&)> failing;
};

// Why `svc` is left out of this cycle, or nothing when it runs. A service is left out while
// anything it depends on, directly or through other services, is failing: it is not checked,
// so it raises no event and sends no alert until that service has recovered.
[[nodiscard]] std::optional<std::string> skip_reason(const config::Service& svc,
                                                     const ScheduleContext& ctx);

}  // namespace mw
