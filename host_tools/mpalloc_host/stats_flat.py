"""`mpalloc stats` / `mpalloc map` on a flat small board (micro:bit v1: MicroPython
1.9.2 compiling from source into a 10 KB heap, compiled code kept in RAM, no .mpy,
no sys.modules).

No allocator of mpalloc fits there beside mpalloc.stats (measured: stats alone is
5.1 KB of source and takes about 5.8 KB of heap compiled piece by piece; intr+zone,
the smallest allocator, takes about 9 KB; the heap is 10048 bytes, about 9.7 KB free
after a soft reset). So nothing is loaded: the host sends a few short statements
(no import but gc and sys, each under the transport's 256-byte receiver threshold so
the acknowledging receiver is not installed) that print the stream records the host
already reads:

    begin  {"v", "platform", "impl", "board", "heap_free", "heap_alloc"}
    heap   {"free", "alloc", "total", "collected", "platform", "version"}   (gc after a collect)
    end    {"records", "heap_cost"}

and the host adds a "fit" record: for each allocator, the source it needs on the
board (shrink.closure: dead code removed, minified; the same measure the runner uses
to skip suites) plus mpalloc.stats', against the free heap the board just reported.
Compiled code takes at least one byte of heap per byte of source on this firmware
(1.1 to 1.9 measured), so a need above the free heap cannot load; nothing is tried
on the board (a failed load fragments the heap).
"""
import json

from .delivery.sources import flat_source

# (allocator, the functions a snapshot of it needs: create, alloc, free, its stats reader and list)
ALLOCATORS = (
    ("pool", "pool_init pool_get pool_put pool_stats pool_list"),
    ("zone", "zbootinit zalloc zfree zone_stats zone_list"),
    ("extent", "extent_create extent_alloc extent_free extent_list extent_regions"),
    ("kmalloc", "kmalloc kfree kmalloc_stats malloc_types"),
    ("pool_cache", "pool_cache_init pool_cache_get pool_cache_put pool_cache_stats pool_cache_list"),
    ("vmem", "vmem_create vmem_alloc vmem_free vmem_stats vmem_list"),
    ("kmem", "kmem_alloc kmem_free kmem_stats"),
)
STATS_ROOTS = "import mpalloc.stats as mps\nmps.emit\nmps.collect\nmps.modules\n"


def _roots(name, funcs):
    return "from mpalloc import %s\n" % name + "".join("%s.%s\n" % (name, f) for f in funcs.split())


_SIZES = {}


def _size(code):
    """{module: bytes of source the board would compile} for what `code` reaches."""
    if code not in _SIZES:
        from . import shrink

        _SIZES[code] = {m.split(".")[-1]: len(flat_source(t, origin=m)) for m, t in shrink.closure(code)}
    return _SIZES[code]


def needs():
    """{"stats": {module: bytes}, "allocators": [{"module", "modules": {module: bytes}, "source"}]}
    computed on the host (cached)."""
    stats = _size(STATS_ROOTS)
    out = []
    for name, funcs in ALLOCATORS:
        mods = dict(_size(_roots(name, funcs)))
        out.append({"module": name, "modules": mods, "source": sum(mods.values())})
    return {"stats": stats, "allocators": out}


def fit(free, total):
    """The "fit" record for a board with `free` bytes of gc heap free (of `total`)."""
    n = needs()
    stats_src = sum(n["stats"].values())
    recs = []
    for a in n["allocators"]:
        need = a["source"] + stats_src
        recs.append(dict(a, need=need, fits=need <= free))
    return {"heap_free": free, "heap_total": total, "stats_source": stats_src, "allocators": recs,
            "rule": "code is compiled on the board and kept in RAM: at least one byte of heap per byte "
                    "of source (1.1 to 1.9 measured); an allocator is shown only beside mpalloc.stats",
            "loaded": []}


def _snippet(board_name):
    b = json.dumps(board_name)
    # each statement under 256 bytes (transport.rx_exec_over): no receiver on the board
    return (
        "import gc,sys\ngc.collect()\n_f=gc.mem_free()\n_a=gc.mem_alloc()\n_i=sys.implementation\n"
        "_v='%s %d.%d.%d'%(_i.name,_i.version[0],_i.version[1],_i.version[2])",
        "print('@@mps 1 begin {\"v\":1,\"platform\":\"%s\",\"impl\":\"%s\",\"board\":" + b.replace("'", "")
        + ",\"heap_free\":%d,\"heap_alloc\":%d}'%(sys.platform,_v,_f,_a))",
        "print('@@mps 1 heap {\"free\":%d,\"alloc\":%d,\"total\":%d,\"collected\":true,\"platform\":\"%s\","
        "\"version\":\"%s\"}'%(_f,_a,_f+_a,sys.platform,_v))",
        "print('@@mps 1 end {\"records\":3,\"heap_cost\":%d}'%(gc.mem_alloc()-_a))\ndel _f,_a,_i,_v",
    )


def prepare(board):
    """Nothing goes to the board; returns what take() needs."""
    return {"board": (getattr(board, "profile", None) or {}).get("name")}


def take(board, state, segs=True):
    """One snapshot: the board's gc heap now, and the host's fit record."""
    from . import stats as st

    out = "".join(board.exec(s, timeout=20) for s in _snippet(state.get("board")))
    snap = st.parse(out)
    h = snap.one("heap") or {}
    if "free" in h:
        snap.records.insert(2, ("fit", fit(h["free"], h.get("total"))))
    return snap
