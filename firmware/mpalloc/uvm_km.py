# uvm_km: uvm_km(9), page-granular kernel memory over mpalloc's managed window.
#
#   uvm_km_bootstrap(base, size, page_size, exec_regions=())   # board.py / tests
#   a = uvm_km_alloc(kernel_map, size, align, UVM_KMF_WIRED | UVM_KMF_ZERO)
#   uvm_km_free(kernel_map, a, size, UVM_KMF_WIRED)
#   submap, lo, hi = uvm_km_suballoc(kernel_map, size, VM_MAP_INTRSAFE, False, 0, "name")
#
# kernel_map is a vmem arena (quantum PAGE_SIZE) over [base, base + size); a
# submap is a vmem arena over a range carved out of its parent. Addresses are
# ints; uvm_km_buf(addr, size) gives the bytes through mpalloc.mem.
# Types on a board without an MMU (virtual address = physical):
#   UVM_KMF_WIRED     SRAM usable at once; UVM_KMF_ZERO zeroes it first.
#   UVM_KMF_PAGEABLE  demand-zero: the range is reserved and its pages marked
#                     untouched; the first uvm_km_buf() over a page zeroes it
#                     (mem.ram or DMA before that shows old data). Nothing is
#                     paged out: the reservation is SRAM, as WIRED.
#   UVM_KMF_VAONLY    the address range only, never zeroed.
#   UVM_KMF_EXEC      from an executable region of the profile (ESP32 IRAM).
# Map flags: VM_MAP_PAGEABLE (may hand out PAGEABLE memory; kernel_map has
# it), VM_MAP_INTRSAFE (handlers may allocate; kernel_map has it),
# VM_MAP_TOPDOWN (highest addresses first).
#
# Representation: per map a record (_maps[id(map)]): its vmem arena, range,
# flags, lock, rec and untouched. rec[page] = (npages << 5) | pool | type at
# the first page of every allocation (array('i'), one word per page,
# preallocated); untouched[page] = 1 for a PAGEABLE page not yet zeroed.
# Invariants: rec's non-zero entries are exactly the starts of the map's live
# allocations, each covering npages busy pages of its arena; _bytes counts
# the live bytes of each type. _RPOOL marks a pool(9) page (UVM_KMF_POOLPAGE):
# uvm_km_free without the flag refuses it, so kmem_free(item, large size)
# cannot give a page back under the pool's live items.
#
# Locking: a map's spin lock at splhigh() around its arena and records;
# UVM_KMF_TRYLOCK fails instead of waiting for it. A submap's lock is its own.
# Failure returns 0 (as vaddr_t 0). Without UVM_KMF_WAITVA a shortage fails
# at once; with it (and neither NOWAIT nor CANFAIL) the call waits while
# another CPU thread may free (virtual board) and raises MemoryError where
# nobody can. Misuse (another size or type, an address never returned) is a
# ValueError. Hot path: uvm_km_alloc/free with NOWAIT on an INTRSAFE map
# allocate nothing from the heap (pool pages come and go from handlers).
# Resident: alloc/free/buf. uvm_km_setup (bootstrap, suballoc, stats) and
# uvm_km_diag (misuse messages, debug checks) load on use and go after.
import sys
import time

from mpalloc.compat import const, ticks_ms, ticks_diff
from mpalloc import intr, lazy
from mpalloc import vmem as _vmem

UVM_KMF_WIRED = const(0x1)
UVM_KMF_PAGEABLE = const(0x2)
UVM_KMF_VAONLY = const(0x4)
UVM_KMF_CANFAIL = const(0x8)
UVM_KMF_ZERO = const(0x10)
UVM_KMF_EXEC = const(0x20)
UVM_KMF_TRYLOCK = const(0x200000)
UVM_KMF_NOWAIT = const(0x400000)
UVM_KMF_WAITVA = const(0x800000)
UVM_KMF_POOLPAGE = const(0x1000)  # mpalloc: the range is a pool page (see the header)
_TYPES = const(0x7)
_SUBMAP = const(0x8)  # rec type: a submap's range in its parent
_RPOOL = const(0x10)  # rec: allocated with UVM_KMF_POOLPAGE
_RSHIFT = const(5)  # rec: the page count above the type bits

VM_MAP_PAGEABLE = const(0x01)
VM_MAP_INTRSAFE = const(0x02)
VM_MAP_TOPDOWN = const(0x40)

_WAIT_MS = const(2000)

PAGE_SIZE = 0
kernel_map = None
kernel_exec_map = None
_maps = {}  # id(arena) -> _Map
_bytes = [0, 0, 0]  # wired, pageable, vaonly bytes in use


def _vm_flag(name, default):
    return getattr(_vmem, name, default)


class _Map:
    pass


