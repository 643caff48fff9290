"""mailwarden's pop, smtp, submission, lmtp, sieve and generic (send/expect) tests, the
credentials file, and the certificate and response-time limits, against a real, private Dovecot
2.3 and Postfix 3.7 on loopback.

One Dovecot (CA-signed "good" certificate, auth_failure_delay = 0) and one Postfix (asking that
Dovecot's auth service over TCP, delivering to its LMTP) serve most tests; three more Dovecots
show a certificate that expires in 10 days, a self-signed one, and disable_plaintext_auth. Each
test writes one control file with one service per rule and runs a single `validate --json`, so
the rules of a test run concurrently; every rule's status, class and message is asserted.
"""

import os
import re

import lib
from mwharness import Dovecot, Postfix, make_certs

S = {}  # what setup_module made: base, certs, ca, dc, pf, extra

ALICE = 'username "alice@example.test" password "alicepw"'
MASTER = 'username "alice@example.test" masteruser "master" password "masterpw"'


def setup_module():
    base = lib.tmpdir("protocols")
    certs = make_certs(os.path.join(base, "certs"))
    dc = Dovecot(base, certs=certs, extra_config="auth_failure_delay = 0")
    pf = Postfix(base, dovecot=dc, certs=certs)
    S.update(base=base, certs=certs, ca=certs["ca"]["cert"], dc=dc, pf=pf, extra={})
    lib.watch_log("dovecot.log", dc.log_path, scope="module")
    lib.watch_log("postfix.log", pf.log_path, scope="module")
    dc.start()
    pf.start()


def teardown_module():
    for server in list(S.get("extra", {}).values()) + [S.get("pf"), S.get("dc")]:
        if server:
            server.stop()


def extra_dovecot(name, **kw):
    """Another Dovecot, started once and shared by the tests that need it."""
    if name not in S["extra"]:
        dc = Dovecot(S["base"], name=name, certs=S["certs"], extra_config="auth_failure_delay = 0",
                     **kw)
        S["extra"][name] = dc
        lib.watch_log(name + ".log", dc.log_path, scope="module")
        dc.start()
    return S["extra"][name]


def dp(name):
    return S["dc"].ports[name]


def pp(name):
    return S["pf"].ports[name]


def run_rules(rules, head="", host="127.0.0.1", expect_rc=None):
    """One service per rule ({service: rule}), one `validate --json`; returns {service: test}."""
    body = "set ssl options { verify: enable, cacertificatefile: %s }\n" % S["ca"] + head
    for name, rule in rules.items():
        body += "check host %s with address %s\n  if failed %s then alert\n" % (name, host, rule)
    doc = lib.validate_json(lib.write_control(lib.tmpdir(), body), expect_rc=expect_rc)
    out = {}
    for svc in doc["services"]:
        lib.expect_eq(len(svc["tests"]), 1, "tests of service %s" % svc["name"])
        out[svc["name"]] = svc["tests"][0]
    lib.expect_eq(sorted(out), sorted(rules), "services in the validate output")
    S["last"] = doc["_result"]
    return out


def expect_outcomes(results, want):
    """want: {service: (test name, status, class, message)}; message may be a compiled regex."""
    problems = []
    for name, (test_name, status, cls, message) in want.items():
        t = results[name]
        got_msg = t.get("message")
        msg_ok = message.fullmatch(got_msg or "") if hasattr(message, "fullmatch") else got_msg == message
        got = (t.get("name"), t.get("status"), t.get("class"))
        if got != (test_name, status, cls) or not msg_ok:
            problems.append("%s:\n  expected: %r\n  got:      %r" % (
                name, (test_name, status, cls, message), got + (got_msg,)))
    if problems:
        raise lib.TestFailure("\n".join(problems))


def log_offset(path):
    return os.path.getsize(path) if os.path.exists(path) else 0


def log_since(path, offset):
    with open(path, encoding="utf-8", errors="replace") as f:
        f.seek(offset)
        return f.read()


OK = ("ok", "none", "")


# ---- POP3 ------------------------------------------------------------------------------------

