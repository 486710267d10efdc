# Soft interrupts (scheduled callbacks) and pool(9) / pool_cache(9) / kmem(9):
# the path esp32's machine.Timer callbacks take (its port has no hard ones),
# and rp2's Timer without hard=True. Such a callback runs on the main thread at
# a jump between two bytecodes, so it can land inside an allocator's critical
# section, where machine.disable_irq() does not keep it out.
#   soft_stress_pool / _pool_cache / _kmem (kmem_intr_*): a source schedules a handler
#     (softint.softint_establish) at random moments while the main context churns
#     the same pool; the handler gets and puts with the heap locked. No item
#     lost or handed out twice, statistics balance, and (pool, on the virtual
#     board, whose source is a thread) some callbacks arrived inside a critical
#     section and were held until its splx(). A pool_cache hit has no critical
#     section a callback could land in (no jump inside), so there few are held.
#   soft_stress_*_up: the same in MODE_UP, one CPU and no lock: esp32's mode.
#   soft_held_by_splhigh: a callback scheduled inside splhigh() .. splx() runs
#     at the splx(), not before (every port: the main context schedules it).
#   soft_timer: the same handler from a real machine.Timer soft callback
#     (esp32, rp2).
# 100,000 callbacks per stress test on the unix port (mptest_long.full_figures);
# short elsewhere unless MPALLOC_LONG=1; 350 main turns (not 3,000) on a slow
# (emulated) board without threads (mptest_sized).
# Run directly: MICROPYPATH=firmware .venv/bin/micropython -X heapsize=466048 tests/device/test_softint.py
import gc

from mptest import Suite, skip, has, eq
from mptest_sized import sized
from mptest_long import full_figures
from mptest_pages import pool_window

from mpalloc import mem, intr, pool, uvm_km, kmem, softint
from mpalloc import pool_cache as PC

try:
    import micropython
except ImportError:
    micropython = None

s = Suite("softint", needs=("heap:30000",))

LONG = full_figures()  # unix port (vboard): 100,000 callbacks per stress test

_LIMIT = 16  # items: main holds <= 12, the handler <= 3
_BASE = 0x10000000
_PS = 256
_NPAGES = 32

