"""check replication against a real Cyrus IMAP 3.6 master and replica (sync_client on loopback).

One pair serves every test: users are created on the master and replicated once in
setup_module; tests that break the replication (an APPEND to the master alone) repair it with
a sync before they end.  The failed proxy logins (3 s of Cyrus' penalty each) are kept few.
Cyrus' syslog lines land in each server's log (the harness binds /dev/log when there is none),
so a failure shows what the servers said.  The last test runs the check against two Dovecots
with a master user, where each user lists its own mailboxes (LIST-STATUS).
"""

import json
import os

import lib
from mwharness import CyrusPair

S = {}
ITEMS = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN")
NAMED = ["john@example.net", "jane@example.net"]
# Two domains, as a real installation has (virtdomains: userid).
BULK = (CyrusPair.make_users(50, domain="example.net", fmt="u{:04d}")
        + CyrusPair.make_users(50, domain="example.org", fmt="u{:04d}"))


def setup_module():
    pair = CyrusPair()
    S["pair"] = pair
    lib.watch_log("cyrus master", pair.master.log_path, scope="module")
    pair.start()
    pair.create_user("john@example.net", folders=["Sent", "Drafts"])
    pair.create_user("jane@example.net")
    pair.master.append("john@example.net", "INBOX", b"Subject: hello\r\n\r\nhi\r\n")
    pair.master.bulk_create(BULK, folders=("Sent",))
    sync(NAMED + BULK)


def sync(users):
    """Replicate the given users master -> replica (sync_client -u, bounded)."""
    S["pair"].sync(list(users), timeout=60, parallel=4 if len(users) > 8 else 1)


def teardown_module():
    if "pair" in S:
        S["pair"].cleanup()


def url(server):
    return "imap://127.0.0.1:%d" % server.ports["imap"]


def control(body, name="replication"):
    """A control file with one replication check of the pair; `body` adds statements."""
    pair = S["pair"]
    text = ("check replication %s\n"
            "    servers \"%s\", \"%s\"\n"
            "    admin \"cyrus\" password \"%s\"\n"
            "    allow plaintext\n%s\n"
            "    if out of sync then alert\n"
            "    if invalid users then alert\n"
            % (name, url(pair.master), url(pair.replica), pair.master.admin_password, body))
    return lib.write_control(lib.tmpdir(), text)


def status_text(server, user, folder):
    st = server.status(user, folder, "(%s)" % " ".join(ITEMS))
    return " ".join("%s %d" % (k, st[k]) for k in ITEMS)


def description():
    pair = S["pair"]
    return "replication %s -> %s" % (url(pair.master), url(pair.replica))


def test_in_sync_is_ok():
    doc = lib.validate_json(control("    users \"john@example.net\", \"jane@example.net\"\n"
                                    "    all mailboxes"), expect_rc=0)
    t = lib.single_test(doc)
    lib.expect_eq(t["name"], description(), "test name")
    lib.expect_result(t, "ok", "none", "")
    lib.expect_eq(t["checked"], NAMED, "checked users")
    lib.expect_eq(sorted(t["statuses"]["john@example.net"]), ["Drafts", "INBOX", "Sent"],
                  "john's mailboxes")
    inbox = status_text(S["pair"].master, "john@example.net", "INBOX")
    lib.expect_eq(t["statuses"]["john@example.net"]["INBOX"], [inbox, inbox], "INBOX statuses")
    lib.expect_eq(t["invalid_users"], [], "invalid users")
    lib.expect_eq(t["metrics"]["out_of_sync"], 0, "out_of_sync metric")
    lib.expect_eq(t["mailboxes_compared_this_run"], 4, "mailboxes compared")


def test_all_users_guessed_from_the_reference():
    doc = lib.validate_json(control("    all users"), expect_rc=0)
    t = lib.single_test(doc)
    lib.expect_result(t, "ok", "none", "")
    lib.expect_eq(sorted(t["checked"]), sorted(NAMED + BULK), "users guessed from user/...")
    lib.expect_eq(t["mailboxes_compared_this_run"], len(NAMED) + len(BULK), "INBOXes compared")


def test_append_without_sync_is_exactly_that_mailbox_then_sync_recovers():
    pair = S["pair"]
    rc = control("    users \"john@example.net\", \"jane@example.net\"\n    all mailboxes")
    try:
        pair.master.append("john@example.net", "Sent", b"Subject: unsynced\r\n\r\nx\r\n")
        doc = lib.validate_json(rc, expect_rc=1)
        t = lib.single_test(doc)
        master = status_text(pair.master, "john@example.net", "Sent")
        replica = status_text(pair.replica, "john@example.net", "Sent")
        lib.expect_true(master != replica, "the APPEND changed the master only", (master, replica))
        lib.expect_result(t, "failed", "content",
                          "1 mailbox out of sync: john@example.net Sent (%s: %s; %s: %s)"
                          % (url(pair.master), master, url(pair.replica), replica))
        lib.expect_eq(t["out_of_sync"], [{"user": "john@example.net", "mailbox": "Sent",
                                          "servers": [master, replica]}], "out_of_sync list")
        lib.expect_eq(t["metrics"]["out_of_sync"], 1, "out_of_sync metric")
    finally:
        sync(["john@example.net"])
    t = lib.single_test(lib.validate_json(rc, expect_rc=0))
    lib.expect_result(t, "ok", "none", "", "after sync_client")


