"""The catalogue of bad inputs (docs/MISUSE.md) and one test per row.

CASES is the catalogue: (function, misuse, exception, message start, call). Each
row is a test: call() must raise exactly that exception type with a message that
starts with that text, and the check after it (where given) must hold (nothing
already stored is lost). docs/MISUSE.md is generated from CASES and
test_catalogue_is_current fails if it drifts; regenerate with

    .venv/bin/python tests/host/allocators/test_misuse_catalogue.py --write

test_every_public_function_is_catalogued fails when a module gains a public
function that is neither in CASES nor in UNCATALOGUED (which the document lists
too, so what is not covered yet is visible).
"""
import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

import mpfuzz  # noqa: E402
from mpalloc import intr  # noqa: E402

DOC = os.path.join(ROOT, "docs", "MISUSE.md")
MODULES = ("vmem", "uvm_km", "pool", "pool_cache", "kmem", "extent", "kmalloc", "objcache", "mpipe", "zone", "board")

pytestmark = pytest.mark.fuzz


def _m(name):
    import importlib

    return importlib.import_module("mpalloc." + name)


# ---------------------------------------------------------------- fresh state for each row


def vm():
    V = _m("vmem")
    return V, V.vmem_create("mis", 0x1000, 0x1000, 16, 0, V.M_NOWAIT)


def uk():
    return mpfuzz._window(32768, 256)


def pl():
    P = _m("pool")
    intr.setup(1)
    mpfuzz._attach(4096)
    pg = mpfuzz._Pages(256, 16)
    return P, P.pool_init(32, 8, 0, 0, "mis", pg.palloc, P.IPL_VM)


def pc():
    P = _m("pool")
    PC = _m("pool_cache")
    intr.setup(1)
    mpfuzz._attach(4096)
    pg = mpfuzz._Pages(256, 16)
    return PC, PC.pool_cache_init(32, 8, 0, 0, "misc", pg.palloc, P.IPL_VM, None, None, None)


def km():
    uk()
    return _m("kmem")


def ex():
    E = _m("extent")
    return E, E.extent_create("mis", 0x100, 0x1ff, None, 0, E.EX_NOWAIT)


def kma():
    mpfuzz._window(32768, 1024)
    M = _m("kmalloc")
    M._kmem[0] = _m("kmem")
    return M, M.kmalloc_create("mis")


def oc():
    M, t = kma()
    O = _m("objcache")
    return M, O, O.objcache_create_simple(t, 16)


def mp():
    M, t = kma()
    P = _m("mpipe")
    return P, P.mpipe_init(None, t, 32, 2, 2, 0, None, None, None), t


def zn(flags=None):
    uk()
    Z = _m("zone")
    f = Z.ZONE_INTERRUPT | Z.ZONE_DESTROYABLE if flags is None else flags
    return Z, Z.zinit("mis", 16, 8, f)


# ---------------------------------------------------------------- the rows
# Each call is a function of no arguments doing the setup and then the misuse.


def _vmem_double():
    V, a = vm()
    p = V.vmem_alloc(a, 32, V.M_NOWAIT)
    V.vmem_free(a, p, 32)
    V.vmem_free(a, p, 32)


def _vmem_wrongsize():
    V, a = vm()
    p = V.vmem_alloc(a, 32, V.M_NOWAIT)
    V.vmem_free(a, p, 64)


def _vmem_x_vs_plain():
    V, a = vm()
    p = V.vmem_alloc(a, 32, V.M_NOWAIT)
    V.vmem_xfree(a, p, 32)


def _vmem_xfree_foreign():
    V, a = vm()
    V.vmem_xfree(a, 0x1230, 16)


def _uk_alloc(size, align, flags):
    def f():
        U = uk()
        U.uvm_km_alloc(U.kernel_map, size, align, flags(U))
    return f


def _uk_free(kind):
    def f():
        U = uk()
        a = U.uvm_km_alloc(U.kernel_map, 512, 0, U.UVM_KMF_WIRED)
        if kind == "size":
            U.uvm_km_free(U.kernel_map, a, 1024, U.UVM_KMF_WIRED)
        elif kind == "type":
            U.uvm_km_free(U.kernel_map, a, 512, U.UVM_KMF_VAONLY)
        else:
            U.uvm_km_free(U.kernel_map, a + 256, 256, U.UVM_KMF_WIRED)
    return f


def _pool_put(kind):
    def f():
        P, pp = pl()
        a = P.pool_get(pp, P.PR_NOWAIT)
        if kind == "double":
            P.pool_put(pp, a)
            P.pool_put(pp, a)
        else:
            P.pool_put(pp, a + 3)
    return f


def _pool_get_flags():
    P, pp = pl()
    P.pool_get(pp, 0)


def _kmem_free(kind):
    def f():
        K = km()
        p = K.kmem_alloc(40, K.KM_NOSLEEP)
        if kind == "class":
            K.kmem_free(p, 600)
        elif kind == "none":
            K.kmem_free(None, 40)
        else:
            K.kmem_free(p + 8, 40)
    return f


def _kmem_debug(kind):
    def f():
        K = km()
        K.kmem_debug(True)
        p = K.kmem_alloc(40, K.KM_NOSLEEP)
        if kind == "double":
            K.kmem_free(p, 40)
            K.kmem_free(p, 40)
        elif kind == "size":
            K.kmem_free(p, 36)
        else:
            from mpalloc import mem

            mem.ram[p - mem.base + 40] = 0
            K.kmem_free(p, 40)
    return f


def _kmem_intr():
    K = km()
    err = []

    def h(x):
        try:
            K.kmem_alloc(32, K.KM_NOSLEEP)
        except ValueError as e:
            err.append(e)

    intr.run_hard(h, 0)
    raise err[0]


def _ex_region_busy():
    E, e = ex()
    E.extent_alloc_region(e, 0x120, 0x10, E.EX_NOWAIT, "uart-a")
    E.extent_alloc_region(e, 0x128, 0x10, E.EX_NOWAIT, "uart-b")


def _ex_free_unclaimed():
    E, e = ex()
    E.extent_free(e, 0x120, 0x10, E.EX_NOWAIT)


def _ex_free_owner():
    E, e = ex()
    E.extent_alloc_region(e, 0x120, 0x10, E.EX_NOWAIT, "uart-a")
    E.extent_free(e, 0x120, 0x10, E.EX_NOWAIT, "uart-b")


def _ex_alloc(size, align, boundary):
    def f():
        E, e = ex()
        E.extent_alloc(e, size, align, boundary, E.EX_NOWAIT)
    return f


def _ex_nospace():
    E, e = ex()
    E.extent_alloc(e, 0x100, 1, 0, E.EX_NOWAIT)
    E.extent_alloc(e, 1, 1, 0, E.EX_NOWAIT)


def _ex_sub_bad():
    E, e = ex()
    E.extent_alloc_subregion(e, 0x180, 0x17f, 1, 1, 0, E.EX_NOWAIT)


def _ex_outside():
    E, e = ex()
    E.extent_alloc_region(e, 0x1f8, 0x10, E.EX_NOWAIT)


def _kfree(kind):
    def f():
        M, t = kma()
        p = M.kmalloc(24, t, M.M_NOWAIT)
        if kind == "double":
            M.kfree(p, t)
            M.kfree(p, t)
        elif kind == "type":
            M.kfree(p, M.kmalloc_create("other"))
        elif kind == "null":
            M.kfree(None, t)
        else:
            M.kfree(p + 16, t)
    return f


def _kmalloc_flags():
    M, t = kma()
    M.kmalloc(8, t, M.M_RNOWAIT | M.M_WAITOK)


def _kmalloc_limit():
    M, t = kma()
    while True:
        M.kmalloc(512, t, M.M_INTWAIT)


def _kmalloc_dead():
    M, t = kma()
    M.kmalloc_destroy(t)
    M.kmalloc(8, t, M.M_NOWAIT)


