#include "daemon/control.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/clock.h"
#include "util/log.h"
#include "util/strings.h"

namespace mw::control {
namespace {

constexpr size_t kMaxRequest = 1024;
constexpr int kClientTimeoutS = 5;

// The address of the socket at `path`. A path longer than sun_path allows (deep state
// directories) is reached through its directory's descriptor, /proc/self/fd/N/NAME, which
// `dir` keeps open for the call.
bool socket_address(const std::string& path, sockaddr_un& addr, UniqueFd& dir, std::string& error) {
  addr = sockaddr_un{};
  addr.sun_family = AF_UNIX;
  std::string name = path;
  if (path.size() >= sizeof addr.sun_path) {
    auto slash = path.rfind('/');
    std::string parent = slash == std::string::npos ? "." : path.substr(0, slash);
    dir.reset(::open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0) {
      error = "cannot open the directory of the control socket " + path + ": " + strerror(errno);
      return false;
    }
    name = "/proc/self/fd/" + std::to_string(dir.get()) + "/" + path.substr(slash + 1);
    if (name.size() >= sizeof addr.sun_path) {
      error = "control socket path " + path + " is too long";
      return false;
    }
  }
  memcpy(addr.sun_path, name.c_str(), name.size() + 1);
  return true;
}

}  // namespace

const char* verb_name(Verb v) {
  switch (v) {
    case Verb::start:
      return "start";
    case Verb::stop:
      return "stop";
    case Verb::restart:
      return "restart";
    case Verb::monitor:
      return "monitor";
    case Verb::unmonitor:
      return "unmonitor";
  }
  return "?";
}

std::optional<Verb> verb_from_name(const std::string& name) {
  for (Verb v : {Verb::start, Verb::stop, Verb::restart, Verb::monitor, Verb::unmonitor})
    if (name == verb_name(v)) return v;
  return std::nullopt;
}

ControlResult apply(Engine& engine, actions::Dispatcher& dispatcher, Verb verb,
                    const std::string& target, const std::string& group) {
  ControlResult out;
  const auto& config = engine.config();
  if (!config) {
    out.message = "no configuration loaded";
    return out;
  }
  std::vector<const config::Service*> chosen;
  for (const auto& svc : config->services) {
    bool take = !group.empty()
                    ? std::find(svc.groups.begin(), svc.groups.end(), group) != svc.groups.end()
                    : target == "all" || svc.name == target;
    if (take) chosen.push_back(&svc);
  }
  if (chosen.empty()) {
    out.message = !group.empty() ? "no service is in group '" + group + "'"
                                 : "no service named '" + target + "'";
    return out;
  }
  std::vector<std::string> lines;
  for (const auto* svc : chosen) {
    const std::string& name = svc->name;
    out.services.push_back(name);
    std::string reason = std::string(verb_name(verb)) + " requested";
    std::string line = "'" + name + "': ";
    switch (verb) {
      case Verb::monitor:
        (void)engine.set_monitored(name, true);
        line += "monitored";
        break;
      case Verb::unmonitor:
        (void)engine.set_monitored(name, false);
        line += "unmonitored";
        break;
      case Verb::start:
      case Verb::restart: {
        (void)engine.set_monitored(name, true);
        std::string why;
        auto v = verb == Verb::start ? actions::ControlVerb::start : actions::ControlVerb::restart;
        line += dispatcher.control(*svc, v, reason, why)
                    ? std::string(verb_name(verb)) + " program started; monitored"
                    : "monitored (" + why + ")";
        break;
      }
      case Verb::stop: {
        (void)engine.set_monitored(name, false);
        std::string why;
        line += dispatcher.control(*svc, actions::ControlVerb::stop, reason, why)
                    ? "unmonitored; stop program started"
                    : "unmonitored (" + why + ")";
        break;
      }
    }
    log::info("control: %s", line.c_str());
    lines.push_back(line);
  }
  out.ok = true;
  out.message = str::join(lines, "; ");
  return out;
}

std::string socket_path(const std::string& pidfile) {
  std::string base = pidfile;
  if (base.size() > 4 && base.compare(base.size() - 4, 4, ".pid") == 0)
    base.resize(base.size() - 4);
  return base + ".sock";
}

// ---- the daemon side -----------------------------------------------------------------------

namespace {

struct Session {
  Listener* owner;
  Engine* engine;
  actions::Dispatcher* dispatcher;
  BuffereventPtr bev;
};

void close_session(Session* s) {
  delete s;
}

std::string handle_line(Engine& engine, actions::Dispatcher& dispatcher, const std::string& line) {
  std::vector<std::string> words;
  for (size_t pos = 0; pos < line.size();) {
    size_t end = line.find(' ', pos);
    if (end == std::string::npos) end = line.size();
    if (end > pos) words.push_back(line.substr(pos, end - pos));
    pos = end + 1;
  }
  if (words.size() < 2) return "error: expected VERB NAME|all or VERB -g GROUP";
  auto verb = verb_from_name(words[0]);
  if (!verb) return "error: unknown verb '" + str::printable(words[0], 40) + "'";
  std::string target, group;
  if (words[1] == "-g") {
    if (words.size() != 3) return "error: expected VERB -g GROUP";
    group = words[2];
  } else {
    if (words.size() != 2) return "error: expected VERB NAME|all";
    target = words[1];
  }
  ControlResult r = apply(engine, dispatcher, *verb, target, group);
  return (r.ok ? "ok: " : "error: ") + r.message;
}

void on_read(bufferevent* bev, void* arg) {
  auto* s = static_cast<Session*>(arg);
  evbuffer* in = bufferevent_get_input(bev);
  size_t len = 0;
  char* line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
  if (!line) {
    if (evbuffer_get_length(in) > kMaxRequest) {
      bufferevent_write(bev, "error: request too long\n", 24);
      bufferevent_disable(bev, EV_READ);
    }
    return;
  }
  std::string text(line, len);
  free(line);
  std::string reply = handle_line(*s->engine, *s->dispatcher, text) + "\n";
  bufferevent_write(bev, reply.data(), reply.size());
  bufferevent_disable(bev, EV_READ);
}

void on_write(bufferevent* bev, void* arg) {
  if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 &&
      !(bufferevent_get_enabled(bev) & EV_READ))
    close_session(static_cast<Session*>(arg));
}

void on_event(bufferevent*, short, void* arg) {
  close_session(static_cast<Session*>(arg));
}

}  // namespace

