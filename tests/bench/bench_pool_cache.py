# Benchmark: pool_cache / pool / kmem hot paths in units of an empty call (cu).
#
#   MICROPYPATH=firmware .venv/bin/micropython tests/bench/bench_pool_cache.py [up|thread|both]
#
# Prints "@@bench <name> <value>" lines. cu = time of one call of an empty
# two-argument function, measured in the same run (best of several batches).
import sys
import gc

try:
    from time import ticks_us, ticks_diff
except ImportError:  # CPython
    import time

    def ticks_us():
        return int(time.perf_counter() * 1000000)

    def ticks_diff(a, b):
        return a - b


from mpalloc import mem, intr, pool
from mpalloc import pool_cache as PC

N = 20000
REPS = 15


def _empty(a, b):
    pass


def _once(f, arg):
    t0 = ticks_us()
    f(arg)
    return ticks_diff(ticks_us(), t0)


def _best(f, arg):
    best = None
    for _ in range(REPS):
        t = _once(f, arg)
        if best is None or t < best:
            best = t
    return best


def ratio(f, arg, per):
    """Median over REPS rounds of (f's time - empty loop) / (empty call - empty loop) / per.

    Each round measures the loop, the call and f back to back, so a machine
    whose speed drifts (other jobs) affects numerator and denominator alike.
    """
    rs = []
    for _ in range(REPS):
        e = _once(l_empty, 0)
        c = _once(l_call, 0) - e
        t = _once(f, arg) - e
        e2 = _once(l_empty, 0)
        c2 = _once(l_call, 0) - e2
        rs.append(t / ((c + c2) / 2) / per)
    rs.sort()
    return rs[len(rs) // 2]


def l_empty(x):
    for _ in range(N):
        pass


def l_call(x):
    f = _empty
    for _ in range(N):
        f(x, 2)


def l_pc(pc):
    g = PC.pool_cache_get
    p = PC.pool_cache_put
    for _ in range(N):
        p(pc, g(pc, 2))


def l_pool(pp):
    g = pool.pool_get
    p = pool.pool_put
    for _ in range(N):
        p(pp, g(pp, 2))


def cu():
    e = _best(l_empty, 0)
    return e, _best(l_call, 0) - e


def report(name, v):
    print("@@bench %s %s" % (name, v))


def setup_mem():
    base = 0x10000000
    mem.attach(base, bytearray(65536))
    free = list(range(255, -1, -1))

    def pa_alloc(pp, flags):
        return base + free.pop() * 256 if free else None

    def pa_free(pp, a):
        free.append((a - base) // 256)

    return pool.pool_allocator(pa_alloc, pa_free, 256)


def heap_per_op(f, arg, nops):
    gc.collect()
    gc.disable()
    try:
        a0 = gc.mem_alloc()
        f(arg)
        a1 = gc.mem_alloc()
    finally:
        gc.enable()
    return (a1 - a0) / nops


def run(mode_name):
    if mode_name == "thread":
        intr.setup(2, intr.MODE_THREAD)
    else:
        intr.setup(1, intr.MODE_UP)
    palloc = setup_mem()
    pc = PC.pool_cache_init(32, 8, 0, 0, "bench32", palloc, pool.IPL_VM, None, None, None)
    pp = pool.pool_init(32, 8, 0, 0, "benchpool", palloc, pool.IPL_VM)
    l_pc(pc)
    l_pool(pp)
    e0, c0 = cu()
    report("%s.cu_ns" % mode_name, "%.1f" % (c0 * 1000 / N))
    report("%s.pool_cache_hit_cu_per_op" % mode_name, "%.2f" % ratio(l_pc, pc, 2))
    report("%s.pool_get_put_cu_per_op" % mode_name, "%.2f" % ratio(l_pool, pp, 2))
    try:
        report("%s.pool_cache_heap_bytes_per_op" % mode_name, "%.3f" % heap_per_op(l_pc, pc, 2 * N))
        report("%s.pool_heap_bytes_per_op" % mode_name, "%.3f" % heap_per_op(l_pool, pp, 2 * N))
    except AttributeError:
        pass
    st = PC.pool_cache_stats(pc)
    ops = 0
    hits = 0
    for x in st["cpus"]:
        ops += x["nget"] + x["nput"]
        hits += x["hits"]
    report("%s.pool_cache_hit_rate" % mode_name, "%.5f" % (hits / ops))
    PC.pool_cache_destroy(pc)
    pool.pool_destroy(pp)


modes = sys.argv[1:] or ["both"]
if modes[0] == "both":
    modes = ["up", "thread"]
for m in modes:
    run(m)
intr.setup(1)
