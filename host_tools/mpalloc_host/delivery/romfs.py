"""ROMFS: mpalloc's modules as .mpy in the firmware's read-only ROMFS partition
(`mpalloc deploy --romfs`), where MicroPython runs their bytecode in place from
flash instead of copying it into the gc heap.

The image is built with mpremote's ROMFS writer (mpremote.romfs.VfsRomWriter,
pinned in requirements.txt): mpalloc/<module>.mpy for the board's arch and
mpalloc/__init__.py. It is written through the board's `vfs.rom_ioctl(2, 0)`
device (rp2: an rp2.Flash block device over the partition, also readable as a
buffer): the blocks the image covers are erased, block 0 first; the blocks
after the first are written, then block 0, which holds the image's header. A
write cut off at any point therefore leaves no valid header: the firmware does
not mount /rom and boots as before, and the next deploy writes it all again.
After a soft reset the firmware mounts the image on /rom (sys.path:
'', '.frozen', '/rom', '/rom/lib', '/lib').

Only mpalloc's own paths are touched on the filesystem: /mpalloc/ (it would
shadow /rom/mpalloc, '' comes first on sys.path) and board.json.

Refused before anything is written, one line each (RomfsError): a firmware
without ROMFS (no vfs.rom_ioctl, or no partition 0), an image larger than the
partition. An unchanged image (sha256 of the partition's first bytes) is not
written again.
"""
import base64
import hashlib

from ..errors import BoardError
from .fs import FsDelivery

ROMFS_FIRMWARE_HINT = ("flash a firmware with a ROMFS partition (RPI_PICO_ROMFS, or on emu:rp2040 "
                       "--firmware RPI_PICO_ROMFS-v1.28.0.uf2)")

_PROBE = """
import vfs
def _p():
    if not hasattr(vfs, 'rom_ioctl'):
        return ('no_ioctl',)
    n = vfs.rom_ioctl(1)
    if not isinstance(n, int) or n <= 0:
        return ('no_partition', n)
    d = vfs.rom_ioctl(2, 0)
    if isinstance(d, int):
        return ('no_partition', d)
    if not hasattr(d, 'ioctl'):
        return ('no_blockdev', len(d))
    return ('ok', d.ioctl(4, 0), d.ioctl(5, 0))
print(repr(_p()))
del _p
"""

# sha256 of the partition's first n bytes (the image there, if any)
_DIGEST = """
import vfs, hashlib, binascii
_m = memoryview(vfs.rom_ioctl(2, 0))
print(repr(binascii.hexlify(hashlib.sha256(_m[:%d]).digest()).decode()))
del _m
"""

_OPEN = "import vfs, binascii\n_d = vfs.rom_ioctl(2, 0)\ntry:\n vfs.umount('/rom')\nexcept OSError:\n pass\n"

# the firmware's files on the filesystem that would shadow /rom/mpalloc
_REMOVE_SHADOW = """
import os
def _rm(names):
    gone = []
    try:
        have = os.listdir('/mpalloc')
    except OSError:
        return gone
    for f in have:
        if f in names:
            os.remove('/mpalloc/' + f)
            gone.append('mpalloc/' + f)
    try:
        os.rmdir('/mpalloc')
    except OSError:
        pass
    return gone
print(repr(_rm(%r)))
del _rm
"""


class RomfsError(BoardError):
    """ROMFS delivery refused or failed; one line naming the board."""


def build_image(files):
    """The ROMFS image (bytes) of files [(path "a/b.mpy", bytes)], one directory level
    deep at most, built with mpremote's VfsRomWriter."""
    from mpremote.romfs import VfsRomWriter

    w = VfsRomWriter()
    top = [(p, d) for p, d in files if "/" not in p]
    dirs = {}
    for p, d in files:
        if "/" in p:
            head, name = p.split("/", 1)
            if "/" in name:
                raise ValueError("romfs: %s is nested deeper than one directory" % p)
            dirs.setdefault(head, []).append((name, d))
    for name, data in sorted(top):
        w.mkfile(name, data)
    for head in sorted(dirs):
        w.opendir(head)
        for name, data in sorted(dirs[head]):
            w.mkfile(name, data)
        w.closedir()
    return w.finalise()


