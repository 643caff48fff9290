#!/usr/bin/env python3
"""Drop-in plugin benchmark, measured in one run on the same targets.

1. check_simap: the drop-in (a symlink to mailwarden) against monitoring-plugins' check_simap on
   a private Dovecot's IMAPS port, calls interleaved, CPU (user+sys of the child) and wall per
   call.  Goal: the drop-in at most 1.2x the original's CPU.  Start-up: the same two against a
   closed port, where a call is process start, option parsing and one refused connect() --
   what a call costs before the first byte is sent.
2. check_cyrus_replication: the drop-in (--all-users --all-mailboxes, a state file) against the
   seed plugin's serial way (one proxy login per user and server, one STATUS at a time, see
   bench_replication.py) on a real Cyrus master and replica with the replication benchmark's data
   (users x 5 mailboxes).
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time

import common
from bench_replication import FOLDERS, plugin_way
from mwharness import CyrusPair, Dovecot
from mwharness.ports import free_port

ORIGINAL = "/usr/lib/nagios/plugins"


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def calls(argv, n, expect_rc):
    """n calls of argv: (CPU s per call, wall s per call)."""
    cpu0, t0 = children_cpu(), time.monotonic()
    for _ in range(n):
        p = subprocess.run(argv, capture_output=True, text=True)
        if p.returncode != expect_rc:
            raise RuntimeError("%s exited %d: %s" % (" ".join(argv), p.returncode, p.stdout))
    return (children_cpu() - cpu0) / n, (time.monotonic() - t0) / n


def simap(links, n, rounds):
    dc = Dovecot()
    closed = free_port()
    rows = []
    try:
        dc.start()
        port = dc.ports["imaps"]
        totals = {}
        for _ in range(rounds):  # interleaved, so that the machine's load hits both alike
            for label, prog in (("original check_simap", os.path.join(ORIGINAL, "check_simap")),
                                ("mailwarden drop-in", os.path.join(links, "check_simap"))):
                for what, target, rc in (("IMAPS (Dovecot)", port, 0), ("closed port", closed, 2)):
                    cpu, wall = calls([prog, "-H", "127.0.0.1", "-p", str(target)], n, rc)
                    acc = totals.setdefault((label, what), [0.0, 0.0])
                    acc[0] += cpu / rounds
                    acc[1] += wall / rounds
        for (label, what), (cpu, wall) in sorted(totals.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            rows.append([what, label, "%.2f" % (cpu * 1000), "%.2f" % (wall * 1000)])
        ratio = totals[("mailwarden drop-in", "IMAPS (Dovecot)")][0] / totals[
            ("original check_simap", "IMAPS (Dovecot)")][0]
        start = totals[("mailwarden drop-in", "closed port")][0] / totals[
            ("original check_simap", "closed port")][0]
        print("check_simap: %d calls x %d rounds per row, CPU = user+sys of the child" % (n, rounds))
        common.table(rows, ["target", "program", "cpu ms/call", "wall ms/call"])
        print("drop-in CPU / original CPU: %.2fx on IMAPS (goal <= 1.2x), %.2fx before the first "
              "byte (closed port)" % (ratio, start))
    finally:
        dc.stop()


def replication(links, users, plugin_users):
    work = tempfile.mkdtemp(prefix="mw-bench-plugin-",
                            dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    pair = CyrusPair(base_dir=work)
    try:
        pair.start()
        names = CyrusPair.make_users(users)
        made = pair.bulk_create(names, FOLDERS)
        print("set-up: %d mailboxes created in %.1f s, replicated in %.1f s"
              % (made["mailboxes"], made["create_seconds"], made["sync_seconds"]))
        state = os.path.join(work, "state.json")
        env = dict(os.environ, MAILWARDEN_PASSWORD=pair.master.admin_password)
        m = common.measure([os.path.join(links, "check_cyrus_replication"),
                            "--uri", "imap://127.0.0.1:%d" % pair.master.ports["imap"],
                            "--uri", "imap://127.0.0.1:%d" % pair.replica.ports["imap"],
                            "--admin", pair.master.admin, "--all-users", "--all-mailboxes",
                            "-t", "600", "-s", state], env=env)
        if m.rc != 0:
            raise RuntimeError("the drop-in said (%d): %s" % (m.rc, m.out))
        with open(state) as f:
            doc = json.load(f)
        compared = sum(len(b) for b in doc["statuses"].values())
        rows = [["check_cyrus_replication drop-in", len(doc["checked"]), compared,
                 "%.2f" % m.wall, "%.0f" % (compared / m.wall), "%.2f" % m.cpu]]
        sample = names[:plugin_users] if plugin_users else names
        wall, seen, bad = plugin_way(pair, sample)
        if bad:
            raise RuntimeError("the serial loop saw %d mailboxes out of sync" % bad)
        rows.append(["seed plugin's serial way", len(sample), seen, "%.2f" % wall,
                     "%.0f" % (seen / wall), "-"])
        print("check_cyrus_replication: every mailbox of every user, master vs replica")
        print("drop-in output: %s" % m.out.strip())
        common.table(rows, ["how", "users", "mailboxes", "wall s", "mailboxes/s", "cpu s"])
        print("speed-up: %.1fx the serial way's mailboxes per second"
              % ((compared / m.wall) / (seen / wall)))
    finally:
        pair.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=50, help="calls per row and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--plugin-users", type=int, default=200)
    ap.add_argument("--skip-replication", action="store_true")
    args = ap.parse_args()
    common.enable_subreaper()
    links = tempfile.mkdtemp(prefix="mw-bench-links-")
    try:
        for name in ("check_simap", "check_cyrus_replication"):
            os.symlink(common.mailwarden(), os.path.join(links, name))
        simap(links, args.calls, args.rounds)
        if not args.skip_replication:
            replication(links, args.users, args.plugin_users)
    finally:
        shutil.rmtree(links, ignore_errors=True)


if __name__ == "__main__":
    main()
