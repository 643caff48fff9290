"""The daemon: cycles, status/summary, signals, reload, exec actions, state across kill -9,
daemonizing, the pid file, control-file checks and concurrency -- against a real Dovecot and
scripted tarpits (mw-peer).

Tests that need exact cycle counts use `set daemon 3600` and drive cycles with SIGUSR1 (the
first cycle runs at start), so they do not depend on timing; `set daemon 1` is used where the
timer itself is under test.
"""

import json
import os
import re
import signal
import subprocess
import time

import lib
from mwharness import Dovecot
from mwharness import proc as hproc

S = {}


def setup_module():
    lib.start_module_dovecot(S, "daemon")


def teardown_module():
    lib.stop_module_servers(S)


ALICE = 'username "alice@example.test" password "alicepw"'


def setup(body, cycle=1, extra="", d=None):
    """(directory, control file) with `set daemon CYCLE`, the test CA, and `body`."""
    d = d or lib.tmpdir()
    text = "set daemon %d\n%sset ssl options { cacertificatefile: %s }\n%s" % (
        cycle, extra, S["ca"], body)
    return d, lib.write_control(d, text)


def imap_service(name, port=None, rule="protocol imap", then="alert"):
    port = port or S["dc"].ports["imap"]
    return "check host %s with address 127.0.0.1\n  if failed port %d %s then %s\n" % (name, port, rule, then)


def cycles_logged(daemon):
    return len(re.findall(r"^\[[^]]+\] info   : cycle \d+: ", daemon.log(), re.M))


def next_cycle(daemon, timeout=10):
    """SIGUSR1, then wait until that cycle is logged as finished."""
    before = cycles_logged(daemon)
    daemon.signal(signal.SIGUSR1)
    lib.wait_for(lambda: cycles_logged(daemon) > before, timeout, "a cycle after SIGUSR1")


def state_tests(control):
    """{service: first test} of `status --json`."""
    return {s["name"]: s["tests"][0] for s in lib.status_json(control)["services"]}


def exec_script(d):
    """A command that dumps the MAILWARDEN_*/MONIT_* environment to d/exec-EVENT-N.env."""
    path = os.path.join(d, "dump-env.sh")
    with open(path, "w") as f:
        f.write('#!/bin/sh\nf=$(mktemp "%s/exec-$MAILWARDEN_EVENT-XXXXXX")\n'
                "env | grep -E '^(MAILWARDEN|MONIT)_' | sort > \"$f.tmp\" && mv \"$f.tmp\" \"$f.env\"\n"
                'rm -f "$f"\n' % d)
    os.chmod(path, 0o755)
    return path


def exec_runs(d, event):
    """The environments ({name: value}) of the exec runs for `event`, oldest first."""
    files = sorted((os.path.getmtime(os.path.join(d, n)), n) for n in os.listdir(d)
                   if n.startswith("exec-%s-" % event) and n.endswith(".env"))
    runs = []
    for _, n in files:
        with open(os.path.join(d, n)) as f:
            runs.append(dict(l.rstrip("\n").split("=", 1) for l in f if "=" in l))
    return runs


# ---- cycles, status, summary, signals ------------------------------------------------------

