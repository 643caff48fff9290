#!/usr/bin/env python3
"""Self-test of mwharness: start every server and prove it works with the
Python standard library's clients.

    python3 tests/harness/selftest.py [--keep] [--bulk-users N]

Prints one line per check, "PASS name" or "FAIL name: reason", plus "INFO ..."
lines with observations (LOGOUT transcripts, relay answer, start-up times),
and finally "N passed, N failed".  Exit status 0 only if nothing failed.
--keep leaves the temporary directory (logs) in place; it is also kept
when a check fails.
"""

import argparse
import base64
import imaplib
import os
import poplib
import shutil
import smtplib
import socket
import ssl
import sys
import tempfile
import threading
import time
import datetime

sys.dont_write_bytecode = True        # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mwharness import CyrusPair, Dovecot, Postfix, proc  # noqa: E402
from mwharness.certs import make_certs  # noqa: E402

HOST = "127.0.0.1"
passed = failed = 0
PGIDS = set()            # process groups of every server started (for the leftover check)


def check(name, fn, *args):
    """Run one check; print PASS/FAIL.  Returns None on failure, else fn's
    result (True if fn returned None)."""
    global passed, failed
    try:
        result = fn(*args)
    except Exception as e:                      # a check failing must not stop the others
        failed += 1
        reason = ("%s: %s" % (type(e).__name__, e)).replace("\n", " | ")
        print("FAIL %s: %s" % (name, reason[:600]), flush=True)
        return None
    passed += 1
    print("PASS %s" % name, flush=True)
    return True if result is None else result


def raise_(exc):
    raise exc


def info(text):
    print("INFO %s" % text, flush=True)


def expect(cond, message):
    if not cond:
        raise AssertionError(message)


def ctx_verify(ca):
    ctx = ssl.create_default_context(cafile=ca)
    return ctx


def ctx_noverify():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ---------------------------------------------------------------- certificates
def check_certs(certs):
    ca = certs["ca"]["cert"]
    now = datetime.datetime.now(datetime.timezone.utc)

    def days_left(kind):
        t = datetime.datetime.strptime(certs[kind]["not_after"], "%Y-%m-%dT%H:%M:%SZ")
        return (t.replace(tzinfo=datetime.timezone.utc) - now).total_seconds() / 86400

    def verifies(kind):
        try:
            proc.run(["openssl", "verify", "-CAfile", ca, certs[kind]["cert"]])
            return True
        except proc.HarnessError:
            return False

    check("certs: good is CA-signed, valid ~365 days",
          lambda: expect(verifies("good") and 364 < days_left("good") < 366, days_left("good")))
    check("certs: expiring10 is CA-signed, expires in ~10 days",
          lambda: expect(verifies("expiring10") and 9 < days_left("expiring10") < 11, days_left("expiring10")))
    check("certs: selfsigned does not verify against the CA",
          lambda: expect(not verifies("selfsigned"), "it verified"))
    check("certs: expired is CA-signed but expired",
          lambda: expect(days_left("expired") < 0 and not verifies("expired"), days_left("expired")))

    def san():
        out = proc.run(["openssl", "x509", "-in", certs["good"]["cert"], "-noout", "-ext", "subjectAltName"])
        expect("DNS:localhost" in out and "IP Address:127.0.0.1" in out and "IP Address:127.0.0.2" in out, out)
    check("certs: SAN DNS:localhost, IP:127.0.0.1, IP:127.0.0.2", san)


# ---------------------------------------------------------------- raw helpers
def transcript_after(port, command, tls, login=None):
    """Connect, read the greeting, optionally send `login` and read up to its
    tagged OK, send `command`; return (lines until close, how it closed)."""
    raw = socket.create_connection((HOST, port), timeout=5)
    sock = ctx_noverify().wrap_socket(raw, server_hostname="localhost",
                                      suppress_ragged_eofs=False) if tls else raw
    buf = b""
    try:
        while b"\n" not in buf:
            buf += sock.recv(4096)
        if login:
            sock.sendall(login)
            buf = b""
            while b"\r\nl OK" not in b"\r\n" + buf:
                chunk = sock.recv(4096)
                expect(chunk, "closed during login")
                buf += chunk
        buf = b""
        sock.sendall(command)
        how = "?"
        while True:
            try:
                chunk = sock.recv(4096)
            except ssl.SSLEOFError:
                how = "TCP close without TLS close_notify"
                break
            except socket.timeout:
                how = "still open after 5 s"
                break
            except ConnectionResetError:
                how = "connection reset"
                break
            if not chunk:
                how = "TLS close_notify, then close" if tls else "TCP close (FIN)"
                break
            buf += chunk
    finally:
        sock.close()
    return [line.decode() for line in buf.split(b"\r\n") if line], how


