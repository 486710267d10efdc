"""``emu:rp2040``: the RP2040's own MicroPython (rp2 port, RPI_PICO) in an emulated chip, behind a pty.

emu_rp2040.mjs runs the firmware in rp2040js (npm, pinned in package.json)
with the fixes it lacks (QSPI flash writes, USB CDC idle, UART TX interrupt);
its stdin/stdout are the board's USB CDC bytes, which vboard.PtyBridge puts
behind a pty: mpremote, pyserial and labgrid open ``EmuRp2040.device`` as they
open /dev/ttyACM0. The firmware does the REPL, raw REPL, raw-paste, Ctrl-C and
soft reset itself, as on a Pico.

What is loaded (``find_firmware``/``find_bootrom``), first found wins:
  1. ``firmware=`` / ``--firmware FILE`` or ``$MPALLOC_RP2040_FIRMWARE``
     (``$MPALLOC_RP2040_BOOTROM`` for the bootrom);
  2. the user cache ``~/.cache/mpalloc/firmware/`` (``$XDG_CACHE_HOME``);
  3. ``<repo>/../shared/firmware/rp2040/`` (of the main checkout too, from a git worktree).
A file listed in a SHA256SUMS beside it must match; the UF2 must carry RP2040
blocks inside flash (flash.uf2). After boot the banner must name an RP2040.

Flash: the chip's 2 MiB flash (firmware + littlefs) lives in a file for the
life of the target, so files survive soft resets; a session starts from the
image the last cleanly closed session left (``flash_cache_path``: one per
firmware, in the user cache), so a deploy of unchanged files copies nothing.
If the board does not come up from that image, it starts again from the bare
firmware (a fresh filesystem). ``fresh=True`` skips the cached image.

Resets: the firmware soft-resets itself; a watchdog reset of the chip
(``machine.reset()``, a ``machine.WDT`` running out), which rp2040js cannot do in
place, ends the runner with ``REBOOT`` and a fresh chip boots from the saved flash
behind the same pty, its WATCHDOG REASON set (``machine.reset_cause()`` is
``WDT_RESET``, as on a Pico).

Cores: one by default (rp2040js's; no ``_thread``: it would hang the chip);
``MPALLOC_EMU_CORES=2`` (inherited by the runner) adds core 1 (core1.mjs; ``_thread``
runs on it). Off by default while vmem's two-core race can hang (DEVELOPING.md). Limits (emulator): emulated time only (``time.ticks_us()`` counts 125 cycles per us of a 125 MHz chip; the
emulator runs at ~0.2-0.3x real time on a 2-core machine).
"""
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from . import NODE_DIR, ROOT
from .vboard import Child, PtyBridge, VBoardError, board_json  # noqa: F401  (board_json for callers)
from .wasm import node_exe

NPM_PACKAGE = "rp2040js"
MJS = NODE_DIR / "emu_rp2040.mjs"   # beside host_tools/node/package.json, so `import "rp2040js"` resolves
FIRMWARE_NAME = "RPI_PICO-v1.28.0.uf2"
BOOTROM_NAME = "bootrom-b1.bin"
DOWNLOAD = "https://micropython.org/download/RPI_PICO/"
BOOTROM_SOURCE = "https://github.com/raspberrypi/pico-bootrom (b1)"
FLASH_BYTES = 2 * 1024 * 1024
RP2040_FAMILY = 0xE48BFF56
FLASH_BASE = 0x10000000
BANNER = b"with RP2040"
REBOOT = 4              # emu_rp2040.mjs's exit status for a watchdog reset of the chip


class EmuError(VBoardError):
    """The emulated RP2040 could not start: firmware, bootrom, node or rp2040js missing or wrong."""


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mpalloc"


def shared_dirs():
    """<repo>/../shared/firmware/rp2040, and the same beside the main checkout of a git worktree."""
    dirs = [ROOT.parent / "shared" / "firmware" / "rp2040"]
    try:
        line = (ROOT / ".git").read_text().strip()     # a worktree: "gitdir: <main>/.git/worktrees/<name>"
    except OSError:
        line = ""
    if line.startswith("gitdir:"):
        main = Path(line[7:].strip()).parents[2]
        dirs.append(main.parent / "shared" / "firmware" / "rp2040")
    return dirs


