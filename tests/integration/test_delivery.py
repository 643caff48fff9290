"""check delivery against a real Postfix 3.7 -> LMTP -> Dovecot 2.3 on loopback, and drop
directories (file:///) on both sides.

One Dovecot (CA-signed "good" certificate, auth_failure_delay = 0) and one Postfix delivering to
its LMTP serve the tests; a second Postfix whose LMTP transport points at a closed port shows a
message that never arrives.  Each test runs one `validate --json` (or a short daemon run) and
asserts the exact outcome: status, class, message, the failed step and the timings of each step.
Duplicated and altered messages come from a small relay thread between two drop directories.
"""

import os
import re
import threading
import time

import lib
from mwharness import Dovecot, Postfix, make_certs

S = {}  # base, certs, ca, dc, pf, broken (the Postfix without a working LMTP transport)

ALICE = "alice@example.test"
BOB = "bob@example.test"
STEPS = ["clean", "connect", "found", "send", "wait"]
TOKEN = re.compile(r"^[0-9a-f]{64}$")


def setup_module():
    base = lib.tmpdir("delivery")
    certs = make_certs(os.path.join(base, "certs"))
    dc = Dovecot(base, certs=certs, extra_config="auth_failure_delay = 0")
    pf = Postfix(base, dovecot=dc, certs=certs)
    # Same Dovecot for SASL, but an LMTP port nobody listens on: mail is accepted and deferred.
    broken = Postfix(base, name="postfix-nolmtp", certs=certs, lmtp_port=lib.free_port(),
                     auth_port=dc.ports["auth"])
    S.update(base=base, certs=certs, ca=certs["ca"]["cert"], dc=dc, pf=pf, broken=broken)
    lib.watch_log("dovecot.log", dc.log_path, scope="module")
    lib.watch_log("postfix.log", pf.log_path, scope="module")
    dc.start()
    pf.start()


def teardown_module():
    for server in (S.get("broken"), S.get("pf"), S.get("dc")):
        if server:
            server.stop()


def dp(name):
    return S["dc"].ports[name]


def pp(name):
    return S["pf"].ports[name]


def control(send, receive, extra="", head="", rules="    if failed then alert\n", to=ALICE):
    """A control file with one delivery check; verify on, trusting the test CA."""
    text = ("set ssl options { verify: enable, cacertificatefile: %s }\n%s"
            "check delivery probe\n"
            "    send via \"%s\" from \"probe@example.test\" to \"%s\"\n"
            "    receive via \"%s\"\n%s%s"
            % (S["ca"], head, send, to, receive, extra, rules))
    return lib.write_control(lib.tmpdir(), text)


def imaps(user=ALICE, password="alicepw", scheme="imaps", port=None):
    return "%s://%s:%s@127.0.0.1:%d/INBOX" % (scheme, user.replace("@", "%40"), password,
                                              port or dp("imaps" if scheme == "imaps" else "imap"))


def files_with(user, needle):
    """The Maildir files of `user` that contain `needle`."""
    hits = []
    for path in S["dc"].message_files(user):
        with open(path, "rb") as f:
            if needle.encode() in f.read():
                hits.append(path)
    return hits


def expect_ok_round_trip(t, name):
    lib.expect_result(t, "ok", "none", "")
    lib.expect_eq(t["name"], name, "test name")
    lib.expect_match(TOKEN.pattern, t["token"], "token")
    lib.expect_eq(sorted(t["steps_ms"]), STEPS, "timed steps")
    for step in STEPS:
        lib.expect_true(t["steps_ms"][step] >= 0, "step %s timed" % step, t["steps_ms"])
    total = t["steps_ms"]["send"] + t["steps_ms"]["wait"]
    lib.expect_true(abs(t["delivery_ms"] - total) <= 0.11, "delivery = send + wait", t)
    lib.expect_eq(t["metrics"]["latency_ms"], t["delivery_ms"], "latency metric")
    lib.expect_true("failed_step" not in t, "no failed step", t)
    lib.note("%s: delivered in %.1f ms (%s)" % (name.split(" ")[1].split(":")[0],
                                                 t["delivery_ms"], t["steps_ms"]))


