// Logging: one sink for the whole process (stderr, a file, or syslog).
#pragma once

#include <string>

namespace mw::log {

enum class Level { debug = 0, info, warning, error };

// Where log lines go. A reopen (SIGHUP) keeps the sink and reopens the file.
void to_stderr();
[[nodiscard]] bool to_file(const std::string& path, std::string& error);
void to_syslog(const std::string& facility);

void set_verbose(bool on);  // -v: protocol exchanges are logged at debug level
[[nodiscard]] bool verbose();

void write(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Thin wrappers keep call sites short; the format is still checked by write().
void debug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void warning(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace mw::log
