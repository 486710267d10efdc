"""vmem(9) semantics and misuse on CPython: worked examples of the man page and
subr_vmem.c, every misuse case of issue #3 with its error, waiting, destroy."""
import threading
import time

import pytest


from mpalloc import intr  # noqa: E402
from mpalloc import vmem as V  # noqa: E402
from mpalloc.vmem import *  # noqa: E402,F403

NW = M_NOWAIT


@pytest.fixture(autouse=True)
def debug_on():
    V.vmem_debug(True)
    yield
    V.vmem_debug(False)
    for vm in list(V.vmem_list):
        V.vmem_list.remove(vm)


def xa(vm, size, align=0, phase=0, nocross=0, lo=VMEM_ADDR_MIN, hi=VMEM_ADDR_MAX, flags=NW):
    return vmem_xalloc(vm, size, align, phase, nocross, lo, hi, flags)


def block(lo=0x1010, hi=0x1FFF):
    """An arena (quantum 1) whose only free block is [lo, hi]."""
    vm = vmem_create("blk", 0x1000, 0x1000, 1, 0, NW)
    a = xa(vm, lo - 0x1000, lo=0x1000, hi=lo - 1)
    assert a == 0x1000
    return vm


# ---------------------------------------------------------------- semantics


@pytest.mark.parametrize(
    "kw,want",
    [
        (dict(size=0x30, align=0x100), 0x1100),
        (dict(size=0x30, align=0x100, phase=0x20), 0x1020),
        (dict(size=0x30, align=0x100, phase=0x08), 0x1108),
        (dict(size=0x100, lo=0x1800, hi=0x18FF), 0x1800),
        (dict(size=0x100, lo=0x1800, hi=0x18FE), None),
    ],
)
def test_xalloc_worked_examples(kw, want):
    vm = block()
    assert xa(vm, **kw) == want


def test_xalloc_nocross_examples():
    vm = block(lo=0x1030)
    assert xa(vm, 0x30, nocross=0x40) == 0x1040
    vm = block(lo=0x1030)
    assert xa(vm, 0x30, align=0x20, phase=0x10, nocross=0x40) == 0x1050


def test_top_of_address_space_maxaddr_inclusive():
    vm = vmem_create("top", 0xFFFFFF00, 0x100, 1, 0, NW)
    assert xa(vm, 0x101, lo=0xFFFFFF00, hi=0xFFFFFFFF) is None
    assert xa(vm, 0x100, lo=0xFFFFFF01, hi=0xFFFFFFFF) is None
    assert xa(vm, 0x100, lo=0xFFFFFF00, hi=0xFFFFFFFE) is None
    a = xa(vm, 0x100, lo=0xFFFFFF00, hi=0xFFFFFFFF)
    assert a == 0xFFFFFF00
    vmem_xfree(vm, a, 0x100)


def test_quantum_rounding_and_sizes():
    vm = vmem_create("r", 0x20000000, 4096, 64, 0, NW)
    assert vmem_roundup_size(vm, 1) == 64 and vmem_roundup_size(vm, 65) == 128
    a = vmem_alloc(vm, 1, NW)
    assert a % 64 == 0
    assert vmem_size(vm, VMEM_ALLOC) == 64
    assert vmem_size(vm, VMEM_FREE) == 4096 - 64
    assert vmem_size(vm, VMEM_ALLOC | VMEM_FREE) == 4096
    vmem_free(vm, a, 1)
    assert vmem_size(vm, VMEM_MAXFREE) == 4096


def test_instant_fit_takes_head_of_first_sufficient_list():
    vm = vmem_create("if", 0, 1024, 1, 0, NW)
    parts = [vmem_alloc(vm, n, NW) for n in (5, 1, 9, 1, 40, 1)]
    for a, n in zip(parts[::2], (5, 9, 40)):
        vmem_free(vm, a, n)
    # free: 5 (list 2), 9 (list 3), 40 (list 5), tail 919 (list 9)
    # instant fit for 5: lists whose every member >= 5 start at 3 -> the 9
    assert vmem_alloc(vm, 5, NW | M_FIRSTFIT) == parts[2]
    # best fit for 5 finds the exact 5
    assert vmem_alloc(vm, 5, NW | M_BESTFIT) == parts[0]


