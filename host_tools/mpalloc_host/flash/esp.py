"""ESP32 firmware images and esptool.

MicroPython's ESP32 firmware.bin starts with the second-stage bootloader image,
whose header esptool (and the ROM) read:

    0  magic 0xE9          1  segment count      2  SPI mode     3  size/frequency
    4  entry point (LE)    8  WP pin             9  SPI drive settings (3 bytes)
    12 chip ID (uint16 LE): the chip the image was built for (ESP32 = 0)

Writing is esptool's job (pinned in requirements.txt): we build its argument
list from the board profile, run it as `python -m esptool` so its own progress
shows, and turn its failure into a FlashError.
"""
import struct
import subprocess
import sys

from .errors import FlashError

ESP_IMAGE_MAGIC = 0xE9


def chip_names():
    """esptool's chip table: image chip ID -> (esptool --chip name, chip name)."""
    from esptool.targets import CHIP_DEFS

    return {rom.IMAGE_CHIP_ID: (key, rom.CHIP_NAME) for key, rom in CHIP_DEFS.items()
            if getattr(rom, "IMAGE_CHIP_ID", None) is not None}


def _what_is(data):
    if data[:4] == b"UF2\n":
        return "a UF2 file"
    if data[:1] == b":":
        return "an Intel HEX file"
    if data[:4] == b"\x7fELF":
        return "an ELF file (build output, not the flashable .bin)"
    return f"first byte 0x{data[0]:02x}, not the ESP image magic 0x{ESP_IMAGE_MAGIC:02X}"


def check_image(data, chip, path="image"):
    """Refuse `data` unless it is an ESP image built for `chip` (esptool's --chip
    name, e.g. "esp32"). Returns the chip name the image says."""
    if len(data) < 24 or data[0] != ESP_IMAGE_MAGIC:
        raise FlashError(f"{path}: not an ESP firmware image ({_what_is(data) if data else 'empty file'})")
    nseg = data[1]
    if not 1 <= nseg <= 16:
        raise FlashError(f"{path}: ESP image header says {nseg} segments: damaged image")
    (chip_id,) = struct.unpack_from("<H", data, 12)
    names = chip_names()
    want = [cid for cid, (key, _) in names.items() if key == chip]
    if not want:
        raise FlashError(f"board profile names chip {chip!r}, which esptool does not know")
    if chip_id != want[0]:
        got = names.get(chip_id, (None, f"unknown chip id {chip_id}"))[1]
        raise FlashError(f"{path}: this image was built for {got} (chip id {chip_id}); "
                         f"the board is an {names[want[0]][1]}: wrong firmware for this board")
    return names[chip_id][1]


def esptool_args(port, flash, image_path, erase=False):
    """esptool's command line (without the program name) to write `image_path`
    as the profile's `flash` section says (chip, offset, baud)."""
    args = ["--chip", flash["chip"], "--port", port, "--baud", str(flash.get("baud", 460800)),
            "--before", "default-reset", "--after", "hard-reset", "write-flash"]
    if erase:
        args.append("--erase-all")
    args += [flash["offset"], str(image_path)]
    return args


def run_esptool(args, timeout_s=300):
    """Run esptool with `args`; its output goes straight to the terminal.
    FlashError if it fails (its message is on the terminal just above)."""
    cmd = [sys.executable, "-m", "esptool", *args]
    try:
        r = subprocess.run(cmd, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise FlashError(f"esptool did not finish within {timeout_s} s: the board may be half-written; "
                         "flash again (hold BOOT if it does not connect)") from None
    if r.returncode != 0:
        raise FlashError(f"esptool failed (exit {r.returncode}, see its message above): the board is not flashed "
                         "(check the port, hold BOOT while it connects, or try a lower --baud)")
