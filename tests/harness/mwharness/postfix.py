"""A private Postfix 3.7 instance delivering example.test to Dovecot over LMTP.

    from mwharness.dovecot import Dovecot
    from mwharness.postfix import Postfix
    dc = Dovecot(base); dc.start()
    pf = Postfix(base, dovecot=dc); pf.start()
    smtplib.SMTP("127.0.0.1", pf.ports["smtp"]).sendmail(...)
    dc.wait_for_message("alice@example.test", token)

Constructor: Postfix(base_dir=None, dovecot=None, name="postfix", cert="good",
                     certs=None, lmtp_port=None, auth_port=None, dovecot_host=None,
                     extra_main_cf="")
    dovecot     a Dovecot object: its "lmtp" port is the virtual transport and its
                "auth" port serves SASL.  (Or give lmtp_port/auth_port/dovecot_host
                directly.)
                Dovecot need not be running when Postfix starts: mail then waits
                in the deferred queue.
    cert        "good" | "expiring10" | "selfsigned" | "expired"; certs as in Dovecot
    extra_main_cf  extra main.cf lines (later lines override earlier ones)

Listeners (self.ports):
    "smtp"        plain SMTP, STARTTLS offered (smtpd_tls_security_level = may)
    "smtps"       TLS from the first byte (wrapper mode)
    "submission"  STARTTLS required before anything else; AUTH PLAIN/LOGIN
                  (checked by Dovecot); unauthenticated clients are rejected
                  at RCPT TO.
AUTH is offered on every port, but only after TLS (smtpd_tls_auth_only).
Mail for example.test (any local part) goes to Dovecot by LMTP; mail for
other domains from unauthenticated 127.0.0.1 is refused at RCPT TO with
"554 5.7.1 <x@elsewhere.test>: Relay access denied" (mynetworks does not
include loopback).  Authenticated clients may relay (it will bounce later:
no DNS).

The queue is retried every second (queue_run_delay, minimal_backoff_time,
transport_retry_time = 1s), so mail deferred while Dovecot or Postfix was
down is delivered within a few seconds of both being up again.

Methods: start(), stop() (idempotent; also at exit), restart() (same dirs,
queue and ports), is_running(), queue_files() (messages still queued),
info(), log_tail(n).  The Postfix log (maillog) is self.log_path.
"""

import grp
import os
import pwd
import time

from . import proc
from .certs import make_certs
from .ports import free_ports

DAEMON_DIR = "/usr/lib/postfix/sbin"
QUEUES = ("active", "bounce", "corrupt", "defer", "deferred", "flush",
          "hold", "incoming", "private", "saved", "trace")

_MAIN_CF = """# written by mwharness.postfix
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
daemon_directory = {daemon_dir}
mail_owner = postfix
setgid_group = postdrop
syslog_name = mwh-{name}
maillog_file = {dir}/postfix.log
maillog_file_prefixes = {dir}
myhostname = mail.example.test
mydomain = example.test
myorigin = example.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_recipient_maps =
relay_domains =
mynetworks = 192.0.2.1/32
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
smtputf8_enable = no
virtual_mailbox_domains = example.test
virtual_transport = lmtp:inet:{dovecot_host}:{lmtp_port}
smtpd_banner = $myhostname ESMTP mwharness
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_loglevel = 1
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:{dovecot_host}:{auth_port}
smtpd_sasl_security_options = noanonymous
smtp_tls_security_level = none
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
transport_retry_time = 1s
lmtp_connect_timeout = 5s
delay_warning_time = 0
"""