def _places(env, name, explicit=None):
    """(path, how it was named) in lookup order."""
    out = []
    if explicit:
        out.append((Path(explicit), "--firmware"))
    elif os.environ.get(env):
        out.append((Path(os.environ[env]), "$" + env))
    out.append((cache_dir() / "firmware" / name, "user cache"))
    out.extend((d / name, "shared firmware") for d in shared_dirs())
    return out


def _check_sum(path, data):
    sums = path.parent / "SHA256SUMS"
    try:
        lines = sums.read_text().splitlines()
    except OSError:
        return
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == path.name:
            got = hashlib.sha256(data).hexdigest()
            if got != parts[0].lower():
                raise EmuError("%s: sha256 %s does not match %s (%s...): damaged copy" % (
                    path, got[:16], sums, parts[0][:16]))
            return


def check_uf2(data, path):
    """Refuse a UF2 that is not an RP2040 image inside the Pico's flash (one line)."""
    from .flash import uf2
    from .flash.errors import FlashError

    try:
        img = uf2.parse(data, str(path))
        uf2.check_family(img, RP2040_FAMILY, str(path), "emu:rp2040")
    except FlashError as e:
        raise EmuError(str(e).splitlines()[0]) from None
    if img.lo < FLASH_BASE or img.hi > FLASH_BASE + FLASH_BYTES:
        raise EmuError("%s: payload at 0x%08x-0x%08x lies outside the Pico's 2 MiB flash at 0x%08x" % (
            path, img.lo, img.hi, FLASH_BASE))
    return img


def _find(env, name, what, explicit, hint):
    places = _places(env, name, explicit)
    for p, how in places:
        if p.is_file():
            return p
        if how in ("--firmware", "$" + env):
            raise EmuError("%s %s (%s) does not exist" % (what, p, how))
    raise EmuError("%s not found; looked in %s; %s" % (
        what, ", ".join(str(p) for p, _ in places), hint))


def find_firmware(explicit=None):
    """The firmware UF2 (checked: sha256 if listed, RP2040 family, inside flash) -> Path."""
    p = _find("MPALLOC_RP2040_FIRMWARE", FIRMWARE_NAME, "RP2040 MicroPython firmware", explicit,
              "get RPI_PICO's .uf2 from %s and name it with --firmware FILE or $MPALLOC_RP2040_FIRMWARE"
              " (or put it in %s)" % (DOWNLOAD, cache_dir() / "firmware"))
    try:
        data = p.read_bytes()
    except OSError as e:
        raise EmuError("%s: cannot read: %s" % (p, e.strerror or e)) from None
    _check_sum(p, data)
    check_uf2(data, p)
    return p


def find_bootrom():
    p = _find("MPALLOC_RP2040_BOOTROM", BOOTROM_NAME, "RP2040 bootrom", None,
              "build it from %s or name it with $MPALLOC_RP2040_BOOTROM" % BOOTROM_SOURCE)
    data = p.read_bytes()
    if len(data) != 16384:
        raise EmuError("%s: %d bytes; the RP2040 bootrom is 16384" % (p, len(data)))
    _check_sum(p, data)
    return p


def rp2040js_dir():
    p = NODE_DIR / "node_modules" / NPM_PACKAGE / "package.json"
    if not p.is_file():
        raise EmuError("%s not found: run `make setup` (npm ci installs %s)" % (p.parent, NPM_PACKAGE))
    return p.parent


def flash_cache_path(firmware):
    """The flash image a session starts from, one per firmware (keyed by its sha256)."""
    h = hashlib.sha256(Path(firmware).read_bytes()).hexdigest()[:16]
    return cache_dir() / "emu-rp2040" / ("flash-%s.bin" % h)


class _Passthrough:
    """The firmware's own output is already a board's: nothing to cook."""

    hold = b""

    def feed(self, data):
        return data

    def flush(self):
        return b""


