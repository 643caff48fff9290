"""check delivery over FTP/FTPS against a real vsftpd 3.0 and over IRC/IRC-over-TLS against a
real ngIRCd 26, both started by the harness on loopback (CA-signed "good" certificates).

vsftpd keeps its default require_ssl_reuse=YES: an FTPS round trip only works when the data
connections resume the control connection's TLS session.  ngIRCd delays the commands of a
freshly registered client by about a second (penalty time): an IRC round trip takes ~2 s.
Each test runs one `validate --json` (or the check_delivery drop-in) and asserts the exact
outcome: status, class, message, failed step.
"""

import json
import os
import re
import socket
import time

import lib
from mwharness import Ngircd, Vsftpd, make_certs

S = {}  # base, certs, ca, ftp, irc, links
STEPS = ["clean", "connect", "found", "send", "wait"]


def setup_module():
    base = lib.tmpdir("delivery-ftp-irc")
    certs = make_certs(os.path.join(base, "certs"))
    ftp = Vsftpd(base, certs=certs)
    irc = Ngircd(base, certs=certs)
    lib.watch_log("vsftpd.log", ftp.log_path, scope="module")
    lib.watch_log("ngircd.log", irc.log_path, scope="module")
    ftp.start()
    irc.start()
    for d in ("in", "out"):
        path = os.path.join(ftp.root, d)
        os.makedirs(path, exist_ok=True)
        st = os.stat(ftp.root)
        os.chown(path, st.st_uid, st.st_gid)
    links = os.path.join(base, "plugins")
    os.makedirs(links)
    os.symlink(lib.MAILWARDEN, os.path.join(links, "check_delivery"))
    S.update(base=base, certs=certs, ca=certs["ca"]["cert"], ftp=ftp, irc=irc, links=links)


def teardown_module():
    for server in (S.get("irc"), S.get("ftp")):
        if server:
            server.stop()


def ftp_url(scheme="ftps", path="in", password=None):
    f = S["ftp"]
    return "%s://%s:%s@127.0.0.1:%d/%s" % (scheme, f.user, password or f.password, f.port, path)


def irc_url(scheme="irc", channel="alerts", nick=""):
    port = S["irc"].tls_port if scheme == "irctls" else S["irc"].port
    host = "localhost" if scheme == "irctls" else "127.0.0.1"
    return "%s://%s%s:%d/%s" % (scheme, nick + "@" if nick else "", host, port, channel)


def run(send, receive, extra="", verify_with_ca=True, within=5, verbose=False):
    ssl = ("set ssl options { verify: enable, cacertificatefile: %s }\n" % S["ca"]
           if verify_with_ca else "set ssl options { verify: enable }\n")
    text = ("%scheck delivery probe\n"
            "    send via \"%s\"\n"
            "    receive via \"%s\"\n"
            "    within %d seconds\n%s"
            "    if failed then alert\n" % (ssl, send, receive, within, extra))
    doc = lib.validate_json(lib.write_control(lib.tmpdir(), text), verbose=verbose)
    return lib.single_test(doc), doc["_result"]


def expect_ok(t, r, name):
    lib.expect_result(t, "ok", "none", "")
    lib.expect_eq(r.rc, 0, "exit status of validate")
    lib.expect_eq(t["name"], name, "test name")
    lib.expect_eq(sorted(t["steps_ms"]), STEPS, "timed steps")
    lib.expect_eq(t["metrics"]["latency_ms"], t["delivery_ms"], "latency metric")
    lib.expect_not_in(S["ftp"].password, r.out + r.err, "the FTP password in the output")
    lib.note("%s: delivered in %.1f ms (%s)" % (name, t["delivery_ms"], t["steps_ms"]))


def left_in(directory):
    return sorted(n for n in os.listdir(os.path.join(S["ftp"].root, directory))
                  if "mailwarden" in n)


def empty(directory):
    for n in os.listdir(os.path.join(S["ftp"].root, directory)):
        os.unlink(os.path.join(S["ftp"].root, directory, n))


# ---- FTP ----------------------------------------------------------------------------------------

