"""The suite: which script runs where, with what heap, and the assembled result.

Targets:
  micropython  the board named by --port: vboard:<board> runs the MicroPython unix
               port directly, one fresh process per script, with the profile's heap
               (bench_vmem.py gets 2 MB: 4,096 free segments of boundary tags plus the
               first-fit peer's lists do not fit 228 KB of 64-bit heap); any other
               port goes through a Board session (firmware deployed, scripts sent).
  cpython      the same vmem and fragmentation scripts on CPython, and the CPython
               peers (tlsfallocator, virtual-allocator) on the same traces.

A board whose heap is under BOARD_HEAP (in 32-bit bytes: the Pico, the ESP32, and
their emulated and webassembly stand-ins) cannot hold the suite's 64 KB windows
and 4,096-hole arenas beside mpalloc: it gets board_jobs() instead, one script
(tests/bench/bench_board.py) sized from its free heap, and the result is a board
run (meta.kind "board", reported by board_report.py), no CPython side.
"""
import datetime
import json
import os
import platform
import statistics
import time

from . import SCHEMA
from .goals import evaluate
from .runner import Local, OnBoard

VMEM_HEAP = 2 * 1024 * 1024
GCHEAP_HEAP = 160 * 1024  # 64 KB arena + the trace arrays + the interpreter; padded to 64 KB free


def jobs(quick=False, board_heap=None, on_board=False):
    """[(target, script, args, options)] in run order."""
    q = ["quick=1"] if quick else []
    holes = "holes=16,256,4096"
    if on_board and (board_heap or 0) < 1024 * 1024:
        holes = "holes=16,256,1024"  # a 4,096-hole arena does not fit a small board's heap
    out = [
        # pool_cache's hit costs ~4 cu, the bound of G1: one process's figure
        # moves by +-0.3 cu with where the heap lands and what the machine
        # does meanwhile, so three processes are run and their medians taken
        ("micropython", "bench_fixed.py", q + ["part=pool"], {"repeat": 1 if quick else 3}),
        ("micropython", "bench_fixed.py", q + ["part=kmem"], {}),
        ("micropython", "bench_fixed.py", ["part=waste"], {"heap": VMEM_HEAP}),
        ("micropython", "bench_vmem.py", q + [holes], {"heap": VMEM_HEAP}),
        ("micropython", "bench_frag.py", ["alloc=instant,best,firstfit"], {}),
        ("micropython", "bench_frag.py", ["alloc=gcheap"], {"heap": GCHEAP_HEAP, "fresh": True}),
        ("cpython", "bench_vmem.py", q + ["holes=16,256,4096", "bestfit=0"], {}),
        ("cpython", "bench_frag.py", ["alloc=instant,best,firstfit"], {}),
        ("cpython", "bench_peers.py", q + ["holes=16,256,4096"], {}),
    ]
    return out


BOARD_HEAP = 1024 * 1024


def board_jobs(quick=False, mhz=None):
    """The board-sized bench: one fresh interpreter, figures in cu and, with the
    board's clock in MHz, in its cycles."""
    args = (["quick=1"] if quick else []) + (["mhz=%g" % mhz] if mhz else [])
    return [("micropython", "bench_board.py", args, {"fresh": True})]


def small_board(info):
    """True for a board whose heap (in 32-bit bytes) is under BOARD_HEAP."""
    heap = info.get("heap_total") or 0
    return 0 < heap * 32 // (info.get("word_bits") or 32) < BOARD_HEAP


def board_mhz(profile):
    """The board's clock in MHz from its profile (cpu.clock_hz), or None."""
    hz = ((profile or {}).get("cpu") or {}).get("clock_hz")
    return hz / 1e6 if isinstance(hz, (int, float)) and hz > 0 else None


def board_footprint(board, notes):
    """mpalloc's own heap on the board (footprint.measure: code, set-up, window,
    what is left free) as "footprint.<what>" figures; a failure is a note."""
    from .. import footprint

    try:
        fp = footprint.measure(board)
    except footprint.FootprintError as e:
        notes.append(str(e))
        return {}
    return {"footprint.%s" % k: v for k, v in fp.items() if isinstance(v, (int, str))}


