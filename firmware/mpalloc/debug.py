# debug: every allocator's debug checks switched on or off at once.
#
#   import mpalloc.debug
#   mpalloc.debug.on()        # before a suite runs (the host runner, a preamble,
#                             # or MPALLOC_DEBUG=1 for the host tests)
#
# What on() switches (each module's own run-time switch; nothing at import):
#   vmem        vmem_debug(True): vmem_check(vm) after every operation (VMEM_SANITY)
#   uvm_km      uvm_km_debug(True): the page records checked against each other
#               (no overlap, inside the map) after every alloc and free
#   pool        pool_debug(True): the item's page checked (pool_chk for one page) on
#               every get and put; freed items poisoned, the poison checked on get
#   pool_cache  pool_cache_debug(True): a put object must be an item its pool handed
#               out and in no magazine (double put); a got one likewise
#   kmem        kmem_debug(True): redzones, poisoning, double-free and wrong-size checks
#               (kmem_reset() keeps what this module says: no re-arming needed)
#   extent      extent_debug(True): the region-list invariants after every change
#   zone        zone_debug(True): ZENTRY_FREE marks in free items, checked at zalloc
#   objcache    objcache_debug(True): outstanding objects tracked (double/foreign put)
# kmalloc and mpipe have no debug mode of their own: their misuse checks are
# always on, and they sit on kmem (kmalloc) and kmalloc (mpipe), whose debug
# checks then cover their memory.
# One idiom in every module: a module-level `_debug = [False]`, set only by
# <module>_debug(on), read as `if _debug[0]:` where a check may run. pool and
# pool_cache, whose hit paths cannot afford even that test, rebind their public
# get/put to the checking pair instead (pool_debug, pool_cache_debug).
# The pool, pool_cache and kmem checks allocate nothing, so interrupt handlers
# and heap_lock tests run with them on.
_on = [False]


def enabled():
    return _on[0]


def on():
    _set(True)


def off():
    _set(False)


def reapply():
    """Switch the modules on again if debug is on (kept for callers; every
    module now keeps its switch across kmem_reset / uvm_km_bootstrap)."""
    if _on[0]:
        _apply(True)


def _set(v):
    _on[0] = v
    _apply(v)


def _apply(v):
    from mpalloc import vmem, uvm_km, pool, pool_cache, kmem, extent, zone, objcache

    vmem.vmem_debug(v)
    uvm_km.uvm_km_debug(v)
    pool.pool_debug(v)
    pool_cache.pool_cache_debug(v)
    kmem.kmem_debug(v)
    extent.extent_debug(v)
    zone.zone_debug(v)
    objcache.objcache_debug(v)
