"""Plugin mode and the drop-in plugins.

The drop-ins (symlinks to mailwarden named check_imap, check_simap, check_pop, check_spop,
check_smtp) run side by side with monitoring-plugins' originals on the same targets -- scripted
peers for up, down, wrong greeting, slow and expiring certificate, and a real Dovecot and
Postfix -- and must agree on the exit code and the status word.  `mailwarden plugin` runs a
control file's services against the real servers.  check_cyrus_replication runs against a real
Cyrus master and replica, check_delivery through Postfix -> LMTP -> Dovecot: both against the
behaviour the seed plugins' READMEs describe.
"""

import json
import os
import re
import time

import lib
from mwharness import CyrusPair, Dovecot, Nagios, Postfix, make_certs

S = {}  # base, certs, ca, dc, pf, links (dir of drop-in symlinks), peer
ORIGINALS = "/usr/lib/nagios/plugins"
DROPINS = ("check_imap", "check_simap", "check_pop", "check_spop", "check_smtp",
           "check_cyrus_replication", "check_delivery")
ALICE = "alice@example.test"
PEERS = ["imap-logout-bye-ok.peer", "imap-bye-greeting.peer", "plugin-imap-slow.peer",
         "imaps-expiring10.peer", "pop-ok.peer", "pop-err-greeting.peer",
         "plugin-smtp-ok.peer", "plugin-smtp-wrong-greeting.peer", "plugin-smtp-slow.peer"]


def setup_module():
    base = lib.tmpdir("plugin")
    certs = make_certs(os.path.join(base, "certs"))
    links = os.path.join(base, "plugins")
    os.makedirs(links)
    for name in DROPINS:
        os.symlink(lib.MAILWARDEN, os.path.join(links, name))
    dc = Dovecot(base, certs=certs, extra_config="auth_failure_delay = 0")
    pf = Postfix(base, dovecot=dc, certs=certs)
    S.update(base=base, certs=certs, ca=certs["ca"]["cert"], dc=dc, pf=pf, links=links)
    lib.watch_log("dovecot.log", dc.log_path, scope="module")
    lib.watch_log("postfix.log", pf.log_path, scope="module")
    dc.start()
    pf.start()


def teardown_module():
    for server in (S.get("pf"), S.get("dc")):
        if server:
            server.stop()


def with_peers(test):
    """Runs `test` with the scripted peers serving (one mw-peer, stopped after the test)."""
    def wrapped():
        with lib.Peer([os.path.join(lib.PEER_SCRIPTS, p) for p in PEERS],
                      certs_dir=os.path.join(S["base"], "peer-certs")) as peer:
            S["peer"] = peer
            test()
    wrapped.__name__ = test.__name__
    return wrapped


def peer_port(script):
    return S["peer"].ports[PEERS.index(script)]


def dropin(name, *args, env=None):
    argv = [os.path.join(S["links"], name)] + [str(a) for a in args]
    if env is None:
        return lib.run(argv)
    old = dict(os.environ)
    os.environ.update(env)
    try:
        return lib.run(argv)
    finally:
        os.environ.clear()
        os.environ.update(old)


def original(name, *args):
    return lib.run([os.path.join(ORIGINALS, name)] + [str(a) for a in args])


def status_word(out):
    m = re.search(r"\b(OK|WARNING|CRITICAL|UNKNOWN)\b", out)
    return m.group(1) if m else out.splitlines()[0] if out else ""


def agree(name, args, rc, word, shape=None):
    """The original and the drop-in give the same exit code and status word."""
    orig = original(name, *args)
    ours = dropin(name, *args)
    what = "%s %s" % (name, " ".join(str(a) for a in args))
    lib.expect_eq(orig.rc, rc, "original %s: exit code (output %r)" % (what, orig.out))
    lib.expect_eq(ours.rc, rc, "drop-in %s: exit code (output %r)" % (what, ours.out))
    lib.expect_eq(status_word(orig.out), word, "original %s: status word" % what)
    lib.expect_eq(status_word(ours.out), word, "drop-in %s: status word" % what)
    if shape:
        lib.expect_match(shape, ours.out, "drop-in %s: output shape" % what)
        lib.expect_match(shape, orig.out, "original %s: output shape" % what)
    return orig, ours


TIME = r"\|time=\d+\.\d{6}s;"


