"""check director and the director actions against a real Dovecot 2.3 director with three real
backend Dovecots on 127.0.0.2-4 (one ring for the module), and scripted director-admin peers
for what a real director rarely does (garbage, a close mid-reply, silence, NOTFOUND, ring-sync
replies, an old HOST-LIST).

Short cycles keep it fast: `set daemon 1`, `retry 1 rapid 3 rounds 2 fails every 200 ms`, so a
killed backend is down within about two seconds. Every test leaves the ring as it found it:
all backends running and up with 100 vhosts.
"""

import os
import time

import lib
from mwharness.director import DirectorRing, USERS

S = {}
FAST = "retry 1 rapid 3 rounds 2 fails every 200 ms"


def setup_module():
    ring = DirectorRing(base_dir=lib.tmpdir("director-ring"), backends=3)
    S["ring"] = ring
    lib.watch_log("director log", ring.log_path, scope="module")
    ring.start()


def teardown_module():
    if "ring" in S:
        S["ring"].stop()


def ring():
    return S["ring"]


def restore():
    """Every backend running, up, 100 vhosts, no user mappings left over."""
    r = ring()
    for i, b in enumerate(r.backends):
        if not b.is_running():
            r.start_backend(i)
    for ip in r.ips:
        r.admin("HOST-UPDATE\t%s\t100" % ip)
        r.admin("HOST-UP\t%s" % ip)
        r.admin("HOST-FLUSH\t%s" % ip)
    lib.wait_for(lambda: all(h["state"] == "U" and h["vhosts"] == 100 for h in r.host_list()),
                 10, "every backend up again")


def states():
    return {h["ip"]: h["state"] for h in ring().host_list()}


def control(body="", policy=FAST, poll=None, name="ring", extra=""):
    r = ring()
    poll = poll or ('poll imap port %d username "alice@example.test" password "alicepw" '
                    'allow plaintext timeout 2 seconds' % r.backend_imap_port)
    text = ("set daemon 1\n%s"
            "check director %s with socket \"%s\"\n"
            "    %s\n    %s\n%s"
            "    if failed then alert\n" % (extra, name, r.admin_socket, poll, policy, body))
    return lib.write_control(lib.tmpdir(), text)


def backend(doc_test, ip):
    for b in doc_test["backends"]:
        if b["ip"] == ip:
            return b
    raise lib.TestFailure("no backend %s in %r" % (ip, doc_test["backends"]))


def director_test(control_path):
    doc = lib.status_json(control_path)
    return doc["services"][0]["tests"][0]


# ---- the real director ---------------------------------------------------------------------

def test_all_backends_up_is_ok():
    doc = lib.validate_json(control(), expect_rc=0)
    t = lib.single_test(doc)
    lib.expect_eq(t["name"], "director " + ring().admin_socket, "test name")
    lib.expect_result(t, "ok", "none", "")
    lib.expect_eq([b["ip"] for b in t["backends"]], ring().ips, "backends listed")
    b = backend(t, "127.0.0.2")
    lib.expect_eq((b["state"], b["vhosts"], b["down_by"], b["rapid"]), ("up", 100, None, None),
                  "backend 127.0.0.2")
    lib.expect_eq(b["polls"][-1]["ok"], True, "last poll of 127.0.0.2")


