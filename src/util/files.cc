#include "util/files.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "util/handles.h"

namespace mw::files {

const char* file_type_name(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISREG(mode)) return "a regular file";
  return "not a regular file";
}

std::string size_text(size_t bytes) {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0)
    return std::to_string(bytes / (1024 * 1024)) + " MiB";
  if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes / 1024) + " KiB";
  return std::to_string(bytes) + " bytes";
}

std::optional<std::string> read(const std::string& path, std::string& error, size_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below).
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd) {
    error = path + ": " + strerror(errno);
    return std::nullopt;
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) {
    error = path + ": " + strerror(errno);
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    error = path + ": " + file_type_name(st.st_mode) + ", not a regular file";
    return std::nullopt;
  }
  auto too_large = [&] {
    error = path + ": larger than " + size_text(max_bytes) + " (the limit for this file)";
    return std::nullopt;
  };
  if (static_cast<uint64_t>(st.st_size) > max_bytes) return too_large();
  std::string out;
  out.reserve(static_cast<size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      error = path + ": " + strerror(errno);
      return std::nullopt;
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) return too_large();  // it grew
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string dirname(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool write_atomic(const std::string& path, const std::string& content, mode_t mode,
                  std::string& error) {
  AtomicFile f;
  return f.open(path, mode, error) && f.write(content, error) && f.commit(error);
}

AtomicFile::~AtomicFile() {
  abandon();
}

void AtomicFile::abandon() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
}

bool AtomicFile::open(const std::string& path, mode_t mode, std::string& error) {
  abandon();
  path_ = path;
  // One fixed temporary name: a writer killed mid-write leaves a file the next write replaces.
  tmp_ = path + ".tmp";
  // Never follow a link planted at the temporary name, and never inherit its mode.
  (void)::unlink(tmp_.c_str());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd_ < 0) {
    error = tmp_ + ": " + strerror(errno);
    return false;
  }
  (void)::fchmod(fd_, mode);
  return true;
}

bool AtomicFile::write(std::string_view data, std::string& error) {
  if (fd_ < 0) {
    error = tmp_ + ": not open";
    return false;
  }
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      error = tmp_ + ": " + strerror(errno);
      abandon();
      return false;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

bool AtomicFile::commit(std::string& error) {
  if (fd_ < 0) {
    error = tmp_ + ": not open";
    return false;
  }
  if (::fsync(fd_) != 0) {
    error = tmp_ + ": fsync: " + strerror(errno);
    abandon();
    return false;
  }
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    error = path_ + ": rename: " + strerror(errno);
    ::unlink(tmp_.c_str());
    return false;
  }
  UniqueFd dir(::open(dirname(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir) (void)::fsync(dir.get());
  return true;
}

std::string home_dir() {
  if (const char* h = getenv("HOME"); h && *h) return h;
  if (struct passwd* pw = getpwuid(getuid()); pw && pw->pw_dir) return pw->pw_dir;
  return "/";
}

std::string expand_home(const std::string& path) {
  if (path == "~") return home_dir();
  if (path.rfind("~/", 0) == 0) return home_dir() + path.substr(1);
  return path;
}

}  // namespace mw::files
