"""mwharness: real, private mail servers on 127.0.0.1 for mailwarden's tests.

Python 3 standard library only.  Needs root and the Debian packages
dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-managesieved postfix
cyrus-common sasl2-bin openssl (Cyrus' imapd/sync_* are fetched privately,
see cyrus.py).

    import sys; sys.path.insert(0, "<repo>/tests/harness")
    from mwharness import Stack, Dovecot, Postfix, CyrusPair, CyrusServer, make_certs

Modules:
    certs    make_certs(dir): test CA + good / expiring10 / selfsigned / expired
    dovecot  Dovecot: IMAP(S), POP3(S), LMTP, ManageSieve, auth-over-TCP; master user
    postfix  Postfix: SMTP (STARTTLS), SMTPS, submission (STARTTLS + AUTH) -> Dovecot LMTP
    cyrus    CyrusServer / CyrusPair: Cyrus IMAP master + replica, sync_client, bulk creation
    nagios   Nagios: a private Nagios 4 running plugins each second; status.dat parsed
    vsftpd   Vsftpd: FTP and explicit FTPS (AUTH TLS, session reuse required) for delivery probes
    ngircd   Ngircd: IRC and IRC over TLS, one predefined channel, for delivery probes
    stack    Stack and the `stack.py up|down|status --dir DIR` command line (stack.json)
    ports    free_port(): collision-free loopback ports
    proc     HarnessError, start/stop/wait helpers (pid-based, never by name)

Every server lives in its own directory under a base dir (a temp dir by
default), on free ports, is stopped by pid (TERM then KILL) with an
idempotent stop() that also runs at interpreter exit, and raises
HarnessError with the tail of its log if it cannot start.  Directories are
not deleted on stop (logs stay for inspection); remove them yourself.
"""

from .certs import make_certs
from .cyrus import CyrusPair, CyrusServer
from .dovecot import Dovecot
from .nagios import Nagios
from .ngircd import Ngircd
from .postfix import Postfix
from .proc import HarnessError, enable_subreaper
from .stack import Stack
from .vsftpd import Vsftpd

__all__ = ["make_certs", "CyrusPair", "CyrusServer", "Dovecot", "Nagios", "Ngircd", "Postfix", "Vsftpd",
           "HarnessError", "enable_subreaper", "Stack"]
