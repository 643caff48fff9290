"""Shared pieces of mailwarden's benchmarks: paths, a private Dovecot tuned for many
concurrent logins, a tarpit, and running a command while measuring its wall time, CPU time
and peak RSS (from getrusage of the finished child)."""

import os
import resource
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("MW_SRCDIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("MW_BUILDDIR") or os.path.join(SRC, "build")
sys.path.insert(0, os.path.join(SRC, "tests", "harness"))

from mwharness import Dovecot, enable_subreaper  # noqa: E402

# These scripts run mailwarden as root in private directories: say that this is meant (see the
# README, "Running as a service"), or the daemon refuses to start as root.
os.environ.setdefault("MAILWARDEN_ALLOW_ROOT", "1")

# Dovecot's defaults start one login process per connection and cap them at 100; a benchmark of
# a thousand concurrent probes needs its high-performance mode.
DOVECOT_MANY_CLIENTS = """
default_process_limit = 2000
default_client_limit = 20000
service imap-login {
  service_count = 0
  process_min_avail = 2
  client_limit = 5000
}
service pop3-login {
  service_count = 0
  process_min_avail = 1
  client_limit = 5000
}
"""


def mailwarden():
    return os.path.join(BUILD, "mailwarden")


def mw_peer():
    return os.path.join(BUILD, "mw-peer")


def write_control(directory, text, name="bench.rc"):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


class Measured:
    def __init__(self, wall, cpu, maxrss_kb, rc, out, err):
        self.wall, self.cpu, self.maxrss_kb, self.rc, self.out, self.err = wall, cpu, maxrss_kb, rc, out, err


def measure(argv, timeout=900, env=None):
    """Runs argv to completion under GNU time: wall seconds, CPU seconds (user+sys) and the peak
    RSS of the command itself (getrusage from a forking python would count python's own pages)."""
    fd, report = tempfile.mkstemp(prefix="mw-time-")
    os.close(fd)
    try:
        t = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-o", report, "-f", "%M %U %S"] + list(argv),
                           capture_output=True, text=True, timeout=timeout, env=env)
        wall = time.monotonic() - t
        with open(report) as f:
            fields = f.read().split()[-3:]
        rss_kb, user, system = int(fields[0]), float(fields[1]), float(fields[2])
        return Measured(wall, user + system, rss_kb, p.returncode, p.stdout, p.stderr)
    finally:
        os.unlink(report)


class Tarpit:
    """A scripted peer that accepts connections and never says a word."""

    def __init__(self):
        script = os.path.join(SRC, "tests", "peers", "scripts", "imap-silence.peer")
        self.proc = subprocess.Popen([mw_peer(), script], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) < 2 or line[0] != "PORT":
            raise RuntimeError("mw-peer did not start")
        self.port = int(line[1])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def table(rows, headers):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)))
