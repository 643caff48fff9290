#!/usr/bin/env python3
"""Soak: the daemon for many 1 s cycles under churn. A script that prints figures, not a test.

    MW_SRCDIR=. MW_BUILDDIR=build python3 tests/soak/soak.py [--cycles N] [--checks N] [--keep]
                                       [--tmpfs-mb N] [--usr1-every SECONDS]

Runs `mailwarden -I` (as root, with MAILWARDEN_ALLOW_ROOT=1, in a private directory) with
--checks services at `set daemon 1`:
  - 60% healthy: IMAP dialogues against a scripted peer (tests/peers/scripts/imap-logout-bye-ok);
  - 20% failing: connects to a port nothing listens on;
  - 20% flapping: connects to a listener this script opens and closes every 5 s.
Every state change mails soak@example.test through an SMTP sink this script runs, which is up
for 25 s, then down for 15 s, and so on; mails no server takes wait in the event queue. The state
file and the event queue live on a small tmpfs (4 MiB) that a filler file fills up completely for 20 s
out of every 120 s. Every 60 s: SIGHUP (reload); every 30 s: a flood of 50 SIGUSR1;
with --usr1-every, one more SIGUSR1 (an extra cycle) every so many seconds.

Every 10 s it prints the daemon's RSS and open file descriptors, the cycle reached (from its
log), the cycle the state file on disk was written in, whether the state file parses, and the alert counts. At the end the flapping stops, the mail server
stays up, the queue drains, and it prints: alerts the daemon raised ("alert: ..." log lines),
mails the sink received, mails the daemon logged as dropped, and what is left in the queue.
Lost = raised - received - dropped (must be 0). Exit status 0 when nothing was lost, the
state always parsed, RSS stayed flat (last <= first + 25%, after warm-up), the fd count between
cycles did not grow and never exceeded what the checks in flight explain.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

SRC = os.environ.get("MW_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD = os.environ.get("MW_BUILDDIR", os.path.join(SRC, "build"))
MAILWARDEN = os.path.join(BUILD, "mailwarden")
PEER = os.path.join(BUILD, "mw-peer")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Flapper:
    """A TCP listener that exists for `period` seconds, then not for `period` seconds."""

    def __init__(self, port, period=5.0):
        self.port, self.period = port, period
        self.stop = threading.Event()
        self.steady = threading.Event()  # set: stay up from now on
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        up = True
        while not self.stop.is_set():
            if up:
                srv = socket.socket()
                srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                srv.bind(("127.0.0.1", self.port))
                srv.listen(512)
                srv.settimeout(0.2)
                until = time.time() + self.period
                while (time.time() < until or self.steady.is_set()) and not self.stop.is_set():
                    try:
                        c, _ = srv.accept()
                        c.close()
                    except socket.timeout:
                        pass
                srv.close()
            else:
                self.stop.wait(self.period)
            up = not up


class SmtpHandler(socketserver.StreamRequestHandler):
    def handle(self):
        sink = self.server.sink
        w = self.wfile.write
        w(b"220 soak ESMTP\r\n")
        in_data = False
        body = []
        while True:
            line = self.rfile.readline(65536)
            if not line:
                return
            if in_data:
                if line in (b".\r\n", b".\n"):
                    in_data = False
                    sink.record(b"".join(body))
                    body = []
                    w(b"250 2.0.0 queued\r\n")
                else:
                    body.append(line)
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                w(b"250-soak\r\n250 8BITMIME\r\n")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                w(b"250 2.0.0 ok\r\n")
            elif verb == b"DATA":
                in_data = True
                w(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                w(b"221 bye\r\n")
                return
            else:
                w(b"502 5.5.2 no\r\n")


class SmtpSink:
    """An SMTP server that takes every message; up for `up` s, down for `down` s."""

    def __init__(self, port, up=25.0, down=15.0):
        self.port, self.up, self.down = port, up, down
        self.received = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.steady = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def record(self, body):
        with self.lock:
            self.received += 1

    def run(self):
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        socketserver.ThreadingTCPServer.daemon_threads = True
        while not self.stop.is_set():
            srv = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), SmtpHandler)
            srv.sink = self
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
            t.start()
            until = time.time() + self.up
            while (time.time() < until or self.steady.is_set()) and not self.stop.is_set():
                time.sleep(0.2)
            srv.shutdown()
            srv.server_close()
            if not self.stop.is_set():
                self.stop.wait(self.down)


def proc_figures(pid):
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    fds = len(os.listdir("/proc/%d/fd" % pid))
    return rss / 1024.0, fds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=10000)
    ap.add_argument("--checks", type=int, default=300)
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--tmpfs-mb", type=int, default=4,
                    help="size of the tmpfs under the state file and the queue (the state file "
                         "of 300 checks with their history is ~0.5 MB; an atomic write needs room "
                         "for two)")
    ap.add_argument("--usr1-every", type=float, default=0,
                    help="also send one SIGUSR1 (an extra cycle) every N seconds")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak: run as root (it mounts a tmpfs)")

    work = tempfile.mkdtemp(prefix="mw-soak-")
    full = os.path.join(work, "full")  # the small tmpfs: state and event queue
    os.makedirs(full)
    mounted = subprocess.call(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0755" % args.tmpfs_mb, "tmpfs", full]) == 0
    if not mounted:
        print("soak: cannot mount a tmpfs; the disk-full phases are skipped", flush=True)
    peer_port, dead_port, flap_port, smtp_port = free_port(), free_port(), free_port(), free_port()
    peer = subprocess.Popen([PEER, "--bind", "127.0.0.1", "--port", str(peer_port),
                             os.path.join(SRC, "tests/peers/scripts/imap-logout-bye-ok.peer")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    flapper = Flapper(flap_port)
    sink = SmtpSink(smtp_port)

    n_ok = args.checks * 6 // 10
    n_fail = args.checks * 2 // 10
    n_flap = args.checks - n_ok - n_fail
    rc_path = os.path.join(work, "mailwardenrc")
    lines = [
        "set daemon 1",
        "set logfile %s/daemon.log" % work,
        "set pidfile %s/mailwarden.pid" % work,
        "set statefile %s/state" % full,
        "set eventqueue basedir %s/events slots 100000" % full,
        "set mailserver 127.0.0.1 port %d with timeout 5 seconds" % smtp_port,
        "set alert soak@example.test",
    ]
    for i in range(n_ok):
        lines += ["check host ok%03d with address 127.0.0.1" % i,
                  "  if failed port %d protocol imap timeout 3 seconds then alert" % peer_port]
    for i in range(n_fail):
        lines += ["check host down%03d with address 127.0.0.1" % i,
                  "  if failed port %d timeout 3 seconds then alert" % dead_port]
    for i in range(n_flap):
        lines += ["check host flap%03d with address 127.0.0.1" % i,
                  "  if failed port %d timeout 3 seconds then alert" % flap_port]
    with open(rc_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(rc_path, 0o600)

    env = dict(os.environ, MAILWARDEN_ALLOW_ROOT="1")
    daemon = subprocess.Popen([MAILWARDEN, "-c", rc_path, "-I"], env=env,
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "stderr"), "w"))
    log_path = os.path.join(work, "daemon.log")
    state_path = os.path.join(full, "state")
    t0 = time.time()
    samples = []
    state_failures = 0
    state_reads = 0
    hups = usr1 = 0
    filler = os.path.join(full, "filler")
    last_hup = last_usr1 = last_sample = last_tick = t0
    cycle = 0  # the last "cycle N:" line of the daemon's log
    state_cycle = 0  # the cycle the state file on disk was written in
    scanner = LogScanner(log_path)
    print("soak: %d checks (%d ok, %d failing, %d flapping), 1 s cycles, until cycle %d; in %s"
          % (args.checks, n_ok, n_fail, n_flap, args.cycles, work), flush=True)
    print("%8s %7s %7s %8s %5s %6s %8s %8s %s" % ("time_s", "cycle", "st_cyc", "rss_MB", "fds", "state", "raised", "received", "phase"),
          flush=True)
    try:
        while cycle < args.cycles:
            time.sleep(min(0.5, args.usr1_every) if args.usr1_every > 0 else 0.5)
            now = time.time()
            if args.usr1_every > 0 and now - last_tick >= args.usr1_every:
                daemon.send_signal(signal.SIGUSR1)
                usr1 += 1
                last_tick = now
            if daemon.poll() is not None:
                print("soak: the daemon exited with %s" % daemon.returncode, flush=True)
                break
            # The disk-full phase: seconds 60..80 of every 120.
            phase = "normal"
            if mounted:
                in_full = 60 <= (now - t0) % 120 < 80
                if in_full and not os.path.exists(filler):
                    try:  # the queue may have filled the disk already
                        with open(filler, "wb") as f:
                            while True:
                                f.write(b"\0" * 65536)
                                f.flush()
                    except OSError:
                        pass
                elif not in_full and os.path.exists(filler):
                    os.unlink(filler)
                phase = "disk full" if in_full else "normal"
            if now - last_hup >= 60:
                daemon.send_signal(signal.SIGHUP)
                hups += 1
                last_hup = now
            if now - last_usr1 >= 30:
                for _ in range(50):
                    daemon.send_signal(signal.SIGUSR1)
                usr1 += 50
                last_usr1 = now
            if now - last_sample >= 10:
                last_sample = now
                rss, fds = proc_figures(daemon.pid)
                ok = "-"
                try:
                    with open(state_path) as f:
                        st = json.load(f)
                    state_reads += 1
                    ok = "ok" if st.get("format") == 1 else "BAD"
                    state_cycle = int(st.get("cycles", state_cycle))
                    if ok != "ok":
                        state_failures += 1
                except FileNotFoundError:
                    pass
                except (ValueError, OSError):
                    state_failures += 1
                    ok = "BAD"
                scanner.scan()
                raised, cycle = scanner.raised, scanner.cycle
                samples.append((now - t0, cycle, rss, fds))
                print("%8.0f %7d %7d %8.1f %5d %6s %8d %8d %s" % (now - t0, cycle, state_cycle, rss, fds, ok, raised, sink.received, phase),
                      flush=True)
    except KeyboardInterrupt:
        print("soak: interrupted", flush=True)

    # Drain: no more churn, the mail server stays up, the queue empties.
    if os.path.exists(filler):
        os.unlink(filler)
    flapper.steady.set()
    sink.steady.set()
    drain_until = time.time() + 120
    while time.time() < drain_until and daemon.poll() is None:
        time.sleep(2)
        scanner.scan()
        raised, dropped = scanner.raised, scanner.dropped
        if sink.received + dropped >= raised and not queued(full):
            break
    running = daemon.poll() is None
    if running:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()
    scanner.scan()
    raised, dropped, cycle = scanner.raised, scanner.dropped, scanner.cycle
    left = queued(full)
    peer.terminate()
    peer.wait()
    flapper.stop.set()
    sink.stop.set()

    warm = [s for s in samples if s[0] >= 60] or samples
    print("\nsoak summary (%.0f s, %d cycles, %d SIGHUP, %d SIGUSR1)" % (time.time() - t0, cycle, hups, usr1))
    ok = running
    if warm:
        rss = [s[2] for s in warm]
        fds = [s[3] for s in warm]
        print("  RSS after warm-up: first %.1f MB, min %.1f, max %.1f, last %.1f" % (rss[0], min(rss), max(rss), rss[-1]))
        print("  open fds after warm-up: first %d, min %d, max %d, last %d" % (fds[0], min(fds), max(fds), fds[-1]))
        # A sample may fall inside a cycle, when every check holds a socket: a leak shows as a
        # rising floor (the fewest fds of the last ten samples against the first ten), and the
        # ceiling must stay what the checks in flight explain.
        floor_first, floor_last = min(fds[:10]), min(fds[-10:])
        print("  fds between cycles: %d in the first ten samples, %d in the last ten"
              % (floor_first, floor_last))
        ok = (ok and rss[-1] <= rss[0] * 1.25 and floor_last <= floor_first + 5
              and max(fds) <= floor_first + args.checks + 25)
    lost = raised - sink.received - dropped
    print("  alerts raised %d, mails received %d, dropped (logged) %d, left in the queue %d, lost %d"
          % (raised, sink.received, dropped, left, lost))
    print("  state file: %d reads, %d unparseable" % (state_reads, state_failures))
    errors = scanner.state_errors
    print("  state writes refused by the full disk (logged): %d" % errors)
    ok = ok and lost == 0 and state_failures == 0 and cycle >= args.cycles
    print("soak: %s" % ("OK" if ok else "NOT OK"), flush=True)
    if mounted:
        subprocess.call(["umount", full])
    if not args.keep and ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("soak: files kept in %s" % work)
    return 0 if ok else 1


RAISED = re.compile(r"\] (?:info|error)\s*: alert: '")
DROPPED = re.compile(r"alert mail to \S+ dropped")


CYCLE = re.compile(r"\] info\s*: cycle (\d+): ")
STATE_ERROR = re.compile(r"cannot write the state file")


class LogScanner:
    """Reads the daemon's log incrementally (it grows to tens of MB): alerts raised, mails
    dropped, the last cycle, refused state writes."""

    def __init__(self, path):
        self.path, self.offset, self.rest = path, 0, b""
        self.raised = self.dropped = self.cycle = self.state_errors = 0

    def scan(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        for raw in lines:
            line = raw.decode(errors="replace")
            if RAISED.search(line):
                self.raised += 1
            elif DROPPED.search(line):
                self.dropped += 1
            elif STATE_ERROR.search(line):
                self.state_errors += 1
            else:
                m = CYCLE.search(line)
                if m:
                    self.cycle = max(self.cycle, int(m.group(1)))


def queued(full):
    d = os.path.join(full, "events")
    try:
        return len([f for f in os.listdir(d) if f.endswith(".mail")])
    except FileNotFoundError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