Listener::~Listener() {
  listener_.reset();
  if (!path_.empty()) unlink(path_.c_str());
}

bool Listener::open(const std::string& path, std::string& error) {
  sockaddr_un addr;
  UniqueFd dir;
  if (!socket_address(path, addr, dir, error)) return false;
  // A socket left by a daemon that was killed: nobody listens on it any more.
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      error = path + " exists and is not a socket";
      return false;
    }
    unlink(path.c_str());
  }
  mode_t old = umask(077);  // created 0600: only the daemon's user may connect
  listener_.reset(evconnlistener_new_bind(io_.base, &Listener::on_accept, this,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
                                          reinterpret_cast<sockaddr*>(&addr), sizeof addr));
  umask(old);
  if (!listener_) {
    error = "cannot listen on " + path + ": " + strerror(errno);
    return false;
  }
  chmod(path.c_str(), 0600);
  path_ = path;
  return true;
}

void Listener::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
  auto* self = static_cast<Listener*>(arg);
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
      (cred.uid != 0 && cred.uid != geteuid())) {
    log::warning("control: connection from uid %u refused", static_cast<unsigned>(cred.uid));
    close(fd);
    return;
  }
  auto* s = new Session{self, &self->engine_, &self->dispatcher_, nullptr};
  s->bev.reset(bufferevent_socket_new(self->io_.base, fd, BEV_OPT_CLOSE_ON_FREE));
  if (!s->bev) {
    close(fd);
    delete s;
    return;
  }
  timeval tv{kClientTimeoutS, 0};
  bufferevent_set_timeouts(s->bev.get(), &tv, &tv);
  bufferevent_setcb(s->bev.get(), on_read, on_write, on_event, s);
  bufferevent_enable(s->bev.get(), EV_READ | EV_WRITE);
}

// ---- the CLI side --------------------------------------------------------------------------

bool request(const std::string& socket, const std::string& line, std::string& reply,
             std::string& error) {
  sockaddr_un addr;
  UniqueFd dir;
  if (!socket_address(socket, addr, dir, error)) return false;
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0 || connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    error = "cannot reach the daemon at " + socket + ": " + strerror(errno);
    return false;
  }
  std::string out = line + "\n";
  if (write(fd.get(), out.data(), out.size()) != static_cast<ssize_t>(out.size())) {
    error = std::string("cannot send the request: ") + strerror(errno);
    return false;
  }
  int64_t deadline = clock::now_ms() + 30000;
  char buf[4096];
  while (reply.size() < 64 * 1024) {
    pollfd p{fd.get(), POLLIN, 0};
    int left = static_cast<int>(std::max<int64_t>(0, deadline - clock::now_ms()));
    if (poll(&p, 1, left) <= 0) {
      error = "no reply from the daemon";
      return false;
    }
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
    if (reply.find('\n') != std::string::npos) break;
  }
  while (!reply.empty() && (reply.back() == '\n' || reply.back() == '\r')) reply.pop_back();
  if (reply.empty()) {
    error = "the daemon closed the connection without a reply";
    return false;
  }
  return true;
}

}  // namespace mw::control
