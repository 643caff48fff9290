"""Process helpers shared by the server wrappers.

Everything here works on pids and pid files, never on process names, so
several independent instances (and other test runs) can live side by side.

Public helpers:
    HarnessError            exception raised for any start/stop failure
    Daemon                  base class of Dovecot, Postfix, CyrusServer (stop, restart, ...)
    run(cmd, ...)           run a short command, raise HarnessError on failure
    spawn(cmd, log_path)    start a long-running daemon in its own session
    wait_banner(...)        poll a TCP port until a line with a prefix arrives
    read_line(host, port)   first line a server sends (optionally over TLS)
    check_ports_free(...)   fail early if a port is taken
    read_pid(pid_file)      pid from a pid file, or None
    pid_alive(pid)          True while the process exists and is not a zombie
    cmdline(pid)            its command line
    stop_pid(pid, ...)      SIGTERM, wait, SIGKILL; also sweeps its process group
    enable_subreaper()      adopt (and so reap) orphaned daemon processes
    log_tail(path, lines)   last lines of a log file (for error messages)
    register_atexit(obj)    call obj.stop() when the interpreter exits
"""

import atexit
import os
import signal
import socket
import ssl
import subprocess
import time


class HarnessError(RuntimeError):
    """A server could not be set up, started or stopped.

    The message contains the reason and, where there is one, the tail of
    the server's log file.
    """


def log_tail(path, lines=30):
    """Return the last `lines` lines of the text file `path` ('' if missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def _first_problems(path, limit=8):
    """The first distinct fatal/error/warning lines of a log (root causes scroll away)."""
    seen = []
    for line in log_tail(path, 2000).splitlines():
        low = line.lower()
        if any(w in low for w in ("fatal", "panic", "error", "warning")):
            key = line.split(": ", 1)[-1]
            if key not in seen:
                seen.append(key)
                if len(seen) >= limit:
                    break
    return seen


def fail(message, log_path=None, lines=25):
    """Build a HarnessError: `message`, the first problem lines and the tail of `log_path`."""
    if log_path:
        problems = _first_problems(log_path)
        if problems:
            message += "\n--- first fatal/error/warning lines of %s ---\n%s" % (log_path, "\n".join(problems))
        tail = log_tail(log_path, lines)
        message = "%s\n--- last lines of %s ---\n%s" % (message, log_path, tail or "(empty)")
    return HarnessError(message)


def check_ports_free(ports, host="127.0.0.1", what="server"):
    """Raise HarnessError if a port of `ports` ({name: port}) is already listened on.

    Called before a server starts, because some masters (Postfix, Cyrus) report
    a failed bind only to syslog, which is not available here.
    SO_REUSEADDR is set, so sockets in TIME_WAIT (e.g. after a restart) do not count.
    """
    busy = []
    for name, port in ports.items():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            busy.append("%s %s:%d (%s)" % (name, host, port, e.strerror))
        finally:
            s.close()
    if busy:
        raise HarnessError("%s cannot start, port(s) already in use: %s" % (what, ", ".join(busy)))


def run(cmd, timeout=60, log_path=None, input=None, env=None, cwd=None, setsid=False):
    """Run `cmd` (a list) to completion and return its stdout as text.

    Output goes through temporary files, not pipes, so that a command which
    leaves a daemon behind cannot block us.  Raises HarnessError (with the
    command's output and the tail of `log_path`) on a non-zero exit or timeout.
    setsid=True runs it in a new session (for daemons that later signal their
    whole process group).
    """
    import tempfile
    with tempfile.TemporaryFile() as out:
        try:
            if isinstance(input, str):
                input = input.encode()
            stdin = {} if input is not None else {"stdin": subprocess.DEVNULL}
            p = subprocess.run(cmd, input=input, **stdin,
                               stdout=out, stderr=subprocess.STDOUT, timeout=timeout, env=env,
                               cwd=cwd, start_new_session=setsid)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout after %ss" % timeout
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if rc != 0:
        raise fail("command %s failed (%s):\n%s" % (" ".join(map(str, cmd)), rc, text.strip()), log_path)
    return text


def spawn(cmd, log_path, env=None, cwd=None):
    """Start `cmd` as a long-running process in a NEW SESSION (own process group).

    stdin is /dev/null, stdout and stderr are appended to `log_path`, so the
    process never holds the caller's terminal or pipes (important for
    `$(stack.py up)` in bash).  Returns the subprocess.Popen object.
    A new session matters: Postfix's and Cyrus' masters signal their whole
    process group when they stop.
    """
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env, cwd=cwd)


def read_pid(pid_file):
    """Return the integer pid stored in `pid_file`, or None if absent/invalid."""
    try:
        with open(pid_file) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid):
    """True if process `pid` exists and is not a zombie (reaps our own children)."""
    if not pid:
        return False
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False            # it was our child and has just been reaped
    except ChildProcessError:
        pass                        # not our child
    except OSError:
        pass
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def processes():
    """(pid, state, parent pid, process group) of every process, read from /proc."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            yield int(entry), fields[0], int(fields[1]), int(fields[2])
        except (OSError, IndexError, ValueError):
            continue