def _kmalloc_destroy_busy():
    M, t = kma()
    M.kmalloc(8, t, M.M_NOWAIT)
    M.kmalloc_destroy(t)


def _krealloc_zero():
    M, t = kma()
    p = M.kmalloc(8, t, M.M_NOWAIT)
    M.krealloc(p, 16, t, M.M_NOWAIT | M.M_ZERO)


def _oc(kind):
    def f():
        M, O, c = oc()
        if kind == "zero":
            O.objcache_get(c, M.M_NOWAIT | M.M_ZERO)
        elif kind == "flags":
            O.objcache_get(c, 0)
        elif kind == "none":
            O.objcache_put(c, None)
        else:
            O.objcache_destroy(c)
            O.objcache_get(c, M.M_NOWAIT)
    return f


def _oc_debug_double():
    O = _m("objcache")
    O.objcache_debug(True)
    try:
        M, O, c = oc()
        o = O.objcache_get(c, M.M_NOWAIT)
        O.objcache_put(c, o)
        O.objcache_put(c, o)
    finally:
        O.objcache_debug(False)


def _mp(kind):
    def f():
        P, p, t = mp()
        a = P.mpipe_alloc_nowait(p)
        if kind == "double":
            P.mpipe_free(p, a)
            P.mpipe_free(p, a)
        elif kind == "foreign":
            P.mpipe_free(p, a + 8)
        elif kind == "done":
            P.mpipe_free(p, a)
            P.mpipe_done(p)
            P.mpipe_alloc_nowait(p)
        else:
            P.mpipe_done(p)
    return f


def _mp_init(bytes_, flags):
    def f():
        M, t = kma()
        _m("mpipe").mpipe_init(None, t, bytes_, 2, 2, flags, None, None, None)
    return f


def _z(kind):
    def f():
        Z, z = zn()
        a = Z.zalloc(z)
        if kind == "double":
            Z.zfree(z, a)
            Z.zfree(z, a)
        elif kind == "foreign":
            Z.zfree(z, a + 4)
        elif kind == "dead":
            Z.zfree(z, a)
            Z.zdestroy(z)
            Z.zalloc(z)
    return f


def _z_nodestroy():
    uk()
    Z = _m("zone")
    Z.zdestroy(Z.zinit("mis", 16, 8, 0))


def _z_grow_intr():
    Z, z = zn(0)
    err = []

    def h(x):
        try:
            Z.zalloc(z)
        except ValueError as e:
            err.append(e)

    intr.run_hard(h, 0)
    raise err[0]


def _z_flags():
    uk()
    Z = _m("zone")
    Z.zinit("mis", 16, 8, 0x80)


# ---- uvm_km, pool, pool_cache, kmem, extent: the rest of their public functions


def _uk_pool_page():
    U = uk()
    P = _m("pool")
    pp = P.pool_init(64, 8, 0, 0, "pg", None, P.IPL_VM)
    a = P.pool_get(pp, P.PR_NOWAIT)
    page = P.pool_pages(pp)[0]
    U.uvm_km_free(U.kernel_map, page[0], page[1], U.UVM_KMF_WIRED)  # a pool's page freed as a plain range
    del a


def _uk_poolflag_on_plain():
    U = uk()
    a = U.uvm_km_alloc(U.kernel_map, 512, 0, U.UVM_KMF_WIRED)
    U.uvm_km_free(U.kernel_map, a, 512, U.UVM_KMF_WIRED | U.UVM_KMF_POOLPAGE)


def _uk_suballoc(size, fixed, mn, flags=0):
    def f():
        U = uk()
        U.uvm_km_suballoc(U.kernel_map, size, flags, fixed, mn, "sub")
    return f


def _uk_pageable_from_wired_submap():
    U = uk()
    sm, _, _ = U.uvm_km_suballoc(U.kernel_map, 1024, U.VM_MAP_INTRSAFE, False, 0, "wired-only")
    U.uvm_km_alloc(sm, 256, 0, U.UVM_KMF_PAGEABLE)


def _uk_not_a_map(fn):
    def f():
        U = uk()
        V = _m("vmem")
        other = V.vmem_create("other", 0x1000, 0x1000, 16, 0, V.M_NOWAIT)
        if fn == "alloc":
            U.uvm_km_alloc(other, 256, 0, U.UVM_KMF_WIRED)
        else:
            U.uvm_km_allocations(other)
    return f


def _uk_buf_outside():
    U = uk()
    U.uvm_km_buf(0x10, 16)


def _pool_item_too_big():
    P = _m("pool")
    intr.setup(1)
    mpfuzz._attach(4096)
    P.pool_init(300, 8, 0, 0, "big", mpfuzz._Pages(256, 4).palloc, P.IPL_VM)


def _pool_busy(kind):
    def f():
        P, pp = pl()
        if kind == "out":
            P.pool_get(pp, P.PR_NOWAIT)
        else:
            _m("pool_cache")  # a cache over the pool
            PC = _m("pool_cache")
            c = PC.pool_cache_init(32, 8, 0, 0, "c", mpfuzz._Pages(256, 4).palloc, P.IPL_VM, None, None, None)
            pp = PC.pool_cache_pool(c)
        P.pool_destroy(pp)
    return f


def _pool_prime_nopages():
    P, pp = pl()
    P.pool_prime(pp, 10000)


def _pool_count(fn):
    def f():
        P, pp = pl()
        getattr(P, fn)(pp, -1)
    return f


def _pool_drain_twice():
    P, pp = pl()
    P.pool_set_drain_hook(pp, lambda a, f: None, None)
    P.pool_set_drain_hook(pp, lambda a, f: None, None)


def _in_intr(fn):
    # fn() called from an emulated hard interrupt; what it raised is raised here
    err = []

    def h(x):
        try:
            fn()
        except Exception as e:
            err.append(e)

    intr.run_hard(h, 0)
    raise err[0]


def _pool_reclaim_intr():
    P, pp = pl()
    _in_intr(lambda: P.pool_reclaim(pp))


def _pool_get_iplnone_intr():
    P = _m("pool")
    intr.setup(1)
    mpfuzz._attach(4096)
    pp = P.pool_init(32, 8, 0, 0, "none", mpfuzz._Pages(256, 4).palloc, P.IPL_NONE)
    _in_intr(lambda: P.pool_get(pp, P.PR_NOWAIT))


def _pool_get_limit_waitok():
    P, pp = pl()
    P.pool_sethardlimit(pp, 1, None, 0)
    P.pool_get(pp, P.PR_WAITOK)
    P.pool_get(pp, P.PR_WAITOK)  # one CPU: nobody can put one back


def _pool_put_notint():
    P, pp = pl()
    P.pool_put(pp, "0x20010000")


def _with_debug(switch, fn):
    # fn() with a module's debug switch on (always switched off again)
    def f():
        sw = getattr(_m(switch[0]), switch[1])
        sw(True)
        try:
            fn()
        finally:
            sw(False)
    return f


def _pool_written_after_put():
    P, pp = pl()
    from mpalloc import mem

    a = P.pool_get(pp, P.PR_NOWAIT)
    P.pool_put(pp, a)
    mem.ram[a - mem.base + 9] = 1  # use after free
    P.pool_get(pp, P.PR_NOWAIT)


def _pc_put(kind):
    def f():
        PC, c = pc()
        o = PC.pool_cache_get(c, 2)
        if kind == "none":
            PC.pool_cache_put(c, None)
        elif kind == "double":
            PC.pool_cache_put(c, o)
            PC.pool_cache_put(c, o)
        elif kind == "inside":
            PC.pool_cache_put(c, o + 8)
        elif kind == "paddr":
            PC.pool_cache_put_paddr(c, None, 0)
        elif kind == "zero":
            PC.pool_cache_put(c, o)  # a loaded magazine: the next put is a hit
            PC.pool_cache_put(c, 0)
        elif kind == "float":
            PC.pool_cache_put(c, o)
            PC.pool_cache_put(c, 1.5)  # not looked at on a hit ...
            PC.pool_cache_invalidate(c)  # ... named here
        elif kind == "hitflags":
            PC.pool_cache_put(c, o)
            PC.pool_cache_get(c, 0)  # the magazine holds o: a hit but for the flags
    return f


