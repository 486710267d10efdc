"""mpipe(9): model-based test (guarantee of nnom, limit nmax, zeroing, constructor
calls) and one test per misuse case."""
import os

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import dragonfly_memory
from mpalloc import kmalloc as K
from mpalloc import mem
from mpalloc import mpipe as M

LONG = os.environ.get("MPALLOC_FUZZ") == "long"


@pytest.fixture(autouse=True)
def _window():
    dragonfly_memory.setup()
    del M.mpipe_list[:]
    yield


class Pipe(RuleBasedStateMachine):
    NNOM = 3
    NMAX = 6
    BYTES = 40

    def __init__(self):
        super().__init__()
        dragonfly_memory.setup()
        self.t = K.MALLOC_DEFINE("pipe", "", 1 << 16)
        self.made = []
        self.unmade = []
        self.mp = M.mpipe_init(None, self.t, self.BYTES, self.NNOM, self.NMAX, 0,
                               lambda b, p: self.made.append(b), lambda b, p: self.unmade.append(b), None)
        self.out = set()
        self.existing = self.NNOM  # buffers that exist (model)

    @rule(waitok=st.booleans())
    def alloc(self, waitok):
        full = len(self.out) >= self.NMAX
        if waitok and full:
            with pytest.raises(MemoryError, match="^mpipe_alloc_waitok: "):
                M.mpipe_alloc_waitok(self.mp)
            return
        a = (M.mpipe_alloc_waitok if waitok else M.mpipe_alloc_nowait)(self.mp)
        if full:
            assert a is None
            return
        assert a is not None and a not in self.out
        assert bytes(mem.buf(a, self.BYTES)) == bytes(self.BYTES), "buffer not zeroed"
        mem.buf(a, self.BYTES)[:] = b"\xaa" * self.BYTES
        if len(self.out) >= self.existing:
            self.existing += 1
            assert self.made[-1] == a
        self.out.add(a)

    @precondition(lambda self: self.out)
    @rule(data=st.data())
    def free(self, data):
        a = data.draw(st.sampled_from(sorted(self.out)))
        self.out.discard(a)
        n_free_before = self.existing - len(self.out) - 1
        M.mpipe_free(self.mp, a)
        if n_free_before >= self.NNOM:  # array full: deconstructed and kfree'd
            assert self.unmade[-1] == a
            self.existing -= 1

    @invariant()
    def agree(self):
        s = M.mpipe_stats(self.mp)
        assert s["out"] == len(self.out)
        assert s["total"] == self.existing
        assert self.NNOM <= max(self.existing, self.NNOM) and s["free"] <= self.NNOM
        assert len(self.made) - len(self.unmade) == self.existing
        assert K.kmalloc_stats(self.t)["ninuse"] == self.existing

    def teardown(self):
        for a in list(self.out):
            M.mpipe_free(self.mp, a)
        M.mpipe_done(self.mp)
        assert K.kmalloc_stats(self.t)["inuse"] == 0


Pipe.TestCase.settings = settings(
    max_examples=300 if LONG else 20, stateful_step_count=200 if LONG else 40, deadline=None
)
test_mpipe_model = Pipe.TestCase


def _pipe(nnom=2, nmax=4, flags=0):
    t = K.MALLOC_DEFINE("p")
    return M.mpipe_init(None, t, 16, nnom, nmax, flags, None, None, None), t


def test_nnom_and_nmax_are_clamped():
    mp, _ = _pipe(nnom=0, nmax=-1)
    assert mp.array_count == 1 and mp.max_count > 1000
    mp2, _ = _pipe(nnom=5, nmax=2)
    assert mp2.max_count == 5


def test_cachedata_keeps_contents():
    mp, _ = _pipe(flags=M.MPF_CACHEDATA)
    a = M.mpipe_alloc_nowait(mp)
    mem.buf(a, 16)[:] = b"x" * 16
    M.mpipe_free(mp, a)
    assert M.mpipe_alloc_nowait(mp) == a  # LIFO
    assert bytes(mem.buf(a, 16)) == b"x" * 16


def test_free_twice():
    mp, _ = _pipe()
    a = M.mpipe_alloc_nowait(mp)
    M.mpipe_free(mp, a)
    with pytest.raises(ValueError, match="^mpipe_free: 0x[0-9a-f]+ already free"):
        M.mpipe_free(mp, a)


def test_free_foreign_buffer():
    mp, t = _pipe()
    p = K.kmalloc(16, t, K.M_WAITOK)
    with pytest.raises(ValueError, match="^mpipe_free: 0x[0-9a-f]+ is not a buffer of the pipeline"):
        M.mpipe_free(mp, p)


def test_free_none_is_ignored():
    mp, _ = _pipe()
    M.mpipe_free(mp, None)


def test_done_with_buffers_out():
    mp, _ = _pipe()
    a = M.mpipe_alloc_nowait(mp)
    with pytest.raises(ValueError, match="^mpipe_done: pipeline of type 'p' still has 1 buffers out"):
        M.mpipe_done(mp)
    M.mpipe_free(mp, a)
    M.mpipe_done(mp)
    M.mpipe_done(mp)  # safe twice, as on a zeroed struct


def test_use_after_done():
    mp, _ = _pipe()
    a = M.mpipe_alloc_nowait(mp)
    M.mpipe_free(mp, a)
    M.mpipe_done(mp)
    with pytest.raises(ValueError, match="^mpipe_alloc_nowait: pipeline used after mpipe_done"):
        M.mpipe_alloc_nowait(mp)
    with pytest.raises(ValueError, match="^mpipe_alloc_waitok: pipeline used after mpipe_done"):
        M.mpipe_alloc_waitok(mp)
    with pytest.raises(ValueError, match="^mpipe_free: pipeline used after mpipe_done"):
        M.mpipe_free(mp, a)


def test_init_fails_cleanly_without_memory():
    dragonfly_memory.setup(size=256, real=False)
    t = K.MALLOC_DEFINE("small", "", 1 << 20)
    with pytest.raises(MemoryError, match="^mpipe_init: could not preallocate 8 buffers"):
        M.mpipe_init(None, t, 64, 8, 8, 0, None, None, None)
    assert K.kmalloc_stats(t)["inuse"] == 0  # what was made was given back


def test_init_bad_type():
    with pytest.raises(ValueError, match="^mpipe_init: type must be a live malloc type"):
        M.mpipe_init(None, "M_DEVBUF", 16, 1, 1, 0, None, None, None)