def test_pop_pops_stls_logins_and_master_user():
    dc = S["dc"]
    off = log_offset(dc.log_path)
    r = run_rules({
        "plain": "port %d protocol pop" % dp("pop3"),
        "stls": "port %d protocol pop starttls %s" % (dp("pop3"), ALICE),
        "pops": "port %d protocol pops %s" % (dp("pop3s"), ALICE),
        "master": "port %d protocol pops %s" % (dp("pop3s"), MASTER),
        "cleartext": "port %d protocol pop %s allow plaintext" % (dp("pop3"), ALICE),
    }, expect_rc=0)
    expect_outcomes(r, {
        "plain": ("pop 127.0.0.1:%d" % dp("pop3"),) + OK,
        "stls": ("pop+starttls 127.0.0.1:%d as alice@example.test" % dp("pop3"),) + OK,
        "pops": ("pops 127.0.0.1:%d as alice@example.test" % dp("pop3s"),) + OK,
        "master": ("pops 127.0.0.1:%d as alice@example.test via master" % dp("pop3s"),) + OK,
        "cleartext": ("pop 127.0.0.1:%d as alice@example.test" % dp("pop3"),) + OK,
    })
    for name in ("stls", "pops"):
        lib.expect_eq(sorted(r[name]["certificate"]), ["days_left", "not_after"], name + " certificate")
    lib.expect_true("certificate" not in r["plain"], "no certificate on plain POP3", r["plain"])
    text = log_since(dc.log_path, off)
    lib.expect_eq(len(re.findall(r"pop3-login: Info: Login: user=<alice@example\.test>, method=PLAIN",
                                 text)), 4, "POP3 logins in Dovecot's log (stls, pops, master, cleartext)")


# ---- LMTP --------------------------------------------------------------------------------------

def test_lmtp_tcp_and_unix_socket_probe_recipients_without_delivering():
    dc = S["dc"]
    sock = os.path.join(dc.dir, "run", "lmtp")
    before = len(dc.message_files("alice@example.test"))
    r = run_rules({
        "tcp": 'port %d protocol lmtp rcpt to "alice@example.test"' % dp("lmtp"),
        "unix": 'unixsocket %s protocol lmtp mail from "probe@example.test" rcpt to "bob@example.test"'
                % sock,
        "nobody": 'port %d protocol lmtp rcpt to "nobody@example.test" expect reject' % dp("lmtp"),
        "missing": 'port %d protocol lmtp rcpt to "nobody@example.test"' % dp("lmtp"),
        "lhlo": 'port %d protocol lmtp lhlo "probe.example.test"' % dp("lmtp"),
    }, expect_rc=1)
    expect_outcomes(r, {
        "tcp": ("lmtp 127.0.0.1:%d" % dp("lmtp"),) + OK,
        "unix": ("lmtp %s" % sock,) + OK,
        "nobody": ("lmtp 127.0.0.1:%d" % dp("lmtp"),) + OK,
        "missing": ("lmtp 127.0.0.1:%d" % dp("lmtp"), "failed", "rejected",
                    "RCPT TO:<nobody@example.test> refused: 550 5.1.1 <nobody@example.test> "
                    "User doesn't exist: nobody@example.test"),
        "lhlo": ("lmtp 127.0.0.1:%d" % dp("lmtp"),) + OK,
    })
    lib.expect_eq(len(dc.message_files("alice@example.test")), before, "messages delivered to alice")


# ---- ManageSieve -------------------------------------------------------------------------------

def test_sieve_greeting_starttls_login_and_master():
    dc = S["dc"]
    off = log_offset(dc.log_path)
    p = dp("sieve")
    r = run_rules({
        "plain": "port %d protocol sieve" % p,
        "login": "port %d protocol sieve starttls %s" % (p, ALICE),
        "master": "port %d protocol sieve starttls %s" % (p, MASTER),
    })
    expect_outcomes(r, {
        "plain": ("sieve 127.0.0.1:%d" % p,) + OK,
        "login": ("sieve+starttls 127.0.0.1:%d as alice@example.test" % p,) + OK,
        "master": ("sieve+starttls 127.0.0.1:%d as alice@example.test via master" % p,) + OK,
    })
    text = log_since(dc.log_path, off)
    lib.expect_eq(len(re.findall(r"managesieve-login: Info: Login: user=<alice@example\.test>, "
                                 r"method=PLAIN.*TLS", text)), 2, "ManageSieve logins over TLS")


# ---- SMTP, SMTPS, submission -----------------------------------------------------------------