class EmuRp2040(PtyBridge):
    """The RP2040 MicroPython firmware in rp2040js, behind a pty."""

    kind = "emu"

    def __init__(self, board="rp2040", firmware=None, flash_image=None, fresh=False, keep=True):
        super().__init__()
        self.board = board
        self.name = "emu:%s" % board
        self.node = node_exe()
        rp2040js_dir()
        self.firmware = find_firmware(firmware)
        self.bootrom = find_bootrom()
        self._tmp = Path(tempfile.mkdtemp(prefix="mpalloc-emu-rp2040-"))
        self.flash_image = Path(flash_image) if flash_image else self._tmp / "flash.bin"
        self._cache = None if (flash_image or not keep) else flash_cache_path(self.firmware)
        self.from_cache = False
        if self._cache is not None and not fresh and self._cache.is_file():
            shutil.copyfile(self._cache, self.flash_image)
            self.from_cache = True
        self.errlog = self._tmp / "emu.log"
        self.cooker = _Passthrough()
        self.reboots = 0        # watchdog resets of the chip (machine.reset())

    def start(self, timeout=30.0):
        try:
            super().start(timeout)
            self._check_banner()
        except VBoardError:
            if not self.from_cache:
                raise
            # the cached flash (a boot.py/main.py left there?) does not come up: fresh filesystem
            self.close(save=False)
            self.__init__(self.board, self.firmware, fresh=True)
            super().start(timeout)
            self._check_banner()
        return self

    def _check_banner(self):
        seen = b"".join(self._traffic)
        if b"MicroPython" not in seen or BANNER not in seen:
            self.close(save=False)
            raise EmuError("%s: %s booted but its banner names no RP2040 MicroPython: %r"
                           % (self.name, self.firmware, seen[-200:]))

    def _spawn(self, raw):
        argv = [self.node, str(MJS), str(self.bootrom), str(self.firmware), str(self.flash_image),
                str(FLASH_BYTES)]
        env = None
        if self.reboots:    # the chip after a watchdog reset: its REASON register says so
            env = dict(os.environ, MPALLOC_EMU_WATCHDOG_REASON="2")
        self._errf = open(self.errlog, "ab")
        try:
            return Child(argv, cwd=str(ROOT), env=env, tty_=False, stderr=self._errf)
        finally:
            self._errf.close()

    def _new_child(self, raw):
        super()._new_child(raw)
        # A Pico shows nothing on its USB port until the host sends something (the banner
        # printed at boot waits for a connected host); Ctrl-B in the friendly REPL prints
        # the banner and a prompt.
        self._to_child += b"\x02"

    def _on_child_exit(self, rc):
        # the firmware soft-resets itself; the runner exits only for a watchdog
        # reset of the chip (machine.reset(), REBOOT): a fresh chip from the saved
        # flash behind the same pty. Any other exit is a death.
        if rc == REBOOT:
            self.reboots += 1
            return True
        return False

    def _die(self, reason):
        err = self.stderr_tail()
        super()._die(reason + ((": " + err) if err else ""))

    def stderr_tail(self):
        try:
            lines = self.errlog.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def logs(self):
        return super().logs() + "\nemulator stderr: %s" % self.stderr_tail()

    def close(self, save=True):
        if self._closed:
            return
        alive = self.alive()
        child = self.child
        if child is not None and child.poll() is None:
            # SIGTERM: the emulator saves the flash image and exits. Sent while the
            # pump thread that spawned it still runs: that thread's end SIGKILLs the
            # emulator (PR_SET_PDEATHSIG follows the spawning thread), and a save
            # cut off that way lost the last writes before close (a file created,
            # its contents not).
            try:
                os.kill(child.pid, signal.SIGTERM)
                child.proc.wait(timeout=3)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._stop.set()
        super().close()       # SIGKILL to what is left
        if save and alive and self._cache is not None and self.flash_image.is_file():
            try:
                self._cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = self._cache.with_name(self._cache.name + ".%d" % os.getpid())
                shutil.copyfile(self.flash_image, tmp)
                os.replace(tmp, self._cache)
            except OSError:
                pass          # a cache only
        shutil.rmtree(self._tmp, ignore_errors=True)


def start(board="rp2040", timeout=30.0, **kw):
    return EmuRp2040(board, **kw).start(timeout)