def test_foreground_cycles_status_and_summary():
    p = S["dc"].ports
    d, rc = setup(imap_service("imap-plain") +
                  imap_service("imaps-login", p["imaps"], "protocol imaps " + ALICE))
    with lib.Daemon(rc, verbose=True) as dm:
        dm.wait_log(r"started \(pid %d\): 2 services, 2 checks, cycle 1 s" % dm.pid)
        lib.wait_for(lambda: lib.status_json(rc)["daemon"]["cycles"] >= 3, 10, "3 cycles of 1 s")
        st = lib.status_json(rc)
        lib.expect_eq((st["daemon"]["running"], st["daemon"]["pid"]), (True, dm.pid), "daemon entry")
        lib.expect_eq([s["name"] for s in st["services"]], ["imap-plain", "imaps-login"], "services")
        for s in st["services"]:
            lib.expect_eq(s["status"], "ok", "status of %s" % s["name"])
            t = s["tests"][0]
            lib.expect_eq((t["state"], t["status"], t["class"], t["message"], t["attempts"]),
                          ("ok", "ok", "none", "", 1), "test of %s" % s["name"])
            lib.expect_true(t["runs"] >= 2, "runs counted", t)
            lib.expect_match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", t["checked_at"], "checked_at")
        t = st["services"][1]["tests"][0]
        lib.expect_eq(t["name"], "imaps 127.0.0.1:%d as alice@example.test" % p["imaps"], "test name")
        lib.expect_eq(t["certificate"]["not_after"], S["certs"]["good"]["not_after"], "certificate")

        r = lib.mw(rc, "summary")
        lib.expect_eq(r.rc, 0, "exit status of summary")
        lib.expect_match(r"^mailwarden \S+ daemon running \(pid %d\), state written .*, \d+ cycles$"
                         % dm.pid, r.out, "summary header")
        lib.expect_match(r"^imap-plain +ok +1/0$", r.out, "summary line of imap-plain")
        lib.expect_match(r"^imaps-login +ok +1/0$", r.out, "summary line of imaps-login")
        r = lib.mw(rc, "status")
        lib.expect_match(r"^Service 'imaps-login'  ok$", r.out, "status (text)")
        lib.expect_match(r"^    last result    ok$", r.out, "status (text)")

        lib.expect_eq(dm.stop(), 0, "exit status after SIGTERM")
    log = dm.log()
    lib.expect_in("mailwarden stopped", log, "daemon output")
    lib.expect_match(r"C: mw\d+ AUTHENTICATE PLAIN <alice@example.test>$", log, "-v shows the login")
    lib.expect_not_in("alicepw", log, "the daemon's -v output")
    lib.expect_true(not os.path.exists(os.path.join(d, "mailwarden.pid")), "pid file removed at exit")
    st = lib.status_json(rc)
    lib.expect_eq(st["daemon"]["running"], False, "status after stop: daemon not running")
    lib.expect_eq(st["services"][0]["tests"][0]["status"], "ok", "status after stop keeps results")


def test_sigusr1_runs_a_cycle_now():
    d, rc = setup(imap_service("imap"), cycle=3600)
    with lib.Daemon(rc) as dm:
        lib.wait_for(lambda: cycles_logged(dm) == 1, 10, "the first cycle at start")
        time.sleep(0.3)
        lib.expect_eq(cycles_logged(dm), 1, "cycles before SIGUSR1 (cycle 3600 s)")
        t0 = time.monotonic()
        next_cycle(dm)
        lib.expect_true(time.monotonic() - t0 < 3, "SIGUSR1 cycle ran at once")
        lib.expect_in("SIGUSR1: starting a cycle now", dm.log(), "daemon output")
        lib.wait_for(lambda: lib.status_json(rc)["daemon"]["cycles"] == 2, 5, "state file: 2 cycles")
        lib.expect_eq(state_tests(rc)["imap"]["runs"], 2, "runs after SIGUSR1")
        dm.signal(signal.SIGINT)
        lib.wait_for(lambda: not dm.alive(), 5, "the daemon to stop on SIGINT")
        lib.expect_eq(dm.popen.returncode, 0, "exit status after SIGINT")
        lib.expect_in("signal 2: stopping", dm.log(), "daemon output")
        lib.expect_true(not os.path.exists(os.path.join(d, "mailwarden.pid")), "pid file removed")


BROKEN_SERVICE = "check host second with address 127.0.0.1\n  if failed port 143 protocl imap then alert\n"


