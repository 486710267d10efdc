# board_setup: board.init()'s set-up and board.memory_map(), imported on first
# use and dropped after (lazy.unload): on the board their code is on the heap
# only while they run (#19).
#
#   detect()                 the profile: board.use(), board.json, or built in
#   window_size(most, ps, free, want=None)   the managed window's bytes
#   init(window)             board.init()'s work: profile, intr.setup, the
#                            window (mem.attach), kernel_map, the extent maps;
#                            sets board's globals
#   memory_map()             board.memory_map()'s dict
#
# Data: none of its own; board's globals (profile, name, virtual, window,
# periph_maps, sram_map, _state, _use, _dma) are the state. Locking: none
# (thread context, at start-up).
import sys

from mpalloc import board as B
from mpalloc import intr
from mpalloc.board import _n, _rows, SHARE

_VIRTUAL_PLATFORMS = ("linux", "darwin", "win32", "webassembly")
_OWN = "micropython"
_HOLE = "(unmapped)"
_MPALLOC = "mpalloc"


def _builtin(plat):
    # Only what init() needs when no board.json exists.
    if plat == "rp2":
        return {"name": "rp2040", "cpu": {"python_cpus": 2}, "page_size": 256, "cpuid": {"method": "sio"},
                "managed": {"bytes": 65536, "virtual_base": 0x20010000}}
    if plat == "esp32":
        return {"name": "esp32", "cpu": {"python_cpus": 1}, "page_size": 256,
                "managed": {"bytes": 32768, "virtual_base": 0x3FFB0000}}
    if plat == "microbit":
        return {"name": "microbit", "cpu": {"python_cpus": 1}, "page_size": 64,
                "managed": {"bytes": 2048, "virtual_base": 0x20002000}}
    return {"name": "unix", "cpu": {"python_cpus": 2}, "page_size": 256,
            "managed": {"bytes": 65536, "virtual_base": 0x10000000}, "virtual": True}


def _read_json():
    try:
        import json
    except ImportError:
        import ujson as json
    for p in ("board.json", "/board.json"):
        try:
            f = open(p)
        except OSError:
            continue
        try:
            return json.load(f)
        except ValueError as e:
            raise ValueError("board.init: %s is not valid JSON: %s" % (p, e))
        finally:
            f.close()
    return None


# profile fields the board does not need (host_tools/mpalloc_host/profiles.py drops the same: PROSE)
_PROSE = ("notes", "title", "sources", "clock_notes", "python", "bus", "flash", "interrupts", "core", "gc_heap",
          "register_bytes")


_ADDR = ("base", "size", "bytes", "virtual_base", "address", "end", "backed", "nocross")


def _prune(v):
    # Make a full profile small on the board: no prose, "0x..." as ints, the
    # peripheral and reserved lists as (name, base, size, owner) tuples (the
    # host's trimmed copy is already like this).
    if isinstance(v, dict):
        for k in _PROSE:
            if k in v:
                del v[k]
        for k in v:
            x = v[k]
            if k in _ADDR and isinstance(x, str):
                v[k] = int(x, 16)
            elif k == "peripherals" or k == "reserved":
                v[k] = [tuple(r) for r in _rows(x, "used_by" if k == "peripherals" else "owner")]
            else:
                _prune(x)
    elif isinstance(v, list):
        for x in v:
            _prune(x)
    return v


def detect():
    """The profile this board would use: board.use(), board.json, or built in."""
    # => thread context (allocates).
    if B._use[0] is not None:
        return B._use[0]
    p = _read_json()
    if p is not None:
        return _prune(p)
    return _builtin(sys.platform)


def _mode(p):
    plat = sys.platform
    if plat in ("linux", "darwin", "win32"):
        try:
            import _thread  # noqa: F401

            return intr.MODE_THREAD, p.get("cpu", {}).get("python_cpus", 1)
        except ImportError:
            return intr.MODE_UP, 1
    if plat == "webassembly":
        return intr.MODE_UP, 1
    n = p.get("cpu", {}).get("python_cpus", 1)
    if plat == "rp2" and p.get("cpuid", {}).get("method") == "sio":
        return intr.MODE_SIO, n
    return intr.MODE_UP, 1


