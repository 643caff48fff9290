// check delivery: its URLs as data (schemes, ports, percent-decoding, passwords never shown),
// the comparison that tells an altered probe from a delivered one, and runs against scripted
// peers (tests/peers/scripts/delivery-*.peer) and drop directories with the exact outcome and the
// step that failed. The real round trips (Postfix -> LMTP -> Dovecot) are in
// tests/integration/test_delivery.py.
#include "tests/peers/peer.h"  // before CppUTest: its new macros break STL headers

#include <CppUTest/TestHarness.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "checks/delivery/message.h"
#include "checks/delivery/receivers.h"
#include "net/failure.h"
#include "support.h"

// nlohmann::json has no CppUTest StringFrom: compare the dumps (which show in a failure).
#define JSON_EQUAL(want, got) STRCMP_EQUAL(json(want).dump().c_str(), json(got).dump().c_str())

namespace {

using mw::checks::delivery::alteration;
using mw::checks::delivery::probe_message;
using nlohmann::json;

// ---- URLs -----------------------------------------------------------------------------------

struct UrlCase {
  const char* side;  // "send" or "receive"
  const char* url;
  // The parsed URL "shown | scheme tls host:port | user | password | path", or the parser's
  // message after "file:line:col: ".
  const char* want;
};

const UrlCase kUrls[] = {
    {"send", "smtp://mx.example.net",
     "smtp://mx.example.net:25 | smtp none mx.example.net:25 |  |  | "},
    {"send", "smtps://mx.example.net",
     "smtps://mx.example.net:465 | smtps implicit mx.example.net:465 |  |  | "},
    {"send", "SMTP+STARTTLS://mx.example.net:2525",
     "smtp+starttls://mx.example.net:2525 | smtp+starttls starttls mx.example.net:2525 |  |  | "},
    {"send", "smtpstarttls://probe%40example.net:s%3Ac%25ret%20x@mx:587",
     "smtp+starttls://probe%40example.net@mx:587 | smtp+starttls starttls mx:587 | "
     "probe@example.net | s:c%ret x | "},
    {"send", "submission://u:p@[2001:db8::25]",
     "smtp+starttls://u@[2001:db8::25]:587 | smtp+starttls starttls 2001:db8::25:587 | u | p | "},
    {"send", "file:///var/spool/out/",
     "file:///var/spool/out/ | file none :0 |  |  | /var/spool/out"},
    {"send", "file://localhost/var/spool/a%20b",
     "file:///var/spool/a%20b | file none :0 |  |  | /var/spool/a b"},
    {"receive", "imaps://alice%40example.net:pw@imap.example.net",
     "imaps://alice%40example.net@imap.example.net:993/INBOX | imaps implicit "
     "imap.example.net:993 | alice@example.net | pw | INBOX"},
    {"receive", "imap://a:p@imap/Probes%2FIn",
     "imap://a@imap:143/Probes/In | imap none imap:143 | a | p | Probes/In"},
    {"receive", "imapstarttls://a:p@imap:1143/",
     "imap+starttls://a@imap:1143/INBOX | imap+starttls starttls imap:1143 | a | p | INBOX"},
    {"receive", "pop3://a:p@pop", "pop3://a@pop:110 | pop3 none pop:110 | a | p | "},
    {"receive", "pop3s://a:p@pop", "pop3s://a@pop:995 | pop3s implicit pop:995 | a | p | "},
    {"receive", "ftps://u:p@ftp/in/", "ftps://u@ftp:21/in | ftps starttls ftp:21 | u | p | in"},
    {"send", "ftp://u:p@ftp", "ftp://u@ftp:21 | ftp none ftp:21 | u | p | "},
    {"send", "irc://irc/alerts", "irc://irc:6667/#alerts | irc none irc:6667 |  |  | #alerts"},
    {"receive", "ircs://nick@irc:7000/#ops",
     "irctls://nick@irc:7000/#ops | irctls implicit irc:7000 | nick |  | #ops"},
    // Mistakes.
    {"send", "smtq://mx",
     "unknown URL scheme 'smtq' (known: smtp, smtps, smtp+starttls, imap, "
     "imaps, imap+starttls, pop3, pop3s, pop3+starttls, file, ftp, ftps, irc, irctls); did you "
     "mean "
     "'smtp'?"},
    {"send", "mx.example.net:25",
     "expected a URL such as imaps://host:993 or file:///path, got "
     "\"mx.example.net:25\""},
    {"send", "smtps://a%4:p@mx",
     "in the user name: '%' must be followed by two hex digits (write %25 for a percent sign)"},
    {"send", "smtps://a:p%0a@mx", "in the password: %00, %0D and %0A are not allowed"},
    {"send", "smtps://:p@mx", "the URL has an '@' but no user name before it"},
    {"send", "smtps://u:@mx",
     "the URL's password is empty (leave out the ':' or give the password)"},
    {"send", "smtps://mx:", "the URL has a ':' but no port after it"},
    {"send", "smtps://mx:0", "the port must be between 1 and 65535, got 0"},
    {"send", "smtps://mx:25x", "the port must be a number, got '25x'"},
    {"send", "smtps://[::1", "unterminated IPv6 address (missing ']')"},
    {"send", "smtps://", "the URL names no host"},
    {"send", "smtps://mx/INBOX",
     "only imap, ftp and irc URLs take a path (the mailbox, directory or channel); this smtps "
     "URL cannot"},
    {"send", "smtps://mx/#x", "a URL here takes no query or fragment (?... or #...)"},
    {"send", "file://host/tmp", "a file URL names a local directory: file:///path (no host)"},
    {"send", "file://", "a file URL needs a directory: file:///var/spool/probe"},
    {"send", "pop3s://a:p@pop",
     "send via an smtp://, smtps://, smtp+starttls://, file:///, ftp://, ftps://, irc:// or "
     "irctls:// URL"},
    {"receive", "smtps://mx", "receive via an imap, pop3, file, ftp or irc URL (smtp only sends)"},
    {"receive", "imaps://imap",
     "receiving needs a login: put it in the URL "
     "(imaps://user%40domain:pw@host) or say credentials \"NAME\""},
    {"receive", "imaps://a@imap", "the URL's user a has no password (user:password@host)"},
};

std::string parse_url_case(const UrlCase& c, std::string& shown_all) {
  std::string send = std::string(c.side) == "send" ? c.url : "file:///tmp/out";
  std::string receive = std::string(c.side) == "receive" ? c.url : "file:///tmp/in";
  std::string errors;
  auto cfg = mwtest::parse_text("check delivery d\n  send via \"" + send +
                                    "\" from \"a@example.net\" to \"b@example.net\"\n"
                                    "  receive via \"" +
                                    receive + "\"\n  allow plaintext\n  if failed then alert\n",
                                &errors);
  if (!cfg) {
    auto first = errors.substr(0, errors.find('\n'));
    // "PATH:LINE:COL: message"
    size_t at = 0;
    for (int colons = 0; colons < 3 && at != std::string::npos; ++colons)
      at = first.find(':', at + (colons ? 1 : 0));
    return at == std::string::npos ? first : first.substr(at + 2);
  }
  const auto& chk = cfg->services.at(0).checks.at(0);
  const auto& dc = *chk.as<mw::config::DeliveryCheck>();
  const auto& u = std::string(c.side) == "send" ? dc.send : dc.receive;
  const char* tls = u.tls_mode == mw::config::TlsMode::none       ? "none"
                    : u.tls_mode == mw::config::TlsMode::implicit ? "implicit"
                                                                  : "starttls";
  shown_all = chk.description + " " + u.shown + " " + cfg->services.at(0).name;
  return u.shown + " | " + u.scheme + " " + tls + " " + u.endpoint.host + ":" +
         std::to_string(u.endpoint.port) + " | " + u.username + " | " + u.password + " | " + u.path;
}

// ---- runs against peers and directories -----------------------------------------------------

std::string make_dir(const std::string& name) {
  static int counter = 0;
  std::string dir = mwtest::tmpdir() + "/" + name + "-" + std::to_string(++counter);
  mkdir(dir.c_str(), 0700);
  return dir;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') out.emplace_back(e->d_name);
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Scenario {
  const char* send;     // a script, or "file" (a drop directory that nothing reads)
  const char* receive;  // a script (IMAP unless it starts with "delivery-pop", "delivery-ftp"
                        // or "delivery-irc"), or "file"
  const char* clauses;
  bool ok;
  const char* cls;
  const char* message;  // {send} and {receive}: the URLs as shown
  const char* failed_step;
};

const Scenario kScenarios[] = {
    {"file", "delivery-imap-twice", "", false, "content",
     "found: the probe message arrived 2 times", "found"},
    {"file", "delivery-imap-altered", "", false, "content",
     "found: the probe message arrived altered: its X-Mailwarden-Probe header was changed",
     "found"},
    {"file", "delivery-imap-vanished", "", false, "content",
     "found: the probe message (UID 7) vanished before it could be read", "found"},
    {"file", "delivery-imap-search-garbage", "", false, "protocol",
     "wait: malformed SEARCH response: \"* SEARCH 7 x\"", "wait"},
    {"file", "delivery-imap-select-refused", "", false, "rejected",
     "connect: cannot select Probes: mw2 NO [NONEXISTENT] Mailbox doesn't exist: Probes",
     "connect"},
    {"file", "delivery-imap-bye-in-idle", "", false, "rejected",
     "wait: server ended the IDLE: * BYE Server shutting down.", "wait"},
    {"file", "delivery-imap-never", "  within 1 s\n", false, "content",
     "wait: the probe message did not arrive within 1 s at {receive}", "wait"},
    {"file", "delivery-pop-login-refused", "", false, "auth",
     "connect: login as alice failed: -ERR [AUTH] Authentication failed.", "connect"},
    {"delivery-smtp-rcpt-refused", "file", "", false, "rejected",
     "send: RCPT TO:<alice@example.test> refused: 550 5.1.1 <alice@example.test>: Recipient "
     "address rejected: User unknown",
     "send"},
    {"delivery-smtp-close-in-data", "file", "", false, "protocol",
     "send: server closed the connection while waiting for a reply", "send"},
    {"delivery-smtp-no-starttls", "file", "", false, "missing-feature",
     "send: server does not offer STARTTLS", "send"},
    {"file", "delivery-ftp-login-refused", "", false, "auth",
     "connect: login of alice refused: 530 Login incorrect.", "connect"},
    {"file", "delivery-ftp-bad-pasv", "", false, "protocol",
     "connect: malformed PASV reply: \"227 Entering Passive Mode (127,0,0,1,300,2).\"", "connect"},
    {"file", "delivery-irc-hostile", "", false, "protocol",
     "wait: line too long (more than 512 bytes)", "wait"},
    {"file", "delivery-irc-banned", "", false, "rejected",
     "connect: JOIN #alerts refused: 474 #alerts Cannot join channel (+b) -- you are banned",
     "connect"},
    {"file", "delivery-irc-error", "", false, "rejected",
     "connect: server closed the session: Closing connection: too many connections from your "
     "host",
     "connect"},
};

struct Run {
  mw::CheckResult result;
  std::string want;
  std::string errors;
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

Run play(const Scenario& s) {
  mwtest::Loop loop;
  auto peer_for = [&](const std::string& script) -> std::unique_ptr<mwtest::ScriptedPeer> {
    if (script == "file") return nullptr;
    return std::make_unique<mwtest::ScriptedPeer>(mwtest::ScriptedPeer::from_file(
        loop.base.get(), mwtest::srcdir() + "/tests/peers/scripts/" + script + ".peer"));
  };
  auto sender = peer_for(s.send);
  auto receiver = peer_for(s.receive);
  std::string send_url, receive_url;
  if (sender) {
    bool starttls = std::string(s.send).find("starttls") != std::string::npos;
    send_url = std::string(starttls ? "smtp+starttls" : "smtp") +
               "://127.0.0.1:" + std::to_string(sender->port());
  } else {
    send_url = "file://" + make_dir("out");
  }
  if (receiver && std::string(s.receive).rfind("delivery-ftp", 0) == 0) {
    receive_url = "ftp://alice:pw@127.0.0.1:" + std::to_string(receiver->port()) + "/drop";
  } else if (receiver && std::string(s.receive).rfind("delivery-irc", 0) == 0) {
    receive_url = "irc://127.0.0.1:" + std::to_string(receiver->port()) + "/alerts";
  } else if (receiver) {
    bool pop = std::string(s.receive).rfind("delivery-pop", 0) == 0;
    bool probes = std::string(s.receive).find("select-refused") != std::string::npos;
    receive_url = std::string(pop ? "pop3" : "imap") +
                  "://alice:pw@127.0.0.1:" + std::to_string(receiver->port()) +
                  (probes ? "/Probes" : "");
  } else {
    receive_url = "file://" + make_dir("in");
  }
  std::string text = "check delivery d\n  send via \"" + send_url +
                     "\" from \"probe@example.test\" to \"alice@example.test\"\n"
                     "  receive via \"" +
                     receive_url + "\"\n  allow plaintext\n  timeout 2 s\n" + s.clauses +
                     "  if failed then alert\n";
  Run run;
  auto cfg = mwtest::parse_text(text, &run.errors);
  if (!cfg) return run;
  const auto& dc = *cfg->services[0].checks[0].as<mw::config::DeliveryCheck>();
  run.want =
      std::string(s.ok ? "ok" : "failed") + " " + s.cls + " " +
      replace_all(replace_all(s.message, "{send}", dc.send.shown), "{receive}", dc.receive.shown) +
      " @" + s.failed_step;
  run.result = mwtest::run_check(loop, cfg);
  // The peers' scripts describe exactly what the check must say, also when it fails.
  for (const auto* p : {sender.get(), receiver.get()})
    if (p)
      for (const auto& e : p->errors()) run.errors += "\n    peer: " + e;
  return run;
}

std::string got_text(const mw::CheckResult& r) {
  std::string step = r.details.is_object() && r.details.contains("failed_step")
                         ? r.details["failed_step"].get<std::string>()
                         : "";
  return std::string(r.ok ? "ok" : "failed") + " " + mw::failure_class_name(r.cls) + " " +
         r.message + " @" + step;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_GROUP(DeliveryUrls){};

TEST(DeliveryUrls, EveryUrlParsesToItsFieldsOrItsMessage) {
  std::string failures;
  for (const auto& c : kUrls) {
    std::string shown;
    std::string got = parse_url_case(c, shown);
    if (got != c.want)
      failures +=
          std::string("\n") + c.side + " " + c.url + ":\n  want: " + c.want + "\n  got:  " + got;
    // Passwords never reach the description, the service name or the URL as shown.
    for (const char* secret : {"s:c%ret", "s%3Ac", ":pw@", ":p@"})
      if (!shown.empty() && shown.find(secret) != std::string::npos)
        failures += std::string("\n") + c.url + ": password shown in \"" + shown + "\"";
  }
  if (!failures.empty()) FAIL(failures.c_str());
}

TEST_GROUP(DeliveryMessage){};

TEST(DeliveryMessage, TheProbeAsSentIsNotAltered) {
  std::string token(64, 'a');
  std::string m = probe_message("probe@example.test", "alice@example.test", token, 1700000000);
  CHECK_EQUAL(std::string(""), alteration(m, token));
  CHECK(mw::checks::delivery::carries_token(m, token));
  CHECK_FALSE(mw::checks::delivery::carries_token(m, std::string(64, 'b')));
  CHECK(m.find("Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n") != std::string::npos);
}

TEST(DeliveryMessage, WhatTransportsDoOnTheWayIsNoAlteration) {
  std::string token(64, 'c');
  std::string m = probe_message("p@x", "a@y", token, 0);
  // Headers added in front, CRLF turned into LF, padding at the line ends, a blank line at
  // the end, the token header folded.
  std::string lf = replace_all(m, "\r\n", "\n");
  std::string stamped = "Return-Path: <p@x>\nReceived: from mx by imap\n\tfor <a@y>\n" + lf;
  CHECK_EQUAL(std::string(""), alteration(stamped, token));
  std::string padded = replace_all(m, token + "\r\n.a line that starts with a dot\r\n",
                                   token + " \r\n.a line that starts with a dot\t\r\n\r\n");
  CHECK(padded != m);
  CHECK_EQUAL(std::string(""), alteration(padded, token));
  std::string folded = replace_all(m, "X-Mailwarden-Probe: ", "X-Mailwarden-Probe:\r\n ");
  CHECK_EQUAL(std::string(""), alteration(folded, token));
}

TEST(DeliveryMessage, EachAlterationIsNamed) {
  std::string token(64, 'd');
  std::string m = probe_message("p@x", "a@y", token, 0);
  CHECK_EQUAL(std::string("its X-Mailwarden-Probe header is missing"),
              alteration(replace_all(m, "X-Mailwarden-Probe", "X-Other"), token));
  CHECK_EQUAL(std::string("its X-Mailwarden-Probe header was changed"),
              alteration(m, std::string(64, 'e')));
  CHECK_EQUAL(std::string("its X-Mailwarden-Probe header was changed"),
              alteration("X-Mailwarden-Probe: " + token + "\r\n" + m, token));
  CHECK_EQUAL(std::string("its body is cut short after line 4 of 5"),
              alteration(replace_all(m, ".a line that starts with a dot\r\n", ""), token));
  CHECK_EQUAL(std::string("its body has 2 more line(s) than was sent, from line 6: \"--\""),
              alteration(m + "-- \r\nfooter\r\n", token));
  CHECK_EQUAL(std::string("body line 5 is \"a line that starts with a dot\" instead of \".a line "
                          "that starts with a dot\""),
              alteration(replace_all(m, "\r\n.a line", "\r\na line"), token));
}

TEST_GROUP(DeliveryDialogues){};

TEST(DeliveryDialogues, EveryScenarioHasItsExactOutcomeAndStep) {
  std::string failures;
  for (const auto& s : kScenarios) {
    Run r = play(s);
    std::string got = got_text(r.result);
    if (got != r.want || !r.errors.empty())
      failures += std::string("\n") + s.send + " -> " + s.receive + ":\n  want: " + r.want +
                  "\n  got:  " + got + r.errors;
  }
  if (!failures.empty()) FAIL(failures.c_str());
}

TEST(DeliveryDialogues, FailedStepsAreTimedAndNoLatencyIsReported) {
  Run r = play(kScenarios[8]);  // RCPT refused
  json steps = r.result.details["steps_ms"];
  CHECK(steps.contains("connect"));
  CHECK(steps.contains("send"));
  CHECK_FALSE(steps.contains("wait"));
  CHECK_FALSE(r.result.details.contains("delivery_ms"));
  CHECK(r.result.metrics.empty());
  CHECK_EQUAL(64u, r.result.details["token"].get<std::string>().size());
}

TEST(DeliveryDialogues, ALateProbeOfAnEarlierRunIsRemovedByTheNextGoodRun) {
  mwtest::Loop loop;
  std::string out = make_dir("late-out"), in = make_dir("late-in");
  auto text = [](const std::string& send, const std::string& receive) {
    return "check delivery d\n  send via \"file://" + send +
           "\" from \"p@example.test\" to \"a@example.test\"\n  receive via \"file://" + receive +
           "\"\n  within 1 s\n  if failed then alert\n";
  };
  // Run 1: the probe goes to `out` and nothing moves it to `in`.
  mw::CheckResult first = mwtest::run_check(loop, mwtest::parse_text(text(out, in)));
  CHECK_FALSE(first.ok);
  std::string token = first.details["token"];
  JSON_EQUAL(json({token}), first.memory["unfound"]);
  // It arrives late.
  auto files = list_dir(out);
  CHECK_EQUAL(1u, files.size());
  CHECK_EQUAL(0, rename((out + "/" + files[0]).c_str(), (in + "/" + files[0]).c_str()));
  CHECK(slurp(in + "/" + files[0]).find(token) != std::string::npos);
  // Run 2 delivers straight into `in`, and takes the late one away with its own.
  mw::CheckResult second =
      mwtest::run_check(loop, mwtest::parse_text(text(in, in)), 0, first.memory);
  CHECK_TEXT(second.ok, second.message.c_str());
  JSON_EQUAL(json::array(), second.memory["unfound"]);
  CHECK(list_dir(in).empty());
}

TEST(DeliveryDialogues, TheDropFileAppearsWholeUnderItsFinalName) {
  std::string dir = make_dir("drop");
  mw::checks::delivery::drop_file(dir, std::string(64, 'f'), "Subject: x\r\n\r\nbody\r\n");
  auto names = list_dir(dir);
  CHECK_EQUAL(1u, names.size());
  CHECK_EQUAL(std::string("mailwarden-") + std::string(64, 'f') + ".eml", names[0]);
  CHECK_EQUAL(std::string("Subject: x\r\n\r\nbody\r\n"), slurp(dir + "/" + names[0]));
  // A directory that cannot be written is the send step's failure, named.
  try {
    mw::checks::delivery::drop_file(dir + "/missing", std::string(64, 'f'), "x");
    FAIL("drop_file into a missing directory did not throw");
  } catch (const mw::ProbeError& e) {
    CHECK_EQUAL(std::string("cannot create ") + dir + "/missing/.mailwarden-" +
                    std::string(64, 'f') + ".tmp: No such file or directory",
                std::string(e.what()));
  }
}
