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
# of the page's list: hd[_EMPTY/_PARTIAL/_FULL]), pg_state, pg_idle; item i of
# slot sl is pool-wide index b = sl * ipp + i: inext[b] chains the page's
# free items, bit b of bmap is set iff the item is out. pg_of maps
# address // pagesz to the slot. Item 0's address is computed, not kept.
# Invariants (pool_chk): a page's out bits count pg_nused; its free chain
# holds the other items once each; pg_state and the list it is on match
# pg_nused (0: empty, ipp: full); nget - nput == nout.
# Locking: one intr spin mutex per pool (pp.lock), taken inside get/put;
# palloc is called with it released. Metadata cost: docs/DESIGN-NOTES.md.
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
_UNUSED = const(3)  # page slot holds no page
_NOLIMIT = const(0x3FFFFFFF)
_WAIT_MS = const(2000)  # PR_WAITOK at the hard limit waits at most this long
_NOT_ITEM = const(-1)  # _item_index: the address is no item of the pool
_ALREADY_FREE = const(-2)  # _item_index: an item, but free
_NOT_INT = const(-3)  # _item_index: not an int
# What a debug check found broken (_chk_page, _dbg_get; _dbg_fail's messages)
_BAD_NUSED = const(1)  # items marked out in the bitmap != the page's count
_BAD_FREE_OUT = const(2)  # a free item marked out, or a chain off the page
_BAD_LOOP = const(3)  # the free chain loops
_BAD_TOTAL = const(4)  # items out + free items != items per page
_BAD_LIST = const(5)  # the page is on the wrong list
_BAD_LOOKUP = const(6)  # page lookup, or nget - nput != nout
_BAD_HANDED_OUT = const(9)  # pool_get handed out an item it does not count as out
_BAD_POISON = const(16)  # + n: byte n of an item written after pool_put

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


_kmem_allocators = {}


def pool_allocator_kmem(itemsize):
    """The default page source: pages from uvm_km's kernel_map (>= 2 items, <= 1/8 waste)."""
    # => thread context (allocates), before pool_init; itemsize > 0 (ValueError).
    from mpalloc import uvm_km

    if not isinstance(itemsize, int) or itemsize <= 0:
        raise ValueError("pool_allocator_kmem: item size %r must be > 0" % (itemsize,))
    ps = uvm_km.PAGE_SIZE
    if ps <= 0:
        raise ValueError("pool_init: no palloc and uvm_km has no kernel_map (call uvm_km_bootstrap)")
    # smallest power-of-two number of pages holding >= 2 items with <= 1/8 left over
    sz = ps
    while sz < 2 * itemsize or (sz % itemsize) * 8 > sz:
        sz *= 2
    pa = _kmem_allocators.get(sz)
    if pa is None:

        def _alloc(pp, flags, sz=sz):
            f = uvm_km.UVM_KMF_WIRED | uvm_km.UVM_KMF_CANFAIL
            f |= uvm_km.UVM_KMF_POOLPAGE  # a pool page: kmem_free of an item cannot free it
            if flags & PR_NOWAIT:
                f |= uvm_km.UVM_KMF_NOWAIT
            a = uvm_km.uvm_km_alloc(uvm_km.kernel_map, sz, 0, f)
            return a if a else None

        def _free(pp, a, sz=sz):
            uvm_km.uvm_km_free(uvm_km.kernel_map, a, sz, uvm_km.UVM_KMF_WIRED | uvm_km.UVM_KMF_POOLPAGE)

        pa = _kmem_allocators[sz] = pool_allocator(_alloc, _free, sz)
    return pa


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


