// The Prometheus text exposition format (version 0.0.4) over the status model. Labels take only
// values the control file bounds (service, check, protocol, target, failure class, step,
// action): never a user name or message text, so the number of series stays what the
// configuration makes it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>

#include "report/status.h"

namespace mw::report {

// service, action ("alert", "exec", "alertmanager"), result ("ok", "failed", "rate_limited", ...)
using ActionKey = std::tuple<std::string, std::string, std::string>;
using ActionCounts = std::map<ActionKey, int64_t>;

struct DaemonFacts {
  int64_t last_cycle_ms = 0;
  int64_t cycles = 0;
  ActionCounts actions;
};

[[nodiscard]] std::string metrics_text(const Status& snap, const DaemonFacts& facts);
// The same, appended to `out` (a buffer kept from an earlier response costs no page faults).
void append_metrics_text(std::string& out, const Status& snap, const DaemonFacts& facts);

// A sample's value: the shortest decimal that reads back as the same double ("0.0125", "1e-05"),
// "NaN", "+Inf" or "-Inf".
void append_sample_value(std::string& out, double v);
// A label value escaped as the format requires (backslash, double quote, line feed).
void append_label_value(std::string& out, const std::string& value);

}  // namespace mw::report
