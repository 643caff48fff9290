// The control verbs of a running daemon: start, stop, restart, monitor, unmonitor a service,
// every service ("all"), or a group's services. One function does them for every face: the
// CLI reaches it through a private unix socket (below), the HTTP interface calls apply()
// directly.
//
//   monitor    the service's checks run again (and its events are sent again)
//   unmonitor  its checks stop: no runs, no alerts, until monitor or start; kept in the state
//              file, so it survives a restart of mailwarden; shown by status
//   start      runs its start program, then monitors it
//   stop       unmonitors it, then runs its stop program
//   restart    runs its restart program (or stop, then start), then monitors it
//
// Programs run asynchronously: apply() returns once they are started; their outcome is logged
// (and a failure is an `exec` event).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "actions/dispatcher.h"
#include "engine/engine.h"
#include "net/io_context.h"
#include "util/handles.h"

namespace mw::control {

enum class Verb { start, stop, restart, monitor, unmonitor };

[[nodiscard]] const char* verb_name(Verb v);
[[nodiscard]] std::optional<Verb> verb_from_name(const std::string& name);

struct ControlResult {
  bool ok = false;
  std::string message;                // one line for people: "'dovecot': restart started"
  std::vector<std::string> services;  // the services it applied to
};

// `target` is a service name or "all"; with a non-empty `group`, the group's services (the
// target is then ignored). A start/stop/restart of a service without that program changes only
// its monitoring, and says so.
[[nodiscard]] ControlResult apply(Engine& engine, actions::Dispatcher& dispatcher, Verb verb,
                                  const std::string& target, const std::string& group);

// ---- the CLI's way in: a unix socket next to the pid file ----------------------------------
// PIDFILE with ".pid" replaced by ".sock" (or ".sock" appended), mode 0600 in a directory the
// daemon writes; a connection from another uid than the daemon's (or root) is refused.
// One request line "VERB TARGET" or "VERB -g GROUP", one reply line "ok: ..." or "error: ...".
[[nodiscard]] std::string socket_path(const std::string& pidfile);

class Listener {
 public:
  Listener(IoContext& io, Engine& engine, actions::Dispatcher& dispatcher)
      : io_(io), engine_(engine), dispatcher_(dispatcher) {}
  ~Listener();
  // Creates the socket (replacing a stale one); false with `error`.
  bool open(const std::string& path, std::string& error);

 private:
  static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg);
  IoContext& io_;
  Engine& engine_;
  actions::Dispatcher& dispatcher_;
  EvconnListenerPtr listener_;
  std::string path_;
};

// The request line for a verb; the CLI side: sends it to the daemon and returns the reply.
// False with `error` when the daemon cannot be reached.
[[nodiscard]] bool request(const std::string& socket, const std::string& line, std::string& reply,
                           std::string& error);

}  // namespace mw::control
