#include "checks/process/process.h"

#include <pcre2.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>

#include "engine/compare.h"
#include "util/clock.h"
#include "util/procfs.h"
#include "util/strings.h"

namespace mw::checks::process {
namespace {

bool matches(const config::Regex& re, const std::string& text) {
  std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> md(
      pcre2_match_data_create_from_pattern(re.code.get(), nullptr), pcre2_match_data_free);
  return pcre2_match(re.code.get(), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0,
                     md.get(), nullptr) >= 0;
}

// The oldest matching process (the parent of a server's workers), never mailwarden itself or
// what it runs.
pid_t find_matching(const config::Regex& re, const std::vector<procfs::ProcStat>& table) {
  pid_t self = getpid();
  pid_t best = 0;
  uint64_t best_start = 0;
  for (const auto& p : table) {
    if (p.pid == self || p.ppid == self) continue;
    std::string cmd = procfs::cmdline(p.pid);
    if (cmd.empty() || !matches(re, cmd)) continue;
    if (!best || p.start_ticks < best_start) {
      best = p.pid;
      best_start = p.start_ticks;
    }
  }
  return best;
}

}  // namespace

int pid_from_file(const std::string& path) {
  errno = 0;
  auto text = procfs::read_small(path, 64);
  if (!text) {
    if (errno == ENOENT || errno == 0)
      throw ProbeError(FailureClass::nonexist, "pidfile " + path + " does not exist");
    throw ProbeError(FailureClass::nonexist,
                     "cannot read pidfile " + path + ": " + strerror(errno));
  }
  std::string t(str::trim(*text));
  if (t.empty()) throw ProbeError(FailureClass::nonexist, "pidfile " + path + " is empty");
  char* end = nullptr;
  long pid = strtol(t.c_str(), &end, 10);
  if (pid <= 0 || pid > 4194304 || *end)
    throw ProbeError(FailureClass::nonexist, "pidfile " + path + " does not hold a pid (\"" +
                                                 str::printable(t, 40) + "\")");
  return static_cast<int>(pid);
}

Task<void> run(RunContext& ctx) {
  const auto& pc = *ctx.check().as<config::ProcessCheck>();
  auto table = procfs::all();
  pid_t pid = 0;
  if (!pc.pidfile.empty()) {
    pid = pid_from_file(pc.pidfile);
    if (!procfs::stat(pid))
      throw ProbeError(FailureClass::nonexist, "process " + std::to_string(pid) + " of pidfile " +
                                                   pc.pidfile + " is not running");
  } else {
    pid = find_matching(pc.matching, table);
    if (!pid)
      throw ProbeError(FailureClass::nonexist, "no process matches \"" + pc.matching.source + "\"");
  }
  auto me = procfs::stat(pid);
  if (!me)
    throw ProbeError(FailureClass::nonexist, "process " + std::to_string(pid) + " is not running");

  // Its descendants, through the parent links of one snapshot of the process table.
  std::multimap<pid_t, const procfs::ProcStat*> by_parent;
  for (const auto& p : table) by_parent.emplace(p.ppid, &p);
  int64_t children = 0, total_rss = me->rss_kb;
  uint64_t total_ticks = me->ticks;
  std::vector<pid_t> todo = {pid};
  while (!todo.empty() && children < 100000) {
    pid_t parent = todo.back();
    todo.pop_back();
    auto [from, to] = by_parent.equal_range(parent);
    for (auto it = from; it != to; ++it) {
      if (it->second->pid == parent) continue;
      ++children;
      total_rss += it->second->rss_kb;
      total_ticks += it->second->ticks;
      todo.push_back(it->second->pid);
    }
  }

  const double hz = static_cast<double>(procfs::ticks_per_second());
  auto mem = procfs::meminfo();
  double mem_total = mem.count("MemTotal") ? static_cast<double>(mem["MemTotal"]) : 0.0;
  auto& m = ctx.metrics;
  m["pid"] = pid;
  m["ppid"] = me->ppid;
  m["memory_kb"] = static_cast<double>(me->rss_kb);
  m["total_memory_kb"] = static_cast<double>(total_rss);
  if (mem_total > 0) {
    m["memory_percent"] = 100.0 * static_cast<double>(me->rss_kb) / mem_total;
    m["total_memory_percent"] = 100.0 * static_cast<double>(total_rss) / mem_total;
  }
  m["children"] = static_cast<double>(children);
  m["threads"] = static_cast<double>(me->threads);
  m["uptime_s"] =
      std::max(0.0, procfs::uptime_seconds() - static_cast<double>(me->start_ticks) / hz);

  // CPU: ticks used since the last run of the same process, as a share of all the machine's
  // cores over the time between the two runs. The first run has nothing to compare with.
  int64_t now_ms = clock::now_ms();
  const auto& last = ctx.memory;
  if (last.is_object() && last.value("pid", 0) == pid &&
      last.value("start", uint64_t{0}) == me->start_ticks) {
    double elapsed_s = static_cast<double>(now_ms - last.value("at_ms", int64_t{0})) / 1000.0;
    if (elapsed_s > 0.05) {
      double machine = elapsed_s * static_cast<double>(procfs::cpus());
      auto share = [&](uint64_t now, uint64_t before) {
        double used = now >= before ? static_cast<double>(now - before) / hz : 0.0;
        return std::min(100.0, 100.0 * used / machine);
      };
      m["cpu_percent"] = share(me->ticks, last.value("ticks", uint64_t{0}));
      m["total_cpu_percent"] = share(total_ticks, last.value("total_ticks", uint64_t{0}));
    }
  }
  ctx.memory = {{"pid", pid},
                {"start", me->start_ticks},
                {"ticks", me->ticks},
                {"total_ticks", total_ticks},
                {"at_ms", now_ms}};
  ctx.details["pid"] = pid;
  // `if loadavg ...` in a process block (monit allows it) reads the machine's load.
  if (auto load = procfs::read_small("/proc/loadavg", 256)) {
    double l[3] = {};
    if (sscanf(load->c_str(), "%lf %lf %lf", &l[0], &l[1], &l[2]) == 3) {
      const double cores = static_cast<double>(procfs::cpus());
      const char* names[3] = {"loadavg_1", "loadavg_5", "loadavg_15"};
      for (int i = 0; i < 3; ++i) {
        m[names[i]] = l[i];
        m[std::string(names[i]) + "_per_core"] = l[i] / cores;
      }
    }
  }
  co_return;
}

std::pair<std::string, std::string> labels(const config::Check& check) {
  const auto& pc = *check.as<config::ProcessCheck>();
  return {"process", pc.pidfile.empty() ? pc.matching.source : pc.pidfile};
}

void rows(const CheckResult& r, DetailRows& out) {
  auto metric = [&](const char* name, const char* unit) -> std::string {
    auto it = r.metrics.find(name);
    return it == r.metrics.end() ? std::string("-") : format_value(it->second, unit);
  };
  out.emplace_back("pid", metric("pid", ""));
  out.emplace_back(
      "cpu", metric("cpu_percent", "%") + " (total " + metric("total_cpu_percent", "%") + ")");
  out.emplace_back(
      "memory", metric("memory_kb", " kB") + " (total " + metric("total_memory_kb", " kB") + ")");
  out.emplace_back("children", metric("children", ""));
  out.emplace_back("uptime", metric("uptime_s", " s"));
}

}  // namespace mw::checks::process
