#include "report/nagios.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "engine/engine.h"
#include "util/strings.h"

namespace mw::report::nagios {

const char* state_name(State s) {
  switch (s) {
    case State::ok:
      return "OK";
    case State::warning:
      return "WARNING";
    case State::critical:
      return "CRITICAL";
    case State::unknown:
      return "UNKNOWN";
  }
  return "UNKNOWN";
}

State worse(State a, State b) {
  auto rank = [](State s) {
    switch (s) {
      case State::ok:
        return 0;
      case State::unknown:
        return 1;
      case State::warning:
        return 2;
      case State::critical:
        return 3;
    }
    return 1;
  };
  return rank(a) >= rank(b) ? a : b;
}

namespace {

bool parse_double(std::string_view s, double& out) {
  if (s.empty()) return false;
  // from_chars ignores the locale; it does not take a leading '+'.
  if (s.front() == '+') s.remove_prefix(1);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(out);
}

}  // namespace

std::optional<Range> Range::parse(std::string_view text, std::string& error) {
  Range r;
  r.text = std::string(text);
  std::string_view s = text;
  if (!s.empty() && s.front() == '@') {
    r.inside = true;
    s.remove_prefix(1);
  }
  auto colon = s.find(':');
  std::string_view lo = colon == std::string_view::npos ? std::string_view{} : s.substr(0, colon);
  std::string_view hi = colon == std::string_view::npos ? s : s.substr(colon + 1);
  bool ok = true;
  if (lo == "~") {
    r.start_infinite = true;
  } else if (!lo.empty()) {
    ok = parse_double(lo, r.start);
  }
  if (hi.empty()) {
    r.end_infinite = true;
    ok = ok && colon != std::string_view::npos;
  } else {
    ok = ok && parse_double(hi, r.end);
  }
  if (ok && !r.start_infinite && !r.end_infinite && r.start > r.end) {
    error = "range '" + r.text + "': the start is greater than the end";
    return std::nullopt;
  }
  if (!ok) {
    error = "'" + r.text + "' is not a range (10, 10:, ~:10, 10:20, @10:20)";
    return std::nullopt;
  }
  return r;
}

bool Range::alerts(double v) const {
  bool within = (start_infinite || v >= start) && (end_infinite || v <= end);
  return inside ? within : !within;
}

State Thresholds::judge(double value) const {
  if (critical && critical->alerts(value)) return State::critical;
  if (warning && warning->alerts(value)) return State::warning;
  return State::ok;
}

std::string number(double value, int decimals) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed, decimals);
  if (ec != std::errc()) return "0";
  std::string s(buf, end);
  return s;
}

