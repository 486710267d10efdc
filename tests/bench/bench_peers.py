# CPython peers on the same traces as bench_vmem.py / bench_frag.py:
#   tlsfallocator 0.0.1  (import TLSFAllocator: pybind11 wrapper of sebbbi's
#                         OffsetAllocator, a native O(1) TLSF-like offset allocator)
#   virtual-allocator 0.0.3 (pure Python list of regions, FIRST_FIT)
# Each is called through a two-line adapter with vmem's argument order (one extra
# Python call per operation, about 1 cu, is counted against the peer).
#
#   PYTHONPATH=firmware:tests/bench .venv/bin/python tests/bench/bench_peers.py [quick=1] [holes=16,256,4096]
from benchcore import *  # noqa: F401,F403

A = bench_args(globals())
QUICK = A.get("quick", 0)
REPS = 5 if QUICK else 11
TARGET = 4000 if QUICK else 10000
Q = 8
HOLES = [int(x) for x in str(A.get("holes", "16,256,4096")).split(",")]
TAIL = RING * 64 * Q * 4
VA_MAX_HOLES = A.get("va_max_holes", 1024)


def _tlsf():
    import TLSFAllocator as T

    def make(size):
        return T.OffsetAllocator(size, 65536)

    def alloc(a, size, flags):
        r = a.allocate(size)
        return None if r.offset == 0xFFFFFFFF else r

    def free(a, r, size):
        a.free(r)

    return make, alloc, free


def _va():
    import virtual_allocator as V

    def make(size):
        return V.Allocator(0, size, Q, Q, V.AllocationPolicy.FIRST_FIT)

    def alloc(a, size, flags):
        try:
            return a.allocate((size + Q - 1) // Q * Q)
        except V.OutOfMemoryError:
            return None

    def free(a, r, size):
        a.free(r)

    return make, alloc, free


def holes(arena, alloc, free, h):
    got = [alloc(arena, Q, 0) for _ in range(2 * h)]
    for i in range(2 * h - 2, -1, -2):
        free(arena, got[i], Q)
    return got  # the pinned ones stay referenced


def flat(name, make, alloc, free, seq):
    for h in HOLES:
        key = "peer.%s.H%d" % (name, h)
        if name == "virtual_allocator" and h > VA_MAX_HOLES:
            emit(key + ".skipped", "O(n)_scan_and_list.index_per_op:_setting_up_%d_blocks_takes_~45_s_of_CPU_(3.1e5_cu_per_pair_measured_once)" % (2 * h))
            continue
        a = make(2 * h * Q + TAIL)
        keep = holes(a, alloc, free, h)  # noqa: F841
        s = Ring(a, alloc, free, 0, seq)
        l_ring(s, 20)
        n = pick_n(l_ring, s, TARGET, lo=10)
        emit_costs(key, costs(l_ring, s, n, 1, REPS, l_ring_base))


def frag(name, make, alloc, free):
    from array import array

    r = Rand(7)
    steps = 8000
    sz = array("H")
    pick = array("H")
    for i in range(steps):
        sz.append(mixed_size(r, False))
        pick.append(r.next() >> 1)
    arena = 65536
    a = make(arena)
    la = []
    ls = []
    live = 0
    step = 0
    failed = False
    while step < steps:
        z = sz[step]
        x = alloc(a, z, 0)
        if x is None:
            failed = True
            break
        la.append(x)
        ls.append(z)
        live += z
        p = pick[step]
        if p & 3:
            i = (p >> 2) % len(la)
            free(a, la[i], ls[i])
            live -= ls[i]
            la[i] = la[-1]
            ls[i] = ls[-1]
            la.pop()
            ls.pop()
        step += 1
    emit("frag.%s.failed" % name, failed)
    emit("frag.%s.steps" % name, step)
    emit("frag.%s.live_bytes" % name, live)
    emit("frag.%s.arena_bytes" % name, arena)
    emit("frag.%s.utilisation" % name, live / arena)


emit_env()
seq = size_seq(1, Q, False)
for name, mk in (("tlsf", _tlsf), ("virtual_allocator", _va)):
    try:
        make, alloc, free = mk()
    except ImportError as e:
        emit("peer.%s.error" % name, ("ImportError:" + str(e)).replace(" ", "_"))
        continue
    try:
        flat(name, make, alloc, free, seq)
        frag(name, make, alloc, free)
    except Exception as e:
        emit("peer.%s.error" % name, (type(e).__name__ + ":" + str(e)).replace(" ", "_")[:100])
emit_calibration()
