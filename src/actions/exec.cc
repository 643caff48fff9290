#include "actions/exec.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "net/child.h"
#include "util/log.h"
#include "util/strings.h"

extern char** environ;

namespace mw::actions {

constexpr int kDefaultTimeoutS = 300;
constexpr int kKillGraceS = 5;
constexpr size_t kMaxLoggedOutput = 64 * 1024;

struct ExecRunner::Job {
  ExecRunner* owner = nullptr;
  pid_t pid = -1;
  std::string label;
  UniqueFd output;
  EventPtr output_event;
  EventPtr timer;
  std::string partial;
  size_t logged = 0;
  bool terminated = false;  // TERM sent
  bool killed = false;      // KILL sent
  ExecRunner::Done done;
};

ExecRunner::ExecRunner(event_base* base) : base_(base) {
  sigchld_.reset(evsignal_new(base, SIGCHLD, &ExecRunner::on_sigchld, this));
  evsignal_add(sigchld_.get(), nullptr);
}

ExecRunner::~ExecRunner() {
  // Children are not left behind as orphans of a stopped daemon without a word.
  for (auto& [pid, job] : jobs_)
    log::warning("exec %s (pid %d) still running at shutdown", job->label.c_str(), pid);
}

pid_t ExecRunner::run(const config::ExecSpec& spec, const Environment& env,
                      const std::string& label, Done done) {
  auto failed_to_start = [&] {
    if (!done) return;
    // Later, from the loop: a caller is never called back from inside its own call.
    auto* cb = new Done(std::move(done));
    timeval now{0, 0};
    event_base_once(
        base_, -1, EV_TIMEOUT,
        [](evutil_socket_t, short, void* arg) {
          std::unique_ptr<Done> d(static_cast<Done*>(arg));
          (*d)(-1, false);
        },
        cb, &now);
  };
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    log::error("exec %s: pipe: %s", label.c_str(), strerror(errno));
    failed_to_start();
    return -1;
  }
  UniqueFd read_end(fds[0]), write_end(fds[1]);

  // Everything the child needs is prepared before fork: after fork only async-signal-safe calls.
  std::vector<std::string> env_strings;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    bool overridden = false;
    for (const auto& [k, v] : env)
      if (kv.compare(0, k.size() + 1, k + "=") == 0) overridden = true;
    if (!overridden) env_strings.push_back(std::move(kv));
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string command = spec.command;
  char sh[] = "/bin/sh", dash_c[] = "-c";
  char* argv[] = {sh, dash_c, command.data(), nullptr};

  pid_t pid = fork();
  if (pid < 0) {
    log::error("exec %s: fork: %s", label.c_str(), strerror(errno));
    failed_to_start();
    return -1;
  }
  if (pid == 0) {
    setpgid(0, 0);  // its own process group, so a timeout stops the command's children too
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGPIPE, SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGUSR1}) signal(sig, SIG_DFL);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(write_end.get(), 1);
    dup2(write_end.get(), 2);
    // Drop root's supplementary groups whenever an identity is asked for, then the group, then
    // the user (after setuid the other two would no longer be allowed).
    if ((spec.uid || spec.gid) && setgroups(0, nullptr) != 0) _exit(126);
    if (spec.gid && setgid(*spec.gid) != 0) _exit(126);
    if (spec.uid && setuid(*spec.uid) != 0) _exit(126);
    execve("/bin/sh", argv, envp.data());
    _exit(127);
  }
  setpgid(pid, pid);
  write_end.reset();
  auto job = std::make_unique<Job>();
  job->owner = this;
  job->pid = pid;
  job->label = label;
  job->done = std::move(done);
  fcntl(read_end.get(), F_SETFL, fcntl(read_end.get(), F_GETFL) | O_NONBLOCK);
  job->output = std::move(read_end);
  job->output_event.reset(
      event_new(base_, job->output.get(), EV_READ | EV_PERSIST, &ExecRunner::on_output, job.get()));
  event_add(job->output_event.get(), nullptr);
  int timeout = spec.timeout_s > 0 ? spec.timeout_s : kDefaultTimeoutS;
  job->timer.reset(evtimer_new(base_, &ExecRunner::on_timeout, job.get()));
  timeval tv{timeout, 0};
  evtimer_add(job->timer.get(), &tv);
  log::info("exec %s: started pid %d", label.c_str(), pid);
  jobs_[pid] = std::move(job);
  return pid;
}

void ExecRunner::on_output(evutil_socket_t fd, short, void* arg) {
  auto* job = static_cast<Job*>(arg);
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    event_del(job->output_event.get());
    if (!job->partial.empty() && job->logged < kMaxLoggedOutput)
      log::info("exec %s: %s", job->label.c_str(), str::printable(job->partial, 1000).c_str());
    job->partial.clear();
    return;
  }
  job->partial.append(buf, static_cast<size_t>(n));
  size_t nl;
  while ((nl = job->partial.find('\n')) != std::string::npos) {
    std::string line = job->partial.substr(0, nl);
    job->partial.erase(0, nl + 1);
    if (job->logged < kMaxLoggedOutput) {
      log::info("exec %s: %s", job->label.c_str(), str::printable(line, 1000).c_str());
      job->logged += line.size() + 1;
      if (job->logged >= kMaxLoggedOutput)
        log::info("exec %s: output beyond %zu bytes not logged", job->label.c_str(),
                  kMaxLoggedOutput);
    }
  }
  if (job->partial.size() > 4096) job->partial.clear();  // a line without end: drop, stay bounded
}

void ExecRunner::on_timeout(evutil_socket_t, short, void* arg) {
  auto* job = static_cast<Job*>(arg);
  if (!job->terminated) {
    log::warning("exec %s: timed out, sending TERM to pid %d", job->label.c_str(), job->pid);
    kill(-job->pid, SIGTERM);
    job->terminated = true;
    timeval tv{kKillGraceS, 0};
    evtimer_add(job->timer.get(), &tv);
    return;
  }
  if (!job->killed) {
    log::warning("exec %s: still running, sending KILL to pid %d", job->label.c_str(), job->pid);
    kill(-job->pid, SIGKILL);
    job->killed = true;
  }
}

void ExecRunner::on_sigchld(evutil_socket_t, short, void* arg) {
  static_cast<ExecRunner*>(arg)->reap();
}

void ExecRunner::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    finish(pid, status);
  }
}

void ExecRunner::finish(pid_t pid, int status) {
  auto it = jobs_.find(pid);
  if (it == jobs_.end()) {
    children::reaped_elsewhere(pid, status);  // a program a check runs
    return;
  }
  Job& job = *it->second;
  // A command stopped for its timeout may leave children that ignore TERM in its process group;
  // its timer goes with the job, so they get KILL now rather than after the grace period.
  if (job.terminated && !job.killed) kill(-pid, SIGKILL);
  // Drain what is left in the pipe before it closes.
  on_output(job.output.get(), EV_READ, &job);
  if (WIFEXITED(status)) {
    int code = WEXITSTATUS(status);
    if (code == 0) {
      log::info("exec %s: pid %d exited with status 0", job.label.c_str(), pid);
    } else {
      log::warning("exec %s: pid %d exited with status %d", job.label.c_str(), pid, code);
    }
  } else if (WIFSIGNALED(status)) {
    log::warning("exec %s: pid %d killed by signal %d%s", job.label.c_str(), pid, WTERMSIG(status),
                 job.terminated ? " (timeout)" : "");
  }
  Done done = std::move(job.done);
  bool timed_out = job.terminated;
  jobs_.erase(it);
  if (done) done(status, timed_out);
}

}  // namespace mw::actions