def test_sighup_broken_file_refused_then_valid_file_adds_service():
    d, rc = setup(imap_service("first"))
    good_text = open(rc).read()
    view = lib.write_control(d, good_text, name="view.rc", defaults=False)   # same state file
    with lib.Daemon(rc) as dm:
        lib.wait_for(lambda: "first" in state_tests(view), 10, "service 'first' in the state")
        with open(rc, "a") as f:
            f.write(BROKEN_SERVICE)
        dm.signal(signal.SIGHUP)
        dm.wait_log(r"reload refused: 1 error\(s\) in the control file; the running configuration stays in effect")
        lib.expect_match(r"error  : %s:\d+:\d+: unknown port test clause 'protocl'" % re.escape(rc), dm.log(),
                         "the error is logged with FILE:LINE:COL")
        cycles = lib.status_json(view)["daemon"]["cycles"]
        lib.wait_for(lambda: lib.status_json(view)["daemon"]["cycles"] >= cycles + 2, 10,
                     "cycles go on after the refused reload")
        lib.expect_true(dm.alive(), "daemon still running after a refused reload")
        lib.expect_eq(sorted(state_tests(view)), ["first"], "services after the refused reload")

        lib.write_control(d, good_text + imap_service("second", S["dc"].ports["imaps"], "protocol imaps"),
                          defaults=False)
        dm.signal(signal.SIGHUP)
        dm.wait_log(r"reloaded: 2 services, 2 checks")
        tests = lib.wait_for(lambda: (lambda t: t if "second" in t and t["second"].get("status") == "ok"
                                      else None)(state_tests(rc)), 10, "service 'second' checked")
        lib.expect_eq(tests["first"]["state"], "ok", "state of 'first' after the reload")
        lib.expect_eq(dm.stop(), 0, "exit status after SIGTERM")


def test_status_and_quit_work_while_control_file_is_broken():
    """After a refused reload the operator still has to see and stop the running daemon with
    the same -c FILE: status/summary/quit only need the state and pid file settings."""
    d, rc = setup(imap_service("first"))
    with lib.Daemon(rc) as dm:
        lib.wait_for(lambda: "first" in state_tests(rc), 10, "service 'first' in the state")
        with open(rc, "a") as f:
            f.write(BROKEN_SERVICE)
        dm.signal(signal.SIGHUP)
        dm.wait_log(r"reload refused")
        r = lib.mw(rc, "status", "--json")
        lib.expect_eq(r.rc, 0, "exit status of status --json with the broken control file")
        lib.expect_eq([s["name"] for s in json.loads(r.out)["services"]], ["first"], "services shown")
        r = lib.mw(rc, "quit")
        lib.expect_eq((r.rc, r.out), (0, "mailwarden: stop requested (pid %d)\n" % dm.pid),
                      "quit with the broken control file")
        lib.wait_for(lambda: not dm.alive(), 10, "the daemon to stop")


# ---- exec actions ---------------------------------------------------------------------------

