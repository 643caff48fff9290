"""`allow @group` in set httpd, against a real daemon and real Unix accounts: members of a group
(supplementary or primary) log in with the password PAM (pam_unix, on a private PAM
configuration through MAILWARDEN_PAM_CONFDIR) accepts; a wrong password, or a user outside the
groups, gets 401; a read-only group's member cannot act; a slow PAM round (pam_unix waits ~2 s
after a wrong password) holds neither /-/healthy nor anything else on the loop; a client that
leaves while its check runs breaks nothing; passwords never reach the log. The CLI logs in as such
a user through MAILWARDEN_HTTP_USER / MAILWARDEN_HTTP_PASSWORD or a credentials file, and says
what to set when it has nobody to log in as. -t checks the groups and /etc/shadow, and a
daemon that cannot read /etc/shadow logs so.

The accounts are made with useradd/groupadd (as root) and removed at the end.
"""

import base64
import contextlib
import grp
import http.client
import json
import os
import pwd
import socket
import subprocess
import threading
import time

import lib
from test_httpd_access import Site

ADMINS, VIEWERS = "mwpam-admins", "mwpam-viewers"
# name, password, (primary group or None), supplementary groups
ACCOUNTS = (
    ("mwpam-alice", "alice-Pam-pass-1", None, [ADMINS]),
    ("mwpam-vera", "vera-Pam-pass-2", VIEWERS, []),
    ("mwpam-olga", "olga-Pam-pass-3", None, []),  # in neither group
)
PASSWORDS = [a[1] for a in ACCOUNTS]


def make_accounts():
    remove_accounts()
    for g in (ADMINS, VIEWERS):
        subprocess.run(["groupadd", "--system", g], check=True)
    for name, password, primary, groups in ACCOUNTS:
        argv = ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                "--shell", "/usr/sbin/nologin"]
        argv += ["--gid", primary] if primary else ["--user-group"]
        if groups:
            argv += ["--groups", ",".join(groups)]
        subprocess.run(argv + [name], check=True)
        # chpasswd reads "user:password" from stdin: the password is never in argv.
        subprocess.run(["chpasswd"], input="%s:%s\n" % (name, password), text=True, check=True)


def remove_accounts():
    for name, _, _, _ in ACCOUNTS:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            subprocess.run(["userdel", name], check=False, capture_output=True)
        with contextlib.suppress(KeyError):
            grp.getgrnam(name)
            subprocess.run(["groupdel", name], check=False, capture_output=True)
    for g in (ADMINS, VIEWERS):
        with contextlib.suppress(KeyError):
            grp.getgrnam(g)
            subprocess.run(["groupdel", g], check=False, capture_output=True)


def pam_dir():
    """A private PAM configuration: the service mailwarden checks /etc/shadow with pam_unix."""
    d = lib.tmpdir()
    with open(os.path.join(d, "mailwarden"), "w") as f:
        f.write("auth required pam_unix.so\naccount required pam_unix.so\n")
    return d


