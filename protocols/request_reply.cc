// Services that answer one small request: redis, memcache, clamav, spamassassin, a Postfix
// policy service, PostgreSQL. Each sends its protocol's no-op and checks the answer.
#include <string>

#include "engine/probe.h"
#include "net/failure.h"
#include "util/log.h"
#include "util/strings.h"

namespace mw::protocols {
namespace {

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

[[noreturn]] void unexpected(const std::string& what, const std::string& line) {
  throw ProbeError(FailureClass::protocol, what + ": \"" + str::printable(line) + "\"", line);
}

}  // namespace

// Redis: PING answers +PONG. A server that wants AUTH first (-NOAUTH) is alive and speaking
// Redis; mailwarden does not log in to it.
Task<void> redis_dialogue(Probe& probe) {
  probe.conn().send("PING\r\n");
  std::string line = co_await probe.conn().read_line();
  if (line == "+PONG" || starts_with(line, "-NOAUTH")) co_return;
  if (starts_with(line, "-"))
    throw ProbeError(FailureClass::rejected, "PING answered " + str::printable(line), line);
  unexpected("PING answered something other than +PONG", line);
}

// memcached (text protocol): "version" answers "VERSION x.y.z".
Task<void> memcache_dialogue(Probe& probe) {
  probe.conn().send("version\r\n");
  std::string line = co_await probe.conn().read_line();
  if (!starts_with(line, "VERSION "))
    unexpected("version answered something other than VERSION", line);
}

// clamd: "nPING\n" (newline-terminated command) answers "PONG".
Task<void> clamav_dialogue(Probe& probe) {
  probe.conn().send("nPING\n");
  std::string line = co_await probe.conn().read_line();
  if (line != "PONG") unexpected("PING answered something other than PONG", line);
}

// spamd: "PING SPAMC/1.2" and an empty line answer "SPAMD/1.x 0 PONG".
Task<void> spamassassin_dialogue(Probe& probe) {
  probe.conn().send("PING SPAMC/1.2\r\n\r\n");
  std::string line = co_await probe.conn().read_line();
  if (!starts_with(line, "SPAMD/") || line.find(" PONG") == std::string::npos)
    unexpected("PING answered something other than SPAMD/... PONG", line);
  if (line.find(" 0 ") == std::string::npos)
    throw ProbeError(FailureClass::rejected, "PING answered " + str::printable(line), line);
}

// A Postfix policy service (SMTPD_POLICY_README): attributes, an empty line; the answer is
// "action=..." and an empty line. The request asks about a probe recipient at the RCPT stage.
Task<void> postfix_policy_dialogue(Probe& probe) {
  probe.conn().send(
      "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=SMTP\n"
      "client_address=127.0.0.1\nclient_name=localhost\nreverse_client_name=localhost\n"
      "helo_name=localhost\nsender=mailwarden@localhost\nrecipient=mailwarden@localhost\n"
      "recipient_count=0\nsize=0\n\n");
  std::string line = co_await probe.conn().read_line();
  if (!starts_with(line, "action=")) unexpected("not a policy answer", line);
  log::debug("%s: policy %s", probe.host().c_str(), str::printable(line).c_str());
}

// PostgreSQL: an SSLRequest (length 8, code 80877103) is answered with one byte, S or N,
// before any login; the connection is then closed without a startup packet.
Task<void> pgsql_dialogue(Probe& probe) {
  static const char request[] = {0, 0, 0, 8, 0x04, static_cast<char>(0xd2), 0x16, 0x2f};
  probe.conn().send(std::string_view(request, sizeof request));
  std::string answer = co_await probe.conn().read_exact(1);
  if (answer == "S" || answer == "N") co_return;
  if (answer == "E")
    throw ProbeError(FailureClass::rejected, "server answered the SSLRequest with an error");
  unexpected("not a PostgreSQL answer to an SSLRequest", answer);
}

}  // namespace mw::protocols
