# argchk: the argument checks the allocators' entry points share (issue 16).
#
# Called before any lock is taken, on cold paths or after a hot path's one
# comparison has failed, so a hostile argument (a float, str, bytes, None, a
# huge or negative number, another module's object) gets a TypeError or
# ValueError whose message starts with the public function's name, never an
# error from the interpreter's internals or from inside a locked section.
# Nothing here runs on a hit; nothing is kept between calls.
#
#   need_int(fn, what, v)             TypeError unless v is an int (bool counts)
#   need_range(fn, what, v, lo, hi)   need_int, then ValueError unless lo <= v <= hi
#   need_obj(fn, what, v, cls)        TypeError unless v is a cls
#   need_call(fn, what, v)            TypeError unless v is callable (or None if
#                                     none_ok)
# With the heap locked (an interrupt handler) a message cannot be formatted:
# `locked`, a preallocated exception of the caller's, is raised instead.

# Sizes, counts and addresses beyond this are refused by need_range's callers
# (well above any board's address space; below MicroPython's small-int limit
# on 64-bit ports, so no big int is made in the allocators' arithmetic).
LIMIT = 1 << 40


def _tn(v):
    return type(v).__name__


def need_int(fn, what, v, locked=None):
    if not isinstance(v, int):
        try:
            m = "%s: %s must be an int, not %s" % (fn, what, _tn(v))
        except MemoryError:
            raise locked if locked is not None else TypeError(fn)
        raise TypeError(m)


def need_range(fn, what, v, lo, hi, locked=None):
    need_int(fn, what, v, locked)
    if not lo <= v <= hi:
        try:
            m = "%s: %s %d not in %d..%d" % (fn, what, v, lo, hi)
        except MemoryError:
            raise locked if locked is not None else ValueError(fn)
        raise ValueError(m)


def need_obj(fn, what, v, cls, locked=None):
    if not isinstance(v, cls):
        try:
            m = "%s: %s must be a %s, not %s" % (fn, what, cls.__name__, _tn(v))
        except MemoryError:
            raise locked if locked is not None else TypeError(fn)
        raise TypeError(m)


def need_call(fn, what, v, none_ok=False):
    if v is None and none_ok:
        return
    if not callable(v):
        raise TypeError("%s: %s must be callable, not %s" % (fn, what, _tn(v)))


def need_str(fn, what, v):
    if not isinstance(v, str):
        raise TypeError("%s: %s must be a str, not %s" % (fn, what, _tn(v)))
