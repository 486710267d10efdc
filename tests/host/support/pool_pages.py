"""Pages for the uvm_km/pool/pool_cache/kmem host tests: a fresh managed window
with kernel_map (window()) and a caller's page source for pool (PageSource).
"""
from mpalloc import intr, mem

BASE = 0x10000000


def window(size=65536, page=256):
    """A fresh managed window and kernel_map; returns the uvm_km module."""
    from mpalloc import uvm_km, kmem

    intr.setup(1)
    mem.attach(BASE, bytearray(size))
    kmem.kmem_reset()
    uvm_km.uvm_km_bootstrap(BASE, size, page)
    return uvm_km


class PageSource:
    """A caller's palloc for pool tests: n pages of `pagesz` in the window."""

    def __init__(self, pagesz=256, n=64, base=BASE):
        from mpalloc import pool

        self.base, self.ps = base, pagesz
        self.free = list(range(n - 1, -1, -1))
        self.out = set()
        self.fail = False
        self.palloc = pool.pool_allocator(self.alloc, self.release, pagesz)

    def alloc(self, pp, flags):
        if self.fail or not self.free:
            return None
        a = self.base + self.free.pop() * self.ps
        self.out.add(a)
        return a

    def release(self, pp, a):
        assert a in self.out, "palloc: page 0x%x freed twice or foreign" % a
        self.out.remove(a)
        self.free.append((a - self.base) // self.ps)
