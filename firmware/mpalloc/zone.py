# zone: DragonFly BSD's zone(9) allocator (fixed-size items) for mpalloc.
#
#   zbootinit(z, name, size, item, nitems)   a zone over caller-given static storage;
#                                            needs nothing else to be up
#   zinitna(z, obj, name, size, nentries, flags) -> 1/0   complete a (boot) zone
#   zinit(name, size, nentries, flags) -> zone/None        a zone on uvm_km pages
#   zalloc(z) -> address/None    zfree(z, item)    zdestroy(z)
#   zbuf(z, item) -> memoryview of the item's bytes (zone items may live outside
#                    the managed window when zbootinit was given a bytearray)
#
# Semantics kept from DragonFly's vm_zone.c:
#   * Items are type stable: the first allocation of an item returns zeroed bytes,
#     later ones return what the last user left, except the first two words
#     (ZONE_RSVD bytes), which belong to the allocator while the item is free
#     (the debug mode writes ZENTRY_FREE there and checks it at zalloc).
#   * ZONE_INTERRUPT zones never grow beyond nentries; their items may be taken
#     and given back from an interrupt handler. Here all nentries items are
#     obtained at zinit (DragonFly reserves the KVA and wires pages lazily, which
#     would allocate Python objects in the handler).
#   * Other zinit zones grow by whole pages when empty and have no maximum.
#   * Only zinit zones with ZONE_DESTROYABLE can be zdestroy'ed.
# Deviation: zinit rounds item sizes to ZONE_ROUNDING = 8 (32 in DragonFly: too
# wasteful for a few KB of SRAM). The free list lives in a flat array beside the
# items (not in the items), so a double zfree is always caught, not only with
# INVARIANTS.
# Representation and invariants: vm_zone (the free list in _next, chunks of
# consecutive items). Locking: zlock, a spin mutex per zone, held across a
# growth (uvm_km pages; a growable zone refuses interrupt context).
#
# Interrupt paths: zalloc/zfree on a ZONE_INTERRUPT zone (or any zone while it
# does not grow) allocate nothing from the MicroPython heap. Misuse there raises
# a preallocated exception whose message starts with the function name.
from array import array

from mpalloc import intr

from mpalloc.compat import const, fail


ZONE_INTERRUPT = const(0x0001)
ZONE_DESTROYABLE = const(0x0002)
ZONE_BOOT = const(0x0010)  # set by zbootinit
ZONE_ROUNDING = const(8)
ZONE_RSVD = const(8)  # two 32-bit words owned by the allocator while an item is free
ZENTRY_FREE = const(0x12342378)

_FREE_END = const(-1)  # _next[i]: next free index, or end of list
_BUSY = const(-2)  # _next[i]: item i is allocated

zone_list = []
_debug = [False]


def zone_debug(on):
    """Switch the ZENTRY_FREE check (modify-after-free of the reserved words).

    Switching on marks every item already free in every zone; off clears the marks.
    """
    on = bool(on)
    if on != _debug[0]:
        for z in zone_list:
            i = z.zitems
            while i != _FREE_END:
                if on:
                    _mark_free(z, _chunk_of_index(z, i), i)
                else:  # so a first allocation still comes back zeroed
                    _clear_mark(z, _chunk_of_index(z, i), i)
                i = z._next[i]
    _debug[0] = on


# Preallocated errors for paths that may run with the heap locked.
_E_NOTZONE = ValueError("zfree: item not from this zone")
_E_DOUBLE = ValueError("zfree: item already free")
_E_INTR = ValueError("zalloc: zone can grow (not ZONE_INTERRUPT): not from an interrupt handler")
_E_MODIFIED = ValueError("zalloc: free item's reserved words were modified (use after free)")
_E_DEAD_A = ValueError("zalloc: zone was destroyed")
_E_DEAD_F = ValueError("zfree: zone was destroyed")


_E_TYPE = TypeError("zone: an argument of the wrong type with the heap locked (zalloc/zfree)")


def _zchk(fn, z, item=0):
    # z a vm_zone and item an int, else a TypeError naming fn (before any lock)
    if z.__class__ is not vm_zone or item.__class__ is not int:
        try:
            m = "%s: z must be a vm_zone and item an int, not %s, %s" % (fn, type(z).__name__, type(item).__name__)
        except MemoryError:
            raise _E_TYPE
        raise TypeError(m)