def test_ftps_round_trip_resumes_the_tls_session_on_data_connections():
    f = S["ftp"]
    t, r = run(ftp_url(), ftp_url(), verbose=True)
    expect_ok(t, r, "delivery ftps://mwftp@127.0.0.1:%d/in -> ftps://mwftp@127.0.0.1:%d/in"
              % (f.port, f.port))
    log = r.err
    for command in ("AUTH TLS", "PBSZ 0", "PROT P", "EPSV", "NLST", "RNTO mailwarden-%s.eml"
                    % t["token"], "RETR mailwarden-%s.eml" % t["token"],
                    "DELE mailwarden-%s.eml" % t["token"]):
        lib.expect_match(r"(?m) C: %s$" % re.escape(command), log, command)
    lib.expect_match(r"(?m) C: PASS <password>$", log, "the password hidden in the transcript")
    lib.expect_eq(left_in("in"), [], "probe files left on the server")


def test_plain_ftp_with_allow_plaintext_and_credentials_from_the_file():
    f = S["ftp"]
    d = lib.tmpdir()
    creds = os.path.join(d, "accounts.cfg")
    with open(creds, "w") as fh:
        fh.write('ftp: { username = "%s"; password = "%s"; };\n' % (f.user, f.password))
    os.chmod(creds, 0o600)
    url = "ftp://127.0.0.1:%d/out" % f.port
    text = ("set credentials \"%s\"\n"
            "check delivery probe\n"
            "    send via \"%s\" credentials \"ftp\" from \"probe@example.test\" to \"ops@example.test\"\n"
            "    receive via \"%s\" credentials \"ftp\"\n"
            "    allow plaintext\n"
            "    within 5 seconds\n" % (creds, url, url))
    doc = lib.validate_json(lib.write_control(d, text))
    t = lib.single_test(doc)
    expect_ok(t, doc["_result"], "delivery ftp://127.0.0.1:%d/out -> ftp://127.0.0.1:%d/out"
              % (f.port, f.port))
    lib.expect_eq(left_in("out"), [], "probe files left on the server")


def test_wrong_ftp_password_fails_the_send_step_as_auth():
    t, r = run(ftp_url(password="Wr0ng-Pw7"), "file://" + lib.tmpdir())
    lib.expect_result(t, "failed", "auth", "send: login of mwftp refused: 530 Login incorrect.")
    lib.expect_eq(t["failed_step"], "send", "failed step")
    lib.expect_not_in("Wr0ng-Pw7", r.out + r.err, "the password in the output")


def test_a_file_that_never_appears_fails_the_wait_step():
    f = S["ftp"]
    t, r = run(ftp_url(path="in"), ftp_url(path="out"), within=1)
    lib.expect_result(t, "failed", "content",
                      "wait: the probe message did not arrive within 1 s at "
                      "ftps://mwftp@127.0.0.1:%d/out" % f.port)
    lib.expect_eq(t["failed_step"], "wait", "failed step")
    lib.expect_eq(left_in("in"), ["mailwarden-%s.eml" % t["token"]], "the probe uploaded")
    empty("in")


def test_ftps_with_an_untrusted_certificate_fails_as_tls():
    t, r = run(ftp_url(), "file://" + lib.tmpdir(), verify_with_ca=False)
    lib.expect_eq((t["status"], t["class"], t["failed_step"]), ("failed", "tls", "send"),
                  "status, class, step")
    lib.expect_eq(t["message"], "send: certificate verification failed: unable to get local "
                  "issuer certificate", "message")
    lib.expect_not_in(S["ftp"].password, r.out + r.err, "the password sent before the handshake")


# ---- IRC ----------------------------------------------------------------------------------------

def test_irc_round_trip_in_a_channel():
    i = S["irc"]
    t, r = run(irc_url(), irc_url(nick="watcher"))
    expect_ok(t, r, "delivery irc://127.0.0.1:%d/#alerts -> irc://watcher@127.0.0.1:%d/#alerts"
              % (i.port, i.port))


