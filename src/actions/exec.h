// Runs action commands through /bin/sh -c without blocking the loop: output goes to the log,
// a command past its timeout is stopped (TERM to its process group, then KILL), every child is
// reaped on SIGCHLD.
#pragma once

#include <event2/event.h>
#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/model.h"
#include "util/handles.h"

namespace mw::actions {

using Environment = std::vector<std::pair<std::string, std::string>>;

class ExecRunner {
 public:
  explicit ExecRunner(event_base* base);
  ~ExecRunner();
  ExecRunner(const ExecRunner&) = delete;
  ExecRunner& operator=(const ExecRunner&) = delete;

  // How a command ended: its wait status (WIFEXITED, ...), and whether it was stopped for its
  // timeout. -1 when it could not start.
  using Done = std::function<void(int status, bool timed_out)>;
  // Starts the command; returns its pid, or -1 (logged) when it could not start. `done` (if
  // given) is called from the loop when it has ended, also when it could not start.
  pid_t run(const config::ExecSpec& spec, const Environment& env, const std::string& label,
            Done done = {});
  [[nodiscard]] size_t running() const { return jobs_.size(); }
  // Reaps finished children; called on SIGCHLD (the daemon routes the signal here).
  void reap();

 private:
  struct Job;
  static void on_output(evutil_socket_t fd, short, void* arg);
  static void on_timeout(evutil_socket_t, short, void* arg);
  static void on_sigchld(evutil_socket_t, short, void* arg);
  void finish(pid_t pid, int status);

  event_base* base_;
  EventPtr sigchld_;
  std::map<pid_t, std::unique_ptr<Job>> jobs_;
};

}  // namespace mw::actions
