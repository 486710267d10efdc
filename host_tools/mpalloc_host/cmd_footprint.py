"""`mpalloc footprint`: mpalloc's own heap on a board beside what it manages.

    mpalloc footprint --port emu:rp2040 [--py | --romfs [--firmware FILE.uf2]] [--layers] [--json]
    mpalloc footprint --port wasm32:rp2040 --objects [--py]

Soft-resets the board, puts mpalloc's core on it (.mpy where the board's heap
wants it, --py: from source), imports vmem, uvm_km, pool, pool_cache, kmem,
intr, mem and board, runs board.init(), and prints each part as gc.mem_alloc()
deltas after gc.collect(): the core's code, board.init()'s set-up (profile,
kernel_map, extent maps), the managed window (the memory the allocators
manage), and the heap left to the program.
--layers prints gc.mem_free() after the soft reset and after each layer's import
and board.init() instead; --romfs puts the modules in the firmware's ROMFS
partition first (deploy --romfs); --objects runs tests/bench/bench_footprint.py
(per-module and per-object deltas: an arena, a pool, a pool_cache, a kmem class).
"""
import json

from .cli import add_board_options, open_board
from .dist import runtime_modules
from .footprint import layers, measure, objects


def register(subparsers):
    p = subparsers.add_parser("footprint", help="mpalloc's own heap on a board (code, set-up, window)",
                              description=__doc__.split("\n\n", 1)[0])
    add_board_options(p)
    p.add_argument("--py", action="store_true", help="deploy the modules as source (default: as the board wants)")
    p.add_argument("--romfs", action="store_true",
                   help="the modules in the firmware's ROMFS partition (mpalloc deploy --romfs), code in flash")
    p.add_argument("--firmware", metavar="FILE.uf2", help="emu:rp2040 only: the firmware it boots")
    p.add_argument("--layers", action="store_true",
                   help="gc.mem_free() after the soft reset, each layer's import and board.init()")
    p.add_argument("--objects", action="store_true",
                   help="per-module and per-object deltas (tests/bench/bench_footprint.py)")
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
    with open_board(args, firmware=args.firmware) as board:
        if args.objects:
            f = objects(board, mpy=not args.py)
            if args.json:
                print(json.dumps(dict(f, board=board.name)))
            else:
                for k in sorted(f):
                    print("%-28s %s" % (k, f[k]))
            return 0
        if args.romfs:
            from .delivery.romfs import RomfsDelivery

            board.delivery = RomfsDelivery()
            board.deploy()
            mode = "ROMFS"
        else:
            r = board.deploy(mpy=False if args.py else None, only=runtime_modules(()))
            mode = ".mpy" if any(p.endswith(".mpy") for p in r["copied"] + r["skipped"]) else ".py"
        if args.layers:
            rows = layers(board)
            if args.json:
                print(json.dumps({"board": board.name, "mode": mode, "layers": rows}))
            else:
                print("%s: gc.mem_free() after gc.collect(), mpalloc from %s" % (board.name, mode))
                prev = None
                for label, free in rows:
                    d = "" if prev is None or free is None else "%+9d" % (free - prev)
                    print("  %-36s %9s %s" % (label, "{:,}".format(free) if free is not None else "-", d))
                    prev = free if free is not None else prev
            return 1 if rows and rows[-1][1] is None else 0
        f = measure(board)
        if args.json:
            print(json.dumps(dict(f, board=board.name, mode=mode)))
        else:
            for ln in lines(board.name, mode, f):
                print(ln)
    return 1 if f.get("error") else 0
