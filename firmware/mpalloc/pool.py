# pool: pool(9), fixed-size items carved out of pages.
#
#   pp = pool_init(size, align, align_offset, flags, wchan, palloc, ipl)
#   a = pool_get(pp, PR_NOWAIT)      # an int address, or None
#   pool_put(pp, a)
#
# Items are buffers: pool_get returns the item's address (an int, like C's
# void *). The bytes are reached through mpalloc.mem: mem.buf(a, pp.size) makes
# a memoryview (allocates: not from an interrupt handler); from a handler index
# mem.ram[a - mem.base + i] directly. The physical address for DMA is the
# address itself on a real board (mem's window is a bytearray whose real
# address is its base) and the emulated board address on the virtual board.
# An item of a pool whose palloc hands out pages outside mem's window is only
# an address: PR_ZERO and the accessors need the window.
#
# Pages come from palloc (a pool_allocator: pa_alloc(pp, flags) -> address or
# None, pa_free(pp, addr), pa_pagesz); palloc None means pages from uvm_km's
# kernel_map (pool_allocator_kmem: the smallest power-of-two number of
# PAGE_SIZE pages that holds at least 2 items with at most 1/8 left over).
#
# Interrupts: pool_get(pp, PR_NOWAIT) and pool_put allocate nothing from the
# MicroPython heap once the pool has its pages (prime it for interrupt use:
# pool_prime / pool_setlowat). Growing by a page needs no heap either as long
# as palloc needs none (uvm_km's NOWAIT path): a free page slot and room in
# the page lookup are kept ready whenever the heap allows; where that fails
# with the heap locked, pool_get returns None (nfail).
# Misuse detected on a path that cannot allocate raises a PREALLOCATED
# ValueError (E_PUT_INTR); the offending address is in pool_lasterr[0] and the
# pool in pool_lasterr[1]. Elsewhere misuse raises ValueError("pool_put: ...").
#
# Representation: page slot sl (arrays indexed by slot): pg_addr, pg_nused,
# pg_free (first free item of the page, _END: none), pg_next/pg_prev (links
# of the page's list), pg_state; item i of slot sl is pool-wide index
# b = sl * ipp + i: inext[b] chains the page's free items, bit b of bmap is
# set iff the item is out. pg_of maps address // pagesz to the slot. Item 0's
# address is computed, not kept. pp.hd: list heads hd[_EMPTY/_PARTIAL/_FULL],
# unused slots hd[_FREESLOT], counters hd[_NGET ..] (one list, not a dozen
# attributes: a pool's attribute dict was most of its heap); pp.nout: items out.
# Invariants (pool_chk): a page's out bits count pg_nused; its free chain
# holds the other items once each; pg_state and the list it is on match
# pg_nused (0: empty, ipp: full); nget - nput == nout.
# Locking: one intr spin mutex per pool (pp.lock), taken inside get/put;
# palloc is called with it released. Metadata cost: docs/DESIGN-NOTES.md.
# Here: get/put, pages in and out, init/destroy/prime, misuse errors; tuning,
# statistics: pool_setup.py, debug: pool_dbg.py (loaded on use, lazy.unload).
from array import array

from mpalloc import intr

from mpalloc.compat import const, ticks_ms, ticks_diff


PR_WAITOK = const(0x1)
PR_NOWAIT = const(0x2)
PR_LIMITFAIL = const(0x100)
PR_NOTOUCH = const(0x400)
PR_NOALIGN = const(0x800)
PR_LARGECACHE = const(0x1000)
PR_ZERO = const(0x8000)

IPL_NONE = const(0)
IPL_VM = const(6)
IPL_HIGH = const(8)

_END = const(0xFFFF)  # end of a page's free-item chain
_EMPTY = const(0)  # page list heads: pages with no item out
_PARTIAL = const(1)
_FULL = const(2)
_UNUSED = const(3)  # page slot holds no page (pg_state)
_FREESLOT = const(3)  # hd[]: chain of unused slots through pg_next (-1 ends it)
_NGET = const(4)  # hd[]: counters (pool_setup.py repeats these values)
_NPUT = const(5)
_NFAIL = const(6)
_NITEMS = const(8)
_NPAGES = const(9)
_NIDLE = const(10)
_HIWAT = const(11)
_NPAGEALLOC = const(12)
_NPAGEFREE = const(13)
_NOLIMIT = const(0x3FFFFFFF)
_WAIT_MS = const(2000)  # PR_WAITOK at the hard limit waits at most this long
_NOT_ITEM = const(-1)  # _item_index: the address is no item of the pool
_ALREADY_FREE = const(-2)  # _item_index: an item, but free
_NOT_INT = const(-3)  # _item_index: not an int

