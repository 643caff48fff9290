// File helpers: whole-file reads and atomic, crash-safe writes.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace mw::files {

// What read() accepts by default: a control file of 10,000 checks is about 3 MB.
constexpr size_t kDefaultMaxRead = 8 * 1024 * 1024;

// Reads a whole regular file of at most `max_bytes`. Anything else (a directory, a FIFO, a
// device such as /dev/zero, also behind a symbolic link) is refused with a message, without
// blocking: the file is opened non-blocking and checked before the first read.
[[nodiscard]] std::optional<std::string> read(const std::string& path, std::string& error,
                                              size_t max_bytes = kDefaultMaxRead);
// "a FIFO", "a directory", ... for messages about a file that is not a regular file.
[[nodiscard]] const char* file_type_name(mode_t mode);
// "8 MiB", "512 KiB", "100 bytes"
[[nodiscard]] std::string size_text(size_t bytes);

// Writes via a temporary file in the same directory, fsync, rename, fsync of the directory:
// after a crash (kill -9, power loss) the file holds either the old or the new content.
[[nodiscard]] bool write_atomic(const std::string& path, const std::string& content, mode_t mode,
                                std::string& error);

// The same for content written piece by piece (a large state need not be whole in memory):
// open(), write() as often as needed, commit(). Until commit() succeeds the file is untouched;
// a failed or abandoned write removes its temporary file.
class AtomicFile {
 public:
  AtomicFile() = default;
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  [[nodiscard]] bool open(const std::string& path, mode_t mode, std::string& error);
  [[nodiscard]] bool write(std::string_view data, std::string& error);
  [[nodiscard]] bool commit(std::string& error);

 private:
  void abandon();

  std::string path_, tmp_;
  int fd_ = -1;
};

[[nodiscard]] std::string dirname(const std::string& path);
[[nodiscard]] std::string home_dir();
// Expands a leading "~/" to the home directory.
[[nodiscard]] std::string expand_home(const std::string& path);

}  // namespace mw::files
