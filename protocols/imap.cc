// The imap / imaps protocol test: greeting, CAPABILITY, [STARTTLS, CAPABILITY], [login],
// [SELECT], LOGOUT.
#include "engine/probe.h"
#include "net/failure.h"
#include "protocols/imap_client.h"

namespace mw::protocols {

Task<void> imap_dialogue(Probe& probe) {
  imap::Session imap(probe.conn());
  co_await imap.greeting();
  co_await imap.capability();
  if (probe.wants_starttls()) {
    co_await imap.starttls_command();
    co_await probe.starttls();
    co_await imap.capability();
  }
  const auto& opt = probe.options();
  if (opt.has_login()) {
    if (!probe.may_send_password())
      throw ProbeError(FailureClass::missing_feature,
                       "not sending the password of " + opt.username +
                           " over an unencrypted connection (use starttls or imaps, or 'allow "
                           "plaintext')");
    const imap::Login login{opt.username, opt.password, opt.authzid};
    co_await imap.login(login);
    if (!opt.mailbox.empty()) (void)co_await imap.select(opt.mailbox);
  }
  co_await imap.logout();
}

}  // namespace mw::protocols
