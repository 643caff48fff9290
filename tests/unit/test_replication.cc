// check replication against scripted peers (a reference and a replica, each a script in
// tests/peers/scripts/replication-*.peer): in sync with and without LIST-STATUS, a replica
// behind or missing a mailbox, a STATUS answered with garbage or without an item, a server
// closing in the middle of the LIST, a missing INBOX, refused logins. Each row asserts the exact
// outcome; a row that passes must also have followed both scripts to the letter. Then the
// progress kept across runs (pure data): the order of `checked`, resuming, failed only, invalid
// users not retried every cycle.
#include "tests/peers/peer.h"  // before CppUTest: its new macros break STL headers

#include <CppUTest/TestHarness.h>

#include <string>
#include <vector>

#include "checks/replication/progress.h"
#include "net/failure.h"
#include "support.h"

// nlohmann::json has no CppUTest StringFrom: compare the dumps (which show in a failure).
#define JSON_EQUAL(want, got) STRCMP_EQUAL(json(want).dump().c_str(), json(got).dump().c_str())

namespace {

using mw::checks::replication::Progress;
using mw::checks::replication::Statuses;
using nlohmann::json;

struct Scenario {
  const char* reference;  // scripts; "" = nothing listens on the port
  const char* replica;
  const char* clauses;  // after the users
  bool ok;
  const char* cls;
  const char* message;  // {ref} and {rep} stand for the two ports
};

constexpr const char* kAll = "all mailboxes";

const Scenario kScenarios[] = {
    // All mailboxes of a Cyrus-like server: the admin lists them once, each user says STATUS.
    {"replication-cyrus", "replication-cyrus", kAll, true, "none", ""},
    {"replication-cyrus", "replication-cyrus-behind", kAll, false, "content",
     "1 mailbox out of sync: john@example.net Sent (imap://127.0.0.1:{ref}: MESSAGES 1 UIDNEXT 2 "
     "UIDVALIDITY 1700000001 UNSEEN 0; imap://127.0.0.1:{rep}: MESSAGES 0 UIDNEXT 1 UIDVALIDITY "
     "1700000001 UNSEEN 0)"},
    {"replication-cyrus", "replication-cyrus-missing", kAll, false, "content",
     "1 mailbox out of sync: john@example.net Sent (imap://127.0.0.1:{ref}: MESSAGES 1 UIDNEXT 2 "
     "UIDVALIDITY 1700000001 UNSEEN 0; imap://127.0.0.1:{rep}: missing)"},
    // One mismatch tolerated by the rule "out of sync 2 mailboxes": the run does not fail.
    {"replication-cyrus", "replication-cyrus-behind",
     "all mailboxes\n  if out of sync 2 mailboxes then alert", true, "none", ""},
    {"replication-cyrus", "replication-cyrus-status-garbage", kAll, false, "protocol",
     "user john@example.net on imap://127.0.0.1:{rep}: malformed STATUS response: \"* STATUS "
     "Sent (MESSAGES three UIDNEXT 2 UIDVALIDITY 1700000001 UNSEEN 0)\""},
    {"replication-cyrus", "replication-cyrus-cut-list", kAll, false, "protocol",
     "listing the mailboxes on imap://127.0.0.1:{rep}: server closed the connection while "
     "waiting for a reply"},
    // Servers whose admin lists nothing: each user lists its own mailboxes.
    {"replication-user-list-status", "replication-user-list-status", kAll, true, "none", ""},
    {"replication-user-list-status", "replication-user-list-then-status", kAll, true, "none", ""},
    {"replication-cyrus", "replication-user-list-then-status", kAll, true, "none", ""},
    {"replication-user-status-lacks-item", "replication-cyrus", kAll, false, "protocol",
     "user john@example.net on imap://127.0.0.1:{ref}: STATUS of INBOX lacks UIDVALIDITY: \"* "
     "STATUS INBOX (MESSAGES 3 UIDNEXT 4 UNSEEN 1)\""},
    // INBOX only: no listing, the STATUS of INBOX pipelined with the LOGOUT.
    {"replication-inbox", "replication-inbox", "", true, "none", ""},
    {"replication-inbox", "replication-inbox-behind", "", false, "content",
     "1 mailbox out of sync: john@example.net INBOX (imap://127.0.0.1:{ref}: MESSAGES 3 UIDNEXT 4 "
     "UIDVALIDITY 1700000000 UNSEEN 1; imap://127.0.0.1:{rep}: MESSAGES 2 UIDNEXT 3 UIDVALIDITY "
     "1700000000 UNSEEN 0)"},
    {"replication-inbox", "replication-inbox-garbage", "", false, "protocol",
     "user john@example.net on imap://127.0.0.1:{rep}: malformed STATUS response: \"* STATUS "
     "INBOX MESSAGES 3 UIDNEXT 4 ???\""},
    {"replication-inbox", "replication-login-refused", "", false, "auth",
     "the admin cyrus cannot log in on imap://127.0.0.1:{rep}: login as john@example.net (as "
     "cyrus) failed: mw1 NO [AUTHENTICATIONFAILED] authentication failure"},
    {"replication-inbox", "", "", false, "connect",
     "user john@example.net on imap://127.0.0.1:{rep}: cannot connect to 127.0.0.1:{rep}: "
     "Connection refused"},
    // A missing INBOX makes an invalid user (reported by its own rule), not a failed run.
    {"replication-no-inbox", "replication-inbox", "", true, "none", ""},
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

uint16_t free_port() {
  mwtest::Loop loop;
  mwtest::ScriptedPeer peer(loop.base.get(), "hang\n");
  return peer.port();
}

std::unique_ptr<mwtest::ScriptedPeer> peer_for(mwtest::Loop& loop, const std::string& script) {
  if (script.empty()) return nullptr;
  return std::make_unique<mwtest::ScriptedPeer>(mwtest::ScriptedPeer::from_file(
      loop.base.get(), mwtest::srcdir() + "/tests/peers/scripts/" + script + ".peer"));
}

struct Outcome {
  mw::CheckResult result;
  std::string want;
  std::string errors;  // configuration and peer errors
};

Outcome play(const Scenario& s) {
  mwtest::Loop loop;
  auto ref = peer_for(loop, s.reference);
  auto rep = peer_for(loop, s.replica);
  uint16_t ref_port = ref ? ref->port() : free_port();
  uint16_t rep_port = rep ? rep->port() : free_port();
  std::string clauses = s.clauses;
  bool has_rule = clauses.find("if ") != std::string::npos;
  std::string text =
      "check replication pair\n  servers \"imap://127.0.0.1:" + std::to_string(ref_port) +
      "\", \"imap://127.0.0.1:" + std::to_string(rep_port) +
      "\"\n  admin \"cyrus\" password \"pw\" allow plaintext timeout 2 s\n"
      "  users \"john@example.net\"\n  " +
      clauses + "\n" + (has_rule ? "" : "  if out of sync then alert\n");
  Outcome out;
  auto cfg = mwtest::parse_text(text, &out.errors);
  out.want = std::string(s.ok ? "ok" : "failed") + " " + s.cls + " " +
             replace_all(replace_all(s.message, "{ref}", std::to_string(ref_port)), "{rep}",
                         std::to_string(rep_port));
  if (!cfg) return out;
  out.result = mwtest::run_check(loop, cfg);
  if (s.ok)
    for (const auto* p : {ref.get(), rep.get()})
      if (p)
        for (const auto& e : p->errors()) out.errors += "\n    peer: " + e;
  return out;
}

std::string got_text(const mw::CheckResult& r) {
  return std::string(r.ok ? "ok" : "failed") + " " + mw::failure_class_name(r.cls) + " " +
         r.message;
}

Statuses same(const std::string& s) {
  return {s, s};
}

}  // namespace

TEST_GROUP(ReplicationDialogues){};

TEST(ReplicationDialogues, EveryScenarioHasItsExactOutcome) {
  std::string failures;
  for (const auto& s : kScenarios) {
    Outcome o = play(s);
    std::string got = got_text(o.result);
    if (got != o.want || !o.errors.empty())
      failures += std::string("\n") + s.reference + " / " + (*s.replica ? s.replica : "(none)") +
                  " / " + s.clauses + ":\n  want: " + o.want + "\n  got:  " + got + o.errors;
  }
  if (!failures.empty()) FAIL(failures.c_str());
}

TEST(ReplicationDialogues, DetailsShowTheComparisonTheWayJqUsersReadIt) {
  Outcome o = play(kScenarios[1]);  // Sent behind on the replica
  const json& d = o.result.details;
  JSON_EQUAL(json({"john@example.net"}), d["checked"]);
  JSON_EQUAL(json::array(), d["invalid_users"]);
  json inbox = {"MESSAGES 3 UIDNEXT 4 UIDVALIDITY 1700000000 UNSEEN 1",
                "MESSAGES 3 UIDNEXT 4 UIDVALIDITY 1700000000 UNSEEN 1"};
  JSON_EQUAL(inbox, d["statuses"]["john@example.net"]["INBOX"]);
  CHECK_EQUAL(2u, d["statuses"]["john@example.net"].size());  // the \Noselect Archive is not
  CHECK_EQUAL(1u, d["out_of_sync"].size());
  JSON_EQUAL(json("Sent"), d["out_of_sync"][0]["mailbox"]);
  CHECK_EQUAL(2, d["mailboxes_compared_this_run"].get<int>());
  DOUBLES_EQUAL(1.0, o.result.metrics.at("out_of_sync"), 0.0);
  DOUBLES_EQUAL(0.0, o.result.metrics.at("invalid_users"), 0.0);
  // The state file keeps the same, plus when each invalid user was last tried.
  JSON_EQUAL(d["statuses"], o.result.memory["statuses"]);
}

TEST(ReplicationDialogues, MissingInboxIsAnInvalidUserWithItsReason) {
  Outcome o = play(kScenarios[sizeof kScenarios / sizeof kScenarios[0] - 1]);
  const json& d = o.result.details;
  JSON_EQUAL(json({"john@example.net"}), d["invalid_users"]);
  std::string reason = d["invalid_user_reasons"]["john@example.net"];
  CHECK_TEXT(reason.rfind("no INBOX on the reference server imap://127.0.0.1:", 0) == 0,
             reason.c_str());
  DOUBLES_EQUAL(1.0, o.result.metrics.at("invalid_users"), 0.0);
  CHECK(d["statuses"].empty());
}

TEST_GROUP(ReplicationProgress){};

TEST(ReplicationProgress, CheckedKeepsTheConfiguredOrderWhateverTheFinishingOrder) {
  Progress p;
  auto plan = p.plan({"c", "a", "b"}, false, 1000);
  CHECK_EQUAL(3u, plan.size());
  p.mark_checked("b");
  p.mark_checked("c");
  p.mark_checked("a");
  JSON_EQUAL(json({"c", "a", "b"}), p.to_json()["checked"]);
  CHECK(p.pass_complete());
}

TEST(ReplicationProgress, ABudgetCutResumesWhereItStoppedThenStartsANewPass) {
  Progress p;
  auto first = p.plan({"u1", "u2", "u3"}, false, 1000);
  CHECK_EQUAL(3u, first.size());
  p.record("u1", {{"INBOX", same("MESSAGES 1")}});
  p.mark_checked("u1");
  CHECK_FALSE(p.pass_complete());
  // The next run (the state file in between) gets the rest only.
  Progress next = Progress::from_json(p.to_json());
  auto rest = next.plan({"u1", "u2", "u3"}, false, 1001);
  CHECK_EQUAL(2u, rest.size());
  CHECK_EQUAL(std::string("u2"), rest[0]);
  next.mark_checked("u2");
  next.mark_checked("u3");
  CHECK(next.pass_complete());
  CHECK_EQUAL(3u, next.pass_size());
  // A complete pass: everyone again.
  auto again = Progress::from_json(next.to_json()).plan({"u1", "u2", "u3"}, false, 1002);
  CHECK_EQUAL(3u, again.size());
}

TEST(ReplicationProgress, FailedOnlyPlansTheUsersWithAMismatch) {
  Progress p;
  (void)p.plan({"ok", "bad"}, false, 1000);
  p.record("ok", {{"INBOX", same("MESSAGES 1")}});
  p.record("bad", {{"INBOX", same("MESSAGES 1")}, {"Sent", Statuses{"MESSAGES 2", std::nullopt}}});
  p.mark_checked("ok");
  p.mark_checked("bad");
  auto plan = p.plan({"ok", "bad"}, true, 1001);
  CHECK_EQUAL(1u, plan.size());
  CHECK_EQUAL(std::string("bad"), plan[0]);
  CHECK_EQUAL(1u, p.out_of_sync().size());
  CHECK_EQUAL(std::string("Sent"), p.out_of_sync()[0].mailbox);
  // Before anything is known, failed only checks everyone once.
  Progress fresh;
  CHECK_EQUAL(2u, fresh.plan({"ok", "bad"}, true, 1000).size());
}

TEST(ReplicationProgress, InvalidUsersWaitAnHourAndVanishedUsersAreForgotten) {
  Progress p;
  (void)p.plan({"ghost", "john"}, false, 1000);
  p.record_invalid("ghost", "no INBOX", 1000);
  p.mark_checked("ghost");
  p.mark_checked("john");
  CHECK_EQUAL(1u, p.invalid_count());
  auto soon = p.plan({"ghost", "john"}, false, 1000 + 60);
  CHECK_EQUAL(1u, soon.size());
  CHECK_EQUAL(std::string("john"), soon[0]);
  auto later =
      p.plan({"ghost", "john"}, false, 1000 + mw::checks::replication::kInvalidRecheckSeconds);
  CHECK_EQUAL(2u, later.size());
  (void)p.plan({"john"}, false, 5000);  // ghost is gone from the server
  CHECK_EQUAL(0u, p.invalid_count());
}

TEST(ReplicationProgress, StatusesThatDifferOrAreMissingAreOutOfSync) {
  CHECK_FALSE(Progress::differs(same("MESSAGES 1")));
  CHECK(Progress::differs(Statuses{"MESSAGES 1", "MESSAGES 2"}));
  CHECK(Progress::differs(Statuses{"MESSAGES 1", std::nullopt}));
  CHECK(Progress::differs(Statuses{std::nullopt, "MESSAGES 1"}));
  // A state file from elsewhere (wrong types) is read as far as it makes sense.
  Progress p = Progress::from_json(json{{"checked", {1, "u"}}, {"statuses", {{"u", 3}}}});
  JSON_EQUAL(json({"u"}), p.to_json()["checked"]);
}

TEST(ReplicationProgress, AServerWhoseAdminCannotListIsAskedAgainAfterAnHour) {
  Progress p;
  CHECK(p.listing_due("imap://b:143", 1000));
  p.record_unlisted("imap://b:143", 1000);
  Progress next = Progress::from_json(p.to_json());
  CHECK_FALSE(next.listing_due("imap://b:143", 1000 + 60));
  CHECK(next.listing_due("imap://a:143", 1000 + 60));
  CHECK(next.listing_due("imap://b:143", 1000 + mw::checks::replication::kInvalidRecheckSeconds));
  next.record_listed("imap://b:143");
  CHECK(next.listing_due("imap://b:143", 1001));
  // Internal: not among what status --json shows.
  CHECK_FALSE(p.details(0, 0).contains("unlisted"));
}
