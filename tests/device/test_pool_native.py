# Issue 20: pool's native (viper) get/put pair beside the bytecode one.
# Each target binds the path it should (native where the firmware compiles
# viper code: the unix port of the virtual boards, rp2's own firmware;
# bytecode on webassembly and the micro:bit), mpalloc.native.off()/on()
# switch it, and both paths give the same addresses, counts and errors for
# the same seeded sequence (pages added and given back, the hard limit,
# PR_ZERO), allocate nothing under heap_lock and keep scheduled callbacks out
# of a get or put. The other pool suites run on both paths through the
# runner's native switch (tests/host/targets/test_native_paths.py).
# Run directly: MICROPYPATH=firmware:tests/device .venv/bin/micropython tests/device/test_pool_native.py
import sys

from mptest import Suite, heap_locked, eq, raises, check_msg

from mpalloc import mem, intr, pool
from mpalloc import native as _NT

s = Suite("pool_native", needs=("heap:20000",))

_BASE = 0x20002000
_PS = 256
_EXPECT = {"linux": "native", "darwin": "native", "rp2": "native", "esp32": "native",
           "webassembly": "bytecode", "microbit": "bytecode"}
_SW = _NT.switch[0]  # the switch as the runner left it (0: MPALLOC_NATIVE=off)


def _back():
    if _SW:
        _NT.on()
    else:
        _NT.off()


def _arch():
    m = getattr(sys.implementation, "_mpy", 0)
    return (m >> 10) & 0x0F


def _pool(npages=16, limit=None):
    from mptest_pages import pool_window

    pa = pool_window(mem, pool.pool_allocator, _BASE, _PS, npages)
    pp = pool.pool_init(32, 8, 0, 0, "natp", pa, pool.IPL_VM)
    if limit is not None:
        pool.pool_sethardlimit(pp, limit, None, 0)
    return pp


@s.test
def binds_expected_path():
    from mpalloc import board

    board.init()
    path = pool.native_path()
    s.metric("binds_expected_path", "path", path)
    want = _EXPECT.get(sys.platform)
    if want is None:
        want = "native" if _arch() else "bytecode"
    if _arch() == 0:
        eq(path, "bytecode", "path on a firmware without native code")
    if not _SW:
        want = "bytecode"
    eq(path, want, "pool path bound by board.init() on %s" % sys.platform)
    eq(_NT.paths().get("pool"), path, "native.paths() reports pool")


@s.test
def switch_off_on():
    intr.setup(1)
    start = pool.native_path()
    _NT.off()
    try:
        eq(pool.native_path(), "bytecode", "after native.off()")
        if not pool._debug[0]:  # debug mode binds its checking pair in front
            eq(pool.pool_get, pool._get, "pool_get is the bytecode one")
        intr.setup(1)
        eq(pool.native_path(), "bytecode", "after intr.setup with native off")
    finally:
        _back()
    eq(pool.native_path(), start, "switched back")


def _run(seed):
    # a seeded mix over 16 pages of 8 items with a hard limit of 100: pages
    # come and go (pool_sethiwat), gets fail at the limit, PR_ZERO zeroes;
    # returns a digest of the addresses and the pool's counts
    pp = _pool(16, 100)
    pool.pool_sethiwat(pp, 24)
    held = []
    x = seed
    h = 0
    for i in range(700):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        if (x >> 8) % 3 and len(held) < 110 or not held:
            f = pool.PR_NOWAIT | (pool.PR_ZERO if (x >> 4) & 7 == 0 else 0)
            a = pool.pool_get(pp, f)
            if a is None:
                h = (h * 31 + 7) & 0xFFFFFF
                continue
            if f & pool.PR_ZERO:
                for j in range(32):
                    if mem.ram[a - mem.base + j]:
                        raise AssertionError("PR_ZERO: byte %d of 0x%x not zero" % (j, a))
            mem.ram[a - mem.base] = 0x5A
            held.append(a)
            h = (h * 31 + a) & 0xFFFFFF
        else:
            a = held.pop((x >> 12) % len(held))
            pool.pool_put(pp, a)
            h = (h * 31 + 3) & 0xFFFFFF
    pool.pool_chk(pp)
    st = pool.pool_stats(pp)
    for a in held:
        pool.pool_put(pp, a)
    out = (h, st["nget"], st["nput"], st["nfail"], st["npages"], st["npagealloc"], st["npagefree"], st["nout"])
    pool.pool_chk(pp)
    pool.pool_destroy(pp)
    return out


