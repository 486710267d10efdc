# kmem_cold: kmem's set-up, statistics and misuse messages, imported on first
# use and dropped after (kmem.py calls lazy.unload("kmem_cold")).
#
# Representation: none of its own; it reads and sets kmem's globals (kmem.py's
# header). Thread context only: everything here allocates.
import sys

from mpalloc.compat import const
from mpalloc import kmem as K
from mpalloc import lazy
from mpalloc import pool as _pool
from mpalloc import pool_cache as _pc
from mpalloc import uvm_km

_MAXSMALL = const(1024)  # kmem's (an underscore const() is no module attribute on MicroPython)
_NOT_ITEM = const(-1)  # pool._item_index's codes (pool's consts of the same names)
_ALREADY_FREE = const(-2)


def init(fn, all_classes):
    # => thread context (allocates); fn names the caller in the error.
    if not K._caches:
        if uvm_km.kernel_map is None:
            raise ValueError(fn + ": uvm_km has no kernel_map (call uvm_km_bootstrap first)")
        cl = K._CLASSES
        t = K._tab
        j = 0
        for i in range(len(t)):
            while cl[j] < (i + 1) * 8:
                j += 1
            t[i] = j
        mi = uvm_km._maps[id(uvm_km.kernel_map)]
        K._base = mi.lo
        K._own = bytearray((mi.hi - mi.lo + 7) >> 3)  # one byte per 8 bytes of kernel_map
        K._olim = len(K._own) * 8
        K._bind()
        for _ in cl:
            K._caches.append(None)
    if all_classes:
        for i in range(len(K._CLASSES)):
            K._cache(i, False)
        if K._debug[0]:
            for i in range(len(K._CLASSES) + 1):
                K._cache(i, True)


def reset():
    # => thread context (allocates); no kmem allocation out that will still be freed.
    for pc in K._caches + K._dcaches:
        if pc is None:
            continue
        if pc in _pc.pool_cache_list:
            _pc.pool_cache_list.remove(pc)
        pp = _pc.pool_cache_pool(pc)
        if pp in _pool.pool_list:
            _pool.pool_list.remove(pp)
    del K._caches[:]
    ac = K._ac
    for i in range(len(ac)):
        ac[i] = None
    del K._dcaches[:]
    K._olim = 0
    K._own = bytearray(0)
    K._bind()
    lg = K._large
    lg[0] = lg[1] = lg[2] = 0
    if K._dbg is not None:
        K._dbg = None
        lazy.unload("kmem_dbg")
    d = sys.modules.get("mpalloc.debug") or sys.modules.get("mpalloc_debug")
    K.kmem_debug(d is not None and d.enabled())


def stats():
    # => thread context (allocates).
    cl = []
    for pc in K._caches + K._dcaches:
        if pc is None:
            continue
        st = _pc.pool_cache_stats(pc)
        na = nf = 0
        for c in st["cpus"]:
            na += c["nget"]
            nf += c["nput"]
        cl.append({"size": st["size"], "cache": st["name"], "inuse": na - nf, "nalloc": na, "nfree": nf})
    lg = K._large
    return {"classes": cl, "large": {"inuse_bytes": lg[0], "nalloc": lg[1], "nfree": lg[2]},
            "debug": K._debug[0]}


def free_error(p, size, e):
    # The exception kmem_free raises for misuse (e: uvm_km's for a large size,
    # K.E_FREE_TYPE for a type).
    if e is K.E_FREE_TYPE:
        return TypeError("kmem_free: address and size must be ints, not %s, %s" % (type(p).__name__,
                                                                                 type(size).__name__))
    return ValueError(_free_msg(p, size, e))


def _which(p):
    # (cache, kmem._owns code) of the class cache whose pages hold p, or (None, -1).
    for cs in (K._caches, K._dcaches):
        for pc in cs:
            if pc is not None:
                if _pool._slot_of(_pc.pool_cache_pool(pc), p) >= 0:
                    return pc, K._owns(pc, p)
    return None, -1


def _free_msg(p, size, e):
    if p is None or not isinstance(p, int) or not isinstance(size, int) or size <= 0:
        return "kmem_free: bad arguments p=%r size=%r" % (p, size)
    pc, code = _which(p)
    own = None
    if pc is not None:
        pp = _pc.pool_cache_pool(pc)
        own = "%s (items of %d bytes)" % (pp.name, pp.reqsize)
    if size > _MAXSMALL:
        if own is not None and code >= 0:
            return "kmem_free: 0x%x is an item of %s, freed with the large size %d" % (p, own, size)
        m = e.args[0] if e is not None and e.args else str(e)
        return "kmem_free: %s (size %d)" % (m, size)
    i = K._tab[(size - 1) >> 3]
    cl = "kmem-%05d" % K._CLASSES[i]
    if own is None:
        return "kmem_free: 0x%x is not from size class %s (size %d): never allocated, or a large allocation" % (
            p, cl, size)
    if code == _ALREADY_FREE:
        return "kmem_free: 0x%x already free (double free) in %s; freed with size %d" % (p, own, size)
    if code == _NOT_ITEM:
        return "kmem_free: 0x%x is inside an item of %s, not its start (size %d, class %s)" % (p, own, size, cl)
    if pc is K._caches[i]:
        return "kmem_free: 0x%x already free (double free: in a magazine of %s); freed with size %d" % (
            p, own, size)
    return "kmem_free: 0x%x is not from size class %s (size %d): it is an item of %s" % (p, cl, size, own)
