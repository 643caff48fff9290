#include "checks/delivery/receivers.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "checks/delivery/message.h"
#include "checks/delivery/transports.h"
#include "net/failure.h"
#include "net/scope.h"
#include "protocols/imap_client.h"
#include "protocols/pop_client.h"
#include "util/clock.h"
#include "util/strings.h"

namespace mw::checks::delivery {
namespace {

using config::MailUrl;

constexpr int64_t kFirstPollMs = 50;
constexpr int64_t kMaxPollMs = 500;
constexpr int64_t kIdleSliceMs = 5000;  // IDLE is renewed (and the mailbox searched) this often
constexpr size_t kMaxMessageBytes = 1024 * 1024;
constexpr size_t kMaxDirEntries = 100000;

// Polling interval: short at first (fast delivery is the common case), then bounded.
class Backoff {
 public:
  explicit Backoff(int64_t max_ms = kMaxPollMs) : max_ms_(max_ms) {}
  int64_t next() {
    int64_t now = ms_;
    ms_ = std::min(ms_ * 2, max_ms_);
    return now;
  }

 private:
  int64_t max_ms_;
  int64_t ms_ = kFirstPollMs;
};

Task<void> nap(Scope& scope, int64_t ms) {
  Sleep sleep(scope);
  (void)co_await sleep(std::max<int64_t>(1, ms));
}

// ---- IMAP ---------------------------------------------------------------------------------------
class ImapReceiver : public Receiver {
 public:
  ImapReceiver(RunContext& ctx, const config::DeliveryCheck& dc) : ctx_(ctx), dc_(dc) {}

  Task<void> open() override {
    const MailUrl& u = dc_.receive;
    conn_ = co_await ctx_.open(u.endpoint, u.tls_mode, u.tls, "receive " + u.shown);
    imap_ = std::make_unique<imap::Session>(*conn_);
    co_await imap_->greeting();
    if (!imap_->capabilities_current()) co_await imap_->capability();
    if (u.tls_mode == config::TlsMode::starttls) {
      co_await imap_->starttls_command();
      co_await conn_->start_tls(u.tls, u.endpoint.host);
      co_await imap_->capability();
    }
    require_encryption(*conn_, u, dc_.allow_plaintext);
    const imap::Login login{u.username, u.password, u.masteruser};
    co_await imap_->login(login);
    if (!imap_->capabilities_current()) co_await imap_->capability();
    imap::Reply r = co_await imap_->select(u.path);
    uidnext_ = imap::response_code_number(r, "UIDNEXT").value_or(1);
    idle_ = imap_->has_capability("IDLE");
  }

  Task<std::vector<std::string>> find(const std::string& token, bool include_old) override {
    std::string quoted;
    (void)imap::quote(token, quoted);
    std::string range = include_old ? "" : "UID " + std::to_string(uidnext_) + ":* ";
    auto uids = co_await imap_->uid_search(range + "HEADER " + kTokenHeader + " " + quoted);
    std::vector<std::string> out;
    for (uint32_t uid : uids)
      if (include_old || uid >= uidnext_) out.push_back(std::to_string(uid));
    co_return out;
  }

  Task<void> wait_for_change(int64_t ms) override {
    if (!idle_) {
      co_await nap(ctx_.scope(), std::min(ms, backoff_.next()));
      co_return;
    }
    // IDLE until the server announces a new message (EXISTS), or the slice ends. The slices
    // start short and grow: servers batch their IDLE notices (Dovecot holds them for 0.5 s),
    // and a search after a short slice sees a fast delivery sooner, so the measured latency is
    // the delivery's, not the notice's.
    int64_t until = clock_ms() + std::min(ms, idle_slices_.next());
    co_await imap_->idle_start();
    for (;;) {
      int64_t left = until - clock_ms();
      if (left <= 0) break;
      auto line = co_await imap_->idle_wait(left, ctx_.scope());
      if (!line) break;
      if (str::lower(*line).find(" exists") != std::string::npos) break;
    }
    co_await imap_->idle_done();
  }

  Task<std::string> fetch(const std::string& id) override {
    auto message = co_await imap_->uid_fetch_message(static_cast<uint32_t>(std::stoul(id)));
    if (!message)
      throw ProbeError(FailureClass::content,
                       "the probe message (UID " + id + ") vanished before it could be read");
    co_return *message;
  }

  Task<void> remove(const std::vector<std::string>& ids) override {
    std::vector<uint32_t> uids;
    for (const auto& id : ids) uids.push_back(static_cast<uint32_t>(std::stoul(id)));
    co_await imap_->uid_delete(uids);
  }