def test_exec_after_two_failed_cycles_and_once_on_recovery():
    dc = Dovecot(S["base"], name="dovecot-exec", certs=S["certs"])
    S["extra"].append(dc)
    lib.watch_log("dovecot-exec.log", dc.log_path)
    dc.start()
    d = lib.tmpdir()
    script = exec_script(d)
    port = dc.ports["imap"]
    _, rc = setup(imap_service("watched", port, "protocol imap for 2 cycles",
                               'exec "%s" else if succeeded then exec "%s"' % (script, script)), cycle=3600)
    with lib.Daemon(rc) as dm:
        lib.wait_for(lambda: cycles_logged(dm) == 1, 10, "first cycle")
        lib.expect_eq(state_tests(rc)["watched"]["state"], "ok", "state while Dovecot runs")
        dc.stop()
        next_cycle(dm)                                   # 1st failure: no exec yet
        time.sleep(0.3)
        lib.expect_eq(exec_runs(d, "failed"), [], "exec runs after 1 failed cycle")
        next_cycle(dm)                                   # 2nd failure: exec
        runs = lib.wait_for(lambda: exec_runs(d, "failed"), 5, "the exec after 2 failed cycles")
        next_cycle(dm)                                   # 3rd failure: nothing new
        next_cycle(dm)
        time.sleep(0.3)
        runs = exec_runs(d, "failed")
        lib.expect_eq(len(runs), 1, "exec runs for the failure (state change only)")
        desc = ("imap 127.0.0.1:%d failed: connect: cannot connect to 127.0.0.1:%d: Connection refused"
                % (port, port))
        env = runs[0]
        for prefix in ("MAILWARDEN_", "MONIT_"):
            lib.expect_eq({k: env.get(prefix + k) for k in ("SERVICE", "EVENT", "DESCRIPTION", "HOST", "ACTION")},
                          {"SERVICE": "watched", "EVENT": "failed", "DESCRIPTION": desc,
                           "HOST": os.uname().nodename, "ACTION": "exec"}, prefix + "* environment")
            lib.expect_true(env.get(prefix + "DATE"), prefix + "DATE is set", env)
        lib.expect_eq(env["MONIT_DATE"], env["MAILWARDEN_DATE"], "MONIT_DATE == MAILWARDEN_DATE")

        dc.start()
        next_cycle(dm)                                   # recovered: exec once
        lib.wait_for(lambda: exec_runs(d, "succeeded"), 5, "the exec on recovery")
        next_cycle(dm)
        next_cycle(dm)
        time.sleep(0.3)
        ok_runs = exec_runs(d, "succeeded")
        lib.expect_eq(len(ok_runs), 1, "exec runs for the recovery")
        lib.expect_eq(len(exec_runs(d, "failed")), 1, "exec runs for the failure, in the end")
        env = ok_runs[0]
        lib.expect_eq({k: env.get(k) for k in ("MAILWARDEN_SERVICE", "MAILWARDEN_EVENT",
                                               "MAILWARDEN_DESCRIPTION", "MONIT_EVENT")},
                      {"MAILWARDEN_SERVICE": "watched", "MAILWARDEN_EVENT": "succeeded",
                       "MAILWARDEN_DESCRIPTION": "imap 127.0.0.1:%d succeeded" % port,
                       "MONIT_EVENT": "succeeded"}, "environment of the recovery exec")
        lib.expect_eq(dm.stop(), 0, "exit status after SIGTERM")


# ---- state across kill -9 --------------------------------------------------------------------

def test_state_survives_kill9_and_counting_continues():
    d = lib.tmpdir()
    script = exec_script(d)
    port = lib.free_port()                               # nothing listens there
    _, rc = setup(imap_service("gone", port, "protocol imap for 3 cycles", 'exec "%s"' % script),
                  cycle=3600, d=d)
    dm = lib.Daemon(rc).start()
    lib.wait_for(lambda: cycles_logged(dm) == 1, 10, "first cycle")
    next_cycle(dm)
    lib.wait_for(lambda: state_tests(rc)["gone"]["runs"] == 2, 5, "2 runs in the state file")
    dm.kill9()
    state = lib.read_json_file(os.path.join(d, "state.json"))     # valid JSON after kill -9
    lib.expect_eq(state["cycles"], 2, "cycles in the state file")
    lib.expect_eq(exec_runs(d, "failed"), [], "no exec after 2 of 3 failed cycles")
    st = lib.status_json(rc)
    lib.expect_eq(st["daemon"]["running"], False, "status after kill -9: not running")
    t = st["services"][0]["tests"][0]
    lib.expect_eq((t["runs"], t["status"], t["class"], t["message"]),
                  (2, "failed", "connect", "cannot connect to 127.0.0.1:%d: Connection refused" % port),
                  "status after kill -9 shows the old results")

    dm2 = lib.Daemon(rc).start()                         # the stale pid file must not stop it
    lib.wait_for(lambda: exec_runs(d, "failed"), 10, "the exec at the 3rd failed cycle (counting went on)")
    lib.wait_for(lambda: state_tests(rc)["gone"]["runs"] == 3, 5, "3 runs in the state file")
    t = state_tests(rc)["gone"]
    lib.expect_eq(t["state"], "failed", "rule state after 3 failed cycles")
    lib.expect_eq(lib.status_json(rc)["daemon"]["cycles"], 3, "cycle count continued")
    lib.expect_eq(dm2.stop(), 0, "exit status after SIGTERM")


