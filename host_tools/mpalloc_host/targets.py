"""One way to name a board: ``open_target(spec, board=None)``.

    with open_target("vboard:rp2040") as t:
        t.device      # what pyserial / mpremote's SerialTransport opens
        t.board, t.profile, t.kind, t.caps, t.alive(), t.logs()

spec (the ``--port`` value):
    /dev/ttyACM0 (or mpremote's a0/u0/c0)   a board on a serial port        kind "serial"
    vboard:<board>                          virtual board (vboard.py)      kind "vboard"
    wasm32:<board>                          32-bit webassembly port (wasm.py) kind "wasm32"
    qemu:microbit                           micro:bit firmware in QEMU (qemu.py) kind "qemu"
    qemu:microbit-frozen                    the same rebuilt with mpalloc frozen (flash/microbit_frozen.py)
    emu:rp2040                              the RP2040's MicroPython in rp2040js (emu_rp2040.py) kind "emu"
    rfc2217://host:port, socket://host:port a remote board (pyserial URL)  kind "url"
    labgrid:<place>                         a labgrid place (labgrid_target.py)

``board`` (``--board``) names the profile where the spec does not imply it; a
conflicting one is an error. A plain device path or URL without ``board`` gives
``board=None`` (the caller may detect it). More schemes: ``OPENERS[scheme] =
fn(spec, rest, board, timeout) -> target``.

Every failure is a ``TargetError`` whose message is one line naming the spec:
unknown scheme or board, missing device, busy port (another process holds
it: mpremote and pyserial lock it with flock), no permission, emulator
missing (names the Debian package), emulator not answering within the deadline.

caps: "soft_reset" (everywhere), "fs" (a filesystem with directories mpremote
can use), "threads", "raw_paste", "hard_irq" (the profile's, real or emulated
through intr.run_hard on the vboard), "word64"/"word32", "frozen" (suites
frozen into the firmware run from there: qemu:microbit-frozen).
"""
import errno
import fcntl
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from . import profiles

BAUDRATE = 115200
SHORTCUTS = {"a": "/dev/ttyACM", "u": "/dev/ttyUSB", "c": "COM"}   # as mpremote's a0/u0/c0
QEMU_PACE = (4, 0.0005)    # bytes per write, seconds between writes (qemu.QemuMicrobit.pace)
DEADLINES = {"vboard": 15.0, "wasm32": 30.0, "qemu": 20.0, "url": 5.0, "emu": 30.0}


class TargetError(Exception):
    """A target could not be opened; str() is one line naming the spec."""


class Target:
    """A board reachable over a serial line. Context manager; close() is idempotent."""

    def __init__(self, spec, kind, device, board=None, profile=None, caps=(), backend=None):
        self.spec = spec
        self.kind = kind
        self.device = device
        self.board = board
        self.profile = profile
        self.caps = set(caps)
        self.backend = backend          # VirtualBoard / WasmBoard / QemuMicrobit / None
        self.baudrate = BAUDRATE
        self.started_s = None           # seconds the target took to start (emulators)
        self._closed = False

    @property
    def name(self):
        return self.spec if not self.board or self.board in self.spec else "%s (%s)" % (self.spec, self.board)

    @property
    def fsdir(self):
        """The virtual board's filesystem on the host (vboard only), else None."""
        return getattr(self.backend, "fsdir", None)

    def alive(self):
        """False once closed, or when the emulator/child behind it died."""
        if self._closed:
            return False
        if self.backend is not None:
            return self.backend.alive()
        if self.kind == "serial":
            return os.path.exists(self.device)
        return True

    def dead_reason(self):
        if self.backend is None and self.kind == "serial" and not os.path.exists(self.device):
            return "the port %s vanished" % self.device
        return getattr(self.backend, "dead_reason", None)

    def logs(self):
        """Diagnostics of the emulator/child (spawns, exits, last output)."""
        if self.backend is not None:
            return self.backend.logs()
        return ""

    def close(self):
        if self._closed:
            return
        self._closed = True
        if self.backend is not None:
            self.backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<Target %s kind=%s device=%s>" % (self.name, self.kind, self.device)


