"""``wasm32:<board>``: the 32-bit MicroPython webassembly port under Node.js, behind a pty.

Real boards are 32-bit: ints of 2**30 and above are heap objects there, so only
a 32-bit runtime catches code that allocates where it must not. This runs
host_tools/node/node_modules/@micropython/micropython-webassembly-pyscript (pinned in
host_tools/node/package.json) through wasm_board.mjs, which drives the port's event-driven REPL
(``replInit``/``replProcessChar``) from stdin. The same pump as the virtual
board (vboard.PtyBridge) puts it behind a pty that mpremote opens.

Behaviour a client sees (checked with the unmodified mpremote):
* friendly and raw REPL; raw-paste is refused (``R\\x00``) so mpremote falls
  back to classic raw mode;
* soft reset (Ctrl-D) prints ``MPY: soft reboot``, starts a fresh MicroPython
  instance (fresh heap) and keeps the in-memory filesystem (``/board.json``,
  ``/lib``, whatever mpremote wrote; ``sys.path`` is ``['', '.frozen', '/lib']``);
* the banner names the board: ``...; <title> (virtual, wasm32) with <mcu>``.

Limits: running code cannot be interrupted by Ctrl-C (``runPython`` /
``replProcessChar`` are synchronous; node does not read stdin meanwhile): the
host must kill the target on its deadline. Its output streams as it comes
(wasm_board.mjs writes it synchronously), so the runner's per-test deadlines
hold here too. The gc heap is the board's (heaps.py: the profile's
``micropython.heap_bytes`` plus what this port's bigger code takes, so the free
heap after mpalloc's set-up is the board's) as gc.mem_free() + gc.mem_alloc() gives it (the
port's ``heapsize`` adds the gc's own tables, GC_TABLE_NUM/GC_TABLE_DEN), and
wasm_board.mjs stops the port's heap from growing past it (this build would
otherwise add heap areas on demand, up to 128 MiB), so a program that does not
fit a board's heap does not fit here either. No threads, no filesystem on
the host side (files live in node's memory and die with it).
"""
import os
import shutil
import tempfile
from pathlib import Path

from . import NODE_DIR, heaps, profiles
from .vboard import Child, PtyBridge, VBoardError, _Cooker, board_json

NPM_PACKAGE = "@micropython/micropython-webassembly-pyscript"
MJS = Path(__file__).with_name("wasm_board.mjs")
# The gc's tables beside its pool (py/gc.c, 16-byte blocks): an allocation table
# byte per 4 blocks and a finaliser bit per block, 3/128 of the pool; the port's
# heapsize is pool + tables (233024 gave a 227648-byte pool: 2.4 % less).
GC_TABLE_NUM, GC_TABLE_DEN = 131, 128


def port_heapsize(pool_bytes):
    """The port's heapsize giving a gc pool of `pool_bytes` (gc.mem_free() + gc.mem_alloc())."""
    return pool_bytes * GC_TABLE_NUM // GC_TABLE_DEN + 256


class WasmError(VBoardError):
    """Node.js or the MicroPython webassembly package is missing, or it did not start."""


def node_exe():
    exe = os.environ.get("MPALLOC_NODE") or shutil.which("node") or shutil.which("nodejs")
    if not exe or not os.access(exe, os.X_OK):
        named = os.environ.get("MPALLOC_NODE")
        raise WasmError("Node.js not found%s: run `make setup` (it installs the Debian package nodejs and the "
                        "npm packages)" % (" at $MPALLOC_NODE=%s" % named if named else " (node)"))
    return exe


def micropython_mjs():
    p = NODE_DIR / "node_modules" / NPM_PACKAGE / "micropython.mjs"
    if not p.is_file():
        raise WasmError("%s not found: run `make setup` (npm ci installs %s)" % (p, NPM_PACKAGE))
    return p


class WasmBoard(PtyBridge):
    """The webassembly port with a board profile, behind a pty."""

    kind = "wasm32"

    def __init__(self, board="rp2040", heap_bytes=None, keep_dir=None):
        super().__init__()
        self.board = board
        self.profile = profiles.load(board)
        self.name = "wasm32:%s" % board
        self.node = node_exe()
        self.mjs = micropython_mjs()
        self.heap_bytes = int(heap_bytes or heaps.target_heap("wasm32", self.profile))   # the gc pool a program sees
        self._tmp = Path(tempfile.mkdtemp(prefix="mpalloc-wasm-%s-" % board))
        self._board_json = self._tmp / "board.json"
        self._board_json.write_bytes(board_json(self.profile))
        # $MPALLOC_WASM32_FS: keep each board's filesystem there between commands
        # (a session's deploys then copy only what changed); unset: a fresh one each time
        env_dir = os.environ.get("MPALLOC_WASM32_FS")
        self.keep_dir = Path(keep_dir) if keep_dir else (Path(env_dir).expanduser() / str(self.profile.get("name") or board) if env_dir else None)
        title = self.profile.get("title", board)
        mcu = self.profile.get("mcu", "wasm")
        self.cooker = _Cooker(rb"; JS with Emscripten",
                              ("; %s (virtual, wasm32) with %s" % (title, mcu)).encode())

    def _spawn(self, raw):
        cap = "grow" if heaps.grows("wasm32") else "cap"
        argv = [self.node, str(MJS), self.mjs.as_uri(), str(port_heapsize(self.heap_bytes)), str(self._board_json), cap]
        if self.keep_dir is not None:
            argv.append(str(self.keep_dir.resolve()))
        return Child(argv, cwd=str(self._tmp), tty_=False)

    def _on_child_exit(self, rc):
        return False    # wasm_board.mjs does soft resets itself; an exit is a death

    def close(self):
        super().close()
        shutil.rmtree(self._tmp, ignore_errors=True)


def start(board="rp2040", timeout=20.0, **kw):
    return WasmBoard(board, **kw).start(timeout)
