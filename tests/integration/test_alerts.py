"""Alerts and actions against a real Postfix + Dovecot: alert mails read back from the
recipient's Dovecot mailbox over IMAP (subject and body expanded, headers valid under
email.policy.strict), reminders, recoveries, filters, failover to a submission server with
STARTTLS + AUTH, the event queue while Postfix is down (also across a kill -9 and a normal
restart: every alert arrives exactly once), and exec actions (state change only, repeat every,
a rate limit under a flapping service across a restart, hanging commands killed at their
timeout, no zombies).

The checked service is a scripted IMAP server (mw-peer) on a fixed port, stopped and started
again to make the check fail and recover.  Cycles are driven with SIGUSR1 (`set daemon 3600`),
so counts do not depend on timing.
"""

import email
import email.policy
import email.utils
import imaplib
import os
import re
import signal
import socket
import subprocess
import time

import lib
from mwharness import proc as hproc
from mwharness import Dovecot, Postfix, make_certs

S = {}
HOST = socket.gethostname()


def setup_module():
    base = lib.tmpdir("alerts")
    certs = make_certs(os.path.join(base, "certs"))
    dc = Dovecot(base, certs=certs, extra_config="auth_failure_delay = 0")
    pf = Postfix(base, dovecot=dc, certs=certs)
    S.update(base=base, certs=certs, ca=certs["ca"]["cert"], dc=dc, pf=pf)
    lib.watch_log("dovecot.log", dc.log_path, scope="module")
    lib.watch_log("postfix.log", pf.log_path, scope="module")
    dc.start()
    pf.start()


def teardown_module():
    for server in (S.get("pf"), S.get("dc")):
        if server:
            server.stop()


# ---- the checked service: a scripted IMAP server on a fixed port --------------------------------

_services = []


def stops_services(test):
    """Every Service a test made is stopped when it ends, also on failure."""
    def run():
        try:
            test()
        finally:
            while _services:
                _services.pop().stop()
    run.__name__ = test.__name__
    return run


