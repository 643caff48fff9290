#!/usr/bin/env python3
"""Protocol suite benchmark: mailwarden's probes of every protocol against a real, private
Dovecot and Postfix, next to the floor: a bare OpenSSL client (C++, built here with the system
compiler) that connects, does the TLS handshake with the same verification and reads the
greeting, over the same number of connections with the same concurrency.

For each protocol one `mailwarden validate` runs N services of that protocol; then one run mixes
1,000 services over all of them. Wall time gives probes per second; CPU seconds (user + system
of the process, from GNU time) per probe are compared with the floor's. A run of one plain TCP
probe shows the fixed cost of starting mailwarden (included in every row).

Goal: CPU per IMAPS probe <= 1.5 x the floor.

    MW_SRCDIR=... MW_BUILDDIR=... python3 tests/bench/bench_protocols.py [--per-protocol 300]
        [--mixed 1000] [--connections 50]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from mwharness import Postfix  # noqa: E402

# Dovecot's high-performance login mode for every login service, and enough processes.
DOVECOT_TUNING = common.DOVECOT_MANY_CLIENTS + """
service managesieve-login {
  service_count = 0
  process_min_avail = 1
  client_limit = 5000
}
service lmtp {
  process_limit = 200
}
"""

POSTFIX_TUNING = "default_process_limit = 200\nsmtpd_client_connection_count_limit = 0\n"

# The floor: connect, TLS handshake verified against the CA (chain + IP address), read the
# greeting line, close. Threads give it the same concurrency as mailwarden's probes.
FLOOR_CC = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

static std::atomic<int> next_probe{0}, ok{0};

static bool probe(SSL_CTX* ctx, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  bool good = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    SSL* ssl = SSL_new(ctx);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1 && SSL_get_verify_result(ssl) == X509_V_OK) {
      char c;
      int n;
      while ((n = SSL_read(ssl, &c, 1)) == 1 && c != '\n') {}
      good = n == 1;
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
  }
  close(fd);
  return good;
}

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  int port = atoi(argv[1]), count = atoi(argv[3]), threads = atoi(argv[4]);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx, argv[2], nullptr) != 1) return 3;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      while (next_probe++ < count)
        if (probe(ctx, port)) ++ok;
    });
  for (auto& t : pool) t.join();
  printf("%d\n", ok.load());
  SSL_CTX_free(ctx);
  return 0;
}
"""


class Run:
    def __init__(self, wall, cpu, out):
        self.wall, self.cpu, self.out = wall, cpu, out


def measure_once(argv, timeout=600):
    """Wall and CPU seconds (user + system, microsecond resolution, from wait4) of argv."""
    t = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    out = p.stdout.read()
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            p.kill()
        time.sleep(0.005)
    p.returncode = os.waitstatus_to_exitcode(status)
    return Run(time.monotonic() - t, usage.ru_utime + usage.ru_stime, out)


