"""monit's local service types against real servers and a real machine: `check process` blocks
that restart a real Dovecot and a real Postfix killed with -9 (Debian's own postfix block, paths
adjusted to the private instance), a crash loop stopped by `N restarts within M cycles`,
`check program` running a monitoring-plugins check, `check filesystem` on a small tmpfs filled
past its limit, `check file` checksum and permission changes, `check system` under a bounded
CPU load, and monitor/unmonitor through the control socket surviving a daemon restart.

Cycles are driven by SIGUSR1 on a daemon with a long cycle (`set daemon 3600`), so the tests
do not depend on timing; waits are bounded polls.
"""

import json
import os
import re
import signal
import subprocess
import time

import lib
from mwharness import Dovecot, Postfix, make_certs
from mwharness import proc as hproc

PLUGINS = "/usr/lib/nagios/plugins"


def cycles_logged(daemon):
    return len(re.findall(r"^\[[^]]+\] info   : cycle \d+: ", daemon.log(), re.M))


def next_cycle(daemon, timeout=20):
    before = cycles_logged(daemon)
    daemon.signal(signal.SIGUSR1)
    lib.wait_for(lambda: cycles_logged(daemon) > before, timeout, "a cycle after SIGUSR1")


def control_file(d, body, cycle=3600):
    return lib.write_control(d, "set daemon %d\n%s" % (cycle, body))


def main_cf(text="myhostname = mx.example.test\n"):
    """A directory with a main.cf to watch, and a file's path in it."""
    d = lib.tmpdir()
    watched = os.path.join(d, "main.cf")
    with open(watched, "w") as f:
        f.write(text)
    return d, watched


def first_test(doc, name):
    return lib.service(doc, name)["tests"][0]


def kill_group(pid):
    """A crash of the whole server: SIGKILL to its process group (master and children)."""
    try:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    except ProcessLookupError:
        pass


# ---- process: real servers restarted by their start programs --------------------------------

