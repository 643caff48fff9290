"""A whole test stack: certificates + Dovecot [+ Postfix] [+ Cyrus master/replica].

From bash (tests/harness/stack.py is a thin wrapper around main() below):

    python3 tests/harness/stack.py up --dir /tmp/mw [--with postfix] [--with cyrus]
                                      [--cert good|expiring10|selfsigned|expired]
                                      [--disable-plaintext-auth]
    IMAP=$(python3 -c 'import json; print(json.load(open("/tmp/mw/stack.json"))["dovecot"]["ports"]["imap"])')
    python3 tests/harness/stack.py down --dir /tmp/mw

`up` wipes the stack's own sub-directories of DIR (certs, dovecot, postfix,
cyrus-master, cyrus-replica), starts everything, writes DIR/stack.json,
prints the same JSON on stdout and exits 0 with the servers left running
(exit 1 and a message with the log tail on stderr if anything fails; what
had started is stopped again).  It refuses to run over a stack that is still
up.  `down` stops every process recorded in DIR/stack.json by pid (TERM,
then KILL) and is safe to repeat.  `--with` may be repeated or take
"postfix,cyrus".  Put DIR on /dev/shm for fast Cyrus bulk operations.

From Python:

    import sys; sys.path.insert(0, "tests/harness")
    from mwharness import Stack
    with Stack(with_postfix=True) as st:           # temp dir unless base_dir=...
        st.dovecot.ports["imap"], st.postfix.ports["submission"], st.info()

stack.json keys (all ports are ints, all paths absolute):
    dir, host ("127.0.0.1"), json (path of stack.json), created (UTC ISO time)
    certs       {"dir", "ca", "good", "expiring10", "selfsigned", "expired"}; each
                cert entry: {"cert", "key", "not_before", "not_after", "sha256", "sha1", "md5"}
    dovecot     {"host" (127.0.0.1; 127.0.0.2 with --disable-plaintext-auth, see
                 dovecot.py), "ports": {"imap", "imaps", "pop3", "pop3s", "lmtp", "sieve", "auth"},
                 "users": {"alice@example.test": "alicepw", "bob@example.test": "bobpw"},
                 "master_users": {"master": "masterpw"}, "master_user_separator": "*",
                 "disable_plaintext_auth", "cert", "cert_file", "key_file",
                 "dir", "config", "log", "pid_file", "marker", "homes": {user: dir},
                 "start_seconds"}
    postfix     (with postfix) {"host", "ports": {"smtp", "smtps", "submission"}, "cert",
                 "cert_file", "key_file", "dovecot_host", "lmtp_port", "auth_port", "domain",
                 "dir", "config_dir", "queue_dir", "log", "pid_file", "marker", "start_seconds"}
    cyrus       (with cyrus) {"admin": "cyrus", "admin_password",
                 "master":  {"host", "ports": {"imap"}, "servername", "admin", "admin_password",
                             "dir", "config", "cyrus_conf", "sasldb", "log", "pid_file",
                             "marker", "bin_dir", "start_seconds"},
                 "replica": {same, "ports": {"imap", "csync"}},
                 "sync_client": [argv prefix: sync_client -C master/imapd.conf]}
    processes   [{"name", "pid", "pid_file", "marker"}] in stop order (used by `down`)
"""

import argparse
import datetime
import json
import os
import shutil
import sys

from . import proc
from .certs import make_certs
from .cyrus import CyrusPair
from .dovecot import Dovecot
from .postfix import Postfix

OWN_SUBDIRS = ("certs", "dovecot", "postfix", "cyrus-master", "cyrus-replica")