def _pc_get_flags(fn):
    def f():
        PC, c = pc()
        getattr(PC, fn)(c, 0)
    return f


def _pc_invalidate_intr():
    PC, c = pc()
    _in_intr(lambda: PC.pool_cache_invalidate(c))


def _pc_reclaim_intr():
    PC, c = pc()
    _in_intr(lambda: PC.pool_cache_reclaim(c))


def _pc_destroy_busy():
    PC, c = pc()
    PC.pool_cache_get(c, 2)
    PC.pool_cache_destroy(c)


def _pc_call(fn, *a):
    def f():
        PC, c = pc()
        getattr(PC, fn)(c, *a)
    return f


def _pc_drain_twice():
    PC, c = pc()
    PC.pool_cache_set_drain_hook(c, lambda a, f: None, None)
    PC.pool_cache_set_drain_hook(c, lambda a, f: None, None)


def _km_no_map():
    K = km()
    _m("uvm_km")._teardown()
    K.kmem_reset()
    K.kmem_init()


def _km_small_as_large():
    K = km()
    p = K.kmem_alloc(881, K.KM_NOSLEEP)
    K.kmem_free(p, 2048)


def _km_call(fn, *a):
    def f():
        getattr(km(), fn)(*a)
    return f


def _km_intr(fn):
    def f():
        K = km()
        p = K.kmem_intr_alloc(32, K.KM_NOSLEEP)
        if fn == "kmem_free":
            _in_intr(lambda: K.kmem_free(p, 32))
        else:
            _in_intr(lambda: K.kmem_zalloc(32, K.KM_NOSLEEP))
    return f


def _km_intr_free_inside():
    K = km()
    p = K.kmem_intr_alloc(64, K.KM_NOSLEEP)
    K.kmem_intr_free(p + 16, 48)


def _km_sleep_nomem():
    K = km()
    K.kmem_alloc(1 << 20, K.KM_SLEEP)


def _ex_dead(fn):
    def f():
        E, e = ex()
        E.extent_destroy(e)
        getattr(E, fn)(e)
    return f


# ---- vmem, kmalloc, objcache, mpipe, zone: the rest of their public functions


def _vmem_destroy(kind):
    def f():
        V, a = vm()
        if kind == "out":
            V.vmem_alloc(a, 32, V.M_NOWAIT)
        else:
            V.vmem_destroy(a)
        V.vmem_destroy(a)
    return f


def _vmem_dead(fn, *args):
    def f():
        V, a = vm()
        V.vmem_destroy(a)
        getattr(V, fn)(a, *args)
    return f


def _vmem_corrupt():
    V, a = vm()
    p = V.vmem_alloc(a, 32, V.M_NOWAIT)
    a._seg_size[a._seg_next[a._seg_next[0]]] += 1  # the first segment overlaps the next
    del p
    V.vmem_check(a)


def _vmem_qc_double():
    V = _m("vmem")
    a = V.vmem_create("misqc", 0x1000, 0x1000, 16, 64, V.M_NOWAIT)
    p = V.vmem_alloc(a, 32, V.M_NOWAIT)
    V.vmem_free(a, p, 32)
    V.vmem_free(a, p, 32)


def _kmalloc_dead_call(fn, *args):
    def f():
        M, t = kma()
        M.kmalloc_destroy(t)
        getattr(M, fn)(t, *args)
    return f


def _kstrdup_dead():
    M, t = kma()
    M.kmalloc_destroy(t)
    M.kstrdup("abc", t)


def _kmalloc_usable_inside():
    M, t = kma()
    p = M.kmalloc(64, t, M.M_WAITOK)
    M.kmalloc_usable(p + 8)


def _oc_dead(fn):
    def f():
        M, O, c = oc()
        O.objcache_destroy(c)
        if fn == "objcache_destroy":
            O.objcache_destroy(c)
        else:
            O.objcache_dtor(c, 0x1234)
    return f


def _oc_dtor_none():
    M, O, c = oc()
    O.objcache_dtor(c, None)


def _oc_destroy_busy():
    M, O, c = oc()
    O.objcache_get(c, M.M_WAITOK)
    O.objcache_destroy(c)


def _oc_reclaim_intr():
    M, O, c = oc()
    return _in_intr(lambda: O.objcache_reclaimlist([c], 1, M.M_NOWAIT))


def _oc_create(kind):
    def f():
        O = _m("objcache")
        if kind == "noalloc":
            O.objcache_create("x", 0, 0, None, None, None, None, None, None)
        else:
            O.objcache_create("x", -1, 0, None, None, None, O.objcache_nop_alloc, O.objcache_nop_free, None)
    return f


def _oc_mbacked(objsize, dead):
    def f():
        M, t = kma()
        O = _m("objcache")
        if dead:
            M.kmalloc_destroy(t)
        O.objcache_create_mbacked(t, objsize, 0, 0, None, None, None)
    return f


def _oc_simple_dead():
    M, t = kma()
    O = _m("objcache")
    M.kmalloc_destroy(t)
    O.objcache_create_simple(t, 16)


def _oc_malloc_free_double():
    M, t = kma()
    O = _m("objcache")
    args = O.objcache_malloc_args(16, t)
    p = O.objcache_malloc_alloc(args, M.M_WAITOK)
    O.objcache_malloc_free(p, args)
    O.objcache_malloc_free(p, args)


def _oc_malloc_alloc_dead():
    M, t = kma()
    O = _m("objcache")
    args = O.objcache_malloc_args(16, t)
    M.kmalloc_destroy(t)
    O.objcache_malloc_alloc(args, M.M_WAITOK)


def _mp_waitok_done():
    P, p, t = mp()
    P.mpipe_done(p)
    P.mpipe_alloc_waitok(p)


def _zboot(kind):
    def f():
        uk()
        Z = _m("zone")
        if kind == "size":
            Z.zbootinit(None, "b", 2, bytearray(64), 4)
        elif kind == "nitems":
            Z.zbootinit(None, "b", 16, bytearray(64), 0)
        elif kind == "z":
            Z.zbootinit("zone", "b", 16, bytearray(64), 4)
        else:
            z = Z.zbootinit(None, "b", 16, bytearray(64), 4)
            Z.zbootinit(z, "b", 16, bytearray(64), 4)
    return f


def _zinitna(kind):
    def f():
        uk()
        Z = _m("zone")
        if kind == "z":
            Z.zinitna("zone", None, "n", 16, 8, 0)
        elif kind == "size":
            Z.zinitna(Z.vm_zone(), None, "n", 0, 8, 0)
        else:
            Z.zinitna(Z.vm_zone(), None, "n", 16, 0, Z.ZONE_INTERRUPT)
    return f


def _zbuf_foreign():
    Z, z = zn()
    Z.zbuf(z, 0x10)


# ---------------------------------------------------------------- board (the device-side board module)
# board.init() sets intr (MODE_THREAD, the profile's CPUs), mem (the window at
# the profile's virtual_base) and uvm_km (kernel_map) up for the whole process.
# Every board row runs inside _bd: the globals of board, mem and uvm_km (and
# the contents of their lists and dicts) and intr's mode are put back after it,
# so the rows and tests that run after a board row see what they saw before.


def _prof(board_name="rp2040", **over):
    import json

    with open(os.path.join(ROOT, "boards", board_name + ".json")) as f:
        p = json.load(f)
    for k, v in over.items():
        p[k] = v
    return p


def _snap(mod):
    out = {}
    for k, v in vars(mod).items():
        if k.startswith("__") or callable(v) or type(v).__name__ == "module":
            continue
        out[k] = (v, list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else None)
    return out


