"""mailwarden's IMAP / IMAPS / STARTTLS checks against a real, private Dovecot 2.3.

One Dovecot (CA-signed "good" certificate, auth_failure_delay = 0) serves most tests; tests
that need another certificate, disable_plaintext_auth or a stopped server start their own.
The failed login runs last (Dovecot slows down later logins from the same address).
"""

import base64
import os
import re
import time

import lib
from mwharness import Dovecot

S = {}          # what setup_module made: base, certs, ca, dc


def setup_module():
    lib.start_module_dovecot(S, "imap-dovecot")


def teardown_module():
    lib.stop_module_servers(S)


def extra_dovecot(name, **kw):
    """Another Dovecot for this test (stopped at the latest by teardown_module)."""
    dc = Dovecot(S["base"], name=name, certs=S["certs"], extra_config="auth_failure_delay = 0", **kw)
    S["extra"].append(dc)
    lib.watch_log(name + ".log", dc.log_path)
    dc.start()
    return dc


def control(services, ca=True):
    """A control file with the test CA as trust anchor; `services` is {name: rule} or text."""
    if isinstance(services, dict):
        services = "\n".join("check host %s with address 127.0.0.1\n  if failed %s then alert" % kv
                             for kv in services.items())
    head = "set ssl options { verify: enable, cacertificatefile: %s }\n" % S["ca"] if ca else ""
    return lib.write_control(lib.tmpdir(), head + services)


def ports():
    return S["dc"].ports


def log_offset(dc):
    return os.path.getsize(dc.log_path) if os.path.exists(dc.log_path) else 0


def log_since(dc, offset):
    with open(dc.log_path, encoding="utf-8", errors="replace") as f:
        f.seek(offset)
        return f.read()


def check_ok(rule, name, cert=False):
    """validate --json of one rule: exit 0, the test's name, ok/none/'' and the certificate."""
    t0 = time.time()
    doc = lib.validate_json(control({"svc": rule}), expect_rc=0)
    t1 = time.time()
    t = lib.single_test(doc)
    lib.expect_eq(t["name"], name, "test name")
    lib.expect_result(t, "ok", "none", "")
    lib.expect_true("server_line" not in t, "an ok test has no server_line", t)
    if cert:
        good = S["certs"]["good"]
        lib.expect_eq(sorted(t.get("certificate", {})), ["days_left", "not_after"], "certificate keys")
        lib.expect_eq(t["certificate"]["not_after"], good["not_after"], "certificate not_after")
        lib.expect_days_left(t["certificate"]["days_left"], good["not_after"], t0, t1)
    else:
        lib.expect_true("certificate" not in t, "no certificate on a plain connection", t)
    return t


def check_failed(rule, cls, message, ca=True):
    doc = lib.validate_json(control({"svc": rule}, ca=ca), expect_rc=1)
    t = lib.single_test(doc)
    if callable(message):
        message = message(t)
    lib.expect_eq(lib.service(doc, "svc")["status"], "failed", "service status")
    lib.expect_result(t, "failed", cls, message)
    return t


ALICE = 'username "alice@example.test" password "alicepw"'


# ---- plain, implicit TLS, STARTTLS ---------------------------------------------------------

def test_imap_plain_ok():
    p = ports()["imap"]
    check_ok("port %d protocol imap" % p, "imap 127.0.0.1:%d" % p)
    r = lib.mw(control({"svc": "port %d protocol imap" % p}), "validate")
    lib.expect_eq((r.rc, r.out, r.err), (0, "svc ok\n", ""), "validate (text): exit, stdout, stderr")


def test_imaps_ok_with_ca_and_certificate_days():
    p = ports()["imaps"]
    t = check_ok("port %d protocol imaps" % p, "imaps 127.0.0.1:%d" % p, cert=True)
    lib.expect_true(t["certificate"]["days_left"] in (364, 365), "good cert has ~1 year left", t)


def test_imap_starttls_ok():
    p = ports()["imap"]
    check_ok("port %d protocol imap starttls" % p, "imap+starttls 127.0.0.1:%d" % p, cert=True)


# ---- logins --------------------------------------------------------------------------------

def expect_dovecot_login(offset, user, tls=True):
    dc = S["dc"]
    text = lib.wait_for(lambda: re.search(r"imap-login: Info: Login: user=<%s>, method=PLAIN.*%s"
                                          % (re.escape(user), ", TLS" if tls else ""),
                                          log_since(dc, offset)),
                        5, "Dovecot's log line of the login of %s" % user)
    return text


