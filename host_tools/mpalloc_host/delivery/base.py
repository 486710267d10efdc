"""A delivery strategy: how code reaches one board. Chosen once when the board
connects (delivery.choose) and kept as Board.delivery; Board, Runner and the
stats commands call it and never ask which one it is.

    plan(board, mpy, only) -> [(board path, bytes)]   what deploy would write
    deploy(board, mpy, progress, only) -> {"mode", "copied", "skipped", "removed", "bytes"}
    adapt(code) -> code      package-layout code as this board imports it
    suite_code(runner, info, setup) -> bytes   a suite ready to send (board state made fresh)
    cleanup_after_no_room(board)    after a suite's modules did not fit
    run_frozen(runner, info, res) -> bool      a suite that is in the firmware ran from there
    too_big(board, info) -> reason or None     a suite that cannot load at all
    stats_prepare(board, modules, progress) / stats_startup / stats_take   mpalloc stats

Attributes: name ("fs", "flat", "ram", "frozen"), dirs (a filesystem with
directories: suites needing "fs" run), sends_source (the suite's source is in
the code sent, so traceback lines map back to it).
"""
import hashlib

from ..transport import checksum24
from .sources import firmware_files

STARTUP_CODE = """
import mpalloc.board as _mpb
if not _mpb.booted():
    _mpb.startup(%s)
"""


class Delivery:
    name = None
    dirs = False
    sends_source = True

    # -- deploy -----------------------------------------------------------------------

    def default_only(self, board):
        """Module names deploy() writes when not told (None: all)."""
        return None

    def wants_mpy(self, board):
        """True when deploy() without an explicit mpy= should send .mpy files."""
        return False

    def plan(self, board, mpy=False, only=None):
        items = []
        for dest, src in firmware_files():
            if only is not None and dest[:-3].replace("/", ".") not in only and dest != "mpalloc/__init__.py":
                continue
            items.append((dest, src.read_bytes()))
        if mpy:
            items = board.compile(items)
        if board.profile:
            items.append(("board.json", board.board_json()))
        return items

    def skip_deploy(self, board, only):
        """True when nothing needs to go to the board for `only`."""
        return False

    def before_write(self, board, todo):
        """Called once before the files `todo` are written."""

    def deploy(self, board, mpy=None, progress=None, only=None):
        if only is None:
            only = self.default_only(board)
        if mpy is None:
            mpy = self.wants_mpy(board)
        result = {"mode": self.name, "copied": [], "skipped": [], "removed": [], "bytes": 0}
        if self.skip_deploy(board, only):
            return result
        items = self.plan(board, mpy=mpy, only=only)
        # the other flavour of each module must go, else .py shadows .mpy
        other = [d[:-4] + ".py" if d.endswith(".mpy") else d[:-3] + ".mpy" for d, _ in items
                 if d.endswith((".py", ".mpy")) and not d.endswith("__init__.py")]
        remote = board.remote_hashes([d for d, _ in items] + other)
        todo = []
        for dest, data in items:
            size, digest = remote.get(dest, (-1, ""))
            local = hashlib.sha256(data).hexdigest() if len(digest) == 64 else "%06x" % checksum24(data)
            if size == len(data) and digest == local:
                result["skipped"].append(dest)
            else:
                todo.append((dest, data))
        board.check_room([(d, len(data)) for d, data in todo], remote)
        self.before_write(board, todo)
        total = sum(len(d) for _, d in todo)
        done = 0
        chunk = 1024 if (board.info.get("heap_total") or 0) >= 32768 else 256
        for dest, data in todo:
            board.write_file(dest, data, chunk,
                             lambda n, _t, d=dest, base=done: progress and progress(base + n, total, d))
            done += len(data)
            result["copied"].append(dest)
            if progress:
                progress(done, total, dest)
        for path in other:
            if remote.get(path, (-1, ""))[0] >= 0:
                board.exec("import os\nos.remove(%r)" % path)
                result["removed"].append(path)
        result["bytes"] = total
        return result

    def free_space(self, board):
        """(free bytes, block size) of the board's filesystem, or None where it cannot tell."""
        return None

    # -- suites -----------------------------------------------------------------------

    def adapt(self, code):
        return code

    def suite_code(self, runner, info, setup):
        runner.fresh_state()
        return (setup + info.source).encode()

    def cleanup_after_no_room(self, board):
        pass

    def run_frozen(self, runner, info, res):
        return False

    def too_big(self, board, info):
        return None

    # -- mpalloc stats ----------------------------------------------------------------

    def stats_prepare(self, board, modules, progress=None):
        """Make `modules` importable on the board; {"mode", "copied", "sent"}."""
        from ..dist import runtime_modules
        from ..stats import STATS_EXTRAS

        r = board.deploy(progress=progress, only=runtime_modules(STATS_EXTRAS))
        return {"mode": self.name, "copied": r.get("copied", []), "sent": []}

    def stats_startup(self, board, profile=None):
        arg = repr(profile) if profile is not None else ""
        return board.exec(self.adapt(STARTUP_CODE % arg), timeout=60)

    def stats_take(self, board, dump_code):
        from ..stats import parse

        return parse(board.exec(self.adapt(dump_code), timeout=60))

    def __repr__(self):
        return "<delivery %s>" % self.name