def merge_runs(each):
    """One result from the same script run in several processes: each numeric
    figure is the median of the runs; a cost in cu (key ending ".cu") also keeps
    every run's value under key + "_runs". Non-numeric values, and figures not
    every run gave: the last value given."""
    if len(each) == 1:
        return each[0]
    out = {}
    for res in each:
        out.update(res)
    for k in out:
        vs = [r[k] for r in each if isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)]
        if len(vs) == len(each):
            out[k] = statistics.median(vs)
    for k in [k for k in out if k.endswith(".cu")]:
        vs = [r[k] for r in each if isinstance(r.get(k), (int, float))]
        if len(vs) == len(each):
            out[k + "_runs"] = vs
    return out


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "system": "%s %s" % (platform.system(), platform.release()),
            "arch": platform.machine()}


def run(port="vboard:rp2040", board=None, quick=False, targets=("micropython", "cpython"), progress=None,
        open_board=None):
    """Run the suite; returns the result document (dict). progress(i, n, text) is told
    before each job. open_board(): a context manager giving a Board (ports other than
    vboard:)."""
    import contextlib

    from .. import profiles

    t0 = time.time()
    pname = board or (port.split(":", 1)[1] if ":" in port and port.split(":", 1)[0] in ("vboard", "wasm32") else None)
    heap = None
    if pname:
        try:
            heap = profiles.load(pname).get("micropython", {}).get("heap_bytes")
        except Exception:
            heap = None
    direct = port.startswith("vboard:")
    notes = []
    runs = {t: {} for t in targets}
    with contextlib.ExitStack() as stack:
        mp = None
        if "micropython" in targets:
            if direct:
                mp = Local("micropython", heap=heap)
            else:
                if open_board is None:
                    raise ValueError("bench: port %s needs a board session" % port)
                mp = OnBoard(stack.enter_context(open_board()))
                heap = heap or mp.board.info.get("heap_total")
        cp = Local("cpython")
        kind = "board" if (mp is not None and not direct and small_board(mp.board.info)) else "suite"
        if kind == "board":
            mhz = board_mhz(mp.board.profile)
            todo = board_jobs(quick, mhz)
        else:
            todo = [j for j in jobs(quick, heap, on_board=not direct) if j[0] in targets]
        for i, (tgt, script, args, opt) in enumerate(todo):
            if progress:
                progress(i, len(todo), "%s %s %s" % (tgt, script, " ".join(args)))
            each = []
            for _ in range(opt.get("repeat", 1)):
                if tgt == "micropython":
                    if direct:
                        each.append(mp.run(script, args, heap=opt.get("heap")))
                    else:
                        each.append(mp.run(script, args, fresh=opt.get("fresh", False)))
                else:
                    each.append(cp.run(script, args))
            runs[tgt].update(merge_runs(each))
        if kind == "board":
            runs["micropython"].update(board_footprint(mp.board, notes))
        if progress:
            progress(len(todo), len(todo), "done")
    if direct:
        notes.append("MicroPython figures: the unix port (%s) run directly with the %s profile's heap (%s bytes); "
                     "bench_vmem.py with %d bytes (4,096 free segments of tags plus the first-fit lists do not fit "
                     "the profile heap on a 64-bit port); firmware as .mpy (mpy-cross), as a board gets it."
                     % (port, pname, heap, VMEM_HEAP))
    doc = {
        "schema": SCHEMA,
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "port": port, "board": pname, "quick": bool(quick), "seconds": round(time.time() - t0, 1),
            "machine": machine(), "host_python": platform.python_version(), "kind": kind,
            "commit": _commit(),
        },
        "runs": runs,
        "notes": notes,
    }
    if kind == "board":
        doc["meta"]["mhz"] = mhz
        doc["goals"] = []
        return doc
    from .native_size import sizes as _native_sizes  # issue 20

    doc["native_size"] = _native_sizes()
    doc["goals"] = evaluate(doc)
    return doc


def _commit():
    """The checkout's commit (short), with "+" when it has uncommitted changes; None outside git."""
    import subprocess

    from .. import ROOT

    try:
        c = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (c + ("+" if dirty else "")) if c else None


def save(doc, path):
    d = os.path.dirname(str(path))
    if d:
        os.makedirs(d, exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")


def load(path):
    with open(path) as f:
        doc = json.load(f)
    if doc.get("schema") != SCHEMA:
        raise ValueError("%s: not a benchmark result of schema %d" % (path, SCHEMA))
    return doc