@with_peers
def test_dropins_agree_on_up_down_and_wrong_greeting():
    closed = lib.free_port()
    agree("check_imap", ["-H", "127.0.0.1", "-p", peer_port("imap-logout-bye-ok.peer")], 0, "OK",
          r"^IMAP OK - \d+\.\d{3} second response time on 127\.0\.0\.1 port \d+ "
          r"\[\* OK \[CAPABILITY IMAP4rev1\] ready\]" + TIME + r";;0\.000000;10\.000000\n$")
    agree("check_imap", ["-H", "127.0.0.1", "-p", closed], 2, "connect to address 127.0.0.1 and "
          "port %d: Connection refused" % closed)
    agree("check_imap", ["-H", "127.0.0.1", "-p", peer_port("imap-bye-greeting.peer")], 1,
          "WARNING", r"^IMAP WARNING - Unexpected response from host/socket: \* BYE server too "
          r"busy, try again later" + TIME)
    # -M crit makes a mismatch CRITICAL in both.
    agree("check_imap", ["-H", "127.0.0.1", "-p", peer_port("imap-bye-greeting.peer"), "-M",
                         "crit"], 2, "CRITICAL")
    agree("check_pop", ["-H", "127.0.0.1", "-p", peer_port("pop-ok.peer")], 0, "OK",
          r"^POP OK - .* \[\+OK Dovecot ready\.\]" + TIME)
    agree("check_pop", ["-H", "127.0.0.1", "-p", peer_port("pop-err-greeting.peer")], 1,
          "WARNING", r"^POP WARNING - Unexpected response from host/socket: -ERR \[SYS/TEMP\]")
    agree("check_pop", ["-H", "127.0.0.1", "-p", closed], 2,
          "connect to address 127.0.0.1 and port %d: Connection refused" % closed)
    agree("check_smtp", ["-H", "127.0.0.1", "-p", peer_port("plugin-smtp-ok.peer")], 0, "OK",
          r"^SMTP OK - \d+\.\d{3} sec\. response time" + TIME + r";;0\.000000\n$")
    agree("check_smtp", ["-H", "127.0.0.1", "-p", peer_port("plugin-smtp-wrong-greeting.peer")],
          1, "Invalid SMTP response received from host on port %d: 554 mail.example.test no "
          "service for you" % peer_port("plugin-smtp-wrong-greeting.peer"))
    agree("check_smtp", ["-H", "127.0.0.1", "-p", closed], 2, "CRITICAL",
          r"^connect to address 127\.0\.0\.1 and port \d+: Connection refused\nSMTP CRITICAL - ")
    # TLS spoken to a plain IMAP server.
    agree("check_simap", ["-H", "127.0.0.1", "-p", peer_port("imap-logout-bye-ok.peer")], 2,
          "CRITICAL", r"^CRITICAL - Cannot make SSL connection\.\n")


@with_peers
def test_dropins_agree_on_slow_servers_and_timeouts():
    slow_imap = peer_port("plugin-imap-slow.peer")
    agree("check_imap", ["-H", "127.0.0.1", "-p", slow_imap, "-w", "1", "-c", "5"], 1, "WARNING",
          r"^IMAP WARNING - 1\.\d{3} second response time .*\|time=1\.\d{6}s;1\.000000;5\.000000;")
    agree("check_imap", ["-H", "127.0.0.1", "-p", slow_imap, "-t", "1"], 2, "CRITICAL",
          r"^CRITICAL - Socket timeout after 1 seconds\n$")
    agree("check_smtp", ["-H", "127.0.0.1", "-p", peer_port("plugin-smtp-slow.peer"), "-w", "1",
                         "-c", "5"], 1, "WARNING",
          r"^SMTP WARNING - 1\.\d{3} sec\. response time\|time=1\.\d{6}s;1\.000000;5\.000000;")


@with_peers
def test_dropins_agree_on_an_expiring_certificate():
    port = peer_port("imaps-expiring10.peer")
    cert = r"Certificate 'localhost' expires in 9 day\(s\) \(\w{3} \w{3} \d\d \d\d:\d\d:\d\d \d{4} "
    agree("check_simap", ["-H", "127.0.0.1", "-p", port, "-D", "20,5"], 1, "WARNING",
          r"^WARNING - " + cert + r"[+-]\d{4}\)\.\n$")
    agree("check_simap", ["-H", "127.0.0.1", "-p", port, "-D", "20,10"], 2, "CRITICAL",
          r"^CRITICAL - " + cert)
    agree("check_simap", ["-H", "127.0.0.1", "-p", port, "-D", "5"], 0, "OK",
          r"^OK - Certificate 'localhost' will expire on .*\.\nSIMAP OK - ")