def test_instant_fit_falls_back_to_partial_list():
    vm = vmem_create("fb", 0, 64, 1, 0, NW)
    a = vmem_alloc(vm, 6, NW)
    vmem_alloc(vm, 58, NW)  # the rest
    vmem_free(vm, a, 6)
    # only free block: 6 (list 2, members 4..7); a request of 5 must find it
    assert vmem_alloc(vm, 5, NW) == a


def test_instant_fit_sees_coalesced_segment():
    # a 5 (list 2) grows to 9 by coalescing: it belongs on list 3, where
    # instant fit for 8 looks; left on list 2 the 8 came from the big tail
    vm = vmem_create("co", 0, 1024, 1, 0, NW)
    x = vmem_alloc(vm, 5, NW)
    y = vmem_alloc(vm, 4, NW)
    vmem_alloc(vm, 1, NW)  # guard: the 9 stays apart from the tail
    vmem_free(vm, x, 5)
    vmem_free(vm, y, 4)
    assert vmem_alloc(vm, 8, NW | M_FIRSTFIT) == x


def test_next_fit_cycles_ids():
    vm = vmem_create("ids", 1, 8, 1, 0, NW)
    got = []
    for _ in range(8):
        i = vmem_alloc(vm, 1, NW | M_NEXTFIT)
        got.append(i)
        vmem_free(vm, i, 1)
    assert got == [1, 2, 3, 4, 5, 6, 7, 8]
    assert vmem_alloc(vm, 1, NW | M_NEXTFIT) == 1  # wraps


def test_coalescing_restores_one_segment():
    vm = vmem_create("c", 0x20000000, 1024, 16, 0, NW)
    a = [vmem_alloc(vm, 16 * (i + 1), NW) for i in range(5)]
    for i in (1, 3, 0, 4, 2):
        vmem_free(vm, a[i], 16 * (i + 1))
    assert vmem_segments(vm) == [(0x20000000, 1024, "free")]


def test_adjacent_spans_do_not_merge():
    vm = vmem_create("s", 0x1000, 0x100, 16, 0, NW)
    vmem_add(vm, 0x1100, 0x100, NW)
    assert vmem_alloc(vm, 0x200, NW) is None
    assert len(vmem_segments(vm)) == 2


def test_quantum_cache_hits_and_validates():
    vm = vmem_create("qc", 0x20000000, 1 << 16, 16, 128, NW)
    a = vmem_alloc(vm, 32, NW)
    st0 = vmem_stats(vm)
    assert st0["qfills"] == 1 and st0["qcached"] > 0
    vmem_free(vm, a, 32)
    b = vmem_alloc(vm, 32, NW)
    assert b == a  # LIFO stack
    assert vmem_stats(vm)["qfills"] == 1
    with pytest.raises(ValueError, match="^vmem_free: size 48 does not match"):
        vmem_free(vm, b, 48)
    vmem_free(vm, b, 32)
    with pytest.raises(ValueError, match="^vmem_free: double free"):
        vmem_free(vm, b, 32)
    # xalloc never comes from the quantum cache, and needs xfree
    x = xa(vm, 32)
    with pytest.raises(ValueError, match="^vmem_free: .*vmem_xalloc"):
        vmem_free(vm, x, 32)
    vmem_xfree(vm, x, 32)
    vmem_destroy(vm)


def test_quantum_cache_drained_before_failing():
    vm = vmem_create("qd", 0, 64 * 16, 16, 64, NW)
    a = vmem_alloc(vm, 16, NW)  # fills 16 items of 16 bytes
    vmem_free(vm, a, 16)
    # all 1024 bytes are needed: the cache must give its items back
    big = vmem_alloc(vm, 1024, NW)
    assert big == 0
    vmem_free(vm, big, 1024)


