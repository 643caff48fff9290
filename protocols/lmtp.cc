// The lmtp protocol test (RFC 2033), over TCP or a unix socket: greeting, LHLO, [STARTTLS,
// LHLO], [MAIL FROM, RCPT TO, RSET], QUIT. RCPT TO asks the server whether it would take mail
// for a user; nothing is delivered.
#include "engine/probe.h"
#include "net/failure.h"
#include "protocols/smtp_client.h"

namespace mw::protocols {

Task<void> lmtp_dialogue(Probe& probe) {
  const auto& opt = probe.options();
  const std::string name = opt.helo.empty() ? smtp::default_hello_name() : opt.helo;
  smtp::Session lmtp(probe.conn(), true);
  co_await lmtp.greeting();
  co_await lmtp.hello(name);
  if (probe.wants_starttls()) {
    co_await lmtp.starttls_command();
    co_await probe.starttls();
    co_await lmtp.hello(name);
  }
  if (!opt.mail_from.empty() || !opt.rcpt_to.empty())
    co_await lmtp.probe_envelope(opt.mail_from, opt.rcpt_to, opt.expect_reject);
  co_await lmtp.quit();
}

}  // namespace mw::protocols
