"""uvm_km(9) and kmem(9): hypothesis state machines and one test per misuse."""
import os
import random

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import pool_pages as S
from mpalloc import intr, mem

LONG = os.environ.get("MPALLOC_FUZZ") == "long"
SETTINGS = settings(max_examples=200 if LONG else 20, stateful_step_count=200 if LONG else 40, deadline=None)


class UvmKmMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.uk = S.window(32768, 256)
        self.live = {}  # addr -> (size, type)

    @rule(size=st.integers(1, 3000), align=st.sampled_from([0, 256, 1024]),
          t=st.sampled_from(["WIRED", "PAGEABLE", "VAONLY"]), zero=st.booleans())
    def alloc(self, size, align, t, zero):
        uk = self.uk
        f = getattr(uk, "UVM_KMF_" + t) | uk.UVM_KMF_NOWAIT
        if zero and t == "WIRED":
            f |= uk.UVM_KMF_ZERO
        a = uk.uvm_km_alloc(uk.kernel_map, size, align, f)
        if a == 0:
            return
        sz = (size + 255) & -256
        assert a % 256 == 0 and (not align or a % align == 0)
        for b, (n, _) in self.live.items():
            assert a + sz <= b or b + n <= a, "overlap"
        if f & uk.UVM_KMF_ZERO:
            assert bytes(mem.buf(a, sz)) == bytes(sz)
        if t == "PAGEABLE":
            mem.buf(a, 1)[0] = 0x55
            assert uk.uvm_km_buf(a, 1)[0] == 0  # demand-zero on first access
        self.live[a] = (sz, t)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free(self, data):
        uk = self.uk
        a = data.draw(st.sampled_from(sorted(self.live)))
        sz, t = self.live.pop(a)
        uk.uvm_km_free(uk.kernel_map, a, sz, getattr(uk, "UVM_KMF_" + t))

    @invariant()
    def stats(self):
        s = self.uk.uvm_km_stats()
        for t in ("WIRED", "PAGEABLE", "VAONLY"):
            assert s[t.lower()] == sum(n for n, tt in self.live.values() if tt == t)


TestUvmKmModel = UvmKmMachine.TestCase
TestUvmKmModel.settings = SETTINGS


class KmemMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        S.window(65536, 256)
        from mpalloc import kmem

        self.k = kmem
        self.live = {}

    @rule(size=st.one_of(st.integers(1, 1024), st.integers(1025, 3000)), z=st.booleans())
    def alloc(self, size, z):
        k = self.k
        p = (k.kmem_zalloc if z else k.kmem_alloc)(size, k.KM_NOSLEEP)
        if p is None:
            return
        assert p % 8 == 0
        for b, n in self.live.items():
            assert p + size <= b or b + n <= p, "overlap"
        if z:
            assert bytes(mem.buf(p, size)) == bytes(size)
        mem.buf(p, size)[size - 1] = 0x77  # the last byte is ours
        self.live[p] = size

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free(self, data):
        p = data.draw(st.sampled_from(sorted(self.live)))
        self.k.kmem_free(p, self.live.pop(p))

    @rule(on=st.booleans())
    def debug(self, on):
        self.k.kmem_debug(on)

    @invariant()
    def stats(self):
        s = self.k.kmem_stats()
        small = sum(1 for n in self.live.values() if n <= 1024)  # debug items up to 1024 too (class 1360)
        inuse = sum(c["inuse"] for c in s["classes"])
        large = s["large"]["nalloc"] - s["large"]["nfree"]
        assert inuse + large == len(self.live)
        assert small <= inuse + large


TestKmemModel = KmemMachine.TestCase
TestKmemModel.settings = SETTINGS


@pytest.fixture
def uk():
    return S.window(32768, 256)


def test_uvm_km_free_wrong_type(uk):
    a = uk.uvm_km_alloc(uk.kernel_map, 512, 0, uk.UVM_KMF_WIRED)
    with pytest.raises(ValueError, match="uvm_km_free: 0x.* allocated with type 0x1, freed with 0x4"):
        uk.uvm_km_free(uk.kernel_map, a, 512, uk.UVM_KMF_VAONLY)


