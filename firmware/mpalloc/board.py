# board: the board mpalloc runs on - its profile, memory map, claims and DMA buffers.
#
#   board.init()               idempotent set-up (nothing runs at import):
#                              1. the profile: board.use(dict) if given, else
#                                 board.json in the current directory or at /
#                                 (deploy and the virtual board write it), else
#                                 a minimal built-in one from sys.platform/uname;
#                              2. intr.setup(ncpu, mode): MODE_SIO on a real
#                                 RP2040, MODE_THREAD on the unix port (virtual
#                                 board), MODE_UP elsewhere;
#                              3. the managed window (mem.attach): on a board a
#                                 bytearray from the gc heap at its real address,
#                                 on the virtual board / webassembly an emulated
#                                 one at the profile's managed.virtual_base;
#                                 its size (window_size): by default the profile's
#                                 managed.bytes but at most a quarter (1/SHARE)
#                                 of the heap free once the modules are in, in
#                                 whole pages; init(window=N) asks for N bytes,
#                                 at most managed.bytes and at most 3/4 of the
#                                 free heap (a quarter stays the program's).
#                                 A window that does not fit: ValueError naming
#                                 the sizes, nothing set up;
#                              4. uvm_km_bootstrap over the window (kernel_map);
#                              5. two extent(9) maps: peripheral space and SRAM,
#                                 with what MicroPython itself uses claimed
#                                 (owner "micropython"), the window claimed by
#                                 "mpalloc", holes "(unmapped)".
#   board.claim(name, base, size)    a driver claims registers or SRAM;
#   board.claim(name, "UART0")       the window the profile gives for UART0.
#                              OSError(EAGAIN) names the owner of a clash.
#   board.release(name, base, size)  only the owner may release.
#   board.dma_alloc(size, align=0, owner=None, ring=False, nocross=None)
#   board.dma_free(addr, size)       DMA buffers from kernel_map meeting the
#                              board's rules (vmem_xalloc with align/nocross).
#   board.memory_map()         dict for mpalloc.stats (STATS_CONTRACT.md).
#   board.mem32()              machine.mem32 on a real board; refused on the
#                              unix port, where it maps the HOST's /dev/mem.
#   booted() / startup(profile=None)  what mpalloc.stats calls.
#
# The virtual board presents the profile's memory map: the same addresses work
# for claims and for the managed window; peripheral registers are NOT emulated
# (there is nothing behind them, and mem32() refuses).
#
# Profile addresses: ints or "0x..." strings (_n()); lists: dicts or the
# compact rows the host writes for small boards ([name, base, size, owner]).
import sys

from mpalloc import intr

profile = None
name = None
virtual = False
periph_map = None  # extent over the peripheral space
sram_map = None  # extent over SRAM (aliases excluded)
window = None  # (base, size, real_address_known)
_state = [False]  # init() done
_use = [None]
_dma = {}  # addr -> (size, owner)

_VIRTUAL_PLATFORMS = ("linux", "darwin", "win32", "webassembly")
_OWN = "micropython"
_HOLE = "(unmapped)"
_MPALLOC = "mpalloc"
SHARE = 4  # the default window: at most 1/SHARE of the free heap


def _n(v):
    if isinstance(v, str):
        return int(v, 16)
    return v


def _rows(lst, extra):
    # (name, base, size, extra) from dicts or compact rows
    out = []
    for r in lst or ():
        if isinstance(r, dict):
            out.append((r["name"], _n(r["base"]), _n(r["size"]), r.get(extra)))
        else:
            out.append((r[0], _n(r[1]), _n(r[2]), r[3] if len(r) > 3 and r[3] else None))
    return out


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


def use(p):
    """Use profile dict p instead of board.json (before init(), or re-init)."""
    # => thread context, before init() (or re-init after); p a profile dict.
    if not isinstance(p, dict) or "name" not in p or not isinstance(p.get("managed"), dict):
        raise ValueError("board.use: a profile dict with at least 'name' and 'managed' is needed")
    m = p["managed"]
    if not isinstance(_n(m.get("bytes")), int) or _n(m["bytes"]) < 1:
        raise ValueError("board.use: profile '%s' needs managed.bytes, a positive size" % (p["name"],))
    _use[0] = p
    _state[0] = False


def detect():
    """The profile this board would use: board.use(), board.json, or built in."""
    # => thread context (allocates).
    if _use[0] is not None:
        return _use[0]
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


def booted():
    # => any context.
    return _state[0]


def startup(p=None, window=None):
    """What mpalloc.stats calls: use(p) if given, then init(window)."""
    # => thread context (allocates), once at boot (main.py).
    if p is not None:
        use(p)
    return init(window)


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