def test_process_blocks_restart_killed_dovecot_and_postfix():
    base = lib.tmpdir("servers")
    certs = make_certs(os.path.join(base, "certs"))
    dc = Dovecot(base, certs=certs)
    pf = Postfix(base, dovecot=dc, certs=certs)
    lib.watch_log("dovecot.log", dc.log_path)
    lib.watch_log("postfix.log", pf.log_path)
    try:
        dc.start()
        pf.start()
        d = lib.tmpdir()
        # Debian's /etc/monit/conf-available/postfix process block, read from the installed
        # monit package, unchanged but for its paths (the private instance's pid file, start
        # and stop commands, and port) and its `depend` lines (the files it names are blocks
        # of their own in that file).
        master = os.path.join("/usr/lib/postfix/sbin", "master")
        pf_start = "setsid %s -c %s -d </dev/null >>%s 2>&1 &" % (master, pf.conf_dir, pf.log_path)
        pf_stop = "kill $(head -1 %s)" % pf.pid_file
        with open("/etc/monit/conf-available/postfix") as f:
            debian = f.read().split("\n\n")[0]
        block = "\n".join(line for line in debian.splitlines()
                          if not line.strip().startswith("depend"))
        for old, new in (("/var/spool/postfix/pid/master.pid", pf.pid_file),
                         ("/etc/init.d/postfix start", pf_start),
                         ("/etc/init.d/postfix stop", pf_stop),
                         ("port 25 ", "port %d " % pf.ports["smtp"])):
            lib.expect_in(old, block, "Debian's postfix block")
            block = block.replace(old, new)
        # A typical Dovecot block; a killed master leaves its pid file behind, which the start
        # program removes (Dovecot refuses to start while it names a live pid, even a zombie).
        dc_start = "rm -f %s; dovecot -c %s" % (dc.pid_file, dc.config_path)
        body = block + """

check process dovecot with pidfile {dc_pid}
   group mail
   start program = "{dc_start}" with timeout 30 seconds
   stop program = "dovecot -c {dc_conf} stop"
   if failed host 127.0.0.1 port {imap} type tcp protocol imap then restart
   if failed host 127.0.0.1 port {imaps} type tcpssl protocol imap then restart
   if 3 restarts within 5 cycles then timeout
""".format(dc_pid=dc.pid_file, dc_start=dc_start, dc_conf=dc.config_path,
           imap=dc.ports["imap"], imaps=dc.ports["imaps"])
        # mailwarden's own start is an `instance` event, mailed to who asks for it.
        alerts = ("set mailserver 127.0.0.1 port %d\n"
                  "set alert alice@example.test on { instance }\n" % pf.ports["smtp"])
        rc = control_file(d, "set ssl options { cacertificatefile: %s }\n%s%s"
                          % (certs["ca"]["cert"], alerts, body))
        r = lib.mw(rc, "-t")
        lib.expect_eq((r.rc, r.out.strip()), (0, "Control file syntax OK"), "-t of the blocks")
        with lib.Daemon(rc) as dm:
            dm.wait_log(r"cycle 1: 5 checks, 5 ok, 0 failed")
            old_dc, old_pf = dc.pid(), pf.pid()
            kill_group(old_dc)
            kill_group(old_pf)
            # Dovecot: the process check fails (does not exist) -> start; Postfix: the port test
            # must fail 2 times within 3 cycles first -> restart (stop, then start).
            next_cycle(dm)
            dm.wait_log(r"'dovecot': start program exited with status 0", timeout=30)
            lib.wait_for(lambda: dc.pid() not in (None, old_dc) and hproc.pid_alive(dc.pid()),
                         15, "a new Dovecot master")
            next_cycle(dm)
            dm.wait_log(r"'postfix': start program exited with status 0", timeout=30)
            lib.wait_for(lambda: pf.pid() not in (None, old_pf) and hproc.pid_alive(pf.pid()),
                         15, "a new Postfix master")
            # Wait for the banners, then a cycle in which every test passes again.
            for port in (pf.ports["smtp"], dc.ports["imap"]):
                hproc.wait_banner(port, "220" if port == pf.ports["smtp"] else "* OK", timeout=15)
            def every_test_ok():
                next_cycle(dm)
                doc = lib.status_json(rc)
                states = [t["status"] for n in ("postfix", "dovecot")
                          for t in lib.service(doc, n)["tests"]]
                return doc if states == ["ok"] * len(states) else None
            doc = lib.wait_for(every_test_ok, 30, "a cycle in which every test passes again")
            for name in ("postfix", "dovecot"):
                svc = lib.service(doc, name)
                lib.expect_eq([t["status"] for t in svc["tests"]], ["ok"] * len(svc["tests"]),
                              "%s tests after the restart" % name)
                lib.expect_eq(svc["monitored"], True, name + " monitoring")
            # The process check or a port test may see the crash first; a restart by the port
            # test removes the pid file before the process check reads it.
            # A port test may also see it first: a reset connection or a refused one.
            lib.expect_match(r"(nonexist: (process %d of pidfile %s is not running|pidfile %s does "
                             r"not exist)|'dovecot' imap\S* 127\.0\.0\.1:\d+: (protocol|tls|connect): )"
                             % (old_dc, re.escape(dc.pid_file), re.escape(dc.pid_file)),
                             dm.log(), "why Dovecot was started")
            mail = dc.wait_for_message("alice@example.test", "mailwarden started (pid %d)" % dm.pid,
                                       timeout=15)
            lib.expect_true(mail is not None, "the instance mail of mailwarden's start")
    finally:
        pf.stop()
        dc.stop()


