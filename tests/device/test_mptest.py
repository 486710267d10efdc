# The harness's own suite: mptest's helpers behave as the host runner expects.
# Small enough for the micro:bit (MicroPython 1.9.2, ~9.5 KB heap).
from mptest import Suite, raises, check_msg, eq, heap_locked, has, skip

s = Suite("mptest")


@s.test
def eq_and_raises():
    eq(1 + 1, 2, "sum")
    e = raises(AssertionError, eq, 1, 2, "one")
    check_msg(e, "one")
    e = raises(ValueError, int, "x")
    eq(type(e), ValueError)


@s.test
def raises_fails_when_nothing_raised():
    try:
        raises(ValueError, int, "1")
    except AssertionError as e:
        check_msg(e, "did not raise", "ValueError")
        return
    raise AssertionError("raises() accepted a call that did not raise")


@s.test
def heap_locked_catches_allocation():
    try:
        import micropython
        micropython.heap_lock
    except (ImportError, AttributeError):
        skip("no micropython.heap_lock")
    buf = bytearray(4)

    def store(i):
        buf[i] = 7
        return i

    eq(heap_locked(store, 2), 2, "result")
    eq(buf[2], 7, "store")

    def grow(n):
        return [0] * n

    e = raises(AssertionError, heap_locked, grow, 50)
    check_msg(e, "heap_lock")  # and the function's name where functions know it (not on 1.9)


@s.test
def has_knows_heap():
    eq(has("heap:1"), True, "heap:1")
    eq(has("heap:1000000000"), False, "heap:1e9")


@s.test
def caps_set_by_host():
    import mptest
    eq(type(mptest.CAPS), tuple, "CAPS type")


s.run()
