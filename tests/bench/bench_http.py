#!/usr/bin/env python3
"""HTTP interface benchmark.

  render   a daemon with 10,000 checks (1,000 services x 10 ports nothing listens on, so each
           check fails fast with "connection refused"): after its first cycle, GET /metrics and
           GET /api/v1/status 20 times each; the median wall time of a request on loopback
           (rendering + transfer) and the response size.
  flood    a daemon with 1,000 such checks: the median cycle time of 10 cycles (SIGUSR1 each
           second) scraped once per cycle as Prometheus would, then of 10 cycles while 50
           clients request /metrics in a loop for 10 s; and the daemon's peak RSS (VmHWM) before
           any request, after the scrapes and after the flood.

  save     a daemon with 10,000 checks whose state file holds 60 results of history for each
           (written by a first run, then filled in): while it runs a cycle and saves its state,
           a client asks GET /-/healthy every 2 ms; the longest answer is how long the event
           loop stood still (the state file is written at the end of a cycle and at most once a
           second while results arrive). MW_BENCH_BASELINE=/path/to/another/mailwarden measures
           that binary too, in the same run.

Goals: /metrics for 10,000 checks in at most 50 ms; cycle time under the flood within 5% of the
cycle without it; peak RSS growth from the HTTP server under 5 MB.

    MW_SRCDIR=... MW_BUILDDIR=... python3 tests/bench/bench_http.py [--checks 10000] [--flood-checks 1000]
"""

import argparse
import base64
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from mwharness.ports import free_port  # noqa: E402

AUTH = "Basic " + base64.b64encode(b"bench:bench-pw").decode()


