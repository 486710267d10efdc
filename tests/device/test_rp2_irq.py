# Real hard interrupts on rp2 (emu:rp2040, a Pico under `make hil`): the board's
# own paths after board.init() (MODE_SIO, the _get_sio/_put_sio hit pair), and a
# machine.Timer(period=1, hard=True) handler that gets and puts through
# intr.run_hard while the main program churns the same allocator (four gets,
# then four puts):
#   hard_timer_pool        pool_get(PR_NOWAIT) / pool_put
#   hard_timer_pool_cache  pool_cache_get / pool_cache_put
#   hard_timer_kmem        kmem_intr_alloc(64) / kmem_intr_free
# Nothing handed out twice (every live object is compared with the others),
# nothing lost (statistics balance once everything is back), the hard limit
# held. One operation per interrupt (a pool_get or pool_put costs ~40,000
# cycles at 125 MHz: both in one 1 ms period leave the main program little).
# Figures: 20,000 interrupt-context operations per allocator with the host's
# "long" cap (MPALLOC_LONG=1), 1,500 otherwise (make test).
# heap_locked_in_handler: the control: bytearray() in the handler raises MemoryError.
# stack_need_*: the C stack each interrupt-callable path takes below run_hard
# (intr_stack.measure: the stack painted, the path run, the deepest word found),
# each at most its allowance in intr_stack's table (POOL, POOL_CACHE, KMEM):
# a refactor that deepens a path fails here before it can lock the chip.
# An interrupt that lands where the main program is deep finds too little C
# stack (rp2 runs the handler on it): run_hard refuses it (intr._hard_depth[3]) before
# it touches anything (intr.py's header); counted as stack_refused, not an error.
import gc
import sys

from mptest import Suite, skip, has, eq

s = Suite("rp2_irq", needs=("heap:60000",))

_N = [0]  # interrupt-context operations wanted
_PAGE = 256
_H = [0, 0, 0, 0, 0, 0, 0]  # 0 ops, 1 fails, 2 dups, 3 held count, 4 calls, 5 errors, 6 stack refusals
_HELD = [0, 0, 0]  # objects the handler holds
_MAIN = [0, 0, 0, 0]  # objects the main program holds (0: none)
_OPS = [None, None, None, 0]  # get(obj), put(obj, o), obj, limit check pool
_ERR = [None]


def _rp2():
    if sys.platform != "rp2" or not has("hard_irq"):
        skip("rp2 hard machine.Timer only (this is %s)" % sys.platform)


def _dup(o, skip_i):
    # o equal to another live object? (main's four, the handler's others)
    d = 0
    for i in range(4):
        if _MAIN[i] == o:
            d += 1
    for i in range(_H[3]):
        if i != skip_i and _HELD[i] == o:
            d += 1
    return d


def _op(arg):
    n = _H[3]
    _H[4] += 1
    if n == 0 or (n < 2 and _H[4] & 1):
        o = _OPS[0](_OPS[2])
        if o is None:
            _H[1] += 1
            return 0
        if _dup(o, -1):
            _H[2] += 1
        _HELD[n] = o
        _H[3] = n + 1
    else:
        n -= 1
        o = _HELD[n]
        _HELD[n] = 0
        _H[3] = n
        _OPS[1](_OPS[2], o)
    _H[0] += 1
    return 0


def _make_cb(intr, need):
    run = intr.run_hard
    est = intr._hard_depth[3]  # the C-stack refusal (intr.py's header)

    def cb(t):
        if _H[0] >= _N[0]:
            return
        try:
            run(_op, 0, 0, need)
        except Exception as e:  # noqa: BLE001 - kept for the main program to raise
            if e is est:
                _H[6] += 1
                return
            _H[5] += 1
            _ERR[0] = e

    return cb


