# benchcore: timing units, heap counters and the seeded traces shared by every
# benchmark script in tests/bench/ (MicroPython and CPython).
#
# A script does `from benchcore import *` (standalone run, MICROPYPATH=firmware:tests/bench);
# the host may instead send benchcore's text followed by the script's text in one
# piece (that import line is then dropped), with BENCH_ARGS = "k=v k=v" set in front.
#
# Output: one line per figure, "@@bench <key> <value>", value an int, a float,
# True/False/None or a word without spaces. Nothing else on a line starting @@bench.
#
# Units. cu = time of one call of an empty two-argument Python function on this
# interpreter, measured in the same run, interleaved with every measurement: each
# batch times (empty loop, call loop, workload loop, empty loop, call loop) back to
# back, so a machine whose speed drifts affects numerator and denominator alike.
# The workload loop's own bookkeeping is removed by timing a "base" loop that does
# the same bookkeeping without the allocator calls.
import sys
import gc

try:
    from time import ticks_us, ticks_diff
except ImportError:  # CPython
    import time as _time

    def ticks_us():
        return _time.perf_counter_ns() // 1000

    def ticks_diff(a, b):
        return a - b


try:
    import micropython as _mp
except ImportError:
    _mp = None

MICROPYTHON = sys.implementation.name == "micropython"
_mem_total = getattr(_mp, "mem_total", None) if _mp else None


def bench_args(g):
    """Options "k=v" from BENCH_ARGS (host preamble) or sys.argv; ints where they parse."""
    s = g.get("BENCH_ARGS")
    words = s.split() if s else sys.argv[1:]
    d = {}
    for w in words:
        if "=" in w:
            k, v = w.split("=", 1)
            try:
                v = int(v)
            except ValueError:
                pass
            d[k] = v
    return d


def emit(key, value):
    if isinstance(value, float):
        value = "%.4g" % value
    print("@@bench", key, value)


def emit_env():
    emit("env.impl", sys.implementation.name)
    v = sys.implementation.version
    emit("env.version", "%d.%d.%d" % (v[0], v[1], v[2]))
    emit("env.platform", sys.platform)
    emit("env.word_bits", 64 if sys.maxsize > 2 ** 32 else 32)
    emit("env.heap_counter", "mem_total" if _mem_total else "mem_alloc")
    try:
        gc.collect()
        emit("env.heap_bytes", gc.mem_free() + gc.mem_alloc())
    except AttributeError:
        pass


# -- timing ---------------------------------------------------------------------------


def _empty(a, b):
    pass


def l_empty(arg, n):
    for _ in range(n):
        pass


def l_call(arg, n):
    f = _empty
    for _ in range(n):
        f(arg, 2)


def _t(f, arg, n):
    t0 = ticks_us()
    f(arg, n)
    return ticks_diff(ticks_us(), t0)


CU_NS = []  # the call-loop calibrations of the run, ns per call: the first _CU_MAX
# (a list growing past 512 entries asks for 8 KB in one piece: a MemoryError on
# the vboard heap in bench_fixed's thread mode); _CU_LOHI: min and max of all
_CU_MAX = 500
_CU_LOHI = [None, None]


def _clock_step():
    # The clock's step in us: 1 on most ports, 1000 on the webassembly port
    # (ticks_us counts milliseconds there). The smallest change seen in three
    # tries; a clock that never moves within 10**6 reads counts as 1000.
    best = None
    for _ in range(3):
        t0 = ticks_us()
        t1 = t0
        k = 0
        while t1 == t0 and k < 1000000:
            t1 = ticks_us()
            k += 1
        d = ticks_diff(t1, t0) if t1 != t0 else 1000
        if best is None or d < best:
            best = d
    return best


CLOCK_US = _clock_step()
# Every timed loop lasts at least this many clock steps (a 2% quantisation error
# at most), however short the batch a script asks for.
MIN_STEPS = 50


