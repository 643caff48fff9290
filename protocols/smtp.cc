// The smtp / smtps / submission protocol test: greeting, EHLO (HELO fallback), [STARTTLS,
// EHLO], [AUTH PLAIN/LOGIN], [MAIL FROM, RCPT TO, RSET], QUIT. Never DATA.
#include "engine/probe.h"
#include "net/failure.h"
#include "protocols/smtp_client.h"

namespace mw::protocols {

Task<void> smtp_dialogue(Probe& probe) {
  const auto& opt = probe.options();
  const std::string name = opt.helo.empty() ? smtp::default_hello_name() : opt.helo;
  smtp::Session smtp(probe.conn());
  co_await smtp.greeting();
  co_await smtp.hello(name);
  if (probe.wants_starttls()) {
    co_await smtp.starttls_command();
    co_await probe.starttls();
    co_await smtp.hello(name);
  }
  if (opt.has_login()) {
    probe.require_password_allowed("starttls, smtps or submission");
    if (opt.authzid.empty()) {
      co_await smtp.auth(opt.username, opt.password);
    } else {
      co_await smtp.auth(opt.authzid, opt.password, opt.username);
    }
  }
  if (!opt.mail_from.empty() || !opt.rcpt_to.empty())
    co_await smtp.probe_envelope(opt.mail_from, opt.rcpt_to, opt.expect_reject);
  co_await smtp.quit();
}

}  // namespace mw::protocols
