# objcache: DragonFly BSD's objcache(9) object caches for mpalloc.
#
#   oc = objcache_create(name, cluster_limit, nominal_cache, ctor, dtor, privdata,
#                        alloc, free, allocator_args)
#   o = objcache_get(oc, ocflags)     objcache_put(oc, o)     objcache_dtor(oc, o)
#   objcache_reclaimlist(oclist, nlist, ocflags) -> bool      objcache_destroy(oc)
#   back ends: objcache_malloc_alloc/free with objcache_malloc_args(objsize, mtype)
#              (kmalloc), objcache_nop_alloc/free (pre-populated caches)
#   objcache_create_mbacked(mtype, objsize, cluster_limit, nominal_cache, ctor, dtor, priv)
#   objcache_create_simple(mtype, objsize)
#   objcache_list, objcache_stats(oc)
#
# The per-CPU magazines and the depot ARE pool_cache(9)'s (pool_cache.py): an
# objcache is a pool_cache whose back end is the objcache's alloc/free pair
# instead of a pool (the d.pget/d.pput hook of pool_cache), with the objcache's
# ctor/dtor adapted to pool_cache's conventions. What objcache adds:
#   * the object limit: cluster_limit 0 = unlimited, else
#     ncpus * mag_capacity * 2 + cluster_limit objects may exist at once
#     (oc.cluster_limit is the value DragonFly writes back through the pointer);
#   * magazine capacity from nominal_cache: nom 0 -> cluster_limit / 2 (0 -> 128),
#     capped at cluster_limit; capacity = clamp(nom / (ncpus + 1) / 2 + 1, 4, 128);
#   * magazines made at creation (2 per CPU + max(2, nom / capacity + 1)), so
#     get/put in steady state allocate nothing;
#   * exhaustion: "objcache(<name>): Exhausted!" once; M_WAITOK without M_NULLOK
#     waits for a put (with threads, up to OBJCACHE_WAIT_MS; then, and at once on
#     one CPU, MemoryError: nobody would ever put), otherwise None;
#   * ctor(obj, privdata, ocflags) returns True on success (False: object freed,
#     objcache_get returns None); dtor(obj, privdata). ctor runs only for objects
#     from the back end, dtor only when they go back to it.
#   * M_ZERO is refused by objcache_get (objects are constructed, not zeroed).
#
# Interrupts: objcache_get/objcache_put hit the CPU's magazines (or trade with the
# depot) without allocating from the MicroPython heap, as DragonFly allows them in
# interrupt context. The back end (alloc/free, ctor/dtor) may allocate; under the
# heap lock a miss that cannot be served returns None.
# Representation: oc.pc, the pool_cache; oc's counters (unallocated, nalloc,
# nfree) under oc.lock, a spin mutex; the magazines under pool_cache's locks.
# Misuse: M_ZERO, bad flags, use after objcache_destroy raise preallocated
# exceptions. Like DragonFly and pool_cache, a double or foreign put is not
# detected by default; objcache_debug(True) tracks outstanding objects (costs a
# dict entry per object, allocates: not for interrupt use) and catches both.
from mpalloc import intr
from mpalloc import pool as _pool
from mpalloc import pool_cache as _pc
from mpalloc import kmalloc as _km

from mpalloc.compat import const


OBJCACHE_WAIT_MS = const(2000)
_UNLIMITED = const(-1)

objcache_list = []
_debug = [False]

_E_ZERO = ValueError("objcache_get: M_ZERO is not allowed")
_E_FLAGS = ValueError("objcache_get: flags need exactly one of M_WAITOK, M_INTWAIT, M_NOWAIT")
_E_DEAD_GET = ValueError("objcache_get: cache was destroyed")
_E_DEAD_PUT = ValueError("objcache_put: cache was destroyed")
_E_DEAD_DTOR = ValueError("objcache_dtor: cache was destroyed")
_E_NULL = ValueError("objcache_put: object is None")


def objcache_debug(on):
    """Track outstanding objects of caches created from now on (double/foreign put)."""
    _debug[0] = bool(on)


class objcache:
    """struct objcache: the pool_cache `pc`, the back end and the limit.

    Invariants:
      nalloc - nfree == objects that exist (held by users or in magazines)
      unallocated == _UNLIMITED, or unallocated + (nalloc - nfree) == the limit
      name and size are read by pool_cache_stats (this object is its d.pp)
    """

    def __init__(self):
        self.name = None
        self.size = 0
        self.dead = False