def pool_init(size, align, align_offset, flags, wchan, palloc, ipl):
    """Create a pool of `size`-byte items named `wchan` (pool(9) pool_init)."""
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
        palloc = pool_allocator_kmem(size)
    ps = palloc.pa_pagesz
    isz = (size + align - 1) & -align
    if isz + align - 1 > ps:
        raise ValueError("pool_init: item size %d (aligned %d) does not fit a %d-byte page" % (size, isz, ps))
    pp = _Pool()
    pp.name = wchan
    pp.reqsize = size
    pp.size = isz
    pp.align = align
    pp.ioff = align_offset
    pp.amask = align - 1
    pp.flags = flags
    pp.ipl = ipl
    pp.palloc = palloc
    pp.pagesz = ps
    # Pages are assumed aligned to `align` (palloc's pages are); PR_NOALIGN:
    # the first aligned item may sit up to align-1 bytes into the page.
    slack = align - 1 if flags & PR_NOALIGN else (align - align_offset) % align
    pp.ipp = (ps - slack) // isz
    pp.lock = intr.mutex_init()
    # Page table, indexed by page slot. Invariants:
    #   pg_addr[s] == 0  <=>  pg_state[s] == _UNUSED
    #   item 0 of page s is at _item0(pp, pg_addr[s]) (not stored: a word a page)
    #   pg_nused[s] == number of items of page s with their bit set in bmap
    #   page s is on list hd[pg_state[s]] (doubly linked by pg_next/pg_prev)
    #   pg_free[s] is the first free item index of page s (_END if none);
    #   inext[s*ipp + i] links the free items of page s
    #   pg_of[pg_addr[s] // pagesz] == s for every page in use
    pp.nslots = 0
    pp.pg_addr = []
    pp.pg_nused = array("H")
    pp.pg_free = array("H")
    pp.pg_next = array("h")
    pp.pg_prev = array("h")
    pp.pg_state = bytearray()
    pp.pg_idle = array("i")  # ticks_ms when the page became empty
    pp.inext = array("H")
    pp.bmap = bytearray()  # bit s*ipp+i set <=> item out (handed out)
    pp.pg_of = {}
    pp.hd = array("h", (-1, -1, -1, -1))  # list heads by state
    pp.freeslot = -1  # chain of unused slots through pg_next (-1 ends it)
    pp.nget = pp.nfail = pp.nput = 0
    pp.npagealloc = pp.npagefree = 0
    pp.npages = pp.hiwat = pp.nidle = 0
    pp.nitems = pp.nout = 0
    _grow_slots(pp, 2)
    pool_list.append(pp)
    return pp


def _slots_more(pp):
    # Slots to add when none is free: a quarter more (at least 2), so at most
    # a fifth of the page table is spare (doubling left up to half of it).
    n = pp.nslots >> 2
    return n if n > 2 else 2


def _item0(pp, a):
    # The first item of the page at a: the lowest x >= a with x + ioff
    # aligned (a, on pages palloc aligns, plus a constant).
    return a + ((-a - pp.ioff) & pp.amask)