def test_login_imaps_ok():
    p = ports()["imaps"]
    off = log_offset(S["dc"])
    check_ok("port %d protocol imaps %s" % (p, ALICE), "imaps 127.0.0.1:%d as alice@example.test" % p,
             cert=True)
    expect_dovecot_login(off, "alice@example.test")


def test_login_starttls_ok():
    p = ports()["imap"]
    off = log_offset(S["dc"])
    check_ok("port %d protocol imap starttls %s" % (p, ALICE),
             "imap+starttls 127.0.0.1:%d as alice@example.test" % p, cert=True)
    expect_dovecot_login(off, "alice@example.test")


def test_select_inbox_ok():
    p = ports()["imaps"]
    rc = control({"svc": 'port %d protocol imaps %s select "INBOX"' % (p, ALICE)})
    doc = lib.validate_json(rc, expect_rc=0, verbose=True)
    lib.expect_result(lib.single_test(doc), "ok", "none", "")
    err = doc["_result"].err
    lib.expect_match(r"C: mw\d+ SELECT \"INBOX\"$", err, "SELECT sent (-v)")
    lib.expect_match(r"S: mw\d+ OK \[READ-WRITE\] Select completed", err, "Dovecot's SELECT answer (-v)")


def test_master_user_ok():
    p = ports()["imaps"]
    off = log_offset(S["dc"])
    rule = ('port %d protocol imaps username "alice@example.test" masteruser "master" '
            'password "masterpw"' % p)
    check_ok(rule, "imaps 127.0.0.1:%d as alice@example.test via master" % p, cert=True)
    expect_dovecot_login(off, "alice@example.test")


# ---- what Dovecot sends after LOGOUT ---------------------------------------------------------

def logout_replies(stderr, service, test):
    """The server lines that followed `C: mwN LOGOUT` in the -v output of one check."""
    prefix = "debug  : '%s' %s " % (service, test)
    after, seen = [], False
    for line in stderr.splitlines():
        if prefix not in line:
            continue
        body = line.split(prefix, 1)[1]
        if re.match(r"C: mw\d+ LOGOUT$", body):
            seen = True
        elif seen and body.startswith("S: "):
            after.append(body[3:])
    return after if seen else None


def test_logout_reply_of_dovecot_passes():
    """Record what Dovecot sends after LOGOUT over IMAP, IMAPS and STARTTLS, before and after a
    login.  Whatever it is (BYE + tagged OK, or BYE then close), the check must pass."""
    p = ports()
    rc = control({"imap": "port %d protocol imap" % p["imap"],
                  "imaps": "port %d protocol imaps" % p["imaps"],
                  "imap-login": "port %d protocol imap starttls %s" % (p["imap"], ALICE),
                  "imaps-login": "port %d protocol imaps %s" % (p["imaps"], ALICE)})
    doc = lib.validate_json(rc, expect_rc=0, verbose=True)
    seen = {}
    for s in doc["services"]:
        t = s["tests"][0]
        lib.expect_result(t, "ok", "none", "", "service %s" % s["name"])
        replies = logout_replies(doc["_result"].err, s["name"], t["name"])
        lib.expect_true(replies is not None, "LOGOUT sent by %s (-v output)" % s["name"])
        lib.expect_true(replies and replies[0].startswith("* BYE"),
                        "Dovecot's first answer to LOGOUT is * BYE (%s)" % s["name"], replies)
        seen[s["name"]] = replies
    for name, replies in seen.items():
        lib.note("Dovecot after LOGOUT on %s: %s" % (name, " | ".join(replies) or "(close)"))


