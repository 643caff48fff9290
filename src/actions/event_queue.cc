#include "actions/event_queue.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include "util/files.h"
#include "util/handles.h"

namespace mw::actions {
namespace {

constexpr const char* kMagic = "mailwarden-queue 1";
constexpr const char* kSuffix = ".mail";
constexpr const char* kTempPrefix = ".tmp-";
constexpr size_t kMaxFile = 16 * 1024 * 1024;  // a queued mail is a few KiB; this is not one

std::string errno_text(const std::string& what) {
  return what + ": " + strerror(errno);
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\r' || c == '\n') c = ' ';
  return s;
}

bool ends_with(const std::string& s, const char* suffix) {
  size_t n = strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// Not a regular file (a FIFO, a device, a directory): the mode, for the message; 0 when it is one.
mode_t not_regular(int dir_fd, const std::string& name) {
  struct stat st;
  if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return 0;
  return S_ISREG(st.st_mode) ? 0 : st.st_mode;
}

bool read_file(int dir_fd, const std::string& name, std::string& out) {
  // Non-blocking: a FIFO put here must not hang the start-up (it is refused just below).
  UniqueFd fd(openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd) return false;
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  out.clear();
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxFile) return false;
  }
}

bool write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string file_name(uint64_t seq, const char* prefix, const char* suffix) {
  char buf[64];
  snprintf(buf, sizeof buf, "%s%020llu%s", prefix, static_cast<unsigned long long>(seq), suffix);
  return buf;
}

}  // namespace

std::string EventQueue::serialize(const Outgoing& m) {
  return std::string(kMagic) + "\nfrom: " + one_line(m.mail_from) + "\nto: " + one_line(m.rcpt_to) +
         "\nsummary: " + one_line(m.summary) + "\n\n" + m.message;
}

bool EventQueue::parse(const std::string& text, Outgoing& m) {
  size_t pos = 0;
  auto next_line = [&](std::string& line) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) return false;
    line = text.substr(pos, nl - pos);
    pos = nl + 1;
    return true;
  };
  std::string line;
  if (!next_line(line) || line != kMagic) return false;
  for (;;) {
    if (!next_line(line)) return false;
    if (line.empty()) break;
    auto colon = line.find(": ");
    if (colon == std::string::npos) return false;
    std::string key = line.substr(0, colon), value = line.substr(colon + 2);
    if (key == "from") m.mail_from = value;
    if (key == "to") m.rcpt_to = value;
    if (key == "summary") m.summary = value;
  }
  m.message = text.substr(pos);
  // The addresses go into MAIL FROM and RCPT TO: no control characters, no spaces, no brackets.
  auto plain_address = [](const std::string& a) {
    for (unsigned char c : a)
      if (c < 0x21 || c == 0x7f || c == '<' || c == '>') return false;
    return true;
  };
  return !m.rcpt_to.empty() && !m.message.empty() && plain_address(m.rcpt_to) &&
         plain_address(m.mail_from);
}

