# Footprint: mpalloc's own heap, measured as gc.mem_alloc() deltas after
# gc.collect() (issue 19). Prints "@@bench fp.<key> <bytes>":
#   fp.import.<mod>   heap taken by importing the module (cumulative order:
#                     compat, intr, mem, vmem, uvm_km, pool, pool_cache, kmem, board)
#   fp.import_core    all of them together
#   fp.vmem_arena     one arena (vmem_create, no quantum cache); .tags = its
#                     boundary-tag arrays (included), .fixed = the rest
#   fp.pool           one pool after pool_init (no page yet: no per-item metadata)
#   fp.pool_cache     one pool_cache after pool_cache_init (its pool included,
#                     before any magazine)
#   fp.kmem_class     kmem_init(all_classes=True) / number of size classes
#                     (each a pool_cache and its pool)
# Run: mpalloc bench (section "footprint"), or tests/host/test_footprint.py.
import gc
import sys

from benchcore import emit


def used():
    gc.collect()
    gc.collect()
    return gc.mem_alloc()


MODS = ("compat", "intr", "mem", "vmem", "uvm_km", "pool", "pool_cache", "kmem", "board")


def imports():
    t0 = used()
    last = t0
    for m in MODS:
        try:
            __import__("mpalloc." + m)
        except ImportError:  # an older tree (compat came later): reported as 0
            pass
        now = used()
        emit("fp.import.%s" % m, now - last)
        last = now
    emit("fp.import_core", last - t0)


def objects():
    from mpalloc import intr, mem, vmem, pool, uvm_km, kmem
    from mpalloc import pool_cache as PC

    intr.setup(1, intr.MODE_UP)
    base = 0x20010000
    backing = bytearray(65536)
    mem.attach(base, backing)
    free = list(range(255, -1, -1))

    def pa_alloc(pp, flags):
        return base + free.pop() * 256 if free else None

    def pa_free(pp, a):
        free.append((a - base) // 256)

    palloc = pool.pool_allocator(pa_alloc, pa_free, 256)
    t = used()
    vm = vmem.vmem_create("fp", base, 65536, 16, 0, vmem.M_NOWAIT)
    n = used() - t
    tags = 0
    for a in (vm._seg_start, vm._seg_size, vm._seg_next, vm._seg_prev, vm._free_next, vm._free_prev, vm._seg_type, vm._hash_bucket):
        tags += len(bytes(a)) + 16  # data + the array object's header (4 words on 32-bit)
    emit("fp.vmem_arena", n)
    emit("fp.vmem_arena.tags", tags)
    emit("fp.vmem_arena.fixed", n - tags)
    t = used()
    pp = pool.pool_init(32, 8, 0, 0, "fp", palloc, pool.IPL_VM)
    emit("fp.pool", used() - t)
    t = used()
    pc = PC.pool_cache_init(32, 8, 0, 0, "fpc", palloc, pool.IPL_VM, None, None, None)
    emit("fp.pool_cache", used() - t)
    PC.pool_cache_destroy(pc)
    pool.pool_destroy(pp)
    vmem.vmem_destroy(vm)
    uvm_km.uvm_km_bootstrap(base, 65536, 256)
    kmem.kmem_reset()
    t = used()
    kmem.kmem_init(True)
    n = used() - t
    k = len([c for c in kmem._caches if c is not None])
    emit("fp.kmem_classes", k)
    emit("fp.kmem_class", n // k)


emit("fp.word_bytes", 8 if sys.maxsize > 2**32 else 4)
imports()
objects()
