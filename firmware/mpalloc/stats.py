# stats: mpalloc's statistics stream, the board's side of `vmstat -m` / `vmstat -C`.
#
# dump() prints one line per record, versioned and machine-readable:
#
#   @@mps <version> <kind> <json object>
#
# The host (host_tools/mpalloc_host/stats.py) picks these lines out of the serial
# output; anything else on the line is device log. Kinds (version 1):
#
#   begin       {"v", "platform", "impl", "board", "heap_free", "heap_alloc", "ticks_ms", "hot_path"}
#   vmem        vmem_stats(vm)                          one per arena in vmem_list
#   segs        {"arena", "spans": [[addr, size, imported]], "segs": [[addr, size, state]]}
#   uvm_km      uvm_km_stats()
#   pool        pool_stats(pp)                          one per pool in pool_list
#   pages       {"pool", "pages": [[addr, bytes, inuse]]}
#   pool_cache  pool_cache_stats(pc)
#   kmem        kmem_stats()
#   extent      {"name", "start", "end", "regions": [[start, end_incl, owner]]}
#   memmap      board.memory_map()
#   kmalloc / objcache / mpipe / zone   <x>_stats(obj)
#   error       {"kind", "error"}    a reader raised; the rest of the stream goes on
#   end         {"records", "heap_cost", "ms"}
#
# What it reads: only the functions listed in docs/STATS_CONTRACT.md, and only in
# modules ALREADY imported (sys.modules): a snapshot never pulls in an allocator the
# board does not use, and never calls an allocator's alloc/free, so no counter moves.
#
# What it costs: it is not an interrupt path. It allocates from the MicroPython heap
# (the dicts and lists the readers return, and the text it prints), never from the
# memory mpalloc manages. All records are read first, then printed, so the figures
# are as close to one instant as the readers allow; "heap_cost" in the end record
# is the MicroPython heap taken while reading (gc.mem_alloc() difference, without a
# collection in between), "ms" the time reading took. With segs=False the segment
# and page lists are left out (cheaper; what `mpalloc stats` asks for).
#
# JSON is hand-formatted (ints, strings, bools, None, lists, tuples, dicts), so the
# stream is the same on every port, including the micro:bit's 1.9.2 core.
import sys
import gc



from mpalloc.compat import const, ticks_ms, ticks_diff


VERSION = const(1)
TAG = "@@mps"

# (kind, module, list name, reader name): one record per element of the list.
_PER_OBJECT = (
    ("vmem", "vmem", "vmem_list", "vmem_stats"),
    ("pool", "pool", "pool_list", "pool_stats"),
    ("pool_cache", "pool_cache", "pool_cache_list", "pool_cache_stats"),
    ("kmalloc", "kmalloc", "malloc_types", "kmalloc_stats"),
    ("objcache", "objcache", "objcache_list", "objcache_stats"),
    ("mpipe", "mpipe", "mpipe_list", "mpipe_stats"),
    ("zone", "zone", "zone_list", "zone_stats"),
)
# (kind, module, reader name): one record per module.
_PER_MODULE = (
    ("uvm_km", "uvm_km", "uvm_km_stats"),
    ("kmem", "kmem", "kmem_stats"),
    ("memmap", "board", "memory_map"),
)


# Ports without sys.modules (the micro:bit's MicroPython 1.9.2): whoever imports an
# allocator there registers it here, e.g. stats.modules["zone"] = zone.
modules = {}


def _mod(name):
    """The mpalloc module `name` if it is already imported, else None."""
    mods = getattr(sys, "modules", None)
    if mods is None:
        return modules.get(name)
    m = mods.get("mpalloc." + name)
    if m is None:
        m = mods.get(name)  # flat deploy (micro:bit: no directories)
    return m


def _mem():
    try:
        return gc.mem_free(), gc.mem_alloc()
    except AttributeError:  # CPython
        return -1, -1


def _board_name():
    b = _mod("board")
    if b is None:
        return None
    p = getattr(b, "profile", None)
    if isinstance(p, dict):
        return p.get("name")
    return getattr(b, "name", None) if not callable(getattr(b, "name", None)) else None


def _err(out, kind, e):
    # (types have no __name__ on MicroPython 1.9.2)
    out.append(("error", {"kind": kind, "error": "%s: %s" % (getattr(type(e), "__name__", "Error"), e)}))


def _extent_record(m, ex):
    regs = [list(r) for r in m.extent_regions(ex)]
    st = getattr(m, "extent_stats", None)
    if st is not None:
        d = st(ex)
        d["regions"] = regs
        return d
    return {
        "name": getattr(ex, "name", None),
        "start": getattr(ex, "start", None),
        "end": getattr(ex, "end", None),
        "regions": regs,
    }


def _begin(gc_free, gc_alloc, t0):
    impl = sys.implementation
    return {
        "v": VERSION,
        "platform": sys.platform,
        "impl": "%s %s" % (impl.name, ".".join([str(x) for x in impl.version[:3]])),
        "board": _board_name(),
        "heap_free": gc_free,
        "heap_alloc": gc_alloc,
        "ticks_ms": t0,
        "hot_path": _hot_path(),
    }


def _hot_path():
    # "native" or "bytecode", the pool_cache hit pair bound now; None
    # where pool_cache is not imported (or predates the switch)
    m = _mod("pool_cache")
    f = getattr(m, "native_path", None) if m is not None else None
    return f() if f is not None else None


