#include "http/server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "http/access.h"
#include "http/server_tls.h"
#include "report/html.h"
#include "report/status.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strings.h"

namespace mw::http {
namespace {

bool same_secret(const std::string& a, const std::string& b) {
  // Compare digests, so that the time taken says nothing about the length either.
  static const std::string_view key("mailwarden-compare", sizeof "mailwarden-compare");
  std::string da = hmac_sha256(key, a), db = hmac_sha256(key, b);
  return CRYPTO_memcmp(da.data(), db.data(), da.size()) == 0;
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

std::string query_value(const char* query, const char* name) {
  if (!query) return "";
  evkeyvalq q;
  q.tqh_first = nullptr;  // TAILQ_INIT
  q.tqh_last = &q.tqh_first;
  if (evhttp_parse_query_str(query, &q) != 0) return "";
  const char* v = evhttp_find_header(&q, name);
  std::string out = v ? v : "";
  evhttp_clear_headers(&q);
  return out;
}

}  // namespace

Access authenticate(const HttpdSettings& s, const char* header, const User** user,
                    const FilePasswordCheck* check) {
  static const User anonymous{"", "", true};
  *user = &anonymous;
  if (!s.has_users()) return Access::allowed;
  std::string name, password;
  if (!basic_credentials(header, name, password)) return Access::unauthenticated;
  const User* found = nullptr;
  for (const auto& u : s.users)
    if (u.name == name && same_secret(u.password, password)) found = &u;
  if (!found) {
    for (const auto& f : s.file_users) {
      if (f.user.name != name) continue;
      bool busy = false;
      bool ok = check ? (*check)(f, password, busy) : password_matches(f, password);
      if (busy) return Access::busy;
      if (ok) {
        found = &f.user;
        break;
      }
    }
  }
  if (!found) return Access::unauthenticated;
  *user = found;
  return Access::allowed;
}

std::string csrf_token(const std::string& key, const std::string& user) {
  std::string mac = hmac_sha256(key, user);
  return str::hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
}

struct Server::Request {
  evhttp_request* req;
  std::string method;
  std::string path;  // decoded
  const char* query = nullptr;
  const User* user = nullptr;
  bool local = false;  // came through the unix socket
};

Server::Server(event_base* base, Control& control, std::string host_name)
    : base_(base),
      control_(control),
      host_name_(std::move(host_name)),
      sweep_timer_(evtimer_new(base, &Server::on_sweep, this)),
      validate_timer_(evtimer_new(base, &Server::on_validate_poll, this)),
      http_(nullptr, evhttp_free),
      unix_http_(nullptr, evhttp_free) {
  unsigned char key[32];
  if (RAND_bytes(key, sizeof key) != 1) abort();  // no randomness: nothing can be trusted
  csrf_key_.assign(reinterpret_cast<const char*>(key), sizeof key);
}

Server::~Server() {
  for (auto& v : validates_) evhttp_connection_set_closecb(v.conn, nullptr, nullptr);
  validates_.clear();
  http_.reset();  // frees the connections
  close_unix();
  sweep(true);
}

std::unique_ptr<evhttp, void (*)(evhttp*)> Server::new_http(bool local) {
  std::unique_ptr<evhttp, void (*)(evhttp*)> h(evhttp_new(base_), evhttp_free);
  if (!h) return h;
  evhttp_set_gencb(h.get(), &Server::on_request, this);
  evhttp_set_bevcb(h.get(), local ? &Server::on_new_local_connection : &Server::on_new_connection,
                   this);
  evhttp_set_allowed_methods(h.get(), EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
  return h;
}

bool Server::configure(const HttpdSettings& in, int refresh_s, std::string& error) {
  refresh_s_ = std::max(5, refresh_s);
  if (!in.enabled) {
    http_.reset();
    close_unix();
    sweep(false);
    bound_.clear();
    tls_ctx_.reset();
    settings_ = in;
    return true;
  }
  // Everything that reads files or names first: a failure leaves the interface as it was.
  HttpdSettings s = in;
  std::vector<std::string> warnings;
  if (!load_htpasswd(s.htpasswd, s.file_users, warnings, error)) return false;
  SslCtxPtr ctx;
  if (s.port != 0 && s.tls.enabled) {
    ctx = make_server_context(s.tls, error);
    if (!ctx) return false;
  }
  std::vector<Network> networks = resolve_networks(s.networks, warnings);
  for (const auto& w : warnings) log::warning("set httpd: %s", w.c_str());
  // "allow @group": the worker that asks PAM is made with the first group, kept across reloads.
  if (!s.groups.empty() && !group_login_) group_login_ = std::make_unique<GroupLogin>(base_);
  if (group_login_) group_login_->configure(s.groups, s.read_only);

  std::string want = s.port == 0 ? "" : s.address + ":" + std::to_string(s.port);
  if (s.port == 0) {
    http_.reset();
    bound_.clear();
  } else if (!http_ || bound_ != want) {
    auto h = new_http(false);
    if (!h) {
      error = "cannot create the HTTP server";
      return false;
    }
    if (!evhttp_bind_socket_with_handle(h.get(), s.address.c_str(), s.port)) {
      error = "cannot listen on " + want + ": " + strerror(errno);
      return false;
    }
    http_ = std::move(h);
    bound_ = want;
  }
  if (!s.unix_socket.empty()) {
    if (!open_unix(s, error)) return false;
  } else {
    close_unix();
  }
  bool announce = settings_.port != s.port || settings_.address != s.address ||
                  settings_.tls.enabled != s.tls.enabled || !settings_.enabled ||
                  settings_.unix_socket != s.unix_socket;
  tls_ctx_ = std::move(ctx);
  networks_ = std::move(networks);
  verified_.clear();
  for (evhttp* h : {http_.get(), unix_http_.get()}) {
    if (!h) continue;
    evhttp_set_max_headers_size(h, static_cast<ev_ssize_t>(s.max_header_bytes));
    evhttp_set_max_body_size(h, static_cast<ev_ssize_t>(s.max_body_bytes));
    evhttp_set_timeout(h, s.timeout_s);
  }
  settings_ = std::move(s);
  if (announce) {
    const char* users =
        settings_.has_users() ? "" : " (no users: read-only, without authentication)";
    if (http_)
      log::info("HTTP interface listening on %s%s%s", bound_.c_str(), tls_ctx_ ? " (TLS)" : "",
                users);
    if (unix_http_)
      log::info("HTTP interface listening on unix socket %s%s", unix_path_.c_str(), users);
  }
  return true;
}

// The unix socket: made with the configured mode (monit's default 0660; 0600 lets only the
// daemon's user in) before anyone can connect, a stale one left by a killed daemon replaced, one
// that a live server answers on refused.
bool Server::open_unix(const HttpdSettings& s, std::string& error) {
  std::string want = s.unix_socket + " " + std::to_string(s.socket_mode) + " " +
                     std::to_string(s.socket_uid) + " " + std::to_string(s.socket_gid);
  if (unix_http_ && unix_bound_ == want) return true;
  const std::string& path = s.unix_socket;
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.size() >= sizeof sun.sun_path) {
    error = "the unix socket path " + path + " is too long";
    return false;
  }
  std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  bool ours = path == unix_path_;
  struct stat st;
  if (!ours && lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      error = "cannot listen on " + path + ": a file that is not a socket is in the way";
      return false;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0;
    if (probe >= 0) close(probe);
    if (live) {
      error = "cannot listen on " + path + ": another server answers on it";
      return false;
    }
  }
  close_unix();
  (void)unlink(path.c_str());  // stale
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    error = "cannot create a unix socket: " + std::string(strerror(errno));
    return false;
  }
  mode_t old = umask(0177);  // no moment where others may connect
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun);
  umask(old);
  int err = errno;
  if (rc != 0 || chmod(path.c_str(), static_cast<mode_t>(s.socket_mode)) != 0 ||
      ((s.socket_uid >= 0 || s.socket_gid >= 0) &&
       chown(path.c_str(), static_cast<uid_t>(s.socket_uid), static_cast<gid_t>(s.socket_gid)) !=
           0) ||
      listen(fd, 128) != 0) {
    if (rc == 0) err = errno;
    close(fd);
    if (rc == 0) (void)unlink(path.c_str());
    error = "cannot listen on unix socket " + path + ": " + strerror(err);
    return false;
  }
  evconnlistener* lev = evconnlistener_new(base_, nullptr, nullptr,
                                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
  auto h = new_http(true);
  if (!lev || !h || !evhttp_bind_listener(h.get(), lev)) {
    if (lev) {
      evconnlistener_free(lev);
    } else {
      close(fd);
    }
    (void)unlink(path.c_str());
    error = "cannot serve unix socket " + path;
    return false;
  }
  unix_http_ = std::move(h);
  unix_path_ = path;
  unix_bound_ = want;
  return true;
}

void Server::close_unix() {
  unix_http_.reset();
  if (!unix_path_.empty()) (void)unlink(unix_path_.c_str());
  unix_path_.clear();
  unix_bound_.clear();
}

// evhttp in libevent 2.1 neither bounds nor reports its connections. Each one's bufferevent is
// made here, and the server keeps a reference to it: when evhttp frees a connection the
// bufferevent loses its callbacks but lives on until the next sweep drops the reference (within
// a second; only then is its socket closed). So the number of connections is known, and one
// beyond the bound is answered 503 and shut down as soon as evhttp has given it its socket.
bufferevent* Server::on_new_connection(event_base* base, void* arg) {
  auto* self = static_cast<Server*>(arg);
  self->sweep(false);
  if (self->tls_ctx_) {
    SSL* ssl = SSL_new(self->tls_ctx_.get());
    if (!ssl) return nullptr;
    // The handshake runs under evhttp's read timeout like a request does: a client that never
    // finishes it holds a socket (counted below) for at most the timeout, never the loop.
    bufferevent* bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                      BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
      SSL_free(ssl);
      return nullptr;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return self->track(base, bev, true);
  }
  bufferevent* bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  return bev ? self->track(base, bev, false) : nullptr;
}

bufferevent* Server::on_new_local_connection(event_base* base, void* arg) {
  auto* self = static_cast<Server*>(arg);
  self->sweep(false);
  bufferevent* bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  return bev ? self->track(base, bev, false) : nullptr;
}

bufferevent* Server::track(event_base* base, bufferevent* bev, bool tls) {
  bufferevent_incref(bev);
  tracked_.push_back(bev);
  connections_ = static_cast<int>(tracked_.size());
  if (!evtimer_pending(sweep_timer_.get(), nullptr)) {
    timeval tv{1, 0};
    evtimer_add(sweep_timer_.get(), &tv);
  }
  if (connections_ > settings_.max_connections) {
    bufferevent_incref(bev);  // for the callback below
    event_base_once(
        base, -1, EV_TIMEOUT,
        tls ? +[](evutil_socket_t, short, void* p) {
          // Over TLS a plain answer would be noise: the connection is just closed.
          auto* b = static_cast<bufferevent*>(p);
          evutil_socket_t fd = bufferevent_getfd(b);
          if (fd >= 0) shutdown(fd, SHUT_RDWR);
          bufferevent_decref(b);
        }
            : +[](evutil_socket_t, short, void* p) {
                auto* b = static_cast<bufferevent*>(p);
                evutil_socket_t fd = bufferevent_getfd(b);
                if (fd >= 0) {
                  static const char busy[] =
                      "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: "
                      "close\r\n\r\n";
                  ssize_t ignored = ::send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                  (void)ignored;
                  shutdown(fd, SHUT_RDWR);
                }
                bufferevent_decref(b);
              },
        bev, nullptr);
  }
  return bev;
}

// Drops the connections evhttp has freed (all of them with `all`, when the server goes).
void Server::sweep(bool all) {
  size_t kept = 0;
  for (bufferevent* bev : tracked_) {
    bufferevent_data_cb readcb = nullptr;
    bufferevent_event_cb eventcb = nullptr;
    bufferevent_getcb(bev, &readcb, nullptr, &eventcb, nullptr);
    if (all || (!readcb && !eventcb)) {
      bufferevent_decref(bev);
    } else {
      tracked_[kept++] = bev;
    }
  }
  tracked_.resize(kept);
  connections_ = static_cast<int>(tracked_.size());
}

void Server::on_sweep(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  self->sweep(false);
  if (!self->tracked_.empty()) {
    timeval tv{1, 0};
    evtimer_add(self->sweep_timer_.get(), &tv);
  }
}

void Server::on_request(evhttp_request* req, void* arg) {
  auto* self = static_cast<Server*>(arg);
  Request r{req, "", "", nullptr, nullptr, false};
  switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET:
      r.method = "GET";
      break;
    case EVHTTP_REQ_HEAD:
      r.method = "HEAD";
      break;
    case EVHTTP_REQ_POST:
      r.method = "POST";
      break;
    default:
      r.method = "OTHER";
  }
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  const char* raw = uri ? evhttp_uri_get_path(uri) : nullptr;
  r.query = uri ? evhttp_uri_get_query(uri) : nullptr;
  size_t len = 0;
  char* decoded = raw ? evhttp_uridecode(raw, 0, &len) : nullptr;
  if (!decoded || strlen(decoded) != len) {
    free(decoded);
    self->send(r, 400, "Bad Request", "text/plain; charset=utf-8", "bad request path\n");
    return;
  }
  r.path = decoded;
  free(decoded);
  self->handle(r);
}

