"""The debug switches of uvm_km, pool, pool_cache and kmem (mpalloc.debug.on()):
each check finds what it is for, and off() leaves the plain paths.

The misuse a debug check refuses is in the catalogue (test_misuse_catalogue.py); here
are the corruption reports (state broken behind the allocator's back) and the
switching itself. Heap-locked behaviour is checked on the board by
tests/device/test_replay.py (debug_checks_locked).
"""
import os

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

import mpfuzz  # noqa: E402
from mpalloc import debug, intr, mem  # noqa: E402

pytestmark = pytest.mark.fuzz


@pytest.fixture
def dbg():
    debug.on()
    try:
        yield
    finally:
        debug.off()


def test_off_leaves_the_plain_functions():
    from mpalloc import pool, pool_cache

    debug.on()
    assert pool.pool_get is pool._dbg_get and pool_cache.pool_cache_get is pool_cache._dbg_get
    debug.off()
    assert pool.pool_get is pool._pool_get and pool.pool_put is pool._pool_put
    assert pool_cache.pool_cache_get is pool_cache._pc_get and pool_cache.pool_cache_put is pool_cache._pc_put


def test_pool_cache_back_end_follows_the_pool_switch():
    from mpalloc import pool, pool_cache

    mpfuzz._window(16384, 256)
    c = pool_cache.pool_cache_init(32, 8, 0, 0, "follow", None, pool.IPL_VM, None, None, None)
    d = c[pool_cache._META]
    assert d.pget is pool._pool_get
    debug.on()
    try:
        assert d.pget is pool._dbg_get and d.pput is pool._dbg_put
    finally:
        debug.off()
    assert d.pget is pool._pool_get and d.pput is pool._pool_put
    pool_cache.pool_cache_destroy(c)


def test_kmem_reset_keeps_what_mpalloc_debug_says():
    from mpalloc import kmem

    mpfuzz._window(16384, 256)
    assert not kmem.kmem_stats()["debug"]
    debug.on()
    try:
        mpfuzz._window(16384, 256)  # uvm_km_bootstrap + kmem_reset: no re-arming
        assert kmem.kmem_stats()["debug"]
    finally:
        debug.off()
    mpfuzz._window(16384, 256)
    assert not kmem.kmem_stats()["debug"]


def test_uvm_km_debug_finds_a_broken_page_record(dbg):
    U = mpfuzz._window(16384, 256)
    a = U.uvm_km_alloc(U.kernel_map, 1024, 0, U.UVM_KMF_WIRED)
    mi = U._maps[id(U.kernel_map)]
    p = (a - mi.lo) // 256
    mi.rec[p + 1] = mi.rec[p]  # a record starting inside another allocation
    with pytest.raises(AssertionError, match=r"^uvm_km: map 'kernel_map': page record at 0x%x broken" % a):
        U.uvm_km_alloc(U.kernel_map, 256, 0, U.UVM_KMF_WIRED)
    mi.rec[p + 1] = 0
    U.uvm_km_free(U.kernel_map, a, 1024, U.UVM_KMF_WIRED)  # the lock was given back


def test_pool_debug_finds_a_broken_page(dbg):
    from mpalloc import pool as P

    intr.setup(1)
    mpfuzz._attach(4096)
    pp = P.pool_init(32, 8, 0, 0, "chk", mpfuzz._Pages(256, 8).palloc, P.IPL_VM)
    a = P.pool_get(pp, P.PR_NOWAIT)
    sl = P._slot_of(pp, a)
    pp.pg_nused[sl] += 1  # the page's count no longer matches its bitmap
    with pytest.raises(AssertionError, match=r"^pool_chk: pool 'chk', page of 0x[0-9a-f]+: invariant 1 broken"):
        P.pool_get(pp, P.PR_NOWAIT)
    pp.pg_nused[sl] -= 1
    P.pool_put(pp, a)  # the lock was given back
    P.pool_chk(pp)


def test_pool_debug_poisons_and_zero_still_zeroes(dbg):
    from mpalloc import pool as P

    intr.setup(1)
    mpfuzz._attach(4096)
    pp = P.pool_init(32, 8, 0, 0, "poison", mpfuzz._Pages(256, 8).palloc, P.IPL_VM)
    a = P.pool_get(pp, P.PR_NOWAIT)
    P.pool_put(pp, a)
    assert bytes(mem.buf(a, 32)) == b"\xd5" * 32
    b = P.pool_get(pp, P.PR_NOWAIT | P.PR_ZERO)
    assert b == a and bytes(mem.buf(b, 32)) == bytes(32)
    P.pool_put(pp, b)


def test_pool_cache_debug_finds_a_duplicate_in_a_magazine(dbg):
    from mpalloc import pool as P
    from mpalloc import pool_cache as PC

    intr.setup(1)
    mpfuzz._attach(4096)
    c = PC.pool_cache_init(32, 8, 0, 0, "dup", mpfuzz._Pages(256, 8).palloc, P.IPL_VM, None, None, None)
    o = PC.pool_cache_get(c, P.PR_NOWAIT)
    q = PC.pool_cache_get(c, P.PR_NOWAIT)
    PC.pool_cache_put(c, o)
    PC.pool_cache_put(c, q)
    mag = c[0]
    mag[mag[0]] = o  # corruption: o twice in the loaded magazine (q lost; objects at mag[1 .. n])
    with pytest.raises(ValueError, match=r"^pool_cache_get: cache 'dup' handed out 0x%x, which is still in a magazine"
                       % o):
        PC.pool_cache_get(c, P.PR_NOWAIT)


def test_kmem_debug_items_up_to_1024_have_a_redzone(dbg):
    from mpalloc import kmem

    mpfuzz._window(32768, 256)
    p = kmem.kmem_alloc(1020, kmem.KM_NOSLEEP)
    names = [c["cache"] for c in kmem.kmem_stats()["classes"]]
    assert "kmem-dbg-01360" in names
    assert kmem.kmem_stats()["large"]["nalloc"] == 0
    mem.buf(p, 1021)[1020] = 0
    with pytest.raises(ValueError, match=r"redzone overwritten at 0x%x \(overflow; class kmem-01360\)" % (p + 1020)):
        kmem.kmem_free(p, 1020)