def _detail(out, kind, obj, m):
    """The segment map of an arena, the pages of a pool (segs=True)."""
    try:
        if kind == "vmem":
            out.append(("segs", arena_segments(obj, m)))
        elif kind == "pool" and hasattr(m, "pool_pages"):
            out.append(("pages", {"pool": out[-1][1].get("name"), "pages": [list(p) for p in m.pool_pages(obj)]}))
    except Exception as e:
        _err(out, kind, e)


def _objects(out, segs):
    for kind, mname, lname, rname in _PER_OBJECT:
        m = _mod(mname)
        if m is None:
            continue
        lst = getattr(m, lname, None)
        reader = getattr(m, rname, None)
        if lst is None or reader is None:
            continue
        for obj in list(lst):  # copy: the list may change while we read
            try:
                out.append((kind, reader(obj)))
            except Exception as e:
                _err(out, kind, e)
                continue
            if segs:
                _detail(out, kind, obj, m)


def _modules(out):
    for kind, mname, rname in _PER_MODULE:
        m = _mod(mname)
        reader = getattr(m, rname, None) if m is not None else None
        if reader is None:
            continue
        try:
            out.append((kind, reader()))
        except Exception as e:
            _err(out, kind, e)
    m = _mod("extent")
    if m is not None and hasattr(m, "extent_list") and hasattr(m, "extent_regions"):
        for ex in list(m.extent_list):
            try:
                out.append(("extent", _extent_record(m, ex)))
            except Exception as e:
                _err(out, "extent", e)


def collect(segs=True):
    """Read every statistic now; return a list of (kind, dict). Allocates.
    (In small functions: the micro:bit compiles each top-level statement alone.)"""
    gc_free, gc_alloc = _mem()
    t0 = ticks_ms()
    out = [("begin", _begin(gc_free, gc_alloc, t0))]
    _objects(out, segs)
    _modules(out)
    ms = ticks_diff(ticks_ms(), t0)
    cost = -1
    if gc_alloc >= 0:
        cost = _mem()[1] - gc_alloc
    out.append(("end", {"records": len(out) + 1, "heap_cost": cost, "ms": ms}))
    return out


def arena_segments(vm, m=None):
    """Snapshot of one arena's segment map: {"arena", "spans", "segs"}. Allocates."""
    if m is None:
        m = _mod("vmem")
    name = None
    try:
        name = m.vmem_stats(vm)["name"]
    except Exception:
        name = getattr(vm, "name", None)
    spans = []
    if hasattr(m, "vmem_spans"):
        for s in m.vmem_spans(vm):
            # ("span", addr, size, imported) or (addr, size, imported)
            if len(s) == 4:
                spans.append([s[1], s[2], bool(s[3])])
            else:
                spans.append([s[0], s[1], bool(s[2])])
    return {"arena": name, "spans": spans, "segs": [list(s) for s in m.vmem_segments(vm)]}


# --- output -------------------------------------------------------------------

def _wstr(w, s):
    w('"')
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            w("\\" + ch)
        elif o < 32 or o > 126:
            w("\\u%04x" % (o & 0xFFFF))
        else:
            w(ch)
    w('"')


def _wjson(w, v):
    if v is None:
        w("null")
    elif v is True:
        w("true")
    elif v is False:
        w("false")
    elif isinstance(v, int):
        w(str(v))
    elif isinstance(v, float):
        w(repr(v))
    elif isinstance(v, str):
        for ch in v:  # plain text is written as is (one call less: the micro:bit's C stack is short)
            if ch == '"' or ch == "\\" or ord(ch) < 32 or ord(ch) > 126:
                _wstr(w, v)
                break
        else:
            w('"' + v + '"')
    elif isinstance(v, (bytes, bytearray)):
        _wstr(w, v.decode())
    elif isinstance(v, dict):
        w("{")
        first = True
        for k in v:
            if not first:
                w(",")
            first = False
            _wstr(w, str(k))
            w(":")
            _wjson(w, v[k])
        w("}")
    elif isinstance(v, (list, tuple)):
        w("[")
        first = True
        for x in v:
            if not first:
                w(",")
            first = False
            _wjson(w, x)
        w("]")
    else:
        _wstr(w, str(v))


def _write(s):
    print(s, end="")  # (no sys.stdout on MicroPython 1.9.2)


def emit(records, w=None):
    """Print records as @@mps lines through w (default: print without a newline)."""
    if w is None:
        w = _write
    for kind, d in records:
        w(TAG)
        w(" %d %s " % (VERSION, kind))
        _wjson(w, d)
        w("\n")


def dump(segs=True):
    """Read everything (see collect), then print it as one @@mps stream."""
    emit(collect(segs))


def dump_arena(name):
    """Print the segment map of the vmem arena called `name` (one segs record)."""
    m = _mod("vmem")
    if m is None:
        raise ValueError("dump_arena: vmem is not in use on this board")
    for vm in list(m.vmem_list):
        if m.vmem_stats(vm)["name"] == name:
            emit([("segs", arena_segments(vm, m))])
            return
    raise ValueError("dump_arena: no arena named %r" % name)


def tojson(v):
    """v as JSON text (the encoder the stream uses)."""
    parts = []
    _wjson(parts.append, v)
    return "".join(parts)
