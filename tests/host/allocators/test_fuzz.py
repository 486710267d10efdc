"""The model-based fuzzing harness over every allocator (firmware/mpfuzz.py).

Two drivers of the same targets (one reference model and its invariants per
allocator, shared with the device replay in tests/device/test_replay.py):

* hypothesis stateful machines: hypothesis picks each operation and its
  arguments (and shrinks a failure to a short sequence);
* seeded runs: mpfuzz.run(target, seed, n), the very workload a board replays
  from the same seed; a failure names target, seed and step.

`make test` runs a short pass (fixed seeds, half of them with mpalloc.debug on).
`make fuzz` (MPALLOC_FUZZ=long) runs >= 100,000 seeded operations per allocator
(>= 1,000,000 in all) from fresh seeds (MPALLOC_FUZZ_SEED to repeat a run) plus
longer hypothesis runs. Operation counts and seeds go to out/fuzz-report.json
and to the terminal.
"""
import json
import os
import time

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

import mpfuzz  # noqa: E402
from mpalloc import debug  # noqa: E402

pytestmark = pytest.mark.fuzz

LONG = os.environ.get("MPALLOC_FUZZ") == "long"
LONG_OPS = 100_000  # seeded operations per allocator in `make fuzz`
SHORT_SEEDS, SHORT_OPS = 6, 500
HYP = (60, 200) if LONG else (10, 30)  # hypothesis: examples, steps per example

REPORT = {"mode": "long" if LONG else "short", "seeded": {}, "hypothesis": {}, "seeds": {}}


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    os.makedirs(os.path.join(ROOT, "out"), exist_ok=True)
    with open(os.path.join(ROOT, "out", "fuzz-report.json"), "w") as f:
        json.dump(REPORT, f, indent=1, sort_keys=True)  # printed by conftest.pytest_terminal_summary


def _seeded(name, seeds, nops, dbg):
    done = 0
    if dbg:
        debug.on()
    try:
        for s in seeds:
            done += mpfuzz.run(name, s, nops)
    finally:
        if dbg:
            debug.off()
    REPORT["seeded"][name] = REPORT["seeded"].get(name, 0) + done
    REPORT["seeds"].setdefault(name, []).extend(seeds)
    return done


@pytest.mark.parametrize("name", mpfuzz.NAMES)
def test_seeded(name):
    """Fixed seeds (the same ones tests/device/test_replay.py replays); half in debug mode."""
    if LONG:
        base = int(os.environ.get("MPALLOC_FUZZ_SEED", "0")) or int(time.time()) & 0xFFFFFF
        n = 0
        k = 0
        while n < LONG_OPS:
            seeds = [base + k + i for i in range(10)]
            n += _seeded(name, seeds, 1000, dbg=(k // 10) % 2 == 1)
            k += 10
        assert n >= LONG_OPS
        return
    seeds = list(range(1, SHORT_SEEDS + 1))
    n = _seeded(name, seeds[: SHORT_SEEDS // 2], SHORT_OPS, dbg=False)
    n += _seeded(name, seeds[SHORT_SEEDS // 2:], SHORT_OPS, dbg=True)
    # most generated operations reach the allocator (few no-ops on an empty state)
    assert n >= SHORT_SEEDS * SHORT_OPS * 0.8, n


def _machine(name):
    cls = mpfuzz.TARGETS[name]
    table = []  # operation index repeated by weight: hypothesis draws from it
    for i, o in enumerate(cls.OPS):
        table.extend([i] * o[1])

    class M(RuleBasedStateMachine):
        t = None

        @initialize(cfg=st.integers(0, (1 << 30) - 1), dbg=st.booleans())
        def setup(self, cfg, dbg):
            if dbg:
                debug.on()
            self.dbg = dbg
            self.t = cls(mpfuzz.Rng(cfg))

        @rule(data=st.data())
        def step(self, data):
            o = cls.OPS[data.draw(st.sampled_from(table), label="op")]
            args = [data.draw(st.integers(o[j], o[j + 1]), label="arg%d" % (j // 2 - 1)) for j in range(2, len(o), 2)]
            if mpfuzz.apply(self.t, o[0], args, name):
                REPORT["hypothesis"][name] = REPORT["hypothesis"].get(name, 0) + 1

        @invariant()
        def invariants(self):
            if self.t is not None:
                self.t.check()

        def teardown(self):
            try:
                if self.t is not None:
                    self.t.close()
            finally:
                if getattr(self, "dbg", False):
                    debug.off()

    M.__name__ = "Fuzz_" + name
    M.TestCase.settings = settings(max_examples=HYP[0], stateful_step_count=HYP[1], deadline=None,
                                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    return M


for _n in mpfuzz.NAMES:
    globals()["TestFuzz_" + _n] = _machine(_n).TestCase
del _n


def test_same_workload_on_every_run():
    """A seed fixes the workload: the digest of operations and live counts repeats
    (tests/device/test_replay.py prints the same digests on the boards)."""
    for name in mpfuzz.NAMES:
        mpfuzz.run(name, 7, 60)
        d = mpfuzz.DIGEST[0]
        mpfuzz.run(name, 7, 60)
        assert mpfuzz.DIGEST[0] == d, name


def test_failure_names_target_seed_and_step():
    """A broken invariant surfaces as mpfuzz.Failure naming target, seed, step and op."""
    cls = mpfuzz.TARGETS["pool"]
    orig = cls.check

    def broken(self):
        orig(self)
        if len(self.live) > 3:
            raise AssertionError("planted")

    cls.check = broken
    try:
        with pytest.raises(mpfuzz.Failure, match=r"^mpfuzz: pool seed=5 step=\d+ op=\w+\(.*\): AssertionError: planted"):
            mpfuzz.run("pool", 5, 200)
    finally:
        cls.check = orig


def test_kmem_inuse_after_failed_alloc():
    """Found by the harness (kmem seed 1): kmem_stats counted a failed kmem_alloc as
    in use; fixed by H4 (pool_cache counts successful gets only)."""
    from mpalloc import kmem

    mpfuzz._window(8192, 256)
    n = 0
    while kmem.kmem_alloc(700, kmem.KM_NOSLEEP) is not None:
        n += 1
    assert sum(c["inuse"] for c in kmem.kmem_stats()["classes"]) == n


def test_kmem_free_small_item_with_large_size():
    """Found by the harness (kmem seed 1, step 7): kmem_free(p, 2048) of a small item
    p that starts a 2048-byte pool page gave the page back under the pool's live
    items (the next kmem_alloc(2048) overlapped them). Fixed: uvm_km records pool
    pages apart from large allocations and kmem_free refuses, naming both sizes."""
    from mpalloc import kmem

    mpfuzz._window(16384, 256)
    p = kmem.kmem_alloc(881, kmem.KM_NOSLEEP)
    q = kmem.kmem_alloc(881, kmem.KM_NOSLEEP)
    with pytest.raises(ValueError, match=r"^kmem_free: 0x%x is an item of kmem-01024 \(items of 1024 bytes\), "
                       r"freed with the large size 2048" % p):
        kmem.kmem_free(p, 2048)
    r = kmem.kmem_alloc(2048, kmem.KM_NOSLEEP)
    assert not r <= q < r + 2048, "a large allocation over a live small item"
    for a, n in ((p, 881), (q, 881), (r, 2048)):
        kmem.kmem_free(a, n)
    assert kmem.kmem_stats()["large"]["inuse_bytes"] == 0
