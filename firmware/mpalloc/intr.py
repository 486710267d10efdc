# intr: CPU identity, interrupt priority and spin mutexes for mpalloc.
#
# The small part of NetBSD's cpu(9), spl(9) and mutex(9) that the allocators need:
#   curcpu()           index of the CPU running the caller (0 .. ncpu-1)
#   cpu_intr_p()       True in (real or emulated) hard-interrupt context
#   splhigh() / splx(s)  block interrupts on this CPU / restore
#   mutex_init()       a spin mutex; mutex_enter(m) ... mutex_exit(m, s)
#   (soft interrupts, softint(9): softint.py, which hooks into splx here)
# None of these allocate once set up: usable from a hard interrupt handler and
# under micropython.heap_lock().
#
# Modes, chosen by setup() from the board profile (default: from sys.platform):
#   MODE_UP      one CPU, no threads (esp32, micro:bit, webassembly);
#                splhigh() is machine.disable_irq() where the port has it.
#   MODE_SIO     RP2040: CPU id from the SIO CPUID register; disable_irq() also
#                takes rp2's cross-core mutex while core 1 runs Python.
#   MODE_THREAD  unix port and CPython: a thread is a CPU (cpu_attach), a
#                per-CPU lock plays the interrupt mask, and run_hard() (an
#                emulated hard interrupt) takes the mask of the CPU it interrupts.
#                A thread that never called cpu_attach is no CPU: its first
#                splhigh() raises E_NOCPU.
# machine.mem32 is touched only in MODE_SIO, which setup() refuses on the unix
# port (machine.mem* map the host's /dev/mem there).
#
# C stack (MODE_SIO): rp2 runs a hard IRQ on the interrupted code's stack and
# MicroPython's stack check (~8 KB on RPI_PICO) counts both. Running out
# mid-update would tear state with interrupts masked, so setup(MODE_SIO) finds
# the check's limit once (_hard_depth[1]) and run_hard(h, arg, c, need) raises
# the preallocated _hard_depth[3], touching nothing, unless `need` bytes are
# left (_hard_depth[2] counts refusals). `need`: what the handler's path takes,
# measured per path in intr_stack.py (default _HARD_STACK = intr_stack.POOL).
# No new globals: the frozen micro:bit build has no RAM to spare (the lock-up
# this prevents: docs/DESIGN-NOTES.md).
#
# Invariants: (MODE_THREAD) _depth[c] > 0 <=> the thread running as CPU c holds
# _mask[c]; a thread in _cpu_of with the _ISR bit runs a handler and holds
# _mask[c]. (MODE_UP, MODE_SIO) _sdepth[c] = splhigh() nesting on core c (0 in
# MODE_UP). Soft interrupts run on core 0's main program: _sdepth[0] > 0 holds
# them pending, and core 0's splx() that drops the last level runs them.
#
# Package-internal names (softint, vmem, pool_cache, test helpers; not for
# programs): _cpu_of _mask _depth _sdepth _spend _soft_run _machine _mem32
# _get_ident _on_setup (run after every setup()) _default_mode(); _NOCPU is a
# const, absent on MicroPython (copy its value, as pool_cache does).
import sys

from mpalloc.compat import const, micropython

try:
    import _thread
except ImportError:
    _thread = None

MODE_UP = const(0)
MODE_SIO = const(1)
MODE_THREAD = const(2)

MAXCPU = const(8)
_NOCPU = const(8)  # MODE_THREAD: what _cpu_of gives a thread never attached (a CPU no mask is for)
_ISR = const(0x100)
# SIO CPUID at 0xD0000000: passed as a negative small int so no big int is made.
_SIO_CPUID = const(-0x30000000)
# run_hard()'s default C-stack allowance (MODE_SIO): intr_stack.POOL, the pool
# path measured on rp2 v1.28 (tests/device/test_rp2_irq.py re-measures it).
_HARD_STACK = const(4864)

mode = MODE_UP
ncpu = 1
_machine = None
_mem32 = None
_cpu_of = {}  # thread ident -> cpu index (| _ISR for an emulated interrupt)
_mask = []  # MODE_THREAD: per-CPU interrupt mask (a lock); the list object never changes
_depth = [0] * (MAXCPU + 1)  # MODE_THREAD: splhigh nesting per CPU (+ _NOCPU's, always 0)
_sdepth = [0, 0]  # MODE_UP, MODE_SIO: splhigh nesting per core
_spend = [0]  # a soft interrupt waits for the mask to drop (softint.py)
_soft_run = None  # set by softint.py: runs what waits
_get_ident = None


def _default_mode():
    p = sys.platform
    if p in ("linux", "darwin", "win32") and _thread is not None:
        return MODE_THREAD
    return MODE_UP


