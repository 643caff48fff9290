#include "util/log.h"

#include <sys/socket.h>
#include <sys/un.h>
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
  std::string path;  // of the file, for reopen()
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
  state().path.clear();
}

bool to_file(const std::string& path, std::string& error) {
  FILE* f = fopen(path.c_str(), "ae");
  if (!f) {
    error = "cannot open log file " + path + ": " + strerror(errno);
    return false;
  }
  state().file.reset(f);
  state().path = path;
  state().sink = Sink::file;
  return true;
}

bool reopen(std::string& error) {
  State& s = state();
  if (s.sink != Sink::file) return true;
  FILE* f = fopen(s.path.c_str(), "ae");
  if (!f) {
    error = "cannot reopen log file " + s.path + ": " + strerror(errno) +
            "; still writing to the old one";
    return false;
  }
  s.file.reset(f);
  return true;
}

namespace {

// Whether a syslog daemon listens on `path` (a datagram or stream unix socket).
bool syslog_listening(const std::string& path, std::string& error) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) {
    error = "syslog socket path too long: " + path;
    return false;
  }
  memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    int rc = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    int err = errno;
    close(fd);
    if (rc == 0) return true;
    if (err != EPROTOTYPE) {
      error = "no syslog daemon listens on " + path + " (" + strerror(err) + ")";
      return false;
    }
  }
  error = "no syslog daemon listens on " + path;
  return false;
}

}  // namespace

bool to_syslog(const std::string& facility, std::string& error, const std::string& socket_path) {
  if (!syslog_listening(socket_path, error)) {
    to_stderr();
    return false;
  }
  static const std::map<std::string, int> facilities = {
      {"user", LOG_USER},     {"daemon", LOG_DAEMON}, {"mail", LOG_MAIL},
      {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
      {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
      {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7}};
  auto it = facilities.find(facility);
  openlog("mailwarden", LOG_PID | LOG_NDELAY, it == facilities.end() ? LOG_USER : it->second);
  state().sink = Sink::syslog;
  state().file.reset();
  return true;
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