def _profile(spec, name):
    try:
        return profiles.load(name)
    except profiles.ProfileError as e:
        raise TargetError("%s: %s" % (spec, str(e).splitlines()[0])) from None


def _implied(spec, implied, board):
    if board and board != implied:
        raise TargetError("%s: --board %s conflicts with the board the port names (%s)" % (spec, board, implied))
    return implied


def _profile_caps(profile, word=None):
    caps = {"soft_reset"}
    if not profile:
        return caps
    mp = profile.get("micropython", {})
    if mp.get("threads"):
        caps.add("threads")
    if mp.get("hard_irq"):
        caps.add("hard_irq")
    if mp.get("port") != "microbit":
        caps.update(("fs", "raw_paste"))
    caps.add(word or "word%d" % int(profile.get("word_bits", 32)))
    return caps


def _launch(spec, kind, name, profile, make, caps, timeout):
    """A Target on an emulated board: make() builds the backend (a VirtualBoard,
    WasmBoard or QemuMicrobit), started within `timeout` (default: the kind's
    deadline); its errors (all VBoardError) become a TargetError naming `spec`."""
    from .vboard import VBoardError

    try:
        backend = make()
    except VBoardError as e:
        raise TargetError("%s: %s" % (spec, e)) from None
    t0 = time.monotonic()
    try:
        backend.start(timeout or DEADLINES[kind])
    except VBoardError as e:
        msg = str(e).splitlines()[0]
        raise TargetError(msg if msg.startswith(spec) else "%s: %s" % (spec, msg)) from None
    t = Target(spec, kind, backend.device, name, profile, caps, backend)
    t.started_s = time.monotonic() - t0
    return t


def open_vboard(spec, rest, board, timeout):
    from .vboard import VirtualBoard

    name = _implied(spec, rest or board or "unix", board)
    profile = _profile(spec, name)
    caps = _profile_caps(profile, "word64") | {"fs", "raw_paste", "threads"}
    return _launch(spec, "vboard", name, profile, lambda: VirtualBoard(name), caps, timeout)


def open_wasm(spec, rest, board, timeout):
    from .wasm import WasmBoard

    name = _implied(spec, rest or board or "rp2040", board)
    profile = _profile(spec, name)
    # in-memory filesystem with directories, no threads, no raw-paste, 32-bit ints
    return _launch(spec, "wasm32", name, profile, lambda: WasmBoard(name), {"soft_reset", "fs", "word32"}, timeout)


def open_qemu(spec, rest, board, timeout):
    from .qemu import QemuMicrobit

    if rest not in ("microbit", "microbit-frozen"):
        raise TargetError("%s: QEMU emulates only the micro:bit here: use qemu:microbit "
                          "(or qemu:microbit-frozen)" % spec)
    name = _implied(spec, "microbit", board)
    profile = _profile(spec, name)
    firmware = None
    if rest == "microbit-frozen":  # Debian's firmware rebuilt with mpalloc frozen in flash
        from .flash.errors import FlashError
        from .flash.microbit_frozen import build

        try:
            firmware = build()
        except FlashError as e:
            raise TargetError("%s: %s" % (spec, str(e).splitlines()[0])) from None
    # paced input: unpaced, a loaded host loses bytes on QEMU's UART (see qemu.py)
    make = lambda: QemuMicrobit(firmware, pace=QEMU_PACE)  # noqa: E731
    caps = {"soft_reset", "word32"} | ({"frozen"} if firmware is not None else set())
    return _launch(spec, "qemu", name, profile, make, caps, timeout)


def open_emu(spec, rest, board, timeout, firmware=None):
    """emu:rp2040: the RP2040's own MicroPython in rp2040js (emu_rp2040.py); one core: no threads."""
    from .emu_rp2040 import EmuRp2040

    if rest != "rp2040":
        raise TargetError("%s: the emulator runs only the RP2040: use emu:rp2040" % spec)
    name = _implied(spec, "rp2040", board)
    profile = _profile(spec, name)
    caps = {"soft_reset", "fs", "raw_paste", "hard_irq", "word32"}
    return _launch(spec, "emu", name, profile, lambda: EmuRp2040(name, firmware=firmware), caps, timeout)


