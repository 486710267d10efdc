# debug: every allocator's debug checks switched on or off at once.
#
#   import mpalloc.debug
#   mpalloc.debug.on()        # before a suite runs (the host runner, a preamble,
#                             # or MPALLOC_DEBUG=1 for the host tests)
#
# What on() switches (each module's own run-time switch; nothing at import):
#   vmem      vmem_debug(True): vmem_check(vm) after every operation (VMEM_SANITY)
#   kmem      kmem_debug(True): redzones, poisoning, double-free and wrong-size checks
#             (needs a kernel_map: switched on again by every kmem_reset(), see below)
#   extent    extent_debug(True): the region-list invariants after every change
#   zone      zone_debug(True): ZENTRY_FREE marks in free items, checked at zalloc
#   objcache  objcache_debug(True): outstanding objects tracked (double/foreign put)
# pool, pool_cache, uvm_km, kmalloc and mpipe have no debug mode of their own: their
# misuse checks are always on (pool_chk() is the full pool check, run by tests).
#
# kmem_reset() (tests, after uvm_km_bootstrap makes a new kernel_map) forgets the
# debug caches and switches kmem's debug mode off; while debug is on, kmem_reset is
# wrapped so that it switches it on again. off() restores the original function.
_on = [False]
_kmem_reset = [None]


def enabled():
    return _on[0]


def on():
    _set(True)


def off():
    _set(False)


def reapply():
    """Switch the modules on again if debug is on (after kmem_reset/uvm_km_bootstrap)."""
    if _on[0]:
        _apply(True)


def _set(v):
    _on[0] = v
    _apply(v)
    from mpalloc import kmem

    if v and _kmem_reset[0] is None:
        _kmem_reset[0] = kmem.kmem_reset

        def kmem_reset():
            _kmem_reset[0]()
            _kmem_on()

        kmem.kmem_reset = kmem_reset
    elif not v and _kmem_reset[0] is not None:
        kmem.kmem_reset = _kmem_reset[0]
        _kmem_reset[0] = None


def _kmem_on():
    if _on[0]:
        from mpalloc import kmem, uvm_km

        if uvm_km.kernel_map is not None:
            kmem.kmem_debug(True)


def _apply(v):
    from mpalloc import vmem, extent, zone, objcache, kmem, uvm_km

    vmem.vmem_debug(v)
    extent.extent_debug(v)
    zone.zone_debug(v)
    objcache.objcache_debug(v)
    if uvm_km.kernel_map is not None:
        kmem.kmem_debug(v)
