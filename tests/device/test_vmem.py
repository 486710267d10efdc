# vmem(9) on the device: semantics, a seeded random workload with the invariant
# checker, zero heap allocation under heap_lock, two threads racing.
#
#   MICROPYPATH=firmware .venv/bin/micropython -X heapsize=256K tests/device/test_vmem.py
#   (compiled from source: 192K is too fragmented for the tag arrays; deployed
#   suites run precompiled)
import gc
import sys

import mptest
import mptest_sized
from mptest import Suite, check_msg, eq, heap_locked, raises
from mpalloc import intr
from mpalloc import vmem as V
from mpalloc.vmem import (
    M_BESTFIT,
    M_FIRSTFIT,
    M_NEXTFIT,
    M_NOWAIT,
    VMEM_ADDR_MAX,
    VMEM_ADDR_MIN,
    VMEM_ALLOC,
    VMEM_FREE,
    vmem_alloc,
    vmem_create,
    vmem_destroy,
    vmem_free,
    vmem_segments,
    vmem_size,
    vmem_stats,
    vmem_xalloc,
    vmem_xfree,
)

s = Suite("vmem", needs=("heap:65536",))
# Figures sized for a slow (emulated) board, full elsewhere (mptest_sized):
# random_workload's operations, quantum_cache's warm-up and steady-state walks,
# _pairs' rounds (in debug mode: check_heap_locked).
RW_OPS = mptest_sized.sized(20000, 400)
PAIRS = mptest_sized.sized(200, 40)  # _pairs' rounds
DBG_PAIRS = mptest_sized.sized(200, 10)  # check_heap_locked: a vmem_check after every step
QC_WARM, QC_OPS = mptest_sized.sized((6000, 20000), (600, 1200))
NW = M_NOWAIT
BASE = 0x20000000
# small ints are 31-bit on 32-bit ports, 63-bit on 64-bit ones
SMALL32 = sys.maxsize < (1 << 32) if hasattr(sys, "maxsize") else True


class Rng:
    # xorshift32: the same sequence on every port (no random module needed)
    def __init__(self, seed):
        self.x = seed & 0x3FFFFFFF or 1

    def next(self, n):
        x = self.x
        x ^= (x << 13) & 0x3FFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0x3FFFFFFF
        self.x = x
        return x % n


@s.test
def semantics():
    vm = vmem_create("sem", BASE, 4096, 16, 0, NW)
    a = vmem_alloc(vm, 100, NW)
    eq(a, BASE, "first fit address")
    eq(vmem_size(vm, VMEM_ALLOC), 112, "rounded to the quantum")
    x = vmem_xalloc(vm, 48, 256, 32, 0, VMEM_ADDR_MIN, VMEM_ADDR_MAX, NW | M_BESTFIT)
    eq(x % 256, 32, "align/phase")
    y = vmem_xalloc(vm, 48, 0, 0, 64, BASE + 0x230, VMEM_ADDR_MAX, NW)
    eq(y, BASE + 0x240, "nocross pushes to the next 64-byte block")
    eq(vmem_xalloc(vm, 256, 0, 0, 0, BASE + 0x800, BASE + 0x8FE, NW), None, "maxaddr inclusive")
    z = vmem_xalloc(vm, 256, 0, 0, 0, BASE + 0x800, BASE + 0x8FF, NW)
    eq(z, BASE + 0x800, "window exactly the size")
    e = raises(ValueError, vmem_free, vm, x, 48)
    check_msg(e, "vmem_free", "vmem_xalloc")
    e = raises(ValueError, vmem_free, vm, a, 64)
    check_msg(e, "vmem_free", "does not match")
    for p, n in ((a, 100),):
        vmem_free(vm, p, n)
    e = raises(ValueError, vmem_free, vm, a, 100)
    check_msg(e, "vmem_free", "never allocated", "double free")
    e = raises(ValueError, vmem_xalloc, vm, 16, 48, 0, 0, 0, VMEM_ADDR_MAX, NW)
    check_msg(e, "vmem_xalloc", "power of two")
    e = raises(ValueError, vmem_alloc, vm, 16, 0)
    check_msg(e, "vmem_alloc", "no wait flag")
    vmem_xfree(vm, x, 48)
    vmem_xfree(vm, y, 48)
    vmem_xfree(vm, z, 256)
    eq(vmem_segments(vm), [(BASE, 4096, "free")], "coalesced back to one segment")
    # next fit: cyclic ids
    ids = vmem_create("ids", 1, 8, 1, 0, NW)
    got = []
    for _ in range(10):
        i = vmem_alloc(ids, 1, NW | M_NEXTFIT)
        got.append(i)
        vmem_free(ids, i, 1)
    eq(got, [1, 2, 3, 4, 5, 6, 7, 8, 1, 2], "next fit")
    vmem_destroy(vm)
    vmem_destroy(ids)


