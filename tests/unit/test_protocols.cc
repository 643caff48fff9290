// The pop, smtp, submission, lmtp, sieve and generic (send/expect) tests against scripted peers:
// what real servers do, and the hostile things they rarely do (greeting timeout, bad greeting, a
// multi-line reply split across reads, a 1 MiB line, a close inside a multi-line reply, a TLS
// handshake failure). Each row names a script in tests/peers/scripts, the rest of the port test
// and the exact outcome: status, failure class and message ({port} is the peer's port, {any}
// stands for any text). A row that passes must also have followed its script to the letter.
#include "scenarios.h"  // before CppUTest: its new macros break STL headers

#include <CppUTest/TestHarness.h>
#include <sys/stat.h>

#include <string>

#include "config/credentials.h"
#include "net/connection.h"
#include "net/failure.h"
#include "protocols/pop_client.h"
#include "support.h"
#include "util/strings.h"

namespace {

using mwtest::Scenario;

#define LOGIN " username \"alice\" password \"pw\""

const Scenario kScenarios[] = {
    // ---- POP3 -------------------------------------------------------------------------------
    {"pop-ok", "protocol pop", true, "none", ""},
    {"pop-quit-close", "protocol pop", true, "none", ""},
    {"pop-split-capa", "protocol pop", true, "none", ""},
    {"pop-no-capa", "protocol pop" LOGIN " allow plaintext", true, "none", ""},
    {"pop-user-pass", "protocol pop" LOGIN " allow plaintext", true, "none", ""},
    {"pops-sasl-plain", "protocol pops" LOGIN, true, "none", ""},
    {"pops-master", "protocol pops username \"alice\" masteruser \"master\" password \"pw\"", true,
     "none", ""},
    {"pop-stls", "protocol pop starttls", true, "none", ""},
    {"pop-quit-err", "protocol pop", false, "rejected",
     "QUIT answered: -ERR some deleted messages not removed"},
    {"pop-err-greeting", "protocol pop", false, "rejected",
     "server refused the session: -ERR [SYS/TEMP] too many connections, try again later"},
    {"pop-garbage-greeting", "protocol pop", false, "protocol",
     "unexpected POP3 greeting: \"SSH-2.0-OpenSSH_9.2p1 Debian-2\""},
    {"pop-silence", "protocol pop timeout 1 s", false, "timeout",
     "no reply from 127.0.0.1:{port} within 1 s"},
    {"pop-long-line", "protocol pop", false, "protocol", "line too long (more than 65536 bytes)"},
    {"pop-close-in-capa", "protocol pop", false, "protocol",
     "server closed the connection while waiting for a reply"},
    {"pop-pass-err", "protocol pop" LOGIN " allow plaintext", false, "auth",
     "login as alice failed: -ERR [AUTH] Authentication failed."},
    {"pop-in-use", "protocol pop" LOGIN " allow plaintext", false, "rejected",
     "login as alice failed: -ERR [IN-USE] Mailbox is locked by another POP3 session."},
    {"pop-no-login-offered", "protocol pop" LOGIN " allow plaintext", false, "missing-feature",
     "server offers neither USER nor SASL PLAIN on this connection (it may want STLS first)"},
    {"pop-user-pass",
     "protocol pop username \"alice\" masteruser \"m\" password \"pw\" allow "
     "plaintext",
     false, "missing-feature",
     "server does not offer SASL PLAIN, needed to log in as another user"},
    {"pop-ok", "protocol pop starttls", false, "missing-feature", "server does not offer STLS"},
    {"pop-ok", "protocol pops", false, "tls", "TLS handshake failed: wrong version number"},
    {"pops-expiring10", "protocol pops certificate valid > 30 days", false, "certificate",
     "certificate expires in 9 days (the rule wants more than 30)"},
    {"pops-expiring10", "protocol pops certificate valid > 5 days", true, "none", ""},
    {"pops-selfsigned", "protocol pops", false, "tls",
     "certificate verification failed: self-signed certificate"},
    {"pops-selfsigned", "protocol pops with ssl options { selfsigned: allow }", true, "none", ""},
    {"pop-split-capa", "protocol pop responsetime > 100 ms", false, "responsetime",
     "response time {any} ms exceeds the limit of 100 ms"},
    {"pop-split-capa", "protocol pop responsetime > 5 seconds", true, "none", ""},
    {"", "protocol pop", false, "connect",
     "cannot connect to 127.0.0.1:{port}: Connection refused"},

    // ---- SMTP, SMTPS, submission
    // -----------------------------------------------------------------
    {"smtp-ok", "protocol smtp", true, "none", ""},
    {"smtp-quit-close", "protocol smtp", true, "none", ""},
    {"smtp-split-ehlo", "protocol smtp", true, "none", ""},
    {"smtp-helo-fallback", "protocol smtp helo \"probe.example.test\"", true, "none", ""},
    {"smtp-starttls", "protocol smtp starttls", true, "none", ""},
    {"smtp-starttls-auth", "protocol submission" LOGIN, true, "none", ""},
    {"smtps-auth-login", "protocol smtps" LOGIN, true, "none", ""},
    {"smtp-rcpt-ok",
     "protocol smtp mail from \"probe@example.test\" rcpt to \"alice@example.test\"", true, "none",
     ""},
    {"smtp-relay-denied",
     "protocol smtp mail from \"probe@example.test\" rcpt to \"x@elsewhere.test\" expect reject",
     true, "none", ""},
    {"smtp-relay-denied",
     "protocol smtp mail from \"probe@example.test\" rcpt to \"x@elsewhere.test\"", false,
     "rejected",
     "RCPT TO:<x@elsewhere.test> refused: 554 5.7.1 <x@elsewhere.test>: Relay access "
     "denied"},
    {"smtp-open-relay",
     "protocol smtp mail from \"probe@example.test\" rcpt to \"x@elsewhere.test\" expect reject",
     false, "content",
     "open relay: server accepted RCPT TO:<x@elsewhere.test> (250 2.1.5 Ok), which the rule "
     "expects refused"},
    {"smtp-rcpt-tempfail", "protocol smtp rcpt to \"x@elsewhere.test\" expect reject", false,
     "rejected",
     "RCPT TO:<x@elsewhere.test> refused only for now (450 4.7.1 <x@elsewhere.test>: Recipient "
     "address rejected: greylisted): a temporary refusal does not show that the server refuses "
     "it"},
    {"smtp-554-greeting", "protocol smtp", false, "rejected",
     "server refused the session: 554 5.3.2 mail.example.test: service currently unavailable"},
    {"smtp-garbage-greeting", "protocol smtp", false, "protocol",
     "not an SMTP reply: \"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\""},
    {"smtp-silence", "protocol smtp timeout 1 s", false, "timeout",
     "no reply from 127.0.0.1:{port} within 1 s"},
    {"smtp-long-line", "protocol smtp", false, "protocol", "line too long (more than 65536 bytes)"},
    {"smtp-close-in-ehlo", "protocol smtp", false, "protocol",
     "server closed the connection while waiting for a reply"},
    {"smtp-code-change", "protocol smtp", false, "protocol",
     "reply code changed inside a multi-line reply: \"220 PIPELINING\""},
    {"smtp-ok", "protocol smtp starttls", false, "missing-feature",
     "server does not offer STARTTLS"},
    {"smtp-ok", "protocol submission", false, "missing-feature", "server does not offer STARTTLS"},
    {"smtp-ok", "protocol smtps", false, "tls", "TLS handshake failed: wrong version number"},
    {"smtp-starttls-auth-fail", "protocol submission username \"alice\" password \"wrong\"", false,
     "auth",
     "login as alice failed: 535 5.7.8 Error: authentication failed: authentication failure"},
    {"smtp-starttls", "protocol smtp" LOGIN " allow plaintext", false, "missing-feature",
     "server offers no AUTH on this connection (it may want STARTTLS first)"},
    {"smtps-expiring10", "protocol smtps certificate valid > 30 days", false, "certificate",
     "certificate expires in 9 days (the rule wants more than 30)"},
    {"smtps-expiring10", "protocol smtps certificate valid > 5 days", true, "none", ""},

    // ---- LMTP -------------------------------------------------------------------------------
    {"lmtp-ok", "protocol lmtp rcpt to \"alice@example.test\"", true, "none", ""},
    {"lmtp-split-lhlo", "protocol lmtp", true, "none", ""},
    {"lmtp-user-unknown", "protocol lmtp rcpt to \"nobody@example.test\" expect reject", true,
     "none", ""},
    {"lmtp-user-unknown", "protocol lmtp rcpt to \"nobody@example.test\"", false, "rejected",
     "RCPT TO:<nobody@example.test> refused: 550 5.1.1 <nobody@example.test> User doesn't exist: "
     "nobody@example.test"},
    {"lmtp-ok", "protocol lmtp rcpt to \"alice@example.test\" expect reject", false, "content",
     "server accepted RCPT TO:<alice@example.test> (250 2.1.5 OK), which the rule expects refused"},
    {"lmtp-lhlo-refused", "protocol lmtp", false, "rejected",
     "LHLO refused: 502 5.5.2 Error: command not recognized"},
    {"smtp-554-greeting", "protocol lmtp", false, "rejected",
     "server refused the session: 554 5.3.2 mail.example.test: service currently unavailable"},
    {"smtp-silence", "protocol lmtp timeout 1 s", false, "timeout",
     "no reply from 127.0.0.1:{port} within 1 s"},
    {"lmtp-long-line", "protocol lmtp", false, "protocol", "line too long (more than 65536 bytes)"},
    {"lmtp-close-in-lhlo", "protocol lmtp", false, "protocol",
     "server closed the connection while waiting for a reply"},
    {"lmtp-ok", "protocol lmtp ssl", false, "tls", "TLS handshake failed: wrong version number"},

    // ---- ManageSieve ------------------------------------------------------------------------
    {"sieve-ok", "protocol sieve", true, "none", ""},
    {"sieve-logout-close", "protocol sieve", true, "none", ""},
    {"sieve-split-greeting", "protocol sieve", true, "none", ""},
    {"sieve-starttls-login", "protocol sieve starttls" LOGIN, true, "none", ""},
    {"sieve-login-no", "protocol sieve" LOGIN " allow plaintext", false, "auth",
     "login as alice failed: NO \"Authentication failed.\""},
    {"sieve-starttls-login", "protocol sieve" LOGIN " allow plaintext", false, "missing-feature",
     "server does not offer SASL PLAIN (SASL \"\"); it may want STARTTLS first"},
    {"sieve-bye-greeting", "protocol sieve", false, "rejected",
     "server refused the session: BYE \"Too many connections, try again later.\""},
    {"sieve-garbage-greeting", "protocol sieve", false, "protocol",
     "unexpected ManageSieve response: \"220 mail.example.test ESMTP\""},
    {"smtp-silence", "protocol sieve timeout 1 s", false, "timeout",
     "no reply from 127.0.0.1:{port} within 1 s"},
    {"sieve-long-line", "protocol sieve", false, "protocol",
     "line too long (more than 65536 bytes)"},
    {"sieve-close-in-greeting", "protocol sieve", false, "protocol",
     "server closed the connection while waiting for a reply"},
    {"sieve-login-no", "protocol sieve starttls", false, "missing-feature",
     "server does not offer STARTTLS"},
    {"sieve-ok", "protocol sieve ssl", false, "tls", "TLS handshake failed: wrong version number"},

    // ---- generic: a connect, then send/expect -------------------------------------------------
    {"generic-silence", "", true, "none", ""},
    {"", "", false, "connect", "cannot connect to 127.0.0.1:{port}: Connection refused"},
    {"generic-http", R"(send "GET / HTTP/1.0\r\nHost: peer\r\n\r\n" expect "^HTTP/1\.[01] 200")",
     true, "none", ""},
    {"generic-http-500",
     R"(send "GET / HTTP/1.0\r\nHost: peer\r\n\r\n" expect "^HTTP/1\.[01] 200")", false, "content",
     R"(expected "^HTTP/1\.[01] 200", got "HTTP/1.0 500 Internal Server Error")"},
    {"generic-challenge",
     R"(expect "^220 challenge (\S+) ready" send "ANSWER \1\r\n" expect "^250 " )"
     R"(send "BYE\r\n" expect "^221")",
     true, "none", ""},
    // An expect reads the whole reply: the multi-line banner's last line matches.
    {"generic-banner-late", R"(expect "^220 ")", true, "none", ""},
    {"generic-banner-late", R"(expect "^250 ")", false, "content",
     R"(expected "^250 ", got 3 lines: "220-first banner line" "220-second banner line" )"
     R"("220 mail.example.test ready")"},
    // The untagged CAPABILITY line comes first; the tagged line ends the reply, so a mismatch
    // fails at once (the peer then hangs: a wait for more would end in a timeout instead).
    {"generic-imap-capability", R"(send "a1 CAPABILITY\r\n" expect "a1 OK" timeout 30 s)", true,
     "none", ""},
    {"generic-imap-capability", R"(send "a1 CAPABILITY\r\n" expect "^a1 NO" timeout 30 s)", false,
     "content",
     R"(expected "^a1 NO", got 3 lines: "* OK [CAPABILITY IMAP4rev1 STARTTLS] ready" )"
     R"("* CAPABILITY IMAP4rev1 STARTTLS IDLE" "a1 OK Pre-login capabilities listed.")"},
    {"generic-imap-capability",
     R"(send "a1 CAPABILITY\r\n" expect "IDLE" send "a2 LOGOUT\r\n" timeout 30 s)", true, "none",
     ""},
    // A reply without an end marker ends with a short silence, long before the timeout.
    {"generic-line-then-silence", R"(expect "^bye" timeout 30 s)", false, "content",
     R"(expected "^bye", got "hello there")"},
    {"generic-prompt", R"(expect "^login: $" timeout 30 s)", true, "none", ""},
    {"generic-prompt", R"(expect "^password:" timeout 30 s)", false, "content",
     R"(expected "^password:", got "login: ")"},
    {"generic-banner-late", R"(expect "^220 " within 1000 bytes)", true, "none", ""},
    {"generic-banner-late", R"(expect "^220 " within 30 bytes)", false, "content",
     R"(no line matching "^220 " within 30 bytes (last line: "220-second banner line"))"},
    {"pop-split-capa",
     R"(expect "^\+OK ready$" send "CAPA\r\n" expect "^\+OK$" expect "^TOP$" expect "^UIDL$" )"
     R"(expect "^USER$" expect "^\.$" send "QUIT\r\n" expect "^\+OK Logging out\.$")",
     true, "none", ""},
    {"generic-silence", R"(expect "^x" timeout 1 s)", false, "timeout",
     "no reply from 127.0.0.1:{port} within 1 s"},
    {"generic-close", R"(expect "hello" expect "more")", false, "protocol",
     R"(server closed the connection before a line matching "more")"},
    {"generic-long-line", R"(expect "q")", false, "protocol",
     "line too long (more than 65536 bytes)"},
    {"generic-starttls",
     R"(expect "^200 ready" send "TLS\r\n" expect "^200 go" starttls send "PING\r\n" )"
     R"(expect "PONG")",
     true, "none", ""},
    {"generic-tls", R"(ssl expect "^200 secure")", true, "none", ""},
    {"generic-close", R"(ssl expect "hello")", false, "tls",
     "TLS handshake failed: wrong version number"},
    {"smtps-expiring10", R"(ssl certificate valid > 30 days)", false, "certificate",
     "certificate expires in 9 days (the rule wants more than 30)"},

// ---- http, https ---------------------------------------------------------------------------
#define MTA_STS R"(protocol http request "/.well-known/mta-sts.txt" )"
    {"http-mta-sts", MTA_STS R"(content = "version: STSv1")", true, "none", ""},
    {"http-mta-sts", MTA_STS R"(content = "^mode: enforce\r$")", false, "content",
     R"(GET /.well-known/mta-sts.txt: the body does not match "^mode: enforce\r$")"},
    {"http-mta-sts", MTA_STS R"(content = "(?m)^mode: enforce\r$")", true, "none", ""},
    {"http-mta-sts", MTA_STS R"(content != "mode: testing")", true, "none", ""},
    {"http-mta-sts", MTA_STS R"(content != "mode: enforce")", false, "content",
     R"(GET /.well-known/mta-sts.txt: the body matches "mode: enforce")"},
    {"http-mta-sts", MTA_STS "checksum md5 230a6dc89f538c0ae0c6530dd8a16f61", true, "none", ""},
    {"http-mta-sts", MTA_STS "checksum 230a6dc89f538c0ae0c6530dd8a16f60", false, "content",
     "GET /.well-known/mta-sts.txt: the body's md5 checksum is 230a6dc89f538c0ae0c6530dd8a16f61, "
     "expected 230a6dc89f538c0ae0c6530dd8a16f60"},
    {"http-mta-sts", MTA_STS "status = 200", true, "none", ""},
    {"http-404", "protocol http", false, "rejected", "GET / answered HTTP/1.1 404 Not Found"},
    {"http-404", "protocol http status = 404", true, "none", ""},
    {"http-404", "protocol http status < 500", true, "none", ""},
    {"http-redirect", "protocol http", true, "none", ""},
    {"http-redirect", "protocol http status = 200", false, "content",
     "GET / answered HTTP/1.1 301 Moved Permanently (the rule wants status = 200)"},
    {"http-chunked",
     R"(protocol http request "/mail/config-v1.1.xml" hostheader "autoconfig.example.net" )"
     R"(content = "<incomingServer type=\"imap\"" )"
     "checksum sha256 789f301ea29b9f3e5d32bf9df84f90e8842112460981986afb859f26e8c48545",
     true, "none", ""},
    {"http-huge", R"(protocol http content = "^<html>x+$")", true, "none", ""},
    {"http-huge", "protocol http checksum md5 230a6dc89f538c0ae0c6530dd8a16f61", false, "content",
     "GET /: the body is larger than 1 MiB; its checksum is not computed"},
    {"http-huge", "protocol http", true, "none", ""},
    {"http-until-close", R"(protocol http content = "Roundcube")", true, "none", ""},
    {"http-garbage-status", "protocol http", false, "protocol",
     R"(not an HTTP status line: "SSH-2.0-OpenSSH_9.2p1 Debian-2")"},
    {"http-slow", "protocol http timeout 1 s", false, "timeout",
     "no reply from 127.0.0.1:{port} within 1 s"},
    {"http-bad-chunk", R"(protocol http content = "x")", false, "protocol",
     R"(bad chunk size line: "zz")"},
    {"https-ok", "protocol https certificate valid > 30 days", true, "none", ""},
    {"https-ok", R"(protocol https hostheader "wrong.example")", false, "tls", "{any}"},
    {"https-auth",
     R"(protocol https hostheader "localhost" username "alice" password "pw" )"
     R"(with http headers [X-Probe: mailwarden])",
     true, "none", ""},