def test_import_and_release():
    parent = vmem_create("p", 0x20000000, 0x1000, 16, 0, NW)
    child = vmem_create("c", 0, 0, 16, 0, NW)
    vmem_set_import(child, vmem_alloc, vmem_free, parent, 256)
    a = vmem_alloc(child, 100, NW)
    assert a is not None and vmem_size(parent, VMEM_ALLOC) == 256
    assert vmem_spans(child) == [("span", a, 256, True)]
    vmem_free(child, a, 100)
    assert vmem_spans(child) == [] and vmem_size(parent, VMEM_ALLOC) == 0
    st_ = vmem_stats(child)
    assert st_["nimport"] == 1 and st_["nrelease"] == 1
    # constrained requests never import
    assert xa(child, 16, align=64) is None
    assert vmem_stats(child)["nimport"] == 1
    # static spans are never released
    vmem_add(child, 0x30000000, 256, NW)
    b = vmem_alloc(child, 16, NW)
    vmem_free(child, b, 16)
    assert vmem_spans(child) == [("span", 0x30000000, 256, False)]


def test_import_limit():
    parent = vmem_create("p", 0x20000000, 0x10000, 16, 0, NW)
    child = vmem_create("c", 0, 0, 16, 0, NW)
    vmem_set_import(child, vmem_alloc, vmem_free, parent, 0)
    vmem_set_limit(child, 512)
    assert vmem_alloc(child, 512, NW) is not None
    assert vmem_alloc(child, 16, NW) is None


def test_destroy_reports_outstanding():
    vm = vmem_create("d", 0x20000000, 4096, 16, 0, NW)
    a = vmem_alloc(vm, 48, NW)
    x = xa(vm, 32, align=256)
    with pytest.raises(ValueError) as e:
        vmem_destroy(vm)
    m = str(e.value)
    assert m.startswith("vmem_destroy: arena 'd' has 2 outstanding")
    assert "0x%x+48" % a in m and "0x%x+32" % x in m
    assert vm in V.vmem_list  # nothing lost
    vmem_free(vm, a, 48)
    vmem_xfree(vm, x, 32)
    vmem_destroy(vm)
    assert vm not in V.vmem_list
    with pytest.raises(ValueError, match="^vmem_alloc: arena 'd' was destroyed"):
        vmem_alloc(vm, 16, NW)


def test_waitok_waits_for_a_free():
    from mpalloc import intr

    intr.setup(2)  # the freeing thread is a CPU of its own (one with none is refused)
    vm = vmem_create("w", 0x20000000, 256, 16, 0, NW)
    a = vmem_alloc(vm, 256, NW)

    def later():
        intr.cpu_attach(1)
        time.sleep(0.05)
        vmem_free(vm, a, 256)

    th = threading.Thread(target=later)
    th.start()
    t0 = time.monotonic()
    b = vmem_alloc(vm, 128, M_WAITOK)
    th.join()
    assert b is not None and time.monotonic() - t0 >= 0.04
    vmem_free(vm, b, 128)


def test_waitok_times_out_and_nowait_fails_at_once(monkeypatch):
    monkeypatch.setattr(V, "wait_ms", 30)
    vm = vmem_create("w", 0x20000000, 256, 16, 0, NW)
    a = vmem_alloc(vm, 256, NW)
    calls = []
    vmem_set_reclaim(vm, lambda v, f: calls.append(f))
    assert vmem_alloc(vm, 16, NW) is None
    with pytest.raises(MemoryError, match="^vmem_alloc: arena 'w' could not supply 16 bytes within 30 ms"):
        vmem_alloc(vm, 16, M_WAITOK)
    assert calls == [M_WAITOK]
    # constrained requests never wait even with M_WAITOK
    assert xa(vm, 16, align=64, flags=M_WAITOK) is None
    assert vmem_stats(vm)["nfail"] == 3
    vmem_free(vm, a, 256)


def test_waitok_refused_in_interrupt():
    vm = vmem_create("i", 0x20000000, 256, 16, 0, NW)

    def h(arg):
        try:
            vmem_alloc(vm, 16, M_WAITOK)
        except ValueError as e:
            return str(e)

    res = []
    th = threading.Thread(target=lambda: res.append(intr.run_hard(h, None, 0)))
    th.start()
    th.join()
    assert res[0].startswith("vmem_alloc: M_WAITOK in interrupt context")


# ---------------------------------------------------------------- misuse


@pytest.fixture
def vm():
    return vmem_create("mis", 0x20000000, 4096, 16, 32, NW)


