#include "fuzz_support.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>

#include "config/parser.h"
#include "engine/probe.h"
#include "net/gate.h"
#include "net/io_context.h"
#include "net/tls.h"
#include "util/handles.h"

namespace mwfuzz {

const std::string& scratch() {
  static const std::string dir = [] {
    struct stat st {};
    std::string base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    std::string tmpl = base + "/mw-fuzz-XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    // Removed when the run ends normally (-runs, -max_total_time); a crash leaves it to look at.
    // Its own copy of the path: static strings are destroyed before this handler runs.
    static const std::string* remove_at_exit = new std::string(tmpl);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(*remove_at_exit, ec);
    });
    return tmpl;
  }();
  return dir;
}

std::string write_scratch(const std::string& name, std::string_view data, int mode) {
  std::string path = scratch() + "/" + name;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("cannot write " + path + ": " + strerror(errno));
  (void)fchmod(fd, static_cast<mode_t>(mode));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return path;
}

namespace {

// One event loop, one listening unix socket, one listening loopback TCP port and one parsed
// model per rule, for the whole run.
class Feeder {
 public:
  Feeder() {
    base_.reset(event_base_new());
    dns_.reset(evdns_base_new(base_.get(), 0));
    io_ = mw::IoContext{base_.get(), dns_.get(), &tls_, &gate_};
    socket_path_ = scratch() + "/server.sock";
    int unix_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", socket_path_.c_str());
    unlink(socket_path_.c_str());
    if (unix_fd < 0 || bind(unix_fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        listen(unix_fd, 16) != 0)
      throw std::runtime_error("cannot listen on " + socket_path_);
    unix_.unix_path = socket_path_;
    int tcp_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof in;
    if (tcp_fd < 0 || bind(tcp_fd, reinterpret_cast<sockaddr*>(&in), sizeof in) != 0 ||
        getsockname(tcp_fd, reinterpret_cast<sockaddr*>(&in), &len) != 0 || listen(tcp_fd, 16) != 0)
      throw std::runtime_error("cannot listen on a loopback port");
    tcp_.host = "127.0.0.1";
    tcp_.port = ntohs(in.sin_port);
    accept_unix_ev_.reset(
        event_new(base_.get(), unix_fd, EV_READ | EV_PERSIST, &Feeder::on_accept, this));
    event_add(accept_unix_ev_.get(), nullptr);
    accept_tcp_ev_.reset(
        event_new(base_.get(), tcp_fd, EV_READ | EV_PERSIST, &Feeder::on_accept, this));
    event_add(accept_tcp_ev_.get(), nullptr);
  }

  void drive(std::string_view bytes, const std::function<mw::Task<void>(mw::IoContext&)>& make) {
    bytes_ = bytes;
    bool done = false;
    mw::start_detached(make(io_), [&](std::exception_ptr e) {
      if (e) abort();  // the dialogue lets an error out: a broken harness
      done = true;
    });
    while (!done) event_base_loop(base_.get(), EVLOOP_ONCE);
    close_peer();
  }

  const mw::Endpoint& unix_endpoint() const { return unix_; }
  const mw::Endpoint& tcp_endpoint() const { return tcp_; }

  mw::CheckResult run(const std::string& rule, std::string_view bytes) {
    const auto& config = model(rule);
    bytes_ = bytes;
    mw::CheckResult out;
    bool done = false;
    const auto& svc = config->services.at(0);
    mw::run_check(io_, config, svc, svc.checks.at(0), nullptr, [&](const mw::CheckResult& r) {
      out = r;
      done = true;
    });
    while (!done) event_base_loop(base_.get(), EVLOOP_ONCE);
    close_peer();
    return out;
  }

 private:
  const std::shared_ptr<const mw::config::Config>& model(const std::string& rule) {
    auto it = models_.find(rule);
    if (it != models_.end()) return it->second;
    std::string text =
        "set daemon 30\ncheck host fuzz with address 127.0.0.1\n"
        "  if failed unixsocket \"" +
        socket_path_ + "\" " + rule + " timeout 2 seconds then alert\n";
    auto parsed = mw::config::parse_file(write_scratch("rule.rc", text));
    if (!parsed.config) {
      std::string why;
      for (const auto& d : parsed.diagnostics.items()) why += d.str() + "\n";
      fprintf(stderr, "fuzz harness: the rule does not parse:\n%s%s", text.c_str(), why.c_str());
      abort();  // a broken harness, not a finding
    }
    return models_.emplace(rule, parsed.config).first->second;
  }

  static void on_accept(evutil_socket_t fd, short, void* arg) {
    auto* self = static_cast<Feeder*>(arg);
    int peer = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (peer < 0) return;
    self->close_peer();  // a retry reconnects: the new connection gets the same bytes
    self->peer_fd_ = peer;
    // The whole input fits the socket buffer (the harness caps the input length), so one
    // write sends it all; the half-close then says "the server has nothing more to say".
    int size = 1 << 20;
    setsockopt(peer, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    size_t sent = 0;
    while (sent < self->bytes_.size()) {
      ssize_t n =
          ::send(peer, self->bytes_.data() + sent, self->bytes_.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    shutdown(peer, SHUT_WR);
    self->drain_ev_.reset(
        event_new(self->base_.get(), peer, EV_READ | EV_PERSIST, &Feeder::on_drain, self));
    event_add(self->drain_ev_.get(), nullptr);
  }

  static void on_drain(evutil_socket_t fd, short, void* arg) {
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) static_cast<Feeder*>(arg)->close_peer();
  }

  void close_peer() {
    drain_ev_.reset();
    if (peer_fd_ >= 0) ::close(peer_fd_);
    peer_fd_ = -1;
  }

  mw::EventBasePtr base_;
  mw::EvdnsBasePtr dns_;
  mw::TlsContextCache tls_;
  mw::Gate gate_{64};
  mw::IoContext io_;
  std::string socket_path_;
  mw::Endpoint unix_, tcp_;
  int peer_fd_ = -1;
  mw::EventPtr accept_unix_ev_, accept_tcp_ev_, drain_ev_;
  std::string_view bytes_;
  std::map<std::string, std::shared_ptr<const mw::config::Config>> models_;
};

Feeder& feeder() {
  static Feeder f;
  return f;
}

}  // namespace

mw::CheckResult run_against(const std::string& rule, std::string_view server_bytes) {
  return feeder().run(rule, server_bytes);
}

void drive(std::string_view server_bytes,
           const std::function<mw::Task<void>(mw::IoContext&)>& make) {
  feeder().drive(server_bytes, make);
}

const mw::Endpoint& unix_endpoint() {
  return feeder().unix_endpoint();
}
const mw::Endpoint& tcp_endpoint() {
  return feeder().tcp_endpoint();
}

int fuzz_replies(const std::vector<std::string>& rules, const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string& rule = rules[data[0] % rules.size()];
  mw::CheckResult r = run_against(rule, {reinterpret_cast<const char*>(data) + 1, size - 1});
  if (getenv("MW_FUZZ_SHOW"))
    fprintf(stderr, "%s: %s %s\n", rule.c_str(), r.ok ? "ok" : "failed", r.message.c_str());
  // A failed check always says why; an empty message would be a reader that lost its verdict.
  if (!r.ok && r.message.empty()) abort();
  return 0;
}

}  // namespace mwfuzz
