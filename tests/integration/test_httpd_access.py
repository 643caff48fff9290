"""The HTTP interface's listeners and who may use them, against a real daemon: HTTPS with a
generated certificate (renewed on SIGHUP, loose key refused), client certificates required
(clientpemfile), the unix socket (its mode, a stale one replaced, removed at stop), allow by
host and net (a peer bound to another loopback address refused before auth), htpasswd files
(bcrypt, sha512-crypt, DES crypt, Apache's apr1; re-read on SIGHUP), the start/stop/restart
actions for read-write users only, and the CLI over HTTPS and over the unix socket.

`set daemon 3600`: nothing here waits for a cycle but the first.
"""

import base64
import http.client
import json
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import time
import warnings

import lib
from mwharness import make_certs

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # noqa: E402  (libxcrypt through Python: bcrypt, sha512-crypt, DES)

ADMIN = ("admin", "s3cret-admin")
VIEWER = ("viewer", "l00k-only")


def certs():
    return make_certs(os.path.join(lib.base_dir(), "certs"))


def client_cert(c, directory):
    """A client certificate (clientAuth) signed by the test CA: (cert, key)."""
    key, csr, pem = (os.path.join(directory, n) for n in ("client.key", "client.csr", "client.pem"))
    ext = os.path.join(directory, "client.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n")
    lib.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr,
             "-subj", "/CN=mailwarden test client"])
    lib.run(["openssl", "x509", "-req", "-in", csr, "-CA", c["ca"]["cert"], "-CAkey",
             c["ca"]["key"], "-set_serial", "77", "-days", "30", "-sha256", "-extfile", ext,
             "-out", pem])
    return pem, key


def auth_header(user):
    return "Basic " + base64.b64encode(("%s:%s" % user).encode()).decode()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


def call(conn, method, path, auth=None, headers=None, body=None):
    h = dict(headers or {})
    if auth:
        h["Authorization"] = auth_header(auth)
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read().decode("utf-8", "replace")
    conn.close()
    for secret in (ADMIN[1], VIEWER[1]):
        lib.expect_not_in(secret, data, "response to %s %s" % (method, path))
    return r.status, data


class Site:
    """A daemon with `httpd` (the set httpd statement) and one service, 'web', a process
    check on this test's own pid with start and stop programs that leave a mark."""

    def __init__(self, httpd):
        self.dir = lib.tmpdir()
        self.port = lib.free_port()
        pidfile = os.path.join(self.dir, "web.pid")
        with open(pidfile, "w") as f:
            f.write("%d\n" % os.getpid())
        self.marks = os.path.join(self.dir, "marks")
        body = ("set daemon 3600\n" + httpd.format(port=self.port, dir=self.dir) + "\n"
                "check process web with pidfile %s\n"
                "  start program = \"/bin/sh -c 'echo started >> %s'\"\n"
                "  stop program = \"/bin/sh -c 'echo stopped >> %s'\"\n"
                % (pidfile, self.marks, self.marks))
        self.control = lib.write_control(self.dir, body)
        self.daemon = None

    def start(self, ready=r"HTTP interface listening on ", checks=1):
        self.daemon = lib.Daemon(self.control).start()
        self.daemon.wait_log(ready)
        self.daemon.wait_log(r"cycle 1: %d checks" % checks)
        return self

    def close(self):
        if self.daemon and self.daemon.alive():
            self.daemon.stop()

    def reload(self):
        n = len(self.daemon.log().split("reloaded: ")) - 1
        self.daemon.signal(signal.SIGHUP)
        lib.wait_for(lambda: len(self.daemon.log().split("reloaded: ")) - 1 > n, 10,
                     "the reload")

    def http(self, source="127.0.0.1"):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10,
                                          source_address=(source, 0))

    def https(self, context):
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=context)


