// Logging: one sink for the whole process (stderr, a file, or syslog).
#pragma once

#include <string>

namespace mw::log {

enum class Level { debug = 0, info, warning, error };

// Where log lines go. A reopen (SIGUSR2, SIGHUP) keeps the sink and reopens the file.
void to_stderr();
[[nodiscard]] bool to_file(const std::string& path, std::string& error);
// Syslog through `socket` (/dev/log). When nothing listens there, lines go to stderr instead and
// `error` says so: glibc's syslog() would drop them without a word.
[[nodiscard]] bool to_syslog(const std::string& facility, std::string& error,
                             const std::string& socket_path = "/dev/log");
// Opens the log file again by its name (after logrotate moved it); keeps the old one on failure.
// Nothing to do for stderr and syslog.
[[nodiscard]] bool reopen(std::string& error);

void set_verbose(bool on);  // -v: protocol exchanges are logged at debug level
[[nodiscard]] bool verbose();

void write(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Thin wrappers keep call sites short; the format is still checked by write().
void debug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void warning(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace mw::log
