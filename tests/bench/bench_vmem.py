# Workloads 2 and 4 on vmem: alloc+free pairs with a steady live set of 32
# allocations, sizes from the mixed quantum distribution (benchcore.mixed_size:
# 70 % 2-8, 25 % 9-32, 5 % 33-64 quanta; quantum 8 bytes), with H one-quantum free
# segments (holes) made first (allocate 2H one-quantum blocks, free every other one
# in address order), for H = 16, 256, 4096 - Bonwick and Adams' latency-against-
# fragmentation experiment. The same trace runs on the textbook first fit
# (benchcore.FirstFit) over the same arena. Then the quantum cache: sizes 1-8
# quanta on an arena with qcache_max = 8 quanta against one without.
#
#   MICROPYPATH=firmware:tests/bench .venv/bin/micropython -X heapsize=233024 tests/bench/bench_vmem.py [quick=1] [holes=16,256,4096]
#
# Also runs on CPython (PYTHONPATH=firmware:tests/bench) for the side-by-side with
# the CPython peers (bench_peers.py).
from benchcore import *  # noqa: F401,F403

A = bench_args(globals())
QUICK = A.get("quick", 0)
REPS = 7 if QUICK else 61
TARGET = 2000
Q = 8
BASE = 0x1000
HOLES = [int(x) for x in str(A.get("holes", "16,256,4096")).split(",")]
TAIL = RING * 64 * Q * 4  # room for the live set beside the holes

try:
    from mpalloc import vmem as V
except ImportError as e:
    V = None
    emit("vmem.error", ("ImportError:" + str(e)).replace(" ", "_"))


def _flag(*names):
    for n in names:
        v = getattr(V, n, None)
        if v is not None:
            return v
    return 0


def holes(arena, alloc, free, h):
    """Make h isolated one-quantum free segments at the arena's low end."""
    got = []
    for _ in range(2 * h):
        a = alloc(arena, Q, NOWAIT | INSTANT)
        got.append(a)
    got.sort()
    for i in range(2 * h - 2, -1, -2):  # from the top: first fit's free walk stays short
        free(arena, got[i], Q)


def vstats(vm):
    return V.vmem_stats(vm)


def tail(key, f, s, base):
    """Tail with gc disabled: batches of 1000 pairs, median / p99 / worst batch."""
    reps = 10 if QUICK else 30
    gc.collect()
    gc.disable()
    try:
        xs = costs(f, s, 1000, 1, reps, base)
    finally:
        gc.enable()
    emit(key + ".tail_p50", median(xs))
    emit(key + ".tail_p99", pct(xs, 0.99))
    emit(key + ".tail_max", max(xs))
    emit(key + ".tail_batches", len(xs))


def run_vmem(h, policy, pname, seq):
    vm = V.vmem_create("bench-%s-%d" % (pname, h), BASE, 2 * h * Q + TAIL, Q, 0, NOWAIT)
    holes(vm, V.vmem_alloc, V.vmem_free, h)
    s = Ring(vm, V.vmem_alloc, V.vmem_free, NOWAIT | policy, seq)
    key = "vmem.%s.H%d" % (pname, h)
    l_ring(s, 3000)  # steady state: the tag reserve has grown to what the live set needs
    st0 = vstats(vm)
    emit(key + ".freesegs", st0.get("nfreesegs"))
    n = pick_n(l_ring, s, TARGET)
    emit_costs(key, costs(l_ring, s, n, 1, REPS, l_ring_base))
    st1 = vstats(vm)
    ops = (st1["nalloc"] - st0["nalloc"]) + (st1["nfree"] - st0["nfree"])
    if ops and "steps" in st1:
        emit(key + ".steps_per_op", (st1["steps"] - st0["steps"]) / ops)
    if "maxsteps" in st1:
        emit(key + ".maxsteps", st1["maxsteps"])
    emit(key + ".refused", st1["nfail"] - st0["nfail"])
    emit_heap(key, l_ring, s, 500, 1000)
    if pname == "instant" and h == 256:
        tail(key, l_ring, s, l_ring_base)
    return vm


