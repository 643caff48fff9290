// An FTP client session over a Connection (RFC 959), with explicit TLS (RFC 4217: AUTH TLS,
// PBSZ 0, PROT P) and passive data connections (EPSV, RFC 2428, falling back to PASV). A TLS
// data connection resumes the control connection's TLS session, as vsftpd (require_ssl_reuse)
// and many servers demand. The delivery check's FTP sender and receiver speak FTP through it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/connection.h"
#include "net/task.h"

namespace mw::ftp {

struct Reply {
  int code = 0;
  std::string last_line;  // the final line as the server sent it
  std::vector<std::string> lines;
  [[nodiscard]] int cls() const { return code / 100; }
};

// What a data connection needs: a new unconnected Connection, and the TLS to speak over it.
struct DataChannel {
  std::function<std::unique_ptr<Connection>()> make;
  TlsSettings tls;
  std::string host;  // the name the control connection verified
};

class Session {
 public:
  Session(Connection& conn, DataChannel data) : conn_(conn), data_(std::move(data)) {}

  // The 220 greeting (a 120 "ready in n minutes" first is tolerated).
  Task<void> greeting();
  // AUTH TLS and its 234; the caller then upgrades the connection and calls protect().
  Task<void> auth_tls_command();
  // PBSZ 0 and PROT P: data connections are TLS from then on.
  Task<void> protect();
  // USER and PASS (the password never logged); 530 is an authentication failure.
  Task<void> login(const std::string& user, const std::string& password);
  // TYPE I, then CWD `dir` when it is not empty.
  Task<void> enter(const std::string& dir);

  // The names in the current directory (NLST), at most `max_names`; a "450/550 No files" is
  // an empty directory.
  Task<std::vector<std::string>> list(size_t max_names);
  // A file's content, at most `max_bytes` (longer fails).
  Task<std::string> retrieve(const std::string& name, size_t max_bytes);
  // Uploads `data` as `name`, then renames it to `final_name` (readers see all or nothing).
  Task<void> store(const std::string& name, const std::string& data, const std::string& final_name);
  Task<void> remove(const std::string& name);
  // QUIT: a 221, or a close, ends the session well.
  Task<void> quit();

  // One command line (CRLF added) and its reply; `shown` is logged instead when not empty.
  Task<Reply> command(const std::string& line, const std::string& shown = "");
  Task<Reply> read_reply();

 private:
  // EPSV (or PASV), connected, the transfer command sent and its 125/150 read, TLS started;
  // null for an NLST answered 450/550 (nothing to list).
  Task<std::unique_ptr<Connection>> open_data(const std::string& command);
  Task<Endpoint> passive_endpoint();
  // The 226/250 after a transfer.
  Task<void> transfer_done(const std::string& what);

  Connection& conn_;
  DataChannel data_;
  bool protected_ = false;
  bool epsv_failed_ = false;
};

// A name from an NLST line: the last path element, or empty for ".", ".." and hidden names.
[[nodiscard]] std::string listed_name(const std::string& line);
// The address of a 227 reply ("Entering Passive Mode (h1,h2,h3,h4,p1,p2)"); false if malformed.
[[nodiscard]] bool parse_pasv(const std::string& text, std::string& host, uint16_t& port);
// The port of a 229 reply ("Entering Extended Passive Mode (|||port|)"); false if malformed.
[[nodiscard]] bool parse_epsv(const std::string& text, uint16_t& port);

}  // namespace mw::ftp