def setup(n=1, m=None):
    """Configure for a board with n CPUs; m is MODE_* or None for the default."""
    # => thread context (allocates), at start-up, before any allocator is shared; n >= 1, m a MODE_* or None.
    global mode, ncpu, _machine, _mem32, _get_ident
    if m is None:
        m = _default_mode()
    if not 1 <= n <= MAXCPU:
        raise ValueError("intr.setup: ncpu %d not in 1..%d" % (n, MAXCPU))
    if m == MODE_SIO and sys.platform != "rp2":
        raise ValueError("intr.setup: MODE_SIO reads RP2040 registers; refused on %s" % sys.platform)
    if m == MODE_THREAD and _thread is None:
        raise ValueError("intr.setup: MODE_THREAD needs _thread")
    mode = m
    ncpu = n
    _machine = None
    if m != MODE_THREAD and sys.platform not in ("linux", "darwin", "win32", "webassembly"):
        try:
            import machine

            _machine = machine
            if m == MODE_SIO:
                _mem32 = machine.mem32
        except ImportError:
            pass
    if m == MODE_THREAD:
        _get_ident = _thread.get_ident
        # in place: modules keep a reference to _mask, _depth and _cpu_of
        del _mask[:]
        for _ in range(n):
            _mask.append(_thread.allocate_lock())
        for i in range(MAXCPU + 1):
            _depth[i] = 0
        _cpu_of.clear()
        cpu_attach(0)
    _sdepth[0] = _sdepth[1] = 0
    _hard_depth[1] = 0
    if m == MODE_SIO and hasattr(micropython, "stack_use"):
        # the stack_use() at which MicroPython's check raises: recurse until it
        # does (allocates; once). Lower than the limit by at most one frame.
        got = [0]

        def probe():
            got[0] = micropython.stack_use()
            probe()

        try:
            probe()
        except RuntimeError:
            pass
        _hard_depth[1] = got[0]
        if _hard_depth[3] is None:
            _hard_depth[3] = RuntimeError("intr.run_hard: too little C stack left here for a hard handler (rp2 runs "
                                   "it on the interrupted program's stack): not run")
    for f in _on_setup:
        f()


# Functions called after every setup() (modules that cache mode-dependent values).
_on_setup = []


def cpu_attach(c):
    """MODE_THREAD: the calling thread runs as CPU c from now on (allocates)."""
    # => thread context (allocates) (MODE_THREAD); 0 <= c < ncpu, no other thread attached as c.
    if not 0 <= c < ncpu:
        raise ValueError("intr.cpu_attach: cpu %d not in 0..%d" % (c, ncpu - 1))
    if mode == MODE_THREAD:
        _cpu_of[_thread.get_ident()] = c


def cpu_detach():
    # => thread context; the calling thread attached (cpu_attach).
    if mode == MODE_THREAD:
        _cpu_of.pop(_thread.get_ident(), None)


# A thread that never called cpu_attach (MODE_THREAD) is no CPU: its first
# critical section (splhigh: every allocator's slow path, pool_cache's hit
# through pool_cache._cl[_NOCPU]) raises this rather than share CPU 0's mask
# with CPU 0's own thread. Preallocated: the heap may be locked.
E_NOCPU = RuntimeError("intr: this thread has no CPU: call intr.cpu_attach(c) in it before it allocates")


def curcpu():
    # => any context.
    if mode == MODE_THREAD:
        c = _cpu_of.get(_get_ident(), _NOCPU) & 0xFF
        if c == _NOCPU:
            raise E_NOCPU
        return c
    if mode == MODE_SIO:
        return _mem32[_SIO_CPUID]
    return 0


def cpu_intr_p():
    # => any context.
    if mode == MODE_THREAD:
        return _cpu_of.get(_get_ident(), _NOCPU) >= _ISR
    return _hard_depth[0] > 0


# [0]: set while run_hard() dispatches on boards (the port's own hard IRQ has no
# flag we can read portably); MODE_SIO (see the header): [1] the stack_use()
# at which MicroPython's check fires (0: unknown, never refuse), [2] refusals,
# [3] the exception.
_hard_depth = [0, 0, 0, None]


def splhigh():
    # => any context; returns the token for splx.
    if mode == MODE_THREAD:
        c = _cpu_of.get(_get_ident(), _NOCPU)
        if c >= _ISR:
            return 0  # handlers already run with their CPU masked
        if _depth[c] == 0:
            if c == _NOCPU:
                raise E_NOCPU
            _mask[c].acquire()
        _depth[c] += 1
        return 1
    # this core's count (two cores updating one would lose counts); a hard
    # IRQ between its read and write leaves it as it found it
    c = _mem32[_SIO_CPUID] if mode == MODE_SIO else 0
    _sdepth[c] += 1
    if _machine is not None:
        return _machine.disable_irq()
    return 0