class RomfsDelivery(FsDelivery):
    """deploy() writes a ROMFS image; suites and stats go the filesystem way (FsDelivery)."""
    name = "romfs"

    def default_only(self, board):
        from ..dist import runtime_modules

        return runtime_modules()

    def wants_mpy(self, board):
        return True

    def partition(self, board):
        """(bytes, block size) of ROMFS partition 0; RomfsError where there is none."""
        r = board.eval_block(_PROBE, timeout=30)
        if r[0] == "no_ioctl":
            raise RomfsError("this firmware has no ROMFS (vfs.rom_ioctl is missing): %s; nothing was written"
                             % ROMFS_FIRMWARE_HINT, where=board.name)
        if r[0] == "no_partition":
            raise RomfsError("this firmware has no ROMFS partition (vfs.rom_ioctl gives %r): %s; nothing was "
                             "written" % (r[1], ROMFS_FIRMWARE_HINT), where=board.name)
        if r[0] != "ok":
            raise RomfsError("the ROMFS partition is not a block device here (%r): only the rp2 port's is "
                             "written by mpalloc; nothing was written" % (r,), where=board.name)
        return r[1] * r[2], r[2]

    def plan(self, board, mpy=True, only=None):
        return super().plan(board, mpy=True, only=only)

    def deploy(self, board, mpy=None, progress=None, only=None):
        # The image always holds every runtime module (one image, whatever a command
        # asks for: not rewritten from one command to the next); other modules asked
        # for (mptest, ...) and board.json go to the filesystem.
        from ..dist import runtime_modules

        only = list(only) if only is not None else []
        rom_only = set(runtime_modules()) | {m for m in only if m.startswith("mpalloc.")}
        fs_only = [m for m in only if not m.startswith("mpalloc.")]
        rom = [(d, data) for d, data in self.plan(board, only=rom_only) if d.startswith("mpalloc/")]
        rest = [(d, data) for d, data in FsDelivery.plan(self, board, mpy=False, only=fs_only)
                if not d.startswith("mpalloc/")]
        image = build_image(rom)
        size, block = self.partition(board)
        if len(image) > size:
            raise RomfsError("the ROMFS image (%d bytes, %d files) is larger than the ROMFS partition (%d bytes); "
                             "nothing was written" % (len(image), len(rom), size), where=board.name)
        result = {"mode": self.name, "copied": [], "skipped": [], "removed": [], "bytes": 0,
                  "image_bytes": len(image), "partition_bytes": size, "files": [d for d, _ in rom]}
        same = board.eval_block(_DIGEST % len(image), timeout=60) == hashlib.sha256(image).hexdigest()
        if same:
            result["skipped"].append("romfs")
        else:
            self.write_image(board, image, block, progress)
            result["copied"].append("romfs")
            result["bytes"] += len(image)
        # the image's files and their other flavour (.py / .mpy), as the filesystem may have them
        base = [d.split("/", 1)[1] for d, _ in rom]
        names = sorted(set(base) | {n[:-4] + ".py" for n in base if n.endswith(".mpy")}
                       | {n[:-3] + ".mpy" for n in base if n.endswith(".py")})
        result["removed"] = board.eval_block(_REMOVE_SHADOW % (names,), timeout=60)
        for dest, data in rest:
            if board.deploy_file(dest, data):
                result["copied"].append(dest)
                result["bytes"] += len(data)
            else:
                result["skipped"].append(dest)
        if result["copied"] or result["removed"]:
            board.soft_reset()   # the firmware mounts the new image on /rom; modules imported before are gone
        where = board.eval("__import__('mpalloc').__file__")
        if not str(where).startswith("/rom/"):
            raise RomfsError("after the ROMFS deploy mpalloc is imported from %s, not from /rom" % where,
                             where=board.name)
        return result

    def write_image(self, board, image, block, progress=None):
        """Erase the blocks `image` covers and write it, its first block last."""
        nblocks = -(-len(image) // block)
        board.exec(_OPEN, timeout=30)
        board.exec("for _b in range(%d):\n _d.ioctl(6, _b)\n" % nblocks, timeout=30 + nblocks)
        chunk = min(block, 4096)
        offsets = list(range(chunk, nblocks * block, chunk)) + [0]
        done = 0
        for off in offsets:
            piece = image[off:off + chunk]
            if not piece:
                continue
            piece += b"\xff" * (-len(piece) % 256)  # flash programs whole 256-byte pages
            board.exec("_d.writeblocks(%d, binascii.a2b_base64(%r), %d)"
                       % (off // block, base64.b64encode(piece).decode(), off % block), timeout=30)
            done += len(piece)
            if progress:
                progress(min(done, len(image)), len(image), "romfs")
        board.exec("del _d", timeout=10)
