#include "config.h"

#include "http/group_login.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <security/pam_appl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "http/access.h"
#include "util/clock.h"
#include "util/log.h"

namespace mw::http {
namespace {

struct Conversation {
  const std::string* user;
  const std::string* password;
};

void free_responses(pam_response* r, int n) {
  for (int i = 0; i < n; ++i) {
    if (!r[i].resp) continue;
    OPENSSL_cleanse(r[i].resp, strlen(r[i].resp));
    free(r[i].resp);
  }
  free(r);
}

// PAM asks; the password answers a hidden prompt, the user name a visible one (some modules ask
// for it again); messages are ignored. The responses are PAM's to free.
int converse(int n, const pam_message** msg, pam_response** resp, void* data) {
  if (n <= 0 || n > PAM_MAX_NUM_MSG) return PAM_CONV_ERR;
  const auto* c = static_cast<const Conversation*>(data);
  auto* r = static_cast<pam_response*>(calloc(static_cast<size_t>(n), sizeof(pam_response)));
  if (!r) return PAM_BUF_ERR;
  for (int i = 0; i < n; ++i) {
    const std::string* answer = nullptr;
    switch (msg[i]->msg_style) {
      case PAM_PROMPT_ECHO_OFF:
        answer = c->password;
        break;
      case PAM_PROMPT_ECHO_ON:
        answer = c->user;
        break;
      case PAM_ERROR_MSG:
      case PAM_TEXT_INFO:
        continue;
      default:
        free_responses(r, n);
        return PAM_CONV_ERR;
    }
    r[i].resp = strdup(answer->c_str());
    if (!r[i].resp) {
      free_responses(r, n);
      return PAM_BUF_ERR;
    }
  }
  *resp = r;
  return PAM_SUCCESS;
}

// A user name as a log line may show it: what a client typed, control characters replaced.
std::string printable(const std::string& s) {
  std::string out = s.substr(0, 64);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return out;
}

}  // namespace

std::string peer_name(const sockaddr* peer) {
  char text[INET6_ADDRSTRLEN] = "";
  if (peer->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(peer)->sin_addr, text, sizeof text);
  } else if (peer->sa_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(peer)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
      inet_ntop(AF_INET, a.s6_addr + 12, text, sizeof text);
    } else {
      inet_ntop(AF_INET6, &a, text, sizeof text);
    }
  } else if (peer->sa_family == AF_UNIX) {
    return "local";
  }
  return text[0] ? text : "unknown";
}

