"""A board on a serial device: /dev/ttyACM0, or mpremote's shortcuts a0, u0, c0.

Opening checks that the device exists and is not held by another process
(mpremote and pyserial lock it with flock), then lets go: the transport takes
its own lock.
"""
import errno
import fcntl
import os
from pathlib import Path

from ..errors import TargetError
from .base import Target, TargetKind, load_profile, profile_caps

SHORTCUTS = {"a": "/dev/ttyACM", "u": "/dev/ttyUSB", "c": "COM"}   # as mpremote's a0/u0/c0


class SerialTarget(Target):
    kind = "serial"
    is_physical = True
    reconnects = True

    def alive(self):
        return not self._closed and os.path.exists(self.device)

    def dead_reason(self):
        return None if os.path.exists(self.device) else "the port %s vanished" % self.device


def is_serial(spec):
    return spec.startswith("/") or (len(spec) >= 2 and spec[0] in SHORTCUTS and spec[1:].isdigit())


def holders(path):
    """Names and pids of processes that have `path` open (from /proc)."""
    found = []
    try:
        real = os.path.realpath(path)
        for d in Path("/proc").iterdir():
            if not d.name.isdigit() or int(d.name) == os.getpid():
                continue
            try:
                for fd in (d / "fd").iterdir():
                    if os.readlink(fd) == real:
                        comm = (d / "comm").read_text().strip()
                        found.append("%s (pid %s)" % (comm, d.name))
                        break
            except OSError:
                continue
    except OSError:
        pass
    return found


def open_serial(spec, rest, board, timeout):
    path = spec
    if len(spec) >= 2 and spec[0] in SHORTCUTS and spec[1:].isdigit():
        path = SHORTCUTS[spec[0]] + spec[1:]
    if not os.path.exists(path):
        raise TargetError("no such device (is the board plugged in? try `ls /dev/ttyACM* /dev/ttyUSB*`)",
                          where=spec)
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except PermissionError:
        raise TargetError("permission denied (add your user to the dialout group)", where=spec) from None
    except OSError as e:
        raise TargetError("cannot open: %s" % (e.strerror or e), where=spec) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            who = holders(path)
            raise TargetError("busy: another process holds the port%s" % (
                (": " + ", ".join(who)) if who else ""), where=spec) from None
    finally:
        os.close(fd)   # releases our lock; the transport takes its own
    name = board or None
    profile = load_profile(spec, name) if name else None
    return SerialTarget(spec, path, name, profile, profile_caps(profile))


KIND = TargetKind("serial", "/dev/ttyACM0, a0, u0, c0",
                  "a real board on a serial port (give --board rp2040, esp32 or microbit)", 10.0, open_serial,
                  physical=True)