def err(fn, *args):
    with pytest.raises((ValueError, TypeError)) as e:
        fn(*args)
    return str(e.value)


def test_misuse_free(vm):
    assert err(vmem_free, vm, 0x20000100, 16).startswith("vmem_free: address 0x20000100 was never allocated")
    assert err(vmem_free, vm, 0x30000000, 64).startswith("vmem_free: address 0x30000000 was never allocated")
    assert "outside every span" in err(vmem_free, vm, 0x30000000, 64)
    a = vmem_alloc(vm, 64, NW)
    assert err(vmem_free, vm, a + 16, 48).startswith("vmem_free: address 0x%x was never allocated" % (a + 16))
    assert err(vmem_free, vm, a, 80).startswith("vmem_free: size 80 does not match the allocation of 64 bytes")
    assert err(vmem_free, vm, a + 1, 64).startswith("vmem_free: address 0x%x is not a multiple of the quantum" % (a + 1))
    assert err(vmem_xfree, vm, a, 64).startswith("vmem_xfree: 0x%x was allocated with vmem_alloc" % a)
    assert err(vmem_free, vm, a, 0).startswith("vmem_free: size 0 must be > 0")
    vmem_free(vm, a, 64)
    assert err(vmem_free, vm, a, 64).startswith("vmem_free: address 0x%x was never allocated" % a)
    assert "double free" in err(vmem_free, vm, a, 64)
    x = xa(vm, 64)
    assert err(vmem_free, vm, x, 64).startswith("vmem_free: 0x%x was allocated with vmem_xalloc" % x)
    assert err(vmem_xfree, vm, x, 32).startswith("vmem_xfree: size 32 does not match")
    vmem_xfree(vm, x, 64)
    assert "double free" in err(vmem_xfree, vm, x, 64)


def test_misuse_alloc(vm):
    assert err(vmem_alloc, vm, 0, NW) == "vmem_alloc: size 0 must be > 0"
    assert err(vmem_alloc, vm, -5, NW) == "vmem_alloc: size -5 must be > 0"
    assert err(vmem_alloc, vm, 16, 0).startswith("vmem_alloc: flags 0x0 have no wait flag")
    assert err(vmem_alloc, vm, 16, M_WAITOK | M_NOWAIT).startswith("vmem_alloc: flags 0x3 have both")
    assert err(vmem_alloc, vm, 16, NW | M_BESTFIT | M_NEXTFIT).startswith("vmem_alloc: flags 0xa002 name more than one")
    assert err(xa, vm, 0, 16).startswith("vmem_xalloc: size 0 must be > 0")


def test_misuse_xalloc(vm):
    assert err(xa, vm, 16, 48) == "vmem_xalloc: align 48 is not a power of two"
    assert err(xa, vm, 16, 8) == "vmem_xalloc: align 8 is not a multiple of the quantum 16"
    assert err(xa, vm, 16, 64, 64) == "vmem_xalloc: phase 64 >= align 64"
    assert err(xa, vm, 16, 64, 8) == "vmem_xalloc: phase 8 is not a multiple of the quantum 16"
    assert err(xa, vm, 16, 0, 16) == "vmem_xalloc: phase 16 >= align 16"
    assert err(xa, vm, 64, 0, 0, 32) == "vmem_xalloc: nocross 32 is smaller than the size 64"
    assert err(xa, vm, 64, 0, 0, 96).startswith("vmem_xalloc: nocross 96 is not a power-of-two")
    assert err(xa, vm, 32, 64, 48, 64) == "vmem_xalloc: phase 48 with size 32 crosses the nocross boundary 64"
    assert err(xa, vm, 16, 0, 0, 0, 0x20000100, 0x200000FF) == "vmem_xalloc: minaddr 0x20000100 > maxaddr 0x200000ff"
    assert err(xa, vm, 16, 0, 0, 0, VMEM_ADDR_MIN, VMEM_ADDR_MAX, 0).startswith("vmem_xalloc: flags 0x0 have no wait")
    assert err(xa, vm, 16, 0, 0, 0, VMEM_ADDR_MIN, VMEM_ADDR_MAX, 3).startswith("vmem_xalloc: flags 0x3 have both")


