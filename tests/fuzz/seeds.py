#!/usr/bin/env python3
"""Builds the seed corpus of every harness from the test data the tree already has.

    seeds.py SRCDIR OUTDIR      -> OUTDIR/<harness>/<seed files>

config       tests/unit/config/*.rc (and alerts/), conf/mailwardenrc.sample
credentials  tests/unit/config/*.cfg
state        a state file of every shape the daemon writes (below)
imap, pop,   what the scripted peers in tests/peers/scripts say (their send/sendline strings, the
smtp, sieve, client's tags filled in), once per rule of the harness (the first byte picks it)
director,
httpc
http         the requests of tests/integration/test_http.py (below), as a client sends them
"""
import json
import os
import re
import sys

# The rule tables in fuzz_*.cc (director: its command plans; httpc: 4 rules, then 3 requests of
# the Alertmanager / CLI client).
RULES = {"imap": 5, "pop": 4, "smtp": 6, "sieve": 3, "director": 5, "httpc": 7}
PREFIXES = {
    "imap": ("imap-", "imaps-", "delivery-imap-", "replication-"),
    "pop": ("pop-", "pops-", "delivery-pop-"),
    "smtp": ("smtp-", "smtps-", "mail-", "lmtp-", "delivery-smtp-"),
    "sieve": ("sieve-",),
    "director": ("director-",),
    "httpc": ("http-", "https-", "generic-http"),
}
STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def unescape(s, tag):
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n == "x" and i + 3 < len(s):
                out.append(int(s[i + 2:i + 4], 16))
                i += 4
                continue
            out += {"r": b"\r", "n": b"\n", "t": b"\t"}.get(n, n.encode())
            i += 2
            continue
        if c == "$" and i + 1 < len(s) and s[i + 1].isdigit():
            out += tag.encode()
            i += 2
            continue
        out += c.encode("utf-8")
        i += 1
    return bytes(out)


def server_bytes(script):
    """What a peer script sends, in order; each `expect` is one more client command (tag mwN)."""
    out = b""
    tag = 0
    for line in open(script, encoding="utf-8", errors="replace"):
        words = line.strip().split(None, 1)
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "expect":
            tag += 1
        elif words[0] in ("send", "sendline") and len(words) > 1:
            m = STRING.match(words[1])
            if m:
                out += unescape(m.group(1), "mw%d" % max(tag, 1))
                if words[0] == "sendline":
                    out += b"\r\n"
    return out


STATE = {
    "format": 1, "pid": 4242, "started_unix": 1700000000, "written_unix": 1700000060,
    "written": "2023-11-14T22:14:20Z", "cycles": 3,
    "services": [{"name": "imap", "checks": [{
        "id": "imap/1", "description": "port 993 protocol imaps", "runs": 3,
        "rules": [{"state": "failed", "history": 7, "recorded": 3, "cycles_in_state": 2}],
        "last": {"status": "failed", "class": "auth", "message": "login failed",
                 "server_line": "mw2 NO [AUTHENTICATIONFAILED] x", "response_ms": 12.5,
                 "attempts": 1, "checked_at_unix": 1700000050, "metrics": {"latency_ms": 3},
                 "details": {"checked": 2},
                 "certificate": {"days_left": 30, "not_after_unix": 1702592050, "subject": "CN=a",
                                 "issuer": "CN=ca", "sha256": "AB:CD", "verify_error": "",
                                 "tls_version": "TLSv1.3"}},
        "memory": {"cursor": 4}}]}],
    "actions": {"exec": {"x": [1700000000]}},
}


