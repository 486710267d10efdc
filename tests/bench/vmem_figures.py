# vmem figures of issue #3, measured on the interpreter that runs this script:
#
#   MICROPYPATH=firmware .venv/bin/micropython -X heapsize=4M tests/bench/vmem_figures.py [quick]
#   (host_tools/mpalloc_host/bench/vmem_bench.py runs it on the unix and wasm32 ports)
#
# Prints "@@bench vmem.<key> <value>" lines:
#   cu_ns            one call of an empty 2-argument function (the unit), ns
#   pair_cu.H<h>     vmem_alloc+vmem_free pair (2 quanta, M_NOWAIT, instant fit) with
#                    h one-quantum free segments in the arena (Bonwick's experiment)
#   flat             pair_cu.H4096 / pair_cu.H16 (goal <= 1.1, must be <= 1.25)
#   maxsteps.H<h>    worst boundary-tag steps of one operation during that run
#   qc_pair_cu       quantum-cache hit pair (1 quantum, qcache_max 8 quanta)
#   qc_ratio         segment pair / quantum-cache pair (must be >= 3)
#   qc_seg_per_1000  segment-list visits (cache fills + drains) per 1000 small
#                    allocations in a steady random workload (must be <= 1)
#   tag_bytes        heap bytes per boundary tag (all tag arrays + hash), words
#                    = tag_bytes / (word_bits / 8)
#   arena_fixed_bytes heap bytes of a fresh arena minus its initial 32 tags
#   pair_heap_bytes  heap bytes allocated per steady-state pair (must be 0)
import gc
import sys

try:
    from time import ticks_us, ticks_diff
except ImportError:
    import time as _t

    def ticks_us():
        return _t.perf_counter_ns() // 1000

    def ticks_diff(a, b):
        return a - b


from mpalloc import vmem as V
from mpalloc.vmem import M_NOWAIT, VMEM_ADDR_MAX, VMEM_ADDR_MIN, vmem_alloc, vmem_create, vmem_free

QUICK = "quick" in sys.argv[1:] or globals().get("BENCH_QUICK", False)
REPS = 5 if QUICK else 11
N = 2000 if QUICK else 5000
Q = 16
BASE = 0x20000000


def emit(k, v):
    if isinstance(v, float):
        v = "%.4g" % v
    print("@@bench vmem.%s %s" % (k, v))


def _e(a, b):
    pass


def t_loop(n):
    i = 0
    t0 = ticks_us()
    while i < n:
        i += 1
    return ticks_diff(ticks_us(), t0)


def t_call(n):
    f = _e
    i = 0
    t0 = ticks_us()
    while i < n:
        f(i, n)
        i += 1
    return ticks_diff(ticks_us(), t0)


def t_pairs(vm, n, size):
    al = vmem_alloc
    fr = vmem_free
    i = 0
    t0 = ticks_us()
    while i < n:
        a = al(vm, size, M_NOWAIT)
        fr(vm, a, size)
        i += 1
    return ticks_diff(ticks_us(), t0)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def pair_cu(vm, size):
    # calibration interleaved with the measurement; on a shared, noisy machine
    # the minimum over REPS batches of each is the least disturbed figure
    t_pairs(vm, 200, size)
    gc.collect()
    ps = []
    cs = []
    for _ in range(REPS):
        lp = t_loop(N)
        cs.append(t_call(N) - lp)
        ps.append(t_pairs(vm, N, size) - lp)
        cs.append(t_call(N) - lp)
    cu = min(cs)
    return min(ps) / cu, cu * 1000 / N


def holes(h, qcache=0):
    vm = vmem_create("H%d" % h, BASE, (2 * h + 256) * Q, Q, qcache, M_NOWAIT)
    got = []
    for _ in range(2 * h):
        got.append(V.vmem_xalloc(vm, Q, 0, 0, 0, VMEM_ADDR_MIN, VMEM_ADDR_MAX, M_NOWAIT))
    for i in range(0, 2 * h, 2):
        V.vmem_xfree(vm, got[i], Q)
    return vm


def heap_per_pair(vm, size):
    gc.collect()
    gc.disable()
    try:
        m0 = gc.mem_alloc()
        t_pairs(vm, 1000, size)
        return (gc.mem_alloc() - m0) / 1000
    finally:
        gc.enable()


def main():
    emit("impl", sys.implementation.name)
    emit("word_bits", 64 if sys.maxsize > 2**32 else 32)
    res = {}
    for h in (16, 256, 4096):
        vm = holes(h)
        st = V.vmem_stats(vm)
        if st["nfreesegs"] != h + 1:
            raise AssertionError("expected %d free segments, got %d" % (h + 1, st["nfreesegs"]))
        vm._maxsteps = 0
        cu_pair, cu_ns = pair_cu(vm, 2 * Q)
        res[h] = cu_pair
        emit("pair_cu.H%d" % h, cu_pair)
        emit("maxsteps.H%d" % h, V.vmem_stats(vm)["maxsteps"])
        if h == 16:
            emit("cu_ns", cu_ns)
            emit("pair_heap_bytes", heap_per_pair(vm, 2 * Q))
        del vm
        gc.collect()
    emit("flat", res[4096] / res[16])
    # quantum cache
    vm = holes(16, 8 * Q)
    qc, _ = pair_cu(vm, Q)
    emit("qc_pair_cu", qc)
    emit("qc_ratio", res[16] / qc)
    emit("qc_heap_bytes", heap_per_pair(vm, Q))
    # steady random workload of small allocations: segment-list visits
    x = 12345
    live = []
    nsmall = 0
    st0 = None
    for i in range(60000 if not QUICK else 20000):
        if i == 10000:
            st0 = V.vmem_stats(vm)
            nsmall = 0
        x = (x * 1103515245 + 12345) & 0x3FFFFFFF
        if len(live) < 32 or (len(live) < 96 and x & 0x100):
            n = Q * (1 + (x >> 4) % 8)
            live.append((vmem_alloc(vm, n, M_NOWAIT), n))
            nsmall += 1
        else:
            a, n = live.pop((x >> 8) % len(live))
            vmem_free(vm, a, n)
    st1 = V.vmem_stats(vm)
    visits = st1["qfills"] + st1["qdrains"] - st0["qfills"] - st0["qdrains"]
    emit("qc_seg_per_1000", visits * 1000 / nsmall)
    for a, n in live:
        vmem_free(vm, a, n)
    del vm, live
    # memory: heap per boundary tag, fixed per arena
    gc.collect()
    m0 = gc.mem_alloc()
    vm = vmem_create("mem", BASE, 1 << 20, Q, 0, M_NOWAIT)
    gc.collect()
    m1 = gc.mem_alloc()
    cap0 = vm._cap
    vm._grow(4096)
    gc.collect()
    m2 = gc.mem_alloc()
    per_tag = (m2 - m1) / (vm._cap - cap0)
    emit("tag_bytes", per_tag)
    emit("tag_words", per_tag * 8 / (64 if sys.maxsize > 2**32 else 32))
    emit("arena_bytes", m1 - m0)
    emit("arena_fixed_bytes", (m1 - m0) - per_tag * cap0)


main()