    // ---- services next to mail -----------------------------------------------------------------
    {"ssh-ok", "protocol ssh", true, "none", ""},
    {"ssh-v1", "protocol ssh", false, "protocol",
     R"(server speaks an SSH version other than 2.0: "SSH-1.5-OldSSH")"},
    {"http-404", "protocol ssh timeout 1 s", false, "timeout",
     "no reply from 127.0.0.1:{port} within 1 s"},
    {"ftp-ok", "protocol ftp", true, "none", ""},
    {"ftp-busy", "protocol ftp", false, "rejected",
     "server refused the session: 421 There are too many connected users, please try later."},
    {"ssh-ok", "protocol ftp", false, "protocol", R"(not an FTP reply: "Debian GNU/Linux 12")"},
    {"nntp-ok", "protocol nntp", true, "none", ""},
    {"redis-ok", "protocol redis", true, "none", ""},
    {"redis-loading", "protocol redis", false, "rejected",
     "PING answered -LOADING Redis is loading the dataset in memory"},
    {"memcache-ok", "protocol memcache", true, "none", ""},
    {"clamav-ok", "protocol clamav", true, "none", ""},
    {"redis-ok", "protocol clamav", false, "protocol",
     R"(server closed the connection while waiting for a reply)"},
    {"spamassassin-ok", "protocol spamassassin", true, "none", ""},
    {"postfix-policy-ok", "protocol postfix-policy", true, "none", ""},
    {"pgsql-ok", "protocol pgsql", true, "none", ""},
    {"mysql-ok", "protocol mysql", true, "none", ""},
    {"mysql-refused", "protocol mysql", false, "rejected",
     "server refused the session: Host '10.0.0.9' is not allowed to connect to this"},
    {"ldap-ok", "protocol ldap3", true, "none", ""},
    {"ldap-refused", "protocol ldap3", false, "rejected",
     "anonymous bind refused: inappropriateAuthentication (anonymous bind disallowed)"},
    {"ssh-ok", "protocol ldap3", false, "protocol", R"(not an LDAP answer (it starts with "De"))"},
    {"dns-wrong-id", "protocol dns", false, "protocol", "DNS answer for another query {any}"},
    {"generic-silence", "protocol mongodb", true, "none", ""},
};

}  // namespace

