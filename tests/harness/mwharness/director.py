"""A private Dovecot director with real backend Dovecots (verified on Dovecot 2.3.19).

    from mwharness.director import DirectorRing
    with DirectorRing(backends=3) as ring:            # director on 127.0.0.1, backends .2 .3 .4
        ring.host_list()                              # [{"ip", "vhosts", "users", "tag", "state"}]
        ring.kill_backend(0)                          # kill -9 of 127.0.0.2's master and children
        ring.start_backend(0)

Constructor: DirectorRing(base_dir=None, backends=3, certs=None, real_backends=True)
    real_backends=False: no backend Dovecots are made (the caller serves 127.0.0.2.. on
    backend_imap_port itself, e.g. with scripted peers for a 50-backend benchmark).
Attributes: dir, admin_socket (the director-admin unix socket), imap_port (logins through the
    director), backend_imap_port and backend_imaps_port (the same ports on every backend; the
    backends' certificate is certs["good"], CN=localhost), backends (Dovecot
    objects, hosts 127.0.0.2 ...), ips, config_path, log_path.
Methods: start(), stop(), host_list(), admin(command) -> reply line(s),
    doveadm(*args) (doveadm -c DIR/dovecot.conf director ...), kill_backend(i),
    start_backend(i), login_host(user) -> the backend IP a login lands on (via doveadm
    director status USER), imap_login(user, password) -> the greeting/tagged reply text.

The director does not notice a dead backend by itself; HOST-DOWN alone does not move users
already mapped to it (HOST-FLUSH / HOST-RESET-USERS does). A backend master killed with -9 may
stay a zombie for ~1 s: start_backend() waits for it and drops the stale pid file.
"""

import os
import signal
import socket
import time

from . import proc
from .certs import make_certs
from .dovecot import Dovecot
from .ports import free_port

USERS = {"alice@example.test": "alicepw", "bob@example.test": "bobpw",
         "carol@example.test": "carolpw", "dave@example.test": "davepw"}

_CONFIG = """# written by mwharness.director
instance_name = mwharness-director-{imap}
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
default_internal_user = dovecot
default_login_user = dovenull
disable_plaintext_auth = no
auth_mechanisms = plain login
director_servers = 127.0.0.1:{ring}
director_mail_servers = {backends}
passdb {{
  driver = static
  args = proxy=y nopassword=y port={backend_imap}
}}
service imap-login {{
  executable = imap-login director
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service director {{
  unix_listener login/director {{
    mode = 0666
  }}
  fifo_listener login/proxy-notify {{
    mode = 0666
  }}
  unix_listener director-admin {{
    mode = 0600
  }}
  inet_listener {{
    address = 127.0.0.1
    port = {ring}
  }}
}}
"""


