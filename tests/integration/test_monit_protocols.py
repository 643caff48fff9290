"""monit's protocols beyond mail, against real servers on loopback: http/https against a small
HTTPS server (Python's http.server with the test CA's certificate), generic send/expect against
the real Dovecot, dns against a tiny TCP responder, ping of 127.0.0.1 and ::1 (raw socket as
root, and the unprivileged ICMP datagram socket as nobody in a private network namespace), and
the -t warning of a protocol that is only connected to.
"""

import base64
import http.server
import os
import shutil
import socket
import socketserver
import ssl
import struct
import subprocess
import threading

import lib

S = {}

POLICY = b"version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\nmax_age: 86400\r\n"
AUTOCONFIG = b'<clientConfig><incomingServer type="imap"><hostname>imap.example.test</hostname></incomingServer></clientConfig>\n'


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, *args):
        pass

    def send_body(self, status, body, extra=()):
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        Handler.seen.append((self.path, self.headers.get("Host"), self.headers.get("X-Probe")))
        if self.path == "/.well-known/mta-sts.txt":
            self.send_body(200, POLICY, [("Content-Type", "text/plain")])
        elif self.path == "/mail/config-v1.1.xml":
            # chunked, in two pieces that split the word the rule looks for
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            cut = AUTOCONFIG.index(b"incoming") + 4
            for piece in (AUTOCONFIG[:cut], AUTOCONFIG[cut:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/webmail/":
            want = "Basic " + base64.b64encode(b"probe:s3cret").decode()
            if self.headers.get("Authorization") != want:
                self.send_body(401, b"login required", [("WWW-Authenticate", 'Basic realm="mail"')])
            else:
                self.send_body(200, b"<title>Roundcube Webmail</title>")
        elif self.path == "/old":
            self.send_body(301, b"", [("Location", "https://webmail.example.test/")])
        else:
            self.send_body(404, b"not found")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def start_http(tls):
    srv = Server(("127.0.0.1", 0), Handler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        good = S["certs"]["good"]
        ctx.load_cert_chain(good["cert"], good["key"])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    S["servers"].append(srv)
    return srv.server_address[1]


class DnsHandler(socketserver.BaseRequestHandler):
    rcode = 0

    def handle(self):
        head = self.request.recv(2)
        if len(head) < 2:
            return
        (n,) = struct.unpack("!H", head)
        q = b""
        while len(q) < n:
            more = self.request.recv(n - len(q))
            if not more:
                return
            q += more
        # the same id and question, QR + RD + RA, the rcode this server was made with
        flags = 0x8180 | self.server.rcode
        answer = q[:2] + struct.pack("!HHHHH", flags, 1, 0, 0, 0) + q[12:]
        self.request.sendall(struct.pack("!H", len(answer)) + answer)


class DnsServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True


def start_dns(rcode):
    srv = DnsServer(("127.0.0.1", 0), DnsHandler)
    srv.rcode = rcode
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    S["servers"].append(srv)
    return srv.server_address[1]


def setup_module():
    from mwharness import make_certs
    base = lib.tmpdir("monit-protocols")
    S.update(certs=make_certs(os.path.join(base, "certs")), servers=[])
    S["ca"] = S["certs"]["ca"]["cert"]
    S["https"] = start_http(True)
    S["http"] = start_http(False)


def teardown_module():
    for srv in S.get("servers", []):
        srv.shutdown()
        srv.server_close()
    lib.stop_module_servers(S)


def control(rule, address="127.0.0.1"):
    head = "set ssl options { verify: enable, cacertificatefile: %s }\n" % S["ca"]
    return lib.write_control(lib.tmpdir(), head + "check host svc with address %s\n  if failed %s then alert\n"
                             % (address, rule))


def result(rule, rc, address="127.0.0.1"):
    doc = lib.validate_json(control(rule, address), expect_rc=rc)
    return lib.single_test(doc)


# ---- http / https ------------------------------------------------------------------------------

def test_https_mta_sts_policy():
    p = S["https"]
    rule = ('port %d protocol https request "/.well-known/mta-sts.txt" content = "version: STSv1" '
            'and certificate valid > 14 days' % p)
    t = result(rule, 0)
    lib.expect_result(t, "ok", "none", "")
    lib.expect_eq(t["name"], "https 127.0.0.1:%d" % p, "test name")
    lib.expect_in(("/.well-known/mta-sts.txt", "127.0.0.1:%d" % p, None), Handler.seen, "request seen")
    t = result('port %d protocol https request "/.well-known/mta-sts.txt" content = "mode: testing"' % p, 1)
    lib.expect_result(t, "failed", "content",
                      'GET /.well-known/mta-sts.txt: the body does not match "mode: testing"')


def test_https_virtual_host_must_match_the_certificate():
    # The hostheader is the name TLS sends and verifies: the test certificate is for localhost.
    p = S["https"]
    t = result('port %d protocol https hostheader "localhost" request "/.well-known/mta-sts.txt"' % p, 0)
    lib.expect_result(t, "ok", "none", "")
    t = result('port %d protocol https hostheader "mta-sts.example.test"' % p, 1)
    lib.expect_result(t, "failed", "tls", "certificate verification failed: hostname mismatch")


def test_http_autoconfig_chunked_with_hostheader_and_checksum():
    import hashlib
    p = S["http"]
    digest = hashlib.sha256(AUTOCONFIG).hexdigest()
    rule = ('port %d protocol http request "/mail/config-v1.1.xml" hostheader "autoconfig.example.test" '
            'content = "<incomingServer type=\\"imap\\">" checksum sha256 %s' % (p, digest))
    lib.expect_result(result(rule, 0), "ok", "none", "")
    lib.expect_in(("/mail/config-v1.1.xml", "autoconfig.example.test", None), Handler.seen, "Host header")


def test_http_status_and_redirects():
    p = S["http"]
    lib.expect_result(result("port %d protocol http request /old" % p, 0), "ok", "none", "")
    lib.expect_result(result("port %d protocol http request /old status = 200" % p, 1), "failed", "content",
                      "GET /old answered HTTP/1.1 301 Moved Permanently (the rule wants status = 200)")
    lib.expect_result(result("port %d protocol http request /nothing" % p, 1), "failed", "rejected",
                      "GET /nothing answered HTTP/1.1 404 Not Found")
    lib.expect_result(result("port %d protocol http request /nothing status = 404" % p, 0), "ok", "none", "")


def test_https_webmail_basic_auth_and_headers():
    p = S["https"]
    rule = ('port %d protocol https request "/webmail/" username "probe" password "s3cret" '
            'with http headers [X-Probe: mailwarden] content = "Roundcube"' % p)
    lib.expect_result(result(rule, 0), "ok", "none", "")
    lib.expect_in(("/webmail/", "127.0.0.1:%d" % p, "mailwarden"), Handler.seen, "extra header")
    t = result('port %d protocol https request "/webmail/" username "probe" password "wrong"' % p, 1)
    lib.expect_result(t, "failed", "rejected", "GET /webmail/ answered HTTP/1.1 401 Unauthorized")
    r = lib.mw(control(rule), "-v", "validate")
    lib.expect_not_in("s3cret", r.out + r.err, "the password in -v output")
    lib.expect_not_in(base64.b64encode(b"probe:s3cret").decode(), r.out + r.err, "the encoded password")


# ---- generic send/expect against Dovecot -------------------------------------------------------

def test_send_capability_expect_tagged_ok_dovecot():
    lib.start_module_dovecot(S, "monit-dovecot")
    p = S["dc"].ports["imap"]
    t = result('port %d send "a1 CAPABILITY\\r\\n" expect "a1 OK" timeout 30 s' % p, 0)
    lib.expect_result(t, "ok", "none", "")
    # A mismatch ends at the tagged line, not at the 30 s timeout, and shows what came.
    t = result('port %d send "a1 CAPABILITY\\r\\n" expect "^a1 NO" timeout 30 s' % p, 1)
    lib.expect_eq((t["status"], t["class"]), ("failed", "content"), "status, class")
    lib.expect_match(r'^expected "\^a1 NO", got 3 lines: "\* OK \[CAPABILITY IMAP4rev1 .*\] Dovecot.*ready\." '
                     r'"\* CAPABILITY IMAP4rev1 .*" "a1 OK Pre-login capabilities listed, post-login capabilities have more\."$',
                     t["message"], "message")


# ---- dns ---------------------------------------------------------------------------------------

def test_dns_over_tcp():
    lib.expect_result(result("port %d protocol dns" % start_dns(0), 0), "ok", "none", "")
    lib.expect_result(result("port %d protocol dns" % start_dns(2), 1), "failed", "rejected",
                      "DNS query for . NS answered SERVFAIL")


# ---- ping --------------------------------------------------------------------------------------

def test_ping_loopback():
    t = result("ping count 2", 0)
    lib.expect_result(t, "ok", "none", "")
    lib.expect_eq(t["name"], "ping 127.0.0.1", "test name")
    lib.expect_eq((t["sent"], t["received"], t["socket"], t["metrics"]["loss_percent"]),
                  (2, 2, "raw" if os.geteuid() == 0 else "datagram", 0.0), "sent, received, socket, loss")
    lib.expect_true(t["metrics"]["ping_ms"] > 0, "a round trip was measured", t)
    if socket.has_ipv6 and os.path.exists("/proc/net/if_inet6"):
        with open("/proc/net/if_inet6") as f:
            if any(line.startswith("00000000000000000000000000000001") for line in f):
                lib.expect_result(result("ping6 count 2", 0, address="::1"), "ok", "none", "")


def in_namespace(script):
    """Runs `script` with sh in a new network namespace (loopback up), as root."""
    return lib.run(["unshare", "-n", "sh", "-c", "ip link set lo up; " + script], timeout=30)


def test_ping_unprivileged_datagram_socket_and_no_reply():
    if not shutil.which("unshare") or in_namespace("true").rc != 0:
        lib.note("unshare -n is not available: the datagram socket is not tested")
        return
    d = lib.tmpdir()
    rc = lib.write_control(d, "check host lo with address 127.0.0.1\n  if failed ping count 2 then alert\n")
    os.chown(rc, 65534, 65534)
    os.chown(d, 65534, 65534)
    r = in_namespace("echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range; "
                     "exec setpriv --reuid=65534 --regid=65534 --clear-groups %s -c %s -v validate"
                     % (lib.MAILWARDEN, rc))
    lib.expect_eq(r.rc, 0, "exit status (stderr: %s)" % r.err[-500:])
    lib.expect_in("ping 127.0.0.1: unprivileged ICMP datagram socket", r.err, "-v names the socket")
    # Without the sysctl and without root, there is no ICMP socket at all.
    r = in_namespace("exec setpriv --reuid=65534 --regid=65534 --clear-groups %s -c %s validate"
                     % (lib.MAILWARDEN, rc))
    lib.expect_eq((r.rc, r.out.strip()),
                  (1, "lo failed: ping 127.0.0.1: internal: cannot open an ICMP socket (datagram: "
                      "Permission denied; raw: Operation not permitted): unprivileged ICMP needs this "
                      "group in net.ipv4.ping_group_range, a raw socket needs root or CAP_NET_RAW"),
                  "exit status, output")
    # A host that never answers: this namespace's kernel ignores echo requests.
    rc2 = lib.write_control(lib.tmpdir(), "check host quiet with address 127.0.0.1\n"
                            "  if failed ping count 2 with timeout 1 second then alert\n")
    r = in_namespace("echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all; exec %s -c %s validate"
                     % (lib.MAILWARDEN, rc2))
    lib.expect_eq((r.rc, r.out.strip()),
                  (1, "quiet failed: ping 127.0.0.1: timeout: no ICMP echo reply from 127.0.0.1 within 1 s "
                      "(2 sent)"),
                  "exit status, output")


# ---- -t ----------------------------------------------------------------------------------------

def test_connect_only_protocol_warns_once_at_t():
    rc = control("port 27017 protocol mongodb")
    r = lib.mw(rc, "-t")
    lib.expect_eq(r.rc, 0, "exit status of -t")
    lib.expect_match(r"^%s:5:33: warning: protocol mongodb: only the connection is checked\n$" % rc,
                     r.err, "the one warning")
    lib.expect_eq(r.out, "Control file syntax OK\n", "stdout")