TEST_GROUP(ProtocolDialogues){};

TEST(ProtocolDialogues, EveryScenarioHasItsExactOutcome) {
  int ran = 0;
  std::string failures = mwtest::run_scenarios(std::begin(kScenarios), std::end(kScenarios), ran);
  LONGS_EQUAL(sizeof kScenarios / sizeof kScenarios[0], ran);
  if (!failures.empty()) FAIL(failures.c_str());
}

TEST(ProtocolDialogues, PopPasswordNeverInTheClearWithoutAllowPlaintext) {
  // The rule is refused before anything is sent.
  std::string errors;
  auto config = mwtest::parse_text(
      "check host peer with address 127.0.0.1\n"
      "  if failed port 110 protocol pop username \"alice\" password \"s3cret\" then alert\n",
      &errors);
  CHECK(config == nullptr);
  CHECK_TEXT(errors.find("would cross an unencrypted connection") != std::string::npos,
             errors.c_str());
}

TEST(ProtocolDialogues, SmtpRelayProbeNeverSendsData) {
  mwtest::Loop loop;
  auto peer = mwtest::ScriptedPeer::from_file(
      loop.base.get(), mwtest::srcdir() + "/tests/peers/scripts/smtp-open-relay.peer");
  auto config = mwtest::parse_text(
      "check host peer with address 127.0.0.1\n"
      "  if failed port " +
      std::to_string(peer.port()) +
      " protocol smtp mail from \"probe@example.test\" rcpt to \"x@elsewhere.test\" expect reject "
      "then alert\n");
  CHECK(config != nullptr);
  mw::CheckResult r = mwtest::run_check(loop, config);
  CHECK(!r.ok);
  for (const auto& line : peer.received())
    CHECK_TEXT(line != "DATA", "DATA was sent during a relay probe");
}