def lmtp_deliver(port, rcpt, token):
    lm = smtplib.LMTP(HOST, port, timeout=10)
    try:
        lm.sendmail("sender@example.test", [rcpt],
                    "From: sender@example.test\r\nTo: %s\r\nSubject: lmtp %s\r\n\r\n%s\r\n" % (rcpt, token, token))
    finally:
        lm.quit()


# ---------------------------------------------------------------- Dovecot
def check_dovecot(dc, ca):
    ports = dc.ports
    check("dovecot: imap banner", lambda: expect(
        proc.read_line(HOST, ports["imap"]).startswith("* OK"), "no * OK"))

    def imap_login():
        m = imaplib.IMAP4(HOST, ports["imap"], timeout=10)
        expect("LOGINDISABLED" not in m.capabilities, m.capabilities)
        m.login("alice@example.test", "alicepw")
        typ, _ = m.select("INBOX")
        expect(typ == "OK", typ)
        m.logout()
    check("dovecot: imap LOGIN alice + SELECT", imap_login)

    def imap_starttls():
        m = imaplib.IMAP4(HOST, ports["imap"], timeout=10)
        m.starttls(ssl_context=ctx_verify(ca))
        m.login("bob@example.test", "bobpw")
        m.logout()
    check("dovecot: imap STARTTLS (CA-verified, localhost) + LOGIN bob", imap_starttls)

    def imaps():
        m = imaplib.IMAP4_SSL(HOST, ports["imaps"], ssl_context=ctx_verify(ca), timeout=10)
        m.login("alice@example.test", "alicepw")
        m.logout()
    check("dovecot: imaps (CA-verified) + LOGIN", imaps)

    def master_plain():
        m = imaplib.IMAP4(HOST, ports["imap"], timeout=10)
        m.authenticate("PLAIN", lambda _: b"alice@example.test\0master\0masterpw")
        typ, data = m.select("INBOX")
        expect(typ == "OK", data)
        m.logout()
    check("dovecot: master user SASL PLAIN authzid=alice authcid=master", master_plain)

    def master_login():
        m = imaplib.IMAP4(HOST, ports["imap"], timeout=10)
        m.login("bob@example.test*master", "masterpw")
        m.logout()
    check("dovecot: master user LOGIN bob@example.test*master", master_login)

    def logout(port, tls, login=None):
        lines, how = transcript_after(port, b"a LOGOUT\r\n", tls, login)
        expect(lines and lines[0].startswith("* BYE"), "first line after LOGOUT is %r" % lines[:1])
        return lines, how
    login = b"l LOGIN alice@example.test alicepw\r\n"
    for label, port, tls, lg in (("imap", ports["imap"], False, None),
                                 ("imaps", ports["imaps"], True, None),
                                 ("imap after LOGIN", ports["imap"], False, login),
                                 ("imaps after LOGIN", ports["imaps"], True, login)):
        r = check("dovecot: %s LOGOUT answered with * BYE" % label, logout, port, tls, lg)
        if r:
            info("dovecot %-17s LOGOUT -> %r, then %s" % (label.upper(), r[0], r[1]))

    def pop3(secure):
        p = poplib.POP3_SSL(HOST, ports["pop3s"], context=ctx_verify(ca), timeout=10) if secure \
            else poplib.POP3(HOST, ports["pop3"], timeout=10)
        expect(p.getwelcome().startswith(b"+OK"), p.getwelcome())
        p.user("alice@example.test")
        p.pass_("alicepw")
        count, _size = p.stat()
        p.quit()
        return count
    check("dovecot: pop3 USER/PASS + STAT", pop3, False)
    check("dovecot: pop3s (CA-verified) USER/PASS + STAT", pop3, True)
    r = check("dovecot: pop3 QUIT", lambda: transcript_after(ports["pop3"], b"QUIT\r\n", False))
    if r:
        info("dovecot POP3 QUIT -> %r, then %s" % r)

    def lmtp():
        token = "lmtp-%d" % time.time_ns()
        lmtp_deliver(ports["lmtp"], "bob@example.test", token)
        expect(dc.wait_for_message("bob@example.test", token, 5), "message not in bob's Maildir")
        m = imaplib.IMAP4(HOST, ports["imap"], timeout=10)
        m.login("bob@example.test", "bobpw")
        m.select("INBOX")
        typ, data = m.search(None, "BODY", token)
        m.logout()
        expect(typ == "OK" and data[0].split(), "IMAP SEARCH found nothing")
    check("dovecot: lmtp delivery to bob, found by IMAP SEARCH", lmtp)

    def sieve():
        s = socket.create_connection((HOST, ports["sieve"]), timeout=10)
        f = s.makefile("rb")

        def until_ok():
            lines = []
            while True:
                line = f.readline().decode().rstrip("\r\n")
                lines.append(line)
                if line.startswith(("OK", "NO", "BYE")):
                    return lines
        greeting = until_ok()
        expect(greeting[0].startswith('"IMPLEMENTATION"'), greeting[0])
        resp = base64.b64encode(b"\0alice@example.test\0alicepw").decode()
        s.sendall(('AUTHENTICATE "PLAIN" "%s"\r\n' % resp).encode())
        expect(until_ok()[-1].startswith("OK"), "AUTHENTICATE refused")
        s.sendall(b"LISTSCRIPTS\r\n")
        expect(until_ok()[-1].startswith("OK"), "LISTSCRIPTS refused")
        s.sendall(b"LOGOUT\r\n")
        until_ok()
        s.close()
    check("dovecot: managesieve greeting + AUTHENTICATE PLAIN + LISTSCRIPTS", sieve)

    def auth_socket():
        s = socket.create_connection((HOST, ports["auth"]), timeout=10)
        f = s.makefile("rb")
        handshake = []
        while not handshake or handshake[-1] != "DONE":
            handshake.append(f.readline().decode().rstrip("\n"))
        expect(handshake[0].startswith("VERSION\t1\t"), handshake[0])
        resp = base64.b64encode(b"\0alice@example.test\0alicepw").decode()
        s.sendall(("VERSION\t1\t2\nCPID\t%d\nAUTH\t1\tPLAIN\tservice=smtp\tsecured\tresp=%s\n"
                   % (os.getpid(), resp)).encode())
        reply = f.readline().decode().rstrip("\n")
        s.close()
        expect(reply.startswith("OK\t1\tuser=alice@example.test"), reply)
    check("dovecot: auth inet listener authenticates alice (auth protocol)", auth_socket)