def test_uvm_km_free_wrong_size(uk):
    a = uk.uvm_km_alloc(uk.kernel_map, 512, 0, uk.UVM_KMF_WIRED)
    with pytest.raises(ValueError, match="allocated with 512 bytes"):
        uk.uvm_km_free(uk.kernel_map, a, 1024, uk.UVM_KMF_WIRED)


def test_uvm_km_free_never_returned(uk):
    a = uk.uvm_km_alloc(uk.kernel_map, 512, 0, uk.UVM_KMF_WIRED)
    with pytest.raises(ValueError, match="never returned"):
        uk.uvm_km_free(uk.kernel_map, a + 256, 256, uk.UVM_KMF_WIRED)
    with pytest.raises(ValueError, match="never returned"):
        uk.uvm_km_free(uk.kernel_map, a + 3, 256, uk.UVM_KMF_WIRED)
    uk.uvm_km_free(uk.kernel_map, a, 512, uk.UVM_KMF_WIRED)
    with pytest.raises(ValueError, match="never returned"):
        uk.uvm_km_free(uk.kernel_map, a, 512, uk.UVM_KMF_WIRED)


def test_uvm_km_flag_errors(uk):
    with pytest.raises(ValueError, match="UVM_KMF_ZERO is only for UVM_KMF_WIRED"):
        uk.uvm_km_alloc(uk.kernel_map, 256, 0, uk.UVM_KMF_PAGEABLE | uk.UVM_KMF_ZERO)
    with pytest.raises(ValueError, match="exactly one of WIRED"):
        uk.uvm_km_alloc(uk.kernel_map, 256, 0, uk.UVM_KMF_WIRED | uk.UVM_KMF_VAONLY)
    with pytest.raises(ValueError, match="UVM_KMF_EXEC: this board has no executable region"):
        uk.uvm_km_alloc(uk.kernel_map, 256, 0, uk.UVM_KMF_WIRED | uk.UVM_KMF_EXEC)
    with pytest.raises(ValueError, match="align 100"):
        uk.uvm_km_alloc(uk.kernel_map, 256, 100, uk.UVM_KMF_WIRED)
    with pytest.raises(ValueError, match="not a map of uvm_km"):
        uk.uvm_km_alloc(object(), 256, 0, uk.UVM_KMF_WIRED)


def test_uvm_km_exhaustion_and_waitva(uk):
    a = uk.uvm_km_alloc(uk.kernel_map, 32768, 0, uk.UVM_KMF_VAONLY)
    assert a == S.BASE
    assert uk.uvm_km_alloc(uk.kernel_map, 256, 0, uk.UVM_KMF_WIRED) == 0
    assert uk.uvm_km_alloc(uk.kernel_map, 256, 0, uk.UVM_KMF_WIRED | uk.UVM_KMF_WAITVA | uk.UVM_KMF_CANFAIL) == 0
    with pytest.raises(MemoryError, match="UVM_KMF_WAITVA would wait forever"):
        uk.uvm_km_alloc(uk.kernel_map, 256, 0, uk.UVM_KMF_WIRED | uk.UVM_KMF_WAITVA)


def _thread_window(size=8192):
    # two emulated CPUs: the map gets a real lock (intr.mutex_init) and
    # UVM_KMF_WAITVA may wait for another CPU
    from mpalloc import uvm_km, kmem

    intr.setup(2, intr.MODE_THREAD)
    mem.attach(S.BASE, bytearray(size))
    kmem.kmem_reset()
    uvm_km.uvm_km_bootstrap(S.BASE, size, 256)
    return uvm_km


