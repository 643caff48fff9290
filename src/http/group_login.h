// "allow @GROUP [read-only]" (monit's grammar): any Unix user who is a member of GROUP, as its
// primary group or a supplementary one, and whose password PAM accepts may use the HTTP
// interface. PAM service "mailwarden" (/etc/pam.d/mailwarden): pam_authenticate, then
// pam_acct_mgmt (an expired or locked account is refused too).
//
// A PAM conversation blocks: pam_unix sleeps about 2 s after a wrong password, LDAP or SSSD
// modules wait on the network, and even the group lookup may ask a directory. None of it runs
// on the event loop. One worker thread takes the checks from a bounded queue (a check that does
// not fit is answered 503) and hands each verdict back to the loop through a socket pair; the
// HTTP request waits meanwhile. When evhttp reports its connection closed before the verdict
// (a reload that rebinds, the daemon stopping, a timeout) the request is forgotten; a client
// that just goes away is noticed by evhttp when the answer is written, and costs nothing more.
//
// A verified password is remembered for a minute (as an HMAC of user and password under a key
// made at start: never the password itself), so that a browser's every request does not cost a
// PAM round. A failure is not remembered; it is answered after a delay that grows with the
// recent failures of the same source (250 ms, doubling up to 4 s), and a source may have only a
// few checks waiting at once: one address cannot fill the queue for everybody else.
//
// pam_unix reads /etc/shadow: a daemon that runs as an unprivileged user can only check the
// passwords of other users when it may read that file (Debian: a member of group shadow).
#pragma once

#include <event2/event.h>
#include <event2/http.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/settings.h"
#include "util/accounts.h"
#include "util/handles.h"

namespace mw::http {

// A peer as logs and the per-source limits name it: its address, or "local" (the unix socket).
[[nodiscard]] std::string peer_name(const sockaddr* peer);

// One PAM round for `user` under `service`: pam_authenticate, then pam_acct_mgmt. `confdir`
// non-empty: the PAM configuration is read from there instead of /etc/pam.d (pam_start_confdir;
// MAILWARDEN_PAM_CONFDIR, for tests). `rhost` is told to PAM (PAM_RHOST) for its logs. False
// with `why` (PAM's own words, never the password). Blocks.
[[nodiscard]] bool pam_login(const std::string& service, const std::string& confdir,
                             const std::string& user, const std::string& password,
                             const std::string& rhost, std::string& why);

// The passwords verified lately, by an HMAC of user and password under a key made when the cache
// is: equal inputs find their entry, nothing in it gives the password back.
class LoginCache {
 public:
  static constexpr int64_t kTtlUs = 60 * 1000000LL;
  static constexpr size_t kMaxEntries = 256;
  LoginCache();

  [[nodiscard]] std::string key(const std::string& user, const std::string& password) const;
  // The groups the user was found in, when `key` was verified less than kTtlUs before `now_us`.
  [[nodiscard]] const std::vector<std::string>* find(const std::string& key, int64_t now_us) const;
  void remember(const std::string& key, std::vector<std::string> groups, int64_t now_us);
  void clear() { entries_.clear(); }
  [[nodiscard]] size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    int64_t expires_us;
    std::vector<std::string> groups;
  };
  std::string salt_;
  std::map<std::string, Entry> entries_;
};

// How long the answer to a failed login waits, after `failures` recent ones of the same source
// (this one included): 250 ms, doubling, at most 4 s.
[[nodiscard]] int64_t failure_delay_us(int failures);

class GroupLogin {
 public:
  enum class Outcome { allowed, refused, busy };
  // Called once with the verdict, unless the request's connection closes before; `user` (when
  // allowed) lives for the call only.
  using Resume = std::function<void(Outcome, const User* user)>;

  static constexpr size_t kMaxQueued = 32;  // checks waiting for the worker, in all
  static constexpr int kMaxPerSource = 4;   // checks in progress for one source address
  static constexpr int64_t kDeadlineUs = 30 * 1000000LL;  // a PAM round that takes longer: 503
  static constexpr int64_t kFailureMemoryUs = 60 * 1000000LL;

  // `service`: the PAM service. Its configuration is read from /etc/pam.d, or from the
  // directory MAILWARDEN_PAM_CONFDIR names (for tests: see pam_login).
  explicit GroupLogin(event_base* base, std::string service = "mailwarden");
  ~GroupLogin();
  GroupLogin(const GroupLogin&) = delete;
  GroupLogin& operator=(const GroupLogin&) = delete;

  // The groups to admit (start, reload): verified passwords are forgotten. Logs a warning when
  // groups are given and the daemon cannot read /etc/shadow.
  void configure(const std::vector<Group>& groups, bool read_only);
  // Checks a request's basic-auth name and password: at once when the password was verified
  // lately or the check cannot be queued, else from the loop when the worker has answered.
  // `source` names the peer (an address, or "local" for the unix socket).
  void check(evhttp_request* req, const std::string& source, const std::string& user,
             const std::string& password, Resume resume);
  [[nodiscard]] size_t waiting() const { return pending_.size(); }

 private:
  struct Job {
    uint64_t id;
    std::string user, password, source;
    std::vector<std::string> groups;
  };
  struct Verdict {
    uint64_t id;
    bool ok;
    std::string user, source, why;
    std::vector<std::string> groups;
  };
  // Shared with the worker thread, which may outlive this object when it is stuck in PAM.
  struct Shared {
    std::mutex mu;
    std::condition_variable wake;
    std::deque<Job> jobs;
    std::deque<Verdict> done;
    bool stop = false, busy = false;
    UniqueFd notify;  // the worker's end of the socket pair
    std::string service, confdir;
  };
  struct Pending {
    GroupLogin* owner;
    uint64_t id;
    evhttp_request* req;
    evhttp_connection* conn;
    std::string source, user, key;
    Resume resume;
    EventPtr timer;        // the deadline, then the failure's delay
    bool refused = false;  // the verdict came: a failure, answered when the timer fires
  };
  struct Source {
    int in_progress = 0;
    int failures = 0;
    int64_t last_failure_us = 0;
  };

  static void work(const std::shared_ptr<Shared>& shared);
  static Verdict decide(const Shared& shared, Job& job);
  static void on_notify(evutil_socket_t fd, short, void* arg);
  static void on_timer(evutil_socket_t, short, void* arg);
  static void on_closed(evhttp_connection* conn, void* arg);
  void take_verdict(Verdict& v);
  void finish(uint64_t id, Outcome outcome, const std::vector<std::string>& groups);
  [[nodiscard]] bool admit(const std::vector<std::string>& found, User& user) const;
  Source& source(const std::string& name);

  event_base* base_;
  std::shared_ptr<Shared> shared_;
  std::thread worker_;
  UniqueFd notified_;  // the loop's end of the socket pair
  EventPtr notify_event_;
  std::vector<Group> groups_;
  bool read_only_ = false;
  LoginCache cache_;
  uint64_t next_id_ = 0;
  std::map<uint64_t, std::unique_ptr<Pending>> pending_;
  std::map<std::string, Source> sources_;
};

}  // namespace mw::http
