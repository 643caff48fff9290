"""Running as a service: the daemon refuses root when nothing needs it, drops to `set user`,
reopens its log file on SIGUSR2 (logrotate) and on SIGHUP, and logs to stderr with one clear
line when there is no syslog daemon. No servers needed: the checks connect to a closed port.
"""

import os
import pwd
import signal
import stat
import subprocess

import lib

CLOSED = None


def setup_module():
    global CLOSED
    CLOSED = lib.free_port()


def body(extra=""):
    return extra + ("set daemon 3600\n"
                    "check host closed with address 127.0.0.1\n"
                    "  if failed port %d then alert\n" % CLOSED)


def test_root_without_need_is_refused():
    d = lib.tmpdir("refuse")
    rc = lib.write_control(d, body())
    env = {k: v for k, v in os.environ.items() if k != "MAILWARDEN_ALLOW_ROOT"}
    r = subprocess.run([lib.MAILWARDEN, "-c", rc, "-I"], env=env, capture_output=True, text=True,
                       timeout=30)
    lib.expect_eq((r.returncode, r.stdout, r.stderr), (
        1, "",
        "mailwarden: refusing to run as root: nothing in the control file needs it. Add 'set user "
        "mailwarden' (any unprivileged user) to drop to it after start-up, start mailwarden as "
        "that user, or set MAILWARDEN_ALLOW_ROOT=1 to run as root anyway\n"),
        "exit, stdout and stderr of mailwarden -I as root")
    lib.expect_true(not os.path.exists(os.path.join(d, "mailwarden.pid")), "no pid file was written")


def test_set_user_drops_before_writing_files():
    d = lib.tmpdir("dropped")
    os.chmod(d, 0o777)  # nobody writes its log, pid and state files here
    log = os.path.join(d, "mailwarden.log")
    rc = lib.write_control(d, body("set user nobody\nset log %s\n" % log))
    env = {k: v for k, v in os.environ.items() if k != "MAILWARDEN_ALLOW_ROOT"}
    p = lib.track("mailwarden as nobody", subprocess.Popen(
        [lib.MAILWARDEN, "-c", rc, "-I"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE))
    lib.watch_log("daemon log", log)
    lib.wait_for(lambda: os.path.exists(os.path.join(d, "state.json")), 20, "the state file")
    with open("/proc/%d/status" % p.pid) as f:
        uids = [line.split()[1:] for line in f if line.startswith(("Uid:", "Gid:"))]
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=20)
    lib.expect_eq((p.returncode, err.decode()), (0, ""), "exit and stderr")
    lib.expect_eq(uids, [["65534"] * 4, ["65534"] * 4], "real, effective, saved and fs uid and gid")
    with open(log) as f:
        text = f.read()
    lib.expect_in("info   : running as nobody (uid 65534, gid 65534) as 'set user' asks\n", text,
                  "the log")
    owners = {os.path.basename(p): pwd.getpwuid(os.stat(p).st_uid).pw_name
              for p in (log, os.path.join(d, "state.json"))}
    lib.expect_eq(owners, {"mailwarden.log": "nobody", "state.json": "nobody"}, "file owners")


def test_log_reopened_on_sigusr2_and_sighup():
    d = lib.tmpdir("reopen")
    log = os.path.join(d, "mailwarden.log")
    rc = lib.write_control(d, body("set log %s\n" % log))
    with lib.Daemon(rc) as dm:
        lib.wait_for(lambda: "cycle 1:" in open(log).read() if os.path.exists(log) else False, 20,
                     "the first cycle in the log file")
        os.rename(log, log + ".1")
        dm.signal(signal.SIGUSR2)
        lib.wait_for(lambda: os.path.exists(log), 10, "a new log file after SIGUSR2")
        lib.wait_for(lambda: "SIGUSR2: log file reopened" in open(log).read(), 10,
                     "the reopen line in the new file")
        os.rename(log, log + ".2")
        dm.signal(signal.SIGHUP)
        lib.wait_for(lambda: os.path.exists(log) and "reloaded:" in open(log).read(), 10,
                     "the reload in a new log file after SIGHUP")
        lib.expect_eq(dm.stop(), 0, "exit status")
    with open(log + ".1") as f:
        first = f.read()
    lib.expect_in("cycle 1:", first, "the rotated file")
    lib.expect_not_in("SIGUSR2", first, "the rotated file")
    with open(log + ".2") as f:
        second = f.read()
    lib.expect_not_in("reloading", second, "the file rotated before SIGHUP")


def test_syslog_without_dev_log_falls_back_to_stderr():
    d = lib.tmpdir("syslog")
    rc = lib.write_control(d, body("set log syslog facility daemon\n"))
    listening = False
    if os.path.exists("/dev/log") and stat.S_ISSOCK(os.stat("/dev/log").st_mode):
        import socket
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.connect("/dev/log")
            listening = True
        except OSError:
            pass
        s.close()
    with lib.Daemon(rc) as dm:
        if listening:
            lib.note("a syslog daemon listens on /dev/log here: checked that nothing goes to stderr")
            lib.wait_for(lambda: os.path.exists(os.path.join(d, "state.json")), 20, "the state file")
            lib.expect_not_in("cannot log to syslog", dm.log(), "the daemon's stderr")
        else:
            hits = dm.wait_log(r"^\[[^]]+\] error  : cannot log to syslog: no syslog daemon listens "
                               r"on /dev/log \(No such file or directory\); logging to stderr "
                               r"instead$")
            lib.expect_eq(len(hits), 1, "one line about the missing syslog")
            dm.wait_log(r"info   : cycle 1: 1 checks, 0 ok, 1 failed")
        lib.expect_eq(dm.stop(), 0, "exit status")
