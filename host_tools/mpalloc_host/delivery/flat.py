"""A flat flash filesystem without directories (micro:bit v1, MicroPython 1.9.2:
os has only listdir/remove/size/uname, no sys.modules; code is compiled from
source and kept in RAM). Each module is written as mpalloc_<name>.py with its
package imports rewritten to flat names; the flash holds only a few modules, so
deploy writes mptest alone and each suite's modules go before it runs.

A suite whose reachable code (shrink.closure: dead code removed) is larger than
the whole heap cannot load: it is skipped with the sizes (too_big). `mpalloc
stats` loads nothing here: stats_flat reads the gc heap with a few short
statements and adds the host's "fit" record.
"""
import re

from .. import ROOT
from .base import Delivery
from .sources import flat_name, flat_source, module_closure, strip_docstrings


class FlatDelivery(Delivery):
    name = "flat"
    sends_source = False

    def default_only(self, board):
        return ["mptest"]

    def plan(self, board, mpy=False, only=None):
        from .sources import firmware_files

        items = []
        for dest, src in firmware_files():
            if dest == "mpalloc/__init__.py":
                continue
            if only is not None and dest[:-3].replace("/", ".") not in only:
                continue
            text = strip_docstrings(flat_source(src.read_text(), origin=str(src.relative_to(ROOT))))
            items.append((dest.replace("/", "_"), text.encode()))
        if mpy:
            items = board.compile(items)
        if board.profile:
            items.append(("board.json", board.board_json()))
        return items

    def adapt(self, code):
        return flat_source(code, origin="mpalloc stats")

    def remove_modules(self, board, keep):
        """Delete mpalloc_*.py modules not in `keep` (module names)."""
        names = board.eval("[f for f in __import__('os').listdir() if f.startswith('mpalloc_')]")
        keep_files = {flat_name(k) + ".py" for k in keep}
        gone = [f for f in names if f not in keep_files]
        if gone:
            board.exec("import os\nfor f in %r:\n os.remove(f)" % (gone,))
        return gone

    def suite_code(self, runner, info, setup):
        # Pasted code is compiled from RAM in one piece: on a 10 KB heap only a
        # file on the board's flash (compiled as it is read) fits. Written before
        # the reset, so the heap the suite gets is not fragmented by the writes.
        # The suite's closing `s.run()` is called from the REPL, not inside the
        # import: the micro:bit's C stack holds only a few Python calls.
        board = runner.board
        need = [name for name, _ in module_closure(info.source)] + ["mptest"]
        if "soft_reset" in board.caps:
            board.soft_reset()  # the last suite's garbage out of the way
        self.remove_modules(board, keep=need)
        board.deploy(only=need)
        flat = strip_docstrings(flat_source(info.source, origin=str(info.path)))
        m = re.search(r"^(\w+)\.run\(\)\s*\Z", flat, re.M)
        if m:
            flat = flat[:m.start()]
        board.deploy_file("mpt_suite.py", flat.encode())
        runner.fresh_state()
        # mptest is imported from the REPL first (importing it from inside the
        # suite's import does not fit the heap), each line sent on its own
        # (short commands go without the receiver, whose code costs heap)
        for line in setup.splitlines():
            board.exec(line)
        return ("import mpt_suite\n" + ("mpt_suite.%s.run()\n" % m.group(1) if m else "")).encode()

    def cleanup_after_no_room(self, board):
        self.remove_modules(board, keep=["mptest"])

    def too_big(self, board, info):
        """The measure: the minified source of the code the suite reaches; the heap
        cost of code was measured at 1.1 to 1.9 bytes per source byte, so code
        larger than the whole heap cannot load."""
        heap = board.info.get("heap_total") or 0
        if not heap:
            return None
        from .. import shrink

        try:
            mods = shrink.closure(info.source)
        except (SyntaxError, OSError):
            return None
        sizes = [(name.split(".")[-1], len(flat_source(text))) for name, text in mods]
        total = sum(n for _, n in sizes)
        if total <= heap:
            return None
        return ("its code does not fit the board's %d-byte heap: %d bytes of source after dead-code "
                "elimination (%s), compiled code is kept in RAM on this firmware"
                % (heap, total, ", ".join("%s %d" % x for x in sizes)))

    def stats_prepare(self, board, modules, progress=None):
        # no allocator fits beside mpalloc.stats: nothing goes to the board
        from .. import stats_flat

        board.stats_fit = stats_flat.prepare(board)
        return {"mode": self.name, "copied": [], "sent": []}

    def stats_startup(self, board, profile=None):
        return ""   # nothing was loaded (stats_prepare)

    def stats_take(self, board, dump_code):
        from .. import stats_flat

        return stats_flat.take(board, board.stats_fit)
