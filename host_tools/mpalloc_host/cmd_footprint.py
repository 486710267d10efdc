"""`mpalloc footprint`: mpalloc's own heap on a board beside what it manages.

    mpalloc footprint --port emu:rp2040 [--py] [--json]

Soft-resets the board, puts mpalloc's core on it (.mpy where the board's heap
wants it, --py: from source), imports vmem, uvm_km, pool, pool_cache, kmem,
intr, mem and board, runs board.init(), and prints each part as gc.mem_alloc()
deltas after gc.collect(): the core's code, board.init()'s set-up (profile,
kernel_map, extent maps), the managed window (the memory the allocators
manage), and the heap left to the program.
"""
import json

from .cli import add_board_options, open_board
from .dist import runtime_modules
from .footprint import measure


def register(subparsers):
    p = subparsers.add_parser("footprint", help="mpalloc's own heap on a board (code, set-up, window)",
                              description=__doc__.split("\n\n", 1)[0])
    add_board_options(p)
    p.add_argument("--py", action="store_true", help="deploy the modules as source (default: as the board wants)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=run)
    return p


def lines(name, mode, f):
    """The report's lines for figures `f` (footprint.measure)."""
    total = f.get("total") or 0

    def row(label, n, note=""):
        pct = " %5.1f %%" % (100.0 * n / total) if total and n is not None else ""
        return "  %-28s %9s B%s%s" % (label, "{:,}".format(n) if n is not None else "-", pct, note)

    out = ["%s: mpalloc's heap (%s), gc.mem_alloc deltas after gc.collect" % (name, mode),
           row("heap (gc pool)", total),
           row("before mpalloc", f.get("base")),
           row("core code (8 modules)", f.get("code")),
           row("board.init() set-up", f.get("setup")),
           row("managed window", f.get("window"), "   what the allocators manage"),
           row("free for the program", f.get("free"))]
    if f.get("error"):
        out.append("  stopped: %s" % f["error"])
    return out


def run(args):
    with open_board(args) as board:
        r = board.deploy(mpy=False if args.py else None, only=runtime_modules(()))
        mode = ".mpy" if any(p.endswith(".mpy") for p in r["copied"] + r["skipped"]) else ".py"
        f = measure(board)
        if args.json:
            print(json.dumps(dict(f, board=board.name, mode=mode)))
        else:
            for ln in lines(board.name, mode, f):
                print(ln)
    return 1 if f.get("error") else 0
