"""The three ways onto a board, each ending in identity verification.

  uf2           RP2040: machine.bootloader() (or the user holds BOOTSEL), wait for
                the RPI-RP2 drive, copy the .uf2 (picotool instead when installed),
                wait for the serial port (found again by USB serial number), verify.
  esptool       ESP32: esptool write-flash at the profile's offset, verify.
  microbit-hex  micro:bit v1: the firmware .hex plus mpalloc's start-up script in
                the script area; copy to the MICROBIT drive (or, on qemu:microbit,
                boot exactly that .hex in QEMU), verify.

Before writing anything: the image is checked (UF2 family, ESP header, nRF51
hex), and the board on the port, if it answers, must be the profile's kind; if
it already runs what the image would give, nothing is written (force=True
writes anyway). After writing, the board must say what the image says, or the
result is an error: nothing half-done is reported as success.
"""
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .. import profiles
from ..transport import BoardError, Transport
from . import drives, esp, identity, microbit_hex, uf2
from . import firmware_version
from .errors import FlashError

PORT_BACK_S = 20.0     # a rebooted board's serial port must be back within this
RP2040_FLASH = (0x10000000, 0x11000000)


class Result:
    """What happened: `action` is "flashed", "skipped" or "verified"; `identity`
    what the board said afterwards; `notes` lines for the user."""

    def __init__(self, action, ident, expected, port, notes=()):
        self.action = action
        self.identity = ident
        self.expected = expected
        self.port = port
        self.notes = list(notes)


class Link:
    """An open raw-REPL link to whatever `port` names, with the target behind it
    (virtual board, QEMU) kept alive until close()."""

    def __init__(self, port, board, target=None):
        self.port = port
        self.target = target
        device = target.device if target is not None else port
        alive = getattr(target, "alive", None)
        self.transport = Transport(device, name=port, alive=alive)
        self.device = device

    def identity(self, soft_reset=True):
        t = self.transport
        try:
            t.enter_raw_repl(soft_reset=soft_reset)
            return identity.read(t)
        except BoardError as e:
            raise FlashError("could not read the board's identity: %s" % (e,), where=self.port) from None

    def close(self):
        try:
            self.transport.close()
        finally:
            if self.target is not None:
                self.target.close()


def is_virtual(port):
    return port.startswith(("vboard:", "wasm32:"))


def open_link(port, board, firmware=None):
    """A Link to `port`: a device path or pyserial URL, vboard:<b>, qemu:microbit
    (booting `firmware` if given)."""
    target = None
    if port.startswith("emu:"):
        from ..emu_rp2040 import EmuRp2040
        from ..vboard import VBoardError

        try:  # the image given, on a fresh flash (the user's cached flash image is left alone)
            target = EmuRp2040(board or "rp2040", firmware=firmware, keep=False).start(60)
        except VBoardError as e:
            raise FlashError("%s: %s" % (port, str(e).splitlines()[0])) from None
    elif port.startswith("qemu:"):
        from .. import qemu
        from ..targets.qemu import PACE

        target = qemu.QemuMicrobit(firmware, pace=PACE).start()
    elif port.startswith(("vboard:", "wasm32:", "labgrid:")):
        from ..targets import open_target

        target = open_target(port, board)
    try:
        return Link(port, board, target)
    except BoardError as e:
        if target is not None:
            target.close()
        raise FlashError(e.what, where=e.where) from None


def usb_serial_number(device):
    """The USB serial number behind a serial device path, or None."""
    try:
        from serial.tools import list_ports
    except ImportError:  # pragma: no cover
        return None
    real = os.path.realpath(device)
    for p in list_ports.comports():
        if p.device in (device, real) and p.serial_number:
            return p.serial_number
    return None


