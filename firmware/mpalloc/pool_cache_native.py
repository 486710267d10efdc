# pool_cache_native: pool_cache's hit paths as @micropython.viper code.
#
# Same representation, invariants and locking as pool_cache.py (its header):
# a magazine is the list [n, obj_1 .. obj_cap, spare, room, n0, cap, gethits];
# this module reads and writes it in place, nothing else. Only the hits and
# the step to the slow paths are here; every miss, depot trade, check and
# error is pool_cache.py's own function (bound in by bind()), so both paths
# share them. pool_cache._bind() loads this module where the runtime compiles
# viper code (unix x64, rp2 armv6m, esp32 xtensawin); where it cannot (CPython:
# no micropython module; webassembly, micro:bit 1.9.2: SyntaxError from the
# compiler; an .mpy made without -march) the import fails and the bytecode
# pair stays: the bytecode path is the reference, this one must equal it.
#
# Differences from the bytecode hit, none visible from outside:
#   get: tests n before touching the magazine (the bytecode one computes
#        c = _POS[n] without a jump for the soft-interrupt argument below);
#   put: compares n with cap (mag[_MAG_CAP]) instead of reading the room table, and
#        writes o only when it fits (the bytecode one writes the spare slot
#        first; _put_slow clears that slot either way).
#
# Interrupts. Hard interrupts (a real IRQ handler on rp2/esp32, run_hard's
# emulated ones on the virtual board) are kept out exactly as in the bytecode
# pair: machine.disable_irq()/enable_irq() around the magazine access on boards
# (_get_irq, _get_sio), CPU c's lock _cl[c] in MODE_THREAD, and nothing in
# MODE_UP, where nothing interrupts (one CPU, no hard IRQ). Soft interrupts
# (micropython.schedule callbacks, softint.py) run only where the VM checks
# for them: at a bytecode jump, or in a C function that calls
# mp_handle_pending. Viper code has no such check, its jumps are machine
# jumps, and the helpers it calls (subscripts, the lock methods,
# disable_irq/enable_irq) do not run pending callbacks, so a callback lands
# before or after a native hit, never inside; the bytecode pair needed its
# jump-free arrangement for that, this one gets it from the emitter.
# tests/device/test_native.py checks the binding, the hit/miss behaviour and
# the model digests on both paths; the interrupt suites run on both
# (tests/host/targets/test_native_paths.py runs them with mpalloc.native.off()).
#
# Nothing here allocates: small ints only (mag counts < 2**30), no boxing of
# anything larger, no tuples; a get returns the object the list holds.
import micropython
from micropython import const
from mpalloc.native import switch  # noqa: F401  (read by pool_cache._native_bind)

_MAG_CAP = const(-2)  # pool_cache's magazine fields, from the end (its header)
_MAG_GETHITS = const(-1)

# bound by bind() from pool_cache (its values for the current mode)
_cl = None
_cpuget = None
_ident = None
_dis = None
_en = None
_mem32 = None
_get_slow = None
_put_slow = None
_get_flags = None
_put_odd = None
_F1 = 1  # PR_WAITOK, PR_NOWAIT as objects (a viper literal would be a machine int)
_F2 = 2


def bind(g):
    """Take pool_cache's mode-dependent values and slow paths (g: its globals())."""
    global _cl, _cpuget, _ident, _dis, _en, _mem32, _get_slow, _put_slow, _get_flags, _put_odd
    _cl = g["_cl"]
    _cpuget = g["_cpuget"]
    _ident = g["_ident"]
    _dis = g["_dis"]
    _en = g["_en"]
    _mem32 = g["_mem32"]
    _get_slow = g["_get_slow"]
    _put_slow = g["_put_slow"]
    _get_flags = g["_get_flags"]
    _put_odd = g["_put_odd"]


@micropython.viper
def _get_up(pc, flags):
    # one CPU, nothing to exclude (unix MODE_UP)
    if flags != _F2 and flags != _F1:
        _get_flags(pc, flags)
    mag = pc[0]
    n = int(mag[0])
    if n:
        mag[0] = n - 1
        mag[_MAG_GETHITS] = int(mag[_MAG_GETHITS]) + 1
        return mag[n]
    return _get_slow(pc, flags)


@micropython.viper
def _put_up(pc, o):
    if not o:
        return _put_odd(pc, o)
    mag = pc[0]
    n = int(mag[0])
    if n < int(mag[_MAG_CAP]):
        n += 1
        mag[n] = o
        mag[0] = n
        return None
    _put_slow(pc, o)
    return None


@micropython.viper
def _get_thr(pc, flags):
    # MODE_THREAD: the caller's CPU and its magazine lock (pool_cache's header)
    if flags != _F2 and flags != _F1:
        _get_flags(pc, flags)
    pc[8]  # a pc that is no cache fails here, before the lock
    c = int(_cpuget(_ident(), 8)) & 0xFF
    m = _cl[c]
    m.acquire()
    mag = pc[c]
    n = int(mag[0])
    if n:
        mag[0] = n - 1
        mag[_MAG_GETHITS] = int(mag[_MAG_GETHITS]) + 1
        o = mag[n]
        m.release()
        return o
    m.release()
    return _get_slow(pc, flags)


@micropython.viper
def _put_thr(pc, o):
    if not o:
        return _put_odd(pc, o)
    pc[8]
    c = int(_cpuget(_ident(), 8)) & 0xFF
    m = _cl[c]
    m.acquire()
    mag = pc[c]
    n = int(mag[0])
    if n < int(mag[_MAG_CAP]):
        n += 1
        mag[n] = o
        mag[0] = n
        m.release()
        return None
    m.release()
    _put_slow(pc, o)
    return None


@micropython.viper
def _get_irq(pc, flags):
    # one CPU with an interrupt mask (machine.disable_irq: esp32)
    if flags != _F2 and flags != _F1:
        _get_flags(pc, flags)
    s = _dis()
    mag = pc[0]
    n = int(mag[0])
    if n:
        mag[0] = n - 1
        mag[_MAG_GETHITS] = int(mag[_MAG_GETHITS]) + 1
        o = mag[n]
        _en(s)
        return o
    _en(s)
    return _get_slow(pc, flags)


@micropython.viper
def _put_irq(pc, o):
    if not o:
        return _put_odd(pc, o)
    s = _dis()
    mag = pc[0]
    n = int(mag[0])
    if n < int(mag[_MAG_CAP]):
        n += 1
        mag[n] = o
        mag[0] = n
        _en(s)
        return None
    _en(s)
    _put_slow(pc, o)
    return None


@micropython.viper
def _get_sio(pc, flags):
    # RP2040 (MODE_SIO): this core's mask, then its id from SIO CPUID (0xd0000000)
    if flags != _F2 and flags != _F1:
        _get_flags(pc, flags)
    s = _dis()
    mag = pc[ptr32(0xD0000000)[0]]
    n = int(mag[0])
    if n:
        mag[0] = n - 1
        mag[_MAG_GETHITS] = int(mag[_MAG_GETHITS]) + 1
        o = mag[n]
        _en(s)
        return o
    _en(s)
    return _get_slow(pc, flags)


@micropython.viper
def _put_sio(pc, o):
    if not o:
        return _put_odd(pc, o)
    s = _dis()
    mag = pc[ptr32(0xD0000000)[0]]
    n = int(mag[0])
    if n < int(mag[_MAG_CAP]):
        n += 1
        mag[n] = o
        mag[0] = n
        _en(s)
        return None
    _en(s)
    _put_slow(pc, o)
    return None