def verifying(c, cert=None):
    ctx = ssl.create_default_context(cafile=c["ca"]["cert"])
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def served_fingerprint(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw) as s:
            import hashlib
            h = hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest().upper()
            return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def test_https_served_renewed_on_sighup_and_the_cli_pins_it():
    c = certs()
    d = lib.tmpdir()
    # monit's pemchain + pemkey; the key copied so that it can be replaced and its mode changed.
    chain, key = os.path.join(d, "chain.pem"), os.path.join(d, "key.pem")

    def install(kind):
        with open(c[kind]["cert"]) as f, open(chain, "w") as out:
            out.write(f.read())
        with open(c[kind]["key"]) as f, open(key, "w") as out:
            out.write(f.read())
        os.chmod(key, 0o600)

    install("good")
    site = Site("set httpd port {port} and use address 127.0.0.1\n"
                "    with ssl {{ pemchain: %s pemkey: %s }}\n"
                "    allow %s:%s\n    allow %s:%s read-only" % (chain, key, *ADMIN, *VIEWER))
    site.start(ready=r"HTTP interface listening on 127\.0\.0\.1:\d+ \(TLS\)")
    try:
        status, body = call(site.https(verifying(c)), "GET", "/api/v1/status", auth=VIEWER)
        lib.expect_eq(status, 200, "HTTPS status")
        lib.expect_eq(json.loads(body)["services"][0]["name"], "web", "the service over HTTPS")
        lib.expect_eq(served_fingerprint(site.port), c["good"]["sha256"], "the certificate served")

        # TLS 1.1 is refused; plain HTTP on the TLS port gets no HTTP answer.
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.minimum_version = ssl.TLSVersion.TLSv1
        try:
            call(site.https(old), "GET", "/-/healthy")
            raise lib.TestFailure("a TLS 1.1 client was served")
        except ssl.SSLError:
            pass
        with socket.create_connection(("127.0.0.1", site.port), timeout=10) as s:
            s.sendall(b"GET /-/healthy HTTP/1.0\r\n\r\n")
            lib.expect_true(not s.recv(100).startswith(b"HTTP/"), "no plain HTTP on the TLS port")

        # The CLI over HTTPS: it recognises the daemon by the pemchain's certificate.
        r = lib.mw(site.control, "status")
        lib.expect_eq((r.rc, r.err), (0, ""), "status over HTTPS")
        lib.expect_in("daemon running (pid %d)" % site.daemon.pid, r.out, "the live view")

        # A renewed certificate is served after SIGHUP.
        install("expiring10")
        site.reload()
        lib.expect_eq(served_fingerprint(site.port), c["expiring10"]["sha256"],
                      "the renewed certificate after SIGHUP")
        r = lib.mw(site.control, "summary")
        lib.expect_eq(r.rc, 0, "summary over HTTPS after the renewal")

        # A key readable by others is refused, by -t and by a reload (the old one serves on).
        os.chmod(key, 0o644)
        r = lib.mw(site.control, "-t")
        lib.expect_eq(r.rc, 2, "-t exit with a loose key")
        lib.expect_in("the PEM key file %s is accessible by group or others (mode 0644); run: "
                      "chmod 600 %s" % (key, key), r.err, "-t names the loose key")
        site.daemon.signal(signal.SIGHUP)
        site.daemon.wait_log(r"reload refused: 1 error\(s\) in the control file")
        lib.expect_eq(served_fingerprint(site.port), c["expiring10"]["sha256"],
                      "the certificate in force after a refused reload")
    finally:
        site.close()