def test_dropins_agree_on_real_dovecot_and_postfix():
    dc, pf = S["dc"], S["pf"]
    agree("check_imap", ["-H", "127.0.0.1", "-p", dc.ports["imap"]], 0, "OK",
          r"^IMAP OK - .* \[\* OK \[CAPABILITY IMAP4rev1 ")
    agree("check_simap", ["-H", "127.0.0.1", "-p", dc.ports["imaps"]], 0, "OK", r"^SIMAP OK - ")
    agree("check_pop", ["-H", "127.0.0.1", "-p", dc.ports["pop3"]], 0, "OK", r"^POP OK - ")
    agree("check_spop", ["-H", "127.0.0.1", "-p", dc.ports["pop3s"]], 0, "OK", r"^SPOP OK - ")
    agree("check_smtp", ["-H", "127.0.0.1", "-p", pf.ports["smtp"]], 0, "OK", r"^SMTP OK - ")
    agree("check_smtp", ["-H", "127.0.0.1", "-p", pf.ports["smtp"], "-S"], 0, "OK",
          r"^SMTP OK - ")
    # -C/-R pairs: each command's reply matched by the pattern of the same rank.
    agree("check_smtp", ["-H", "127.0.0.1", "-p", pf.ports["smtp"], "-C", "NOOP", "-R", "^250",
                         "-C", "RSET", "-R", "Ok$"], 0, "OK", r"^SMTP OK - ")
    agree("check_smtp", ["-H", "127.0.0.1", "-p", pf.ports["smtp"], "-C", "NOOP", "-R", "^5"],
          1, "WARNING", r"^SMTP WARNING - Invalid response '250 2\.0\.0 Ok' to command 'NOOP'\n"
          r"SMTP WARNING - \d+\.\d{3} sec\. response time" + TIME + r";;0\.000000\n$")
    # The good certificate has a year left: -D 30 is OK in both, with the certificate line.
    agree("check_simap", ["-H", "127.0.0.1", "-p", dc.ports["imaps"], "-D", "30"], 0, "OK",
          r"^OK - Certificate 'localhost' will expire on .*\nSIMAP OK - ")


def test_dropin_starttls_login_and_mailbox_on_dovecot():
    dc = S["dc"]
    pwfile = os.path.join(lib.tmpdir(), "pw")
    with open(pwfile, "w") as f:
        f.write("alicepw\n")
    os.chmod(pwfile, 0o600)
    r = dropin("check_imap", "-H", "127.0.0.1", "-p", dc.ports["imap"], "--starttls", "--login",
               ALICE, "--password-file", pwfile, "--mailbox", "INBOX", "--verify", "--ca-file",
               S["ca"])
    lib.expect_eq(r.rc, 0, "check_imap --starttls --login --mailbox: exit code (%r)" % r.out)
    lib.expect_match(r"^IMAP OK - \d+\.\d{3} second response time on 127\.0\.0\.1 port \d+ ",
                     r.out, "output")
    r = dropin("check_pop", "-H", "127.0.0.1", "-p", dc.ports["pop3"], "--starttls", "--login",
               ALICE, env={"MAILWARDEN_PASSWORD": "wrong"})
    lib.expect_eq(r.rc, 2, "check_pop with a wrong password: exit code (%r)" % r.out)
    lib.expect_match(r"^POP CRITICAL - auth: .*\|time=", r.out, "output")
    # The password must not reach the output.
    lib.expect_not_in("wrong", r.out, "output")
    # Without --verify the test CA's certificate is accepted (as the originals do); with it and
    # no CA it is not.
    r = dropin("check_simap", "-H", "127.0.0.1", "-p", dc.ports["imaps"], "--verify")
    lib.expect_eq(r.rc, 2, "check_simap --verify without the CA: exit code (%r)" % r.out)
    lib.expect_match(r"^CRITICAL - Cannot make SSL connection\.\n.*certificate", r.out, "output")
    r = dropin("check_imap", "-H", "127.0.0.1", "-p", dc.ports["imap"], "--login", ALICE,
               "--password-file", pwfile)
    lib.expect_eq(r.rc, 2, "a login over plain IMAP without --allow-plaintext (%r)" % r.out)
    lib.expect_match(r"^IMAP CRITICAL - missing-feature: not sending the password", r.out, "out")
    r = dropin("check_imap", "-H", "127.0.0.1")
    lib.expect_eq(r.rc, 2, "no server on 143 here, or a refusal (%r)" % r.out)
    r = dropin("check_imap", "-p", "143")
    lib.expect_eq(r.rc, 3, "no -H: UNKNOWN (%r)" % r.out)
    lib.expect_match(r"^IMAP UNKNOWN - no hostname given \(-H\)", r.out, "output")


