// The pop / pops protocol test: greeting, CAPA, [STLS, CAPA], [USER/PASS or AUTH PLAIN], QUIT.
#include "engine/probe.h"
#include "net/failure.h"
#include "protocols/pop_client.h"

namespace mw::protocols {

Task<void> pop_dialogue(Probe& probe) {
  pop::Session pop(probe.conn());
  co_await pop.greeting();
  co_await pop.capa();
  if (probe.wants_starttls()) {
    co_await pop.stls_command();
    co_await probe.starttls();
    co_await pop.capa();
  }
  const auto& opt = probe.options();
  if (opt.has_login()) {
    probe.require_password_allowed("starttls or pops");
    if (opt.authzid.empty()) {
      co_await pop.login(opt.username, opt.password);
    } else {
      co_await pop.login(opt.authzid, opt.password, opt.username);
    }
  }
  co_await pop.quit();
}

}  // namespace mw::protocols