def test_client_certificates_required_and_a_stalled_handshake_blocks_nobody():
    c = certs()
    d = lib.tmpdir()
    combined = os.path.join(d, "server.pem")  # monit's pemfile: certificate and key together
    with open(combined, "w") as out:
        for p in (c["good"]["cert"], c["good"]["key"]):
            with open(p) as f:
                out.write(f.read())
    os.chmod(combined, 0o600)
    cert = client_cert(c, d)
    site = Site("set httpd port {port} and use address 127.0.0.1\n"
                "    with ssl {{ pemfile: %s clientpemfile: %s }}\n"
                "    allow %s:%s" % (combined, c["ca"]["cert"], *ADMIN))
    site.start(ready=r"\(TLS\)")
    stalled = []
    try:
        status, _ = call(site.https(verifying(c, cert)), "GET", "/api/v1/summary", auth=ADMIN)
        lib.expect_eq(status, 200, "with a client certificate of the CA")
        try:
            call(site.https(verifying(c)), "GET", "/api/v1/summary", auth=ADMIN)
            raise lib.TestFailure("a client without a certificate was served")
        except (ssl.SSLError, ConnectionResetError, http.client.RemoteDisconnected,
                BrokenPipeError):
            pass
        # A certificate from another issuer (the self-signed server one) is refused too.
        try:
            call(site.https(verifying(c, (c["selfsigned"]["cert"], c["selfsigned"]["key"]))),
                 "GET", "/api/v1/summary", auth=ADMIN)
            raise lib.TestFailure("a client with a certificate of another issuer was served")
        except (ssl.SSLError, ConnectionResetError, http.client.RemoteDisconnected,
                BrokenPipeError):
            pass
        # The CLI has no client certificate: it says so and shows the state file.
        r = lib.mw(site.control, "summary")
        lib.expect_in("mailwarden: warning: cannot reach the daemon's HTTP interface (the daemon "
                      "asks HTTPS clients for a certificate (clientpemfile) and the CLI has none; "
                      "add 'unixsocket PATH' to set httpd for the CLI); showing the state file",
                      r.err, "the CLI without a client certificate")

        # Seventy clients that never send a ClientHello: beyond the bound of 64 connections they
        # are closed at once, while the 64 are still open (waiting for their timeout).
        for _ in range(70):
            stalled.append(socket.create_connection(("127.0.0.1", site.port), timeout=20))
        for s in stalled[64:]:
            lib.expect_eq(s.recv(100), b"", "a connection beyond the bound closed")
        still_open = 0
        for s in stalled[:64]:
            s.setblocking(False)
            try:
                s.recv(100)
            except BlockingIOError:
                still_open += 1
        lib.expect_eq(still_open, 64, "connections within the bound still waiting")
        for s in stalled:
            s.close()
        stalled = []
        def healthy():
            try:
                return call(site.https(verifying(c, cert)), "GET", "/-/healthy")[0] == 200
            except (OSError, http.client.HTTPException):
                return False  # the server has not yet noticed that the others are gone
        lib.wait_for(healthy, 5, "served again once they are gone")
        # Twenty clients that connect and never send a ClientHello: others are served meanwhile,
        # and each stalled one is closed by the request timeout (10 s).
        for _ in range(20):
            stalled.append(socket.create_connection(("127.0.0.1", site.port), timeout=20))
        status, _ = call(site.https(verifying(c, cert)), "GET", "/-/healthy")
        lib.expect_eq(status, 200, "served while 20 handshakes stall")
        for s in stalled:
            lib.expect_eq(s.recv(100), b"", "a stalled handshake closed by the server")
    finally:
        for s in stalled:
            s.close()
        site.close()