class DirectorRing(proc.Daemon):
    def __init__(self, base_dir=None, backends=3, certs=None, real_backends=True):
        base_dir = proc.make_base_dir(base_dir, "mwh-director-")
        self.base = base_dir
        self.dir = os.path.join(base_dir, "director")
        self.certs = certs or make_certs(os.path.join(base_dir, "certs"))
        self.imap_port = free_port()
        self.ring_port = free_port()
        self.backend_imap_port = free_port()
        self.backend_imaps_port = free_port()
        self.backends = []
        self.ips = ["127.0.0.%d" % (2 + i) for i in range(backends)]
        for i, ip in enumerate(self.ips if real_backends else []):
            b = Dovecot(base_dir=base_dir, name="backend%d" % (i + 1), certs=self.certs, host=ip,
                        users=USERS, extra_config="login_trusted_networks = 127.0.0.0/8\n"
                                                  "auth_failure_delay = 0\n")
            b.ports["imap"] = self.backend_imap_port     # the director proxies to one port
            b.ports["imaps"] = self.backend_imaps_port   # and a poll uses one port on each
            b._write_files()
            self.backends.append(b)
        self.config_path = os.path.join(self.dir, "dovecot.conf")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.pid_file = os.path.join(self.dir, "run", "master.pid")
        self.admin_socket = os.path.join(self.dir, "run", "director-admin")
        self.marker = self.config_path
        proc.prepare_dir(self.dir)
        with open(self.config_path, "w") as f:
            f.write(_CONFIG.format(dir=self.dir, imap=self.imap_port, ring=self.ring_port,
                                   backend_imap=self.backend_imap_port,
                                   backends=" ".join(self.ips)))

    # -- life cycle -------------------------------------------------------
    def start(self, timeout=15.0):
        proc.register_atexit(self)
        for b in self.backends:
            b.start()
        if self.is_running():
            return
        t0 = time.monotonic()
        proc.run(["dovecot", "-c", self.config_path], log_path=self.log_path)
        try:
            proc.wait_banner(self.imap_port, "* OK", timeout=timeout, alive=self.is_running,
                             log_path=self.log_path, what="director imap")
            deadline = time.monotonic() + timeout
            while not os.path.exists(self.admin_socket) or len(self.host_list()) < len(self.ips):
                if time.monotonic() > deadline:
                    raise proc.HarnessError("director lists no backends:\n" + self.log_tail())
                time.sleep(0.05)
        except proc.HarnessError:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0

    def stop(self):
        proc.Daemon.stop(self)
        for b in self.backends:
            b.stop()

    # -- backends ---------------------------------------------------------
    def kill_backend(self, i):
        """kill -9 of backend i's master and every process of its group, at once."""
        b = self.backends[i]
        pid = b.pid()
        if not pid:
            return
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait_gone(pid, 5.0)

    def start_backend(self, i):
        b = self.backends[i]
        pid = b.pid()
        if pid and not proc.pid_alive(pid):
            try:
                os.unlink(b.pid_file)
            except OSError:
                pass
        elif pid:
            proc.wait_gone(pid, 5.0)
            if not proc.pid_alive(pid):
                try:
                    os.unlink(b.pid_file)
                except OSError:
                    pass
        b.start()

    # -- the director-admin socket -----------------------------------------
    def admin(self, command, timeout=5.0):
        """Sends one command on a fresh director-admin connection; returns the reply lines
        (up to the empty line for HOST-LIST)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.admin_socket)
            s.sendall(b"VERSION\tdirector-doveadm\t1\t0\n" + command.encode() + b"\n")
            data = b""
            want_list = command.startswith("HOST-LIST")
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                lines = data.decode().split("\n")
                body = lines[1:]
                if want_list and "" in body[:-1]:
                    break
                if not want_list and len(body) >= 2:
                    break
            lines = data.decode().split("\n")[1:]
            if want_list:
                return lines[:lines.index("")] if "" in lines else lines
            return lines[:1]
        finally:
            s.close()

    def host_list(self):
        out = []
        for line in self.admin("HOST-LIST"):
            f = line.split("\t")
            out.append({"ip": f[0], "vhosts": int(f[1]), "users": int(f[2]),
                        "tag": f[3] if len(f) > 3 else "",
                        "state": f[4] if len(f) > 4 else "", "changed": int(f[5]) if len(f) > 5 else 0})
        return out

    def state_of(self, ip):
        for h in self.host_list():
            if h["ip"] == ip:
                return h["state"]
        return None

    def doveadm(self, *args):
        return proc.run(["doveadm", "-c", self.config_path, "director"] + list(args), timeout=30)

    def imap_login(self, user, password, timeout=10.0):
        """Logs in through the director; returns the tagged reply to LOGIN."""
        s = socket.create_connection(("127.0.0.1", self.imap_port), timeout=timeout)
        try:
            f = s.makefile("rwb")
            f.readline()
            f.write(b"a LOGIN " + user.encode() + b" " + password.encode() + b"\r\n")
            f.flush()
            while True:
                line = f.readline().decode(errors="replace").rstrip("\r\n")
                if not line or line.startswith("a "):
                    break
            f.write(b"b LOGOUT\r\n")
            f.flush()
            return line
        finally:
            s.close()

    def info(self):
        return {"admin_socket": self.admin_socket, "imap_port": self.imap_port,
                "backends": self.ips, "backend_imap_port": self.backend_imap_port,
                "dir": self.dir, "log": self.log_path}