// ---- the credentials file --------------------------------------------------------------------

namespace {

struct CredCase {
  const char* name;
  const char* text;
  int mode;
  const char* want;  // "ok N" (entries) or "LINE: message" ({file} is the path)
};

const CredCase kCredCases[] = {
    {"good",
     "probe: { username = \"alice@example.test\"; password = \"secret\"; };\n"
     "backend1: { username = \"user0001\"; masteruser = \"master\"; password = \"masterpw\"; };\n",
     0600, "ok 2"},
    {"readable", "probe: { username = \"a\"; password = \"b\"; };\n", 0640,
     "0: credentials file is accessible by group or others (mode 0640); run: chmod 600 {file}"},
    {"syntax", "probe: { username = \"a\"; password = ; };\n", 0600, "1: syntax error"},
    {"unclosed", "probe: { username = \"a\"; password = \"b\"; };\nother: {\n", 0600,
     "3: syntax error"},
    {"unknown-field", "probe: {\n  user = \"a\";\n  password = \"b\";\n};\n", 0600,
     "2: unknown field 'user' in entry 'probe' (expected username, password or masteruser)"},
    {"no-password", "probe: {\n  username = \"a\";\n};\n", 0600,
     "1: entry 'probe' has no password"},
    {"not-string", "probe: { username = \"a\"; password = 1234; };\n", 0600,
     "1: field 'password' of entry 'probe' must be a string in double quotes"},
    {"include", "# logins\n  @include \"/etc/shadow\"\n", 0600,
     "2: @include is not allowed in a credentials file"},
};

}  // namespace

