"""``qemu:microbit``: Debian's micro:bit MicroPython firmware in qemu-system-arm.

``qemu-system-arm -M microbit -device loader,file=firmware.hex -serial stdio
-display none -monitor none -nodefaults``. (``-kernel`` cannot load an Intel
HEX file on QEMU 7.2; the generic loader can, and the Cortex-M0 then boots from
the vector table it wrote.) The UART is QEMU's stdin/stdout; the pump of the
virtual board (vboard.PtyBridge) puts it behind a pty for mpremote and feeds
it, optionally at a UART's pace (QEMU's UART has no baud rate and the
firmware's receive ring can overflow; pacing is optional, see QemuMicrobit.pace). Start-up pokes the REPL with ``\\r\\x03`` until it answers ``>>> ``.

The firmware is MicroPython 1.9.2: raw REPL yes, raw-paste no, soft reset
prints ``soft reboot``, about 9.5 KB of heap, no writable filesystem for mpremote.
"""
import os
import shutil
import tempfile
import time
from pathlib import Path

from .vboard import Child, PtyBridge, VBoardError

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


class QemuMicrobit(PtyBridge):
    """A running emulated micro:bit behind a pty (``.device``).

    firmware: a .hex to boot instead of firmware_path() (mpalloc flash).
    pace: (bytes, seconds) input pacing, see below; default off.
    """

    kind = "qemu"
    name = "qemu:microbit"
    # QEMU's UART has no baud rate: bytes reach the firmware as fast as it drains
    # the FIFO, and on a loaded host a burst can overflow its receive ring (lost
    # bytes -> SyntaxError; seen about 1 run in 6 with a 2.5 KB exec while ~8 jobs
    # shared 2 cores). pace=(4, 0.0005) (or MPALLOC_QEMU_PACE="4,0.0005") feeds a few
    # bytes at a time and only once QEMU took the last ones: no loss seen, but the
    # slow input made a ~1 KB exec fail with MemoryError on the 10 KB heap in
    # test_flash_microbit, so it is off by default here; targets.open_target
    # ("qemu:microbit") turns it on.
    pace = None

    def __init__(self, firmware=None, pace=None):
        super().__init__()
        env = os.environ.get("MPALLOC_QEMU_PACE")
        if pace is None and env:
            n, _, secs = env.partition(",")
            pace = (int(n), float(secs or 0))
        self.pace = pace
        self.exe = qemu_exe()
        self.firmware = Path(firmware) if firmware else firmware_path()
        if not self.firmware.is_file():
            raise QemuError("firmware %s not found" % (self.firmware,), where=self.name)
        self._tmp = Path(tempfile.mkdtemp(prefix="mpalloc-qemu-"))
        self._stderr = self._tmp / "qemu.stderr"

    def _spawn(self, raw):
        argv = [self.exe, "-M", "microbit", "-device", "loader,file=%s" % self.firmware,
                "-serial", "stdio", "-display", "none", "-monitor", "none", "-nodefaults"]
        with open(self._stderr, "wb") as err:
            return Child(argv, tty_=False, stderr=err)

    def _child_output(self, data):
        # the firmware starts its UART with a NUL byte; drop it before the banner
        if self._restarting is not None and not self._restarting["seen"]:
            data = data.lstrip(b"\x00")
            if not data:
                return
        super()._child_output(data)

    def logs(self):
        text = super().logs()
        try:
            err = self._stderr.read_text(errors="replace").strip()
        except OSError:
            err = ""
        return text + ("\nqemu stderr: " + err if err else "")

    def close(self):
        super().close()
        shutil.rmtree(self._tmp, ignore_errors=True)


def start(timeout=20.0, firmware=None):
    return QemuMicrobit(firmware).start(timeout)
