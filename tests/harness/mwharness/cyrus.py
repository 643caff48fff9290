"""Private Cyrus IMAP 3.6 servers: a replication master and its replica.

    from mwharness.cyrus import CyrusPair
    with CyrusPair() as pair:                        # temp dir, free ports
        pair.create_user("john.doe@example.net", folders=["Sent"])
        pair.master.append("john.doe@example.net", "INBOX", b"Subject: x\\r\\n\\r\\nhi\\r\\n")
        pair.sync()                                  # sync_client -A, bounded by a timeout
        pair.replica.status("john.doe@example.net", "INBOX")   # -> {"MESSAGES": 1, ...}

Cyrus' imapd, sync_client and sync_server conflict with Dovecot's packages,
so they are unpacked privately (ensure_binaries(): `apt-get download
cyrus-imapd cyrus-replication` + `dpkg -x` into CACHE_DIR, reused when
present; override the directory with $MWH_CYRUS_CACHE).  The master
process, ctl_cyrusdb and saslpasswd2 come from the installed cyrus-common
and sasl2-bin.

Both servers: admin "cyrus" (password ADMIN_PASSWORD unless given), users
in a per-server sasldb, `virtdomains: userid` (user names like
john.doe@example.net), `unixhierarchysep: yes` (separator "/"), default
altnamespace (a user sees INBOX and its sub-folders as top-level names,
e.g. "Sent"), plaintext LOGIN allowed, no TLS.

Admin-side mailbox names: "user/john.doe@example.net" (INBOX) and
"user/john.doe/Sent@example.net".  The admin has only "la" rights on user
mailboxes: STATUS/SELECT/APPEND are done as the user through proxy
authorization (AUTHENTICATE PLAIN "user\\0cyrus\\0password"), which every
helper below does for you; users therefore need no password of their own.

Logging: Cyrus only logs to syslog.  When the machine has no /dev/log, a
running server binds one (SyslogCapture) and appends each line whose ident
carries its syslog_prefix to its self.log_path (next to the master's
stdout/stderr), so Cyrus' own complaints show up in test failures; the
socket is removed when the last server stops.  An existing /dev/log (a real
syslog daemon) is left alone.
A failed AUTHENTICATE costs 3 s (Cyrus' delay).  Start ~0.1 s, stop ~0.05 s.
"""

import atexit
import errno
import imaplib
import os
import socket
import stat
import subprocess
import threading
import time

from . import proc
from .ports import free_port

CACHE_DIR = os.environ.get("MWH_CYRUS_CACHE", "/var/cache/mailwarden-tests/cyrus")
SYSTEM_BIN = "/usr/lib/cyrus/bin"            # master, ctl_cyrusdb (cyrus-common)
ADMIN = "cyrus"
ADMIN_PASSWORD = "cyrusadminpw"
CONF_SUBDIRS = ("db", "proc", "socket", "log", "msg", "user", "quota", "lock", "sync")


class SyslogCapture:
    """/dev/log for a machine without one, routing each message to a server's log file.

    Cyrus' daemons write "<pri>Mmm dd hh:mm:ss IDENT/service[pid]: text" where IDENT is the
    server's syslog_prefix; the message goes to the file registered for IDENT, others are
    dropped.  The socket exists while at least one server is registered.
    """

    PATH = "/dev/log"

    def __init__(self):
        self._lock = threading.Lock()
        self._routes = {}           # ident -> log path
        self._sock = None
        self._owned = False         # we created PATH and must remove it

    def register(self, ident, log_path):
        with self._lock:
            self._routes[ident] = log_path
            if self._sock is None and not self._owned:
                self._open()

    def unregister(self, ident):
        with self._lock:
            self._routes.pop(ident, None)
            if not self._routes:
                self._close()

    def _open(self):
        if os.path.exists(self.PATH) and not self._stale():
            return                  # a real syslog (or another test run) owns it
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            if os.path.exists(self.PATH):
                os.unlink(self.PATH)
            sock.bind(self.PATH)
            os.chmod(self.PATH, 0o666)      # the daemons run as user cyrus
        except OSError:
            sock.close()
            return
        self._sock, self._owned = sock, True
        atexit.register(self._close_locked)
        threading.Thread(target=self._pump, args=(sock,), name="syslog-capture",
                         daemon=True).start()

    def _stale(self):
        """A socket left behind by a killed run: nobody reads it."""
        try:
            if not stat.S_ISSOCK(os.stat(self.PATH).st_mode):
                return False
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                probe.connect(self.PATH)
            finally:
                probe.close()
            return False
        except OSError as e:
            return e.errno == errno.ECONNREFUSED

    def _close_locked(self):
        with self._lock:
            self._close()

    def _close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._owned:
            try:
                os.unlink(self.PATH)
            except OSError:
                pass
            self._owned = False

    def _pump(self, sock):
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            line = data.decode("utf-8", "replace").rstrip("\n")
            # skip "<pri>" and the 15-character timestamp to reach the ident
            body = line.split(">", 1)[-1]
            ident = body[16:].split("/", 1)[0].split("[", 1)[0]
            with self._lock:
                path = self._routes.get(ident)
            if path:
                try:
                    with open(path, "a") as f:
                        f.write("syslog: " + body + "\n")
                except OSError:
                    pass


