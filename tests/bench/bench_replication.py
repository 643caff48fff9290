#!/usr/bin/env python3
"""Replication benchmark: a real Cyrus IMAP 3.6 master and replica (sync_client), 2,000 users x 5
mailboxes (10,000 mailboxes), on /dev/shm. Compares every mailbox of every user on both servers
the way mailwarden's `check replication ... all users all mailboxes` does it (one `validate`,
users concurrently, proxy logins, LIST-STATUS, pipelined), next to the way the Nagios plugin
check_cyrus_replication does it, measured in the same run over the same data: a python imaplib
loop, one user after another, a proxy login per user and server, LIST on the reference, then one
STATUS at a time on each server.

Goals: mailwarden >= 20x the plugin's mailboxes per second, and 10,000 mailboxes in <= 10 s.
"""

import argparse
import imaplib
import json
import os
import shutil
import socket
import tempfile
import time

import common
from mwharness import CyrusPair

ITEMS = "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)"
FOLDERS = ("Sent", "Drafts", "Trash", "Archive")


def control_file(pair, concurrency):
    return ("set statefile /dev/null\n"
            "check replication bench\n"
            "    servers \"imap://127.0.0.1:%d\", \"imap://127.0.0.1:%d\"\n"
            "    admin \"%s\" password \"%s\" allow plaintext\n"
            "    all users all mailboxes\n"
            "    concurrency %d\n"
            "    timeout 30 seconds deadline 10 minutes\n"
            "    if out of sync then alert\n"
            % (pair.master.ports["imap"], pair.replica.ports["imap"], pair.master.admin,
               pair.master.admin_password, concurrency))


def run_mailwarden(work, pair, concurrency):
    rc = common.write_control(work, control_file(pair, concurrency), "bench-%d.rc" % concurrency)
    m = common.measure([common.mailwarden(), "-c", rc, "validate", "--json"])
    test = json.loads(m.out)["services"][0]["tests"][0]
    if test["status"] != "ok":
        raise RuntimeError("mailwarden's run failed: %s %s" % (test["class"], test["message"]))
    return m, test["mailboxes_compared_this_run"], len(test["checked"])


def plugin_way(pair, users, nodelay=False):
    """check_cyrus_replication's loop: strictly one STATUS at a time, one user after another.

    imaplib sends AUTHENTICATE's answer in two writes, so Nagle's algorithm and the server's
    delayed ACK hold each proxy login ~40 ms; `nodelay` sets TCP_NODELAY to show what the serial
    method costs without that."""
    servers = [pair.master, pair.replica]
    compared = 0
    out_of_sync = 0
    t0 = time.monotonic()
    for user in users:
        sessions = []
        for server in servers:
            m = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=30)
            if nodelay:
                m.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            token = ("%s\0%s\0%s" % (user, server.admin, server.admin_password)).encode()
            m.authenticate("PLAIN", lambda _challenge, token=token: token)
            sessions.append(m)
        typ, listing = sessions[0].list()
        names = []
        for line in listing:
            text = line.decode() if isinstance(line, bytes) else line[1].decode()
            if "\\Noselect" in text:
                continue
            names.append(text.rsplit(" ", 1)[1].strip('"'))
        for name in names:
            statuses = []
            for m in sessions:
                typ, data = m.status('"%s"' % name, ITEMS)
                statuses.append(data[0] if typ == "OK" else None)
            compared += 1
            if len(set(s.split(b"(", 1)[1] if s else None for s in statuses)) != 1:
                out_of_sync += 1
        for m in sessions:
            m.logout()
    return time.monotonic() - t0, compared, out_of_sync


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--plugin-users", type=int, default=400,
                    help="users the plugin's loop goes through, the first of the same data "
                         "(0: all; at ~0.1 s a user the whole set takes minutes)")
    args = ap.parse_args()
    common.enable_subreaper()
    work = tempfile.mkdtemp(prefix="mw-bench-repl-",
                            dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    pair = CyrusPair(base_dir=work)
    try:
        pair.start()
        users = CyrusPair.make_users(args.users)
        made = pair.bulk_create(users, FOLDERS)
        print("set-up: %d mailboxes created in %.1f s, replicated in %.1f s"
              % (made["mailboxes"], made["create_seconds"], made["sync_seconds"]))
        rows = []
        best = None
        for concurrency in args.concurrency:
            m, compared, checked = run_mailwarden(work, pair, concurrency)
            rate = compared / m.wall
            best = max(best or 0, rate)
            rows.append(["mailwarden (concurrency %d)" % concurrency, checked, compared,
                         "%.2f" % m.wall, "%.0f" % rate, "%.2f" % m.cpu,
                         "%.1f" % (m.maxrss_kb / 1024.0)])
        plugin_users = users[:args.plugin_users] if args.plugin_users else users
        rates = {}
        for label, nodelay in (("plugin's way (serial imaplib)", False),
                               ("  the same with TCP_NODELAY", True)):
            wall, compared, bad = plugin_way(pair, plugin_users, nodelay)
            if bad:
                raise RuntimeError("the plugin's loop saw %d mailboxes out of sync" % bad)
            rates[nodelay] = compared / wall
            rows.append([label, len(plugin_users), compared, "%.2f" % wall,
                         "%.0f" % rates[nodelay], "-", "-"])
        plugin_rate = rates[False]
        print("Replication: every mailbox of every user compared on master and replica "
              "(STATUS %s)" % ITEMS)
        common.table(rows, ["how", "users", "mailboxes", "wall s", "mailboxes/s", "cpu s",
                            "peak RSS MB"])
        print("speed-up of the best mailwarden run: %.1fx the plugin's way (%.1fx its TCP_NODELAY "
              "variant); 10,000 mailboxes take %.1f s"
              % (best / plugin_rate, best / rates[True], 10000.0 / best))
        print("goal: >= 20x the plugin's way, 10,000 mailboxes in <= 10 s")
    finally:
        pair.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