def control(directory, port, checks):
    closed = [free_port() for _ in range(10)]
    lines = ["set daemon 3600", "set statefile %s/state.json" % directory,
             "set pidfile %s/mw.pid" % directory,
             "set limits { connections: 2000, startrate: 2000 }",
             "set httpd port %d allow bench:bench-pw" % port]
    for s in range(checks // 10):
        lines.append("check host svc%04d with address 127.0.0.1" % s)
        for p in closed:
            lines.append("  if failed port %d with timeout 2 seconds then alert" % p)
    return common.write_control(directory, "\n".join(lines) + "\n")


class Daemon:
    def __init__(self, checks, binary=None, directory=None):
        self.dir = directory or tempfile.mkdtemp(prefix="mw-bench-http-")
        self.log = os.path.join(self.dir, "daemon.log")
        if directory:
            self.port = self.port_of(directory)
            rc = os.path.join(directory, "bench.rc")
        else:
            self.port = free_port()
            rc = control(self.dir, self.port, checks)
        self.proc = subprocess.Popen([binary or common.mailwarden(), "-c", rc, "-I"],
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT)

    @staticmethod
    def port_of(directory):
        with open(os.path.join(directory, "bench.rc")) as f:
            return int(re.search(r"set httpd port (\d+)", f.read()).group(1))

    def cycle_times(self):
        with open(self.log) as f:
            return [int(m) for m in re.findall(r"cycle \d+: \d+ checks.* in (\d+) ms", f.read())]

    def wait_cycles(self, n, timeout=120):
        deadline = time.monotonic() + timeout
        while len(self.cycle_times()) < n:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("no cycle %d; log:\n%s" % (n, open(self.log).read()[-2000:]))
            time.sleep(0.05)

    def rss_kb(self, field):
        with open("/proc/%d/status" % self.proc.pid) as f:
            return int(re.search(r"^%s:\s+(\d+) kB" % field, f.read(), re.M).group(1))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def get(port, path):
    """(wall seconds, body bytes, the server's own render time in ms or None when cached)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    t = time.perf_counter()
    c.request("GET", path, headers={"Authorization": AUTH})
    r = c.getresponse()
    body = r.read()
    elapsed = time.perf_counter() - t
    timing = r.getheader("Server-Timing")
    c.close()
    if r.status != 200:
        raise RuntimeError("GET %s: %d" % (path, r.status))
    # "snapshot;dur=A, model;dur=B, format;dur=C": the whole render is A + B + C
    render_ms = sum(float(p.split("dur=")[1]) for p in timing.split(",")) if timing else None
    return elapsed, len(body), render_ms


def render(checks, cycles=3, label="mailwarden", binary=None):
    """After each of `cycles` cycles (a new status: nothing cached), each path once (the render
    time the server reports), then 10 more times (answered from the response made once)."""
    d = Daemon(checks, binary=binary)
    try:
        d.wait_cycles(1)
        print("render (%s): %d checks, cycle %d ms" % (label, checks, d.cycle_times()[0]))
        figures = {"/metrics": [], "/api/v1/status": []}
        cached = {"/metrics": [], "/api/v1/status": []}
        size = {}
        for n in range(cycles):
            if n:
                d.proc.send_signal(signal.SIGUSR1)
                d.wait_cycles(n + 1)
            for path in figures:
                wall, size[path], render_ms = get(d.port, path)
                figures[path].append((render_ms, wall * 1000))
                for _ in range(10):
                    wall, _, _ = get(d.port, path)
                    cached[path].append(wall * 1000)
        for path in figures:
            renders = [f[0] for f in figures[path]]
            walls = [f[1] for f in figures[path]]
            print("  GET %-15s render median %6.1f ms (%s), request %6.1f ms, %7.1f KB;"
                  " repeated at the same version: %5.1f ms" % (
                      path, statistics.median(renders), ", ".join("%.1f" % x for x in renders),
                      statistics.median(walls), size[path] / 1024, statistics.median(cached[path])))
    finally:
        d.stop()


def flood(checks, clients, seconds, label="mailwarden", binary=None):
    d = Daemon(checks, binary=binary)
    try:
        d.wait_cycles(1)

        def run_cycles(n, scrape=False):
            start = len(d.cycle_times())
            for i in range(n):
                d.proc.send_signal(signal.SIGUSR1)
                d.wait_cycles(start + i + 1)
                if scrape:  # as Prometheus does: one scrape per cycle
                    get(d.port, "/metrics")
                time.sleep(max(0.0, seconds / n - 0.05))
            return d.cycle_times()[start:start + n]

        rss_start = d.rss_kb("VmHWM")
        quiet = run_cycles(10, scrape=True)
        rss_before = d.rss_kb("VmHWM")
        stop = threading.Event()
        counts = [0] * clients

        def client(i):
            while not stop.is_set():
                try:
                    get(d.port, "/metrics")
                    counts[i] += 1
                except Exception:  # noqa: BLE001 -- refused beyond the connection bound
                    time.sleep(0.01)

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
        for t in threads:
            t.start()
        loaded = run_cycles(10)
        stop.set()
        for t in threads:
            t.join(timeout=10)
        rss_after = d.rss_kb("VmHWM")
        q, l = statistics.median(quiet), statistics.median(loaded)
        print("flood (%s): %d checks per cycle, %d clients for %d s (%d requests served)" % (
            label, checks, clients, seconds, sum(counts)))
        print("  cycle, one scrape per cycle: median %d ms  %s" % (q, quiet))
        print("  cycle under the flood: median %d ms  %s" % (l, loaded))
        print("  difference: %+.1f%%" % ((l - q) * 100.0 / max(q, 1)))
        print("  peak RSS: %.1f MB before any request, %.1f MB after 10 scrapes, %.1f MB after the "
              "flood (+%.1f MB from the flood, +%.1f MB from the HTTP server in all)" % (
                  rss_start / 1024, rss_before / 1024, rss_after / 1024,
                  (rss_after - rss_before) / 1024, (rss_after - rss_start) / 1024))
    finally:
        d.stop()


def healthy_ms(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    t = time.perf_counter()
    c.request("GET", "/-/healthy")
    c.getresponse().read()
    c.close()
    return (time.perf_counter() - t) * 1000


def save(checks, binaries):
    """The longest stall of the loop while a cycle runs and the state (60 results of history per
    check) is saved, for each binary, from the same state file."""
    d = Daemon(checks)
    d.wait_cycles(1)
    d.stop()
    path = os.path.join(d.dir, "state.json")
    with open(path) as f:
        state = json.load(f)
    now = int(time.time())
    for svc in state["services"]:
        for chk in svc["checks"]:
            chk["history"] = [[now - 60 * (60 - i), 0, 0.1, "connect"] for i in range(60)]
    with open(path, "w") as f:
        json.dump(state, f)
    kept = open(path).read()
    print("save: %d checks, 60 results of history each (state file %.1f MB)" % (
        checks, len(kept) / 1e6))
    for label, binary in binaries:
        with open(path, "w") as f:
            f.write(kept)
        os.unlink(d.log)
        e = Daemon(checks, binary=binary, directory=d.dir)
        try:
            deadline = time.monotonic() + 60
            while True:  # up, and the state restored
                try:
                    healthy_ms(e.port)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            e.wait_cycles(1)
            stalls = []
            e.proc.send_signal(signal.SIGUSR1)
            start = len(e.cycle_times())
            while len(e.cycle_times()) < start + 1:
                stalls.append(healthy_ms(e.port))
                time.sleep(0.002)
            for _ in range(200):  # the save at the end of the cycle
                stalls.append(healthy_ms(e.port))
                time.sleep(0.002)
            stalls.sort()
            print("  %-15s /-/healthy during a cycle and its saves: median %.1f ms, 99th %.1f ms,"
                  " longest %.1f ms (%d requests)" % (
                      label, stalls[len(stalls) // 2], stalls[int(len(stalls) * 0.99)],
                      stalls[-1], len(stalls)))
        finally:
            e.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", type=int, default=10000)
    ap.add_argument("--flood-checks", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    binaries = [("mailwarden", common.mailwarden())]
    if os.environ.get("MW_BENCH_BASELINE"):
        binaries.append(("baseline build", os.environ["MW_BENCH_BASELINE"]))
    print("load average: %.2f %.2f %.2f" % os.getloadavg())
    save(a.checks, binaries)
    for label, binary in binaries:
        render(a.checks, label=label, binary=binary)
    for label, binary in binaries:
        flood(a.flood_checks, a.clients, a.seconds, label=label, binary=binary)
    print("load average: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