def test_killed_backend_goes_down_logins_move_and_it_comes_back():
    r = ring()
    events = lib.tmpdir("events")
    rc = control("    if backend down then exec \"/bin/sh -c 'echo down $MAILWARDEN_BACKEND "
                 ">> %s/events'\"\n"
                 "    if backend up then exec \"/bin/sh -c 'echo up $MAILWARDEN_BACKEND "
                 ">> %s/events'\"\n" % (events, events))
    try:
        with lib.Daemon(rc) as dm:
            dm.wait_log(r"cycle 2:", 10)
            r.kill_backend(0)
            killed = time.monotonic()
            lib.wait_for(lambda: states()["127.0.0.2"] == "D", 15, "127.0.0.2 down")
            lib.note("kill -9 to HOST-DOWN: %.1f s (retry 1, 3 rapid rounds, cycle 1 s)"
                     % (time.monotonic() - killed))
            lib.expect_eq(states(), {"127.0.0.2": "D", "127.0.0.3": "U", "127.0.0.4": "U"},
                          "states after the kill")
            # Every user logs in through the director and lands on a live backend.
            for user, pw in USERS.items():
                lib.expect_match(r"^a OK ", r.imap_login(user, pw), "login of %s" % user)
            t = director_test(rc)
            b = backend(t, "127.0.0.2")
            lib.expect_eq((b["state"], b["down_by"]), ("down", "mailwarden"), "status of .2")
            lib.expect_true(b["down_at"] > 0, "down_at is set", b)
            lib.expect_eq(b["rapid"]["verdict"], "dead", "rapid verdict")
            lib.expect_match(r"^taken down, HOST-RESET-USERS$", b["action"], "action")
            text = lib.mw(rc, "status").out
            lib.expect_match(r"\n    backend +127\.0\.0\.2  tag -  vhosts 100  users \d+  DOWN "
                             r"\(by mailwarden at [^)]+\)\n", text, "status text")
            lib.expect_match(r"\n      rapid mode +2 of 3 polls done, 2 failed \(2 needed\): dead\n",
                             text, "status text")
            r.start_backend(0)
            lib.wait_for(lambda: states()["127.0.0.2"] == "U", 15, "127.0.0.2 up again")
            dm.wait_log(r"backend 127\.0\.0\.2 answers again: HOST-UP", 5)
        lib.wait_for(lambda: os.path.exists(events + "/events") and
                     open(events + "/events").read() == "down 127.0.0.2\nup 127.0.0.2\n",
                     5, "the exec of both events with MAILWARDEN_BACKEND")
    finally:
        restore()


def test_restart_of_mailwarden_keeps_ownership():
    r = ring()
    rc = control()
    try:
        with lib.Daemon(rc) as dm:
            dm.wait_log(r"cycle 2:", 10)
            r.kill_backend(0)
            lib.wait_for(lambda: states()["127.0.0.2"] == "D", 15, "127.0.0.2 down")
            dm.wait_log(r"cycle \d+: 1 checks", 5, count=4)
        r.start_backend(0)
        time.sleep(1.5)
        lib.expect_eq(states()["127.0.0.2"], "D", "127.0.0.2 while mailwarden is stopped")
        with lib.Daemon(rc, log=rc + ".second.log") as dm:
            dm.wait_log(r"backend 127\.0\.0\.2 answers again: HOST-UP", 10)
            lib.expect_eq(states()["127.0.0.2"], "U", "127.0.0.2 after the restart")
    finally:
        restore()


def test_administrator_down_and_vhost_0_are_left_alone():
    r = ring()
    rc = control()
    try:
        r.doveadm("down", "127.0.0.3")
        r.admin("HOST-UPDATE\t127.0.0.4\t0")
        with lib.Daemon(rc) as dm:
            dm.wait_log(r"cycle 3:", 10)
        lib.expect_eq(states(), {"127.0.0.2": "U", "127.0.0.3": "D", "127.0.0.4": "U"},
                      "states after three cycles")
        t = director_test(rc)
        lib.expect_result(t, "ok", "none", "")
        b3, b4 = backend(t, "127.0.0.3"), backend(t, "127.0.0.4")
        lib.expect_eq((b3["state"], b3["down_by"], b3["left_alone"], b3["polls"]),
                      ("down", "administrator", "taken down by an administrator", []),
                      "127.0.0.3")
        lib.expect_eq((b4["vhosts"], b4["left_alone"], b4["polls"]),
                      (0, "vhost count 0 (set by an administrator)", []), "127.0.0.4")
    finally:
        restore()


def test_max_down_holds_when_two_backends_die():
    r = ring()
    rc = control(policy=FAST + "\n    max down 1")
    try:
        with lib.Daemon(rc) as dm:
            dm.wait_log(r"cycle 2:", 10)
            r.kill_backend(0)
            r.kill_backend(1)
            dm.wait_log(r"is not taken down: max down 1 allows 1 backend down at once and 1 "
                        r"already is", 15)
            dm.wait_log(r"cycle \d+:", 5, count=8)
        lib.expect_eq(sorted(states().values()), ["D", "U", "U"], "exactly one backend down")
        t = director_test(rc)
        lib.expect_eq((t["status"], t["class"]), ("failed", "content"), "status of the check")
        lib.expect_match(r"^backend 127\.0\.0\.[23] failed 2 of 2 rapid polls but is not taken "
                         r"down: max down 1 allows 1 backend down at once and 1 already is$",
                         t["message"], "message")
    finally:
        restore()


