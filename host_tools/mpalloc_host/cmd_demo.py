"""`mpalloc demo`: mpalloc at work on a board, then its statistics and memory map.

    mpalloc demo [--port vboard:rp2040] [--out out/demo]

Starts (or connects to) the board, deploys the firmware, runs mpalloc's start-up and
a short workload (firmware/mpalloc/demo.py: a driver claiming its registers through
extent, DMA buffers from vmem with alignment, packet buffers from a pool_cache taken
and returned by an interrupt handler, kmem churn), then prints the vmstat-style
tables, writes the memory map picture and the snapshot, and ends with a summary.
"""
import time
from pathlib import Path

from .argcheck import count
from .cli import add_board_options, open_board
from .output import Output
from . import stats as st
from . import tables

DEMO_CODE = "import mpalloc.demo as _demo\n_demo.run(%s)\n"
DEMO_STARTUP = "import mpalloc.demo as _demo\n_demo.startup()\n"


def register(subparsers):
    p = subparsers.add_parser("demo", help="run a representative workload, show its statistics and memory map",
                              description=__doc__.split("\n\n", 1)[0])
    add_board_options(p)
    p.add_argument("--out", default="out/demo", metavar="DIR",
                   help="where the picture and snapshot go (default out/demo)")
    p.add_argument("--packets", type=count, default=None, metavar="N",
                   help="packets the interrupt handler moves (default: what suits the board)")
    p.add_argument("--romfs", action="store_true",
                   help="mpalloc's modules from the firmware's ROMFS partition (written first if they differ; "
                        "see mpalloc deploy --romfs): code runs from flash, not from the heap")
    p.add_argument("--firmware", metavar="FILE.uf2", help="emu:rp2040 only: the firmware it boots")
    p.add_argument("-q", "--quiet", action="store_true", help="only the summary")
    p.set_defaults(func=run)
    return p


def _no_memory(e):
    """A board error that is the heap running out: a MemoryError, or an allocator
    of mpalloc's set-up (extent, vmem) refusing with ENOMEM because it could not get
    heap for its descriptors."""
    return "MemoryError" in e.error or "[Errno 12] ENOMEM" in e.error


def out_of_heap(board, e):
    """The one line for a MemoryError anywhere in the demo (set-up, workload, snapshot)."""
    from .transport import BoardError

    heap = (getattr(board, "info", None) or {}).get("heap_total")
    last = e.error.strip().splitlines()[-1]
    return BoardError("%s: the demo ran out of MicroPython heap (%s%s): mpalloc's modules loaded from the "
                      "filesystem take most of it; put them in flash: ROMFS (mpalloc demo --romfs, on a firmware "
                      "with a ROMFS partition) or frozen into the firmware (docs/FLASHING.md), or use a board "
                      "with more heap" % (board.name, last[:80], "; %d bytes of heap in all" % heap
                                                if heap else ""))


def run_workload(board, packets=None, timeout=90):
    """Run the demo workload on a prepared board; returns (its figures, device log)."""
    from .transport import BoardExecError

    arg = "" if packets is None else "packets=%d" % packets
    try:
        out = board.exec(st.adapt(board, DEMO_CODE % arg), timeout=timeout)
    except BoardExecError as e:
        if not _no_memory(e):
            raise
        raise out_of_heap(board, e) from None
    s = st.parse(out, strict=False)
    figs = s.one("demo")
    if figs is None:
        raise st.StreamError("%s: the demo workload printed no figures:\n%s" % (board.name, out[-400:]))
    return figs, s.log