pool_list = []
# Misuse found where no message can be built: [address, pool]
pool_lasterr = [0, None]
E_PUT_INTR = ValueError("pool_put: misuse with the heap locked (address in pool.pool_lasterr)")
E_GET_FLAGS = ValueError("pool_get: flags need exactly one of PR_WAITOK, PR_NOWAIT")
E_GET_IPL = ValueError("pool_get: IPL_NONE pool used from interrupt context")


class pool_allocator:
    """A page source: pa_alloc(pp, flags) -> address or None; pa_free(pp, addr)."""

    def __init__(self, pa_alloc, pa_free, pa_pagesz):
        if pa_pagesz <= 0:
            raise ValueError("pool_allocator: page size %d" % pa_pagesz)
        self.pa_alloc = pa_alloc
        self.pa_free = pa_free
        self.pa_pagesz = pa_pagesz


_kmem_allocators = {}  # page size -> pool_allocator_kmem's allocator (pool_setup)


class _Pool:
    # Settings most pools never change live here, not in every pool's
    # attribute dict (heap per pool); pool_prime, pool_sethardlimit, ... give
    # a pool its own. Nothing on an interrupt path assigns them (a new
    # attribute could need heap).
    minpages = 0
    minitems = 0
    maxpages = _NOLIMIT
    maxitems = _NOLIMIT
    hardlimit = _NOLIMIT
    warnmess = None
    ratecap = 0
    lastwarn = None
    drain = None
    drainarg = None
    cache = None


E_TYPE = TypeError("pool: an argument of the wrong type with the heap locked (pool_get/pool_put)")


def _tchk(fn, pp):
    # a public function's pp: a pool, else a TypeError naming fn
    if type(pp) is not _Pool:
        _terr(fn, "pp must be a pool", pp)


def _terr(fn, what, v):
    try:
        m = "%s: %s, not %s" % (fn, what, type(v).__name__)
    except MemoryError:
        raise E_TYPE
    raise TypeError(m)


def _err(pre, fmt, a, b):
    # A formatted message where the heap allows it, else the preallocated `pre`.
    # In-line version of compat.fail() (as _terr above): pool is the micro:bit
    # frozen build's allocator, whose heap has no room for the shared helper.
    pool_lasterr[0] = a
    try:
        m = fmt % (a, b)
    except MemoryError:
        raise pre
    raise ValueError(m)


# -- set-up, tuning, statistics: pool_setup.py, loaded for the call ----------


def _unload(name):
    # lazy.unload(name), lazy imported here (a frozen micro:bit build that
    # never unloads keeps neither lazy nor its global)
    from mpalloc import lazy

    lazy.unload(name)


def _count(fn, n):
    if not isinstance(n, int):
        raise TypeError("%s: item count must be an int, not %s" % (fn, type(n).__name__))
    if n < 0 or n > 1 << 30:
        raise ValueError("%s: item count %d not in 0..2**30" % (fn, n))


def pool_allocator_kmem(itemsize):
    """The default page source: pages from uvm_km's kernel_map (>= 2 items, <= 1/8 waste)."""
    # => thread context (allocates), before pool_init; itemsize > 0 (ValueError).
    from mpalloc import pool_setup

    try:
        return pool_setup.pool_allocator_kmem(itemsize)
    finally:
        _unload("pool_setup")


def _kmem_pages(sz):
    # pool_allocator_kmem's page source of sz-byte pages (made here, not in
    # pool_setup: a pool's allocator outlives that module)
    from mpalloc import uvm_km

    def _alloc(pp, flags):
        f = uvm_km.UVM_KMF_WIRED | uvm_km.UVM_KMF_CANFAIL
        f |= uvm_km.UVM_KMF_POOLPAGE  # a pool page: kmem_free of an item cannot free it
        if flags & PR_NOWAIT:
            f |= uvm_km.UVM_KMF_NOWAIT
        a = uvm_km.uvm_km_alloc(uvm_km.kernel_map, sz, 0, f)
        return a if a else None

    def _free(pp, a):
        uvm_km.uvm_km_free(uvm_km.kernel_map, a, sz, uvm_km.UVM_KMF_WIRED | uvm_km.UVM_KMF_POOLPAGE)

    return pool_allocator(_alloc, _free, sz)


