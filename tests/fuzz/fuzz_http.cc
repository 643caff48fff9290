// HTTP requests to mailwarden's own HTTP interface: a real mw::http::Server (evhttp on the
// harness's loop, as on the daemon's) over a status of a few services, with two users (one
// read-write, one read-only). The harness is the client: it connects over loopback TCP, sends
// the input, half-closes, and reads until the server closes. So the request line, the header
// fields, the Authorization header (basic, base64), the path, its percent-decoding and query,
// the POST body and the CSRF guard are all fed. "@CSRF@" in an input stands for the admin's
// form token (read from the service page at start, as a browser would), so a fuzzed form post
// can pass the guard and reach the actions.
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "http/server.h"
#include "util/handles.h"

namespace {

constexpr const char* kAdminPassword = "s3cr3t-pw";
constexpr const char* kViewerPassword = "view-pw";

mw::state::Snapshot sample_snapshot() {
  mw::state::Snapshot snap;
  snap.pid = 4242;
  snap.started = 1700000000;
  snap.cycles = 7;
  mw::state::ServiceSnapshot imap;
  imap.name = "imap";
  imap.type = "host";
  imap.groups = {"mail"};
  mw::state::CheckSnapshot c;
  c.id = "imap/1";
  c.description = "port 993 protocol imaps";
  c.kind = "port";
  c.protocol = "imaps";
  c.target = "127.0.0.1:993";
  mw::CheckResult r;
  r.ok = false;
  r.cls = mw::FailureClass::auth;
  r.message = "login as bob failed: <NO> & more";
  r.server_line = "mw2 NO [AUTHENTICATIONFAILED] x";
  r.response_ms = 12.5;
  r.checked_at = 1700000000;
  mw::CertInfo cert;
  cert.not_after = 1800000000;
  cert.days_left = 42;
  r.certificate = std::make_shared<const mw::CertInfo>(cert);
  c.last = std::make_shared<const mw::CheckResult>(r);
  c.since = 1700000000 - 600;
  c.failures = {{"auth", 3}, {"timeout", 1}};
  c.rules.push_back({mw::RuleState::failed, 1, 1, 2, {}});
  c.history = {{1699999940, true, 10, mw::FailureClass::none},
               {1700000000, false, 12.5, mw::FailureClass::auth}};
  imap.checks.push_back(c);
  snap.services.push_back(imap);

  mw::state::ServiceSnapshot delivery;
  delivery.name = "mx-to-inbox";
  delivery.type = "delivery";
  mw::state::CheckSnapshot d;
  d.id = "mx-to-inbox/1";
  d.description = "delivery";
  d.kind = "delivery";
  d.target = "smtp://mx:25";
  mw::CheckResult dr;
  dr.ok = true;
  dr.response_ms = 800;
  dr.checked_at = 1700000000;
  dr.details = {{"steps_ms", {{"send", 120.0}, {"wait", 650.0}}}};
  d.last = std::make_shared<const mw::CheckResult>(dr);
  d.rules.push_back({mw::RuleState::ok, 0, 1, 5, {}});
  delivery.checks.push_back(d);
  snap.services.push_back(delivery);

  mw::state::ServiceSnapshot spare;
  spare.name = "smtp b&c";
  spare.type = "host";
  spare.monitored = false;
  snap.services.push_back(spare);
  return snap;
}

// The daemon's side: a fixed status whose monitoring flags the actions change.
class FakeControl : public mw::http::Control {
 public:
  mw::state::Snapshot snapshot(bool) override { return snap_; }
  uint64_t version() override { return version_; }
  mw::report::DaemonFacts facts() override { return {12, 7, {}}; }
  std::string check_now(const std::string& service) override {
    return find(service) ? "" : "no service named '" + service + "'";
  }
  std::string monitor(const std::string& service) override { return set(service, true); }
  std::string unmonitor(const std::string& service) override { return set(service, false); }
  std::string act(const std::string& verb, const std::string& service,
                  std::string& message) override {
    if (verb != "start" && verb != "stop" && verb != "restart") return "unknown action";
    if (!find(service)) return "no service named '" + service + "'";
    message = verb + " program started";
    return "";
  }

