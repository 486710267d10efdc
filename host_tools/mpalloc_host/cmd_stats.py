"""`mpalloc stats`: the board's allocator statistics as vmstat-style tables.

    mpalloc stats --port vboard:rp2040 [--json] [--watch SECONDS] [-v] [-W]

Pools as NetBSD's `vmstat -m`, pool caches as `vmstat -C`, then vmem arenas, kmem
size classes, extent maps with owners and DragonFly malloc types. The firmware is
deployed (or sent) first if the board lacks it - only the runtime modules stats
needs (the core and the stats extra, unchanged files skipped; --no-deploy: none) -
and mpalloc's start-up is run, so a fresh board answers too. --json prints the snapshot for scripts (the same format
`mpalloc map --from` reads); --save FILE writes it as well.
"""
import json
import sys
import time

from .argcheck import seconds
from .cli import add_board_options, open_board
from .output import Output
from . import stats as st
from . import tables


def register(subparsers):
    p = subparsers.add_parser("stats", help="allocator statistics from a live board (vmstat -m / -C style)",
                              description=__doc__.split("\n\n", 1)[0])
    add_board_options(p)
    p.add_argument("--json", action="store_true", help="print the snapshot as JSON instead of tables")
    p.add_argument("--watch", type=seconds, metavar="SECONDS", help="refresh every SECONDS until Ctrl-C")
    p.add_argument("--save", metavar="FILE", help="also write the snapshot (JSON) to FILE")
    p.add_argument("--segments", action="store_true", help="include every arena's segment map and pool pages")
    p.add_argument("-v", "--verbose", action="store_true", help="also show pools and caches never used (vmstat -v)")
    p.add_argument("-W", "--wide", action="store_true", help="wide pool table: InUse, Avail, PageSz, Util (vmstat -W)")
    p.add_argument("--no-deploy", action="store_true",
                   help="copy nothing: use the mpalloc already on the board (mpalloc deploy, mip install)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or notes")
    p.set_defaults(func=run)
    return p


def connect_and_prepare(board, out, deploy=True, start=True):
    """Deploy/send what is missing and run mpalloc's start-up (start=False: the
    caller runs its own); notes what it does."""
    if deploy and getattr(board, "mode", "fs") == "fs":
        out.note("checking mpalloc's runtime modules on %s (core + stats: %d files; --no-deploy skips this)"
                 % (board.name, len(st_runtime())))
    with out.progress("firmware to %s" % board.name) as bar:
        done = st.prepare(board, progress=bar, deploy=deploy)
    if done["copied"]:
        out.note("deployed %d firmware files to %s" % (len(done["copied"]), board.name))
    if done["sent"]:
        out.note("sent %d modules to %s through RAM (no filesystem)" % (len(done["sent"]), board.name))
    if start:
        with out.status("mpalloc start-up on %s" % board.name):
            st.startup(board)
    return done


def st_runtime():
    from .dist import runtime_modules

    return runtime_modules(st.STATS_EXTRAS)


def show(snap, args, out):
    if args.json:
        print(json.dumps(snap.to_json(), indent=None if args.watch else 1))
        sys.stdout.flush()
        return
    tables.render(snap, out.console, verbose=args.verbose, wide=args.wide)


def run(args):
    if args.watch is not None and args.watch <= 0:
        print("mpalloc stats: --watch needs a positive number of seconds", file=sys.stderr)
        return 2
    out = Output(quiet=args.quiet or args.json)
    with open_board(args, soft_reset=False) as board:  # the board as it is: no reset
        connect_and_prepare(board, out, deploy=not args.no_deploy)
        snap = st.take(board, segs=args.segments or bool(args.save))
        if args.save:
            snap.save(args.save)
            out.note("snapshot written to %s (draw it with: mpalloc map --from %s -o map.png)" % (args.save, args.save))
        if args.watch is None:
            show(snap, args, out)
            return 0
        live = out.tty and not args.json
        if live:
            from rich.console import Group
            from rich.live import Live

            with Live(console=out.console, auto_refresh=False, screen=False) as lv:
                while True:
                    lv.update(Group(tables.header(snap), *tables.tables(snap, args.verbose, args.wide)),
                              refresh=True)
                    time.sleep(args.watch)
                    snap = st.take(board, segs=False)
        while True:
            show(snap, args, out)
            time.sleep(args.watch)
            snap = st.take(board, segs=False)
