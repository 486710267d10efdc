# mptest: the on-device test helper for mpalloc suites.
#
# A suite is a plain MicroPython script:
#
#     from mptest import Suite, raises, heap_locked
#     s = Suite("vmem", needs=("heap:32768",))
#
#     @s.test
#     def alloc_and_free():
#         ...
#
#     s.run()
#
# It prints one machine-readable line per event; everything else a test prints
# is device log. The host runner (host_tools/mpalloc_host/runner.py) parses them:
#
#   @@mpt suite <suite> needs=<a,b>
#   @@mpt start <suite> <test>
#   @@mpt pass <suite> <test> ms=<int> heap=<int>
#   @@mpt fail <suite> <test> ms=<int> heap=<int>
#     <traceback lines>
#   @@mpt tbend <suite> <test>
#   @@mpt skip <suite> <test> reason=<text to end of line>
#   @@mpt metric <suite> <test> <name>=<value>
#   @@mpt summary <suite> passed=<n> failed=<n> skipped=<n> ms=<int>
#
# heap= is the net change of gc.mem_alloc() over the test (gc not collected in
# between), an indication, not an exact figure.
#
# Needs a suite may declare: "threads", "hard_irq", "native", "heap:<bytes>"
# (bytes of a 32-bit board's gc heap; a 64-bit port must have twice that),
# "fs". A missing need skips every test of the suite with the reason.
#
# Runs on CPython too (for debugging a suite on the host); heap_locked() can
# prove nothing there and says so in its result.
import sys
import gc

try:
    import micropython
except ImportError:
    micropython = None

try:
    from time import ticks_ms, ticks_diff
except ImportError:
    import time

    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b


# Set by the host before a suite runs to run one test only (a name) or some (a tuple).
ONLY = None
# Capabilities the host knows about the board (e.g. "hard_irq" on rp2 >= 1.26).
CAPS = ()


class SkipTest(Exception):
    pass


def skip(reason):
    raise SkipTest(reason)


def _mem_alloc():
    try:
        return gc.mem_alloc()
    except AttributeError:
        return 0


def _print_exc(e):
    if hasattr(sys, "print_exception"):
        sys.print_exception(e)
    else:  # CPython
        import traceback

        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stdout)


def _fname(fn, i=0):
    try:
        return fn.__name__
    except AttributeError:  # MicroPython 1.9 (micro:bit): functions know no name;
        return "_t%d" % i  # the host maps _t<i> to the i-th @s.test of the source


def _heap_total():
    """The gc heap in 32-bit-board bytes: "heap:<bytes>" needs count what a
    32-bit board needs; a 64-bit port takes twice the bytes for the same objects."""
    try:
        t = gc.mem_free() + gc.mem_alloc()
    except AttributeError:
        return 1 << 30
    if getattr(sys, "maxsize", 0) > 0x7FFFFFFF:
        t //= 2
    return t


def has(need):
    """True if the board offers `need` (see the header)."""
    if need == "threads":
        if CAPS and "threads" not in CAPS:
            return False  # the host knows better: _thread there hangs the chip (emu:rp2040, one core)
        try:
            import _thread  # noqa: F401

            return True
        except ImportError:
            return False
    if need == "hard_irq":
        return "hard_irq" in CAPS
    if need == "native":
        try:
            exec("@micropython.native\ndef _f(): pass")
            return True
        except Exception:
            return False
    if need == "fs":
        try:
            import os

            os.stat("/")
            return True
        except Exception:
            return False
    if need.startswith("heap:"):
        return _heap_total() >= int(need[5:])
    return need in CAPS


class Suite:
    def __init__(self, name, needs=()):
        self.name = name
        self.needs = needs
        self.tests = []

    def test(self, fn):
        self.tests.append(fn)
        return fn

    def metric(self, test, name, value):
        print("@@mpt metric %s %s %s=%s" % (self.name, test, name, value))

    def run(self):
        name = self.name
        print("@@mpt suite %s needs=%s" % (name, ",".join(self.needs)))
        missing = None
        for n in self.needs:
            if not has(n):
                missing = n
                break
        passed = failed = skipped = 0
        t_suite = ticks_ms()
        for i, fn in enumerate(self.tests):
            tname = _fname(fn, i)
            if ONLY is not None and (tname not in ONLY if type(ONLY) is tuple else tname != ONLY):
                continue
            if missing is not None:
                print("@@mpt skip %s %s reason=board lacks %s" % (name, tname, missing))
                skipped += 1
                continue
            print("@@mpt start %s %s" % (name, tname))
            gc.collect()
            h0 = _mem_alloc()
            t0 = ticks_ms()
            try:
                fn()
            except SkipTest as e:
                print("@@mpt skip %s %s reason=%s" % (name, tname, e.args[0] if e.args else ""))
                skipped += 1
                continue
            except Exception as e:
                ms = ticks_diff(ticks_ms(), t0)
                print("@@mpt fail %s %s ms=%d heap=%d" % (name, tname, ms, _mem_alloc() - h0))
                _print_exc(e)
                print("@@mpt tbend %s %s" % (name, tname))
                failed += 1
                continue
            ms = ticks_diff(ticks_ms(), t0)
            print("@@mpt pass %s %s ms=%d heap=%d" % (name, tname, ms, _mem_alloc() - h0))
            passed += 1
        ms = ticks_diff(ticks_ms(), t_suite)
        print("@@mpt summary %s passed=%d failed=%d skipped=%d ms=%d" % (name, passed, failed, skipped, ms))
        return failed == 0


def raises(exc, fn, *args):
    """Call fn(*args); return the exception of type exc it raised, else fail."""
    try:
        fn(*args)
    except exc as e:
        return e
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", "call"), getattr(exc, "__name__", repr(exc))))


def check_msg(e, *words):
    """Assert that str(e) contains every word (e.g. the function name)."""
    m = str(e)
    for w in words:
        if w not in m:
            raise AssertionError("message %r lacks %r" % (m, w))


_locked_err = [None]


def heap_locked(fn, arg=None):
    """Run fn(arg) with the MicroPython heap locked; fail if it allocated.

    Returns fn's result. Pass one argument (no *args: that would allocate
    before the call). On CPython there is no heap lock: fn just runs.
    """
    if micropython is None:
        return fn(arg)
    _locked_err[0] = None
    micropython.heap_lock()
    try:
        r = fn(arg)
    except MemoryError as e:
        _locked_err[0] = e
        r = None
    finally:
        micropython.heap_unlock()
    if _locked_err[0] is not None:
        _locked_err[0] = None
        raise AssertionError("allocated from the heap under heap_lock in %s" % getattr(fn, "__name__", "a function"))
    return r


def eq(a, b, what=""):
    if a != b:
        raise AssertionError("%s: %r != %r" % (what or "values differ", a, b))