SYSLOG = SyslogCapture()


def ensure_binaries():
    """Return the directory holding private imapd, sync_client and sync_server.

    Downloads (apt-get download, same version as the installed cyrus-common)
    and unpacks them into CACHE_DIR on first use.
    """
    bin_dir = os.path.join(CACHE_DIR, "root", "usr", "lib", "cyrus", "bin")
    wanted = ("imapd", "sync_client", "sync_server")
    if all(os.access(os.path.join(bin_dir, b), os.X_OK) for b in wanted):
        return bin_dir
    os.makedirs(CACHE_DIR, exist_ok=True)
    version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "cyrus-common"],
                             capture_output=True, text=True).stdout.strip()
    pkgs = ["cyrus-imapd", "cyrus-replication"]
    if version:
        pkgs = ["%s=%s" % (p, version) for p in pkgs]
    for name in os.listdir(CACHE_DIR):
        if name.endswith(".deb"):
            os.unlink(os.path.join(CACHE_DIR, name))
    proc.run(["apt-get", "download"] + pkgs, timeout=300, cwd=CACHE_DIR)
    for name in os.listdir(CACHE_DIR):
        if name.endswith(".deb"):
            proc.run(["dpkg", "-x", os.path.join(CACHE_DIR, name), os.path.join(CACHE_DIR, "root")])
    if not all(os.access(os.path.join(bin_dir, b), os.X_OK) for b in wanted):
        raise proc.HarnessError("Cyrus binaries missing in %s after unpacking" % bin_dir)
    return bin_dir


def split_user(user):
    """"john.doe@example.net" -> ("john.doe", "example.net"); no domain -> (user, None)."""
    local, _, domain = user.partition("@")
    return local, domain or None


def admin_mailbox_name(user, folder="INBOX"):
    """Admin-side name: ("john.doe@example.net", "Sent") -> "user/john.doe/Sent@example.net"."""
    local, domain = split_user(user)
    name = "user/" + local
    if folder and folder.upper() != "INBOX":
        name += "/" + folder
    return name + ("@" + domain if domain else "")


def quote(s):
    """An IMAP quoted string."""
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