def _churn(name, get, put, obj, check=None, need=None):
    import machine
    import time

    from mpalloc import intr
    from mpalloc import intr_stack

    _N[0] = 20000 if has("long") else 1500
    for i in range(7):
        _H[i] = 0
    for i in range(4):
        _MAIN[i] = 0
    _OPS[0] = get
    _OPS[1] = put
    _OPS[2] = obj
    _ERR[0] = None
    # warm up in thread context: what a class or cache makes on first use exists
    # before the heap is locked (kmem makes a size class's cache on its first
    # allocation: kmem_intr_alloc from a hard IRQ before that raised MemoryError)
    for i in range(4):
        _MAIN[i] = get(obj)
    for i in range(4):
        put(obj, _MAIN[i])
        _MAIN[i] = 0
    gc.collect()
    cb = _make_cb(intr, intr_stack.POOL if need is None else need)  # POOL: run_hard's default
    mg = mf = 0
    t0 = time.ticks_ms()
    limit_ms = _N[0] * 4 + 2000  # emulated ms; ~1 ms per operation expected
    tim = machine.Timer(mode=machine.Timer.PERIODIC, period=1, hard=True, callback=cb)
    try:
        while _H[0] < _N[0] and time.ticks_diff(time.ticks_ms(), t0) < limit_ms:
            for i in range(4):
                o = get(obj)
                mg += 1
                if o is None:
                    mf += 1
                    continue
                m = intr.splhigh()  # the handler compares with _MAIN: no change under its feet
                if _dup(o, -1):
                    _H[2] += 1000
                _MAIN[i] = o
                intr.splx(m)
            if check is not None:
                check()
            for i in range(4):
                o = _MAIN[i]
                if o:
                    m = intr.splhigh()
                    _MAIN[i] = 0
                    intr.splx(m)
                    put(obj, o)
    finally:
        tim.deinit()
    ms = time.ticks_diff(time.ticks_ms(), t0)
    while _H[3]:  # the handler's objects back, as the handler
        intr.run_hard(_drain, 0)
    if _ERR[0] is not None:
        raise _ERR[0]
    s.metric(name, "isr_ops", _H[0])
    s.metric(name, "isr_fails", _H[1])
    s.metric(name, "interrupts", _H[4])
    s.metric(name, "stack_refused", _H[6])
    s.metric(name, "main_ops", 2 * mg - mf)
    s.metric(name, "emulated_ms", ms)
    eq(_H[2], 0, "objects handed out twice")
    eq(_H[5], 0, "handler exceptions")
    if _H[0] < _N[0]:
        raise AssertionError("%s: only %d interrupt-context operations in %d ms" % (name, _H[0], ms))
    return mg, mf


def _drain(arg):
    n = _H[3] - 1
    o = _HELD[n]
    _HELD[n] = 0
    _H[3] = n
    _OPS[1](_OPS[2], o)
    return 0


def _window_pool(limit):
    from mpalloc import mem, pool
    from mptest_pages import pool_window

    pa = pool_window(mem, pool.pool_allocator, 0x10000000, _PAGE, 32)
    pp = pool.pool_init(32, 8, 0, 0, "irq32", pa, pool.IPL_VM)
    pool.pool_sethardlimit(pp, limit, None, 0)
    pool.pool_prime(pp, limit)
    return pool, pp


def _name(PC, f):
    # the hit function's name, found by identity in the bytecode module or the
    # native one (issue 20: viper functions have no __name__ on rp2's firmware)
    for m in (PC, PC._nat or None):
        if m is None:
            continue
        for n in ("_get_up", "_put_up", "_get_irq", "_put_irq", "_get_sio", "_put_sio", "_get_thr", "_put_thr"):
            if getattr(m, n, None) is f:
                return n
    return repr(f)


@s.test
def board_init_binds_mode():
    # rp2: MODE_SIO and the _get_sio/_put_sio hit pair; elsewhere the platform's
    # mode, and MODE_SIO (which reads RP2040 registers) refused.
    from mpalloc import board, intr
    from mpalloc import pool_cache as PC

    board.init()
    pair = _name(PC, PC.pool_cache_get) + "/" + _name(PC, PC.pool_cache_put)
    s.metric("board_init_binds_mode", "mode", intr.mode)
    s.metric("board_init_binds_mode", "hit_pair", pair)
    if sys.platform == "rp2":
        eq(intr.mode, intr.MODE_SIO, "intr mode after board.init()")
        eq(pair, "_get_sio/_put_sio", "pool_cache hit pair")
        eq(intr.curcpu(), 0, "CPU from the SIO CPUID register")
        return
    if intr.mode == intr.MODE_SIO or pair == "_get_sio/_put_sio":
        raise AssertionError("MODE_SIO bound on %s" % sys.platform)
    n0, m0 = intr.ncpu, intr.mode
    try:
        intr.setup(1, intr.MODE_SIO)
    except ValueError:
        pass
    else:
        raise AssertionError("intr.setup(MODE_SIO) accepted on %s" % sys.platform)
    finally:
        # the mode board.init() chose, back (a refused setup changes nothing;
        # a second board.init() would make a second 64 KB window beside the first)
        intr.setup(n0, m0)