// Whether a password for an htpasswd user may be checked now, and whether it matches: a
// password verified before costs nothing, a new one a crypt(3) within the second's budget.
bool Server::check_file_password(const FileUser& u, const std::string& password, bool& busy) {
  std::string key = csrf_token(csrf_key_, u.user.name + '\0' + u.hash + '\0' + password);
  if (verified_.count(key)) return true;
  int64_t now = clock::now_us();
  if (now / 1000000 != hashing_second_) {
    hashing_second_ = now / 1000000;
    hashing_us_ = 0;
  }
  if (hashing_us_ >= kHashingBudgetUs) {
    busy = true;
    return false;
  }
  bool ok = password_matches(u, password);
  hashing_us_ += clock::now_us() - now;
  if (ok) {
    if (verified_.size() >= 256) verified_.clear();
    verified_.insert(key);
  }
  return ok;
}

void Server::handle(Request& r) {
  evhttp_connection* conn = evhttp_request_get_connection(r.req);
  bufferevent* bev = conn ? evhttp_connection_get_bufferevent(conn) : nullptr;
  sockaddr_storage peer{};
  socklen_t peer_len = sizeof peer;
  evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
  if (fd < 0 || getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0)
    peer.ss_family = AF_UNSPEC;
  r.local = peer.ss_family == AF_UNIX;
  // monit's order: the peer's address first, then the password.
  if (!settings_.networks.empty() && !r.local &&
      !network_allows(networks_, reinterpret_cast<const sockaddr*>(&peer))) {
    send(r, 403, "Forbidden", "text/plain; charset=utf-8",
         "your address is not allowed to use this interface\n");
    return;
  }
  if (r.path == "/-/healthy") {
    send(r, 200, "OK", "text/plain; charset=utf-8", "OK\n");
    return;
  }
  const char* auth = evhttp_find_header(evhttp_request_get_input_headers(r.req), "Authorization");
  FilePasswordCheck check = [this](const FileUser& u, const std::string& pw, bool& busy) {
    return check_file_password(u, pw, busy);
  };
  Access access = authenticate(settings_, auth, &r.user, &check);
  std::string name, password;
  if (access == Access::unauthenticated && group_login_ && !settings_.groups.empty() &&
      basic_credentials(auth, name, password)) {
    // A Unix group's member: PAM answers later, off the loop; the request waits for it.
    group_login_->check(r.req, peer_name(reinterpret_cast<const sockaddr*>(&peer)), name, password,
                        [this, r](GroupLogin::Outcome o, const User* user) mutable {
                          r.user = user;
                          admit(r, o == GroupLogin::Outcome::allowed ? Access::allowed
                                   : o == GroupLogin::Outcome::busy  ? Access::busy
                                                                     : Access::unauthenticated);
                        });
    return;
  }
  admit(r, access);
}

