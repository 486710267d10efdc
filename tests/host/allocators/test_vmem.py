"""Model-based tests of mpalloc.vmem on CPython (hypothesis stateful machine).

The model is independent of the implementation: a list of spans and a dict of
live allocations. After every step the arena's segments (vmem_segments /
vmem_spans) must tile every span exactly, nothing may overlap, allocated + free
must equal the total, no two free neighbours may be left uncoalesced, every
xalloc result must meet its constraints, and vmem_size must agree with the
model. The module's own full check (vmem_check) runs too.

MPALLOC_FUZZ=long scales the number of examples and steps up (make fuzz).
"""
import os

import pytest
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule


from mpalloc import vmem as V  # noqa: E402
from mpalloc.vmem import (  # noqa: E402
    M_BESTFIT,
    M_FIRSTFIT,
    M_NEXTFIT,
    M_NOWAIT,
    VMEM_ADDR_MAX,
    VMEM_ADDR_MIN,
    VMEM_ALLOC,
    VMEM_FREE,
    VMEM_MAXFREE,
    vmem_add,
    vmem_alloc,
    vmem_create,
    vmem_destroy,
    vmem_free,
    vmem_segments,
    vmem_size,
    vmem_spans,
    vmem_stats,
    vmem_xalloc,
    vmem_xfree,
)

LONG = os.environ.get("MPALLOC_FUZZ") == "long"
FITS = [M_FIRSTFIT, M_BESTFIT, M_NEXTFIT, 0]


def fits_somewhere(free, size, align, phase, nocross, lo, hi):
    """Brute force (independent of vmem._fit): is there an a in a free segment
    with a % align == phase, lo <= a, a+size-1 <= hi, not crossing nocross?"""
    for s, n in free:
        a = max(s, lo)
        a += (phase - a) % align
        while a + size - 1 <= min(s + n - 1, hi):
            if not nocross or a // nocross == (a + size - 1) // nocross:
                return True
            a += align
    return False


class VmemMachine(RuleBasedStateMachine):
    @initialize(
        qshift=st.sampled_from([0, 2, 4, 12]),
        base_q=st.integers(0, 64),
        nq=st.integers(1, 200),
        qcache=st.integers(0, 4),
        high=st.booleans(),
    )
    def setup(self, qshift, base_q, nq, qcache, high):
        self.Q = 1 << qshift
        origin = 0x40000000 if high else 0x20000000
        self.vm = vmem_create("m", origin + base_q * self.Q, nq * self.Q, self.Q, qcache * self.Q, M_NOWAIT)
        self.spans = [(origin + base_q * self.Q, nq * self.Q)]
        self.live = {}  # addr -> (size rounded, "a" | "x")
        self.sizes = {}  # addr -> size asked

    def teardown(self):
        vm = getattr(self, "vm", None)
        if vm is None:
            return
        for a, (n, kind) in list(self.live.items()):
            (vmem_free if kind == "a" else vmem_xfree)(vm, a, self.sizes[a])
        vmem_destroy(vm)
        assert vm not in V.vmem_list

    def rsize(self, n):
        return (n + self.Q - 1) // self.Q * self.Q

    # ---------------------------------------------------------------- rules

    @rule(off=st.integers(-300, 600), nq=st.integers(1, 64))
    def add(self, off, nq):
        a = self.spans[0][0] + off * self.Q
        n = nq * self.Q
        assume(a >= 0)
        overl = any(a < s + m and s < a + n for s, m in self.spans)
        if overl:
            with pytest.raises(ValueError, match="^vmem_add: .*overlaps"):
                vmem_add(self.vm, a, n, M_NOWAIT)
        else:
            assert vmem_add(self.vm, a, n, M_NOWAIT) == 0
            self.spans.append((a, n))

    def free_segs(self):
        return [(a, n) for a, n, k in vmem_segments(self.vm) if k == "free"]

    @rule(size=st.integers(1, 80), fit=st.sampled_from(FITS), units=st.booleans())
    def alloc(self, size, fit, units):
        if units:
            size *= self.Q
        a = vmem_alloc(self.vm, size, M_NOWAIT | fit)
        r = self.rsize(size)
        if a is None:
            assert all(n < r for s, n in self.free_segs()), "alloc failed although a segment fits"
            return
        assert a % self.Q == 0
        self.check_new(a, r)
        self.live[a] = (r, "a")
        self.sizes[a] = size

    def check_new(self, a, r):
        assert any(s <= a and a + r <= s + n for s, n in self.spans), "outside every span"
        for b, (m, _) in self.live.items():
            assert a + r <= b or b + m <= a, "overlaps a live allocation"

    @rule(
        size=st.integers(1, 40),
        alog=st.integers(0, 6),
        ph=st.integers(0, 63),
        nclog=st.integers(-1, 8),
        lo=st.integers(-10, 300),
        span=st.integers(0, 400),
        fit=st.sampled_from(FITS),
        unbounded=st.booleans(),
    )
    def xalloc(self, size, alog, ph, nclog, lo, span, fit, unbounded):
        Q = self.Q
        size *= Q
        r = self.rsize(size)
        align = Q << alog
        phase = (ph * Q) % align
        nocross = 0 if nclog < 0 else Q << nclog
        assume(not nocross or (nocross >= r and (phase % nocross) + r <= nocross))
        base = self.spans[0][0]
        if unbounded:
            minaddr, maxaddr = VMEM_ADDR_MIN, VMEM_ADDR_MAX
        else:
            minaddr = max(0, base + lo * Q)
            maxaddr = minaddr + span * Q
        a = vmem_xalloc(self.vm, size, align, phase, nocross, minaddr, maxaddr, M_NOWAIT | fit)
        if a is None:
            assert not fits_somewhere(self.free_segs(), r, align, phase, nocross, minaddr, maxaddr), (
                "xalloc failed although a fit exists"
            )
            return
        assert a % align == phase, "align/phase"
        if nocross:
            assert a // nocross == (a + r - 1) // nocross, "crosses nocross"
        assert minaddr <= a and a + r - 1 <= maxaddr, "min/max"
        self.check_new(a, r)
        self.live[a] = (r, "x")
        self.sizes[a] = size

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free(self, data):
        a = data.draw(st.sampled_from(sorted(self.live)))
        r, kind = self.live.pop(a)
        size = self.sizes.pop(a)
        # sometimes the wrong size or the wrong function first: must be refused
        if data.draw(st.booleans()):
            with pytest.raises(ValueError, match="^vmem_x?free: "):
                (vmem_free if kind == "a" else vmem_xfree)(self.vm, a, r + self.Q)
            with pytest.raises(ValueError, match="^vmem_x?free: "):
                (vmem_xfree if kind == "a" else vmem_free)(self.vm, a, size)
        (vmem_free if kind == "a" else vmem_xfree)(self.vm, a, size)
        if data.draw(st.booleans()):
            with pytest.raises(ValueError, match="^vmem_x?free: "):
                (vmem_free if kind == "a" else vmem_xfree)(self.vm, a, size)

    # ---------------------------------------------------------------- invariants

    @invariant()
    def consistent(self):
        vm = getattr(self, "vm", None)
        if vm is None:
            return
        V.vmem_check(vm)
        segs = vmem_segments(vm)
        spans = sorted((a, n) for _, a, n, _imp in vmem_spans(vm))
        assert spans == sorted(self.spans)
        # segments tile every span exactly, nothing overlaps
        i = 0
        total = alloc = free = 0
        for a, n in spans:
            pos = a
            prev_free = False
            while pos < a + n:
                sa, sn, kind = segs[i]
                assert sa == pos, "gap or overlap at 0x%x" % pos
                assert sn > 0
                assert not (prev_free and kind == "free"), "uncoalesced free neighbours"
                prev_free = kind == "free"
                if kind == "free":
                    free += sn
                else:
                    alloc += sn
                pos += sn
                i += 1
            assert pos == a + n, "segment runs past its span"
            total += n
        assert i == len(segs)
        assert alloc + free == total
        qc = vmem_stats(vm)["qcached"]
        model_alloc = sum(r for r, _ in self.live.values())
        assert vmem_size(vm, VMEM_ALLOC) == model_alloc + qc == alloc
        assert vmem_size(vm, VMEM_FREE) == free
        assert vmem_size(vm, VMEM_ALLOC | VMEM_FREE) == sum(n for _, n in self.spans)
        assert vmem_size(vm, VMEM_MAXFREE) == max([n for _, n, k in segs if k == "free"] or [0])
        # every live allocation is an "alloc" segment
        allocd = set((a, n) for a, n, k in segs if k == "alloc")
        for a, (r, _) in self.live.items():
            assert (a, r) in allocd


