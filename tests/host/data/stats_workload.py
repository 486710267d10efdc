# A fixed workload whose statistics are known exactly (tests/host/tools/test_stats.py).
# Runs on CPython (firmware on sys.path) and on the unix MicroPython port.
from mpalloc import mem, intr, pool, pool_cache, extent, stats

mem.attach(0x20010000, bytearray(32 * 256))
_free_pages = [0x20010000 + i * 256 for i in range(32)]


def _pa(pp, flags):
    if not _free_pages:
        return None
    return _free_pages.pop(0)


def _pf(pp, a):
    _free_pages.insert(0, a)


A = pool.pool_allocator(_pa, _pf, 256)

# pool "pktbuf": 64-byte items, 3 a page (256 - align 3 slack) -> 10 gets take 4 pages
pp = pool.pool_init(64, 4, 0, 0, "pktbuf", A, pool.IPL_VM)
items = [pool.pool_get(pp, pool.PR_NOWAIT) for _ in range(10)]
for a in items[:8]:
    pool.pool_put(pp, a)
pool.pool_reclaim(pp)  # the pages left empty go back: 4 requested, 2 kept

# pool "unused": never asked for an item (vmstat -m hides it unless -v)
pool.pool_init(32, 4, 0, 0, "unused", A, pool.IPL_VM)

# pool cache "rxbuf": 7 gets, 7 puts, then 7 gets again on one CPU
pc = pool_cache.pool_cache_init(48, 4, 0, 0, "rxbuf", A, pool.IPL_VM, None, None, None)
objs = [pool_cache.pool_cache_get(pc, pool.PR_NOWAIT) for _ in range(7)]
for o in objs:
    pool_cache.pool_cache_put(pc, o)
objs = [pool_cache.pool_cache_get(pc, pool.PR_NOWAIT) for _ in range(7)]

# extent "periph" with two owners
ex = extent.extent_create("periph", 0x40000000, 0x4FFFFFFF, None, 0, extent.EX_NOWAIT)
extent.extent_alloc_region(ex, 0x40034000, 0x4000, extent.EX_NOWAIT, owner="uart0")
extent.extent_alloc_region(ex, 0x40050000, 0x1000, extent.EX_NOWAIT, owner="pwm")

stats.dump()