def test_state_file_valid_json_after_kill9_mid_run():
    port = lib.free_port()
    body = "".join(imap_service("svc%02d" % i, port) for i in range(20))
    d, rc = setup(body, cycle=1)
    state_path = os.path.join(d, "state.json")
    for round_ in range(5):
        dm = lib.Daemon(rc).start()
        lib.wait_for(lambda: cycles_logged(dm) >= 1, 10, "a cycle")
        for _ in range(10 + 7 * round_):                   # cycles and state writes in flight
            dm.signal(signal.SIGUSR1)
            time.sleep(0.01)
        dm.kill9()
        try:
            state = lib.read_json_file(state_path)
        except ValueError as e:
            raise lib.TestFailure("state file is not valid JSON after kill -9 (round %d): %s" % (round_, e))
        lib.expect_eq(len(state["services"]), 20, "services in the state file (round %d)" % round_)
        lib.expect_eq(lib.mw(rc, "status", "--json").rc, 0, "status reads the state (round %d)" % round_)


# ---- daemonizing and the pid file ------------------------------------------------------------

def test_daemonized_writes_pid_file_and_quit_stops_it():
    d = lib.tmpdir()
    log = os.path.join(d, "mailwarden.log")
    _, rc = setup(imap_service("imap"), extra="set logfile %s\n" % log, d=d)
    pid_file = os.path.join(os.path.dirname(rc), "mailwarden.pid")
    lib.track_pid_file(pid_file)
    lib.watch_log("mailwarden.log", log)
    r = lib.mw(rc, timeout=10)
    lib.expect_eq((r.rc, r.out, r.err), (0, "", ""), "mailwarden without -I: exit, stdout, stderr")
    pid = lib.wait_for(lambda: hproc.read_pid(pid_file), 5, "the pid file")
    lib.expect_true(hproc.pid_alive(pid) and "mailwarden" in hproc.cmdline(pid), "pid file names a live mailwarden")
    lib.wait_for(lambda: lib.status_json(rc)["daemon"]["cycles"] >= 1, 10, "a cycle of the background daemon")
    st = lib.status_json(rc)
    lib.expect_eq((st["daemon"]["running"], st["daemon"]["pid"]), (True, pid), "status of the background daemon")
    r = lib.mw(rc, "reload")
    lib.expect_eq((r.rc, r.out), (0, "mailwarden: reload requested (pid %d)\n" % pid), "reload")
    lib.wait_for(lambda: "reloaded: 1 services, 1 checks" in open(log).read(), 5, "the reload in the log file")
    r = lib.mw(rc, "quit")
    lib.expect_eq((r.rc, r.out), (0, "mailwarden: stop requested (pid %d)\n" % pid), "quit")
    lib.wait_for(lambda: not hproc.pid_alive(pid), 10, "the daemon to exit after quit")
    lib.expect_true(not os.path.exists(pid_file), "pid file removed after quit")
    lib.expect_in("mailwarden stopped", open(log).read(), "log file")
    r = lib.mw(rc, "quit")
    lib.expect_eq((r.rc, r.err), (1, "mailwarden: no daemon is running (pid file %s)\n" % pid_file),
                  "quit without a daemon")


def test_second_daemon_on_same_pid_file_refused():
    d, rc = setup(imap_service("imap"))
    pid_file = os.path.join(d, "mailwarden.pid")
    with lib.Daemon(rc) as dm:
        lib.wait_for(lambda: hproc.read_pid(pid_file) == dm.pid, 5, "the first daemon's pid file")
        want = "mailwarden: already running with pid %d (pid file %s)\n" % (dm.pid, pid_file)
        for args in (["-I"], []):
            r = lib.mw(rc, *args, timeout=10)
            lib.expect_eq((r.rc, r.err), (1, want), "second daemon %s" % " ".join(args or ["(background)"]))
        lib.expect_eq(hproc.read_pid(pid_file), dm.pid, "pid file still names the first daemon")
        lib.expect_true(dm.alive(), "first daemon still running")
        lib.expect_eq(dm.stop(), 0, "exit status after SIGTERM")