def pool_init(size, align, align_offset, flags, wchan, palloc, ipl):
    # => thread context (allocates). size > 0; align 0 or a power of two; palloc a pool_allocator or None.
    # => bad arguments: TypeError/ValueError.
    for v in (size, align, align_offset, flags, ipl):
        if not isinstance(v, int):
            raise TypeError("pool_init: size, align, align_offset, flags and ipl must be ints, not %s" % type(v).__name__)
    if not (palloc is None or hasattr(palloc, "pa_pagesz")):
        raise TypeError("pool_init: palloc must be a pool_allocator or None, not %s" % type(palloc).__name__)
    if size > 1 << 30 or align > 1 << 30:
        raise ValueError("pool_init: item size %d or align %d beyond 2**30" % (size, align))
    if size <= 0:
        raise ValueError("pool_init: item size %d must be > 0" % size)
    if align == 0:
        align = 1
    if align < 0 or align & (align - 1):
        raise ValueError("pool_init: align %d is not a power of two" % align)
    if align_offset < 0 or align_offset >= align:
        raise ValueError("pool_init: align_offset %d not in 0..align-1" % align_offset)
    if palloc is None:
        palloc = pool_allocator_kmem(size)  # (pool_setup, loaded for the call)
    ps = palloc.pa_pagesz
    isz = (size + align - 1) & -align
    if isz + align - 1 > ps:
        raise ValueError("pool_init: item size %d (aligned %d) does not fit a %d-byte page" % (size, isz, ps))
    pp = _Pool()
    pp.name = wchan
    pp.reqsize = size
    pp.size = isz
    pp.ioff = align_offset
    pp.amask = align - 1
    pp.ipl = ipl
    pp.palloc = palloc
    pp.pagesz = ps
    # Pages are assumed aligned to `align` (palloc's pages are); PR_NOALIGN:
    # the first aligned item may sit up to align-1 bytes into the page.
    slack = align - 1 if flags & PR_NOALIGN else (align - align_offset) % align
    ipp = pp.ipp = (ps - slack) // isz
    pp.lock = intr.mutex_init()
    # Page table, indexed by page slot, made with 2 slots at once (not grown
    # from nothing: no copies left behind). Invariants:
    #   pg_addr[s] == 0  <=>  pg_state[s] == _UNUSED
    #   item 0 of page s is at pool._item0(pp, pg_addr[s]) (not stored: a word a page)
    #   pg_nused[s] == number of items of page s with their bit set in bmap
    #   page s is on list hd[pg_state[s]] (doubly linked by pg_next/pg_prev)
    #   pg_free[s] is the first free item index of page s (_END if none);
    #   inext[s*ipp + i] links the free items of page s
    #   pg_of[pg_addr[s] // pagesz] == s for every page in use
    pp.pg_addr = [0, 0]
    pp.pg_nused = array("H", (0, 0))
    pp.pg_free = array("H", (_END, _END))
    pp.pg_next = array("h", (-1, 0))  # free slot chain: 1 -> 0 -> end
    pp.pg_prev = array("h", (0, 0))
    pp.pg_state = bytearray((_UNUSED, _UNUSED))
    pp.inext = array("H", bytes(4 * ipp))
    pp.bmap = bytearray((2 * ipp + 7) // 8 + 1)  # bit s*ipp+i set <=> item out (handed out)
    pp.pg_of = {}
    _lookup_room(pp.pg_of, 2)
    # list heads by state, the free slot chain, the counters (pool.py's header)
    pp.hd = [-1, -1, -1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]  # (hd[7]: unused)
    pp.nout = 0
    pool_list.append(pp)
    return pp


pool_get = None  # pool_get(pp, flags), pool_put(pp, a): bound by _bind() (the end of the module)
pool_put = None


def pool_destroy(pp):
    """Free the pool's pages; items still out are an error."""
    # => thread context; no item out, no pool_cache on the pool (else ValueError).
    _tchk("pool_destroy", pp)
    if pp.nout:
        raise ValueError("pool_destroy: pool '%s' busy: %d items still out" % (pp.name, pp.nout))
    if pp.cache is not None:
        raise ValueError("pool_destroy: pool '%s' still has a pool_cache" % pp.name)
    s = intr.mutex_enter(pp.lock)
    free = []
    while pp.hd[_EMPTY] >= 0:
        free.append(_page_remove(pp, pp.hd[_EMPTY]))
    intr.mutex_exit(pp.lock, s)
    for a in free:
        pp.palloc.pa_free(pp, a)
    if pp in pool_list:
        pool_list.remove(pp)


def pool_prime(pp, n):
    """Make sure at least n items' worth of pages exist and are kept."""
    # => thread context (allocates); n >= 0. No page to be had: MemoryError.
    _tchk("pool_prime", pp)
    _count("pool_prime", n)
    ipp = pp.ipp
    pp.minpages = (n + ipp - 1) // ipp
    if pp.maxpages <= pp.minpages:
        pp.maxpages = pp.minpages + 1
    while pp.hd[_NPAGES] < pp.minpages:
        if not _page_add(pp, PR_WAITOK):
            raise MemoryError("pool_prime: pool '%s': no page for %d items" % (pp.name, n))


def pool_setlowat(pp, n):
    """Keep at least n free-or-used items' worth of pages (catch-up now, PR_NOWAIT)."""
    # => thread context (allocates); n >= 0.
    _tchk("pool_setlowat", pp)  # before the import: a wrong pp costs no load
    from mpalloc import pool_setup

    try:
        return pool_setup.pool_setlowat(pp, n)
    finally:
        _unload("pool_setup")


def pool_sethiwat(pp, n):
    """Pages above n items' worth are given back as soon as they empty (older pool(9))."""
    # => thread context; n >= 0.
    _tchk("pool_sethiwat", pp)  # before the import: a wrong pp costs no load
    from mpalloc import pool_setup

    try:
        return pool_setup.pool_sethiwat(pp, n)
    finally:
        _unload("pool_setup")


def pool_sethardlimit(pp, limit, warnmess, ratecap):
    """At most `limit` items out; `warnmess` printed at most once per `ratecap` s."""
    # => thread context; limit >= 0, ratecap >= 0, warnmess a str or None.
    _tchk("pool_sethardlimit", pp)  # before the import: a wrong pp costs no load
    from mpalloc import pool_setup

    try:
        return pool_setup.pool_sethardlimit(pp, limit, warnmess, ratecap)
    finally:
        _unload("pool_setup")


def pool_set_drain_hook(pp, fn, arg):
    # => thread context; fn callable; one hook per pool (a second: ValueError).
    _tchk("pool_set_drain_hook", pp)  # before the import: a wrong pp costs no load
    from mpalloc import pool_setup

    try:
        return pool_setup.pool_set_drain_hook(pp, fn, arg)
    finally:
        _unload("pool_setup")


def pool_reclaim(pp):
    """Give idle pages back to palloc (beyond the low watermarks). 1 if any was freed."""
    # => thread context (ValueError from an interrupt); the pool lock not held.
    _tchk("pool_reclaim", pp)  # before the import: a wrong pp costs no load
    from mpalloc import pool_setup

    try:
        return pool_setup.pool_reclaim(pp)
    finally:
        _unload("pool_setup")


def pool_nget(pp):
    # => any context.
    _tchk("pool_nget", pp)
    return pp.hd[_NGET]


def pool_nput(pp):
    # => any context.
    _tchk("pool_nput", pp)
    return pp.hd[_NPUT]


def pool_paddr(pp, a):
    """The physical (DMA) address of item a: the address itself (see the header)."""
    # => any context; a an item of pp.
    _tchk("pool_paddr", pp)
    return a


def pool_stats(pp):
    # => thread context (allocates).
    _tchk("pool_stats", pp)  # before the import: a wrong pp costs no load
    from mpalloc import pool_setup

    try:
        return pool_setup.pool_stats(pp)
    finally:
        _unload("pool_setup")


def pool_pages(pp):
    # => thread context (allocates).
    _tchk("pool_pages", pp)  # before the import: a wrong pp costs no load
    from mpalloc import pool_setup

    try:
        return pool_setup.pool_pages(pp)
    finally:
        _unload("pool_setup")


def pool_chk(pp):
    """Check every invariant written next to the data; raises AssertionError."""
    # => thread context; the pool lock not held. A broken invariant: AssertionError.
    _tchk("pool_chk", pp)  # before the import: a wrong pp costs no load
    from mpalloc import pool_setup

    try:
        return pool_setup.pool_chk(pp)
    finally:
        _unload("pool_setup")


# -- what a running program needs ---------------------------------------------


def _slots_more(pp):
    # Slots to add when none is free: a quarter more (at least 2), so at most
    # a fifth of the page table is spare (doubling left up to half of it).
    n = len(pp.pg_addr) >> 2
    return n if n > 2 else 2


def _item0(pp, a):
    # The first item of the page at a: the lowest x >= a with x + ioff
    # aligned (a, on pages palloc aligns, plus a constant).
    return a + ((-a - pp.ioff) & pp.amask)


def _grow_slots(pp, n):
    # Add n page slots. Allocates; every new object is built before any is
    # installed, so a MemoryError leaves the pool as it was. Lock held.
    ipp = pp.ipp
    old = len(pp.pg_addr)
    fs = pp.hd[_FREESLOT]
    addr = pp.pg_addr + [0] * n
    nused = pp.pg_nused + array("H", bytes(2 * n))
    free = pp.pg_free + array("H", [_END] * n)
    nxt = pp.pg_next + array("h", range(fs, fs + 1)) + array("h", range(old, old + n - 1))
    prev = pp.pg_prev + array("h", bytes(2 * n))
    state = pp.pg_state + bytes([_UNUSED] * n)
    inext = pp.inext + array("H", bytes(2 * n * ipp))
    bmap = pp.bmap + bytes((n * ipp + 7) // 8 + 1)
    _lookup_room(pp.pg_of, old + n)
    pp.pg_nused, pp.pg_free = nused, free
    pp.pg_next, pp.pg_prev, pp.pg_state = nxt, prev, state
    pp.inext, pp.bmap = inext, bmap
    pp.hd[_FREESLOT] = old + n - 1
    pp.pg_addr = addr  # last: len(pg_addr) is the number of slots


def _lookup_room(d, n):
    # Room in the page lookup for a page in every one of n slots: a later
    # _page_add (from an interrupt handler, say) then adds its key without a
    # rehash (MicroPython's dict grows only when full; deleted keys leave
    # free room).
    try:
        for i in range(n):
            d[-1 - i] = 0
    finally:
        for i in range(n):
            d.pop(-1 - i, None)


def _unlink(pp, s):
    n = pp.pg_next[s]
    p = pp.pg_prev[s]
    if p >= 0:
        pp.pg_next[p] = n
    else:
        pp.hd[pp.pg_state[s]] = n
    if n >= 0:
        pp.pg_prev[n] = p


def _move(pp, sl, st):
    # Page sl off its list (none if pg_state is _UNUSED: a new page) onto list st.
    n = pp.pg_next[sl]
    p = pp.pg_prev[sl]
    if pp.pg_state[sl] != _UNUSED:
        if p >= 0:
            pp.pg_next[p] = n
        else:
            pp.hd[pp.pg_state[sl]] = n
        if n >= 0:
            pp.pg_prev[n] = p
    n = pp.hd[st]
    pp.pg_next[sl] = n
    pp.pg_prev[sl] = -1
    if n >= 0:
        pp.pg_prev[n] = sl
    pp.hd[st] = sl
    pp.pg_state[sl] = st


def _page_add(pp, flags):
    # Take one page from palloc; True if the pool grew. Called without the lock.
    try:
        a = pp.palloc.pa_alloc(pp, flags)
    except MemoryError:  # heap locked under the page allocator
        return False
    if a is None:
        return False
    ps = pp.pagesz
    k = a // ps
    s = intr.mutex_enter(pp.lock)
    try:
        if pp.hd[_FREESLOT] < 0:
            _grow_slots(pp, _slots_more(pp))
        pp.pg_of[k] = -1  # a new key may allocate: before touching anything else
    except MemoryError:
        intr.mutex_exit(pp.lock, s)
        pp.palloc.pa_free(pp, a)
        return False
    i0 = _item0(pp, a)
    if i0 + pp.ipp * pp.size > a + ps:
        del pp.pg_of[k]
        intr.mutex_exit(pp.lock, s)
        pp.palloc.pa_free(pp, a)
        raise ValueError("pool_get: pool '%s': page 0x%x from palloc is not %d-aligned (use PR_NOALIGN)" % (pp.name, a, pp.amask + 1))
    h = pp.hd
    sl = h[_FREESLOT]
    h[_FREESLOT] = pp.pg_next[sl]
    pp.pg_of[k] = sl
    if h[_FREESLOT] < 0:
        try:  # keep a free slot ready for the next page (even from a handler)
            _grow_slots(pp, _slots_more(pp))
        except MemoryError:
            pass
    pp.pg_addr[sl] = a
    pp.pg_nused[sl] = 0
    ipp = pp.ipp
    b = sl * ipp
    nx = pp.inext
    for i in range(ipp - 1):
        nx[b + i] = i + 1
    nx[b + ipp - 1] = _END
    pp.pg_free[sl] = 0
    if _debug[0]:  # debug mode: a new page's items start poisoned (stale marks gone)
        _debug[1].poison_page(pp, i0)
    _move(pp, sl, _EMPTY)
    h[_NPAGES] += 1
    h[_NIDLE] += 1
    h[_NITEMS] += ipp
    h[_NPAGEALLOC] += 1
    if h[_NPAGES] > h[_HIWAT]:
        h[_HIWAT] = h[_NPAGES]
    intr.mutex_exit(pp.lock, s)
    return True


def _page_remove(pp, sl):
    # Lock held; page sl is empty. Returns its address for palloc.pa_free.
    _unlink(pp, sl)
    a = pp.pg_addr[sl]
    del pp.pg_of[a // pp.pagesz]
    h = pp.hd
    pp.pg_addr[sl] = 0
    pp.pg_state[sl] = _UNUSED
    pp.pg_next[sl] = h[_FREESLOT]
    h[_FREESLOT] = sl
    h[_NPAGES] -= 1
    h[_NIDLE] -= 1
    h[_NITEMS] -= pp.ipp
    h[_NPAGEFREE] += 1
    return a


def _get(pp, flags):
    """An item's address, or None (PR_NOWAIT / PR_LIMITFAIL) when none can be had."""
    # pool_get's bytecode version (_bind makes pool_get this, pool_native's or the debug one).
    # => any context with PR_NOWAIT (an IPL_NONE pool: thread context only); PR_WAITOK:
    # => thread context. The pool lock not held. flags: PR_WAITOK or PR_NOWAIT (| PR_LIMITFAIL, PR_ZERO).
    # => failure: None (PR_NOWAIT, PR_LIMITFAIL); misuse: ValueError (heap locked: preallocated).
    # Hot path. Every function on it keeps arguments + locals + value stack
    # within 11 words (MicroPython's VM_MAX_STATE_ON_STACK): a bigger frame is
    # taken from the heap (and freed) at every call. Rare work is in _get_more.
    if flags != PR_NOWAIT and flags != PR_WAITOK:
        _get_flags(pp, flags)  # other bits, or no int: checked there
    if pp.ipl == IPL_NONE and intr.cpu_intr_p():
        raise E_GET_IPL
    h = pp.hd
    while True:
        s = intr.mutex_enter(pp.lock)
        sl = h[_PARTIAL]
        if sl < 0:
            sl = h[_EMPTY]
        if sl >= 0 and pp.nout < pp.hardlimit:
            break
        intr.mutex_exit(pp.lock, s)
        if not _get_more(pp, flags):
            return None
    sl = _take(pp, sl)
    f = h[_NITEMS] - pp.nout < pp.minitems or h[_NPAGES] < pp.minpages
    intr.mutex_exit(pp.lock, s)
    if f and not intr.cpu_intr_p():
        _page_add(pp, PR_NOWAIT)  # catch up with the low watermark
    if flags & PR_ZERO:
        _zero(sl, pp.reqsize)
    return sl


def _get_flags(pp, flags):
    # flags other than exactly PR_NOWAIT or PR_WAITOK: returns if they are
    # good (extra bits), raises as pool_get does otherwise
    _tchk("pool_get", pp)
    if type(flags) is not int:
        _terr("pool_get", "flags must be an int", flags)
    f = flags & 3
    if f == 0 or f == 3:
        raise E_GET_FLAGS


def _get_more(pp, flags):
    # pool_get found no free item or stands at the hard limit (lock not held):
    # drain, wait or grow. True: try again; False: return None; PR_WAITOK
    # failures raise MemoryError.
    f = flags & 3
    if pp.nout >= pp.hardlimit:
        if pp.drain is not None:
            pp.drain(pp.drainarg, flags)
            if pp.nout < pp.hardlimit:
                return True
        if f == PR_WAITOK and not flags & PR_LIMITFAIL and _wait_limit(pp):
            return True
        _nfail(pp)
        _warn(pp)
        if f == PR_WAITOK and not flags & PR_LIMITFAIL:
            raise MemoryError("pool_get: pool '%s' stays at its hard limit %d (PR_WAITOK)" % (pp.name, pp.hardlimit))
        return False
    if _page_add(pp, flags):
        return True
    if pp.drain is not None:
        pp.drain(pp.drainarg, flags)
        if _page_add(pp, flags):
            return True
    _nfail(pp)
    if f == PR_WAITOK:
        raise MemoryError("pool_get: pool '%s': no page from its allocator (PR_WAITOK)" % pp.name)
    return False


def _nfail(pp):
    # pool_get failed: counted under the lock (handlers count too).
    s = intr.mutex_enter(pp.lock)
    pp.hd[_NFAIL] += 1
    intr.mutex_exit(pp.lock, s)


def _take(pp, sl):
    # Lock held; page sl has a free item: hand out the first one. Its address.
    i = pp.pg_free[sl]
    b = sl * pp.ipp + i
    pp.pg_free[sl] = pp.inext[b]
    n = pp.pg_nused[sl] + 1
    pp.pg_nused[sl] = n
    if n == 1:
        pp.hd[_NIDLE] -= 1
        _move(pp, sl, _FULL if n == pp.ipp else _PARTIAL)
    elif n == pp.ipp:
        _move(pp, sl, _FULL)
    n = 1 << (b & 7)
    b >>= 3
    pp.bmap[b] |= n
    pp.hd[_NGET] += 1
    pp.nout += 1
    b = pp.pg_addr[sl]
    return b + ((-b - pp.ioff) & pp.amask) + i * pp.size  # _item0, inline


def _zero(a, n):
    # PR_ZERO: n zero bytes at a (no slice, no import here: both allocate).
    m = _mem[0]
    if m is None:
        from mpalloc import mem as m

        _mem[0] = m
    a -= m.base
    m = m.ram
    for a in range(a, a + n):
        m[a] = 0


_mem = [None]  # mpalloc.mem, once a pool has zeroed an item


def _wait_limit(pp):
    # PR_WAITOK at the hard limit: another CPU may put an item back.
    if intr.mode != intr.MODE_THREAD or intr.ncpu < 2 or intr.cpu_intr_p():
        return False
    import time

    t0 = ticks_ms()
    while pp.nout >= pp.hardlimit:
        if ticks_diff(ticks_ms(), t0) > _WAIT_MS:
            return False
        time.sleep_ms(1) if hasattr(time, "sleep_ms") else time.sleep(0.001)
    return True


def _warn(pp):
    # Rate-limited hard-limit warning; silent where printing could allocate.
    if pp.warnmess is None or intr.cpu_intr_p():
        return
    now = ticks_ms()
    if pp.lastwarn is not None and ticks_diff(now, pp.lastwarn) < pp.ratecap * 1000:
        return
    try:
        print("WARNING: pool %s: %s" % (pp.name, pp.warnmess))
        pp.lastwarn = now
    except MemoryError:
        pass


def _slot_of(pp, a):
    # The page slot holding item address a, or -1.
    ps = pp.pagesz
    k = a // ps
    sl = pp.pg_of.get(k, -1)
    if sl < 0 or a < pp.pg_addr[sl]:
        sl = pp.pg_of.get(k - 1, -1)
        if sl < 0:
            return -1
    pa = pp.pg_addr[sl]
    if a < pa or a >= pa + ps:
        return -1
    return sl


def _put(pp, a):
    """Give item a back to the pool. Foreign, misaligned or doubly put items are errors."""
    # pool_put's bytecode version (see _get).
    # => any context; the pool lock not held. a: an item pool_get handed out and not yet put.
    # => foreign, misaligned or free item: ValueError (heap locked: E_PUT_INTR, pool_lasterr).
    # Hot path: frames within 11 words (see pool_get).
    if a is None:  # (another non-int: _item_index's _NOT_INT, under the lock, released before the error)
        _put_err(pp, a, _NOT_INT)
    s = intr.mutex_enter(pp.lock)
    b = _item_index(pp, a)
    if b < 0:
        intr.mutex_exit(pp.lock, s)
        _put_err(pp, a, b)
    b = _give(pp, b)
    intr.mutex_exit(pp.lock, s)
    if b:
        pp.palloc.pa_free(pp, b)


def _item_index(pp, a):
    # Lock held. The pool-wide index (slot * ipp + item) of item a, which is
    # out; _NOT_ITEM: a is no item of pp, _ALREADY_FREE: an item already
    # free, _NOT_INT: not an int.
    if not isinstance(a, int):
        return _NOT_INT
    sl = _slot_of(pp, a)
    if sl < 0:
        return _NOT_ITEM
    a -= _item0(pp, pp.pg_addr[sl])
    if a < 0 or a >= pp.ipp * pp.size or a % pp.size:
        return _NOT_ITEM
    sl = sl * pp.ipp + a // pp.size
    if not (pp.bmap[sl >> 3] >> (sl & 7)) & 1:
        return _ALREADY_FREE
    return sl


def _out(pp, a):
    # _item_index's verdict on a, taken under the pool lock (no change made)
    s = intr.mutex_enter(pp.lock)
    try:
        return _item_index(pp, a)
    finally:
        intr.mutex_exit(pp.lock, s)


def _put_err(pp, a, e):
    # pool_put misuse (_item_index's code e): raise, preallocated where the heap is locked.
    pool_lasterr[1] = pp
    if e == _NOT_INT:
        _err(E_PUT_INTR, "pool_put: %r is not an item of pool '%s'", a, pp.name)
    if e == _ALREADY_FREE:
        _err(E_PUT_INTR, "pool_put: 0x%x already free (double put) in pool '%s'", a, pp.name)
    _err(E_PUT_INTR, "pool_put: 0x%x is not an item of pool '%s'", a, pp.name)


def _give(pp, b):
    # Lock held; item b (pool-wide index) is out: free it. Returns the page's
    # address when the page emptied and goes back to palloc, else 0.
    pp.bmap[b >> 3] &= ~(1 << (b & 7))
    sl = b // pp.ipp
    pp.inext[b] = pp.pg_free[sl]
    pp.pg_free[sl] = b - sl * pp.ipp
    b = pp.pg_nused[sl] - 1
    pp.pg_nused[sl] = b
    h = pp.hd
    h[_NPUT] += 1
    pp.nout -= 1
    if b == 0:  # (no call deeper than _move here: the micro:bit's C stack)
        _move(pp, sl, _EMPTY)
        h[_NIDLE] += 1
        if h[_NPAGES] > pp.maxpages:
            return _shrink(pp, sl)
    elif b == pp.ipp - 1:
        _move(pp, sl, _PARTIAL)  # a full page turns partial: fill it first
    return 0


def _shrink(pp, sl):
    # Lock held; page sl just emptied above maxpages: give it back (0: keep it).
    h = pp.hd
    if h[_NPAGES] > pp.minpages and h[_NITEMS] - pp.ipp >= pp.minitems and not intr.cpu_intr_p():
        return _page_remove(pp, sl)
    return 0


# -- debug mode (POOL_DIAGNOSTIC, switched at run time) ----------------------
#
# pool_debug(True) (mpalloc.debug.on() calls it) loads pool_dbg and binds
# pool_get / pool_put to its dbg_get / dbg_put (pool._dbg_get / _dbg_put while
# on): page invariants and poisoning, what they check is in pool_dbg's header.
# pool_debug(False) drops it and binds the plain pair again (no flag test on
# the plain paths). pool_cache keeps the back end it calls in step through
# _debug_hooks. With the heap locked a report raises the preallocated E_DEBUG
# (address in pool_lasterr[0], pool in pool_lasterr[1]).
_debug = [False, None]  # debug on; pool_dbg while it is
E_DEBUG = AssertionError("pool: debug check failed with the heap locked (address, pool in pool.pool_lasterr)")
_debug_hooks = []  # called after every switch (pool_cache re-points its back ends)


def pool_debug(on):
    """Switch pool's debug checks (page invariants, poisoning) on or off."""
    # => thread context; no pool_get/pool_put under way.
    if on:
        from mpalloc import pool_dbg

        pool_dbg.start()
        _debug[1] = pool_dbg
    else:
        _debug[1] = None
        _unload("pool_dbg")
    _debug[0] = bool(on)
    _bind()


# -- which get/put pair runs ---------------------------------------------------
# _bind() makes pool_get / pool_put the debug pair (pool_dbg) when debug is on,
# else the plain pair _pool_get / _pool_put: pool_native's viper pair where the
# runtime compiles it and mpalloc.native.switch[0] is set, else the bytecode
# _get / _put here. _nat: pool_native once loaded, False where it cannot load
# (CPython, webassembly, micro:bit, an .mpy of another arch), None before the
# first try. pool_cache re-points its caches' back ends after every bind
# (_debug_hooks). Call pool_get / pool_put through the module: a name bound
# before a switch keeps the old pair.
_nat = None
_dbg_get = None  # the debug pair while debug is on (pool_dbg.dbg_get / dbg_put)
_dbg_put = None


def _native_load():
    # Loaded by __import__ so that the flat filesystem's dependency scan
    # (micro:bit) does not copy it there; not tried where the firmware has no
    # native arch (sys.implementation._mpy: CPython, webassembly, the
    # micro:bit, whose failed import of a dotted name keeps 2.8 KB of its heap).
    import sys

    if not (getattr(sys.implementation, "_mpy", 0) >> 10) & 0x0F:
        return False  # (first: the micro:bit's 1.9.2 has no sys.modules)
    n = sys.modules.get("mpalloc.native")
    if n is not None and not n.switch[0]:
        return None  # switched off before the first bind: not loaded (native.on() tries again)
    try:
        return __import__("mpalloc.pool_native", None, None, ("bind",))
    except (ImportError, SyntaxError, NotImplementedError, ValueError, MemoryError):
        # no module, no emitter, an .mpy of another arch (ValueError), no room
        return False


def _bind():
    global pool_get, pool_put, _pool_get, _pool_put, _nat, _dbg_get, _dbg_put
    # => thread context; no pool_get/pool_put under way (mpalloc.native.on/off, pool_debug).
    _pool_get, _pool_put = _get, _put
    if _nat is None:
        _nat = _native_load()
    if _nat and _nat.switch[0]:
        _nat.bind(globals())
        _pool_get, _pool_put = _nat.pool_get, _nat.pool_put
    d = _debug[1]
    _dbg_get = d.dbg_get if d else None
    _dbg_put = d.dbg_put if d else None
    pool_get = _dbg_get or _pool_get
    pool_put = _dbg_put or _pool_put
    for h in _debug_hooks:
        h()


def native_path():
    """'native' if the plain get/put pair bound now is pool_native's, else 'bytecode'."""
    # => any context.
    return "native" if _nat and _pool_get is _nat.pool_get else "bytecode"


_pool_get = _get
_pool_put = _put
_bind()
intr._on_setup.append(_bind)  # the native pair binds the mode intr.setup() chose