  Task<void> close() override {
    if (!imap_) co_return;
    co_await imap_->logout();
    conn_->close();
  }

 private:
  static int64_t clock_ms() { return clock::now_ms(); }

  RunContext& ctx_;
  const config::DeliveryCheck& dc_;
  std::unique_ptr<Connection> conn_;
  std::unique_ptr<imap::Session> imap_;
  uint32_t uidnext_ = 1;
  bool idle_ = false;
  Backoff backoff_;
  Backoff idle_slices_{kIdleSliceMs};
};

// ---- POP3 ---------------------------------------------------------------------------------------
class PopReceiver : public Receiver {
 public:
  PopReceiver(RunContext& ctx, const config::DeliveryCheck& dc) : ctx_(ctx), dc_(dc) {}

  Task<void> open() override {
    co_await connect();
    for (const auto& e : co_await pop_->uidl()) before_.insert(e.uid);
    co_await quit();
  }

  Task<std::vector<std::string>> find(const std::string& token, bool include_old) override {
    if (include_old) co_return std::vector<std::string>{};  // see can_find_old()
    co_await quit();
    co_await connect();
    std::vector<std::string> out;
    for (const auto& e : co_await pop_->uidl()) {
      if (before_.count(e.uid) || not_probe_.count(e.uid)) continue;
      std::string text = co_await pop_->retr(e.number, kMaxMessageBytes);
      if (!carries_token(text, token)) {
        not_probe_.insert(e.uid);
        continue;
      }
      std::string id = std::to_string(e.number);
      messages_[id] = std::move(text);
      out.push_back(id);
    }
    co_return out;
  }

  Task<void> wait_for_change(int64_t ms) override {
    co_await quit();  // a maildrop shows new mail only to a new session
    co_await nap(ctx_.scope(), std::min(ms, backoff_.next()));
  }

  Task<std::string> fetch(const std::string& id) override { co_return messages_.at(id); }

  Task<void> remove(const std::vector<std::string>& ids) override {
    for (const auto& id : ids) co_await pop_->dele(std::stoull(id));
    co_await quit();  // DELE takes effect at QUIT
  }

  Task<void> close() override { co_await quit(); }
  [[nodiscard]] bool can_find_old() const override { return false; }

 private:
  Task<void> connect() {
    const MailUrl& u = dc_.receive;
    conn_ = co_await ctx_.open(u.endpoint, u.tls_mode, u.tls, "receive " + u.shown);
    pop_ = std::make_unique<pop::Session>(*conn_);
    co_await pop_->greeting();
    co_await pop_->capa();
    if (u.tls_mode == config::TlsMode::starttls) {
      co_await pop_->stls_command();
      co_await conn_->start_tls(u.tls, u.endpoint.host);
      co_await pop_->capa();
    }
    require_encryption(*conn_, u, dc_.allow_plaintext);
    if (u.masteruser.empty()) {
      co_await pop_->login(u.username, u.password);
    } else {
      co_await pop_->login(u.masteruser, u.password, u.username);
    }
  }

  Task<void> quit() {
    if (!pop_) co_return;
    auto session = std::move(pop_);
    co_await session->quit();
    conn_->close();
  }

  RunContext& ctx_;
  const config::DeliveryCheck& dc_;
  std::unique_ptr<Connection> conn_;
  std::unique_ptr<pop::Session> pop_;
  std::set<std::string> before_;     // UIDs there before the probe was sent
  std::set<std::string> not_probe_;  // new messages already read that are not the probe
  std::map<std::string, std::string> messages_;
  Backoff backoff_;
};

// ---- drop directory -----------------------------------------------------------------------------
struct DirCloser {
  void operator()(DIR* d) const {
    if (d) closedir(d);
  }
};

std::vector<std::string> list_dir(const std::string& dir) {
  std::unique_ptr<DIR, DirCloser> d(opendir(dir.c_str()));
  if (!d)
    throw ProbeError(FailureClass::connect,
                     "cannot read directory " + dir + ": " + std::strerror(errno));
  std::vector<std::string> out;
  while (dirent* e = readdir(d.get())) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;  // hidden: files still being written
    out.push_back(std::move(name));
    if (out.size() > kMaxDirEntries)
      throw ProbeError(FailureClass::content, "directory " + dir + " holds more than " +
                                                  std::to_string(kMaxDirEntries) + " files");
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Up to kMaxMessageBytes of a regular file; nullopt for anything else or a file gone meanwhile.
std::optional<std::string> read_small_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return std::nullopt;
  struct stat st;
  std::optional<std::string> out;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    std::string text(std::min<size_t>(static_cast<size_t>(st.st_size), kMaxMessageBytes), '\0');
    ssize_t n = ::read(fd, text.data(), text.size());
    if (n >= 0) {
      text.resize(static_cast<size_t>(n));
      out = std::move(text);
    }
  }
  ::close(fd);
  return out;
}

class FileReceiver : public Receiver {
 public:
  FileReceiver(RunContext& ctx, const config::DeliveryCheck& dc)
      : ctx_(ctx), dir_(dc.receive.path) {}

