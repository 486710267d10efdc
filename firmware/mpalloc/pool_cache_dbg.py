# pool_cache_dbg: pool_cache's debug mode, imported by pool_cache_debug(True)
# and dropped by pool_cache_debug(False); what it checks is written above
# pool_cache.pool_cache_debug. Both paths allocate nothing (interrupt handlers
# use them too); a report with the heap locked raises the preallocated
# pool_cache.E_DEBUG (object in pool_cache_lasterr[0]).
from mpalloc import intr
from mpalloc import pool as _pool
from mpalloc import pool_cache as PC

from mpalloc.compat import const

MAXCPU = const(8)
_META = const(8)
_DBG_GET_FOREIGN = const(1)  # the checks' findings (_dbg_fail's messages)
_DBG_GET_CACHED = const(2)
_DBG_PUT_FOREIGN = const(3)
_DBG_PUT_CACHED = const(4)


def dbg_get(pc, flags):
    o = PC._pc_get(pc, flags)
    if o is not None and pc[_META].pp.__class__ is _pool._Pool:
        if _dbg_pool(pc, o) < 0:
            _dbg_fail(pc, o, _DBG_GET_FOREIGN)
        if _dbg_cached(pc, o):
            _dbg_fail(pc, o, _DBG_GET_CACHED)
    return o


def dbg_put(pc, o):
    if o is not None and pc[_META].pp.__class__ is _pool._Pool:
        if _dbg_pool(pc, o) < 0:
            _dbg_fail(pc, o, _DBG_PUT_FOREIGN)
        if _dbg_cached(pc, o):
            _dbg_fail(pc, o, _DBG_PUT_CACHED)
    PC._pc_put(pc, o)


def _dbg_pool(pc, o):
    # pool._item_index's code for o in the cache's pool (>= 0: handed out by it).
    pc = pc[_META].pp
    s = intr.mutex_enter(pc.lock)
    o = _pool._item_index(pc, o)
    intr.mutex_exit(pc.lock, s)
    return o


def _dbg_cached(pc, o):
    # True if o sits in a magazine: a CPU's loaded or previous one, or the depot's.
    d = pc[_META]
    for c in range(MAXCPU):
        s = PC._cpu_enter(c)
        f = _dbg_inmag(pc[c], o) or _dbg_inmag(d.prev[c], o)
        PC._cpu_exit(c, s)
        if f:
            return True
    PC._depot_enter(d)
    f = False
    for c in range(d.nfull):
        if _dbg_inmag(d.full[c], o):
            f = True
    PC._depot_exit(d)
    return f


def _dbg_inmag(mag, o):
    for i in range(1, mag[0] + 1):
        if mag[i] == o:
            return True
    return False


def _dbg_fail(pc, o, e):
    PC.pool_cache_lasterr[0] = o
    PC.pool_cache_lasterr[1] = pc
    try:
        n = pc[_META].name
        if e == _DBG_GET_FOREIGN:
            m = "pool_cache_get: cache '%s' handed out 0x%x, which its pool does not count as out" % (n, o)
        elif e == _DBG_GET_CACHED:
            m = "pool_cache_get: cache '%s' handed out 0x%x, which is still in a magazine (an earlier double put)" % (
                n, o)
        elif e == _DBG_PUT_FOREIGN:
            m = "pool_cache_put: %r is not an object of cache '%s' (foreign, inside an item, or already free)" % (
                o, n)
        else:
            m = "pool_cache_put: 0x%x already cached (double put) in cache '%s'" % (o, n)
    except MemoryError:
        raise PC.E_DEBUG
    raise ValueError(m)


