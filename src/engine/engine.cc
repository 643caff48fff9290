#include "engine/engine.h"

#include <algorithm>

#include <tuple>

#include "checks/registry.h"
#include "engine/probe.h"
#include "engine/schedule.h"
#include "util/clock.h"
#include "util/log.h"

namespace mw {

Engine::Engine(IoContext& io, actions::Dispatcher* dispatcher) : io_(io), dispatcher_(dispatcher) {}

std::string Engine::key(const std::string& service, const std::string& check_id) {
  return service + '\x1f' + check_id;
}

void Engine::load(std::shared_ptr<const config::Config> config) {
  std::map<std::string, Runtime> next;
  std::vector<std::string> order;
  for (const auto& svc : config->services) {
    for (const auto& chk : svc.checks) {
      std::string k = key(svc.name, chk.id);
      Runtime rt;
      if (auto it = runtimes_.find(k); it != runtimes_.end()) {
        rt = std::move(it->second);
        if (rt.rules.size() != chk.rules.size()) rt.rules.assign(chk.rules.size(), EventState{});
      } else {
        rt.rules.assign(chk.rules.size(), EventState{});
      }
      rt.service = &svc;
      rt.check = &chk;
      order.push_back(k);
      next.emplace(k, std::move(rt));
    }
  }
  runtimes_ = std::move(next);
  order_ = std::move(order);
  config_ = std::move(config);
  if (dispatcher_) dispatcher_->load(config_);
}

void Engine::run_cycle() {
  ++cycle_;
  cycle_started_ms_ = clock::now_ms();
  if (dispatcher_) dispatcher_->on_cycle_start(cycle_);  // retries alert mails that wait
  pending_in_cycle_ = 0;
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
    if (rt.running || rt.queued) {
      log::debug("'%s' %s: still running from an earlier cycle, not started again",
                 rt.service->name.c_str(), rt.check->description.c_str());
      continue;
    }
    rt.queued = true;
    rt.cycle = cycle_;
    ++pending_in_cycle_;
    queue_.emplace_back(k, cycle_);
  }
  if (pending_in_cycle_ == 0) {
    finish_cycle();
    return;
  }
  pump();
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

bool Engine::rule_failed(const config::Rule& rule, const CheckResult& result) {
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
    run_check(io_, config_, *rt.service, *rt.check, rt.memory,
              [this, k = k, cycle = cycle](const CheckResult& r) { finished(k, cycle, r); });
  }
}

// A check of `cycle` is over (run, or dropped by a reload): the cycle ends with its last one.
void Engine::count_done(int64_t cycle) {
  if (cycle == cycle_ && --pending_in_cycle_ == 0) finish_cycle();
}

void Engine::finished(const std::string& k, int64_t cycle, const CheckResult& result) {
  --running_;
  auto it = runtimes_.find(k);
  if (it != runtimes_.end()) {
    Runtime& rt = it->second;
    rt.running = false;
    rt.last = result;
    rt.memory = result.memory;
    rt.last->memory = nullptr;  // kept once, in the runtime
    ++rt.runs;
    rt.history.push_back({result.checked_at, result.ok, result.response_ms, result.cls});
    while (rt.history.size() > state::kHistoryLength) rt.history.pop_front();
    const auto& svc = *rt.service;
    const auto& chk = *rt.check;
    bool was_failed = std::any_of(rt.rules.begin(), rt.rules.end(), [](const EventState& e) {
      return e.state() == RuleState::failed;
    });
    bool was_known = rt.since != 0;
    log::debug("'%s' %s: %s (%.1f ms)", svc.name.c_str(), chk.description.c_str(),
               result.reason().c_str(), result.response_ms);
    for (size_t i = 0; i < chk.rules.size(); ++i) {
      const auto& rule = chk.rules[i];
      Transition t = rt.rules[i].record(rule_failed(rule, result), rule.fail_rule, rule.ok_rule);
      if (!dispatcher_) continue;  // validate: the caller prints the results
      if (t == Transition::failed) {
        log::error("'%s' %s failed: %s", svc.name.c_str(), chk.description.c_str(),
                   result.reason().c_str());
      } else if (t == Transition::recovered) {
        log::info("'%s' %s succeeded again", svc.name.c_str(), chk.description.c_str());
      }
      // Every result, not only changes: reminders and "repeat every N cycles" count on it.
      dispatcher_->on_result(svc, chk, i, rule, t, rt.rules[i], result);
    }
    bool failed_now = std::any_of(rt.rules.begin(), rt.rules.end(), [](const EventState& e) {
      return e.state() == RuleState::failed;
    });
    if (!was_known || failed_now != was_failed) rt.since = result.checked_at;
  }
  count_done(cycle);  // also when a reload removed the check while it ran
  if (result_cb_) result_cb_();
  pump();
}

void Engine::finish_cycle() {
  CycleStats stats;
  stats.cycle = cycle_;
  stats.elapsed_ms = clock::now_ms() - cycle_started_ms_;
  for (const auto& k : order_) {
    const Runtime& rt = runtimes_[k];
    if (!rt.last) continue;
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

state::Snapshot Engine::snapshot() const {
  state::Snapshot snap;
  snap.cycles = cycle_;
  if (!config_) return snap;
  for (const auto& svc : config_->services) {
    state::ServiceSnapshot ss;
    ss.name = svc.name;
    ss.type = svc.type;
    ss.groups = svc.groups;
    ss.monitored = !unmonitored_.count(svc.name);
    for (const auto& chk : svc.checks) {
      const Runtime& rt = runtimes_.at(key(svc.name, chk.id));
      state::CheckSnapshot cs;
      cs.id = chk.id;
      cs.description = chk.description;
      cs.kind = std::string(chk.kind->name);
      if (chk.kind->labels) std::tie(cs.protocol, cs.target) = chk.kind->labels(chk);
      cs.since = rt.since;
      cs.history.assign(rt.history.begin(), rt.history.end());
      cs.last = rt.last;
      cs.runs = rt.runs;
      cs.memory = rt.memory;
      for (const auto& es : rt.rules)
        cs.rules.push_back({es.state(), es.history(), es.recorded(), es.cycles_in_state()});
      ss.checks.push_back(std::move(cs));
    }
    snap.services.push_back(std::move(ss));
  }
  return snap;
}

void Engine::restore(const state::Snapshot& snap) {
  cycle_ = snap.cycles;
  for (const auto& ss : snap.services) {
    if (!ss.monitored && config_ &&
        std::any_of(config_->services.begin(), config_->services.end(),
                    [&](const config::Service& s) { return s.name == ss.name; }))
      unmonitored_.insert(ss.name);
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
        for (size_t i = 0; i < cs.rules.size(); ++i)
          rt.rules[i].restore(cs.rules[i].state, cs.rules[i].history, cs.rules[i].recorded,
                              cs.rules[i].cycles_in_state);
    }
  }
}

}  // namespace mw