def test_stale_pid_file_naming_another_process():
    """A pid file left behind (kill -9, reboot) may name a process that is not mailwarden:
    quit must not signal it, and a new daemon must start."""
    d, rc = setup(imap_service("imap"))
    pid_file = os.path.join(d, "mailwarden.pid")
    other = lib.track("sleep", subprocess.Popen(["sleep", "60"], start_new_session=True))
    with open(pid_file, "w") as f:
        f.write("%d\n" % other.pid)
    r = lib.mw(rc, "quit")
    time.sleep(0.2)
    lib.expect_true(other.poll() is None, "`mailwarden quit` must not kill pid %d (sleep), "
                    "which the stale pid file names; it exited with %s" % (other.pid, other.returncode))
    lib.expect_eq((r.rc, r.err), (1, "mailwarden: no daemon is running (pid file %s)\n" % pid_file),
                  "quit with a stale pid file")
    with lib.Daemon(rc) as dm:
        dm.wait_log(r"started \(pid %d\)" % dm.pid, timeout=5)
        lib.expect_eq(dm.stop(), 0, "exit status after SIGTERM")
    other.terminate()
    other.wait(timeout=10)


def test_status_without_daemon_or_state_file():
    d, rc = setup(imap_service("imap"))
    for cmd in (["status"], ["status", "--json"], ["summary"]):
        r = lib.mw(rc, *cmd)
        lib.expect_eq((r.rc, r.out, r.err), (1, "", (
            "mailwarden: no daemon is running and no state file exists yet (%s); "
            "start it with: mailwarden -c FILE\n" % os.path.join(d, "state.json"))), " ".join(cmd))


# ---- control-file checks ---------------------------------------------------------------------

def test_password_file_mode_0644_refused():
    d = lib.tmpdir()
    body = imap_service("login", S["dc"].ports["imaps"], "protocol imaps " + ALICE)
    for mode in (0o644, 0o640):
        rc = lib.write_control(d, "set daemon 1\n" + body, mode=mode)
        want = ("contains a password but is accessible by group or others (mode %04o); "
                "run: chmod 600 %s" % (mode, rc))
        for args in (["-t"], ["validate"], ["-I"]):
            r = lib.mw(rc, *args, timeout=10)
            lib.expect_eq(r.rc, 2, "exit status of %s at mode %04o" % (args[0], mode))
            lib.expect_eq(r.out, "", "stdout of %s at mode %04o" % (args[0], mode))
            lib.expect_in(want, r.err, "stderr of %s at mode %04o" % (args[0], mode))
    lib.expect_true(not os.path.exists(os.path.join(d, "mailwarden.pid")), "no daemon started")
    rc = lib.write_control(d, "set daemon 1\n" + body, mode=0o600)
    r = lib.mw(rc, "-t")
    lib.expect_eq((r.rc, r.out, r.err), (0, "Control file syntax OK\n", ""), "-t at mode 0600")


def test_password_mode_error_is_file_line_col():
    """Contract: -t prints errors as FILE:LINE:COL: message (here the line of the password)."""
    d = lib.tmpdir()
    rc = lib.write_control(d, imap_service("login", S["dc"].ports["imaps"], "protocol imaps " + ALICE),
                           mode=0o644)
    r = lib.mw(rc, "-t")
    lib.expect_eq(r.rc, 2, "exit status")
    lib.expect_match(r"^%s:[1-9]\d*:[1-9]\d*: contains a password but is accessible by group or others "
                     r"\(mode 0644\); run: chmod 600 %s$" % (re.escape(rc), re.escape(rc)), r.err,
                     "stderr is FILE:LINE:COL: message")