def test_unix_socket_mode_stale_socket_cli_and_removal():
    d = lib.tmpdir()
    path = os.path.join(d, "mw.sock")
    # A socket left behind by a killed daemon: nothing answers on it.
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()
    site = Site("set httpd unixsocket %s permission 0600\n    allow %s:%s\n    allow %s:%s read-only"
                % (path, *ADMIN, *VIEWER))
    site.start(ready=r"HTTP interface listening on unix socket %s" % path)
    try:
        st = os.stat(path)
        lib.expect_true(stat.S_ISSOCK(st.st_mode), "a socket at the path")
        lib.expect_eq(oct(st.st_mode & 0o777), oct(0o600), "the socket's mode")
        status, _ = call(UnixHTTPConnection(path), "GET", "/api/v1/summary")
        lib.expect_eq(status, 401, "a password is still asked on the unix socket")
        status, body = call(UnixHTTPConnection(path), "GET", "/api/v1/status", auth=VIEWER)
        lib.expect_eq(status, 200, "status over the unix socket")
        lib.expect_eq(json.loads(body)["services"][0]["name"], "web", "the service")
        r = lib.mw(site.control, "status")
        lib.expect_eq((r.rc, r.err), (0, ""), "the CLI over the unix socket")
        lib.expect_in("daemon running (pid %d)" % site.daemon.pid, r.out, "the live view")
        # A second daemon on the same socket refuses to start: one answers on it.
        other = lib.write_control(lib.tmpdir(), "set daemon 3600\nset httpd unixsocket %s\n"
                                  "    allow %s:%s\n" % (path, *ADMIN))
        r = lib.run([lib.MAILWARDEN, "-c", other, "-I"], timeout=20)
        lib.expect_eq(r.rc, 1, "a second daemon on a live socket")
        lib.expect_in("cannot listen on %s: another server answers on it" % path,
                      r.out + r.err, "why")
        lib.expect_true(os.path.exists(path), "the live socket left alone")
        site.daemon.stop()
        lib.expect_true(not os.path.exists(path), "the socket removed at stop")
    finally:
        site.close()
    # A file that is not a socket is never removed.
    with open(path, "w") as f:
        f.write("precious\n")
    r = lib.run([lib.MAILWARDEN, "-c", site.control, "-I"], timeout=20)
    lib.expect_eq(r.rc, 1, "a daemon whose socket path is a file")
    lib.expect_in("cannot listen on %s: a file that is not a socket is in the way" % path,
                  r.out + r.err, "why")
    with open(path) as f:
        lib.expect_eq(f.read(), "precious\n", "the file untouched")


def test_allow_hosts_and_nets_before_authentication():
    site = Site("set httpd port {port} and use address 127.0.0.1\n"
                "    allow 127.0.0.1\n"
                "    allow 127.0.0.4/255.255.255.252\n"
                "    allow %s:%s" % ADMIN)
    site.start()
    try:
        refused = "your address is not allowed to use this interface\n"
        for source in ("127.0.0.2", "127.0.0.8"):
            status, body = call(site.http(source), "GET", "/api/v1/summary", auth=ADMIN)
            lib.expect_eq((status, body), (403, refused), "from %s, with a password" % source)
            status, body = call(site.http(source), "GET", "/-/healthy")
            lib.expect_eq((status, body), (403, refused), "/-/healthy from %s" % source)
        for source in ("127.0.0.1", "127.0.0.5"):
            status, body = call(site.http(source), "GET", "/api/v1/summary")
            lib.expect_eq((status, body), (401, "authentication required\n"),
                          "from %s without a password" % source)
            status, _ = call(site.http(source), "GET", "/api/v1/summary", auth=ADMIN)
            lib.expect_eq(status, 200, "from %s with a password" % source)
    finally:
        site.close()
    # A host name is resolved when the interface starts; alone it admits without a password.
    site = Site("set httpd port {port} and use address 127.0.0.1\n    allow localhost")
    site.start()
    try:
        status, _ = call(site.http("127.0.0.1"), "GET", "/api/v1/summary")
        lib.expect_eq(status, 200, "localhost (127.0.0.1) admitted")
        status, _ = call(site.http("127.0.0.3"), "GET", "/api/v1/summary")
        lib.expect_eq(status, 403, "127.0.0.3 is not localhost")
    finally:
        site.close()


def write_htpasswd(path, entries, mode=0o600):
    with open(path, "w") as f:
        f.write("# users of the HTTP interface\n")
        for name, hashed in entries:
            f.write("%s:%s\n" % (name, hashed))
    os.chmod(path, mode)


def openssl_passwd(flag, password):
    return lib.run(["openssl", "passwd", flag, password]).out.strip()


