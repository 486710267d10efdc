"""kmalloc(9): model-based test of malloc types, limits and statistics, plus one
test per misuse case. The model keeps its own table of live blocks per type and
computes DragonFly's chunk sizes from the table in the spec, not from kmalloc.
"""
import os

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import dragonfly_memory
from mpalloc import kmalloc as K
from mpalloc import mem

LONG = os.environ.get("MPALLOC_FUZZ") == "long"


def chunk(size):
    """DragonFly's slab chunking (spec table): <128 step 8, then 1/8 of the power of two."""
    if size < 128:
        return -(-size // 8) * 8
    if size >= 16384:
        return -(-size // 4096) * 4096
    for lo, step in ((128, 16), (256, 32), (512, 64), (1024, 128), (2048, 256), (4096, 512), (8192, 1024)):
        if size < lo * 2:
            return -(-size // step) * step
    raise AssertionError


@pytest.fixture(autouse=True)
def _window():
    dragonfly_memory.setup()
    yield


def _fill(p, n, v):
    mem.buf(p, n)[:] = bytes([v]) * n


def _check(p, n, v):
    assert bytes(mem.buf(p, n)) == bytes([v]) * n, "block contents changed"


class Kmalloc(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        dragonfly_memory.setup()
        self.types = [K.MALLOC_DEFINE("m%d" % i, "model type %d" % i, lim) for i, lim in enumerate((2048, 6000, 0))]
        self.live = {}  # addr -> [type index, size, chunk, fill byte]
        self.use = [0, 0, 0]
        self.hi = [0, 0, 0]
        self.calls = [0, 0, 0]
        self.v = 0

    def _limit(self, ti):
        return K.kmalloc_limit(self.types[ti])

    @rule(ti=st.integers(0, 2), size=st.integers(0, 900),
          how=st.sampled_from(["waitok", "nowait", "waitok_nullok", "zero"]))
    def alloc(self, ti, size, how):
        t = self.types[ti]
        flags = {"waitok": K.M_WAITOK, "nowait": K.M_NOWAIT, "waitok_nullok": K.M_WAITOK | K.M_NULLOK,
                 "zero": K.M_WAITOK | K.M_NULLOK | K.M_ZERO}[how]
        self.calls[ti] += 1
        if size == 0:
            assert K.kmalloc(0, t, flags) == K.ZERO_LENGTH_PTR
            return
        c = chunk(size)
        if self.use[ti] + c > self._limit(ti):
            if flags & K.M_NULLOK:
                assert K.kmalloc(size, t, flags) is None
            else:
                with pytest.raises(RuntimeError, match="^kmalloc: m%d: malloc limit exceeded" % ti):
                    K.kmalloc(size, t, flags)
            return
        p = K.kmalloc(size, t, flags)
        assert p is not None and p % 8 == 0
        if how == "zero":
            _check(p, c, 0)
        for q, (_, _, qc, _) in self.live.items():
            assert p + c <= q or q + qc <= p, "overlapping blocks"
        self.v = self.v % 250 + 1
        _fill(p, c, self.v)
        self.live[p] = [ti, size, c, self.v]
        self.use[ti] += c
        self.hi[ti] = max(self.hi[ti], self.use[ti])

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free(self, data):
        p = data.draw(st.sampled_from(sorted(self.live)))
        ti, size, c, v = self.live.pop(p)
        _check(p, c, v)
        K.kfree(p, self.types[ti])
        self.use[ti] -= c

    @precondition(lambda self: self.live)
    @rule(data=st.data(), size=st.integers(1, 900))
    def realloc(self, data, size):
        p = data.draw(st.sampled_from(sorted(self.live)))
        ti, _, c, v = self.live[p]
        nc = chunk(size)
        self.calls[ti] += 1
        if nc != c and self.use[ti] + nc > self._limit(ti):
            assert K.krealloc(p, size, self.types[ti], K.M_WAITOK | K.M_NULLOK) is None
            _check(p, c, v)  # untouched
            return
        q = K.krealloc(p, size, self.types[ti], K.M_WAITOK | K.M_NULLOK)
        assert q is not None
        if nc == c:
            assert q == p
        else:
            self.hi[ti] = max(self.hi[ti], self.use[ti] + nc)
        _check(q, min(c, nc), v)
        del self.live[p]
        self.use[ti] += nc - c
        self.v = self.v % 250 + 1
        _fill(q, nc, self.v)
        self.live[q] = [ti, size, nc, self.v]

    @precondition(lambda self: self.live)
    @rule(data=st.data(), other=st.integers(1, 2))
    def wrong_type_is_refused(self, data, other):
        p = data.draw(st.sampled_from(sorted(self.live)))
        ti = self.live[p][0]
        wrong = self.types[(ti + other) % 3]
        with pytest.raises(ValueError, match="^kfree: 0x%x was allocated with malloc type 'm%d', freed with" % (p, ti)):
            K.kfree(p, wrong)

    @invariant()
    def stats_agree(self):
        for ti, t in enumerate(self.types):
            s = K.kmalloc_stats(t)
            assert s["inuse"] == self.use[ti]
            assert s["ninuse"] == sum(1 for x in self.live.values() if x[0] == ti)
            assert s["nreq"] == self.calls[ti]
            assert s["hiwat"] == self.hi[ti]
            assert s["inuse"] <= s["limit"]


Kmalloc.TestCase.settings = settings(
    max_examples=300 if LONG else 20, stateful_step_count=200 if LONG else 40, deadline=None
)
test_kmalloc_model = Kmalloc.TestCase


def test_default_limit_is_a_tenth_of_the_window():
    t = K.MALLOC_DEFINE("dflt")
    assert K.kmalloc_limit(t) == mem.size // 10


def test_raise_limit_only_raises():
    t = K.MALLOC_DEFINE("r", "", 1000)
    K.kmalloc_raise_limit(t, 500)
    assert K.kmalloc_limit(t) == 1000
    K.kmalloc_raise_limit(t, 5000)
    assert K.kmalloc_limit(t) == 5000


def test_limit_exceeded_without_nullok_panics_even_waitok():
    t = K.MALLOC_DEFINE("lim", "", 256)
    p = K.kmalloc(200, t, K.M_WAITOK)
    with pytest.raises(RuntimeError, match="^kmalloc: lim: malloc limit exceeded"):
        K.kmalloc(100, t, K.M_WAITOK)
    assert K.kmalloc_stats(t)["limblocks"] == 1
    K.kfree(p, t)  # nothing lost


def test_kfree_wrong_type():
    a, b = K.MALLOC_DEFINE("a"), K.MALLOC_DEFINE("b")
    p = K.kmalloc(10, a, K.M_WAITOK)
    with pytest.raises(ValueError, match="^kfree: .* allocated with malloc type 'a', freed with 'b'"):
        K.kfree(p, b)
    K.kfree(p, a)
    assert K.kmalloc_stats(a)["inuse"] == 0 and K.kmalloc_stats(b)["inuse"] == 0


def test_kfree_twice():
    t = K.MALLOC_DEFINE("t")
    p = K.kmalloc(10, t, K.M_WAITOK)
    K.kfree(p, t)
    with pytest.raises(ValueError, match="^kfree: 0x[0-9a-f]+ already freed"):
        K.kfree(p, t)


def test_kfree_null_panics():
    t = K.MALLOC_DEFINE("t")
    with pytest.raises(ValueError, match="^kfree: NULL"):
        K.kfree(None, t)


def test_kfree_foreign_pointer():
    t = K.MALLOC_DEFINE("t")
    p = K.kmalloc(64, t, K.M_WAITOK)
    with pytest.raises(ValueError, match="^kfree: .*not allocated by kmalloc"):
        K.kfree(p + 16, t)
    with pytest.raises(ValueError, match="^kfree: .*not memory from kmalloc"):
        K.kfree(0x100, t)


def test_kmalloc_flags_need_exactly_one_wait_mode():
    t = K.MALLOC_DEFINE("t")
    with pytest.raises(ValueError, match="^kmalloc: flags 0x100"):
        K.kmalloc(8, t, K.M_ZERO)
    with pytest.raises(ValueError, match="^kmalloc: flags"):
        K.kmalloc(8, t, K.M_WAITOK | K.M_RNOWAIT)


def test_krealloc_refuses_m_zero():
    t = K.MALLOC_DEFINE("t")
    p = K.kmalloc(8, t, K.M_WAITOK)
    with pytest.raises(ValueError, match="^krealloc: M_ZERO"):
        K.krealloc(p, 100, t, K.M_WAITOK | K.M_ZERO)


def test_zero_size_sentinel():
    t = K.MALLOC_DEFINE("t")
    p = K.kmalloc(0, t, K.M_NOWAIT)
    assert p == K.ZERO_LENGTH_PTR
    K.kfree(p, t)
    q = K.krealloc(p, 24, t, K.M_WAITOK)
    assert q > 0 and K.kmalloc_usable(q) == 24


def test_destroyed_type_refused():
    t = K.kmalloc_create("dyn")
    p = K.kmalloc(8, t, K.M_WAITOK)
    with pytest.raises(ValueError, match="^kmalloc_destroy: type 'dyn' still has 1 allocations"):
        K.kmalloc_destroy(t)
    K.kfree(p, t)
    K.kmalloc_destroy(t)
    assert t not in K.malloc_types
    with pytest.raises(ValueError, match="^kmalloc: not a live malloc type"):
        K.kmalloc(8, t, K.M_WAITOK)


def test_waitok_without_memory_raises_nowait_returns_none():
    dragonfly_memory.setup(size=4096)
    t = K.MALLOC_DEFINE("big", "", 1 << 20)
    assert K.kmalloc(8000, t, K.M_NOWAIT) is None
    with pytest.raises(MemoryError, match="^kmalloc: .*nobody to wait for"):
        K.kmalloc(8000, t, K.M_WAITOK)
    assert K.kmalloc_stats(t)["nfail"] == 2 and K.kmalloc_stats(t)["inuse"] == 0


def test_stats_keys_for_mpalloc_stats():
    t = K.MALLOC_DEFINE("s", "stats")
    K.kmalloc(100, t, K.M_WAITOK)
    s = K.kmalloc_stats(t)
    assert {"name", "desc", "inuse", "nreq", "hiwat", "limit", "nfail"} <= set(s)
    assert s["name"] == "s" and s["desc"] == "stats" and s["nreq"] == 1 and s["inuse"] == 104