def test_smtp_smtps_submission_and_relay_probe():
    pf = S["pf"]
    off = log_offset(pf.log_path)
    r = run_rules({
        "smtp": "port %d protocol smtp" % pp("smtp"),
        "starttls": 'port %d protocol smtp starttls helo "probe.example.test"' % pp("smtp"),
        "smtps": "port %d protocol smtps" % pp("smtps"),
        "submission": "port %d protocol submission" % pp("submission"),
        "auth": "port %d protocol submission %s" % (pp("submission"), ALICE),
        "smtpsauth": "port %d protocol smtps %s" % (pp("smtps"), ALICE),
        "local": 'port %d protocol smtp mail from "probe@example.test" rcpt to "alice@example.test"'
                 % pp("smtp"),
        "norelay": 'port %d protocol smtp helo "probe.example.test" mail from "probe@example.test" '
                   'rcpt to "x@elsewhere.test" expect reject' % pp("smtp"),
        "relay": 'port %d protocol smtp mail from "probe@example.test" rcpt to "x@elsewhere.test"'
                 % pp("smtp"),
        "noauth": "port %d protocol smtp %s allow plaintext" % (pp("submission"), ALICE),
    }, expect_rc=1)
    s, t, u = pp("smtp"), pp("smtps"), pp("submission")
    expect_outcomes(r, {
        "smtp": ("smtp 127.0.0.1:%d" % s,) + OK,
        "starttls": ("smtp+starttls 127.0.0.1:%d" % s,) + OK,
        "smtps": ("smtps 127.0.0.1:%d" % t,) + OK,
        "submission": ("submission 127.0.0.1:%d" % u,) + OK,
        "auth": ("submission 127.0.0.1:%d as alice@example.test" % u,) + OK,
        "smtpsauth": ("smtps 127.0.0.1:%d as alice@example.test" % t,) + OK,
        "local": ("smtp 127.0.0.1:%d" % s,) + OK,
        "norelay": ("smtp 127.0.0.1:%d" % s,) + OK,
        "relay": ("smtp 127.0.0.1:%d" % s, "failed", "rejected",
                  "RCPT TO:<x@elsewhere.test> refused: 554 5.7.1 <x@elsewhere.test>: Relay access "
                  "denied"),
        "noauth": ("smtp 127.0.0.1:%d as alice@example.test" % u, "failed", "missing-feature",
                   "server offers no AUTH on this connection (it may want STARTTLS first)"),
    })
    text = log_since(pf.log_path, off)
    lib.expect_eq(len(re.findall(r"NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 554 5\.7\.1 "
                                 r"<x@elsewhere\.test>: Relay access denied", text)),
                  2, "relay attempts Postfix refused")
    lib.expect_match(r"Relay access denied; from=<probe@example\.test> to=<x@elsewhere\.test> "
                     r"proto=ESMTP helo=<probe\.example\.test>", text, "the helo name of the relay probe")
    lib.expect_eq(len(re.findall(r"disconnect from localhost\[127\.0\.0\.1\] ehlo=\d( starttls=1)? "
                                 r"auth=1 quit=1 commands=", text)), 2,
                  "sessions with an accepted AUTH (submission, smtps)")
    lib.expect_eq(pf.queue_files(), [], "Postfix queue (no probe may deliver)")


# ---- the credentials file --------------------------------------------------------------------

def credentials_file(mode=0o600):
    d = lib.tmpdir()
    path = os.path.join(d, "accounts.cfg")
    with open(path, "w") as f:
        f.write('probe:    { username = "alice@example.test"; password = "alicepw"; };\n'
                'backend1: { username = "alice@example.test"; masteruser = "master"; '
                'password = "masterpw"; };\n')
    os.chmod(path, mode)
    return path


