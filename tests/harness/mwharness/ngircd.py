"""A private ngIRCd 26 (IRC, and IRC over TLS from the first byte) on loopback.

    from mwharness.ngircd import Ngircd
    with Ngircd(base_dir, certs=certs) as irc:   # irc.port, irc.tls_port, irc.channel
        ...

Constructor: Ngircd(base_dir=None, name="ngircd", cert="good", certs=None, channel="#alerts")
    cert    "good" | "expiring10" | "selfsigned" | "expired" (see certs.py)

Attributes: port (plain), tls_port, channel, dir, config_path, log_path, pid_file.

Gotchas, each seen with ngIRCd 26.1 on Debian 12:
  * Ident, DNS and PAM are off: each would make every connection wait for a lookup.
  * MaxConnectionsIP defaults to 5: every client here comes from 127.0.0.1, so it is raised.
  * The server rate-limits commands of freshly registered clients (penalty time): a PRIVMSG
    sent right after JOIN reaches a watcher ~1 s later. Tests must not assume faster delivery.
  * Started as root it runs as nobody: no pid file of its own (the harness writes the pid it
    started); the private keys (0600) are read before it drops privileges.
  * It sends nothing until spoken to: readiness is a QUIT answered with "ERROR".
  * -n keeps it in the foreground (stopped by pid); -f names the private config.
  * The channel is predefined ([Channel]) so that it exists before anyone joins it and keeps
    no operator: neither client can lock the other out.
"""

import os
import socket
import time

from . import proc
from .certs import make_certs
from .ports import free_port


class Ngircd(proc.Daemon):
    marker = "ngircd"

    def __init__(self, base_dir=None, name="ngircd", cert="good", certs=None, channel="#alerts"):
        base_dir = proc.make_base_dir(base_dir, "mw-ngircd-")
        self.dir = os.path.join(base_dir, name)
        self.certs = certs or make_certs(os.path.join(base_dir, "certs"))
        self.cert = cert
        self.channel = channel
        self.port = free_port()
        self.tls_port = free_port()
        self.config_path = os.path.join(self.dir, "ngircd.conf")
        self.log_path = os.path.join(self.dir, "ngircd.log")
        self.pid_file = os.path.join(self.dir, "ngircd.pid")
        self._popen = None

    def _write_config(self):
        motd = os.path.join(self.dir, "motd")
        with open(motd, "w") as f:
            f.write("mailwarden test server\n")
        cert = self.certs[self.cert]
        text = """[Global]
    Name = irc.example.test
    Info = mailwarden test IRC server
    Listen = 127.0.0.1
    Ports = %(port)d
    MotdFile = %(motd)s
[Limits]
    MaxConnections = 200
    MaxConnectionsIP = 100
    MaxJoins = 10
    PingTimeout = 120
    PongTimeout = 20
[Options]
    PAM = no
    Ident = no
    DNS = no
    SyslogFacility = local7
[SSL]
    CertFile = %(cert)s
    KeyFile = %(key)s
    Ports = %(tls_port)d
[Channel]
    Name = %(channel)s
    Topic = mailwarden delivery probes
    Modes = +n
""" % {"port": self.port, "tls_port": self.tls_port, "dir": self.dir, "motd": motd,
           "cert": cert["cert"], "key": cert["key"], "channel": self.channel}
        with open(self.config_path, "w") as f:
            f.write(text)

    def start(self, timeout=10.0):
        os.makedirs(self.dir, exist_ok=True)
        self._write_config()
        proc.check_ports_free({"irc": self.port, "ircs": self.tls_port}, what="ngircd")
        t0 = time.monotonic()
        self._popen = proc.spawn(["/usr/sbin/ngircd", "-n", "-f", self.config_path],
                                 self.log_path)
        with open(self.pid_file, "w") as f:
            f.write("%d\n" % self._popen.pid)
        proc.register_atexit(self)
        try:
            self._wait_ready(t0 + timeout)
        except proc.HarnessError:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def _wait_ready(self, deadline):
        # ngIRCd greets nobody: it answers once spoken to. QUIT gets "ERROR :Closing ...".
        last = None
        while time.monotonic() < deadline:
            if not self._alive():
                raise proc.fail("ngircd exited at start", self.log_path)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.sendall(b"QUIT\r\n")
                    if s.recv(512).startswith(b"ERROR"):
                        return
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise proc.fail("ngircd did not answer on port %d: %s" % (self.port, last), self.log_path)

    def _alive(self):
        return self._popen is not None and self._popen.poll() is None

    def info(self):
        return {"port": self.port, "tls_port": self.tls_port, "channel": self.channel,
                "log": self.log_path}