def _restore(mod, saved):
    for k, (v, c) in saved.items():
        if isinstance(v, list):
            v[:] = c
        elif isinstance(v, dict):
            v.clear()
            v.update(c)
        setattr(mod, k, v)


def _bd(f):
    def run():
        mods = [_m("board"), _m("mem"), _m("uvm_km")]
        saved = [_snap(m) for m in mods]
        ncpu, mode = intr.ncpu, intr.mode
        try:
            return f(_m("board"))
        finally:
            for m, s in zip(mods, saved):
                _restore(m, s)
            intr.setup(ncpu, mode)
    return run


def _bd_init(B, p="rp2040", **over):
    B.use(_prof(p, **over) if isinstance(p, str) else p)
    B.init()
    return B


def _bd_json(fn):
    # an unreadable board.json in the current directory, no board.use()
    def f(B):
        import tempfile

        d = tempfile.mkdtemp()
        with open(os.path.join(d, "board.json"), "w") as fh:
            fh.write("{'name': not json")
        cwd = os.getcwd()
        B._use[0] = None
        B._state[0] = False
        os.chdir(d)
        try:
            getattr(B, fn)()
        finally:
            os.chdir(cwd)
            os.remove(os.path.join(d, "board.json"))
            os.rmdir(d)
    return _bd(f)


def _bd_owner_named(owner, call):
    # the clash must name who holds the region; the holder keeps it
    def f(B):
        _bd_init(B)
        try:
            call(B)
        except (OSError, ValueError) as e:
            msg = str(e.args[-1])
            assert "'%s'" % owner in msg, "owner %r not named in %r" % (owner, msg)
            raise
    return _bd(f)


def _bd_claim_clash(B):
    B.claim("uart-a", "UART0")
    try:
        B.claim("uart-b", 0x40034000, 4)
    finally:
        B.release("uart-a", "UART0")  # still held by uart-a: the clash took nothing


def _bd_release_other(B):
    B.claim("uart-a", "UART0")
    try:
        B.release("uart-b", "UART0")
    finally:
        B.release("uart-a", "UART0")  # still held by uart-a


def _bd_call(fn, *a, **k):
    def f(B):
        _bd_init(B)
        getattr(B, fn)(*a, **k)
    return _bd(f)


def _bd_dma_free(kind):
    def f(B):
        _bd_init(B)
        a = B.dma_alloc(16)
        try:
            if kind == "never":
                B.dma_free(a + 256, 16)
            elif kind == "size":
                B.dma_free(a, 600)
            elif kind == "double":
                B.dma_free(a, 16)
                a = None
                B.dma_free(B.memory_map()["managed"]["base"], 16)
            else:
                B.dma_free(None, 16)
        finally:
            if a is not None:
                assert a in B._dma, "dma_free: a refused free lost the buffer"
                B.dma_free(a, 16)
    return _bd(f)


def _bd_dma_free_before_init(B):
    B._use[0] = None
    B._state[0] = False
    B._dma.clear()
    B.dma_free(0x20010000, 16)


def _bd_use(p):
    return _bd(lambda B: B.use(p))