def wait_port_back(device, serial_number, deadline_s=PORT_BACK_S, comports=None):
    """After a reboot: the device path of the board with `serial_number` (it may
    have a new name), or `device` once it exists again. FlashError on timeout."""
    if comports is None:
        from serial.tools import list_ports

        comports = list_ports.comports
    end = time.monotonic() + deadline_s
    while True:
        if serial_number:
            for p in comports():
                if p.serial_number == serial_number:
                    return p.device
        elif os.path.exists(device):
            return device
        if time.monotonic() >= end:
            who = "USB serial number %s" % serial_number if serial_number else device
            raise FlashError("the board's serial port (%s) did not come back within %g s after flashing: "
                             "the image may not boot; check the board (and dmesg)" % (who, deadline_s))
        time.sleep(0.2)


def _expected(profile, image, port, virtual, mpalloc_version=None):
    exp = identity.expected(profile, image, mpalloc_version)
    if virtual:
        # A virtual board is the unix port whatever board it plays.
        exp.platform, exp.mcu = "linux", None
    return exp


def _verify(link, exp, say, soft_reset=True):
    ident = link.identity(soft_reset=soft_reset)
    bad = identity.compare(ident, exp)
    if bad:
        raise FlashError("the board is not what was flashed: %s" % ("; ".join(bad),), where=link.port)
    say("verified: %s" % ident.describe())
    return ident


def _pre_check(port, board, profile, exp, force, say, virtual):
    """Talk to the board before writing. Returns (identity or None, usb serial).
    Raises if a MicroPython board of the wrong kind answers."""
    if port.startswith("qemu:"):
        return None, None
    try:
        link = open_link(port, board)
    except FlashError as e:
        say("no MicroPython board answers on %s (%s): flashing blind" % (port, e.what))
        return None, None
    try:
        serial = usb_serial_number(link.device)
        try:
            ident = link.identity()
        except FlashError as e:
            say("the board on %s does not answer the identity probe (%s): flashing anyway" % (port, e))
            return None, serial
        say("on the port: %s" % ident.describe())
        if not virtual:
            identity.check_board(ident, profile, board)
        return ident, serial
    finally:
        link.close()


def _already(ident, exp, force, say):
    if ident is None or force or not exp.build:
        return False
    if identity.compare(ident, exp):
        return False
    say("the board already runs %s: nothing to flash (use --force to flash anyway)" % ident.describe())
    return True


def flash_file(port, board, firmware, verify_only=False, erase=False, force=False, drive_roots=(),
               out=None, say=print, bootloader=None, virtual=None):
    """Flash `firmware` onto the board on `port` (profile `board`) and verify.

    drive_roots: directories to look at for the boot drive before the mount points.
    out: where to write the built .hex (micro:bit). bootloader: callable(link)
    that puts the board into its USB bootloader (default: machine.bootloader()).
    virtual: the serial side is a virtual board (default: port is vboard:/wasm32:).
    """
    profile = profiles.load(board)
    fl = profile.get("flash")
    if not fl:
        raise FlashError("board %s has no flash section in boards/%s.json: mpalloc cannot flash it" % (board, board))
    if virtual is None:
        virtual = is_virtual(port)
    path = Path(firmware)
    if not path.is_file():
        raise FlashError("no such firmware file", where=firmware)
    method = fl.get("method")
    if method == "uf2":
        return _flash_uf2(port, board, profile, fl, path, verify_only, force, drive_roots, say, bootloader, virtual)
    if method == "esptool":
        return _flash_esp(port, board, profile, fl, path, verify_only, erase, force, say, virtual)
    if method == "microbit-hex":
        return _flash_microbit(port, board, profile, fl, path, verify_only, force, drive_roots, out, say, virtual)
    raise FlashError("boards/%s.json: unknown flash method %r" % (board, method))


def _verify_only(port, board, exp, say, soft_reset=True):
    link = open_link(port, board)
    try:
        ident = _verify(link, exp, say, soft_reset)
    finally:
        link.close()
    return Result("verified", ident, exp, port)


# -- RP2040 -----------------------------------------------------------------------


