#!/usr/bin/env python3
"""Alert fan-out benchmark: N services (default 1,000) fail at once (their port refuses
connections) and each mails one alert through a real, private Postfix into Dovecot.

Measured in one run, against the same Postfix and Dovecot:
  baseline   python's smtplib sends N messages of the same size in one SMTP session: the time
             until Postfix has accepted them all, and until all N are in the mailbox. This is
             about the floor of what any client can get out of this Postfix and Dovecot.
  direct     mailwarden -I with the N failing services: time from its start to the end of its
             first cycle, to the N-th "accepted" reply of Postfix, and to the N-th message in
             the mailbox; mailwarden's peak RSS.
  queued     the same with `set eventqueue` while Postfix is stopped: the N alerts go to disk,
             then K more cycles retry them all (Postfix still down), and mailwarden's RSS is
             sampled after each retry (it must stay flat); then Postfix starts and a cycle
             sends them: time until the N-th message is in the mailbox.

Goal: in the direct run, the N-th alert reaches the mail server within one cycle + 10 s of the
state change, with flat memory while the queue is retried.

    MW_SRCDIR=... MW_BUILDDIR=... python3 tests/bench/bench_alerts.py [--services 1000] [--retries 5]
"""

import argparse
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from mwharness import Dovecot, Postfix, make_certs  # noqa: E402
from mwharness.ports import free_port  # noqa: E402

USERS = {"alice@example.test": "alicepw", "bob@example.test": "bobpw", "carol@example.test": "carolpw"}
POSTFIX_TUNING = "default_process_limit = 200\nsmtpd_client_connection_count_limit = 0\n"
DOVECOT_TUNING = common.DOVECOT_MANY_CLIENTS + """
service lmtp {
  process_limit = 200
}
"""


def count_mail(dc, user):
    return len(dc.message_files(user))