def test_syntax_check_ok_and_errors_with_file_line_col():
    d = lib.tmpdir()
    rc = lib.write_control(d, "set daemon 30\n" + imap_service("imap"), name="good.rc")
    r = lib.mw(rc, "-t")
    lib.expect_eq((r.rc, r.out, r.err), (0, "Control file syntax OK\n", ""), "-t on a good file")
    bad = lib.write_control(d, "set daemon 30\n"                                         # line 3
                            "check host a with address 127.0.0.1\n"                     # line 4
                            "  if failed port 143 protocol imapx then alert\n"          # line 5
                            "  if failed port 99999 protocol imap then alert\n"         # line 6
                            "check host b with address 127.0.0.1\n"                     # line 7
                            "  if failed port 143 protocol imap tiemout 5 seconds then alert\n",
                            name="bad.rc")
    r = lib.mw(bad, "-t")
    lib.expect_eq(r.rc, 2, "exit status of -t on a broken file")
    lib.expect_eq(r.out, "", "stdout of -t on a broken file")
    lines = r.err.splitlines()
    # The list of known protocols is the whole registry (mail protocols first, then the ones monit
    # knows); imapx is as close to imap as to imaps, so no single name is suggested.
    lib.expect_match(r"^%s:5:31: unknown protocol 'imapx' \(known: imap, imaps, pop, pops, smtp, smtps, "
                     r"submission, lmtp, sieve, tcp, .*, http, https, ssh, .*\)$" % re.escape(bad),
                     lines[0] if lines else "", "the unknown protocol")
    lib.expect_eq(lines[1:], [
        "%s:6:18: a port number must be between 1 and 65535, got 99999" % bad,
        "%s:8:36: unknown port test clause 'tiemout'; did you mean 'timeout'?" % bad,
    ], "diagnostics")


# ---- concurrency -----------------------------------------------------------------------------

def test_twenty_tarpits_finish_within_one_timeout():
    with lib.Peer([lib.peer_script("imap-silence.peer")]) as peer:
        port = peer.ports[0]
        body = "".join("check host tarpit%02d with address 127.0.0.1\n"
                       "  if failed port %d protocol imap with timeout 2 seconds then alert\n" % (i, port)
                       for i in range(20))
        rc = lib.write_control(lib.tmpdir(), body)
        t0 = time.monotonic()
        doc = lib.validate_json(rc, expect_rc=1)
        elapsed = time.monotonic() - t0
        lib.expect_eq(len(doc["services"]), 20, "services")
        for s in doc["services"]:
            lib.expect_result(s["tests"][0], "failed", "timeout",
                              "no reply from 127.0.0.1:%d within 2 s" % port, s["name"])
        lib.expect_true(2.0 <= elapsed < 6.0, "20 tarpits with timeout 2 s took %.2f s (want 2..6 s)" % elapsed)
        lib.note("20 tarpits, timeout 2 s: validate took %.2f s" % elapsed)


def test_running_check_is_not_started_twice():
    with lib.Peer([lib.peer_script("imap-silence.peer")]) as peer:
        port = peer.ports[0]
        d, rc = setup("check host tarpit with address 127.0.0.1\n"
                      "  if failed port %d protocol imap with timeout 5 seconds then alert\n" % port)
        with lib.Daemon(rc, verbose=True) as dm:
            connected = r"'tarpit' imap 127\.0\.0\.1:%d \*: connected to 127\.0\.0\.1:%d" % (port, port)
            dm.wait_log(connected)
            dm.wait_log(r"'tarpit' imap 127\.0\.0\.1:%d: still running from an earlier cycle, "
                             r"not started again" % port, timeout=10, count=3)
            lib.expect_eq(len(re.findall(connected, dm.log())), 1, "connections while the first run hangs")
            dm.wait_log(r"'tarpit' imap 127\.0\.0\.1:%d: timeout: no reply from 127\.0\.0\.1:%d "
                             r"within 5 s" % (port, port), timeout=10)
            dm.wait_log(connected, timeout=5, count=2)     # the next cycle starts it again
            lib.expect_eq(dm.stop(), 0, "exit status after SIGTERM")