def _addressof(buf):
    try:
        import uctypes

        return uctypes.addressof(buf)
    except ImportError:  # CPython
        import ctypes

        return ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))


class vm_zone:
    """struct vm_zone. Chunks are runs of items with consecutive addresses.

    Invariants:
      0 <= zfreecnt <= ztotal == len(_next) == sum(_cn)
      chunk k holds item indexes _cstart[k] .. _cstart[k] + _cn[k] - 1; item i of
        chunk k is at address _cbase[k] + (i - _cstart[k]) * zsize, its bytes at
        _cbuf[k][_coff[k] + (i - _cstart[k]) * zsize ...]
      _next[i] == _BUSY  <=> item i is allocated; the free list starts at zitems
        and follows _next until _FREE_END, visiting exactly zfreecnt items
      zmax != 0 => ztotal == zmax and the zone never grows (boot zones,
        ZONE_INTERRUPT zones); zmax == 0 => grows by pages, never from an interrupt
    """

    def __init__(self):
        self.zname = None
        self.zsize = 0
        self.zflags = 0
        self.zmax = 0  # 0 = no maximum
        self.ztotal = 0
        self.zfreecnt = 0
        self.znalloc = 0
        self.znfree = 0
        self.znfail = 0
        self.zitems = _FREE_END
        self.zpagecount = 0
        self.zlock = intr.mutex_init()
        self._next = array("i")
        self._cbase = []
        self._cbuf = []
        self._coff = []
        self._cstart = []
        self._cn = []
        self._cpages = []  # bytes obtained from uvm_km for the chunk, 0 if static
        self._dead = False


def _add_chunk(z, base, buf, off, n, pages):
    """Thread n new zeroed items onto the free list (allocates: not an intr path)."""
    start = z.ztotal
    z._next.extend(array("i", [_BUSY] * n))
    z._cbase.append(base)
    z._cbuf.append(buf)
    z._coff.append(off)
    z._cstart.append(start)
    z._cn.append(n)
    z._cpages.append(pages)
    nx = z._next
    # Push in reverse so the lowest address is handed out first.
    for i in range(start + n - 1, start - 1, -1):
        nx[i] = z.zitems
        z.zitems = i
        if _debug[0]:
            _mark_free(z, len(z._cn) - 1, i)
    z.ztotal += n
    z.zfreecnt += n


def _chunk_of_index(z, i):
    cs = z._cstart
    for k in range(len(cs)):
        if cs[k] <= i < cs[k] + z._cn[k]:
            return k
    return -1


def _mark_free(z, k, i):
    b = z._cbuf[k]
    o = z._coff[k] + (i - z._cstart[k]) * z.zsize + 4
    v = ZENTRY_FREE
    for j in range(4):
        b[o + j] = v & 0xFF
        v >>= 8


def _clear_mark(z, k, i):
    b = z._cbuf[k]
    o = z._coff[k] + (i - z._cstart[k]) * z.zsize + 4
    for j in range(4):
        b[o + j] = 0


def _check_free(z, k, i):
    b = z._cbuf[k]
    o = z._coff[k] + (i - z._cstart[k]) * z.zsize + 4
    v = ZENTRY_FREE
    for j in range(4):
        if b[o + j] != v & 0xFF:
            return False
        v >>= 8
    return True


def zbootinit(z, name, size, item, nitems):
    """A zone over static storage `item`, usable before vmem/uvm_km are up.

    z: a vm_zone() to fill (C's static struct) or None for a new one; returned.
    item: a bytearray/memoryview of at least size * nitems bytes (items get its
    real address where known, like a C static array), or an int address inside
    the managed window (mpalloc.mem).
    """
    if z is None:
        z = vm_zone()
    if not isinstance(z, vm_zone):
        raise TypeError("zbootinit: z must be a vm_zone or None, not %s" % type(z).__name__)
    if size < ZONE_RSVD:
        raise ValueError("zbootinit: size %d smaller than the %d reserved bytes" % (size, ZONE_RSVD))
    if nitems < 1:
        raise ValueError("zbootinit: nitems %d < 1" % nitems)
    if z in zone_list:
        raise ValueError("zbootinit: zone '%s' already initialised" % z.zname)
    if isinstance(item, int):
        from mpalloc import mem

        if mem.ram is None:
            raise ValueError("zbootinit: int address 0x%x but no managed window attached" % item)
        if item < mem.base or item + size * nitems > mem.base + mem.size:
            raise ValueError("zbootinit: 0x%x+%d outside the managed window 0x%x-0x%x" % (
                item, size * nitems, mem.base, mem.base + mem.size))
        base, buf, off = item, mem.ram, item - mem.base
    else:
        try:
            n = len(item)
        except TypeError:
            raise TypeError("zbootinit: item must be a bytearray or an int address")
        if n < size * nitems:
            raise ValueError("zbootinit: storage of %d bytes < %d items of %d" % (n, nitems, size))
        base, buf, off = _addressof(item), item, 0
    for i in range(off, off + size * nitems):
        buf[i] = 0
    z.zname = name
    z.zsize = size
    z.zflags = ZONE_BOOT
    z.zmax = nitems
    _add_chunk(z, base, buf, off, nitems, 0)
    zone_list.append(z)
    return z