_own = bytearray(_NPAGES * _PS // 8)  # item offset // 8 -> 0 free, 1 main, 2 handler
_ih = [0] * 4  # items the handler holds
# 0 handler gets, 1 handler puts, 2 handler fails, 3 dup/lost, 4 handler runs,
# 5 runs inside a critical section (must stay 0), 6 items held by the handler
_hc = [0] * 8
_ops = [None, None, None]  # get, put, pool or cache (kmem: the size)


def _get():
    return _ops[0](_ops[2], 2)


def _put(o):
    _ops[1](_ops[2], o)


def _handler(drain):
    # The soft interrupt: get one item while holding < 3, else put one back.
    _hc[4] += 1
    if softint._soft_masked():
        _hc[5] += 1
    micropython.heap_lock()
    try:
        n = _hc[6]
        if n < 3 and not drain:
            o = _get()
            if o is None:
                _hc[2] += 1
            else:
                k = (o - _BASE) >> 3
                if _own[k]:
                    _hc[3] += 1
                _own[k] = 2
                _ih[n] = o
                _hc[6] = n + 1
                _hc[0] += 1
        elif n:
            n -= 1
            o = _ih[n]
            k = (o - _BASE) >> 3
            if _own[k] != 2:
                _hc[3] += 1
            _own[k] = 0
            _hc[6] = n
            _put(o)
            _hc[1] += 1
    finally:
        micropython.heap_unlock()


_src = [0, 0, 0]  # scheduled, queue full, done


def _source(sih, count, seed):
    # The interrupt source of the virtual board: a thread scheduling sih.
    # A full queue means the main thread has not run its callbacks yet (the
    # host may not have run it at all: a loaded machine): wait for it, a short
    # sleep at a time, so the figures do not depend on the host's load; an
    # edge is lost only after ~200 waits in a row.
    import time

    x = seed
    for _ in range(count):
        x = (x * 75 + 74) % 65537
        for _ in range(x % 401):
            pass
        for _ in range(200):
            try:
                softint.softint_schedule(sih)
                _src[0] += 1
                break
            except RuntimeError:  # the scheduler's queue is full
                _src[1] += 1
                time.sleep_us(50)
    _src[2] = 1


def _kget(size, flags):
    return kmem.kmem_intr_alloc(size, kmem.KM_NOSLEEP)


def _kput(size, o):
    kmem.kmem_intr_free(o, size)


def _churn(b, x, held, cnt):
    # The main context: b gets, then the puts in an order x picks; every item
    # is checked against _own (handed out twice or lost counts in _hc[3]).
    n = 0
    for i in range(b):
        o = _get()
        cnt[0] += 1
        if o is None:
            cnt[1] += 1
            continue
        k = (o - _BASE) >> 3
        if _own[k]:
            _hc[3] += 1
        _own[k] = 1
        held[n] = o
        n += 1
    for i in range(n):
        o = held[i] if x & 1 else held[n - 1 - i]
        k = (o - _BASE) >> 3
        if _own[k] != 1:
            _hc[3] += 1
        _own[k] = 0
        _put(o)
        cnt[2] += 1


def _window():
    return pool_window(mem, pool.pool_allocator, _BASE, _PS, _NPAGES)


def _stress(kind, up=False):
    if micropython is None or not hasattr(micropython, "schedule"):
        skip("no micropython.schedule on this port")
    intr.setup(1, intr.MODE_UP if up else None)
    pc = pp = None
    if kind == "kmem":
        # kmem_intr_* on kmem's size-class caches over a kernel_map of the window
        kmem.kmem_reset()
        mem.attach(_BASE, bytearray(_NPAGES * _PS))
        uvm_km.uvm_km_bootstrap(_BASE, _NPAGES * _PS, _PS)
        _ops[0], _ops[1], _ops[2] = _kget, _kput, 24
    elif kind == "pool":
        pa = _window()
        pp = pool.pool_init(32, 8, 0, 0, "soft32", pa, pool.IPL_VM)
        _ops[0], _ops[1], _ops[2] = pool.pool_get, pool.pool_put, pp
    else:
        pc = PC.pool_cache_init(32, 8, 0, 0, "soft32", _window(), pool.IPL_VM, None, None, None)
        pp = PC.pool_cache_pool(pc)
        _ops[0], _ops[1], _ops[2] = PC.pool_cache_get, PC.pool_cache_put, pc
    if pp is not None:
        # Pages primed up front and a hard limit at them: the test's page source
        # (mptest_pages) is not interrupt-safe, as a board's page allocator
        # must be (kmem's, uvm_km over vmem, is).
        pool.pool_sethardlimit(pp, _LIMIT, None, 0)
        pool.pool_prime(pp, _LIMIT)
    for i in range(len(_own)):
        _own[i] = 0
    for i in range(8):
        _hc[i] = 0
    _src[0] = _src[1] = _src[2] = 0
    held = [0] * 16
    for r in range(3):  # magazines and depot slots exist before the heap is locked
        for i in range(12):
            held[i] = _get()
        for i in range(12):
            _put(held[i])
    gc.collect()
    sih = softint.softint_establish(_handler, 0)
    h0 = softint._sheld[0]
    threaded = has("threads")
    count = (100000 if LONG else sized(20000, 400)) if threaded else sized(3000, 350)
    if threaded:
        import _thread

        _thread.start_new_thread(_source, (sih, count, 7))
    x = 1
    cnt = [0, 0, 0]  # main's gets, failed gets, puts
    turns = 0
    while True:
        if threaded:
            if _src[2]:
                break
        else:
            if turns >= count:
                break
            if turns % 3 == 0:
                softint.softint_schedule(sih)  # lands at this context's next jump
                _src[0] += 1
        turns += 1
        x = (x * 75 + 74) % 65537
        _churn(1 + x % 12, x, held, cnt)
    # let what is still queued run, then drain the handler's items as the handler
    for i in range(100):
        pass
    while _hc[6]:
        _handler(1)
    pend = softint.softint_pending()
    softint.softint_disestablish(sih)
    name = "soft_stress_" + kind + ("_up" if up else "")
    mg, mf, mp = cnt
    s.metric(name, "scheduled", _src[0])
    s.metric(name, "queue_full", _src[1])  # waits on a full queue (threads), not lost edges
    s.metric(name, "handler_runs", _hc[4])
    s.metric(name, "handler_ops", _hc[0] + _hc[1])
    s.metric(name, "held_until_splx", softint._sheld[0] - h0)
    s.metric(name, "main_ops", mg + mp)
    eq(pend, 0, "soft interrupts still pending after the last splx")
    eq(_hc[3], 0, "items handed out twice / lost")
    eq(_hc[5], 0, "handler ran inside a critical section")
    if _hc[0] + _hc[1] < 100:
        raise AssertionError("only %d handler operations" % (_hc[0] + _hc[1]))
    if threaded and kind == "pool" and pool.native_path() == "bytecode" and softint._sheld[0] == h0:
        # (pool's bytecode get and put are critical sections almost whole; a
        # pool_cache hit has none, so there only the rare depot exchanges can
        # hold one; native code has no point where the VM runs a callback, so
        # none lands inside: the bytecode run, native.off(), proves deferral)
        raise AssertionError("no callback landed in a critical section: the deferral was not exercised")
    if kind == "pool_cache":
        st = PC.pool_cache_stats(pc)["cpus"][0]
        eq(st["nget"], mg - mf + _hc[0] + 36, "pool_cache nget")
        eq(st["nput"], mp + _hc[1] + 36, "pool_cache nput")
        PC.pool_cache_invalidate(pc)
    if kind == "kmem":
        eq(mf, 0, "kmem_intr_alloc failures in main")
        kmem.kmem_reset()
    else:
        ps = pool.pool_stats(pp)
        eq(ps["nout"], 0, "pool nout after everything came back")
        if kind == "pool":
            eq(ps["nget"], mg - mf + _hc[0] + 36, "pool nget")
        pool.pool_chk(pp)
    if pc is not None:
        PC.pool_cache_destroy(pc)
    elif pp is not None:
        pool.pool_destroy(pp)
    intr.setup(1)


@s.test
def soft_stress_pool():
    _stress("pool")


@s.test
def soft_stress_pool_cache():
    _stress("pool_cache")


@s.test
def soft_stress_kmem():
    _stress("kmem")


# One CPU with nothing but soft interrupts: esp32's configuration (MODE_UP;
# the virtual board's default is MODE_THREAD, where a lock plays the mask).
@s.test
def soft_stress_pool_up():
    _stress("pool", True)


@s.test
def soft_stress_pool_cache_up():
    _stress("pool_cache", True)


_seen = [0, 0]


def _mark(arg):
    _seen[0] += 1


@s.test
def soft_held_by_splhigh():
    if micropython is None or not hasattr(micropython, "schedule"):
        skip("no micropython.schedule on this port")
    intr.setup(1)
    sih = softint.softint_establish(_mark)
    _seen[0] = 0
    for i in range(100):  # let anything still queued by earlier tests run
        pass
    h0 = softint._sheld[0]
    sp = intr.splhigh()
    softint.softint_schedule(sih)
    for i in range(50):  # jumps: where a scheduled callback runs
        pass
    inside = _seen[0]
    sp2 = intr.splhigh()  # nested: still held at the inner splx
    for i in range(50):
        pass
    intr.splx(sp2)
    nested = _seen[0]
    intr.splx(sp)
    after = _seen[0]
    softint.softint_disestablish(sih)
    eq(inside, 0, "callback ran inside splhigh()")
    eq(nested, 0, "callback ran at the inner splx of a nested section")
    eq(after, 1, "callback runs once at the splx that ends the section")
    eq(softint._sheld[0] - h0, 1, "held-until-splx count")


@s.test
def soft_timer():
    import sys

    if sys.platform not in ("esp32", "rp2"):
        skip("no soft machine.Timer here (esp32, rp2 only; this is %s)" % sys.platform)
    import machine
    import time

    intr.setup(1)
    pa = _window()
    pc = PC.pool_cache_init(32, 8, 0, 0, "tim32", pa, pool.IPL_VM, None, None, None)
    _ops[0], _ops[1], _ops[2] = PC.pool_cache_get, PC.pool_cache_put, pc
    for i in range(len(_own)):
        _own[i] = 0
    for i in range(8):
        _hc[i] = 0
    sih = softint.softint_establish(_handler, 0)
    held = [0] * 8
    if sys.platform == "esp32":
        t = machine.Timer(0)
        t.init(mode=machine.Timer.PERIODIC, period=1, callback=sih)
    else:
        t = machine.Timer(mode=machine.Timer.PERIODIC, period=1, callback=sih)
    t0 = time.ticks_ms()
    cnt = [0, 0, 0]
    x = 1
    try:
        while time.ticks_diff(time.ticks_ms(), t0) < 2000:
            x = (x * 75 + 74) % 65537
            _churn(8, x, held, cnt)
    finally:
        t.deinit()
    while _hc[6]:
        _handler(1)
    softint.softint_disestablish(sih)
    s.metric("soft_timer", "handler_runs", _hc[4])
    eq(_hc[3], 0, "items handed out twice / lost")
    eq(_hc[5], 0, "handler ran inside a critical section")
    if _hc[4] < 100:
        raise AssertionError("only %d timer callbacks in 2 s" % _hc[4])
    PC.pool_cache_invalidate(pc)
    PC.pool_cache_destroy(pc)


s.run()
