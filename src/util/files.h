// File helpers: whole-file reads and atomic, crash-safe writes.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace mw::files {

[[nodiscard]] std::optional<std::string> read(const std::string& path, std::string& error);

// Writes via a temporary file in the same directory, fsync, rename, fsync of the directory:
// after a crash (kill -9, power loss) the file holds either the old or the new content.
[[nodiscard]] bool write_atomic(const std::string& path, const std::string& content, mode_t mode,
                                std::string& error);

[[nodiscard]] std::string dirname(const std::string& path);
[[nodiscard]] std::string home_dir();
// Expands a leading "~/" to the home directory.
[[nodiscard]] std::string expand_home(const std::string& path);

}  // namespace mw::files