std::string quote_label(const std::string& label) {
  std::string clean;
  for (char c : label) clean += c == '=' ? '_' : c;
  if (clean.find_first_of(" '") == std::string::npos) return clean;
  std::string out = "'";
  for (char c : clean) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string format(const Perf& p) {
  std::string out = quote_label(p.label) + "=" + number(p.value, p.decimals) + p.uom + ";" +
                    p.warn + ";" + p.crit + ";";
  if (p.min) out += number(*p.min, p.decimals);
  out += ";";
  if (p.max) out += number(*p.max, p.decimals);
  // Trailing empty fields may be dropped (guidelines); keep "value;w;c;min" when max is absent.
  while (!out.empty() && out.back() == ';') out.pop_back();
  return out;
}

std::string format(const std::vector<Perf>& ps) {
  std::vector<std::string> parts;
  for (const auto& p : ps) parts.push_back(format(p));
  return str::join(parts, " ");
}

// ---- mailwarden plugin ---------------------------------------------------------------------

namespace {

State rule_state(const config::Rule& rule, const CheckResult& r) {
  if (!rule.severity.warning) return State::critical;
  if (rule.severity.only.empty()) return State::warning;
  bool listed = std::find(rule.severity.only.begin(), rule.severity.only.end(), r.cls) !=
                rule.severity.only.end();
  // A class the rule did not list is CRITICAL; a metric rule (latency, out of sync) has no class.
  return listed || rule.condition != config::Condition::failed ? State::warning : State::critical;
}

double seconds(double ms) {
  return ms / 1000.0;
}

Perf datum(std::string label, double value, std::string uom, int decimals) {
  Perf p;
  p.label = std::move(label);
  p.value = value;
  p.uom = std::move(uom);
  p.decimals = decimals;
  return p;
}

std::string check_label(const config::Check& c) {
  return c.id;
}

}  // namespace

State check_state(const config::Check& check, const CheckResult& r, const Thresholds& t) {
  if (!r.ok && r.cls == FailureClass::internal) return State::unknown;
  State s = State::ok;
  bool covered = false;
  for (const auto& rule : check.rules) {
    if (rule.condition == config::Condition::failed) covered = true;
    nlohmann::json unused_previous;  // one run: nothing to compare a change with
    if (Engine::rule_failed(rule, r, unused_previous)) s = worse(s, rule_state(rule, r));
  }
  // A run that failed is a problem even if no rule says "if failed".
  if (!r.ok && !covered) s = worse(s, State::critical);
  return worse(s, t.judge(seconds(r.response_ms)));
}

std::vector<Perf> check_perfdata(const config::Check& check, const CheckResult& r,
                                 const Thresholds& t) {
  std::vector<Perf> out;
  std::string base = check_label(check);
  Perf time = datum(base + " time", seconds(r.response_ms), "s", 6);
  if (t.warning) time.warn = t.warning->text;
  if (t.critical) time.crit = t.critical->text;
  time.min = 0;
  time.max = seconds(static_cast<double>(check.deadline_ms));
  out.push_back(time);
  if (r.certificate) {
    Perf days = datum(base + " cert days", static_cast<double>(r.certificate->days_left), "", 0);
    if (const auto* pc = check.as<config::PortCheck>(); pc && pc->cert_min_days) {
      // The rule fails at N days or fewer: OK from N+1 up.
      std::string range = std::to_string(*pc->cert_min_days + 1) + ":";
      bool warn = !check.rules.empty() && check.rules.front().severity.warning;
      (warn ? days.warn : days.crit) = range;
    }
    out.push_back(days);
  }
  if (r.details.is_object() && r.details.contains("steps_ms") &&
      r.details["steps_ms"].is_object()) {
    for (const auto& [step, ms] : r.details["steps_ms"].items())
      if (ms.is_number())
        out.push_back(datum(base + " " + step, seconds(ms.get<double>()), "s", 6));
  }
  auto metric_rule = [&](config::Condition c) -> const config::Rule* {
    for (const auto& rule : check.rules)
      if (rule.condition == c) return &rule;
    return nullptr;
  };
  auto put_threshold = [](Perf& p, const config::Rule* rule, std::string range) {
    if (!rule) return;
    (rule->severity.warning ? p.warn : p.crit) = std::move(range);
  };
  if (auto it = r.metrics.find("latency_ms"); it != r.metrics.end()) {
    Perf p = datum(base + " delivery", seconds(it->second), "s", 6);
    if (const auto* rule = metric_rule(config::Condition::latency))
      put_threshold(p, rule, number(seconds(static_cast<double>(rule->threshold)), 3));
    p.min = 0;
    out.push_back(p);
  }
  if (auto it = r.metrics.find("out_of_sync"); it != r.metrics.end()) {
    Perf p = datum(base + " out of sync", it->second, "", 0);
    if (const auto* rule = metric_rule(config::Condition::out_of_sync))
      put_threshold(p, rule, std::to_string(std::max<int64_t>(rule->threshold, 1) - 1));
    p.min = 0;
    out.push_back(p);
  }
  if (auto it = r.metrics.find("invalid_users"); it != r.metrics.end()) {
    Perf p = datum(base + " invalid users", it->second, "", 0);
    put_threshold(p, metric_rule(config::Condition::invalid_users), "0");
    p.min = 0;
    out.push_back(p);
  }
  if (auto it = r.metrics.find("mailboxes_compared"); it != r.metrics.end()) {
    Perf p = datum(base + " compared", it->second, "", 0);
    p.min = 0;
    out.push_back(p);
  }
  return out;
}

namespace {

// Why a check is not OK: its failure, else the measured value a rule or a range objects to.
std::string problem(const config::Check& check, const CheckResult& r) {
  if (!r.ok) return r.reason();
  auto metric = [&](const char* name) {
    auto it = r.metrics.find(name);
    return it == r.metrics.end() ? 0.0 : it->second;
  };
  std::vector<std::string> why;
  for (const auto& rule : check.rules) {
    nlohmann::json unused_previous;  // one run: nothing to compare a change with
    if (!Engine::rule_failed(rule, r, unused_previous)) continue;
    switch (rule.condition) {
      case config::Condition::latency:
        why.push_back("delivered in " + number(metric("latency_ms"), 1) + " ms (limit " +
                      std::to_string(rule.threshold) + " ms)");
        break;
      case config::Condition::out_of_sync:
        why.push_back(number(metric("out_of_sync"), 0) + " mailboxes out of sync");
        break;
      case config::Condition::invalid_users:
        why.push_back(number(metric("invalid_users"), 0) + " invalid users");
        break;
      case config::Condition::compare:
        why.push_back(rule.compare->shown);
        break;
      case config::Condition::backend_down:
      case config::Condition::backend_up:
      case config::Condition::failed:
        break;
    }
  }
  if (why.empty()) return "response time " + number(r.response_ms, 1) + " ms";
  return str::join(why, ", ");
}

std::string check_line(const config::Check& check, const CheckResult& r, State s) {
  std::string line = std::string(state_name(s)) + " " + check.description + ": ";
  line += r.ok && s == State::ok ? "ok" : problem(check, r);
  line += " (" + number(r.response_ms, 1) + " ms";
  if (r.certificate) line += ", certificate " + std::to_string(r.certificate->days_left) + " days";
  if (auto it = r.metrics.find("latency_ms"); it != r.metrics.end())
    line += ", delivered in " + number(it->second, 1) + " ms";
  if (auto it = r.metrics.find("out_of_sync"); it != r.metrics.end())
    line += ", " + number(it->second, 0) + " mailboxes out of sync";
  return line + ")";
}

std::string one_line(std::string s) {
  // The status line is one line, and '|' starts the perfdata.
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '|') c = c == '|' ? '/' : ' ';
  return s;
}

}  // namespace