def deliver_plain(user, subject):
    """An ordinary message delivered through Postfix (not a probe)."""
    import smtplib
    with smtplib.SMTP("127.0.0.1", pp("smtp"), timeout=10) as s:
        s.sendmail("someone@example.test", [user],
                   "From: someone@example.test\r\nSubject: %s\r\n\r\nkeep me\r\n" % subject)
    S["dc"].wait_for_message(user, subject, timeout=10)


# ---- round trips that work ---------------------------------------------------------------------

def test_round_trip_smtp_starttls_to_imaps_with_idle_cleans_up_only_the_probe():
    deliver_plain(ALICE, "not-a-probe-1")
    rc = control("smtp+starttls://127.0.0.1:%d" % pp("smtp"), imaps(),
                 "    within 10 seconds\n")
    doc = lib.validate_json(rc, expect_rc=0, verbose=True)
    t = lib.single_test(doc)
    expect_ok_round_trip(t, "delivery smtp+starttls://127.0.0.1:%d -> "
                            "imaps://alice%%40example.test@127.0.0.1:%d/INBOX"
                         % (pp("smtp"), dp("imaps")))
    log = doc["_result"].err
    lib.expect_match(r"(?m)C: mw\d+ IDLE$", log, "the receiver waited in IDLE")
    lib.expect_match(r"(?m)send smtp\+starttls://127\.0\.0\.1:\d+ C: STARTTLS$", log,
                     "STARTTLS on the sending side")
    lib.expect_match(r"(?m)C: mw\d+ UID EXPUNGE \d+$", log, "the probe expunged")
    lib.expect_not_in("alicepw", log + doc["_result"].out, "the password in the output")
    lib.expect_eq(files_with(ALICE, t["token"]), [], "probe files left in the Maildir")
    lib.expect_eq(len(files_with(ALICE, "not-a-probe-1")), 1, "the other message is kept")


def test_submission_with_auth_to_imap_starttls():
    send = "smtp+starttls://alice%%40example.test:alicepw@127.0.0.1:%d" % pp("submission")
    rc = control(send, imaps(scheme="imap+starttls"), "    within 10 seconds\n")
    doc = lib.validate_json(rc, expect_rc=0, verbose=True)
    t = lib.single_test(doc)
    expect_ok_round_trip(t, "delivery smtp+starttls://alice%%40example.test@127.0.0.1:%d -> "
                            "imap+starttls://alice%%40example.test@127.0.0.1:%d/INBOX"
                         % (pp("submission"), dp("imap")))
    log = doc["_result"].err
    lib.expect_match(r"(?m)send smtp\+starttls://alice%40example\.test@127\.0\.0\.1:\d+ "
                     r"C: AUTH PLAIN", log, "AUTH on the submission port")
    lib.expect_match(r"(?m)receive imap\+starttls://\S+ C: mw\d+ STARTTLS$", log,
                     "STARTTLS on the receiving side")
    lib.expect_not_in("alicepw", log + doc["_result"].out, "the password in the output")
    lib.expect_eq(files_with(ALICE, t["token"]), [], "probe files left in the Maildir")


