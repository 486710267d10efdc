# pool_dbg: pool's debug mode (POOL_DIAGNOSTIC, switched at run time),
# imported by pool.pool_debug(True) and dropped by pool_debug(False).
#
# While on, pool.pool_get / pool_put are dbg_get / dbg_put here, which do what the
# plain ones do and also:
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
# Both debug paths allocate nothing and keep frames within 11 words (they run
# in interrupt handlers too); a report made with the heap locked raises the
# preallocated pool.E_DEBUG (address in pool_lasterr[0], pool in
# pool_lasterr[1]). Same representation and locking as pool.py (its header).
from mpalloc import intr
from mpalloc import pool as P

from mpalloc.compat import const

_POISON = const(0xD5)
_PR_ZERO = const(0x8000)
_END = const(0xFFFF)
_EMPTY = const(0)
_PARTIAL = const(1)
_FULL = const(2)
_NGET = const(4)  # pool.py's hd[] places
_NPUT = const(5)
_BAD_NUSED = const(1)  # items marked out in the bitmap != the page's count
_BAD_FREE_OUT = const(2)  # a free item marked out, or a chain off the page
_BAD_LOOP = const(3)  # the free chain loops
_BAD_TOTAL = const(4)  # items out + free items != items per page
_BAD_LIST = const(5)  # the page is on the wrong list
_BAD_LOOKUP = const(6)  # page lookup, or nget - nput != nout
_BAD_HANDED_OUT = const(9)  # pool_get handed out an item it does not count as out
_BAD_POISON = const(16)  # + n: byte n of an item written after pool_put


def start():
    # => thread context (pool_debug(True)): mem for the poison, loaded now.
    if P._mem[0] is None:
        from mpalloc import mem

        P._mem[0] = mem


def poison_page(pp, i0):
    # A page the pool takes in debug mode (lock held; its first item at i0):
    # its items start poisoned (stale marks gone).
    for i in range(pp.ipp):
        _poison(pp, i0 + i * pp.size, 0)


def dbg_get(pp, flags):
    # pool_get in debug mode (see the header).
    if type(flags) is not int:
        P._get_flags(pp, flags)
    a = P._pool_get(pp, flags & ~_PR_ZERO)
    if a is None:
        return None
    s = intr.mutex_enter(pp.lock)
    b = P._item_index(pp, a)
    if b >= 0:
        b = _chk_page(pp, b // pp.ipp)
    else:
        b = _BAD_HANDED_OUT  # handed out, yet not marked out
    intr.mutex_exit(pp.lock, s)
    if b:
        _dbg_fail(pp, a, b)
    _unpoison(pp, a)
    if flags & _PR_ZERO:
        P._zero(a, pp.reqsize)
    return a


def dbg_put(pp, a):
    # pool_put in debug mode: checks, poison, then the plain put (which
    # reports misuse as usual). The item is poisoned while still ours.
    s = intr.mutex_enter(pp.lock)
    b = P._item_index(pp, a)
    if b >= 0:
        b = _chk_page(pp, b // pp.ipp)
        intr.mutex_exit(pp.lock, s)
        if b:
            _dbg_fail(pp, a, b)
        _poison(pp, a, 0)
    else:
        intr.mutex_exit(pp.lock, s)
    P._pool_put(pp, a)


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
    if pp.pg_of.get(pp.pg_addr[sl] // pp.pagesz, -1) != sl or pp.hd[_NGET] - pp.hd[_NPUT] != pp.nout:
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
    m = P._mem[0]
    return m is not None and m.ram is not None and m.base <= a and a + pp.size <= m.base + m.size


def _poison(pp, a, o):
    # Poison item a's bytes from offset o on.
    if not _in_window(pp, a):
        return
    m = P._mem[0]
    a -= m.base
    m = m.ram
    for o in range(a + o, a + pp.size):
        m[o] = _POISON


def _unpoison(pp, a):
    # Item a handed out: if it carries the poison mark, check the poison.
    if pp.size < 4 or not _in_window(pp, a):
        return
    r = P._mem[0].ram
    o = a - P._mem[0].base
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
    P.pool_lasterr[0] = a
    P.pool_lasterr[1] = pp
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
        raise P.E_DEBUG
    raise AssertionError(m)


