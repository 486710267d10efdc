# DragonFly family on the board: zone, kmalloc, mpipe, objcache.
#
# Sets up its own memory: mpalloc.board.init() where board.py exists, else a
# managed window over a bytearray at an emulated base. kmalloc's back end is
# kmem(9) when the board has it bootstrapped; until then a small first-fit
# stand-in kmem inside this suite (only bytes under kmalloc; every DragonFly
# rule checked here is in firmware/mpalloc).
# Run directly: MICROPYPATH=firmware .venv/bin/micropython -X heapsize=192K tests/device/test_dragonfly.py
from mptest import Suite, raises, heap_locked, check_msg, eq

from mpalloc import mem
from mpalloc import zone
from mpalloc import kmalloc as K

s = Suite("dragonfly", needs=("heap:120000",))


class _StandInKmem:
    KM_SLEEP = 1
    KM_NOSLEEP = 2

    def __init__(self, base, size):
        self.segs = [[base, size]]

    def kmem_alloc(self, n, flags):
        n = (n + 7) & ~7
        for seg in self.segs:
            if seg[1] >= n:
                a = seg[0]
                seg[0] += n
                seg[1] -= n
                return a
        return None

    def kmem_free(self, a, n):
        self.segs.append([a, (n + 7) & ~7])

    kmem_intr_alloc = kmem_alloc
    kmem_intr_free = kmem_free


_backend = ["?"]


def _setup():
    from mpalloc import kmalloc

    try:
        from mpalloc import board

        board.init()
        from mpalloc import kmem

        kmalloc._kmem[0] = kmem
        _backend[0] = "kmem (board.init)"
        return
    except ImportError:
        pass
    n = 24576
    try:
        from mpalloc import uvm_km, kmem

        mem.attach(0x20040000, bytearray(n))
        uvm_km.uvm_km_bootstrap(0x20040000, n, 4096)
        kmem.kmem_reset()
        kmalloc._kmem[0] = kmem
        _backend[0] = "kmem (uvm_km over a bytearray)"
        return
    except ImportError:
        pass
    mem.attach(0x20040000, bytearray(n))
    K._kmem[0] = _StandInKmem(0x20040000, n)
    _backend[0] = "stand-in"


_setup()
print("dragonfly suite: kmalloc back end = %s" % _backend[0])


@s.test
def zone_boot_alloc_free_heap_locked():
    store = bytearray(16 * 4)
    z = zone.zbootinit(None, "dz", 16, store, 4)
    a = zone.zalloc(z)
    res = [0, 0]

    def hot(x):
        for i in range(10):
            b = zone.zalloc(z)
            zone.zfree(z, b)
        res[0] = zone.zalloc(z)
        zone.zfree(z, res[0])

    heap_locked(hot)
    eq(zone.zone_stats(z)["used"], 1, "used")
    zone.zfree(z, a)
    e = raises(ValueError, zone.zfree, z, a)
    check_msg(e, "zfree", "already free")


@s.test
def zone_misuse_under_heap_lock_is_preallocated():
    store = bytearray(32)
    z = zone.zbootinit(None, "dz2", 16, store, 2)
    a = zone.zalloc(z)
    zone.zfree(z, a)
    got = [None]

    def bad(x):
        try:
            zone.zfree(z, a)
        except ValueError as e:
            got[0] = e

    heap_locked(bad)
    check_msg(got[0], "zfree")


@s.test
def kmalloc_types_limit_and_misuse():
    t = K.MALLOC_DEFINE("dev", "device test", 512)
    u = K.MALLOC_DEFINE("other")
    p = K.kmalloc(100, t, K.M_WAITOK | K.M_ZERO)
    eq(bytes(mem.buf(p, 104)), bytes(104), "zeroed")
    eq(K.kmalloc_stats(t)["inuse"], 104, "inuse")
    e = raises(ValueError, K.kfree, p, u)
    check_msg(e, "kfree", "'dev'", "'other'")
    eq(K.kmalloc(500, t, K.M_WAITOK | K.M_NULLOK), None, "limit with M_NULLOK")
    e = raises(RuntimeError, K.kmalloc, 500, t, K.M_WAITOK)
    check_msg(e, "kmalloc", "limit exceeded")
    K.kfree(p, t)
    e = raises(ValueError, K.kfree, p, t)
    check_msg(e, "kfree", "already freed")
    eq(K.kmalloc_stats(t)["inuse"], 0, "inuse after free")