TEST_GROUP(CredentialsFile){};

TEST(CredentialsFile, EveryCaseHasItsExactOutcome) {
  std::string failures;
  for (const auto& c : kCredCases) {
    std::string path = mwtest::write_file(std::string("creds-") + c.name + ".cfg", c.text, c.mode);
    mw::config::Location at;
    std::string error;
    auto file = mw::config::CredentialsFile::load(path, at, error);
    std::string got =
        file ? "ok " + std::to_string(file->size()) : std::to_string(at.line) + ": " + error;
    std::string want = c.want;
    if (auto pos = want.find("{file}"); pos != std::string::npos) want.replace(pos, 6, path);
    if (got != want)
      failures += std::string("\n") + c.name + ":\n  want: " + want + "\n  got:  " + got;
  }
  if (!failures.empty()) FAIL(failures.c_str());
}

TEST(CredentialsFile, AnEntryBecomesTheLoginOfTheTest) {
  std::string creds = mwtest::write_file("creds-apply.cfg",
                                         "backend1: { username = \"user0001\"; masteruser = "
                                         "\"master\"; password = \"masterpw\"; };\n");
  std::string errors;
  // The use comes before `set credentials`: the file is read once the whole file is parsed.
  auto config = mwtest::parse_text(
      "check host b1 with address 127.0.0.1\n"
      "  if failed port 993 protocol imaps credentials \"backend1\" then alert\n"
      "set credentials \"" +
          creds + "\"\n",
      &errors);
  CHECK_TEXT(config != nullptr, errors.c_str());
  const auto& chk = config->services.at(0).checks.at(0);
  const auto& pc = *chk.as<mw::config::PortCheck>();
  STRCMP_EQUAL("user0001", pc.options.username.c_str());
  STRCMP_EQUAL("master", pc.options.authzid.c_str());
  STRCMP_EQUAL("masterpw", pc.options.password.c_str());
  STRCMP_EQUAL("imaps 127.0.0.1:993 as user0001 via master", chk.description.c_str());
  STRCMP_EQUAL("imaps 127.0.0.1:993 credentials backend1", chk.id.c_str());
}

