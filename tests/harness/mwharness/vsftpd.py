"""A private vsftpd 3.0 (FTP and explicit FTPS, RFC 4217) on loopback.

    from mwharness.vsftpd import Vsftpd
    with Vsftpd(base_dir, certs=certs) as ftp:   # ftp.port, ftp.user, ftp.password, ftp.root
        ftplib.FTP_TLS().connect("127.0.0.1", ftp.port)

Constructor: Vsftpd(base_dir=None, name="vsftpd", cert="good", certs=None)
    cert    "good" | "expiring10" | "selfsigned" | "expired" (see certs.py)

Attributes: port, pasv_ports (first, last), user, password, root (the directory logins land in
and may write to), dir, config_path, log_path, pid_file.

Gotchas, each seen with vsftpd 3.0.3 on Debian 12:
  * Logins are real system users through PAM (pam_service_name=vsftpd), and Debian's
    /etc/pam.d/vsftpd ends with pam_shells: a user whose shell is /usr/sbin/nologin gets
    "530 Login incorrect". The harness creates one system user (USER, shell /bin/sh, home "/": vsftpd changes into the
    home directory before local_root, "500 OOPS: cannot change directory" otherwise)
    once and sets its password each start; `local_root` puts the login in a private directory.
  * vsftpd's default ssl_ciphers is DES-CBC3-SHA, which OpenSSL 3 refuses ("handshake
    failure"): ssl_ciphers=HIGH.
  * FTPS: require_ssl_reuse stays at its default (YES): the data connection must resume the
    control connection's TLS session, as many real FTPS servers demand.
  * force_local_logins_ssl=NO and force_local_data_ssl=NO let plain FTP and FTPS share the port.
  * The passive ports are a small range reserved by free_ports(); pasv_address is 127.0.0.1.
  * listen=YES with background=NO keeps vsftpd in the foreground: stopped by pid.
  * vsftpd refuses a secure_chroot_dir that is writable by anyone but root.
"""

import os
import pwd
import time

from . import proc
from .certs import make_certs
from . import ports
from .ports import free_port

USER = "mwftp"
PASSWORD = "ftp-secret-42"
PASV_PORTS = 4


def ensure_user(name=USER, password=PASSWORD):
    """The system user FTP logins use (created once), with `password` set now."""
    # vsftpd changes into the home directory before local_root: it must exist ("/").
    try:
        if pwd.getpwnam(name).pw_dir != "/":
            proc.run(["usermod", "--home", "/", name])
    except KeyError:
        proc.run(["useradd", "--system", "--no-create-home", "--home-dir", "/",
                  "--shell", "/bin/sh", name])
    # chpasswd reads "user:password" from stdin: the password is never in argv.
    proc.run(["chpasswd"], input="%s:%s\n" % (name, password))
    return pwd.getpwnam(name)


class Vsftpd(proc.Daemon):
    marker = "vsftpd"

    def __init__(self, base_dir=None, name="vsftpd", cert="good", certs=None):
        base_dir = proc.make_base_dir(base_dir, "mw-vsftpd-")
        self.dir = os.path.join(base_dir, name)
        self.certs = certs or make_certs(os.path.join(base_dir, "certs"))
        self.cert = cert
        self.port = free_port()
        # A contiguous range of free ports: reserve a start, then check the next few.
        self.pasv_ports = self._pasv_range()
        self.user = USER
        self.password = PASSWORD
        self.root = os.path.join(self.dir, "ftproot")
        self.config_path = os.path.join(self.dir, "vsftpd.conf")
        self.log_path = os.path.join(self.dir, "vsftpd.log")
        self.pid_file = os.path.join(self.dir, "vsftpd.pid")
        self._popen = None

    @staticmethod
    def _pasv_range():
        """PASV_PORTS consecutive free ports, each reserved like free_port()'s."""
        for _ in range(50):
            first = free_port()
            rest = [first + i for i in range(1, PASV_PORTS)]
            if rest[-1] <= ports.HIGH and all(ports._bindable(p) and ports._reserve(p)
                                             for p in rest):
                return first, rest[-1]
        raise proc.HarnessError("vsftpd: no range of %d free passive ports" % PASV_PORTS)

    def _write_config(self):
        pw = ensure_user(self.user, self.password)
        empty = os.path.join(self.dir, "empty")
        os.makedirs(empty, exist_ok=True)
        os.chmod(empty, 0o755)
        os.makedirs(self.root, exist_ok=True)
        os.chown(self.root, pw.pw_uid, pw.pw_gid)
        os.chmod(self.root, 0o755)
        # The key files are read by vsftpd as root before it drops privileges.
        cert = self.certs[self.cert]
        lines = [
            "listen=YES", "listen_ipv6=NO", "listen_address=127.0.0.1",
            "listen_port=%d" % self.port, "background=NO",
            "anonymous_enable=NO", "local_enable=YES", "write_enable=YES",
            "local_umask=022", "local_root=%s" % self.root,
            "secure_chroot_dir=%s" % empty, "pam_service_name=vsftpd",
            "pasv_enable=YES", "pasv_address=127.0.0.1",
            "pasv_min_port=%d" % self.pasv_ports[0], "pasv_max_port=%d" % self.pasv_ports[1],
            "ssl_enable=YES", "rsa_cert_file=%s" % cert["cert"],
            "rsa_private_key_file=%s" % cert["key"],
            "force_local_logins_ssl=NO", "force_local_data_ssl=NO",
            "ssl_tlsv1=YES", "ssl_sslv2=NO", "ssl_sslv3=NO", "ssl_ciphers=HIGH",
            "vsftpd_log_file=%s" % self.log_path, "xferlog_enable=YES",
            "dual_log_enable=YES", "log_ftp_protocol=YES",
            "seccomp_sandbox=NO", "use_localtime=NO", "delay_failed_login=0",
            "connect_from_port_20=NO",
        ]
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        # vsftpd wants its config owned by root and not writable by others.
        os.chmod(self.config_path, 0o600)

    def start(self, timeout=10.0):
        os.makedirs(self.dir, exist_ok=True)
        self._write_config()
        proc.check_ports_free({"ftp": self.port}, what="vsftpd")
        t0 = time.monotonic()
        self._popen = proc.spawn(["/usr/sbin/vsftpd", self.config_path], self.log_path + ".out")
        with open(self.pid_file, "w") as f:
            f.write("%d\n" % self._popen.pid)
        proc.register_atexit(self)
        try:
            proc.wait_banner(self.port, "220", timeout=timeout)
        except proc.HarnessError as e:
            self.stop()
            raise proc.fail("vsftpd did not start: %s" % e, self.log_path + ".out")
        self.start_seconds = time.monotonic() - t0
        return self

    def files(self):
        """The names of the files in the login directory."""
        return sorted(os.listdir(self.root))

    def info(self):
        return {"port": self.port, "pasv_ports": list(self.pasv_ports), "user": self.user,
                "root": self.root, "log": self.log_path}

