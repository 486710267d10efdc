"""micro:bit v1 .hex images: MicroPython firmware plus an embedded start-up script.

MicroPython 1.x for the micro:bit (bbcmicrobit/micropython) looks at a fixed
flash address at boot, in friendly-REPL mode only (a raw-REPL soft reset skips it):

    0x3E000  'M' 'P'          header
    0x3E002  uint16 LE        script length in bytes
    0x3E004  script source    (then zero padding to a 16-byte boundary)

If the header is there it runs the script as __main__, otherwise main.py from the
filesystem. The area ends at the end of flash (0x40000); with the header and the
padding the script may be at most 8188 bytes. The filesystem lives between the
end of the firmware and this area.

An image is handled as an intelhex.IntelHex (address -> byte), so the result is
a valid Intel HEX whatever order the firmware's records came in.
"""
import io
import re
import os
import struct

from intelhex import HexReaderError, IntelHex

from .errors import FlashError

SCRIPT_ADDR = 0x3E000
FLASH_END = 0x40000          # nRF51822: 256 KiB of flash at 0
UICR = (0x10001000, 0x10002000)
MAX_SCRIPT = 8188             # 0x2000 - 'MP' - length, as the firmware's tools say
_HEADER = b"MP"


def read_hex(path):
    """Parse an Intel HEX file; FlashError naming the file if it is not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(1)
            f.seek(0)
            if head != b":":
                raise FlashError(f"{path}: not an Intel HEX file (a micro:bit firmware is a .hex starting with ':')")
            return IntelHex(io.StringIO(f.read().decode("ascii")))
    except (HexReaderError, UnicodeDecodeError) as e:
        raise FlashError(f"{path}: broken Intel HEX: {e}") from None


def check_firmware(ih, path="firmware"):
    """Refuse an image that is not for the nRF51 (micro:bit v1): data outside its
    flash and UICR, or no vector table at 0, or code reaching into the script area."""
    segs = ih.segments()
    if not segs:
        raise FlashError(f"{path}: the .hex holds no data")
    for lo, hi in segs:
        if not (hi <= FLASH_END or (lo >= UICR[0] and hi <= UICR[1])):
            raise FlashError(
                f"{path}: data at 0x{lo:08x}-0x{hi:08x} lies outside the nRF51822's flash (0-0x{FLASH_END:x}) "
                "and UICR: this image is for another chip (micro:bit v2 is an nRF52833)")
    if ih.minaddr() != 0:
        raise FlashError(f"{path}: no vector table at address 0: not a micro:bit v1 firmware")
    sp, reset = struct.unpack("<II", ih.tobinstr(start=0, size=8))
    if not (0x20000000 <= sp <= 0x20004000) or reset >= FLASH_END:
        raise FlashError(f"{path}: vector table (sp=0x{sp:08x}, reset=0x{reset:08x}) does not fit an nRF51822 "
                         "with 16 KiB of RAM")
    code_end = max(hi for lo, hi in segs if hi <= FLASH_END)
    if code_end > SCRIPT_ADDR and extract_script(ih) is None:
        raise FlashError(f"{path}: the firmware reaches 0x{code_end:x}, into the script area at 0x{SCRIPT_ADDR:x}")


def script_block(script):
    """The bytes the firmware expects at SCRIPT_ADDR for `script` (bytes)."""
    script = script.replace(b"\r\n", b"\n")
    if len(script) > MAX_SCRIPT:
        raise FlashError(f"start-up script is {len(script)} bytes; the micro:bit script area holds at most {MAX_SCRIPT}")
    data = _HEADER + struct.pack("<H", len(script)) + script
    return data + bytes(-len(data) % 16)


def embed_script(ih, script):
    """A copy of firmware image `ih` with `script` (bytes) in the script area,
    replacing any script already there."""
    out = IntelHex(ih)
    del out[SCRIPT_ADDR:FLASH_END]            # an old script and its padding
    out.puts(SCRIPT_ADDR, script_block(script))
    return out


def extract_script(ih):
    """The script embedded in image `ih`, or None if there is none."""
    if ih[SCRIPT_ADDR] != _HEADER[0] or ih[SCRIPT_ADDR + 1] != _HEADER[1]:
        return None
    n = ih[SCRIPT_ADDR + 2] | ih[SCRIPT_ADDR + 3] << 8
    if n > MAX_SCRIPT:
        return None
    return ih.tobinstr(start=SCRIPT_ADDR + 4, size=n)


def write_hex(ih, path):
    """Write image `ih` as Intel HEX (16-byte records, as the micro:bit tools write)."""
    buf = io.StringIO()
    ih.write_hex_file(buf, byte_count=16)
    tmp = f"{path}.part"
    with open(tmp, "w", newline="\n") as f:
        f.write(buf.getvalue())
    os.replace(tmp, path)


def startup_script(version, managed_bytes, source=None):
    """mpalloc's micro:bit start-up script (firmware/microbit_boot.py) with its two
    settings filled in: MPALLOC_VERSION and MANAGED_BYTES."""
    from .. import FIRMWARE_DIR

    text = source if source is not None else (FIRMWARE_DIR / "microbit_boot.py").read_text()
    text, n1 = re.subn(r'^MPALLOC_VERSION = .*$', 'MPALLOC_VERSION = "%s"' % version, text, count=1, flags=re.M)
    text, n2 = re.subn(r'^MANAGED_BYTES = .*$', "MANAGED_BYTES = %d" % int(managed_bytes), text, count=1, flags=re.M)
    if n1 != 1 or n2 != 1:
        raise FlashError("firmware/microbit_boot.py lost its MPALLOC_VERSION / MANAGED_BYTES lines")
    return text.encode()


def script_version(script):
    """The MPALLOC_VERSION an embedded start-up script carries, or None."""
    m = re.search(rb'^MPALLOC_VERSION = "([^"]*)"', script or b"", re.M)
    return m.group(1).decode() if m else None
