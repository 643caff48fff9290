"""The Debian package, for real: installed on this machine with dpkg, checked (files, modes,
owners, the mailwarden user, conffiles, `mailwarden -t` on the shipped control file, the daemon
started as root dropping to mailwarden), then purged and checked to be gone.

The .deb is what `./setup deb-build` left in BUILDDIR/deb/ (`./setup test` builds it before this
suite runs); without one, setup_module builds it (a first build compiles everything: minutes).
The test refuses to run on a machine where a mailwarden package or user already exists.
"""

import glob
import grp
import os
import pwd
import signal
import stat
import subprocess
import time

import lib

S = {}
DEB_DIR = os.path.join(lib.BUILDDIR, "deb")
RC = "/etc/mailwarden/mailwardenrc"
GONE = ["/usr/bin/mailwarden", "/etc/mailwarden", "/var/lib/mailwarden", "/var/log/mailwarden",
        "/lib/systemd/system/mailwarden.service", "/etc/logrotate.d/mailwarden",
        "/usr/share/man/man1/mailwarden.1.gz", "/usr/share/man/man5/mailwardenrc.5.gz",
        "/usr/share/doc/mailwarden", "/usr/lib/tmpfiles.d/mailwarden.conf",
        "/etc/systemd/system/multi-user.target.wants/mailwarden.service", "/etc/pam.d/mailwarden"]


def installed():
    r = lib.run(["dpkg-query", "-W", "-f", "${Status}", "mailwarden"], record=False)
    return r.rc == 0 and "installed" in r.out and "not-installed" not in r.out


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def setup_module():
    if installed() or user_exists("mailwarden"):
        raise lib.TestFailure("a mailwarden package or user already exists on this machine; "
                              "this test installs and purges its own")
    debs = glob.glob(os.path.join(DEB_DIR, "mailwarden_*.deb"))
    if not debs:
        r = lib.run(["sh", os.path.join(lib.SRCDIR, "setup"), "deb-build"], timeout=140)
        lib.expect_eq(r.rc, 0, "./setup deb-build (log: %s/build.log)" % DEB_DIR)
        debs = glob.glob(os.path.join(DEB_DIR, "mailwarden_*.deb"))
    lib.expect_eq(len(debs), 1, "one .deb in %s" % DEB_DIR)
    S["deb"] = debs[0]


def teardown_module():
    if installed():
        lib.run(["dpkg", "--purge", "mailwarden"], record=False)


def mode_owner(path):
    st = os.lstat(path)
    return (oct(stat.S_IMODE(st.st_mode)), pwd.getpwuid(st.st_uid).pw_name,
            grp.getgrgid(st.st_gid).gr_name)


