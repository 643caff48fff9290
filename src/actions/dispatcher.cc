#include "actions/dispatcher.h"

#include <unistd.h>

#include <algorithm>

#include "actions/mail_message.h"
#include "protocols/smtp_client.h"
#include "report/alertmanager.h"
#include "report/html.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strings.h"

namespace mw::actions {
namespace {

std::string rule_key(const config::Service& service, const config::Check& check, size_t index) {
  return service.name + '\x1f' + check.id + '\x1f' + std::to_string(index);
}

// What failed, also for rules on a measured value (the run itself may have worked).
FailureClass failure_of(const config::Rule& rule, const CheckResult& result) {
  if (!result.ok) return result.cls;
  return rule.condition == config::Condition::latency ? FailureClass::responsetime
                                                      : FailureClass::content;
}

// Why a rule failed, for $DESCRIPTION: the run's failure, or for a rule on a measured value
// of a run that worked (latency, invalid users) that value.
std::string rule_reason(const config::Rule& rule, const CheckResult& result) {
  if (!result.ok) return result.reason();
  auto metric = result.metrics.find(rule.condition == config::Condition::latency ? "latency_ms"
                                                                                 : "invalid_users");
  double value = metric == result.metrics.end() ? 0.0 : metric->second;
  char text[160];
  if (rule.condition == config::Condition::latency) {
    snprintf(text, sizeof text, "latency %.1f ms exceeds the limit of %lld ms", value,
             static_cast<long long>(rule.threshold));
    return text;
  }
  if (rule.condition == config::Condition::invalid_users) {
    std::vector<std::string> names;
    if (result.details.is_object() && result.details.contains("invalid_users"))
      for (const auto& u : result.details["invalid_users"])
        if (u.is_string() && names.size() < 5) names.push_back(u.get<std::string>());
    snprintf(text, sizeof text, "%.0f invalid user%s", value, value == 1 ? "" : "s");
    return std::string(text) + (names.empty() ? "" : ": " + str::join(names, ", ")) +
           (value > static_cast<double>(names.size()) && !names.empty() ? ", ..." : "");
  }
  return result.reason();
}

// "alert", "exec" or "alert, exec": what the rule does, for $ACTION.
std::string action_names(const std::vector<config::Action>& list) {
  std::vector<std::string> names;
  for (const auto& a : list) {
    std::string n = a.kind == config::ActionKind::alert ? "alert" : "exec";
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  }
  return str::join(names, ", ");
}

bool has_alert(const std::vector<config::Action>& list) {
  return std::any_of(list.begin(), list.end(),
                     [](const config::Action& a) { return a.kind == config::ActionKind::alert; });
}

int64_t wall_ms() {
  return static_cast<int64_t>(clock::wall()) * 1000;
}

}  // namespace

Dispatcher::Dispatcher(IoContext& io)
    : exec_(io.base), mailer_(io), alertmanager_(io), hostname_(smtp::default_hello_name()) {}

Environment event_environment(const Event& e, const std::string& action) {
  std::string date = clock::format_local(e.when);
  Environment env = {{"MAILWARDEN_SERVICE", e.service},
                     {"MAILWARDEN_EVENT", e.name},
                     {"MAILWARDEN_DESCRIPTION", e.description},
                     {"MAILWARDEN_DATE", date},
                     {"MAILWARDEN_HOST", e.host},
                     {"MAILWARDEN_ACTION", action},
                     {"MAILWARDEN_CHECK", e.check}};
  // monit's names, so that existing notification scripts work unchanged.
  env.push_back({"MONIT_SERVICE", e.service});
  env.push_back({"MONIT_EVENT", e.name});
  env.push_back({"MONIT_DESCRIPTION", e.description});
  env.push_back({"MONIT_DATE", date});
  env.push_back({"MONIT_HOST", e.host});
  env.push_back({"MONIT_ACTION", action});
  return env;
}

void Dispatcher::load(std::shared_ptr<const config::Config> config) {
  config_ = std::move(config);
  mailer_.configure(*config_);
  alertmanager_.configure(*config_);
  // Forget the memory of rules that no longer exist.
  std::map<std::string, RuleMemory> kept;
  for (const auto& svc : config_->services)
    for (const auto& chk : svc.checks)
      for (size_t i = 0; i < chk.rules.size(); ++i)
        if (auto it = rules_.find(rule_key(svc, chk, i)); it != rules_.end()) kept.insert(*it);
  rules_ = std::move(kept);
}

void Dispatcher::on_cycle_start(int64_t) {
  mailer_.retry();
  alertmanager_.retry();
}

void Dispatcher::post_alert(const config::Service& service, const Event& e, const RuleMemory& m,
                            bool resolved) {
  if (!config_ || !alertmanager_.enabled()) return;
  const auto& s = config_->settings;
  report::AlertFacts a;
  a.service = e.service;
  a.check = e.check;
  a.cls = failure_class_name(m.cls);
  a.host = e.host;
  a.summary = "'" + e.service + "' " + e.check + (resolved ? " succeeded" : " failed");
  a.description = resolved ? m.description + " (resolved: " + e.description + ")" : e.description;
  time_t now = clock::wall();
  a.starts = m.since ? m.since : now;
  a.ends = resolved ? now : now + 4 * static_cast<time_t>(std::max(s.cycle_s, 1));
  if (s.httpd.enabled) {
    std::string host = s.httpd.address.find(':') != std::string::npos ? "[" + s.httpd.address + "]"
                                                                      : s.httpd.address;
    a.generator_url = "http://" + host + ":" + std::to_string(s.httpd.port) + "/service/" +
                      report::url_path_escape(service.name);
  }
  alertmanager_.add(report::alertmanager_alert(a));
  count_action(e.service, "alertmanager", resolved ? "resolved" : "firing");
}

void Dispatcher::on_result(const config::Service& service, const config::Check& check,
                           size_t rule_index, const config::Rule& rule, Transition t,
                           const EventState& state, const CheckResult& result) {
  const std::string key = rule_key(service, check, rule_index);
  Event e;
  e.service = service.name;
  e.check = check.description;
  e.when = result.checked_at ? result.checked_at : clock::wall();
  e.host = hostname_;
  auto memory = rules_.find(key);
  if (t == Transition::failed) {
    e.name = "failed";
    e.cls = failure_of(rule, result);
    e.description = check.description + " failed: " + rule_reason(rule, result);
    RuleMemory& m = rules_[key];
    m = RuleMemory{e.cls, e.description, false, e.when, has_alert(rule.fail_actions)};
    run_actions(service, rule.fail_actions, e, key);
    if (m.posted) post_alert(service, e, m, false);
  } else if (t == Transition::recovered) {
    e.name = "succeeded";
    e.cls = memory != rules_.end() ? memory->second.cls : FailureClass::none;
    e.description = check.description + " succeeded";
    RuleMemory& m = rules_[key];
    m.recovered = true;
    run_actions(service, rule.ok_actions, e, key);
    if (m.posted) post_alert(service, e, m, true);
    m.posted = false;
  } else if (state.cycles_in_state() > 0 && state.state() == RuleState::failed) {
    e.name = "failed";
    bool failing_now = rule.condition == config::Condition::failed && !result.ok;
    e.cls = failing_now || memory == rules_.end() ? failure_of(rule, result) : memory->second.cls;
    e.description = failing_now || memory == rules_.end()
                        ? check.description + " failed: " + rule_reason(rule, result)
                        : memory->second.description;
    repeat_actions(service, rule.fail_actions, e, key, state.cycles_in_state());
    // While the failure lasts its alert is sent again each cycle, so that it stays firing.
    if (has_alert(rule.fail_actions)) {
      RuleMemory& m = rules_[key];
      if (memory == rules_.end()) m = RuleMemory{e.cls, e.description, false, e.when, true};
      m.posted = true;
      post_alert(service, e, m, false);
    }
  } else if (state.cycles_in_state() > 0 && state.state() == RuleState::ok &&
             memory != rules_.end() && memory->second.recovered) {
    e.name = "succeeded";
    e.cls = memory->second.cls;
    e.description = check.description + " succeeded";
    repeat_actions(service, rule.ok_actions, e, key, state.cycles_in_state());
  }
}

void Dispatcher::run_actions(const config::Service& service,
                             const std::vector<config::Action>& list, const Event& e,
                             const std::string& key) {
  bool mailed = false;
  for (const auto& action : list) {
    switch (action.kind) {
      case config::ActionKind::alert:
        if (e.name == "failed") {
          log::error("alert: '%s' %s", e.service.c_str(), e.description.c_str());
        } else {
          log::info("alert: '%s' %s", e.service.c_str(), e.description.c_str());
        }
        if (!mailed) mail(service, e, action_names(list), nullptr);
        mailed = true;
        count_action(e.service, "alert", "ok");
        break;
      case config::ActionKind::exec:
        run_exec(action.exec, e, key + '\x1f' + e.name + '\x1f' + action.exec.command);
        break;
    }
  }
}

void Dispatcher::repeat_actions(const config::Service& service,
                                const std::vector<config::Action>& list, const Event& e,
                                const std::string& key, int64_t cycles) {
  bool has_alert = false;
  for (const auto& action : list) {
    if (action.kind == config::ActionKind::alert) has_alert = true;
    if (action.kind == config::ActionKind::exec && action.exec.repeat_every > 0 &&
        cycles % action.exec.repeat_every == 0)
      run_exec(action.exec, e, key + '\x1f' + e.name + '\x1f' + action.exec.command);
  }
  // Reminders: a failure that lasts is mailed again to each recipient that asked for it.
  if (!has_alert || e.name != "failed" || !config_) return;
  for (const auto* r : recipients(config_->settings, service)) {
    if (r->reminder_cycles <= 0 || cycles % r->reminder_cycles != 0) continue;
    log::warning("alert: '%s' %s (reminder to %s after %lld cycles)", e.service.c_str(),
                 e.description.c_str(), r->address.c_str(), static_cast<long long>(cycles));
    mail(service, e, action_names(list), r);
  }
}

void Dispatcher::run_exec(const config::ExecSpec& spec, const Event& e, const std::string& key) {
  std::string label = "'" + e.service + "' \"" + spec.command + "\"";
  if (spec.rate) {
    RateLimiter::Verdict v = limiter_.take(key, *spec.rate, wall_ms());
    if (!v.allowed) {
      log::warning("exec %s: suppressed by its rate limit of %d per %d s (%lld suppressed so far)",
                   label.c_str(), spec.rate->count, spec.rate->per_seconds,
                   static_cast<long long>(v.suppressed));
      count_action(e.service, "exec", "rate_limited");
      return;
    }
  }
  pid_t pid = exec_.run(spec, event_environment(e, "exec"), label);
  count_action(e.service, "exec", pid > 0 ? "started" : "failed");
}

void Dispatcher::mail(const config::Service& service, const Event& e, const std::string& action,
                      const config::AlertRecipient* only) {
  if (!config_) return;
  const auto& settings = config_->settings;
  mail::Variables v;
  v.event = e.name;
  v.service = e.service;
  v.date = clock::format_local(e.when);
  v.host = e.host;
  v.action = action;
  v.description = e.description;
  for (const auto* r : recipients(settings, service)) {
    if (only && r != only) continue;
    if (!wants(r->events, e)) continue;
    mail::Parts parts = mail::compose(settings.mail_format, *r, v, mail::rfc5322_date(e.when),
                                      mail::new_message_id(e.host));
    Outgoing out;
    out.mail_from = mail::address_of(parts.from);
    out.rcpt_to = r->address;
    out.summary = str::printable(parts.subject, 160);
    out.message = mail::build(parts);
    (void)mailer_.submit(std::move(out));
  }
}

std::vector<const config::AlertRecipient*> Dispatcher::recipients(const config::Settings& settings,
                                                                  const config::Service& service) {
  std::vector<const config::AlertRecipient*> out;
  for (const auto& r : service.alerts) out.push_back(&r);
  for (const auto& r : settings.alerts) {
    auto same = [&](const std::string& a) { return str::iequals(a, r.address); };
    if (std::any_of(service.alerts.begin(), service.alerts.end(),
                    [&](const config::AlertRecipient& own) { return same(own.address); }))
      continue;
    if (std::any_of(service.noalerts.begin(), service.noalerts.end(), same)) continue;
    out.push_back(&r);
  }
  return out;
}

bool Dispatcher::wants(const config::AlertEvents& events, const Event& e) {
  bool state = e.name == "failed" ? events.on_failed : events.on_succeeded;
  bool cls = events.any_class ||
             std::find(events.classes.begin(), events.classes.end(), e.cls) != events.classes.end();
  return events.negate ? !(state && cls) : state && cls;
}

void Dispatcher::stop(int64_t max_ms, std::function<void()> done) {
  mailer_.drain(max_ms, std::move(done));
}

nlohmann::json Dispatcher::save_state() const {
  nlohmann::json rules = nlohmann::json::object();
  for (const auto& [key, m] : rules_)
    rules[key] = {{"class", failure_class_name(m.cls)},
                  {"description", m.description},
                  {"recovered", m.recovered},
                  {"since", static_cast<int64_t>(m.since)},
                  {"posted", m.posted}};
  return {{"rate_limits", limiter_.save()}, {"rules", rules}};
}

void Dispatcher::restore_state(const nlohmann::json& j) {
  if (!j.is_object()) return;
  if (j.contains("rate_limits")) limiter_.restore(j["rate_limits"]);
  if (j.contains("rules") && j["rules"].is_object()) {
    rules_.clear();
    for (const auto& [key, v] : j["rules"].items()) {
      if (!v.is_object()) continue;
      RuleMemory m;
      m.cls = failure_class_from_name(v.value("class", "none"), FailureClass::none);
      m.description = v.value("description", "");
      m.recovered = v.value("recovered", false);
      m.since = static_cast<time_t>(v.value("since", int64_t{0}));
      m.posted = v.value("posted", false);
      rules_[key] = m;
    }
  }
}

}  // namespace mw::actions
