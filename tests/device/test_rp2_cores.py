# Both RP2040 cores running Python (emu:rp2040 with MPALLOC_EMU_CORES=2, a Pico
# under `make hil`): _thread starts core 1 (multicore_launch_core1), board.init()
# binds MODE_SIO, and the proofs that need two real cores:
#   thread_on_core1        the thread reads CPUID 1 (intr.curcpu() there), main 0
#   sio_own_magazines      each core hits its own magazine (pc[CPUID]): an object
#                          put on core 1 is not what core 0 gets next
#   disable_irq_excludes   machine.disable_irq() (rp2's atomic section: mutual
#                          exclusion across cores while core 1 runs Python) keeps
#                          the other core out; the control without it overlaps
#   race_two_cores         both cores churn one pool_cache: nothing handed out
#                          twice or lost, statistics balance, hit rate per core
#   hard_timer_core1_churns  hard Timer interrupts on core 0 get/put through
#                          intr.run_hard while core 1 churns the same cache
#   hit_cost_per_core      pool_cache get+put hit pair in emulated cycles per core
# Figures: MPALLOC_LONG=1 (the host's "long" cap): 100,000 race operations and
# 20,000 interrupt-context ones; make test: 10,000 and 500.
# Skipped where there is no rp2 with threads (the other targets, emu:rp2040 with
# one core). Nothing here creates module globals while core 1 runs: rp2 has no
# GIL, and a dict resize seen half-done by the other core is a real race there.
import gc
import sys

from mptest import Suite, skip, has, eq

s = Suite("rp2_cores", needs=("threads", "heap:60000"))

_PAGE = 256
_BASE = 0x10000000  # where the suite's page window is attached (an address only)
_NPAGES = 32
_ITEM = 32


def _rp2():
    if sys.platform != "rp2" or not has("threads"):
        skip("rp2 with both cores running Python only (this is %s%s)"
             % (sys.platform, "" if has("threads") else ", no threads"))


def _setup(name, limit=None):
    from mpalloc import board, intr, mem, pool
    from mpalloc import pool_cache as PC
    from mptest_pages import pool_window

    board.init()
    eq(intr.mode, intr.MODE_SIO, "intr mode after board.init()")
    eq(intr.ncpu, 2, "CPUs after board.init()")
    pa = pool_window(mem, pool.pool_allocator, _BASE, _PAGE, _NPAGES)
    pc = PC.pool_cache_init(_ITEM, 8, 0, 0, name, pa, pool.IPL_VM, None, None, None)
    pp = PC.pool_cache_pool(pc)
    if limit:
        pool.pool_sethardlimit(pp, limit, None, 0)
        pool.pool_prime(pp, limit)
    return intr, pool, PC, pc, pp


def _start(fn, box):
    # fn() on core 1; box[0] = 1 when it returns, box[1] = its exception
    import _thread

    def run():
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - raised again by _join on core 0
            box[1] = e
        box[0] = 1

    _thread.start_new_thread(run, ())


def _join(box, ms=60000):
    import time

    t = time.ticks_ms()
    while not box[0] and time.ticks_diff(time.ticks_ms(), t) < ms:
        time.sleep_ms(1)
    if not box[0]:
        raise AssertionError("core 1 did not finish in %d emulated ms" % ms)
    if box[1] is not None:
        raise box[1]


@s.test
def thread_on_core1():
    _rp2()
    import machine

    from mpalloc import board, intr

    board.init()
    got = [None, None]
    box = [0, None]

    def f():
        got[0] = machine.mem32[0xD0000000]
        got[1] = intr.curcpu()

    _start(f, box)
    _join(box)
    eq(got, [1, 1], "[SIO CPUID, intr.curcpu()] in the thread")
    eq(intr.curcpu(), 0, "intr.curcpu() in the main program")


@s.test
def sio_own_magazines():
    _rp2()
    intr, pool, PC, pc, pp = _setup("cores_mag")
    got = [None, None]
    box = [0, None]
    get, put = PC.pool_cache_get, PC.pool_cache_put

    def f():
        o = get(pc, pool.PR_NOWAIT)
        put(pc, o)  # core 1's magazine now holds o
        got[0] = o
        got[1] = get(pc, pool.PR_NOWAIT)  # a hit in core 1's magazine: o again
        put(pc, got[1])

    _start(f, box)
    _join(box)
    eq(got[1], got[0], "core 1 gets back what it put (its own magazine)")
    o0 = get(pc, pool.PR_NOWAIT)
    if o0 == got[0]:
        raise AssertionError("core 0 got 0x%x from core 1's magazine" % o0)
    put(pc, o0)
    st = PC.pool_cache_stats(pc)
    eq(st["ncpu"], 2, "CPUs in the statistics")
    c0, c1 = st["cpus"]
    eq((c1["nget"], c1["nput"], c1["hits"] >= 2), (2, 2, True), "core 1: gets, puts, at least the put and get hits")
    eq((c0["nget"], c0["nput"]), (1, 1), "core 0: gets, puts")
    PC.pool_cache_invalidate(pc)
    eq(pool.pool_stats(pp)["nout"], 0, "pool nout after invalidate")


