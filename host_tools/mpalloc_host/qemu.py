"""``qemu:microbit``: Debian's micro:bit MicroPython firmware in qemu-system-arm.

``qemu-system-arm -M microbit -device loader,file=firmware.hex -serial pty
-display none -monitor none -nodefaults``. (``-kernel`` cannot load an Intel
HEX file on QEMU 7.2; the generic loader can, and the Cortex-M0 then boots from
the vector table it wrote.) QEMU prints ``char device redirected to /dev/pts/N``;
that pty *is* the board's UART and what mpremote opens. We keep one fd on it
open (never read) so QEMU does not see a hang-up between clients, poke the
REPL with ``\\r\\x03`` until it answers ``>>> ``, then drain.

The firmware is MicroPython 1.9.2: raw REPL yes, raw-paste no, soft reset
prints ``soft reboot``, about 9.5 KB of heap, no writable filesystem for mpremote.
"""
import os
import re
import select
import shutil
import time
import tty
from collections import deque
from pathlib import Path

from .vboard import Child, VBoardError

QEMU = "qemu-system-arm"
FIRMWARE = Path("/usr/share/firmware-microbit-micropython/firmware.hex")


class QemuError(VBoardError):
    """QEMU or the firmware is missing, or the board did not answer in time."""


def qemu_exe():
    exe = os.environ.get("MPALLOC_QEMU") or shutil.which(QEMU)
    if not exe or not os.access(exe, os.X_OK):
        raise QemuError("%s not found: install the Debian package qemu-system-arm "
                        "(apt-get install qemu-system-arm)" % QEMU)
    return exe


def firmware_path():
    fw = Path(os.environ.get("MPALLOC_MICROBIT_FIRMWARE") or FIRMWARE)
    if not fw.is_file():
        raise QemuError("micro:bit firmware %s not found: install the Debian package "
                        "firmware-microbit-micropython" % fw)
    return fw


class QemuMicrobit:
    """A running emulated micro:bit; ``.device`` is QEMU's pty."""

    kind = "qemu"
    name = "qemu:microbit"

    def __init__(self, firmware=None):
        self.firmware = firmware  # a .hex to boot instead of firmware_path() (mpalloc flash)
        self.device = None
        self.child = None
        self._fd = None
        self._closed = False
        self._log = deque(maxlen=100)
        self._seen = b""

    def _note(self, msg):
        self._log.append((time.monotonic(), msg))

    def start(self, timeout=20.0):
        exe, fw = qemu_exe(), Path(self.firmware) if self.firmware else firmware_path()
        deadline = time.monotonic() + timeout
        argv = [exe, "-M", "microbit", "-device", "loader,file=%s" % fw,
                "-serial", "pty", "-display", "none", "-monitor", "none", "-nodefaults"]
        try:
            self.child = Child(argv, tty_=False)
            self._note("spawned pid %d: %s" % (self.child.pid, " ".join(argv)))
            out = b""
            while b"\n" not in out:
                left = deadline - time.monotonic()
                if left <= 0 or self.child.poll() is not None:
                    raise QemuError("%s did not start (no pty announced): %r" % (self.name, out[-300:]))
                r, _, _ = select.select([self.child.rfd], [], [], min(left, 0.2))
                if r:
                    data = os.read(self.child.rfd, 4096)
                    if not data:
                        continue
                    out += data
            self._note("qemu: " + out.decode(errors="replace").strip())
            m = re.search(rb"(/dev/pts/\d+)", out)
            if not m:
                raise QemuError("%s: no pty in QEMU's output: %r" % (self.name, out[-300:]))
            self.device = m.group(1).decode()
            self._fd = os.open(self.device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            tty.setraw(self._fd)
            self._wait_prompt(deadline)
        except BaseException:
            self.close()
            raise
        return self

    def _wait_prompt(self, deadline):
        seen = b""
        next_poke = 0.0
        while True:
            now = time.monotonic()
            if now > deadline:
                raise QemuError("%s: REPL did not answer within the deadline; got %r" % (self.name, seen[-200:]))
            if self.child.poll() is not None:
                raise QemuError("%s: QEMU exited with status %s" % (self.name, self.child.poll()))
            if now >= next_poke:
                os.write(self._fd, b"\r\x03")
                next_poke = now + 0.3
            r, _, _ = select.select([self._fd], [], [], 0.05)
            if r:
                try:
                    seen += os.read(self._fd, 4096)
                except BlockingIOError:
                    pass
                if b">>> " in seen:
                    break
        # drain the rest of the answers to our pokes
        end = time.monotonic() + 0.15
        while time.monotonic() < end:
            r, _, _ = select.select([self._fd], [], [], 0.05)
            if r:
                try:
                    seen += os.read(self._fd, 4096)
                except BlockingIOError:
                    pass
        self._seen = seen[-2000:]
        self._note("REPL answered: %r" % seen[-200:])

    def alive(self):
        return not self._closed and self.child is not None and self.child.poll() is None

    def logs(self):
        lines = ["%8.3f %s" % (t, m) for t, m in self._log]
        if self.child is not None and self.child.poll() is not None:
            lines.append("qemu exited with status %s" % self.child.poll())
        return "\n".join(lines)

    def close(self):
        if self._closed:
            return
        self._closed = True
        if self.child is not None:
            self.child.kill()
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start(timeout=20.0, firmware=None):
    return QemuMicrobit(firmware).start(timeout)
