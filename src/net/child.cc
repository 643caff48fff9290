#include "net/child.h"

#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "util/clock.h"
#include "util/handles.h"
#include "util/log.h"

extern char** environ;

namespace mw {
namespace {

constexpr int64_t kPollMs = 50;             // a missed SIGCHLD costs at most this
constexpr int64_t kKillGraceMs = 2000;      // TERM, then KILL after this
constexpr int64_t kDrainAfterExitMs = 200;  // output a child's own children still write

std::map<pid_t, int>& handed_over() {
  static std::map<pid_t, int> m;
  return m;
}
std::vector<pid_t>& orphans() {
  static std::vector<pid_t> v;
  return v;
}

void reap_orphans() {
  auto& v = orphans();
  for (size_t i = 0; i < v.size();) {
    int status;
    pid_t r = waitpid(v[i], &status, WNOHANG);
    if (r == v[i] || (r < 0 && errno == ECHILD)) {
      v[i] = v.back();
      v.pop_back();
    } else {
      ++i;
    }
  }
  handed_over().clear();
}

// Whether `pid` has ended; fills `status`.
bool ended(pid_t pid, int& status) {
  pid_t r = waitpid(pid, &status, WNOHANG);
  if (r == pid) return true;
  if (r < 0 && errno == ECHILD) {
    auto it = handed_over().find(pid);
    status = it != handed_over().end() ? it->second : 0;
    if (it != handed_over().end()) handed_over().erase(it);
    return true;
  }
  return false;
}

// Owns a running child: a scope's cancellation or an exception leaves no process behind.
struct Running {
  pid_t pid = -1;
  bool done = false;
  UniqueFd out;
  EventPtr readable;
  ~Running() {
    if (pid > 0 && !done) {
      kill(-pid, SIGKILL);
      int status;
      if (waitpid(pid, &status, WNOHANG) != pid) orphans().push_back(pid);
    }
  }
};

void on_readable(evutil_socket_t, short, void* arg) {
  auto* w = static_cast<Waiter*>(arg);
  if (w->suspended()) w->notify();
}

// Reads what is there; false at end of file.
bool drain(int fd, ChildOutcome& o, size_t max_output) {
  char buf[16384];
  for (int rounds = 0; rounds < 64; ++rounds) {  // bounded per loop turn
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    o.output_bytes += static_cast<size_t>(n);
    if (o.output.size() < max_output)
      o.output.append(buf, std::min(static_cast<size_t>(n), max_output - o.output.size()));
  }
  return true;
}

}  // namespace

std::string ChildOutcome::describe() const {
  if (timed_out) return "did not exit within its timeout; stopped";
  if (exited) return "exited with status " + std::to_string(exit_code);
  if (signal) return "killed by signal " + std::to_string(signal);
  return "ended";
}

void children::reaped_elsewhere(pid_t pid, int status) {
  if (handed_over().size() < 4096) handed_over()[pid] = status;
}

Task<ChildOutcome> run_child(Scope& scope, ChildSpec spec) {
  reap_orphans();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    throw ProbeError(FailureClass::exec,
                     std::string("cannot run a program: pipe: ") + strerror(errno));
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  std::vector<std::string> env_strings;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    bool overridden = false;
    for (const auto& [k, v] : spec.env)
      if (kv.compare(0, k.size() + 1, k + "=") == 0) overridden = true;
    if (!overridden) env_strings.push_back(std::move(kv));
  }
  for (const auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string command = spec.command;
  char sh[] = "/bin/sh", dash_c[] = "-c";
  char* argv[] = {sh, dash_c, command.data(), nullptr};

  Running child;
  child.pid = fork();
  if (child.pid < 0)
    throw ProbeError(FailureClass::exec,
                     std::string("cannot run a program: fork: ") + strerror(errno));
  if (child.pid == 0) {
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGPIPE, SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGUSR1}) signal(sig, SIG_DFL);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(write_end.get(), 1);
    dup2(write_end.get(), 2);
    if ((spec.uid || spec.gid) && setgroups(0, nullptr) != 0) _exit(126);
    if (spec.gid && setgid(*spec.gid) != 0) _exit(126);
    if (spec.uid && setuid(*spec.uid) != 0) _exit(126);
    execve("/bin/sh", argv, envp.data());
    _exit(127);
  }
  setpgid(child.pid, child.pid);
  write_end.reset();
  fcntl(read_end.get(), F_SETFL, fcntl(read_end.get(), F_GETFL) | O_NONBLOCK);
  child.out = std::move(read_end);

  ChildOutcome o;
  o.pid = child.pid;
  Waiter waiter(scope);
  child.readable.reset(
      event_new(scope.base(), child.out.get(), EV_READ | EV_PERSIST, &on_readable, &waiter));
  event_add(child.readable.get(), nullptr);
  const int64_t started = clock::now_ms();
  int64_t terminated_at = 0, exited_at = 0;
  bool open = true;
  int status = 0;
  for (;;) {
    if (open) open = drain(child.out.get(), o, spec.max_output);
    if (!child.done && ended(child.pid, status)) {
      child.done = true;
      exited_at = clock::now_ms();
    }
    // Done when it has exited and its output is read; a child that forked a daemon which keeps
    // the pipe open gets a short grace, then the pipe is left.
    if (child.done && (!open || clock::now_ms() - exited_at >= kDrainAfterExitMs)) break;
    int64_t now = clock::now_ms();
    if (!child.done && !terminated_at && now - started >= spec.timeout_ms) {
      o.timed_out = true;
      kill(-child.pid, SIGTERM);
      terminated_at = now;
    } else if (!child.done && terminated_at && now - terminated_at >= kKillGraceMs) {
      kill(-child.pid, SIGKILL);
    }
    if (!open) event_del(child.readable.get());
    Wake why = co_await waiter.wait(kPollMs);
    (void)why;
  }
  event_del(child.readable.get());
  // Whatever it left in its group (a daemon it started is expected to have setsid'd away).
  if (o.timed_out) kill(-child.pid, SIGKILL);
  if (WIFEXITED(status)) {
    o.exited = true;
    o.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    o.signal = WTERMSIG(status);
  }
  co_return o;
}

}  // namespace mw