def test_misuse_create_add(vm):
    assert err(vmem_create, "x", 0, 64, 24, 0, NW) == "vmem_create: quantum 24 is not a power of two"
    assert err(vmem_create, "x", 0, 64, 0, 0, NW) == "vmem_create: quantum 0 is not a power of two"
    assert err(vmem_create, "x", 0, 64, 16, 24, NW) == "vmem_create: qcache_max 24 is not a multiple of the quantum 16"
    assert err(vmem_create, "x", 0, 64, 16, 0, 0).startswith("vmem_create: flags 0x0 have no wait flag")
    assert err(vmem_create, "x", 0, 64, 16, 0, 3).startswith("vmem_create: flags 0x3 have both")
    m = err(vmem_add, vm, 0x20000800, 0x1000, NW)
    assert m.startswith("vmem_add: span 0x20000800-0x200017ff overlaps span 0x20000000-0x20000fff")
    assert err(vmem_add, vm, 0x30000008, 64, NW).startswith("vmem_add: span 0x30000008+0x40 is not aligned")
    assert err(vmem_add, vm, 0x30000000, 64, 0).startswith("vmem_add: flags 0x0 have no wait flag")
    assert err(vmem_add, vm, 0x30000000, 64, 3).startswith("vmem_add: flags 0x3 have both")
    assert err(vmem_add, vm, 0x30000000, 0, NW) == "vmem_add: size 0 must be > 0"
    assert err(vmem_size, vm, 4).startswith("vmem_size: typemask 0x4")
    assert err(vmem_set_import, vm, None, None, None, 8).startswith("vmem_set_import: import_quantum 8")


def test_methods_are_the_module_functions(vm):
    assert V.vmem.alloc is vmem_alloc and V.vmem.free is vmem_free
    a = vm.alloc(64, NW)
    vm.free(a, 64)
    vm.destroy()


def test_debug_check_catches_corruption():
    vm = vmem_create("bad", 0x20000000, 4096, 16, 0, NW)
    a = vmem_alloc(vm, 64, NW)
    vm._seg_size[vm._seg_next[vm._seg_next[0]]] += 1  # corrupt the first segment's size
    with pytest.raises(AssertionError, match="^vmem_check: arena 'bad'"):
        vmem_alloc(vm, 16, NW)  # any operation runs the check


def test_quantum_cache_window_and_states(monkeypatch):
    # quantum-cache items come only from the window (qcache_window quanta above
    # the origin); beyond it small requests take the segment path. A free is
    # accepted only for the state "handed out, this class": a double free, a
    # wrong size or the other free function is refused wherever the item lies.
    monkeypatch.setattr(V, "qcache_window", 32)
    vm = vmem_create("qcw", 0x1000, 64 * 16, 16, 32, NW)
    assert len(vm._qc_state) == 32
    got = [vmem_alloc(vm, 16, NW) for _ in range(40)]
    assert None not in got and len(set(got)) == 40
    assert sorted(got[:32]) == [0x1000 + 16 * i for i in range(32)]  # two fills of 16, in the window
    assert vmem_stats(vm)["qfills"] == 2
    vmem_check(vm)
    for a in (got[0], got[-1]):  # one from the cache, one from the segment path
        with pytest.raises(ValueError, match="^vmem_free: size 32 does not match"):
            vmem_free(vm, a, 32)
        with pytest.raises(ValueError, match="^vmem_xfree: .* was allocated with vmem_alloc"):
            vmem_xfree(vm, a, 16)
    vmem_free(vm, got[0], 16)
    with pytest.raises(ValueError, match="^vmem_free: double free .* quantum cache"):
        vmem_free(vm, got[0], 16)
    vmem_free(vm, got[-1], 16)
    with pytest.raises(ValueError, match="^vmem_free: address .* was never allocated"):
        vmem_free(vm, got[-1], 16)
    for a in got[1:-1]:
        vmem_free(vm, a, 16)
    vmem_check(vm)
    st = vmem_stats(vm)
    assert st["nalloc"] == st["nfree"] == 40
    assert st["inuse"] == st["qcached"]
    vmem_destroy(vm)
