// Alerts and actions: the mail builder as data (inputs -> exact message text), the alert
// statements as data (tests/unit/config/alerts/*.rc -> *.expected), the rate limiter, the event
// queue on disk, the mailer against scripted mail servers (tests/peers/scripts/mail-*.peer),
// the dispatcher's reminders, filters, repeats and rate limits, and exec timeouts.
#include <CppUTest/TestHarness.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "actions/dispatcher.h"
#include "actions/event_queue.h"
#include "actions/mail_message.h"
#include "actions/mailer.h"
#include "actions/rate_limit.h"
#include "config_cases.h"
#include "support.h"
#include "tests/peers/peer.h"
#include "util/files.h"
#include "util/strings.h"

namespace {

using mw::actions::Outgoing;
namespace mail = mw::actions::mail;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string crlf(const std::string& lf_text) {
  std::string out;
  for (char c : lf_text) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

// Runs the loop until `done` holds or `ms` pass.
bool run_until(mwtest::Loop& loop, const std::function<bool()>& done, int ms) {
  auto start = std::chrono::steady_clock::now();
  while (!done()) {
    if (std::chrono::steady_clock::now() - start > std::chrono::milliseconds(ms)) return false;
    timeval tv{0, 20000};
    event_base_loopexit(loop.base.get(), &tv);
    event_base_dispatch(loop.base.get());
  }
  return true;
}

const mwtest::TestCerts& certs() {
  static const mwtest::TestCerts c = mwtest::TestCerts::create(mwtest::tmpdir() + "/alert-certs");
  return c;
}

mwtest::ScriptedPeer peer(mwtest::Loop& loop, const std::string& script) {
  mwtest::PeerOptions opts;
  opts.certs = &certs();
  return mwtest::ScriptedPeer::from_file(
      loop.base.get(), mwtest::srcdir() + "/tests/peers/scripts/" + script + ".peer", opts);
}

uint16_t free_port() {
  mwtest::Loop loop;
  mwtest::ScriptedPeer p(loop.base.get(), "hang\n");
  return p.port();
}

Outgoing small_mail(const std::string& to, const std::string& subject, const std::string& body) {
  Outgoing m;
  m.mail_from = "mw@example.test";
  m.rcpt_to = to;
  m.summary = subject;
  m.message = "Subject: " + subject + "\r\n\r\n" + body + "\r\n";
  return m;
}

std::shared_ptr<const mw::config::Config> config(const std::string& text) {
  std::string errors;
  auto c = mwtest::parse_text(
      "set ssl options { cacertificatefile: " + certs().ca_file + " }\n" + text, &errors);
  if (!c) FAIL(("control text rejected: " + errors).c_str());
  return c;
}

std::vector<std::string> dir_names(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.size() >= suffix.size() &&
          n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
        out.push_back(n);
    }
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// ---- the message builder ------------------------------------------------------------------

TEST_GROUP(MailMessage){};

TEST(MailMessage, DefaultFormatGivesMonitsMessage) {
  mw::config::AlertRecipient to;
  to.address = "alice@example.test";
  mail::Variables v{"failed",
                    "imap",
                    "2026-11-25 18:34:35",
                    "mw.example.test",
                    "alert",
                    "imap 127.0.0.1:143 failed: connect: cannot connect to 127.0.0.1:143: "
                    "Connection refused"};
  mail::Parts p =
      mail::compose({}, to, v, "Wed, 25 Nov 2026 18:34:35 +0000", "<1.2.3@mw.example.test>");
  STRCMP_EQUAL(crlf("Date: Wed, 25 Nov 2026 18:34:35 +0000\n"
                    "From: mailwarden@mw.example.test\n"
                    "To: alice@example.test\n"
                    "Subject: mailwarden alert --  failed imap\n"
                    "Message-ID: <1.2.3@mw.example.test>\n"
                    "MIME-Version: 1.0\n"
                    "Content-Type: text/plain; charset=UTF-8\n"
                    "Content-Transfer-Encoding: 7bit\n"
                    "Auto-Submitted: auto-generated\n"
                    "\n"
                    "failed Service imap\n"
                    "\n"
                    "        Date:        2026-11-25 18:34:35\n"
                    "        Action:      alert\n"
                    "        Host:        mw.example.test\n"
                    "        Description: imap 127.0.0.1:143 failed: connect: cannot connect to "
                    "127.0.0.1:143: Connection refused\n"
                    "\n"
                    "Your faithful employee,\n"
                    "mailwarden\n")
                   .c_str(),
               mail::build(p).c_str());
}

TEST(MailMessage, RecipientFormatOverridesGlobalPartByPart) {
  mw::config::MailFormat global;
  global.from = "Ops, Monitoring <mw@$HOST>";
  global.subject = "[$HOST] $SERVICE $EVENT";
  global.message = "$DESCRIPTION";
  global.reply_to = "ops@example.test";
  mw::config::AlertRecipient to;
  to.address = "bob@example.test";
  to.format.subject = "$SERVICE is $EVENT ($ACTION)";
  mail::Variables v{"succeeded", "smtp", "D", "mw", "alert, exec", "smtp 127.0.0.1:25 succeeded"};
  mail::Parts p = mail::compose(global, to, v, "DATE", "<id@mw>");
  STRCMP_EQUAL("Ops, Monitoring <mw@mw>", p.from.c_str());
  STRCMP_EQUAL("ops@example.test", p.reply_to.c_str());
  STRCMP_EQUAL("smtp is succeeded (alert, exec)", p.subject.c_str());
  STRCMP_EQUAL("smtp 127.0.0.1:25 succeeded", p.body.c_str());
  STRCMP_EQUAL("mw@mw", mail::address_of(p.from).c_str());
  std::string m = mail::build(p);
  // A display name with a comma is quoted, or it would read as two addresses.
  CHECK(m.find("\r\nFrom: \"Ops, Monitoring\" <mw@mw>\r\n") != std::string::npos);
  CHECK(m.find("\r\nReply-To: ops@example.test\r\n") != std::string::npos);
}

struct HeaderCase {
  const char* name;
  const char* value;
  const char* expected;  // LF here; CRLF in the message
};

const HeaderCase kHeaderCases[] = {
    {"Subject", "short", "Subject: short"},
    // Control bytes from a hostile server's line never start a new header.
    {"Subject", "x\r\nBcc: victim@example.test", "Subject: x  Bcc: victim@example.test"},
    // Folded at spaces within 78 bytes; unfolding gives the text back.
    {"Subject",
     "imap 127.0.0.1:143 failed: protocol: unexpected IMAP greeting: \"HTTP/1.1 400 Bad "
     "Request\" and more words after it",
     "Subject: imap 127.0.0.1:143 failed: protocol: unexpected IMAP greeting:\n"
     " \"HTTP/1.1 400 Bad Request\" and more words after it"},
    // Non-ASCII: RFC 2047 encoded-words of whole characters, one per folded line.
    {"Subject", "St\xc3\xb6rung: imap ausgefallen",
     "Subject: =?UTF-8?B?U3TDtnJ1bmc6IGltYXAgYXVzZ2VmYWxsZW4=?="},
    {"Subject",
     "\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4"
     "\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4",
     "Subject: =?UTF-8?B?w6TDpMOkw6TDpMOkw6TDpMOkw6TDpMOkw6TDpMOkw6TDpMOk?=\n"
     " =?UTF-8?B?w6TDpA==?="},
    {"From", "W\xc3\xa4rter <mw@example.test>", "From: =?UTF-8?B?V8OkcnRlcg==?= <mw@example.test>"},
    {"From", "\"Mail Warden\" <mw@example.test>", "From: \"Mail Warden\" <mw@example.test>"},
    {"To", "alice@example.test", "To: alice@example.test"},
};

TEST(MailMessage, HeadersAreFoldedEncodedAndSafe) {
  std::string failures;
  for (const auto& c : kHeaderCases) {
    std::string got = mail::header(c.name, c.value);
    std::string want = crlf(c.expected);
    if (got != want)
      failures += "\n" + std::string(c.name) + ": " + mw::str::printable(c.value, 80) +
                  "\n  want: " + mw::str::printable(want, 400) +
                  "\n  got:  " + mw::str::printable(got, 400);
  }
  if (!failures.empty()) FAIL(failures.c_str());
}

TEST(MailMessage, LongOrNonAsciiBodyIsQuotedPrintable) {
  mail::Parts p;
  p.from = "mw@example.test";
  p.to = "alice@example.test";
  p.subject = "s";
  p.date = "D";
  p.message_id = "<i@h>";
  p.body =
      "Gr\xc3\xbc\xc3\x9f"
      "e = ok \n" +
      std::string(1200, 'x') + "\ntrailing space \n";
  std::string m = mail::build(p);
  CHECK(m.find("Content-Transfer-Encoding: quoted-printable\r\n") != std::string::npos);
  std::string body = m.substr(m.find("\r\n\r\n") + 4);
  STRCMP_EQUAL("Gr=C3=BC=C3=9Fe =3D ok=20\r\n", body.substr(0, 27).c_str());
  // Every line of the message, soft breaks included, stays within 76 bytes in the body and
  // 998 anywhere.
  size_t start = 0, longest = 0;
  while (start < m.size()) {
    size_t end = m.find("\r\n", start);
    longest = std::max(longest, end - start);
    start = end + 2;
  }
  CHECK(longest <= 998);
  CHECK(body.find("trailing space=20\r\n") != std::string::npos);
  CHECK(body.find(std::string(75, 'x') + "=\r\n") != std::string::npos);
}

TEST(MailMessage, VariablesExpandAndUnknownDollarsStay) {
  mail::Variables v{"failed", "svc", "today", "h", "alert", "broke"};
  STRCMP_EQUAL(
      "svc failed on h today: broke (alert) costs $5 $OTHER",
      mail::expand("$SERVICE $EVENT on $HOST $DATE: $DESCRIPTION ($ACTION) costs $5 $OTHER", v)
          .c_str());
}

TEST(MailMessage, MessageIdsAreUniqueAndDatesRfc5322) {
  std::string a = mail::new_message_id("mw.example.test"),
              b = mail::new_message_id("mw.example.test");
  CHECK(a != b);
  CHECK(a.front() == '<' && a.back() == '>' && a.find("@mw.example.test>") != std::string::npos);
  std::string d = mail::rfc5322_date(0);
  // "Thu, 01 Jan 1970 00:00:00 +0000" in UTC; the zone depends on the machine.
  CHECK_EQUAL(31u, d.size());
}

// ---- the alert statements, as data ----------------------------------------------------------

namespace {

const char* tls_mode(mw::config::TlsMode m) {
  switch (m) {
    case mw::config::TlsMode::none:
      return "starttls-if-offered";
    case mw::config::TlsMode::implicit:
      return "ssl";
    case mw::config::TlsMode::starttls:
      return "starttls";
  }
  return "?";
}

std::string format_text(const mw::config::MailFormat& f) {
  std::string out;
  auto part = [&](const char* name, const std::optional<std::string>& v) {
    if (v) out += std::string(" ") + name + "=" + mw::str::quote(*v);
  };
  part("from", f.from);
  part("reply-to", f.reply_to);
  part("subject", f.subject);
  part("message", f.message);
  return out;
}

std::string recipient_text(const mw::config::AlertRecipient& r) {
  std::string out = "alert " + r.address;
  const auto& e = r.events;
  if (!e.names.empty())
    out += std::string(e.negate ? " not" : "") + " on {" + mw::str::join(e.names, ", ") + "}";
  out += std::string(" -> failed=") + (e.on_failed ? "y" : "n") +
         " succeeded=" + (e.on_succeeded ? "y" : "n") + " classes=";
  if (e.any_class) {
    out += "any";
  } else {
    std::vector<std::string> names;
    for (auto c : e.classes) names.emplace_back(mw::failure_class_name(c));
    out += "[" + mw::str::join(names, ",") + "]";
  }
  if (r.reminder_cycles) out += " reminder=" + std::to_string(r.reminder_cycles);
  std::string f = format_text(r.format);
  if (!f.empty()) out += " format{" + f.substr(1) + "}";
  return out;
}

std::string exec_text(const mw::config::Action& a) {
  if (a.kind == mw::config::ActionKind::alert) return "alert";
  std::string out = "exec " + mw::str::quote(a.exec->command);
  if (a.exec->repeat_every) out += " repeat=" + std::to_string(a.exec->repeat_every);
  if (a.exec->timeout_s) out += " timeout=" + std::to_string(a.exec->timeout_s);
  if (a.exec->rate)
    out += " rate=" + std::to_string(a.exec->rate->count) + "/" +
           std::to_string(a.exec->rate->per_seconds) + "s";
  return out;
}

// What the alert statements made of a control file.
std::string describe_alerts(const mw::config::Config& c) {
  const auto& s = c.settings;
  std::string out;
  for (const auto& ms : s.mailservers) {
    out += "mailserver " + ms.describe() + " " + tls_mode(ms.tls_mode);
    if (!ms.username.empty())
      out += " login " + ms.username + " password " + std::string(ms.password.size(), '*');
    if (ms.allow_plaintext) out += " plaintext";
    out += " timeout " + std::to_string(ms.timeout_ms) + " ms";
    if (!ms.helo.empty()) out += " helo " + ms.helo;
    out += "\n";
  }
  std::string f = format_text(s.mail_format);
  if (!f.empty()) out += "mail-format" + f + "\n";
  for (const auto& r : s.alerts) out += "set " + recipient_text(r) + "\n";
  if (!s.eventqueue.dir.empty())
    out += "eventqueue " + s.eventqueue.dir + " slots " + std::to_string(s.eventqueue.slots) + "\n";
  for (const auto& svc : c.services) {
    out += "service " + svc.name + "\n";
    for (const auto& r : svc.alerts) out += "  " + recipient_text(r) + "\n";
    for (const auto& n : svc.noalerts) out += "  noalert " + n + "\n";
    for (const auto& chk : svc.checks)
      for (const auto& rule : chk.rules) {
        std::vector<std::string> fail, ok;
        for (const auto& a : rule.fail_actions) fail.push_back(exec_text(a));
        for (const auto& a : rule.ok_actions) ok.push_back(exec_text(a));
        out += "  rule then [" + mw::str::join(fail, "; ") + "] else [" + mw::str::join(ok, "; ") +
               "]\n";
      }
  }
  return out;
}

}  // namespace

TEST_GROUP(AlertConfigCases){};

TEST(AlertConfigCases, EveryCaseMatchesItsExpectedOutput) {
  size_t cases = 0;
  std::string failures = mwtest::check_config_cases("alerts", &describe_alerts, cases);
  CHECK_TEXT(cases >= 5, "tests/unit/config/alerts is missing or nearly empty");
  if (!failures.empty()) FAIL(failures.c_str());
}

// ---- the rate limiter ---------------------------------------------------------------------

TEST_GROUP(RateLimit){};

TEST(RateLimit, TokenBucketRefillsAtItsRateAndCountsSuppressedRuns) {
  mw::actions::RateLimiter limiter;
  mw::config::RateLimit rate{2, 60};  // 2 per minute: one token every 30 s
  const struct {
    int64_t at_s;
    bool allowed;
    int64_t suppressed;
  } steps[] = {{0, true, 0},    {1, true, 0},   {2, false, 1},  {29, false, 2},
               {33, true, 2},   {34, false, 3}, {200, true, 3}, {200, true, 3},
               {200, false, 4}, {100, false, 5}};  // a clock set back refills nothing
  int i = 0;
  for (const auto& s : steps) {
    auto v = limiter.take("k", rate, s.at_s * 1000);
    std::string label = "step " + std::to_string(i++);
    CHECK_TEXT(v.allowed == s.allowed, label.c_str());
    LONGS_EQUAL_TEXT(s.suppressed, v.suppressed, label.c_str());
  }
}

TEST(RateLimit, BucketsSurviveSaveAndRestore) {
  mw::actions::RateLimiter a;
  mw::config::RateLimit rate{1, 3600};
  CHECK(a.take("x", rate, 1000).allowed);
  CHECK(!a.take("x", rate, 2000).allowed);
  mw::actions::RateLimiter b;
  b.restore(nlohmann::json::parse(a.save().dump()));
  auto v = b.take("x", rate, 3000);
  CHECK(!v.allowed);
  LONGS_EQUAL(2, v.suppressed);
  CHECK(b.take("other", rate, 3000).allowed);
}

// ---- the event queue on disk --------------------------------------------------------------

TEST_GROUP(EventQueue){};

TEST(EventQueue, MailsSurviveReopenInOrderAndDeletedOnesStayGone) {
  std::string dir = mwtest::tmpdir() + "/queue-reopen";
  std::vector<Outgoing> found;
  std::vector<std::string> problems;
  std::string error;
  {
    mw::actions::EventQueue q;
    CHECK_TEXT(q.open(dir, found, problems, error), error.c_str());
    LONGS_EQUAL(0, found.size());
    for (const char* s : {"one", "two", "three"}) {
      Outgoing m = small_mail("alice@example.test", s, "body");
      CHECK_TEXT(q.put(m, error), error.c_str());
      if (std::string(s) == "two") q.remove(m);  // gone before it was committed
    }
    q.sync();
    Outgoing late = small_mail("carol@example.test", "late", "b");
    CHECK(q.put(late, error));
    q.sync();
    q.remove(late);  // gone after it was committed
    q.sync();
  }
  struct stat st;
  CHECK(stat(dir.c_str(), &st) == 0);
  LONGS_EQUAL(0700, st.st_mode & 0777);
  mw::actions::EventQueue again;
  CHECK_TEXT(again.open(dir, found, problems, error), error.c_str());
  LONGS_EQUAL(2, found.size());
  STRCMP_EQUAL("one", found[0].summary.c_str());
  STRCMP_EQUAL("three", found[1].summary.c_str());
  STRCMP_EQUAL("alice@example.test", found[1].rcpt_to.c_str());
  STRCMP_EQUAL("Subject: three\r\n\r\nbody\r\n", found[1].message.c_str());
  // New mails continue the sequence: the order on disk stays the order they were made in.
  Outgoing m = small_mail("bob@example.test", "four", "b");
  CHECK(again.put(m, error));
  CHECK(m.seq > found[1].seq);
}

TEST(EventQueue, CrashLeftoversAreCleanedAndForeignFilesSetAside) {
  std::string dir = mwtest::tmpdir() + "/queue-crash";
  mkdir(dir.c_str(), 0700);
  std::ofstream(dir + "/.tmp-00000000000000000007") << "half a mail";
  std::ofstream(dir + "/00000000000000000009.mail") << "not a queued mail";
  std::ofstream(dir + "/README") << "ignored";
  mw::actions::EventQueue q;
  std::vector<Outgoing> found;
  std::vector<std::string> problems;
  std::string error;
  CHECK_TEXT(q.open(dir, found, problems, error), error.c_str());
  LONGS_EQUAL(0, found.size());
  LONGS_EQUAL(1, problems.size());
  STRCMP_EQUAL((dir + "/00000000000000000009.mail is not a queued alert mail; renamed to "
                      "00000000000000000009.mail.bad")
                   .c_str(),
               problems[0].c_str());
  LONGS_EQUAL(0, access((dir + "/.tmp-00000000000000000007").c_str(), F_OK) == 0);
  LONGS_EQUAL(1, access((dir + "/00000000000000000009.mail.bad").c_str(), F_OK) == 0);
}

TEST(EventQueue, OneMailwardenPerQueue) {
  std::string dir = mwtest::tmpdir() + "/queue-lock";
  std::vector<Outgoing> found;
  std::vector<std::string> problems;
  std::string error;
  mw::actions::EventQueue first, second;
  CHECK(first.open(dir, found, problems, error));
  CHECK(!second.open(dir, found, problems, error));
  STRCMP_EQUAL(("the event queue " + dir + " is in use by another mailwarden").c_str(),
               error.c_str());
}

// ---- the mailer against scripted mail servers ---------------------------------------------

TEST_GROUP(Mailer){};

TEST(Mailer, SeveralMailsGoThroughOneSessionDotStuffed) {
  mwtest::Loop loop;
  auto p = peer(loop, "mail-accept-two");
  auto c = config("set mailserver 127.0.0.1 port " + std::to_string(p.port()) + "\n");
  mw::actions::Mailer m(loop.io);
  m.configure(*c);
  CHECK(m.submit(small_mail("alice@example.test", "one", ".dot-stuffed")));
  CHECK(m.submit(small_mail("bob@example.test", "two", "body")));
  CHECK(run_until(
      loop, [&] { return m.accepted() == 2 && p.open_connections() == 0; }, 5000));
  LONGS_EQUAL(0, m.waiting());
  LONGS_EQUAL(1, p.connections());
  CHECK_TEXT(p.errors().empty(), mw::str::join(p.errors(), "\n").c_str());
}

TEST(Mailer, FailsOverToTheNextServer) {
  mwtest::Loop loop;
  auto busy = peer(loop, "mail-busy-greeting");
  auto good = peer(loop, "mail-accept-one");
  auto c = config("set mailserver 127.0.0.1 port " + std::to_string(free_port()) +
                  ", 127.0.0.1 port " + std::to_string(busy.port()) + ", 127.0.0.1 port " +
                  std::to_string(good.port()) + "\n");
  mw::actions::Mailer m(loop.io);
  m.configure(*c);
  CHECK(m.submit(small_mail("alice@example.test", "one", "body")));
  CHECK(run_until(
      loop, [&] { return m.accepted() == 1 && !m.busy(); }, 5000));
  LONGS_EQUAL(1, busy.connections());
  LONGS_EQUAL(1, good.connections());
  CHECK(good.errors().empty());
}

TEST(Mailer, TemporaryRefusalWaitsAndIsTriedAgain) {
  mwtest::Loop loop;
  auto p = peer(loop, "mail-rcpt-tempfail");
  auto c = config("set mailserver 127.0.0.1 port " + std::to_string(p.port()) + "\n");
  mw::actions::Mailer m(loop.io);
  m.configure(*c);
  int rounds = 0;
  m.on_round_end([&] { ++rounds; });
  CHECK(m.submit(small_mail("alice@example.test", "one", "body")));
  CHECK(run_until(
      loop, [&] { return rounds == 1 && p.open_connections() == 0; }, 5000));
  LONGS_EQUAL(1, m.waiting());
  LONGS_EQUAL(0, m.dropped());
  m.retry();  // the next cycle
  CHECK(run_until(
      loop, [&] { return rounds == 2 && p.open_connections() == 0; }, 5000));
  LONGS_EQUAL(2, p.connections());
  LONGS_EQUAL(1, m.waiting());
  CHECK_TEXT(p.errors().empty(), mw::str::join(p.errors(), "\n").c_str());
}

TEST(Mailer, PermanentRefusalByEveryServerDropsTheMail) {
  mwtest::Loop loop;
  auto p = peer(loop, "mail-rcpt-refused");
  auto c = config("set mailserver 127.0.0.1 port " + std::to_string(p.port()) + "\n");
  mw::actions::Mailer m(loop.io);
  m.configure(*c);
  CHECK(m.submit(small_mail("alice@example.test", "one", "body")));
  CHECK(run_until(
      loop, [&] { return m.dropped() == 1 && !m.busy(); }, 5000));
  LONGS_EQUAL(0, m.waiting());
  LONGS_EQUAL(0, m.accepted());
  CHECK(p.errors().empty());
}

TEST(Mailer, ServerClosingMidSessionKeepsTheRest) {
  mwtest::Loop loop;
  auto p = peer(loop, "mail-421-second");
  auto c = config("set mailserver 127.0.0.1 port " + std::to_string(p.port()) + "\n");
  mw::actions::Mailer m(loop.io);
  m.configure(*c);
  CHECK(m.submit(small_mail("alice@example.test", "one", ".dot-stuffed")));
  CHECK(m.submit(small_mail("alice@example.test", "two", "body")));
  CHECK(run_until(
      loop, [&] { return m.accepted() == 1 && !m.busy(); }, 5000));
  LONGS_EQUAL(1, m.waiting());
  CHECK(p.errors().empty());
}

TEST(Mailer, StartTlsThenAuthPlain) {
  mwtest::Loop loop;
  auto p = peer(loop, "mail-starttls-auth");
  auto c = config("set mailserver 127.0.0.1 port " + std::to_string(p.port()) +
                  " username mw password secret using tls\n");
  mw::actions::Mailer m(loop.io);
  m.configure(*c);
  CHECK(m.submit(small_mail("alice@example.test", "one", "body")));
  CHECK(run_until(
      loop, [&] { return m.accepted() == 1 && p.open_connections() == 0; }, 5000));
  LONGS_EQUAL(1, p.tls_handshakes());
  CHECK_TEXT(p.errors().empty(), mw::str::join(p.errors(), "\n").c_str());
}

TEST(Mailer, PasswordNeverSentWithoutTls) {
  mwtest::Loop loop;
  auto p = peer(loop, "mail-no-starttls");
  // A login makes STARTTLS required; this server does not offer it.
  auto c = config("set mailserver 127.0.0.1 port " + std::to_string(p.port()) +
                  " username mw password secret\n");
  mw::actions::Mailer m(loop.io);
  m.configure(*c);
  int rounds = 0;
  m.on_round_end([&] { ++rounds; });
  CHECK(m.submit(small_mail("alice@example.test", "one", "body")));
  CHECK(run_until(
      loop, [&] { return rounds == 1 && p.open_connections() == 0; }, 5000));
  LONGS_EQUAL(1, m.waiting());
  for (const auto& line : p.received())
    CHECK_TEXT(line.find("AUTH") == std::string::npos, ("sent: " + line).c_str());
}

TEST(Mailer, EventQueueKeepsMailsAcrossARestart) {
  std::string dir = mwtest::tmpdir() + "/queue-mailer";
  {
    mwtest::Loop loop;
    auto c = config("set mailserver 127.0.0.1 port " + std::to_string(free_port()) +
                    "\nset eventqueue basedir " + dir + "\n");
    mw::actions::Mailer m(loop.io);
    m.configure(*c);
    int rounds = 0;
    m.on_round_end([&] { ++rounds; });
    CHECK(m.submit(small_mail("alice@example.test", "one", ".dot-stuffed")));
    CHECK(m.submit(small_mail("bob@example.test", "two", "body")));
    // On disk before the first attempt (and before the state file could record the change).
    m.persist();
    LONGS_EQUAL(2, dir_names(dir, ".mail").size());
    CHECK(run_until(
        loop, [&] { return rounds == 1; }, 5000));
    LONGS_EQUAL(2, m.waiting());
  }
  LONGS_EQUAL(2, dir_names(dir, ".mail").size());
  mwtest::Loop loop;
  auto p = peer(loop, "mail-accept-two");
  auto c = config("set mailserver 127.0.0.1 port " + std::to_string(p.port()) +
                  "\nset eventqueue basedir " + dir + "\n");
  mw::actions::Mailer m(loop.io);
  m.configure(*c);  // finds both and sends them soon, oldest first
  LONGS_EQUAL(2, m.waiting());
  CHECK(run_until(
      loop, [&] { return m.accepted() == 2 && p.open_connections() == 0; }, 5000));
  LONGS_EQUAL(0, dir_names(dir, ".mail").size());
  CHECK_TEXT(p.errors().empty(), mw::str::join(p.errors(), "\n").c_str());
}

TEST(Mailer, FullQueueDropsNewMails) {
  std::string dir = mwtest::tmpdir() + "/queue-full";
  mwtest::Loop loop;
  auto c = config("set mailserver 127.0.0.1 port " + std::to_string(free_port()) +
                  "\nset eventqueue basedir " + dir + " slots 2\n");
  mw::actions::Mailer m(loop.io);
  m.configure(*c);
  CHECK(m.submit(small_mail("alice@example.test", "one", "b")));
  CHECK(m.submit(small_mail("alice@example.test", "two", "b")));
  CHECK(!m.submit(small_mail("alice@example.test", "three", "b")));
  LONGS_EQUAL(1, m.dropped());
  m.persist();
  LONGS_EQUAL(2, dir_names(dir, ".mail").size());
}

// ---- the dispatcher: reminders, filters, repeats, rate limits -----------------------------

namespace {

struct Fixture {
  mwtest::Loop loop;
  std::shared_ptr<const mw::config::Config> cfg;
  mw::actions::Dispatcher d{loop.io};
  std::vector<mw::EventState> states;