@contextlib.contextmanager
def environment(**values):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def request(port, path, who=None, method="GET", headers=None, source="127.0.0.1"):
    """(status, body, seconds) of one request; `who` is (user, password). Failures are delayed
    more after each recent one from the same address: each failure here has its own source."""
    h = dict(headers or {})
    if who:
        h["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % who).encode()).decode()
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    conn.request(method, path, headers=h)
    r = conn.getresponse()
    body = r.read().decode("utf-8", "replace")
    conn.close()
    for secret in PASSWORDS:
        lib.expect_not_in(secret, body, "response to %s %s" % (method, path))
    return r.status, body, time.monotonic() - t0


def test_group_members_log_in_with_pam_off_the_loop():
    make_accounts()
    alice, vera, olga = ((a[0], a[1]) for a in ACCOUNTS)
    site = Site("set httpd port {port} and use address 127.0.0.1\n"
                "    allow @%s\n    allow @%s read-only" % (ADMINS, VIEWERS))
    try:
        r = lib.mw(site.control, "-t")
        lib.expect_eq((r.rc, r.err), (0, ""), "-t with two existing groups, run as root")
        with environment(MAILWARDEN_PAM_CONFDIR=pam_dir()):
            site.start()
        port = site.port
        status, body, _ = request(port, "/api/v1/summary", alice)
        lib.expect_eq(status, 200, "a member of the supplementary group with her password")
        lib.expect_in("web", body, "the summary")
        status, body, _ = request(port, "/api/v1/summary", (alice[0], alice[1] + "x"),
                                  source="127.0.0.2")
        lib.expect_eq((status, body), (401, "authentication required\n"), "a wrong password")
        status, _, _ = request(port, "/api/v1/summary", olga, source="127.0.0.3")
        lib.expect_eq(status, 401, "a user in neither group, with her right password")
        status, _, _ = request(port, "/api/v1/summary", ("mwpam-nobody", "x"), source="127.0.0.4")
        lib.expect_eq(status, 401, "a user who does not exist")
        site.daemon.wait_log(r"HTTP: login of 'mwpam-alice' from 127\.0\.0\.2 refused: PAM: "
                             r"Authentication failure")
        site.daemon.wait_log(r"HTTP: login of 'mwpam-olga' from 127\.0\.0\.3 refused: not a "
                             r"member of an allowed group")

        # The primary group counts; its read-only flag too.
        api = {"X-Requested-By": "test"}
        status, _, _ = request(port, "/api/v1/status", vera)
        lib.expect_eq(status, 200, "a member by her primary group")
        status, body, _ = request(port, "/api/v1/services/web/check", vera, "POST", api)
        lib.expect_eq((status, json.loads(body)["message"]),
                      (403, "user 'mwpam-vera' may read but not act"), "read-only group member")
        status, body, _ = request(port, "/api/v1/services/web/check", alice, "POST", api)
        lib.expect_eq((status, json.loads(body)["ok"]), (200, True), "read-write member acts")
        site.daemon.wait_log(r"HTTP: POST check 'web' by mwpam-alice: done")

        # A wrong password keeps the worker in pam_unix for about 2 s: /-/healthy and a cached
        # member's request, sent after it, are answered before it.
        done = []

        def bad():
            done.append(("bad", request(port, "/api/v1/summary", (alice[0], "Wr0ng-Pam-Guess"),
                                          source="127.0.0.5")[0]))
        t = threading.Thread(target=bad)
        t.start()
        time.sleep(0.2)  # the bad request is at the daemon, in PAM
        status, body, _ = request(port, "/-/healthy")
        done.append(("healthy", status))
        status, _, _ = request(port, "/api/v1/summary", alice)  # verified before: no PAM round
        done.append(("cached", status))
        t.join()
        lib.expect_eq(done, [("healthy", 200), ("cached", 200), ("bad", 401)],
                      "the order of the answers")

        # A client that leaves while its check runs: its answer meets a closed socket, nothing
        # breaks.
        n = len(site.daemon.log().split("refused: PAM")) - 1
        with socket.create_connection(("127.0.0.1", port), timeout=5,
                                      source_address=("127.0.0.6", 0)) as s:
            auth = base64.b64encode(b"mwpam-alice:G0ne-Pam-Guess").decode()
            s.sendall(("GET /api/v1/summary HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\n"
                       "\r\n" % auth).encode())
            time.sleep(0.2)
        site.daemon.wait_log(r"refused: PAM", count=n + 1)
        lib.expect_eq(request(port, "/api/v1/summary", alice)[0], 200, "served after that")

        # The CLI as a group member: by the environment, or a credentials file's entry httpd.
        r = lib.mw(site.control, "status")
        lib.expect_eq(r.rc, 0, "status without a user for the CLI (the state file is shown)")
        lib.expect_in("mailwarden: warning: cannot log in to the daemon: the daemon's HTTP "
                      "interface asks for a password, and the control file has no 'allow "
                      "USER:PASSWORD' for the CLI to use (its users are in htpasswd files or "
                      "Unix groups). Set MAILWARDEN_HTTP_USER=NAME", r.err, "what to set")
        r = lib.mw(site.control, "validate", "--now")
        lib.expect_eq(r.rc, 1, "validate --now without a user")
        lib.expect_in("mailwarden: cannot log in to the daemon: ", r.err, "validate --now says")
        with environment(MAILWARDEN_HTTP_USER=alice[0], MAILWARDEN_HTTP_PASSWORD=alice[1]):
            r = lib.mw(site.control, "status")
        lib.expect_eq((r.rc, r.err), (0, ""), "status as a group member")
        lib.expect_in("daemon running (pid %d)" % site.daemon.pid, r.out, "the live view")
        with environment(MAILWARDEN_HTTP_USER=vera[0], MAILWARDEN_HTTP_PASSWORD=vera[1]):
            r = lib.mw(site.control, "validate", "--now")
        lib.expect_eq(r.err, "mailwarden: the daemon answered HTTP 403 Forbidden\n"
                      "mailwarden: the daemon refused user 'mwpam-vera' (from "
                      "MAILWARDEN_HTTP_USER): user 'mwpam-vera' may read but not act\n",
                      "validate --now as a read-only member")
        with environment(MAILWARDEN_HTTP_USER=alice[0], MAILWARDEN_HTTP_PASSWORD="nope"):
            r = lib.mw(site.control, "status")
        lib.expect_eq((r.rc, r.err), (1, "mailwarden: the daemon answered HTTP 401 Unauthorized\n"
                                      "mailwarden: the daemon refused the password of user "
                                      "'mwpam-alice' (from MAILWARDEN_HTTP_USER); check it, or "
                                      "log in as another user with MAILWARDEN_HTTP_USER and "
                                      "MAILWARDEN_HTTP_PASSWORD (see mailwarden(1))\n"),
                      "status with a wrong password")
        creds = os.path.join(site.dir, "cli.credentials")
        with open(creds, "w") as f:
            f.write('httpd: { username = "%s"; password = "%s"; };\n' % alice)
        os.chmod(creds, 0o600)
        with environment(MAILWARDEN_HTTP_CREDENTIALS=creds):
            r = lib.mw(site.control, "summary")
        lib.expect_eq((r.rc, r.err), (0, ""), "summary through the credentials file")
        for r in lib._outputs:
            for secret in PASSWORDS:
                lib.expect_not_in(secret, r.out + r.err, "the CLI's output")
    finally:
        site.close()
        log = site.daemon.log() if site.daemon else ""
        remove_accounts()
    for secret in PASSWORDS + ["Wr0ng-Pam-Guess", "G0ne-Pam-Guess", alice[1] + "x"]:
        lib.expect_not_in(secret, log, "the daemon's log")


def test_dash_t_checks_groups_and_the_shadow_file():
    d = lib.tmpdir()
    rc = lib.write_control(d, "set httpd port 2812 address 127.0.0.1 allow @adm "
                           "allow @mwpam-no-such-group allow admin:pw\n", defaults=False)
    r = lib.mw(rc, "-t")
    lib.expect_eq((r.rc, r.err), (0, "%s:1:50: warning: allow @mwpam-no-such-group: there is no "
                                  "Unix group 'mwpam-no-such-group' (yet); nobody logs in "
                                  "through it until there is\n" % rc), "-t: a missing group")
    # A daemon that drops to an unprivileged user cannot read /etc/shadow.
    rc = lib.write_control(d, "set user nobody\nset httpd port 2812 address 127.0.0.1 "
                           "allow @adm\n", defaults=False)
    r = lib.mw(rc, "-t")
    lib.expect_eq((r.rc, r.err), (0, "%s:2:39: warning: allow @adm: the daemon runs as nobody, "
                                  "which cannot read /etc/shadow: PAM (pam_unix) cannot check "
                                  "the passwords of the group's users. Add nobody to group "
                                  "shadow (adduser nobody shadow), or use an htpasswd file "
                                  "(allow md5 FILE)\n" % rc), "-t: /etc/shadow unreadable")


def test_a_daemon_that_cannot_read_shadow_says_so():
    d = lib.tmpdir()
    os.chmod(d, 0o777)  # the pid and state files of a daemon that drops to nobody
    port = lib.free_port()
    rc = lib.write_control(d, "set user nobody\nset httpd port %d address 127.0.0.1 allow @adm\n"
                           % port)
    daemon = lib.Daemon(rc).start()
    try:
        daemon.wait_log(r"HTTP interface listening on ")
        lib.expect_in("warning: set httpd: 'allow @adm': mailwarden (uid %d) cannot read "
                      "/etc/shadow, so PAM's pam_unix can check no password but that of its own "
                      "user; add the user to group shadow, or use an htpasswd file (see "
                      "mailwardenrc(5))" % pwd.getpwnam("nobody").pw_uid, daemon.log(),
                      "the daemon's warning")
    finally:
        daemon.stop()
