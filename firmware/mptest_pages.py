# mptest_pages: a page source for the pool(9) device suites (pool, pool_hot,
# isr): `npages` pages of `ps` bytes from the window the suite attaches at
# `base`, so a suite needs no vmem/uvm_km.
#
#     from mptest_pages import pool_window
#     pa = pool_window(mem, pool.pool_allocator, BASE, PS, 16)   # attach + pages_reset + allocator
#
# Pages go out lowest first; page_free() takes back any page of the window
# (also one from a suite's own page_alloc). The free list is a list, whose
# pop() may shrink (reallocate) it. Imports nothing: the host runner drops
# mptest and mpalloc between suites, not this module, so it must hold no
# reference to them (pool_window takes mem and pool_allocator as arguments;
# pool_allocator rather than the pool module, so the host's dead-code cut,
# shrink.py, still sees which pool functions a suite reaches).
_win = [0, 1]  # window base, page size
_free = []  # free page numbers, the next to go last


def page_alloc(pp, flags):
    if _free:
        return _win[0] + _free.pop() * _win[1]
    return None


def page_free(pp, a):
    _free.append((a - _win[0]) // _win[1])


def pages_reset(base, ps, npages):
    _win[0] = base
    _win[1] = ps
    del _free[:]
    for i in range(npages - 1, -1, -1):
        _free.append(i)


def pool_window(mem, pool_allocator, base, ps, npages):
    """A fresh window of npages pages of ps bytes attached at base, and a
    pool_allocator handing out its pages."""
    mem.attach(base, bytearray(npages * ps))
    pages_reset(base, ps, npages)
    return pool_allocator(page_alloc, page_free, ps)