  Task<void> open() override {
    for (auto& name : list_dir(dir_)) before_.insert(std::move(name));
    co_return;
  }

  Task<std::vector<std::string>> find(const std::string& token, bool include_old) override {
    std::vector<std::string> out;
    for (const auto& name : list_dir(dir_)) {
      if (!include_old && (before_.count(name) || not_probe_.count(name))) continue;
      auto text = read_small_file(dir_ + "/" + name);
      if (!text) continue;
      if (carries_token(*text, token)) {
        out.push_back(name);
      } else if (!include_old) {
        not_probe_.insert(name);
      }
    }
    co_return out;
  }

  Task<void> wait_for_change(int64_t ms) override {
    co_await nap(ctx_.scope(), std::min(ms, backoff_.next()));
  }

  Task<std::string> fetch(const std::string& id) override {
    auto text = read_small_file(dir_ + "/" + id);
    if (!text)
      throw ProbeError(FailureClass::content,
                       "the probe file " + dir_ + "/" + id + " vanished before it could be read");
    co_return *text;
  }

  Task<void> remove(const std::vector<std::string>& ids) override {
    for (const auto& id : ids) {
      std::string path = dir_ + "/" + id;
      if (unlink(path.c_str()) != 0 && errno != ENOENT)
        throw ProbeError(FailureClass::rejected,
                         "cannot remove " + path + ": " + std::strerror(errno));
    }
    co_return;
  }

  Task<void> close() override { co_return; }

 private:
  RunContext& ctx_;
  std::string dir_;
  std::set<std::string> before_;
  std::set<std::string> not_probe_;
  Backoff backoff_;
};

// ---- FTP directory ------------------------------------------------------------------------------
// Polled like a drop directory: a new name is fetched once and kept if it carries the token. A
// late probe of an earlier run is recognised by its name (probe_file_name) before it is read.
class FtpReceiver : public Receiver {
 public:
  FtpReceiver(RunContext& ctx, const config::DeliveryCheck& dc) : ctx_(ctx), dc_(dc) {}

  Task<void> open() override {
    link_ =
        co_await open_ftp(ctx_, dc_.receive, dc_.allow_plaintext, "receive " + dc_.receive.shown);
    for (auto& name : co_await link_.ftp->list(kMaxDirEntries)) before_.insert(std::move(name));
  }

  Task<std::vector<std::string>> find(const std::string& token, bool include_old) override {
    std::vector<std::string> out;
    for (const auto& name : co_await link_.ftp->list(kMaxDirEntries)) {
      if (include_old) {
        if (name.find(token) == std::string::npos) continue;
      } else if (before_.count(name) || not_probe_.count(name)) {
        continue;
      }
      std::string text = co_await link_.ftp->retrieve(name, kMaxMessageBytes);
      if (carries_token(text, token)) {
        texts_[name] = std::move(text);
        out.push_back(name);
      } else if (!include_old) {
        not_probe_.insert(name);
      }
    }
    co_return out;
  }

  Task<void> wait_for_change(int64_t ms) override {
    co_await nap(ctx_.scope(), std::min(ms, backoff_.next()));
  }

  Task<std::string> fetch(const std::string& id) override {
    auto it = texts_.find(id);
    if (it != texts_.end()) co_return it->second;
    co_return co_await link_.ftp->retrieve(id, kMaxMessageBytes);
  }

  Task<void> remove(const std::vector<std::string>& ids) override {
    for (const auto& id : ids) co_await link_.ftp->remove(id);
  }

  Task<void> close() override {
    if (link_.ftp) co_await link_.ftp->quit();
  }