@s.test
def same_digest_both_paths():
    modes = [(1, intr.MODE_UP)]
    if sys.platform in ("linux", "darwin"):
        modes.append((2, intr.MODE_THREAD))
    if sys.platform == "rp2":
        modes.append((1, intr.MODE_SIO))
    for m in modes:
        intr.setup(m[0], m[1])
        s.metric("same_digest_both_paths", "path_mode%d" % intr.mode, pool.native_path())
        a = _run(4242)
        _NT.off()
        try:
            b = _run(4242)
        finally:
            _back()
        s.metric("same_digest_both_paths", "digest_mode%d" % intr.mode, a[0])
        eq(a, b, "native vs bytecode (mode %d)" % intr.mode)


def _churn(pp):
    g = pool.pool_get
    p = pool.pool_put
    for _ in range(100):
        a = g(pp, 2)
        b = g(pp, 2)
        p(pp, a)
        p(pp, b)
    return 0


@s.test
def no_heap_both_paths():
    intr.setup(1)
    pp = _pool(4)
    pool.pool_prime(pp, 16)
    try:
        for off in (0, 1):
            if off:
                _NT.off()
            _churn(pp)
            heap_locked(_churn, pp)
    finally:
        _back()
        pool.pool_destroy(pp)


@s.test
def misuse_errors_both_paths():
    intr.setup(1)
    pp = _pool(4)
    try:
        for off in (0, 1):
            if off:
                _NT.off()
            a = pool.pool_get(pp, pool.PR_NOWAIT)
            check_msg(raises(ValueError, pool.pool_get, pp, 7), "pool_get", "PR_WAITOK")
            check_msg(raises(TypeError, pool.pool_get, pp, 1.5), "pool_get", "float")
            check_msg(raises(ValueError, pool.pool_put, pp, None), "pool_put", "None")
            check_msg(raises(ValueError, pool.pool_put, pp, a + 4), "pool_put", "not an item")
            check_msg(raises(ValueError, pool.pool_put, pp, 12345), "pool_put", "not an item")
            check_msg(raises(ValueError, pool.pool_put, pp, 1 << 40), "pool_put", "not an item")
            check_msg(raises(ValueError, pool.pool_put, pp, 2.5), "pool_put", "not an item")
            pool.pool_put(pp, a)
            check_msg(raises(ValueError, pool.pool_put, pp, a), "pool_put", "double put")
            eq(pool.pool_stats(pp)["nout"], 0, "nothing out after the misuse (path %d)" % off)
    finally:
        _back()
        pool.pool_destroy(pp)


@s.test
def scheduled_callback_outside_get_put():
    # native path: a callback scheduled during a run of gets and puts sees the
    # pool whole (pool_chk passes inside it): it never lands inside a get or a
    # put. (The bytecode pair makes no such promise for micropython.schedule
    # callbacks, which run at any bytecode jump; softint.py's soft interrupts
    # wait for the mask on both paths.)
    if pool.native_path() != "native":
        s.metric("scheduled_callback_outside_get_put", "path", "bytecode: nothing to check")
        return
    try:
        import micropython
    except ImportError:
        return
    if not hasattr(micropython, "schedule"):
        return
    intr.setup(1)
    pp = _pool(4)
    pool.pool_prime(pp, 16)
    seen = [0, None]

    def cb(_):
        seen[0] += 1
        try:
            pool.pool_chk(pp)
        except AssertionError as e:
            seen[1] = str(e)

    g = pool.pool_get
    p = pool.pool_put
    try:
        for _ in range(20 if sys.platform not in ("linux", "darwin") else 60):
            micropython.schedule(cb, 0)
            for _ in range(10):
                p(pp, g(pp, 2))
    finally:
        pool.pool_destroy(pp)
    eq(seen[1], None, "a callback found the pool broken")
    if seen[0] == 0:
        raise AssertionError("no scheduled callback ran")
    s.metric("scheduled_callback_outside_get_put", "callbacks", seen[0])


s.run()