bool EventQueue::open(const std::string& dir, std::vector<Outgoing>& waiting,
                      std::vector<std::string>& problems, std::string& error) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    error = errno_text("cannot create the event queue " + dir);
    return false;
  }
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK));
  if (!dir_fd) {
    error = errno_text("cannot open the event queue " + dir);
    return false;
  }
  // What waits here is sent with mailwarden's mail server login: only its own user may write it.
  struct stat st;
  if (fstat(dir_fd.get(), &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    error = "the event queue " + dir + " must belong to mailwarden's user and be private (it is " +
            "mode " + mode + "); run: chmod 700 " + dir;
    return false;
  }
  UniqueFd lock(
      openat(dir_fd.get(), ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600));
  if (!lock) {
    error = errno_text("cannot create " + dir + "/.lock");
    return false;
  }
  if (flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    error = errno == EWOULDBLOCK ? "the event queue " + dir + " is in use by another mailwarden"
                                 : errno_text("cannot lock " + dir + "/.lock");
    return false;
  }
  DIR* d = fdopendir(dup(dir_fd.get()));
  if (!d) {
    error = errno_text("cannot read the event queue " + dir);
    return false;
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) names.emplace_back(e->d_name);
  closedir(d);
  std::sort(names.begin(), names.end());
  waiting.clear();
  uint64_t max_seq = 0;
  for (const auto& name : names) {
    if (name == "." || name == ".." || name == ".lock") continue;
    if (mode_t mode = not_regular(dir_fd.get(), name)) {
      problems.push_back(dir + "/" + name + " is " + files::file_type_name(mode) +
                         ", not a queued alert mail; skipped");
      continue;
    }
    if (name.rfind(kTempPrefix, 0) == 0) {  // a write a crash interrupted: never renamed
      unlinkat(dir_fd.get(), name.c_str(), 0);
      dirty_ = true;
      continue;
    }
    if (!ends_with(name, kSuffix)) continue;
    std::string digits = name.substr(0, name.size() - strlen(kSuffix));
    Outgoing m;
    std::string text;
    uint64_t seq = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
    bool ok = !digits.empty() && ec == std::errc() && end == digits.data() + digits.size() &&
              read_file(dir_fd.get(), name, text) && parse(text, m);
    if (!ok) {
      std::string bad = name + ".bad";
      renameat(dir_fd.get(), name.c_str(), dir_fd.get(), bad.c_str());
      problems.push_back(dir + "/" + name + " is not a queued alert mail; renamed to " + bad);
      continue;
    }
    m.seq = seq;
    m.file = name;
    max_seq = std::max(max_seq, m.seq);
    waiting.push_back(std::move(m));
  }
  std::sort(waiting.begin(), waiting.end(),
            [](const Outgoing& a, const Outgoing& b) { return a.seq < b.seq; });
  dir_ = dir;
  dir_fd_ = std::move(dir_fd);
  lock_fd_ = std::move(lock);
  next_seq_ = max_seq + 1;
  sync();
  return true;
}

bool EventQueue::put(Outgoing& m, std::string& error) {
  uint64_t seq = next_seq_++;
  std::string name = file_name(seq, "", kSuffix);
  std::string temp = file_name(seq, kTempPrefix, "");
  UniqueFd fd(openat(dir_fd_.get(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) {
    error = errno_text("cannot create " + dir_ + "/" + temp);
    return false;
  }
  if (!write_all(fd.get(), serialize(m))) {
    error = errno_text("cannot write " + dir_ + "/" + temp);
    fd.reset();
    unlinkat(dir_fd_.get(), temp.c_str(), 0);
    return false;
  }
  m.seq = seq;
  m.file = name;
  staged_.emplace_back(temp, name);
  return true;
}

void EventQueue::commit() {
  if (staged_.empty() || !dir_fd_) return;
  // The data first: a renamed file must never be empty or cut short after a power loss.
  if (syncfs(dir_fd_.get()) != 0) {
    for (const auto& [temp, name] : staged_) {
      UniqueFd fd(openat(dir_fd_.get(), temp.c_str(), O_RDONLY | O_CLOEXEC));
      if (fd) fdatasync(fd.get());
    }
  }
  for (const auto& [temp, name] : staged_)
    renameat(dir_fd_.get(), temp.c_str(), dir_fd_.get(), name.c_str());
  staged_.clear();
  dirty_ = true;
}

void EventQueue::remove(const Outgoing& m) {
  if (m.file.empty() || !dir_fd_) return;
  auto staged = std::find_if(staged_.begin(), staged_.end(),
                             [&](const auto& names) { return names.second == m.file; });
  if (staged != staged_.end()) {  // never made it into the queue
    unlinkat(dir_fd_.get(), staged->first.c_str(), 0);
    staged_.erase(staged);
    return;
  }
  unlinkat(dir_fd_.get(), m.file.c_str(), 0);
  dirty_ = true;
}

void EventQueue::sync() {
  commit();
  if (!dirty_ || !dir_fd_) return;
  fsync(dir_fd_.get());
  dirty_ = false;
}

}  // namespace mw::actions