class Stack:
    """Certificates, Dovecot, optionally Postfix and a Cyrus pair, under one directory.

    Stack(base_dir=None, with_postfix=False, with_cyrus=False, cert="good",
          disable_plaintext_auth=False)
        cert    certificate used by Dovecot and Postfix (see certs.py)
    Attributes (after construction): dir, certs, dovecot, postfix (or None),
        cyrus (CyrusPair or None), json_path.
    Methods: up() -> info dict (also written to stack.json), down() (idempotent,
        also at exit unless detach() was called), cleanup() (down + delete
        the directory), info(), detach().
    Constructing a Stack wipes the stack's own sub-directories of base_dir.
    """

    def __init__(self, base_dir=None, with_postfix=False, with_cyrus=False, cert="good",
                 disable_plaintext_auth=False):
        self.dir = proc.make_base_dir(base_dir, "mwh-stack-")
        self.json_path = os.path.join(self.dir, "stack.json")
        for sub in OWN_SUBDIRS:
            shutil.rmtree(os.path.join(self.dir, sub), ignore_errors=True)
        self.certs = make_certs(os.path.join(self.dir, "certs"))
        self.dovecot = Dovecot(self.dir, cert=cert, certs=self.certs,
                               disable_plaintext_auth=disable_plaintext_auth)
        self.postfix = Postfix(self.dir, dovecot=self.dovecot, cert=cert, certs=self.certs) \
            if with_postfix else None
        self.cyrus = CyrusPair(self.dir) if with_cyrus else None

    def _daemons(self):
        """Servers in start order."""
        servers = [self.dovecot]
        if self.postfix:
            servers.append(self.postfix)
        if self.cyrus:
            servers += [self.cyrus.replica, self.cyrus.master]
        return servers

    def up(self):
        """Start everything; write and return the stack.json dict.

        On failure stops whatever started and re-raises the HarnessError.
        """
        try:
            for server in self._daemons():
                server.start()
        except Exception:
            self.down()
            raise
        info = self.info()
        with open(self.json_path, "w") as f:
            json.dump(info, f, indent=2, sort_keys=True)
            f.write("\n")
        return info

    def down(self):
        """Stop every server (reverse start order). Idempotent."""
        for server in reversed(self._daemons()):
            server.stop()

    def cleanup(self):
        """down(), then delete the whole stack directory (logs included)."""
        self.down()
        shutil.rmtree(self.dir, ignore_errors=True)

    def detach(self):
        """Leave the servers running when this Python process exits."""
        for server in self._daemons():
            proc.unregister_atexit(server)

    def info(self):
        names = {id(self.dovecot): "dovecot"}
        if self.postfix:
            names[id(self.postfix)] = "postfix"
        if self.cyrus:
            names[id(self.cyrus.master)] = "cyrus-master"
            names[id(self.cyrus.replica)] = "cyrus-replica"
        info = {"dir": self.dir, "host": "127.0.0.1", "json": self.json_path,
                "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "certs": self.certs, "dovecot": self.dovecot.info(),
                "processes": [{"name": names[id(s)], "pid": s.pid(), "pid_file": s.pid_file,
                               "marker": s.marker} for s in reversed(self._daemons())]}
        if self.postfix:
            info["postfix"] = self.postfix.info()
        if self.cyrus:
            info["cyrus"] = self.cyrus.info()
        return info

    def __enter__(self):
        self.up()
        return self

    def __exit__(self, *exc):
        self.down()


def load(directory):
    """Return the dict stored in DIRECTORY/stack.json."""
    with open(os.path.join(directory, "stack.json")) as f:
        return json.load(f)


def running(info):
    """Names of the processes of a stack.json dict that are still alive."""
    alive = []
    for p in info.get("processes", []):
        pid = proc.read_pid(p["pid_file"]) or p.get("pid")
        if proc.pid_alive(pid) and p["marker"] in proc.cmdline(pid):
            alive.append(p["name"])
    return alive


def down(directory):
    """Stop every process recorded in DIRECTORY/stack.json; returns the names stopped."""
    try:
        info = load(directory)
    except FileNotFoundError:
        return []
    stopped = []
    for p in info.get("processes", []):
        for pid in {proc.read_pid(p["pid_file"]), p.get("pid")}:
            if proc.stop_pid(pid, term_timeout=15.0, cmd_contains=p["marker"]):
                stopped.append(p["name"])
    return stopped


def main(argv=None):
    parser = argparse.ArgumentParser(prog="stack.py", description="Start/stop a private mail server stack.")
    sub = parser.add_subparsers(dest="command", required=True)
    up_p = sub.add_parser("up", help="start a stack and write DIR/stack.json")
    up_p.add_argument("--dir", required=True)
    up_p.add_argument("--with", dest="extras", action="append", default=[],
                      help="postfix and/or cyrus (repeat or comma-separate)")
    up_p.add_argument("--cert", default="good", choices=["good", "expiring10", "selfsigned", "expired"])
    up_p.add_argument("--disable-plaintext-auth", action="store_true")
    down_p = sub.add_parser("down", help="stop the stack recorded in DIR/stack.json")
    down_p.add_argument("--dir", required=True)
    status_p = sub.add_parser("status", help="print which recorded processes are alive")
    status_p.add_argument("--dir", required=True)
    args = parser.parse_args(argv)

    if args.command == "down":
        stopped = down(args.dir)
        print("stopped: %s" % (", ".join(stopped) or "nothing was running"))
        return 0
    if args.command == "status":
        try:
            alive = running(load(args.dir))
        except FileNotFoundError:
            alive = []
        print("running: %s" % (", ".join(alive) or "nothing"))
        return 0 if alive else 1

    extras = {e.strip() for item in args.extras for e in item.split(",") if e.strip()}
    unknown = extras - {"postfix", "cyrus"}
    if unknown:
        parser.error("unknown --with value(s): %s" % ", ".join(sorted(unknown)))
    try:
        alive = running(load(args.dir))
    except (FileNotFoundError, ValueError):
        alive = []
    if alive:
        print("stack in %s is still up (%s); run `stack.py down --dir %s` first"
              % (args.dir, ", ".join(alive), args.dir), file=sys.stderr)
        return 1
    try:
        stack = Stack(args.dir, with_postfix="postfix" in extras, with_cyrus="cyrus" in extras,
                      cert=args.cert, disable_plaintext_auth=args.disable_plaintext_auth)
        info = stack.up()
    except proc.HarnessError as e:
        print("stack.py up failed: %s" % e, file=sys.stderr)
        return 1
    stack.detach()
    json.dump(info, sys.stdout, indent=2, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