def _page_size():
    from mpalloc import uvm_km

    return getattr(uvm_km, "PAGE_SIZE", 0) or uvm_km.uvm_km_stats()["page_size"]


def _pages_alloc(nbytes):
    """nbytes (page multiple) of wired kernel memory, or None."""
    from mpalloc import uvm_km

    flags = getattr(uvm_km, "UVM_KMF_WIRED", 0) | getattr(uvm_km, "UVM_KMF_NOWAIT", 0)
    a = uvm_km.uvm_km_alloc(uvm_km.kernel_map, nbytes, 0, flags)
    return a or None


def _pages_free(a, nbytes):
    from mpalloc import uvm_km

    uvm_km.uvm_km_free(uvm_km.kernel_map, a, nbytes, getattr(uvm_km, "UVM_KMF_WIRED", 0))


def _grow(z, nitems):
    """Add pages for at least nitems items. False if uvm_km has none."""
    from mpalloc import mem

    ps = _page_size()
    nbytes = (nitems * z.zsize + ps - 1) // ps * ps
    a = _pages_alloc(nbytes)
    if a is None:
        return False
    mem.fill(a, nbytes, 0)
    z.zpagecount += nbytes // ps
    _add_chunk(z, a, mem.ram, a - mem.base, nbytes // z.zsize, nbytes)
    return True


def zinitna(z, obj, name, size, nentries, flags):
    """Complete zone z (a boot zone keeps its items). obj is unused (no VM objects).

    ZONE_INTERRUPT: nentries more items are obtained now and the zone never grows
    past them. Returns 1, or 0 when those pages cannot be had.
    """
    if not isinstance(z, vm_zone):
        raise TypeError("zinitna: z must be a vm_zone")
    for v in (size, nentries, flags):
        if not isinstance(v, int):
            raise TypeError("zinitna: size, nentries and flags must be ints, not %s" % type(v).__name__)
    if size > 1 << 20 or nentries > 1 << 20:
        raise ValueError("zinitna: size %d or nentries %d beyond 2**20" % (size, nentries))
    if flags & ~(ZONE_INTERRUPT | ZONE_DESTROYABLE):
        raise ValueError("zinitna: unknown flags 0x%x" % flags)
    if not z.zflags & ZONE_BOOT:
        if size < 1:
            raise ValueError("zinitna: size %d < 1" % size)
        z.zsize = max(ZONE_RSVD, (size + ZONE_ROUNDING - 1) // ZONE_ROUNDING * ZONE_ROUNDING)
        z.zname = name
        z.zmax = 0
    z.zflags |= flags
    if flags & ZONE_INTERRUPT:
        if nentries < 1:
            raise ValueError("zinitna: ZONE_INTERRUPT needs nentries >= 1, got %d" % nentries)
        if not _grow(z, nentries):
            z.zflags &= ~flags
            return 0
        z.zmax = z.ztotal  # never grows past what it has now
    else:
        z.zmax = 0  # grows by pages on demand (a completed boot zone too)
    if z not in zone_list:
        zone_list.append(z)
    return 1


def zinit(name, size, nentries, flags):
    """A zone on uvm_km pages; None if an interrupt zone's pages cannot be had."""
    z = vm_zone()
    try:
        r = zinitna(z, None, name, size, nentries, flags)
    except (TypeError, ValueError) as e:  # zinitna's message, under this function's name
        raise type(e)("zinit: " + str(e.args[0] if e.args else e)[len("zinitna: "):])
    if r == 0:
        return None
    return z


def zalloc(z):
    """An item's address, or None when the zone is used up and cannot grow."""
    if z.__class__ is not vm_zone:
        _zchk("zalloc", z)
    if z._dead:
        raise _E_DEAD_A
    s = intr.mutex_enter(z.zlock)
    try:
        if z.zmax == 0 and intr.cpu_intr_p():
            raise _E_INTR  # a growable zone: its growth path allocates
        if z.zfreecnt == 0:
            if z.zmax:
                z.znfail += 1
                return None
            if not _grow(z, 1):
                z.znfail += 1
                return None
        i = z.zitems
        k = _chunk_of_index(z, i)
        if _debug[0]:
            if not _check_free(z, k, i):
                fail(_E_MODIFIED, ValueError, "zalloc: zone '%s': free item %d's reserved words were modified (use after free)", z.zname, i)
            _clear_mark(z, k, i)
        z.zitems = z._next[i]
        z._next[i] = _BUSY
        z.zfreecnt -= 1
        z.znalloc += 1
        return z._cbase[k] + (i - z._cstart[k]) * z.zsize
    finally:
        intr.mutex_exit(z.zlock, s)


def _index_of(z, item):
    """Index of the item at address `item`; -1 not in the zone, -2 not an item start.

    (One int, not a tuple: this runs with the heap locked.)
    """
    cb = z._cbase
    sz = z.zsize
    for k in range(len(cb)):
        d = item - cb[k]
        if 0 <= d < z._cn[k] * sz:
            if d % sz:
                return -2
            return z._cstart[k] + d // sz
    return -1


def zfree(z, item):
    """Give the item at address `item` back to zone z."""
    if z.__class__ is not vm_zone or item.__class__ is not int:
        _zchk("zfree", z, item)
    if z._dead:
        raise _E_DEAD_F
    s = intr.mutex_enter(z.zlock)
    try:
        i = _index_of(z, item)
        if i < 0:
            if i == -2:
                fail(_E_NOTZONE, ValueError, "zfree: 0x%x is not the start of an item of zone '%s'", item, z.zname)
            fail(_E_NOTZONE, ValueError, "zfree: 0x%x is not from zone '%s'", item, z.zname)
        if z._next[i] != _BUSY:
            fail(_E_DOUBLE, ValueError, "zfree: 0x%x already free in zone '%s'", item, z.zname)
        if _debug[0]:
            _mark_free(z, _chunk_of_index(z, i), i)
        z._next[i] = z.zitems
        z.zitems = i
        z.zfreecnt += 1
        z.znfree += 1
    finally:
        intr.mutex_exit(z.zlock, s)


def zdestroy(z):
    """Release every page of a ZONE_DESTROYABLE zinit zone. No items may be in use."""
    _zchk("zdestroy", z)
    if z._dead:
        raise ValueError("zdestroy: zone '%s' already destroyed" % z.zname)
    if z.zflags & ZONE_BOOT or not z.zflags & ZONE_DESTROYABLE:
        raise ValueError("zdestroy: zone '%s' was not made by zinit with ZONE_DESTROYABLE" % z.zname)
    used = z.ztotal - z.zfreecnt
    if used:
        raise ValueError("zdestroy: zone '%s' still has %d items in use" % (z.zname, used))
    for k in range(len(z._cbase)):
        if z._cpages[k]:
            _pages_free(z._cbase[k], z._cpages[k])
    z._dead = True
    zone_list.remove(z)


def zbuf(z, item):
    """A memoryview of the zsize bytes of `item` (allocates)."""
    _zchk("zbuf", z, item)
    i = _index_of(z, item)
    if i < 0:
        raise ValueError("zbuf: 0x%x is not an item of zone '%s'" % (item, z.zname))
    k = _chunk_of_index(z, i)
    o = z._coff[k] + (i - z._cstart[k]) * z.zsize
    return memoryview(z._cbuf[k])[o:o + z.zsize]


def zone_stats(z):
    """vmstat -z: name, size, max (0 = none), used, free, total, nalloc, nfree, nfail, pages, flags."""
    _zchk("zone_stats", z)
    return {
        "name": z.zname,
        "size": z.zsize,
        "max": z.zmax,
        "used": z.ztotal - z.zfreecnt,
        "free": z.zfreecnt,
        "total": z.ztotal,
        "nalloc": z.znalloc,
        "nfree": z.znfree,
        "nfail": z.znfail,
        "pages": z.zpagecount,
        "flags": z.zflags,
    }
