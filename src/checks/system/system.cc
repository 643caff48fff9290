#include "checks/system/system.h"

#include <cstdio>
#include <cstdlib>

#include "engine/compare.h"
#include "util/procfs.h"

namespace mw::checks::system {

Task<void> run(RunContext& ctx) {
  auto& m = ctx.metrics;
  auto load = procfs::read_small("/proc/loadavg", 256);
  if (!load) throw ProbeError(FailureClass::internal, "cannot read /proc/loadavg");
  double l1 = 0, l5 = 0, l15 = 0;
  if (sscanf(load->c_str(), "%lf %lf %lf", &l1, &l5, &l15) != 3)
    throw ProbeError(FailureClass::internal, "cannot parse /proc/loadavg");
  const double cores = static_cast<double>(procfs::cpus());
  m["loadavg_1"] = l1;
  m["loadavg_5"] = l5;
  m["loadavg_15"] = l15;
  m["loadavg_1_per_core"] = l1 / cores;
  m["loadavg_5_per_core"] = l5 / cores;
  m["loadavg_15_per_core"] = l15 / cores;
  m["cpus"] = cores;

  // The first line of /proc/stat: cumulative ticks (user nice system idle iowait irq softirq
  // steal); usage is the share of non-idle ticks since the last run.
  auto stat = procfs::read_small("/proc/stat", 1024);
  unsigned long long v[8] = {};
  if (stat && sscanf(stat->c_str(), "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                     &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) >= 4) {
    double user = static_cast<double>(v[0] + v[1]);
    double system = static_cast<double>(v[2] + v[5] + v[6] + v[7]);
    double wait = static_cast<double>(v[4]);
    double idle = static_cast<double>(v[3]);
    double total = user + system + wait + idle;
    const auto& last = ctx.memory;
    if (last.is_object() && last.contains("total")) {
      double dt = total - last.value("total", 0.0);
      if (dt > 0) {
        m["cpu_user_percent"] = 100.0 * (user - last.value("user", 0.0)) / dt;
        m["cpu_system_percent"] = 100.0 * (system - last.value("system", 0.0)) / dt;
        m["cpu_wait_percent"] = 100.0 * (wait - last.value("wait", 0.0)) / dt;
        m["cpu_percent"] = 100.0 * (dt - (idle - last.value("idle", 0.0))) / dt;
      }
    }
    ctx.memory = {
        {"user", user}, {"system", system}, {"wait", wait}, {"idle", idle}, {"total", total}};
  }

  auto mem = procfs::meminfo();
  double total = static_cast<double>(mem["MemTotal"]);
  double available = static_cast<double>(
      mem.count("MemAvailable") ? mem["MemAvailable"] : mem["MemFree"] + mem["Cached"]);
  if (total > 0) {
    m["memory_kb"] = total - available;
    m["memory_percent"] = 100.0 * (total - available) / total;
  }
  double swap_total = static_cast<double>(mem["SwapTotal"]);
  double swap_used = swap_total - static_cast<double>(mem["SwapFree"]);
  m["swap_kb"] = swap_used;
  m["swap_percent"] = swap_total > 0 ? 100.0 * swap_used / swap_total : 0.0;
  m["uptime_s"] = procfs::uptime_seconds();
  co_return;
}

std::pair<std::string, std::string> labels(const config::Check&) {
  return {"system", ""};
}

void rows(const CheckResult& r, DetailRows& out) {
  auto metric = [&](const char* name, const char* unit) -> std::string {
    auto it = r.metrics.find(name);
    return it == r.metrics.end() ? std::string("-") : format_value(it->second, unit);
  };
  out.emplace_back("load", metric("loadavg_1", "") + " " + metric("loadavg_5", "") + " " +
                               metric("loadavg_15", ""));
  out.emplace_back("cpu", metric("cpu_percent", "%"));
  out.emplace_back("memory", metric("memory_percent", "%"));
  out.emplace_back("swap", metric("swap_percent", "%"));
}

}  // namespace mw::checks::system