def window_size(most, ps, free, want=None):
    """Bytes of the managed window: `most` (the profile's managed.bytes) capped
    at free // SHARE, in whole pages of ps; or `want` bytes if asked (at most
    `most` and 3/4 of `free`). => most, ps > 0; free: bytes of heap free (None:
    unknown, no cap). A window that does not fit raises ValueError with the sizes."""
    if want is None:
        n = most if free is None else min(most, free // SHARE)
        n = n // ps * ps
        if n < ps:
            raise ValueError("board.init: no room for a managed window: %d bytes of heap free, a quarter is "
                             "less than one %d-byte page" % (free, ps))
        return n
    if not isinstance(want, int) or want < ps:
        raise ValueError("board.init: window must be an int of at least one page (%d bytes), not %r" % (ps, want))
    n = (want + ps - 1) // ps * ps
    if n > most:
        raise ValueError("board.init: a %d-byte window is larger than the profile's managed.bytes (%d)" % (n, most))
    if free is not None and n > free - free // SHARE:
        raise ValueError("board.init: a %d-byte window does not fit: %d bytes of heap free, at most %d may go "
                         "to the window (a quarter stays the program's)" % (n, free, free - free // SHARE))
    return n


def init(window):
    """board.init()'s work (board.init checks _state first)."""
    # => thread context (allocates), at start-up; no allocator of a previous init still in use.
    p = detect()
    ps = p.get("page_size", 256)
    from mpalloc import mem
    from mpalloc import uvm_km  # before the window: compiling it needs heap

    free = None
    try:
        import gc

        gc.collect()
        free = gc.mem_free()
    except (ImportError, AttributeError):  # CPython: no gc.mem_free
        pass
    size = window_size(_n(p["managed"]["bytes"]), ps, free, window)
    B.virtual = sys.platform in _VIRTUAL_PLATFORMS
    B.name = p["name"]
    while True:
        try:
            base = _attach(p, ps, size)
            break
        except MemoryError:
            # free heap in pieces: the default halves (at least 4 pages), an asked size is an error
            if window is not None or size // 2 < 4 * ps:
                raise ValueError("board.init: no room for a %d-byte managed window in one piece: %s bytes of heap "
                                 "free, fragmented; ask for less: board.init(window=N)"
                                 % (size, free))
            size = size // 2 // ps * ps
    m, ncpu = _mode(p)
    intr.setup(ncpu, m)
    uvm_km.uvm_km_bootstrap(base, size, ps, _exec_regions(p, ps))
    B.profile = p  # _maps reads the profile's name through board
    _maps(p)
    p = B.profile = _slim(p)
    B._dma.clear()
    B._state[0] = True
    return p


# What board reads from its profile after init() (claim, dma_alloc, memory_map,
# stats): a copy with only that, since a profile's dicts are heavy on the heap
# (rp2040: 7.8 KB parsed). The caller's dict (board.use) is left as it was.
_TOP = ("name", "page_size", "managed", "memory", "peripherals", "dma", "cpu", "micropython")
_MEMORY = ("name", "kind", "base", "size", "alias_of", "exec", "dma", "banks")
_MP = ("port", "platform", "heap_bytes", "threads", "hard_irq")


def _pick(d, keys):
    out = {}
    for k in keys:
        if k in d:
            out[k] = d[k]
    return out


def _slim(p):
    q = _pick(p, _TOP)
    if isinstance(q.get("micropython"), dict):
        q["micropython"] = _pick(q["micropython"], _MP)
    if q.get("memory"):
        q["memory"] = [_pick(r, _MEMORY) if isinstance(r, dict) else r for r in q["memory"]]
    return q


def _attach(p, ps, size):
    from mpalloc import mem

    real = None
    if not B.virtual:
        real, buf = mem.alloc_backing(size, ps)
    if real is None:  # virtual board, webassembly, or no uctypes (micro:bit)
        base = _n(p["managed"].get("virtual_base"))
        if not isinstance(base, int):
            raise ValueError("board.init: profile '%s' needs managed.virtual_base here (no real address)" % B.name)
        buf = bytearray(size)
    else:
        base = real
    mem.attach(base, buf)
    B.window = (base, size, real is not None)
    return base


def _exec_regions(p, ps):
    out = []
    names = p.get("exec_regions") or ()
    for nm, b, s, _ in _rows(p.get("memory"), "kind"):
        if nm in names:
            b2 = (b + ps - 1) // ps * ps
            out.append((b2, (b + s - b2) // ps * ps))
    return out


def _sram_regions(p):
    out = []
    for r in p.get("memory") or ():
        if isinstance(r, dict) and r.get("kind") == "sram" and not r.get("alias_of"):
            out.append((_n(r["base"]), _n(r["size"])))
    out.sort()
    return out


def _new_extent(label, spans, claims):
    # An extent over the hull of spans; the holes between spans and every
    # (base, size, owner) claim taken. Claims outside the hull are skipped.
    from mpalloc.extent import extent_create, extent_alloc_region

    spans.sort()
    lo = spans[0][0]
    hi = lo
    for b, s in spans:
        if b + s > hi:
            hi = b + s
    ex = extent_create(label, lo, hi - 1, None, 0, 0)
    prev = lo
    for b, s in spans:
        if b > prev:
            extent_alloc_region(ex, prev, b - prev, 0, owner=_HOLE)
        if b + s > prev:
            prev = b + s
    for b, s, o in claims:
        if lo <= b and b + s <= hi:
            extent_alloc_region(ex, b, s, 0, owner=o)
    return ex


def _maps(p):
    from mpalloc.extent import extent_destroy

    for ex in B.periph_maps + (B.sram_map,):
        if ex is not None and not ex.dead:
            extent_destroy(ex)
    B.periph_maps = ()
    B.sram_map = None
    name = B.name
    per = _rows(p.get("peripherals"), "used_by")
    # One map per 1 GiB window of the address space (a peripheral belongs to the
    # window of its base): on a 32-bit port an int >= 2**30 is a heap object,
    # and within a map spanning less than 2**30 extent's offsets are small ints,
    # so a claim or release at 0x4000_0000 and up allocates nothing.
    maps = []
    for w in sorted(set(b >> 30 for _, b, _, _ in per)):
        rows = [r for r in per if r[1] >> 30 == w]
        maps.append(_new_extent("%s peripherals 0x%x" % (name, w << 30), [(b, s) for _, b, s, _ in rows],
                                [(b, s, u) for _, b, s, u in rows if u]))
    B.periph_maps = tuple(maps)
    sr = _sram_regions(p)
    if sr:
        wb, ws, _ = B.window
        claims = []
        for _, b, s, o in _rows(p.get("reserved"), "owner"):
            e = b + s
            if b < wb:
                claims.append((b, min(e, wb) - b, o or _OWN))
            if e > wb + ws:
                st = max(b, wb + ws)
                claims.append((st, e - st, o or _OWN))
        claims.append((wb, ws, _MPALLOC))
        B.sram_map = _new_extent(name + " sram", sr, claims)




def memory_map():
    """board.memory_map()'s dict (board.memory_map calls init first)."""
    # => thread context (allocates), after board.init().
    from mpalloc.extent import extent_regions

    profile = B.profile
    sram_map = B.sram_map

    sram = []
    flash = []
    for r in profile.get("memory") or ():
        if not isinstance(r, dict):
            continue
        e = {"name": r["name"], "base": _n(r["base"]), "size": _n(r["size"]),
             "exec": r.get("exec", False), "dma": r.get("dma", False)}
        if r.get("alias_of"):
            e["alias_of"] = r["alias_of"]
        if r.get("banks"):
            e["banks"] = r["banks"]["count"]
            e["striped"] = r["banks"].get("striped", False)
        if r.get("kind") == "sram":
            sram.append(e)
        elif r.get("kind") == "flash":
            flash.append(e)
    pregs = []
    for ex in B.periph_maps:
        pregs.extend(extent_regions(ex))
    per = []
    for nm, b, s, _ in _rows(profile.get("peripherals"), "used_by"):
        o = None
        for rs, re, ow in pregs:
            if rs <= b + s - 1 and b <= re and ow != _HOLE:
                o = ow
                break
        per.append({"name": nm, "base": b, "size": s, "owner": o})
    wb, ws, real = B.window
    return {
        "board": B.name,
        "virtual": B.virtual,
        "sram": sram,
        "flash": flash,
        "managed": {"base": wb, "size": ws, "real_address": real},
        "peripherals": per,
        "extents": {"peripherals": pregs, "sram": extent_regions(sram_map) if sram_map else []},
        "dma": [(a, v[0], v[1]) for a, v in B._dma.items()],
    }
