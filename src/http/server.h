// The HTTP interface (`set httpd`): libevent's evhttp on the daemon's own loop. Routes:
//   GET  /-/healthy                      200 "OK", the only path without authentication
//   GET  /                               the status page
//   GET  /service/NAME                   a service's page: checks, history, chart, actions
//   POST /service/NAME/{check,monitor,unmonitor,start,stop,restart}   a page's forms (CSRF token)
//   GET  /api/v1/status[/NAME]           the JSON of `mailwarden status --json`
//   GET  /api/v1/status?format=text      the text of `mailwarden status` (summary: /api/v1/summary)
//   GET  /api/v1/history/NAME            the recent runs of each check of a service
//   POST /api/v1/services/NAME/{check,monitor,unmonitor,start,stop,restart}   scripts, the CLI
//   POST /api/v1/validate[?format=json]  checks every monitored service now and answers when
//                                        each has run (`mailwarden validate --now`)
//   GET  /metrics                        Prometheus text format
// When hosts or nets are allowed, a TCP peer outside them gets 403 before anything else (a peer
// on the unix socket is guarded by the socket's file mode instead). Every request but
// /-/healthy needs a user's password when users are configured (the control file's, an
// htpasswd file's, or a Unix group member's checked with PAM: group_login.h); a POST
// needs a read-write user and passes a CSRF guard (a form token bound to the user, or the
// X-Requested-By header that a browser cannot send cross-site without asking first). Requests
// are bounded in size and time, and connections in number: a hostile client costs a socket
// for at most the timeout and never holds the loop.
#pragma once

#include <event2/http.h>
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "http/control.h"
#include "http/group_login.h"
#include "http/settings.h"
#include "util/handles.h"

namespace mw::http {

// Why a request may or may not go on.
enum class Access { allowed, unauthenticated, forbidden, busy };

// Checks a password against a user of an htpasswd file; `busy` when it may not be checked now.
using FilePasswordCheck = std::function<bool(const FileUser&, const std::string&, bool& busy)>;

// Basic authentication against the configured users (constant-time comparison), then the
// users of the htpasswd files (through `check`, else password_matches). `user` is the one who
// logged in. With no users configured every request is allowed as an anonymous read-only user.
[[nodiscard]] Access authenticate(const HttpdSettings& s, const char* authorization_header,
                                  const User** user, const FilePasswordCheck* check = nullptr);
// The CSRF token of a user's forms: an HMAC of the user name under a key made at start.
[[nodiscard]] std::string csrf_token(const std::string& key, const std::string& user);

class Server {
 public:
  Server(event_base* base, Control& control, std::string host_name);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds as `s` says; false with `error` when the address cannot be bound, a TLS file or an
  // htpasswd file cannot be used. A reload calls it again: the certificate, the htpasswd files
  // and the host names are read again, a changed address, port or socket rebinds, anything
  // else applies at once. Warnings (a host name that does not resolve...) are logged.
  [[nodiscard]] bool configure(const HttpdSettings& s, int refresh_s, std::string& error);
  [[nodiscard]] int open_connections() const { return connections_; }

 private:
  struct Request;
  static void on_request(evhttp_request* req, void* arg);
  static bufferevent* on_new_connection(event_base* base, void* arg);
  static bufferevent* on_new_local_connection(event_base* base, void* arg);
  bufferevent* track(event_base* base, bufferevent* bev, bool tls);
  [[nodiscard]] std::unique_ptr<evhttp, void (*)(evhttp*)> new_http(bool local);
  [[nodiscard]] bool open_unix(const HttpdSettings& s, std::string& error);
  void close_unix();
  [[nodiscard]] bool check_file_password(const FileUser& u, const std::string& password,
                                         bool& busy);
  static void on_sweep(evutil_socket_t, short, void* arg);
  void sweep(bool all);
  void handle(Request& r);
  void admit(Request& r, Access access);
  void handle_get(Request& r);
  void handle_post(Request& r);
  void start_validate(Request& r);
  static void on_validate_poll(evutil_socket_t, short, void* arg);
  static void on_validate_gone(evhttp_connection* conn, void* arg);
  void finish_validates(bool all);
  void send(Request& r, int code, const char* reason, const std::string& type,
            const std::string& body);
  void send_page(Request& r, int code, const char* reason, const std::string& title,
                 const std::string& text);
  void send_json(Request& r, int code, const char* reason, const std::string& body);
  struct Timing {
    int64_t snapshot_us = 0, model_us = 0, format_us = 0;
  };
  void send_shared(Request& r, int code, const std::string& type,
                   const std::shared_ptr<const std::string>& body, const Timing& timing);
  static void add_headers(evkeyvalq* out, const std::string& type);

  event_base* base_;
  Control& control_;
  std::string host_name_;
  HttpdSettings settings_;
  std::string bound_;  // "address:port" currently bound (with " tls" when it serves TLS)
  SslCtxPtr tls_ctx_;  // of the TCP listener, when it serves TLS
  std::vector<Network> networks_;  // the allowed hosts and nets, names resolved
  // Passwords of htpasswd users verified since the last configure (HMACs under csrf_key_), so
  // that a client's every request does not cost a bcrypt; and the time spent hashing this
  // second, bounded so that a guesser cannot hold the loop.
  std::set<std::string> verified_;
  int64_t hashing_second_ = 0, hashing_us_ = 0;
  static constexpr int64_t kHashingBudgetUs = 200000;
  int refresh_s_ = 30;
  std::string csrf_key_;
  int connections_ = 0;
  std::vector<bufferevent*> tracked_;
  struct Cached {
    int code = 200;
    std::string type;
    std::shared_ptr<std::string> body;  // handed out as const
    uint64_t version = 0;               // of the status it shows
    int64_t made_us = 0;
  };
  static constexpr size_t kMaxCached = 256;
  // /metrics is made at most once a second: while a cycle runs every result is a new status,
  // and a flood of scrapes would otherwise make (and hold, while it is sent) a body per request.
  // A scrape may show the state of up to a second ago, nothing to Prometheus.
  static constexpr int64_t kMetricsMaxAgeUs = 1000000;
  std::map<std::string, Cached> cache_;  // by path, for the status version below
  // The buffer of the last /metrics body once nobody holds it: the next one is written into
  // memory already mapped (several megabytes for 10,000 checks).
  std::string metrics_buffer_;
  uint64_t cache_version_ = 0;  // one reference each (see on_new_connection)
  EventPtr sweep_timer_;
  // `validate --now` requests waiting for their checks: the runs each check had before.
  struct Validate {
    evhttp_request* req;
    evhttp_connection* conn;
    bool json = false;
    int64_t deadline_us = 0;
    std::map<std::string, int64_t> runs_before;  // "service\ncheck id" -> runs
  };
  static constexpr size_t kMaxValidates = 8;
  static constexpr int64_t kValidateDeadlineUs = 120 * 1000000LL;
  std::vector<Validate> validates_;
  EventPtr validate_timer_;
  std::unique_ptr<GroupLogin> group_login_;  // "allow @group": PAM off the loop
  // Last: freeing them frees the connections, whose end updates connections_.
  std::unique_ptr<evhttp, void (*)(evhttp*)> http_;
  std::unique_ptr<evhttp, void (*)(evhttp*)> unix_http_;  // on settings_.unix_socket
  std::string unix_bound_;                                // "path mode uid gid" currently bound
  std::string unix_path_;                                 // the socket file made, removed at stop
};

}  // namespace mw::http