// The verdict on a request's password: refused, or handled as its user.
void Server::admit(Request& r, Access access) {
  if (access == Access::busy) {
    evhttp_add_header(evhttp_request_get_output_headers(r.req), "Retry-After", "1");
    send(r, 503, "Service Unavailable", "text/plain; charset=utf-8",
         "too many password checks this second; try again\n");
    return;
  }
  if (access != Access::allowed) {
    evhttp_add_header(evhttp_request_get_output_headers(r.req), "WWW-Authenticate",
                      "Basic realm=\"mailwarden\", charset=\"UTF-8\"");
    send(r, 401, "Unauthorized", "text/plain; charset=utf-8", "authentication required\n");
    return;
  }
  if (r.method == "POST") {
    handle_post(r);
  } else {
    handle_get(r);
  }
}

void Server::handle_get(Request& r) {
  auto parts = split_path(r.path);
  report::PageContext page;
  page.host = host_name_;
  page.now = clock::wall();
  page.refresh_s = refresh_s_;
  page.can_act = settings_.has_users() && !settings_.read_only && !r.user->read_only;
  page.csrf_token = page.can_act ? csrf_token(csrf_key_, r.user->name) : "";
  bool api = parts.size() >= 3 && parts[0] == "api" && parts[1] == "v1";
  bool known = parts.empty() || (parts.size() == 2 && parts[0] == "service") ||
               (parts.size() == 1 && parts[0] == "metrics") || api;
  if (!known) {
    send_page(r, 404, "Not Found", "Not found", "Nothing is at " + r.path + ".");
    return;
  }
  // What does not depend on the user is made once per version of the status (/metrics at most
  // once a second) and shared by every response until then: a flood of scrapes costs little.
  bool cacheable = api || (!parts.empty() && parts[0] == "metrics");
  std::string key = r.path + (query_value(r.query, "format") == "text" ? "?text" : "");
  uint64_t version = control_.version();
  int64_t started_us = clock::now_us();
  // Whether a response made before still answers: the status has not changed since, or it is
  // /metrics and less than kMetricsMaxAgeUs old.
  auto current = [&](const std::string& path, const Cached& c) {
    return c.version == version ||
           (path == "/metrics" && started_us - c.made_us < kMetricsMaxAgeUs);
  };
  if (cache_version_ != version || cache_.size() > kMaxCached) {
    std::erase_if(cache_, [&](const auto& entry) {
      return cache_.size() > kMaxCached || !current(entry.first, entry.second);
    });
    cache_version_ = version;
  }
  if (cacheable) {
    if (auto it = cache_.find(key); it != cache_.end()) {
      if (current(key, it->second)) {
        send_shared(r, it->second.code, it->second.type, it->second.body, {});
        return;
      }
      // Freed now (unless still being sent), not after the new one is made.
      if (key == "/metrics" && it->second.body.use_count() == 1)
        metrics_buffer_ = std::move(*it->second.body);
      cache_.erase(it);
    }
  }
  bool history = (!parts.empty() && parts[0] == "service") ||
                 (api && parts.size() == 4 && parts[2] == "history");
  int64_t snapshot_us = 0;
  report::Status st;
  {
    state::Snapshot snap = control_.snapshot(history);
    snapshot_us = clock::now_us();
    st = report::build(std::move(snap), {static_cast<int>(getpid()), true});
  }  // what the model did not take is freed before the formatter runs
  int64_t model_us = clock::now_us();
  st.written = page.now;
  // The response of a cacheable path: kept for the next requests of this version.
  auto reply = [&](int code, const std::string& type, std::string body) {
    auto shared = std::make_shared<std::string>(std::move(body));
    if (cacheable) cache_[key] = Cached{code, type, shared, version, started_us};
    send_shared(r, code, type, shared,
                {snapshot_us - started_us, model_us - snapshot_us, clock::now_us() - model_us});
  };

  if (parts.empty()) {
    send(r, 200, "OK", "text/html; charset=utf-8", report::html_index(st, page));
    return;
  }
  auto find = [&](const std::string& name) -> const report::ServiceStatus* {
    for (const auto& s : st.services)
      if (s.name == name) return &s;
    return nullptr;
  };
  if (parts[0] == "service") {
    if (const auto* s = find(parts[1])) {
      send(r, 200, "OK", "text/html; charset=utf-8", report::html_service(st, *s, page));
    } else {
      send_page(r, 404, "Not Found", "No such service",
                "There is no service named '" + parts[1] + "'.");
    }
    return;
  }
  if (parts[0] == "metrics") {
    std::string body = std::move(metrics_buffer_);
    body.clear();
    report::append_metrics_text(body, st, control_.facts());
    reply(200, "text/plain; version=0.0.4; charset=utf-8", std::move(body));
    return;
  }
  bool text = query_value(r.query, "format") == "text";
  if (parts.size() == 3 && parts[2] == "status") {
    if (text) {
      reply(200, "text/plain; charset=utf-8", report::status_text(st));
    } else {
      reply(200, "application/json", report::dump(report::status_json(st)));
    }
    return;
  }
  if (parts.size() == 3 && parts[2] == "summary") {
    reply(200, "text/plain; charset=utf-8", report::summary_text(st));
    return;
  }
  if (parts.size() == 4 && (parts[2] == "status" || parts[2] == "history")) {
    const auto* s = find(parts[3]);
    if (!s) {
      reply(404, "application/json",
            report::dump(nlohmann::json{{"error", "no service named '" + parts[3] + "'"}}));
      return;
    }
    if (parts[2] == "history") {
      reply(200, "application/json", report::dump(report::service_json(*s, true)));
      return;
    }
    // The same document as /api/v1/status, with only this service.
    report::Status one = st;
    one.services = {*s};
    reply(200, "application/json", report::dump(report::status_json(one)));
    return;
  }
  send_page(r, 404, "Not Found", "Not found", "Nothing is at " + r.path + ".");
}

