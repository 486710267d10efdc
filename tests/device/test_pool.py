# pool(9) and pool_cache(9) on the board: zero heap allocation on the hot paths,
# misuse, Bonwick's depot bound. Pages come from a palloc over a bytearray
# window of this suite (no vmem/uvm_km needed), so it also fits small boards.
# Run directly: MICROPYPATH=firmware .venv/bin/micropython -X heapsize=192K tests/device/test_pool.py
from mptest import Suite, raises, heap_locked, check_msg, eq
from mptest_pages import pool_window

from mpalloc import mem, intr, pool

s = Suite("pool", needs=("heap:6000",))

_BASE = 0x20002000
_PS = 64


def _setup(npages):
    intr.setup(1)
    return pool_window(mem, pool.pool_allocator, _BASE, _PS, npages)


_held = [0] * 16


def _churn(pp):
    # 16 gets then 16 puts, PR_NOWAIT: must not allocate
    for i in range(16):
        _held[i] = pool.pool_get(pp, 2)
    for i in range(16):
        pool.pool_put(pp, _held[i])
    return 0


@s.test
def get_put_heap_locked():
    pp = pool.pool_init(12, 4, 0, 0, "p12", _setup(16), pool.IPL_VM)
    pool.pool_prime(pp, 16)
    _churn(pp)
    heap_locked(_churn, pp)
    for i in range(16):
        if _held[i] is None:
            raise AssertionError("pool_get failed")
    eq(pool.pool_stats(pp)["nout"], 0, "nout")
    pool.pool_destroy(pp)


@s.test
def double_put_heap_locked():
    pp = pool.pool_init(12, 4, 0, 0, "p12", _setup(4), pool.IPL_VM)
    a = pool.pool_get(pp, pool.PR_NOWAIT)
    pool.pool_put(pp, a)
    e = raises(ValueError, pool.pool_put, pp, a)
    check_msg(e, "pool_put", "double put")

    def f(x):
        try:
            pool.pool_put(pp, x)
        except ValueError as e:
            return e
        return None

    e = heap_locked(f, a)
    if e is not pool.E_PUT_INTR or pool.pool_lasterr[0] != a:
        raise AssertionError("no preallocated error under heap lock")


@s.test
def foreign_put():
    pp = pool.pool_init(12, 4, 0, 0, "p12", _setup(4), pool.IPL_VM)
    pool.pool_get(pp, pool.PR_NOWAIT)
    check_msg(raises(ValueError, pool.pool_put, pp, 3), "pool_put", "not an item")


@s.test
def hard_limit():
    pp = pool.pool_init(12, 4, 0, 0, "p12", _setup(8), pool.IPL_VM)
    pool.pool_sethardlimit(pp, 5, None, 0)
    n = 0
    while pool.pool_get(pp, pool.PR_NOWAIT) is not None:
        n += 1
    eq(n, 5, "items under the hard limit")
    eq(pool.pool_stats(pp)["nfail"], 1, "nfail")


@s.test
def pool_cache_heap_locked_and_depot_bound():
    try:
        from mpalloc import pool_cache as PC
    except MemoryError:
        from mptest import skip

        skip("pool_cache does not fit this heap")
    pc = PC.pool_cache_init(16, 4, 0, 0, "c16", _setup(32), pool.IPL_VM, None, None, None)

    def thrash(n):
        for i in range(n):
            a = PC.pool_cache_get(pc, 2)
            b = PC.pool_cache_get(pc, 2)
            PC.pool_cache_put(pc, a)
            PC.pool_cache_put(pc, b)
        return 0

    for i in range(40):
        _held[i % 16] = PC.pool_cache_get(pc, 2)
        if i % 16 == 15:
            for j in range(16):
                PC.pool_cache_put(pc, _held[j])
    for j in range(8):
        PC.pool_cache_put(pc, _held[j])
    thrash(10)
    st0 = PC.pool_cache_stats(pc)["depot"]
    heap_locked(thrash, 500)
    st = PC.pool_cache_stats(pc)
    d = st["depot"]["gets"] + st["depot"]["puts"] - st0["gets"] - st0["puts"]
    s.metric("pool_cache_heap_locked_and_depot_bound", "depot_per_op", d / 2000)
    if d > 2000 // st["magsize"] + 1:
        raise AssertionError("depot reached %d times in 2000 ops" % d)
    PC.pool_cache_destroy(pc)


s.run()
