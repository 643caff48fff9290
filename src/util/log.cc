#include "util/log.h"

#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>

namespace mw::log {
namespace {

enum class Sink { stderr_stream, file, syslog };

struct FileCloser {
  void operator()(FILE* f) const { fclose(f); }
};

struct State {
  Sink sink = Sink::stderr_stream;
  std::unique_ptr<FILE, FileCloser> file;
  bool verbose = false;
};

State& state() {
  static State s;
  return s;
}

const char* level_name(Level level) {
  switch (level) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warning:
      return "warning";
    case Level::error:
      return "error";
  }
  return "?";
}

int syslog_priority(Level level) {
  switch (level) {
    case Level::debug:
      return LOG_DEBUG;
    case Level::info:
      return LOG_INFO;
    case Level::warning:
      return LOG_WARNING;
    case Level::error:
      return LOG_ERR;
  }
  return LOG_INFO;
}

void vwrite(Level level, const char* fmt, va_list ap) {
  State& s = state();
  if (level == Level::debug && !s.verbose) return;
  if (s.sink == Sink::syslog) {
    vsyslog(syslog_priority(level), fmt, ap);
    return;
  }
  FILE* out = s.sink == Sink::file && s.file ? s.file.get() : stderr;
  char stamp[32];
  time_t now = time(nullptr);
  struct tm tm_now;
  localtime_r(&now, &tm_now);
  strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm_now);
  // Build the whole line first so that concurrent writers (exec children share stderr) do not
  // interleave inside a line.
  char body[8192];
  vsnprintf(body, sizeof body, fmt, ap);
  fprintf(out, "[%s] %-7s: %s\n", stamp, level_name(level), body);
  fflush(out);
}

}  // namespace

void to_stderr() {
  state().sink = Sink::stderr_stream;
  state().file.reset();
}

bool to_file(const std::string& path, std::string& error) {
  FILE* f = fopen(path.c_str(), "ae");
  if (!f) {
    error = "cannot open log file " + path + ": " + strerror(errno);
    return false;
  }
  state().file.reset(f);
  state().sink = Sink::file;
  return true;
}

void to_syslog(const std::string& facility) {
  static const std::map<std::string, int> facilities = {
      {"user", LOG_USER},     {"daemon", LOG_DAEMON}, {"mail", LOG_MAIL},
      {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
      {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
      {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7}};
  auto it = facilities.find(facility);
  openlog("mailwarden", LOG_PID | LOG_NDELAY, it == facilities.end() ? LOG_USER : it->second);
  state().sink = Sink::syslog;
  state().file.reset();
}

void set_verbose(bool on) {
  state().verbose = on;
}
bool verbose() {
  return state().verbose;
}

void write(Level level, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vwrite(level, fmt, ap);
  va_end(ap);
}

#define MW_DEFINE_LEVEL(name, level) \
  void name(const char* fmt, ...) {  \
    va_list ap;                      \
    va_start(ap, fmt);               \
    vwrite(level, fmt, ap);          \
    va_end(ap);                      \
  }
MW_DEFINE_LEVEL(debug, Level::debug)
MW_DEFINE_LEVEL(info, Level::info)
MW_DEFINE_LEVEL(warning, Level::warning)
MW_DEFINE_LEVEL(error, Level::error)
#undef MW_DEFINE_LEVEL

}  // namespace mw::log