 private:
  RunContext& ctx_;
  const config::DeliveryCheck& dc_;
  FtpLink link_;
  std::set<std::string> before_;
  std::set<std::string> not_probe_;
  std::map<std::string, std::string> texts_;
  Backoff backoff_;
};

// ---- IRC channel --------------------------------------------------------------------------------
// A second client, joined before the probe is sent, keeps what is said in the channel (or to
// it directly): the last kMaxIrcKept messages. Nothing can be deleted from a channel, and what
// was said before it joined is gone: no late probes to clean up.
constexpr size_t kMaxIrcKept = 256;

class IrcReceiver : public Receiver {
 public:
  IrcReceiver(RunContext& ctx, const config::DeliveryCheck& dc) : ctx_(ctx), dc_(dc) {}

  Task<void> open() override {
    link_ = co_await open_irc(ctx_, dc_.receive, dc_.allow_plaintext,
                              "receive " + dc_.receive.shown, "mwrecv");
  }

  Task<std::vector<std::string>> find(const std::string& token, bool include_old) override {
    std::vector<std::string> out;
    if (include_old) co_return out;
    for (size_t i = 0; i < said_.size(); ++i)
      if (said_[i].find(token) != std::string::npos) out.push_back(std::to_string(first_ + i));
    co_return out;
  }

  Task<void> wait_for_change(int64_t ms) override {
    int64_t until = clock::now_ms() + ms;
    // Returns after the first message to the channel (or to us); other traffic is skipped.
    for (;;) {
      int64_t left = until - clock::now_ms();
      if (left <= 0) co_return;
      auto m = co_await link_.irc->next(left, ctx_.scope());
      if (!m) co_return;
      if ((m->command != "PRIVMSG" && m->command != "NOTICE") || m->params.size() < 2) continue;
      const std::string& target = m->params[0];
      if (!irc::same_name(target, dc_.receive.path) && !irc::same_name(target, link_.irc->nick()))
        continue;
      said_.push_back(m->params[1]);
      if (said_.size() > kMaxIrcKept) {
        said_.erase(said_.begin());
        ++first_;
      }
      co_return;
    }
  }

  Task<std::string> fetch(const std::string& id) override {
    size_t n = std::stoul(id);
    if (n < first_ || n - first_ >= said_.size())
      throw ProbeError(FailureClass::content, "the probe line is no longer kept");
    co_return said_[n - first_];
  }

  Task<void> remove(const std::vector<std::string>&) override { co_return; }

  Task<void> close() override {
    if (link_.irc) co_await link_.irc->quit();
  }

  [[nodiscard]] bool can_find_old() const override { return false; }

  [[nodiscard]] std::string altered(const std::string& text,
                                    const std::string& token) const override {
    if (text == irc_probe_line(token)) return {};
    return "expected \"" + irc_probe_line(token) + "\", got \"" + str::printable(text) + "\"";
  }

 private:
  RunContext& ctx_;
  const config::DeliveryCheck& dc_;
  IrcLink link_;
  std::vector<std::string> said_;
  size_t first_ = 0;  // the id of said_[0]
};

}  // namespace

std::string Receiver::altered(const std::string& text, const std::string& token) const {
  return alteration(text, token);
}

std::unique_ptr<Receiver> make_receiver(RunContext& ctx, const config::DeliveryCheck& dc) {
  const std::string& s = dc.receive.scheme;
  if (s == "file") return std::make_unique<FileReceiver>(ctx, dc);
  if (dc.receive.is_ftp()) return std::make_unique<FtpReceiver>(ctx, dc);
  if (dc.receive.is_irc()) return std::make_unique<IrcReceiver>(ctx, dc);
  if (s.rfind("pop3", 0) == 0) return std::make_unique<PopReceiver>(ctx, dc);
  return std::make_unique<ImapReceiver>(ctx, dc);
}

void drop_file(const std::string& dir, const std::string& token, const std::string& message) {
  std::string tmp = dir + "/.mailwarden-" + token + ".tmp";
  std::string final_path = dir + "/" + probe_file_name(token);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    throw ProbeError(FailureClass::connect, "cannot create " + tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < message.size()) {
    ssize_t n = ::write(fd, message.data() + done, message.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      unlink(tmp.c_str());
      throw ProbeError(FailureClass::rejected, "cannot write " + tmp + ": " + std::strerror(e));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  // Readers of the directory see the whole file or nothing.
  if (rename(tmp.c_str(), final_path.c_str()) != 0) {
    int e = errno;
    unlink(tmp.c_str());
    throw ProbeError(FailureClass::rejected,
                     "cannot rename " + tmp + " into place: " + std::strerror(e));
  }
}

}  // namespace mw::checks::delivery
