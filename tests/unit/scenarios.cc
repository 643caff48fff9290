#include "scenarios.h"

#include <memory>

#include "net/failure.h"
#include "support.h"

namespace mwtest {
namespace {

std::string replace_port(std::string s, uint16_t port) {
  auto pos = s.find("{port}");
  if (pos != std::string::npos) s.replace(pos, 6, std::to_string(port));
  return s;
}

// `want` may contain "{any}", standing for any text.
bool same(const std::string& want, const std::string& got) {
  auto any = want.find("{any}");
  if (any == std::string::npos) return want == got;
  std::string head = want.substr(0, any), tail = want.substr(any + 5);
  return got.size() >= head.size() + tail.size() && got.compare(0, head.size(), head) == 0 &&
         got.compare(got.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

const TestCerts& scenario_certs() {
  static const TestCerts c = TestCerts::create(tmpdir() + "/scenario-certs");
  return c;
}

uint16_t free_port() {
  // A peer that is created and destroyed leaves a port nothing listens on.
  Loop loop;
  ScriptedPeer peer(loop.base.get(), "hang\n");
  return peer.port();
}

mw::CheckResult run_rule(const std::string& script, const std::string& rule, uint16_t& port,
                         std::string& config_errors, std::string& peer_errors) {
  Loop loop;
  std::unique_ptr<ScriptedPeer> peer;
  if (!script.empty()) {
    PeerOptions opts;
    opts.certs = &scenario_certs();
    peer = std::make_unique<ScriptedPeer>(ScriptedPeer::from_file(
        loop.base.get(), srcdir() + "/tests/peers/scripts/" + script + ".peer", opts));
    port = peer->port();
  } else {
    port = free_port();
  }
  auto config = parse_text("set ssl options { cacertificatefile: " + scenario_certs().ca_file +
                               " }\n"
                               "check host peer with address 127.0.0.1\n"
                               "  if failed port " +
                               std::to_string(port) + " " + rule + " then alert\n",
                           &config_errors);
  if (!config) return {};
  mw::CheckResult r = run_check(loop, config);
  if (peer)
    for (const auto& e : peer->errors()) peer_errors += "\n    peer: " + e;
  return r;
}

std::string run_scenarios(const Scenario* begin, const Scenario* end, int& ran) {
  std::string failures;
  ran = 0;
  for (const Scenario* s = begin; s != end; ++s) {
    uint16_t port = 0;
    std::string config_errors, peer_errors;
    mw::CheckResult r = run_rule(s->script, s->rule, port, config_errors, peer_errors);
    std::string label = std::string(*s->script ? s->script : "(no listener)") + " / " + s->rule;
    if (!config_errors.empty()) {
      failures += "\n" + label + ": control text rejected: " + config_errors;
      continue;
    }
    ++ran;
    std::string want =
        std::string(s->ok ? "ok" : "failed") + " " + s->cls + " " + replace_port(s->message, port);
    std::string got =
        std::string(r.ok ? "ok" : "failed") + " " + mw::failure_class_name(r.cls) + " " + r.message;
    if (!same(want, got) || (s->ok && !peer_errors.empty()))
      failures += "\n" + label + ":\n  want: " + want + "\n  got:  " + got + peer_errors;
  }
  return failures;
}

}  // namespace mwtest
