"""monit's language against the real mail stack: "type tcpssl sslauto" on Dovecot's IMAPS port,
"for 2 times within 3 cycles" with a peer that comes and goes, "depends on", "every 2 cycles",
an include inside a check block, and monit 5.33 itself accepting the corpus of control files
that the unit tests parse (tests/unit/config/monit).

Cycles are driven by SIGUSR1 ("set daemon 3600"), so nothing depends on timing.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time

import lib

S = {}


def setup_module():
    lib.start_module_dovecot(S, "monit-compat-dovecot")


def teardown_module():
    lib.stop_module_servers(S)


class Peer:
    """mw-peer playing a good IMAP server on a fixed port; stop() makes its check fail."""

    def __init__(self):
        self.port = lib.free_port()
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


def control(body):
    d = lib.tmpdir()
    head = "set daemon 3600\nset ssl options { verify: enable, cacertificatefile: %s }\n" % S["ca"]
    return d, lib.write_control(d, head + body)


def cycles_logged(daemon):
    return len(re.findall(r"^\[[^]]+\] info   : cycle \d+: ", daemon.log(), re.M))


def next_cycle(daemon):
    before = cycles_logged(daemon)
    if before > 0:
        daemon.signal(signal.SIGUSR1)
    lib.wait_for(lambda: cycles_logged(daemon) > before, 10, "cycle %d" % (before + 1))


def failures_logged(daemon, service):
    return re.findall(r"error  : '%s' .* failed: " % re.escape(service), daemon.log())


def runs(d, service):
    state = lib.read_json_file(os.path.join(d, "state.json"))
    for s in state["services"]:
        if s["name"] == service:
            return s["checks"][0]["runs"]
    raise lib.TestFailure("no service %r in the state file" % service)


def test_tcpssl_sslauto_on_the_imaps_port():
    port = S["dc"].ports["imaps"]
    _, rc = control("check host dovecot with address 127.0.0.1\n"
                    "  if failed port %d type tcpssl sslauto protocol imap then alert\n" % port)
    t = lib.single_test(lib.validate_json(rc, expect_rc=0))
    lib.expect_eq(t["name"], "imap+ssl 127.0.0.1:%d" % port, "test name (TLS from the first byte)")
    lib.expect_result(t, "ok", "none", "")


def test_include_inside_a_check_block():
    d, rc = control("check host dovecot with address 127.0.0.1\n"
                    "  include templates/imaps\n"
                    "  group mail\n")
    os.mkdir(os.path.join(d, "templates"))
    with open(os.path.join(d, "templates", "imaps"), "w") as f:
        f.write("  if failed port %d type tcpssl protocol imap\n"
                "     for 2 times within 3 cycles then alert\n" % S["dc"].ports["imaps"])
    r = lib.mw(rc, "-t")
    lib.expect_eq((r.rc, r.out.strip()), (0, "Control file syntax OK"), "-t of the file")
    t = lib.single_test(lib.validate_json(rc, expect_rc=0))
    lib.expect_eq(t["name"], "imap+ssl 127.0.0.1:%d" % S["dc"].ports["imaps"], "the included test")
    lib.expect_result(t, "ok", "none", "")


def test_two_failures_within_three_cycles_with_a_peer_that_comes_and_goes():
    peer = Peer().start()
    try:
        _, rc = control("check host flappy with address 127.0.0.1\n"
                        "  if failed port %d protocol imap for 2 times within 3 cycles then alert\n"
                        % peer.port)
        with lib.Daemon(rc) as dm:
            next_cycle(dm)                           # 1: up
            peer.stop()
            next_cycle(dm)                           # 2: down (1 of 3)
            peer.start()
            next_cycle(dm)                           # 3: up
            lib.expect_eq(failures_logged(dm, "flappy"), [], "failures after down, up")
            peer.stop()
            next_cycle(dm)                           # 4: down (2 of the last 3: failed)
            lib.expect_eq(len(failures_logged(dm, "flappy")), 1, "failed events after down, up, down")
            peer.start()
            next_cycle(dm)                           # 5: up: nothing new (else: 1 success)
            lib.wait_for(lambda: "'flappy' imap 127.0.0.1:%d succeeded again" % peer.port in dm.log(),
                         5, "the recovery")
            lib.expect_eq(dm.stop(), 0, "exit status")
    finally:
        peer.stop()


def test_depends_on_a_failing_service_is_not_checked_and_does_not_alert():
    gateway, inner = Peer().start(), Peer().start()
    try:
        d, rc = control("check host gateway with address 127.0.0.1\n"
                        "  if failed port %d protocol imap then alert\n"
                        "check host inner with address 127.0.0.1\n"
                        "  depends on gateway\n"
                        "  if failed port %d protocol imap for 2 cycles then alert\n"
                        % (gateway.port, inner.port))
        with lib.Daemon(rc) as dm:
            next_cycle(dm)                           # 1: both up
            gateway.stop()
            inner.stop()
            next_cycle(dm)                           # 2: gateway fails; inner 1 failure, no event
            lib.expect_eq(len(failures_logged(dm, "gateway")), 1, "gateway failed events")
            next_cycle(dm)                           # 3: inner is left out
            next_cycle(dm)                           # 4: still left out
            lib.expect_eq(failures_logged(dm, "inner"), [], "failed events of inner")
            skipped = re.findall(r"'inner' imap 127.0.0.1:%d: not checked: depends on 'gateway', "
                                 r"which is failing" % inner.port, dm.log())
            # Logged when it starts being left out, not again each cycle.
            lib.expect_eq(len(skipped), 1, "log lines saying inner is left out")
            lib.expect_eq(runs(d, "inner"), 2, "runs of inner (cycles 1 and 2)")
            gateway.start()
            next_cycle(dm)                           # 5: gateway recovers; inner still waits
            next_cycle(dm)                           # 6: inner checked again: 2nd failure
            lib.wait_for(lambda: len(failures_logged(dm, "inner")) == 1, 5,
                         "inner's failure once gateway is back")
            lib.expect_eq(dm.stop(), 0, "exit status")
    finally:
        gateway.stop()
        inner.stop()


def test_every_two_cycles():
    d, rc = control("check host sometimes with address 127.0.0.1\n"
                    "  every 2 cycles\n"
                    "  if failed port %d type tcpssl protocol imap then alert\n"
                    "check host always with address 127.0.0.1\n"
                    "  if failed port %d type tcpssl protocol imap then alert\n"
                    % (S["dc"].ports["imaps"], S["dc"].ports["imaps"]))
    with lib.Daemon(rc) as dm:
        for _ in range(5):
            next_cycle(dm)
        # Each time: a run in between clears the reason.
        lib.expect_eq(len(re.findall(r"'sometimes' .*: not checked: checked every 2 cycles", dm.log())),
                      2, "cycles left out (2 and 4)")
        lib.expect_eq(dm.stop(), 0, "exit status")
    lib.expect_eq((runs(d, "sometimes"), runs(d, "always")), (3, 5), "runs in 5 cycles")


def corpus_copy():
    """The corpus in a private directory: 0600 files, and './' paths made absolute (monit reads
    relative paths against its working directory, mailwarden against the control file's)."""
    src = os.path.join(lib.SRCDIR, "tests", "unit", "config", "monit")
    d = os.path.join(lib.tmpdir("corpus"), "monit")
    shutil.copytree(src, d)
    for root, dirs, files in os.walk(d):
        os.chmod(root, 0o700)
        for name in files:
            path = os.path.join(root, name)
            os.chmod(path, 0o600)
            if name.endswith(".rc"):
                with open(path) as f:
                    text = f.read()
                with open(path, "w") as f:
                    f.write(text.replace("./", d + "/"))
    return d


def test_monit_and_mailwarden_accept_every_corpus_file():
    d = corpus_copy()
    names = sorted(n for n in os.listdir(d) if n.endswith(".rc"))
    lib.expect_true(len(names) >= 30, "at least 30 corpus files", names)
    monit = shutil.which("monit")
    refused = []
    for name in names:
        path = os.path.join(d, name)
        r = lib.run([lib.MAILWARDEN, "-c", path, "-t"])
        if r.rc != 0 or r.out.strip().splitlines()[-1:] != ["Control file syntax OK"]:
            refused.append("mailwarden %s: %s %s" % (name, r.rc, (r.out + r.err).strip()[-300:]))
        if monit:
            p = subprocess.run([monit, "-t", "-c", path], cwd=d, capture_output=True, text=True,
                               timeout=30)
            if p.returncode != 0 or "Control file syntax OK" not in p.stdout + p.stderr:
                refused.append("monit %s: %s" % (name, (p.stdout + p.stderr).strip()[-300:]))
    if not monit:
        lib.note("monit is not installed: only mailwarden -t was run over the corpus")
    lib.expect_eq(refused, [], "corpus files refused")
