"""Hostile arguments to every public allocator function (issue 16), on CPython.

firmware/mphostile.py holds the calls (every public function of vmem, uvm_km,
kmem, pool, pool_cache, extent, kmalloc, objcache, mpipe and zone with a valid
argument list) and the verdict (mphostile.check): a hostile value (2**36,
2**64, -1, -2**36, 0, 1.5, "x", b"x", None) in one or two argument places must
give a return or a TypeError/ValueError/MemoryError/OSError whose message
starts with the function's name; afterwards no lock is held and the allocator
still allocates, frees and passes its checks. Each call runs under a deadline
(faulthandler ends the process with every thread's traceback if one hangs).

* test_every_value_in_every_place: each function, each value, each argument
  place (one substitution), exhaustively.
* test_hostile_hypothesis: hypothesis draws the function, one or two places and
  the values (200 examples; MPALLOC_FUZZ=long, i.e. make fuzz: 20,000).
* test_hostile_unix_port_long (make fuzz only): the same seeded calls as the
  device suite tests/device/test_hostile.py, 20,000 of them (20 processes of
  1,000: a process's heap fragments over thousands of fixtures), on the unix port
  (make test runs that suite short on every target via test_device_suites).
The counts go to out/hostile-report.json and are printed.
"""
import faulthandler
import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[3]

import mphostile  # noqa: E402
from mpalloc import vmem  # noqa: E402

LONG = os.environ.get("MPALLOC_FUZZ") == "long"
DEADLINE_S = 20
COUNTS = {}

pytestmark = pytest.mark.fuzz


def _call(i, subst, stats):
    faulthandler.dump_traceback_later(DEADLINE_S, exit=True)
    try:
        return mphostile.check(i, subst, stats)
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture(autouse=True)
def _short_waits(monkeypatch):
    monkeypatch.setattr(vmem, "wait_ms", 50)  # an M_WAITOK that cannot be served gives up soon


def _report(name, stats):
    COUNTS[name] = dict(stats)
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    (out / "hostile-report.json").write_text(json.dumps(COUNTS, indent=1, sort_keys=True))
    print("hostile %s: %s" % (name, ", ".join("%s=%d" % kv for kv in sorted(stats.items()))))


def test_every_value_in_every_place():
    H = mphostile.hostile()
    stats = {}
    n = 0
    for i in range(len(mphostile.CASES)):
        # argument places beyond a function's count wrap around: 10 reach every
        # place of every function (make fuzz); make test: the first three and the last
        for j in (range(10) if LONG else (0, 1, 2, 9)):
            for v in H:
                _call(i, {j: v}, stats)
                n += 1
    stats["calls"] = n
    _report("exhaustive", stats)
    assert stats["refused"] > n // 2, stats  # the values were hostile: most calls are refused
    assert stats.get("ok", 0) > 0, stats  # and some are valid (0 where 0 means "none", ...)


_STATS = {}


@settings(max_examples=20000 if LONG else 200, deadline=None, derandomize=not LONG,
          suppress_health_check=list(HealthCheck))
@given(i=st.integers(0, len(mphostile.CASES) - 1),
       places=st.lists(st.integers(0, 9), min_size=1, max_size=2, unique=True),
       values=st.lists(st.sampled_from(mphostile.hostile()), min_size=2, max_size=2))
def _hyp(i, places, values):
    _call(i, dict(zip(places, values)), _STATS)
    _STATS["calls"] = _STATS.get("calls", 0) + 1


def test_hostile_hypothesis():
    _STATS.clear()
    _hyp()
    _report("hypothesis", _STATS)
    assert _STATS["calls"] >= (20000 if LONG else 200) // 2