def test_credentials_file_logins_over_every_protocol():
    creds = credentials_file()
    dc = S["dc"]
    off = log_offset(dc.log_path)
    r = run_rules({
        "imap": 'port %d protocol imaps credentials "backend1" select "INBOX"' % dp("imaps"),
        "pop": 'port %d protocol pops credentials "probe"' % dp("pop3s"),
        "popmaster": 'port %d protocol pop starttls credentials "backend1"' % dp("pop3"),
        "sieve": 'port %d protocol sieve starttls credentials "backend1"' % dp("sieve"),
        "submission": 'port %d protocol submission credentials "probe"' % pp("submission"),
    }, head='set credentials "%s"\n' % creds, expect_rc=0)
    expect_outcomes(r, {
        "imap": ("imaps 127.0.0.1:%d as alice@example.test via master" % dp("imaps"),) + OK,
        "pop": ("pops 127.0.0.1:%d as alice@example.test" % dp("pop3s"),) + OK,
        "popmaster": ("pop+starttls 127.0.0.1:%d as alice@example.test via master" % dp("pop3"),) + OK,
        "sieve": ("sieve+starttls 127.0.0.1:%d as alice@example.test via master" % dp("sieve"),) + OK,
        "submission": ("submission 127.0.0.1:%d as alice@example.test" % pp("submission"),) + OK,
    })
    text = log_since(dc.log_path, off)
    lib.expect_match(r"imap-login: Info: Login: user=<alice@example\.test>, method=PLAIN", text,
                     "IMAP master login in Dovecot's log")
    # The passwords appear nowhere in what mailwarden printed.
    lib.expect_not_in("masterpw", S["last"].out + S["last"].err, "validate output")
    lib.expect_not_in("alicepw", S["last"].out + S["last"].err, "validate output")


def test_credentials_errors_are_reported_by_syntax_check():
    creds = credentials_file()
    d = lib.tmpdir()
    rc = lib.write_control(d, 'set credentials "%s"\ncheck host h with address 127.0.0.1\n'
                              '  if failed port %d protocol imaps credentials "backend2" then alert\n'
                           % (creds, dp("imaps")))
    r = lib.mw(rc, "-t")
    lib.expect_eq((r.rc, r.out, r.err), (2, "", "%s:5:51: credentials file %s has no entry 'backend2'\n"
                                         % (rc, creds)), "-t with a missing entry: exit, stdout, stderr")
    loose = credentials_file(0o644)
    rc = lib.write_control(d, 'set credentials "%s"\ncheck host h with address 127.0.0.1\n'
                              '  if failed port %d protocol imaps credentials "probe" then alert\n'
                           % (loose, dp("imaps")), name="loose.rc")
    r = lib.mw(rc, "-t")
    lib.expect_eq((r.rc, r.out, r.err), (2, "", "%s:3:5: credentials file is accessible by group or "
                                         "others (mode 0644); run: chmod 600 %s\n" % (rc, loose)),
                  "-t with a group-readable credentials file: exit, stdout, stderr")


# ---- LOGINDISABLED / plaintext refused -----------------------------------------------------

def test_plaintext_disabled_dovecot():
    dc = extra_dovecot("dovecot-noplain", disable_plaintext_auth=True)
    r = run_rules({
        "imap": "port %d protocol imap %s allow plaintext" % (dc.ports["imap"], ALICE),
        "pop": "port %d protocol pop %s allow plaintext" % (dc.ports["pop3"], ALICE),
        "popstls": "port %d protocol pop starttls %s" % (dc.ports["pop3"], ALICE),
    }, host=dc.host, expect_rc=1)
    h = dc.host
    expect_outcomes(r, {
        "imap": ("imap %s:%d as alice@example.test" % (h, dc.ports["imap"]), "failed",
                 "missing-feature", "server advertises LOGINDISABLED: it takes no password on this "
                 "unencrypted connection (use starttls or imaps)"),
        "pop": ("pop %s:%d as alice@example.test" % (h, dc.ports["pop3"]), "failed",
                "missing-feature", "server offers neither USER nor SASL PLAIN on this connection "
                "(it may want STLS first)"),
        "popstls": ("pop+starttls %s:%d as alice@example.test" % (h, dc.ports["pop3"]),) + OK,
    })


# ---- certificates and response time -----------------------------------------------------------

