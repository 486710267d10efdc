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
from array import array

from mpalloc.compat import const, fail, ticks_ms, ticks_diff


import time

from mpalloc import intr
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


def _new_map(arena, name, lo, size, flags, parent):
    mi = _Map()
    mi.arena = arena
    mi.name = name
    mi.lo = lo
    mi.hi = lo + size
    mi.flags = flags
    mi.parent = parent
    npg = size // PAGE_SIZE
    mi.rec = array("i", bytes(4 * npg))
    mi.untouched = bytearray(npg)  # 1: PAGEABLE page not yet zeroed
    mi.lock = intr.mutex_init()
    mi.submaps = []
    _maps[id(arena)] = mi
    return mi


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
    global PAGE_SIZE, kernel_map, kernel_exec_map
    if page_size <= 0 or page_size & (page_size - 1):
        raise ValueError("uvm_km_bootstrap: page size %d is not a power of two" % page_size)
    if base % page_size or size <= 0 or size % page_size:
        raise ValueError("uvm_km_bootstrap: window 0x%x+%d not page aligned (page %d)" % (base, size, page_size))
    _teardown()
    PAGE_SIZE = page_size
    sleep = _vm_flag("VM_NOSLEEP", 2)
    kernel_map = _vmem.vmem_create("kernel_map", base, size, page_size, 0, sleep)
    # interrupt-safe: pool pages (kmem_intr_*, pool_get from handlers) come from here
    _new_map(kernel_map, "kernel_map", base, size, VM_MAP_PAGEABLE | VM_MAP_INTRSAFE, None)
    for (b, n) in exec_regions:
        if b % page_size or n % page_size or n <= 0:
            raise ValueError("uvm_km_bootstrap: exec region 0x%x+%d not page aligned" % (b, n))
        inside = base <= b and b + n <= base + size
        if inside and not _xalloc(_maps[id(kernel_map)], n, 0, b, b + n - 1):
            raise ValueError("uvm_km_bootstrap: exec region 0x%x+%d overlaps" % (b, n))
        if kernel_exec_map is None:
            kernel_exec_map = _vmem.vmem_create("kernel_exec", b, n, page_size, 0, sleep)
            _new_map(kernel_exec_map, "kernel_exec", b, n, VM_MAP_INTRSAFE, None)
            if inside:
                _maps[id(kernel_map)].rec[(b - base) // page_size] = ((n // page_size) << _RSHIFT) | _SUBMAP
        # further regions: only the first one is used (documented limit)
    return kernel_map


def _teardown():
    # Forget the previous kernel_map (a new bootstrap): give back every range we
    # handed out, children first, so vmem_destroy finds the arenas empty.
    global kernel_map, kernel_exec_map
    ms = list(_maps.values())
    ms.sort(key=lambda mi: -_depth(mi))
    for mi in ms:
        for p in range(len(mi.rec)):
            v = mi.rec[p]
            if v:
                try:
                    _vmem.vmem_xfree(mi.arena, mi.lo + p * PAGE_SIZE, (v >> _RSHIFT) * PAGE_SIZE)
                except Exception:
                    pass
                mi.rec[p] = 0
        try:
            _vmem.vmem_destroy(mi.arena)
        except Exception:  # something else (e.g. a DMA buffer) still in it
            vl = getattr(_vmem, "vmem_list", None)
            if vl is not None and mi.arena in vl:
                vl.remove(mi.arena)
    _maps.clear()
    kernel_map = kernel_exec_map = None
    _bytes[0] = _bytes[1] = _bytes[2] = 0


def _depth(mi):
    d = 0
    while mi.parent is not None:
        mi = mi.parent
        d += 1
    return d


def _xalloc(mi, sz, align, lo, hi):
    f = _vm_flag("VM_NOSLEEP", 2) | _vm_flag("VM_BESTFIT", 0x2000)
    a = _vmem.vmem_xalloc(mi.arena, sz, align, 0, 0, lo, hi, f)
    return a


def _va_alloc(mi, sz, align):
    lo = mi.lo
    hi = mi.hi - 1
    if not mi.flags & VM_MAP_TOPDOWN:
        return _xalloc(mi, sz, align, lo, hi)
    # Top-down: a search window growing downwards from the top in powers of two.
    w = sz
    while True:
        m = hi + 1 - w
        if m <= lo:
            return _xalloc(mi, sz, align, lo, hi)
        a = _xalloc(mi, sz, align, m, hi)
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
    if t not in (UVM_KMF_WIRED, UVM_KMF_PAGEABLE, UVM_KMF_VAONLY):
        raise ValueError("uvm_km_alloc: flags 0x%x need exactly one of WIRED, PAGEABLE, VAONLY" % flags)
    if size <= 0:
        raise ValueError("uvm_km_alloc: size %d must be > 0" % size)
    if flags & UVM_KMF_ZERO and t != UVM_KMF_WIRED:
        raise ValueError("uvm_km_alloc: UVM_KMF_ZERO is only for UVM_KMF_WIRED")
    ps = PAGE_SIZE
    if align and (align % ps or align & (align - 1)):
        raise ValueError("uvm_km_alloc: align %d is not a power-of-two multiple of PAGE_SIZE %d" % (align, ps))
    if flags & UVM_KMF_EXEC:
        if kernel_exec_map is None:
            raise ValueError("uvm_km_alloc: UVM_KMF_EXEC: this board has no executable region")
        mi = _maps[id(kernel_exec_map)]
    if t == UVM_KMF_PAGEABLE and not mi.flags & VM_MAP_PAGEABLE:
        raise ValueError("uvm_km_alloc: map '%s' is not VM_MAP_PAGEABLE: no UVM_KMF_PAGEABLE memory from it" % mi.name)
    if intr.cpu_intr_p() and not mi.flags & VM_MAP_INTRSAFE:
        raise ValueError("uvm_km_alloc: map '%s' is not VM_MAP_INTRSAFE: not from interrupt context" % mi.name)
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
    if t not in (UVM_KMF_WIRED, UVM_KMF_PAGEABLE, UVM_KMF_VAONLY):
        raise ValueError("uvm_km_free: flags 0x%x need exactly one of WIRED, PAGEABLE, VAONLY" % flags)
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
        m = _free_msg(mi, addr, size, flags, r)
    except MemoryError:
        raise E_FREE
    raise ValueError(m)


def _free_msg(mi, addr, size, flags, r):
    ps = PAGE_SIZE
    if not isinstance(addr, int):
        return "uvm_km_free: address %r is not an int" % (addr,)
    if r == 0:
        return "uvm_km_free: 0x%x was never returned by uvm_km_alloc on map '%s'" % (addr, mi.name)
    if r & _TYPES != flags & _TYPES:
        return "uvm_km_free: 0x%x was allocated with type 0x%x, freed with 0x%x" % (addr, r & _TYPES, flags & _TYPES)
    if r & _RPOOL:
        return "uvm_km_free: 0x%x is a %d-byte pool page (UVM_KMF_POOLPAGE), not an allocation of its own" % (
            addr, (r >> _RSHIFT) * ps)
    if flags & UVM_KMF_POOLPAGE:
        return "uvm_km_free: 0x%x is no pool page (UVM_KMF_POOLPAGE given)" % addr
    return "uvm_km_free: 0x%x was allocated with %d bytes (rounded), freed with %d" % (addr, (r >> _RSHIFT) * ps, size)


def uvm_km_suballoc(map, size, flags, fixed, min, submap):
    """Carve a submap of `size` bytes (at `min` if fixed). Returns (submap, min, max).

    submap: the new map's name (or None); flags: VM_MAP_PAGEABLE / INTRSAFE / TOPDOWN.
    max is exclusive (min + size). Failure raises MemoryError (NetBSD panics).
    """
    # => thread context (allocates); no map lock held. size a multiple of PAGE_SIZE.
    # => failure: MemoryError (NetBSD panics); bad arguments: TypeError/ValueError.
    mi = _mi(map, "uvm_km_suballoc")
    _ints("uvm_km_suballoc", "size, min and flags", size, min, flags)
    if not (submap is None or isinstance(submap, str)):
        raise TypeError("uvm_km_suballoc: submap (its name) must be a str or None, not %s" % type(submap).__name__)
    ps = PAGE_SIZE
    if size <= 0:
        raise ValueError("uvm_km_suballoc: size %d must be > 0" % size)
    if flags & ~(VM_MAP_PAGEABLE | VM_MAP_INTRSAFE | VM_MAP_TOPDOWN):
        raise ValueError("uvm_km_suballoc: flags 0x%x: only VM_MAP_PAGEABLE, VM_MAP_INTRSAFE, VM_MAP_TOPDOWN" % flags)
    sz = (size + ps - 1) & -ps
    if fixed and min % ps:
        raise ValueError("uvm_km_suballoc: fixed min 0x%x not page aligned" % min)
    s = _lock(mi, 0)
    try:
        if fixed:
            a = _xalloc(mi, sz, 0, min, min + sz - 1)
        else:
            a = _va_alloc(mi, sz, 0)
    except BaseException:
        _unlock(mi, s)
        raise
    if a is None:
        _unlock(mi, s)
        raise MemoryError("uvm_km_suballoc: no %d bytes%s in map '%s'" % (sz, " at 0x%x" % min if fixed else "", mi.name))
    mi.rec[(a - mi.lo) // ps] = ((sz // ps) << _RSHIFT) | _SUBMAP
    _unlock(mi, s)
    name = submap if submap else "%s.sub%d" % (mi.name, len(mi.submaps))
    arena = _vmem.vmem_create(name, a, sz, ps, 0, _vm_flag("VM_NOSLEEP", 2))
    sm = _new_map(arena, name, a, sz, flags, mi)
    mi.submaps.append(sm)
    return arena, a, a + sz


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
_debug = [False]
E_DEBUG = AssertionError("uvm_km: page records broken (found with the heap locked)")


def uvm_km_debug(on):
    """Switch the page-record checks after every alloc/free on or off."""
    # => thread context.
    _debug[0] = bool(on)


def _chk_locked(mi, s, a):
    # Debug check after an operation at address a (the caller's finally
    # releases the lock when this raises).
    e = _chk_map(mi)
    if e >= 0:
        uvm_km_lasterr[0] = a
        fail(E_DEBUG, AssertionError, "uvm_km: map '%s': page record at 0x%x broken (after the operation at 0x%x)",
             mi.name, mi.lo + e * PAGE_SIZE, a)


def _chk_map(mi):
    # -1 if map mi's records are consistent, else the page where they are not.
    r = mi.rec
    n = len(r)
    p = 0
    while p < n:
        v = r[p]
        if v == 0:
            if mi.untouched[p]:
                return p  # a demand-zero mark outside any allocation
            p += 1
            continue
        e = p + (v >> _RSHIFT)
        if e <= p or e > n or _chk_run(mi, p, e, v & _TYPES == UVM_KMF_PAGEABLE):
            return p
        p = e
    return -1


def _chk_run(mi, p, e, pageable):
    # True if a page after the first (p) of the allocation [p, e) holds a
    # record, or, not pageable, any of its pages a demand-zero mark.
    r = mi.rec
    u = mi.untouched
    for i in range(p, e):
        if (i > p and r[i]) or (u[i] and not pageable):
            return True
    return False


def uvm_km_stats():
    # => thread context (allocates).
    names = []
    for mi in _maps.values():
        if mi.parent is not None:
            names.append(mi.name)
    return {"wired": _bytes[0], "pageable": _bytes[1], "vaonly": _bytes[2],
            "page_size": PAGE_SIZE, "submaps": names}


def uvm_km_allocations(map):
    """[(addr, size, type)] of map's live allocations (type: 'wired', 'pageable', 'vaonly', 'submap')."""
    # => thread context (allocates); map a map of uvm_km's.
    mi = _mi(map, "uvm_km_allocations")
    r = []
    for p in range(len(mi.rec)):
        v = mi.rec[p]
        if v:
            t = v & 0xF
            r.append((mi.lo + p * PAGE_SIZE, (v >> _RSHIFT) * PAGE_SIZE,
                      "submap" if t & _SUBMAP else ("wired" if t == 1 else ("pageable" if t == 2 else "vaonly"))))
    return r