def splx(s):
    # => any context; s: the token of the matching splhigh, released in reverse order.
    if mode == MODE_THREAD:
        if s:
            c = _cpu_of.get(_get_ident(), _NOCPU)
            s = _depth[c] - 1
            if s:
                _depth[c] = s
                return
            # no jump from here to the release: a soft interrupt taken at a
            # jump would see depth 0 with the mask still held (and hang on it)
            _depth[c] = 0
            _mask[c].release()
            if _spend[0]:
                _soft_run()
        return
    if _machine is not None:
        _machine.enable_irq(s)
    c = _mem32[_SIO_CPUID] if mode == MODE_SIO else 0
    s = _sdepth[c] - 1
    _sdepth[c] = s
    if not s and not c and _spend[0]:
        _soft_run()


def mutex_init():
    """A spin mutex (IPL_HIGH). None where the interrupt mask already excludes."""
    # => thread context (allocates).
    if mode == MODE_THREAD:
        return _thread.allocate_lock()
    return None


def mutex_enter(m):
    """Block interrupts on this CPU, then take m. Returns the token for mutex_exit."""
    # => any context; m not held by this CPU (spin mutexes do not nest on the same lock).
    s = splhigh()
    if m is not None:
        m.acquire()
    return s


def mutex_exit(m, s):
    # => any context; m held by this CPU, s: mutex_enter's token.
    if m is not None:
        m.release()
    splx(s)


def _nop():
    return 0


_heap_lock = micropython.heap_lock if micropython else _nop
_heap_unlock = micropython.heap_unlock if micropython else _nop


def run_hard(handler, arg, c=0, need=_HARD_STACK):
    """Run handler(arg) as a hard interrupt on CPU c: its mask held, heap locked.

    MODE_THREAD: call from the thread that plays the interrupt source; it waits
    while CPU c is in a critical section, exactly as a masked IRQ stays pending.
    Elsewhere: call from the port's hard IRQ callback (or to emulate one).
    Returns what the handler returns; an exception propagates after unlocking.
    need (MODE_SIO): bytes of C stack the handler's path takes (intr_stack's
    table: POOL (the default), POOL_CACHE, KMEM); refused unless that is left.
    """
    # => MODE_THREAD: the interrupt source's thread; elsewhere the port's hard IRQ
    #    callback. 0 <= c < ncpu; handler must not allocate. MODE_SIO: `need` bytes
    #    of C stack left (intr_stack's figure for the handler's path), else raises
    #    _hard_depth[3] and runs nothing.
    if mode == MODE_THREAD:
        me = _get_ident()
        _mask[c].acquire()
        _cpu_of[me] = c | _ISR
        _heap_lock()
        try:
            return handler(arg)
        finally:
            _heap_unlock()
            _cpu_of[me] = c
            _mask[c].release()
    if _hard_depth[1] and micropython.stack_use() + need > _hard_depth[1]:
        _hard_depth[2] += 1
        raise _hard_depth[3]
    _hard_depth[0] += 1
    s = splhigh()
    _heap_lock()
    try:
        return handler(arg)
    finally:
        _heap_unlock()
        splx(s)
        _hard_depth[0] -= 1


setup(1)


def irq_source(handler, arg, c=0, count=1000, seed=1, maxgap=64):
    """MODE_THREAD: start a thread that plays a hard interrupt source for CPU c.

    It runs handler(arg) through run_hard() `count` times, each after a
    pseudo-random busy gap of 0..maxgap-1 loop turns, so the handler lands at
    arbitrary points of what CPU c's thread is doing (and waits while that CPU
    is in a critical section, like a masked IRQ). Returns the state list
    [fired, done, error]; poll state[1]. The thread is attached to CPU c before
    this returns (so _cpu_of is not changed while others run).
    """
    # => thread context (allocates) (MODE_THREAD); 0 <= c < ncpu; handler must not allocate.
    if mode != MODE_THREAD:
        raise ValueError("intr.irq_source: needs MODE_THREAD")
    st = [0, False, None]
    ready = [False]

    def run():
        cpu_attach(c)
        ready[0] = True
        x = seed
        try:
            for _ in range(count):
                x = (x * 75 + 74) % 65537
                for _ in range(x % maxgap):
                    pass
                run_hard(handler, arg, c)
                st[0] += 1
        except Exception as e:  # reported to the caller through st[2]
            st[2] = e
        st[1] = True

    _thread.start_new_thread(run, ())
    while not ready[0]:
        pass
    return st