def summary_lines(port, figs, snap, files, secs):
    """The closing screen: what ran, the figures that matter, where things are, what next."""
    pools = {p["name"]: p for p in snap.pools}
    arenas = snap.vmem
    km = snap.kmem or {}
    lines = [
        "mpalloc demo on %s (%s) finished in %.1f s." % (snap.board, port, secs),
        "",
        "What ran on the board:",
        "  - a driver claimed its registers through extent(9): %s" % (", ".join(figs.get("claims", [])) or "-"),
        "  - %d DMA buffers from vmem(9), aligned to %s bytes (all aligned: %s)"
        % (figs.get("dma_buffers", 0), figs.get("dma_align", "?"), "yes" if figs.get("dma_aligned") else "NO"),
        "  - an interrupt handler (%s) took and returned %d packet buffers from the pool_cache(9) %r"
        % (figs.get("irq_mode", "?"), figs.get("packets", 0), figs.get("cache", "?")),
        "  - kmem(9) churn: %d allocations and %d frees of mixed sizes" % (figs.get("kmem_allocs", 0),
                                                                        figs.get("kmem_frees", 0)),
        "",
        "Key figures:",
    ]
    for a in arenas:
        lines.append("  - arena %-12s %6d B in use of %6d B, largest free %6d B, %d free holes"
                     % (a.get("name"), a.get("inuse", 0), a.get("size", 0), a.get("largest_free", 0),
                        a.get("nfreesegs", 0)))
    pc = snap.pool_cache(figs.get("cache"))
    if pc:
        hits = sum(c.get("hits", 0) for c in pc.get("cpus", []))
        miss = sum(c.get("misses", 0) for c in pc.get("cpus", []))
        lines.append("  - pool cache %s: %d per-CPU hits, %d misses (%.1f%% served by the CPU layer)"
                     % (pc.get("name"), hits, miss, 100.0 * hits / max(hits + miss, 1)))
    rows, tot, summ = tables.pool_rows(snap)
    lines.append("  - %d pools: %d requests, %d releases, %d pages now; items use %.1f%% of their pages"
                 % (len(pools), tot["nget"], tot["nput"], tot["npages"], summ["util"]))
    if km:
        lines.append("  - kmem: %d size classes" % len(km.get("classes") or []))
    if figs.get("heap_total"):
        lines.append("  - MicroPython heap still free for the program after the demo: %d of %d B (%.0f%%)"
                     % (figs["heap_free"], figs["heap_total"], 100.0 * figs["heap_free"] / figs["heap_total"]))
    if figs.get("irq_heap_allocs") is not None:
        lines.append("  - MicroPython heap allocations inside the interrupt handler: %d" % figs["irq_heap_allocs"])
    cost = snap.end.get("heap_cost", -1)
    if cost >= 0:
        lines.append("  - taking the snapshot cost %d B of MicroPython heap (never the managed window)" % cost)
    lines += ["", "Files:"]
    for what, path in files:
        lines.append("  - %-14s %s" % (what, path))
    lines += ["", "Next:"] + live_hint(port, figs.get("board") or "rp2040") + [
        "  mpalloc map --from %s -o map.svg   redraw the picture off-line" % files[-1][1],
        "  make test                            host tests and the on-board suites",
    ]
    return lines


def live_hint(port, board):
    """How to look at the board again. A vboard:/wasm32:/qemu: port is a board started
    for one command (the next command gets a fresh one): keep one running instead."""
    kind = str(port).split(":", 1)[0]
    if kind in ("vboard", "wasm32"):
        return ["  mpalloc vboard --board %s%s --link /tmp/pico &   keep a virtual board running"
                % (board, " --wasm32" if kind == "wasm32" else ""),
                "  mpalloc demo --port /tmp/pico --board %s -q        the workload on it, then" % board,
                "  mpalloc stats --port /tmp/pico --board %s --no-deploy --watch 1   its tables, live" % board]
    if kind in ("qemu", "emu"):
        return ["  (%s is started afresh for every command: what the demo made is gone now)" % port]
    return ["  mpalloc stats --port %s --board %s --no-deploy --watch 1   the tables again, live" % (port, board)]


def run(args):
    from .cmd_stats import connect_and_prepare
    from .transport import BoardExecError
    from . import memmap

    out = Output(quiet=args.quiet)
    t0 = time.monotonic()
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    with open_board(args, firmware=args.firmware) as board:
        out.note("connected to %s" % board.name)
        if args.romfs:
            from .delivery.romfs import RomfsDelivery

            board.delivery = RomfsDelivery()
        try:
            # on a board with a filesystem the demo starts mpalloc itself (demo.startup:
            # a window sized for its workload); elsewhere stats' start-up does
            own = board.delivery.dirs
            connect_and_prepare(board, out, start=not own)
            st.prepare(board, modules=("mpalloc.demo",))  # flat boards copy per module
            if own:
                with out.status("mpalloc start-up on %s" % board.name):
                    board.exec(st.adapt(board, DEMO_STARTUP), timeout=60)
            with out.status("running the demo workload on %s" % board.name):
                figs, log = run_workload(board, args.packets)
            with out.status("taking a snapshot"):
                snap = st.take(board, segs=True)
        except BoardExecError as e:
            if not _no_memory(e):
                raise
            raise out_of_heap(board, e) from None
    if not args.quiet:
        tables.render(snap, out.console)
    snap_path = outdir / "snapshot.json"
    png = outdir / "memmap.png"
    svg = outdir / "memmap.svg"
    snap.save(snap_path)
    with out.status("drawing the memory map"):
        memmap.draw(snap, png)
        memmap.draw(snap, svg)
    lines = summary_lines(args.port, figs, snap, [("picture", png), ("picture (SVG)", svg),
                                                  ("snapshot", snap_path)], time.monotonic() - t0)
    if out.tty:
        from rich.panel import Panel

        out.console.print(Panel("\n".join(lines), title="mpalloc demo: summary", expand=False))
    else:
        print("\n".join(lines))
    return 0
