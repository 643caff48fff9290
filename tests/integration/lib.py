"""Helpers shared by the integration tests (Python 3 standard library only).

Environment: MW_SRCDIR (source tree), MW_BUILDDIR (holds `mailwarden` and `mw-peer`).

    d = lib.tmpdir("name")                         # fresh directory for this test
    rc = lib.write_control(d, "check host ...")   # 0600, with set statefile/pidfile in d
    r = lib.mw(rc, "validate", "--json")          # Result(rc, out, err, seconds); never hangs
    t = lib.single_test(lib.validate_json(rc))    # the one test result of a one-check file
    lib.expect_eq(t["class"], "auth", "class")
    with lib.Daemon(rc) as dm: ...                # mailwarden -I, output in d/daemon.log
    lib.wait_for(lambda: ..., 10, "what")         # bounded poll

Everything a test starts is recorded and stopped by cleanup_processes(), which the runner
calls after every test, also after a failure or Ctrl-C.  What a test ran (mailwarden's
output, daemon logs, server logs) is kept so that the runner can show its tail on failure.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SRCDIR = os.path.abspath(os.environ.get("MW_SRCDIR", os.path.join(os.path.dirname(__file__), "..", "..")))
BUILDDIR = os.path.abspath(os.environ.get("MW_BUILDDIR", "."))
MAILWARDEN = os.path.join(BUILDDIR, "mailwarden")
MW_PEER = os.path.join(BUILDDIR, "mw-peer")
PEER_SCRIPTS = os.path.join(SRCDIR, "tests", "peers", "scripts")
OWN_PEER_SCRIPTS = os.path.join(SRCDIR, "tests", "integration", "peers")
HARNESS = os.path.join(SRCDIR, "tests", "harness")
if HARNESS not in sys.path:
    sys.path.insert(0, HARNESS)

from mwharness import proc as hproc  # noqa: E402
from mwharness.ports import free_port  # noqa: E402,F401  (re-exported for the tests)

# The tests run mailwarden as root in private directories: say that this is meant (see the
# README, "Running as a service"), or the daemon refuses to start as root.
os.environ.setdefault("MAILWARDEN_ALLOW_ROOT", "1")

CMD_TIMEOUT = 60


class TestFailure(AssertionError):
    """A test's expectation did not hold."""


# ---- failure context ----------------------------------------------------------------------

_base_dir = None
_test_dir = None
_logs = {"module": {}, "test": {}}     # scope -> {label: path}
_outputs = []                          # recent mailwarden runs of the current test
_notes = []
_procs = []                            # (label, Popen) started by the current test
_pid_files = []                        # pid files of daemonized mailwardens


def base_dir():
    """The run's scratch directory (mode 0755: the mail servers drop privileges)."""
    global _base_dir
    if _base_dir is None:
        _base_dir = tempfile.mkdtemp(prefix="mw-it-")
        os.chmod(_base_dir, 0o755)
    return _base_dir


def remove_base_dir():
    global _base_dir
    if _base_dir:
        shutil.rmtree(_base_dir, ignore_errors=True)
    _base_dir = None


def begin_test(name):
    """Called by the runner before each test."""
    global _test_dir
    _test_dir = None
    _logs["test"].clear()
    del _outputs[:]
    del _notes[:]
    _current[0] = name


_current = ["setup"]