def test_smtps_to_pop3s_and_credentials_from_the_file():
    d = lib.tmpdir()
    creds = os.path.join(d, "accounts.cfg")
    with open(creds, "w") as f:
        f.write('bob: { username = "bob@example.test"; password = "bobpw"; };\n')
    os.chmod(creds, 0o600)
    text = ("set ssl options { verify: enable, cacertificatefile: %s }\n"
            "set credentials \"%s\"\n"
            "check delivery probe\n"
            "    send via \"smtps://127.0.0.1:%d\" from \"probe@example.test\" to \"%s\"\n"
            "    receive via \"pop3s://127.0.0.1:%d\" credentials \"bob\"\n"
            "    within 10 seconds\n"
            "    if failed then alert\n" % (S["ca"], creds, pp("smtps"), BOB, dp("pop3s")))
    doc = lib.validate_json(lib.write_control(d, text), expect_rc=0, verbose=True)
    t = lib.single_test(doc)
    expect_ok_round_trip(t, "delivery smtps://127.0.0.1:%d -> pop3s://127.0.0.1:%d"
                         % (pp("smtps"), dp("pop3s")))
    log = doc["_result"].err
    lib.expect_match(r"(?m)receive pop3s://\S+ C: DELE \d+$", log, "the probe deleted")
    lib.expect_not_in("bobpw", log + doc["_result"].out, "the password in the output")
    lib.expect_eq(files_with(BOB, t["token"]), [], "probe files left in bob's Maildir")


def test_plain_pop3_needs_allow_plaintext_and_then_works():
    send = "smtp://127.0.0.1:%d" % pp("smtp")
    receive = "pop3://bob%%40example.test:bobpw@127.0.0.1:%d" % dp("pop3")
    r = lib.mw(control(send, receive, to=BOB), "validate")
    lib.expect_eq(r.rc, 2, "exit status of a refused control file")
    lib.expect_match(r":6:\d+: the password of bob@example\.test would cross an unencrypted "
                     r"connection to pop3://bob%40example\.test@127\.0\.0\.1:\d+; use a TLS "
                     r"scheme", r.err, "the parser's refusal")
    text = control(send, receive, "    within 10 seconds\n    allow plaintext\n", to=BOB)
    t = lib.single_test(lib.validate_json(text, expect_rc=0))
    expect_ok_round_trip(t, "delivery smtp://127.0.0.1:%d -> pop3://bob%%40example.test@"
                            "127.0.0.1:%d" % (pp("smtp"), dp("pop3")))
    lib.expect_eq(files_with(BOB, t["token"]), [], "probe files left in bob's Maildir")


def test_keep_messages_leaves_the_probe():
    rc = control("smtp://127.0.0.1:%d" % pp("smtp"), imaps(), "    keep messages\n")
    t = lib.single_test(lib.validate_json(rc, expect_rc=0))
    lib.expect_result(t, "ok", "none", "")
    lib.expect_eq(len(files_with(ALICE, t["token"])), 1, "the kept probe in the Maildir")


def test_file_drop_directories_on_both_sides():
    d = lib.tmpdir()
    drop = os.path.join(d, "drop")
    os.mkdir(drop)
    with open(os.path.join(drop, "unrelated.eml"), "w") as f:
        f.write("Subject: not a probe\n\nhello\n")
    rc = control("file://%s" % drop, "file://%s" % drop)
    t = lib.single_test(lib.validate_json(rc, expect_rc=0))
    expect_ok_round_trip(t, "delivery file://%s -> file://%s" % (drop, drop))
    lib.expect_eq(os.listdir(drop), ["unrelated.eml"], "what is left in the drop directory")


# ---- failures ----------------------------------------------------------------------------------

def test_verification_follows_set_ssl_options():
    # No CA given: the test CA's certificate cannot be verified.
    text = ("set ssl options { verify: enable }\n"
            "check delivery probe\n"
            "    send via \"smtp://127.0.0.1:%d\" from \"probe@example.test\" to \"%s\"\n"
            "    receive via \"%s\"\n"
            "    if failed then alert\n" % (pp("smtp"), ALICE, imaps()))
    t = lib.single_test(lib.validate_json(lib.write_control(lib.tmpdir(), text), expect_rc=1))
    lib.expect_eq((t["status"], t["class"], t["failed_step"]), ("failed", "tls", "connect"),
                  "status, class, step")
    lib.expect_eq(t["message"], "connect: certificate verification failed: unable to get local "
                  "issuer certificate", "message")


