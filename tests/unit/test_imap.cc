// The IMAP test against scripted peers: every LOGOUT behaviour real servers show, and the hostile
// ones they rarely do. Each row names a script in tests/peers/scripts, the rest of the port test,
// and the exact outcome (status, failure class, message; {port} stands for the peer's port).
#include "scenarios.h"  // before CppUTest: its new macros break STL headers

#include <CppUTest/TestHarness.h>

#include <iterator>
#include <string>

#include "support.h"
#include "util/strings.h"

namespace {

using mwtest::Scenario;

const Scenario kScenarios[] = {
    // LOGOUT as real servers answer it: all of these are success.
    {"imap-logout-bye-ok", "protocol imap", true, "none", ""},
    {"imap-logout-bye-close", "protocol imap", true, "none", ""},
    {"imap-logout-ok-only", "protocol imap", true, "none", ""},
    {"imap-logout-close", "protocol imap", true, "none", ""},
    {"imaps-logout-bye-ok", "protocol imaps", true, "none", ""},
    {"imaps-logout-dirty-close", "protocol imaps", true, "none", ""},
    {"imap-preauth", "protocol imap", true, "none", ""},
    {"imap-split-reply", "protocol imap", true, "none", ""},
    {"imap-starttls-logout-bye-ok", "protocol imap starttls", true, "none", ""},
    // LOGOUT answered wrongly.
    {"imap-logout-no", "protocol imap", false, "rejected",
     "LOGOUT answered NO: mw2 NO LOGOUT refused"},
    {"imap-logout-garbage", "protocol imap", false, "protocol",
     "unexpected reply to LOGOUT: \"HTTP/1.0 200 OK\""},
    {"imap-logout-silence", "protocol imap timeout 1 s", false, "timeout",
     "no reply from 127.0.0.1:{port} within 1 s"},
    // Greetings.
    {"imap-bye-greeting", "protocol imap", false, "rejected",
     "server refused the session: * BYE server too busy, try again later"},
    {"imap-garbage-line", "protocol imap", false, "protocol",
     "unexpected IMAP greeting: \"HTTP/1.1 400 Bad Request\""},
    {"imap-silence", "protocol imap timeout 1 s", false, "timeout",
     "no reply from 127.0.0.1:{port} within 1 s"},
    {"imap-long-line", "protocol imap", false, "protocol", "line too long (more than 65536 bytes)"},
    {"imap-greeting-reset", "protocol imap", false, "protocol",
     "Connection reset by peer while waiting for a reply"},
    {"imap-close-in-reply", "protocol imap", false, "protocol",
     "server closed the connection while waiting for a reply"},
    {"imap-slow-drip", "protocol imap timeout 1 s deadline 2 s", false, "timeout",
     "test did not finish within its deadline of 2 s"},
    {"", "protocol imap", false, "connect",
     "cannot connect to 127.0.0.1:{port}: Connection refused"},
    {"", "protocol imap retry 2", false, "connect",
     "cannot connect to 127.0.0.1:{port}: Connection refused"},
    // TLS.
    {"imaps-expired", "protocol imaps", false, "tls",
     "certificate verification failed: certificate has expired"},
    {"imaps-wronghost", "protocol imaps", false, "tls",
     "certificate verification failed: IP address mismatch"},
    {"imaps-selfsigned", "protocol imaps", false, "tls",
     "certificate verification failed: self-signed certificate"},
    {"imaps-selfsigned", "protocol imaps with ssl options { selfsigned: allow }", true, "none", ""},
    {"imaps-selfsigned", "protocol imaps with ssl options { verify: disable }", true, "none", ""},
    {"imap-garbage-line", "protocol imaps", false, "tls",
     "TLS handshake failed: wrong version number"},
    {"imaps-expiring10", "protocol imaps certificate valid > 30 days", false, "certificate",
     "certificate expires in 9 days (the rule wants more than 30)"},
    {"imaps-expiring10", "protocol imaps certificate valid > 5 days", true, "none", ""},
    {"imap-logout-bye-ok", "protocol imap starttls", false, "missing-feature",
     "server does not offer STARTTLS"},
    {"imap-starttls-injection", "protocol imap starttls", false, "protocol",
     "server sent data before the TLS handshake (response injection?)"},
    // Login.
    {"imap-logindisabled", "protocol imap username \"alice\" password \"pw\" allow plaintext",
     false, "missing-feature",
     "server advertises LOGINDISABLED: it takes no password on this unencrypted connection (use "
     "starttls or imaps)"},
    {"imap-login-ok", "protocol imap username \"alice\" password \"pw\" allow plaintext", true,
     "none", ""},
    {"imap-login-no", "protocol imap username \"alice\" password \"wrong\" allow plaintext", false,
     "auth", "login as alice failed: mw2 NO [AUTHENTICATIONFAILED] Authentication failed."},
    {"imaps-master-login",
     "protocol imaps username \"alice\" masteruser \"master\" password \"pw\"", true, "none", ""},
    {"imaps-select-no", "protocol imaps username \"alice\" password \"pw\" select \"Missing\"",
     false, "rejected", "cannot select Missing: mw3 NO Mailbox doesn't exist: Missing"},
};

}  // namespace

