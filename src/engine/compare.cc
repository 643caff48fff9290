#include "engine/compare.h"

#include <cmath>
#include <cstdio>

namespace mw {

nlohmann::json measured_value(const config::Comparison& c, const CheckResult& r) {
  if (c.is_text) {
    if (r.details.is_object())
      if (auto it = r.details.find(c.metric); it != r.details.end() && it->is_string()) return *it;
    return nullptr;
  }
  if (auto it = r.metrics.find(c.metric); it != r.metrics.end() && std::isfinite(it->second))
    return it->second;
  return nullptr;
}

bool comparison_failed(const config::Comparison& c, const CheckResult& r,
                       nlohmann::json& previous) {
  nlohmann::json now = measured_value(c, r);
  if (now.is_null()) return false;
  if (c.op == config::CompareOp::changed) {
    bool changed = !previous.is_null() && previous != now;
    previous = now;
    return changed;
  }
  if (c.is_text) {
    bool equal = now.get<std::string>() == c.text;
    return c.op == config::CompareOp::eq ? equal : c.op == config::CompareOp::ne && !equal;
  }
  double v = now.get<double>();
  switch (c.op) {
    case config::CompareOp::gt:
      return v > c.threshold;
    case config::CompareOp::lt:
      return v < c.threshold;
    case config::CompareOp::ge:
      return v >= c.threshold;
    case config::CompareOp::le:
      return v <= c.threshold;
    case config::CompareOp::eq:
      return v == c.threshold;
    case config::CompareOp::ne:
      return v != c.threshold;
    case config::CompareOp::changed:
      break;
  }
  return false;
}

std::string format_value(double v, const std::string& unit) {
  char buf[64];
  if (unit == " kB") {
    if (v >= 1024.0 * 1024.0) {
      snprintf(buf, sizeof buf, "%.1f GB", v / (1024.0 * 1024.0));
    } else if (v >= 1024.0) {
      snprintf(buf, sizeof buf, "%.1f MB", v / 1024.0);
    } else {
      snprintf(buf, sizeof buf, "%.0f kB", v);
    }
    return buf;
  }
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    snprintf(buf, sizeof buf, "%.1f", v);
  }
  return buf + unit;
}

std::string comparison_reason(const config::Comparison& c, const CheckResult& r) {
  nlohmann::json now = measured_value(c, r);
  std::string value = now.is_null()     ? "unknown"
                      : now.is_string() ? now.get<std::string>()
                                        : format_value(now.get<double>(), c.unit);
  // The words of the rule before its operator name the value: "cpu usage > 80%" -> "cpu usage".
  std::string name = c.shown;
  for (const char* op : {" >", " <", " =", " !", " changed"})
    if (auto at = name.find(op); at != std::string::npos) name.resize(at);
  // "failed permission 0644", "failed uid root": the value is named by what it measures.
  if (name.rfind("failed ", 0) == 0) name = c.metric;
  if (c.op == config::CompareOp::changed) {
    std::string what = c.shown.rfind("changed ", 0) == 0 ? c.shown.substr(8) : c.metric;
    return what + " changed to " + value;
  }
  return name + " is " + value + " (rule: " + c.shown + ")";
}

}  // namespace mw