CASES = [
    # vmem
    ("vmem_create", "quantum not a power of two", ValueError, "vmem_create",
     lambda: _m("vmem").vmem_create("m", 0x1000, 0x1000, 24, 0, 2)),
    ("vmem_alloc", "size 0", ValueError, "vmem_alloc", lambda: (lambda V, a: V.vmem_alloc(a, 0, V.M_NOWAIT))(*vm())),
    ("vmem_alloc", "both M_WAITOK and M_NOWAIT", ValueError, "vmem_alloc",
     lambda: (lambda V, a: V.vmem_alloc(a, 16, V.M_NOWAIT | V.M_WAITOK))(*vm())),
    ("vmem_xalloc", "align not a power of two", ValueError, "vmem_xalloc",
     lambda: (lambda V, a: V.vmem_xalloc(a, 16, 48, 0, 0, 0, V.VMEM_ADDR_MAX, V.M_NOWAIT))(*vm())),
    ("vmem_xalloc", "phase >= align", ValueError, "vmem_xalloc",
     lambda: (lambda V, a: V.vmem_xalloc(a, 16, 32, 32, 0, 0, V.VMEM_ADDR_MAX, V.M_NOWAIT))(*vm())),
    ("vmem_xalloc", "nocross smaller than size", ValueError, "vmem_xalloc",
     lambda: (lambda V, a: V.vmem_xalloc(a, 64, 16, 0, 32, 0, V.VMEM_ADDR_MAX, V.M_NOWAIT))(*vm())),
    ("vmem_xalloc", "minaddr > maxaddr", ValueError, "vmem_xalloc",
     lambda: (lambda V, a: V.vmem_xalloc(a, 16, 16, 0, 0, 0x1800, 0x1000, V.M_NOWAIT))(*vm())),
    ("vmem_free", "double free", ValueError, "vmem_free", _vmem_double),
    ("vmem_free", "another size than allocated", ValueError, "vmem_free", _vmem_wrongsize),
    ("vmem_xfree", "a vmem_alloc segment (the other function)", ValueError, "vmem_xfree", _vmem_x_vs_plain),
    ("vmem_xfree", "an address never allocated", ValueError, "vmem_xfree", _vmem_xfree_foreign),
    ("vmem_add", "span overlapping an existing span", ValueError, "vmem_add",
     lambda: (lambda V, a: V.vmem_add(a, 0x1800, 0x1000, V.M_NOWAIT))(*vm())),
    ("vmem_size", "typemask neither VMEM_ALLOC nor VMEM_FREE nor VMEM_MAXFREE", ValueError, "vmem_size",
     lambda: (lambda V, a: V.vmem_size(a, 0x40))(*vm())),
    ("vmem_free", "double free of a quantum-cache item (parked in the cache)", ValueError, "vmem_free",
     _vmem_qc_double),
    ("vmem_destroy", "allocations still outstanding (listed)", ValueError, "vmem_destroy", _vmem_destroy("out")),
    ("vmem_destroy", "an arena already destroyed", ValueError, "vmem_destroy", _vmem_destroy("dead")),
    ("vmem_set_import", "import_quantum not a multiple of the quantum", ValueError, "vmem_set_import",
     lambda: (lambda V, a: V.vmem_set_import(a, None, None, None, 24))(*vm())),
    ("vmem_set_import", "a destroyed arena", ValueError, "vmem_set_import", _vmem_dead("vmem_set_import",
                                                                                        None, None, None, 0)),
    ("vmem_set_reclaim", "something that is not an arena", TypeError, "vmem_set_reclaim",
     lambda: _m("vmem").vmem_set_reclaim("arena", None)),
    ("vmem_set_limit", "a negative limit", ValueError, "vmem_set_limit",
     lambda: (lambda V, a: V.vmem_set_limit(a, -1))(*vm())),
    ("vmem_check", "a corrupt arena (segments overlap)", AssertionError, "vmem_check", _vmem_corrupt),
    # uvm_km
    ("uvm_km_alloc", "flags without exactly one of WIRED/PAGEABLE/VAONLY", ValueError, "uvm_km_alloc",
     _uk_alloc(256, 0, lambda U: U.UVM_KMF_WIRED | U.UVM_KMF_VAONLY)),
    ("uvm_km_alloc", "size 0", ValueError, "uvm_km_alloc", _uk_alloc(0, 0, lambda U: U.UVM_KMF_WIRED)),
    ("uvm_km_alloc", "UVM_KMF_ZERO without WIRED", ValueError, "uvm_km_alloc",
     _uk_alloc(256, 0, lambda U: U.UVM_KMF_VAONLY | U.UVM_KMF_ZERO)),
    ("uvm_km_alloc", "align not a power-of-two multiple of PAGE_SIZE", ValueError, "uvm_km_alloc",
     _uk_alloc(256, 384, lambda U: U.UVM_KMF_WIRED)),
    ("uvm_km_alloc", "UVM_KMF_EXEC on a board without an executable region", ValueError, "uvm_km_alloc",
     _uk_alloc(256, 0, lambda U: U.UVM_KMF_WIRED | U.UVM_KMF_EXEC)),
    ("uvm_km_alloc", "UVM_KMF_PAGEABLE from a submap without VM_MAP_PAGEABLE", ValueError, "uvm_km_alloc",
     _uk_pageable_from_wired_submap),
    ("uvm_km_free", "another size than allocated", ValueError, "uvm_km_free", _uk_free("size")),
    ("uvm_km_free", "another type than allocated", ValueError, "uvm_km_free", _uk_free("type")),
    ("uvm_km_free", "an address inside an allocation", ValueError, "uvm_km_free", _uk_free("inside")),
    ("uvm_km_free", "a pool's page freed as a range of its own (no UVM_KMF_POOLPAGE)", ValueError, "uvm_km_free",
     _uk_pool_page),
    ("uvm_km_free", "UVM_KMF_POOLPAGE for a range that is no pool page", ValueError, "uvm_km_free",
     _uk_poolflag_on_plain),
    ("uvm_km_alloc", "a vmem arena that is not a uvm_km map", ValueError, "uvm_km_alloc", _uk_not_a_map("alloc")),
    ("uvm_km_bootstrap", "page size not a power of two", ValueError, "uvm_km_bootstrap",
     lambda: _m("uvm_km").uvm_km_bootstrap(0x20010000, 4096, 384)),
    ("uvm_km_bootstrap", "window not page aligned", ValueError, "uvm_km_bootstrap",
     lambda: _m("uvm_km").uvm_km_bootstrap(0x20010080, 4096, 256)),
    ("uvm_km_suballoc", "size 0", ValueError, "uvm_km_suballoc", _uk_suballoc(0, False, 0)),
    ("uvm_km_suballoc", "fixed min not page aligned", ValueError, "uvm_km_suballoc",
     _uk_suballoc(1024, True, 0x20010010)),
    ("uvm_km_suballoc", "a flag that is not a VM_MAP_ flag", ValueError, "uvm_km_suballoc",
     _uk_suballoc(1024, False, 0, 0x1000)),
    ("uvm_km_suballoc", "no room in the parent map", MemoryError, "uvm_km_suballoc", _uk_suballoc(1 << 20, False, 0)),
    ("uvm_km_buf", "a range outside the managed window", ValueError, "uvm_km_buf", _uk_buf_outside),
    ("uvm_km_allocations", "a vmem arena that is not a uvm_km map", ValueError, "uvm_km_allocations",
     _uk_not_a_map("allocations")),
    # pool
    ("pool_init", "item size 0", ValueError, "pool_init", lambda: _m("pool").pool_init(0, 8, 0, 0, "x", None, 0)),
    ("pool_init", "align not a power of two", ValueError, "pool_init",
     lambda: _m("pool").pool_init(16, 12, 0, 0, "x", None, 0)),
    ("pool_put", "double put", ValueError, "pool_put", _pool_put("double")),
    ("pool_put", "an address that is not an item", ValueError, "pool_put", _pool_put("foreign")),
    ("pool_get", "flags without PR_WAITOK or PR_NOWAIT", ValueError, "pool_get", _pool_get_flags),
    ("pool_init", "align_offset not in 0..align-1", ValueError, "pool_init",
     lambda: _m("pool").pool_init(16, 8, 8, 0, "x", None, 0)),
    ("pool_init", "item larger than the allocator's page", ValueError, "pool_init", _pool_item_too_big),
    ("pool_allocator_kmem", "item size 0", ValueError, "pool_allocator_kmem",
     lambda: (uk(), _m("pool").pool_allocator_kmem(0))),
    ("pool_get", "IPL_NONE pool from an interrupt handler", ValueError, "pool_get", _pool_get_iplnone_intr),
    ("pool_get", "PR_WAITOK at the hard limit with nobody to put an item back", MemoryError, "pool_get",
     _pool_get_limit_waitok),
    ("pool_get", "an item written after pool_put (pool_debug)", AssertionError, "pool_get",
     _with_debug(("pool", "pool_debug"), _pool_written_after_put)),
    ("pool_put", "not an int", ValueError, "pool_put", _pool_put_notint),
    ("pool_destroy", "items still out", ValueError, "pool_destroy", _pool_busy("out")),
    ("pool_destroy", "the pool of a pool_cache", ValueError, "pool_destroy", _pool_busy("cache")),
    ("pool_prime", "more items than the allocator has pages for", MemoryError, "pool_prime", _pool_prime_nopages),
    ("pool_prime", "a negative count", ValueError, "pool_prime", _pool_count("pool_prime")),
    ("pool_setlowat", "a negative count", ValueError, "pool_setlowat", _pool_count("pool_setlowat")),
    ("pool_sethiwat", "a negative count", ValueError, "pool_sethiwat", _pool_count("pool_sethiwat")),
    ("pool_sethardlimit", "a negative limit", ValueError, "pool_sethardlimit",
     lambda: (lambda P, pp: P.pool_sethardlimit(pp, -1, None, 0))(*pl())),
    ("pool_set_drain_hook", "a second hook", ValueError, "pool_set_drain_hook", _pool_drain_twice),
    ("pool_reclaim", "from an interrupt handler", ValueError, "pool_reclaim", _pool_reclaim_intr),
    # pool_cache
    ("pool_cache_init", "item size 0", ValueError, "pool_cache_init",
     lambda: _m("pool_cache").pool_cache_init(0, 8, 0, 0, "x", None, 0, None, None, None)),
    ("pool_cache_destruct_object", "an address that is not an item (refused before the destructor)",
     ValueError, "pool_cache_destruct_object", lambda: (lambda PC, c: [PC.pool_cache_invalidate(c), PC.pool_cache_destruct_object(c, 0x123)])(*pc())),
    ("pool_cache_get", "flags without PR_WAITOK / PR_NOWAIT (seen when the magazines are empty)", ValueError,
     "pool_cache_get", _pc_get_flags("pool_cache_get")),
    ("pool_cache_get_paddr", "flags without PR_WAITOK / PR_NOWAIT", ValueError, "pool_cache_get",
     _pc_get_flags("pool_cache_get_paddr")),
    ("pool_cache_put", "None", ValueError, "pool_cache_put", _pc_put("none")),
    ("pool_cache_put", "0 (null), on a magazine hit too", ValueError, "pool_cache_put", _pc_put("zero")),
    ("pool_cache_put", "a float (found when the objects go back to the pool)", ValueError, "pool_cache_invalidate",
     _pc_put("float")),
    ("pool_cache_get", "flags without PR_WAITOK / PR_NOWAIT on a magazine hit", ValueError, "pool_cache_get",
     _pc_put("hitflags")),
    ("pool_cache_put", "double put into the cache (pool_cache_debug)", ValueError, "pool_cache_put",
     _with_debug(("pool_cache", "pool_cache_debug"), _pc_put("double"))),
    ("pool_cache_put", "an address inside an object (pool_cache_debug)", ValueError, "pool_cache_put",
     _with_debug(("pool_cache", "pool_cache_debug"), _pc_put("inside"))),
    ("pool_cache_put_paddr", "None", ValueError, "pool_cache_put", _pc_put("paddr")),
    ("pool_cache_invalidate", "from an interrupt handler", ValueError, "pool_cache_invalidate", _pc_invalidate_intr),
    ("pool_cache_destroy", "objects still out", ValueError, "pool_cache_destroy", _pc_destroy_busy),
    ("pool_cache_setlowat", "a negative count", ValueError, "pool_cache_setlowat", _pc_call("pool_cache_setlowat", -1)),
    ("pool_cache_sethiwat", "a negative count", ValueError, "pool_cache_sethiwat", _pc_call("pool_cache_sethiwat", -1)),
    ("pool_cache_sethardlimit", "a negative limit", ValueError, "pool_cache_sethardlimit",
     _pc_call("pool_cache_sethardlimit", -1, None, 0)),
    ("pool_cache_prime", "more objects than the allocator has pages for", MemoryError, "pool_prime",
     _pc_call("pool_cache_prime", 10000)),
    ("pool_cache_reclaim", "from an interrupt handler", ValueError, "pool_reclaim", _pc_reclaim_intr),
    ("pool_cache_set_drain_hook", "a second hook", ValueError, "pool_set_drain_hook", _pc_drain_twice),
    # kmem
    ("kmem_alloc", "size 0", ValueError, "kmem_alloc", lambda: km().kmem_alloc(0, 2)),
    ("kmem_alloc", "flags neither KM_SLEEP nor KM_NOSLEEP", ValueError, "kmem_alloc", lambda: km().kmem_alloc(8, 0)),
    ("kmem_alloc", "from interrupt context (use kmem_intr_alloc)", ValueError, "kmem_alloc", _kmem_intr),
    ("kmem_free", "a size of another class", ValueError, "kmem_free", _kmem_free("class")),
    ("kmem_free", "None", ValueError, "kmem_free", _kmem_free("none")),
    ("kmem_free", "an address inside an item", ValueError, "kmem_free", _kmem_free("inside")),
    ("kmem_free", "double free (debug mode)", ValueError, "kmem_free", _kmem_debug("double")),
    ("kmem_free", "same class, another size (debug mode)", ValueError, "kmem_free", _kmem_debug("size")),
    ("kmem_free", "overflow into the redzone (debug mode)", ValueError, "kmem_free", _kmem_debug("redzone")),
    ("kmem_class", "size 0", ValueError, "kmem_class", lambda: km().kmem_class(0)),
    ("kmem_free", "a small item with a large size (its pool page)", ValueError, "kmem_free", _km_small_as_large),
    ("kmem_free", "from an interrupt handler (use kmem_intr_free)", ValueError, "kmem_free", _km_intr("kmem_free")),
    ("kmem_alloc", "KM_SLEEP with no memory to be had", MemoryError, "kmem_alloc", _km_sleep_nomem),
    ("kmem_init", "before uvm_km_bootstrap (no kernel_map)", ValueError, "kmem_init", _km_no_map),
    ("kmem_zalloc", "size 0", ValueError, "kmem_alloc", _km_call("kmem_zalloc", 0, 2)),
    ("kmem_zalloc", "from an interrupt handler (use kmem_intr_zalloc)", ValueError, "kmem_alloc",
     _km_intr("kmem_zalloc")),
    ("kmem_intr_alloc", "flags both KM_SLEEP and KM_NOSLEEP", ValueError, "kmem_alloc",
     _km_call("kmem_intr_alloc", 8, 3)),
    ("kmem_intr_zalloc", "size 0", ValueError, "kmem_alloc", _km_call("kmem_intr_zalloc", 0, 2)),
    ("kmem_intr_free", "an address inside an item", ValueError, "kmem_free", _km_intr_free_inside),
    # extent
    ("extent_create", "end < start", ValueError, "extent_create",
     lambda: _m("extent").extent_create("x", 10, 5, None, 0, 0)),
    ("extent_alloc", "size 0", ValueError, "extent_alloc", _ex_alloc(0, 1, 0)),
    ("extent_alloc", "alignment not a power of two", ValueError, "extent_alloc", _ex_alloc(4, 3, 0)),
    ("extent_alloc", "boundary smaller than size", ValueError, "extent_alloc", _ex_alloc(16, 1, 8)),
    ("extent_alloc", "no space (EX_NOWAIT)", OSError, "extent_alloc", _ex_nospace),
    ("extent_alloc_subregion", "subend < substart", ValueError, "extent_alloc_subregion", _ex_sub_bad),
    ("extent_alloc_region", "range busy: names the owner", OSError, "extent_alloc_region", _ex_region_busy),
    ("extent_alloc_region", "range outside the extent", ValueError, "extent_alloc_region", _ex_outside),
    ("extent_free", "a range no region covers", ValueError, "extent_free", _ex_free_unclaimed),
    ("extent_free", "owner other than the claim's", ValueError, "extent_free", _ex_free_owner),
    ("extent_destroy", "an extent already destroyed", ValueError, "extent_destroy", _ex_dead("extent_destroy")),
    ("extent_regions", "a destroyed extent", ValueError, "extent_regions", _ex_dead("extent_regions")),
    ("extent_print", "something that is not an extent", ValueError, "extent_print",
     lambda: _m("extent").extent_print("ex")),
    # kmalloc
    ("MALLOC_DEFINE", "empty shortdesc", ValueError, "MALLOC_DEFINE", lambda: _m("kmalloc").MALLOC_DEFINE("")),
    ("MALLOC_DEFINE", "negative limit", ValueError, "MALLOC_DEFINE", lambda: _m("kmalloc").MALLOC_DEFINE("x", "", -1)),
    ("kmalloc", "flags with both M_WAITOK and M_RNOWAIT", ValueError, "kmalloc", _kmalloc_flags),
    ("kmalloc", "past the type's limit without M_NULLOK", RuntimeError, "kmalloc", _kmalloc_limit),
    ("kmalloc", "a destroyed type", ValueError, "kmalloc", _kmalloc_dead),
    ("kmalloc_destroy", "type with live allocations", ValueError, "kmalloc_destroy", _kmalloc_destroy_busy),
    ("kfree", "double free", ValueError, "kfree", _kfree("double")),
    ("kfree", "another malloc type", ValueError, "kfree", _kfree("type")),
    ("kfree", "NULL", ValueError, "kfree", _kfree("null")),
    ("kfree", "an address inside a block", ValueError, "kfree", _kfree("inside")),
    ("krealloc", "M_ZERO", ValueError, "krealloc", _krealloc_zero),
    ("kmalloc_create", "empty shortdesc", ValueError, "kmalloc_create", lambda: _m("kmalloc").kmalloc_create("")),
    ("kmalloc_limit", "a destroyed type", ValueError, "kmalloc_limit", _kmalloc_dead_call("kmalloc_limit")),
    ("kmalloc_raise_limit", "a destroyed type", ValueError, "kmalloc_raise_limit",
     _kmalloc_dead_call("kmalloc_raise_limit", 4096)),
    ("kstrdup", "a destroyed type", ValueError, "kstrdup", _kstrdup_dead),
    ("kmalloc_usable", "an address inside a block", ValueError, "kmalloc_usable", _kmalloc_usable_inside),
    # objcache
    ("objcache_get", "M_ZERO", ValueError, "objcache_get", _oc("zero")),
    ("objcache_get", "flags without M_WAITOK / M_NOWAIT", ValueError, "objcache_get", _oc("flags")),
    ("objcache_get", "after objcache_destroy", ValueError, "objcache_get", _oc("dead")),
    ("objcache_put", "None", ValueError, "objcache_put", _oc("none")),
    ("objcache_put", "double put (objcache_debug)", ValueError, "objcache_put", _oc_debug_double),
    ("objcache_create", "no alloc/free functions", ValueError, "objcache_create", _oc_create("noalloc")),
    ("objcache_create", "a negative cluster_limit", ValueError, "objcache_create", _oc_create("negative")),
    ("objcache_create_mbacked", "objsize 0", ValueError, "objcache_create_mbacked", _oc_mbacked(0, False)),
    ("objcache_create_mbacked", "a destroyed malloc type", ValueError, "objcache_create_mbacked", _oc_mbacked(16, True)),
    ("objcache_create_simple", "a destroyed malloc type", ValueError, "objcache_create_simple", _oc_simple_dead),
    ("objcache_dtor", "None", ValueError, "objcache_dtor", _oc_dtor_none),
    ("objcache_dtor", "after objcache_destroy", ValueError, "objcache_dtor", _oc_dead("objcache_dtor")),
    ("objcache_destroy", "objects still out", ValueError, "objcache_destroy", _oc_destroy_busy),
    ("objcache_destroy", "a cache already destroyed", ValueError, "objcache_destroy", _oc_dead("objcache_destroy")),
    ("objcache_reclaimlist", "from an interrupt handler", ValueError, "objcache_reclaimlist", _oc_reclaim_intr),
    ("objcache_malloc_alloc", "a destroyed malloc type (the back end's kmalloc)", ValueError, "kmalloc",
     _oc_malloc_alloc_dead),
    ("objcache_malloc_free", "double free (the back end's kfree)", ValueError, "kfree", _oc_malloc_free_double),
    # mpipe
    ("mpipe_init", "bytes 0", ValueError, "mpipe_init", _mp_init(0, 0)),
    ("mpipe_init", "unknown flags", ValueError, "mpipe_init", _mp_init(8, 0x80)),
    ("mpipe_free", "double free", ValueError, "mpipe_free", _mp("double")),
    ("mpipe_free", "a buffer not from this pipeline", ValueError, "mpipe_free", _mp("foreign")),
    ("mpipe_alloc_nowait", "after mpipe_done", ValueError, "mpipe_alloc_nowait", _mp("done")),
    ("mpipe_done", "buffers still out", ValueError, "mpipe_done", _mp("busy")),
    ("mpipe_alloc_waitok", "after mpipe_done", ValueError, "mpipe_alloc_waitok", _mp_waitok_done),
    # zone
    ("zinit", "unknown flags", ValueError, "zinit", _z_flags),
    ("zfree", "double free", ValueError, "zfree", _z("double")),
    ("zfree", "an address that is not an item", ValueError, "zfree", _z("foreign")),
    ("zalloc", "after zdestroy", ValueError, "zalloc", _z("dead")),
    ("zalloc", "growable zone from an interrupt handler", ValueError, "zalloc", _z_grow_intr),
    ("zdestroy", "zone without ZONE_DESTROYABLE", ValueError, "zdestroy", _z_nodestroy),
    ("zbootinit", "item size below the reserved bytes", ValueError, "zbootinit", _zboot("size")),
    ("zbootinit", "nitems 0", ValueError, "zbootinit", _zboot("nitems")),
    ("zbootinit", "z neither a vm_zone nor None", TypeError, "zbootinit", _zboot("z")),
    ("zbootinit", "a zone already initialised", ValueError, "zbootinit", _zboot("twice")),
    ("zinitna", "z not a vm_zone", TypeError, "zinitna", _zinitna("z")),
    ("zinitna", "size 0", ValueError, "zinitna", _zinitna("size")),
    ("zinitna", "ZONE_INTERRUPT with nentries 0", ValueError, "zinitna", _zinitna("nentries")),
    ("zbuf", "an address that is not an item", ValueError, "zbuf", _zbuf_foreign),
    # board
    ("use", "not a dict", ValueError, "board.use", _bd_use("rp2040")),
    ("use", "a profile without 'managed'", ValueError, "board.use", _bd_use({"name": "x"})),
    ("use", "managed without bytes (a positive size)", ValueError, "board.use",
     _bd_use({"name": "x", "managed": {"virtual_base": 0x10000000}})),
    ("startup", "a profile use() refuses", ValueError, "board.use",
     _bd(lambda B: B.startup({"name": "x", "managed": {"bytes": 0}}))),
    ("init", "board.json that is not valid JSON", ValueError, "board.init", _bd_json("init")),
    ("init", "no managed.virtual_base where the window is emulated (virtual board)", ValueError, "board.init",
     _bd(lambda B: _bd_init(B, {"name": "x", "managed": {"bytes": 4096}}))),
    ("detect", "board.json that is not valid JSON", ValueError, "board.init", _bd_json("detect")),
    ("claim", "an unknown peripheral name", ValueError, "claim", _bd_call("claim", "drv", "UART9")),
    ("claim", "a region another driver holds (names the owner; the holder keeps it)", OSError,
     "extent_alloc_region", _bd_owner_named("uart-a", _bd_claim_clash)),
    ("claim", "SRAM MicroPython itself uses (names owner 'micropython')", OSError, "extent_alloc_region",
     _bd_owner_named("micropython", lambda B: B.claim("drv", 0x20000000, 16))),
    ("claim", "the managed window (names owner 'mpalloc')", OSError, "extent_alloc_region",
     _bd_owner_named("mpalloc", lambda B: B.claim("drv", 0x20010000, 16))),
    ("claim", "an empty owner name", ValueError, "claim", _bd_call("claim", "", "UART0")),
    ("claim", "size 0", ValueError, "claim", _bd_call("claim", "drv", 0x40034000, 0)),
    ("claim", "base neither an int nor a peripheral name", ValueError, "claim", _bd_call("claim", "drv", 1.5, 4)),
    ("claim", "an address neither peripheral space nor SRAM", ValueError, "claim",
     _bd_call("claim", "drv", 0xF0000000, 16)),
    ("claim", "a hole between peripherals (names owner '(unmapped)')", OSError, "extent_alloc_region",
     _bd_owner_named("(unmapped)", lambda B: B.claim("drv", 0x40068000, 16))),
    ("claim", "a range in an alias (non-striped SRAM): never counted twice", ValueError, "claim",
     _bd_call("claim", "drv", 0x21000000, 16)),
    ("release", "by another than the owner (names the owner; the owner keeps it)", ValueError, "extent_free",
     _bd_owner_named("uart-a", _bd_release_other)),
    ("release", "a region never claimed", ValueError, "extent_free", _bd_call("release", "drv", "UART1")),
    ("release", "an unknown peripheral name", ValueError, "release", _bd_call("release", "drv", "UART9")),
    ("dma_alloc", "size 0", ValueError, "dma_alloc", _bd_call("dma_alloc", 0)),
    ("dma_alloc", "align not a power of two", ValueError, "dma_alloc", _bd_call("dma_alloc", 16, 3)),
    ("dma_alloc", "a negative align", ValueError, "dma_alloc", _bd_call("dma_alloc", 16, -4)),
    ("dma_alloc", "ring buffer size not a power of two", ValueError, "dma_alloc", _bd_call("dma_alloc", 12, ring=True)),
    ("dma_alloc", "ring buffer larger than the board's ring mode", ValueError, "dma_alloc",
     _bd_call("dma_alloc", 65536, ring=True)),
    ("dma_alloc", "ring=True on a board without DMA ring mode (esp32)", ValueError, "dma_alloc",
     _bd(lambda B: _bd_init(B, "esp32").dma_alloc(16, ring=True))),
    ("dma_alloc", "nocross not a power of two", ValueError, "dma_alloc", _bd_call("dma_alloc", 16, nocross=3)),
    ("dma_alloc", "nocross smaller than the size in pages", ValueError, "dma_alloc",
     _bd_call("dma_alloc", 1024, nocross=512)),
    ("dma_alloc", "the managed window outside DMA-capable memory", ValueError, "dma_alloc",
     _bd(lambda B: _bd_init(B, dma={"align": 4, "capable": ["ROM"]}).dma_alloc(16))),
    ("dma_free", "an address never allocated (the buffer is kept)", ValueError, "dma_free", _bd_dma_free("never")),
    ("dma_free", "another size than allocated (the buffer is kept)", ValueError, "dma_free", _bd_dma_free("size")),
    ("dma_free", "double free", ValueError, "dma_free", _bd_dma_free("double")),
    ("dma_free", "an address that is not an int", ValueError, "dma_free", _bd_dma_free("none")),
    ("dma_free", "before init() (nothing allocated yet)", ValueError, "dma_free", _bd(_bd_dma_free_before_init)),
    ("mem32", "on the unix port / virtual board (would map the host's /dev/mem)", OSError, "board.mem32",
     _bd(lambda B: _bd_init(B).mem32())),
]

