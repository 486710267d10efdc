"""objcache(9): model-based test (cluster limit, ctor/dtor accounting, objects
distinct) and one test per misuse case."""
import os

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import dragonfly_memory
from mpalloc import kmalloc as K
from mpalloc import mem
from mpalloc import objcache as O
from mpalloc import pool_cache as PC

LONG = os.environ.get("MPALLOC_FUZZ") == "long"


@pytest.fixture(autouse=True)
def _window():
    dragonfly_memory.setup()
    O.objcache_debug(False)
    yield
    O.objcache_debug(False)


class Cache(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        dragonfly_memory.setup()
        self.t = K.MALLOC_DEFINE("ocm", "", 1 << 17)
        self.ctors = []
        self.dtors = []
        self.oc = O.objcache_create_mbacked(self.t, 24, 10, 0, self._ctor, self._dtor, "priv")
        self.limit = self.oc.cluster_limit
        self.out = {}  # object -> stamp byte written by the user

    def _ctor(self, o, priv, flags):
        assert priv == "priv"
        self.ctors.append(o)
        mem.buf(o, 4)[:] = b"CTOR"
        return True

    def _dtor(self, o, priv):
        assert bytes(mem.buf(o, 4)) == b"CTOR", "destructing an object not in constructed state"
        self.dtors.append(o)

    @rule(nowait=st.booleans())
    def get(self, nowait):
        live = len(self.ctors) - len(self.dtors)
        o = O.objcache_get(self.oc, K.M_NOWAIT if nowait else K.M_WAITOK | K.M_NULLOK)
        if len(self.out) >= self.limit:
            assert o is None
            return
        assert o is not None and o not in self.out
        assert bytes(mem.buf(o, 4)) == b"CTOR"  # constructed (new or cached)
        assert len(self.ctors) - len(self.dtors) <= max(live + 1, live)
        self.out[o] = 1

    @precondition(lambda self: self.out)
    @rule(data=st.data(), dtor=st.booleans())
    def put(self, data, dtor):
        o = data.draw(st.sampled_from(sorted(self.out)))
        del self.out[o]
        n = len(self.dtors)
        (O.objcache_dtor if dtor else O.objcache_put)(self.oc, o)
        if dtor:
            assert self.dtors[n:] == [o]

    @rule()
    def reclaim(self):
        had = O.objcache_stats(self.oc)["cached"]
        assert O.objcache_reclaimlist([self.oc], 1, K.M_WAITOK) == (had > 0)
        assert O.objcache_stats(self.oc)["cached"] == 0

    @invariant()
    def agree(self):
        s = O.objcache_stats(self.oc)
        live = len(self.ctors) - len(self.dtors)
        assert s["live"] == live == s["cached"] + len(self.out)
        assert live <= self.limit
        assert s["unallocated"] == self.limit - live
        assert K.kmalloc_stats(self.t)["ninuse"] == live

    def teardown(self):
        for o in list(self.out):
            O.objcache_put(self.oc, o)
        O.objcache_destroy(self.oc)
        assert len(self.ctors) == len(self.dtors)
        assert K.kmalloc_stats(self.t)["inuse"] == 0


Cache.TestCase.settings = settings(
    max_examples=300 if LONG else 20, stateful_step_count=200 if LONG else 40, deadline=None
)
test_objcache_model = Cache.TestCase


def _oc(limit=0):
    t = K.MALLOC_DEFINE("oc")
    return O.objcache_create_mbacked(t, 16, limit, 0, None, None, None), t


def test_sizing_follows_dragonfly():
    oc, _ = _oc(limit=100)  # nom = 50, one CPU: capacity = 50 / 2 / 2 + 1 = 13
    assert oc.mag_capacity == 13 and oc.cluster_limit == 1 * 13 * 2 + 100
    oc2, _ = _oc()
    assert oc2.mag_capacity == 128 // 2 // 2 + 1 and oc2.cluster_limit == 0


def test_reuses_pool_cache_magazines():
    oc, _ = _oc()
    assert oc.pc in PC.pool_cache_list
    a = O.objcache_get(oc, K.M_NOWAIT)
    O.objcache_put(oc, a)
    assert O.objcache_get(oc, K.M_NOWAIT) == a  # a magazine hit
    st_ = PC.pool_cache_stats(oc.pc)
    assert st_["cpus"][0]["hits"] >= 2


def test_ctor_failure_returns_none_and_frees():
    t = K.MALLOC_DEFINE("f")
    oc = O.objcache_create_mbacked(t, 16, 0, 0, lambda o, p, f: False, None, None)
    assert O.objcache_get(oc, K.M_WAITOK) is None
    assert K.kmalloc_stats(t)["inuse"] == 0


def test_exhausted_waitok_would_sleep_forever(capsys):
    t = K.MALLOC_DEFINE("x")
    oc = O.objcache_create_mbacked(t, 16, 1, 0, None, None, None)
    objs = [O.objcache_get(oc, K.M_WAITOK) for _ in range(oc.cluster_limit)]
    assert None not in objs
    assert O.objcache_get(oc, K.M_NOWAIT) is None
    assert "objcache(x): Exhausted!" in capsys.readouterr().out
    with pytest.raises(MemoryError, match="^objcache_get: cache 'x' exhausted"):
        O.objcache_get(oc, K.M_WAITOK)
    assert O.objcache_get(oc, K.M_WAITOK | K.M_NULLOK) is None


def test_get_refuses_m_zero():
    oc, _ = _oc()
    with pytest.raises(ValueError, match="^objcache_get: M_ZERO"):
        O.objcache_get(oc, K.M_WAITOK | K.M_ZERO)


def test_get_bad_flags():
    oc, _ = _oc()
    with pytest.raises(ValueError, match="^objcache_get: flags"):
        O.objcache_get(oc, 0)


def test_put_twice_caught_in_debug():
    O.objcache_debug(True)
    oc, _ = _oc()
    a = O.objcache_get(oc, K.M_WAITOK)
    O.objcache_put(oc, a)
    with pytest.raises(ValueError, match="^objcache_put: 0x[0-9a-f]+ is not an object of cache 'oc' that is out"):
        O.objcache_put(oc, a)


def test_put_foreign_caught_in_debug():
    O.objcache_debug(True)
    oc, t = _oc()
    p = K.kmalloc(16, t, K.M_WAITOK)
    with pytest.raises(ValueError, match="^objcache_put: .*put twice or foreign"):
        O.objcache_put(oc, p)


def test_destroy_with_objects_out():
    oc, _ = _oc()
    a = O.objcache_get(oc, K.M_WAITOK)
    with pytest.raises(ValueError, match="^objcache_destroy: cache 'oc' still has 1 objects out"):
        O.objcache_destroy(oc)
    O.objcache_put(oc, a)
    O.objcache_destroy(oc)
    assert oc not in O.objcache_list and oc.pc not in PC.pool_cache_list


def test_use_after_destroy():
    oc, _ = _oc()
    O.objcache_destroy(oc)
    with pytest.raises(ValueError, match="^objcache_get: cache was destroyed"):
        O.objcache_get(oc, K.M_NOWAIT)
    with pytest.raises(ValueError, match="^objcache_put: cache was destroyed"):
        O.objcache_put(oc, 0x20010000)
    with pytest.raises(ValueError, match="^objcache_destroy: cache 'oc' already destroyed"):
        O.objcache_destroy(oc)


def test_nop_backend_gives_nothing():
    oc = O.objcache_create("nop", 0, 0, None, None, None, O.objcache_nop_alloc, O.objcache_nop_free, None)
    assert O.objcache_get(oc, K.M_NOWAIT) is None
