"""A private Dovecot 2.3 instance (IMAP, POP3, LMTP, ManageSieve, auth).

    from mwharness.dovecot import Dovecot
    with Dovecot() as dc:                       # temp dir, free ports, "good" cert
        imaplib.IMAP4(dc.host, dc.ports["imap"]).login("alice@example.test", "alicepw")

Constructor: Dovecot(base_dir=None, name="dovecot", cert="good", certs=None,
                     disable_plaintext_auth=False, users=None, master_users=None,
                     host=None, extra_config="")
    base_dir    parent directory; the instance lives in base_dir/name
                (a new temp dir when None)
    cert        "good" | "expiring10" | "selfsigned" | "expired" (see certs.py)
    certs       a dict from certs.make_certs(); made in base_dir/certs when None
    disable_plaintext_auth
                False: LOGIN/AUTH work on the plain ports.  True: plain IMAP
                announces LOGINDISABLED (and POP3 refuses USER/PASS) until STARTTLS
                -- but only for clients whose source IP differs from the address
                they connect to: Dovecot treats remote IP == local IP (e.g.
                127.0.0.1 -> 127.0.0.1) as a secured connection.  Therefore with
                True the default `host` is 127.0.0.2: connect to dc.host, and the
                kernel picks source 127.0.0.1, so the connection is not "secured".
    users       {username: password}; default DEFAULT_USERS (alice, bob)
    master_users {name: password}; default {"master": "masterpw"}.  A master
                user logs in as anyone with SASL PLAIN authzid=user,
                authcid=master, or with LOGIN "alice@example.test*master".
    host        listen address; default 127.0.0.1 (127.0.0.2 with
                disable_plaintext_auth=True, see above).  ALWAYS connect to dc.host.
    extra_config  text appended to dovecot.conf (one `key = value` per line,
                each brace on its own line)

Attributes after construction (ports are fixed for the object's lifetime,
also across restart()):
    ports       {"imap", "imaps", "pop3", "pop3s", "lmtp", "sieve", "auth"} -> int
                ("auth" is Dovecot's auth-client protocol on TCP; Postfix uses it for SASL)
    users, master_users, host, dir, config_path, log_path, pid_file, cert_info

Methods: start(), stop() (idempotent, also run at exit), restart(), is_running(),
    maildir(user), message_files(user), wait_for_message(user, needle, timeout),
    info() -> JSON-able dict (see stack.py), log_tail(n).

Observed behaviour (Dovecot 2.3.19, see selftest.py):
  * LOGOUT, before or after login, over IMAP and IMAPS alike, is answered
    with "* BYE Logging out" then "a OK Logout completed..."; IMAPS then
    sends a TLS close_notify before closing.
  * A failed authentication is answered after auth_failure_delay (2 s), and
    later authentications from the same IP are slowed for a while (auth
    penalty) -- put failed-login tests last, or pass
    extra_config="auth_failure_delay = 0".
  * stop() takes ~1 s: the Dovecot master sleeps 1 s for its log process.
  * start() takes ~0.1-0.2 s.
"""

import os
import pwd
import time

from . import proc
from .certs import make_certs
from .ports import free_ports

DEFAULT_USERS = {"alice@example.test": "alicepw", "bob@example.test": "bobpw"}
DEFAULT_MASTER_USERS = {"master": "masterpw"}
PORT_NAMES = ("imap", "imaps", "pop3", "pop3s", "lmtp", "sieve", "auth")
MAIL_USER = "dovecot"            # every mailbox belongs to this uid
DH_FILE = "/usr/share/dovecot/dh.pem"

_CONFIG = """# written by mwharness.dovecot
instance_name = mwharness-{instance}
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap pop3 lmtp sieve
listen = {host}
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
{dh}
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_location = maildir:~/Maildir
disable_plaintext_auth = {plain}
auth_mechanisms = plain login
auth_verbose = yes
auth_master_user_separator = *
passdb {{
  driver = passwd-file
  master = yes
  pass = yes
  args = {dir}/master-users
}}
passdb {{
  driver = passwd-file
  args = {dir}/users
}}
userdb {{
  driver = passwd-file
  args = {dir}/users
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
service managesieve-login {{
  inet_listener sieve {{
    port = {sieve}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {host}
    port = {lmtp}
  }}
}}
service auth {{
  inet_listener auth-client {{
    address = {host}
    port = {auth}
  }}
}}
"""

# What each listener says first (the auth port speaks Dovecot's auth protocol).
BANNERS = {"imap": "* OK", "imaps": "* OK", "pop3": "+OK", "pop3s": "+OK",
           "lmtp": "220", "sieve": '"IMPLEMENTATION"', "auth": "VERSION"}