def check_dovecot_variants(base, certs):
    ca = certs["ca"]["cert"]
    strict = Dovecot(base, name="dovecot-strict", cert="selfsigned", certs=certs,
                     disable_plaintext_auth=True)
    expiring = Dovecot(base, name="dovecot-expiring", cert="expiring10", certs=certs)
    if not check("dovecot: second+third instance start (selfsigned/strict, expiring10)",
                 lambda: (strict.start(), expiring.start())):
        return
    PGIDS.update([strict.pid(), expiring.pid()])

    def logindisabled():
        m = imaplib.IMAP4(strict.host, strict.ports["imap"], timeout=10)
        caps = m.capabilities
        m.logout()
        expect("LOGINDISABLED" in caps, caps)
        return caps
    r = check("dovecot: disable_plaintext_auth=True -> LOGINDISABLED on plain imap", logindisabled)
    if r:
        info("dovecot strict (listening on %s) plain IMAP CAPABILITY: %s" % (strict.host, " ".join(r)))

    def pop3_refused():
        p = poplib.POP3(strict.host, strict.ports["pop3"], timeout=10)
        try:
            p.user("alice@example.test")
            p.pass_("alicepw")
        except poplib.error_proto as e:
            return str(e)
        finally:
            p.close()
        raise AssertionError("plaintext POP3 login accepted")
    r = check("dovecot: disable_plaintext_auth=True -> plain POP3 login refused", pop3_refused)
    if r:
        info("dovecot strict POP3 USER/PASS -> %s" % r)

    def selfsigned():
        try:
            imaplib.IMAP4_SSL(strict.host, strict.ports["imaps"], ssl_context=ctx_verify(ca), timeout=10)
        except ssl.SSLCertVerificationError as e:
            reason = e.verify_message
        else:
            raise AssertionError("self-signed certificate verified against the CA")
        m = imaplib.IMAP4_SSL(strict.host, strict.ports["imaps"], ssl_context=ctx_noverify(), timeout=10)
        m.login("alice@example.test", "alicepw")     # TLS, so allowed
        m.logout()
        return reason
    r = check("dovecot: selfsigned cert fails CA verification, works unverified", selfsigned)
    if r:
        info("verifying the selfsigned imaps cert: %s" % r)

    def expiring10():
        with socket.create_connection((HOST, expiring.ports["imaps"]), timeout=10) as raw:
            with ctx_verify(ca).wrap_socket(raw, server_hostname="localhost") as s:
                not_after = ssl.cert_time_to_seconds(s.getpeercert()["notAfter"])
        days = (not_after - time.time()) / 86400
        expect(9 < days < 11, days)
        return days
    r = check("dovecot: expiring10 instance presents a cert expiring in ~10 days", expiring10)
    if r:
        info("expiring10 imaps cert: %.2f days left" % r)
    t = threading.Thread(target=strict.stop)
    t.start()
    expiring.stop()
    t.join()
    check("dovecot: extra instances stopped", lambda: expect(
        not strict.is_running() and not expiring.is_running(), "still running"))