def group_members(pgid, zombies=False):
    """Pids of processes whose process group is `pgid` (zombies only if asked)."""
    return [pid for pid, state, _, group in processes()
            if group == pgid and (zombies or state not in ("Z", "X"))]


def enable_subreaper():
    """Make this process adopt orphaned descendants (prctl PR_SET_CHILD_SUBREAPER).

    Daemons that fork into the background (Dovecot, Cyrus) and the children
    left behind by a stopped master are normally re-parented to pid 1.  If
    pid 1 does not reap (as in some containers/VMs), they stay as <defunct>
    zombies.  After this call they are re-parented to us instead and
    stop_pid() reaps them.  Optional; selftest.py uses it.  Returns True on success.
    """
    import ctypes
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0          # 36 = PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _reap(pids):
    """waitpid() those of `pids` that are our (zombie) children; ignore the rest."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except (ChildProcessError, OSError):
            pass


def wait_gone(pid, timeout):
    """Wait up to `timeout` seconds for `pid` to exit; return True if it did."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def cmdline(pid):
    """The command line of `pid` as one space-separated string ('' if gone)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def stop_pid(pid, term_timeout=10.0, kill_timeout=5.0, sweep_group=True, cmd_contains=None):
    """Stop process `pid`: SIGTERM, wait up to `term_timeout` s, then SIGKILL.

    If the process led its own process group (all our daemons do, see
    spawn()), members of that group still alive 0.5 s after it exited (e.g.
    Dovecot's imap processes with a client attached) are SIGKILLed, unless
    sweep_group is False.  Our own process group is never touched.
    `cmd_contains` guards against stale pid files: if given, a process whose
    command line lacks that text is left alone.  Returns True if something
    was running.  Safe to call on a dead or None pid.
    """
    if not pid or not pid_alive(pid):
        return False
    if cmd_contains and cmd_contains not in cmdline(pid):
        return False
    try:
        pgid = os.getpgid(pid)
    except OSError:
        pgid = None
    if pgid != pid or pgid == os.getpgrp():
        pgid = None                 # only sweep groups the daemon itself leads
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    if not wait_gone(pid, term_timeout):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_gone(pid, kill_timeout)
    if sweep_group and pgid:
        deadline = time.monotonic() + 0.5
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        killed = group_members(pgid)
        for member in killed:
            try:
                os.kill(member, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 1.0
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.02)
        _reap(group_members(pgid, zombies=True))
    return True


def read_line(host, port, use_tls=False, timeout=2.0):
    """Connect to host:port (optionally TLS, unverified) and return the first line."""
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock = raw
        if use_tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(raw, server_hostname=host)
        data = b""
        while b"\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")


def wait_banner(port, prefix, timeout=15.0, host="127.0.0.1", use_tls=False,
                alive=None, log_path=None, what="server", settle=3.0):
    """Poll host:port until the first line received starts with `prefix`.

    "Connection refused" is retried until `timeout`; once the port accepts
    connections but answers wrongly (bad banner, TLS failure, silence) for
    `settle` seconds, we give up early.  `alive`, if given, is a callable
    returning False once the server process has died; we then fail at once.
    Returns the banner line; raises HarnessError (with the log's first
    problems and tail, see fail()) otherwise.
    """
    deadline = time.monotonic() + timeout
    first_answer = None
    last = "no attempt"
    while True:
        try:
            line = read_line(host, port, use_tls=use_tls, timeout=1.0)
            if line.startswith(prefix):
                return line
            last = "banner %r" % line
            first_answer = first_answer or time.monotonic()
        except ConnectionRefusedError as e:
            last = "%s: %s" % (type(e).__name__, e)
        except (OSError, ssl.SSLError) as e:
            last = "%s: %s" % (type(e).__name__, e)
            first_answer = first_answer or time.monotonic()
        if alive is not None and not alive():
            raise fail("%s died during start-up (port %d: %s)" % (what, port, last), log_path)
        if first_answer and time.monotonic() - first_answer > settle:
            raise fail("%s accepts connections on port %d but gives no %r banner (%s)"
                       % (what, port, prefix, last), log_path)
        if time.monotonic() > deadline:
            raise fail("%s gave no %r banner on port %d within %.0fs (%s)"
                       % (what, prefix, port, timeout, last), log_path)
        time.sleep(0.05)


_registered = []


def _stop_registered():
    for obj in reversed(_registered):
        try:
            obj.stop()
        except Exception:
            pass


def register_atexit(obj):
    """Make sure obj.stop() runs when the interpreter exits (once per object)."""
    if not _registered:
        atexit.register(_stop_registered)
    if obj not in _registered:
        _registered.append(obj)


def unregister_atexit(obj):
    """Undo register_atexit (used by `stack.py up`, whose servers outlive it)."""
    if obj in _registered:
        _registered.remove(obj)


def prepare_dir(path, owner=None, mode=0o755):
    """mkdir -p `path`, chmod it to `mode` and optionally chown to user `owner`."""
    import pwd
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)
    if owner:
        pw = pwd.getpwnam(owner)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return path


def chown_tree(path, user, group=None):
    """chown -R user[:group] path (group defaults to the user's primary group)."""
    import grp
    import pwd
    pw = pwd.getpwnam(user)
    gid = grp.getgrnam(group).gr_gid if group else pw.pw_gid
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), pw.pw_uid, gid)


