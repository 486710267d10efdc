# Workload 1, fixed-size churn: pool_get/put, pool_cache_get/put (magazine hits,
# two gets then two puts, bursts of k), kmem_alloc/free of small sizes.
#
#   MICROPYPATH=firmware:tests/bench .venv/bin/micropython -X heapsize=233024 tests/bench/bench_fixed.py [quick=1] [modes=up,thread] [part=all|pool|kmem|waste]
#
# Per pattern: cost in cu per operation (get or put), MicroPython heap bytes per
# operation, whether it runs with the heap locked, depot accesses per operation
# (pool_cache: depot exchanges + misses that looked in the depot) against 1/M.
# Memory (issue #4): the heap a pool keeps per item and per page, and kmem's
# internal waste on uniformly random sizes of 1 to 1024 bytes.
# (Merged from the earlier bench_pool_cache.py.)
from benchcore import *  # noqa: F401,F403

_backing = [bytearray(65536)]  # the managed window's bytes, before anything fragments the heap

from mpalloc import mem, intr, pool  # noqa: E402
from mpalloc import pool_cache as PC
try:
    from mpalloc import native as NATIVE  # issue 20: native/bytecode switch
except ImportError:  # firmware before issue 20
    NATIVE = None

A = bench_args(globals())
QUICK = A.get("quick", 0)
REPS = 5 if QUICK else 61
TARGET = 2000
G = pool.PR_NOWAIT


def l_pc(pc, n):
    g = PC.pool_cache_get
    p = PC.pool_cache_put
    for _ in range(n):
        p(pc, g(pc, 2))


def l_pc22(pc, n):
    g = PC.pool_cache_get
    p = PC.pool_cache_put
    for _ in range(n):
        a = g(pc, 2)
        b = g(pc, 2)
        p(pc, a)
        p(pc, b)


def l_ba64(arg, n):
    # MicroPython's own allocator, the peer a pool_cache hit is weighed against
    for _ in range(n):
        bytearray(64)


def l_pool(pp, n):
    g = pool.pool_get
    p = pool.pool_put
    for _ in range(n):
        p(pp, g(pp, 2))


def l_cpu(arg, n):
    # MODE_THREAD's CPU lookup as the hit path does it (the stand-in for a
    # CPUID register read)
    f = PC._cpuget
    i = PC._ident
    for _ in range(n):
        f(i(), 0) & 0xFF


def l_lock(m, n):
    # the per-CPU magazine lock pair (the stand-in for disable_irq/enable_irq)
    for _ in range(n):
        m.acquire()
        m.release()


class Burst:
    def __init__(self, pc, k):
        self.pc = pc
        self.k = k
        self.tmp = [0] * k


def l_burst(s, n):
    g = PC.pool_cache_get
    p = PC.pool_cache_put
    pc = s.pc
    k = s.k
    tmp = s.tmp
    for _ in range(n):
        for i in range(k):
            tmp[i] = g(pc, 2)
        for i in range(k):
            p(pc, tmp[i])


def l_burst_base(s, n):
    k = s.k
    tmp = s.tmp
    for _ in range(n):
        for i in range(k):
            tmp[i] = i
        for i in range(k):
            tmp[i]


class KM:
    def __init__(self, size):
        self.size = size


def l_kmem(s, n):
    al = kmem.kmem_alloc
    fr = kmem.kmem_free
    z = s.size
    for _ in range(n):
        fr(al(z, 2), z)


def l_kmem_base(s, n):
    z = s.size
    for _ in range(n):
        z


def backing():
    return _backing[0]