def test_sending_server_down_fails_the_send_step():
    port = lib.free_port()
    rc = control("smtp://127.0.0.1:%d" % port, imaps())
    t = lib.single_test(lib.validate_json(rc, expect_rc=1))
    lib.expect_eq((t["status"], t["class"], t["failed_step"]), ("failed", "connect", "send"),
                  "status, class, step")
    lib.expect_match(r"^send: .*127\.0\.0\.1:%d.*[Cc]onnection refused" % port, t["message"],
                     "message")
    lib.expect_eq(sorted(t["steps_ms"]), ["connect", "send"], "steps timed up to the failure")
    lib.expect_true("delivery_ms" not in t and "metrics" not in t, "no latency", t)


def test_postfix_stopped_fails_the_send_step():
    pf = S["pf"]
    pf.stop()
    try:
        rc = control("smtp+starttls://127.0.0.1:%d" % pp("smtp"), imaps())
        t = lib.single_test(lib.validate_json(rc, expect_rc=1))
    finally:
        pf.start()
    lib.expect_eq((t["class"], t["failed_step"]), ("connect", "send"), "class, step")
    lib.expect_match(r"^send: .*127\.0\.0\.1:%d.*[Cc]onnection refused" % pp("smtp"),
                     t["message"], "message")


def test_receiving_server_refuses_the_login():
    rc = control("smtp://127.0.0.1:%d" % pp("smtp"), imaps(password="wrong"))
    t = lib.single_test(lib.validate_json(rc, expect_rc=1))
    lib.expect_eq((t["class"], t["failed_step"]), ("auth", "connect"), "class, step")
    lib.expect_match(r"^connect: login as alice@example\.test failed: mw\d+ NO "
                     r"\[AUTHENTICATIONFAILED\] Authentication failed\.$", t["message"],
                     "message")


def test_broken_lmtp_transport_fails_the_wait_step():
    broken = S["broken"]
    lib.watch_log("postfix-nolmtp.log", broken.log_path)
    broken.start()
    try:
        rc = control("smtp://127.0.0.1:%d" % broken.ports["smtp"], imaps(),
                     "    within 3 seconds\n")
        doc = lib.validate_json(rc, expect_rc=1)
        t = lib.single_test(doc)
        # The queue manager moves the message between queues; wait until it rests in one.
        queued = lib.wait_for(lambda: broken.queue_files() if len(broken.queue_files()) == 1
                              else None, 10, "the probe resting in Postfix's queue")
    finally:
        broken.stop()
    lib.expect_result(t, "failed", "content",
                      "wait: the probe message did not arrive within 3 s at "
                      "imaps://alice%%40example.test@127.0.0.1:%d/INBOX" % dp("imaps"))
    lib.expect_eq(t["failed_step"], "wait", "failed step")
    lib.expect_true(3000 <= t["steps_ms"]["wait"] < 4500, "waited the 3 s", t["steps_ms"])
    lib.expect_eq(len(queued), 1, "the probe waits in Postfix's queue")


def relay(src, dst, mangle, stop, delay=0.0):
    """Moves each new file of `src` into `dst` through `mangle(name, text) -> [(name, text)]`."""
    seen = set()
    while not stop.is_set():
        for name in sorted(os.listdir(src)):
            if name.startswith(".") or name in seen:
                continue
            seen.add(name)
            with open(os.path.join(src, name)) as f:
                text = f.read()
            os.unlink(os.path.join(src, name))
            time.sleep(delay)
            for out_name, out_text in mangle(name, text):
                tmp = os.path.join(dst, "." + out_name)
                with open(tmp, "w") as f:
                    f.write(out_text)
                os.rename(tmp, os.path.join(dst, out_name))
        time.sleep(0.01)