  explicit Fixture(const std::string& text) : cfg(config(text)) {
    d.load(cfg);
    for (const auto& svc : cfg->services) states.resize(states.size() + svc.checks.size());
  }
  // One result of check 0 of service `s`: ok or failed with `cls`.
  void result(size_t s, bool ok, mw::FailureClass cls = mw::FailureClass::connect) {
    const auto& svc = cfg->services.at(s);
    const auto& chk = svc.checks.at(0);
    const auto& rule = chk.rules.at(0);
    mw::CheckResult r;
    r.ok = ok;
    r.cls = ok ? mw::FailureClass::none : cls;
    r.message = ok ? "" : "it broke";
    r.checked_at = 1764092075;
    mw::EventState& es = states.at(s);
    mw::Transition t = es.record(!ok, rule.fail_rule, rule.ok_rule);
    d.on_result(svc, chk, 0, rule, t, es, r);
  }
  // "rcpt: Subject" of every mail made so far, oldest first.
  std::vector<std::string> mails() const {
    std::vector<std::string> out;
    for (const auto& [key, m] : d_mailer().mails()) out.push_back(m.rcpt_to + ": " + m.summary);
    return out;
  }
  const mw::actions::Mailer& d_mailer() const { return const_cast<Fixture*>(this)->d.mailer(); }
};

std::string lines(const std::vector<std::string>& v) {
  return mw::str::join(v, "\n");
}

}  // namespace

TEST_GROUP(Dispatcher){};

TEST(Dispatcher, FailureOnceRemindersEveryNCyclesRecoveryOnce) {
  Fixture f(
      "set mailserver 127.0.0.1 port 9\n"
      "set mail-format { subject: $SERVICE $EVENT }\n"
      "set alert alice@example.test with reminder on 2 cycles\n"
      "check host imap with address 127.0.0.1\n"
      "  if failed port 143 protocol imap then alert else if succeeded then alert\n");
  f.result(0, true);  // the first success is no event
  for (int i = 0; i < 6; ++i) f.result(0, false);
  f.result(0, true);
  f.result(0, true);
  STRCMP_EQUAL(lines({"alice@example.test: imap failed", "alice@example.test: imap failed",
                      "alice@example.test: imap failed", "alice@example.test: imap succeeded"})
                   .c_str(),
               lines(f.mails()).c_str());
}

TEST(Dispatcher, RecipientsFiltersAndNoalert) {
  Fixture f(
      "set mailserver 127.0.0.1 port 9\n"
      "set mail-format { subject: $SERVICE $EVENT }\n"
      "set alert alice@example.test\n"
      "set alert ops@example.test not on { succeeded }\n"
      "check host one with address 127.0.0.1\n"
      "  if failed port 143 protocol imap then alert else if succeeded then alert\n"
      "  alert bob@example.test only on { failed } with mail-format { subject: bob $EVENT }\n"
      "  noalert ops@example.test\n"
      "check host two with address 127.0.0.1\n"
      "  if failed port 143 protocol imap then alert else if succeeded then alert\n"
      "  alert carol@example.test on { timeout }\n"
      "  alert alice@example.test on { connection }\n");
  f.result(0, false);
  f.result(0, true);
  f.result(1, false, mw::FailureClass::connect);
  f.result(1, true);
  f.result(1, false, mw::FailureClass::timeout);
  f.result(1, true);
  STRCMP_EQUAL(lines({"bob@example.test: bob failed", "alice@example.test: one failed",
                      "alice@example.test: one succeeded", "alice@example.test: two failed",
                      "ops@example.test: two failed", "alice@example.test: two succeeded",
                      "carol@example.test: two failed", "alice@example.test: two failed",
                      "ops@example.test: two failed", "carol@example.test: two succeeded",
                      "alice@example.test: two succeeded"})
                   .c_str(),
               lines(f.mails()).c_str());
}

TEST(Dispatcher, ExecOnChangeRepeatEveryAndRateLimitAcrossRestart) {
  std::string out = mwtest::tmpdir() + "/exec-runs";
  unlink(out.c_str());
  std::string text =
      "check host flap with address 127.0.0.1\n"
      "  if failed port 143 protocol imap then exec \"echo failed >> " +
      out +
      "\" with rate limit 2 per 1 hour\n"
      "check host down with address 127.0.0.1\n"
      "  if failed port 143 protocol imap then exec \"echo repeat >> " +
      out + "\" repeat every 2 cycles\n";
  nlohmann::json saved;
  {
    Fixture f(text);
    for (int i = 0; i < 3; ++i) {  // flapping: three failures, two runs allowed
      f.result(0, false);
      f.result(0, true);
    }
    for (int i = 0; i < 5; ++i) f.result(1, false);  // runs at the change, then cycles 2 and 4
    CHECK(run_until(
        f.loop, [&] { return f.d.exec().running() == 0; }, 5000));
    saved = nlohmann::json::parse(f.d.save_state().dump());
  }
  {
    Fixture f(text);  // mailwarden restarted: the bucket is still empty
    f.d.restore_state(saved);
    f.result(0, false);
    f.result(0, true);
    f.result(0, false);
    CHECK(run_until(
        f.loop, [&] { return f.d.exec().running() == 0; }, 5000));
  }
  std::string runs = slurp(out);
  STRCMP_EQUAL("failed\nfailed\nrepeat\nrepeat\nrepeat\n",
               [&] {
                 // The two commands run concurrently; compare sorted lines.
                 std::vector<std::string> v;
                 std::stringstream ss(runs);
                 for (std::string l; std::getline(ss, l);) v.push_back(l);
                 std::sort(v.begin(), v.end());
                 return mw::str::join(v, "\n") + "\n";
               }()
                   .c_str());
  LONGS_EQUAL(3, saved["rate_limits"].begin()->at("suppressed").get<int>() + 2);
}

// ---- exec ---------------------------------------------------------------------------------

TEST_GROUP(Exec){};

TEST(Exec, CommandPastItsTimeoutIsStoppedAndReaped) {
  mwtest::Loop loop;
  mw::actions::ExecRunner runner(loop.base.get());
  mw::config::ExecSpec spec;
  spec.command = "sleep 30 & sleep 30";  // a child of the shell too: the whole group goes
  spec.timeout_s = 1;
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = runner.run(spec, {}, "test");
  CHECK(pid > 0);
  CHECK(run_until(
      loop, [&] { return runner.running() == 0; }, 8000));
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK_TEXT(secs >= 0.9 && secs < 4, std::to_string(secs).c_str());
  // Reaped: no zombie is left for this pid.
  errno = 0;
  LONGS_EQUAL(-1, waitpid(pid, nullptr, WNOHANG));
  LONGS_EQUAL(ECHILD, errno);
  // And nothing of its process group runs on (the background sleep got the signal too).
  CHECK(run_until(
      loop, [&] { return kill(-pid, 0) != 0; }, 2000));
}
