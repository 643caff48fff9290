// Monotonic and wall-clock time in the units mailwarden reports.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>

namespace mw::clock {

[[nodiscard]] inline int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

[[nodiscard]] inline int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

[[nodiscard]] inline time_t wall() {
  return time(nullptr);
}

// "2026-11-25 18:34:35" in local time, as alerts and status show it.
[[nodiscard]] std::string format_local(time_t t);
// "Wed, 25 Nov 2026 18:34:35 +0000" (local time, RFC 5322), for mail headers.
[[nodiscard]] std::string format_rfc5322(time_t t);
// RFC 3339 UTC, for JSON.
[[nodiscard]] std::string format_utc(time_t t);

}  // namespace mw::clock