def test_mailbox_missing_on_the_replica():
    pair = S["pair"]
    pair.master.create_mailbox("user/jane/Projects@example.net")
    try:
        doc = lib.validate_json(control("    users \"jane@example.net\"\n    all mailboxes"),
                                expect_rc=1)
        t = lib.single_test(doc)
        st = status_text(pair.master, "jane@example.net", "Projects")
        lib.expect_result(t, "failed", "content",
                          "1 mailbox out of sync: jane@example.net Projects (%s: %s; %s: missing)"
                          % (url(pair.master), st, url(pair.replica)))
    finally:
        sync(["jane@example.net"])


def test_invalid_users_are_reported_not_failed():
    # Cyrus refuses a proxy login as a name with '*' (3 s penalty); ghost has no INBOX.
    doc = lib.validate_json(control("    users \"we*ird@example.net\", \"ghost@example.net\", "
                                    "\"jane@example.net\""), expect_rc=0)
    t = lib.single_test(doc)
    lib.expect_result(t, "ok", "none", "")
    lib.expect_eq(t["invalid_users"], ["ghost@example.net", "we*ird@example.net"], "invalid users")
    lib.expect_eq(t["metrics"]["invalid_users"], 2, "invalid_users metric")
    reasons = t["invalid_user_reasons"]
    lib.expect_eq(reasons["ghost@example.net"],
                  "no INBOX on the reference server %s" % url(S["pair"].master), "ghost")
    lib.expect_match(r"^proxy login refused on imap://127\.0\.0\.1:\d+: mw\d+ NO "
                     r"authentication failure$", reasons["we*ird@example.net"], "we*ird")
    lib.expect_eq(t["checked"], ["we*ird@example.net", "ghost@example.net", "jane@example.net"],
                  "checked")


def test_wrong_admin_password_is_an_auth_failure_not_invalid_users():
    pair = S["pair"]
    text = ("check replication wrongadmin\n"
            "    servers \"%s\", \"%s\"\n"
            "    admin \"cyrus\" password \"not-the-password\" allow plaintext\n"
            "    users \"jane@example.net\"\n"
            "    if failed then alert\n" % (url(pair.master), url(pair.replica)))
    t = lib.single_test(lib.validate_json(lib.write_control(lib.tmpdir(), text), expect_rc=1))
    lib.expect_eq(t["class"], "auth", "class")
    lib.expect_match(r"^the admin cyrus cannot log in on imap://127\.0\.0\.1:%d: login as "
                     r"jane@example\.net \(as cyrus\) failed: mw\d+ NO authentication failure$"
                     % pair.master.ports["imap"], t["message"], "message")
    lib.expect_eq(t["invalid_users"], [], "no invalid users")


def test_time_budget_resumes_across_cycles_until_every_user_is_checked():
    d = lib.tmpdir()
    pair = S["pair"]
    text = ("set daemon 1\n"
            "check replication budget\n"
            "    servers \"%s\", \"%s\"\n"
            "    admin \"cyrus\" password \"%s\" allow plaintext\n"
            "    all users  concurrency 1  with time budget 100 ms\n"
            "    if out of sync then alert\n"
            % (url(pair.master), url(pair.replica), pair.master.admin_password))
    rc = lib.write_control(d, text)
    everyone = sorted(NAMED + BULK)
    seen = []
    with lib.Daemon(rc):
        def progress():
            try:
                doc = lib.status_json(rc)
            except Exception:                      # noqa: BLE001 - no state file yet
                return None
            t = doc["services"][0]["tests"][0]
            if "checked" not in t:
                return None
            seen.append((t["runs"], len(t["checked"]), t["pass_complete"]))
            return t if t["pass_complete"] else None
        t = lib.wait_for(progress, 60, "a complete pass over every user")
    lib.expect_result(t, "ok", "none", "")
    lib.expect_eq(sorted(t["checked"]), everyone, "every user checked in the pass")
    lib.expect_eq(sorted(t["statuses"]), everyone, "statuses of every user")
    first = [s for s in seen if s[0] >= 1][0]
    lib.expect_true(0 < first[1] < len(everyone) and not first[2],
                    "the first run stopped at its budget with part of the users checked", seen)
    lib.expect_true(t["runs"] > 1, "the pass took more than one cycle", seen)
    lib.note("budget 100 ms, 102 users: pass complete after %d runs" % t["runs"])


