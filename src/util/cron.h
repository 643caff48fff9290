// Five-field cron specifications ("minute hour day-of-month month day-of-week"), as monit's
// `every "..."` takes them: numbers, ranges (a-b), steps (*/n, a-b/n), lists (a,b), month and
// weekday names (jan, mon), 7 for Sunday. Day of month and day of week combine as in cron: when
// both are restricted, a day matching either matches.
#pragma once

#include <bitset>
#include <ctime>
#include <optional>
#include <string>

namespace mw {

struct CronSpec {
  std::bitset<60> minute;
  std::bitset<24> hour;
  std::bitset<32> day;      // 1..31
  std::bitset<13> month;    // 1..12
  std::bitset<7> weekday;   // 0 = Sunday
  bool any_day = true;      // day-of-month was "*"
  bool any_weekday = true;  // day-of-week was "*"
};

// Parses a specification; on error returns nothing and says what is wrong in `error`.
[[nodiscard]] std::optional<CronSpec> parse_cron(const std::string& text, std::string& error);

// Whether the minute of `t` (local time, broken down) is one the specification names.
[[nodiscard]] bool cron_matches(const CronSpec& spec, const std::tm& t);

}  // namespace mw
