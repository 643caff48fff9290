#include "actions/dispatcher.h"

#include <unistd.h>

#include <algorithm>

#include "actions/mail_message.h"
#include "engine/compare.h"
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
  if (rule.condition == config::Condition::compare) return rule.compare->cls;
  if (!result.ok) return result.cls;
  return rule.condition == config::Condition::latency ? FailureClass::responsetime
                                                      : FailureClass::content;
}

// Why a rule failed, for $DESCRIPTION: the run's failure, or for a rule on a measured value
// of a run that worked (latency, invalid users) that value.
std::string rule_reason(const config::Rule& rule, const CheckResult& result) {
  if (rule.condition == config::Condition::compare) return comparison_reason(*rule.compare, result);
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
const char* action_name(config::ActionKind k) {
  switch (k) {
    case config::ActionKind::alert:
      return "alert";
    case config::ActionKind::exec:
      return "exec";
    case config::ActionKind::start:
      return "start";
    case config::ActionKind::stop:
      return "stop";
    case config::ActionKind::restart:
      return "restart";
    case config::ActionKind::unmonitor:
      return "unmonitor";
    case config::ActionKind::monitor:
      return "monitor";
    case config::ActionKind::director:
      return "director";
  }
  return "?";
}

std::string action_names(const std::vector<config::Action>& list) {
  std::vector<std::string> names;
  for (const auto& a : list) {
    std::string n = action_name(a.kind);
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
    : exec_(io.base),
      director_(io),
      mailer_(io),
      alertmanager_(io),
      hostname_(smtp::default_hello_name()) {}

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
  for (const auto& kv : e.extra_env) env.push_back(kv);
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

void Dispatcher::on_cycle_start(int64_t cycle) {
  cycle_ = cycle;
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
  if (rule.condition == config::Condition::backend_down ||
      rule.condition == config::Condition::backend_up) {
    on_backend_events(service, check, rule, key, result);
    return;
  }
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
        if (e.name == "failed" || e.name == "backend down") {
          log::error("alert: '%s' %s", e.service.c_str(), e.description.c_str());
        } else {
          log::info("alert: '%s' %s", e.service.c_str(), e.description.c_str());
        }
        if (!mailed) mail(service, e, action_names(list), nullptr);
        mailed = true;
        count_action(e.service, "alert", "ok");
        break;
      case config::ActionKind::exec:
        run_exec(*action.exec, e, key + '\x1f' + e.name + '\x1f' + action.exec->command);
        break;
      case config::ActionKind::director:
        run_director(*action.director, service,
                     key + '\x1f' + e.name + '\x1f' + director_op_name(action.director->op));
        break;
      case config::ActionKind::start:
      case config::ActionKind::stop:
      case config::ActionKind::restart: {
        ControlVerb verb = action.kind == config::ActionKind::start  ? ControlVerb::start
                           : action.kind == config::ActionKind::stop ? ControlVerb::stop
                                                                     : ControlVerb::restart;
        if (service.mode == config::ServiceMode::passive) {
          // mode passive: watched and alerted on, never started, stopped or restarted by a rule
          // (the start, stop and restart verbs still work).
          log::info("'%s': %s not run: mode passive", e.service.c_str(), control_verb_name(verb));
          break;
        }
        std::string why;
        if (!control(service, verb, e.description, why))
          log::warning("'%s': %s not run: %s", e.service.c_str(), control_verb_name(verb),
                       why.c_str());
        break;
      }
      case config::ActionKind::unmonitor:
      case config::ActionKind::monitor: {
        bool on = action.kind == config::ActionKind::monitor;
        log::warning("'%s': %s (%s)", e.service.c_str(), on ? "monitored again" : "unmonitored",
                     e.description.c_str());
        if (monitor_hook_) monitor_hook_(e.service, on);
        break;
      }
    }
  }
}

void Dispatcher::on_backend_events(const config::Service& service, const config::Check& check,
                                   const config::Rule& rule, const std::string& key,
                                   const CheckResult& result) {
  if (!result.details.is_object() || !result.details.contains("events")) return;
  const std::string wanted =
      rule.condition == config::Condition::backend_down ? "backend down" : "backend up";
  for (const auto& ev : result.details["events"]) {
    if (!ev.is_object() || ev.value("event", "") != wanted) continue;
    Event e;
    e.service = service.name;
    e.check = check.description;
    e.name = wanted;
    e.cls = wanted == "backend down" ? FailureClass::connect : FailureClass::none;
    e.description = ev.value("description", "");
    e.when = result.checked_at ? result.checked_at : clock::wall();
    e.host = hostname_;
    e.extra_env = {{"MAILWARDEN_BACKEND", ev.value("backend", "")},
                   {"MAILWARDEN_BACKEND_TAG", ev.value("tag", "")},
                   {"MAILWARDEN_DRY_RUN", ev.value("dry_run", false) ? "yes" : "no"}};
    if (ev.value("dry_run", false)) {
      // A dry run alerts what it would do and runs no command.
      for (const auto& a : rule.fail_actions)
        if (a.kind != config::ActionKind::alert)
          log::info("'%s' dry run: not running the %s action for %s", e.service.c_str(),
                    a.kind == config::ActionKind::exec ? "exec" : "director",
                    e.description.c_str());
      std::vector<config::Action> alerts;
      for (const auto& a : rule.fail_actions)
        if (a.kind == config::ActionKind::alert) alerts.push_back(a);
      run_actions(service, alerts, e, key + '\x1f' + ev.value("backend", ""));
      continue;
    }
    run_actions(service, rule.fail_actions, e, key + '\x1f' + ev.value("backend", ""));
  }
}

void Dispatcher::run_director(const config::DirectorActionSpec& spec,
                              const config::Service& service, const std::string& key) {
  std::string label = "'" + service.name + "' director " + director_op_name(spec.op);
  std::optional<Endpoint> admin = spec.via;
  if (!admin && config_) admin = config_->settings.director_admin;
  if (!admin) {
    log::error("%s: no director-admin socket (set director socket \"PATH\")", label.c_str());
    return;
  }
  if (spec.rate) {
    RateLimiter::Verdict v = limiter_.take(key, *spec.rate, wall_ms());
    if (!v.allowed) {
      log::warning("%s: suppressed by its rate limit of %d per %d s (%lld suppressed so far)",
                   label.c_str(), spec.rate->count, spec.rate->per_seconds,
                   static_cast<long long>(v.suppressed));
      return;
    }
  }
  director_.run(spec.op, *admin, service.address, label);
}

bool Dispatcher::control(const config::Service& service, ControlVerb verb,
                         const std::string& reason, std::string& why, ServiceControl::Done done) {
  Event e;
  e.service = service.name;
  e.name = control_verb_name(verb);
  e.description = reason;
  e.when = clock::wall();
  e.host = hostname_;
  std::string name = service.name;
  std::string verb_name = control_verb_name(verb);
  bool started = control_.run(
      service, verb, event_environment(e, verb_name),
      [this, name, verb_name, done = std::move(done)](bool ok, const std::string& message) {
        if (!ok) service_event(name, verb_name, FailureClass::exec, message, verb_name);
        if (done) done(ok, message);
      },
      why);
  if (!started) return false;
  log::info("'%s': %s (%s)", service.name.c_str(), verb_name.c_str(), reason.c_str());
  if (verb != ControlVerb::stop) count_restart(service);
  return true;
}

void Dispatcher::count_restart(const config::Service& service) {
  auto& cycles = restarts_[service.name];
  cycles.push_back(cycle_);
  int64_t longest = 0;
  for (const auto& limit : service.restart_limits)
    longest = std::max<int64_t>(longest, limit.cycles);
  // Only what a limit can still count is kept.
  cycles.erase(std::remove_if(cycles.begin(), cycles.end(),
                              [&](int64_t c) { return c <= cycle_ - longest; }),
               cycles.end());
  for (const auto& limit : service.restart_limits) {
    int64_t n = std::count_if(cycles.begin(), cycles.end(),
                              [&](int64_t c) { return c > cycle_ - limit.cycles; });
    if (n < limit.restarts) continue;
    std::string description = "'" + service.name + "' was started or restarted " +
                              std::to_string(n) + " times within " + std::to_string(limit.cycles) +
                              " cycles";
    cycles.clear();
    Event e;
    e.service = service.name;
    e.check = "restarts";
    e.name = "failed";
    e.cls = FailureClass::exec;
    e.description = description;
    e.when = clock::wall();
    e.host = hostname_;
    log::error("'%s': %s", service.name.c_str(), description.c_str());
    run_actions(service, limit.actions, e, service.name + "\x1frestarts");
    break;
  }
}

void Dispatcher::service_event(const std::string& service, const std::string& check,
                               FailureClass cls, const std::string& description,
                               const std::string& action) {
  if (!config_) return;
  Event e;
  e.service = service;
  e.check = check;
  e.name = "failed";
  e.cls = cls;
  e.description = "'" + service + "' " + description;
  e.when = clock::wall();
  e.host = hostname_;
  log::error("alert: %s", e.description.c_str());
  for (const auto& svc : config_->services)
    if (svc.name == service) mail(svc, e, action, nullptr);
}

void Dispatcher::instance_event(const std::string& what, const std::string& description) {
  if (!config_) return;
  config::Service self;  // mailwarden itself: only the `set alert` recipients
  self.name = hostname_;
  Event e;
  e.service = hostname_;
  e.check = "mailwarden";
  e.name = what;
  e.cls = FailureClass::instance;
  e.description = description;
  e.when = clock::wall();
  e.host = hostname_;
  log::info("instance: %s", description.c_str());
  // Mailed only to the recipients that name `instance` in their events: monit mails them to
  // everyone unless told `not on { instance }`, which turned every restart of a watchdog into
  // mail nobody asked for.
  for (const auto& r : config_->settings.alerts) {
    const auto& ev = r.events;
    bool asked =
        !ev.negate && !ev.any_class &&
        std::find(ev.classes.begin(), ev.classes.end(), FailureClass::instance) != ev.classes.end();
    if (asked) mail(self, e, "alert", &r);
  }
}

void Dispatcher::repeat_actions(const config::Service& service,
                                const std::vector<config::Action>& list, const Event& e,
                                const std::string& key, int64_t cycles) {
  bool has_alert = false;
  for (const auto& action : list) {
    if (action.kind == config::ActionKind::alert) has_alert = true;
    // A service that is still down after its start program ran is started again each cycle
    // (as monit does), bounded by its "N restarts within M cycles" limits.
    if (e.name == "failed" &&
        (action.kind == config::ActionKind::start || action.kind == config::ActionKind::restart)) {
      std::string why;
      ControlVerb verb =
          action.kind == config::ActionKind::start ? ControlVerb::start : ControlVerb::restart;
      if (!control(service, verb, e.description, why))
        log::debug("'%s': %s not run again: %s", e.service.c_str(), control_verb_name(verb),
                   why.c_str());
    }
    if (action.kind == config::ActionKind::exec && action.exec->repeat_every > 0 &&
        cycles % action.exec->repeat_every == 0)
      run_exec(*action.exec, e, key + '\x1f' + e.name + '\x1f' + action.exec->command);
    if (action.kind == config::ActionKind::director && action.director->repeat_every > 0 &&
        cycles % action.director->repeat_every == 0)
      run_director(*action.director, service,
                   key + '\x1f' + e.name + '\x1f' + director_op_name(action.director->op));
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
  bool failing = e.name == "failed" || e.name == "backend down";
  bool state = failing ? events.on_failed : events.on_succeeded;
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
  // Moved in, not copied (an initializer list copies): a rule per check adds up.
  nlohmann::json out = nlohmann::json::object();
  out["rate_limits"] = limiter_.save();
  out["rules"] = std::move(rules);
  return out;
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
