# vmem figures of issue #3, measured on the interpreter that runs this script:
#
#   MICROPYPATH=firmware .venv/bin/micropython -X heapsize=4M tests/bench/vmem_figures.py [quick]
#   (host_tools/mpalloc_host/bench/vmem_bench.py runs it on the unix and wasm32 ports)
#
# Prints "@@bench vmem.<key> <value>" lines:
#   cu_ns            one call of an empty 2-argument function (the unit), ns
#   pair_cu.H<h>     vmem_alloc+vmem_free pair (2 quanta, M_NOWAIT, instant fit) with
#                    h one-quantum free segments in the arena (Bonwick's experiment)
#   flat             pair_cu.H4096 / pair_cu.H16 (goal <= 1.1, must be <= 1.25),
#                    the arenas timed in interleaved rounds
#   pair_cu_up.H16   the H16 pair with intr in MODE_UP (unix port only: no
#                    thread-mode spin mutex)
#   maxsteps.H<h>    worst boundary-tag steps of one operation during that run
#   qc_pair_cu       quantum-cache hit pair (1 quantum, qcache_max 8 quanta)
#   qc_ratio         segment pair / quantum-cache pair (must be >= 3)
#   qc_seg_per_1000  segment-list visits (cache fills + drains) per 1000 small
#                    allocations in a steady random workload (must be <= 1)
#   tag_bytes_layout heap bytes per boundary tag (all tag arrays + hash slots),
#                    from the arrays' lengths; tag_words = that / (word_bits / 8);
#                    tag_bytes_measured = the gc.mem_alloc() delta of growing to
#                    4096 tags (equal on the unix port; the wasm port's collector
#                    keeps dropped temporaries, so it reads high there)
#   arena_fixed_bytes heap bytes of a fresh arena minus its initial 32 tags
#   pair_heap_bytes  heap bytes allocated per steady-state pair (must be 0), from
#                    micropython.mem_total() deltas (transient frames included)
#   seg_pair_cu.1q   one-quantum pair on the arena without quantum cache
#   trace_*          the same random 1..8-quantum trace (live set ~32) on an arena
#                    with and without quantum cache, bookkeeping subtracted
#   lock_pair_cu     one intr.mutex_enter/mutex_exit pair (two per alloc+free pair)
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

QUICK = "quick" in getattr(sys, "argv", ())[1:] or globals().get("BENCH_QUICK", False)
# short batches, many of them: on a loaded machine some batches run undisturbed
REPS = 31 if QUICK else 81
N = 100  # pairs per timed batch (short: some batches run undisturbed)
NC = 2000  # calls per calibration batch (long enough for 1 us ticks)
if sys.platform == "webassembly":  # ticks_us is coarse there: longer batches
    REPS = 5 if QUICK else 9
    N = 20000
    NC = 20000
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
    ls = []
    lps = []
    for _ in range(REPS):
        ls.append(t_loop(NC))
        cs.append(t_call(NC))
        lps.append(t_loop(N))
        ps.append(t_pairs(vm, N, size))
        cs.append(t_call(NC))
        ls.append(t_loop(NC))
    cu = (min(cs) - min(ls)) / NC
    return (min(ps) - min(lps)) / N / cu, cu * 1000


def make_trace(n):
    # n/2 allocations and n/2 frees over a live set of ~32: (op, slot, size)
    x = 777
    ops = []
    sizes = []
    slots = []
    live = []
    free = list(range(64))
    while len(ops) < n:
        x = (x * 1103515245 + 12345) & 0x3FFFFFFF
        if len(live) < 16 or (len(live) < 48 and x & 0x100):
            k = free.pop()
            live.append(k)
            ops.append(1)
            slots.append(k)
            sizes.append(Q * (1 + (x >> 4) % 8))
        else:
            k = live.pop((x >> 8) % len(live))
            free.append(k)
            ops.append(0)
            slots.append(k)
            sizes.append(0)
    while live:  # close the trace: everything freed
        k = live.pop()
        free.append(k)
        ops.append(0)
        slots.append(k)
        sizes.append(0)
    return ops, slots, sizes


def _nop_al(vm, s, f):
    return 0


def _nop_fr(vm, a, s):
    pass


def run_trace(vm, trace, al=vmem_alloc, fr=vmem_free):
    # al/fr = _nop_al/_nop_fr times the bookkeeping and the two calls alone
    ops, slots, sizes = trace
    addr = [0] * 64
    sz = [0] * 64
    n = len(ops)
    i = 0
    t0 = ticks_us()
    while i < n:
        k = slots[i]
        if ops[i]:
            s = sizes[i]
            addr[k] = al(vm, s, M_NOWAIT)
            sz[k] = s
        else:
            fr(vm, addr[k], sz[k])
        i += 1
    return ticks_diff(ticks_us(), t0)


def lock_cu():
    from mpalloc import intr

    m = intr.mutex_init()
    en = intr.mutex_enter
    ex = intr.mutex_exit

    def f(n):
        i = 0
        t0 = ticks_us()
        while i < n:
            s = en(m)
            ex(m, s)
            i += 1
        return ticks_diff(ticks_us(), t0)

    ls = []
    cs = []
    lps = []
    for _ in range(REPS):
        lps.append(t_loop(NC))
        cs.append(t_call(NC))
        ls.append(f(NC))
    lp = min(lps)
    return (min(ls) - lp) / (min(cs) - lp)


