#include "util/cron.h"

#include <cctype>
#include <vector>

#include "util/strings.h"

namespace mw {
namespace {

struct Field {
  const char* name;
  int min;
  int max;
  const char* const* names;  // names[i] stands for min + i; nullptr: numbers only
};

const char* const kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",  "jul",
                               "aug", "sep", "oct", "nov", "dec", nullptr};
const char* const kWeekdays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", nullptr};

// A number or a name of the field; -1 when it is neither.
int value_of(const std::string& text, const Field& f) {
  if (text.empty()) return -1;
  if (text.size() <= 3 && text.find_first_not_of("0123456789") == std::string::npos)
    return std::stoi(text);
  if (!f.names) return -1;
  std::string lower = str::lower(text);
  for (int i = 0; f.names[i]; ++i)
    if (lower == f.names[i]) return f.min + i;
  return -1;
}

// One field: "*", "*/n", "a", "a-b", "a-b/n", comma-separated. Sets bits min..max (the weekday
// field also accepts 7, folded onto 0 by the caller).
bool parse_field(const std::string& text, const Field& f, int max_value, std::vector<bool>& bits,
                 std::string& error) {
  bits.assign(static_cast<size_t>(max_value) + 1, false);
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) {
      error = std::string("empty item in the ") + f.name + " field";
      return false;
    }
    int step = 1;
    if (auto slash = item.find('/'); slash != std::string::npos) {
      std::string s = item.substr(slash + 1);
      if (s.empty() || s.size() > 3 || s.find_first_not_of("0123456789") != std::string::npos ||
          std::stoi(s) == 0) {
        error = std::string("bad step '") + s + "' in the " + f.name + " field";
        return false;
      }
      step = std::stoi(s);
      item = item.substr(0, slash);
    }
    int lo = f.min, hi = max_value;
    if (item != "*") {
      auto dash = item.find('-');
      lo = value_of(item.substr(0, dash), f);
      hi = dash == std::string::npos ? lo : value_of(item.substr(dash + 1), f);
      if (lo < 0 || hi < 0) {
        error = std::string("'") + item + "' is not a value of the " + f.name + " field";
        return false;
      }
      if (lo < f.min || hi > max_value || lo > hi) {
        error = std::string("'") + item + "' is outside the " + f.name + " field (" +
                std::to_string(f.min) + "-" + std::to_string(max_value) + ")";
        return false;
      }
      // "5/15" means from 5 to the end in steps of 15, as in cron.
      if (dash == std::string::npos && step > 1) hi = max_value;
    }
    for (int v = lo; v <= hi; v += step) bits[static_cast<size_t>(v)] = true;
  }
  return true;
}

}  // namespace

std::optional<CronSpec> parse_cron(const std::string& text, std::string& error) {
  auto fields = str::split_ws(text);
  if (fields.size() != 5) {
    error = "a cron specification has 5 fields (minute hour day month weekday), got " +
            std::to_string(fields.size());
    return std::nullopt;
  }
  static const Field kFields[] = {{"minute", 0, 59, nullptr},
                                  {"hour", 0, 23, nullptr},
                                  {"day-of-month", 1, 31, nullptr},
                                  {"month", 1, 12, kMonths},
                                  {"day-of-week", 0, 6, kWeekdays}};
  CronSpec spec;
  std::vector<bool> bits;
  for (size_t i = 0; i < 5; ++i) {
    int max_value = i == 4 ? 7 : kFields[i].max;
    if (!parse_field(fields[i], kFields[i], max_value, bits, error)) return std::nullopt;
    for (size_t v = 0; v < bits.size(); ++v) {
      if (!bits[v]) continue;
      switch (i) {
        case 0:
          spec.minute.set(v);
          break;
        case 1:
          spec.hour.set(v);
          break;
        case 2:
          spec.day.set(v);
          break;
        case 3:
          spec.month.set(v);
          break;
        case 4:
          spec.weekday.set(v % 7);
          break;
      }
    }
  }
  // "*/2" restricts as much as a list does; only a plain "*" leaves the field open.
  spec.any_day = fields[2] == "*";
  spec.any_weekday = fields[4] == "*";
  return spec;
}

bool cron_matches(const CronSpec& spec, const std::tm& t) {
  if (!spec.minute.test(static_cast<size_t>(t.tm_min)) ||
      !spec.hour.test(static_cast<size_t>(t.tm_hour)) ||
      !spec.month.test(static_cast<size_t>(t.tm_mon + 1)))
    return false;
  bool day = spec.day.test(static_cast<size_t>(t.tm_mday));
  bool weekday = spec.weekday.test(static_cast<size_t>(t.tm_wday));
  if (spec.any_day && spec.any_weekday) return true;
  if (spec.any_day) return weekday;
  if (spec.any_weekday) return day;
  return day || weekday;
}

}  // namespace mw
