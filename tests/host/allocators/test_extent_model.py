"""extent(9) against a byte-level model (hypothesis stateful machine).

The model knows which unit of the extent belongs to which claim. After every
step the extent's region list must equal what the model predicts: claims never
overlap, frees restore exactly what was freed, regions coalesce with their
same-owner neighbours unless EX_NOCOALESCE, and every allocation meets its
alignment and boundary. A failed allocation is checked by brute force: no
valid placement existed. Best fit and first fit (EX_FAST) pick the gap the
man page says.
"""
import os
from array import array
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule


from mpalloc import extent as E  # noqa: E402
from mpalloc import extent_setup  # noqa: E402  (the invariant check)
from mpalloc.extent import (  # noqa: E402
    EX_BOUNDZERO,
    EX_FAST,
    EX_MALLOCOK,
    EX_NOCOALESCE,
    EXTENT_FIXED_STORAGE_SIZE,
    extent_alloc_region,
    extent_alloc_subregion,
    extent_create,
    extent_destroy,
    extent_free,
    extent_regions,
)

N = 96  # units in the model extent
OWNERS = (None, "uart0", "spi1")
LONG = os.environ.get("MPALLOC_FUZZ") == "long"


class ExtentMachine(RuleBasedStateMachine):
    @initialize(
        base=st.sampled_from([0, 0x1003, 0x40000000, 0x40000005, 0xD0000000, 0xFFFFFF00]),
        nocoalesce=st.booleans(),
        fixed=st.sampled_from([0, 3, 8]),
        mallocok=st.booleans(),
    )
    def setup(self, base, nocoalesce, fixed, mallocok):
        self.base = base
        self.nocoalesce = nocoalesce
        self.fixed = fixed
        self.mallocok = mallocok and fixed > 0
        self.claims = []  # nocoalesce: list of (start, end, owner) (whole regions)
        self.unit = [0] * N  # 0 free, else 1 + owner index
        storage = array("I", bytes(EXTENT_FIXED_STORAGE_SIZE(fixed))) if fixed else None
        self.ex = extent_create(
            "model", base, base + N - 1, storage, EXTENT_FIXED_STORAGE_SIZE(fixed) if fixed else 0,
            EX_NOCOALESCE if nocoalesce else 0)
        self.capacity = fixed if fixed and not self.mallocok else None

    def teardown(self):
        if hasattr(self, "ex") and not self.ex.dead:
            extent_destroy(self.ex)

    # -- what the model predicts ------------------------------------------------
    def expected(self):
        if self.nocoalesce:
            return sorted(self.claims)
        out = []
        i = 0
        while i < N:
            if self.unit[i]:
                j = i
                while j + 1 < N and self.unit[j + 1] == self.unit[i]:
                    j += 1
                out.append((self.base + i, self.base + j, OWNERS[self.unit[i] - 1]))
                i = j + 1
            else:
                i += 1
        return out

    def flags(self):
        return EX_MALLOCOK if self.mallocok else 0

    def full(self):
        return self.capacity is not None and len(self.expected()) >= self.capacity

    def take(self, a, size, owner):
        for u in range(a - self.base, a - self.base + size):
            assert self.unit[u] == 0, "overlap at 0x%x" % (self.base + u)
            self.unit[u] = 1 + OWNERS.index(owner)
        if self.nocoalesce:
            self.claims.append((a, a + size - 1, owner))

    def valid_starts(self, lo, hi, size, align, boundary, bzero):
        line0 = 0 if bzero else self.base
        out = []
        for s in range(lo, hi - size + 2):
            if s % align:
                continue
            if any(self.unit[u - self.base] for u in range(s, s + size)):
                continue
            if boundary and (s - line0) // boundary != (s + size - 1 - line0) // boundary:
                continue
            out.append(s)
        return out

    # -- rules ---------------------------------------------------------------------
    @rule(off=st.integers(0, N - 1), size=st.integers(1, 24), owner=st.sampled_from(OWNERS))
    def alloc_region(self, off, size, owner):
        start = self.base + off
        if off + size > N:
            with pytest.raises(ValueError, match="extent_alloc_region: .*outside"):
                extent_alloc_region(self.ex, start, size, self.flags(), owner=owner)
            return
        busy = [u for u in range(off, off + size) if self.unit[u]]
        if self.full():
            with pytest.raises(OSError) as ei:
                extent_alloc_region(self.ex, start, size, self.flags(), owner=owner)
            assert ei.value.args[0] == E.ENOMEM
            return
        if busy:
            with pytest.raises(OSError) as ei:
                extent_alloc_region(self.ex, start, size, self.flags(), owner=owner)
            assert ei.value.args[0] == E.EAGAIN
            first_owner = OWNERS[self.unit[busy[0]] - 1]
            assert "claimed by '%s'" % ("?" if first_owner is None else first_owner) in str(ei.value)
            assert ei.value.args[1].startswith("extent_alloc_region: ")
            return
        assert extent_alloc_region(self.ex, start, size, self.flags(), owner=owner) is None
        self.take(start, size, owner)

    @rule(
        lo=st.integers(0, N - 1), span=st.integers(0, N), size=st.integers(1, 20),
        alog=st.integers(0, 4), boundary=st.sampled_from([0, 0, 8, 12, 16, 32]),
        bzero=st.booleans(), fast=st.booleans(), owner=st.sampled_from(OWNERS),
    )
    def alloc_subregion(self, lo, span, size, alog, boundary, bzero, fast, owner):
        align = 1 << alog
        hi = min(N - 1, lo + span)
        assume(size - 1 <= hi - lo and (boundary == 0 or boundary >= size))
        substart, subend = self.base + lo, self.base + hi
        flags = self.flags() | (EX_BOUNDZERO if bzero else 0) | (EX_FAST if fast else 0)
        cands = self.valid_starts(substart, subend, size, align, boundary, bzero)
        if self.full():
            with pytest.raises(OSError) as ei:
                extent_alloc_subregion(self.ex, substart, subend, size, align, boundary, flags, owner=owner)
            assert ei.value.args[0] == E.ENOMEM
            return
        if not cands:
            with pytest.raises(OSError) as ei:
                extent_alloc_subregion(self.ex, substart, subend, size, align, boundary, flags, owner=owner)
            assert ei.value.args[0] == E.EAGAIN
            assert "no space" in str(ei.value)
            return
        a = extent_alloc_subregion(self.ex, substart, subend, size, align, boundary, flags, owner=owner)
        assert a in cands, "0x%x is not a valid placement" % a
        if fast:
            assert a == cands[0], "EX_FAST must take the first fit"
        else:
            # Best fit: the lowest valid start of each gap, the one leaving least
            # space up to the next claimed unit (or the extent end); ties: lowest.
            best = None
            seen_gap = set()
            for c in cands:
                g = c
                while g - 1 >= self.base and not self.unit[g - 1 - self.base]:
                    g -= 1
                g = max(g, substart)
                if g in seen_gap:
                    continue
                seen_gap.add(g)
                nxt = c + size
                while nxt <= self.base + N - 1 and not self.unit[nxt - self.base]:
                    nxt += 1
                ovh = nxt - c - size
                if best is None or ovh < best[0]:
                    best = (ovh, c)
            assert a == best[1], "best fit chose 0x%x, model 0x%x" % (a, best[1])
        self.take(a, size, owner)

    @precondition(lambda self: any(self.unit))
    @rule(data=st.data())
    def free_part(self, data):
        regs = self.expected()
        rs, re, owner = data.draw(st.sampled_from(regs))
        if self.nocoalesce:
            whole = data.draw(st.booleans())
            if not whole and re > rs:
                s = data.draw(st.integers(rs, re))
                e = data.draw(st.integers(s, re))
                if (s, e) != (rs, re):
                    with pytest.raises(ValueError, match="extent_free: .*only whole regions"):
                        extent_free(self.ex, s, e - s + 1, 0)
                    return
            extent_free(self.ex, rs, re - rs + 1, 0, owner=owner)
            self.claims.remove((rs, re, owner))
            for u in range(rs, re + 1):
                self.unit[u - self.base] = 0
            return
        s = data.draw(st.integers(rs, re))
        e = data.draw(st.integers(s, re))
        split = s > rs and e < re
        if split and self.full():
            with pytest.raises(OSError) as ei:
                extent_free(self.ex, s, e - s + 1, 0)
            assert ei.value.args[0] == E.ENOMEM
            return
        extent_free(self.ex, s, e - s + 1, self.flags())
        for u in range(s, e + 1):
            self.unit[u - self.base] = 0

    @rule(off=st.integers(0, N - 1), size=st.integers(1, 8))
    def free_unallocated(self, off, size):
        size = min(size, N - off)
        start = self.base + off
        regs = self.expected()
        inside_one = any(rs <= start and start + size - 1 <= re for rs, re, _ in regs)
        assume(not inside_one)
        before = extent_regions(self.ex)
        with pytest.raises(ValueError, match="extent_free: .*not found"):
            extent_free(self.ex, start, size, 0)
        assert extent_regions(self.ex) == before

    @precondition(lambda self: any(self.unit))
    @rule(data=st.data())
    def free_wrong_owner(self, data):
        rs, re, owner = data.draw(st.sampled_from(self.expected()))
        other = "nobody"
        before = extent_regions(self.ex)
        with pytest.raises(ValueError, match="extent_free: .*claimed by"):
            extent_free(self.ex, rs, re - rs + 1, 0, owner=other)
        assert extent_regions(self.ex) == before

    @invariant()
    def matches_model(self):
        if not hasattr(self, "ex"):
            return
        extent_setup.check(self.ex)
        assert extent_regions(self.ex) == self.expected()


TestExtentModel = ExtentMachine.TestCase
TestExtentModel.settings = settings(
    max_examples=2000 if LONG else 150,
    stateful_step_count=60 if LONG else 30,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