def test_failing_start_program_is_an_exec_event():
    d = lib.tmpdir()
    rc = control_file(d, """
check process amavis with pidfile %s/amavisd.pid
  start program = "echo 'amavisd: cannot bind 127.0.0.1:10024'; exit 3"
""" % d)
    with lib.Daemon(rc) as dm:
        dm.wait_log(r"exec 'amavis' start program .*: amavisd: cannot bind 127\.0\.0\.1:10024")
        dm.wait_log(r"alert: 'amavis' start program exited with status 3$")
        lib.expect_in("'amavis' process pidfile %s/amavisd.pid failed: nonexist: pidfile %s/amavisd.pid "
                      "does not exist" % (d, d), dm.log(), "why it was started")


def test_restart_limit_stops_a_crash_loop():
    d = lib.tmpdir()
    pidfile = os.path.join(d, "crashy.pid")
    # A server that dies right after it starts.
    start = "setsid sh -c 'echo $$ > %s; exec sleep 0.2' </dev/null >/dev/null 2>&1 &" % pidfile
    rc = control_file(d, """
check process crashy with pidfile %s
  start program = "%s"
  if does not exist then restart
  if 3 restarts within 5 cycles then unmonitor
""" % (pidfile, start))
    with lib.Daemon(rc) as dm:
        dm.wait_log(r"cycle 1: ")
        for _ in range(5):
            time.sleep(0.3)  # the started process has died
            next_cycle(dm)
        dm.wait_log(r"'crashy' was started or restarted 3 times within 5 cycles")
        starts = re.findall(r"'crashy': start program exited with status 0", dm.log())
        lib.expect_eq(len(starts), 3, "start programs run before the limit")
        doc = lib.status_json(rc)
        lib.expect_eq(lib.service(doc, "crashy")["monitored"], False, "monitoring")
        r = lib.mw(rc, "summary")
        lib.expect_match(r"crashy\s+unmonitored", r.out, "summary line")


# ---- control verbs ------------------------------------------------------------------------

def test_unmonitor_and_monitor_survive_a_restart():
    d, watched = main_cf()
    rc = control_file(d, """
check file main_cf with path %s
  group postfix
  if changed checksum then alert
check system mx
  group host
""" % watched)
    with lib.Daemon(rc) as dm:
        dm.wait_log(r"cycle 1: 2 checks")
        r = lib.mw(rc, "unmonitor", "-g", "postfix")
        lib.expect_eq((r.rc, r.out.strip()), (0, "mailwarden: 'main_cf': unmonitored"),
                      "unmonitor -g postfix")
        sock = os.path.join(d, "mailwarden.sock")
        lib.expect_eq(oct(os.stat(sock).st_mode & 0o777), "0o600", "control socket mode")
        r = lib.mw(rc, "unmonitor", "nosuch")
        lib.expect_eq((r.rc, r.err.strip()), (1, "mailwarden: no service named 'nosuch'"),
                      "unmonitor of an unknown service")
        with open(watched, "a") as f:
            f.write("relayhost = [smtp.example.test]\n")
        next_cycle(dm)
        lib.expect_not_in("checksum changed", dm.log(), "events of an unmonitored service")
    # A new daemon reads the state file: still unmonitored.
    with lib.Daemon(rc) as dm:
        dm.wait_log(r"cycle \d+: 1 checks")
        doc = lib.status_json(rc)
        lib.expect_eq(lib.service(doc, "main_cf")["monitored"], False, "after restart")
        r = lib.mw(rc, "status")
        lib.expect_in("Service 'main_cf'", r.out, "status text")
        lib.expect_in("Service 'main_cf'  unmonitored", r.out, "status text")
        r = lib.mw(rc, "monitor", "all")
        lib.expect_eq(r.rc, 0, "monitor all")
        next_cycle(dm)
        # The state file is written off the daemon's loop, right after the cycle.
        lib.wait_for(lambda: lib.service(lib.status_json(rc), "main_cf")["monitored"], 10,
                     "main_cf monitored in the state file")