def make_base_dir(base_dir, prefix):
    """Return `base_dir` (created, mode 0755) or a new temporary directory.

    The mode matters: the servers drop privileges (dovecot, postfix, cyrus
    users) and must be able to traverse the tree.
    """
    import tempfile
    if base_dir is None:
        base_dir = tempfile.mkdtemp(prefix=prefix)
    base_dir = os.path.abspath(base_dir)
    os.makedirs(base_dir, exist_ok=True)
    os.chmod(base_dir, 0o755)
    return base_dir


class Daemon:
    """Base class of the server wrappers (Dovecot, Postfix, CyrusServer).

    Subclasses set `self.dir`, `self.log_path`, `self.pid_file` and
    `self.marker` (text that must appear in the master's command line, a
    guard against stale pid files) and implement start().

    Common API:
        pid()           pid from the pid file (None if none)
        is_running()    True while the master process is alive
        stop()          TERM then KILL by pid; idempotent; also run at exit
        restart()       stop() then start() on the same directory and ports
        log_tail(n)     last n lines of the server log
        with X(...) as x: ...   starts on enter, stops on exit
    """

    stop_timeout = 10.0
    start_seconds = None       # how long the last start() took (set by subclasses)

    def pid(self):
        return read_pid(self.pid_file)

    def is_running(self):
        pid = self.pid()
        return pid_alive(pid) and self.marker in cmdline(pid)

    def stop(self):
        """Stop the server if it runs (TERM, then KILL after stop_timeout s). Idempotent."""
        stop_pid(self.pid(), term_timeout=self.stop_timeout, cmd_contains=self.marker)
        proc = getattr(self, "_popen", None)
        if proc is not None:
            stop_pid(proc.pid, term_timeout=1.0, cmd_contains=self.marker)
            try:
                proc.wait(timeout=1.0)
            except Exception:
                pass
            self._popen = None

    def restart(self):
        self.stop()
        self.start()

    def log_tail(self, lines=30):
        return log_tail(self.log_path, lines)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