# Public names that are not allocator functions (left out of the document).
UNCATALOGUED = {
    "const": "MicroPython's const() fallback on CPython, not an allocator function",
    "ticks_ms": "pool's CPython fallback for time.ticks_ms",
    "ticks_diff": "pool's CPython fallback for time.ticks_diff",
}

# Public functions with no misuse to catalogue, and why (listed in the document).
_SWITCH = "a debug switch: any value is read as true or false"
_GETTER = "a getter of counters or state: takes only an object of its module"
NOMISUSE = {
    "uvm_km_debug": _SWITCH,
    "uvm_km_stats": "a getter without arguments",
    "pool_debug": _SWITCH,
    "pool_nget": _GETTER,
    "pool_nput": _GETTER,
    "pool_stats": _GETTER,
    "pool_pages": _GETTER,
    "pool_paddr": "returns the address itself (no MMU): nothing to check beyond pool_put's checks",
    "pool_chk": "the invariant check itself: raises AssertionError when a pool is corrupt",
    "pool_cache_debug": _SWITCH,
    "pool_cache_pool": _GETTER,
    "pool_cache_nget": _GETTER,
    "pool_cache_nput": _GETTER,
    "pool_cache_stats": _GETTER,
    "pool_cache_cached": _GETTER,
    "native_path": "takes no argument: which hit pair is bound (issue 20)",
    "kmem_reset": "a test helper: forgets the caches; callable at any time",
    "kmem_debug": _SWITCH,
    "kmem_roundup_size": "pure arithmetic (the size rounded up to 8)",
    "kmem_stats": "a getter without arguments",
    "extent_debug": _SWITCH,
    "EXTENT_FIXED_STORAGE_SIZE": "pure arithmetic (bytes for n descriptors)",
    "vmem_roundup_size": "pure arithmetic (the size rounded up to the arena's quantum)",
    "vmem_debug": _SWITCH,
    "vmem_spans": _GETTER,
    "vmem_segments": _GETTER,
    "vmem_stats": _GETTER,
    "malloc_type_live": "a predicate: any value gives True or False",
    "kmalloc_stats": _GETTER,
    "objcache_debug": _SWITCH,
    "objcache_nop_alloc": "the null back end: returns None whatever it is given",
    "objcache_nop_free": "the null back end: does nothing whatever it is given",
    "objcache_stats": _GETTER,
    "mpipe_stats": _GETTER,
    "zone_debug": _SWITCH,
    "zone_stats": _GETTER,
    "booted": "a getter without arguments",
    "memory_map": "a getter without arguments (calls init() first if needed; init's misuse applies)",
}