def control(body):
    text = ("set ssl options { verify: enable, cacertificatefile: %s }\n%s" % (S["ca"], body))
    return lib.write_control(lib.tmpdir(), text)


def test_plugin_mode_states_lines_and_perfdata():
    dc = S["dc"]
    closed = lib.free_port()
    rc = control(
        "check host mail with address 127.0.0.1\n"
        "    if failed port %d protocol imaps then alert\n"
        "    if failed port %d protocol pop starttls then alert\n"
        "check host broken with address 127.0.0.1\n"
        "    if failed port %d protocol imap then alert\n"
        "check host certs with address 127.0.0.1\n"
        "    if failed port %d protocol imaps and certificate valid > 400 days\n"
        "       then alert as warning on { certificate }\n"
        % (dc.ports["imaps"], dc.ports["pop3"], closed, dc.ports["imaps"]))
    r = lib.mw(rc, "plugin", "mail")
    lib.expect_eq(r.rc, 0, "plugin mail: exit code (%r)" % r.out)
    lines = r.out.splitlines()
    lib.expect_eq(len(lines), 3, "a status line and one line per check")
    lib.expect_match(
        r"^mail OK - 2 checks ok \| 'imaps 127\.0\.0\.1:%d time'=\d+\.\d{6}s;;;0\.000000;15\.000000 "
        r"'imaps 127\.0\.0\.1:%d cert days'=36[45] 'pop\+starttls 127\.0\.0\.1:%d time'=\d+\.\d{6}s;"
        r";;0\.000000;15\.000000 'pop\+starttls 127\.0\.0\.1:%d cert days'=36[45]$"
        % (dc.ports["imaps"], dc.ports["imaps"], dc.ports["pop3"], dc.ports["pop3"]),
        lines[0], "status line")
    lib.expect_match(r"^OK imaps 127\.0\.0\.1:%d: ok \(\d+\.\d ms, certificate 36[45] days\)$"
                     % dc.ports["imaps"], lines[1], "check line")
    r = lib.mw(rc, "plugin", "broken")
    lib.expect_eq(r.rc, 2, "a refused connection is CRITICAL (%r)" % r.out)
    lib.expect_match(r"^broken CRITICAL - imap 127\.0\.0\.1:%d: connect: cannot connect to "
                     r"127\.0\.0\.1:%d: Connection refused \| " % (closed, closed), r.out, "line")
    r = lib.mw(rc, "plugin", "certs")
    lib.expect_eq(r.rc, 1, "'as warning on { certificate }': WARNING (%r)" % r.out)
    lib.expect_match(r"^certs WARNING - imaps 127\.0\.0\.1:%d: certificate: certificate expires in "
                     r"36[45] days \(the rule wants more than 400\) \| .*'imaps 127\.0\.0\.1:%d cert "
                     r"days'=36[45];401:\n" % (dc.ports["imaps"], dc.ports["imaps"]), r.out,
                     "line")
    # -w/-c ranges on the response time, in seconds.
    r = lib.mw(rc, "plugin", "mail", "1", "-w", "0.000001")
    lib.expect_eq(r.rc, 1, "-w 0.000001: WARNING (%r)" % r.out)
    lib.expect_match(r"time'=\d+\.\d{6}s;0\.000001;;0", r.out, "the range in the perfdata")
    r = lib.mw(rc, "plugin", "mail", "imaps 127.0.0.1:%d" % dc.ports["imaps"], "-c", "@0:60")
    lib.expect_eq(r.rc, 2, "-c @0:60 (inside): CRITICAL (%r)" % r.out)
    r = lib.mw(rc, "plugin", "nosuch")
    lib.expect_eq(r.rc, 3, "unknown service: UNKNOWN")
    lib.expect_eq(r.out, "nosuch UNKNOWN - no service 'nosuch' in the control file\n", "line")
    r = lib.mw(rc, "plugin", "mail", "-w", "a:b")
    lib.expect_eq(r.rc, 3, "a bad range: UNKNOWN")
    bad = lib.write_control(lib.tmpdir(), "check host x with address 127.0.0.1\n    if failed\n")
    r = lib.mw(bad, "plugin", "x")
    lib.expect_eq(r.rc, 3, "a broken control file: UNKNOWN (%r)" % r.out)
    lib.expect_match(r"^x UNKNOWN - control file: .*mailwardenrc:\d+:\d+: ", r.out, "line")


