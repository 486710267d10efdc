"""zone(9): model-based test of boot zones, plus one test per misuse case.

The reference model is a plain set of outstanding item numbers and a dict of
what each item last held; it knows nothing of the zone's free list.
MPALLOC_FUZZ=long runs many more steps.
"""
import os

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule


from mpalloc import zone  # noqa: E402

LONG = os.environ.get("MPALLOC_FUZZ") == "long"


@pytest.fixture(autouse=True)
def _fresh():
    del zone.zone_list[:]
    zone.zone_debug(False)
    yield
    zone.zone_debug(False)
    del zone.zone_list[:]


class BootZone(RuleBasedStateMachine):
    SIZE = 24
    N = 9

    def __init__(self):
        super().__init__()
        del zone.zone_list[:]
        zone.zone_debug(False)
        self.store = bytearray(self.SIZE * self.N + 5)
        self.z = zone.zbootinit(None, "model", self.SIZE, self.store, self.N)
        self.base = zone._addressof(self.store)
        self.out = set()  # item numbers handed out (the model)
        self.content = {}  # item number -> tag byte written after the reserved words
        self.ever = set()  # items allocated at least once
        self.tag = 1

    def _n(self, a):
        d = a - self.base
        assert d % self.SIZE == 0 and 0 <= d < self.SIZE * self.N, "address outside the storage"
        return d // self.SIZE

    @rule()
    def alloc(self):
        a = zone.zalloc(self.z)
        if len(self.out) == self.N:
            assert a is None
            return
        assert a is not None
        n = self._n(a)
        assert n not in self.out
        body = zone.zbuf(self.z, a)[zone.ZONE_RSVD:]
        if n not in self.ever:
            assert bytes(zone.zbuf(self.z, a)) == bytes(self.SIZE), "first allocation not zeroed"
        else:  # type stable: what the last user left is still there
            assert bytes(body) == bytes([self.content[n]]) * len(body)
        self.ever.add(n)
        self.out.add(n)
        self.tag = self.tag % 250 + 1
        body[:] = bytes([self.tag]) * len(body)
        self.content[n] = self.tag

    @precondition(lambda self: self.out)
    @rule(data=st.data())
    def free(self, data):
        n = data.draw(st.sampled_from(sorted(self.out)))
        zone.zfree(self.z, self.base + n * self.SIZE)
        self.out.discard(n)

    @rule(on=st.booleans())
    def debug(self, on):
        zone.zone_debug(on)

    @precondition(lambda self: len(self.out) < self.N)
    @rule(data=st.data())
    def double_free_is_refused(self, data):
        free = sorted(set(range(self.N)) - self.out)
        n = data.draw(st.sampled_from(free))
        before = zone.zone_stats(self.z)
        with pytest.raises(ValueError, match="^zfree: .* already free"):
            zone.zfree(self.z, self.base + n * self.SIZE)
        assert zone.zone_stats(self.z) == before

    @invariant()
    def stats_agree(self):
        s = zone.zone_stats(self.z)
        assert s["used"] == len(self.out)
        assert s["free"] == self.N - len(self.out)
        assert s["total"] == s["max"] == self.N
        assert s["nalloc"] - s["nfree"] == len(self.out)


BootZone.TestCase.settings = settings(
    max_examples=400 if LONG else 25, stateful_step_count=200 if LONG else 40, deadline=None
)
test_boot_zone_model = BootZone.TestCase


def _zone(n=3, size=16):
    store = bytearray(size * n)
    return zone.zbootinit(None, "t", size, store, n), zone._addressof(store), store


def test_zfree_foreign_address():
    z, base, _ = _zone()
    with pytest.raises(ValueError, match="^zfree: 0x[0-9a-f]+ is not from zone 't'"):
        zone.zfree(z, base + 1000)


def test_zfree_inside_an_item():
    z, base, _ = _zone()
    a = zone.zalloc(z)
    with pytest.raises(ValueError, match="^zfree: .* not the start of an item"):
        zone.zfree(z, a + 4)
    zone.zfree(z, a)  # the real item is still freeable: nothing lost


def test_zfree_twice():
    z, base, _ = _zone()
    a = zone.zalloc(z)
    zone.zfree(z, a)
    with pytest.raises(ValueError, match="^zfree: .* already free"):
        zone.zfree(z, a)
    assert zone.zone_stats(z)["free"] == 3


def test_zfree_item_of_another_zone():
    z1, _, _ = _zone()
    z2, _, _ = _zone()
    a = zone.zalloc(z1)
    with pytest.raises(ValueError, match="^zfree: .* not from zone"):
        zone.zfree(z2, a)


def test_modify_after_free_caught_in_debug():
    z, base, store = _zone(n=1)
    zone.zone_debug(True)
    a = zone.zalloc(z)
    zone.zfree(z, a)
    store[5] ^= 0xFF  # scribble on the reserved words of the free item
    with pytest.raises(ValueError, match="^zalloc: .*modified"):
        zone.zalloc(z)


def test_boot_zone_exhausts_and_counts_failures():
    z, _, _ = _zone(n=2)
    assert zone.zalloc(z) is not None and zone.zalloc(z) is not None
    assert zone.zalloc(z) is None
    assert zone.zone_stats(z)["nfail"] == 1


def test_zbootinit_bad_arguments():
    with pytest.raises(ValueError, match="^zbootinit: size 4 smaller"):
        zone.zbootinit(None, "x", 4, bytearray(64), 2)
    with pytest.raises(ValueError, match="^zbootinit: storage of 16 bytes"):
        zone.zbootinit(None, "x", 16, bytearray(16), 2)
    with pytest.raises(ValueError, match="^zbootinit: nitems 0"):
        zone.zbootinit(None, "x", 16, bytearray(16), 0)
    z, _, _ = _zone()
    with pytest.raises(ValueError, match="^zbootinit: zone 't' already initialised"):
        zone.zbootinit(z, "t", 16, bytearray(64), 2)


def test_zdestroy_refuses_boot_zone():
    z, _, _ = _zone()
    with pytest.raises(ValueError, match="^zdestroy: zone 't' was not made by zinit"):
        zone.zdestroy(z)


def test_zone_in_the_list_and_stats_keys():
    z, _, _ = _zone()
    assert z in zone.zone_list
    assert set(zone.zone_stats(z)) >= {"name", "size", "max", "used", "free", "nalloc"}


def test_zbootinit_on_managed_window_address():
    from mpalloc import mem

    mem.attach(0x20030000, bytearray(4096))
    z = zone.zbootinit(None, "win", 32, 0x20030100, 4)
    a = zone.zalloc(z)
    assert a == 0x20030100
    mem.buf(a, 32)[8:] = b"\x07" * 24
    zone.zfree(z, a)
    zone.zalloc(z)
    assert bytes(zone.zbuf(z, a))[8:] == b"\x07" * 24  # type stable
    with pytest.raises(ValueError, match="^zbootinit: 0x[0-9a-f]+\\+128 outside the managed window"):
        zone.zbootinit(None, "out", 32, 0x20030000 + 4000, 4)
