#include "engine/engine.h"

#include <algorithm>
#include <cstdlib>

#include <tuple>
#include <unordered_map>
#include "engine/compare.h"

#include "checks/registry.h"
#include "engine/probe.h"
#include "engine/schedule.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strings.h"

namespace mw {

Engine::Engine(IoContext& io, actions::Dispatcher* dispatcher) : io_(io), dispatcher_(dispatcher) {}

std::string Engine::key(const std::string& service, const std::string& check_id) {
  return service + '\x1f' + check_id;
}

void Engine::load(std::shared_ptr<const config::Config> config) {
  std::map<std::string, Runtime> next;
  std::vector<std::string> order;
  std::set<std::string_view> known;  // the services of the running configuration
  if (config_)
    for (const auto& svc : config_->services) known.insert(svc.name);
  for (const auto& svc : config->services) {
    // mode manual: not monitored until a verb (start, monitor) says so; a service the running
    // configuration already had keeps its state. validate checks every service.
    if (svc.mode == config::ServiceMode::manual && !known.count(svc.name) && !ignore_schedules_)
      unmonitored_.insert(svc.name);
    for (const auto& chk : svc.checks) {
      std::string k = key(svc.name, chk.id);
      Runtime rt;
      if (auto it = runtimes_.find(k); it != runtimes_.end()) {
        rt = std::move(it->second);
        if (rt.rules.size() != chk.rules.size()) rt.rules.assign(chk.rules.size(), EventState{});
      } else {
        rt.rules.assign(chk.rules.size(), EventState{});
      }
      rt.previous.resize(chk.rules.size());
      rt.service = &svc;
      rt.check = &chk;
      rt.protocol.clear();
      rt.target.clear();
      if (chk.kind->labels) std::tie(rt.protocol, rt.target) = chk.kind->labels(chk);
      order.push_back(k);
      next.emplace(k, std::move(rt));
    }
  }
  runtimes_ = std::move(next);
  order_ = std::move(order);
  ordered_.clear();
  ordered_.reserve(order_.size());
  for (const auto& k : order_) ordered_.push_back(&runtimes_.at(k));
  config_ = std::move(config);
  if (dispatcher_) dispatcher_->load(config_);
}

void Engine::run_cycle() {
  if (stopping_) return;
  ++cycle_;
  OpenCycle& open = open_cycles_[cycle_];
  open.started_ms = clock::now_ms();
  if (dispatcher_) dispatcher_->on_cycle_start(cycle_);  // retries alert mails that wait
  // Decided for every service before any check of this cycle starts, from the states the last
  // cycle left.
  std::map<std::string, std::optional<std::string>> skip;
  ScheduleContext ctx = schedule_context();
  if (!ignore_schedules_)
    for (const auto& svc : config_->services) skip[svc.name] = skip_reason(svc, ctx);
  for (const auto& k : order_) {
    Runtime& rt = runtimes_[k];
    if (unmonitored_.count(rt.service->name)) continue;
    const auto& reason = skip[rt.service->name];
    if (reason) {
      if (rt.skipped != *reason)
        log::info("'%s' %s: not checked: %s", rt.service->name.c_str(),
                  rt.check->description.c_str(), reason->c_str());
      rt.skipped = *reason;
      continue;
    }
    rt.skipped.clear();
    // While its start, stop or restart program runs, a service is not checked: a half-started
    // server would only raise the events that made it restart.
    if (dispatcher_ && dispatcher_->controlling(rt.service->name)) {
      log::debug("'%s': a start/stop program is running, not checked this cycle",
                 rt.service->name.c_str());
      continue;
    }
    if (rt.running || rt.queued) {
      log::debug("'%s' %s: still running from an earlier cycle, not started again",
                 rt.service->name.c_str(), rt.check->description.c_str());
      continue;
    }
    rt.queued = true;
    rt.cycle = cycle_;
    ++open.pending;
    queue_.emplace_back(k, cycle_);
  }
  if (open.pending == 0) {
    int64_t started = open.started_ms;
    open_cycles_.erase(cycle_);
    finish_cycle(cycle_, started);
    return;
  }
  pump();
}

void Engine::stop(std::function<void()> done) {
  stopping_ = true;
  stopped_ = std::move(done);
  if (pump_timer_) evtimer_del(pump_timer_.get());
  for (auto& [k, cycle] : queue_)
    if (auto it = runtimes_.find(k); it != runtimes_.end()) it->second.queued = false;
  queue_.clear();
  open_cycles_.clear();
  // Cancelling resumes the check's coroutines at once; each ends in finished(), later.
  std::vector<std::function<void()>> cancels;
  for (auto& [k, rt] : runtimes_)
    if (rt.running && rt.cancel) cancels.push_back(rt.cancel);
  for (auto& c : cancels) c();
  if (running_ == 0 && stopped_) {
    auto cb = std::move(stopped_);
    stopped_ = nullptr;
    cb();
  }
}

ScheduleContext Engine::schedule_context() const {
  ScheduleContext ctx;
  ctx.cycle = cycle_;
  time_t now = time(nullptr);
  localtime_r(&now, &ctx.now);
  ctx.service = [this](const std::string& name) -> const config::Service* {
    for (const auto& svc : config_->services)
      if (svc.name == name) return &svc;
    return nullptr;
  };
  ctx.failing = [this](const std::string& name) {
    for (const auto& [k, rt] : runtimes_)
      if (rt.service->name == name)
        for (const auto& es : rt.rules)
          if (es.state() == RuleState::failed) return true;
    return false;
  };
  return ctx;
}

bool Engine::rule_failed(const config::Rule& rule, const CheckResult& result,
                         nlohmann::json& previous) {
  auto metric = [&](const char* name) {
    auto it = result.metrics.find(name);
    return it == result.metrics.end() ? 0.0 : it->second;
  };
  switch (rule.condition) {
    case config::Condition::failed:
      return !result.ok;
    case config::Condition::out_of_sync:
      return metric("out_of_sync") >= static_cast<double>(std::max<int64_t>(rule.threshold, 1));
    case config::Condition::invalid_users:
      return metric("invalid_users") >= 1;
    case config::Condition::latency:
      return result.metrics.count("latency_ms") &&
             metric("latency_ms") > static_cast<double>(rule.threshold);
    case config::Condition::backend_down:
    case config::Condition::backend_up:
      return false;  // events, not a state: the dispatcher runs their actions per event
    case config::Condition::compare:
      return comparison_failed(*rule.compare, result, previous);
  }
  return !result.ok;
}

// Starts are paced by a token bucket (set limits { startrate: N }): a cycle of a thousand checks
// ramps up over a fraction of a second instead of opening a thousand connections in the same
// millisecond. Monitored servers see no thundering herd, and far fewer TLS sessions are alive at
// once; every check still starts long before any timeout could matter.
bool Engine::take_start_token() {
  int rate = config_ ? config_->settings.start_rate : 0;
  if (rate <= 0) return true;
  double burst = std::max(1.0, rate / 10.0);
  int64_t now = clock::now_ms();
  tokens_ = std::min(burst, tokens_ + static_cast<double>(now - tokens_at_ms_) * rate / 1000.0);
  tokens_at_ms_ = now;
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

void Engine::on_pump_timer(evutil_socket_t, short, void* arg) {
  static_cast<Engine*>(arg)->pump();
}

void Engine::pump() {
  int cap = config_ ? config_->settings.concurrency : 1;
  while (running_ < cap && !queue_.empty()) {
    if (!take_start_token()) {
      if (!pump_timer_) pump_timer_.reset(evtimer_new(io_.base, &Engine::on_pump_timer, this));
      timeval tv{0, 5000};
      evtimer_add(pump_timer_.get(), &tv);
      return;
    }
    auto [k, cycle] = std::move(queue_.front());
    queue_.pop_front();
    auto it = runtimes_.find(k);
    if (it == runtimes_.end()) {  // removed by a reload while it waited
      count_done(cycle);
      continue;
    }
    Runtime& rt = it->second;
    rt.queued = false;
    rt.running = true;
    ++running_;
    rt.cancel =
        run_check(io_, config_, *rt.service, *rt.check, rt.memory,
                  [this, k = k, cycle = cycle](const CheckResult& r) { finished(k, cycle, r); });
  }
}

// A check of `cycle` is over (run, or dropped by a reload): the cycle ends with its last one.
void Engine::count_done(int64_t cycle) {
  auto it = open_cycles_.find(cycle);
  if (it == open_cycles_.end() || --it->second.pending > 0) return;
  int64_t started = it->second.started_ms;
  open_cycles_.erase(it);
  finish_cycle(cycle, started);
}

void Engine::finished(const std::string& k, int64_t cycle, const CheckResult& result) {
  --running_;
  if (stopping_) {
    // Cancelled by the stop: not a result of the monitored server, so nothing is recorded.
    if (auto it = runtimes_.find(k); it != runtimes_.end()) {
      it->second.running = false;
      it->second.cancel = nullptr;
    }
    if (running_ == 0 && stopped_) {
      auto cb = std::move(stopped_);
      stopped_ = nullptr;
      cb();
    }
    return;
  }
  auto it = runtimes_.find(k);
  if (it != runtimes_.end()) {
    Runtime& rt = it->second;
    rt.running = false;
    rt.cancel = nullptr;
    auto last = std::make_shared<CheckResult>(result);
    rt.memory = std::move(last->memory);  // kept once, in the runtime
    last->memory = nullptr;
    // No face of the daemon shows a server's first line (only the plugin's one-shot runs do):
    // 10,000 results would keep a megabyte of the same greetings.
    std::string().swap(last->greeting);
    ++rt.runs;
    ++changes_;
    if (!result.ok) ++rt.failures[failure_class_name(result.cls)];
    if (rt.history.size() >= state::kHistoryLength)
      rt.history.erase(rt.history.begin(),
                       rt.history.begin() + static_cast<std::ptrdiff_t>(rt.history.size() -
                                                                        state::kHistoryLength + 1));
    rt.history.push_back({result.checked_at, result.ok, result.response_ms, result.cls});
    const auto& svc = *rt.service;
    const auto& chk = *rt.check;
    // Unmonitored while it ran (an action of another check of the service, or a verb): the
    // result is kept for status, but raises no event.
    bool silent = unmonitored_.count(svc.name) > 0;
    bool was_failed = std::any_of(rt.rules.begin(), rt.rules.end(), [](const EventState& e) {
      return e.state() == RuleState::failed;
    });
    bool was_known = rt.since != 0;
    log::debug("'%s' %s: %s (%.1f ms)", svc.name.c_str(), chk.description.c_str(),
               result.reason().c_str(), result.response_ms);
    std::vector<const config::Rule*> limits_passed;
    for (size_t i = 0; i < chk.rules.size(); ++i) {
      const auto& rule = chk.rules[i];
      bool rule_fails = rule_failed(rule, result, rt.previous[i]);
      if (rule_fails && rule.condition == config::Condition::compare)
        limits_passed.push_back(&rule);
      Transition t = rt.rules[i].record(rule_fails, rule.fail_rule, rule.ok_rule);
      if (!dispatcher_ || silent) continue;  // validate: the caller prints the results
      if (t == Transition::failed) {
        log::error("'%s' %s failed: %s", svc.name.c_str(), chk.description.c_str(),
                   rule.condition == config::Condition::compare
                       ? comparison_reason(*rule.compare, result).c_str()
                       : result.reason().c_str());
      } else if (t == Transition::recovered) {
        log::info("'%s' %s succeeded again", svc.name.c_str(), chk.description.c_str());
      }
      // Every result, not only changes: reminders and "repeat every N cycles" count on it.
      dispatcher_->on_result(svc, chk, i, rule, t, rt.rules[i], result);
    }
    // A run that worked but measured a value past a rule's limit is shown as failed, with the
    // value and the rule (status, validate); the rules above saw the run itself.
    if (last->ok && !limits_passed.empty()) {
      std::vector<std::string> reasons;
      for (const auto* rule : limits_passed)
        reasons.push_back(comparison_reason(*rule->compare, result));
      last->ok = false;
      last->cls = limits_passed.front()->compare->cls;
      last->message = str::join(reasons, "; ");
    }
    rt.last = std::move(last);
    bool failed_now = std::any_of(rt.rules.begin(), rt.rules.end(), [](const EventState& e) {
      return e.state() == RuleState::failed;
    });
    if (!was_known || failed_now != was_failed) rt.since = result.checked_at;
  }
  count_done(cycle);  // also when a reload removed the check while it ran
  if (result_cb_) result_cb_();
  pump();
}

void Engine::finish_cycle(int64_t cycle, int64_t started_ms) {
  CycleStats stats;
  stats.cycle = cycle;
  stats.elapsed_ms = clock::now_ms() - started_ms;
  last_cycle_ms_ = stats.elapsed_ms;
  ++changes_;
  for (const auto& k : order_) {
    const Runtime& rt = runtimes_[k];
    if (!rt.last || unmonitored_.count(rt.service->name)) continue;  // not checked this cycle
    ++stats.checks;
    if (rt.last->ok) {
      ++stats.ok;
    } else {
      ++stats.failed;
      stats.failures.push_back("'" + rt.service->name + "' " + rt.check->description + ": " +
                               rt.last->reason());
    }
  }
  if (cycle_done_) cycle_done_(stats);
}

bool Engine::set_monitored(const std::string& service, bool monitored) {
  if (!config_) return false;
  bool known = std::any_of(config_->services.begin(), config_->services.end(),
                           [&](const config::Service& s) { return s.name == service; });
  if (!known) return false;
  if (monitored) {
    if (unmonitored_.erase(service)) log::info("'%s' monitored again", service.c_str());
  } else if (unmonitored_.insert(service).second) {
    log::info("'%s' unmonitored: no checks and no alerts until it is monitored again",
              service.c_str());
  }
  ++changes_;
  if (result_cb_) result_cb_();  // the state file keeps it
  return true;
}

bool Engine::run_now(const std::string& service) {
  bool known = false;
  for (const auto& k : order_) {
    Runtime& rt = runtimes_[k];
    if (rt.service->name != service) continue;
    known = true;
    if (rt.running || rt.queued || unmonitored_.count(service)) continue;
    rt.queued = true;
    rt.cycle = -1;  // outside any cycle: its end does not count for the cycle's summary
    queue_.emplace_back(k, -1);
  }
  if (known) pump();
  return known;
}

std::vector<Engine::CheckView> Engine::checks() const {
  std::vector<CheckView> out;
  for (const auto& k : order_) {
    const Runtime& rt = runtimes_.at(k);
    out.push_back(CheckView{rt.service, rt.check, &rt.last});
  }
  return out;
}

state::Snapshot Engine::snapshot(bool history, size_t first, size_t count) const {
  state::Snapshot snap;
  snap.cycles = cycle_;
  if (!config_) return snap;
  const auto& services = config_->services;
  first = std::min(first, services.size());
  count = std::min(count, services.size() - first);
  snap.services.reserve(count);
  auto next = ordered_.begin();  // the runtimes in the order of the loops below
  for (size_t i = 0; i < first; ++i) next += static_cast<std::ptrdiff_t>(services[i].checks.size());
  for (size_t i = first; i < first + count; ++i) {
    const auto& svc = services[i];
    state::ServiceSnapshot ss;
    ss.name = svc.name;
    ss.type = svc.type;
    ss.groups = svc.groups;
    ss.monitored = !unmonitored_.count(svc.name);
    ss.checks.reserve(svc.checks.size());
    for (const auto& chk : svc.checks) {
      if (next == ordered_.end() || (*next)->check != &chk) abort();  // load() keeps them in step
      const Runtime& rt = **next++;
      state::CheckSnapshot& cs = ss.checks.emplace_back();
      cs.id = chk.id;
      cs.description = chk.description;
      cs.kind = chk.kind->name;
      cs.protocol = rt.protocol;
      cs.target = rt.target;
      cs.since = rt.since;
      cs.failures = rt.failures;
      cs.last = rt.last;
      cs.runs = rt.runs;
      cs.rules.reserve(rt.rules.size());
      for (size_t i = 0; i < rt.rules.size(); ++i) {
        const auto& es = rt.rules[i];
        cs.rules.push_back({es.state(), es.history(), es.recorded(), es.cycles_in_state(), {}});
        if (history && i < rt.previous.size()) cs.rules.back().previous = rt.previous[i];
      }
      if (!history) continue;  // a view: the status model reads none of what follows
      cs.history.assign(rt.history.begin(), rt.history.end());
      cs.memory = rt.memory;
    }
    snap.services.push_back(std::move(ss));
  }
  return snap;
}

void Engine::restore(const state::Snapshot& snap, bool rebooted) {
  cycle_ = snap.cycles;
  // By name: a search of the whole list per service would cost 10,000 services 10^8 compares.
  std::unordered_map<std::string_view, const config::Service*> by_name;
  if (config_)
    for (const auto& s : config_->services) by_name.emplace(s.name, &s);
  for (const auto& ss : snap.services) {
    auto found = by_name.find(ss.name);
    const config::Service* svc = found == by_name.end() ? nullptr : found->second;
    if (svc) {
      bool monitored = ss.monitored;
      if (rebooted && svc->onreboot == config::OnReboot::start) monitored = true;
      if (rebooted && svc->onreboot == config::OnReboot::nostart) monitored = false;
      if (monitored)
        unmonitored_.erase(ss.name);
      else
        unmonitored_.insert(ss.name);
    }
    for (const auto& cs : ss.checks) {
      auto it = runtimes_.find(key(ss.name, cs.id));
      if (it == runtimes_.end()) continue;
      Runtime& rt = it->second;
      rt.last = cs.last;
      rt.runs = cs.runs;
      rt.memory = cs.memory;
      rt.since = cs.since;
      rt.history.assign(cs.history.begin(), cs.history.end());
      if (cs.rules.size() == rt.rules.size())
        for (size_t i = 0; i < cs.rules.size(); ++i) {
          rt.rules[i].restore(cs.rules[i].state, cs.rules[i].history, cs.rules[i].recorded,
                              cs.rules[i].cycles_in_state);
          rt.previous[i] = cs.rules[i].previous;
        }
    }
  }
}

}  // namespace mw
