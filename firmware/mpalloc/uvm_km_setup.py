# uvm_km_setup: the set-up half of uvm_km(9): uvm_km_bootstrap, the teardown
# of a previous kernel_map, uvm_km_suballoc, and the statistics
# (uvm_km_stats, uvm_km_allocations). uvm_km.py imports it for the call and
# drops it after (lazy.unload): its code is on the heap only while it runs.
#
# Representation, invariants and locking: uvm_km.py's header; this module
# keeps no state (it writes uvm_km's globals). Everything here allocates:
# thread context only, never under heap_lock or in an interrupt handler.
from array import array

from mpalloc import intr
from mpalloc import uvm_km as _u
from mpalloc import vmem as _vmem
from mpalloc.compat import const

VM_MAP_PAGEABLE = const(0x01)  # the same values as in uvm_km.py
VM_MAP_INTRSAFE = const(0x02)
_SUBMAP = const(0x8)
_RSHIFT = const(5)


def bootstrap(base, size, page_size, exec_regions=()):
    # uvm_km_bootstrap (uvm_km.py)
    if page_size <= 0 or page_size & (page_size - 1):
        raise ValueError("uvm_km_bootstrap: page size %d is not a power of two" % page_size)
    if base % page_size or size <= 0 or size % page_size:
        raise ValueError("uvm_km_bootstrap: window 0x%x+%d not page aligned (page %d)" % (base, size, page_size))
    teardown()
    _u.PAGE_SIZE = page_size
    sleep = _u._vm_flag("VM_NOSLEEP", 2)
    _u.kernel_map = kernel_map = _vmem.vmem_create("kernel_map", base, size, page_size, 0, sleep)
    # interrupt-safe: pool pages (kmem_intr_*, pool_get from handlers) come from here
    new_map(kernel_map, "kernel_map", base, size, VM_MAP_PAGEABLE | VM_MAP_INTRSAFE, None)
    for (b, n) in exec_regions:
        if b % page_size or n % page_size or n <= 0:
            raise ValueError("uvm_km_bootstrap: exec region 0x%x+%d not page aligned" % (b, n))
        inside = base <= b and b + n <= base + size
        if inside and not _u._xalloc(_u._maps[id(kernel_map)], n, 0, b, b + n - 1):
            raise ValueError("uvm_km_bootstrap: exec region 0x%x+%d overlaps" % (b, n))
        if _u.kernel_exec_map is None:
            _u.kernel_exec_map = kernel_exec_map = _vmem.vmem_create("kernel_exec", b, n, page_size, 0, sleep)
            new_map(kernel_exec_map, "kernel_exec", b, n, VM_MAP_INTRSAFE, None)
            if inside:
                _u._maps[id(kernel_map)].rec[(b - base) // page_size] = ((n // page_size) << _RSHIFT) | _SUBMAP
        # further regions: only the first one is used (documented limit)
    return kernel_map


def teardown():
    # Forget the previous kernel_map (a new bootstrap): give back every range we
    # handed out, children first, so vmem_destroy finds the arenas empty.
    ms = list(_u._maps.values())
    ms.sort(key=lambda mi: -_depth(mi))
    for mi in ms:
        for p in range(len(mi.rec)):
            v = mi.rec[p]
            if v:
                try:
                    _vmem.vmem_xfree(mi.arena, mi.lo + p * _u.PAGE_SIZE, (v >> _RSHIFT) * _u.PAGE_SIZE)
                except Exception:
                    pass
                mi.rec[p] = 0
        try:
            _vmem.vmem_destroy(mi.arena)
        except Exception:  # something else (e.g. a DMA buffer) still in it
            vl = getattr(_vmem, "vmem_list", None)
            if vl is not None and mi.arena in vl:
                vl.remove(mi.arena)
    _u._maps.clear()
    _u.kernel_map = _u.kernel_exec_map = None
    _u._bytes[0] = _u._bytes[1] = _u._bytes[2] = 0


def _depth(mi):
    d = 0
    while mi.parent is not None:
        mi = mi.parent
        d += 1
    return d


def new_map(arena, name, lo, size, flags, parent):
    mi = _u._Map()
    mi.arena = arena
    mi.name = name
    mi.lo = lo
    mi.hi = lo + size
    mi.flags = flags
    mi.parent = parent
    npg = size // _u.PAGE_SIZE
    mi.rec = array("i", bytes(4 * npg))
    mi.untouched = bytearray(npg)  # 1: PAGEABLE page not yet zeroed
    mi.lock = intr.mutex_init()
    mi.submaps = []
    _u._maps[id(arena)] = mi
    return mi


def suballoc(map, size, flags, fixed, min, submap):
    # uvm_km_suballoc (uvm_km.py)
    mi = _u._mi(map, "uvm_km_suballoc")
    _u._ints("uvm_km_suballoc", "size, min and flags", size, min, flags)
    if not (submap is None or isinstance(submap, str)):
        raise TypeError("uvm_km_suballoc: submap (its name) must be a str or None, not %s" % type(submap).__name__)
    ps = _u.PAGE_SIZE
    if size <= 0:
        raise ValueError("uvm_km_suballoc: size %d must be > 0" % size)
    if flags & ~0x43:
        raise ValueError("uvm_km_suballoc: flags 0x%x: only VM_MAP_PAGEABLE, VM_MAP_INTRSAFE, VM_MAP_TOPDOWN" % flags)
    sz = (size + ps - 1) & -ps
    if fixed and min % ps:
        raise ValueError("uvm_km_suballoc: fixed min 0x%x not page aligned" % min)
    s = _u._lock(mi, 0)
    try:
        if fixed:
            a = _u._xalloc(mi, sz, 0, min, min + sz - 1)
        else:
            a = _u._va_alloc(mi, sz, 0)
    except BaseException:
        _u._unlock(mi, s)
        raise
    if a is None:
        _u._unlock(mi, s)
        raise MemoryError("uvm_km_suballoc: no %d bytes%s in map '%s'" % (sz, " at 0x%x" % min if fixed else "", mi.name))
    mi.rec[(a - mi.lo) // ps] = ((sz // ps) << _RSHIFT) | _SUBMAP
    _u._unlock(mi, s)
    name = submap if submap else "%s.sub%d" % (mi.name, len(mi.submaps))
    arena = _vmem.vmem_create(name, a, sz, ps, 0, _u._vm_flag("VM_NOSLEEP", 2))
    sm = new_map(arena, name, a, sz, flags, mi)
    mi.submaps.append(sm)
    return arena, a, a + sz


def stats():
    # uvm_km_stats (uvm_km.py)
    names = []
    for mi in _u._maps.values():
        if mi.parent is not None:
            names.append(mi.name)
    return {"wired": _u._bytes[0], "pageable": _u._bytes[1], "vaonly": _u._bytes[2],
            "page_size": _u.PAGE_SIZE, "submaps": names}


def allocations(map):
    mi = _u._mi(map, "uvm_km_allocations")
    r = []
    for p in range(len(mi.rec)):
        v = mi.rec[p]
        if v:
            t = v & 0xF
            r.append((mi.lo + p * _u.PAGE_SIZE, (v >> _RSHIFT) * _u.PAGE_SIZE,
                      "submap" if t & _SUBMAP else ("wired" if t == 1 else ("pageable" if t == 2 else "vaonly"))))
    return r
