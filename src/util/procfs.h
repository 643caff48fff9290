// Small, bounded reads of /proc for the local checks: one process's stat line, the process
// table, the machine's counters. Every read keeps at most a few kilobytes; a process that
// vanishes between two reads is simply not there.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mw::procfs {

// At most `max` bytes of a small file (procfs, sysfs, pid files); nullopt when it cannot be read.
[[nodiscard]] std::optional<std::string> read_small(const std::string& path, size_t max = 4096);

struct ProcStat {
  pid_t pid = 0;
  pid_t ppid = 0;
  char state = '?';
  uint64_t ticks = 0;        // utime + stime, in clock ticks
  uint64_t start_ticks = 0;  // after boot
  int64_t threads = 0;
  int64_t rss_kb = 0;
};
// /proc/PID/stat; nullopt when the process does not exist (or is a zombie's leftover).
[[nodiscard]] std::optional<ProcStat> stat(pid_t pid);
// Every process (its stat), for children and totals. Bounded by `max` processes.
[[nodiscard]] std::vector<ProcStat> all(size_t max = 65536);
// Its command line, arguments joined by spaces, at most 4 KB.
[[nodiscard]] std::string cmdline(pid_t pid);

[[nodiscard]] long ticks_per_second();
[[nodiscard]] long cpus();
[[nodiscard]] double uptime_seconds();
// The kernel's id of this boot (/proc/sys/kernel/random/boot_id); empty when unreadable.
[[nodiscard]] std::string boot_id();
// /proc/meminfo in kB (MemTotal, MemAvailable, SwapTotal, SwapFree, ...).
[[nodiscard]] std::map<std::string, int64_t> meminfo();

}  // namespace mw::procfs