// ---- the POP3 client's mail commands (the delivery check receives mail through them) ---------

namespace {

struct PopRun {
  mw::pop::Maildrop drop;
  std::vector<mw::pop::ListEntry> list;
  std::vector<mw::pop::UidlEntry> uidl;
  std::string message;
  std::string missing_error;
};

mw::Task<void> pop_commands(mw::Connection& conn, uint16_t port, PopRun& out) {
  mw::Endpoint ep;
  ep.host = "127.0.0.1";
  ep.port = port;
  co_await conn.connect(ep);
  mw::pop::Session pop(conn);
  co_await pop.greeting();
  co_await pop.capa();
  co_await pop.login("alice", "pw");
  out.drop = co_await pop.stat();
  out.list = co_await pop.list();
  out.uidl = co_await pop.uidl();
  out.message = co_await pop.retr(2);
  co_await pop.dele(2);
  try {
    (void)co_await pop.retr(3);
  } catch (const mw::ProbeError& e) {
    out.missing_error = e.what();
  }
  co_await pop.quit();
}

}  // namespace

TEST(ProtocolDialogues, PopClientMailCommands) {
  mwtest::Loop loop;
  auto peer = mwtest::ScriptedPeer::from_file(
      loop.base.get(), mwtest::srcdir() + "/tests/peers/scripts/pop-maildrop.peer");
  mw::Scope scope(loop.base.get());
  scope.set_deadline(10000);
  mw::Connection conn(loop.io, scope, mw::ConnectionOptions{});
  PopRun run;
  bool done = false;
  std::string error;
  mw::start_detached(pop_commands(conn, peer.port(), run), [&](std::exception_ptr e) {
    done = true;
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        error = x.what();
      }
    }
  });
  for (int i = 0; i < 100 && !done; ++i) {
    timeval tv{0, 100000};
    event_base_loopexit(loop.base.get(), &tv);
    event_base_dispatch(loop.base.get());
  }
  CHECK(done);
  STRCMP_EQUAL("", error.c_str());
  LONGS_EQUAL(2, run.drop.messages);
  LONGS_EQUAL(320, run.drop.octets);
  LONGS_EQUAL(2, run.list.size());
  LONGS_EQUAL(200, run.list[1].octets);
  LONGS_EQUAL(2, run.uidl.size());
  STRCMP_EQUAL("00000002b", run.uidl[1].uid.c_str());
  STRCMP_EQUAL("Subject: probe\r\n\r\n.leading dot\r\n.\r\nend\r\n", run.message.c_str());
  STRCMP_EQUAL("RETR 3 refused: -ERR There's no message 3.", run.missing_error.c_str());
  CHECK(peer.errors().empty());
}