def test_mode_passive_alerts_but_never_starts():
    d = lib.tmpdir()
    rc = control_file(d, """
check process amavis with pidfile %s/amavisd.pid
  start program = "touch %s/started"
  mode passive
""" % (d, d))
    with lib.Daemon(rc) as dm:
        dm.wait_log(r"'amavis': start not run: mode passive")
        lib.expect_in("alert: 'amavis' process pidfile %s/amavisd.pid failed" % d, dm.log(),
                      "the failure is alerted")
        lib.expect_eq(os.path.exists(os.path.join(d, "started")), False, "start program run")
        # The verb still starts it.
        r = lib.mw(rc, "start", "amavis")
        lib.expect_eq(r.rc, 0, "start amavis")
        lib.wait_for(lambda: os.path.exists(os.path.join(d, "started")), 10, "the start program")


def test_mode_manual_is_not_monitored_until_told():
    d, watched = main_cf()
    rc = control_file(d, """
check file standby_cf with path %s
  mode manual
check system mx
""" % watched)
    with lib.Daemon(rc) as dm:
        dm.wait_log(r"cycle 1: 1 checks")
        doc = lib.status_json(rc)
        lib.expect_eq(lib.service(doc, "standby_cf")["monitored"], False, "manual, at start")
        r = lib.mw(rc, "monitor", "standby_cf")
        lib.expect_eq(r.rc, 0, "monitor standby_cf")
        next_cycle(dm)
        dm.wait_log(r"cycle \d+: 2 checks")
    # The state file keeps it monitored across a restart of the daemon.
    with lib.Daemon(rc) as dm:
        dm.wait_log(r"cycle \d+: 2 checks")


def reboot_state(rc, d, onreboot):
    """A daemon run that unmonitors the service, then its state file as if written before the
    host last booted."""
    with lib.Daemon(rc) as dm:
        dm.wait_log(r"cycle 1: ")
        lib.expect_eq(lib.mw(rc, "unmonitor", "cf").rc, 0, "unmonitor cf")
    state = os.path.join(d, "state.json")
    with open(state) as f:
        doc = json.load(f)
    lib.expect_eq(len(doc.get("boot_id", "")), 36, "the boot id in the state file")
    doc["boot_id"] = "00000000-0000-0000-0000-000000000000"
    with open(state, "w") as f:
        json.dump(doc, f)


def test_onreboot_decides_monitoring_after_a_reboot():
    for onreboot, monitored in (("start", True), ("nostart", False), ("laststate", False)):
        d, watched = main_cf()
        rc = control_file(d, """
check file cf with path %s
  onreboot %s
""" % (watched, onreboot))
        reboot_state(rc, d, onreboot)
        with lib.Daemon(rc) as dm:
            dm.wait_log(r"the host has rebooted since the state file was written")
            doc = lib.status_json(rc)
            lib.expect_eq(lib.service(doc, "cf")["monitored"], monitored,
                          "onreboot %s: monitored after a reboot" % onreboot)
    # Without a reboot the last state stands, whatever onreboot says.
    d, watched = main_cf()
    rc = control_file(d, """
set onreboot nostart
check file cf with path %s
""" % watched)
    with lib.Daemon(rc) as dm:
        dm.wait_log(r"cycle 1: ")
    with lib.Daemon(rc) as dm:
        dm.wait_log(r"cycle \d+: 1 checks")
        lib.expect_not_in("rebooted", dm.log(), "daemon log")
        lib.expect_eq(lib.service(lib.status_json(rc), "cf")["monitored"], True, "no reboot")


# ---- program, filesystem, file, system ----------------------------------------------------