def test_htpasswd_hashes_reload_and_actions_of_read_only_users():
    d = lib.tmpdir()
    hashed = os.path.join(d, "htpasswd")
    users = {
        "bob": ("bcrypt-pass", crypt.crypt("bcrypt-pass", crypt.mksalt(crypt.METHOD_BLOWFISH,
                                                                        rounds=32))),
        "sha": ("sha512-pass", openssl_passwd("-6", "sha512-pass")),
        "des": ("despass", crypt.crypt("despass", "ab")),
        "apr": ("apr1-pass", openssl_passwd("-apr1", "apr1-pass")),
    }
    lib.expect_true(users["bob"][1].startswith("$2b$05$"), "a bcrypt hash", users["bob"][1])
    lib.expect_true(users["sha"][1].startswith("$6$"), "a sha512-crypt hash", users["sha"][1])
    write_htpasswd(hashed, [(n, h) for n, (_, h) in users.items()])
    clear = os.path.join(d, "htpasswd-clear")
    write_htpasswd(clear, [("carol", "clear-pass"), ("dave", "not-listed")])
    site = Site("set httpd port {port} and use address 127.0.0.1\n"
                "    allow crypt %s\n"
                "    allow cleartext %s carol\n"
                "    allow %s:%s read-only" % (hashed, clear, *VIEWER))
    site.start()
    try:
        for name, (password, _) in users.items():
            status, _ = call(site.http(), "GET", "/api/v1/summary", auth=(name, password))
            lib.expect_eq(status, 200, "%s logs in" % name)
            status, _ = call(site.http(), "GET", "/api/v1/summary", auth=(name, password + "x"))
            lib.expect_eq(status, 401, "%s with a wrong password" % name)
        lib.expect_eq(call(site.http(), "GET", "/api/v1/summary", auth=("carol", "clear-pass"))[0],
                      200, "a cleartext file's listed user")
        lib.expect_eq(call(site.http(), "GET", "/api/v1/summary", auth=("dave", "not-listed"))[0],
                      401, "a user of the file not listed in allow")

        # Actions: start, stop, restart go to the service's programs, for read-write users only.
        api = {"X-Requested-By": "test"}
        status, body = call(site.http(), "POST", "/api/v1/services/web/start",
                            auth=VIEWER, headers=api)
        lib.expect_eq((status, json.loads(body)["message"]),
                      (403, "user 'viewer' may read but not act"), "a read-only user's start")
        status, body = call(site.http(), "POST", "/api/v1/services/web/start",
                            auth=("bob", "bcrypt-pass"))
        lib.expect_eq((status, json.loads(body)["message"]),
                      (403, "missing X-Requested-By header (CSRF guard)"), "start without guard")
        marks = ""
        for verb, said, mark in (("start", "start program started; monitored", "started\n"),
                                 ("stop", "unmonitored; stop program started", "stopped\n"),
                                 ("restart", "restart program started; monitored",
                                  "stopped\nstarted\n")):
            status, body = call(site.http(), "POST", "/api/v1/services/web/" + verb,
                                auth=("bob", "bcrypt-pass"), headers=api)
            lib.expect_eq((status, json.loads(body)),
                          (200, {"ok": True, "message": "'web': " + said}), "POST " + verb)
            marks += mark
            lib.wait_for(lambda: os.path.exists(site.marks) and open(site.marks).read() == marks,
                         10, "the mark of " + verb)
            program = "stop" if verb == "stop" else "start"  # restart: stop, then start
            site.daemon.wait_log(r"'web': %s program exited with status 0" % program,
                                 count=marks.count({"stop": "stopped", "start": "started"}[program]))
        # The page of a process offers its programs to a read-write user, not to a read-only one.
        status, page = call(site.http(), "GET", "/service/web", auth=("bob", "bcrypt-pass"))
        lib.expect_eq(status, 200, "the service page")
        buttons = re.findall(r'<form method="post" action="/service/web/(\w+)">', page)
        lib.expect_eq(buttons, ["check", "unmonitor", "restart", "stop"], "the page's actions")
        status, page = call(site.http(), "GET", "/service/web", auth=VIEWER)
        lib.expect_eq(re.findall(r'<form method="post"', page), [], "no actions for read-only")
        token = re.search(r'name="csrf" value="([0-9a-f]{64})"',
                          call(site.http(), "GET", "/service/web", auth=("bob", "bcrypt-pass"))[1])
        status, _ = call(site.http(), "POST", "/service/web/stop", auth=("bob", "bcrypt-pass"),
                         body="csrf=" + token.group(1),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        lib.expect_eq(status, 303, "the page's Stop button (then back to the page)")
        marks += "stopped\n"
        lib.wait_for(lambda: open(site.marks).read() == marks, 10, "the mark of the Stop button")
        status, _ = call(site.http(), "POST", "/service/web/start", auth=("bob", "bcrypt-pass"),
                         body="csrf=0", headers={"Content-Type": "application/x-www-form-urlencoded"})
        lib.expect_eq(status, 403, "a form without the right token")
        status, body = call(site.http(), "POST", "/api/v1/services/nosuch/start",
                            auth=("bob", "bcrypt-pass"), headers=api)
        lib.expect_eq((status, json.loads(body)["message"]), (404, "no service named 'nosuch'"),
                      "start of an unknown service")

        # The file is read again on SIGHUP: a changed password counts at once.
        write_htpasswd(hashed, [("bob", crypt.crypt("new-pass", crypt.mksalt(crypt.METHOD_SHA512)))])
        site.reload()
        lib.expect_eq(call(site.http(), "GET", "/api/v1/summary", auth=("bob", "bcrypt-pass"))[0],
                      401, "the old password after the reload")
        lib.expect_eq(call(site.http(), "GET", "/api/v1/summary", auth=("bob", "new-pass"))[0],
                      200, "the new password after the reload")
        # A hashed file writable by others is refused; the interface stays as it was.
        os.chmod(hashed, 0o666)
        site.daemon.signal(signal.SIGHUP)
        site.daemon.wait_log(r"the htpasswd file %s is writable by group or others \(mode 0666\); "
                             r"run: chmod 600 %s; the HTTP interface stays as it was"
                             % (hashed, hashed))
        lib.expect_eq(call(site.http(), "GET", "/api/v1/summary", auth=("bob", "new-pass"))[0],
                      200, "still served as before the refused file")
    finally:
        site.close()


def test_validate_now_through_the_daemon():
    down = lib.free_port()
    site = Site("set httpd port {port} and use address 127.0.0.1\n"
                "    allow %s:%s\n"
                "check host down with address 127.0.0.1\n"
                "  if failed port %d with timeout 2 seconds then alert" % (*ADMIN, down))
    site.start(checks=2)
    try:
        def runs():
            status, body = call(site.http(), "GET", "/api/v1/status", auth=ADMIN)
            lib.expect_eq(status, 200, "status")
            return {s["name"]: s["tests"][0]["runs"] for s in json.loads(body)["services"]}
        before = runs()
        r = lib.mw(site.control, "validate", "--now")
        lib.expect_eq(r.rc, 1, "validate --now exit with a failing service")
        lib.expect_eq(r.out, "down failed: tcp 127.0.0.1:%d: connect: cannot connect to "
                      "127.0.0.1:%d: Connection refused\nweb ok\n" % (down, down),
                      "validate --now output")
        after = runs()
        lib.expect_eq({k: after[k] - before[k] for k in after}, {"web": 1, "down": 1},
                      "one more run of each check")
        site.daemon.wait_log(r"HTTP: validate by admin: 2 checks started")
        r = lib.mw(site.control, "validate", "--now", "--json")
        lib.expect_eq(r.rc, 1, "validate --now --json exit")
        doc = json.loads(r.out)
        local = lib.validate_json(site.control, expect_rc=1)  # the same face, run here
        lib.expect_eq(sorted(doc), sorted(k for k in local if k != "_result"), "the same document")
        lib.expect_eq([(s["name"], s["status"]) for s in doc["services"]],
                      [(s["name"], s["status"]) for s in local["services"]], "the same results")
        lib.expect_eq([s["name"] for s in doc["services"]], ["down", "web"], "both services")
    finally:
        site.close()
    r = lib.mw(site.control, "validate", "--now")
    lib.expect_eq((r.rc, r.err), (1, "mailwarden: no daemon is running (pid file %s)\n"
                                  % os.path.join(site.dir, "mailwarden.pid")), "without a daemon")
