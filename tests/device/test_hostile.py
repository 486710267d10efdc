# Hostile arguments (issue 16) on the board: firmware/mphostile.py calls every
# public allocator function with one or two arguments replaced by huge,
# negative, zero, float, str, bytes and None values; each call must return or
# raise a clear error naming the function, leave no lock held, and leave the
# allocator allocating, freeing and passing its checks. The host runs the same
# calls under hypothesis (tests/host/allocators/test_fuzz_hostile.py; make fuzz: long).
#   hostile_args         HOSTILE_CALLS seeded calls (metric: calls, refused, ok,
#                        late, hot-type: see mphostile.LATE and mphostile.HOT)
#   every_function_once  each function with each hostile value in its second
#                        argument and its last (the seeded calls reach the others)
#   thread_without_cpu   a thread that never called intr.cpu_attach gets
#                        intr.E_NOCPU at its first pool_cache/pool call, CPU 0's
#                        mask untouched (MODE_THREAD boards: the virtual board)
# Set mphostile.HOSTILE_CALLS before the suite runs for a longer run.
# Run directly: MICROPYPATH=firmware .venv/bin/micropython -X heapsize=512K tests/device/test_hostile.py
import sys
import time

from mptest import Suite, skip, has, eq

import mpfuzz
import mphostile
from mpalloc import intr

mpfuzz.reserve(mphostile.HOSTILE_WINDOW)  # 16 KB, not the replays' 32 KB: a Pico has every layer loaded here

s = Suite("hostile", needs=("heap:200000",))

# webassembly runs a call ~8x slower than the unix port, the RP2040 (emulated at
# ~0.25x real time under emu:rp2040, or a real Pico) slower still: a shorter pass
# there (make test's budget); the unix port and CPython (exhaustively) run all of it
SHORT_CALLS = {"webassembly": 120, "rp2": 20, "esp32": 120}
SLOW = sys.platform in SHORT_CALLS
NCALLS = getattr(mphostile, "HOSTILE_CALLS", SHORT_CALLS.get(sys.platform, 400))
DEADLINE_MS = 5000  # one call; a hang is the runner's per-test deadline


def _timed(fn):
    t = time.ticks_ms()
    r = fn()
    d = time.ticks_diff(time.ticks_ms(), t)
    if d > DEADLINE_MS:
        raise AssertionError("hostile: a call took %d ms (deadline %d)" % (d, DEADLINE_MS))
    return r


@s.test
def hostile_args():
    st = {}
    for seed in (1, 2):
        mphostile.run(seed, NCALLS // 2, st)
    for k in ("calls", "refused", "ok", "late", "hot-type"):
        s.metric("hostile_args", k, st.get(k, 0))
    eq(st["calls"], NCALLS // 2 * 2, "calls made")
    if not st.get("refused"):
        raise AssertionError("hostile: no call refused: the arguments were not hostile")


@s.test
def every_function_once():
    H = mphostile.hostile()
    step = 1
    if sys.platform == "rp2":
        # a call costs ~0.6 s of emu:rp2040's wall time: one value, every sixth function
        H, step = (H[0],), 6  # 2**36
    elif SLOW:
        H = (H[0], H[2], H[5], H[8])  # 2**36, -1, 1.5, None
    st = {}
    n = 0
    for i in range(0, len(mphostile.CASES), step):
        for v in H:
            for j in ((-1,) if SLOW else (1, -1)):  # the second argument and the last (index taken mod the count)
                _timed(lambda: mphostile.check(i, {j: v}, st))
                n += 1
    s.metric("every_function_once", "calls", n)
    s.metric("every_function_once", "refused", st.get("refused", 0))


@s.test
def thread_without_cpu():
    if not has("threads"):
        skip("board lacks threads")
    if intr._default_mode() != intr.MODE_THREAD:
        skip("threads are no CPUs here (intr mode %d)" % intr._default_mode())
    import _thread
    from mpalloc import pool, pool_cache as PC

    intr.setup(2, intr.MODE_THREAD)
    mpfuzz._attach(4096)
    pg = mpfuzz._Pages(256, 16)
    c = PC.pool_cache_init(32, 8, 0, 0, "nocpu", pg.palloc, pool.IPL_VM, None, None, None)
    o = PC.pool_cache_get(c, pool.PR_NOWAIT)
    PC.pool_cache_put(c, o)  # CPU 0's magazine is loaded: the other thread's get would hit it
    res = []

    def user():
        for f in (lambda: PC.pool_cache_get(c, pool.PR_NOWAIT),
                  lambda: pool.pool_get(PC.pool_cache_pool(c), pool.PR_NOWAIT)):
            try:
                f()
                res.append("no error")
            except RuntimeError as e:
                res.append(str(e))
        intr.cpu_attach(1)  # now it is CPU 1: it allocates
        p = PC.pool_cache_get(c, pool.PR_NOWAIT)
        PC.pool_cache_put(c, p)
        res.append(p is not None)

    _thread.start_new_thread(user, ())
    t = time.ticks_ms()
    while len(res) < 3 and time.ticks_diff(time.ticks_ms(), t) < 5000:
        time.sleep_ms(1)
    eq(len(res), 3, "the user thread finished")
    for m in res[:2]:
        if "intr.cpu_attach" not in m:
            raise AssertionError("thread without a CPU: got %r, not an error naming intr.cpu_attach" % m)
    eq(res[2], True, "after cpu_attach the thread allocates")
    eq(intr._depth[0], 0, "CPU 0's mask depth")
    eq(intr._mask[0].locked(), False, "CPU 0's mask")
    eq(PC.pool_cache_get(c, pool.PR_NOWAIT), o, "CPU 0 still hits its magazine")
    intr.setup(1)


s.run()
