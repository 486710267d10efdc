# intr_stack: how much C stack a hard handler's path needs (rp2, MODE_SIO),
# and the measurement that keeps the table honest.
#
# rp2 runs a hard IRQ on the stack of the code it interrupts, and MicroPython's
# stack check counts both: intr.run_hard(handler, arg, c, need) runs the handler
# only if `need` bytes are left below the caller (else the preallocated
# intr._hard_depth[3], nothing touched). `need` is what the handler calls:
#
#   POOL         pool_get(PR_NOWAIT) growing the pool by a kernel_map page,
#                pool_put; also pool_cache_get/put on a primed pool (no page
#                to get: hits and depot misses). run_hard's default
#                (intr._HARD_STACK) is this value
#   POOL_CACHE   pool_cache_get/put, hits and misses, the pool growing by a
#                kernel_map page (pool_cache -> pool -> uvm_km -> vmem)
#   KMEM         kmem_intr_alloc/kmem_intr_free of a small class, growing it
#
# Figures: armv6m, MicroPython v1.28.0 (RPI_PICO), .mpy, on emu:rp2040: the
# deepest byte the path wrote below the caller (measure()), measured 4,332 /
# primed 2,092 / 5,084 / 5,356 B, rounded up to whole 256 B with at least 5 %
# to spare (KMEM: more refuses most interrupts of a main program churning kmem).
# tests/device/test_rp2_irq.py (stack_need_*) measures every path
# again and fails when one outgrows its allowance here: a refactor that
# deepens a path must raise its figure (and see how many interrupts it refuses).
#
#   measure(fn, arg)   bytes of C stack fn(arg) used below the caller when run
#                      through run_hard (rp2 only; thread context, allocates);
#                      a path shallower than _SLACK reads as _SLACK (512)
#
# The measurement paints the unused part of the main stack with a pattern,
# runs fn(arg) through run_hard with interrupts off (nothing else writes the
# stack meanwhile) and finds the lowest word changed: the C stack truly used,
# builtins included, so it never undercounts what the stack check sees.
# Locking: none of its own; interrupts are off while fn runs.
from mpalloc.compat import const

POOL = const(4864)
POOL_CACHE = const(5376)
KMEM = const(5632)

_VT_SP = const(0x10000100)  # rp2: the flash vector table (after boot2); word 0 is __StackTop
_STACK = const(8192)  # RPI_PICO's main stack below __StackTop
_PAT = const(0x1BADF00D)  # a small int on 32-bit: painting allocates nothing
_SLACK = const(512)  # left unpainted below the painter (its own calls)


def measure(fn, arg, c=0):
    """Bytes of C stack fn(arg) takes below this call when run through
    intr.run_hard (handler mode: heap locked, masked)."""
    # => thread context (allocates), rp2 (MODE_SIO or MODE_UP); no handler may
    #    need the stack meanwhile (interrupts are off while fn runs).
    import sys

    if sys.platform != "rp2":
        raise ValueError("intr_stack.measure: reads the RP2040's stack (machine.mem32); refused on %s"
                         % sys.platform)
    import machine
    import micropython

    from mpalloc import intr

    m = machine.mem32
    top = m[_VT_SP]
    if not 0x20000000 < top <= 0x20042000:
        raise ValueError("intr_stack.measure: 0x%x is no stack top in SRAM (vector table at 0x%x)" % (top, _VT_SP))
    u0 = micropython.stack_use()
    lo = top - _STACK
    hi = top - u0 - _SLACK
    a = lo
    while a < hi:
        m[a] = _PAT
        a += 4
    s = machine.disable_irq()
    try:
        intr.run_hard(fn, arg, c, 0)
    finally:
        machine.enable_irq(s)
    a = lo
    while a < hi and m[a] == _PAT:
        a += 4
    if a == lo:
        raise ValueError("intr_stack.measure: the path used the whole stack (overflow)")
    return top - a - u0
