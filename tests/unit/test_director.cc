// The director-admin client and check director's safety rules: HOST-LIST lines of every Dovecot
// version (3, 4, 6 and more fields) and malformed ones, the client against scripted peers
// (ring-sync replies retried one command at a time, NOTFOUND, a close, garbage), and the
// takedown decisions as a table (max down as a count and a percentage, the last up backend of a
// tag, rapid mode's early verdicts).
#include "tests/peers/peer.h"  // before CppUTest: its new macros break STL headers

#include <CppUTest/TestHarness.h>

#include <string>
#include <vector>

#include "checks/director/director.h"
#include "checks/director/policy.h"
#include "net/connection.h"
#include "net/failure.h"
#include "protocols/director_client.h"
#include "support.h"

namespace {

using mw::director::Host;
using mw::director::parse_host_line;

std::string host_error(const std::string& line) {
  try {
    (void)parse_host_line(line);
  } catch (const mw::ProbeError& e) {
    return std::string(mw::failure_class_name(e.cls())) + ": " + e.what();
  }
  return "no error";
}

Host host(const std::string& ip, bool up, const std::string& tag = "", int64_t vhosts = 100) {
  Host h;
  h.ip = ip;
  h.up = up;
  h.tag = tag;
  h.vhosts = vhosts;
  h.has_state = true;
  return h;
}

std::string decisions(const std::vector<Host>& hosts, const std::vector<std::string>& dead,
                      int max_down, bool percent) {
  std::string out;
  for (const auto& t : mw::checks::director::decide_takedowns(hosts, dead, max_down, percent))
    out += t.ip + (t.allowed ? " down" : " held: " + t.reason) + "\n";
  return out;
}

}  // namespace

TEST_GROUP(DirectorHostList){};

TEST(DirectorHostList, FieldsAreReadByPositionForEveryVersion) {
  Host h = parse_host_line("10.0.0.1\t100\t7");  // 2.2.9
  STRCMP_EQUAL("10.0.0.1", h.ip.c_str());
  LONGS_EQUAL(100, h.vhosts);
  LONGS_EQUAL(7, h.users);
  CHECK_FALSE(h.has_state);
  h = parse_host_line("10.0.0.1\t50\t0\tmail2");  // 2.2.16: a tag
  STRCMP_EQUAL("mail2", h.tag.c_str());
  CHECK_FALSE(h.has_state);
  h = parse_host_line("10.0.0.1\t0\t3\t\tD\t1700000000");  // 2.2.19+
  CHECK(h.has_state);
  CHECK_FALSE(h.up);
  LONGS_EQUAL(0, h.vhosts);
  LONGS_EQUAL(1700000000, h.changed_at);
  h = parse_host_line("fd00::5\t100\t1\tt\tU\t0\tsomething newer\t42");  // extras ignored
  STRCMP_EQUAL("fd00::5", h.ip.c_str());
  CHECK(h.up);
}

TEST(DirectorHostList, MalformedLinesNameTheField) {
  STRCMP_EQUAL(
      "protocol: HOST-LIST line has 2 field(s), at least 3 expected (ip, vhosts, users): "
      "\"10.0.0.1\\t100\"",
      host_error("10.0.0.1\t100").c_str());
  STRCMP_EQUAL("protocol: HOST-LIST line has a bad vhost count 'many': \"10.0.0.1\\tmany\\t0\"",
               host_error("10.0.0.1\tmany\t0").c_str());
  STRCMP_EQUAL("protocol: HOST-LIST line has a bad user count '-1': \"10.0.0.1\\t1\\t-1\"",
               host_error("10.0.0.1\t1\t-1").c_str());
  STRCMP_EQUAL(
      "protocol: HOST-LIST line has 'X' where U or D was expected: "
      "\"10.0.0.1\\t1\\t0\\t\\tX\\t0\"",
      host_error("10.0.0.1\t1\t0\t\tX\t0").c_str());
  STRCMP_EQUAL("protocol: HOST-LIST line does not start with an IP address: \"HOST-LIST\\tOK\\t0\"",
               host_error("HOST-LIST\tOK\t0").c_str());
}

TEST_GROUP(DirectorClient){};