Report service_report(const config::Service& service, const std::vector<CheckOutcome>& outcomes,
                      const Thresholds& t) {
  Report rep;
  rep.state = State::ok;
  std::vector<std::string> problems;
  std::vector<std::string> lines;
  std::vector<Perf> perf;
  for (const auto& o : outcomes) {
    State s = check_state(*o.check, o.result, t);
    rep.state = worse(rep.state, s);
    if (s != State::ok)
      problems.push_back(o.check->description + ": " + problem(*o.check, o.result));
    lines.push_back(one_line(check_line(*o.check, o.result, s)));
    auto p = check_perfdata(*o.check, o.result, t);
    perf.insert(perf.end(), p.begin(), p.end());
  }
  if (outcomes.empty()) rep.state = State::unknown;
  std::string summary;
  if (outcomes.empty()) {
    summary = "no checks to run";
  } else if (problems.empty()) {
    summary = outcomes.size() == 1 ? outcomes[0].check->description + " ok"
                                   : std::to_string(outcomes.size()) + " checks ok";
  } else {
    summary = str::join(problems, "; ");
  }
  rep.text = one_line(service.name + " " + state_name(rep.state) + " - " + summary);
  if (!perf.empty()) rep.text += " | " + format(perf);
  rep.text += "\n";
  for (const auto& l : lines) rep.text += l + "\n";
  return rep;
}

Report unknown(const std::string& service, const std::string& why) {
  Report rep;
  rep.state = State::unknown;
  rep.text =
      one_line((service.empty() ? std::string("MAILWARDEN") : service) + " UNKNOWN - " + why) +
      "\n";
  return rep;
}

}  // namespace mw::report::nagios
