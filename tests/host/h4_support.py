"""Support for the uvm_km/pool/pool_cache/kmem host tests (helper module, not a test).

Puts firmware/ on sys.path. If mpalloc.vmem is not in the tree yet, a small
first-fit stand-in with vmem's interface is installed so the upper layers can be
tested; once vmem.py exists the real one is used.
"""
import os
import sys

FW = os.path.join(os.path.dirname(__file__), "..", "..", "firmware")
if FW not in sys.path:
    sys.path.insert(0, os.path.abspath(FW))

try:
    from mpalloc import vmem  # noqa: F401

    REAL_VMEM = True
except ImportError:
    import types

    REAL_VMEM = False
    vm = types.ModuleType("mpalloc.vmem")
    vm.VM_SLEEP, vm.VM_NOSLEEP, vm.VM_INSTANTFIT, vm.VM_BESTFIT = 1, 2, 0x1000, 0x2000
    vm.vmem_list = []

    class _A:
        pass

    def vmem_create(name, base, size, quantum, qcache_max, flags):
        a = _A()
        a.name, a.quantum, a.segs, a.busy = name, quantum, [(base, base + size)], {}
        vm.vmem_list.append(a)
        return a

    def vmem_xalloc(a, size, align, phase, nocross, minaddr, maxaddr, flags):
        q = a.quantum
        size = (size + q - 1) // q * q
        al = align or q
        for i, (s, e) in enumerate(a.segs):
            st = max(s, minaddr)
            st = (st + al - 1) // al * al
            if st + size <= e and st + size - 1 <= maxaddr:
                new = []
                if st > s:
                    new.append((s, st))
                if st + size < e:
                    new.append((st + size, e))
                a.segs[i:i + 1] = new
                a.busy[st] = size
                return st
        return None

    def vmem_xfree(a, addr, size):
        q = a.quantum
        size = (size + q - 1) // q * q
        assert a.busy.pop(addr) == size
        a.segs.append((addr, addr + size))
        a.segs.sort()
        m = []
        for s, e in a.segs:
            if m and m[-1][1] == s:
                m[-1] = (m[-1][0], e)
            else:
                m.append((s, e))
        a.segs[:] = m

    def vmem_destroy(a):
        if a in vm.vmem_list:
            vm.vmem_list.remove(a)

    vm.vmem_create, vm.vmem_xalloc, vm.vmem_xfree, vm.vmem_destroy = vmem_create, vmem_xalloc, vmem_xfree, vmem_destroy
    vm.vmem_alloc = lambda a, size, flags: vmem_xalloc(a, size, 0, 0, 0, 0, 1 << 62, flags)
    vm.vmem_free = vmem_xfree
    sys.modules["mpalloc.vmem"] = vm
    import mpalloc

    mpalloc.vmem = vm

from mpalloc import mem, intr  # noqa: E402

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