def setup_mem():
    base = 0x20010000
    mem.attach(base, backing())
    free = list(range(255, -1, -1))

    def pa_alloc(pp, flags):
        return base + free.pop() * 256 if free else None

    def pa_free(pp, a):
        free.append((a - base) // 256)

    return pool.pool_allocator(pa_alloc, pa_free, 256)


def depot_count(pc):
    st = PC.pool_cache_stats(pc)
    d = st["depot"]
    m = 0
    for c in st["cpus"]:
        m += c["misses"]
    return d["gets"] + d["puts"] + m


def measure(key, f, arg, per, base=None):
    n = pick_n(f, arg, TARGET)
    emit_costs(key, costs(f, arg, n, per, REPS, base))
    emit_heap(key, f, arg, min(n, 2000), per * min(n, 2000))


def depot_rate(key, f, pc, arg, per):
    f(arg, 50)  # steady state first
    d0 = depot_count(pc)
    n = 200
    f(arg, n)
    emit(key + ".depot_per_op", (depot_count(pc) - d0) / (per * n))


def run(mode):
    if mode == "thread":
        intr.setup(2, intr.MODE_THREAD)
    else:
        intr.setup(1, intr.MODE_UP)
    palloc = setup_mem()
    pc = PC.pool_cache_init(32, 8, 0, 0, "bench32", palloc, pool.IPL_VM, None, None, None)
    pp = pool.pool_init(32, 8, 0, 0, "benchpool", palloc, pool.IPL_VM)
    M = PC.pool_cache_stats(pc)["magsize"]
    emit("%s.magsize" % mode, M)
    measure("%s.pool_cache_hit" % mode, l_pc, pc, 2)
    depot_rate("%s.pool_cache_hit" % mode, l_pc, pc, pc, 2)
    # issue 20: which path that was, the other path in the same run, and bytearray(64)
    emit("%s.pool_cache_path" % mode, PC.native_path() if hasattr(PC, "native_path") else "bytecode")
    if NATIVE is not None:
        NATIVE.off()
        measure("%s.pool_cache_hit_bytecode" % mode, l_pc, pc, 2)
        NATIVE.on()
    n = pick_n(l_ba64, None, TARGET)
    emit_costs("%s.bytearray64" % mode, costs(l_ba64, None, n, 1, REPS))
    measure("%s.pool_cache_2get2put" % mode, l_pc22, pc, 4)
    depot_rate("%s.pool_cache_2get2put" % mode, l_pc22, pc, pc, 4)
    measure("%s.pool_get_put" % mode, l_pool, pp, 2)
    emit("%s.pool_path" % mode, pool.native_path() if hasattr(pool, "native_path") else "bytecode")
    if NATIVE is not None and hasattr(pool, "native_path"):
        NATIVE.off()
        measure("%s.pool_get_put_bytecode" % mode, l_pool, pp, 2)
        NATIVE.on()
    worst = 0
    for k in (1, 2, M - 1, M, M + 1, 2 * M, 4 * M):
        s = Burst(pc, k)
        key = "%s.burst_k%d" % (mode, k)
        depot_rate(key, l_burst, pc, s, 2 * k)
        if mode == "up" and k in (M, 4 * M):
            n = pick_n(l_burst, s, TARGET)
            emit_costs(key, costs(l_burst, s, n, 2 * k, REPS, l_burst_base))
        if k == 4 * M:
            emit_heap(key, l_burst, s, 50, 2 * k * 50)
    emit("%s.depot_bound" % mode, 1 / M)
    if mode == "thread":  # what of the hit is the emulation's: one of each per get or put
        measure("thread.floor_cpu_lookup", l_cpu, None, 1)
        measure("thread.floor_lock_pair", l_lock, PC._cl[0], 1)
    PC.pool_cache_destroy(pc)
    pool.pool_destroy(pp)


def kmem_setup():
    intr.setup(1, intr.MODE_UP)
    global kmem
    try:
        from mpalloc import uvm_km
        from mpalloc import kmem
        base = 0x20010000
        mem.attach(base, backing())
        uvm_km.uvm_km_bootstrap(base, 65536, 256)
        kmem.kmem_init()
    except Exception as e:  # vmem not there yet, ...
        emit("kmem.error", repr(type(e).__name__ + ":" + str(e)).replace(" ", "_")[:80])
        return False
    return True


def run_kmem():
    if not kmem_setup():
        return
    for z in (16, 64, 256, 1024):
        s = KM(z)
        key = "kmem.s%d" % z
        l_kmem(s, 100)
        n = pick_n(l_kmem, s, TARGET)
        emit_costs(key, costs(l_kmem, s, n, 2, REPS, l_kmem_base))
        emit_heap(key, l_kmem, s, min(n, 2000), 2 * min(n, 2000))


def _garbage():
    x = bytearray(8192)
    return len(x)


def collects():
    # Live-heap deltas mean something only where gc.collect() frees what is
    # dropped (the webassembly port's does not while a script runs).
    gc.collect()
    a = gc.mem_alloc()
    _garbage()
    gc.collect()
    return gc.mem_alloc() - a < 4096


def pool_meta():
    # Heap bytes a pool keeps: pools of 8..128-byte items over the same number
    # of 256-byte pages (same page table), live heap after a collection. The
    # slope over the items they hold is the per-item metadata (free link and
    # out bit); the rest, less the empty pool, is the page table's share.
    if not MICROPYTHON:
        return
    if not collects():
        emit("pool.meta.skipped", "gc.collect()_frees_nothing_on_this_port")
        return
    intr.setup(1, intr.MODE_UP)
    pa = setup_mem()
    NP = 48  # pages per pool: all five pools stay alive (a freed pool's heap can
    pts = []  # come back late: the collector also scans the C stack)
    pools = []
    for size in (8, 16, 32, 64, 128):
        gc.collect()
        h0 = gc.mem_alloc()
        pp = pool.pool_init(size, 8, 0, 0, "meta", pa, pool.IPL_VM)
        gc.collect()
        h1 = gc.mem_alloc()
        pool.pool_prime(pp, NP * pp.ipp)
        gc.collect()
        h2 = gc.mem_alloc()
        pts.append((size, pool.pool_stats(pp)["nitems"], h2 - h1, h2 - h0))
        pools.append(pp)
    for pp in pools:
        pool.pool_destroy(pp)
    n = len(pts)
    mx = sum(p[1] for p in pts) / n
    my = sum(p[2] for p in pts) / n
    slope = sum((p[1] - mx) * (p[2] - my) for p in pts) / sum((p[1] - mx) ** 2 for p in pts)
    emit("pool.meta.item_bytes", slope)
    emit("pool.meta.page_bytes", (my - slope * mx) / NP)
    emit("pool.meta.pages", NP)
    emit("pool.meta.pagesz", 256)
    for size, items, grown, total in pts:
        emit("pool.meta.s%d.bytes_per_item" % size, total / items)


def kmem_waste():
    # Internal waste: 1 - requested / class bytes of the live allocations,
    # from kmem's own in-use counts, over batches of seeded uniform 1..1024
    # requests (the arena holds ~40 at a time). Every class gets its cache:
    # its own run, with a heap that holds all 22 (part=waste).
    if not kmem_setup():
        return
    r = Rand(1024)
    req = got = 0
    live = [None] * 40
    for _ in range(100):
        gc.collect()  # kmem_stats builds a dict per class: a small heap needs the room
        st0 = {}  # class size -> items in use (caches appear on first use)
        for c in kmem.kmem_stats()["classes"]:
            st0[c["size"]] = c["inuse"]
        k = 0
        while k < 40:
            z = 1 + r.below(1024)
            p = kmem.kmem_alloc(z, kmem.KM_NOSLEEP)
            if p is None:
                break
            live[k] = (p, z)
            req += z
            k += 1
        gc.collect()
        for c in kmem.kmem_stats()["classes"]:
            got += (c["inuse"] - st0.get(c["size"], 0)) * c["size"]
        for i in range(k):
            kmem.kmem_free(live[i][0], live[i][1])
    emit("kmem.waste_uniform_1024", 1 - req / got)
    emit("kmem.waste_requests", req)


emit_env()
modes = A.get("modes", "up,thread").split(",")
if A.get("part", "all") in ("kmem", "waste"):
    modes = []
for m in modes:
    if m == "thread":
        try:
            import _thread  # noqa: F401
        except ImportError:
            emit("thread.error", "no__thread")
            continue
    run(m)
if A.get("part", "all") in ("all", "kmem"):
    run_kmem()
if A.get("part", "all") == "waste":
    kmem_waste()
if A.get("part", "all") in ("all", "pool"):
    pool_meta()
intr.setup(1)
emit_calibration()
