# pool(9) get/put under micropython.heap_lock(), sized to run on the micro:bit
# (qemu:microbit-frozen: MicroPython 1.9.2 with intr, mem, pool frozen as
# bytecode in flash, host_tools/mpalloc_host/flash/microbit_frozen.py). The same two properties as in
# test_pool, on a window of 8 pages of 64 bytes so the suite and what it reaches
# fit the micro:bit's 10 KB heap next to the harness. The heap-locked loops sit
# in the test functions themselves (not in mptest.heap_locked(fn)): the
# micro:bit's 2 KB C stack holds only about six nested Python calls, and
# pool_get/pool_put need three of them (adding a page, four: pools are primed).
# Run directly: MICROPYPATH=firmware .venv/bin/micropython tests/device/test_pool_heaplock.py
from mptest import Suite, check_msg, eq
from mptest_pages import page_alloc, page_free, pages_reset

from mpalloc import mem, intr, pool

try:
    import micropython
except ImportError:  # CPython: no heap lock, the loops just run
    micropython = None

s = Suite("pool_heaplock", needs=("heap:4000",))

_BASE = 0x20002000
_PS = 64
_held = [0] * 16


def _setup(npages):
    # inline, not mptest_pages.pool_window: one call level less on the micro:bit
    intr.setup(1)
    mem.attach(_BASE, bytearray(npages * _PS))
    pages_reset(_BASE, _PS, npages)
    return pool.pool_allocator(page_alloc, page_free, _PS)


def _lock():
    if micropython:
        micropython.heap_lock()


def _unlock():
    if micropython:
        micropython.heap_unlock()


@s.test
def get_put_heap_locked():
    pp = pool.pool_init(12, 4, 0, 0, "p12", _setup(8), pool.IPL_VM)
    pool.pool_prime(pp, 16)
    for i in range(16):
        _held[i] = pool.pool_get(pp, 2)
    for i in range(16):
        pool.pool_put(pp, _held[i])
        _held[i] = None
    err = None
    _lock()
    try:
        # 16 pool_get(PR_NOWAIT) then 16 pool_put: must not allocate
        for i in range(16):
            _held[i] = pool.pool_get(pp, 2)
        for i in range(16):
            pool.pool_put(pp, _held[i])
    except MemoryError as e:
        err = e
    finally:
        _unlock()
    if err is not None:
        raise AssertionError("pool_get/pool_put allocated from the heap under heap_lock")
    for i in range(16):
        if _held[i] is None:
            raise AssertionError("pool_get(PR_NOWAIT) failed under heap_lock")
        for j in range(i):
            if _held[i] == _held[j]:
                raise AssertionError("pool_get returned 0x%x twice" % _held[i])
    eq(pp.nout, 0, "nout")  # not pool_stats: its code would not fit the frozen build's flash
    pool.pool_destroy(pp)


@s.test
def double_put_heap_locked():
    pp = pool.pool_init(12, 4, 0, 0, "p12", _setup(4), pool.IPL_VM)
    pool.pool_prime(pp, 1)  # a page now: pool_get's page-adding path nests too deep for the micro:bit
    a = pool.pool_get(pp, pool.PR_NOWAIT)
    pool.pool_put(pp, a)
    e = None
    try:  # inline, not mptest.raises(): one call level less (the C stack)
        pool.pool_put(pp, a)
    except ValueError as x:
        e = x
    if e is None:
        raise AssertionError("pool_put: double put not detected")
    check_msg(e, "pool_put", "double put")

    e = None
    _lock()
    try:
        pool.pool_put(pp, a)
    except ValueError as x:
        e = x
    finally:
        _unlock()
    if e is not pool.E_PUT_INTR or pool.pool_lasterr[0] != a:
        raise AssertionError("no preallocated error under heap lock")


s.run()