def test_check_delivery_dropin_through_postfix_and_dovecot():
    dc, pf = S["dc"], S["pf"]
    recv = "imaps://alice%%40example.test:alicepw@127.0.0.1:%d/INBOX" % dc.ports["imaps"]
    send = "smtp://probe%%40example.test@127.0.0.1:%d" % pf.ports["smtp"]
    r = dropin("check_delivery", "--send", send, "--recv", recv + "?ssl_verify=NONE", "--wait",
               "30", "--output", "json")
    lib.expect_eq(r.rc, 0, "delivery: exit code (%r)" % r.out)
    doc = json.loads(r.out)
    lib.expect_eq(doc["status"], "OK", "status")
    lib.expect_eq(sorted(doc["timings"]), ["active_duration", "recv_clean", "recv_conn",
                                           "recv_recv", "send_send", "waited"], "timings")
    # --wait is an upper bound: Postfix -> LMTP -> Dovecot takes well under 30 s.
    lib.expect_true(doc["timings"]["waited"] < 25, "reported when the token arrived")
    # Verification on by default: the test CA is unknown to the system store.
    r = dropin("check_delivery", "--send", send, "--recv", recv, "--wait", "5")
    lib.expect_eq(r.rc, 2, "unverifiable certificate: CRITICAL (%r)" % r.out)
    lib.expect_match(r"^DELIVERY CRITICAL - tls: connect: .*certificate", r.out, "line")
    # An INI scenario with ExtendedInterpolation, and a token that never arrives (sent to bob).
    ini = os.path.join(lib.tmpdir(), "delivery.ini")
    with open(ini, "w") as f:
        f.write("[creds]\nalice = alice%%40example.test:alicepw\n\n"
                "[senders]\nlocal = smtp://probe%%40example.test@127.0.0.1:%d\n\n"
                "[receivers]\nlocal = imaps://${creds:alice}@127.0.0.1:%d/INBOX?ssl_verify=NONE\n\n"
                "[scenarios]\nloop.send = ${senders:local}\nloop.recv = ${receivers:local}\n\n"
                "[expects]\n" % (pf.ports["smtp"], dc.ports["imaps"]))
    r = dropin("check_delivery", "--conf", ini, "--play", "loop", "--wait", "30")
    lib.expect_eq(r.rc, 0, "--play loop: exit code (%r)" % r.out)
    lib.expect_match(r"^DELIVERY OK - token delivered in \d+\.\d{3} s \| recv_conn=\d+\.\d{3}s;;;"
                     r"0\.000 send_send=.* waited=.* recv_recv=.* recv_clean=.* "
                     r"active_duration=\d+\.\d{3}s;;;0\.000\n$", r.out, "line")
    r = dropin("check_delivery", "--conf", ini, "--play", "loop", "--wait", "2", "--to",
               "bob@example.test")
    lib.expect_eq(r.rc, 2, "never arrives: CRITICAL (%r)" % r.out)
    lib.expect_match(r"^DELIVERY CRITICAL - content: wait: the probe message did not arrive "
                     r"within 2 s at imaps://alice%40example\.test@127\.0\.0\.1:\d+/INBOX \| ",
                     r.out, "line")
    r = dropin("check_delivery", "--send", "gopher://u:p@127.0.0.1:70", "--recv", recv)
    lib.expect_eq(r.rc, 3, "an unknown method: UNKNOWN (%r)" % r.out)
    lib.expect_eq(r.out, "DELIVERY UNKNOWN - --send: unknown method 'gopher' (see --doc)\n",
                  "an unknown method")
    r = dropin("check_delivery", "--doc")
    lib.expect_eq(r.rc, 0, "--doc")
    lib.expect_in("  imapstarttls  IMAP + STARTTLS\n", r.out, "--doc lists the receivers")