_LIMIT = const(1 << 40)  # sizes and alignments beyond this are refused up front


def _ints(fn, what, a, b, c):
    # TypeError naming fn unless a, b and c are ints; ValueError for sizes
    # beyond _LIMIT (a: the size, b: an alignment or address, c: flags)
    # (no tuple: pool pages come and go here from interrupt handlers, heap locked)
    if not isinstance(a, int) or not isinstance(b, int) or not isinstance(c, int):
        raise TypeError("%s: %s must be ints, got %s, %s, %s" % (fn, what, type(a).__name__, type(b).__name__, type(c).__name__))
    if a > _LIMIT or b > _LIMIT << 8 or b < -_LIMIT:
        raise ValueError("%s: %s out of range (%d, %d)" % (fn, what, a, b))


def _mi(vm, fn):
    mi = _maps.get(id(vm))
    if mi is None:
        raise ValueError("%s: %r is not a map of uvm_km (kernel_map or a submap)" % (fn, vm))
    return mi


def uvm_km_bootstrap(base, size, page_size, exec_regions=()):
    """Create kernel_map over [base, base + size) with PAGE_SIZE page_size.

    exec_regions: (base, size) pairs the board profile marks executable; those
    inside the window are carved out of kernel_map and form kernel_exec_map.
    """
    # => thread context (allocates), at start-up or in tests: every map made before is forgotten.
    # => page_size a power of two, base and size multiples of it.
    return _cold("bootstrap", base, size, page_size, exec_regions)


def _teardown():
    # forget the previous kernel_map (uvm_km_setup.teardown)
    return _cold("teardown")


def _cold(fn, *args):
    # uvm_km_setup.fn(*args), the module dropped after
    # => thread context (imports, allocates).
    from mpalloc import uvm_km_setup

    try:
        return getattr(uvm_km_setup, fn)(*args)
    finally:
        if sys.platform != "webassembly":  # (no collection while a program runs there: see vmem._cold)
            lazy.unload("uvm_km_setup")


def _xalloc(mi, sz, align, lo, hi):
    # sz bytes from map mi's arena within [lo, hi] (uvm_km_setup's claims)
    f = _vm_flag("VM_NOSLEEP", 2) | _vm_flag("VM_BESTFIT", 0x2000)
    return _vmem.vmem_xalloc(mi.arena, sz, align, 0, 0, lo, hi, f)


def _va_alloc(mi, sz, align):
    # _xalloc's body written out at each use, one frame less: the Pico's 7.9 KB
    # C stack holds ~30 Python frames and objcache's first get goes through
    # every layer down to here
    lo = mi.lo
    hi = mi.hi - 1
    f = _vm_flag("VM_NOSLEEP", 2) | _vm_flag("VM_BESTFIT", 0x2000)
    if not mi.flags & VM_MAP_TOPDOWN:
        return _vmem.vmem_xalloc(mi.arena, sz, align, 0, 0, lo, hi, f)
    # Top-down: a search window growing downwards from the top in powers of two.
    w = sz
    while True:
        m = hi + 1 - w
        if m <= lo:
            return _vmem.vmem_xalloc(mi.arena, sz, align, 0, 0, lo, hi, f)
        a = _vmem.vmem_xalloc(mi.arena, sz, align, 0, 0, m, hi, f)
        if a is not None:
            return a
        w *= 2


def _lock(mi, flags):
    m = mi.lock
    s = intr.splhigh()
    if m is not None:
        if flags & UVM_KMF_TRYLOCK:
            if not m.acquire(0):
                intr.splx(s)
                return None
        else:
            m.acquire()
    return s


def _unlock(mi, s):
    if mi.lock is not None:
        mi.lock.release()
    intr.splx(s)


