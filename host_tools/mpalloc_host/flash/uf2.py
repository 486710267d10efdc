"""UF2 images (Microsoft's USB Flashing Format), as the RP2040 boot ROM takes them.

A UF2 file is a run of 512-byte blocks, each self-describing:

    0   magic0 0x0A324655 ("UF2\\n")   4  magic1 0x9E5D5157
    8   flags                          12 target address
    16  payload bytes (<= 476)         20 block number
    24  number of blocks               28 family ID (flag 0x2000) or file size
    32  payload (476 bytes)            508 magic end 0x0AB16F30

The boot ROM ignores blocks of another family when the family flag is set, so an
image for another chip is copied "successfully" and does nothing: check first.
"""
import struct

from .errors import FlashError

BLOCK = 512
MAGIC0, MAGIC1, MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30
FLAG_NOT_MAIN_FLASH = 0x00000001
FLAG_FAMILY_ID = 0x00002000
_HDR = struct.Struct("<8I")

# A few entries of the UF2 family table, so an error can name what the image is for.
FAMILIES = {
    0xE48BFF56: "RP2040",
    0xE48BFF57: "RP2XXX_ABSOLUTE",
    0xE48BFF58: "RP2XXX_DATA",
    0xE48BFF59: "RP2350_ARM_S",
    0xE48BFF5A: "RP2350_RISCV",
    0xE48BFF5B: "RP2350_ARM_NS",
    0xADA52840: "NRF52840",
    0xBFDD4EEE: "ESP32S2",
    0xC47E5767: "ESP32S3",
    0xD42BA06C: "ESP32C3",
    0x16573617: "ATMEGA32",
    0x68ED2B88: "SAMD21",
    0x55114460: "SAMD51",
}


def family_name(fid):
    return FAMILIES.get(fid, f"0x{fid:08x}")


class Image:
    """A checked UF2 image: family, address range, and the payload bytes."""

    def __init__(self, family, nblocks, lo, hi, payload):
        self.family = family      # family ID, or None if no block carries one
        self.nblocks = nblocks
        self.lo, self.hi = lo, hi  # [lo, hi) of the main-flash payload
        self.payload = payload    # the payload bytes in block order (for version strings)


def parse(data, path="image"):
    """Check every block of `data` (bytes) and return an Image; FlashError naming
    the block and field that is wrong."""
    if len(data) == 0 or len(data) % BLOCK:
        raise FlashError(f"{path}: {len(data)} bytes is not a whole number of 512-byte UF2 blocks: not a .uf2")
    families = set()
    nblocks = None
    seen = set()
    lo, hi = None, None
    chunks = []
    for i in range(len(data) // BLOCK):
        blk = data[i * BLOCK:(i + 1) * BLOCK]
        m0, m1, flags, addr, size, blockno, total, fam = _HDR.unpack_from(blk)
        (mend,) = struct.unpack_from("<I", blk, BLOCK - 4)
        if m0 != MAGIC0 or m1 != MAGIC1 or mend != MAGIC_END:
            raise FlashError(f"{path}: block {i} has bad UF2 magic numbers: not a .uf2 (or a damaged one)")
        if flags & FLAG_NOT_MAIN_FLASH:
            continue
        if size > 476 or blockno >= total:
            raise FlashError(f"{path}: block {i}: payload {size} bytes, block {blockno} of {total}: damaged UF2")
        if nblocks is None:
            nblocks = total
        elif total != nblocks:
            raise FlashError(f"{path}: block {i} says the file has {total} blocks, block 0 said {nblocks}")
        if flags & FLAG_FAMILY_ID:
            families.add(fam)
        seen.add(blockno)
        lo = addr if lo is None else min(lo, addr)
        hi = addr + size if hi is None else max(hi, addr + size)
        chunks.append(blk[32:32 + size])
    if nblocks is None:
        raise FlashError(f"{path}: no block is meant for main flash")
    if len(seen) != nblocks:
        raise FlashError(f"{path}: {len(seen)} of {nblocks} blocks present: the file is truncated")
    if len(families) > 1:
        names = ", ".join(sorted(family_name(f) for f in families))
        raise FlashError(f"{path}: blocks for several families ({names}); expected one image")
    return Image(families.pop() if families else None, nblocks, lo, hi, b"".join(chunks))


def check_family(img, want, path="image", board="board"):
    """Refuse an image whose family ID is not `want` (int)."""
    if img.family is None:
        raise FlashError(f"{path}: the UF2 carries no family ID; refusing to guess that it is for {board} "
                         f"({family_name(want)})")
    if img.family != want:
        raise FlashError(f"{path}: UF2 family {family_name(img.family)} (0x{img.family:08x}) is for another chip; "
                         f"{board} needs {family_name(want)} (0x{want:08x})")


def make(payload, base, family):
    """Build a UF2 image of `payload` at `base` (used by tests and by nothing that
    writes a board: real images come from a MicroPython build)."""
    n = (len(payload) + 255) // 256
    out = []
    for i in range(n):
        chunk = payload[i * 256:(i + 1) * 256]
        hdr = _HDR.pack(MAGIC0, MAGIC1, FLAG_FAMILY_ID, base + i * 256, 256, i, n, family)
        body = chunk + bytes(476 - len(chunk))
        out.append(hdr + body + struct.pack("<I", MAGIC_END))
    return b"".join(out)