def _params():
    # a 6th element names a bug reported and not fixed yet: strict xfail until it is
    return [pytest.param(c[:5], id="%s-%d" % (c[0], i),
                         marks=[pytest.mark.xfail(strict=True, reason=c[5])] if len(c) > 5 else [])
            for i, c in enumerate(CASES)]


@pytest.mark.parametrize("case", _params())
def test_misuse(case):
    fn, what, exc, start, call = case
    with pytest.raises(exc) as ei:
        call()
    # OSError(EAGAIN, ...) is BlockingIOError on CPython, OSError on MicroPython
    assert type(ei.value) is exc or exc is OSError, "%s: %s raised %r" % (fn, what, ei.value)
    msg = str(ei.value.args[1] if isinstance(ei.value, OSError) and len(ei.value.args) > 1 else ei.value)
    assert msg.startswith(start), "%s (%s): message %r does not start with %r" % (fn, what, msg, start)


def public_functions():
    import inspect

    out = []
    for m in MODULES:
        mod = _m(m)
        for n, v in vars(mod).items():
            if not n.startswith("_") and inspect.isfunction(v) and v.__module__ == mod.__name__:
                out.append((m, n))
    return out


def render():
    lines = [
        "# Misuse catalogue",
        "",
        "Every bad input the allocators refuse, with the exception and the start of its",
        "message (the function name, docs/DEVELOPING.md). Generated from",
        "`tests/host/allocators/test_misuse_catalogue.py` (CASES), where each row is a test; regenerate with",
        "`.venv/bin/python tests/host/allocators/test_misuse_catalogue.py --write`.",
        "",
        "On interrupt paths (heap locked) the same misuse raises a preallocated exception",
        "with the same type and message start; `tests/device/test_replay.py` checks that",
        "under `micropython.heap_lock` (pool_put, kmem_intr_free, kfree, kmalloc, zfree,",
        "zalloc, mpipe_free, objcache_get/put, vmem_free/xfree/alloc). Extent failures",
        "extent(9) reports with an errno are",
        "`OSError(errno, message)` (EAGAIN: no space or busy; ENOMEM: no descriptor).",
        "",
        "Hostile arguments (issue 16): every public function is also called with huge,",
        "negative, zero, float, str, bytes and None arguments by `firmware/mphostile.py`",
        "(`tests/host/allocators/test_fuzz_hostile.py`, `tests/device/test_hostile.py`): each call",
        "returns or raises an error naming the function, no lock stays held, and the",
        "allocator still works. Two documented exceptions (README, Reliability): the hit",
        "paths (vmem_alloc/free/xfree, pool_get/put, pool_cache_get/put, kmem_*alloc/free)",
        "leave a wrong *type* to the interpreter's own TypeError/AttributeError, raised",
        "before any lock or change; and a pool_cache put hit looks only at None and 0, so",
        "another bad object (a foreign address, a double put, a float) is named when the",
        "cache gives its objects back to the pool (pool_cache_invalidate, destroy), and",
        "counted in `pool_cache_stats(pc)[\"suspicious\"]`; debug mode names it at the put.",
        "",
    ]
    by = {}
    for c in CASES:
        by.setdefault(c[0], []).append(c)
    covered = set(by)
    for m in MODULES:
        fns = [n for mm, n in public_functions() if mm == m]
        rows = [c for f in fns for c in by.get(f, [])]
        rows += [c for c in CASES if c[0] not in fns and _module_of(c[0]) == m]
        lines.append("## %s" % m)
        lines.append("")
        if rows:
            lines.append("| function | misuse | exception | message starts |")
            lines.append("|---|---|---|---|")
            for c in rows:
                fn, what, exc, start = c[:4]
                if len(c) > 5:
                    what += " **(known bug, not refused yet: %s)**" % c[5]
                lines.append("| `%s` | %s | `%s` | `%s` |" % (fn, what, exc.__name__, start))
            lines.append("")
        none = [n for n in fns if n not in covered and n in NOMISUSE]
        if none:
            lines.append("No misuse to catalogue: " + "; ".join("`%s` (%s)" % (n, NOMISUSE[n]) for n in none) + ".")
            lines.append("")
        rest = [n for n in fns if n not in covered and n not in UNCATALOGUED and n not in NOMISUSE]
        if rest:
            lines.append("Not catalogued yet: " + ", ".join("`%s`" % n for n in rest) + ".")
            lines.append("")
    n = len(CASES)
    k = sum(1 for c in CASES if len(c) > 5)
    lines.append("%d misuse cases, each tested (%d of them known bugs, tested as expected failures); "
                 "%d functions with no misuse to catalogue." % (n, k, len(NOMISUSE)))
    return "\n".join(lines) + "\n"


def _module_of(fn):
    for m, n in public_functions():
        if n == fn:
            return m
    return None


def test_catalogue_is_current():
    with open(DOC) as f:
        assert f.read() == render(), "docs/MISUSE.md is stale: python tests/host/allocators/test_misuse_catalogue.py --write"


def test_every_catalogued_function_exists():
    names = {n for _, n in public_functions()}
    for c in CASES:
        assert c[0] in names, c[0]
    for n in NOMISUSE:
        assert n in names, n
        assert n not in {c[0] for c in CASES}, "%s: both catalogued and 'no misuse'" % n


if __name__ == "__main__":
    if "--write" in sys.argv:
        with open(DOC, "w") as f:
            f.write(render())
    else:
        sys.stdout.write(render())