def test_install_check_and_purge():
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["dpkg", "-i", S["deb"]], capture_output=True, text=True, env=env, timeout=120)
    lib.expect_eq(r.returncode, 0, "dpkg -i exit status (stderr: %s)" % r.stderr[-500:])
    lib.expect_true(installed(), "dpkg says mailwarden is installed")

    # The user: a system account without a login shell, at home in its state directory.
    pw = pwd.getpwnam("mailwarden")
    lib.expect_true(pw.pw_uid < 1000, "mailwarden is a system user", pw)
    lib.expect_eq((pw.pw_dir, pw.pw_shell), ("/var/lib/mailwarden", "/usr/sbin/nologin"),
                  "home and shell of mailwarden")
    lib.expect_eq(grp.getgrgid(pw.pw_gid).gr_name, "mailwarden", "primary group of mailwarden")

    # Files, modes, owners.
    want = {
        "/usr/bin/mailwarden": ("0o755", "root", "root"),
        RC: ("0o600", "mailwarden", "mailwarden"),
        "/etc/mailwarden/conf.d": ("0o750", "mailwarden", "mailwarden"),
        "/var/lib/mailwarden": ("0o750", "mailwarden", "mailwarden"),
        "/var/log/mailwarden": ("0o750", "mailwarden", "mailwarden"),
        "/lib/systemd/system/mailwarden.service": ("0o644", "root", "root"),
        "/etc/logrotate.d/mailwarden": ("0o644", "root", "root"),
        "/etc/pam.d/mailwarden": ("0o644", "root", "root"),
        "/usr/lib/tmpfiles.d/mailwarden.conf": ("0o644", "root", "root"),
        "/usr/share/man/man1/mailwarden.1.gz": ("0o644", "root", "root"),
        "/usr/share/man/man5/mailwardenrc.5.gz": ("0o644", "root", "root"),
        "/usr/share/doc/mailwarden/examples/notify-logger.sh": ("0o755", "root", "root"),
        "/usr/share/doc/mailwarden/examples/mailwardenrc.sample": ("0o644", "root", "root"),
    }
    got = {p: (mode_owner(p) if os.path.lexists(p) else "missing") for p in want}
    lib.expect_eq(got, want, "mode, owner and group of the installed files")
    with open("/lib/systemd/system/mailwarden.service") as f, \
            open(os.path.join(lib.SRCDIR, "conf", "mailwarden.service")) as g:
        lib.expect_eq(f.read(), g.read(), "the installed unit is conf/mailwarden.service")
    conffiles = lib.run(["dpkg-query", "-W", "-f", "${Conffiles}", "mailwarden"]).out
    names = sorted(line.split()[0] for line in conffiles.strip().splitlines())
    lib.expect_eq(names, ["/etc/logrotate.d/mailwarden", RC, "/etc/pam.d/mailwarden"],
                  "the package's conffiles")

    # The shipped control file is valid, for root and for the user the service runs as.
    r = lib.run(["/usr/bin/mailwarden", "-c", RC, "-t"])
    lib.expect_eq((r.rc, r.out, r.err), (0, "Control file syntax OK\n", ""), "mailwarden -t as root")
    r = lib.run(["runuser", "-u", "mailwarden", "--", "/usr/bin/mailwarden", "-c", RC, "-t"])
    lib.expect_eq((r.rc, r.out, r.err), (0, "Control file syntax OK\n", ""),
                  "mailwarden -t as mailwarden")

    # Started by hand as root, the daemon drops to mailwarden (set user in the shipped file):
    # its log, pid and state files belong to that user. (systemd is not running here: tmpfiles
    # made /run/mailwarden at install.)
    env = {k: v for k, v in os.environ.items() if k != "MAILWARDEN_ALLOW_ROOT"}
    log = "/var/log/mailwarden/mailwarden.log"
    p = lib.track("packaged mailwarden", subprocess.Popen(
        ["/usr/bin/mailwarden", "-c", RC, "-I"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    lib.watch_log("packaged daemon", log)
    lib.wait_for(lambda: os.path.exists("/var/lib/mailwarden/state"), 20, "the first state file")
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=20)
    lib.expect_eq((p.returncode, err.decode()), (0, ""), "the packaged daemon's exit and stderr")
    with open(log) as f:
        text = f.read()
    lib.expect_in("info   : running as mailwarden (uid %d, gid %d) as 'set user' asks"
                  % (pw.pw_uid, pw.pw_gid), text, "the daemon's log")
    for path in (log, "/var/lib/mailwarden/state"):
        lib.expect_eq(mode_owner(path)[1:], ("mailwarden", "mailwarden"), "owner of " + path)

    # Purge leaves nothing behind: files, conffiles, data, logs, the user and its group.
    r = subprocess.run(["dpkg", "--purge", "mailwarden"], capture_output=True, text=True, env=env,
                       timeout=120)
    lib.expect_eq(r.returncode, 0, "dpkg --purge exit status (stderr: %s)" % r.stderr[-500:])
    lib.expect_true(not installed(), "dpkg says mailwarden is gone")
    lib.expect_eq([p for p in GONE if os.path.lexists(p)], [], "paths left after purge")
    lib.expect_true(not user_exists("mailwarden"), "the mailwarden user is gone after purge")
    try:
        grp.getgrnam("mailwarden")
        lib.expect_true(False, "the mailwarden group is gone after purge")
    except KeyError:
        pass
