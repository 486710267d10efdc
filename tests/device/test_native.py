# Issue 20: native (viper) hit paths of pool_cache beside the bytecode ones.
# Each target binds the path it should (native where the firmware compiles
# viper code: the unix port of the virtual boards, rp2's own firmware; bytecode
# on webassembly and the micro:bit), mpalloc.native.off()/on() switch it, and
# both paths give the same objects, counts and errors for the same seeded
# sequence, allocate nothing under heap_lock and keep scheduled callbacks out
# of a hit. The other suites run on both paths through the runner's native
# switch (tests/host/targets/test_native_paths.py).
# Run directly: MICROPYPATH=firmware .venv/bin/micropython tests/device/test_native.py
import sys

from mptest import Suite, heap_locked, eq, raises, check_msg

from mpalloc import mem, intr, pool
from mpalloc import pool_cache as PC

s = Suite("native", needs=("heap:30000",))

# rounds of the callback test: 300 (120,000 hits a path) on the unix port,
# fewer where a call is slow (rp2040js at ~0.25x, webassembly)
ROUNDS = 300 if sys.platform in ("linux", "darwin") else 30
_BASE = 0x20002000
_PS = 256
# sys.platform -> the path board.init() must bind there
_EXPECT = {"linux": "native", "darwin": "native", "rp2": "native", "esp32": "native",
           "webassembly": "bytecode", "microbit": "bytecode"}


from mpalloc import native as _NT  # noqa: E402

_SW = _NT.switch[0]  # the switch as the runner left it (0: MPALLOC_NATIVE=off, mpalloc.native.off())


def _back():
    # the switch back as the suite found it
    from mpalloc import native

    if _SW:
        native.on()
    else:
        native.off()


def _arch():
    # the native arch of the firmware (0: none, bytecode only); sys.implementation._mpy
    m = getattr(sys.implementation, "_mpy", 0)
    return (m >> 10) & 0x0F


def _cache():
    from mptest_pages import pool_window

    pa = pool_window(mem, pool.pool_allocator, _BASE, _PS, 16)
    return PC.pool_cache_init(32, 8, 0, 0, "nat", pa, pool.IPL_VM, None, None, None)


@s.test
def binds_expected_path():
    from mpalloc import board

    board.init()
    path = PC.native_path()
    s.metric("binds_expected_path", "path", path)
    s.metric("binds_expected_path", "mode", intr.mode)
    want = _EXPECT.get(sys.platform)
    if want is None:  # another port: native exactly where the firmware has an arch
        want = "native" if _arch() else "bytecode"
    if _arch() == 0:
        eq(path, "bytecode", "path on a firmware without native code")
    if not _SW:  # the runner switched native code off: the bytecode pair everywhere
        want = "bytecode"
    eq(path, want, "pool_cache path bound by board.init() on %s" % sys.platform)


@s.test
def switch_off_on():
    from mpalloc import native

    intr.setup(1)
    start = PC.native_path()
    native.off()
    try:
        eq(PC.native_path(), "bytecode", "after native.off()")
        eq(native.paths()["pool_cache"], "bytecode", "native.paths()")
        intr.setup(1)  # a later set-up keeps the switch
        eq(PC.native_path(), "bytecode", "after intr.setup with native off")
    finally:
        _back()
    eq(PC.native_path(), start, "switched back")


def _run(seed):
    # a seeded mix of gets and puts over 3 magazine sizes' worth of objects:
    # hits, misses to the depot and to the pool; returns a digest of what
    # came back and the cache's counts
    pc = _cache()
    held = []
    x = seed
    h = 0
    for i in range(600):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        if (x >> 8) % 3 and len(held) < 60 or not held:
            o = PC.pool_cache_get(pc, PC.PR_NOWAIT)
            if o is None:
                h = (h * 31 + 7) & 0xFFFFFF
                continue
            held.append(o)
            h = (h * 31 + o) & 0xFFFFFF
        else:
            o = held.pop((x >> 12) % len(held))
            PC.pool_cache_put(pc, o)
            h = (h * 31 + 3) & 0xFFFFFF
    for o in held:
        PC.pool_cache_put(pc, o)
    st = PC.pool_cache_stats(pc)
    c = st["cpus"][0]
    out = (h, c["hits"], c["misses"], c["nget"], c["nput"], st["depot"]["gets"], st["depot"]["puts"],
           PC.pool_cache_cached(pc))
    PC.pool_cache_destroy(pc)
    return out