# Requests to the HTTP interface (fuzz_http.cc: admin:s3cr3t-pw may act, viewer:view-pw may
# read; @CSRF@ is replaced by the admin's form token).
ADMIN = "Authorization: Basic YWRtaW46czNjcjN0LXB3\r\n"
VIEWER = "Authorization: Basic dmlld2VyOnZpZXctcHc=\r\n"
HOST = "Host: 127.0.0.1:8080\r\n"
REQUESTS = {
    "healthy": "GET /-/healthy HTTP/1.1\r\n" + HOST + "\r\n",
    "no-auth": "GET / HTTP/1.1\r\n" + HOST + "\r\n",
    "wrong-password": "GET / HTTP/1.1\r\n" + HOST + "Authorization: Basic YWRtaW46d3Jvbmc=\r\n\r\n",
    "index": "GET / HTTP/1.1\r\n" + HOST + VIEWER + "\r\n",
    "service": "GET /service/imap HTTP/1.1\r\n" + HOST + ADMIN + "\r\n",
    "service-escaped": "GET /service/smtp%20b%26c HTTP/1.1\r\n" + HOST + VIEWER + "\r\n",
    "no-service": "GET /service/nope HTTP/1.0\r\n" + VIEWER + "\r\n",
    "api-status": "GET /api/v1/status HTTP/1.1\r\n" + HOST + VIEWER + "Connection: close\r\n\r\n",
    "api-text": "GET /api/v1/status?format=text HTTP/1.1\r\n" + HOST + VIEWER + "\r\n",
    "api-one": "GET /api/v1/status/mx-to-inbox HTTP/1.1\r\n" + HOST + VIEWER + "\r\n",
    "api-history": "GET /api/v1/history/imap HTTP/1.1\r\n" + HOST + VIEWER + "\r\n",
    "api-summary": "HEAD /api/v1/summary HTTP/1.1\r\n" + HOST + VIEWER + "\r\n",
    "metrics": "GET /metrics HTTP/1.1\r\n" + HOST + VIEWER + "\r\n",
    "api-post": "POST /api/v1/services/imap/check HTTP/1.1\r\n" + HOST + ADMIN
                + "X-Requested-By: cli\r\nContent-Length: 0\r\n\r\n",
    "api-post-unguarded": "POST /api/v1/services/imap/unmonitor HTTP/1.1\r\n" + HOST + ADMIN
                          + "Content-Length: 0\r\n\r\n",
    "api-post-viewer": "POST /api/v1/services/imap/monitor HTTP/1.1\r\n" + HOST + VIEWER
                       + "X-Requested-By: cli\r\nContent-Length: 0\r\n\r\n",
    "form-post": "POST /service/imap/unmonitor HTTP/1.1\r\n" + HOST + ADMIN
                 + "Origin: http://127.0.0.1:8080\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                 + "Content-Length: 69\r\n\r\ncsrf=@CSRF@",
    "form-post-evil": "POST /service/imap/monitor HTTP/1.1\r\n" + HOST + ADMIN
                      + "Origin: http://evil.example\r\nContent-Length: 69\r\n\r\ncsrf=@CSRF@",
    "form-post-chunked": "POST /service/smtp%20b%26c/check HTTP/1.1\r\n" + HOST + ADMIN
                         + "Transfer-Encoding: chunked\r\n\r\n45\r\ncsrf=@CSRF@\r\n0\r\n\r\n",
    "pipelined": "GET /metrics HTTP/1.1\r\n" + HOST + VIEWER + "\r\nGET /-/healthy HTTP/1.1\r\n"
                 + HOST + "\r\n",
    "put": "PUT / HTTP/1.1\r\n" + HOST + ADMIN + "Content-Length: 1\r\n\r\nx",
    "absolute-uri": "GET http://127.0.0.1:8080/api/v1/status/imap?x=1#f HTTP/1.1\r\n" + VIEWER + "\r\n",
}


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main():
    src, out = sys.argv[1], sys.argv[2]
    for name in ("config", "credentials", "state", "http") + tuple(RULES):
        os.makedirs(os.path.join(out, name), exist_ok=True)
    cfgdir = os.path.join(src, "tests/unit/config")
    for root, _, files in os.walk(cfgdir):
        for f in sorted(files):
            data = open(os.path.join(root, f), "rb").read()
            if f.endswith(".rc"):
                write(os.path.join(out, "config", f), data)
            elif f.endswith(".cfg"):
                write(os.path.join(out, "credentials", f), data)
    sample = os.path.join(src, "conf/mailwardenrc.sample")
    if os.path.exists(sample):
        write(os.path.join(out, "config", "sample.rc"), open(sample, "rb").read())
    write(os.path.join(out, "state", "full.json"), json.dumps(STATE, indent=1).encode())
    write(os.path.join(out, "state", "empty.json"), b'{"format": 1, "services": []}\n')
    # Regression inputs of defects found before: a "format" that is not a number aborted the
    # loader; an include of /dev/zero read without bound.
    write(os.path.join(out, "state", "format-string.json"), b'{"format":"1"}')
    write(os.path.join(out, "state", "format-null.json"), b'{"format":null}')
    write(os.path.join(out, "config", "include-dev-zero.rc"), b'include /dev/zero\n')
    for name, text in REQUESTS.items():
        write(os.path.join(out, "http", name), text.encode())
    scripts = os.path.join(src, "tests/peers/scripts")
    for f in sorted(os.listdir(scripts)):
        for proto, prefixes in PREFIXES.items():
            if f.startswith(prefixes):
                data = server_bytes(os.path.join(scripts, f))
                for rule in range(RULES[proto]):
                    write(os.path.join(out, proto, "%s.%d" % (f, rule)), bytes([rule]) + data)


if __name__ == "__main__":
    main()
