// The scheduler: every cycle, each check that is not already running is queued; queued checks
// start as long as fewer than `set limits { connections }` are open, so a cycle with N hung
// servers lasts one timeout, not N. Results feed each rule's event state; changes go to the
// dispatcher. Reload swaps the model and keeps the state of checks that still exist.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "actions/dispatcher.h"
#include "config/model.h"
#include "engine/event_state.h"
#include "engine/result.h"
#include "engine/schedule.h"
#include "net/io_context.h"
#include "state/snapshot.h"
#include "util/handles.h"

namespace mw {

struct CycleStats {
  int64_t cycle = 0;
  int checks = 0;
  int ok = 0;
  int failed = 0;
  int64_t elapsed_ms = 0;
  std::vector<std::string> failures;  // "'svc' check: reason"
};

class Engine {
 public:
  Engine(IoContext& io, actions::Dispatcher* dispatcher);

  void load(std::shared_ptr<const config::Config> config);
  [[nodiscard]] const std::shared_ptr<const config::Config>& config() const { return config_; }

  // Starts a cycle now: queues every check that is neither running nor queued, except those
  // of services schedule.h leaves out of this cycle.
  void run_cycle();
  // validate: every service is checked once, whatever its schedule and dependencies say.
  void ignore_schedules() { ignore_schedules_ = true; }
  [[nodiscard]] bool busy() const { return running_ > 0 || !queue_.empty(); }
  // Stopping: no check starts any more, the queued ones are dropped, and the running ones are
  // cancelled (their connections closed, what they hold freed); their results are not
  // recorded. `done` is called, from the loop, once none runs.
  void stop(std::function<void()> done);
  [[nodiscard]] int64_t cycles() const { return cycle_; }

  // Called after the last check of a cycle has finished.
  void on_cycle_done(std::function<void(const CycleStats&)> cb) { cycle_done_ = std::move(cb); }
  // Called whenever a result arrives (the daemon saves the state file, throttled).
  void on_result(std::function<void()> cb) { result_cb_ = std::move(cb); }

  // Maintenance: an unmonitored service is neither checked nor alerted on until it is monitored
  // again; the state file keeps it across restarts. False when no service has that name.
  bool set_monitored(const std::string& service, bool monitored);
  [[nodiscard]] bool monitored(const std::string& service) const {
    return !unmonitored_.count(service);
  }
  // Queues every check of `service` now, outside the cycle (one that is running or queued is
  // left alone). False when no service has that name.
  bool run_now(const std::string& service);

  // How long the last complete cycle took (0 before the first one ends).
  [[nodiscard]] int64_t last_cycle_ms() const { return last_cycle_ms_; }

  // `history`: everything the state file keeps, with each check's recent results (the state
  // file, the views that show them); without it, only what the status model shows (no history,
  // no rule's `previous` value, no composite's memory): what most HTTP requests cost.
  // `first`, `count`: only those services (in control-file order), for reports made a part at
  // a time.
  [[nodiscard]] state::Snapshot snapshot(bool history = true, size_t first = 0,
                                         size_t count = SIZE_MAX) const;
  // Grows whenever something a view shows changes (a result, a cycle's end, maintenance).
  [[nodiscard]] uint64_t changes() const { return changes_; }
  // `rebooted`: the state file was written before the host last booted; each service's
  // "onreboot" then says whether it is monitored (start), not (nostart) or as it was (laststate).
  void restore(const state::Snapshot& snap, bool rebooted = false);

  // Whether a result fails a rule's condition (a failed run, or a measured value past its limit).
  // Whether `rule` fails on `result`; `previous` is the value the rule saw last (for "changed").
  [[nodiscard]] static bool rule_failed(const config::Rule& rule, const CheckResult& result,
                                        nlohmann::json& previous);

  struct CheckView {
    const config::Service* service;
    const config::Check* check;
    const std::shared_ptr<const CheckResult>* last;
  };
  // In control-file order.
  [[nodiscard]] std::vector<CheckView> checks() const;

 private:
  struct Runtime {
    const config::Service* service = nullptr;
    const config::Check* check = nullptr;
    bool running = false;
    bool queued = false;
    int64_t cycle = 0;  // the cycle it was queued in
    // Shared with snapshots (the HTTP views, the state file): a result never changes once made.
    std::shared_ptr<const CheckResult> last;
    std::vector<EventState> rules;
    std::vector<nlohmann::json> previous;  // per rule: the value `changed` compares with
    int64_t runs = 0;
    nlohmann::json memory;  // what a composite check carries from one run to the next
    std::string skipped;    // why the last cycle left it out (schedule.h), empty: it ran
    std::vector<state::HistoryPoint> history;  // oldest first (a deque costs 576 bytes empty)
    time_t since = 0;  // when the check's state (any rule failed, or none) last changed
    std::map<std::string, int64_t> failures;  // failed runs by class, since the start
    std::function<void()> cancel;             // while it runs
    // The kind's status and metric labels, made once per configuration (snapshots copy them).
    std::string protocol, target;
  };
  // A cycle whose checks have not all finished. Cycles overlap when a check outlasts the
  // interval: each still gets its summary when its own last check is done.
  struct OpenCycle {
    int pending = 0;
    int64_t started_ms = 0;
  };

  static std::string key(const std::string& service, const std::string& check_id);
  [[nodiscard]] ScheduleContext schedule_context() const;
  void pump();
  [[nodiscard]] bool take_start_token();
  static void on_pump_timer(evutil_socket_t, short, void* arg);
  void finished(const std::string& key, int64_t cycle, const CheckResult& result);
  void count_done(int64_t cycle);
  void finish_cycle(int64_t cycle, int64_t started_ms);

  IoContext& io_;
  actions::Dispatcher* dispatcher_;
  std::shared_ptr<const config::Config> config_;
  std::map<std::string, Runtime> runtimes_;
  std::vector<std::string> order_;
  // runtimes_ in control-file order (service by service), so that a snapshot needs no lookup.
  std::vector<const Runtime*> ordered_;
  std::set<std::string> unmonitored_;
  std::deque<std::pair<std::string, int64_t>> queue_;  // key, the cycle it was queued in
  int running_ = 0;
  double tokens_ = 0;
  int64_t tokens_at_ms_ = 0;
  EventPtr pump_timer_;
  int64_t cycle_ = 0;
  std::map<int64_t, OpenCycle> open_cycles_;
  bool stopping_ = false;
  std::function<void()> stopped_;
  bool ignore_schedules_ = false;
  std::function<void(const CycleStats&)> cycle_done_;
  std::function<void()> result_cb_;
  int64_t last_cycle_ms_ = 0;
  uint64_t changes_ = 0;
};

}  // namespace mw
