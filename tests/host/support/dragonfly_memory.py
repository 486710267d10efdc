"""Memory for the DragonFly-family host tests (kmalloc, mpipe, objcache).

kmalloc allocates from kmem(9): setup() gives it mpalloc's own uvm_km + kmem
over a fresh window, or with real=False a stand-in kmem (first fit over a
window of a few bytes, exact-size frees checked) for tests that need kmalloc
to run out at a known point. Every DragonFly semantic under test lives in
firmware/mpalloc itself.
"""
from mpalloc import mem

BASE = 0x20010000


class StandInKmem:
    KM_SLEEP = 1
    KM_NOSLEEP = 2

    def __init__(self, base, size):
        self.free = [[base, size]]
        self.out = {}

    def kmem_alloc(self, n, flags):
        n = (n + 7) & ~7
        for seg in self.free:
            if seg[1] >= n:
                a = seg[0]
                seg[0] += n
                seg[1] -= n
                self.out[a] = n
                return a
        return None

    def kmem_free(self, a, n):
        n = (n + 7) & ~7
        assert self.out.pop(a) == n, "kmem_free with another size than kmem_alloc"
        self.free.append([a, n])
        self.free.sort()
        merged = []
        for s in self.free:
            if merged and merged[-1][0] + merged[-1][1] == s[0]:
                merged[-1][1] += s[1]
            else:
                merged.append(s)
        self.free[:] = merged

    kmem_intr_alloc = kmem_alloc
    kmem_intr_free = kmem_free


def real_kmem():
    """mpalloc's own uvm_km + kmem when the whole stack imports, else None."""
    try:
        from mpalloc import uvm_km, kmem
    except ImportError:
        return None
    return uvm_km, kmem


def setup(size=1 << 18, real=None):
    """Attach a fresh window and a fresh kmem behind kmalloc; returns the kmem.

    real None: the real uvm_km/kmem stack when it imports, else the stand-in;
    real False: always the stand-in (tests that need a window of a few bytes).
    """
    from mpalloc import kmalloc

    stack = real_kmem() if real is not False else None
    if stack is not None:
        uvm_km, kmem = stack
        size = (size + 4095) // 4096 * 4096
        mem.attach(BASE, bytearray(size))
        uvm_km.uvm_km_bootstrap(BASE, size, 4096)
        kmem.kmem_reset()
        kmalloc._kmem[0] = kmem
        return kmem
    mem.attach(BASE, bytearray(size))
    km = StandInKmem(BASE, size)
    kmalloc._kmem[0] = km
    return km