bool pam_login(const std::string& service, const std::string& confdir, const std::string& user,
               const std::string& password, const std::string& rhost, std::string& why) {
  Conversation data{&user, &password};
  pam_conv conv{&converse, &data};
  pam_handle_t* h = nullptr;
  int rc;
#ifdef HAVE_PAM_START_CONFDIR
  if (!confdir.empty()) {
    rc = pam_start_confdir(service.c_str(), user.c_str(), &conv, confdir.c_str(), &h);
  } else {
    rc = pam_start(service.c_str(), user.c_str(), &conv, &h);
  }
#else
  if (!confdir.empty()) {
    why = "this libpam cannot read its configuration from " + confdir + " (no pam_start_confdir)";
    return false;
  }
  rc = pam_start(service.c_str(), user.c_str(), &conv, &h);
#endif
  if (rc != PAM_SUCCESS) {
    why = std::string("PAM cannot start: ") + pam_strerror(h, rc);
    if (h) pam_end(h, rc);
    return false;
  }
  if (!rhost.empty()) (void)pam_set_item(h, PAM_RHOST, rhost.c_str());
  rc = pam_authenticate(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
  if (rc == PAM_SUCCESS) rc = pam_acct_mgmt(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
  if (rc != PAM_SUCCESS) why = pam_strerror(h, rc);
  pam_end(h, rc);
  return rc == PAM_SUCCESS;
}

LoginCache::LoginCache() {
  unsigned char salt[32];
  if (RAND_bytes(salt, sizeof salt) != 1) abort();  // no randomness: nothing can be trusted
  salt_.assign(reinterpret_cast<const char*>(salt), sizeof salt);
}

std::string LoginCache::key(const std::string& user, const std::string& password) const {
  std::string input = user;
  input += '\0';
  input += password;
  std::string mac = hmac_sha256(salt_, input);
  OPENSSL_cleanse(input.data(), input.size());
  return mac;
}

const std::vector<std::string>* LoginCache::find(const std::string& key, int64_t now_us) const {
  auto it = entries_.find(key);
  if (it == entries_.end() || now_us >= it->second.expires_us) return nullptr;
  return &it->second.groups;
}

void LoginCache::remember(const std::string& key, std::vector<std::string> groups, int64_t now_us) {
  if (entries_.size() >= kMaxEntries) {
    std::erase_if(entries_, [now_us](const auto& e) { return now_us >= e.second.expires_us; });
    if (entries_.size() >= kMaxEntries) entries_.clear();
  }
  entries_[key] = Entry{now_us + kTtlUs, std::move(groups)};
}

int64_t failure_delay_us(int failures) {
  if (failures <= 0) return 0;
  int64_t us = 250000;
  for (int i = 1; i < failures && us < 4000000; ++i) us *= 2;
  return std::min<int64_t>(us, 4000000);
}

GroupLogin::GroupLogin(event_base* base, std::string service)
    : base_(base), shared_(std::make_shared<Shared>()) {
  shared_->service = std::move(service);
  if (const char* confdir = getenv("MAILWARDEN_PAM_CONFDIR")) shared_->confdir = confdir;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) abort();
  notified_.reset(fds[0]);
  shared_->notify.reset(fds[1]);
  notify_event_.reset(
      event_new(base_, notified_.get(), EV_READ | EV_PERSIST, &GroupLogin::on_notify, this));
  event_add(notify_event_.get(), nullptr);
  // The daemon's signals are for its loop: the worker (and what PAM modules start) gets none.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  worker_ = std::thread([shared = shared_] { work(shared); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

GroupLogin::~GroupLogin() {
  // Requests still waiting are left to their connections, which the server closes.
  for (auto& [id, p] : pending_) evhttp_connection_set_closecb(p->conn, nullptr, nullptr);
  pending_.clear();
  bool idle;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stop = true;
    shared_->jobs.clear();
    idle = !shared_->busy;
  }
  shared_->wake.notify_all();
  // A PAM round may hang on a directory server: the daemon does not wait for it to stop. The
  // thread keeps the state it shares alive, and drops its verdict.
  if (idle) {
    worker_.join();
  } else {
    worker_.detach();
  }
}

void GroupLogin::configure(const std::vector<Group>& groups, bool read_only) {
  groups_ = groups;
  read_only_ = read_only;
  cache_.clear();
  if (groups.empty()) return;
  int fd = open("/etc/shadow", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
  } else if (errno == EACCES) {
    log::warning(
        "set httpd: 'allow @%s': mailwarden (uid %d) cannot read /etc/shadow, so PAM's pam_unix "
        "can check no password but that of its own user; add the user to group shadow, or use "
        "an htpasswd file (see mailwardenrc(5))",
        groups.front().name.c_str(), static_cast<int>(geteuid()));
  }
}

GroupLogin::Source& GroupLogin::source(const std::string& name) {
  if (sources_.size() > 1024) {
    int64_t now = clock::now_us();
    std::erase_if(sources_, [now](const auto& e) {
      return e.second.in_progress == 0 && now - e.second.last_failure_us > kFailureMemoryUs;
    });
  }
  return sources_[name];
}

void GroupLogin::check(evhttp_request* req, const std::string& from, const std::string& user,
                       const std::string& password, Resume resume) {
  int64_t now = clock::now_us();
  std::string key = cache_.key(user, password);
  if (const auto* found = cache_.find(key, now)) {
    User u;
    u.name = user;
    if (admit(*found, u)) {
      resume(Outcome::allowed, &u);
      return;
    }
  }
  Source& src = source(from);
  evhttp_connection* conn = evhttp_request_get_connection(req);
  if (!conn || src.in_progress >= kMaxPerSource) {
    resume(Outcome::busy, nullptr);
    return;
  }
  std::vector<std::string> names;
  for (const auto& g : groups_) names.push_back(g.name);
  uint64_t id = ++next_id_;
  bool queued = false;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    if (shared_->jobs.size() < kMaxQueued) {
      shared_->jobs.push_back(Job{id, user, password, from, std::move(names)});
      queued = true;
    }
  }
  if (!queued) {
    resume(Outcome::busy, nullptr);
    return;
  }
  shared_->wake.notify_one();
  auto p = std::make_unique<Pending>();
  p->owner = this;
  p->id = id;
  p->req = req;
  p->conn = conn;
  p->source = from;
  p->user = user;
  p->key = std::move(key);
  p->resume = std::move(resume);
  p->timer.reset(evtimer_new(base_, &GroupLogin::on_timer, p.get()));
  timeval deadline{kDeadlineUs / 1000000, 0};
  evtimer_add(p->timer.get(), &deadline);
  evhttp_connection_set_closecb(conn, &GroupLogin::on_closed, this);
  ++src.in_progress;
  pending_[id] = std::move(p);
}