TEST_GROUP(ImapDialogue){};

TEST(ImapDialogue, EveryScenarioHasItsExactOutcome) {
  int ran = 0;
  std::string failures = mwtest::run_scenarios(std::begin(kScenarios), std::end(kScenarios), ran);
  LONGS_EQUAL(sizeof kScenarios / sizeof kScenarios[0], ran);
  if (!failures.empty()) FAIL(failures.c_str());
}

TEST(ImapDialogue, RetriesAreCounted) {
  mwtest::Loop loop;
  uint16_t port = mwtest::free_port();
  auto config = mwtest::parse_text(
      "check host peer with address 127.0.0.1\n"
      "  if failed port " +
      std::to_string(port) + " protocol imap retry 2 then alert\n");
  CHECK(config != nullptr);
  mw::CheckResult r = mwtest::run_check(loop, config);
  LONGS_EQUAL(3, r.attempts);
}

TEST(ImapDialogue, PasswordNeverSentWhenLoginDisabled) {
  static const mwtest::TestCerts certs = mwtest::TestCerts::create(mwtest::tmpdir() + "/certs2");
  mwtest::Loop loop;
  mwtest::PeerOptions opts;
  opts.certs = &certs;
  auto peer = mwtest::ScriptedPeer::from_file(
      loop.base.get(), mwtest::srcdir() + "/tests/peers/scripts/imap-logindisabled.peer", opts);
  auto config = mwtest::parse_text(
      "check host peer with address 127.0.0.1\n"
      "  if failed port " +
      std::to_string(peer.port()) +
      " protocol imap username \"alice\" password \"s3cret\" "
      "allow plaintext then alert\n");
  CHECK(config != nullptr);
  (void)mwtest::run_check(loop, config);
  for (const auto& line : peer.received())
    CHECK_TEXT(line.find("s3cret") == std::string::npos, ("password sent: " + line).c_str());
}

TEST(ImapDialogue, MasterLoginSendsAuthorizationIdentity) {
  static const mwtest::TestCerts certs = mwtest::TestCerts::create(mwtest::tmpdir() + "/certs3");
  mwtest::Loop loop;
  mwtest::PeerOptions opts;
  opts.certs = &certs;
  auto peer = mwtest::ScriptedPeer::from_file(
      loop.base.get(), mwtest::srcdir() + "/tests/peers/scripts/imaps-master-login.peer", opts);
  auto config = mwtest::parse_text(
      "set ssl options { cacertificatefile: " + certs.ca_file +
      " }\n"
      "check host peer with address 127.0.0.1\n"
      "  if failed port " +
      std::to_string(peer.port()) +
      " protocol imaps username \"alice\" masteruser \"master\" password \"pw\" then alert\n");
  CHECK(config != nullptr);
  mw::CheckResult r = mwtest::run_check(loop, config);
  CHECK_TEXT(r.ok, r.reason().c_str());
  CHECK(peer.errors().empty());
  // authzid NUL authcid NUL password
  std::string blob = mw::str::base64_encode(std::string("alice\0master\0pw", 15));
  bool seen = false;
  for (const auto& line : peer.received())
    if (line.find("AUTHENTICATE PLAIN " + blob) != std::string::npos) seen = true;
  CHECK_TEXT(seen, "AUTHENTICATE PLAIN with alice as authorization identity not seen");
}
