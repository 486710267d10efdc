"""What a target is: the interface Board, Runner and the commands rely on.

A target is a board reachable over a serial line: a real one on a device path or
a pyserial URL, a labgrid place, or an emulated one this host starts and stops
(virtual board, webassembly port, QEMU). Every kind is a Target (or a subclass)
and is described by one TargetKind in targets/__init__.py's KINDS, from which
the --port help text, the deadlines and the docs' list of kinds come.

Target attributes:
    spec      the --port value (labgrid: the place actually acquired)
    kind      the TargetKind's name ("serial", "vboard", ...)
    device    what pyserial / mpremote's SerialTransport opens
    board     profile name or None; profile: the profile dict or None
    caps      set of capabilities (see CAPS)
    why       {capability: why the target lacks it}: the skip reason a suite
              gives (mptest.WHY, mptest_sized.need)
    is_physical  a real board: its own hard IRQs count (mptest's hard_irq)
    reconnects   its port may vanish and come back (USB re-enumeration, a
              hard reset): Board waits for it and reconnects
    deadline  seconds the kind gets to start / answer
    started_s seconds an emulated target took to start, else None
    name, fs, fsdir, alive(), dead_reason(), logs(), close(); a context manager.

Errors: TargetError (errors.py), one line naming the spec.
"""
import time
from dataclasses import dataclass
from typing import Callable

from .. import profiles
from ..errors import EmulatorError, TargetError

BAUDRATE = 115200

# capabilities a target may have (mptest.CAPS on the device gets them)
CAPS = {
    "soft_reset": "Ctrl-D restarts MicroPython without losing the link",
    "fs": "a filesystem with directories that mpremote can use",
    "threads": "_thread (real threads or cores)",
    "raw_paste": "the raw REPL's raw-paste mode",
    "hard_irq": "hard interrupts (real, or emulated through intr.run_hard on the virtual boards)",
    "word64": "64-bit small ints and pointers",
    "word32": "32-bit small ints and pointers",
    "frozen": "the suites are frozen into the firmware and run from there",
    "slow": "an emulated chip at a fraction of real speed: suites size their long figures down "
            "(mptest_sized.sized; MPALLOC_LONG=1 keeps the full ones)",
}


@dataclass(frozen=True)
class TargetKind:
    """One kind of target: how --port names it and how it is opened.

    open(spec, rest, board, timeout) -> Target; rest is what follows "<scheme>:".
    """
    name: str
    syntax: str                  # how --port names it, for help and docs
    help: str                    # what it is, a few words
    deadline: float              # seconds to start / to answer a probe
    open: Callable
    physical: bool = False
    scheme: str = None           # "<scheme>:..." dispatches here; None: matched otherwise


class Target:
    """A board reachable over a serial line. Context manager; close() is idempotent."""

    kind = None
    is_physical = False
    reconnects = False
    deadline = 10.0
    why = {}

    def __init__(self, spec, device, board=None, profile=None, caps=(), backend=None, kind=None):
        self.spec = spec
        if kind is not None:
            self.kind = kind
        self.device = device
        self.board = board
        self.profile = profile
        self.caps = set(caps)
        self.backend = backend          # the emulator behind it (VirtualBoard, WasmBoard, ...) or None
        self.baudrate = BAUDRATE
        self.started_s = None
        self._closed = False

    @property
    def name(self):
        return self.spec if not self.board or self.board in self.spec else "%s (%s)" % (self.spec, self.board)

    @property
    def fs(self):
        """The virtual board's filesystem read from the host (vboard_fs.BoardImage), else None."""
        return getattr(self.backend, "fs", None)

    @property
    def fsdir(self):
        """The directory holding the virtual board's filesystem image (vboard only), else None."""
        return getattr(self.backend, "fsdir", None)

    def alive(self):
        """False once closed, or when the emulator behind it died."""
        if self._closed:
            return False
        return self.backend.alive() if self.backend is not None else True

    def dead_reason(self):
        return getattr(self.backend, "dead_reason", None)

    def logs(self):
        """Diagnostics of the emulator behind it (spawns, exits, last output)."""
        return self.backend.logs() if self.backend is not None else ""

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
        return "<%s %s device=%s>" % (type(self).__name__, self.name, self.device)


class EmulatedTarget(Target):
    """A board this host starts for the command and stops after (backend: a PtyBridge)."""


def load_profile(spec, name):
    """The profile `name`, its errors as a TargetError naming `spec`."""
    try:
        return profiles.load(name)
    except profiles.ProfileError as e:
        raise TargetError(str(e).splitlines()[0], where=spec) from None


def implied_board(spec, implied, board):
    """The board a port names; --board may only agree with it."""
    if board and board != implied:
        raise TargetError("--board %s conflicts with the board the port names (%s)" % (board, implied), where=spec)
    return implied


def profile_caps(profile, word=None):
    """A real board's capabilities, from its profile."""
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


def launch(cls, spec, name, profile, make, caps, timeout):
    """An EmulatedTarget `cls` on an emulated board: make() builds the backend,
    started within `timeout` (default: the class's deadline); its errors become a
    TargetError naming `spec`."""
    try:
        backend = make()
    except EmulatorError as e:
        raise TargetError(e.what if e.where == spec else str(e), where=spec) from None
    t0 = time.monotonic()
    try:
        backend.start(timeout or cls.deadline)
    except EmulatorError as e:
        msg = str(e).splitlines()[0]
        if msg.startswith(spec + ": "):
            msg = msg[len(spec) + 2:]
        raise TargetError(msg, where=spec) from None
    t = cls(spec, backend.device, name, profile, caps, backend)
    t.started_s = time.monotonic() - t0
    return t
