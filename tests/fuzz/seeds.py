#!/usr/bin/env python3
"""Builds the seed corpus of every harness from the test data the tree already has.

    seeds.py SRCDIR OUTDIR      -> OUTDIR/<harness>/<seed files>

config       tests/unit/config/*.rc (and alerts/), conf/mailwardenrc.sample
credentials  tests/unit/config/*.cfg
state        a state file of every shape the daemon writes (below)
imap, pop,   what the scripted peers in tests/peers/scripts say (their send/sendline strings, the
smtp, sieve  client's tags filled in), once per rule of the harness (the first byte picks it)
"""
import json
import os
import re
import sys

RULES = {"imap": 5, "pop": 4, "smtp": 6, "sieve": 3}  # the rule tables in fuzz_*.cc
PREFIXES = {
    "imap": ("imap-", "imaps-", "delivery-imap-", "replication-"),
    "pop": ("pop-", "pops-", "delivery-pop-"),
    "smtp": ("smtp-", "smtps-", "mail-", "lmtp-", "delivery-smtp-"),
    "sieve": ("sieve-",),
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


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main():
    src, out = sys.argv[1], sys.argv[2]
    for name in ("config", "credentials", "state") + tuple(RULES):
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
    scripts = os.path.join(src, "tests/peers/scripts")
    for f in sorted(os.listdir(scripts)):
        for proto, prefixes in PREFIXES.items():
            if f.startswith(prefixes):
                data = server_bytes(os.path.join(scripts, f))
                for rule in range(RULES[proto]):
                    write(os.path.join(out, proto, "%s.%d" % (f, rule)), bytes([rule]) + data)


if __name__ == "__main__":
    main()