def test_program_runs_a_monitoring_plugin():
    d = lib.tmpdir()
    rc = control_file(d, """
check program disk with path "%s/check_disk -w 1%% -c 1%% -p %s" with timeout 20 seconds
  if status != 0 then alert
check program disk_strict with path "%s/check_disk -w 100%% -c 100%% -p %s"
  if status > 1 then alert
""" % (PLUGINS, d, PLUGINS, d))
    doc = lib.validate_json(rc)
    ok = first_test(doc, "disk")
    lib.expect_eq((ok["status"], ok["metrics"]["status"]), ("ok", 0), "check_disk with loose limits")
    lib.expect_match(r"^DISK OK", ok["output"], "plugin output kept")
    strict = first_test(doc, "disk_strict")
    lib.expect_eq((strict["status"], strict["class"]), ("failed", "status"), "check_disk critical")
    lib.expect_eq(strict["message"], "status is 2 (rule: status > 1)", "message")
    lib.expect_match(r"^DISK CRITICAL", strict["output"], "plugin output")


def test_filesystem_on_a_small_tmpfs_filled_past_its_limit():
    d = lib.tmpdir()
    mnt = os.path.join(d, "spool")
    os.mkdir(mnt)
    lib.run(["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=64", "tmpfs", mnt])
    try:
        rc = control_file(d, """
check filesystem spool with path %s
  if space usage > 50%% then alert
  if inode usage > 90%% then alert
""" % mnt)
        t = first_test(lib.validate_json(rc), "spool")
        lib.expect_eq(t["status"], "ok", "empty tmpfs")
        with open(os.path.join(mnt, "queue"), "wb") as f:
            f.write(b"x" * (700 * 1024))
        t = first_test(lib.validate_json(rc, expect_rc=1), "spool")
        lib.expect_eq((t["status"], t["class"]), ("failed", "resource"), "filled tmpfs")
        lib.expect_match(r"^space usage is 6\d\.\d% \(rule: space usage > 50%\)$", t["message"],
                         "message")
        lib.expect_eq(t["fsflags"], "rw", "mount flags")
    finally:
        lib.run(["umount", mnt])
    t = first_test(lib.validate_json(rc, expect_rc=0), "spool")
    lib.expect_eq(t["status"], "ok", "path of an unmounted filesystem is a plain directory again")


def test_file_checksum_and_permission_changes():
    d = lib.tmpdir()
    path = os.path.join(d, "postdrop")
    with open(path, "wb") as f:
        f.write(b"\x7fELF binary v1")
    os.chmod(path, 0o2555)
    rc = control_file(d, """
check file postdrop_bin with path %s
  if failed checksum then alert
  if failed permission 2555 then alert
  if failed uid root then alert
""" % path)
    with lib.Daemon(rc) as dm:
        dm.wait_log(r"cycle 1: 1 checks, 1 ok")
        os.chmod(path, 0o4755)
        with open(path, "ab") as f:
            f.write(b" tampered")
        next_cycle(dm)
        dm.wait_log(r"alert: 'postdrop_bin' file %s failed: mode is 4755 \(rule: failed permission 2555\)"
                    % re.escape(path))
        dm.wait_log(r"alert: 'postdrop_bin' file %s failed: checksum changed to [0-9a-f]{64}"
                    % re.escape(path))
        t = first_test(lib.status_json(rc), "postdrop_bin")
        lib.expect_eq((t["status"], t["class"]), ("failed", "checksum"), "status of the file")


def test_system_under_a_bounded_cpu_load():
    d = lib.tmpdir()
    rc = control_file(d, """
check system mx
  if cpu usage > 90% then alert
  if memory usage > 100% then alert
""")
    with lib.Daemon(rc) as dm:
        dm.wait_log(r"cycle 1: 1 checks")
        # Every core busy for about 1.5 s: the loops are killed right after the cycle (and by
        # the runner's cleanup if the test fails first).
        ncpu = os.cpu_count() or 1
        burners = [lib.track("cpu burner", subprocess.Popen(
            ["sh", "-c", "while :; do :; done"], start_new_session=True)) for _ in range(ncpu)]
        try:
            time.sleep(1.5)
            next_cycle(dm)
        finally:
            for b in burners:
                os.killpg(b.pid, signal.SIGKILL)
                b.wait()
        dm.wait_log(r"alert: 'mx' system failed: cpu usage is \d+(\.\d)?% \(rule: cpu usage > 90%\)")
