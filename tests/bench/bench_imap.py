#!/usr/bin/env python3
"""IMAP cycle benchmark: N services against a real Dovecot, 10% of them tarpits (accept, then
silence), every check with a 5 s timeout. Reports the wall time of one cycle, CPU seconds per
probe and peak RSS of mailwarden, next to monit 5 (serial checks) on a tenth of the services
with the same tarpit share, measured in the same run.

Goals: 1,000 services: cycle time <= timeout + 1 s, peak RSS <= 32 MB; 10,000 services (half
of the healthy ones over TLS): cycle <= timeout + 2 s, peak RSS <= 40 MB.

Dovecot runs its login processes in its high-performance mode with one long-lived imap-login
process (service_count = 0, process_min_avail = 1): Dovecot keeps its TLS session-ticket keys
per login process, so resumed sessions (mailwarden resumes TLS sessions per endpoint) only work
when the same process serves the port, as it does in that common production setting.

MW_BENCH_BASELINE=/path/to/another/mailwarden adds the same rows for that binary, measured in the
same run (a build before a change).
"""

import argparse
import os
import shutil
import subprocess
import tempfile

import common

TIMEOUT_S = 5

# One long-lived login process serves both IMAP ports (see above).
DOVECOT_ONE_LOGIN_PROCESS = """
default_process_limit = 2000
default_client_limit = 20000
service imap-login {
  service_count = 0
  process_min_avail = 1
  client_limit = 12000
}
"""


def control_file(dovecot, tarpit_port, services, tarpit_share, protocol_mix):
    ca = dovecot.certs["ca"]["cert"]
    lines = ["set ssl options { cacertificatefile: %s }" % ca,
             "set limits { connections: 2048 }",
             "set statefile /dev/null"]
    tarpits = int(services * tarpit_share)
    for i in range(services):
        lines.append("check host svc%04d with address 127.0.0.1" % i)
        if i < tarpits:
            lines.append("  if failed port %d protocol imap with timeout %d seconds then alert"
                         % (tarpit_port, TIMEOUT_S))
            continue
        proto = protocol_mix[i % len(protocol_mix)]
        port = dovecot.ports["imaps" if proto == "imaps" else "imap"]
        lines.append("  if failed port %d protocol %s with timeout %d seconds then alert"
                     % (port, proto, TIMEOUT_S))
    return "\n".join(lines) + "\n"


def monit_control(dovecot, tarpit_port, services, tarpit_share, statedir):
    lines = ["set daemon 3600",
             "set idfile %s/monit.id" % statedir,
             "set statefile %s/monit.state" % statedir,
             "set logfile %s/monit.log" % statedir]
    tarpits = int(services * tarpit_share)
    for i in range(services):
        port = tarpit_port if i < tarpits else dovecot.ports["imap"]
        lines.append("check host svc%04d with address 127.0.0.1" % i)
        lines.append("  if failed port %d protocol imap with timeout %d seconds then alert"
                     % (port, TIMEOUT_S))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--monit-services", type=int, default=100)
    ap.add_argument("--large", type=int, default=10000, help="the large row (0: none)")
    args = ap.parse_args()
    common.enable_subreaper()
    work = tempfile.mkdtemp(prefix="mw-bench-imap-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    dovecot = common.Dovecot(base_dir=work, extra_config=DOVECOT_ONE_LOGIN_PROCESS)
    tarpit = None
    try:
        dovecot.start()
        tarpit = common.Tarpit()
        rows = []
        binaries = [("mailwarden", common.mailwarden())]
        if os.environ.get("MW_BENCH_BASELINE"):
            binaries.append(("baseline build", os.environ["MW_BENCH_BASELINE"]))
        sizes = [args.services] + ([args.large] if args.large else [])
        for n in sizes:
            rc_path = common.write_control(work, control_file(dovecot, tarpit.port, n, 0.10,
                                                              ["imap", "imaps"]), "bench%d.rc" % n)
            for label, binary in binaries:
                m = common.measure([binary, "-c", rc_path, "validate"])
                failed = sum(1 for line in m.out.splitlines() if " failed:" in line)
                rows.append([label, n, int(n * 0.1), "%.2f" % m.wall, "%.2f" % m.cpu,
                             "%.3f" % (1000.0 * m.cpu / n), "%.1f" % (m.maxrss_kb / 1024.0),
                             failed])
        small = common.write_control(work, control_file(dovecot, tarpit.port, args.monit_services,
                                                        0.10, ["imap"]), "small.rc")
        m2 = common.measure([common.mailwarden(), "-c", small, "validate"])
        rows.append(["mailwarden", args.monit_services, int(args.monit_services * 0.1),
                     "%.2f" % m2.wall, "%.2f" % m2.cpu,
                     "%.3f" % (1000.0 * m2.cpu / args.monit_services),
                     "%.1f" % (m2.maxrss_kb / 1024.0),
                     sum(1 for line in m2.out.splitlines() if " failed:" in line)])
        monit = shutil.which("monit")
        if monit:
            statedir = os.path.join(work, "monit")
            os.makedirs(statedir)
            mrc = common.write_control(statedir, monit_control(dovecot, tarpit.port,
                                                               args.monit_services, 0.10, statedir),
                                       "monitrc")
            m3 = common.measure([monit, "-c", mrc, "validate"])
            rows.append(["monit 5 (serial)", args.monit_services, int(args.monit_services * 0.1),
                         "%.2f" % m3.wall, "%.2f" % m3.cpu,
                         "%.3f" % (1000.0 * m3.cpu / args.monit_services),
                         "%.1f" % (m3.maxrss_kb / 1024.0), "-"])
        print("IMAP cycle: one validate run, every check with a %d s timeout, 10%% tarpits" % TIMEOUT_S)
        common.table(rows, ["tool", "services", "tarpits", "cycle s", "cpu s", "cpu ms/probe",
                            "peak RSS MB", "failed"])
        print("goals: 1,000 services: cycle <= %d s (timeout + 1 s), peak RSS <= 32 MB; 10,000: "
              "cycle <= %d s (timeout + 2 s), peak RSS <= 40 MB" % (TIMEOUT_S + 1, TIMEOUT_S + 2))
        print("load average: %.2f %.2f %.2f" % os.getloadavg())
    finally:
        if tarpit:
            tarpit.stop()
        dovecot.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