class Service:
    """mw-peer playing a good IMAP server on `port`; stop() makes the check fail."""

    def __init__(self, port=None):
        _services.append(self)
        self.port = port or lib.free_port()
        self.popen = None
        self.out = os.path.join(lib.tmpdir("peer"), "mw-peer.out")

    def start(self):
        argv = [lib.MW_PEER, "--port", str(self.port), lib.peer_script("imap-logout-bye-ok.peer")]
        with open(self.out, "ab") as out:
            self.popen = lib.track("mw-peer", subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True))

        def listening():
            if self.popen.poll() is not None:
                raise lib.TestFailure("mw-peer exited: %s" % open(self.out).read())
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        lib.wait_for(listening, 5, "mw-peer on port %d" % self.port)
        return self

    def stop(self):
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()
            self.popen.wait(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---- mailwarden -------------------------------------------------------------------------------

def control(body, d=None, mailserver=None):
    d = d or lib.tmpdir()
    ms = mailserver or "set mailserver 127.0.0.1 port %d" % S["pf"].ports["smtp"]
    text = ("set daemon 3600\nset ssl options { cacertificatefile: %s }\n%s\n%s"
            % (S["ca"], ms, body))
    return d, lib.write_control(d, text)


def own_log(daemon):
    """What this daemon process logged (daemons of one test share their log file)."""
    log = daemon.log()
    start = log.rfind("started (pid %d)" % daemon.pid)
    return log[start:] if start >= 0 else ""


def cycles_logged(daemon):
    return len(re.findall(r"^\[[^]]+\] info   : cycle \d+: ", own_log(daemon), re.M))


def next_cycle(daemon, timeout=10):
    before = cycles_logged(daemon)
    daemon.signal(signal.SIGUSR1)
    lib.wait_for(lambda: cycles_logged(daemon) > before, timeout, "a cycle after SIGUSR1")


def first_cycle(daemon):
    lib.wait_for(lambda: cycles_logged(daemon) >= 1, 10, "the first cycle")


def imap_rule(port):
    return "if failed port %d protocol imap" % port


# ---- the mailbox ----------------------------------------------------------------------------

def mailbox(user):
    """Every message in `user`'s INBOX, parsed with email.policy.strict (a defect raises)."""
    password = S["dc"].users[user]
    imap = imaplib.IMAP4("127.0.0.1", S["dc"].ports["imap"])
    try:
        imap.login(user, password)
        imap.select("INBOX", readonly=True)
        typ, data = imap.search(None, "ALL")
        messages = []
        for num in data[0].split():
            typ, parts = imap.fetch(num, "(RFC822)")
            raw = parts[0][1]
            m = email.message_from_bytes(raw, policy=email.policy.strict)
            m.raw = raw
            messages.append(m)
        return messages
    finally:
        try:
            imap.logout()
        except Exception:
            pass


def mails_about(user, service):
    """The messages of `user` whose subject names `service` (each test has its own names)."""
    return [m for m in mailbox(user) if re.search(r"\b%s\b" % re.escape(service), str(m["Subject"]))]


def wait_mails(user, service, count, timeout=15):
    return lib.wait_for(lambda: (lambda ms: ms if len(ms) >= count else None)(mails_about(user, service)),
                        timeout, "%d mail(s) about %s for %s" % (count, service, user))


def subjects(messages):
    return [str(m["Subject"]) for m in messages]


def check_headers(m, to):
    """A well-formed alert: the headers RFC 5322 wants and the MIME ones."""
    lib.expect_eq(str(m["To"]), to, "To")
    lib.expect_eq(str(m["MIME-Version"]), "1.0", "MIME-Version")
    lib.expect_eq(m.get_content_type(), "text/plain", "Content-Type")
    lib.expect_eq(m.get_content_charset(), "utf-8", "charset")
    lib.expect_eq(str(m["Auto-Submitted"]), "auto-generated", "Auto-Submitted")
    lib.expect_match(r"^<[^<>@\s]+@[^<>@\s]+>$", str(m["Message-ID"]), "Message-ID")
    when = email.utils.parsedate_to_datetime(str(m["Date"]))
    lib.expect_true(abs(time.time() - when.timestamp()) < 300, "Date is now", m["Date"])
    for name, value in m.items():
        lib.expect_true(len(name) + 2 + len(value) < 998, "header line within 998 bytes", name)


# ---- mail alerts ----------------------------------------------------------------------------

@stops_services
def test_alert_mail_on_failure_reminder_and_recovery():
    svc = Service().start()
    rule = imap_rule(svc.port)
    d, rc = control(
        "set alert alice@example.test with reminder on 2 cycles\n"
        "check host it-remind with address 127.0.0.1\n"
        "  %s then alert else if succeeded then alert\n"
        "  alert bob@example.test only on { failed } with mail-format {\n"
        "    subject: bob: $SERVICE is $EVENT\n"
        "    message: $SERVICE $EVENT on $HOST at $DATE.\n"
        "             $DESCRIPTION\n"
        "  }\n"
        "check host it-quiet with address 127.0.0.1\n"
        "  %s then alert\n"
        "  noalert alice@example.test\n" % (rule, rule))
    with lib.Daemon(rc) as dm:
        first_cycle(dm)
        svc.stop()
        next_cycle(dm)                      # failed: alice and bob, once each
        wait_mails("alice@example.test", "it-remind", 1)
        wait_mails("bob@example.test", "it-remind", 1)
        next_cycle(dm)                      # 1 cycle in the failed state: nothing
        next_cycle(dm)                      # 2 cycles: alice's reminder (bob asked for none)
        wait_mails("alice@example.test", "it-remind", 2)
        svc.start()
        next_cycle(dm)                      # succeeded: alice (bob wants failures only)
        alice = wait_mails("alice@example.test", "it-remind", 3)
        next_cycle(dm)
        time.sleep(1.5)                     # Postfix delivers within a second: nothing more comes
        alice = mails_about("alice@example.test", "it-remind")
        bob = mails_about("bob@example.test", "it-remind")
        lib.expect_eq(subjects(alice), ["mailwarden alert --  failed it-remind"] * 2 +
                      ["mailwarden alert --  succeeded it-remind"], "alice's alerts")
        lib.expect_eq(subjects(bob), ["bob: it-remind is failed"], "bob's alerts")
        lib.expect_eq(mails_about("alice@example.test", "it-quiet") + mails_about("bob@example.test", "it-quiet"),
                      [], "mails about it-quiet (noalert, no other recipient)")
        lib.expect_eq(dm.stop(), 0, "exit status")
    desc = ("imap 127.0.0.1:%d failed: connect: cannot connect to 127.0.0.1:%d: Connection refused"
            % (svc.port, svc.port))
    for m in alice:
        check_headers(m, "alice@example.test")
        lib.expect_eq(str(m["From"]), "mailwarden@%s" % HOST, "From (the default)")
    body = alice[0].get_content().replace("\r\n", "\n")
    lib.expect_in("failed Service it-remind\n", body, "default message")
    lib.expect_in("        Action:      alert\n", body, "$ACTION")
    lib.expect_in("        Host:        %s\n" % HOST, body, "$HOST")
    lib.expect_in("        Description: %s\n" % desc, body, "$DESCRIPTION")
    lib.expect_match(r"        Date:        \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n", body, "$DATE")
    lib.expect_in("Description: imap 127.0.0.1:%d succeeded\n" % svc.port,
                  alice[2].get_content().replace("\r\n", "\n"),
                  "recovery message")
    check_headers(bob[0], "bob@example.test")
    lib.expect_match(r"^it-remind failed on %s at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\n             %s\n$"
                     % (re.escape(HOST), re.escape(desc)), bob[0].get_content().replace("\r\n", "\n"),
                     "bob's own message")
    ids = [str(m["Message-ID"]) for m in alice + bob]
    lib.expect_eq(len(set(ids)), len(ids), "Message-IDs are unique")


@stops_services
def test_failover_to_submission_with_starttls_and_login():
    dead = lib.free_port()                  # nothing listens: the first server fails over
    svc = Service()                          # never started: the check fails at once
    d, rc = control(
        "set alert bob@example.test with mail-format { subject: St\u00f6rung $SERVICE \u2013 $EVENT\n"
        "                                              message: \u26a0 $DESCRIPTION }\n"
        "check host it-failover with address 127.0.0.1\n"
        "  %s then alert\n" % imap_rule(svc.port),
        mailserver="set mailserver 127.0.0.1 port %d, 127.0.0.1 port %d username \"alice@example.test\" "
                   "password \"alicepw\" using tls with timeout 10 seconds"
                   % (dead, S["pf"].ports["submission"]))
    with lib.Daemon(rc, verbose=True) as dm:
        got = wait_mails("bob@example.test", "it-failover", 1)
        dm.wait_log(r"alert mail to bob@example.test accepted by 127.0.0.1:%d: 250 2\.0\.0 Ok: queued as"
                    % S["pf"].ports["submission"])
        lib.expect_eq(dm.stop(), 0, "exit status")
    log = dm.log()
    lib.expect_in("mail server 127.0.0.1:%d: connect: cannot connect to 127.0.0.1:%d: Connection refused"
                  % (dead, dead), log, "the first server's failure is logged")
    lib.expect_match(r"mail 127\.0\.0\.1:%d C: STARTTLS$" % S["pf"].ports["submission"], log, "STARTTLS")
    lib.expect_match(r"C: AUTH PLAIN <credentials of alice@example\.test>$", log, "AUTH in the transcript")
    lib.expect_not_in("alicepw", log, "the daemon's -v output")
    lib.expect_eq(subjects(got), ["St\u00f6rung it-failover \u2013 failed"], "the UTF-8 subject, decoded")
    check_headers(got[0], "bob@example.test")
    lib.expect_eq(str(got[0]["Content-Transfer-Encoding"]), "quoted-printable", "a UTF-8 body")
    lib.expect_eq(got[0].get_content().replace("\r\n", "\n"),
                  "\u26a0 imap 127.0.0.1:%d failed: connect: cannot connect to 127.0.0.1:%d: "
                  "Connection refused\n" % (svc.port, svc.port), "the body, decoded")
    lib.expect_match(r"^Subject: =\?UTF-8\?B\?\S+\?=$", got[0].raw.decode("ascii").replace("\r\n", "\n"),
                     "the subject is an RFC 2047 encoded-word (the message is ASCII)")


@stops_services
def test_queue_while_postfix_is_down_each_alert_once_across_kill9_and_restart():
    svc = Service().start()
    d = lib.tmpdir()
    queue = os.path.join(d, "queue")
    _, rc = control(
        "set eventqueue basedir %s slots 100\n"
        "set alert alice@example.test\n"
        "check host it-queue with address 127.0.0.1\n"
        "  %s then alert else if succeeded then alert\n" % (queue, imap_rule(svc.port)), d=d)
    queued = lambda: sorted(n for n in os.listdir(queue) if n.endswith(".mail"))
    pf = S["pf"]
    try:
        dm = lib.Daemon(rc).start()
        first_cycle(dm)
        # Postfix down: the failure waits in the queue, and goes out at the first cycle after
        # Postfix is back.
        pf.stop()
        svc.stop()
        next_cycle(dm)
        lib.wait_for(lambda: len(queued()) == 1, 5, "the failure alert in the queue")
        dm.wait_log(r"1 alert mail\(s\) not delivered \(127\.0\.0\.1:%d: connect: cannot connect to "
                    r"127\.0\.0\.1:%d: Connection refused\); kept in the event queue %s"
                    % (pf.ports["smtp"], pf.ports["smtp"], re.escape(queue)))
        pf.start()
        next_cycle(dm)                       # still failed: no new alert, but the queue is retried
        wait_mails("alice@example.test", "it-queue", 1)
        lib.expect_eq(queued(), [], "queue after delivery")
        # Down again: the recovery and a new failure wait on disk; mailwarden is killed.
        pf.stop()
        svc.start()
        next_cycle(dm)
        svc.stop()
        next_cycle(dm)
        lib.wait_for(lambda: len(queued()) == 2, 5, "two alerts in the queue")
        # Killed once the state file holds the failure (a crash between queueing an alert and
        # saving the state could make the alert again after the restart: at least once).
        lib.wait_for(lambda: lib.read_json_file(os.path.join(d, "state.json"))["services"][0]["checks"][0]
                     ["rules"][0]["state"] == "failed", 5, "the failed state in the state file")
        dm.kill9()
        lib.expect_eq(len(queued()), 2, "queue after kill -9")
        pf.start()
        dm2 = lib.Daemon(rc).start()
        dm2.wait_log(r"event queue %s: 2 alert mail\(s\) waiting from before" % re.escape(queue))
        wait_mails("alice@example.test", "it-queue", 3)
        lib.wait_for(lambda: queued() == [], 5, "an empty queue")
        next_cycle(dm2)
        # A normal restart sends nothing again.
        lib.expect_eq(dm2.stop(), 0, "exit status after SIGTERM")
        dm3 = lib.Daemon(rc).start()
        first_cycle(dm3)
        next_cycle(dm3)
        time.sleep(1.5)
        got = mails_about("alice@example.test", "it-queue")
        # Each exactly once. The order is mailwarden's (the queue's) order of sending: Postfix
        # delivers the messages of one session in parallel, so the mailbox order proves nothing.
        lib.expect_eq(sorted(subjects(got)), ["mailwarden alert --  failed it-queue",
                                              "mailwarden alert --  failed it-queue",
                                              "mailwarden alert --  succeeded it-queue"],
                      "each alert exactly once")
        sent = re.findall(r"alert mail to alice@example\.test accepted by \S+: .*\((.*)\)$",
                          dm3.log(), re.M)
        lib.expect_eq([("succeeded" if "succeeded" in x else "failed") for x in sent],
                      ["failed", "succeeded", "failed"], "the order mailwarden sent them in")
        lib.expect_eq(len({str(m["Message-ID"]) for m in got}), 3, "three distinct Message-IDs")
        lib.expect_not_in("waiting from before", own_log(dm3), "nothing waited after the normal restart")
        lib.expect_eq(dm3.stop(), 0, "exit status")
    finally:
        pf.start()


# ---- exec actions -----------------------------------------------------------------------------

def exec_script(d):
    """A command that records each run: d/runs gets one line per run (EVENT SERVICE)."""
    path = os.path.join(d, "record.sh")
    with open(path, "w") as f:
        f.write('#!/bin/sh\necho "$MAILWARDEN_EVENT $MONIT_SERVICE" >> "%s/runs"\n' % d)
    os.chmod(path, 0o755)
    return path


def runs(d):
    try:
        with open(os.path.join(d, "runs")) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def settle(daemon, d, count):
    """Wait until `count` runs are recorded and mailwarden has no exec running."""
    lib.wait_for(lambda: len(runs(d)) >= count, 5, "%d exec run(s)" % count)
    time.sleep(0.3)


@stops_services
def test_exec_on_change_and_repeat_every_n_cycles():
    svc = Service()                          # down from the start
    d = lib.tmpdir()
    script = exec_script(d)
    _, rc = control("check host it-repeat with address 127.0.0.1\n"
                    "  %s then exec \"%s\" repeat every 2 cycles\n"
                    "     else if succeeded then exec \"%s\"\n" % (imap_rule(svc.port), script, script), d=d)
    with lib.Daemon(rc) as dm:
        first_cycle(dm)                      # failed: runs at the change
        settle(dm, d, 1)
        for _ in range(4):                   # cycles 1..4 in the failed state: runs at 2 and 4
            next_cycle(dm)
        settle(dm, d, 3)
        svc.start()
        next_cycle(dm)                       # recovered: once
        next_cycle(dm)
        next_cycle(dm)
        settle(dm, d, 4)
        lib.expect_eq(runs(d), ["failed it-repeat"] * 3 + ["succeeded it-repeat"], "exec runs")
        lib.expect_eq(lib.zombies(dm.pid), [], "zombie children of mailwarden")
        lib.expect_eq(dm.stop(), 0, "exit status")


@stops_services
def test_exec_rate_limit_under_flapping_across_restart():
    svc = Service().start()
    d = lib.tmpdir()
    script = exec_script(d)
    _, rc = control("check host it-flap with address 127.0.0.1\n"
                    "  %s then exec \"%s\" with rate limit 2 per 1 hour\n" % (imap_rule(svc.port), script), d=d)

    def flap(daemon, times):
        for _ in range(times):
            svc.stop()
            next_cycle(daemon)               # failed: an exec, if the bucket allows
            svc.start()
            next_cycle(daemon)               # recovered
    dm = lib.Daemon(rc).start()
    first_cycle(dm)
    flap(dm, 4)
    settle(dm, d, 2)
    lib.expect_eq(runs(d), ["failed it-flap"] * 2, "runs after 4 failures (2 per hour allowed)")
    for n in (1, 2):
        lib.expect_in('exec \'it-flap\' "%s": suppressed by its rate limit of 2 per 3600 s (%d suppressed so far)'
                      % (script, n), dm.log(), "suppressed runs are logged and counted")
    lib.expect_eq(dm.stop(), 0, "exit status")
    dm2 = lib.Daemon(rc).start()             # a restart does not refill the bucket
    first_cycle(dm2)
    flap(dm2, 2)
    time.sleep(0.5)
    lib.expect_eq(runs(d), ["failed it-flap"] * 2, "runs after 2 more failures following a restart")
    dm2.wait_log(r"suppressed by its rate limit of 2 per 3600 s \(4 suppressed so far\)")
    lib.expect_eq(dm2.stop(), 0, "exit status")
    state = lib.read_json_file(os.path.join(d, "state.json"))
    buckets = state["actions"]["rate_limits"]
    lib.expect_eq([b["suppressed"] for b in buckets.values()], [4], "the bucket in the state file")


def test_hanging_commands_killed_at_their_timeout_no_zombies():
    svc = Service()                          # down: both rules fail in the first cycle
    d = lib.tmpdir()
    _, rc = control("check host it-hang with address 127.0.0.1\n"
                    "  %s then exec \"sleep 60 & sleep 60\" with timeout 1 seconds\n"
                    "check host it-stubborn with address 127.0.0.1\n"
                    "  %s then exec \"trap '' TERM; sleep 60\" with timeout 1 seconds\n"
                    % (imap_rule(svc.port), imap_rule(svc.port)), d=d)
    with lib.Daemon(rc) as dm:
        started = dm.wait_log(r"exec '(it-hang|it-stubborn)' .*: started pid (\d+)", count=2)
        pids = {name: int(pid) for name, pid in started}
        t0 = time.monotonic()
        dm.wait_log(r"exec 'it-hang' \"sleep 60 & sleep 60\": pid %d killed by signal 15 \(timeout\)"
                    % pids["it-hang"], timeout=5)
        lib.expect_true(time.monotonic() - t0 < 3, "TERM came at the timeout")
        # It ignores TERM: KILL follows 5 s later.
        dm.wait_log(r"exec 'it-stubborn' .*: still running, sending KILL to pid %d" % pids["it-stubborn"],
                    timeout=10)
        dm.wait_log(r"exec 'it-stubborn' .*: pid %d killed by signal 9 \(timeout\)" % pids["it-stubborn"],
                    timeout=5)
        lib.expect_in("exec 'it-hang' \"sleep 60 & sleep 60\": timed out, sending TERM to pid %d"
                      % pids["it-hang"], dm.log(), "the TERM is logged")
        for name, pid in pids.items():
            lib.wait_for(lambda: hproc.group_members(pid) == [], 5, "no process left in the group of %s" % name)
        lib.expect_eq(lib.zombies(dm.pid), [], "zombie children of mailwarden")
        lib.expect_eq(dm.stop(), 0, "exit status")