@s.test
def mpipe_guaranteed_buffers_heap_locked():
    from mpalloc import mpipe as M

    t = K.MALLOC_DEFINE("mp")
    mp = M.mpipe_init(None, t, 32, 4, 4, 0, None, None, None)
    bufs = [0, 0, 0, 0]
    res = [0]

    def hot(x):
        for r in range(5):
            for i in range(4):
                bufs[i] = M.mpipe_alloc_nowait(mp)
            mem.ram[bufs[0] - mem.base] = 0x55
            res[0] = M.mpipe_alloc_nowait(mp)  # nmax reached: None
            for i in range(4):
                M.mpipe_free(mp, bufs[i])

    heap_locked(hot)
    eq(res[0], None, "beyond nmax")
    eq(M.mpipe_stats(mp)["out"], 0, "out")
    a = M.mpipe_alloc_nowait(mp)
    eq(mem.ram[a - mem.base], 0, "zeroed on free")
    M.mpipe_free(mp, a)
    e = raises(ValueError, M.mpipe_free, mp, a)
    check_msg(e, "mpipe_free", "already free")
    M.mpipe_done(mp)
    e = raises(ValueError, M.mpipe_alloc_nowait, mp)
    check_msg(e, "mpipe_alloc_nowait", "mpipe_done")


@s.test
def mpipe_from_emulated_hard_irq():
    from mpalloc import intr
    from mpalloc import mpipe as M

    t = K.MALLOC_DEFINE("mpi")
    mp = M.mpipe_init(None, t, 16, 2, 2, 0, None, None, None)
    got = [0, 0]

    def handler(x):
        got[0] = M.mpipe_alloc_nowait(mp)
        got[1] = M.mpipe_alloc_nowait(mp)
        M.mpipe_free(mp, got[0])
        M.mpipe_free(mp, got[1])
        return 1

    eq(intr.run_hard(handler, 0), 1, "handler ran")
    if got[0] is None or got[1] is None:
        raise AssertionError("guaranteed buffer missing in interrupt")
    M.mpipe_done(mp)


@s.test
def objcache_get_put_heap_locked():
    from mpalloc import objcache as O

    t = K.MALLOC_DEFINE("oc")
    oc = O.objcache_create_mbacked(t, 24, 8, 0, None, None, None)
    objs = [0] * 8
    for i in range(8):  # construct them once (the back end may allocate)
        objs[i] = O.objcache_get(oc, K.M_WAITOK)
    for i in range(8):
        O.objcache_put(oc, objs[i])

    def hot(x):
        for r in range(6):
            for i in range(8):
                objs[i] = O.objcache_get(oc, K.M_NOWAIT)
            for i in range(8):
                O.objcache_put(oc, objs[i])

    heap_locked(hot)
    st = O.objcache_stats(oc)
    eq(st["live"], 8, "no new objects made")
    e = raises(ValueError, O.objcache_get, oc, K.M_WAITOK | K.M_ZERO)
    check_msg(e, "objcache_get", "M_ZERO")
    O.objcache_destroy(oc)
    eq(K.kmalloc_stats(t)["inuse"], 0, "all freed")


@s.test
def stats_readers():
    from mpalloc import objcache as O, mpipe as M

    for t in K.malloc_types:
        K.kmalloc_stats(t)
    for z in zone.zone_list:
        zone.zone_stats(z)
    for m in M.mpipe_list:
        M.mpipe_stats(m)
    for o in O.objcache_list:
        O.objcache_stats(o)


s.run()