@pytest.mark.timeout(30)
def test_uvm_km_trylock_fails_instead_of_waiting():
    import _thread
    import time

    uk = _thread_window()
    lock = uk._maps[id(uk.kernel_map)].lock  # the map lock another CPU would hold mid-allocation
    held, go = _thread.allocate_lock(), _thread.allocate_lock()
    held.acquire()
    go.acquire()

    def other_cpu():
        intr.cpu_attach(1)
        lock.acquire()
        held.release()
        go.acquire()  # keep the map locked until the main thread has tried
        lock.release()
        held.release()

    try:
        _thread.start_new_thread(other_cpu, ())
        held.acquire()
        t0 = time.monotonic()
        assert uk.uvm_km_alloc(uk.kernel_map, 256, 0, uk.UVM_KMF_WIRED | uk.UVM_KMF_TRYLOCK) == 0
        assert time.monotonic() - t0 < 1.0  # failed at once, did not wait for the lock
        assert uk.uvm_km_stats()["wired"] == 0  # nothing half-done
        go.release()
        held.acquire()  # the other CPU has let go of the map
        a = uk.uvm_km_alloc(uk.kernel_map, 256, 0, uk.UVM_KMF_WIRED | uk.UVM_KMF_TRYLOCK)
        assert a == S.BASE
        uk.uvm_km_free(uk.kernel_map, a, 256, uk.UVM_KMF_WIRED)
    finally:
        if go.locked():
            go.release()
        intr.setup(1)


@pytest.mark.timeout(30)
def test_uvm_km_waitva_waits_for_another_cpu_to_free():
    import _thread
    import time

    uk = _thread_window()
    full = uk.uvm_km_alloc(uk.kernel_map, 8192, 0, uk.UVM_KMF_VAONLY)
    assert full == S.BASE
    assert uk.uvm_km_alloc(uk.kernel_map, 1024, 0, uk.UVM_KMF_WIRED) == 0  # no WAITVA: fails at once
    done = []

    def other_cpu():
        intr.cpu_attach(1)
        time.sleep(0.05)
        done.append(time.monotonic())  # before the free: the waiter may take the space at once
        uk.uvm_km_free(uk.kernel_map, full, 8192, uk.UVM_KMF_VAONLY)

    try:
        _thread.start_new_thread(other_cpu, ())
        a = uk.uvm_km_alloc(uk.kernel_map, 1024, 0, uk.UVM_KMF_WIRED | uk.UVM_KMF_WAITVA)
        got = time.monotonic()
        assert a == S.BASE and done and got >= done[0]  # it waited for the free, then took the space
        assert uk.uvm_km_stats()["wired"] == 1024 and uk.uvm_km_stats()["vaonly"] == 0
        uk.uvm_km_free(uk.kernel_map, a, 1024, uk.UVM_KMF_WIRED)
    finally:
        intr.setup(1)


def test_uvm_km_exec_region():
    intr.setup(1)
    mem.attach(S.BASE, bytearray(8192))
    from mpalloc import uvm_km as uk

    uk.uvm_km_bootstrap(S.BASE, 8192, 256, exec_regions=((S.BASE + 4096, 1024),))
    e = uk.uvm_km_alloc(uk.kernel_map, 256, 0, uk.UVM_KMF_WIRED | uk.UVM_KMF_EXEC)
    assert S.BASE + 4096 <= e < S.BASE + 5120
    for _ in range(20):
        a = uk.uvm_km_alloc(uk.kernel_map, 256, 0, uk.UVM_KMF_WIRED)
        assert not (S.BASE + 4096 <= a < S.BASE + 5120)
    uk.uvm_km_free(uk.kernel_map, e, 256, uk.UVM_KMF_WIRED)


