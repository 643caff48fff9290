#!/usr/bin/env python3
"""mailwarden's demo: a private mail stack on loopback (real Dovecot and Postfix, started by
the test harness in a temporary directory), a control file made from demo/mailwardenrc.in, and
the daemon in the foreground printing every cycle. One check is meant to fail (a port nothing
listens on) so that a failure shows. Stops after --seconds (default 60; 0 = until Ctrl-C),
prints `mailwarden status`, and stops every server it started."""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "harness"))

from mwharness import Stack, enable_subreaper  # noqa: E402

# These scripts run mailwarden as root in private directories: say that this is meant (see the
# README, "Running as a service"), or the daemon refuses to start as root.
os.environ.setdefault("MAILWARDEN_ALLOW_ROOT", "1")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(template, values):
    text = open(template).read()
    for k, v in values.items():
        text = text.replace("@%s@" % k, str(v))
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mailwarden", default=os.path.join(SRC, "build", "mailwarden"))
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--dir", default=None, help="keep the stack here (default: a temp dir)")
    args = ap.parse_args()
    enable_subreaper()
    work = args.dir or tempfile.mkdtemp(prefix="mailwarden-demo-")
    print("mailwarden demo: starting a private Dovecot and Postfix under %s ..." % work, flush=True)
    stack = Stack(base_dir=work, with_postfix=True)
    daemon = None
    try:
        stack.up()
        info = stack.info()
        dc, pf = info["dovecot"], info["postfix"]
        values = {
            "CA": info["certs"]["ca"]["cert"],
            "DIR": work,
            "IMAP": dc["ports"]["imap"], "IMAPS": dc["ports"]["imaps"],
            "POP3": dc["ports"]["pop3"], "POP3S": dc["ports"]["pop3s"],
            "LMTP": dc["ports"]["lmtp"], "SIEVE": dc["ports"]["sieve"],
            "SMTP": pf["ports"]["smtp"], "SMTPS": pf["ports"]["smtps"],
            "SUBMISSION": pf["ports"]["submission"],
            "CLOSED": free_port(),
        }
        rc = os.path.join(work, "mailwardenrc")
        with open(rc, "w") as f:
            f.write(render(os.path.join(HERE, "mailwardenrc.in"), values))
        os.chmod(rc, 0o600)
        print("control file: %s" % rc)
        print(open(rc).read())
        subprocess.run([args.mailwarden, "-c", rc, "-t"], check=True)
        print("running: %s -c %s -I   (Ctrl-C to stop)\n" % (args.mailwarden, rc), flush=True)
        daemon = subprocess.Popen([args.mailwarden, "-c", rc, "-I"])
        deadline = time.monotonic() + args.seconds if args.seconds > 0 else None
        try:
            while daemon.poll() is None and (deadline is None or time.monotonic() < deadline):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
        print("\n$ mailwarden -c %s status" % rc)
        subprocess.run([args.mailwarden, "-c", rc, "status"])
    finally:
        if daemon and daemon.poll() is None:
            daemon.kill()
        stack.down()
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
