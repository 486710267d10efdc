"""The virtual board's filesystem: a littlefs image in a host file, as a board's flash.

Representation: ``board.img`` (block_count blocks of BLOCK bytes), littlefs v2,
formatted on the host (littlefs-python) with the geometry MicroPython's
``vfs.VfsLfs2`` gets here (read size 32, prog size 256, lookahead 32). Inside the unix port a
block device in Python (BOOT_CODE) serves the image's blocks and the image is
mounted at ``/`` in place of the host's filesystem, as on a real board: paths
(``..``, absolute host paths) resolve inside the image, which holds no
symlinks; ``statvfs`` gives the board's own free space.

The host reads the image while the board runs (a littlefs commit is atomic,
every block the board writes is flushed at once); it writes only before the
board starts (``create``), never under a running board (its mounted state would
not know the change).
"""
import os
from pathlib import Path

from littlefs import LittleFS, LittleFSError, UserContext

from .errors import EmulatorError

BLOCK = 4096
READ = LOOKAHEAD = 32
PROG = 256   # as rp2's _boot.py mounts its flash (VfsLfs2(bdev, progsize=256))
# filesystem bytes of MicroPython's own builds: rp2 Pico 1408 KiB, esp32 generic 2 MiB
FS_BYTES = {"rp2040": 1408 * 1024, "esp32": 2048 * 1024}
DEFAULT_FS_BYTES = 1408 * 1024


class ImageError(EmulatorError):
    """The image cannot be made or read (a path or size that does not fit)."""


# Runs first in the unix port (vboard._boot_code), %-formatted with the image
# path and geometry. Afterwards nothing of the host is reachable by path: the
# image is mounted at /, vfs.VfsPosix and os.system are gone, machine.mem8/16/32
# (the host's /dev/mem) and ffi are refused.
BOOT_CODE = r"""
import os, sys, vfs, machine
class _Flash:
    def __init__(self, f, n):
        self.f = f
        self.n = n
    def readblocks(self, b, buf, off=0):
        self.f.seek(b * %(block)d + off)
        self.f.readinto(buf)
    def writeblocks(self, b, buf, off=0):
        self.f.seek(b * %(block)d + off)
        self.f.write(buf)
        self.f.flush()
    def ioctl(self, op, arg):
        if op == 4:
            return self.n
        if op == 5:
            return %(block)d
        return 0
_fs = vfs.VfsLfs2(_Flash(open(%(image)r, 'r+b'), %(blocks)d), readsize=%(read)d, progsize=%(prog)d, lookahead=%(lookahead)d)
os.umount('/')
vfs.mount(_fs, '/')
os.chdir('/')
class _Refused:
    def __init__(self, what):
        self._what = what
    def __getattr__(self, name):
        raise OSError(1, '%%s.%%s: refused on the virtual board (it would reach the host)' %% (self._what, name))
def _without(mod, drop):
    class _Mod:
        def __getattr__(self, name):
            if name in drop:
                raise AttributeError('%%s.%%s: not on the virtual board (it would reach the host)' %% (mod.__name__, name))
            raise AttributeError(name)
    m = _Mod()
    for k in dir(mod):
        if k not in drop and k not in ('__class__', '__dict__'):
            setattr(m, k, getattr(mod, k))
    return m
sys.modules['machine'] = sys.modules['umachine'] = _without(machine, ('mem8', 'mem16', 'mem32'))
sys.modules['vfs'] = _without(vfs, ('VfsPosix',))
sys.modules['os'] = sys.modules['uos'] = _without(os, ('VfsPosix', 'system'))
sys.modules['ffi'] = _Refused('ffi')
del _Flash, _fs, _Refused, _without, os, sys, vfs, machine
"""


def boot_code(image, blocks):
    return BOOT_CODE % {"image": str(image), "blocks": blocks, "block": BLOCK, "read": READ,
                        "prog": PROG, "lookahead": LOOKAHEAD}


def blocks_for(board, fs_bytes=None):
    n = int(fs_bytes or FS_BYTES.get(board, DEFAULT_FS_BYTES)) // BLOCK
    if n < 8:
        raise ImageError("a board filesystem of %s bytes is too small (8 blocks of %d bytes at least)"
                         % (fs_bytes, BLOCK))
    return n


def _fs(blocks, data=None):
    ctx = UserContext(BLOCK * blocks)
    if data is not None:
        ctx.buffer[:] = data
    return LittleFS(ctx, block_size=BLOCK, block_count=blocks, read_size=READ, prog_size=PROG,
                    lookahead_size=LOOKAHEAD, mount=data is not None)


def _norm(path):
    parts = [p for p in str(path).replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ImageError("'..' has no meaning on the board's filesystem", where=path)
    return "/" + "/".join(parts)


class BoardImage:
    """A board filesystem image on the host: made once, then read."""

    def __init__(self, path, blocks):
        self.path = Path(path)
        self.blocks = blocks

    def create(self, files=()):
        """Format the image and put `files` ({board path: bytes}) on it."""
        fs = _fs(self.blocks)
        fs.format()
        fs.mount()
        try:
            for dest, data in dict(files).items():
                if str(dest).endswith("/"):        # a directory
                    fs.makedirs(_norm(dest), exist_ok=True)
                    continue
                dest = _norm(dest)
                parent = dest.rsplit("/", 1)[0]
                if parent:
                    fs.makedirs(parent, exist_ok=True)
                with fs.open(dest, "wb") as f:
                    f.write(bytes(data))
        except LittleFSError as e:
            raise ImageError("cannot put the files on the board's %d-byte filesystem: %s"
                             % (self.blocks * BLOCK, e)) from None
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(bytes(fs.context.buffer))
        os.replace(tmp, self.path)

    def _mounted(self):
        return _fs(self.blocks, self.path.read_bytes())

    def read_bytes(self, path):
        fs = self._mounted()   # kept alive while the file is read (its handle points into it)
        try:
            with fs.open(_norm(path), "rb") as f:
                return f.read()
        except LittleFSError as e:
            raise FileNotFoundError("%s on the board: %s" % (path, e)) from None

    def read_text(self, path):
        return self.read_bytes(path).decode()

    def exists(self, path):
        try:
            self._mounted().stat(_norm(path))
            return True
        except LittleFSError:
            return False

    def listdir(self, path="/"):
        return sorted(self._mounted().listdir(_norm(path)))

    def walk(self, path="/"):
        """Every file below `path` (board paths, sorted)."""
        fs = self._mounted()
        out = []
        for top, _dirs, files in fs.walk(_norm(path)):
            out.extend((top.rstrip("/") + "/" + f) for f in files)
        return sorted(out)