def machine_bootloader(link):
    """Ask MicroPython to reboot into the USB bootloader; the port goes away."""
    t = link.transport
    try:
        t.enter_raw_repl(soft_reset=False)
        t.exec_raw_no_follow(b"import machine\nmachine.bootloader()\n")
    except Exception:  # the port may vanish while we speak: that is the point
        pass


def _flash_uf2(port, board, profile, fl, path, verify_only, force, drive_roots, say, bootloader, virtual):
    data = path.read_bytes()
    img = uf2.parse(data, str(path))
    uf2.check_family(img, int(fl["uf2_family"], 16), str(path), board)
    if not (RP2040_FLASH[0] <= img.lo and img.hi <= RP2040_FLASH[1]):
        raise FlashError("writes 0x%08x-0x%08x, outside the RP2040's flash at 0x%08x" % (img.lo, img.hi, RP2040_FLASH[0]), where=path)
    say("%s: UF2 for %s, %d blocks, %d bytes at 0x%08x" % (path.name, uf2.family_name(img.family),
                                                           img.nblocks, len(img.payload), img.lo))
    exp = _expected(profile, img.payload, port, virtual)
    if port.startswith("emu:"):
        return _boot_in_emu(port, board, path, exp, say)
    if verify_only:
        return _verify_only(port, board, exp, say)
    ident, serial = _pre_check(port, board, profile, exp, force, say, virtual)
    if _already(ident, exp, force, say):
        return Result("skipped", ident, exp, port)
    if ident is not None:
        say("rebooting the board into its USB bootloader")
        link = open_link(port, board)
        try:
            (bootloader or machine_bootloader)(link)
        finally:
            try:
                link.close()
            except Exception:
                pass
    else:
        say("hold BOOTSEL while plugging the board in (or press RESET with BOOTSEL held)")
    picotool = shutil.which("picotool")
    deadline = float(fl.get("drive_deadline_s", 30))
    if picotool and not drive_roots:
        say("writing with %s" % picotool)
        r = subprocess.run([picotool, "load", "-v", "-x", str(path)], timeout=deadline + 120)
        if r.returncode != 0:
            raise FlashError("picotool failed (exit %d, see above): the board is not flashed" % r.returncode)
    else:
        drive = drives.wait(fl["drive_marker"], fl.get("drive_board_id"), drive_roots, deadline,
                            what=fl.get("drive_board_id", "boot"),
                            hint="hold BOOTSEL while plugging the board in, and check the drive gets mounted "
                                 "(or name its mount point with --drive)")
        say("copying %d bytes to %s" % (len(data), drive))
        drives.copy(data, drive, fl.get("image_name", "firmware.uf2"), _progress(say))
    return _after_reboot(port, board, serial, exp, say)


def _after_reboot(port, board, serial, exp, say):
    device = port
    if not port.startswith(("vboard:", "wasm32:", "qemu:", "rfc2217:", "socket:")):
        device = wait_port_back(port, serial)
        if device != port:
            say("the board came back as %s" % device)
    end = time.monotonic() + PORT_BACK_S
    while True:
        try:
            link = open_link(device, board)
            break
        except FlashError as e:
            if time.monotonic() >= end:
                raise FlashError("%s did not answer after flashing: %s" % (device, e)) from None
            time.sleep(0.3)
    try:
        ident = _verify(link, exp, say)
    finally:
        link.close()
    return Result("flashed", ident, exp, device)


def _progress(say):
    state = {"last": -1}

    def show(done, total):
        pct = done * 100 // max(total, 1)
        if pct // 25 != state["last"] // 25 or done == total:
            state["last"] = pct
            say("  %3d%% (%d of %d bytes)" % (pct, done, total))

    return show


# -- ESP32 ------------------------------------------------------------------------


def _flash_esp(port, board, profile, fl, path, verify_only, erase, force, say, virtual):
    data = path.read_bytes()
    chip = esp.check_image(data, fl["chip"], str(path))
    say("%s: ESP image for %s, %d bytes, to 0x%x" % (path.name, chip, len(data), int(fl["offset"], 16)))
    exp = _expected(profile, data, port, virtual)
    if verify_only:
        return _verify_only(port, board, exp, say)
    ident, serial = _pre_check(port, board, profile, exp, force, say, virtual)
    if not erase and _already(ident, exp, force, say):
        return Result("skipped", ident, exp, port)
    esp.run_esptool(esp.esptool_args(port, fl, path, erase=erase))
    return _after_reboot(port, board, serial, exp, say)