def uvm_km_alloc(map, size, align, flags):
    """Page-granular memory from map: an address, or 0 on failure."""
    # => thread context; from an interrupt only a VM_MAP_INTRSAFE map with UVM_KMF_NOWAIT
    # => (else ValueError). No map lock held by the caller. size > 0.
    # => failure: 0 (UVM_KMF_WAITVA with nobody to free: MemoryError); misuse: ValueError.
    mi = _mi(map, "uvm_km_alloc")
    _ints("uvm_km_alloc", "size, align and flags", size, align, flags)
    t = flags & _TYPES
    ps = PAGE_SIZE
    if (t != UVM_KMF_WIRED and t != UVM_KMF_PAGEABLE and t != UVM_KMF_VAONLY or size <= 0
            or flags & UVM_KMF_ZERO and t != UVM_KMF_WIRED or align and (align % ps or align & (align - 1))
            or flags & UVM_KMF_EXEC and kernel_exec_map is None):
        _diag("bad_alloc", mi, size, align, flags)
    if flags & UVM_KMF_EXEC:
        mi = _maps[id(kernel_exec_map)]
    if (t == UVM_KMF_PAGEABLE and not mi.flags & VM_MAP_PAGEABLE
            or not mi.flags & VM_MAP_INTRSAFE and intr.cpu_intr_p()):
        _diag("bad_map", mi, t, 0, 0)
    sz = (size + ps - 1) & -ps
    t0 = None
    while True:
        s = _lock(mi, flags)
        if s is None:
            return 0
        try:
            a = _va_alloc(mi, sz, align)
        except BaseException:  # MemoryError, KeyboardInterrupt: not with the map locked
            _unlock(mi, s)
            raise
        if a is not None:
            break
        _unlock(mi, s)
        if not flags & UVM_KMF_WAITVA or flags & (UVM_KMF_NOWAIT | UVM_KMF_CANFAIL):
            return 0
        if intr.mode != intr.MODE_THREAD or intr.ncpu < 2 or intr.cpu_intr_p():
            raise MemoryError("uvm_km_alloc: map '%s': no %d bytes and UVM_KMF_WAITVA would wait forever (one CPU)" % (mi.name, sz))
        if t0 is None:
            t0 = ticks_ms()
        if ticks_diff(ticks_ms(), t0) > _WAIT_MS:
            raise MemoryError("uvm_km_alloc: map '%s': UVM_KMF_WAITVA waited %d ms for %d bytes" % (mi.name, _WAIT_MS, sz))
        time.sleep_ms(1) if hasattr(time, "sleep_ms") else time.sleep(0.001)
    try:
        p = (a - mi.lo) // ps
        npg = sz // ps
        mi.rec[p] = (npg << _RSHIFT) | t | (_RPOOL if flags & UVM_KMF_POOLPAGE else 0)
        if t == UVM_KMF_PAGEABLE:
            u = mi.untouched
            for i in range(p, p + npg):
                u[i] = 1
            _bytes[1] += sz
        elif t == UVM_KMF_WIRED:
            _bytes[0] += sz
        else:
            _bytes[2] += sz
        if _debug[0]:
            _chk_locked(mi, s, a)
    finally:
        _unlock(mi, s)
    if flags & UVM_KMF_ZERO:
        _zero(a, sz)
    return a


def _zero(a, n):
    from mpalloc import mem

    if mem.ram is None or a < mem.base or a + n > mem.base + mem.size:
        return  # outside the window: no bytes to reach (documented)
    r = mem.ram
    o = a - mem.base
    for j in range(o, o + n):
        r[j] = 0


def _owner(map, addr, fn):
    mi = _mi(map, fn)
    if kernel_exec_map is not None and mi.parent is None:
        ex = _maps[id(kernel_exec_map)]
        if ex.lo <= addr < ex.hi:
            return ex
    return mi


def uvm_km_free(map, addr, size, flags):
    """Free what uvm_km_alloc(map, size, ..., flags) returned: same size and type."""
    # => as uvm_km_alloc's context; addr, size, flags' type: what uvm_km_alloc took and returned.
    # => anything else (other size, type, an address never returned): ValueError.
    _mi(map, "uvm_km_free")
    _ints("uvm_km_free", "addr, size and flags", size, addr, flags)
    mi = _owner(map, addr, "uvm_km_free")
    t = flags & _TYPES
    if t != UVM_KMF_WIRED and t != UVM_KMF_PAGEABLE and t != UVM_KMF_VAONLY:
        _diag("bad_type", "uvm_km_free", flags, 0, 0)
    ps = PAGE_SIZE
    if not isinstance(addr, int) or not mi.lo <= addr < mi.hi or (addr - mi.lo) % ps:
        _free_err(mi, addr, size, flags, 0)
    sz = (size + ps - 1) & -ps
    s = _lock(mi, 0)
    try:
        _free_locked(mi, addr, size, sz, flags, t, s)
    finally:
        _unlock(mi, s)


