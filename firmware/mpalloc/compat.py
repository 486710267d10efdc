# compat: what differs between MicroPython and CPython 3.11, in one place.
#
#   const(x)            micropython.const (CPython: x itself)
#   ticks_ms()          time.ticks_ms; CPython: milliseconds wrapping at 2**30,
#   ticks_diff(a, b)    as every MicroPython port's ticks (one wrap rule)
#   micropython         the micropython module, or None on CPython
#   fail(pre, exc, fmt, a, b, c=None, d=None)
#                       raise exc(fmt % (a, b[, c[, d]])), or the preallocated
#                       exception `pre` where the heap cannot hold the message
#                       (micropython.heap_lock(), a hard interrupt, exhaustion)
#
# Every firmware module takes these from here (no copies). Nothing is done at
# import beyond binding names; nothing here allocates on a hot path.
try:
    from micropython import const
    import micropython
except ImportError:  # CPython
    micropython = None

    def const(x):
        return x


try:
    from time import ticks_ms, ticks_diff
except ImportError:  # CPython
    import time

    def ticks_ms():
        return int(time.monotonic() * 1000) & 0x3FFFFFFF

    def ticks_diff(a, b):
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000


def fail(pre, exc, fmt, a, b, c=None, d=None):
    """Raise exc(fmt % (a, b[, c[, d]])), or the preallocated `pre` when
    formatting the message runs out of heap (locked or exhausted).
    => pre is an exception made at import; a .. d are what the message names
       (given separately: the tuple is built here, inside the try)."""
    try:
        e = exc(fmt % ((a, b) if c is None else (a, b, c) if d is None else (a, b, c, d)))
    except MemoryError:
        e = pre
    raise e