def test_peer_imaps_bye_then_close_without_tagged_ok_passes():
    """The notes' case (and the monit blog post's): IMAPS answers LOGOUT with `* BYE` and closes
    without the tagged OK -- with and without close_notify, before and after a login."""
    certs = lib.make_peer_certs(os.path.join(lib.tmpdir("peer-certs"), "certs"))
    scripts = [lib.peer_script(n) for n in ("imaps-logout-bye-close.peer",
                                            "imaps-logout-bye-dirty-close.peer",
                                            "imaps-login-logout-bye-close.peer",
                                            "imap-logout-bye-close.peer")]
    if not os.path.exists(os.path.join(lib.PEER_SCRIPTS, "imaps-logout-bye-close.peer")):
        lib.note("tests/peers/scripts/imaps-logout-bye-close.peer does not exist; "
                 "using tests/integration/peers/ (tls good, * BYE, close without the tagged OK)")
    with lib.Peer(scripts, certs_dir=certs) as peer:
        pt = peer.ports
        body = "\n".join([
            "check host bye-close with address 127.0.0.1\n  if failed port %d protocol imaps then alert" % pt[0],
            "check host bye-dirty with address 127.0.0.1\n  if failed port %d protocol imaps then alert" % pt[1],
            "check host login-bye with address 127.0.0.1\n  if failed port %d protocol imaps %s then alert"
            % (pt[2], ALICE),
            "check host plain-bye with address 127.0.0.1\n  if failed port %d protocol imap then alert" % pt[3]])
        rc = lib.write_control(lib.tmpdir(), "set ssl options { cacertificatefile: %s/ca.pem }\n%s"
                               % (certs, body))
        doc = lib.validate_json(rc, expect_rc=0, verbose=True)
        for s in doc["services"]:
            lib.expect_result(s["tests"][0], "ok", "none", "", "service %s" % s["name"])
            replies = logout_replies(doc["_result"].err, s["name"], s["tests"][0]["name"])
            lib.expect_eq(replies, ["* BYE Logging out"] if s["name"] != "plain-bye"
                          else ["* BYE IMAP4rev1 server logging out"],
                          "server lines after LOGOUT (%s)" % s["name"])
        lib.expect_eq(peer.errors(), [], "mw-peer expectation mismatches")


# ---- refusals ------------------------------------------------------------------------------

def test_logindisabled_is_missing_feature_and_password_never_sent():
    dc = extra_dovecot("dovecot-noplain", disable_plaintext_auth=True)
    p = dc.ports["imap"]
    off = log_offset(dc)
    rule = "host %s port %d protocol imap %s allow plaintext" % (dc.host, p, ALICE)
    doc = lib.validate_json(control({"svc": rule}), expect_rc=1, verbose=True)
    t = lib.single_test(doc)
    lib.expect_eq(t["name"], "imap %s:%d as alice@example.test" % (dc.host, p), "test name")
    lib.expect_result(t, "failed", "missing-feature",
                      "server advertises LOGINDISABLED: it takes no password on this unencrypted "
                      "connection (use starttls or imaps)")
    err = doc["_result"].err
    lib.expect_match(r"S: \* CAPABILITY .*LOGINDISABLED", err, "Dovecot announced LOGINDISABLED (-v)")
    for secret in ("alicepw", base64.b64encode(b"\0alice@example.test\0alicepw").decode(),
                   base64.b64encode(b"alice@example.test\0alice@example.test\0alicepw").decode()):
        lib.expect_not_in(secret, err + doc["_result"].out, "mailwarden's -v output")
    lib.expect_true(not re.search(r"C: mw\d+ (LOGIN|AUTHENTICATE)", err),
                    "no LOGIN/AUTHENTICATE command sent", err)
    # Dovecot saw a connection without any authentication attempt.
    text = lib.wait_for(lambda: (lambda t: t if "imap-login: Info: Disconnected" in t else None)(
        log_since(dc, off)), 5, "Dovecot's log of the disconnect")
    lib.expect_in("(no auth attempts in ", text, "Dovecot's log")
    # mailwarden still says goodbye politely after refusing to send the password.
    lib.expect_in("Aborted login by logging out", text, "Dovecot's log")
    for forbidden in ("Login: user=", "auth failed", "alice@example.test"):
        lib.expect_not_in(forbidden, text, "Dovecot's log after the LOGINDISABLED check")
    # Control: the same server and account over STARTTLS log in (and Dovecot logs it).
    off = log_offset(dc)
    doc = lib.validate_json(control({"svc": "host %s port %d protocol imap starttls %s"
                                     % (dc.host, p, ALICE)}), expect_rc=0)
    lib.expect_result(lib.single_test(doc), "ok", "none", "")
    lib.wait_for(lambda: "Login: user=<alice@example.test>" in log_since(dc, off), 5,
                 "Dovecot's log of the STARTTLS login")


def test_imaps_without_ca_fails_tls():
    p = ports()["imaps"]
    t = check_failed("port %d protocol imaps" % p, "tls",
                     "certificate verification failed: unable to get local issuer certificate", ca=False)
    good = S["certs"]["good"]
    lib.expect_eq(t.get("certificate", {}).get("not_after"), good["not_after"],
                  "the certificate is reported even though it was not trusted")