// POST /service/NAME/ACTION (a page's form) or /api/v1/services/NAME/ACTION (scripts, the CLI).
void Server::handle_post(Request& r) {
  auto parts = split_path(r.path);
  bool validate =
      parts.size() == 3 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "validate";
  bool form = parts.size() == 3 && parts[0] == "service";
  bool api = parts.size() == 5 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "services";
  auto reply = [&](int code, const char* reason, const std::string& text) {
    if (api) {
      send_json(r, code, reason,
                report::dump(nlohmann::json{{"ok", code < 300}, {"message", text}}));
    } else {
      send_page(r, code, reason, reason, text);
    }
  };
  if (validate) api = true;
  if (!form && !api) {
    reply(404, "Not Found", "nothing to do at " + r.path);
    return;
  }
  if (!settings_.has_users()) {
    reply(403, "Forbidden",
          "actions need a user: set httpd ... allow USER:PASSWORD (none is configured)");
    return;
  }
  if (settings_.read_only || r.user->read_only) {
    reply(403, "Forbidden", "user '" + r.user->name + "' may read but not act");
    return;
  }
  // CSRF: a browser sends another site's form with the user's saved password, but it can
  // neither read this site's token nor add a custom header to a cross-site request unasked.
  auto* in = evhttp_request_get_input_headers(r.req);
  const char* origin = evhttp_find_header(in, "Origin");
  const char* host = evhttp_find_header(in, "Host");
  if (origin && host && std::string(origin) != "null") {
    std::string o = origin;
    auto scheme = o.find("://");
    if (scheme == std::string::npos || o.substr(scheme + 3) != host) {
      reply(403, "Forbidden", "cross-site request refused (Origin does not match Host)");
      return;
    }
  }
  bool guarded = false;
  if (api) {
    guarded = evhttp_find_header(in, "X-Requested-By") != nullptr;
  } else {
    evbuffer* body = evhttp_request_get_input_buffer(r.req);
    size_t n = std::min(evbuffer_get_length(body), settings_.max_body_bytes);
    std::string text(n, '\0');
    evbuffer_copyout(body, text.data(), n);
    std::string token = query_value(text.c_str(), "csrf");
    guarded = !token.empty() && same_secret(token, csrf_token(csrf_key_, r.user->name));
  }
  if (!guarded) {
    reply(403, "Forbidden",
          api ? "missing X-Requested-By header (CSRF guard)" : "missing or wrong CSRF token");
    return;
  }
  if (validate) {
    start_validate(r);
    return;
  }
  const std::string& service = api ? parts[3] : parts[1];
  const std::string& action = api ? parts[4] : parts[2];
  std::string error, done = action + " " + service + ": done";
  if (action == "check") {
    error = control_.check_now(service);
  } else if (action == "monitor") {
    error = control_.monitor(service);
  } else if (action == "unmonitor") {
    error = control_.unmonitor(service);
  } else if (action == "start" || action == "stop" || action == "restart") {
    error = control_.act(action, service, done);
  } else {
    reply(404, "Not Found",
          "unknown action '" + action + "' (check, monitor, unmonitor, start, stop, restart)");
    return;
  }
  log::info("HTTP: %s %s '%s' by %s: %s", r.method.c_str(), action.c_str(), service.c_str(),
            r.user->name.c_str(), error.empty() ? "done" : error.c_str());
  if (!error.empty()) {
    reply(error.rfind("no service", 0) == 0 ? 404 : 409,
          error.rfind("no service", 0) == 0 ? "Not Found" : "Conflict", error);
    return;
  }
  if (form) {
    // Back to the service's page (Post/Redirect/Get: a reload does not act again).
    evhttp_add_header(evhttp_request_get_output_headers(r.req), "Location",
                      ("/service/" + report::url_path_escape(service)).c_str());
    send(r, 303, "See Other", "text/plain; charset=utf-8", action + ": done\n");
    return;
  }
  reply(200, "OK", done);
}

