# Workload 3, fragmentation: the mixed trace run until its first failure, and the
# utilisation at that moment (live requested bytes / arena bytes).
#
# The trace (seed 7, 8,000 steps, identical on every interpreter): each step
# allocates one block of the mixed byte distribution (benchcore.mixed_size: 70 %
# 8-64, 25 % 65-512, 5 % 513-4096 bytes), then with probability 3/4 frees one live
# block picked uniformly (memoryless, i.e. exponential lifetimes); so the live set
# grows by 1/4 block a step on average until a request cannot be met.
#
#   alloc=instant|best|firstfit  on a 64 KB arena, quantum 8 (vmem / benchcore.FirstFit)
#   alloc=gcheap                 bytearray(size) on MicroPython's own heap; the free
#                                space is padded down to the same 64 KB first, so run
#                                it in a fresh interpreter (-X heapsize=...)
#
#   MICROPYPATH=firmware:tests/bench .venv/bin/micropython -X heapsize=160K tests/bench/bench_frag.py alloc=gcheap
from benchcore import *  # noqa: F401,F403

A = bench_args(globals())
ARENA = A.get("arena", 65536)
STEPS = A.get("steps", 8000)
Q = 8
MAXLIVE = 2048


def trace():
    from array import array

    r = Rand(7)
    sz = array("H")
    pick = array("H")
    for i in range(STEPS):
        sz.append(mixed_size(r, False))
        pick.append(r.next() >> 1)  # 14 bits: low 2 bits say free or not, the rest which
    return sz, pick


def run_arena(name, alloc, free, arena, flags, sz, pick):
    la = LA
    ls = LS
    n = 0
    live = 0
    step = 0
    failed = False
    while step < STEPS:
        z = sz[step]
        a = alloc(arena, z, flags)
        if a is None:
            failed = True
            break
        la[n] = a
        ls[n] = z
        n += 1
        live += z
        p = pick[step]
        if p & 3:
            i = (p >> 2) % n
            free(arena, la[i], ls[i])
            live -= ls[i]
            n -= 1
            la[i] = la[n]
            ls[i] = ls[n]
        step += 1
    report(name, failed, step, n, live, ARENA)


def report(name, failed, step, n, live, arena):
    emit("frag.%s.failed" % name, failed)
    emit("frag.%s.steps" % name, step)
    emit("frag.%s.live_blocks" % name, n)
    emit("frag.%s.live_bytes" % name, live)
    emit("frag.%s.arena_bytes" % name, arena)
    emit("frag.%s.utilisation" % name, live / arena)


def run_gcheap(sz, pick):
    la = LA
    ls = LS
    gc.collect()
    f0 = gc.mem_free()
    if f0 < ARENA:
        emit("frag.gcheap.error", "heap_smaller_than_arena_%d<%d" % (f0, ARENA))
        return
    pad = bytearray(f0 - ARENA - 64) if f0 - ARENA > 256 else None  # noqa: F841
    gc.collect()
    arena = gc.mem_free()
    pad2 = bytearray(arena - ARENA - 64) if arena - ARENA > 256 else None  # noqa: F841
    gc.collect()
    arena = gc.mem_free()
    n = 0
    live = 0
    step = 0
    failed = False
    z = 0
    while step < STEPS:
        z = sz[step]
        try:
            b = bytearray(z)
        except MemoryError:
            failed = True
            break
        la[n] = b
        ls[n] = z
        n += 1
        live += z
        p = pick[step]
        if p & 3:
            i = (p >> 2) % n
            live -= ls[i]
            n -= 1
            la[i] = la[n]
            ls[i] = ls[n]
            la[n] = None
        step += 1
    b = None
    report("gcheap", failed, step, n, live, arena)
    if failed:
        gc.collect()
        emit("frag.gcheap.free_at_failure", gc.mem_free())
        emit("frag.gcheap.failed_request", z)


from array import array  # noqa: E402

LA = [None] * MAXLIVE  # the live blocks (addresses or bytearrays) and their sizes
LS = array("H", bytes(2 * MAXLIVE))
emit_env()
sz, pick = trace()
which = A.get("alloc", "instant,best,firstfit").split(",")
for w in which:
    if w == "gcheap":
        if MICROPYTHON:
            run_gcheap(sz, pick)
        continue
    gc.collect()
    if w == "firstfit":
        ff = FirstFit(0x1000, ARENA, Q)
        run_arena("firstfit", ff_alloc, ff_free, ff, 0, sz, pick)
        continue
    try:
        from mpalloc import vmem as V
    except ImportError as e:
        emit("frag.%s.error" % w, ("ImportError:" + str(e)).replace(" ", "_"))
        continue
    nw = getattr(V, "M_NOWAIT", None) or getattr(V, "VM_NOSLEEP")
    if w == "instant":
        pol = getattr(V, "M_FIRSTFIT", None) or getattr(V, "VM_INSTANTFIT", 0)
    else:
        pol = getattr(V, "M_BESTFIT", None) or getattr(V, "VM_BESTFIT")
    vm = V.vmem_create("frag-" + w, 0x1000, ARENA, Q, 0, nw)
    run_arena(w, V.vmem_alloc, V.vmem_free, vm, nw | pol, sz, pick)
    st = V.vmem_stats(vm)
    for k in ("nfreesegs", "largest_free", "maxsteps"):
        if k in st:
            emit("frag.%s.%s" % (w, k), st[k])
