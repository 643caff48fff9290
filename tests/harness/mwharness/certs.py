"""Test certificates made with the openssl CLI.

make_certs(directory) creates (or reuses, if complete) in `directory`:

    ca          test CA (CN=mailwarden test CA), valid 10 years
    good        CN=localhost, SAN DNS:localhost + IP:127.0.0.1 + IP:127.0.0.2
                (127.0.0.2 is where a Dovecot with disable_plaintext_auth=True
                listens, see dovecot.py), CA-signed, valid 365 days
    expiring10  same names, CA-signed, expires in 10 days
    selfsigned  same names, self-signed (not signed by the CA), valid 365 days
    expired     same names, CA-signed, valid from 30 days ago until 1 day ago

and returns a dict:

    {"dir": DIR,
     "ca":   {"cert": DIR/ca.pem, "key": DIR/ca.key, ...},
     "good": {"cert": DIR/good.pem, "key": DIR/good.key,
              "not_before": "2024-05-01T10:00:00Z", "not_after": "...",
              "sha256": "AB:CD:...", "sha1": "...", "md5": "..."},
     "expiring10": {...}, "selfsigned": {...}, "expired": {...}}

Keys are EC P-256 (fast to make).  Verify a server with the "good" or
"expiring10" certificate by loading ca["cert"] as the trust anchor
(ssl.create_default_context(cafile=...)); host names "localhost",
"127.0.0.1" and "127.0.0.2" match.  Fingerprints are of the DER certificate,
upper-case hex with colons.
"""

import datetime
import hashlib
import os
import ssl

from .proc import run

KINDS = ("good", "expiring10", "selfsigned", "expired")
SAN = "DNS:localhost,IP:127.0.0.1,IP:127.0.0.2"
_KEYOPTS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

_LEAF_EXT = """[ leaf_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = %s
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
""" % SAN

_CA_CONF = """[ ca ]
default_ca = testca

[ testca ]
dir = {dir}
database = {dir}/ca-db/index.txt
new_certs_dir = {dir}/ca-db
serial = {dir}/ca-db/serial
certificate = {dir}/ca.pem
private_key = {dir}/ca.key
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none

[ policy_any ]
commonName = supplied

"""


def _fmt(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _describe(cert, key):
    """Paths, validity and fingerprints of one certificate."""
    with open(cert) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    out = run(["openssl", "x509", "-in", cert, "-noout", "-startdate", "-enddate"])
    dates = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def parse(text):
        dt = datetime.datetime.strptime(text.strip(), "%b %d %H:%M:%S %Y GMT")
        return _fmt(dt)

    def fp(name):
        h = hashlib.new(name, der).hexdigest().upper()
        return ":".join(h[i:i + 2] for i in range(0, len(h), 2))

    return {"cert": cert, "key": key,
            "not_before": parse(dates["notBefore"]), "not_after": parse(dates["notAfter"]),
            "sha256": fp("sha256"), "sha1": fp("sha1"), "md5": fp("md5")}


def make_certs(directory):
    """Create (or reuse) the CA and the four server certificates; see module doc."""
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    p = lambda name: os.path.join(directory, name)
    done = all(os.path.exists(p(k + ".pem")) and os.path.exists(p(k + ".key"))
               for k in ("ca",) + KINDS)
    if not done:
        _create(directory, p)
    result = {"dir": directory}
    for kind in ("ca",) + KINDS:
        result[kind] = _describe(p(kind + ".pem"), p(kind + ".key"))
    return result


def _create(directory, p):
    with open(p("leaf_ext.cnf"), "w") as f:
        f.write(_LEAF_EXT)
    run(["openssl", "req", "-x509", "-new"] + _KEYOPTS + [
        "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "3650", "-sha256",
        "-subj", "/CN=mailwarden test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign"])

    # CA-signed leaves with a validity counted in days from now.
    for serial, (kind, days) in enumerate((("good", 365), ("expiring10", 10)), start=2):
        run(["openssl", "req", "-new"] + _KEYOPTS + [
            "-keyout", p(kind + ".key"), "-out", p(kind + ".csr"), "-subj", "/CN=localhost"])
        run(["openssl", "x509", "-req", "-in", p(kind + ".csr"), "-CA", p("ca.pem"),
             "-CAkey", p("ca.key"), "-set_serial", str(serial), "-days", str(days),
             "-sha256", "-extfile", p("leaf_ext.cnf"), "-extensions", "leaf_ext",
             "-out", p(kind + ".pem")])

    # Self-signed leaf (not a CA, not signed by our CA).
    run(["openssl", "req", "-x509", "-new"] + _KEYOPTS + [
        "-keyout", p("selfsigned.key"), "-out", p("selfsigned.pem"), "-days", "365",
        "-sha256", "-subj", "/CN=localhost",
        "-addext", "basicConstraints=critical,CA:FALSE",
        "-addext", "subjectAltName=" + SAN,
        "-addext", "extendedKeyUsage=serverAuth"])

    # Expired leaf: OpenSSL 3.0's x509 cannot set a start date, `openssl ca` can.
    os.makedirs(p("ca-db"), exist_ok=True)
    open(p("ca-db/index.txt"), "w").close()
    with open(p("ca-db/serial"), "w") as f:
        f.write("10\n")
    with open(p("ca.cnf"), "w") as f:
        f.write(_CA_CONF.format(dir=directory) + _LEAF_EXT)
    now = datetime.datetime.now(datetime.timezone.utc)
    start = (now - datetime.timedelta(days=30)).strftime("%Y%m%d%H%M%SZ")
    end = (now - datetime.timedelta(days=1)).strftime("%Y%m%d%H%M%SZ")
    run(["openssl", "req", "-new"] + _KEYOPTS + [
        "-keyout", p("expired.key"), "-out", p("expired.csr"), "-subj", "/CN=localhost"])
    run(["openssl", "ca", "-batch", "-notext", "-config", p("ca.cnf"),
         "-in", p("expired.csr"), "-out", p("expired.pem"),
         "-startdate", start, "-enddate", end, "-extensions", "leaf_ext"])

    for name in os.listdir(directory):       # servers read keys as root; keep them private
        if name.endswith(".key"):
            os.chmod(p(name), 0o600)