def test_all_backends_failing_at_once_takes_nothing_down():
    r = ring()
    rc = control()
    try:
        with lib.Daemon(rc) as dm:
            dm.wait_log(r"cycle 2:", 10)
            for i in range(3):
                r.kill_backend(i)
            dm.wait_log(r"all 3 backends failed at once", 10, count=3)
        lib.expect_eq(states(), {ip: "U" for ip in r.ips}, "nothing taken down")
        t = director_test(rc)
        lib.expect_eq((t["status"], t["class"]), ("failed", "connect"), "status of the check")
        lib.expect_match(r"^all 3 backends failed at once \(127\.0\.0\.2: imap:\d+: connect: "
                         r"cannot connect to 127\.0\.0\.2:\d+: Connection refused\); "
                         r"mailwarden's own network is the likely culprit: nothing taken down$",
                         t["message"], "message")
    finally:
        restore()


def test_dry_run_changes_nothing():
    r = ring()
    rc = control("    dry run\n    if backend down then alert\n")
    try:
        with lib.Daemon(rc) as dm:
            dm.wait_log(r"cycle 2:", 10)
            r.kill_backend(0)
            dm.wait_log(r"alert: 'ring' dry run: would take backend 127\.0\.0\.2 down: failed 2 "
                        r"of 2 rapid polls", 15)
            dm.wait_log(r"cycle \d+:", 5, count=6)
        lib.expect_eq(states(), {ip: "U" for ip in r.ips}, "nothing changed")
        t = director_test(rc)
        lib.expect_eq(t["dry_run"], True, "dry_run in status")
        lib.expect_eq(backend(t, "127.0.0.2")["down_by"], None, "no ownership in a dry run")
    finally:
        restore()


def test_missing_test_account_is_a_misconfiguration():
    r = ring()
    d = lib.tmpdir("creds")
    creds = os.path.join(d, "accounts.cfg")
    with open(creds, "w") as f:
        for n, ip in enumerate(r.ips[:2]):
            f.write('b%d: { address = "%s"; username = "alice@example.test"; password = "alicepw"; };\n'
                    % (n, ip))
    os.chmod(creds, 0o600)
    poll = ("poll imap port %d credentials by address allow plaintext timeout 2 seconds"
            % r.backend_imap_port)
    rc = control(poll=poll, extra='set credentials "%s"\n' % creds)
    t = lib.single_test(lib.validate_json(rc, expect_rc=1))
    lib.expect_result(t, "failed", "missing-feature",
                      "backend 127.0.0.4: misconfigured poll, not counted as a failure: imap:%d: "
                      "no test account for backend 127.0.0.4 in the credentials file (an entry "
                      "with address = \"127.0.0.4\")" % r.backend_imap_port)
    lib.expect_eq(backend(t, "127.0.0.4")["failed_in_a_row"], 0, "not counted as a failure")
    lib.expect_eq(backend(t, "127.0.0.2")["polls"][-1]["ok"], True, "127.0.0.2 polled with its account")


def test_tls_poll_verifies_the_name_given_for_backends_listed_by_ip():
    r = ring()
    ca = r.certs["ca"]["cert"]
    poll = ('poll imaps port %d servername "localhost" ssl options { cacertificatefile: "%s" } '
            'username "alice@example.test" password "alicepw" timeout 2 seconds'
            % (r.backend_imaps_port, ca))
    t = lib.single_test(lib.validate_json(control(poll=poll), expect_rc=0))
    lib.expect_result(t, "ok", "none", "")
    lib.expect_eq([b["polls"][-1]["ok"] for b in t["backends"]], [True] * 3, "TLS polls")
    poll = ('poll imaps port %d ssl options { cacertificatefile: "%s" } timeout 2 seconds'
            % (r.backend_imaps_port, ca))
    t = lib.single_test(lib.validate_json(control(poll=poll), expect_rc=1))
    lib.expect_result(t, "failed", "missing-feature",
                      "backend 127.0.0.2: misconfigured poll, not counted as a failure: imaps:%d: "
                      "backend 127.0.0.2 is listed by IP: give the name its certificate carries "
                      "(servername \"NAME\" on the poll line or in its credentials entry)"
                      % r.backend_imaps_port)


def test_rate_limited_director_down_action():
    r = ring()
    text = ("set daemon 1\n"
            "check host backend1 with address 127.0.0.2\n"
            "    if failed port %d protocol imap timeout 1 second\n"
            "    then director down via socket \"%s\" repeat every 1 cycles "
            "rate limit 1 per 1 hour\n" % (r.backend_imap_port, r.admin_socket))
    rc = lib.write_control(lib.tmpdir(), text)
    try:
        with lib.Daemon(rc) as dm:
            r.kill_backend(0)
            lib.wait_for(lambda: states()["127.0.0.2"] == "D", 10, "127.0.0.2 down by the action")
            dm.wait_log(r"director down 127\.0\.0\.2 via \S+: OK", 5)
            r.admin("HOST-UP\t127.0.0.2")
            dm.wait_log(r"'backend1' director down: suppressed by its rate limit of 1 per 3600 s "
                        r"\(2 suppressed so far\)", 10)
        lib.expect_eq(states()["127.0.0.2"], "U", "not taken down again within the rate limit")
    finally:
        restore()