def run_ff(h, seq):
    ff = FirstFit(BASE, 2 * h * Q + TAIL, Q)
    holes(ff, ff_alloc, ff_free, h)
    s = Ring(ff, ff_alloc, ff_free, 0, seq)
    key = "firstfit.H%d" % h
    l_ring(s, 50)
    emit(key + ".freesegs", ff_nfreesegs(ff))
    s0 = ff.steps
    o0 = ff.nalloc + ff.nfree
    ff.maxsteps = 0
    n = pick_n(l_ring, s, TARGET, lo=10)
    emit_costs(key, costs(l_ring, s, n, 1, max(5, REPS // 3), l_ring_base))
    emit(key + ".steps_per_op", (ff.steps - s0) / (ff.nalloc + ff.nfree - o0))
    emit(key + ".maxsteps", ff.maxsteps)
    emit_heap(key, l_ring, s, 100, 200)


def run_qcache(seq_small):
    """Quantum cache hit against the segment path on the same small sizes."""
    out = {}
    for qmax, name in ((8 * Q, "qcache"), (0, "segment")):
        vm = V.vmem_create("bench-%s" % name, BASE, 32 * Q + TAIL, Q, qmax, NOWAIT)
        holes(vm, V.vmem_alloc, V.vmem_free, 16)
        s = Ring(vm, V.vmem_alloc, V.vmem_free, NOWAIT | INSTANT, seq_small)
        l_ring(s, 2000)
        key = "vmem.small.%s" % name
        st0 = vstats(vm)
        n = pick_n(l_ring, s, TARGET)
        xs = costs(l_ring, s, n, 1, REPS, l_ring_base)
        out[name] = emit_costs(key, xs)
        st1 = vstats(vm)
        emit_heap(key, l_ring, s, 500, 1000)
        if name == "qcache":
            # small allocations that reached the segment list, per small allocation
            before = vstats(vm)
            k = 20000 if not QUICK else 5000
            l_ring(s, k)
            after = vstats(vm)
            for f in ("nalloc", "qhits", "qfills", "qdrains", "steps"):
                if f in after:
                    emit(key + ".d_" + f, after[f] - before[f])
            emit(key + ".small_allocs", k)
            if "qfills" in after:
                # a fill carves a batch from one segment, a drain gives items back:
                # the only times a small request reaches the segment list
                seg = (after["qfills"] - before["qfills"]) + (after["qdrains"] - before["qdrains"])
            else:
                seg = after["nalloc"] - before["nalloc"]
            emit(key + ".seglist_share", seg / k)
        del st0, st1
    if out.get("qcache") and out.get("segment"):
        emit("vmem.small.segment_over_qcache", out["segment"] / out["qcache"])


emit_env()
if V is not None:
    NOWAIT = _flag("M_NOWAIT", "VM_NOSLEEP")
    INSTANT = _flag("M_FIRSTFIT", "VM_INSTANTFIT")
    BEST = _flag("M_BESTFIT", "VM_BESTFIT")
    seq = size_seq(1, Q, False)
    for h in HOLES:
        try:
            run_vmem(h, INSTANT, "instant", seq)
        except Exception as e:
            emit("vmem.instant.H%d.error" % h, repr(e).replace(" ", "_")[:80])
    if A.get("bestfit", 1):
        for h in HOLES[:1]:
            try:
                run_vmem(h, BEST, "best", seq)
            except Exception as e:
                emit("vmem.best.H%d.error" % h, repr(e).replace(" ", "_")[:80])
    try:
        run_qcache(size_seq(2, Q, True))
    except Exception as e:
        emit("vmem.small.error", repr(e).replace(" ", "_")[:80])
else:
    NOWAIT = INSTANT = 0
    seq = size_seq(1, Q, False)
for h in HOLES:
    run_ff(h, seq)
emit_calibration()