def holes(h, qcache=0):
    vm = vmem_create("H%d" % h, BASE, (2 * h + 1024) * Q, Q, qcache, M_NOWAIT)
    got = []
    for _ in range(2 * h):
        got.append(V.vmem_xalloc(vm, Q, 0, 0, 0, VMEM_ADDR_MIN, VMEM_ADDR_MAX, M_NOWAIT))
    for i in range(0, 2 * h, 2):
        V.vmem_xfree(vm, got[i], Q)
    return vm


def heap_per_pair(vm, size):
    # micropython.mem_total() counts every allocation, also the transient ones
    # freed at once (a call frame above 11 words goes to the heap and back);
    # gc.mem_alloc() with collection disabled only sees what stays allocated
    try:
        from micropython import mem_total
    except ImportError:
        mem_total = None
    gc.collect()
    gc.disable()
    try:
        t_pairs(vm, 10, size)
        m0 = mem_total() if mem_total else gc.mem_alloc()
        t_pairs(vm, 0, size)  # the timing loop's own frame, subtracted
        m1 = mem_total() if mem_total else gc.mem_alloc()
        t_pairs(vm, 1000, size)
        m2 = mem_total() if mem_total else gc.mem_alloc()
        return ((m2 - m1) - (m1 - m0)) / 1000
    finally:
        gc.enable()


def main():
    emit("impl", sys.implementation.name)
    emit("word_bits", 64 if sys.maxsize > 2**32 else 32)
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
    # the same from the arrays' lengths (the webassembly port's gc.collect()
    # may keep freshly dropped arrays alive, so its measured figure is high)
    lay = len(vm._seg_start) * 4 + len(vm._seg_size) * 4 + 2 * (len(vm._seg_next) + len(vm._seg_prev) + len(vm._free_next) + len(vm._free_prev))
    lay += len(vm._seg_type) + 2 * len(vm._hash_bucket)
    emit("tag_bytes_layout", lay / vm._cap)
    emit("tag_words", lay / vm._cap * 8 / (64 if sys.maxsize > 2**32 else 32))
    emit("tag_bytes_measured", per_tag)
    emit("arena_bytes", m1 - m0)
    emit("arena_fixed_bytes", (m1 - m0) - per_tag * cap0)

    del vm
    res = {}
    arenas = {}
    for h in (16, 256, 4096):
        vm = holes(h)
        st = V.vmem_stats(vm)
        if st["nfreesegs"] != h + 1:
            raise AssertionError("expected %d free segments, got %d" % (h + 1, st["nfreesegs"]))
        arenas[h] = vm
    # interleaved: every round times each arena once, so drift hits all alike
    for vm in arenas.values():
        t_pairs(vm, 200, 2 * Q)
        vm._maxsteps = 1
    gc.collect()
    best = {}
    cs = []
    ls = []
    lps = []
    for _ in range(REPS):
        ls.append(t_loop(NC))
        cs.append(t_call(NC))
        lps.append(t_loop(N))
        for h, vm in arenas.items():
            t = t_pairs(vm, N, 2 * Q)
            if h not in best or t < best[h]:
                best[h] = t
        cs.append(t_call(NC))
        ls.append(t_loop(NC))
    cu = (min(cs) - min(ls)) / NC
    lp = min(lps)
    emit("cu_ns", cu * 1000)
    for h, vm in arenas.items():
        res[h] = (best[h] - lp) / N / cu
        emit("pair_cu.H%d" % h, res[h])
        emit("maxsteps.H%d" % h, V.vmem_stats(vm)["maxsteps"])
    emit("pair_heap_bytes", heap_per_pair(arenas[16], 2 * Q))
    del arenas, vm
    gc.collect()
    emit("flat", res[4096] / res[16])
    # the same pair with intr in MODE_UP (no thread-mode spin mutex: what a
    # one-CPU board pays, apart from machine.disable_irq)
    from mpalloc import intr

    if intr.mode != intr.MODE_UP:
        m0 = intr.mode
        intr.setup(1, intr.MODE_UP)
        try:
            emit("pair_cu_up.H16", pair_cu(holes(16), 2 * Q)[0])
        finally:
            intr.setup(1, m0)
    # quantum cache: the hit path against the segment path, first as fixed
    # one-quantum pairs, then on the same random trace of 1..8-quantum sizes
    seg = holes(16)
    vm = holes(16, 8 * Q)
    qc, _ = pair_cu(vm, Q)
    sp, _ = pair_cu(seg, Q)
    emit("qc_pair_cu", qc)
    emit("seg_pair_cu.1q", sp)
    emit("qc_ratio", sp / qc)
    emit("qc_heap_bytes", heap_per_pair(vm, Q))
    tq = []
    ts = []
    tc = []
    trace = make_trace(N)
    run_trace(vm, trace)
    run_trace(seg, trace)
    tl = []
    tb = []
    nt = len(trace[0])
    for _ in range(REPS):
        tl.append(t_loop(nt))
        tc.append(t_call(nt))
        ts.append(run_trace(seg, trace))
        tq.append(run_trace(vm, trace))
        tb.append(run_trace(vm, trace, _nop_al, _nop_fr))
        tc.append(t_call(nt))
        tl.append(t_loop(nt))
    lp = min(tl)
    cu = (min(tc) - lp) / nt
    base = min(tb) - nt * cu  # bookkeeping without the calls
    emit("trace_seg_pair_cu", (min(ts) - base) / (nt // 2) / cu)
    emit("trace_qc_pair_cu", (min(tq) - base) / (nt // 2) / cu)
    emit("trace_qc_ratio", (min(ts) - base) / (min(tq) - base))
    del seg
    # lock share: one intr mutex enter/exit pair
    emit("lock_pair_cu", lock_cu())
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


main()