# ---- scripted director-admin peers ------------------------------------------------------------

def peer_check(script, poll_port=143):
    with lib.Peer([os.path.join(lib.PEER_SCRIPTS, script)]) as peer:
        text = ("check director d with address 127.0.0.1 port %d\n"
                "    poll imap port %d\n    admin timeout 1 second\n"
                "    if failed then alert\n" % (peer.ports[0], poll_port))
        t = lib.single_test(lib.validate_json(lib.write_control(lib.tmpdir(), text), expect_rc=1))
        return t, peer


def test_peer_garbage():
    t, _ = peer_check("director-garbage.peer")
    lib.expect_result(t, "failed", "protocol",
                      'HOST-LIST line has 2 field(s), at least 3 expected (ip, vhosts, users): '
                      '"\\x01\\x02garbage\\tnot a host"')


def test_peer_closes_mid_reply():
    t, _ = peer_check("director-close-mid-reply.peer")
    lib.expect_result(t, "failed", "protocol",
                      "director-admin: server closed the connection while waiting for the reply "
                      "to HOST-LIST")


def test_peer_never_answers():
    t, peer = peer_check("director-silent.peer")
    lib.expect_result(t, "failed", "timeout",
                      "no reply from 127.0.0.1:%d within 1 s" % peer.ports[0])


def test_peer_old_host_list_needs_2_2_19():
    t, peer = peer_check("director-old.peer")
    lib.expect_result(t, "failed", "missing-feature",
                      "HOST-LIST of 127.0.0.1:%d shows no up/down state (Dovecot before 2.2.19): "
                      "check director needs Dovecot 2.2.19 or later to take backends down and up"
                      % peer.ports[0])


def test_peer_logindisabled_backend_is_a_misconfiguration():
    scripts = [os.path.join(lib.PEER_SCRIPTS, n) for n in
               ("director-one-backend.peer", "imap-logindisabled.peer")]
    with lib.Peer(scripts) as peer:
        text = ("check director d with address 127.0.0.1 port %d\n"
                "    poll imap port %d username \"probe\" password \"pw\" allow plaintext\n"
                "    retry 1 rapid 2 rounds 1 fails\n"
                "    if failed then alert\n" % (peer.ports[0], peer.ports[1]))
        t = lib.single_test(lib.validate_json(lib.write_control(lib.tmpdir(), text), expect_rc=1))
    lib.expect_result(t, "failed", "missing-feature",
                      "backend 127.0.0.1: misconfigured poll, not counted as a failure: imap:%d: "
                      "missing-feature: server advertises LOGINDISABLED: it takes no password on "
                      "this unencrypted connection (use starttls or imaps)" % peer.ports[1])
    b = backend(t, "127.0.0.1")
    lib.expect_eq((b["failed_in_a_row"], b["rapid"], b["state"]), (0, None, "up"),
                  "not counted, no rapid mode")


def action_with_peer(script, pattern):
    with lib.Peer([os.path.join(lib.PEER_SCRIPTS, script)]) as peer:
        closed = lib.free_port()
        text = ("set daemon 1\n"
                "check host b with address 127.0.0.2\n"
                "    if failed port %d protocol imap timeout 1 second\n"
                "    then director down via address 127.0.0.1 port %d\n" % (closed, peer.ports[0]))
        rc = lib.write_control(lib.tmpdir(), text)
        with lib.Daemon(rc) as dm:
            line = dm.wait_log(pattern % peer.ports[0], 10)
        lib.expect_eq(peer.errors(), [], "peer script mismatches")
        return line


def test_peer_ring_sync_replies_are_retried():
    action_with_peer("director-ring-sync.peer",
                     r"'b' director down: director down 127\.0\.0\.2 via 127\.0\.0\.1:%d: OK")


def test_peer_notfound():
    action_with_peer("director-notfound.peer",
                     r"'b' director down: director down 127\.0\.0\.2 via 127\.0\.0\.1:%d failed: "
                     r"NOTFOUND: the director has no backend 127\.0\.0\.2")