# ---------------------------------------------------------------- Postfix
def check_postfix(pf, dc, ca):
    ports = pf.ports

    def smtp_plain():
        s = smtplib.SMTP(HOST, ports["smtp"], timeout=10)
        s.ehlo("selftest.example")
        feats = dict(s.esmtp_features)
        expect("starttls" in feats, feats)
        expect("auth" not in feats, "AUTH offered before TLS")
        s.starttls(context=ctx_verify(ca))
        s.ehlo("selftest.example")
        expect("auth" in s.esmtp_features, s.esmtp_features)
        s.quit()
    check("postfix: smtp offers STARTTLS (CA-verified), AUTH only after TLS", smtp_plain)

    def deliver():
        token = "smtp-%d" % time.time_ns()
        s = smtplib.SMTP(HOST, ports["smtp"], timeout=10)
        s.sendmail("sender@example.test", ["alice@example.test"],
                   "Subject: %s\r\n\r\n%s\r\n" % (token, token))
        s.quit()
        t0 = time.monotonic()
        expect(dc.wait_for_message("alice@example.test", token, 10), "not delivered in 10 s")
        return time.monotonic() - t0
    r = check("postfix: smtp -> lmtp -> dovecot delivery", deliver)
    if r is not None:
        info("postfix delivery to the Maildir took %.2f s" % r)

    def relay():
        s = smtplib.SMTP(HOST, ports["smtp"], timeout=10)
        s.ehlo("selftest.example")
        s.mail("sender@example.test")
        code, msg = s.rcpt("someone@elsewhere.test")
        s.quit()
        expect(500 <= code < 600 and b"Relay access denied" in msg, (code, msg))
        return code, msg.decode()
    r = check("postfix: relay from 127.0.0.1 to elsewhere.test refused with 5xx", relay)
    if r:
        info("postfix RCPT TO:<someone@elsewhere.test> -> %d %s" % r)

    def smtps():
        s = smtplib.SMTP_SSL(HOST, ports["smtps"], context=ctx_verify(ca), timeout=10)
        code, _ = s.ehlo("selftest.example")
        expect(code == 250 and "auth" in s.esmtp_features, s.esmtp_features)
        s.quit()
    check("postfix: smtps wrapper mode (CA-verified) EHLO", smtps)

    def submission_needs_tls():
        s = smtplib.SMTP(HOST, ports["submission"], timeout=10)
        s.ehlo("selftest.example")
        code, msg = s.mail("bob@example.test")
        s.close()
        expect(code == 530, (code, msg))
        return code, msg.decode()
    r = check("postfix: submission refuses MAIL before STARTTLS", submission_needs_tls)
    if r:
        info("postfix submission MAIL before STARTTLS -> %d %s" % r)

    def submission_unauth():
        s = smtplib.SMTP(HOST, ports["submission"], timeout=10)
        s.starttls(context=ctx_verify(ca))
        s.ehlo("selftest.example")
        s.mail("bob@example.test")
        code, msg = s.rcpt("alice@example.test")
        s.close()
        expect(code >= 500, (code, msg))
        return code, msg.decode()
    r = check("postfix: submission rejects unauthenticated RCPT", submission_unauth)
    if r:
        info("postfix submission unauthenticated RCPT -> %d %s" % r)

    def submission_auth():
        token = "sub-%d" % time.time_ns()
        s = smtplib.SMTP(HOST, ports["submission"], timeout=10)
        s.starttls(context=ctx_verify(ca))
        s.ehlo("selftest.example")
        s.login("bob@example.test", "bobpw")
        s.sendmail("bob@example.test", ["alice@example.test"], "Subject: %s\r\n\r\n%s\r\n" % (token, token))
        s.quit()
        expect(dc.wait_for_message("alice@example.test", token, 10), "not delivered")
    check("postfix: submission STARTTLS + AUTH bob + delivery", submission_auth)

    def submission_bad_password():
        s = smtplib.SMTP(HOST, ports["submission"], timeout=10)
        s.starttls(context=ctx_verify(ca))
        s.ehlo("selftest.example")
        t0 = time.monotonic()
        code, msg = s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0bob@example.test\0wrong").decode())
        s.close()
        expect(code == 535, (code, msg))
        return code, msg.decode(), time.monotonic() - t0
    r = check("postfix: submission AUTH with a wrong password fails (checked by dovecot)",
              submission_bad_password)
    if r:
        info("postfix AUTH PLAIN with a wrong password -> %d %s after %.1f s" % r)

    def deferred_then_flushed():
        token = "deferred-%d" % time.time_ns()
        dc.stop()
        s = smtplib.SMTP(HOST, ports["smtp"], timeout=10)
        s.sendmail("sender@example.test", ["alice@example.test"], "Subject: %s\r\n\r\n%s\r\n" % (token, token))
        s.quit()
        deadline = time.monotonic() + 10
        while not any("deferred" in p for p in pf.queue_files()):
            expect(time.monotonic() < deadline, "message never deferred")
            time.sleep(0.05)
        pf.stop()
        dc.start()
        t0 = time.monotonic()
        pf.start()
        found = dc.wait_for_message("alice@example.test", token, 20)
        expect(found, "deferred message not delivered within 20 s of the restart")
        return time.monotonic() - t0
    r = check("postfix: mail deferred while dovecot is down is delivered after restarts",
              deferred_then_flushed)
    if r is not None:
        info("deferred mail delivered %.2f s after Postfix was restarted" % r)