class CyrusServer(proc.Daemon):
    """One Cyrus IMAP server (use CyrusPair for the usual master + replica).

    CyrusServer(base_dir=None, name="cyrus", admin_password=ADMIN_PASSWORD,
                serve_sync=False, sync_to=None, maxchild=100)
        serve_sync  also run sync_server on self.ports["csync"] (a replica)
        sync_to     another CyrusServer (with serve_sync) to replicate to; turns
                    on sync_log and writes sync_host/port/authname/password
    Attributes: ports {"imap"[, "csync"]}, servername (the admin's SASL realm),
        admin, admin_password, dir, config_path, log_path, pid_file, bin_dir.
    Methods: start(), stop(), restart(), is_running(), set_password(user, pw),
        admin_connection(), user_connection(user), create_mailbox(admin_name),
        create_user(user, folders), append(user, folder, message, flags=None),
        status(user, folder, items), list_mailboxes(pattern),
        bulk_create(users, folders, window=500), info().
    """

    def __init__(self, base_dir=None, name="cyrus", admin_password=ADMIN_PASSWORD,
                 serve_sync=False, sync_to=None, maxchild=100):
        base_dir = proc.make_base_dir(base_dir, "mwh-cyrus-")
        self.bin_dir = ensure_binaries()
        self.name = name
        self.dir = os.path.join(base_dir, name)
        self.servername = name
        self.admin = ADMIN
        self.admin_password = admin_password
        self.sync_to = sync_to
        self.ports = {"imap": free_port()}
        if serve_sync:
            self.ports["csync"] = free_port()
        # unique per server (several pairs may run at once): routes its syslog lines
        self.syslog_ident = "mwh-%s-%d" % (name, self.ports["imap"])
        self.maxchild = maxchild
        self.config_path = os.path.join(self.dir, "imapd.conf")
        self.cyrus_conf = os.path.join(self.dir, "cyrus.conf")
        self.sasldb = os.path.join(self.dir, "sasldb2")
        self.log_path = os.path.join(self.dir, "cyrus.log")
        self.pid_file = os.path.join(self.dir, "master.pid")
        self.marker = self.config_path
        self.stop_timeout = 15.0
        self._write_files()

    # -- set-up -----------------------------------------------------------
    def _write_files(self):
        proc.prepare_dir(self.dir)
        for sub in CONF_SUBDIRS:
            os.makedirs(os.path.join(self.dir, "conf", sub), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "spool"), exist_ok=True)
        conf = ["configdirectory: %s/conf" % self.dir,
                "partition-default: %s/spool" % self.dir,
                # Without a default partition every imapd picks one on its first CREATE, and
                # Cyrus 3.6 then reseeds rand() with time(NULL) (partlist_initialize): two
                # processes creating mailboxes in the same second draw the same MAILBOXIDs,
                # and the replica refuses the second ("uniqueid already in use ... Mailbox has
                # been moved to another server"; sync_client: "bailing out!").
                "defaultpartition: default",
                "servername: %s" % self.servername,
                "syslog_prefix: %s" % self.syslog_ident,
                "admins: %s" % self.admin,
                "virtdomains: userid",
                "unixhierarchysep: yes",
                "delete_mode: immediate",
                "allowplaintext: yes",
                "sasl_pwcheck_method: auxprop",
                "sasl_auxprop_plugin: sasldb",
                "sasl_sasldb_path: %s" % self.sasldb,
                "sasl_mech_list: PLAIN LOGIN"]
        if self.sync_to is not None:
            conf += ["sync_log: 1",
                     "sync_host: 127.0.0.1",
                     "sync_port: %d" % self.sync_to.ports["csync"],
                     "sync_try_imap: no",
                     "sync_authname: %s" % self.sync_to.admin,
                     "sync_password: %s" % self.sync_to.admin_password]
        with open(self.config_path, "w") as f:
            f.write("\n".join(conf) + "\n")
        c = "-C " + self.config_path
        services = ['  imap cmd="%s/imapd %s" listen="127.0.0.1:%d" prefork=0 maxchild=%d'
                    % (self.bin_dir, c, self.ports["imap"], self.maxchild)]
        if "csync" in self.ports:
            services.append('  csync cmd="%s/sync_server %s" listen="127.0.0.1:%d" prefork=0 maxchild=10'
                            % (self.bin_dir, c, self.ports["csync"]))
        with open(self.cyrus_conf, "w") as f:
            f.write("START {\n  recover cmd=\"%s/ctl_cyrusdb %s -r\"\n}\n"
                    "SERVICES {\n%s\n}\nEVENTS {\n}\nDAEMON {\n}\n"
                    % (SYSTEM_BIN, c, "\n".join(services)))
        self._saslpasswd(self.admin, self.servername, self.admin_password)
        proc.chown_tree(self.dir, "cyrus")

    def _saslpasswd(self, local, realm, password):
        proc.run(["saslpasswd2", "-p", "-c", "-f", self.sasldb, "-u", realm, local],
                 input=password + "\n")
        proc.chown_tree(self.sasldb, "cyrus")

    def set_password(self, user, password):
        """Give `user` ("name@domain") a sasldb password for a direct LOGIN."""
        local, domain = split_user(user)
        self._saslpasswd(local, domain or self.servername, password)

    # -- life cycle -------------------------------------------------------
    def start(self, timeout=15.0):
        """Start the Cyrus master (in its own session) and wait for the * OK banner.

        Raises HarnessError on failure.  Sets self.start_seconds.  No-op if running.
        """
        if self.is_running():
            return
        proc.register_atexit(self)
        t0 = time.monotonic()
        proc.check_ports_free(self.ports, "127.0.0.1", "cyrus " + self.name)
        SYSLOG.register(self.syslog_ident, self.log_path)
        proc.run([os.path.join(SYSTEM_BIN, "master"), "-C", self.config_path, "-M", self.cyrus_conf,
                  "-p", self.pid_file, "-d", "-L", self.log_path], log_path=self.log_path,
                 setsid=True)
        alive_since = time.monotonic()

        def alive():        # the pid file appears a moment after the launcher returns
            return self.is_running() or time.monotonic() - alive_since < 2.0
        try:
            proc.wait_banner(self.ports["imap"], "* OK", timeout=timeout, alive=alive,
                             log_path=self.log_path, what="cyrus %s imap" % self.name)
        except proc.HarnessError:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0

    def stop(self):
        """Stop the server (TERM, then KILL); its syslog lines stop being captured. Idempotent."""
        super().stop()
        SYSLOG.unregister(self.syslog_ident)

    # -- IMAP helpers -----------------------------------------------------
    def admin_connection(self):
        """imaplib.IMAP4 logged in as the admin (LOGIN cyrus <password>)."""
        m = imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=30)
        m.login(self.admin, self.admin_password)
        return m

    def user_connection(self, user):
        """imaplib.IMAP4 authenticated as `user` by proxy: PLAIN user\\0cyrus\\0password."""
        m = imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=30)
        token = ("%s\0%s\0%s" % (user, self.admin, self.admin_password)).encode()
        m.authenticate("PLAIN", lambda _challenge: token)
        return m

    @staticmethod
    def _check(result, what):
        typ, data = result
        if typ != "OK":
            raise proc.HarnessError("%s failed: %s %r" % (what, typ, data))
        return data

    def create_mailbox(self, admin_name):
        """CREATE `admin_name` (e.g. "user/john.doe/Sent@example.net") as the admin."""
        m = self.admin_connection()
        try:
            self._check(m.create(quote(admin_name)), "CREATE " + admin_name)
        finally:
            m.logout()

    def create_user(self, user, folders=()):
        """Create INBOX ("user/<local>@<domain>") and each of `folders` for `user` (admin CREATEs)."""
        self.bulk_create([user], folders)

    def append(self, user, folder, message, flags=None):
        """APPEND `message` (bytes or str, CRLF line ends recommended) to `folder`
        ("INBOX", "Sent", ...; the user's own namespace) as `user`."""
        if isinstance(message, str):
            message = message.encode()
        m = self.user_connection(user)
        try:
            self._check(m.append(quote(folder), flags, None, message), "APPEND to %s/%s" % (user, folder))
        finally:
            m.logout()

    def status(self, user, folder="INBOX", items="(MESSAGES UIDNEXT UNSEEN)"):
        """STATUS of `folder` as `user`; returns {"MESSAGES": n, ...} (ints)."""
        m = self.user_connection(user)
        try:
            data = self._check(m.status(quote(folder), items), "STATUS %s/%s" % (user, folder))
        finally:
            m.logout()
        text = data[0].decode()
        inner = text[text.rindex("(") + 1:text.rindex(")")].split()
        return {inner[i]: int(inner[i + 1]) for i in range(0, len(inner) - 1, 2)}

    def list_mailboxes(self, pattern="user/*"):
        """Admin LIST "" <pattern>; returns the mailbox names (\\Noselect ones included)."""
        m = self.admin_connection()
        try:
            data = self._check(m.list('""', quote(pattern)), "LIST")
        finally:
            m.logout()
        names = []
        for line in data:
            if line is None:
                continue
            if isinstance(line, tuple):
                line = line[1]
            line = line.decode()
            name = line.rsplit(" ", 1)[1] if not line.endswith('"') else line[line.rindex('"', 0, -1) + 1:-1]
            names.append(name)
        return names

    def bulk_create(self, users, folders=(), window=500):
        """Create INBOX plus `folders` for every user in `users`, pipelined.

        All CREATE commands go over ONE admin connection with up to `window`
        commands in flight (INBOX before its folders, so order is kept).
        Users get no password (use proxy authorization).  Raises
        HarnessError listing the first failures; returns the number created.
        """
        names = []
        for user in users:
            names.append(admin_mailbox_name(user))
            names += [admin_mailbox_name(user, f) for f in folders]
        sock = socket.create_connection(("127.0.0.1", self.ports["imap"]), timeout=60)
        rfile = sock.makefile("rb")
        failures = []
        try:
            rfile.readline()                                    # greeting
            sock.sendall(b"L LOGIN %s %s\r\n" % (quote(self.admin).encode(),
                                                  quote(self.admin_password).encode()))
            tag, line = self._read_tagged(rfile)
            if not line.startswith(b"L OK"):
                raise proc.HarnessError("admin LOGIN failed: %r" % line)
            half = max(1, window // 2)
            in_flight = 0
            for start in range(0, len(names), half):
                batch = names[start:start + half]
                sock.sendall(b"".join(b"C%d CREATE %s\r\n" % (i, quote(name).encode())
                                      for i, name in enumerate(batch, start)))
                in_flight += len(batch)
                while in_flight > half or (start + half >= len(names) and in_flight):
                    tag, line = self._read_tagged(rfile)
                    in_flight -= 1
                    if not line.split(b" ", 2)[1:2] == [b"OK"]:
                        failures.append("%s: %s" % (names[int(tag[1:])], line.decode().strip()))
            sock.sendall(b"Z LOGOUT\r\n")
        finally:
            rfile.close()
            sock.close()
        if failures:
            raise proc.HarnessError("%d of %d CREATEs failed, first: %s"
                                    % (len(failures), len(names), "; ".join(failures[:5])))
        return len(names)

    @staticmethod
    def _read_tagged(rfile):
        """Skip untagged lines; return (tag, line) of the next tagged reply."""
        while True:
            line = rfile.readline()
            if not line:
                raise proc.HarnessError("Cyrus closed the admin connection")
            if not line.startswith((b"* ", b"+ ")):
                return line.split(b" ", 1)[0], line

    def info(self):
        """JSON-able description (an entry of stack.json's "cyrus")."""
        return {"host": "127.0.0.1", "ports": dict(self.ports), "servername": self.servername,
                "admin": self.admin, "admin_password": self.admin_password,
                "dir": self.dir, "config": self.config_path, "cyrus_conf": self.cyrus_conf,
                "sasldb": self.sasldb, "log": self.log_path, "pid_file": self.pid_file,
                "marker": self.marker, "bin_dir": self.bin_dir, "start_seconds": self.start_seconds}


class CyrusPair:
    """A Cyrus replication master and its replica, in base_dir/cyrus-master and
    base_dir/cyrus-replica.  When base_dir is None a temp dir is made on
    /dev/shm (tmpfs; Cyrus is ~8x faster there) or else in $TMPDIR.

    CyrusPair(base_dir=None, admin_password=ADMIN_PASSWORD)
    Attributes: master, replica (CyrusServer objects).
    Methods:
        start(), stop() (idempotent; also at exit), cleanup() (stop + delete base_dir)
        sync(users=None, timeout=60)  run sync_client once (-A: all users, or
              -u for the given users) under `timeout`; returns its output,
              raises HarnessError on failure/timeout (sync_client retries
              forever if the replica is down, hence the timeout).
        create_user(user, folders=(), on="master"|"replica"|"both")
        bulk_create(users, folders=("Sent", "Drafts", "Trash", "Archive"),
                    sync=True, sync_timeout=600)
              pipelined CREATEs on the master, then sync_client -u for those
              users (4 in parallel); returns
              {"mailboxes": n, "create_seconds": t, "sync_seconds": t}.
              2,000 users x 5 mailboxes: ~2 s + ~4 s on tmpfs, but ~20 s +
              ~28 s on this VM's ext4 (Cyrus fsyncs every CREATE) -- hence
              the /dev/shm default below.
        make_users(count, domain="example.net", fmt="user{:05d}")  names only
        info()
    """

    def __init__(self, base_dir=None, admin_password=ADMIN_PASSWORD):
        if base_dir is None and os.access("/dev/shm", os.W_OK):
            import tempfile
            base_dir = tempfile.mkdtemp(prefix="mwh-cyrus-", dir="/dev/shm")
        self.base_dir = proc.make_base_dir(base_dir, "mwh-cyrus-")
        self.replica = CyrusServer(self.base_dir, "cyrus-replica", admin_password, serve_sync=True)
        self.master = CyrusServer(self.base_dir, "cyrus-master", admin_password, sync_to=self.replica)

    def start(self):
        self.replica.start()
        self.master.start()

    def stop(self):
        """Stop both servers in parallel (each takes ~1.5 s). Idempotent."""
        import threading
        t = threading.Thread(target=self.replica.stop)
        t.start()
        self.master.stop()
        t.join()

    def cleanup(self):
        """stop(), then delete base_dir (the default one lives in RAM on /dev/shm)."""
        import shutil
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def sync(self, users=None, timeout=60, parallel=1):
        """Replicate master -> replica once with sync_client (see class doc).

        With `users` and parallel > 1, that many sync_client processes share
        the users (about 2x faster for thousands of users).
        """
        if users and parallel > 1:
            import threading
            users = list(users)
            errors = []

            def one(part):
                try:
                    self.sync(part, timeout)
                except proc.HarnessError as e:
                    errors.append(e)
            threads = [threading.Thread(target=one, args=(users[i::parallel],))
                       for i in range(parallel) if users[i::parallel]]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]
            return ""
        cmd = ["timeout", "-k", "2", str(timeout), os.path.join(self.master.bin_dir, "sync_client"),
               "-C", self.master.config_path]
        cmd += ["-u"] + list(users) if users else ["-A"]
        try:
            return proc.run(cmd, timeout=timeout + 5)
        except proc.HarnessError as e:
            raise proc.HarnessError("sync_client failed (timeout %ss): %s" % (timeout, e))

    def create_user(self, user, folders=(), on="master"):
        """Create `user`'s INBOX and `folders` on the master, the replica or both."""
        targets = {"master": [self.master], "replica": [self.replica],
                   "both": [self.master, self.replica]}[on]
        for server in targets:
            server.create_user(user, folders)

    @staticmethod
    def make_users(count, domain="example.net", fmt="user{:05d}"):
        """["user00000@example.net", ...] — just names, nothing is created."""
        return [fmt.format(i) + "@" + domain for i in range(count)]

    def bulk_create(self, users, folders=("Sent", "Drafts", "Trash", "Archive"),
                    sync=True, sync_timeout=600):
        """Create users (INBOX + folders) on the master quickly, then replicate once.

        Example: pair.bulk_create(pair.make_users(2000)) -> 2,000 users x 5 mailboxes.
        """
        t0 = time.monotonic()
        n = self.master.bulk_create(users, folders)
        result = {"mailboxes": n, "create_seconds": round(time.monotonic() - t0, 3)}
        if sync:
            t1 = time.monotonic()
            self.sync(users, timeout=sync_timeout, parallel=4)
            result["sync_seconds"] = round(time.monotonic() - t1, 3)
        return result

    def info(self):
        """JSON-able description (stack.json's "cyrus" entry)."""
        return {"master": self.master.info(), "replica": self.replica.info(),
                "admin": ADMIN, "admin_password": self.master.admin_password,
                "sync_client": [os.path.join(self.master.bin_dir, "sync_client"),
                                "-C", self.master.config_path]}