def test_selfsigned_dovecot_fails_unless_selfsigned_allowed():
    dc = extra_dovecot("dovecot-selfsigned", cert="selfsigned")
    p = dc.ports["imaps"]
    check_failed("port %d protocol imaps" % p, "tls",
                 "certificate verification failed: self-signed certificate")
    # per test ...
    doc = lib.validate_json(control({"svc": "port %d protocol imaps ssl options { selfsigned: allow }" % p}),
                            expect_rc=0)
    lib.expect_result(lib.single_test(doc), "ok", "none", "", "per-test selfsigned: allow")
    # ... and globally
    rc = lib.write_control(lib.tmpdir(), "set ssl options { verify: enable, selfsigned: allow }\n"
                           "check host svc with address 127.0.0.1\n"
                           "  if failed port %d protocol imaps then alert" % p)
    doc = lib.validate_json(rc, expect_rc=0)
    t = lib.single_test(doc)
    lib.expect_result(t, "ok", "none", "", "set ssl options { selfsigned: allow }")
    lib.expect_eq(t["certificate"]["not_after"], S["certs"]["selfsigned"]["not_after"], "certificate seen")


def test_certificate_valid_more_than_400_days_fails():
    p = ports()["imaps"]
    not_after = S["certs"]["good"]["not_after"]
    t0 = time.time()
    t = check_failed("port %d protocol imaps certificate valid > 400 days" % p, "certificate",
                     lambda t: "certificate expires in %d days (the rule wants more than 400)"
                     % t["certificate"]["days_left"])
    lib.expect_days_left(t["certificate"]["days_left"], not_after, t0, time.time())
    check_ok("port %d protocol imaps certificate valid > 300 days" % p,
             "imaps 127.0.0.1:%d" % p, cert=True)


def test_stopped_dovecot_is_connect_refused():
    dc = extra_dovecot("dovecot-stopped")
    p = dc.ports
    rc = control({"imap": "port %d protocol imap" % p["imap"], "imaps": "port %d protocol imaps" % p["imaps"]})
    lib.validate_json(rc, expect_rc=0)
    dc.stop()
    doc = lib.validate_json(rc, expect_rc=1)
    for name in ("imap", "imaps"):
        t = lib.service(doc, name)["tests"][0]
        lib.expect_result(t, "failed", "connect",
                          "cannot connect to 127.0.0.1:%d: Connection refused" % p[name], name)
        lib.expect_true("certificate" not in t, "no certificate without a connection", t)
    r = lib.mw(rc, "validate")
    lib.expect_eq(r.out, "imap failed: imap 127.0.0.1:%d: connect: cannot connect to 127.0.0.1:%d: "
                  "Connection refused\nimaps failed: imaps 127.0.0.1:%d: connect: cannot connect to "
                  "127.0.0.1:%d: Connection refused\n" % (p["imap"], p["imap"], p["imaps"], p["imaps"]),
                  "validate (text)")
    lib.expect_eq(r.rc, 1, "exit status of validate (text)")


# ---- last: a failed login (Dovecot penalises later logins from the same address) ----------

def test_wrong_password_is_auth_failure():
    p = ports()["imaps"]
    rule = 'port %d protocol imaps username "alice@example.test" password "wrongpw"' % p
    rc = control({"svc": rule})
    doc = lib.validate_json(rc, expect_rc=1, verbose=True)
    t = lib.single_test(doc)
    line = t.get("server_line", "")
    lib.expect_match(r"^mw\d+ NO \[AUTHENTICATIONFAILED\] Authentication failed\.$", line,
                     "server_line is Dovecot's tagged NO")
    lib.expect_result(t, "failed", "auth", "login as alice@example.test failed: " + line)
    lib.expect_eq(t.get("certificate", {}).get("not_after"), S["certs"]["good"]["not_after"],
                  "the certificate is recorded although the test failed (auth)")
    lib.expect_not_in("wrongpw", doc["_result"].err + doc["_result"].out, "mailwarden's -v output")
    lib.expect_not_in(base64.b64encode(b"\0alice@example.test\0wrongpw").decode(),
                      doc["_result"].err, "mailwarden's -v output (SASL blob)")
    r = lib.mw(rc, "validate")
    lib.expect_eq(r.out, "svc failed: imaps 127.0.0.1:%d as alice@example.test: auth: login as "
                  "alice@example.test failed: %s\n" % (p, line), "validate (text)")
    lib.expect_eq(r.rc, 1, "exit status of validate (text)")