def _holders(path):
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


def open_serial(spec, board, timeout):
    path = spec
    if len(spec) >= 2 and spec[0] in SHORTCUTS and spec[1:].isdigit():
        path = SHORTCUTS[spec[0]] + spec[1:]
    if not os.path.exists(path):
        raise TargetError("%s: no such device (is the board plugged in? try `ls /dev/ttyACM* /dev/ttyUSB*`)" % spec)
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except PermissionError:
        raise TargetError("%s: permission denied (add your user to the dialout group)" % spec) from None
    except OSError as e:
        raise TargetError("%s: cannot open: %s" % (spec, e.strerror or e)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            who = _holders(path)
            raise TargetError("%s: busy: another process holds the port%s" % (
                spec, (": " + ", ".join(who)) if who else "")) from None
    finally:
        os.close(fd)   # releases our lock; the transport takes its own
    name = board or None
    profile = _profile(spec, name) if name else None
    return Target(spec, "serial", path, name, profile, _profile_caps(profile))


def open_url(spec, board, timeout):
    u = urlsplit(spec)
    if u.scheme in ("rfc2217", "socket"):
        if not u.hostname or not u.port:
            raise TargetError("%s: a %s URL needs host and port (%s://host:port)" % (spec, u.scheme, u.scheme))
        try:
            with socket.create_connection((u.hostname, u.port), timeout=timeout or DEADLINES["url"]):
                pass
        except socket.timeout:
            raise TargetError("%s: no answer from %s:%s within %g s" % (
                spec, u.hostname, u.port, timeout or DEADLINES["url"])) from None
        except OSError as e:
            raise TargetError("%s: cannot connect to %s:%s: %s" % (
                spec, u.hostname, u.port, e.strerror or e)) from None
    profile = _profile(spec, board) if board else None
    return Target(spec, "url", spec, board or None, profile, _profile_caps(profile))


def open_labgrid(spec, rest, board, timeout):
    """labgrid:<place>: labgrid_target.LabgridTarget (acquired; close() releases)."""
    try:
        from .labgrid_target import LabgridTarget
    except ImportError as e:
        raise TargetError("%s: labgrid support is not available: %s" % (spec, e)) from None
    t = LabgridTarget(spec, board=board)
    try:
        t.open()
    except Exception as e:
        if type(e).__name__ != "LabgridError":
            raise
        raise TargetError(str(e).splitlines()[0]) from None
    return t


OPENERS = {"vboard": open_vboard, "wasm32": open_wasm, "qemu": open_qemu, "labgrid": open_labgrid,
           "emu": open_emu}
URL_SCHEMES = ("rfc2217", "socket", "loop", "spy", "hwgrep", "alt", "cp2110")


def open_target(spec, board=None, timeout=None):
    """Open what `spec` names (see the module docstring); returns a Target-like object."""
    if not spec or not isinstance(spec, str):
        raise TargetError("no port given: use a device path, vboard:<board>, wasm32:<board>, "
                          "qemu:microbit or a pyserial URL")
    spec = spec.strip()
    if "://" in spec:
        scheme = spec.split("://", 1)[0]
        if scheme not in URL_SCHEMES:
            raise TargetError("%s: unknown URL scheme %r (known: rfc2217://, socket://)" % (spec, scheme))
        return open_url(spec, board, timeout)
    if spec.startswith("/") or (len(spec) >= 2 and spec[0] in SHORTCUTS and spec[1:].isdigit()):
        return open_serial(spec, board, timeout)
    scheme, sep, rest = spec.partition(":")
    if sep and scheme in OPENERS:
        return OPENERS[scheme](spec, rest, board, timeout)
    raise TargetError("%s: unknown port: use a device path (/dev/ttyACM0), %s, or a pyserial URL "
                      "(rfc2217://host:port, socket://host:port)"
                      % (spec, ", ".join("%s:<...>" % s for s in sorted(OPENERS))))