def _occhk(fn, oc):
    if oc.__class__ is not objcache:
        raise TypeError("%s: oc must be an objcache, not %s" % (fn, type(oc).__name__))


def objcache_create(name, cluster_limit, nominal_cache, ctor, dtor, privdata, alloc, free, allocator_args):
    """An object cache; objects come from alloc(allocator_args, ocflags)."""
    if alloc is None or free is None:
        raise ValueError("objcache_create: '%s' needs alloc and free functions" % (name,))
    if not isinstance(name, str) or not isinstance(cluster_limit, int) or not isinstance(nominal_cache, int):
        raise TypeError("objcache_create: name must be a str, cluster_limit and nominal_cache ints")
    for f in (ctor, dtor, alloc, free):
        if not (f is None or callable(f)):
            raise TypeError("objcache_create: ctor, dtor, alloc and free must be callable, not %s" % type(f).__name__)
    if cluster_limit > 1 << 24 or nominal_cache > 1 << 24:
        raise ValueError("objcache_create: cluster_limit %d / nominal_cache %d beyond 2**24" % (cluster_limit, nominal_cache))
    if cluster_limit < 0 or nominal_cache < 0:
        raise ValueError("objcache_create: cluster_limit %d / nominal_cache %d < 0" % (cluster_limit, nominal_cache))
    ncpus = intr.ncpu
    nom = nominal_cache
    if nom == 0:
        nom = cluster_limit // 2
    if cluster_limit and nom > cluster_limit:
        nom = cluster_limit
    if nom == 0:
        nom = 128
    cap = nom // (ncpus + 1) // 2 + 1
    if cap < 4:
        cap = 4
    if cap > 128:
        cap = 128
    oc = objcache()
    oc.name = name
    oc.size = getattr(allocator_args, "objsize", 0)
    oc.ctor = ctor
    oc.dtor = dtor
    oc.privdata = privdata
    oc.alloc = alloc
    oc.free = free
    oc.allocator_args = allocator_args
    oc.mag_capacity = cap
    if cluster_limit:
        oc.cluster_limit = ncpus * cap * 2 + cluster_limit
        oc.unallocated = oc.cluster_limit
    else:
        oc.cluster_limit = 0
        oc.unallocated = _UNLIMITED
    oc.nalloc = oc.nfree = 0
    oc.gets_null = 0
    oc.nexhausted = 0
    oc.exhausted = False
    oc.warned = False
    oc.lock = intr.mutex_init()
    oc.out = {} if _debug[0] else None
    # The magazines: a pool_cache whose back end is ours. Its pool is never used
    # (a placeholder page source), so it is destroyed at once.
    pal = _pool.pool_allocator(_no_page, _no_page_free, 8 if oc.size <= 8 else oc.size)
    pc = _pc.pool_cache_init(oc.size or 1, 0, 0, 0, name, pal, _pool.IPL_VM, _pc_ctor, _pc_dtor, oc)
    d = pc[len(pc) - 1]  # pool_cache keeps its meta data last
    pp = d.pp
    pp.cache = None
    _pool.pool_destroy(pp)
    d.pp = oc
    d.pget = _oc_alloc
    d.pput = _oc_free
    d.magsize = cap
    nmag = 2 * ncpus + max(2, nom // cap + 1)
    for _ in range(nmag):
        mag = _pc._mag_new(d)
        d.empty[d.nempty] = mag
        d.nempty += 1
    oc.pc = pc
    objcache_list.append(oc)
    return oc


def _no_page(pp, flags):
    return None


def _no_page_free(pp, a):
    pass


def _pc_ctor(oc, o, flags):
    # pool_cache convention: 0 = constructed; objcache's ctor returns True on success.
    if oc.ctor is None or oc.ctor(o, oc.privdata, flags):
        return 0
    return 1


def _pc_dtor(oc, o):
    if oc.dtor is not None:
        oc.dtor(o, oc.privdata)


def _oc_alloc(oc, flags):
    """pool_cache back end: one object from alloc, within the limit; None if none."""
    s = intr.mutex_enter(oc.lock)
    u = oc.unallocated
    if u == 0:
        oc.exhausted = True
        oc.nexhausted += 1
        intr.mutex_exit(oc.lock, s)
        if not oc.warned:
            oc.warned = True
            try:
                print("objcache(%s): Exhausted!" % oc.name)
            except MemoryError:
                oc.warned = False  # heap locked: say it next time
        return None
    if u > 0:
        oc.unallocated = u - 1
    intr.mutex_exit(oc.lock, s)
    try:
        o = oc.alloc(oc.allocator_args, flags)
    except MemoryError:
        o = None
    s = intr.mutex_enter(oc.lock)
    if o is None:
        if u > 0:
            oc.unallocated += 1
    else:
        oc.nalloc += 1
    intr.mutex_exit(oc.lock, s)
    return o


def _oc_free(oc, o):
    """pool_cache back end: an object (already destructed) goes back to free."""
    oc.free(o, oc.allocator_args)
    s = intr.mutex_enter(oc.lock)
    oc.nfree += 1
    if oc.unallocated != _UNLIMITED:
        oc.unallocated += 1
    intr.mutex_exit(oc.lock, s)


def objcache_get(oc, ocflags):
    """A constructed object, or None (M_NOWAIT / M_NULLOK at the limit, ctor failure)."""
    if oc.__class__ is not objcache or ocflags.__class__ is not int:
        _occhk("objcache_get", oc)
        raise TypeError("objcache_get: ocflags must be an int, not %s" % type(ocflags).__name__)
    if oc.dead:
        raise _E_DEAD_GET
    if ocflags & _km.M_ZERO:
        raise _E_ZERO
    w = ocflags & (_km.M_RNOWAIT | _km.M_WAITOK)
    if w == 0 or w == (_km.M_RNOWAIT | _km.M_WAITOK):
        raise _E_FLAGS
    o = _pc.pool_cache_get(oc.pc, ocflags)
    if o is None:
        if oc.exhausted and w == _km.M_WAITOK and not ocflags & _km.M_NULLOK:
            o = _wait(oc, ocflags)
        else:
            oc.gets_null += 1
            return None
    if oc.out is not None:
        oc.out[o] = 1
    return o


def _wait(oc, ocflags):
    # DragonFly sleeps on the depot until a put. Here: poll for another CPU's put.
    if intr.cpu_intr_p():
        raise ValueError("objcache_get: M_WAITOK at the limit from an interrupt handler")
    if intr.mode == intr.MODE_THREAD and intr.ncpu > 1:
        import time

        for _ in range(OBJCACHE_WAIT_MS):
            time.sleep_ms(1) if hasattr(time, "sleep_ms") else time.sleep(0.001)
            if oc.dead:
                raise _E_DEAD_GET
            oc.exhausted = False
            o = _pc.pool_cache_get(oc.pc, ocflags)
            if o is not None:
                return o
    oc.gets_null += 1
    raise MemoryError("objcache_get: cache '%s' exhausted (%d objects) and nobody puts one back; would sleep forever" % (
        oc.name, oc.cluster_limit))


def objcache_put(oc, o):
    """Return a constructed object to the cache (magazines, else dtor + free)."""
    if oc.__class__ is not objcache:
        _occhk("objcache_put", oc)
    if oc.dead:
        raise _E_DEAD_PUT
    if o is None:
        raise _E_NULL
    if oc.out is not None:
        _untrack("objcache_put", oc, o)
    oc.exhausted = False
    _pc.pool_cache_put(oc.pc, o)


def _untrack(fn, oc, o):
    if oc.out.pop(o, None) is None:
        raise ValueError("%s: %s is not an object of cache '%s' that is out (put twice or foreign)"
                         % (fn, ("0x%x" % o) if isinstance(o, int) else repr(o), oc.name))


def objcache_dtor(oc, o):
    """o is no longer in a constructed state: destruct it and give it back to free."""
    _occhk("objcache_dtor", oc)
    if oc.dead:
        raise _E_DEAD_DTOR
    if o is None:
        raise ValueError("objcache_dtor: object is None")
    if oc.out is not None:
        _untrack("objcache_dtor", oc, o)
    oc.exhausted = False
    try:
        _pc.pool_cache_destruct_object(oc.pc, o)
    except (TypeError, ValueError) as e:  # the back end's (kfree's) message, under this name
        raise type(e)("objcache_dtor: %s" % (e.args[0] if e.args else e))


def objcache_reclaimlist(oclist, nlist, ocflags):
    """Free cached objects of the first cache in oclist[:nlist] that has any.

    DragonFly purges the current CPU's magazine first, then the depot; here the
    whole cache is purged (pool_cache_invalidate). True if anything was freed.
    """
    if intr.cpu_intr_p():
        raise ValueError("objcache_reclaimlist: not from an interrupt handler")
    for i in range(nlist):
        oc = oclist[i]
        if oc.dead:
            continue
        before = oc.nfree
        _pc.pool_cache_invalidate(oc.pc)
        if oc.nfree != before:
            return True
    return False


def objcache_destroy(oc):
    """Destruct and free every cached object; no object may be out."""
    _occhk("objcache_destroy", oc)
    if oc.dead:
        raise ValueError("objcache_destroy: cache '%s' already destroyed" % oc.name)
    _pc.pool_cache_invalidate(oc.pc)
    out = oc.nalloc - oc.nfree
    if out:
        raise ValueError("objcache_destroy: cache '%s' still has %d objects out" % (oc.name, out))
    oc.dead = True
    if oc.pc in _pc.pool_cache_list:
        _pc.pool_cache_list.remove(oc.pc)
    objcache_list.remove(oc)


# -- back ends ---------------------------------------------------------------------


class objcache_malloc_args:
    """struct objcache_malloc_args: objects of objsize bytes from kmalloc type mtype."""

    def __init__(self, objsize, mtype):
        if not isinstance(objsize, int):
            raise TypeError("objcache_malloc_args: objsize must be an int, not %s" % type(objsize).__name__)
        if objsize < 1 or objsize > 1 << 20:
            raise ValueError("objcache_malloc_args: objsize %d < 1" % objsize)
        if not _km.malloc_type_live(mtype):
            raise ValueError("objcache_malloc_args: not a live malloc type: %r" % (mtype,))
        self.objsize = objsize
        self.mtype = mtype


def objcache_malloc_alloc(allocator_args, ocflags):
    return _km.kmalloc(allocator_args.objsize, allocator_args.mtype, ocflags)


def objcache_malloc_free(obj, allocator_args):
    _km.kfree(obj, allocator_args.mtype)


def objcache_nop_alloc(allocator_args, ocflags):
    return None


def objcache_nop_free(obj, allocator_args):
    pass


def objcache_create_mbacked(mtype, objsize, cluster_limit, nominal_cache, ctor, dtor, privdata):
    """A kmalloc-backed cache named after the type's short description."""
    if not _km.malloc_type_live(mtype):
        raise ValueError("objcache_create_mbacked: not a live malloc type: %r" % (mtype,))
    if not isinstance(objsize, int) or not 1 <= objsize <= 1 << 20:
        raise ValueError("objcache_create_mbacked: objsize %r not an int in 1..2**20" % (objsize,))
    return objcache_create(mtype.ks_shortdesc, cluster_limit, nominal_cache, ctor, dtor, privdata,
                           objcache_malloc_alloc, objcache_malloc_free, objcache_malloc_args(objsize, mtype))


def objcache_create_simple(mtype, objsize):
    if not _km.malloc_type_live(mtype):
        raise ValueError("objcache_create_simple: not a live malloc type: %r" % (mtype,))
    if not isinstance(objsize, int) or not 1 <= objsize <= 1 << 20:
        raise ValueError("objcache_create_simple: objsize %r not an int in 1..2**20" % (objsize,))
    return objcache_create_mbacked(mtype, objsize, 0, 0, None, None, None)


def objcache_stats(oc):
    """name, size, cluster_limit, mag_capacity, unallocated (-1 = no limit), nalloc,
    nfree, live (objects in existence), cached (in magazines), gets, puts, hits,
    gets_null, nexhausted."""
    _occhk("objcache_stats", oc)
    st = _pc.pool_cache_stats(oc.pc)
    gets = puts = hits = 0
    for c in st["cpus"]:
        gets += c["nget"]
        puts += c["nput"]
        hits += c["hits"]
    return {
        "name": oc.name,
        "size": oc.size,
        "cluster_limit": oc.cluster_limit,
        "mag_capacity": oc.mag_capacity,
        "unallocated": oc.unallocated,
        "nalloc": oc.nalloc,
        "nfree": oc.nfree,
        "live": oc.nalloc - oc.nfree,
        "cached": _pc.pool_cache_cached(oc.pc),
        "gets": gets,
        "puts": puts,
        "hits": hits,
        "gets_null": oc.gets_null,
        "nexhausted": oc.nexhausted,
    }
