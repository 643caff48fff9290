// Turns results into actions. On a state change a rule's actions run: alert (logged, and mailed
// to the service's recipients whose event filter takes it) and exec (within its rate limit).
// While the state lasts: a recipient's reminder every N cycles, and an exec's "repeat every N
// cycles". The event is described the same way for mail and exec (service, event, description,
// date, host, action). What must survive a restart (rate-limit buckets, the failure a recovery
// ends) goes to the state file through save_state()/restore_state().
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actions/alertmanager.h"
#include "actions/exec.h"
#include "actions/mailer.h"
#include "actions/rate_limit.h"
#include "config/model.h"
#include "engine/event_state.h"
#include "engine/result.h"
#include "net/io_context.h"
#include "report/metrics.h"

namespace mw::actions {

// One event as actions see it.
struct Event {
  std::string service;
  std::string check;                      // the check's description
  std::string name;                       // "failed" / "succeeded"
  FailureClass cls = FailureClass::none;  // what failed; for a recovery, what had failed
  std::string description;                // what happened, e.g. the failure reason
  time_t when = 0;
  std::string host;  // the host mailwarden runs on
};

class Dispatcher {
 public:
  explicit Dispatcher(IoContext& io);

  // The configuration in effect (mail servers, formats, recipients, the event queue).
  void load(std::shared_ptr<const config::Config> config);
  // A cycle starts: alert mails that wait are tried again.
  void on_cycle_start(int64_t cycle);
  // Every result of every rule: `t` says whether the state changed, `state` how long it lasted.
  void on_result(const config::Service& service, const config::Check& check, size_t rule_index,
                 const config::Rule& rule, Transition t, const EventState& state,
                 const CheckResult& result);
  // Before the state file is written: the alert mails of the state changes it records are
  // on disk (with an event queue), so that a crash never loses one.
  void persist() {
    mailer_.persist();
    alertmanager_.persist();
  }
  // mailwarden is stopping: lets the mail in flight finish (at most `max_ms`), then `done`.
  void stop(int64_t max_ms, std::function<void()> done);

  [[nodiscard]] nlohmann::json save_state() const;
  void restore_state(const nlohmann::json& j);

  [[nodiscard]] ExecRunner& exec() { return exec_; }
  // Actions taken since the start, by service, action and result (for /metrics).
  [[nodiscard]] const report::ActionCounts& action_counts() const { return counts_; }
  void count_action(const std::string& service, const std::string& action,
                    const std::string& result) {
    ++counts_[{service, action, result}];
  }
  [[nodiscard]] Mailer& mailer() { return mailer_; }
  [[nodiscard]] AlertmanagerPoster& alertmanager() { return alertmanager_; }

  // A service's recipients: its own "alert", then each "set alert" it neither names itself
  // nor refuses with "noalert".
  [[nodiscard]] static std::vector<const config::AlertRecipient*> recipients(
      const config::Settings& settings, const config::Service& service);
  // Whether a recipient's event filter takes this event.
  [[nodiscard]] static bool wants(const config::AlertEvents& events, const Event& e);

 private:
  // What a rule's last failure was: a recovery reports it, reminders repeat it.
  struct RuleMemory {
    FailureClass cls = FailureClass::none;
    std::string description;
    bool recovered = false;  // the rule is ok again after a failure
    time_t since = 0;        // when the failure began (the Alertmanager alert's startsAt)
    bool posted = false;     // an Alertmanager alert fires for it
  };

  void run_actions(const config::Service& service, const std::vector<config::Action>& list,
                   const Event& e, const std::string& key);
  void repeat_actions(const config::Service& service, const std::vector<config::Action>& list,
                      const Event& e, const std::string& key, int64_t cycles);
  // Posts the rule's alert to the Alertmanagers: firing (until 4 cycles from now) or resolved.
  void post_alert(const config::Service& service, const Event& e, const RuleMemory& m,
                  bool resolved);
  void run_exec(const config::ExecSpec& spec, const Event& e, const std::string& key);
  // Mails the event to the service's recipients (only to `only` when given).
  void mail(const config::Service& service, const Event& e, const std::string& action,
            const config::AlertRecipient* only);

  std::shared_ptr<const config::Config> config_;
  ExecRunner exec_;
  Mailer mailer_;
  AlertmanagerPoster alertmanager_;
  RateLimiter limiter_;
  std::map<std::string, RuleMemory> rules_;
  std::string hostname_;
  report::ActionCounts counts_;
};

[[nodiscard]] Environment event_environment(const Event& e, const std::string& action);

}  // namespace mw::actions
