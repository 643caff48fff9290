// Services whose server speaks first, where its greeting proves it works: ssh, ftp, nntp, rsync,
// mysql. Each reads the greeting, checks it, and says goodbye the protocol's way. Also the
// dialogue of the protocol names monit knows and mailwarden has no dialogue for: nothing beyond
// the connection (and TLS) the engine's base has made.
#include <cctype>
#include <optional>
#include <string>

#include "engine/probe.h"
#include "net/failure.h"
#include "util/log.h"
#include "util/strings.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif

namespace mw::protocols {
namespace {

constexpr int kMaxReplyLines = 100;

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

int code_of(const std::string& line) {
  if (line.size() < 3 || !std::isdigit(static_cast<unsigned char>(line[0])) ||
      !std::isdigit(static_cast<unsigned char>(line[1])) ||
      !std::isdigit(static_cast<unsigned char>(line[2])) ||
      (line.size() > 3 && line[3] != ' ' && line[3] != '-'))
    return -1;
  return std::stoi(line.substr(0, 3));
}

// An FTP/NNTP reply: "NNN text", or "NNN-text" lines up to the line "NNN text" (RFC 959 4.2).
// Returns its last line; nullopt when the server closed before any line.
Task<std::optional<std::string>> numeric_reply(Connection& conn, const char* protocol) {
  auto first = co_await conn.read_line_or_close();
  if (!first) co_return std::nullopt;
  int code = code_of(*first);
  if (code < 0)
    throw ProbeError(
        FailureClass::protocol,
        std::string("not an ") + protocol + " reply: \"" + str::printable(*first) + "\"", *first);
  std::string line = *first;
  if (line.size() > 3 && line[3] == '-') {
    for (int n = 0;; ++n) {
      if (n == kMaxReplyLines)
        throw ProbeError(FailureClass::protocol, std::string(protocol) + " reply of more than " +
                                                     std::to_string(kMaxReplyLines) + " lines");
      line = co_await conn.read_line();
      if (code_of(line) == code && (line.size() == 3 || line[3] == ' ')) break;
    }
  }
  co_return line;
}

[[noreturn]] void refused(const std::string& line) {
  throw ProbeError(FailureClass::rejected, "server refused the session: " + str::printable(line),
                   line);
}

}  // namespace

Task<void> connect_only_dialogue(Probe&) {
  co_return;
}

// RFC 4253 4.2: the identification string "SSH-2.0-software", possibly after other lines.
Task<void> ssh_dialogue(Probe& probe) {
  Connection& conn = probe.conn();
  for (int n = 0;; ++n) {
    std::string line = co_await conn.read_line();
    if (starts_with(line, "SSH-")) {
      if (!starts_with(line, "SSH-2.0-") && !starts_with(line, "SSH-1.99-"))
        throw ProbeError(
            FailureClass::protocol,
            "server speaks an SSH version other than 2.0: \"" + str::printable(line) + "\"", line);
      // Our own identification, so that the server logs an ordinary close, not a scan.
      conn.send("SSH-2.0-mailwarden_" PACKAGE_VERSION "\r\n");
      co_return;
    }
    if (n == 20)
      throw ProbeError(FailureClass::protocol,
                       "no SSH identification line (last line: \"" + str::printable(line) + "\")",
                       line);
  }
}

// RFC 959: 220 greeting (120: not ready yet, 421: refused), QUIT, 221.
Task<void> ftp_dialogue(Probe& probe) {
  Connection& conn = probe.conn();
  auto greeting = co_await numeric_reply(conn, "FTP");
  if (!greeting)
    throw ProbeError(FailureClass::protocol, "server closed the connection before its greeting");
  if (code_of(*greeting) != 220) refused(*greeting);
  conn.send("QUIT\r\n");
  auto bye = co_await numeric_reply(conn, "FTP");
  if (bye && code_of(*bye) != 221)
    throw ProbeError(FailureClass::protocol, "QUIT answered: " + str::printable(*bye), *bye);
}

// RFC 3977: 200 (posting allowed) or 201 greeting, QUIT, 205.
Task<void> nntp_dialogue(Probe& probe) {
  Connection& conn = probe.conn();
  auto greeting = co_await numeric_reply(conn, "NNTP");
  if (!greeting)
    throw ProbeError(FailureClass::protocol, "server closed the connection before its greeting");
  int code = code_of(*greeting);
  if (code != 200 && code != 201) refused(*greeting);
  conn.send("QUIT\r\n");
  auto bye = co_await numeric_reply(conn, "NNTP");
  if (bye && code_of(*bye) != 205)
    throw ProbeError(FailureClass::protocol, "QUIT answered: " + str::printable(*bye), *bye);
}

// The rsync daemon greets with "@RSYNCD: <version>".
Task<void> rsync_dialogue(Probe& probe) {
  std::string line = co_await probe.conn().read_line();
  if (!starts_with(line, "@RSYNCD: "))
    throw ProbeError(FailureClass::protocol,
                     "not an rsync daemon greeting: \"" + str::printable(line) + "\"", line);
}

// The MySQL/MariaDB server sends its handshake packet first: a 3-byte little-endian length, a
// sequence number, then protocol version 10 and the server version; or an error packet (0xff)
// when it refuses this client (too many connections, host not allowed).
Task<void> mysql_dialogue(Probe& probe) {
  Connection& conn = probe.conn();
  std::string head = co_await conn.read_exact(4);
  size_t len = static_cast<unsigned char>(head[0]) | static_cast<unsigned char>(head[1]) << 8 |
               static_cast<size_t>(static_cast<unsigned char>(head[2])) << 16;
  if (len == 0 || len > 16 * 1024)
    throw ProbeError(FailureClass::protocol,
                     "not a MySQL handshake (a first packet of " + std::to_string(len) + " bytes)");
  std::string payload = co_await conn.read_exact(len);
  auto byte = static_cast<unsigned char>(payload[0]);
  if (byte == 0xff) {
    // error packet: 0xff, 2-byte code, then (protocol 4.1) '#' and a 5-character SQL state
    std::string message = payload.size() > 3 ? payload.substr(3) : "";
    if (!message.empty() && message[0] == '#' && message.size() >= 6) message = message.substr(6);
    throw ProbeError(FailureClass::rejected,
                     "server refused the session: " + str::printable(message), message);
  }
  if (byte != 10)
    throw ProbeError(FailureClass::protocol,
                     "not a MySQL handshake (protocol version " + std::to_string(byte) + ")");
  std::string version = payload.substr(1, payload.find('\0', 1) - 1);
  log::debug("%s: MySQL server %s", probe.host().c_str(), str::printable(version).c_str());
}

}  // namespace mw::protocols