def tmpdir(label=None):
    """A new directory for the current test (under the run's base dir, mode 0755)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", label or _current[0])
    d = tempfile.mkdtemp(prefix=name + "-", dir=base_dir())
    os.chmod(d, 0o755)
    return d


def watch_log(label, path, scope="test"):
    """Show the tail of `path` if the current test (scope="test") or any test of the module
    (scope="module") fails."""
    _logs[scope][label] = path


def forget_module_logs():
    _logs["module"].clear()


def note(text):
    """An observation worth reporting (printed by the runner on stderr)."""
    _notes.append(text)


def notes():
    return list(_notes)


def _tail(text, lines):
    rows = text.rstrip("\n").splitlines()
    cut = rows[-lines:]
    return ("[... %d lines ...]\n" % (len(rows) - lines) if len(rows) > lines else "") + "\n".join(cut)


def failure_context(lines=25):
    """Text the runner prints under a FAIL line."""
    parts = []
    for r in _outputs[-3:]:
        parts.append("--- %s (exit %s, %.1f s)" % (" ".join(r.argv), r.rc, r.seconds))
        if r.out.strip():
            parts.append("stdout:\n" + _tail(r.out, lines))
        if r.err.strip():
            parts.append("stderr:\n" + _tail(r.err, lines))
    for scope in ("test", "module"):
        for label, path in _logs[scope].items():
            parts.append("--- tail of %s (%s)\n%s" % (label, path, hproc.log_tail(path, lines) or "(empty)"))
    return "\n".join(parts)


# ---- expectations -------------------------------------------------------------------------

def expect_eq(got, want, what):
    if got != want:
        raise TestFailure("%s:\n  expected: %r\n  got:      %r" % (what, want, got))


def expect_true(cond, what, detail=None):
    if not cond:
        raise TestFailure(what + ("\n  " + str(detail) if detail is not None else ""))


def expect_in(needle, haystack, what):
    if needle not in haystack:
        raise TestFailure("%s: %r not found in:\n%s" % (what, needle, _tail(str(haystack), 15)))


def expect_not_in(needle, haystack, what):
    if needle in haystack:
        raise TestFailure("%s: %r must not appear, but it does" % (what, needle))


def expect_match(pattern, text, what):
    if not re.search(pattern, text, re.M):
        raise TestFailure("%s: /%s/ does not match:\n%s" % (what, pattern, _tail(text, 15)))


def wait_for(predicate, timeout, what, interval=0.05):
    """Poll `predicate` until it returns something truthy (returned) or `timeout` s pass."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
        except Exception as e:      # e.g. a state file that is not there yet
            last = "%s: %s" % (type(e).__name__, e)
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise TestFailure("timed out after %.1f s waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(interval)


# ---- running mailwarden -------------------------------------------------------------------

class Result:
    def __init__(self, argv, rc, out, err, seconds):
        self.argv, self.rc, self.out, self.err, self.seconds = argv, rc, out, err, seconds

    def __repr__(self):
        return "Result(rc=%r, out=%r, err=%r)" % (self.rc, self.out[-300:], self.err[-300:])


def run(argv, timeout=CMD_TIMEOUT, record=True):
    """Run a command to completion (killed after `timeout` s); returns a Result."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = "timeout after %ss" % timeout, e.stdout or b"", e.stderr or b""
    r = Result([str(a) for a in argv], rc, out.decode("utf-8", "replace"),
               err.decode("utf-8", "replace"), time.monotonic() - t0)
    if record:
        _outputs.append(r)
    if isinstance(rc, str):
        raise TestFailure("%s: %s" % (" ".join(r.argv), rc))
    return r


def mw(control, *args, timeout=CMD_TIMEOUT):
    """mailwarden -c CONTROL ARGS..."""
    return run([MAILWARDEN, "-c", control] + list(args), timeout=timeout)


def write_control(directory, body, name="mailwardenrc", mode=0o600, defaults=True):
    """Write a control file; by default it starts with a state file and pid file in `directory`
    (so nothing ever touches ~/).  Returns its path."""
    path = os.path.join(directory, name)
    head = ""
    if defaults:
        head = "set statefile %s\nset pidfile %s\n" % (os.path.join(directory, "state.json"),
                                                     os.path.join(directory, "mailwarden.pid"))
    with open(path, "w") as f:
        f.write(head + body.strip("\n") + "\n")
    os.chmod(path, mode)
    return path


def validate_json(control, expect_rc=None, verbose=False):
    """Run `validate --json` and return the parsed document (checks the exit code if asked)."""
    r = mw(control, *(["-v"] if verbose else []), "validate", "--json")
    try:
        doc = json.loads(r.out)
    except ValueError as e:
        raise TestFailure("validate --json printed no valid JSON (%s): %r" % (e, r.out[:500]))
    if expect_rc is not None:
        expect_eq(r.rc, expect_rc, "exit status of validate")
    doc["_result"] = r
    return doc


def single_test(doc):
    """The only test of the only service of a validate/status document."""
    services = doc["services"]
    expect_eq(len(services), 1, "number of services")
    expect_eq(len(services[0]["tests"]), 1, "number of tests")
    return services[0]["tests"][0]


def service(doc, name):
    for s in doc["services"]:
        if s["name"] == name:
            return s
    raise TestFailure("no service %r in %r" % (name, [s["name"] for s in doc["services"]]))


def expect_result(test, status, cls, message, what="result"):
    """Exact status, class and message of one test entry of validate/status JSON."""
    got = (test.get("status"), test.get("class"), test.get("message"))
    expect_eq(got, (status, cls, message), what + " (status, class, message)")


def status_json(control):
    r = mw(control, "status", "--json")
    expect_eq(r.rc, 0, "exit status of status --json (stderr: %s)" % r.err.strip())
    return json.loads(r.out)


# ---- processes ----------------------------------------------------------------------------

def track(label, popen):
    _procs.append((label, popen))
    return popen


def track_pid_file(path):
    """A daemonized mailwarden: stop whatever pid the file names at cleanup."""
    _pid_files.append(path)


def _stop_popen(p, sig=signal.SIGTERM, timeout=5.0):
    if p.poll() is not None:
        return p.returncode
    try:
        p.send_signal(sig)
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait(timeout=5)


def cleanup_processes():
    """Stop every process the current test started (by pid); returns their labels."""
    leftovers = []
    while _procs:
        label, p = _procs.pop()
        if p.poll() is None:
            leftovers.append(label)
            _stop_popen(p)
    while _pid_files:
        path = _pid_files.pop()
        pid = hproc.read_pid(path)
        if pid and hproc.pid_alive(pid) and "mailwarden" in hproc.cmdline(pid):
            leftovers.append("mailwarden pid %d" % pid)
            hproc.stop_pid(pid, term_timeout=5.0, sweep_group=False)
    reap_orphans()
    return leftovers


def reap_orphans():
    """Reap exited processes adopted by the runner (a subreaper), e.g. the intermediate process
    of a daemonizing mailwarden; call only when no tracked process is running."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def start_module_dovecot(state, label):
    """The Dovecot a test module shares (CA-signed certificate, no auth failure delay), recorded
    in `state` as base, certs, ca, dc and extra (more servers to stop)."""
    from mwharness import Dovecot, make_certs
    base = tmpdir(label)
    certs = make_certs(os.path.join(base, "certs"))
    dc = Dovecot(base, certs=certs, extra_config="auth_failure_delay = 0")
    state.update(base=base, certs=certs, ca=certs["ca"]["cert"], dc=dc, extra=[])
    watch_log("dovecot.log", dc.log_path, scope="module")
    dc.start()
    return dc


def stop_module_servers(state):
    for server in state.get("extra", []) + [state.get("dc")]:
        if server:
            server.stop()


def children():
    """(pid, command line) of the live processes whose parent is this process."""
    me = os.getpid()
    return [(pid, hproc.cmdline(pid)) for pid, state, parent, _ in hproc.processes()
            if parent == me and state not in ("Z", "X")]


def zombies(pid):
    """Children of `pid` that are zombies."""
    return [p for p, state, parent, _ in hproc.processes() if parent == pid and state == "Z"]


class Daemon:
    """`mailwarden -c CONTROL -I [-v]` in the foreground, output appended to LOG."""

    def __init__(self, control, verbose=False, log=None):
        self.control = control
        self.verbose = verbose
        self.log_path = log or os.path.join(os.path.dirname(control), "daemon.log")
        self.popen = None

    def start(self):
        argv = [MAILWARDEN, "-c", self.control, "-I"] + (["-v"] if self.verbose else [])
        with open(self.log_path, "ab") as out:
            self.popen = track("mailwarden -I", subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True))
        watch_log("mailwarden daemon output", self.log_path)
        return self

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_log(self, pattern, timeout=10.0, count=1):
        """Wait until regex `pattern` matches `count` lines of the output; returns the matches."""
        def found():
            hits = re.findall(pattern, self.log(), re.M)
            if not self.alive() and len(hits) < count:
                raise TestFailure("mailwarden exited (status %s) before logging /%s/"
                                  % (self.popen.returncode, pattern))
            return hits if len(hits) >= count else None
        return wait_for(found, timeout, "/%s/ x%d in the daemon's output" % (pattern, count))

    def signal(self, sig):
        self.popen.send_signal(sig)

    def stop(self, timeout=10.0):
        """SIGTERM and wait; returns the exit status (KILL after `timeout` s, then fails)."""
        if self.popen.poll() is not None:
            return self.popen.returncode
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)
            raise TestFailure("mailwarden did not stop within %.0f s of SIGTERM" % timeout)

    def kill9(self):
        self.popen.kill()
        self.popen.wait(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.popen and self.popen.poll() is None:
            _stop_popen(self.popen)


class Peer:
    """mw-peer serving scripts (paths); .port[i] is the port of scripts[i]."""

    def __init__(self, scripts, certs_dir=None):
        self.scripts = list(scripts)
        self.certs_dir = certs_dir
        self.out_path = os.path.join(tmpdir("mw-peer"), "mw-peer.out")
        self.popen = None
        self.ports = []

    def start(self, timeout=10.0):
        argv = [MW_PEER] + (["--certs", self.certs_dir] if self.certs_dir else []) + self.scripts
        with open(self.out_path, "wb") as out:
            self.popen = track("mw-peer", subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True))
        watch_log("mw-peer output", self.out_path)

        def ports():
            if self.popen.poll() is not None:
                raise TestFailure("mw-peer exited with %s: %s" % (self.popen.returncode, self.output()))
            found = re.findall(r"^PORT (\d+) ", self.output(), re.M)
            return [int(p) for p in found] if len(found) == len(self.scripts) else None
        self.ports = wait_for(ports, timeout, "mw-peer's PORT lines")
        return self

    def output(self):
        with open(self.out_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def errors(self):
        return [l for l in self.output().splitlines() if l.startswith("ERROR ")]

    def stop(self):
        if self.popen and self.popen.poll() is None:
            _stop_popen(self.popen)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def make_peer_certs(directory):
    """Fresh test CA + leaves for mw-peer (mw-peer --make-certs); returns the directory."""
    r = run([MW_PEER, "--make-certs", directory], timeout=30)
    expect_eq(r.rc, 0, "mw-peer --make-certs (%s)" % r.err.strip())
    return directory


def peer_script(name):
    """Path of a script: tests/peers/scripts/NAME if it exists, else tests/integration/peers/NAME."""
    shared = os.path.join(PEER_SCRIPTS, name)
    return shared if os.path.exists(shared) else os.path.join(OWN_PEER_SCRIPTS, name)


def read_json_file(path):
    with open(path) as f:
        return json.load(f)


def days_until(iso_utc, now=None):
    """Whole days from `now` (default: this second) until an ISO 'YYYY-MM-DDTHH:MM:SSZ' time,
    counted in whole seconds as OpenSSL's ASN1_TIME_diff does."""
    import calendar
    end = calendar.timegm(time.strptime(iso_utc, "%Y-%m-%dT%H:%M:%SZ"))
    return (end - int(time.time() if now is None else now)) // 86400


def expect_days_left(got, iso_utc, t_before, t_after, what="days_left"):
    """`got` is the whole days left at some moment between t_before and t_after."""
    allowed = {days_until(iso_utc, t_before), days_until(iso_utc, t_after)}
    if got not in allowed:
        raise TestFailure("%s: expected one of %r (until %s), got %r" % (what, sorted(allowed), iso_utc, got))