// `validate --now`: every monitored service is checked now; the answer waits (without holding
// the loop) until each of their checks has run once more, or two minutes have passed.
void Server::start_validate(Request& r) {
  if (validates_.size() >= kMaxValidates) {
    send_json(r, 503, "Service Unavailable",
              report::dump(nlohmann::json{{"ok", false}, {"message", "too many validations"}}));
    return;
  }
  Validate v{r.req,
             evhttp_request_get_connection(r.req),
             query_value(r.query, "format") == "json",
             clock::now_us() + kValidateDeadlineUs,
             {}};
  report::Status st = report::build(control_.snapshot(false), {static_cast<int>(getpid()), true});
  for (const auto& svc : st.services) {
    if (!svc.monitored) continue;
    if (!control_.check_now(svc.name).empty()) continue;
    for (const auto& c : svc.checks) v.runs_before[svc.name + "\n" + c.id] = c.runs;
  }
  log::info("HTTP: validate by %s: %zu checks started", r.user->name.c_str(), v.runs_before.size());
  evhttp_connection_set_closecb(v.conn, &Server::on_validate_gone, this);
  validates_.push_back(std::move(v));
  if (!evtimer_pending(validate_timer_.get(), nullptr)) {
    timeval tv{0, 100000};
    evtimer_add(validate_timer_.get(), &tv);
  }
}