def pick_n(f, arg, target_us=8000, lo=20, hi=20000):
    """Iterations of f for one batch of about target_us (f run a little to warm
    up), never shorter than MIN_STEPS steps of the clock."""
    floor = MIN_STEPS * CLOCK_US
    if target_us < floor:
        hi = hi * (floor // target_us + 1)
        target_us = floor
    n = lo
    while True:
        t = _t(f, arg, n)
        if t * 4 >= target_us or n >= hi:
            break
        n *= 4
    if t <= 0:
        return hi
    n = int(n * target_us / t)
    return max(lo, min(hi, n))


_NCAL = [0]


def _ncal():
    # iterations of the calibration loops: about 2 ms of calls, found once
    if not _NCAL[0]:
        _NCAL[0] = pick_n(l_call, 0, 2000, 100, 200000)
    return _NCAL[0]


def costs(f, arg, n, per, reps, base=None, reset=None):
    """Per-op costs in cu, one per batch of n iterations (per ops each).

    base: a loop doing f's bookkeeping without the measured calls (default: the
    empty loop). reset(arg) runs between batches, outside the timing. Each batch is
    bracketed by two calibrations (empty loop and call loop of their own length)."""
    if base is None:
        base = l_empty
    nc = _ncal()
    out = []
    lo = [None, None, None]  # fastest workload, base and per-call times over the batches
    LAST[0] = lo
    LAST[1] = n * per
    for _ in range(reps):
        if reset is not None:
            reset(arg)
        e = _t(l_empty, 0, nc)
        c = _t(l_call, 0, nc) - e
        b = _t(base, arg, n)
        t = _t(f, arg, n)
        e2 = _t(l_empty, 0, nc)
        c2 = _t(l_call, 0, nc) - e2
        cc = (c + c2) / 2 / nc  # us per call
        if cc <= 0:
            continue
        if len(CU_NS) < _CU_MAX:
            CU_NS.append(cc * 1000)
        if _CU_LOHI[0] is None or cc * 1000 < _CU_LOHI[0]:
            _CU_LOHI[0] = cc * 1000
        if _CU_LOHI[1] is None or cc * 1000 > _CU_LOHI[1]:
            _CU_LOHI[1] = cc * 1000
        out.append((t - b) / n / cc / per)
        if lo[0] is None or t < lo[0]:
            lo[0] = t
        if lo[1] is None or b < lo[1]:
            lo[1] = b
        if lo[2] is None or cc < lo[2]:
            lo[2] = cc
    return out


LAST = [None, 0]  # the last costs() call: [fastest t, fastest base, fastest call us], ops per batch


def best_cost():
    """cu per op from the fastest batches of the last costs() call: (fastest
    workload - fastest base) / ops / fastest call. Interference on a shared machine
    only ever adds time, so the fastest batches are the least disturbed ones."""
    lo, ops = LAST
    if not lo or lo[0] is None or not lo[2]:
        return None
    return max(0, lo[0] - lo[1]) / ops / lo[2]


def median(xs):
    if not xs:
        return None
    s = sorted(xs)
    k = len(s)
    return s[k // 2] if k & 1 else (s[k // 2 - 1] + s[k // 2]) / 2


def pct(xs, p):
    if not xs:
        return None
    s = sorted(xs)
    i = int(p * (len(s) - 1) + 0.5)
    return s[i]


def emit_costs(key, xs):
    """key.cu (median of the per-batch ratios), key.cu_p25 / key.cu_p75 (their
    spread), key.batches. Returns key.cu."""
    v = median(xs)
    emit(key + ".cu", v)
    emit(key + ".cu_p25", pct(xs, 0.25))
    emit(key + ".cu_p75", pct(xs, 0.75))
    emit(key + ".batches", len(xs))
    return v


def emit_calibration():
    emit("calib.clock_us", CLOCK_US)
    if CU_NS:
        emit("calib.cu_ns", median(CU_NS))
        emit("calib.cu_ns_min", _CU_LOHI[0])
        emit("calib.cu_ns_max", _CU_LOHI[1])


# -- heap -----------------------------------------------------------------------------


def heap_bytes(f, arg, n):
    """(asked, kept): MicroPython heap bytes n iterations of f(arg, n) ask for,
    and bytes they leave allocated with collection disabled (garbage).

    Measured as f(arg, 2n) minus f(arg, n): what the call of f itself costs (the
    workload loop's own frame, when it exceeds 11 words) cancels out, so only
    the iterations count. asked is from micropython.mem_total() (bytes ever
    allocated) where the port has it; it also counts a call frame the VM takes
    from the heap and frees at once (a function whose arguments + locals + stack
    exceed 11 words), which does not leave garbage but may start a collection on
    a full heap. Without mem_total, asked = kept (gc.mem_alloc() deltas).
    (None, None) on CPython."""
    if not MICROPYTHON:
        return None, None
    gc.collect()
    gc.disable()
    a0 = a1 = a2 = 0
    try:
        if _mem_total:
            a0 = _mem_total()
            f(arg, n)
            a1 = _mem_total()
            f(arg, 2 * n)
            a2 = _mem_total()
        k0 = gc.mem_alloc()
        f(arg, n)
        k1 = gc.mem_alloc()
        f(arg, 2 * n)
        k2 = gc.mem_alloc()
    finally:
        gc.enable()
    kept = (k2 - k1) - (k1 - k0)
    if not _mem_total:
        return kept, kept
    return (a2 - a1) - (a1 - a0), kept


def heap_locked_ok(f, arg, n):
    """True if f(arg, n) runs with the heap locked; None where there is no lock."""
    lk = getattr(_mp, "heap_lock", None) if _mp else None
    if lk is None:
        return None
    gc.collect()
    lk()
    try:
        f(arg, n)
        ok = True
    except MemoryError:
        ok = False
    finally:
        _mp.heap_unlock()
    return ok


def emit_heap(key, f, arg, n, ops):
    """key.heap_bytes_per_op (asked), key.garbage_bytes_per_op (kept),
    key.heap_locked_ok; nothing on CPython."""
    b, k = heap_bytes(f, arg, n)
    if b is not None:
        emit(key + ".heap_bytes_per_op", b / ops)
        emit(key + ".garbage_bytes_per_op", k / ops)
        emit(key + ".heap_locked_ok", heap_locked_ok(f, arg, n))


# -- seeded traces (identical on every interpreter) -----------------------------------


class Rand:
    """The C library's LCG (x * 1103515245 + 12345 mod 2**31), 15-bit outputs."""

    def __init__(self, seed):
        self.x = seed & 0x7FFFFFFF

    def next(self):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 16) & 0x7FFF

    def below(self, n):
        return (self.next() * 32768 + self.next()) % n


def mixed_size(r, quantum_sizes):
    """A request size from the documented mixed distribution.

    Bytes (quantum_sizes False): 70 % 8-64, 25 % 65-512, 5 % 513-4096 (uniform within
    each band). Quanta (True): 70 % 2-8, 25 % 9-32, 5 % 33-64."""
    p = r.below(100)
    if quantum_sizes:
        if p < 70:
            return 2 + r.below(7)
        if p < 95:
            return 9 + r.below(24)
        return 33 + r.below(32)
    if p < 70:
        return 8 + r.below(57)
    if p < 95:
        return 65 + r.below(448)
    return 513 + r.below(3584)


# -- the textbook peer ----------------------------------------------------------------


class FirstFit:
    """Address-ordered first fit over [base, base + size) with coalescing on free.

    The free blocks are two parallel lists (addresses, sizes) in address order;
    alloc takes the first block big enough, free walks to its place and merges
    with free neighbours. steps = free blocks looked at (the boundary-tag steps)."""

    def __init__(self, base, size, quantum):
        self.q = quantum
        self.fa = [base]
        self.fs = [size]
        self.steps = 0
        self.maxsteps = 0
        self.nalloc = 0
        self.nfree = 0


def ff_alloc(ff, size, flags):
    q = ff.q
    size = (size + q - 1) // q * q
    fa = ff.fa
    fs = ff.fs
    n = len(fa)
    i = 0
    while i < n and fs[i] < size:
        i += 1
    ff.steps += i + 1
    if i + 1 > ff.maxsteps:
        ff.maxsteps = i + 1
    if i == n:
        return None
    a = fa[i]
    if fs[i] == size:
        del fa[i]
        del fs[i]
    else:
        fa[i] = a + size
        fs[i] -= size
    ff.nalloc += 1
    return a


def ff_free(ff, a, size):
    q = ff.q
    size = (size + q - 1) // q * q
    fa = ff.fa
    fs = ff.fs
    n = len(fa)
    i = 0
    while i < n and fa[i] < a:
        i += 1
    ff.steps += i + 1
    if i + 1 > ff.maxsteps:
        ff.maxsteps = i + 1
    ff.nfree += 1
    if i > 0 and fa[i - 1] + fs[i - 1] == a:
        fs[i - 1] += size
        if i < n and a + size == fa[i]:
            fs[i - 1] += fs[i]
            del fa[i]
            del fs[i]
        return
    if i < n and a + size == fa[i]:
        fa[i] = a
        fs[i] += size
        return
    fa.insert(i, a)
    fs.insert(i, size)


def ff_nfreesegs(ff):
    return len(ff.fa)


# -- the steady live set ----------------------------------------------------------------

RING = 32  # live allocations kept by the ring workloads (power of two)


class Ring:
    """A steady live set of RING allocations; each op frees the oldest and
    allocates the next size of seq (1024 sizes): one free + one alloc = one pair."""

    def __init__(self, arena, alloc, free, flags, seq):
        self.vm = arena
        self.al = alloc
        self.fr = free
        self.fl = flags
        self.seq = seq
        self.A = [0] * RING
        self.S = [0] * RING
        self.j = 0
        for i in range(RING):
            z = seq[i]
            a = alloc(arena, z, flags)
            if a is None:
                raise MemoryError("ring: arena too small")
            self.A[i] = a
            self.S[i] = z
        self.j = RING


def l_ring(s, n):
    vm = s.vm
    al = s.al
    fr = s.fr
    fl = s.fl
    A = s.A
    S = s.S
    seq = s.seq
    j = s.j
    for _ in range(n):
        i = j & 31
        x = A[i]
        if x is not None:
            fr(vm, x, S[i])
        z = seq[j & 1023]
        A[i] = al(vm, z, fl)  # None (refused) is counted by the arena's nfail
        S[i] = z
        j += 1
    s.j = j


def l_ring_base(s, n):
    vm = s.vm
    al = s.al
    fr = s.fr
    fl = s.fl
    A = s.A
    S = s.S
    seq = s.seq
    j = s.j
    for _ in range(n):
        i = j & 31
        x = A[i]
        if x is not None:
            y = S[i]
        z = seq[j & 1023]
        A[i] = x  # the same stores as l_ring, of the values already there
        S[i] = S[i]
        j += z - z + 1


def size_seq(seed, quantum, small):
    """1024 request sizes in bytes: quanta from mixed_size (small: 1-8 quanta uniform)."""
    from array import array

    r = Rand(seed)
    seq = array("H", [0] * 1024)
    for i in range(1024):
        if small:
            seq[i] = (1 + r.below(8)) * quantum
        else:
            seq[i] = mixed_size(r, True) * quantum
    return seq
