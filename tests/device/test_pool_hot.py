# pool(9) / pool_cache(9) hot paths beyond the basics of test_pool.py (kept
# apart so that suite still fits the micro:bit): no call frame from the heap
# on the hot paths (micropython.mem_total), a pool growing by a page with the
# heap locked (as from a hard interrupt handler), and pool_cache_prime leaving
# magazines for a CPU whose first operations come from a handler.
# Run directly: MICROPYPATH=firmware .venv/bin/micropython -X heapsize=192K tests/device/test_pool_hot.py
from mptest import Suite, heap_locked, eq
from mptest_pages import page_free, pool_window

from mpalloc import mem, intr, pool

s = Suite("pool_hot", needs=("heap:30000",))

_BASE = 0x20002000
_PS = 64
_held = [0] * 16


def _setup(npages):
    intr.setup(1)
    return pool_window(mem, pool.pool_allocator, _BASE, _PS, npages)


_next = [0, 0]  # a page source for the heap-locked growth test: next page, pages


def _pa_next(pp, flags):
    # pages in order, no list operation (pop() may shrink a list: not under the lock)
    if _next[0] >= _next[1]:
        return None
    _next[0] += 1
    return _BASE + (_next[0] - 1) * _PS


@s.test
def pool_grows_heap_locked():
    # pool_get from a handler (heap locked) grows the pool by a page when
    # palloc can give one without the heap: the page slot and the page lookup
    # were made ready beforehand.
    _setup(8)
    _next[0] = 0
    _next[1] = 8
    pp = pool.pool_init(12, 4, 0, 0, "p12g", pool.pool_allocator(_pa_next, page_free, _PS), pool.IPL_VM)

    def grow(n):
        for i in range(n):
            _held[i] = pool.pool_get(pp, pool.PR_NOWAIT)
        return 0

    ipp = pool.pool_stats(pp)["itemsperpage"]
    heap_locked(grow, 2 * ipp)  # two pages (the slots pool_init made), added with the heap locked
    st = pool.pool_stats(pp)
    eq(st["npages"], 2, "pages added under the heap lock")
    eq(st["nfail"], 0, "nfail")
    for i in range(2 * ipp):
        if _held[i] is None:
            raise AssertionError("pool_get under the heap lock returned None")
        pool.pool_put(pp, _held[i])
    pool.pool_chk(pp)


@s.test
def pool_cache_primed_for_handlers():
    # A CPU whose first puts come from a handler (heap locked: no magazine can
    # be made) finds the magazines pool_cache_prime left in the depot: its
    # gets and puts are magazine hits, not misses.
    from mpalloc import pool_cache as PC

    pc = PC.pool_cache_init(16, 4, 0, 0, "c16h", _setup(16), pool.IPL_VM, None, None, None)
    PC.pool_cache_prime(pc, 8)

    def irq(n):
        for i in range(n):
            a = PC.pool_cache_get(pc, 2)
            b = PC.pool_cache_get(pc, 2)
            PC.pool_cache_put(pc, a)
            PC.pool_cache_put(pc, b)
        return 0

    heap_locked(irq, 50)
    c = PC.pool_cache_stats(pc)["cpus"][0]
    s.metric("pool_cache_primed_for_handlers", "hits", c["hits"])
    s.metric("pool_cache_primed_for_handlers", "misses", c["misses"])
    eq(c["nfail"], 0, "nfail")
    if c["misses"] > 2:
        raise AssertionError("%d misses in 200 heap-locked operations (magazines missing)" % c["misses"])
    PC.pool_cache_destroy(pc)


@s.test
def hot_paths_no_heap_frames():
    # micropython.mem_total() counts every heap allocation, also a call frame
    # the VM takes from the heap (and frees at once) when a function's state
    # exceeds 11 words; heap_lock hides that (the VM falls back to the C
    # stack). The hot paths must not do it: 0 bytes per operation.
    try:
        import micropython

        mt = micropython.mem_total
    except (ImportError, AttributeError):
        from mptest import skip

        skip("no micropython.mem_total on this port")
    from mpalloc import pool_cache as PC

    pa = _setup(32)
    pp = pool.pool_init(12, 4, 0, 0, "p12f", pa, pool.IPL_VM)
    pc = PC.pool_cache_init(16, 4, 0, 0, "c16f", pa, pool.IPL_VM, None, None, None)

    def pool_ops(n):
        g = pool.pool_get
        p = pool.pool_put
        for i in range(n):
            p(pp, g(pp, 2))

    def cache_ops(n):
        # bursts of 20 gets then 20 puts: magazine hits, swaps and depot trades
        g = PC.pool_cache_get
        p = PC.pool_cache_put
        for i in range(n):
            for j in range(16):
                _held[j] = g(pc, 2)
            for j in range(16):
                p(pc, _held[j])

    for f, n, what in ((pool_ops, 200, "pool_get/pool_put"), (cache_ops, 20, "pool_cache_get/put")):
        f(n)  # pages, magazines and depot slots made first
        m0 = mt()
        f(n)
        m1 = mt()
        f(2 * n)
        m2 = mt()
        # the second run does n more rounds: what it takes beyond the first
        # is what n rounds take (the call of f itself cancels out)
        eq((m2 - m1) - (m1 - m0), 0, "heap bytes over %d rounds of %s" % (n, what))
    PC.pool_cache_destroy(pc)


s.run()