def test_certificate_expiring_in_10_days():
    dc = extra_dovecot("dovecot-exp10", cert="expiring10")
    p = dc.ports
    fail30 = "certificate expires in 9 days (the rule wants more than 30)"
    r = run_rules({
        "pops30": "port %d protocol pops certificate valid > 30 days" % p["pop3s"],
        "pops5": "port %d protocol pops certificate valid > 5 days" % p["pop3s"],
        "imaps30": "port %d protocol imaps certificate valid > 30 days" % p["imaps"],
        "sieve30": "port %d protocol sieve starttls certificate valid > 30 days" % p["sieve"],
        "sieve5": "port %d protocol sieve starttls certificate valid > 5 days" % p["sieve"],
        "tcp30": "port %d ssl certificate valid > 30 days" % p["pop3s"],
        "authfail": 'port %d protocol pops username "alice@example.test" password "nope"' % p["pop3s"],
    }, expect_rc=1)
    expect_outcomes(r, {
        "pops30": ("pops 127.0.0.1:%d" % p["pop3s"], "failed", "certificate", fail30),
        "pops5": ("pops 127.0.0.1:%d" % p["pop3s"],) + OK,
        "imaps30": ("imaps 127.0.0.1:%d" % p["imaps"], "failed", "certificate", fail30),
        "sieve30": ("sieve+starttls 127.0.0.1:%d" % p["sieve"], "failed", "certificate", fail30),
        "sieve5": ("sieve+starttls 127.0.0.1:%d" % p["sieve"],) + OK,
        "tcp30": ("tcp+ssl 127.0.0.1:%d" % p["pop3s"], "failed", "certificate", fail30),
        "authfail": ("pops 127.0.0.1:%d as alice@example.test" % p["pop3s"], "failed", "auth",
                     "login as alice@example.test failed: -ERR [AUTH] Authentication failed."),
    })
    want = S["certs"]["expiring10"]["not_after"]
    for name in ("pops30", "authfail"):  # recorded even when the dialogue failed
        lib.expect_eq(r[name]["certificate"]["not_after"], want, name + " certificate not_after")
        lib.expect_eq(r[name]["certificate"]["days_left"], 9, name + " certificate days_left")


def test_selfsigned_certificate_needs_ca_or_selfsigned_allowed():
    dc = extra_dovecot("dovecot-self", cert="selfsigned")
    p = dc.ports
    own = S["certs"]["selfsigned"]["cert"]
    r = run_rules({
        "pops": "port %d protocol pops" % p["pop3s"],
        "allowed": "port %d protocol pops with ssl options { selfsigned: allow }" % p["pop3s"],
        "cafile": "port %d protocol pops with ssl options { cacertificatefile: %s }" % (p["pop3s"], own),
        "stls": "port %d protocol pop starttls" % p["pop3"],
        "smtp": "port %d protocol sieve starttls" % p["sieve"],
    }, expect_rc=1)
    bad = "certificate verification failed: self-signed certificate"
    expect_outcomes(r, {
        "pops": ("pops 127.0.0.1:%d" % p["pop3s"], "failed", "tls", bad),
        "allowed": ("pops 127.0.0.1:%d" % p["pop3s"],) + OK,
        "cafile": ("pops 127.0.0.1:%d" % p["pop3s"],) + OK,
        "stls": ("pop+starttls 127.0.0.1:%d" % p["pop3"], "failed", "tls", bad),
        "smtp": ("sieve+starttls 127.0.0.1:%d" % p["sieve"], "failed", "tls", bad),
    })


def test_certificate_checksum_and_responsetime():
    good = S["certs"]["good"]["sha256"]
    wrong = "00" * 32
    r = run_rules({
        "sum": "port %d protocol smtps certificate checksum sha256 = \"%s\"" % (pp("smtps"), good),
        "badsum": "port %d protocol smtps certificate checksum sha256 = \"%s\"" % (pp("smtps"), wrong),
        "slow": "port %d protocol pops %s responsetime > 1 ms" % (dp("pop3s"), ALICE),
        "fast": "port %d protocol pop responsetime > 10 seconds" % dp("pop3"),
    }, expect_rc=1)
    expect_outcomes(r, {
        "sum": ("smtps 127.0.0.1:%d" % pp("smtps"),) + OK,
        "badsum": ("smtps 127.0.0.1:%d" % pp("smtps"), "failed", "certificate",
                   "certificate SHA-256 fingerprint is %s, expected %s"
                   % (good.replace(":", "").lower(), wrong)),
        "slow": ("pops 127.0.0.1:%d as alice@example.test" % dp("pop3s"), "failed", "responsetime",
                 re.compile(r"response time \d+\.\d ms exceeds the limit of 1 ms")),
        "fast": ("pop 127.0.0.1:%d" % dp("pop3"),) + OK,
    })