class Dovecot(proc.Daemon):
    """A private Dovecot instance; see the module docstring for the API."""

    def __init__(self, base_dir=None, name="dovecot", cert="good", certs=None,
                 disable_plaintext_auth=False, users=None, master_users=None,
                 host=None, extra_config=""):
        base_dir = proc.make_base_dir(base_dir, "mwh-dovecot-")
        self.name = name
        self.dir = os.path.join(base_dir, name)
        self.host = host or ("127.0.0.2" if disable_plaintext_auth else "127.0.0.1")
        self.cert = cert
        self.certs = certs or make_certs(os.path.join(base_dir, "certs"))
        if cert not in self.certs or cert in ("dir", "ca"):
            raise proc.HarnessError("unknown cert choice %r" % cert)
        self.cert_info = self.certs[cert]
        self.disable_plaintext_auth = disable_plaintext_auth
        self.users = dict(users or DEFAULT_USERS)
        self.master_users = dict(master_users or DEFAULT_MASTER_USERS)
        self.extra_config = extra_config
        self.ports = free_ports(PORT_NAMES)
        self.config_path = os.path.join(self.dir, "dovecot.conf")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.pid_file = os.path.join(self.dir, "run", "master.pid")
        self.marker = self.config_path
        self._write_files()

    # -- set-up -----------------------------------------------------------
    def _write_files(self):
        proc.prepare_dir(self.dir)
        pw = pwd.getpwnam(MAIL_USER)
        proc.prepare_dir(os.path.join(self.dir, "home"))
        lines = []
        for user, password in self.users.items():
            home = proc.prepare_dir(os.path.join(self.dir, "home", user), owner=MAIL_USER, mode=0o700)
            lines.append("%s:{PLAIN}%s:%d:%d::%s::" % (user, password, pw.pw_uid, pw.pw_gid, home))
        with open(os.path.join(self.dir, "users"), "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(os.path.join(self.dir, "master-users"), "w") as f:
            f.write("".join("%s:{PLAIN}%s\n" % kv for kv in self.master_users.items()))
        for f in ("users", "master-users"):       # read by the auth process (dovecot uid)
            os.chmod(os.path.join(self.dir, f), 0o600)
            os.chown(os.path.join(self.dir, f), pw.pw_uid, pw.pw_gid)
        conf = _CONFIG.format(
            instance="%s-%d" % (self.name, self.ports["imap"]), dir=self.dir, host=self.host,
            cert=self.cert_info["cert"], key=self.cert_info["key"],
            dh=("ssl_dh = <%s" % DH_FILE) if os.path.exists(DH_FILE) else "",
            plain="yes" if self.disable_plaintext_auth else "no", **self.ports)
        with open(self.config_path, "w") as f:
            f.write(conf + self.extra_config + "\n")

    # -- life cycle -------------------------------------------------------
    def start(self, timeout=15.0):
        """Start Dovecot and wait until every listener answers with its greeting.

        Raises HarnessError with the tail of dovecot.log on failure.
        Sets self.start_seconds.  Starting a running instance is a no-op.
        """
        if self.is_running():
            return
        proc.register_atexit(self)
        t0 = time.monotonic()
        proc.check_ports_free(self.ports, self.host, "dovecot " + self.name)
        proc.run(["dovecot", "-c", self.config_path], log_path=self.log_path)
        deadline = t0 + timeout
        try:
            for port_name in PORT_NAMES:
                proc.wait_banner(self.ports[port_name], BANNERS[port_name], host=self.host,
                                 use_tls=port_name in ("imaps", "pop3s"),
                                 timeout=max(0.5, deadline - time.monotonic()),
                                 alive=self.is_running, log_path=self.log_path,
                                 what="dovecot %s" % port_name)
        except proc.HarnessError:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0

    # -- mail inspection --------------------------------------------------
    def maildir(self, user):
        """Path of `user`'s Maildir (it appears with the first login or delivery)."""
        return os.path.join(self.dir, "home", user, "Maildir")

    def message_files(self, user, folder=""):
        """Paths of the messages in new/ and cur/ of INBOX (or of `folder`, e.g. ".Sent")."""
        base = os.path.join(self.maildir(user), folder)
        files = []
        for sub in ("new", "cur"):
            d = os.path.join(base, sub)
            if os.path.isdir(d):
                files += [os.path.join(d, n) for n in sorted(os.listdir(d))]
        return files

    def wait_for_message(self, user, needle, timeout=10.0):
        """Poll INBOX of `user` until a message containing `needle` (bytes or str) arrives.

        Returns the message's path, or None after `timeout` seconds.
        """
        if isinstance(needle, str):
            needle = needle.encode()
        deadline = time.monotonic() + timeout
        while True:
            for path in self.message_files(user):
                try:
                    with open(path, "rb") as f:
                        if needle in f.read():
                            return path
                except OSError:
                    pass
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def info(self):
        """JSON-able description (the "dovecot" entry of stack.json)."""
        return {"host": self.host, "ports": dict(self.ports), "users": dict(self.users),
                "master_users": dict(self.master_users), "master_user_separator": "*",
                "disable_plaintext_auth": self.disable_plaintext_auth,
                "cert": self.cert, "cert_file": self.cert_info["cert"], "key_file": self.cert_info["key"],
                "dir": self.dir, "config": self.config_path, "log": self.log_path,
                "pid_file": self.pid_file, "marker": self.marker,
                "homes": {u: os.path.join(self.dir, "home", u) for u in self.users},
                "start_seconds": self.start_seconds}