def init(window=None):
    """Set the board up from its profile (idempotent). Returns the profile.
    window: bytes of managed window wanted (default: window_size's share)."""
    # => thread context (allocates), at start-up; no allocator of a previous init still in use.
    global profile, name, virtual, periph_map, sram_map
    if _state[0]:
        return profile
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
    virtual = sys.platform in _VIRTUAL_PLATFORMS
    name = p["name"]
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
    profile = p
    uvm_km.uvm_km_bootstrap(base, size, ps, _exec_regions(p, ps))
    _maps(p)
    _dma.clear()
    _state[0] = True
    return profile


def _attach(p, ps, size):
    global window
    from mpalloc import mem

    real = None
    if not virtual:
        real, buf = mem.alloc_backing(size, ps)
    if real is None:  # virtual board, webassembly, or no uctypes (micro:bit)
        base = _n(p["managed"].get("virtual_base"))
        if not isinstance(base, int):
            raise ValueError("board.init: profile '%s' needs managed.virtual_base here (no real address)" % name)
        buf = bytearray(size)
    else:
        base = real
    mem.attach(base, buf)
    window = (base, size, real is not None)
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
    global periph_map, sram_map
    from mpalloc.extent import extent_destroy

    for ex in (periph_map, sram_map):
        if ex is not None and not ex.dead:
            extent_destroy(ex)
    periph_map = sram_map = None
    per = _rows(p.get("peripherals"), "used_by")
    if per:
        periph_map = _new_extent(name + " peripherals", [(b, s) for _, b, s, _ in per],
                                 [(b, s, u) for _, b, s, u in per if u])
    sr = _sram_regions(p)
    if sr:
        wb, ws, _ = window
        claims = []
        for _, b, s, o in _rows(p.get("reserved"), "owner"):
            e = b + s
            if b < wb:
                claims.append((b, min(e, wb) - b, o or _OWN))
            if e > wb + ws:
                st = max(b, wb + ws)
                claims.append((st, e - st, o or _OWN))
        claims.append((wb, ws, _MPALLOC))
        sram_map = _new_extent(name + " sram", sr, claims)


def _need():
    if not _state[0]:
        init()


def _alias_of(base, size):
    for r in (profile or {}).get("memory") or ():
        if isinstance(r, dict) and r.get("alias_of"):
            b = _n(r["base"])
            if base < b + _n(r["size"]) and b < base + size:
                return r
    return None


def _which(fn, base, size):
    a = _alias_of(base, size)
    if a is not None:
        raise ValueError("%s: 0x%x+0x%x is in '%s', an alias of '%s': claim the region itself (never counted twice)"
                         % (fn, base, size, a["name"], a["alias_of"]))
    if sram_map is not None and sram_map.start <= base and base + size - 1 <= sram_map.end:
        return sram_map
    if periph_map is not None and periph_map.start <= base and base + size - 1 <= periph_map.end:
        return periph_map
    raise ValueError("%s: 0x%x+0x%x is neither peripheral space nor SRAM of board '%s'" % (fn, base, size, name))


def _resolve(fn, base, size):
    if isinstance(base, str):
        for nm, b, s, _ in _rows(profile.get("peripherals"), "used_by"):
            if nm.upper() == base.upper():
                return b, s if size is None else size
        raise ValueError("%s: board '%s' has no peripheral named '%s'" % (fn, name, base))
    if not isinstance(base, int) or not isinstance(size, int) or size < 1:
        raise ValueError("%s: need base (int or peripheral name) and a positive size, got %r, %r" % (fn, base, size))
    return base, size


def claim(name_, base, size=None):
    """Claim [base, base+size) for driver name_; returns (base, size).
    A clash raises OSError(EAGAIN) naming who holds the region."""
    # => thread context; name_ a non-empty str, the range inside a region of the profile;
    # => overlap: OSError(EAGAIN) naming the owner.
    _need()
    if not isinstance(name_, str) or not name_:
        raise ValueError("claim: the owner name must be a non-empty str, not %r" % (name_,))
    b, s = _resolve("claim", base, size)
    from mpalloc.extent import extent_alloc_region

    extent_alloc_region(_which("claim", b, s), b, s, 0, owner=name_)
    return b, s


def release(name_, base, size=None):
    """Give back what claim() took (only its owner may)."""
    # => thread context; a claim made by claim() with the same owner.
    _need()
    b, s = _resolve("release", base, size)
    from mpalloc.extent import extent_free

    extent_free(_which("release", b, s), b, s, 0, owner=name_)


def mem32():
    """machine.mem32 for register access on a real board. Refused on the unix
    port (it maps the host's /dev/mem) and on the virtual board generally."""
    # => any context.
    _need()
    if virtual:
        raise OSError(1, "board.mem32: refused on %s: machine.mem32 would reach the host's /dev/mem; "
                         "peripheral registers of '%s' are not emulated on the virtual board" % (sys.platform, name))
    import machine

    return machine.mem32


# -- DMA ------------------------------------------------------------------------