@s.test
def heap_locked_in_handler():
    _rp2()
    import machine
    import time

    from mpalloc import board, intr

    board.init()
    got = [0, 0]

    def h(arg):
        try:
            bytearray(16)
            got[0] += 1
        except MemoryError:
            got[1] += 1
        return 0

    def cb(t):
        if got[0] + got[1] < 20:
            intr.run_hard(h, 0)

    tim = machine.Timer(mode=machine.Timer.PERIODIC, period=1, hard=True, callback=cb)
    t0 = time.ticks_ms()
    while got[0] + got[1] < 20 and time.ticks_diff(time.ticks_ms(), t0) < 2000:
        pass
    tim.deinit()
    eq(got, [0, 20], "[allocations that worked, MemoryErrors] in a hard Timer handler")


@s.test
def hard_timer_pool():
    _rp2()
    from mpalloc import board

    board.init()
    pool, pp = _window_pool(12)
    lim = [0]

    def check():
        if pp.nout > 12:
            lim[0] += 1

    mg, mf = _churn("hard_timer_pool", lambda p: pool.pool_get(p, pool.PR_NOWAIT), pool.pool_put, pp, check)
    eq(lim[0], 0, "hard limit exceeded")
    st = pool.pool_stats(pp)
    eq(st["nout"], 0, "pool nout after everything came back")
    eq(st["nget"] - st["nput"], 0, "pool nget - nput")
    pool.pool_chk(pp)
    pool.pool_destroy(pp)


@s.test
def hard_timer_pool_cache():
    _rp2()
    from mpalloc import board
    from mpalloc import pool_cache as PC

    board.init()
    from mpalloc import mem, pool
    from mptest_pages import pool_window

    pa = pool_window(mem, pool.pool_allocator, 0x10000000, _PAGE, 32)
    pc = PC.pool_cache_init(32, 8, 0, 0, "irqc32", pa, pool.IPL_VM, None, None, None)
    pp = PC.pool_cache_pool(pc)
    pool.pool_sethardlimit(pp, 40, None, 0)
    pool.pool_prime(pp, 40)
    lim = [0]

    def check():
        if pp.nout > 40:
            lim[0] += 1

    get = PC.pool_cache_get
    mg, mf = _churn("hard_timer_pool_cache", lambda c: get(c, 2), PC.pool_cache_put, pc, check)
    eq(lim[0], 0, "hard limit exceeded")
    st = PC.pool_cache_stats(pc)
    c0 = st["cpus"][0]
    eq(c0["nget"] - c0["nput"], 0, "pool_cache gets - puts on CPU 0")
    PC.pool_cache_invalidate(pc)
    eq(pool.pool_stats(pp)["nout"], 0, "pool nout after invalidate")
    PC.pool_cache_destroy(pc)


@s.test
def hard_timer_kmem():
    _rp2()
    # Was a RuntimeError with no message, then a dead chip: MicroPython's C-stack
    # check, the handler's kmem path on top of the main program's stack (intr.py).
    from mpalloc import board, intr, kmem

    board.init()
    kmem.kmem_init()

    def inuse():
        for c in kmem.kmem_stats()["classes"]:
            if c["size"] == 64:
                return c["inuse"]
        return 0

    before = inuse()
    # kmem's interrupt path (a pool growing through uvm_km and vmem) needs more C
    # stack than run_hard's default (pool_cache's): at the default, a handler ran
    # out mid-update and the chip locked up. The handler asks for kmem's figure.
    from mpalloc.intr_stack import KMEM

    _churn("hard_timer_kmem", lambda z: kmem.kmem_intr_alloc(64, kmem.KM_NOSLEEP),
           lambda z, o: kmem.kmem_intr_free(o, 64), 64, None, KMEM)
    eq(inuse(), before, "kmem 64-byte class in use before and after")


# -- the C stack of each interrupt-callable path (intr_stack.py) ----------------