def _grow_slots(pp, n):
    # Add n page slots. Allocates; every new object is built before any is
    # installed, so a MemoryError leaves the pool as it was. Lock held.
    ipp = pp.ipp
    old = pp.nslots
    addr = pp.pg_addr + [0] * n
    nused = pp.pg_nused + array("H", bytes(2 * n))
    free = pp.pg_free + array("H", [_END] * n)
    nxt = pp.pg_next + array("h", range(pp.freeslot, pp.freeslot + 1)) + array("h", range(old, old + n - 1))
    prev = pp.pg_prev + array("h", bytes(2 * n))
    state = pp.pg_state + bytes([_UNUSED] * n)
    idle = pp.pg_idle + array("i", bytes(4 * n))
    inext = pp.inext + array("H", bytes(2 * n * ipp))
    bmap = pp.bmap + bytes((n * ipp + 7) // 8 + 1)
    pp.pg_addr, pp.pg_nused, pp.pg_free = addr, nused, free
    pp.pg_next, pp.pg_prev, pp.pg_state, pp.pg_idle = nxt, prev, state, idle
    # Room in the page lookup for a page in every slot: a later _page_add
    # (from an interrupt handler, say) then adds its key without a rehash
    # (MicroPython's dict grows only when full; deleted keys leave free room).
    d = pp.pg_of
    try:
        for i in range(old + n):
            d[-1 - i] = 0
    finally:
        for i in range(old + n):
            d.pop(-1 - i, None)
    pp.inext, pp.bmap = inext, bmap
    pp.freeslot = old + n - 1
    pp.nslots = old + n


def _unlink(pp, s):
    n = pp.pg_next[s]
    p = pp.pg_prev[s]
    if p >= 0:
        pp.pg_next[p] = n
    else:
        pp.hd[pp.pg_state[s]] = n
    if n >= 0:
        pp.pg_prev[n] = p


def _link(pp, s, st):
    n = pp.hd[st]
    pp.pg_next[s] = n
    pp.pg_prev[s] = -1
    if n >= 0:
        pp.pg_prev[n] = s
    pp.hd[st] = s
    pp.pg_state[s] = st


def _move(pp, sl, st):
    # _unlink then _link in one call (the hot paths' list changes).
    n = pp.pg_next[sl]
    p = pp.pg_prev[sl]
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
        if pp.freeslot < 0:
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
        raise ValueError("pool_get: pool '%s': page 0x%x from palloc is not %d-aligned (use PR_NOALIGN)" % (pp.name, a, pp.align))
    sl = pp.freeslot
    pp.freeslot = pp.pg_next[sl]
    pp.pg_of[k] = sl
    if pp.freeslot < 0:
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
    pp.pg_idle[sl] = ticks_ms()
    if _debug[0]:  # debug mode: a new page's items start poisoned (stale marks gone)
        for i in range(ipp):
            _poison(pp, i0 + i * pp.size, 0)
    _link(pp, sl, _EMPTY)
    pp.npages += 1
    pp.nidle += 1
    pp.nitems += ipp
    pp.npagealloc += 1
    if pp.npages > pp.hiwat:
        pp.hiwat = pp.npages
    intr.mutex_exit(pp.lock, s)
    return True


def _page_remove(pp, sl):
    # Lock held; page sl is empty. Returns its address for palloc.pa_free.
    _unlink(pp, sl)
    a = pp.pg_addr[sl]
    del pp.pg_of[a // pp.pagesz]
    pp.pg_addr[sl] = 0
    pp.pg_state[sl] = _UNUSED
    pp.pg_next[sl] = pp.freeslot
    pp.freeslot = sl
    pp.npages -= 1
    pp.nidle -= 1
    pp.nitems -= pp.ipp
    pp.npagefree += 1
    return a


def pool_get(pp, flags):
    """An item's address, or None (PR_NOWAIT / PR_LIMITFAIL) when none can be had."""
    # => any context with PR_NOWAIT (an IPL_NONE pool: thread context only); PR_WAITOK:
    # => thread context. The pool lock not held. flags: PR_WAITOK or PR_NOWAIT (| PR_LIMITFAIL, PR_ZERO).
    # => failure: None (PR_NOWAIT, PR_LIMITFAIL); misuse: ValueError (heap locked: preallocated).
    # Hot path. Every function on it keeps arguments + locals + value stack
    # within 11 words (MicroPython's VM_MAX_STATE_ON_STACK): a bigger frame is
    # taken from the heap (and freed) at every call. Rare work is in _get_more.
    if flags != PR_NOWAIT and flags != PR_WAITOK:
        _get_type(pp, flags)  # other bits, or no int: checked there
    f = flags & 3
    if f == 0 or f == 3:
        raise E_GET_FLAGS
    if pp.ipl == IPL_NONE and intr.cpu_intr_p():
        raise E_GET_IPL
    while True:
        s = intr.mutex_enter(pp.lock)
        sl = pp.hd[_PARTIAL]
        if sl < 0:
            sl = pp.hd[_EMPTY]
        if sl >= 0 and pp.nout < pp.hardlimit:
            break
        intr.mutex_exit(pp.lock, s)
        if not _get_more(pp, flags):
            return None
    f = _take(pp, sl)
    sl = pp.nitems - pp.nout < pp.minitems or pp.npages < pp.minpages
    intr.mutex_exit(pp.lock, s)
    if sl and not intr.cpu_intr_p():
        _page_add(pp, PR_NOWAIT)  # catch up with the low watermark
    if flags & PR_ZERO:
        _zero(f, pp.reqsize)
    return f


def _get_type(pp, flags):
    _tchk("pool_get", pp)
    if type(flags) is not int:
        _terr("pool_get", "flags must be an int", flags)


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
    pp.nfail += 1
    intr.mutex_exit(pp.lock, s)


def _take(pp, sl):
    # Lock held; page sl has a free item: hand out the first one. Its address.
    i = pp.pg_free[sl]
    b = sl * pp.ipp + i
    pp.pg_free[sl] = pp.inext[b]
    n = pp.pg_nused[sl] + 1
    pp.pg_nused[sl] = n
    if n == 1:
        pp.nidle -= 1
        _move(pp, sl, _FULL if n == pp.ipp else _PARTIAL)
    elif n == pp.ipp:
        _move(pp, sl, _FULL)
    n = 1 << (b & 7)
    b >>= 3
    pp.bmap[b] |= n
    pp.nget += 1
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


def pool_put(pp, a):
    """Give item a back to the pool. Foreign, misaligned or doubly put items are errors."""
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
    pp.nput += 1
    pp.nout -= 1
    if b == 0:
        _move(pp, sl, _EMPTY)
        pp.nidle += 1
        pp.pg_idle[sl] = ticks_ms()
        if pp.npages > pp.maxpages:
            return _shrink(pp, sl)
    elif b == pp.ipp - 1:
        _move(pp, sl, _PARTIAL)  # a full page turns partial: fill it first
    return 0


def _shrink(pp, sl):
    # Lock held; page sl just emptied above maxpages: give it back (0: keep it).
    if pp.npages > pp.minpages and pp.nitems - pp.ipp >= pp.minitems and not intr.cpu_intr_p():
        return _page_remove(pp, sl)
    return 0


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
    while pp.npages < pp.minpages:
        if not _page_add(pp, PR_WAITOK):
            raise MemoryError("pool_prime: pool '%s': no page for %d items" % (pp.name, n))


def pool_setlowat(pp, n):
    """Keep at least n free-or-used items' worth of pages (catch-up now, PR_NOWAIT)."""
    # => thread context (allocates); n >= 0.
    _tchk("pool_setlowat", pp)
    _count("pool_setlowat", n)
    pp.minitems = n
    while pp.nitems < n:
        if not _page_add(pp, PR_NOWAIT):
            break


def pool_sethiwat(pp, n):
    """Pages above n items' worth are given back as soon as they empty (older pool(9))."""
    # => thread context; n >= 0.
    _tchk("pool_sethiwat", pp)
    _count("pool_sethiwat", n)
    pp.maxitems = n
    pp.maxpages = _NOLIMIT if n == 0 else (n + pp.ipp - 1) // pp.ipp


def pool_sethardlimit(pp, limit, warnmess, ratecap):
    """At most `limit` items out; `warnmess` printed at most once per `ratecap` s."""
    # => thread context; limit >= 0, ratecap >= 0, warnmess a str or None.
    _tchk("pool_sethardlimit", pp)
    _limit_chk("pool_sethardlimit", limit, warnmess, ratecap)
    if limit < 0:
        raise ValueError("pool_sethardlimit: limit %d < 0" % limit)
    pp.hardlimit = limit
    pp.maxpages = (limit + pp.ipp - 1) // pp.ipp
    pp.warnmess = warnmess
    pp.ratecap = ratecap
    pp.lastwarn = None


def _limit_chk(fn, limit, warnmess, ratecap):
    _count(fn, limit)
    if not (warnmess is None or isinstance(warnmess, str)):
        raise TypeError("%s: warnmess must be a str or None, not %s" % (fn, type(warnmess).__name__))
    if not isinstance(ratecap, int) or ratecap < 0:
        raise ValueError("%s: ratecap %r must be an int >= 0" % (fn, ratecap))


def _call_chk(fn, f):
    if not callable(f):
        raise TypeError("%s: fn must be callable, not %s" % (fn, type(f).__name__))


def _count(fn, n):
    if not isinstance(n, int):
        raise TypeError("%s: item count must be an int, not %s" % (fn, type(n).__name__))
    if n < 0 or n > 1 << 30:
        raise ValueError("%s: item count %d not in 0..2**30" % (fn, n))


def pool_set_drain_hook(pp, fn, arg):
    # => thread context; fn callable; one hook per pool (a second: ValueError).
    _tchk("pool_set_drain_hook", pp)
    _call_chk("pool_set_drain_hook", fn)
    if pp.drain is not None:
        raise ValueError("pool_set_drain_hook: pool '%s' already has one" % pp.name)
    pp.drain = fn
    pp.drainarg = arg


def pool_reclaim(pp):
    """Give idle pages back to palloc (beyond the low watermarks). 1 if any was freed."""
    # => thread context (ValueError from an interrupt); the pool lock not held.
    _tchk("pool_reclaim", pp)
    if intr.cpu_intr_p():
        raise ValueError("pool_reclaim: not from interrupt context")
    if pp.drain is not None:
        pp.drain(pp.drainarg, PR_NOWAIT)
    if pp.cache is not None:
        from mpalloc import pool_cache

        pool_cache.pool_cache_invalidate(pp.cache)
    s = intr.mutex_enter(pp.lock)
    free = []
    sl = pp.hd[_EMPTY]
    while sl >= 0:
        nx = pp.pg_next[sl]
        if pp.npages > pp.minpages and pp.nitems - pp.ipp >= pp.minitems:
            free.append(_page_remove(pp, sl))
        sl = nx
    intr.mutex_exit(pp.lock, s)
    for a in free:
        pp.palloc.pa_free(pp, a)
    return 1 if free else 0


# -- debug mode (POOL_DIAGNOSTIC, switched at run time) ----------------------
#
# pool_debug(True) (mpalloc.debug.on() calls it) swaps pool_get / pool_put for
# _dbg_get / _dbg_put, which do what the plain ones do and also:
#   - check the invariants of the item's page (those of pool_chk for one page:
#     bitmap count, free chain, list state, page lookup) and nget - nput == nout,
#     under the pool lock, on every get and put;
#   - poison an item put back, and every item of a page the pool takes while
#     debug is on: every byte 0xD5 (pools whose pages lie in mpalloc.mem's
#     window). When pool_get hands an item out again whose first 4 bytes are
#     still poison, the rest must be too: a write after pool_put is reported
#     ("pool_get: 0x... in pool 'x' written after pool_put"). A write that hits
#     the first 4 bytes only is not seen (they are the mark). Known limit: a page
#     taken while debug was off may carry stale marks of an earlier debug-mode
#     pool; switching debug off and on again with live pools can then report
#     such an item (pool_reclaim between the two clears nothing either).
# pool_debug(False) puts the plain functions back: with debug off the get and
# put paths are exactly the plain ones (no flag test). pool_cache keeps the back
# end it calls in step through _debug_hooks. Both debug paths allocate nothing
# and keep frames within 11 words (they run in interrupt handlers too); a
# report made with the heap locked raises the preallocated E_DEBUG (address in
# pool_lasterr[0], pool in pool_lasterr[1]).
_POISON = const(0xD5)
_debug = [False]
_debug_hooks = []  # called after every switch (pool_cache re-points its back ends)
E_DEBUG = AssertionError("pool: debug check failed with the heap locked (address, pool in pool.pool_lasterr)")


def pool_debug(on):
    """Switch pool's debug checks (page invariants, poisoning) on or off."""
    # => thread context; no pool_get/pool_put under way.
    global pool_get, pool_put
    if on and _mem[0] is None:
        from mpalloc import mem

        _mem[0] = mem
    _debug[0] = bool(on)
    pool_get = _dbg_get if on else _pool_get
    pool_put = _dbg_put if on else _pool_put
    for h in _debug_hooks:
        h()


def _dbg_get(pp, flags):
    # pool_get in debug mode (see above).
    if type(flags) is not int:
        _get_type(pp, flags)
    a = _pool_get(pp, flags & ~PR_ZERO)
    if a is None:
        return None
    s = intr.mutex_enter(pp.lock)
    b = _item_index(pp, a)
    if b >= 0:
        b = _chk_page(pp, b // pp.ipp)
    else:
        b = _BAD_HANDED_OUT  # handed out, yet not marked out
    intr.mutex_exit(pp.lock, s)
    if b:
        _dbg_fail(pp, a, b)
    _unpoison(pp, a)
    if flags & PR_ZERO:
        _zero(a, pp.reqsize)
    return a


def _dbg_put(pp, a):
    # pool_put in debug mode: checks, poison, then the plain put (which
    # reports misuse as usual). The item is poisoned while still ours.
    s = intr.mutex_enter(pp.lock)
    b = _item_index(pp, a)
    if b >= 0:
        b = _chk_page(pp, b // pp.ipp)
        intr.mutex_exit(pp.lock, s)
        if b:
            _dbg_fail(pp, a, b)
        _poison(pp, a, 0)
    else:
        intr.mutex_exit(pp.lock, s)
    _pool_put(pp, a)


def _chk_page(pp, sl):
    # Lock held. 0 if page sl keeps its invariants, else what broke (_BAD_*).
    b = sl * pp.ipp
    n = _chk_bits(pp, b)
    if n != pp.pg_nused[sl]:
        return _BAD_NUSED
    i = pp.pg_free[sl]
    while i != _END:
        if i >= pp.ipp or (pp.bmap[(b + i) >> 3] >> ((b + i) & 7)) & 1:
            return _BAD_FREE_OUT
        n += 1
        if n > pp.ipp:
            return _BAD_LOOP
        i = pp.inext[b + i]
    if n != pp.ipp:
        return _BAD_TOTAL
    n = pp.pg_nused[sl]
    if pp.pg_state[sl] != (_EMPTY if n == 0 else (_FULL if n == pp.ipp else _PARTIAL)):
        return _BAD_LIST
    if pp.pg_of.get(pp.pg_addr[sl] // pp.pagesz, -1) != sl or pp.nget - pp.nput != pp.nout:
        return _BAD_LOOKUP
    return 0


def _chk_bits(pp, b):
    # Items of the page starting at pool-wide index b marked out.
    n = 0
    for b in range(b, b + pp.ipp):
        n += (pp.bmap[b >> 3] >> (b & 7)) & 1
    return n


def _in_window(pp, a):
    # True if item a's bytes are in mpalloc.mem's window.
    m = _mem[0]
    return m is not None and m.ram is not None and m.base <= a and a + pp.size <= m.base + m.size


def _poison(pp, a, o):
    # Poison item a's bytes from offset o on.
    if not _in_window(pp, a):
        return
    m = _mem[0]
    a -= m.base
    m = m.ram
    for o in range(a + o, a + pp.size):
        m[o] = _POISON


def _unpoison(pp, a):
    # Item a handed out: if it carries the poison mark, check the poison.
    if pp.size < 4 or not _in_window(pp, a):
        return
    r = _mem[0].ram
    o = a - _mem[0].base
    if r[o] == _POISON and r[o + 1] == _POISON and r[o + 2] == _POISON and r[o + 3] == _POISON:
        o = _poison_bad(r, o, pp.size)
        if o >= 0:
            _dbg_fail(pp, a, o + _BAD_POISON)


def _poison_bad(r, o, n):
    # The first of bytes 4 .. n-1 of the item at offset o that is not poison, or -1.
    for i in range(o + 4, o + n):
        if r[i] != _POISON:
            return i - o
    return -1


def _dbg_fail(pp, a, e):
    # A debug check failed (e: _BAD_NUSED .. _BAD_LOOKUP from _chk_page,
    # _BAD_HANDED_OUT, _BAD_POISON + n: byte n written after pool_put).
    pool_lasterr[0] = a
    pool_lasterr[1] = pp
    try:
        if e >= _BAD_POISON:
            m = "pool_get: 0x%x in pool '%s' written after pool_put (byte %d)" % (a, pp.name, e - _BAD_POISON)
        elif e == _BAD_HANDED_OUT:
            m = "pool_get: pool '%s' handed out 0x%x, which it does not count as out" % (pp.name, a)
        else:
            m = "pool_chk: pool '%s', page of 0x%x: invariant %d broken (%s)" % (
                pp.name, a, e, ("bitmap count", "free item marked out", "free chain loops",
                                "out + free != items per page", "page on the wrong list",
                                "page lookup or nget - nput != nout")[e - 1])
    except MemoryError:
        raise E_DEBUG
    raise AssertionError(m)


_pool_get = pool_get  # the plain functions (pool_debug swaps them in and out)
_pool_put = pool_put


def pool_nget(pp):
    # => any context.
    _tchk("pool_nget", pp)
    return pp.nget


def pool_nput(pp):
    # => any context.
    _tchk("pool_nput", pp)
    return pp.nput


def pool_paddr(pp, a):
    """The physical (DMA) address of item a: the address itself (see the header)."""
    # => any context; a an item of pp.
    _tchk("pool_paddr", pp)
    return a


def pool_stats(pp):
    # => thread context (allocates).
    _tchk("pool_stats", pp)
    return {
        "name": pp.name, "size": pp.size, "align": pp.align, "itemsperpage": pp.ipp, "pagesz": pp.pagesz,
        "nget": pp.nget, "nfail": pp.nfail, "nput": pp.nput,
        "npagealloc": pp.npagealloc, "npagefree": pp.npagefree, "npages": pp.npages,
        "hiwat": pp.hiwat, "minpages": pp.minpages,
        "maxpages": pp.maxpages if pp.maxpages != _NOLIMIT else None,
        "nidle": pp.nidle, "nitems": pp.nitems, "nout": pp.nout,
        "hardlimit": pp.hardlimit if pp.hardlimit != _NOLIMIT else None,
    }


def pool_pages(pp):
    # => thread context (allocates).
    _tchk("pool_pages", pp)
    r = []
    for sl in range(pp.nslots):
        if pp.pg_state[sl] != _UNUSED:
            r.append((pp.pg_addr[sl], pp.pagesz, pp.pg_nused[sl]))
    r.sort()
    return r


def pool_chk(pp):
    """Check every invariant written next to the data; raises AssertionError."""
    # => thread context; the pool lock not held. A broken invariant: AssertionError.
    _tchk("pool_chk", pp)
    ipp = pp.ipp
    npages = nidle = nout = 0
    for sl in range(pp.nslots):
        st = pp.pg_state[sl]
        if st == _UNUSED:
            continue
        npages += 1
        b = sl * ipp
        used = 0
        for i in range(ipp):
            if pp.bmap[(b + i) >> 3] & (1 << ((b + i) & 7)):
                used += 1
        nfree = 0
        i = pp.pg_free[sl]
        while i != _END:
            assert not pp.bmap[(b + i) >> 3] & (1 << ((b + i) & 7)), "pool_chk: free item marked out"
            nfree += 1
            assert nfree <= ipp, "pool_chk: free chain loops"
            i = pp.inext[b + i]
        assert used == pp.pg_nused[sl] and used + nfree == ipp, "pool_chk: page %d counts" % sl
        want = _EMPTY if used == 0 else (_FULL if used == ipp else _PARTIAL)
        assert st == want, "pool_chk: page %d on list %d, wants %d" % (sl, st, want)
        assert pp.pg_of[pp.pg_addr[sl] // pp.pagesz] == sl, "pool_chk: page lookup"
        nidle += used == 0
        nout += used
    for st in (_EMPTY, _PARTIAL, _FULL):
        sl = pp.hd[st]
        p = -1
        while sl >= 0:
            assert pp.pg_state[sl] == st and pp.pg_prev[sl] == p, "pool_chk: list %d links" % st
            p = sl
            sl = pp.pg_next[sl]
    assert npages == pp.npages and nidle == pp.nidle and nout == pp.nout, "pool_chk: totals"
    assert pp.nitems == npages * ipp, "pool_chk: nitems"
    assert pp.nget - pp.nput == pp.nout, "pool_chk: nget - nput != nout"