def test_check_cyrus_replication_dropin_against_real_cyrus():
    pair = CyrusPair()
    try:
        lib.watch_log("cyrus master", pair.master.log_path)
        pair.start()
        pair.create_user("john@example.net", folders=["Sent", "Drafts"])
        pair.create_user("jane@example.net")
        pair.sync(["john@example.net", "jane@example.net"], timeout=60)
        state = os.path.join(lib.tmpdir(), "cyrus.state")
        ini = os.path.join(lib.tmpdir(), "plugins.ini")
        with open(ini, "w") as f:
            f.write("[pair]\nuri = imap://127.0.0.1:%d\n  imap://127.0.0.1:%d\nadmin = cyrus\n"
                    "passw = %s\nuser = john@example.net\n  jane@example.net\n"
                    "all_mailboxes = true\nstate_file = %s\n"
                    % (pair.master.ports["imap"], pair.replica.ports["imap"],
                       pair.master.admin_password, state))
        r = dropin("check_cyrus_replication", "--extra-opts", "pair@" + ini)
        lib.expect_eq(r.rc, 0, "in sync: exit code (%r)" % r.out)
        lib.expect_eq(r.out, "REPLICATION OK - Cyrus replication STATUS is OK | 'out of sync'=0;1;1;0 "
                             "'total checked'=4\n", "line")
        with open(state) as f:
            doc = json.load(f)
        lib.expect_eq(sorted(doc["checked"]), ["jane@example.net", "john@example.net"], "checked")
        lib.expect_eq(sorted(doc["statuses"]["john@example.net"]), ["Drafts", "INBOX", "Sent"],
                      "statuses of john")
        lib.expect_eq(len(doc["statuses"]["john@example.net"]["INBOX"]), 2, "one per server")
        lib.expect_eq(doc["invalid_users"], [], "invalid_users")
        # A message on the master only: one mailbox out of sync; -w 0 makes it a WARNING.
        pair.master.append("john@example.net", "INBOX", b"Subject: x\r\n\r\nx\r\n")
        argv = ["--uri", "imap://127.0.0.1:%d" % pair.master.ports["imap"],
                "--uri", "imap://127.0.0.1:%d" % pair.replica.ports["imap"], "--admin", "cyrus",
                "--user", "john@example.net", "-s", state, "-w", "0", "-c", "5"]
        r = dropin("check_cyrus_replication", *argv,
                   env={"MAILWARDEN_PASSWORD": pair.master.admin_password})
        lib.expect_eq(r.rc, 1, "out of sync: exit code (%r)" % r.out)
        lib.expect_match(r"^REPLICATION WARNING - Cyrus replication is OUT OF SYNC \| 'out of "
                         r"sync'=1;0;5;0 'total checked'=\d+\n$", r.out, "line")
        # --failed-only rechecks john alone; after a sync it is OK again.
        pair.sync(["john@example.net"], timeout=60)
        r = dropin("check_cyrus_replication", *(argv + ["--failed-only"]),
                   env={"MAILWARDEN_PASSWORD": pair.master.admin_password})
        lib.expect_eq(r.rc, 0, "repaired: exit code (%r)" % r.out)
        lib.expect_match(r"^REPLICATION OK - Cyrus replication STATUS is OK \| 'out of sync'=0;0;5;0",
                         r.out, "line")
    finally:
        pair.cleanup()


