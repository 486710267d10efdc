# kmem_cold: kmem_free's misuse messages, imported on first use and dropped
# after (kmem.py calls lazy.unload("kmem_cold")).
#
# Representation: none of its own; it reads kmem's globals (kmem.py's
# header). Thread context only: everything here allocates.
from mpalloc.compat import const
from mpalloc import kmem as K
from mpalloc import pool as _pool
from mpalloc import pool_cache as _pc

_MAXSMALL = const(1024)  # kmem's (an underscore const() is no module attribute on MicroPython)
_NOT_ITEM = const(-1)  # pool._item_index's codes (pool's consts of the same names)
_ALREADY_FREE = const(-2)


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