# ---------------------------------------------------------------- Cyrus
def check_cyrus(pair, bulk_users):
    user = "john.doe@example.net"

    def banners():
        for server in (pair.master, pair.replica):
            line = proc.read_line(HOST, server.ports["imap"])
            expect(line.startswith("* OK"), line)
    check("cyrus: master and replica greet with * OK", banners)

    def create():
        pair.master.create_mailbox("user/john.doe@example.net")
        pair.master.create_mailbox("user/john.doe/Sent@example.net")
        names = pair.master.list_mailboxes("user/%")
        expect("user/john.doe@example.net" in names, names)
        return names
    r = check("cyrus: admin creates user/john.doe@example.net and .../Sent", create)
    if r is not None:
        info('cyrus admin LIST "" "user/%%" -> %r' % r)

    def append():
        pair.master.append(user, "INBOX", b"Subject: one\r\n\r\nfirst\r\n")
        pair.master.append(user, "Sent", b"Subject: two\r\n\r\nsecond\r\n", flags=r"(\Seen)")
        st = pair.master.status(user, "INBOX")
        expect(st["MESSAGES"] == 1, st)
        return st
    check("cyrus: APPEND + STATUS as the user via proxy authorization", append)

    def admin_status_refused():
        m = pair.master.admin_connection()
        try:
            typ, data = m.status('"user/john.doe@example.net"', "(MESSAGES)")
        finally:
            m.logout()
        expect(typ != "OK", "admin STATUS unexpectedly allowed")
        return data
    r = check("cyrus: STATUS as plain admin is refused (rights 'la' only)", admin_status_refused)
    if r:
        info("cyrus admin STATUS -> %r" % r)

    def sync():
        t0 = time.monotonic()
        pair.sync(timeout=30)
        took = time.monotonic() - t0
        for folder in ("INBOX", "Sent"):
            a, b = pair.master.status(user, folder), pair.replica.status(user, folder)
            expect(a == b, (folder, a, b))
        return took
    r = check("cyrus: sync_client -A replicates; STATUS equal on master and replica", sync)
    if r is not None:
        info("cyrus sync_client -A took %.2f s" % r)

    def diverge():
        pair.master.append(user, "INBOX", b"Subject: three\r\n\r\nthird\r\n")
        a, b = pair.master.status(user), pair.replica.status(user)
        expect(a != b, "replica already equal")
        pair.sync([user])
        expect(pair.master.status(user) == pair.replica.status(user), "still different")
    check("cyrus: replica differs until sync_client -u user", diverge)

    def sync_timeout():
        pair.replica.stop()
        t0 = time.monotonic()
        try:
            pair.sync([user], timeout=2)
        except proc.HarnessError:
            took = time.monotonic() - t0
        else:
            raise AssertionError("sync_client succeeded with the replica down")
        finally:
            pair.replica.start()
        expect(took < 6, took)
        return took
    r = check("cyrus: sync_client with the replica down is cut off by its timeout", sync_timeout)
    if r is not None:
        info("cyrus sync_client against a stopped replica gave up after %.2f s (timeout 2 s)" % r)

    def bulk():
        users = pair.make_users(bulk_users, domain="bulk.example")
        return pair.bulk_create(users)
    r = check("cyrus: bulk create %d users x 5 mailboxes + replicate" % bulk_users, bulk)
    if r:
        info("cyrus bulk: %r (dir %s)" % (r, pair.base_dir))
        check("cyrus: replica has the bulk mailboxes", lambda: expect(
            len(pair.replica.list_mailboxes("user/*@bulk.example")) == r["mailboxes"], "count differs"))


