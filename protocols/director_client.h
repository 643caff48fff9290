// The director-admin client (Dovecot 2.2.19 - 2.3.x, src/director/doveadm-connection.c): the
// VERSION handshake, HOST-LIST, and the host commands a watchdog needs, over the project's one
// Connection (the director-admin unix socket, or a doveadm TCP listener). Strictly one command
// at a time: a command is sent only once the reply to the previous one has been read (a second
// command sent early can be lost). The check director and the `director ...` actions both use
// it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "net/connection.h"
#include "net/scope.h"
#include "net/task.h"

namespace mw::director {

// One line of HOST-LIST. Older directors send fewer fields: 3 (2.2.9: ip, vhosts, users),
// 4 (2.2.16: + tag), 6 (2.2.19: + U/D and the time of the last change).
struct Host {
  std::string ip;
  int64_t vhosts = 0;
  int64_t users = 0;
  std::string tag;
  bool has_state = false;  // the 6-field form: `up` and `changed_at` are known
  bool up = true;
  int64_t changed_at = 0;  // unix time of the last up/down change; 0 = never
};

enum class Reply { ok, notfound };

// Parses one HOST-LIST line (without its newline). Fields are read by position; extra fields
// of a newer director are ignored. Throws a protocol ProbeError naming the bad field.
[[nodiscard]] Host parse_host_line(const std::string& line);

// Retries of "host is already being updated - try again later" and "Ring sync timed out":
// at most `attempts` sends, waiting `first_backoff_ms`, then twice as long each time.
struct RetryPolicy {
  int attempts = 4;
  int64_t first_backoff_ms = 500;
};

class Client {
 public:
  Client(Connection& conn, Scope& scope, RetryPolicy retry = {})
      : conn_(conn), scope_(scope), retry_(retry) {}

  // Sends our VERSION line and checks the director's (director-doveadm, major version 1).
  Task<void> handshake();
  // Every backend, in the director's order (at most kMaxHosts).
  Task<std::vector<Host>> host_list();
  // HOST-UP / HOST-DOWN / HOST-FLUSH / HOST-RESET-USERS for one backend IP. OK or NOTFOUND;
  // busy replies are retried (RetryPolicy); anything else, or a close, throws.
  Task<Reply> host_up(const std::string& ip) { return command("HOST-UP", ip); }
  Task<Reply> host_down(const std::string& ip) { return command("HOST-DOWN", ip); }
  Task<Reply> host_flush(const std::string& ip) { return command("HOST-FLUSH", ip); }
  Task<Reply> host_reset_users(const std::string& ip) { return command("HOST-RESET-USERS", ip); }
  // By value: coroutine parameters must not refer to the caller's temporaries.
  Task<Reply> command(std::string verb, std::string ip);

  // Retries used by the last command (0: the first reply was final).
  [[nodiscard]] int last_retries() const { return last_retries_; }

  static constexpr size_t kMaxHosts = 10000;
  static constexpr size_t kMaxLine = 4096;

 private:
  Task<std::string> reply_line(std::string after);  // by value: it lives in the frame

  Connection& conn_;
  Scope& scope_;
  RetryPolicy retry_;
  int last_retries_ = 0;
};

}  // namespace mw::director