def wait_until(pred, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise RuntimeError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def proc_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def control(work, ca, smtp_port, refused_port, services, recipient, queue=None):
    lines = ["set daemon 3600",
             "set statefile %s/state-%s" % (work, recipient.split("@")[0]),
             "set pidfile %s/pid-%s" % (work, recipient.split("@")[0]),
             "set ssl options { cacertificatefile: %s }" % ca,
             "set limits { connections: 2048 }",
             "set mailserver 127.0.0.1 port %d with timeout 10 seconds" % smtp_port,
             "set alert %s" % recipient]
    if queue:
        lines.append("set eventqueue basedir %s slots %d" % (queue, services + 10))
    for i in range(services):
        lines.append("check host svc%04d with address 127.0.0.1" % i)
        lines.append("  if failed port %d protocol imap then alert" % refused_port)
    return common.write_control(work, "\n".join(lines) + "\n", name="%s.rc" % recipient.split("@")[0])


def sample_message(i):
    body = ("failed Service svc%04d\r\n\r\n        Date:        2026-11-25 18:34:35\r\n"
            "        Action:      alert\r\n        Host:        bench\r\n"
            "        Description: imap 127.0.0.1:1 failed: connect: cannot connect to 127.0.0.1:1: "
            "Connection refused\r\n\r\nYour faithful employee,\r\nmailwarden\r\n" % i)
    return ("Date: Wed, 25 Nov 2026 18:34:35 +0000\r\nFrom: bench@example.test\r\n"
            "To: carol@example.test\r\nSubject: mailwarden alert --  failed svc%04d\r\n"
            "Message-ID: <%d.bench@example.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=UTF-8\r\n\r\n" % (i, i)) + body


def baseline(pf, dc, n):
    t0 = time.monotonic()
    with smtplib.SMTP("127.0.0.1", pf.ports["smtp"], timeout=30) as s:
        for i in range(n):
            s.sendmail("bench@example.test", ["carol@example.test"], sample_message(i))
    accepted = time.monotonic() - t0
    in_box = wait_until(lambda: count_mail(dc, "carol@example.test") >= n, 120, "baseline mails") - t0
    return accepted, in_box


class Daemon:
    def __init__(self, rc, log):
        self.log_path = log
        self.out = open(log, "ab")
        self.t0 = time.monotonic()
        self.p = subprocess.Popen([common.mailwarden(), "-c", rc, "-I"], stdin=subprocess.DEVNULL,
                                  stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def count(self, pattern):
        return len(re.findall(pattern, self.log(), re.M))

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(timeout=60)
        self.out.close()


def direct(work, ca, pf, dc, refused, n):
    rc = control(work, ca, pf.ports["smtp"], refused, n, "alice@example.test")
    d = Daemon(rc, os.path.join(work, "direct.log"))
    t_cycle = wait_until(lambda: d.count(r"info   : cycle 1: ") == 1, 120, "the first cycle") - d.t0
    t_accepted = wait_until(lambda: d.count(r"alert mail to alice@example\.test accepted by") >= n, 120,
                            "%d accepted alerts" % n, interval=0.05) - d.t0
    t_box = wait_until(lambda: count_mail(dc, "alice@example.test") >= n, 120, "alerts in the mailbox") - d.t0
    hwm = proc_kb(d.p.pid, "VmHWM")
    sessions = d.log().count("accepted by")
    d.stop()
    return t_cycle, t_accepted, t_box, hwm, sessions


def queued(work, ca, pf, dc, refused, n, retries, queue_parent):
    # On a disk, not tmpfs: the fsyncs of the queue cost what they cost in production.
    queue = os.path.join(tempfile.mkdtemp(prefix="mw-bench-queue-", dir=queue_parent), "queue")
    rc = control(work, ca, pf.ports["smtp"], refused, n, "bob@example.test", queue=queue)
    pf.stop()
    d = Daemon(rc, os.path.join(work, "queued.log"))
    files = lambda: len([f for f in os.listdir(queue) if f.endswith(".mail")]) if os.path.isdir(queue) else 0
    t_disk = wait_until(lambda: files() >= n, 120, "%d mails in the queue" % n) - d.t0
    wait_until(lambda: d.count(r"alert mail\(s\) not delivered") >= 1, 60, "the first failed round")
    rss = [proc_kb(d.p.pid, "VmRSS")]
    for k in range(retries):
        before = d.count(r"alert mail\(s\) not delivered")
        d.p.send_signal(signal.SIGUSR1)
        wait_until(lambda: d.count(r"alert mail\(s\) not delivered") > before, 60, "retry %d" % (k + 1))
        rss.append(proc_kb(d.p.pid, "VmRSS"))
    pf.start()
    t1 = time.monotonic()
    d.p.send_signal(signal.SIGUSR1)
    t_box = wait_until(lambda: count_mail(dc, "bob@example.test") >= n, 120, "queued alerts in the mailbox") - t1
    wait_until(lambda: files() == 0, 30, "an empty queue")
    hwm = proc_kb(d.p.pid, "VmHWM")
    d.stop()
    shutil.rmtree(os.path.dirname(queue), ignore_errors=True)
    return t_disk, rss, t_box, hwm


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--retries", type=int, default=5)
    ap.add_argument("--queue-parent", default="/var/tmp", help="where the event queue lives (a disk)")
    args = ap.parse_args()
    n = args.services
    common.enable_subreaper()
    work = tempfile.mkdtemp(prefix="mw-bench-alerts-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.chmod(work, 0o755)
    certs = make_certs(os.path.join(work, "certs"))
    dc = Dovecot(work, certs=certs, users=USERS, extra_config=DOVECOT_TUNING)
    pf = Postfix(work, dovecot=dc, certs=certs, extra_main_cf=POSTFIX_TUNING)
    refused = free_port()                     # nothing listens: every check fails at once
    ok = False
    try:
        dc.start()
        pf.start()
        b_accept, b_box = baseline(pf, dc, n)
        t_cycle, t_accepted, t_box, hwm, _ = direct(work, certs["ca"]["cert"], pf, dc, refused, n)
        q_disk, rss, q_box, q_hwm = queued(work, certs["ca"]["cert"], pf, dc, refused, n, args.retries,
                                     args.queue_parent)
        ok = True
    finally:
        pf.stop()
        dc.stop()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("work directory kept: %s" % work, file=sys.stderr)

    print("\n%d services failing at once, one alert each, Postfix -> Dovecot LMTP on loopback\n" % n)
    common.table([
        ["baseline: smtplib, 1 session", "-", "%.2f s" % b_accept, "%.2f s" % b_box, "-"],
        ["mailwarden, direct", "%.2f s" % t_cycle, "%.2f s" % t_accepted, "%.2f s" % t_box,
         "%.1f MB" % (hwm / 1024)],
        ["mailwarden, queued (from Postfix start)", "-", "-", "%.2f s" % q_box, "%.1f MB" % (q_hwm / 1024)],
    ], ["run", "first cycle done", "all accepted", "all in mailbox", "peak RSS"])
    print("\nqueued run: %d alert mails on disk %.2f s after start (a file each, one sync of the file"
          " system for all, renames, an fsync of the directory)"
          % (n, q_disk))
    print("RSS while the queue of %d is retried with Postfix down (after the first round, then each"
          " retry): %s" % (n, ", ".join("%.1f" % (r / 1024) for r in rss)) + " MB")
    print("goal: all accepted within one cycle + 10 s of the state change: %s (%.2f s after the"
          " first cycle ended)" % ("met" if t_accepted - t_cycle <= 10 else "NOT met", t_accepted - t_cycle))


if __name__ == "__main__":
    main()