def _free_locked(mi, addr, size, sz, flags, t, s):
    # uvm_km_free's part under the map lock (the caller releases it)
    ps = PAGE_SIZE
    p = (addr - mi.lo) // ps
    r = mi.rec[p]
    # the check under the lock, the message (which allocates) after it
    e = 0
    if r == 0 or r & _SUBMAP:
        e = 1
    elif r & _TYPES != t:
        e = 2
    elif (r & _RPOOL) != (_RPOOL if flags & UVM_KMF_POOLPAGE else 0):
        e = 3
    elif (r >> _RSHIFT) * ps != sz or size <= 0:
        e = 4
    if e:
        _free_err(mi, addr, size, flags, r if e > 1 else 0)
    mi.rec[p] = 0
    u = mi.untouched
    for i in range(p, p + sz // ps):
        u[i] = 0
    _bytes[0 if t == UVM_KMF_WIRED else (1 if t == UVM_KMF_PAGEABLE else 2)] -= sz
    _vmem.vmem_xfree(mi.arena, addr, sz)
    if _debug[0]:
        _chk_locked(mi, s, addr)


uvm_km_lasterr = [0]
E_FREE = ValueError("uvm_km_free: misuse with the heap locked (address in uvm_km.uvm_km_lasterr)")


def _free_err(mi, addr, size, flags, r):
    # uvm_km_free misuse (r: the allocation's record, 0 if none): a message
    # naming the address, or the preallocated E_FREE where the heap is locked.
    uvm_km_lasterr[0] = addr
    try:
        m = _diag("free_msg", mi, addr, size, flags, r)
    except MemoryError:
        raise E_FREE
    raise ValueError(m)


def _diag(fn, a, b, c, d, e=None):
    # uvm_km_diag.fn(...): a misuse message or a debug check, the module
    # dropped after unless debug mode holds it (_debug[1]; webassembly: vmem._cold)
    # => any context; with the heap locked the import fails: MemoryError.
    m = _debug[1]
    if m is None:
        from mpalloc import uvm_km_diag as m
    try:
        return getattr(m, fn)(a, b, c, d) if e is None else getattr(m, fn)(a, b, c, d, e)
    finally:
        if _debug[1] is None and "mpalloc.uvm_km_diag" in sys.modules and sys.platform != "webassembly":
            lazy.unload("uvm_km_diag")


def uvm_km_suballoc(map, size, flags, fixed, min, submap):
    """Carve a submap of `size` bytes (at `min` if fixed). Returns (submap, min, max).

    submap: the new map's name (or None); flags: VM_MAP_PAGEABLE / INTRSAFE / TOPDOWN.
    max is exclusive (min + size). Failure raises MemoryError (NetBSD panics).
    """
    # => thread context (allocates); no map lock held. size a multiple of PAGE_SIZE.
    # => failure: MemoryError (NetBSD panics); bad arguments: TypeError/ValueError.
    return _cold("suballoc", map, size, flags, fixed, min, submap)


def uvm_km_buf(addr, size):
    """The bytes at [addr, addr + size) as a memoryview; zeroes untouched PAGEABLE pages first."""
    # => thread context (allocates) (a memoryview); addr, size ints inside mpalloc.mem's window.
    from mpalloc import mem

    if not isinstance(addr, int) or not isinstance(size, int):
        raise TypeError("uvm_km_buf: addr and size must be ints, got %s, %s" % (type(addr).__name__, type(size).__name__))
    if mem.ram is None or size < 0 or addr < mem.base or addr + size > mem.base + mem.size:
        raise ValueError("uvm_km_buf: %r+%r is not inside the managed window" % (addr, size))
    ps = PAGE_SIZE
    for mi in _maps.values():
        if mi.lo <= addr < mi.hi:
            e = addr + size
            if e > mi.hi:
                e = mi.hi
            u = mi.untouched
            for p in range((addr - mi.lo) // ps, (e - mi.lo + ps - 1) // ps):
                if u[p]:
                    _zero(mi.lo + p * ps, ps)
                    u[p] = 0
    return mem.buf(addr, size)


# -- debug mode ----------------------------------------------------------------
# uvm_km_debug(True) (mpalloc.debug.on() calls it) checks the map's page records
# after every uvm_km_alloc and uvm_km_free, under the map lock: every record
# covers pages inside the map, no record starts inside another's pages, and
# untouched (demand-zero) marks lie only in PAGEABLE allocations. O(pages of the
# map) per operation, no heap (pool pages may be taken from interrupt
# handlers); a failure raises AssertionError naming the map and the page, or
# the preallocated E_DEBUG with the heap locked. Off by default.
_debug = [False, None]  # on; uvm_km_diag while on (no import under heap_lock)
E_DEBUG = AssertionError("uvm_km: page records broken (found with the heap locked)")


def uvm_km_debug(on):
    """Switch the page-record checks after every alloc/free on or off."""
    # => thread context (loads uvm_km_diag the first time).
    if on:
        from mpalloc import uvm_km_diag

        _debug[1] = uvm_km_diag
    _debug[0] = bool(on)


def _chk_locked(mi, s, a):
    # Debug check after an operation at address a (the caller's finally
    # releases the lock when this raises).
    _diag("chk_locked", mi, s, a, 0)


def uvm_km_stats():
    # => thread context (allocates).
    return _cold("stats")


def uvm_km_allocations(map):
    """[(addr, size, type)] of map's live allocations (type: 'wired', 'pageable', 'vaonly', 'submap')."""
    # => thread context (allocates); map a map of uvm_km's.
    return _cold("allocations", map)