def test_every_function_is_fuzzed():
    # every public function the misuse catalogue knows (test_misuse_catalogue) is a case
    # here, but for the ones listed with the reason they are not
    import test_misuse_catalogue as M

    cased = {c[0] for c in mphostile.CASES}
    skipped = {
        # make or tear down global state the other cases stand on, or need one
        "uvm_km_bootstrap": "replaces kernel_map (each uvm_km case bootstraps its own)",
        "kmem_init": "kmem's own setup (kmem_reset runs before each case)", "kmem_reset": "as kmem_init",
        "vmem_debug": "a switch", "uvm_km_debug": "a switch", "pool_debug": "a switch",
        "pool_cache_debug": "a switch", "kmem_debug": "a switch", "extent_debug": "a switch",
        "zone_debug": "a switch", "objcache_debug": "a switch", "uvm_km_stats": "takes no argument",
        "kmem_stats": "takes no argument", "native_path": "takes no argument (issue 20: which hit pair is bound)",
        "pool_allocator_kmem": "a back-end factory (its misuse is catalogued)",
        "pool_destroy": "tears down the pool the case stands on", "pool_cache_destroy": "as pool_destroy",
        "vmem_create": None, "extent_destroy": "tears down", "extent_print": "prints regions only",
        "EXTENT_FIXED_STORAGE_SIZE": "arithmetic on a count", "MALLOC_DEFINE": "as kmalloc_create (cased)",
        "kmalloc_destroy": "tears down", "malloc_type_live": "a predicate: any value is an answer",
        "kmalloc_limit": "a getter", "objcache_reclaimlist": "takes a list", "objcache_destroy": "tears down",
        "objcache_create": "as objcache_create_simple (cased)", "objcache_create_mbacked": "as simple",
        "objcache_malloc_alloc": "an allocator callback", "objcache_malloc_free": "as alloc",
        "objcache_nop_alloc": "as alloc", "objcache_nop_free": "as alloc",
        "mpipe_alloc_waitok": "as mpipe_alloc_nowait (cased), may wait", "mpipe_done": "tears down",
        "zbootinit": "boot-time static storage", "zinitna": "as zinit (cased)", "zdestroy": "tears down",
        "board": None,
    }
    missing = []
    for m, fn in M.public_functions():
        if m != "board" and fn not in cased and fn not in skipped and fn not in M.UNCATALOGUED:
            missing.append(fn)
    assert not missing, "public functions the hostile fuzz does not call: %s" % missing


@pytest.mark.skipif(not LONG, reason="make fuzz (MPALLOC_FUZZ=long) only: make test runs the device suite short")
def test_hostile_unix_port_long():
    mp = ROOT / ".venv" / "bin" / "micropython"
    n = 20000
    chunk = 1000  # calls per process: a board's session (the device suite makes ~2,000)
    total = {}
    for k in range(n // chunk):
        code = ("import mpfuzz, mphostile\nmpfuzz.reserve()\n"
                "print('@@counts', mphostile.run(%d, %d))\n" % (100 + k, chunk))
        r = subprocess.run([str(mp), "-X", "heapsize=512K", "-c", code], capture_output=True, text=True,
                           timeout=600, env=dict(os.environ, MICROPYPATH=str(ROOT / "firmware")))
        assert r.returncode == 0, "seed %d: %s" % (100 + k, r.stdout[-3000:] + r.stderr[-3000:])
        line = [x for x in r.stdout.splitlines() if x.startswith("@@counts")][-1]
        for key, v in eval(line[len("@@counts "):]).items():  # a dict of ints the board printed
            total[key] = total.get(key, 0) + v
    _report("unix-port", total)
    assert total["calls"] == n


def test_issue16_reports():
    """The cases issue 16 reported, one by one."""
    from mpalloc import intr, pool, pool_cache as PC

    intr.setup(1)
    V = vmem
    vm = V.vmem_create("q16", 0x1000, 0x10000, 16, 0, V.M_NOWAIT)
    # a huge size raised a bare IndexError inside the arena lock: the next call hung
    with pytest.raises(ValueError, match="^vmem_alloc: size 68719476736 exceeds"):
        V.vmem_alloc(vm, 2 ** 36, V.M_NOWAIT)
    assert not vm._lock.locked()
    a = V.vmem_alloc(vm, 64, V.M_NOWAIT)
    V.vmem_free(vm, a, 64)
    with pytest.raises(TypeError, match="^vmem_create: base, size"):
        V.vmem_create("q", None, 64, 16, 0, V.M_NOWAIT)
    # pool_sethardlimit took a float
    f = mphostile._pl()
    with pytest.raises(TypeError, match="^pool_sethardlimit: item count must be an int, not float"):
        pool.pool_sethardlimit(f["pp"], 1.5, None, 0)
    # pool_cache_get(pc, 0) succeeded on a magazine hit; put of 0 was taken
    f = mphostile._pc()
    PC.pool_cache_put(f["c"], f["p"])
    with pytest.raises(ValueError, match="^pool_cache_get: flags need exactly one of PR_WAITOK, PR_NOWAIT"):
        PC.pool_cache_get(f["c"], 0)
    with pytest.raises(ValueError, match="^pool_cache_put: 0 is not an object"):
        PC.pool_cache_put(f["c"], 0)
    assert PC.pool_cache_get(f["c"], pool.PR_NOWAIT) == f["p"]
    assert mphostile.locks_free() is None