@s.test
def disable_irq_excludes():
    _rp2()
    import machine

    from mpalloc import board

    board.init()
    n = 2000
    res = []
    for locked in (True, False):
        inside = [0, 0]
        seen = [0, 0]
        go = [0]
        box = [0, None]

        def cs(me, other, locked=locked, inside=inside, seen=seen):
            for i in range(n):
                if locked:
                    st = machine.disable_irq()
                inside[me] = 1
                for j in range(4):
                    if inside[other]:
                        seen[me] += 1
                inside[me] = 0
                if locked:
                    machine.enable_irq(st)

        def f(cs=cs, go=go):
            while not go[0]:
                pass
            cs(1, 0)

        _start(f, box)
        go[0] = 1
        cs(0, 1)
        _join(box)
        res.append(seen[0] + seen[1])
    s.metric("disable_irq_excludes", "overlaps_locked", res[0])
    s.metric("disable_irq_excludes", "overlaps_control", res[1])
    eq(res[0], 0, "times a core saw the other inside its disable_irq section")
    if not res[1]:
        raise AssertionError("the control (no disable_irq) never overlapped: the cores did not run together")


def _racer(get, put, pc, me, n, owner, res, held):
    # gets 1..4 objects, owns them (owner byte per object), then puts them back
    x = 7 + me
    done = 0
    errs = 0
    while done < n:
        x = (x * 75 + 74) % 65537
        k = 1 + x % 4
        for i in range(k):
            o = get(pc, 2)
            held[i] = o
            if o is None:
                continue
            j = (o - _BASE) // _ITEM
            if owner[j]:
                errs += 1
            owner[j] = me
        for i in range(k):
            o = held[i]
            if o is None:
                continue
            held[i] = 0
            j = (o - _BASE) // _ITEM
            if owner[j] != me:
                errs += 1
            owner[j] = 0
            put(pc, o)
        done += 2 * k
    res[me - 1] = errs
    res[2 + me - 1] = done


