#include "util/procfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>

#include "util/handles.h"

namespace mw::procfs {

std::optional<std::string> read_small(const std::string& path, size_t max) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  while (out.size() < max) {
    ssize_t n = read(fd.get(), buf, std::min(sizeof buf, max - out.size()));
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::optional<ProcStat> stat(pid_t pid) {
  auto text = read_small("/proc/" + std::to_string(pid) + "/stat", 2048);
  if (!text) return std::nullopt;
  // "PID (COMM) S PPID ..." where COMM may hold spaces and parentheses: fields start after the
  // last ')'.
  auto close = text->rfind(')');
  if (close == std::string::npos || close + 2 >= text->size()) return std::nullopt;
  std::vector<std::string> f;  // f[0] is field 3 (state)
  const char* p = text->c_str() + close + 2;
  while (*p && f.size() < 24) {
    const char* start = p;
    while (*p && *p != ' ' && *p != '\n') ++p;
    f.emplace_back(start, p);
    while (*p == ' ' || *p == '\n') ++p;
  }
  if (f.size() < 22) return std::nullopt;
  auto num = [&](size_t field) { return strtoull(f[field - 3].c_str(), nullptr, 10); };
  ProcStat s;
  s.pid = pid;
  s.state = f[0].empty() ? '?' : f[0][0];
  if (s.state == 'Z' || s.state == 'X') return std::nullopt;  // dead, not yet reaped
  s.ppid = static_cast<pid_t>(num(4));
  s.ticks = num(14) + num(15);
  s.threads = static_cast<int64_t>(num(20));
  s.start_ticks = num(22);
  s.rss_kb = static_cast<int64_t>(num(24)) * (sysconf(_SC_PAGESIZE) / 1024);
  return s;
}

std::vector<ProcStat> all(size_t max) {
  std::vector<ProcStat> out;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir("/proc"), closedir);
  if (!dir) return out;
  while (dirent* e = readdir(dir.get())) {
    if (out.size() >= max) break;
    char* end = nullptr;
    long pid = strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end) continue;
    if (auto s = stat(static_cast<pid_t>(pid))) out.push_back(*s);
  }
  return out;
}

std::string cmdline(pid_t pid) {
  auto text = read_small("/proc/" + std::to_string(pid) + "/cmdline", 4096);
  if (!text) return {};
  while (!text->empty() && text->back() == '\0') text->pop_back();
  for (char& c : *text)
    if (c == '\0') c = ' ';
  return *text;
}

long ticks_per_second() {
  static long hz = sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100;
  return hz;
}

long cpus() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? n : 1;
}

std::string boot_id() {
  auto text = read_small("/proc/sys/kernel/random/boot_id", 64);
  if (!text) return "";
  std::string id;
  for (char c : *text)
    if (std::isxdigit(static_cast<unsigned char>(c)) || c == '-') id += c;
  return id;
}

double uptime_seconds() {
  auto text = read_small("/proc/uptime", 128);
  return text ? strtod(text->c_str(), nullptr) : 0.0;
}

std::map<std::string, int64_t> meminfo() {
  std::map<std::string, int64_t> out;
  auto text = read_small("/proc/meminfo", 16384);
  if (!text) return out;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t nl = text->find('\n', pos);
    if (nl == std::string::npos) nl = text->size();
    std::string line = text->substr(pos, nl - pos);
    pos = nl + 1;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    out[line.substr(0, colon)] = strtoll(line.c_str() + colon + 1, nullptr, 10);
  }
  return out;
}

}  // namespace mw::procfs