@s.test
def same_digest_both_paths():
    from mpalloc import native

    modes = [(1, intr.MODE_UP)]
    if sys.platform in ("linux", "darwin"):
        modes.append((2, intr.MODE_THREAD))
    if sys.platform == "rp2":
        modes.append((1, intr.MODE_SIO))
    for m in modes:
        intr.setup(m[0], m[1])
        s.metric("same_digest_both_paths", "path_mode%d" % intr.mode, PC.native_path())
        a = _run(12345)
        native.off()
        try:
            b = _run(12345)
        finally:
            _back()
        s.metric("same_digest_both_paths", "digest_mode%d" % intr.mode, a[0])
        eq(a, b, "native vs bytecode (mode %d)" % intr.mode)


def _hits(pc):
    g = PC.pool_cache_get
    p = PC.pool_cache_put
    for _ in range(200):
        a = g(pc, 2)
        b = g(pc, 2)
        p(pc, a)
        p(pc, b)
    return 0


@s.test
def no_heap_both_paths():
    from mpalloc import native

    intr.setup(1)
    pc = _cache()
    try:
        for off in (0, 1):
            if off:
                native.off()
            _hits(pc)  # magazines made outside the lock
            heap_locked(_hits, pc)
    finally:
        _back()
        PC.pool_cache_destroy(pc)


@s.test
def misuse_errors_both_paths():
    from mpalloc import native

    intr.setup(1)
    pc = _cache()
    try:
        for off in (0, 1):
            if off:
                native.off()
            check_msg(raises(ValueError, PC.pool_cache_get, pc, 7), "pool_cache_get", "PR_WAITOK")
            check_msg(raises(TypeError, PC.pool_cache_get, pc, 1.5), "pool_cache_get", "float")
            check_msg(raises(TypeError, PC.pool_cache_get, pc, None), "pool_cache_get", "NoneType")
            check_msg(raises(TypeError, PC.pool_cache_get, [0], 7), "pool_cache_get", "pool cache")
            check_msg(raises(ValueError, PC.pool_cache_put, pc, None), "pool_cache_put", "None")
            check_msg(raises(ValueError, PC.pool_cache_put, pc, 0), "pool_cache_put", "0")
    finally:
        _back()
        PC.pool_cache_destroy(pc)


@s.test
def scheduled_callback_outside_hit():
    # a callback scheduled before a run of hits runs at the next check the VM
    # makes, never inside a hit: its view of the magazine is always consistent
    # (count within 0..cap and every listed object an int)
    try:
        import micropython

        micropython.schedule
    except (ImportError, AttributeError):
        from mptest import skip

        skip("no micropython.schedule")
    from mpalloc import native

    intr.setup(1)
    pc = _cache()
    bad = [0, 0]

    def cb(_):
        mag = pc[0]
        n = mag[0]
        bad[1] += 1
        if not 0 <= n <= mag[-2]:
            bad[0] += 1
        for i in range(1, n + 1):
            if mag[i].__class__ is not int:
                bad[0] += 1

    try:
        for off in (0, 1):
            if off:
                native.off()
            for _ in range(ROUNDS):
                try:
                    micropython.schedule(cb, None)
                except RuntimeError:  # queue full: let it drain
                    pass
                _hits(pc)
    finally:
        _back()
        PC.pool_cache_destroy(pc)
    s.metric("scheduled_callback_outside_hit", "callbacks", bad[1])
    eq(bad[0], 0, "inconsistent magazines seen by a callback")


s.run()