# ---------------------------------------------------------------- main
def leftovers(dirs, pgids):
    """Live processes that belong to our servers (by process group or command line)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] in ("Z", "X"):
            continue
        cmd = proc.cmdline(int(entry))
        if int(fields[2]) in pgids or any(d in cmd for d in dirs):
            found.append("%s %s" % (entry, cmd.strip()))
    return found


def zombies_of(pgids):
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if fields[0] == "Z" and int(fields[2]) in pgids:
                    count += 1
            except OSError:
                pass
    return count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--bulk-users", type=int, default=200,
                    help="users (x5 mailboxes) for the Cyrus bulk check (default 200)")
    args = ap.parse_args()
    t_start = time.monotonic()
    proc.enable_subreaper()           # reap what the daemons leave behind (pid 1 may not)
    base = tempfile.mkdtemp(prefix="mwh-selftest-")
    cyrus_base = tempfile.mkdtemp(prefix="mwh-selftest-cyrus-", dir="/dev/shm") \
        if os.access("/dev/shm", os.W_OK) else os.path.join(base, "cyrus")
    info("base dir %s, cyrus dir %s" % (base, cyrus_base))
    pgids, starts = PGIDS, {}

    certs = check("certs: make_certs", make_certs, os.path.join(base, "certs"))
    if not certs:
        print("%d passed, %d failed" % (passed, failed))
        return 1
    check_certs(certs)
    ca = certs["ca"]["cert"]

    dc = Dovecot(base, certs=certs)
    if check("dovecot: start", dc.start):
        starts["dovecot"] = dc.start_seconds
        pgids.add(dc.pid())
        check_dovecot(dc, ca)
        check_dovecot_variants(base, certs)

        pf = Postfix(base, dovecot=dc, certs=certs)
        if check("postfix: start", pf.start):
            starts["postfix"] = pf.start_seconds
            pgids.add(pf.pid())
            check_postfix(pf, dc, ca)
            pgids.add(pf.pid())
            pgids.add(dc.pid())
            t0 = time.monotonic()
            pf.stop()
            starts["postfix stop"] = time.monotonic() - t0
        t0 = time.monotonic()
        dc.stop()
        starts["dovecot stop"] = time.monotonic() - t0

    pair = None
    try:
        pair = CyrusPair(cyrus_base)
        if check("cyrus: start master + replica", pair.start):
            starts["cyrus-replica"] = pair.replica.start_seconds
            starts["cyrus-master"] = pair.master.start_seconds
            pgids.update([pair.master.pid(), pair.replica.pid()])
            check_cyrus(pair, args.bulk_users)
            pgids.update([pair.master.pid(), pair.replica.pid()])
    except proc.HarnessError as e:
        check("cyrus: set-up", raise_, e)
    finally:
        if pair:
            t0 = time.monotonic()
            pair.stop()
            starts["cyrus stop (both)"] = time.monotonic() - t0

    info("start/stop times: " + ", ".join("%s %.2fs" % kv for kv in starts.items() if kv[1] is not None))
    pgids.discard(None)
    check("cleanup: no server process left running",
          lambda: expect(not leftovers([base, cyrus_base], pgids), leftovers([base, cyrus_base], pgids)))
    info("zombies left in the servers' process groups: %d" % zombies_of(pgids))
    if failed or args.keep:
        info("kept %s and %s" % (base, cyrus_base))
    else:
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(cyrus_base, ignore_errors=True)
    info("total %.1f s" % (time.monotonic() - t_start))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