def _dma_capable(a, n):
    d = profile.get("dma") or {}
    caps = d.get("capable")
    if caps is None:
        return True
    for r in profile.get("memory") or ():
        if isinstance(r, dict) and r.get("name") in caps:
            b = _n(r["base"])
            if b <= a and a + n <= b + _n(r["size"]):
                return True
    return False


def dma_alloc(size, align=0, owner=None, ring=False, nocross=None):
    """A DMA buffer of size bytes from kernel_map; returns its address or None.

    Meets the board's rules: dma.align (word alignment), ring=True aligns to
    the buffer's own (power-of-two) size as RP2040 ring mode needs, nocross
    (default the profile's dma.nocross, e.g. a 64 KiB bank) keeps it inside
    one such block. Free with dma_free(addr, size).
    """
    # => thread context; size > 0. failure: None.
    _need()
    from mpalloc import vmem, uvm_km

    if not isinstance(size, int) or size < 1:
        raise ValueError("dma_alloc: size must be a positive int, not %r" % (size,))
    if not isinstance(align, int) or align < 0 or align & (align - 1):
        raise ValueError("dma_alloc: align must be 0 or a power of two, not %r" % (align,))
    if nocross is not None and (not isinstance(nocross, int) or nocross < 0 or nocross & (nocross - 1)):
        raise ValueError("dma_alloc: nocross must be 0 or a power of two, not %r" % (nocross,))
    d = profile.get("dma") or {}
    a = max(_n(d.get("align", 4)), align or 1)
    if ring:
        rg = d.get("ring")
        if not rg:
            raise ValueError("dma_alloc: board '%s' has no DMA ring mode" % name)
        if size & (size - 1) or not rg["min"] <= size <= rg["max"]:
            raise ValueError("dma_alloc: a ring buffer must be a power of two from %d to %d bytes, not %d"
                             % (rg["min"], rg["max"], size))
        a = max(a, size)
    if a & (a - 1):
        raise ValueError("dma_alloc: align %d is not a power of two" % a)
    nc = _n(d.get("nocross", 0)) if nocross is None else nocross
    ps = uvm_km.PAGE_SIZE
    q = (size + ps - 1) // ps * ps
    if nc and nc < q:
        raise ValueError("dma_alloc: %d bytes (%d in pages) cannot fit inside nocross 0x%x" % (size, q, nc))
    base, wsize, _ = window
    if not _dma_capable(base, wsize):
        raise ValueError("dma_alloc: managed window 0x%x+0x%x of '%s' is not in DMA-capable memory"
                         % (base, wsize, name))
    r = vmem.vmem_xalloc(uvm_km.kernel_map, q, max(a, ps), 0, nc, base, base + wsize - 1,
                         vmem.VM_NOSLEEP | vmem.VM_BESTFIT)
    if not r:
        return None
    if nc and r // nc != (r + q - 1) // nc:  # vmem nocross lines are absolute
        vmem.vmem_xfree(uvm_km.kernel_map, r, q)
        raise AssertionError("dma_alloc: vmem_xalloc gave 0x%x+0x%x crossing nocross 0x%x" % (r, q, nc))
    _dma[r] = (q, owner)
    return r


def dma_free(addr, size):
    # => thread context; addr, size: what dma_alloc returned and took (else ValueError).
    from mpalloc import vmem, uvm_km

    if not isinstance(addr, int) or not isinstance(size, int):
        raise ValueError("dma_free: need an int address and size, got %r, %r" % (addr, size))
    e = _dma.get(addr)
    if e is None:
        raise ValueError("dma_free: 0x%x is not a DMA buffer from dma_alloc" % addr)
    ps = uvm_km.PAGE_SIZE
    if (size + ps - 1) // ps * ps != e[0]:
        raise ValueError("dma_free: 0x%x was allocated with %d bytes (in pages), not %d" % (addr, e[0], size))
    vmem.vmem_xfree(uvm_km.kernel_map, addr, e[0])
    del _dma[addr]


# -- statistics ------------------------------------------------------------------

def memory_map():
    """The board's map for mpalloc.stats: SRAM (aliases marked), flash, the
    managed window, peripherals with their current owner, both extent maps."""
    # => thread context (allocates).
    _need()
    from mpalloc.extent import extent_regions

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
    pregs = extent_regions(periph_map) if periph_map else []
    per = []
    for nm, b, s, _ in _rows(profile.get("peripherals"), "used_by"):
        o = None
        for rs, re, ow in pregs:
            if rs <= b + s - 1 and b <= re and ow != _HOLE:
                o = ow
                break
        per.append({"name": nm, "base": b, "size": s, "owner": o})
    wb, ws, real = window
    return {
        "board": name,
        "virtual": virtual,
        "sram": sram,
        "flash": flash,
        "managed": {"base": wb, "size": ws, "real_address": real},
        "peripherals": per,
        "extents": {"peripherals": pregs, "sram": extent_regions(sram_map) if sram_map else []},
        "dma": [(a, v[0], v[1]) for a, v in _dma.items()],
    }
