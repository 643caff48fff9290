"""Hostile inputs to the whole program: state files of any content, includes of FIFOs and
devices (for -t and for a SIGHUP reload), FIFOs in the event queue, servers that flood a reply
with tiny lines (peak RSS measured), and SIGTERM with checks in flight. Scripted peers only
(mw-peer); no real mail server is needed.
"""

import os
import signal
import subprocess
import time

import lib


def imap_service(name, port, rule="protocol imap", timeout=5):
    return ("check host %s with address 127.0.0.1\n"
            "  if failed port %d %s with timeout %d seconds then alert\n" % (name, port, rule, timeout))


def test_state_file_of_any_content_gives_a_warning_and_a_fresh_state():
    with lib.Peer([lib.peer_script("imap-logout-bye-ok.peer")]) as peer:
        for content in [b'{"format":"1"}', b'{"format":null}', b'{"format":1,"services":{"x":1}}',
                        b'\x00\xff\xfe garbage', b'{"format":1,"services":[{"na']:
            d = lib.tmpdir()
            rc = lib.write_control(d, "set daemon 3600\n" + imap_service("one", peer.ports[0]))
            state = os.path.join(d, "state.json")
            with open(state, "wb") as f:
                f.write(content)
            readable = content.startswith(b'{"format":1,"services":{')  # read as far as it fits
            r = lib.mw(rc, "status")
            lib.expect_eq(r.rc, 1, "status with a state file %r" % content)
            if not readable:
                lib.expect_in("mailwarden: warning: cannot read the state file", r.err, "status output")
            with lib.Daemon(rc) as dm:
                dm.wait_log(r"cycle 1: 1 checks, 1 ok, 0 failed")
                lib.wait_for(lambda: [s["status"] for s in lib.status_json(rc)["services"]] == ["ok"],
                             10, "status ok after the first cycle")
                lib.expect_eq(dm.stop(), 0, "exit status after SIGTERM")
            if not readable:
                lib.expect_in("cannot read the state file", dm.log(), "daemon output")
            lib.expect_true(not os.path.exists(os.path.join(d, "mailwarden.pid")), "no pid file left")


def test_state_file_symlink_to_dev_zero():
    d = lib.tmpdir()
    rc = lib.write_control(d, "set daemon 3600\n")
    os.symlink("/dev/zero", os.path.join(d, "state.json"))
    r = lib.mw(rc, "status", timeout=10)
    lib.expect_in("cannot read the state file (%s: a character device, not a regular file)"
                  % os.path.join(d, "state.json"), r.err, "status output")


def test_include_of_a_fifo_or_device_neither_hangs_syntax_check_nor_reload():
    d = lib.tmpdir()
    fifo = os.path.join(d, "extra.fifo")
    os.mkfifo(fifo, 0o600)
    rc = lib.write_control(d, "set daemon 3600\ninclude %s\ninclude /dev/zero\n" % fifo)
    r = lib.mw(rc, "-t", timeout=10)
    lib.expect_eq(r.rc, 2, "exit status of -t")
    lib.expect_eq(r.err.splitlines(), [
        "%s:4:1: cannot read included file %s: a FIFO, not a regular file" % (rc, fifo),
        "%s:5:1: cannot read included file /dev/zero: a character device, not a regular file" % rc,
    ], "errors of -t")
    rc = lib.write_control(d, "set daemon 3600\n")
    with lib.Daemon(rc) as dm:
        dm.wait_log(r"cycle 1: ")
        lib.write_control(d, "set daemon 3600\ninclude %s\n" % fifo)
        dm.signal(signal.SIGHUP)
        dm.wait_log(r"reload refused: 1 error\(s\) in the control file")
        dm.signal(signal.SIGUSR1)  # the loop still runs
        dm.wait_log(r"cycle 2: ")
        lib.expect_eq(dm.stop(), 0, "exit status after SIGTERM")


def test_fifo_in_the_event_queue_is_skipped_at_start():
    d = lib.tmpdir()
    queue = os.path.join(d, "events")
    os.mkdir(queue, 0o700)
    os.mkfifo(os.path.join(queue, "00000000000000000001.mail"), 0o600)
    rc = lib.write_control(d, "set daemon 3600\nset mailserver 127.0.0.1 port %d\n"
                              "set eventqueue basedir %s\n" % (lib.free_port(), queue))
    with lib.Daemon(rc) as dm:
        dm.wait_log(r"%s/00000000000000000001.mail is a FIFO, not a queued alert mail; skipped"
                    % queue)
        dm.wait_log(r"cycle 1: ")
        lib.expect_eq(dm.stop(), 0, "exit status after SIGTERM")


def peak_rss_kb(argv):
    """Runs argv to its end; its peak RSS in KiB (VmHWM, read until it exits: the rusage of a
    child forked from Python would count Python's own pages)."""
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lib.track("measured mailwarden", p)
    peak = 0
    while p.poll() is None:
        try:
            with open("/proc/%d/status" % p.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.005)
    return p.returncode, peak


def test_flooded_replies_keep_each_check_under_one_megabyte():
    scripts = [lib.peer_script("imap-logout-bye-ok.peer"), lib.peer_script("imap-capability-flood.peer")]
    with lib.Peer(scripts) as peer:
        figures = []
        for port in peer.ports:
            d = lib.tmpdir()
            rc = lib.write_control(d, "".join(imap_service("s%d" % i, port, timeout=20)
                                              for i in range(10)))
            status, rss = peak_rss_kb([lib.MAILWARDEN, "-c", rc, "validate"])
            lib.expect_eq(status, 0, "validate against %d" % port)
            figures.append(rss)
        growth = figures[1] - figures[0]
        lib.note("10 checks: peak RSS %d KiB against a normal server, %d KiB against a million "
                 "untagged lines each (+%d KiB)" % (figures[0], figures[1], growth))
        lib.expect_true(growth < 10 * 1024, "10 flooded checks grew the peak RSS by %d KiB "
                                            "(want < 1 MiB per check)" % growth)


def test_sigterm_cancels_checks_in_flight():
    with lib.Peer([lib.peer_script("imap-silence.peer")]) as peer:
        d = lib.tmpdir()
        rc = lib.write_control(d, "set daemon 3600\n" + "".join(
            imap_service("pit%d" % i, peer.ports[0], timeout=60) for i in range(5)))
        with lib.Daemon(rc, verbose=True) as dm:
            dm.wait_log(r"connected to 127\.0\.0\.1:%d" % peer.ports[0], count=5)
            lib.expect_eq(dm.stop(timeout=10), 0, "exit status after SIGTERM")
        log = dm.log()
        lib.expect_in("mailwarden stopped", log, "daemon output")
        lib.expect_not_in("failed:", log, "daemon output (a cancelled check is no failure)")
        st = lib.status_json(rc)
        for s in st["services"]:
            lib.expect_eq(s["tests"][0]["status"], "init", "no result recorded for %s" % s["name"])