VmemMachine.TestCase.settings = settings(
    max_examples=400 if LONG else 40,
    stateful_step_count=200 if LONG else 40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestVmemModel = pytest.mark.fuzz(VmemMachine.TestCase)


# ---------------------------------------------------------------- import / release


class ImportMachine(RuleBasedStateMachine):
    """A child arena importing from a parent: spans come in on demand (in
    import_quantum multiples) and go back as soon as they are wholly free."""

    @initialize(iq=st.sampled_from([16, 64, 256]), qcache=st.sampled_from([0, 32]))
    def setup(self, iq, qcache):
        self.parent = vmem_create("parent", 0x20000000, 4096, 16, 0, M_NOWAIT)
        self.child = vmem_create("child", 0, 0, 16, qcache, M_NOWAIT)
        V.vmem_set_import(self.child, vmem_alloc, vmem_free, self.parent, iq)
        self.iq = iq
        self.live = {}

    @rule(size=st.integers(1, 300))
    def alloc(self, size):
        a = vmem_alloc(self.child, size, M_NOWAIT)
        if a is None:
            # the parent must not have room for one import of this size
            need = (size + 15) // 16 * 16
            need = (need + self.iq - 1) // self.iq * self.iq
            assert vmem_size(self.parent, VMEM_MAXFREE) < need
            return
        for b, n in self.live.items():
            assert a + size <= b or b + n <= a
        self.live[a] = size

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free(self, data):
        a = data.draw(st.sampled_from(sorted(self.live)))
        vmem_free(self.child, a, self.live.pop(a))

    @invariant()
    def spans_match(self):
        if not hasattr(self, "child"):
            return
        V.vmem_check(self.child)
        V.vmem_check(self.parent)
        spans = vmem_spans(self.child)
        assert all(imp for _, _, _, imp in spans)
        # what the child holds is exactly what the parent has handed out
        assert vmem_size(self.parent, VMEM_ALLOC) == vmem_size(self.child, VMEM_ALLOC | VMEM_FREE)
        st_ = vmem_stats(self.child)
        if st_["qcached"] == 0:
            # no imported span is left wholly free
            segs = vmem_segments(self.child)
            for _, a, n, _ in spans:
                assert (a, n, "free") not in segs
        assert st_["nimport"] - st_["nrelease"] == len(spans)

    def teardown(self):
        if not hasattr(self, "child"):
            return
        for a, n in list(self.live.items()):
            vmem_free(self.child, a, n)
        vmem_destroy(self.child)
        assert vmem_size(self.parent, VMEM_ALLOC) == 0
        vmem_destroy(self.parent)


ImportMachine.TestCase.settings = settings(
    max_examples=200 if LONG else 25,
    stateful_step_count=200 if LONG else 40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestVmemImport = pytest.mark.fuzz(ImportMachine.TestCase)
