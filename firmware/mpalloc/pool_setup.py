# pool_setup: pool's set-up, tuning, statistics and checks (pool.py's slow
# side), imported on first use by pool.py's functions of the same names and
# dropped after (lazy.unload): its code is on the heap only while it runs.
#
# Same representation, invariants and locking as pool.py (its header); the
# counters' places in pp.hd are repeated here (_NGET ..). Everything here runs
# in thread context (it allocates, or imports): never under heap_lock.

from mpalloc import intr
from mpalloc import pool as P

from mpalloc.compat import const

_END = const(0xFFFF)
_EMPTY = const(0)
_PARTIAL = const(1)
_FULL = const(2)
_UNUSED = const(3)
_FREESLOT = const(3)
_NGET = const(4)  # pool.py's hd[] places
_NPUT = const(5)
_NFAIL = const(6)
_NITEMS = const(8)
_NPAGES = const(9)
_NIDLE = const(10)
_HIWAT = const(11)
_NPAGEALLOC = const(12)
_NPAGEFREE = const(13)
_NOLIMIT = const(0x3FFFFFFF)
_PR_NOWAIT = const(0x2)


def pool_allocator_kmem(itemsize):
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
    pa = P._kmem_allocators.get(sz)
    if pa is None:
        pa = P._kmem_allocators[sz] = P._kmem_pages(sz)
    return pa


def pool_setlowat(pp, n):
    """Keep at least n free-or-used items' worth of pages (catch-up now, PR_NOWAIT)."""
    # => thread context (allocates); n >= 0.
    P._tchk("pool_setlowat", pp)
    P._count("pool_setlowat", n)
    pp.minitems = n
    while pp.hd[_NITEMS] < n:
        if not P._page_add(pp, _PR_NOWAIT):
            break


def pool_sethiwat(pp, n):
    """Pages above n items' worth are given back as soon as they empty (older pool(9))."""
    # => thread context; n >= 0.
    P._tchk("pool_sethiwat", pp)
    P._count("pool_sethiwat", n)
    pp.maxitems = n
    pp.maxpages = _NOLIMIT if n == 0 else (n + pp.ipp - 1) // pp.ipp


def pool_sethardlimit(pp, limit, warnmess, ratecap):
    """At most `limit` items out; `warnmess` printed at most once per `ratecap` s."""
    # => thread context; limit >= 0, ratecap >= 0, warnmess a str or None.
    P._tchk("pool_sethardlimit", pp)
    _limit_chk("pool_sethardlimit", limit, warnmess, ratecap)
    if limit < 0:
        raise ValueError("pool_sethardlimit: limit %d < 0" % limit)
    pp.hardlimit = limit
    pp.maxpages = (limit + pp.ipp - 1) // pp.ipp
    pp.warnmess = warnmess
    pp.ratecap = ratecap
    pp.lastwarn = None


def _limit_chk(fn, limit, warnmess, ratecap):
    P._count(fn, limit)
    if not (warnmess is None or isinstance(warnmess, str)):
        raise TypeError("%s: warnmess must be a str or None, not %s" % (fn, type(warnmess).__name__))
    if not isinstance(ratecap, int) or ratecap < 0:
        raise ValueError("%s: ratecap %r must be an int >= 0" % (fn, ratecap))


def _call_chk(fn, f):
    if not callable(f):
        raise TypeError("%s: fn must be callable, not %s" % (fn, type(f).__name__))


def pool_set_drain_hook(pp, fn, arg):
    # => thread context; fn callable; one hook per pool (a second: ValueError).
    P._tchk("pool_set_drain_hook", pp)
    _call_chk("pool_set_drain_hook", fn)
    if pp.drain is not None:
        raise ValueError("pool_set_drain_hook: pool '%s' already has one" % pp.name)
    pp.drain = fn
    pp.drainarg = arg


def pool_reclaim(pp):
    """Give idle pages back to palloc (beyond the low watermarks). 1 if any was freed."""
    # => thread context (ValueError from an interrupt); the pool lock not held.
    P._tchk("pool_reclaim", pp)
    if intr.cpu_intr_p():
        raise ValueError("pool_reclaim: not from interrupt context")
    if pp.drain is not None:
        pp.drain(pp.drainarg, _PR_NOWAIT)
    if pp.cache is not None:
        from mpalloc import pool_cache

        pool_cache.pool_cache_invalidate(pp.cache)
    s = intr.mutex_enter(pp.lock)
    free = []
    sl = pp.hd[_EMPTY]
    while sl >= 0:
        nx = pp.pg_next[sl]
        if pp.hd[_NPAGES] > pp.minpages and pp.hd[_NITEMS] - pp.ipp >= pp.minitems:
            free.append(P._page_remove(pp, sl))
        sl = nx
    intr.mutex_exit(pp.lock, s)
    for a in free:
        pp.palloc.pa_free(pp, a)
    return 1 if free else 0


def pool_stats(pp):
    # => thread context (allocates).
    P._tchk("pool_stats", pp)
    return {
        "name": pp.name, "size": pp.size, "align": (pp.amask + 1), "itemsperpage": pp.ipp, "pagesz": pp.pagesz,
        "nget": pp.hd[_NGET], "nfail": pp.hd[_NFAIL], "nput": pp.hd[_NPUT],
        "npagealloc": pp.hd[_NPAGEALLOC], "npagefree": pp.hd[_NPAGEFREE], "npages": pp.hd[_NPAGES],
        "hiwat": pp.hd[_HIWAT], "minpages": pp.minpages,
        "maxpages": pp.maxpages if pp.maxpages != _NOLIMIT else None,
        "nidle": pp.hd[_NIDLE], "nitems": pp.hd[_NITEMS], "nout": pp.nout,
        "hardlimit": pp.hardlimit if pp.hardlimit != _NOLIMIT else None,
    }


def pool_pages(pp):
    # => thread context (allocates).
    P._tchk("pool_pages", pp)
    r = []
    for sl in range(len(pp.pg_addr)):
        if pp.pg_state[sl] != _UNUSED:
            r.append((pp.pg_addr[sl], pp.pagesz, pp.pg_nused[sl]))
    r.sort()
    return r


def pool_chk(pp):
    """Check every invariant written next to the data; raises AssertionError."""
    # => thread context; the pool lock not held. A broken invariant: AssertionError.
    P._tchk("pool_chk", pp)
    ipp = pp.ipp
    npages = nidle = nout = 0
    for sl in range(len(pp.pg_addr)):
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
    assert npages == pp.hd[_NPAGES] and nidle == pp.hd[_NIDLE] and nout == pp.nout, "pool_chk: totals"
    assert pp.hd[_NITEMS] == npages * ipp, "pool_chk: nitems"
    assert pp.hd[_NGET] - pp.hd[_NPUT] == pp.nout, "pool_chk: nget - nput != nout"