namespace {

struct ClientRun {
  std::vector<std::string> replies;
  int retries = 0;
};

mw::Task<void> commands(mw::Connection& conn, mw::Scope& scope, uint16_t port,
                        std::vector<std::string> verbs, ClientRun& out) {
  mw::Endpoint ep;
  ep.host = "127.0.0.1";
  ep.port = port;
  co_await conn.connect(ep);
  mw::director::Client client(conn, scope, mw::director::RetryPolicy{4, 20});
  co_await client.handshake();
  for (const auto& verb : verbs) {
    auto r = co_await client.command(verb, "127.0.0.2");
    out.replies.push_back(r == mw::director::Reply::ok ? "OK" : "NOTFOUND");
    out.retries += client.last_retries();
  }
}

// Plays `script` against the client sending `verbs`; returns the error ("" when none).
std::string play(const std::string& script, const std::vector<std::string>& verbs, ClientRun& run,
                 std::string* peer_errors) {
  mwtest::Loop loop;
  auto peer = mwtest::ScriptedPeer::from_file(
      loop.base.get(), mwtest::srcdir() + "/tests/peers/scripts/" + script + ".peer");
  mw::Scope scope(loop.base.get());
  scope.set_deadline(10000);
  mw::ConnectionOptions opts;
  opts.timeout_ms = 2000;
  mw::Connection conn(loop.io, scope, opts);
  bool done = false;
  std::string error;
  mw::start_detached(commands(conn, scope, peer.port(), verbs, run), [&](std::exception_ptr e) {
    done = true;
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const mw::ProbeError& x) {
      error = std::string(mw::failure_class_name(x.cls())) + ": " + x.what();
    }
  });
  for (int i = 0; i < 100 && !done; ++i) {
    timeval tv{0, 100000};
    event_base_loopexit(loop.base.get(), &tv);
    event_base_dispatch(loop.base.get());
  }
  CHECK(done);
  conn.close();
  for (int i = 0; i < 5; ++i) {  // let the peer finish its script
    timeval tv{0, 20000};
    event_base_loopexit(loop.base.get(), &tv);
    event_base_dispatch(loop.base.get());
  }
  if (peer_errors)
    for (const auto& e : peer.errors()) *peer_errors += e + "\n";
  return error;
}

}  // namespace

TEST(DirectorClient, RingSyncRepliesAreRetriedOneCommandAtATime) {
  ClientRun run;
  std::string peer_errors;
  std::string error =
      play("director-ring-sync", {"HOST-DOWN", "HOST-RESET-USERS"}, run, &peer_errors);
  STRCMP_EQUAL("", error.c_str());
  STRCMP_EQUAL("", peer_errors.c_str());
  LONGS_EQUAL(2, run.replies.size());
  STRCMP_EQUAL("OK", run.replies[0].c_str());
  STRCMP_EQUAL("OK", run.replies[1].c_str());
  LONGS_EQUAL(2, run.retries);
}

TEST(DirectorClient, NotFoundIsAReplyNotAFailure) {
  ClientRun run;
  std::string peer_errors;
  STRCMP_EQUAL("", play("director-notfound", {"HOST-DOWN"}, run, &peer_errors).c_str());
  STRCMP_EQUAL("", peer_errors.c_str());
  STRCMP_EQUAL("NOTFOUND", run.replies.at(0).c_str());
}

TEST(DirectorClient, AnUnexpectedReplyOrACloseFailsWithItsReason) {
  ClientRun run;
  // The notfound script answers HOST-DOWN only: HOST-UP gets a protocol mismatch (the peer
  // closes), which the client reports as a close while waiting for the reply.
  STRCMP_EQUAL(
      "protocol: director-admin: server closed the connection while waiting for the reply to "
      "HOST-UP 127.0.0.2",
      play("director-notfound", {"HOST-UP"}, run, nullptr).c_str());
}

TEST_GROUP(DirectorPolicy){};

