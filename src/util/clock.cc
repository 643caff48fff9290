#include "util/clock.h"

namespace mw::clock {

std::string format_local(time_t t) {
  struct tm tm_local;
  localtime_r(&t, &tm_local);
  char buf[40];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm_local);
  return buf;
}

std::string format_rfc5322(time_t t) {
  struct tm tm_local;
  localtime_r(&t, &tm_local);
  char buf[64];
  strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S %z", &tm_local);
  return buf;
}

std::string format_utc(time_t t) {
  struct tm tm_utc;
  gmtime_r(&t, &tm_utc);
  char buf[40];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
  return buf;
}

}  // namespace mw::clock