void Server::on_validate_gone(evhttp_connection* conn, void* arg) {
  auto* self = static_cast<Server*>(arg);
  std::erase_if(self->validates_, [conn](const Validate& v) { return v.conn == conn; });
}

void Server::on_validate_poll(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  self->finish_validates(false);
  if (!self->validates_.empty()) {
    timeval tv{0, 100000};
    evtimer_add(self->validate_timer_.get(), &tv);
  }
}

void Server::finish_validates(bool all) {
  if (validates_.empty()) return;
  report::Status st = report::build(control_.snapshot(false), {static_cast<int>(getpid()), true});
  st.written = clock::wall();
  int64_t now = clock::now_us();
  std::vector<Validate> waiting;
  for (auto& v : validates_) {
    bool done = all || now >= v.deadline_us;
    if (!done) {
      done = true;
      for (const auto& svc : st.services)
        for (const auto& c : svc.checks)
          if (auto it = v.runs_before.find(svc.name + "\n" + c.id);
              it != v.runs_before.end() && svc.monitored && c.runs <= it->second)
            done = false;
    }
    if (!done) {
      waiting.push_back(std::move(v));
      continue;
    }
    evhttp_connection_set_closecb(v.conn, nullptr, nullptr);
    Request r{v.req, "POST", "/api/v1/validate", nullptr, nullptr, false};
    evhttp_add_header(evhttp_request_get_output_headers(v.req), "X-Mailwarden-All-Ok",
                      report::all_ok(st) ? "yes" : "no");
    send(r, 200, "OK", v.json ? "application/json" : "text/plain; charset=utf-8",
         v.json ? report::validate_json(st) : report::validate_text(st));
  }
  validates_ = std::move(waiting);
}

