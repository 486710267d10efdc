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

from mpalloc import lazy
from mpalloc.extent import extent_alloc_region, extent_free  # a claim allocates nothing (no import in it)

profile = None
name = None
virtual = False
periph_maps = ()  # extents over the peripheral space, one per 1 GiB window (board_setup._maps)
sram_map = None  # extent over SRAM (aliases excluded)
window = None  # (base, size, real_address_known)
_state = [False]  # init() done
_use = [None]
_dma = {}  # addr -> (size, owner)

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
    from mpalloc import board_setup

    try:
        return board_setup.detect()
    finally:
        lazy.unload("board_setup")


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
    from mpalloc import board_setup

    try:
        return board_setup.window_size(most, ps, free, want)
    finally:
        lazy.unload("board_setup")


def init(window=None):
    """Set the board up from its profile (idempotent). Returns the profile.
    window: bytes of managed window wanted (default: window_size's share)."""
    # => thread context (allocates), at start-up; no allocator of a previous init still in use.
    if _state[0]:
        return profile
    from mpalloc import board_setup  # the set-up code: on the heap only while it runs

    try:
        return board_setup.init(window)
    finally:
        lazy.unload("board_setup")


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
    # by the start alone (comparisons: no int made); extent checks the end
    if sram_map is not None and sram_map.start <= base <= sram_map.end:
        return sram_map
    for ex in periph_maps:
        if ex.start <= base <= ex.end:
            return ex
    raise ValueError("%s: 0x%x+0x%x is neither peripheral space nor SRAM of board '%s'" % (fn, base, size, name))


def _named(fn, base, size):
    # (base, size) of the peripheral named base (size None: its own size)
    for nm, b, s, _ in _rows(profile.get("peripherals"), "used_by"):
        if nm.upper() == base.upper():
            return b, s if size is None else size
    raise ValueError("%s: board '%s' has no peripheral named '%s'" % (fn, name, base))


def _check(fn, base, size):
    if not isinstance(base, int) or not isinstance(size, int) or size < 1:
        raise ValueError("%s: need base (int or peripheral name) and a positive size, got %r, %r" % (fn, base, size))


def claim(name_, base, size=None):
    """Claim [base, base+size) for driver name_; returns (base, size).
    A clash raises OSError(EAGAIN) naming who holds the region."""
    # => thread context; name_ a non-empty str, the range inside a region of the profile;
    # => overlap: OSError(EAGAIN) naming the owner. An int base with small-int ends
    #    allocates only the (base, size) it returns.
    _need()
    if not isinstance(name_, str) or not name_:
        raise ValueError("claim: the owner name must be a non-empty str, not %r" % (name_,))
    if isinstance(base, str):
        base, size = _named("claim", base, size)
    _check("claim", base, size)
    extent_alloc_region(_which("claim", base, size), base, size, 0, name_)
    return base, size


def release(name_, base, size=None):
    """Give back what claim() took (only its owner may)."""
    # => thread context; a claim made by claim() with the same owner. An int base
    #    with small-int ends allocates nothing.
    _need()
    if isinstance(base, str):
        base, size = _named("release", base, size)
    _check("release", base, size)
    extent_free(_which("release", base, size), base, size, 0, name_)


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
    from mpalloc import board_setup

    try:
        return board_setup.memory_map()
    finally:
        lazy.unload("board_setup")