def test_irc_over_tls_round_trip_with_a_nick_already_taken():
    i = S["irc"]
    # Someone else holds the receiver's nick: it registers as mwrecv_1 instead (433).
    holder = socket.create_connection(("127.0.0.1", i.port), timeout=5)
    try:
        holder.sendall(b"NICK mwrecv\r\nUSER mwrecv 0 * :holder\r\n")
        buf = b""
        while b" 001 " not in buf:
            chunk = holder.recv(4096)
            lib.expect_true(chunk, "the holder registered")
            buf += chunk
        t, r = run(irc_url("irctls", "%23alerts", nick="sender"), irc_url("irctls"), verbose=True)
    finally:
        holder.close()
    expect_ok(t, r, "delivery irctls://sender@localhost:%d/#alerts -> irctls://localhost:%d/#alerts"
              % (i.tls_port, i.tls_port))
    lib.expect_match(r"(?m)receive \S+ C: NICK mwrecv_1$", r.err, "the second nick")
    lib.expect_match(r"(?m)send \S+ C: PRIVMSG #alerts :mailwarden delivery probe %s$"
                     % t["token"], r.err, "the probe line")
    lib.expect_in("TLSv1.3", r.err, "TLS on both sides")


def test_an_irc_token_that_never_arrives_fails_the_wait_step():
    i = S["irc"]
    t, r = run(irc_url(channel="alerts"), irc_url(channel="elsewhere"), within=1)
    lib.expect_result(t, "failed", "content",
                      "wait: the probe message did not arrive within 1 s at "
                      "irc://127.0.0.1:%d/#elsewhere" % i.port)
    lib.expect_eq(t["failed_step"], "wait", "failed step")


def test_irc_over_tls_with_an_untrusted_certificate_fails_as_tls():
    t, r = run(irc_url("irctls"), irc_url("irctls"), verify_with_ca=False)
    lib.expect_result(t, "failed", "tls", "connect: certificate verification failed: unable to "
                      "get local issuer certificate")
    lib.expect_eq(t["failed_step"], "connect", "failed step")


# ---- the check_delivery drop-in -------------------------------------------------------------------

def dropin(*args):
    return lib.run([os.path.join(S["links"], "check_delivery")] + [str(a) for a in args])


def test_check_delivery_dropin_with_ftp_and_irc_urls():
    f, i = S["ftp"], S["irc"]
    r = dropin("--send", ftp_url("ftp", "in"), "--recv", ftp_url("ftp", "in"), "--wait", "10",
               "--output", "json")
    lib.expect_eq(r.rc, 0, "ftp: exit code (%r)" % r.out)
    doc = json.loads(r.out)
    lib.expect_eq((doc["status"], doc["message"][:15]), ("OK", "token delivered"), "ftp status")
    lib.expect_eq(left_in("in"), [], "probe files left on the server")
    # FTPS with the seed's ?ssl_verify=NONE (the test CA is unknown to the system store).
    r = dropin("--send", ftp_url("ftps", "in") + "?ssl_verify=NONE",
               "--recv", ftp_url("ftps", "in") + "?ssl_verify=NONE", "--wait", "10")
    lib.expect_eq(r.rc, 0, "ftps: exit code (%r)" % r.out)
    lib.expect_match(r"^DELIVERY OK - token delivered in \d+\.\d{3} s \| recv_conn=", r.out,
                     "ftps line")
    r = dropin("--send", irc_url(nick="seedsend"), "--recv", irc_url(nick="seedrecv"),
               "--wait", "10")
    lib.expect_eq(r.rc, 0, "irc: exit code (%r)" % r.out)
    lib.expect_match(r"^DELIVERY OK - token delivered in \d+\.\d{3} s \| ", r.out, "irc line")
    # Verification on by default (REQUIRED): the test CA is unknown.
    r = dropin("--send", irc_url("irctls"), "--recv", irc_url("irctls"), "--wait", "5")
    lib.expect_eq(r.rc, 2, "irctls unverified: CRITICAL (%r)" % r.out)
    lib.expect_match(r"^DELIVERY CRITICAL - tls: connect: certificate verification failed: ",
                     r.out, "irctls line")
    r = dropin("--doc")
    lib.expect_in("  irctls        IRC over TLS", r.out, "--doc lists irctls")
    lib.expect_not_in("not supported", r.out, "--doc")
