// Nagios / Icinga plugin output (monitoring-plugins developer guidelines): the state and its exit
// code, threshold ranges, performance data, and the status line of `mailwarden plugin` built
// from check results. A formatter only: running the checks is the engine's business.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/model.h"
#include "engine/result.h"

namespace mw::report::nagios {

// The values are the exit codes.
enum class State { ok = 0, warning = 1, critical = 2, unknown = 3 };

[[nodiscard]] const char* state_name(State s);  // "OK", "WARNING", "CRITICAL", "UNKNOWN"
// The state that wins when two are combined: CRITICAL > WARNING > UNKNOWN > OK.
[[nodiscard]] State worse(State a, State b);

// A threshold range: "10" (alert outside 0..10), "10:" (below 10), "~:10" (above 10), "10:20"
// (outside), "@10:20" (inside).
struct Range {
  double start = 0;
  double end = 0;
  bool start_infinite = false;
  bool end_infinite = false;
  bool inside = false;
  std::string text;  // as given, for the perfdata
  // nullopt with `error` set when `text` is not a range.
  [[nodiscard]] static std::optional<Range> parse(std::string_view text, std::string& error);
  [[nodiscard]] bool alerts(double value) const;
};

struct Thresholds {
  std::optional<Range> warning;
  std::optional<Range> critical;
  // WARNING or CRITICAL when `value` is in an alert range, else OK.
  [[nodiscard]] State judge(double value) const;
};

// A number with '.' as the decimal point whatever the locale, at most `decimals` decimals.
[[nodiscard]] std::string number(double value, int decimals);

// One performance datum: 'label'=value[UOM];[warn];[crit];[min];[max]
struct Perf {
  std::string label;
  double value = 0;
  std::string uom;  // s, ms, us, %, B, KB, MB, TB, c, or empty
  int decimals = 6;
  std::string warn;
  std::string crit;
  std::optional<double> min;
  std::optional<double> max;
};
[[nodiscard]] std::string format(const Perf& p);
[[nodiscard]] std::string format(const std::vector<Perf>& ps);  // space-separated
// 'label' quoted when needed, with ' doubled; '=' is replaced (Nagios cannot parse it).
[[nodiscard]] std::string quote_label(const std::string& label);

// ---- mailwarden plugin SERVICE [CHECK] ----------------------------------------------------

struct CheckOutcome {
  const config::Check* check = nullptr;
  CheckResult result;
};

// A check's state: a failed rule is CRITICAL unless it says "as warning" (for this failure's
// class); a run mailwarden could not do is UNKNOWN; then the -w/-c ranges on the response time
// (seconds).
[[nodiscard]] State check_state(const config::Check& check, const CheckResult& result,
                                const Thresholds& t);
// What a check measured, as perfdata labelled "<check> time", "<check> cert days", ...
[[nodiscard]] std::vector<Perf> check_perfdata(const config::Check& check,
                                               const CheckResult& result, const Thresholds& t);

struct Report {
  State state = State::unknown;
  std::string text;  // the status line, then one line per check, each ending in '\n'
};
[[nodiscard]] Report service_report(const config::Service& service,
                                    const std::vector<CheckOutcome>& outcomes, const Thresholds& t);

// "SERVICE UNKNOWN - why" (bad arguments, a broken control file, an unknown service).
[[nodiscard]] Report unknown(const std::string& service, const std::string& why);

}  // namespace mw::report::nagios