_HOLD = [0] * 16  # what a measured handler holds (made before the heap is locked)
_MOD = [None]  # the measured path's module (an import in a handler allocates)


def _need(test, name, path, arg, allowance, runs=3):
    # the deepest of `runs` measurements (the first grows the pool) within the allowance
    from mpalloc import intr_stack

    got = 0
    for i in range(runs):
        n = intr_stack.measure(path, arg)
        if n > got:
            got = n
    s.metric(test, name + "_need_bytes", got)
    s.metric(test, name + "_allowance", allowance)
    if got > allowance:
        raise AssertionError("%s: the path takes %d B of C stack below run_hard, its allowance in intr_stack.py is "
                             "%d B: raise it (a hard handler at the old figure can run out mid-update and lock "
                             "the chip)" % (name, got, allowance))
    if got < 1024:  # a trivial handler reads 512 (intr_stack._SLACK)
        raise AssertionError("%s: measured only %d B: the path did not run" % (name, got))
    return got


def _m_pool(pp):
    pool = _MOD[0]
    for i in range(6):  # 32 B items, 8 to a 256 B page: the first get grows the pool
        _HOLD[i] = pool.pool_get(pp, pool.PR_NOWAIT)
    for i in range(6):
        pool.pool_put(pp, _HOLD[i])
        _HOLD[i] = 0
    return 0


@s.test
def stack_need_pool():
    _rp2()
    from mpalloc import board, intr_stack, pool

    board.init()
    _MOD[0] = pool
    pp = pool.pool_init(32, 8, 0, 0, "stk32", None, pool.IPL_VM)  # pages from kernel_map
    try:
        _need("stack_need_pool", "pool", _m_pool, pp, intr_stack.POOL)
        eq(pool.pool_stats(pp)["nout"], 0, "pool nout after the measured handlers")
    finally:
        pool.pool_destroy(pp)


def _m_pool_cache(pc):
    PC = _MOD[0]
    for i in range(12):  # misses (the pool grows), then hits
        _HOLD[i] = PC.pool_cache_get(pc, 2)
    for i in range(12):
        PC.pool_cache_put(pc, _HOLD[i])
        _HOLD[i] = 0
    return 0


@s.test
def stack_need_pool_cache():
    _rp2()
    from mpalloc import board, intr_stack, pool
    from mpalloc import pool_cache as PC

    board.init()
    _MOD[0] = PC
    pc = PC.pool_cache_init(32, 8, 0, 0, "stkc32", None, pool.IPL_VM, None, None, None)
    try:
        _need("stack_need_pool_cache", "pool_cache", _m_pool_cache, pc, intr_stack.POOL_CACHE)
        PC.pool_cache_invalidate(pc)
        eq(pool.pool_stats(PC.pool_cache_pool(pc))["nout"], 0, "pool nout after the measured handlers")
    finally:
        PC.pool_cache_destroy(pc)
    # a primed pool (hard_timer_pool_cache, examples/pico_packets.py) never grows in
    # the handler: within run_hard's default (POOL)
    pc = PC.pool_cache_init(32, 8, 0, 0, "stkp32", None, pool.IPL_VM, None, None, None)
    try:
        pool.pool_prime(PC.pool_cache_pool(pc), 40)
        _need("stack_need_pool_cache", "primed", _m_pool_cache, pc, intr_stack.POOL)
    finally:
        PC.pool_cache_invalidate(pc)
        PC.pool_cache_destroy(pc)


def _m_kmem(size):
    kmem = _MOD[0]
    for i in range(10):  # the class's pool grows (uvm_km, vmem) and its magazines fill
        _HOLD[i] = kmem.kmem_intr_alloc(size, kmem.KM_NOSLEEP)
    for i in range(10):
        if _HOLD[i] is not None:
            kmem.kmem_intr_free(_HOLD[i], size)
        _HOLD[i] = 0
    return 0


@s.test
def stack_need_kmem():
    _rp2()
    from mpalloc import board, intr_stack, kmem

    board.init()
    _MOD[0] = kmem
    kmem.kmem_init(True)  # every class cache made before the heap is locked
    for size in (24, 64, 1024):
        _need("stack_need_kmem", "kmem_%d" % size, _m_kmem, size, intr_stack.KMEM)


s.run()