_MASTER_CF = """# written by mwharness.postfix
{smtp} inet n - n - - smtpd
{smtps} inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
{submission} inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
virtual unix - n n - - virtual
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


class Postfix(proc.Daemon):
    """A private Postfix instance; see the module docstring for the API."""

    def __init__(self, base_dir=None, dovecot=None, name="postfix", cert="good", certs=None,
                 lmtp_port=None, auth_port=None, dovecot_host=None, extra_main_cf=""):
        base_dir = proc.make_base_dir(base_dir, "mwh-postfix-")
        self.name = name
        self.dir = os.path.join(base_dir, name)
        self.cert = cert
        self.certs = certs or (dovecot.certs if dovecot else None) \
            or make_certs(os.path.join(base_dir, "certs"))
        if cert not in self.certs or cert in ("dir", "ca"):
            raise proc.HarnessError("unknown cert choice %r" % cert)
        self.cert_info = self.certs[cert]
        self.dovecot_host = dovecot_host or (dovecot.host if dovecot else "127.0.0.1")
        self.lmtp_port = lmtp_port or (dovecot.ports["lmtp"] if dovecot else None)
        self.auth_port = auth_port or (dovecot.ports["auth"] if dovecot else None)
        if not (self.lmtp_port and self.auth_port):
            raise proc.HarnessError("Postfix needs dovecot= or both lmtp_port= and auth_port=")
        self.extra_main_cf = extra_main_cf
        self.ports = free_ports(("smtp", "smtps", "submission"))
        self.conf_dir = os.path.join(self.dir, "conf")
        self.queue_dir = os.path.join(self.dir, "queue")
        # Postfix logs through its postlogd service into this file (there is no
        # syslog); the master's own stdout/stderr are appended to it too.
        self.log_path = os.path.join(self.dir, "postfix.log")
        self.pid_file = os.path.join(self.queue_dir, "pid", "master.pid")
        self.marker = self.conf_dir
        self._popen = None
        self._write_files()

    def _write_files(self):
        proc.prepare_dir(self.dir)
        proc.prepare_dir(self.conf_dir)
        proc.prepare_dir(os.path.join(self.dir, "data"), owner="postfix", mode=0o700)
        proc.prepare_dir(self.queue_dir)
        for q in QUEUES:
            proc.prepare_dir(os.path.join(self.queue_dir, q), owner="postfix", mode=0o700)
        proc.prepare_dir(os.path.join(self.queue_dir, "pid"))
        for q, mode in (("maildrop", 0o730), ("public", 0o710)):
            d = proc.prepare_dir(os.path.join(self.queue_dir, q), mode=mode)
            os.chown(d, pwd.getpwnam("postfix").pw_uid, grp.getgrnam("postdrop").gr_gid)
        main_cf = _MAIN_CF.format(dir=self.dir, daemon_dir=DAEMON_DIR, name=self.name,
                                  lmtp_port=self.lmtp_port, auth_port=self.auth_port,
                                  dovecot_host=self.dovecot_host,
                                  cert=self.cert_info["cert"], key=self.cert_info["key"])
        with open(os.path.join(self.conf_dir, "main.cf"), "w") as f:
            f.write(main_cf + self.extra_main_cf + "\n")
        with open(os.path.join(self.conf_dir, "master.cf"), "w") as f:
            f.write(_MASTER_CF.format(**self.ports))
        # Postfix re-reads a main.cf younger than ~2 s, sleeping 0.3 s each
        # time, until it is old enough; back-date the files to skip that wait.
        old = time.time() - 60
        for name in ("main.cf", "master.cf"):
            os.utime(os.path.join(self.conf_dir, name), (old, old))

    def start(self, timeout=15.0):
        """Start the Postfix master and wait for the 220 banner on every port.

        Raises HarnessError with the tail of the Postfix log on failure.
        Sets self.start_seconds (~0.15 s).  No-op if running.
        """
        if self.is_running():
            return
        proc.register_atexit(self)
        t0 = time.monotonic()
        proc.check_ports_free(self.ports, "127.0.0.1", "postfix " + self.name)
        self._popen = proc.spawn([os.path.join(DAEMON_DIR, "master"), "-c", self.conf_dir, "-d"],
                                 self.log_path)
        alive = lambda: self._popen is not None and self._popen.poll() is None
        try:
            for port_name in ("smtp", "smtps", "submission"):
                proc.wait_banner(self.ports[port_name], "220", use_tls=port_name == "smtps",
                                 timeout=max(0.5, t0 + timeout - time.monotonic()),
                                 alive=alive, log_path=self.log_path,
                                 what="postfix %s" % port_name)
        except proc.HarnessError:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0

    def queue_files(self):
        """Paths of messages still in the queue (incoming, active, deferred, hold)."""
        found = []
        for q in ("incoming", "active", "deferred", "hold", "maildrop"):
            for root, _dirs, files in os.walk(os.path.join(self.queue_dir, q)):
                found += [os.path.join(root, f) for f in files]
        return found

    def info(self):
        """JSON-able description (the "postfix" entry of stack.json)."""
        return {"host": "127.0.0.1", "ports": dict(self.ports), "cert": self.cert,
                "cert_file": self.cert_info["cert"], "key_file": self.cert_info["key"],
                "dovecot_host": self.dovecot_host, "lmtp_port": self.lmtp_port, "auth_port": self.auth_port,
                "domain": "example.test", "dir": self.dir, "config_dir": self.conf_dir,
                "queue_dir": self.queue_dir, "log": self.log_path,
                "pid_file": self.pid_file, "marker": self.marker,
                "start_seconds": self.start_seconds}