# ---- generic send/expect -----------------------------------------------------------------------

def test_generic_send_expect_against_real_servers():
    closed = lib.free_port()
    r = run_rules({
        "connect": "port %d" % dp("imap"),
        "imap": r'port %d expect "^\* OK .*Dovecot \(Debian\) ready\.$" send "a1 CAPABILITY\r\n" '
                r'expect "^a1 OK" within 4096 bytes send "a2 LOGOUT\r\n"' % dp("imap"),
        "tag": r'port %d expect "^\+OK (Dovecot) \(Debian\) ready\.$" send "USER \1\r\n" expect "^\+OK$" '
               r'send "QUIT\r\n" expect "^\+OK Logging out"' % dp("pop3"),
        "pop3s": r'port %d ssl expect "^\+OK Dovecot \(Debian\) ready\.$"' % dp("pop3s"),
        "smtp": r'port %d expect "^220 " send "EHLO probe.example.test\r\n" '
                r'expect "^250 " within 4096 bytes send "STARTTLS\r\n" expect "^220 " starttls '
                r'send "EHLO probe.example.test\r\n" expect "^250-AUTH PLAIN LOGIN$" within 4096 bytes '
                r'expect "^250 " within 4096 bytes send "QUIT\r\n" expect "^221 "' % pp("smtp"),
        "mismatch": r'port %d send "GET / HTTP/1.0\r\n\r\n" expect "^HTTP/1\.[01] 200"' % dp("pop3"),
        "refused": "port %d" % closed,
    }, expect_rc=1)
    expect_outcomes(r, {
        "connect": ("tcp 127.0.0.1:%d" % dp("imap"),) + OK,
        "imap": ("tcp 127.0.0.1:%d" % dp("imap"),) + OK,
        "tag": ("tcp 127.0.0.1:%d" % dp("pop3"),) + OK,
        "pop3s": ("tcp+ssl 127.0.0.1:%d" % dp("pop3s"),) + OK,
        "smtp": ("tcp 127.0.0.1:%d" % pp("smtp"),) + OK,
        "mismatch": ("tcp 127.0.0.1:%d" % dp("pop3"), "failed", "content",
                     # the whole reply since the send: the greeting and one -ERR per line sent
                     r'expected "^HTTP/1\.[01] 200", got 3 lines: "+OK Dovecot (Debian) ready." '
                     r'"-ERR Unknown command." "-ERR Unknown command."'),
        "refused": ("tcp 127.0.0.1:%d" % closed, "failed", "connect",
                    "cannot connect to 127.0.0.1:%d: Connection refused" % closed),
    })
    lib.expect_true("certificate" in r["smtp"], "certificate recorded after the starttls step", r["smtp"])


# ---- wrong passwords, last ---------------------------------------------------------------------
# Dovecot's auth service slows every later login from an address that failed one (its "auth
# penalty", up to 15 s, also for Postfix's SASL lookups): the failures of this module run last,
# all at once.

def test_wrong_passwords_are_auth_failures():
    p, u = dp("sieve"), pp("submission")
    r = run_rules({
        "pop": 'port %d protocol pops username "alice@example.test" password "nope"' % dp("pop3s"),
        "sieve": 'port %d protocol sieve starttls username "bob@example.test" password "nope"' % p,
        "submission": 'port %d protocol submission username "alice@example.test" password "nope"'
                      % u,
    }, expect_rc=1)
    expect_outcomes(r, {
        "pop": ("pops 127.0.0.1:%d as alice@example.test" % dp("pop3s"), "failed", "auth",
                "login as alice@example.test failed: -ERR [AUTH] Authentication failed."),
        "sieve": ("sieve+starttls 127.0.0.1:%d as bob@example.test" % p, "failed", "auth",
                  'login as bob@example.test failed: NO "Authentication failed."'),
        "submission": ("submission 127.0.0.1:%d as alice@example.test" % u, "failed", "auth",
                       "login as alice@example.test failed: 535 5.7.8 Error: authentication "
                       "failed: (reason unavailable)"),
    })
    lib.expect_eq(r["pop"]["server_line"], "-ERR [AUTH] Authentication failed.", "server_line")
    lib.expect_true("certificate" in r["pop"], "certificate recorded although the login failed",
                    r["pop"])
