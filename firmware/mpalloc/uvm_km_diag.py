# uvm_km_diag: the cold half of uvm_km(9): misuse messages and the debug
# checks of the page records (uvm_km_debug). uvm_km.py imports it where a
# message is needed and drops it after (lazy.unload); uvm_km_debug(True)
# loads it and keeps it, so the checks run under heap_lock too.
#
# Representation, invariants and locking: uvm_km.py's header. No state here.
# The checks (chk_locked) allocate nothing unless they report a failure; the
# messages allocate (with the heap locked: MemoryError, and uvm_km raises its
# preallocated error instead).
from mpalloc import uvm_km as _u
from mpalloc.compat import const, fail

_TYPES = const(0x7)  # the same values as in uvm_km.py
_SUBMAP = const(0x8)
_RPOOL = const(0x10)
_RSHIFT = const(5)
_POOLPAGE = const(0x1000)
_PAGEABLE = const(0x2)


def bad_type(fn, flags, c, d):
    raise ValueError("%s: flags 0x%x need exactly one of WIRED, PAGEABLE, VAONLY" % (fn, flags))


def bad_alloc(mi, size, align, flags):
    # uvm_km_alloc's argument checks, in their order
    t = flags & _TYPES
    if t not in (1, 2, 4):
        bad_type("uvm_km_alloc", flags, 0, 0)
    if size <= 0:
        raise ValueError("uvm_km_alloc: size %d must be > 0" % size)
    if flags & _u.UVM_KMF_ZERO and t != 1:
        raise ValueError("uvm_km_alloc: UVM_KMF_ZERO is only for UVM_KMF_WIRED")
    ps = _u.PAGE_SIZE
    if align and (align % ps or align & (align - 1)):
        raise ValueError("uvm_km_alloc: align %d is not a power-of-two multiple of PAGE_SIZE %d" % (align, ps))
    raise ValueError("uvm_km_alloc: UVM_KMF_EXEC: this board has no executable region")


def bad_map(mi, t, c, d):
    # uvm_km_alloc from a map that cannot give it
    if t == _PAGEABLE and not mi.flags & _u.VM_MAP_PAGEABLE:
        raise ValueError("uvm_km_alloc: map '%s' is not VM_MAP_PAGEABLE: no UVM_KMF_PAGEABLE memory from it" % mi.name)
    raise ValueError("uvm_km_alloc: map '%s' is not VM_MAP_INTRSAFE: not from interrupt context" % mi.name)


def free_msg(mi, addr, size, flags, r):
    ps = _u.PAGE_SIZE
    if not isinstance(addr, int):
        return "uvm_km_free: address %r is not an int" % (addr,)
    if r == 0:
        return "uvm_km_free: 0x%x was never returned by uvm_km_alloc on map '%s'" % (addr, mi.name)
    if r & _TYPES != flags & _TYPES:
        return "uvm_km_free: 0x%x was allocated with type 0x%x, freed with 0x%x" % (addr, r & _TYPES, flags & _TYPES)
    if r & _RPOOL:
        return "uvm_km_free: 0x%x is a %d-byte pool page (UVM_KMF_POOLPAGE), not an allocation of its own" % (
            addr, (r >> _RSHIFT) * ps)
    if flags & _POOLPAGE:
        return "uvm_km_free: 0x%x is no pool page (UVM_KMF_POOLPAGE given)" % addr
    return "uvm_km_free: 0x%x was allocated with %d bytes (rounded), freed with %d" % (addr, (r >> _RSHIFT) * ps, size)


# -- debug mode ----------------------------------------------------------------
# uvm_km_debug(True) (mpalloc.debug.on() calls it) checks the map's page records
# after every uvm_km_alloc and uvm_km_free, under the map lock: every record
# covers pages inside the map, no record starts inside another's pages, and
# untouched (demand-zero) marks lie only in PAGEABLE allocations. O(pages of the
# map) per operation, no heap (pool pages may be taken from interrupt
# handlers); a failure raises AssertionError naming the map and the page, or
# the preallocated E_DEBUG with the heap locked. Off by default.


def chk_locked(mi, s, a, d):
    # Debug check after an operation at address a (the caller's finally
    # releases the lock when this raises).
    e = _chk_map(mi)
    if e >= 0:
        _u.uvm_km_lasterr[0] = a
        fail(_u.E_DEBUG, AssertionError, "uvm_km: map '%s': page record at 0x%x broken (after the operation at 0x%x)",
             mi.name, mi.lo + e * _u.PAGE_SIZE, a)


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
        if e <= p or e > n or _chk_run(mi, p, e, v & _TYPES == _PAGEABLE):
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