# -- micro:bit --------------------------------------------------------------------


def build_microbit_hex(profile, firmware):
    """The firmware .hex with mpalloc's start-up script embedded: (IntelHex, script)."""
    ih = microbit_hex.read_hex(firmware)
    microbit_hex.check_firmware(ih, str(firmware))
    script = microbit_hex.startup_script(firmware_version(), profile.get("managed", {}).get("bytes", 2048))
    return microbit_hex.embed_script(ih, script), script


def _flash_microbit(port, board, profile, fl, path, verify_only, force, drive_roots, out, say, virtual):
    ih, script = build_microbit_hex(profile, path)
    image = ih.tobinstr(start=0, end=microbit_hex.FLASH_END - 1)
    exp = _expected(profile, image, port, virtual, microbit_hex.script_version(script))
    tmpdir = None
    if out is None:
        tmpdir = tempfile.mkdtemp(prefix="mpalloc-flash-")
        out = os.path.join(tmpdir, fl.get("image_name", "mpalloc.hex"))
    try:
        microbit_hex.write_hex(ih, out)
        say("%s: built %s (start-up script, %d bytes, at 0x%x)" % (path.name, out, len(script),
                                                                  microbit_hex.SCRIPT_ADDR))
        if verify_only:
            return _verify_only(port, board, exp, say)
        if port.startswith("qemu:"):
            return _boot_in_qemu(port, board, out, exp, say)
        ident, serial = _pre_check(port, board, profile, exp, force, say, virtual)
        if _already(ident, exp, force, say):
            return Result("skipped", ident, exp, port)
        drive = drives.wait(fl["drive_marker"], None, drive_roots, float(fl.get("drive_deadline_s", 30)),
                            what="MICROBIT", hint="plug the micro:bit in over USB and check the drive gets mounted "
                                                  "(or name its mount point with --drive)")
        data = Path(out).read_bytes()
        say("copying %d bytes to %s" % (len(data), drive))
        drives.copy(data, drive, fl.get("image_name", "mpalloc.hex"), _progress(say))
        time.sleep(1.0)  # DAPLink programs the chip, then resets it; the port stays
        return _after_reboot(port, board, serial, exp, say)
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


def _boot_in_emu(port, board, uf2_path, exp, say):
    """emu:rp2040: "flashing" is booting exactly that UF2 in the emulated RP2040
    (fresh flash); the board lives for this command. Its identity is checked."""
    say("booting %s in the emulated RP2040 (%s)" % (uf2_path, port))
    link = open_link(port, board, firmware=uf2_path)
    try:
        ident = _verify(link, exp, say, soft_reset=False)
    finally:
        link.close()
    return Result("flashed", ident, exp, port)


def _boot_in_qemu(port, board, hex_path, exp, say):
    """qemu:microbit: "flashing" is booting exactly that .hex; the emulated board
    lives for this command. Shows what the start-up script printed and left."""
    say("booting %s in QEMU (qemu:microbit)" % hex_path)
    link = open_link(port, board, firmware=hex_path)
    try:
        t = link.transport
        notes = []
        try:
            t.enter_raw_repl(soft_reset=False)
            boot = t.exec("print(repr(mpalloc_boot))").decode().strip()
        except BoardError as e:
            raise FlashError("the start-up script did not run (no mpalloc_boot in the REPL: %s)" % (str(e).splitlines()[-1],), where=port) from None
        notes.append("start-up script ran: mpalloc_boot = %s" % boot)
        say(notes[-1])
        ident = _verify(link, exp, say, soft_reset=False)
    finally:
        link.close()
    return Result("flashed", ident, exp, port, notes)