@s.test
def quantum_cache():
    vm = vmem_create("qc", BASE, 1 << 16, 16, 128, NW)
    a = vmem_alloc(vm, 32, NW)
    vmem_free(vm, a, 32)
    eq(vmem_alloc(vm, 32, NW), a, "cache hit returns the item just freed")
    vmem_free(vm, a, 32)
    e = raises(ValueError, vmem_free, vm, a, 32)
    check_msg(e, "vmem_free", "double free")
    # steady state: a random walk of small allocations around a live set
    r = Rng(7)
    live = []
    nsmall = 0
    for i in range(QC_WARM):
        if len(live) < 24 or (len(live) < 72 and r.next(2)):
            n = 16 * (1 + r.next(8))
            live.append((vmem_alloc(vm, n, NW), n))
            nsmall += 1
        else:
            p, n = live.pop(r.next(len(live)))
            vmem_free(vm, p, n)
    st0 = vmem_stats(vm)
    base_fills = st0["qfills"] + st0["qdrains"]
    for i in range(QC_OPS):
        if len(live) < 24 or (len(live) < 72 and r.next(2)):
            n = 16 * (1 + r.next(8))
            live.append((vmem_alloc(vm, n, NW), n))
            nsmall += 1
        else:
            p, n = live.pop(r.next(len(live)))
            vmem_free(vm, p, n)
    st1 = vmem_stats(vm)
    visits = st1["qfills"] + st1["qdrains"] - base_fills
    s.metric("quantum_cache", "segment_visits_per_1000_small", visits * 1000 // (QC_OPS // 2))
    if visits > max(1, QC_OPS // 2000):  # at most 1 in 1000 small allocations (one in a short walk)
        raise AssertionError("%d segment-list visits in ~%d small allocations" % (visits, QC_OPS // 2))
    for p, n in live:
        vmem_free(vm, p, n)
    V.vmem_check(vm)
    vmem_destroy(vm)


def _heap_room():
    try:
        return gc.mem_free()
    except AttributeError:
        return 1 << 20


@s.test
def random_workload():
    # seeded random alloc/xalloc/free/xfree with an independent ownership map;
    # vmem_check (the full invariant check) every CHECK operations
    nops = RW_OPS
    Q = 8
    NQ = 2048
    vm = vmem_create("rw", BASE, NQ * Q, Q, 4 * Q, NW)
    own = bytearray(NQ)  # 1 where the model says a quantum is allocated
    live = []  # [addr, size, kind]
    r = Rng(12345)
    inuse = 0
    fails = 0
    CHECK = 200
    for op in range(nops):
        k = r.next(10)
        if live and (k < 4 or inuse > NQ * Q * 3 // 4):
            e = live.pop(r.next(len(live)))
            a, n, kind = e
            if kind:
                vmem_xfree(vm, a, n)
            else:
                vmem_free(vm, a, n)
            o = (a - BASE) // Q
            for i in range(o, o + (n + Q - 1) // Q):
                own[i] = 0
            inuse -= (n + Q - 1) // Q * Q
        else:
            n = 1 + r.next(24 * Q if r.next(4) else 200 * Q)
            if k < 7:
                a = vmem_alloc(vm, n, NW | (M_FIRSTFIT, M_BESTFIT, M_FIRSTFIT)[r.next(3)])
                kind = 0
            else:
                align = Q << r.next(5)
                phase = Q * r.next(align // Q)
                a = vmem_xalloc(vm, n, align, phase, 0, VMEM_ADDR_MIN, VMEM_ADDR_MAX, NW)
                kind = 1
                if a is not None and a % align != phase:
                    raise AssertionError("xalloc 0x%x misses align %d phase %d" % (a, align, phase))
            if a is None:
                fails += 1
                continue
            o = (a - BASE) // Q
            m = (n + Q - 1) // Q
            if o < 0 or o + m > NQ:
                raise AssertionError("0x%x+%d outside the arena" % (a, n))
            for i in range(o, o + m):
                if own[i]:
                    raise AssertionError("op %d: 0x%x+%d overlaps a live allocation" % (op, a, n))
                own[i] = 1
            live.append((a, n, kind))
            inuse += m * Q
        if vmem_size(vm, VMEM_ALLOC) - vmem_stats(vm)["qcached"] != inuse:
            raise AssertionError("op %d: vmem_size disagrees with the model" % op)
        if op % CHECK == 0:
            V.vmem_check(vm)
    V.vmem_check(vm)
    s.metric("random_workload", "ops", nops)
    s.metric("random_workload", "failed_allocs", fails)
    s.metric("random_workload", "maxsteps", vmem_stats(vm)["maxsteps"])
    for a, n, kind in live:
        if kind:
            vmem_xfree(vm, a, n)
        else:
            vmem_free(vm, a, n)
    eq(vmem_size(vm, VMEM_ALLOC), vmem_stats(vm)["qcached"], "all freed")
    vmem_destroy(vm)


def _holey(base, nholes, qcache):
    # an arena with nholes one-quantum free segments (plus the tail)
    Q = 16
    gc.collect()  # room for the tag arrays in a 192K heap
    vm = vmem_create("holes", base, (4 * nholes + 64) * Q, Q, qcache, NW)
    keep = []
    for i in range(2 * nholes):
        keep.append(vmem_xalloc(vm, Q, 0, 0, 0, VMEM_ADDR_MIN, VMEM_ADDR_MAX, NW))
    for i in range(0, 2 * nholes, 2):
        vmem_xfree(vm, keep[i], Q)
    return vm


_box = [None, 0, 0]


_NP = [PAIRS]  # rounds _pairs makes (check_heap_locked: DBG_PAIRS in debug mode)


def _pairs(vm):
    # _NP[0] alloc+free pairs of varying sizes, M_NOWAIT, instant and best fit
    i = 0
    while i < _NP[0]:
        n = 16 * (1 + (i & 7))
        a = vmem_alloc(vm, n, M_NOWAIT)
        b = vmem_alloc(vm, n + 16, M_NOWAIT | M_BESTFIT)
        vmem_free(vm, a, n)
        x = vmem_xalloc(vm, 32, 64, 16, 0, VMEM_ADDR_MIN, VMEM_ADDR_MAX, M_NOWAIT)
        vmem_free(vm, b, n + 16)
        vmem_xfree(vm, x, 32)
        i += 1
    return i


@s.test
def zero_alloc_segment_path():
    vm = _holey(BASE, 300, 0)
    _pairs(vm)  # warm up (tag reserve grown, nothing else to allocate)
    eq(heap_locked(_pairs, vm), PAIRS, "pairs under heap_lock")
    V.vmem_check(vm)


@s.test
def zero_alloc_quantum_cache():
    vm = _holey(BASE, 100, 128)
    _pairs(vm)
    eq(heap_locked(_pairs, vm), PAIRS, "pairs under heap_lock (qcache sizes)")
    V.vmem_check(vm)


def _hot_pairs(vm, n):
    # vmem_alloc/vmem_free (instant fit: exact, split; best fit; quantum cache
    # when the arena has one), n rounds
    i = 0
    while i < n:
        a = vmem_alloc(vm, 16, NW)
        b = vmem_alloc(vm, 48, NW)
        c = vmem_alloc(vm, 1024, NW)
        d = vmem_alloc(vm, 400, NW | M_BESTFIT)
        vmem_free(vm, b, 48)
        vmem_free(vm, a, 16)
        vmem_free(vm, c, 1024)
        vmem_free(vm, d, 400)
        i += 1
    return i


def _xfrees(vm, x, i, j):
    while i < j:
        vmem_xfree(vm, x[i], 32)
        i += 1


@s.test
def hot_paths_no_heap_frames():
    # micropython.mem_total() counts every heap allocation, also a call frame
    # the VM takes from the heap (and frees at once) when a function's state
    # exceeds 11 words; heap_lock hides that (the VM falls back to the C
    # stack). vmem_alloc/vmem_free must not do it: 0 bytes per operation.
    # (vmem_xalloc has 8 parameters: its own frame is always over 11 words.)
    try:
        import micropython

        mt = micropython.mem_total
    except (ImportError, AttributeError):
        from mptest import skip

        skip("no micropython.mem_total on this port")
    for qc in (0, 64):
        vm = _holey(BASE, 40, qc)
        _hot_pairs(vm, 20)  # quantum caches filled, tag reserve grown
        m0 = mt()
        _hot_pairs(vm, 20)
        m1 = mt()
        _hot_pairs(vm, 60)
        m2 = mt()
        # the second run does 40 more rounds: what it takes beyond the first
        # is what 40 rounds take (the call of _hot_pairs itself cancels out)
        eq((m2 - m1) - (m1 - m0), 0, "heap bytes over 40 rounds of 4 pairs (qcache_max %d)" % qc)
        x = [vmem_xalloc(vm, 32, 0, 0, 0, VMEM_ADDR_MIN, VMEM_ADDR_MAX, NW) for _ in range(60)]
        m0 = mt()
        _xfrees(vm, x, 0, 20)
        m1 = mt()
        _xfrees(vm, x, 20, 60)
        m2 = mt()
        eq((m2 - m1) - (m1 - m0), 0, "heap bytes over 20 vmem_xfree")
        V.vmem_check(vm)


@s.test
def from_hard_irq():
    # the same pairs as an (emulated) hard interrupt handler: heap locked,
    # cpu_intr_p() true; M_WAITOK is refused there
    vm = _holey(BASE, 100, 64)
    _pairs(vm)
    eq(intr.run_hard(_pairs, vm, 0), PAIRS, "pairs in a hard interrupt")

    def waitok(v):
        try:
            vmem_alloc(v, 16, V.M_WAITOK)
        except ValueError:
            return 1
        except MemoryError:  # the message could not be formatted (heap locked)
            return 1
        return 0

    eq(intr.run_hard(waitok, vm, 0), 1, "M_WAITOK refused in interrupt context")
    V.vmem_check(vm)


@s.test
def zero_alloc_32bit_ranges():
    # an arena whose addresses are small ints on every port (SRAM at 0x2000_0000)
    # never makes a value >= 2**30: checked under heap_lock on the 32-bit port
    vm = _holey(0x3FF00000, 50, 64)
    _pairs(vm)
    eq(heap_locked(_pairs, vm), PAIRS, "0x3FF0_0000 arena under heap_lock")


def _high_pairs(vm):
    i = 0
    while i < 100:
        a = vmem_alloc(vm, 48, M_NOWAIT)
        vmem_free(vm, a, 48)
        i += 1
    return i


def _control(org):
    # what the caller must pay anyway: the returned address int and the
    # subtraction back to an offset (both heap objects when >= 2**30 on 32-bit)
    i = 0
    while i < 100:
        a = org + 48
        o = a - org
        i += 1
    return o


@s.test
def high_arena_offsets():
    # An arena at 0x4007_0000 (ESP32 IRAM). On a 64-bit port everything runs
    # under heap_lock. On a 32-bit port the address handed back is itself a
    # big int (nothing can avoid that), so compare the heap used by 100 pairs
    # with 100 rounds of just making such an address and subtracting: vmem's
    # own work (offsets in quanta) must add nothing.
    vm = _holey(0x40070000, 50, 0)
    _high_pairs(vm)
    if not SMALL32:
        eq(heap_locked(_high_pairs, vm), 100, "high arena under heap_lock (64-bit)")
        return
    gc.collect()
    gc.disable()
    try:
        m0 = gc.mem_alloc()
        _control(vm._origin)
        ctl = gc.mem_alloc() - m0
        m0 = gc.mem_alloc()
        _high_pairs(vm)
        got = gc.mem_alloc() - m0
    finally:
        gc.enable()
    s.metric("high_arena_offsets", "bytes_per_pair", got // 100)
    s.metric("high_arena_offsets", "control_bytes_per_pair", ctl // 100)
    if got > ctl:
        raise AssertionError("100 pairs allocated %d bytes, address ints alone %d" % (got, ctl))


@s.test
def two_threads_race():
    mptest_sized.need("threads", "no _thread")
    import _thread

    intr.setup(2)
    vm = vmem_create("race", BASE, 64 * 1024, 16, 64, NW)
    owner = bytearray(4096)  # per quantum: 0 free, 1/2 owned by that thread
    state = [None, 0, 0]  # error, done flags of threads 1 and 2
    N = mptest_sized.sized(3000, 300)  # ops per thread (each core on emu:rp2040)

    def work(me, seed):
        r = Rng(seed)
        mine = []
        try:
            for i in range(N):
                if len(mine) < 8 or (len(mine) < 40 and r.next(2)):
                    n = 16 * (1 + r.next(12))
                    if r.next(2):
                        a = vmem_alloc(vm, n, NW)
                        k = 0
                    else:
                        a = vmem_xalloc(vm, n, 32, 0, 0, VMEM_ADDR_MIN, VMEM_ADDR_MAX, NW)
                        k = 1
                    if a is None:
                        continue
                    o = (a - BASE) >> 4
                    for j in range(o, o + (n >> 4)):
                        if owner[j]:
                            raise AssertionError("thread %d got 0x%x already owned by %d" % (me, a, owner[j]))
                        owner[j] = me
                    mine.append((a, n, k))
                else:
                    a, n, k = mine.pop(r.next(len(mine)))
                    o = (a - BASE) >> 4
                    for j in range(o, o + (n >> 4)):
                        if owner[j] != me:
                            raise AssertionError("thread %d: 0x%x changed owner" % (me, a))
                        owner[j] = 0
                    if k:
                        vmem_xfree(vm, a, n)
                    else:
                        vmem_free(vm, a, n)
            for a, n, k in mine:
                o = (a - BASE) >> 4
                for j in range(o, o + (n >> 4)):
                    owner[j] = 0
                if k:
                    vmem_xfree(vm, a, n)
                else:
                    vmem_free(vm, a, n)
        except Exception as e:
            state[0] = e
        state[me] = 1

    def other():
        try:
            intr.cpu_attach(1)
            work(2, 99)
        except BaseException as e:  # (work catches its own; this is cpu_attach's)
            state[0] = e
            state[2] = 1

    import time

    try:
        _thread.start_new_thread(other, ())
        work(1, 5)
        t0 = time.ticks_ms()
        while not state[2]:  # bounded: a thread that died or never started is a failure, not a hang
            if time.ticks_diff(time.ticks_ms(), t0) > 30000:
                raise AssertionError("the other thread did not finish within 30 s of this one (state %r)" % (state,))
    finally:
        intr.setup(1)
    if state[0] is not None:
        raise state[0]
    V.vmem_check(vm)
    eq(vmem_size(vm, VMEM_ALLOC), vmem_stats(vm)["qcached"], "everything back")


def _check(vm):
    return V.vmem_check(vm)


@s.test
def check_heap_locked():
    # the sanity check allocates nothing (debug mode runs it after every
    # operation, interrupt handlers included); a corruption found with the
    # heap locked raises the preallocated E_CHECK, details in check_lasterr
    from mpalloc import vmem_diag

    vm = _holey(BASE, 20, 64)
    _pairs(vm)
    a = vmem_alloc(vm, 32, NW)  # one handed out by the quantum cache
    V.vmem_debug(True)
    _NP[0] = DBG_PAIRS
    try:
        eq(heap_locked(_check, vm), True, "vmem_check under heap_lock")
        eq(heap_locked(_pairs, vm), DBG_PAIRS, "pairs under heap_lock in debug mode")
    finally:
        _NP[0] = PAIRS
        V.vmem_debug(False)
    try:
        import micropython

        mt = micropython.mem_total
    except (ImportError, AttributeError):
        mt = None
    if mt is not None:  # not even a transient heap frame
        V.vmem_check(vm)
        m0 = mt()
        V.vmem_check(vm)
        eq(mt() - m0, 0, "heap bytes of one vmem_check")
    t = vm._seg_next[vm._seg_next[0]]  # the first segment after the span marker
    vm._seg_size[t] += 1
    e = raises(AssertionError, V.vmem_check, vm)
    check_msg(e, "vmem_check", "holes")
    if mt is not None:
        e = None
        try:
            heap_locked(_check, vm)
        except AssertionError as x:
            e = x
        if e is not vmem_diag.E_CHECK:
            raise AssertionError("vmem_check under heap_lock raised %r, not E_CHECK" % (e,))
        eq(vmem_diag.check_lasterr[1], vm, "check_lasterr names the arena")
    vm._seg_size[t] -= 1
    V.vmem_check(vm)
    vmem_free(vm, a, 32)


@s.test
def quantum_cache_window():
    # items come only from the window (qcache_window quanta above the
    # origin); beyond it small requests take the segment path, same semantics
    w = V.qcache_window
    V.qcache_window = 32
    try:
        vm = vmem_create("qcw", BASE, 64 * 16, 16, 32, NW)
        eq(len(vm._qc_state), 32, "window of 32 quanta")
        got = []
        for i in range(40):
            got.append(vmem_alloc(vm, 16, NW))
        for a in got:
            if a is None:
                raise AssertionError("a small request failed with room in the arena")
        eq(sorted(got[:32]), [BASE + 16 * i for i in range(32)], "two fills in the window")
        eq(vmem_stats(vm)["qfills"], 2, "fills")
        V.vmem_check(vm)
        vmem_free(vm, got[0], 16)
        e = raises(ValueError, vmem_free, vm, got[0], 16)
        check_msg(e, "vmem_free", "double free")
        vmem_free(vm, got[-1], 16)
        e = raises(ValueError, vmem_free, vm, got[-1], 16)
        check_msg(e, "vmem_free", "never allocated")
        for a in got[1:-1]:
            vmem_free(vm, a, 16)
        V.vmem_check(vm)
        vmem_destroy(vm)
    finally:
        V.qcache_window = w



# -- issue 20: the native pair (vmem_native.py) beside the bytecode one ------
# Opt-in (vmem_native.install(): its code takes ~12 KB of heap on a Pico): the
# suite runs on the bytecode pair; these install it where the runtime compiles
# viper and check the binding and that both pairs give the same results.


def _native_sw():
    from mpalloc import native

    return native.switch[0]


def _install():
    # vmem_native installed, or None where the runtime has no viper emitter
    try:  # (__import__: the micro:bit's flat filesystem scan does not copy it there)
        vmem_native = __import__("mpalloc.vmem_native", None, None, ("install",))
    except (ImportError, SyntaxError, ValueError, NotImplementedError, MemoryError):
        return None
    vmem_native.install()
    return vmem_native


def _uninstall():
    from mpalloc import lazy

    m = sys.modules.get("mpalloc.vmem_native")
    if m is not None:
        m.uninstall()
    lazy.unload("vmem_native")


def _path():
    m = sys.modules.get("mpalloc.vmem_native")
    return m.path() if m is not None else "bytecode"


@s.test
def native_binds_expected_path():
    eq(_path(), "bytecode", "vmem path before vmem_native.install()")
    m = _install()
    try:
        path = _path()
        s.metric("native_binds_expected_path", "path", path)
        want = "native" if m is not None and _native_sw() else "bytecode"
        eq(path, want, "vmem path on %s after install()" % sys.platform)
        eq(V.vmem.alloc is V.vmem_alloc and V.vmem.free is V.vmem_free, True, "arena methods follow the binding")
    finally:
        _uninstall()
    eq(_path(), "bytecode", "after uninstalling")


def _both_run(seed):
    # a seeded mix of quantum-cache, instant-fit, xalloc and misuse on an arena
    # with a span below its origin; the results, the stats and the errors
    vm = vmem_create("nat", BASE + 0x8000, 0x8000, 16, 128, M_NOWAIT)
    V.vmem_add(vm, BASE, 0x4000, M_NOWAIT)  # quanta below the origin
    al = V.vmem_alloc
    fr = V.vmem_free
    out = []
    live = []
    x = seed
    for i in range(mptest_sized.sized(1500, 200)):
        x = (x * 1103515245 + 12345) & 0x3FFFFFFF
        if live and (x >> 7) % 5 < 2:
            a, n, k = live.pop((x >> 4) % len(live))
            if k:
                vmem_xfree(vm, a, n)
            else:
                fr(vm, a, n)
        else:
            n = 1 + (x >> 9) % (150 if x & 64 else 1500)
            k = (x >> 11) & 7 == 0
            a = vmem_xalloc(vm, n, 64, 0, 0, VMEM_ADDR_MIN, VMEM_ADDR_MAX, M_NOWAIT) if k else al(vm, n, M_NOWAIT)
            out.append(a)
            if a is not None:
                live.append((a, n, k))
    V.vmem_check(vm)
    errs = []
    a = al(vm, 32, M_NOWAIT)
    fr(vm, a, 32)
    for args in ((a, 32), (a + 8, 16), (a, 48)):
        try:
            fr(vm, args[0], args[1])
            errs.append(None)
        except ValueError as e:
            errs.append(str(e))
    st = vmem_stats(vm)
    for a, n, k in live:
        (vmem_xfree if k else fr)(vm, a, n)
    vmem_destroy(vm)
    h = 0
    for a in out:
        h = (h * 31 + (a or 0)) & 0x3FFFFFFF
    return h, st["nalloc"], st["nfree"], st["maxsteps"], errs


@s.test
def same_results_both_paths():
    from mpalloc import native

    sw = _native_sw()
    m = _install()
    try:
        native.on()
        if m is not None:
            m.install()
        a = _both_run(7)
        pa = _path()
        native.off()
        if m is not None:
            m.install()  # (native.off() does not reach an installed vmem_native)
        eq(_path(), "bytecode", "after native.off() and install()")
        b = _both_run(7)
    finally:
        if sw:
            native.on()
        else:
            native.off()
        _uninstall()
    s.metric("same_results_both_paths", "path", pa)
    eq(pa, "native" if m is not None else "bytecode", "path with vmem_native installed")
    eq(a, b, "native (%s) and bytecode results" % pa)

s.run()