void Server::send_page(Request& r, int code, const char* reason, const std::string& title,
                       const std::string& text) {
  send(r, code, reason, "text/html; charset=utf-8", report::html_message(title, text, "/"));
}

void Server::send_json(Request& r, int code, const char* reason, const std::string& body) {
  send(r, code, reason, "application/json", body);
}

static const char* reason_of(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 404:
      return "Not Found";
    default:
      return "Error";
  }
}

// The body is referenced, not copied: responses of one version share one string.
void Server::send_shared(Request& r, int code, const std::string& type,
                         const std::shared_ptr<const std::string>& body, const Timing& t) {
  evkeyvalq* out = evhttp_request_get_output_headers(r.req);
  if (t.snapshot_us || t.model_us || t.format_us) {
    // How long the state's copy, the status model and the formatter took (ms): what a
    // response made fresh costs the loop.
    char timing[160];
    snprintf(timing, sizeof timing, "snapshot;dur=%.3f, model;dur=%.3f, format;dur=%.3f",
             static_cast<double>(t.snapshot_us) / 1000.0, static_cast<double>(t.model_us) / 1000.0,
             static_cast<double>(t.format_us) / 1000.0);
    evhttp_add_header(out, "Server-Timing", timing);
  }
  add_headers(out, type);
  evbuffer* buf = evbuffer_new();
  if (r.method != "HEAD" && !body->empty()) {
    auto* hold = new std::shared_ptr<const std::string>(body);
    evbuffer_add_reference(
        buf, body->data(), body->size(),
        [](const void*, size_t, void* arg) {
          delete static_cast<std::shared_ptr<const std::string>*>(arg);
        },
        hold);
  }
  evhttp_send_reply(r.req, code, reason_of(code), buf);
  evbuffer_free(buf);
}

void Server::add_headers(evkeyvalq* out, const std::string& type) {
  evhttp_add_header(out, "Content-Type", type.c_str());
  evhttp_add_header(out, "Cache-Control", "no-store");
  evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
  evhttp_add_header(out, "X-Frame-Options", "DENY");
  evhttp_add_header(out, "Referrer-Policy", "no-referrer");
  evhttp_add_header(out, "Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
}

void Server::send(Request& r, int code, const char* reason, const std::string& type,
                  const std::string& body) {
  add_headers(evhttp_request_get_output_headers(r.req), type);
  evbuffer* buf = evbuffer_new();
  if (r.method != "HEAD") evbuffer_add(buf, body.data(), body.size());
  evhttp_send_reply(r.req, code, reason, buf);
  evbuffer_free(buf);
}

}  // namespace mw::http
