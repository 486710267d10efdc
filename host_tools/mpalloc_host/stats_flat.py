"""`mpalloc stats` / `mpalloc map` on a flat small board (micro:bit v1: MicroPython
1.9.2 compiling from source into a 10 KB heap, ~15 KB flat flash filesystem, no
sys.modules, no .mpy).

What fits is measured, not assumed. Each module goes to the board cut down to what
the code using it reaches (shrink.closure), in pieces of about 600 bytes
(shrink.pieces) plus a small loader module that compiles them one at a time into
its own globals, so only one piece's parse tree is in RAM at once. The heap each
module takes is measured on the board (gc.mem_free() before and after, collected).
A module that does not load (MemoryError) is recorded with the heap that was left,
and what depends on it is left out; the snapshot then says so ("fit" record, added
by the host) instead of failing.

Order: mpalloc.stats first (without it there is no stream), then the allocators
the micro:bit start-up uses (ALLOCATORS), each with its start-up workload.
"""
from .board import BoardError, BoardExecError, flat_name, flat_source

# Loads mpalloc_<x>.0, .1, ... into the importing module's globals, then the pieces
# are removed from the flash (the code lives in RAM now).
_STUB = ("import gc\n"
         "for _i in range(%d):\n"
         " _f = open('%s.%%d' %% _i)\n"
         " _s = _f.read()\n"
         " _f.close()\n"
         " _f = None\n"
         " exec(_s, globals())\n"
         " _s = None\n"
         " gc.collect()\n"
         "del _i, _f, _s\n")

# (module, code the board runs with it: the roots shrink keeps, start-up, name in stats)
# The zone: zone(9)'s boot zone over static storage, what DragonFly sets up before
# anything else is up; the workload takes 6 items and gives 2 back.
ZONE_ITEMS = 16
ZONE_SIZE = 16
ZONE_TAKE = 6
ZONE_GIVE = 2
ZONE_STARTUP = (
    "_zs = bytearray(%d)\n"
    "_zb = zone.zbootinit(None, 'boot', %d, _zs, %d)\n"
    "_zi = [zone.zalloc(_zb) for _k in range(%d)]\n"
    "for _k in range(%d):\n"
    " zone.zfree(_zb, _zi.pop())\n"
    "mps.modules['zone'] = zone\n") % (ZONE_ITEMS * ZONE_SIZE, ZONE_SIZE, ZONE_ITEMS, ZONE_TAKE, ZONE_GIVE)
ALLOCATORS = (
    ("mpalloc.zone", "from mpalloc import zone\nzone.zbootinit\nzone.zalloc\nzone.zfree\nzone.zone_stats\nzone.zone_list\n",
     ZONE_STARTUP),
)
STATS_ROOTS = "import mpalloc.stats as mps\nmps.emit\nmps.collect\nmps.modules\n"


def _measure_code(flat):
    return ("import gc\ngc.collect()\n_a = gc.mem_free()\nimport %s\ngc.collect()\n"
            "print('@@fit', _a, gc.mem_free())\n") % flat


def _sum(b):
    x = 0
    for v in b:
        x = (x * 31 + v) & 0xFFFFFF
    return x


# Files are written with short commands only (under the transport's receiver
# threshold): the acknowledging receiver would take 864 bytes of the heap and
# fragment it just where the modules are to be compiled.
_CHUNK = 96


def _put(board, path, data, attempts=4):
    for _ in range(attempts):
        try:
            board.exec("f = open(%r, 'wb')" % path)
            for i in range(0, len(data), _CHUNK):
                b = data[i:i + _CHUNK]
                for _try in range(attempts):
                    try:
                        board.exec("b = %r\nif len(b) == %d: f.write(b)\nelse: raise ValueError\ndel b"
                                   % (b, len(b)))
                        break
                    except BoardExecError as e:
                        if "ValueError" not in str(e) and "SyntaxError" not in str(e) or _try == attempts - 1:
                            raise
            board.exec("f.close()\ndel f")
            if board.eval("__import__('os').size(%r)" % path) == len(data):
                return
        except BoardExecError as e:
            if "OSError: 28" in str(e) or "ENOSPC" in str(e):
                raise BoardError("%s: no room for %s on the board's filesystem" % (board.name, path)) from None
    raise BoardError("%s: %s does not read back as written after %d attempts" % (board.name, path, attempts))


def _remove(board, paths):
    if paths:
        board.exec("import os\nfor _p in %r:\n try:\n  os.remove(_p)\n except OSError:\n  pass\n" % (list(paths),))