def test_uvm_km_suballoc(uk):
    sm, lo, hi = uk.uvm_km_suballoc(uk.kernel_map, 4096, uk.VM_MAP_TOPDOWN | uk.VM_MAP_INTRSAFE, True,
                                    S.BASE + 8192, "sub1")
    assert (lo, hi) == (S.BASE + 8192, S.BASE + 12288)
    a = uk.uvm_km_alloc(sm, 256, 0, uk.UVM_KMF_WIRED)
    assert a == hi - 256  # top-down
    b = intr.run_hard(lambda m: uk.uvm_km_alloc(m, 256, 0, uk.UVM_KMF_WIRED | uk.UVM_KMF_NOWAIT), sm, 0)
    assert lo <= b < hi
    assert "sub1" in uk.uvm_km_stats()["submaps"]
    with pytest.raises(ValueError, match="never returned"):
        uk.uvm_km_free(uk.kernel_map, lo, 4096, uk.UVM_KMF_VAONLY)
    with pytest.raises(MemoryError, match="uvm_km_suballoc: no 4096 bytes at"):
        uk.uvm_km_suballoc(uk.kernel_map, 4096, 0, True, S.BASE + 8192, "sub2")
    with pytest.raises(ValueError, match="map 'sub1' is not VM_MAP_PAGEABLE"):
        uk.uvm_km_alloc(sm, 256, 0, uk.UVM_KMF_PAGEABLE)
    pg, plo, phi = uk.uvm_km_suballoc(uk.kernel_map, 1024, uk.VM_MAP_PAGEABLE, False, 0, "pageable")
    p = uk.uvm_km_alloc(pg, 256, 0, uk.UVM_KMF_PAGEABLE)
    assert plo <= p < phi and uk.uvm_km_buf(p, 4)[0] == 0
    uk.uvm_km_free(pg, p, 256, uk.UVM_KMF_PAGEABLE)
    with pytest.raises(ValueError, match="not VM_MAP_INTRSAFE"):
        sm2, _, _ = uk.uvm_km_suballoc(uk.kernel_map, 1024, 0, False, 0, "plain")
        intr.run_hard(lambda m: uk.uvm_km_alloc(m, 256, 0, uk.UVM_KMF_WIRED), sm2, 0)


@pytest.fixture
def km():
    S.window(65536, 256)
    from mpalloc import kmem

    return kmem


def test_kmem_wrong_size_class(km):
    p = km.kmem_alloc(20, km.KM_SLEEP)
    with pytest.raises(ValueError, match="kmem_free: 0x.* is not from size class kmem-00112"):
        km.kmem_free(p, 100)


def test_kmem_large_wrong_size(km):
    p = km.kmem_alloc(3000, km.KM_SLEEP)
    with pytest.raises(ValueError, match="kmem_free: uvm_km_free: .*allocated with 3072 bytes"):
        km.kmem_free(p, 5000)
    km.kmem_free(p, 3000)


def test_kmem_args_and_interrupt(km):
    with pytest.raises(ValueError, match="kmem_alloc: size must be > 0"):
        km.kmem_alloc(0, km.KM_SLEEP)
    with pytest.raises(ValueError, match="exactly one of KM_SLEEP"):
        km.kmem_alloc(8, 0)
    with pytest.raises(ValueError, match="use kmem_intr_alloc"):
        intr.run_hard(lambda a: km.kmem_alloc(8, km.KM_NOSLEEP), None, 0)
    p = intr.run_hard(lambda a: km.kmem_intr_alloc(8, km.KM_NOSLEEP), None, 0)
    with pytest.raises(ValueError, match="use kmem_intr_free"):
        intr.run_hard(lambda a: km.kmem_free(a, 8), p, 0)
    intr.run_hard(lambda a: km.kmem_intr_free(a, 8), p, 0)
    with pytest.raises(ValueError, match="kmem_free: bad arguments"):
        km.kmem_free(None, 8)


def test_kmem_debug_overflow(km):
    km.kmem_debug(True)
    p = km.kmem_alloc(20, km.KM_SLEEP)
    mem.buf(p, 21)[20] = 0
    with pytest.raises(ValueError, match=r"redzone overwritten at 0x%x \(overflow; class kmem-00032\)" % (p + 20)):
        km.kmem_free(p, 20)