def test_nagios4_runs_plugin_mode_and_dropins():
    """A private Nagios 4 checks five services each second; one fails on purpose."""
    dc, pf = S["dc"], S["pf"]
    closed = lib.free_port()
    rc = control(
        "check host mail with address 127.0.0.1\n"
        "    if failed port %d protocol imaps then alert\n"
        "check host broken with address 127.0.0.1\n"
        "    if failed port %d protocol imap then alert\n" % (dc.ports["imaps"], closed))
    links = S["links"]
    services = {
        "mail plugin mode": "%s -c %s plugin mail" % (lib.MAILWARDEN, rc),
        "broken plugin mode": "%s -c %s plugin broken" % (lib.MAILWARDEN, rc),
        "imap drop-in": "%s/check_imap -H 127.0.0.1 -p %d" % (links, dc.ports["imap"]),
        "smtp drop-in": "%s/check_smtp -H 127.0.0.1 -p %d -S" % (links, pf.ports["smtp"]),
        "simap drop-in certificate": "%s/check_simap -H 127.0.0.1 -p %d -D 400,30"
                                     % (links, dc.ports["imaps"]),
    }
    ng = Nagios(lib.tmpdir("nagios"), services=services)
    lib.watch_log("nagios.log", ng.log_path)
    try:
        ng.start()
        st = ng.wait_checked(timeout=30)
    finally:
        ng.stop()
    state = {k: int(v["current_state"]) for k, v in st.items()}
    lib.expect_eq(state, {"mail plugin mode": 0, "broken plugin mode": 2, "imap drop-in": 0,
                          "smtp drop-in": 0, "simap drop-in certificate": 1}, "status.dat states")
    lib.expect_match(r"^mail OK - imaps 127\.0\.0\.1:%d ok$" % dc.ports["imaps"],
                     st["mail plugin mode"]["plugin_output"], "plugin output")
    lib.expect_match(r"^'imaps 127\.0\.0\.1:%d time'=\d+\.\d{6}s;;;0\.000000;15\.000000 "
                     r"'imaps 127\.0\.0\.1:%d cert days'=36[45]$"
                     % (dc.ports["imaps"], dc.ports["imaps"]),
                     st["mail plugin mode"]["performance_data"], "perfdata")
    lib.expect_match(r"^broken CRITICAL - imap 127\.0\.0\.1:%d: connect: " % closed,
                     st["broken plugin mode"]["plugin_output"], "plugin output")
    lib.expect_match(r"^IMAP OK - \d+\.\d{3} second response time on 127\.0\.0\.1 port %d "
                     % dc.ports["imap"], st["imap drop-in"]["plugin_output"], "output")
    lib.expect_match(r"^time=\d+\.\d{6}s;;;0\.000000;10\.000000$",
                     st["imap drop-in"]["performance_data"], "perfdata")
    lib.expect_match(r"^SMTP OK - \d+\.\d{3} sec\. response time$",
                     st["smtp drop-in"]["plugin_output"], "output")
    lib.expect_match(r"^WARNING - Certificate 'localhost' expires in 36[34] day\(s\) ",
                     st["simap drop-in certificate"]["plugin_output"], "output")


def test_plugin_mode_delivery_steps_and_a_warning_latency_rule():
    dc, pf = S["dc"], S["pf"]
    rc = control(
        "check delivery loop\n"
        "    send via \"smtp://127.0.0.1:%d\" from \"probe@example.test\" to \"%s\"\n"
        "    receive via \"imaps://alice%%40example.test:alicepw@127.0.0.1:%d/INBOX\"\n"
        "    within 30 seconds\n"
        "    if failed then alert\n"
        "    if latency > 1 ms then alert as warning\n" % (pf.ports["smtp"], ALICE, dc.ports["imaps"]))
    r = lib.mw(rc, "plugin", "loop")
    lib.expect_eq(r.rc, 1, "a delivery slower than 1 ms: WARNING (%r)" % r.out)
    label = "delivery smtp://127.0.0.1:%d -> imaps://alice%%40example.test@127.0.0.1:%d/INBOX" % (
        pf.ports["smtp"], dc.ports["imaps"])
    first = r.out.splitlines()[0]
    lib.expect_match(r"^loop WARNING - %s: delivered in \d+\.\d ms \(limit 1 ms\) \| "
                     % re.escape(label), first, "status line")
    for step in ("time", "connect", "send", "wait", "found", "clean"):
        lib.expect_match(r"'%s %s'=\d+\.\d{6}s" % (re.escape(label), step), first, "perfdata " + step)
    lib.expect_match(r"'%s delivery'=\d+\.\d{6}s;0\.001;;0\.000000" % re.escape(label), first,
                     "the latency with the rule's limit as the warning threshold")
    lib.expect_match(r"\nWARNING %s: delivered in \d+\.\d ms \(limit 1 ms\) \(\d+\.\d ms, "
                     r"certificate 36[45] days, delivered in \d+\.\d ms\)\n$" % re.escape(label),
                     r.out, "check line")