void GroupLogin::work(const std::shared_ptr<Shared>& shared) {
  Shared& sh = *shared;
  std::unique_lock<std::mutex> lock(sh.mu);
  for (;;) {
    sh.wake.wait(lock, [&sh] { return sh.stop || !sh.jobs.empty(); });
    if (sh.stop) return;
    Job job = std::move(sh.jobs.front());
    sh.jobs.pop_front();
    sh.busy = true;
    lock.unlock();
    Verdict v = decide(sh, job);
    OPENSSL_cleanse(job.password.data(), job.password.size());
    lock.lock();
    sh.busy = false;
    if (sh.stop) return;
    sh.done.push_back(std::move(v));
    // One byte wakes the loop; when the socket is full, a wake-up is on its way already.
    char byte = 1;
    (void)send(sh.notify.get(), &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  }
}

// On the worker thread: the group first (no PAM round, no failure counted by PAM modules such as
// pam_faillock, for a user who could not come in anyway), then PAM.
GroupLogin::Verdict GroupLogin::decide(const Shared& sh, Job& job) {
  Verdict v{job.id, false, job.user, job.source, "", {}};
  v.groups = accounts::member_groups(job.user, job.groups);
  if (v.groups.empty()) {
    v.why = "not a member of an allowed group (or no such user)";
    return v;
  }
  std::string rhost = job.source == "local" ? "localhost" : job.source;
  v.ok = pam_login(sh.service, sh.confdir, job.user, job.password, rhost, v.why);
  if (!v.ok) v.why = "PAM: " + v.why;
  return v;
}

void GroupLogin::on_notify(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<GroupLogin*>(arg);
  char buf[64];
  while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
  std::deque<Verdict> done;
  {
    std::lock_guard<std::mutex> lock(self->shared_->mu);
    done.swap(self->shared_->done);
  }
  for (auto& v : done) self->take_verdict(v);
}

void GroupLogin::take_verdict(Verdict& v) {
  auto it = pending_.find(v.id);
  if (v.ok) {
    if (it == pending_.end()) return;
    cache_.remember(it->second->key, v.groups, clock::now_us());
    finish(v.id, Outcome::allowed, v.groups);
    return;
  }
  int64_t now = clock::now_us();
  Source& src = source(v.source);
  if (now - src.last_failure_us > kFailureMemoryUs) src.failures = 0;
  ++src.failures;
  src.last_failure_us = now;
  log::warning("HTTP: login of '%s' from %s refused: %s", printable(v.user).c_str(),
               v.source.c_str(), v.why.c_str());
  if (it == pending_.end()) return;
  Pending& p = *it->second;
  p.refused = true;
  int64_t delay = failure_delay_us(src.failures);
  timeval tv{static_cast<time_t>(delay / 1000000), static_cast<suseconds_t>(delay % 1000000)};
  evtimer_del(p.timer.get());
  evtimer_add(p.timer.get(), &tv);
}

void GroupLogin::on_timer(evutil_socket_t, short, void* arg) {
  auto* p = static_cast<Pending*>(arg);
  GroupLogin* self = p->owner;
  if (p->refused) {
    self->finish(p->id, Outcome::refused, {});
    return;
  }
  log::warning("HTTP: the password check of '%s' from %s did not end within %lld s (PAM)",
               printable(p->user).c_str(), p->source.c_str(),
               static_cast<long long>(kDeadlineUs / 1000000));
  self->finish(p->id, Outcome::busy, {});
}

// The client went away while its check ran: its request is forgotten, the verdict dropped. On
// an end of file or a timeout evhttp has already detached the unanswered request from the
// connection and leaves it to its user to free; otherwise (the server going) it frees it itself
// once this callback returns.
void GroupLogin::on_closed(evhttp_connection* conn, void* arg) {
  auto* self = static_cast<GroupLogin*>(arg);
  for (auto it = self->pending_.begin(); it != self->pending_.end(); ++it) {
    Pending& p = *it->second;
    if (p.conn != conn) continue;
    --self->source(p.source).in_progress;
    log::debug("HTTP: the client of '%s' from %s left during its password check",
               printable(p.user).c_str(), p.source.c_str());
    if (!evhttp_request_get_connection(p.req)) evhttp_request_free(p.req);
    self->pending_.erase(it);
    return;
  }
}

void GroupLogin::finish(uint64_t id, Outcome outcome, const std::vector<std::string>& groups) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  std::unique_ptr<Pending> p = std::move(it->second);
  pending_.erase(it);
  evhttp_connection_set_closecb(p->conn, nullptr, nullptr);
  --source(p->source).in_progress;
  User u;
  u.name = p->user;
  if (outcome == Outcome::allowed && !admit(groups, u)) outcome = Outcome::refused;
  p->resume(outcome, outcome == Outcome::allowed ? &u : nullptr);
}

// The user of the groups found, as configured now (a reload may have changed them): read-write
// when one of its allowed groups is.
bool GroupLogin::admit(const std::vector<std::string>& found, User& user) const {
  bool member = false, writes = false;
  for (const auto& g : groups_) {
    if (std::find(found.begin(), found.end(), g.name) == found.end()) continue;
    member = true;
    if (!g.read_only) writes = true;
  }
  user.read_only = read_only_ || !writes;
  return member;
}

}  // namespace mw::http