def run_relayed(mangle, within=5, expect_rc=1):
    d = lib.tmpdir()
    src, dst = os.path.join(d, "out"), os.path.join(d, "in")
    os.mkdir(src)
    os.mkdir(dst)
    stop = threading.Event()
    worker = threading.Thread(target=relay, args=(src, dst, mangle, stop), daemon=True)
    worker.start()
    try:
        rc = control("file://" + src, "file://" + dst, "    within %d seconds\n" % within)
        t = lib.single_test(lib.validate_json(rc, expect_rc=expect_rc))
    finally:
        stop.set()
        worker.join(5)
    return t, sorted(os.listdir(dst))


def test_a_probe_that_arrives_twice_fails_and_both_copies_are_removed():
    t, left = run_relayed(lambda name, text: [(name, text), ("copy-" + name, text)])
    lib.expect_result(t, "failed", "content", "found: the probe message arrived 2 times")
    lib.expect_eq(t["failed_step"], "found", "failed step")
    lib.expect_eq(left, [], "both copies removed")


def test_an_altered_probe_fails_with_the_line_that_changed():
    # A transport that undoes dot-stuffing twice: the line ".a line ..." loses its dot.
    t, left = run_relayed(lambda name, text: [(name, text.replace("\n.a line", "\na line"))])
    lib.expect_result(t, "failed", "content",
                      "found: the probe message arrived altered: body line 5 is \"a line that "
                      "starts with a dot\" instead of \".a line that starts with a dot\"")
    lib.expect_eq(left, [], "the altered probe removed")


def test_a_probe_without_its_token_header_never_counts_as_arrived():
    t, left = run_relayed(lambda name, text: [(name, text.replace("X-Mailwarden-Probe:", "X:"))],
                          within=2)
    lib.expect_eq((t["class"], t["failed_step"]), ("content", "wait"), "class, step")
    lib.expect_match(r"^wait: the probe message did not arrive within 2 s at file://",
                     t["message"], "message")
    lib.expect_eq(len(left), 1, "a message that is not the probe is left alone")


def test_latency_rule_fails_on_a_slow_delivery_and_runs_its_action():
    d = lib.tmpdir()
    src, dst = os.path.join(d, "out"), os.path.join(d, "in")
    os.mkdir(src)
    os.mkdir(dst)
    marker = os.path.join(d, "latency.env")
    script = os.path.join(d, "on-latency.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nprintf '%%s|%%s\\n' \"$MONIT_EVENT\" \"$MONIT_DESCRIPTION\" >> %s\n"
                % marker)
    os.chmod(script, 0o755)
    stop = threading.Event()
    worker = threading.Thread(target=relay, daemon=True,
                              args=(src, dst, lambda n, t: [(n, t)], stop, 1.2))
    worker.start()
    try:
        rc = control("file://" + src, "file://" + dst, "    within 5 seconds\n",
                     head="set daemon 1\n",
                     rules="    if latency > 1 seconds then exec \"%s\"\n" % script)
        with lib.Daemon(rc) as dm:
            lib.wait_for(lambda: os.path.exists(marker), 20, "the latency action")

            def latency_failed():
                t = lib.status_json(rc)["services"][0]["tests"][0]
                return t if t["state"] == "failed" else None
            t = lib.wait_for(latency_failed, 10, "the latency rule's state in status --json")
            dm.stop()
    finally:
        stop.set()
        worker.join(5)
    lib.expect_eq((t["status"], t["state"]), ("ok", "failed"),
                  "the run worked, the latency rule failed")
    lib.expect_true(1200 <= t["delivery_ms"] < 3000, "delivery took the relay's 1.2 s", t)
    with open(marker) as f:
        event, description = f.readline().rstrip("\n").split("|", 1)
    lib.expect_eq(event, "failed", "event")
    lib.expect_match(r"^delivery file://\S+ -> file://\S+ failed: latency \d+\.\d ms exceeds "
                     r"the limit of 1000 ms$", description, "description")
