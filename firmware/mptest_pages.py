# mptest_pages: a page source for the pool(9) device suites (pool, pool_hot,
# isr): `npages` pages of `ps` bytes from the window the suite attaches at
# `base`, so a suite needs no vmem/uvm_km.
#
#     from mptest_pages import page_alloc, page_free, pages_reset
#     mem.attach(BASE, bytearray(16 * PS))
#     pages_reset(BASE, PS, 16)
#     pa = pool.pool_allocator(page_alloc, page_free, PS)
#
# Pages go out lowest first; page_free() takes back any page of the window
# (also one from a suite's own page_alloc). The free list is a list, whose
# pop() may shrink (reallocate) it. Imports nothing: the host runner drops
# mptest and mpalloc between suites, not this module, so it must hold no
# reference to them.
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
