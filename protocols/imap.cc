// The imap / imaps protocol test: greeting, CAPABILITY, [STARTTLS, CAPABILITY], [login],
// [SELECT], LOGOUT.
#include "engine/probe.h"
#include "net/failure.h"
#include "protocols/imap_client.h"

namespace mw::protocols {
namespace {

// The server is still talking to us after these: say goodbye, so that its log shows a logout
// rather than a dropped connection.
bool session_still_open(FailureClass c) {
  return c == FailureClass::auth || c == FailureClass::missing_feature ||
         c == FailureClass::rejected;
}

Task<void> login_and_select(Probe& probe, imap::Session& imap) {
  const auto& opt = probe.options();
  // A PREAUTH greeting skips the login: the test must not pass as if it had logged in.
  if (imap.preauth() && !opt.allow_preauth)
    throw ProbeError(FailureClass::auth,
                     "server greeted with PREAUTH, so the login as " + opt.username +
                         " was not tested (say 'allow preauth' if that is expected)");
  probe.require_password_allowed("starttls or imaps");
  const imap::Login login{opt.username, opt.password, opt.authzid};
  co_await imap.login(login);
  if (!opt.mailbox.empty()) (void)co_await imap.select(opt.mailbox);
}

}  // namespace

Task<void> imap_dialogue(Probe& probe) {
  imap::Session imap(probe.conn());
  co_await imap.greeting();
  co_await imap.capability();
  if (probe.wants_starttls()) {
    co_await imap.starttls_command();
    co_await probe.starttls();
    co_await imap.capability();
  }
  if (probe.options().has_login()) {
    std::exception_ptr failure;
    try {
      co_await login_and_select(probe, imap);
    } catch (const ProbeError& e) {
      if (!session_still_open(e.cls())) throw;
      failure = std::current_exception();
    }
    if (failure) {
      // Best effort and brief; the first failure is what the test reports.
      probe.conn().set_timeout_ms(std::min<int64_t>(probe.conn().timeout_ms(), 1000));
      try {
        co_await imap.logout();
      } catch (const ProbeError&) {
      }
      std::rethrow_exception(failure);
    }
  }
  co_await imap.logout();
}

}  // namespace mw::protocols
