// A POP3 client session over a Connection (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034
// SASL, RFC 3206 response codes): greeting, CAPA, STLS, USER/PASS or AUTH PLAIN (with an
// authorization identity), STAT/LIST/UIDL/RETR/DELE and a QUIT that tolerates a close. The pop
// protocol test and the delivery check's POP3 receiver both speak POP3 through this one class.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "net/connection.h"
#include "net/task.h"

namespace mw::pop {

// One status line: "+OK text" or "-ERR text".
struct Reply {
  bool ok = false;
  std::string line;  // as the server sent it
  std::string text;  // after "+OK " / "-ERR "
};

struct Maildrop {
  uint64_t messages = 0;
  uint64_t octets = 0;
};

struct ListEntry {
  uint64_t number = 0;
  uint64_t octets = 0;
};

struct UidlEntry {
  uint64_t number = 0;
  std::string uid;
};

class Session {
 public:
  explicit Session(Connection& conn) : conn_(conn) {}

  // Reads the greeting: "+OK" goes on; "-ERR" is a rejection; anything else a protocol error.
  Task<void> greeting();
  // CAPA (RFC 2449). A server without CAPA answers -ERR: that is no error, the set is just
  // empty and known() stays false. Call again after STLS and after login.
  Task<void> capa();
  [[nodiscard]] bool has_capability(const std::string& name) const;
  // The arguments of a capability: "PLAIN LOGIN" for SASL; empty when absent.
  [[nodiscard]] std::string capability(const std::string& name) const;
  // Whether CAPA answered +OK (so an absent capability is really absent).
  [[nodiscard]] bool capabilities_known() const { return capa_known_; }

  // STLS and its +OK; the caller then upgrades the connection and calls capa() again.
  Task<void> stls_command();
  // Logs in. `user` is the identity whose `password` it is; `authzid`, when not empty, is the
  // user to act as (a master user logging in as `authzid`: SASL PLAIN "authzid\0user\0pw").
  // AUTH PLAIN when the server offers it or an authzid needs it, else USER/PASS. The caller has
  // decided that the password may cross this connection.
  Task<void> login(const std::string& user, const std::string& password,
                   const std::string& authzid = "");

  Task<Maildrop> stat();
  Task<std::vector<ListEntry>> list();
  Task<std::vector<UidlEntry>> uidl();
  // The message, dot-unstuffed, lines ending in CRLF; more than `max_bytes` fails.
  Task<std::string> retr(uint64_t number, size_t max_bytes = 16 * 1024 * 1024);
  Task<void> dele(uint64_t number);
  // QUIT: "+OK", "+OK" then close, or a close alone end the session well; -ERR (RFC 1939: some
  // deleted messages not removed) is a rejection, anything else a protocol error.
  Task<void> quit();

  // One command (CRLF added) and its status line; -ERR is returned, not thrown. `shown` is
  // logged instead of the line when not empty.
  Task<Reply> command(const std::string& line, const std::string& shown = "");
  // The lines of a multi-line response after its +OK, up to the terminating ".", unstuffed.
  Task<std::vector<std::string>> read_multiline(size_t max_bytes);

  [[nodiscard]] Connection& connection() { return conn_; }

 private:
  Task<Reply> read_status();
  Task<void> auth_plain(const std::string& user, const std::string& password,
                        const std::string& authzid);
  Task<void> user_pass(const std::string& user, const std::string& password);
  [[noreturn]] void login_refused(const std::string& who, const Reply& r) const;

  Connection& conn_;
  std::map<std::string, std::string> caps_;  // upper-case name -> arguments
  bool capa_known_ = false;
};

}  // namespace mw::pop
