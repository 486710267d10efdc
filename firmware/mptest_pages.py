# mptest_pages: a page source for the pool(9) device suites (pool, pool_hot,
# isr): `npages` pages of `ps` bytes over a bytearray window attached at `base`
# (mem.attach), so a suite needs no vmem/uvm_km.
#
#     from mptest_pages import page_window
#     pa = page_window(0x20002000, 64, 16)   # a pool_allocator over 16 pages
#     pp = pool.pool_init(12, 4, 0, 0, "p12", pa, pool.IPL_VM)
#
# Pages go out lowest first. page_free() takes back any page of the window
# (also from a suite's own page_alloc). The free list is a list: pop() may
# shrink it, so page_alloc is not for a heap-locked caller.
# No state in other modules is kept: mpalloc is imported at each call, so a
# host runner that drops mpalloc between suites leaves no stale module here.
_win = [0, 1]  # window base, page size
_free = []  # free page numbers, the next to go last


def page_alloc(pp, flags):
    if _free:
        return _win[0] + _free.pop() * _win[1]
    return None


def page_free(pp, a):
    _free.append((a - _win[0]) // _win[1])


def page_window(base, ps, npages):
    from mpalloc import mem, pool

    mem.attach(base, bytearray(npages * ps))
    _win[0] = base
    _win[1] = ps
    del _free[:]
    for i in range(npages - 1, -1, -1):
        _free.append(i)
    return pool.pool_allocator(page_alloc, page_free, ps)
