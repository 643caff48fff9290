"""Free TCP ports on 127.0.0.1.

free_port() returns a port that
  * is bound by nobody on any IPv4 address right now (so it is also free on
    127.0.0.2, 127.0.0.3, ... for extra backends),
  * has not been handed out before by this Python process, and
  * is not reserved by another live process using this module (a small
    reservation file under /tmp/mwharness-ports/, stale entries are ignored),
so servers of one run (and parallel runs) do not collide before they bind.
Ports come from 20000-32767, below Linux's ephemeral range (32768-60999),
so outgoing connections cannot grab them in the meantime.
"""

import atexit
import os
import random
import socket
import time

LOW, HIGH = 20000, 32767
RESERVATION_DIR = "/tmp/mwharness-ports"
RESERVATION_TTL = 600          # seconds a reservation by a live process is honoured

_handed_out = set()
_my_files = []


def _release_reservations():
    """At exit, drop our reservation files (the servers hold the ports by then)."""
    for path in _my_files:
        try:
            os.unlink(path)
        except OSError:
            pass


atexit.register(_release_reservations)


def _bindable(port):
    """True if nothing holds `port` on any IPv4 address (so 127.0.0.2 etc. work too)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # TIME_WAIT is no obstacle
    try:
        s.bind(("0.0.0.0", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _reserve(port):
    """Create the reservation file for `port`; False if another live owner has it."""
    os.makedirs(RESERVATION_DIR, mode=0o1777, exist_ok=True)
    path = os.path.join(RESERVATION_DIR, str(port))
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            _my_files.append(path)
            return True
        except FileExistsError:
            try:
                with open(path) as f:
                    owner = int(f.read() or 0)
                age = time.time() - os.stat(path).st_mtime
            except (OSError, ValueError):
                owner, age = 0, RESERVATION_TTL
            alive = owner > 0 and os.path.exists("/proc/%d" % owner)
            if alive and age < RESERVATION_TTL:
                return False
            try:
                os.unlink(path)      # stale: take it over
            except FileNotFoundError:
                pass
    return False


def free_port():
    """Return one free TCP port number on 127.0.0.1 (see module docstring)."""
    for _ in range(500):
        port = random.randint(LOW, HIGH)
        if port in _handed_out or not _bindable(port):
            continue
        if _reserve(port):
            _handed_out.add(port)
            return port
    raise RuntimeError("no free TCP port found on 127.0.0.1")


def free_ports(names):
    """Return {name: free_port()} for every name in `names`."""
    return {name: free_port() for name in names}