def test_failed_only_rechecks_only_the_out_of_sync_user():
    pair = S["pair"]
    d = lib.tmpdir()
    body = ("set daemon 1\n"
            "check replication failedonly\n"
            "    servers \"%s\", \"%s\"\n"
            "    admin \"cyrus\" password \"%s\" allow plaintext\n"
            "    users \"john@example.net\", \"jane@example.net\"  all mailboxes\n"
            "%s"
            "    if out of sync then alert\n")
    args = (url(pair.master), url(pair.replica), pair.master.admin_password)

    def last_test(rc, pred):
        def probe():
            t = lib.status_json(rc)["services"][0]["tests"][0] if lib.mw(rc, "status").rc == 0 \
                else None
            return t if t and "checked" in t and pred(t) else None
        return lib.wait_for(probe, 20, "a run of the check")
    try:
        pair.master.append("jane@example.net", "INBOX", b"Subject: unsynced\r\n\r\nx\r\n")
        rc = lib.write_control(d, body % (args + ("",)))
        with lib.Daemon(rc) as dm:
            t = last_test(rc, lambda t: t["status"] == "failed")
            dm.stop()
        lib.expect_eq(sorted(t["checked"]), sorted(NAMED), "a full pass first")
        rc = lib.write_control(d, body % (args + ("    failed only\n",)))
        with lib.Daemon(rc) as dm:
            runs = lib.status_json(rc)["services"][0]["tests"][0]["runs"]
            t = last_test(rc, lambda t: t["runs"] > runs)
            lib.expect_eq(t["checked"], ["jane@example.net"], "only the out-of-sync user")
            lib.expect_eq(t["users_in_pass"], 1, "users in the pass")
            sync(["jane@example.net"])
            t = last_test(rc, lambda t: t["status"] == "ok")
            dm.stop()
        lib.expect_eq(t["out_of_sync"], [], "in sync again")
        # The old plugin's state-file keys, as its users read them with jq.
        for key, want in ((".checked", ["jane@example.net"]), (".invalid_users", []),
                          (".statuses | keys", NAMED[::-1])):
            r = lib.run(["sh", "-c", "%s -c %s status --json | jq -c '.services[0].tests[0]%s'"
                         % (lib.MAILWARDEN, rc, key)])
            lib.expect_eq(json.loads(r.out), want, "jq %s" % key)
        state = open(os.path.join(d, "state.json")).read()
        lib.expect_not_in(pair.master.admin_password, state, "the admin's password in the state")
    finally:
        sync(["jane@example.net"])


def test_dovecot_master_user_lists_each_users_mailboxes_itself():
    # Two unrelated Dovecots stand in for a pair that is not Cyrus: the admin is a master user,
    # which logs in as each user (SASL PLAIN with authzid) but not as itself, and no one lists
    # user/*. The check then asks each user for its own mailboxes (LIST-STATUS). UIDVALIDITY is
    # left out: two instances never share it.
    from mwharness import Dovecot
    base = lib.tmpdir("dovecots")         # short: Dovecot's socket paths must fit in 108 bytes
    pair = [Dovecot(base, name=n, extra_config="auth_failure_delay = 0") for n in ("dc1", "dc2")]
    try:
        for dc in pair:
            lib.watch_log(dc.name + ".log", dc.log_path)
            dc.start()
        urls = ["imap://127.0.0.1:%d" % dc.ports["imap"] for dc in pair]
        text = ("check replication dovecot\n"
                "    servers \"%s\", \"%s\"\n"
                "    admin \"master\" password \"masterpw\" allow plaintext\n"
                "    users \"alice@example.test\"  all mailboxes\n"
                "    status items MESSAGES UNSEEN\n"
                "    if out of sync then alert\n" % tuple(urls))
        rc = lib.write_control(lib.tmpdir(), text)
        doc = lib.validate_json(rc, expect_rc=0)
        t = lib.single_test(doc)
        lib.note("first run (the admin's own login refused once): %.1f s" % doc["_result"].seconds)
        lib.expect_result(t, "ok", "none", "")
        lib.expect_eq(t["statuses"], {"alice@example.test": {
            "INBOX": ["MESSAGES 0 UNSEEN 0", "MESSAGES 0 UNSEEN 0"]}}, "statuses")
        import imaplib
        m = imaplib.IMAP4("127.0.0.1", pair[0].ports["imap"], timeout=10)
        m.login("alice@example.test", "alicepw")
        m.append("INBOX", None, None, b"Subject: only here\r\n\r\nx\r\n")
        m.logout()
        t = lib.single_test(lib.validate_json(rc, expect_rc=1))
        lib.expect_result(t, "failed", "content",
                          "1 mailbox out of sync: alice@example.test INBOX (%s: MESSAGES 1 "
                          "UNSEEN 1; %s: MESSAGES 0 UNSEEN 0)" % tuple(urls))
    finally:
        for dc in pair:
            dc.stop()