 private:
  mw::state::ServiceSnapshot* find(const std::string& name) {
    for (auto& s : snap_.services)
      if (s.name == name) return &s;
    return nullptr;
  }
  std::string set(const std::string& name, bool on) {
    auto* s = find(name);
    if (!s) return "no service named '" + name + "'";
    if (s->monitored == on) return on ? "already monitored" : "already unmonitored";
    s->monitored = on;
    ++version_;
    return "";
  }
  mw::state::Snapshot snap_ = sample_snapshot();
  uint64_t version_ = 1;
};

// One client connection: sends `request`, half-closes, reads the response until the close.
class Exchange {
 public:
  Exchange(event_base* base, uint16_t port, std::string request)
      : base_(base), request_(std::move(request)) {
    // Non-blocking from the start: libFuzzer's SIGALRM would interrupt a blocking connect. The
    // write event fires once the connection is made.
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(port);
    if (fd_ < 0 || (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 &&
                    errno != EINPROGRESS && errno != EINTR)) {
      perror("fuzz http: connect");
      abort();
    }
    write_ev_.reset(event_new(base, fd_, EV_WRITE | EV_PERSIST, &Exchange::on_write, this));
    read_ev_.reset(event_new(base, fd_, EV_READ | EV_PERSIST, &Exchange::on_read, this));
    watchdog_.reset(evtimer_new(base, &Exchange::on_watchdog, this));
    event_add(write_ev_.get(), nullptr);
    event_add(read_ev_.get(), nullptr);
    timeval tv{8, 0};
    event_add(watchdog_.get(), &tv);
  }
  ~Exchange() {
    write_ev_.reset();
    read_ev_.reset();
    watchdog_.reset();
    ::close(fd_);
  }

  // The response bytes (everything the server sent before it closed).
  const std::string& run() {
    while (!done_) event_base_loop(base_, EVLOOP_ONCE);
    return response_;
  }

 private:
  static void on_write(evutil_socket_t fd, short, void* arg) {
    auto* self = static_cast<Exchange*>(arg);
    while (self->sent_ < self->request_.size()) {
      ssize_t n = ::send(fd, self->request_.data() + self->sent_,
                         self->request_.size() - self->sent_, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) break;  // the server closed early: it answered what it had
      self->sent_ += static_cast<size_t>(n);
    }
    shutdown(fd, SHUT_WR);
    self->write_ev_.reset();
  }
  static void on_read(evutil_socket_t fd, short, void* arg) {
    auto* self = static_cast<Exchange*>(arg);
    char buf[16384];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
      self->done_ = true;
      self->read_ev_.reset();
      return;
    }
    if (self->response_.size() < (1u << 22)) self->response_.append(buf, static_cast<size_t>(n));
  }
  static void on_watchdog(evutil_socket_t, short, void*) {
    // evhttp's own timeout is 10 s; a half-closed request must end long before.
    fprintf(stderr, "fuzz http: the server kept the connection open for 8 s\n");
    abort();
  }

  event_base* base_;
  std::string request_;
  int fd_ = -1;
  size_t sent_ = 0;
  bool done_ = false;
  std::string response_;
  mw::EventPtr write_ev_, read_ev_, watchdog_;
};

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    abort();
  ::close(fd);
  return ntohs(sa.sin_port);
}

struct World {
  mw::EventBasePtr base{event_base_new()};
  FakeControl control;
  mw::http::Server server{base.get(), control, "mail.example.net"};
  uint16_t port = 0;
  std::string csrf;

  World() {
    mw::http::HttpdSettings s;
    s.enabled = true;
    s.address = "127.0.0.1";
    s.users = {{"admin", kAdminPassword, false}, {"viewer", kViewerPassword, true}};
    std::string error;
    for (int i = 0; i < 20 && port == 0; ++i) {
      s.port = free_port();
      if (server.configure(s, 30, error)) port = s.port;
    }
    if (port == 0) {
      fprintf(stderr, "fuzz http: %s\n", error.c_str());
      abort();
    }
    // The admin's form token, from the service page like a browser (admin:s3cr3t-pw).
    std::string page = exchange(
        "GET /service/imap HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Authorization: Basic YWRtaW46czNjcjN0LXB3\r\nConnection: close\r\n\r\n");
    const std::string marker = "name=\"csrf\" value=\"";
    auto at = page.find(marker);
    if (at == std::string::npos) {
      fprintf(stderr, "fuzz http: no CSRF token in the service page:\n%s\n", page.c_str());
      abort();
    }
    csrf = page.substr(at + marker.size(), 64);
  }

  std::string exchange(std::string request) {
    Exchange x(base.get(), port, std::move(request));
    return x.run();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  std::string request(reinterpret_cast<const char*>(data), size);
  for (size_t at = request.find("@CSRF@"); at != std::string::npos;
       at = request.find("@CSRF@", at + world.csrf.size()))
    request.replace(at, 6, world.csrf);
  bool has_password = request.find(kAdminPassword) != std::string::npos ||
                      request.find(kViewerPassword) != std::string::npos;
  std::string response = world.exchange(request);
  if (getenv("MW_FUZZ_SHOW")) fprintf(stderr, "%s\n-- end of response\n", response.c_str());
  // Whatever came back is HTTP (evhttp answers in the request's version: "HTTP/0.1 401"), and
  // never shows a password the request did not carry.
  if (!response.empty() && response.rfind("HTTP/", 0) != 0) abort();
  if (!has_password && (response.find(kAdminPassword) != std::string::npos ||
                        response.find(kViewerPassword) != std::string::npos))
    abort();
  return 0;
}