TEST(DirectorPolicy, MaxDownCountsEveryBackendThatIsDown) {
  std::vector<Host> hosts = {host("10.0.0.1", true), host("10.0.0.2", true), host("10.0.0.3", true),
                             host("10.0.0.4", false)};
  STRCMP_EQUAL(
      "10.0.0.1 down\n"
      "10.0.0.2 held: max down 2 allows 2 backends down at once and 2 already are\n",
      decisions(hosts, {"10.0.0.1", "10.0.0.2"}, 2, false).c_str());
  STRCMP_EQUAL("10.0.0.1 held: max down 1 allows 1 backend down at once and 1 already is\n",
               decisions(hosts, {"10.0.0.1"}, 1, false).c_str());
}

TEST(DirectorPolicy, MaxDownPercentRoundsDown) {
  std::vector<Host> hosts;
  for (int i = 1; i <= 10; ++i) hosts.push_back(host("10.0.0." + std::to_string(i), true));
  LONGS_EQUAL(3, mw::checks::director::down_limit(10, 30, true));
  LONGS_EQUAL(0, mw::checks::director::down_limit(3, 30, true));
  STRCMP_EQUAL(
      "10.0.0.1 down\n10.0.0.2 down\n10.0.0.3 down\n"
      "10.0.0.4 held: max down 30% allows 3 backends down at once and 3 already are\n",
      decisions(hosts, {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}, 30, true).c_str());
}

TEST(DirectorPolicy, NeverTheLastUpBackendOfATag) {
  std::vector<Host> hosts = {host("10.0.0.1", true, "a"), host("10.0.0.2", true, "a"),
                             host("10.0.0.3", true, "b"), host("10.0.0.4", true, "b", 0)};
  STRCMP_EQUAL(
      "10.0.0.1 down\n"
      "10.0.0.2 held: it is the last up backend of tag 'a'\n"
      "10.0.0.3 held: it is the last up backend of tag 'b'\n",
      decisions(hosts, {"10.0.0.1", "10.0.0.2", "10.0.0.3"}, 10, false).c_str());
}

TEST(DirectorPolicy, RapidModeDecidesAsSoonAsTheOutcomeIsCertain) {
  using mw::checks::director::rapid_verdict;
  using mw::checks::director::RapidVerdict;
  CHECK(rapid_verdict(10, 8, 8, 8) == RapidVerdict::dead);
  CHECK(rapid_verdict(10, 8, 7, 7) == RapidVerdict::undecided);
  CHECK(rapid_verdict(10, 8, 3, 0) == RapidVerdict::alive);  // 7 left cannot make 8
  CHECK(rapid_verdict(10, 8, 2, 0) == RapidVerdict::undecided);
  CHECK(rapid_verdict(10, 8, 10, 7) == RapidVerdict::alive);
}

TEST_GROUP(DirectorStatus){};

TEST(DirectorStatus, RowsShowEachBackendAndSurviveAStateFileOfAnotherShape) {
  mw::CheckResult r;
  r.details = nlohmann::json::parse(R"({"dry_run": false, "backends": [
      {"ip": "10.0.0.2", "tag": "", "vhosts": 100, "users": 3, "state": "down",
       "down_by": "mailwarden", "down_at": 0, "failed_in_a_row": 0,
       "rapid": {"rounds": 10, "needed": 8, "done": 8, "failed": 8, "verdict": "dead"},
       "action": "taken down, HOST-RESET-USERS",
       "polls": [{"at": 1, "ok": false, "ms": 0.25, "rapid": true,
                  "error": "imap:143: connect: refused"}]}]})");
  mw::checks::DetailRows rows;
  mw::checks::director::rows(r, rows);
  std::string text;
  for (const auto& [label, value] : rows) text += label + "|" + value + "\n";
  STRCMP_EQUAL(
      "backend|10.0.0.2  tag -  vhosts 100  users 3  DOWN (by mailwarden)\n"
      "  last polls|failed 0.2 ms (rapid)\n"
      "  last error|imap:143: connect: refused\n"
      "  rapid mode|8 of 10 polls done, 8 failed (8 needed): dead\n"
      "  last action|taken down, HOST-RESET-USERS\n",
      text.c_str());
  r.details = nlohmann::json::parse(R"({"backends": [{"ip": 7, "vhosts": "many"}]})");
  rows.clear();
  mw::checks::director::rows(r, rows);
  LONGS_EQUAL(1, rows.size());
  STRCMP_EQUAL("(unreadable in the state file)", rows[0].second.c_str());
}