@s.test
def race_two_cores():
    _rp2()
    import time

    intr, pool, PC, pc, pp = _setup("cores_race")
    total = 100000 if has("long") else 10000
    owner = bytearray(_NPAGES * _PAGE // _ITEM)
    res = [0, 0, 0, 0]
    go = [0]
    box = [0, None]
    get, put = PC.pool_cache_get, PC.pool_cache_put
    h0 = [0] * 4
    h1 = [0] * 4

    def f():
        while not go[0]:
            pass
        _racer(get, put, pc, 2, total // 2, owner, res, h1)

    gc.collect()
    _start(f, box)
    t0 = time.ticks_us()
    go[0] = 1
    _racer(get, put, pc, 1, total // 2, owner, res, h0)
    _join(box)
    us = time.ticks_diff(time.ticks_us(), t0)
    st = PC.pool_cache_stats(pc)
    ops = res[2] + res[3]
    s.metric("race_two_cores", "operations", ops)
    s.metric("race_two_cores", "emulated_us", us)
    for c in range(2):
        a = st["cpus"][c]
        rate = a["hits"] * 1000 // max(1, a["hits"] + a["misses"])
        s.metric("race_two_cores", "cpu%d_ops" % c, a["nget"] + a["nput"])
        s.metric("race_two_cores", "cpu%d_hit_rate_permille" % c, rate)
        if a["nget"] + a["nput"] < total // 4:
            raise AssertionError("CPU %d did only %d operations" % (c, a["nget"] + a["nput"]))
    eq(res[0] + res[1], 0, "objects handed out twice or changed owner")
    eq(sum(owner), 0, "objects still owned")
    eq(pp.nout, PC.pool_cache_cached(pc), "pool items out == objects cached")
    if ops < total:
        raise AssertionError("only %d operations" % ops)
    PC.pool_cache_invalidate(pc)
    eq(pool.pool_stats(pp)["nout"], 0, "pool nout after invalidate")


# The hard Timer handler's state: module-level (made at import, only mutated while
# core 1 runs), read through globals: a closure over more than four cells costs a
# heap allocation per call on MicroPython, which a hard IRQ (heap locked) cannot make.
_HI = [0, 0, 0, 0, 0]  # interrupt ops, failed gets, errors, held, ops wanted
_HELD = [0, 0]
_HS = [None, None, None, None, None]  # get, put, pc, owner, intr.run_hard


def _irq_op(arg):
    n = _HI[3]
    owner = _HS[3]
    if n < 2 and (n == 0 or _HI[0] & 1):
        o = _HS[0](_HS[2], 2)
        if o is None:
            _HI[1] += 1
            return 0
        j = (o - _BASE) // _ITEM
        if owner[j]:
            _HI[2] += 1
        owner[j] = 3
        _HELD[n] = o
        _HI[3] = n + 1
    else:
        n -= 1
        o = _HELD[n]
        _HELD[n] = 0
        _HI[3] = n
        j = (o - _BASE) // _ITEM
        if owner[j] != 3:
            _HI[2] += 1
        owner[j] = 0
        _HS[1](_HS[2], o)
    _HI[0] += 1
    return 0


def _irq_drain(arg):
    n = _HI[3] - 1
    o = _HELD[n]
    _HELD[n] = 0
    _HI[3] = n
    _HS[3][(o - _BASE) // _ITEM] = 0
    _HS[1](_HS[2], o)
    return 0


def _irq_cb(t):
    if _HI[0] < _HI[4]:
        _HS[4](_irq_op, 0)


@s.test
def hard_timer_core1_churns():
    _rp2()
    import machine
    import time

    intr, pool, PC, pc, pp = _setup("cores_irq", 40)
    want = 20000 if has("long") else 500
    owner = bytearray(_NPAGES * _PAGE // _ITEM)
    res = [0, 0, 0, 0]
    stop = [0]
    box = [0, None]
    get, put = PC.pool_cache_get, PC.pool_cache_put
    for i in range(5):
        _HI[i] = 0
    _HI[4] = want
    _HS[0], _HS[1], _HS[2], _HS[3], _HS[4] = get, put, pc, owner, intr.run_hard

    def f():
        hc = [0] * 4
        while not stop[0]:
            _racer(get, put, pc, 2, 200, owner, res, hc)
            res[0] += res[1]  # errors
            res[2] += res[3]  # operations

    held = [0] * 12
    for r in range(3):  # magazines and depot slots exist before the heap is locked
        for i in range(12):
            held[i] = get(pc, 2)
        for i in range(12):
            put(pc, held[i])
    gc.collect()
    _start(f, box)
    t0 = time.ticks_ms()
    tim = machine.Timer(mode=machine.Timer.PERIODIC, period=1, hard=True, callback=_irq_cb)
    try:
        while _HI[0] < want and time.ticks_diff(time.ticks_ms(), t0) < want * 4 + 2000:
            time.sleep_ms(5)
    finally:
        tim.deinit()
        stop[0] = 1
    _join(box)
    ms = time.ticks_diff(time.ticks_ms(), t0)
    while _HI[3]:
        intr.run_hard(_irq_drain, 0)  # the handler's objects back, as the handler
    s.metric("hard_timer_core1_churns", "isr_ops", _HI[0])
    s.metric("hard_timer_core1_churns", "isr_failed_gets", _HI[1])
    s.metric("hard_timer_core1_churns", "core1_ops", res[2])
    s.metric("hard_timer_core1_churns", "emulated_ms", ms)
    eq(_HI[2] + res[0], 0, "objects handed out twice (handler, core 1)")
    eq(sum(owner), 0, "objects still owned")
    if _HI[0] < want:
        raise AssertionError("only %d interrupt-context operations in %d ms" % (_HI[0], ms))
    if res[2] < 1000:
        raise AssertionError("core 1 did only %d operations" % res[2])
    eq(pp.nout, PC.pool_cache_cached(pc), "pool items out == objects cached")
    if pp.nout > 40:
        raise AssertionError("hard limit 40 exceeded: %d out" % pp.nout)
    _HS[2] = _HS[3] = None


@s.test
def hit_cost_per_core():
    _rp2()
    import time

    intr, pool, PC, pc, pp = _setup("cores_hit")
    get, put = PC.pool_cache_get, PC.pool_cache_put
    n = 2000
    cyc = [0, 0]
    box = [0, None]

    def pairs(c):
        o = get(pc, 2)
        put(pc, o)
        t = time.ticks_us()
        for i in range(n):
            put(pc, get(pc, 2))
        us = time.ticks_diff(time.ticks_us(), t)
        t = time.ticks_us()
        for i in range(n):
            pass
        us -= time.ticks_diff(time.ticks_us(), t)
        cyc[c] = us * 125 // n  # 125 cycles per us at 125 MHz

    pairs(0)
    _start(lambda: pairs(1), box)
    _join(box)
    s.metric("hit_cost_per_core", "core0_cycles_per_pair", cyc[0])
    s.metric("hit_cost_per_core", "core1_cycles_per_pair", cyc[1])
    s.metric("hit_cost_per_core", "hit_path", PC.native_path())
    st = PC.pool_cache_stats(pc)
    for c in range(2):
        a = st["cpus"][c]
        if a["hits"] < 2 * n:
            raise AssertionError("CPU %d: %d hits of %d gets and puts" % (c, a["hits"], 2 * n + 2))
    if not (cyc[0] > 0 and cyc[1] > 0):
        raise AssertionError("no cost measured: %r" % cyc)


s.run()