def test_kmem_debug_size_check(km):
    km.kmem_debug(True)
    p = km.kmem_alloc(20, km.KM_SLEEP)
    with pytest.raises(ValueError, match="size check: 0x%x was allocated with 20 bytes.*kmem-00032" % p):
        km.kmem_free(p, 25)  # same class (31 -> 32), another size


def test_kmem_debug_double_free(km):
    km.kmem_debug(True)
    p = km.kmem_alloc(100, km.KM_SLEEP)
    km.kmem_free(p, 100)
    with pytest.raises(ValueError, match=r"double free of 0x%x \(class kmem-00112\)" % p):
        km.kmem_free(p, 100)


def test_kmem_debug_use_after_free(km):
    km.kmem_debug(True)
    p = km.kmem_alloc(100, km.KM_SLEEP)
    km.kmem_free(p, 100)
    mem.buf(p + 10, 1)[0] = 1
    with pytest.raises(ValueError, match=r"use after free at 0x%x \(class kmem-00112\)" % (p + 10)):
        km.kmem_alloc(100, km.KM_SLEEP)


def test_kmem_debug_switch_keeps_old_items(km):
    p = km.kmem_alloc(24, km.KM_SLEEP)
    km.kmem_debug(True)
    q = km.kmem_alloc(24, km.KM_SLEEP)
    km.kmem_free(p, 24)  # allocated before debug mode: freed without checks
    km.kmem_debug(False)
    km.kmem_free(q, 24)  # a debug item stays checked
    with pytest.raises(ValueError, match="double free"):
        km.kmem_free(q, 24)


def test_kmem_waste_uniform_1_to_1024(km):
    rnd = random.Random(1)
    req = alloc = 0
    for _ in range(100000):
        n = rnd.randint(1, 1024)
        req += n
        alloc += km.kmem_class(n)
    waste = 1 - req / alloc
    print("kmem internal waste, uniform 1..1024: %.2f %%" % (100 * waste))
    assert waste <= 0.13


def _kmem_teardown(self):
    for p, n in list(self.live.items()):
        self.k.kmem_free(p, n)
    self.live.clear()


KmemMachine.teardown = _kmem_teardown


def test_kmem_double_free_refused_in_magazine_and_pool(km):
    # the live-item map (one byte per 8 bytes of kernel_map) refuses a second
    # free whether the item still sits in a magazine or went back to its pool
    p = km.kmem_alloc(40, km.KM_NOSLEEP)
    km.kmem_free(p, 40)
    with pytest.raises(ValueError, match=r"kmem_free: 0x%x already free \(double free: in a magazine of kmem-00040" % p):
        km.kmem_free(p, 40)
    assert km.kmem_alloc(40, km.KM_NOSLEEP) == p  # nothing changed: the magazine hands it out again
    km.kmem_free(p, 40)
    from mpalloc import pool_cache as PC

    PC.pool_cache_invalidate(km._caches[km._tab[(40 - 1) >> 3]])  # the magazines back to the pool
    with pytest.raises(ValueError, match=r"kmem_free: 0x%x (already free \(double free\)|is not from size class)" % p):
        km.kmem_free(p, 40)


def test_kmem_free_huge_and_foreign_addresses(km):
    p = km.kmem_alloc(64, km.KM_NOSLEEP)
    for bad in (p + (1 << 64), p - (1 << 64), p + 4, 8, -p):
        with pytest.raises(ValueError, match="kmem_free: "):
            km.kmem_free(bad, 64)
    km.kmem_free(p, 64)


def test_kmem_cold_module_dropped_after_use(km):
    import sys

    from mpalloc import lazy

    lazy.keep[0] = False  # (CPython keeps modules by default)
    try:
        km.kmem_stats()
        km.kmem_init(True)
        p = km.kmem_alloc(24, km.KM_NOSLEEP)
        with pytest.raises(ValueError):
            km.kmem_free(p, 100)
        km.kmem_free(p, 24)
        assert "mpalloc.kmem_cold" not in sys.modules
    finally:
        lazy.keep[0] = None
