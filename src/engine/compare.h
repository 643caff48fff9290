// Rules on a measured value: `if cpu > 80%`, `if space usage >= 90%`, `if status != 0`,
// `if changed checksum`. One evaluator for every check kind: a kind only puts what it measured
// into CheckResult::metrics (numbers) and CheckResult::details (texts) under a name.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "config/model.h"
#include "engine/result.h"

namespace mw {

// The measured value a comparison reads: a number, a text, or null when the run did not
// measure it (a rule on a value that is not there never fails).
[[nodiscard]] nlohmann::json measured_value(const config::Comparison& c, const CheckResult& r);

// Whether the rule fails on this result. `previous` is the value of the last run that measured
// it (null before the first); for `changed` it is updated here (the engine keeps it, and the
// state file carries it across restarts). The first value seen is never a change.
[[nodiscard]] bool comparison_failed(const config::Comparison& c, const CheckResult& r,
                                     nlohmann::json& previous);

// Why it failed, for logs, mails and $DESCRIPTION: "cpu usage is 93.2% (limit: > 80%)",
// "checksum changed to 9f86d0...".
[[nodiscard]] std::string comparison_reason(const config::Comparison& c, const CheckResult& r);

// A value as people read it: 2048 kB as "2.0 MB", 93.25 % as "93.2%".
[[nodiscard]] std::string format_value(double v, const std::string& unit);

}  // namespace mw