def measure(argv, repeat):
    """The run with the median CPU time of `repeat` runs."""
    runs = sorted((measure_once(argv) for _ in range(repeat)), key=lambda r: r.cpu)
    return runs[len(runs) // 2]


def build_floor(work):
    src = os.path.join(work, "tls_floor.cc")
    exe = os.path.join(work, "tls_floor")
    with open(src, "w") as f:
        f.write(FLOOR_CC)
    cxx = os.environ.get("CXX", "c++")
    subprocess.run([cxx, "-O2", "-std=c++17", "-o", exe, src, "-lssl", "-lcrypto", "-pthread"],
                   check=True)
    return exe


def protocol_rules(dc, pf):
    """name -> the port test of one probe of that protocol (no login: the servers' auth would
    dominate, and Dovecot limits logins per user and address)."""
    d, p = dc.ports, pf.ports
    return [
        ("imap", "port %d protocol imap" % d["imap"]),
        ("imap+starttls", "port %d protocol imap starttls" % d["imap"]),
        ("imaps", "port %d protocol imaps" % d["imaps"]),
        ("pop", "port %d protocol pop" % d["pop3"]),
        ("pop+starttls", "port %d protocol pop starttls" % d["pop3"]),
        ("pops", "port %d protocol pops" % d["pop3s"]),
        ("smtp", "port %d protocol smtp" % p["smtp"]),
        ("smtp+starttls", "port %d protocol smtp starttls" % p["smtp"]),
        ("smtps", "port %d protocol smtps" % p["smtps"]),
        ("submission", "port %d protocol submission" % p["submission"]),
        ("lmtp", 'port %d protocol lmtp rcpt to "alice@example.test"' % d["lmtp"]),
        ("sieve", "port %d protocol sieve" % d["sieve"]),
        ("sieve+starttls", "port %d protocol sieve starttls" % d["sieve"]),
        ("tcp", "port %d" % d["imap"]),
        ("tcp+ssl expect", 'port %d ssl expect "^\\* OK"' % d["imaps"]),
    ]


def control(ca, connections, rules):
    lines = ["set ssl options { cacertificatefile: %s }" % ca,
             "set limits { connections: %d }" % connections,
             "set statefile /dev/null"]
    for i, rule in enumerate(rules):
        lines.append("check host svc%04d with address 127.0.0.1" % i)
        lines.append("  if failed %s with timeout 10 seconds then alert" % rule)
    return "\n".join(lines) + "\n"


def run_mailwarden(work, name, ca, connections, rules, repeat):
    rc = common.write_control(work, control(ca, connections, rules), name + ".rc")
    m = measure([common.mailwarden(), "-c", rc, "validate"], repeat)
    failed = [line for line in m.out.splitlines() if " failed:" in line]
    if failed:
        print("  %s: %d failed, e.g. %s" % (name, len(failed), failed[0]), file=sys.stderr)
    return m, len(rules) - len(failed)


def row(label, probes, ok, m, floor_cpu_per_probe):
    cpu_ms = 1000.0 * m.cpu / probes
    ratio = "%.2f" % (cpu_ms / floor_cpu_per_probe) if floor_cpu_per_probe else "-"
    return [label, probes, ok, "%.2f" % m.wall, "%.0f" % (probes / m.wall), "%.3f" % cpu_ms, ratio]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-protocol", type=int, default=300)
    ap.add_argument("--mixed", type=int, default=1000)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3, help="runs per row; the median CPU is shown")
    args = ap.parse_args()
    common.enable_subreaper()
    work = tempfile.mkdtemp(prefix="mw-bench-proto-",
                            dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.chmod(work, 0o755)
    dc = common.Dovecot(base_dir=work, extra_config=DOVECOT_TUNING)
    pf = None
    try:
        dc.start()
        pf = Postfix(base_dir=work, dovecot=dc, certs=dc.certs,
                     extra_main_cf=POSTFIX_TUNING)
        pf.start()
        ca = dc.certs["ca"]["cert"]
        floor = build_floor(work)
        n, c = args.per_protocol, args.connections

        # The floor, measured like the probes: one process, N connections, C at a time.
        r = args.repeat
        fm = measure([floor, str(dc.ports["imaps"]), ca, str(n), str(c)], r)
        floor_ok = int(fm.out.strip() or 0)
        floor_cpu = 1000.0 * fm.cpu / n
        rows = [["floor: OpenSSL handshake + greeting (imaps)", n, floor_ok, "%.2f" % fm.wall,
                 "%.0f" % (n / fm.wall), "%.3f" % floor_cpu, "1.00"]]

        start, _ = run_mailwarden(work, "startup", ca, c, ["port %d" % dc.ports["imap"]], r)
        per_protocol = protocol_rules(dc, pf)
        for label, rule in per_protocol:
            m, ok = run_mailwarden(work, label.replace("+", "-").replace(" ", "-"), ca, c, [rule] * n,
                                   r)
            rows.append(row("mailwarden " + label, n, ok, m, floor_cpu))
        mixed_rules = [per_protocol[i % len(per_protocol)][1] for i in range(args.mixed)]
        m, ok = run_mailwarden(work, "mixed", ca, c, mixed_rules, r)
        rows.append(row("mailwarden mixed, all protocols", args.mixed, ok, m, floor_cpu))

        print("Protocol probes against a private Dovecot 2.3 and Postfix 3.7 on loopback, "
              "%d at a time (set limits { connections: %d })" % (c, c))
        common.table(rows, ["what", "probes", "ok", "wall s", "probes/s", "cpu ms/probe",
                            "x floor"])
        print("fixed cost of one mailwarden run (start, parse, one tcp probe): %.1f ms CPU, "
              "included in every row above; median of %d runs per row" % (1000.0 * start.cpu, r))
        print("goal: cpu per imaps probe <= 1.5 x floor")
    finally:
        if pf:
            pf.stop()
        dc.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