def load(board, name, text, alias=None, limit=600):
    """Put module `name` (shaken source `text`) on the board and import it there.
    Returns {"module", "source", "pieces", "heap", "free_before", "loaded", "error"}."""
    from . import shrink

    flat = flat_name(name)
    src = flat_source(text, origin=name)
    ps = shrink.pieces(src, limit=limit)
    rec = {"module": name.split(".")[-1], "source": sum(len(p) for p in ps), "pieces": len(ps),
           "heap": None, "free_before": None, "loaded": False, "error": None}
    files = []
    try:
        for i, p in enumerate(ps):
            f = "%s.%d" % (flat, i)
            _put(board, f, p.encode())
            files.append(f)
        _put(board, flat + ".py", (_STUB % (len(ps), flat)).encode())
        out = board.exec(_measure_code(flat) + ("%s = %s\n" % (alias, flat) if alias else ""), timeout=60)
        for line in out.splitlines():
            if line.startswith("@@fit "):
                a, b = line.split()[1:3]
                rec["free_before"], rec["heap"] = int(a), int(a) - int(b)
        rec["loaded"] = True
    except BoardExecError as e:
        rec["error"] = str(e).split(": ", 1)[-1]
        try:
            rec["free_before"] = board.eval("__import__('gc').mem_free()")
        except BoardError:
            pass
    finally:
        try:
            _remove(board, files)
        except BoardError:
            pass
    return rec


def _reset(board):
    if "soft_reset" in board.caps:
        board.soft_reset()


def _load_all(board, code, skip=(), alias=None):
    """Load what `code` reaches (dependencies first); [load records], stops at the first failure."""
    from . import shrink

    recs = []
    for mod, text in shrink.closure(code):
        if mod in skip:
            continue
        rec = load(board, mod, text, alias=(alias or {}).get(mod))
        recs.append(rec)
        if not rec["loaded"]:
            break
    return recs


def _load_stats(board):
    recs = _load_all(board, STATS_ROOTS, alias={"mpalloc.stats": "mps"})
    if not recs[-1]["loaded"]:
        r = recs[-1]
        raise BoardError("%s: mpalloc.stats does not fit the board (%d bytes of source in %d pieces, "
                         "%s bytes of heap free): %s" % (board.name, r["source"], r["pieces"],
                                                          r["free_before"], r["error"]))
    return recs


def prepare(board):
    """Load stats and what allocators fit, run their start-up; returns the "fit" record:
    {"heap_total", "heap_free_reset", "modules": [load records], "alone": {allocator:
    [load records on a fresh heap]}, "absent": [{module, why}], "workload": [...]}.

    Each allocator is first loaded alone on a freshly reset heap (what it needs), then
    the board is reset, stats loaded, and the allocators whose need fits what is left
    are loaded beside it and started."""
    _reset(board)
    fit = {"heap_total": board.info.get("heap_total"), "modules": [], "alone": {}, "absent": [],
           "workload": []}
    fit["heap_free_reset"] = board.eval("__import__('gc').mem_free()")
    for name, roots, start in ALLOCATORS:
        short = name.split(".")[-1]
        fit["alone"][short] = _load_all(board, roots)
        _reset(board)
    fit["modules"] = _load_stats(board)
    free = fit["modules"][-1]["free_before"] - fit["modules"][-1]["heap"]
    fit["heap_free_stats"] = free
    for name, roots, start in ALLOCATORS:
        short = name.split(".")[-1]
        alone = fit["alone"][short]
        need = sum(r["heap"] or 0 for r in alone)
        if not alone[-1]["loaded"]:
            r = alone[-1]
            fit["absent"].append({"module": short, "why": "%s (%d bytes of source after dead-code elimination, in %d "
                                  "pieces) does not load even on a fresh heap: %s with %s bytes free, after %s"
                                  % (r["module"], r["source"], r["pieces"], r["error"], r["free_before"],
                                     " + ".join("%s %d B" % (x["module"], x["heap"]) for x in alone[:-1]) or "nothing")})
            continue
        if need >= free:
            fit["absent"].append({"module": short, "why": "needs %d bytes of heap (%s, measured alone on a fresh heap); "
                                  "%d bytes are free beside mpalloc.stats (%d B)"
                                  % (need, " + ".join("%s %d B" % (x["module"], x["heap"]) for x in alone),
                                     free, fit["modules"][-1]["heap"])})
            continue
        recs = _load_all(board, roots, skip={"mpalloc.stats"}, alias={name: short})
        fit["modules"].extend(recs)
        if not recs[-1]["loaded"]:
            fit["absent"].append({"module": short, "why": "%s did not load beside stats: %s" % (
                recs[-1]["module"], recs[-1]["error"])})
            _reset(board)
            fit["modules"] = _load_stats(board)
            continue
        try:
            board.exec(start, timeout=30)
            fit["workload"].append({"module": short, "code": start})
        except BoardExecError as e:
            fit["absent"].append({"module": short, "why": "start-up failed: %s" % str(e).split(": ", 1)[-1]})
    return fit


DUMP_CODE = "mps.emit(mps.collect(%s))\n"


def take(board, fit, segs=True):
    from . import stats as st

    out = board.exec(DUMP_CODE % ("True" if segs else "False"), timeout=60)
    snap = st.parse(out)
    snap.records.insert(1, ("fit", fit))
    return snap
