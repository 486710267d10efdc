# The host's fuzzing workloads replayed on the board (firmware/mpfuzz.py), and
# misuse on the interrupt paths under micropython.heap_lock.
#
# Each replay test runs mpfuzz.run(target, seed, n) for the seeds in REPLAY_SEEDS
# with the target's reference model and invariants checked after every step. A
# failure prints "mpfuzz: <target> seed=<s> step=<n> op=...": on the host,
#     PYTHONPATH=firmware python -c "import mpfuzz; mpfuzz.run('<target>', <s>, <n> + 1)"
# replays the same workload. Each test reports the workload's digest as a metric
# (@@mpt metric replay <target> digest<seed>=<d>); tests/host/targets/test_fuzz_replay.py
# checks the boards' digests against CPython's.
# Set mpfuzz.REPLAY_SEEDS / mpfuzz.REPLAY_OPS before the suite runs to change the run;
# For debug mode call mpfuzz.reserve(), then import mpalloc.debug and call on()
# (on() compiles every allocator first, which leaves a small heap in pieces).
# Run directly: MICROPYPATH=firmware .venv/bin/micropython -X heapsize=512K tests/device/test_replay.py
from mptest import Suite, heap_locked, check_msg, eq
from mptest_sized import sized

import mpfuzz
from mpalloc import mem, intr

mpfuzz.reserve()  # the targets' window, before any workload fragments the heap

s = Suite("replay", needs=("heap:200000",))

# seeds 1 and 2, 300 steps each; seed 1, 30 steps on a slow (emulated) board
# (mptest_sized), where the model checks after every step cost ~0.1 s of wall time
SEEDS = getattr(mpfuzz, "REPLAY_SEEDS", sized((1, 2), (1,)))
NOPS = getattr(mpfuzz, "REPLAY_OPS", sized(300, 30))


def _replay(name):
    n = 0
    for seed in SEEDS:
        n += mpfuzz.run(name, seed, NOPS)
        s.metric(name, "digest%d" % seed, mpfuzz.DIGEST[0])
    s.metric(name, "ops", n)


@s.test
def vmem():
    _replay("vmem")


@s.test
def uvm_km():
    _replay("uvm_km")


@s.test
def pool():
    _replay("pool")


@s.test
def pool_cache():
    _replay("pool_cache")


@s.test
def kmem():
    _replay("kmem")


@s.test
def extent():
    _replay("extent")


@s.test
def kmalloc():
    _replay("kmalloc")


@s.test
def objcache():
    _replay("objcache")


@s.test
def mpipe():
    _replay("mpipe")


@s.test
def zone():
    _replay("zone")


# ---------------------------------------------------------------- misuse under heap_lock
#
# An interrupt handler cannot allocate, so a misuse there cannot be reported by a
# new exception with a formatted message: the allocators raise a preallocated one.
# _call runs t[0](t[1], t[2]) with the heap locked and keeps what it raised; the
# check then wants a ValueError naming the function (not a MemoryError).

_got = [None]


def _call(t):
    try:
        if len(t) == 3:
            t[0](t[1], t[2])
        else:
            t[0](t[1], t[2], t[3])
    except Exception as e:  # binding an exception allocates nothing
        _got[0] = e


def _locked_misuse(fn, a, b, prefix, c=None, known=None):
    # known: a bug reported and not fixed yet (in mpfuzz.KNOWN): then the misuse
    # must still be refused, by the MemoryError the bug gives; once fixed (the name
    # removed from KNOWN) the ValueError is required.
    t = (fn, a, b) if c is None else (fn, a, b, c)
    _got[0] = None
    heap_locked(_call, t)
    e = _got[0]
    _got[0] = None
    if e is None:
        raise AssertionError("%s: misuse not refused under heap_lock" % prefix)
    if known in mpfuzz.KNOWN:
        if not isinstance(e, MemoryError):
            raise AssertionError("%s: known bug %s fixed? drop it from mpfuzz.KNOWN" % (prefix, known))
        return e
    if not isinstance(e, ValueError):
        raise AssertionError("%s: misuse under heap_lock gave %s %r, not a ValueError" % (prefix, type(e).__name__, e))
    check_msg(e, prefix)
    return e


def _pool():
    from mpalloc import pool as P

    intr.setup(1)
    mpfuzz._attach(4096)
    pg = mpfuzz._Pages(256, 16)
    pp = P.pool_init(32, 8, 0, 0, "isr", pg.palloc, P.IPL_VM)
    P.pool_prime(pp, 2)
    return P, pp


@s.test
def misuse_pool_put_locked():
    P, pp = _pool()
    a = P.pool_get(pp, P.PR_NOWAIT)
    P.pool_put(pp, a)
    e = _locked_misuse(P.pool_put, pp, a, "pool_put")  # double put
    eq(P.pool_lasterr[0], a, "pool_lasterr names the address")
    _locked_misuse(P.pool_put, pp, a + 3, "pool_put")  # not an item
    P.pool_chk(pp)
    P.pool_destroy(pp)


def _kmem():
    mpfuzz._window(16384, 256)
    from mpalloc import kmem as K

    return K


@s.test
def misuse_kmem_intr_free_locked():
    K = _kmem()
    p = K.kmem_intr_alloc(40, K.KM_NOSLEEP)
    _locked_misuse(K.kmem_intr_free, p, 600, "kmem_free")  # another size class
    eq(K.kmem_lasterr[0], p, "kmem_lasterr names the address")
    _locked_misuse(K.kmem_intr_free, p + 8, 40, "kmem_free")  # inside an item
    q = K.kmem_intr_alloc(881, K.KM_NOSLEEP)
    _locked_misuse(K.kmem_intr_free, q, 2048, "kmem_free")  # a small item with a large size
    K.kmem_intr_free(p, 40)
    K.kmem_intr_free(q, 881)


@s.test
def misuse_kmem_alloc_in_interrupt():
    K = _kmem()
    e = [None]

    def h(x):
        try:
            K.kmem_alloc(32, K.KM_NOSLEEP)
        except ValueError as err:
            e[0] = err

    intr.run_hard(h, 0)
    check_msg(e[0], "kmem_alloc", "interrupt")


def _kmalloc():
    mpfuzz._window(32768, 1024)
    from mpalloc import kmalloc as M
    from mpalloc import kmem

    M._kmem[0] = kmem
    return M


@s.test
def misuse_kfree_locked():
    M = _kmalloc()
    t1 = M.kmalloc_create("isr1")
    t2 = M.kmalloc_create("isr2")
    p = M.kmalloc(24, t1, M.M_NOWAIT)
    _locked_misuse(M.kfree, p, t2, "kfree")  # another type
    M.kfree(p, t1)
    _locked_misuse(M.kfree, p, t1, "kfree")  # double free
    _locked_misuse(M.kfree, None, t1, "kfree")  # NULL
    _locked_misuse(M.kmalloc, 8, t1, "kmalloc", M.M_RNOWAIT | M.M_WAITOK)  # both wait flags
    M.kmalloc_destroy(t1)
    M.kmalloc_destroy(t2)


@s.test
def misuse_zone_locked():
    mpfuzz._window(32768, 256)
    from mpalloc import zone as Z

    z = Z.zinit("isr", 16, 8, Z.ZONE_INTERRUPT | Z.ZONE_DESTROYABLE)
    a = Z.zalloc(z)
    Z.zfree(z, a)
    _locked_misuse(Z.zfree, z, a, "zfree")  # double
    _locked_misuse(Z.zfree, z, a + 4, "zfree")  # not an item
    g = Z.zinit("grow", 16, 0, Z.ZONE_DESTROYABLE)
    e = [None]

    def h(x):
        try:
            Z.zalloc(g)
        except ValueError as err:
            e[0] = err

    intr.run_hard(h, 0)
    check_msg(e[0], "zalloc")
    Z.zdestroy(z)
    Z.zdestroy(g)


@s.test
def misuse_mpipe_locked():
    M = _kmalloc()
    from mpalloc import mpipe as P

    t = M.kmalloc_create("isrmp")
    mp = P.mpipe_init(None, t, 32, 2, 2, 0, None, None, None)
    a = P.mpipe_alloc_nowait(mp)
    P.mpipe_free(mp, a)
    _locked_misuse(P.mpipe_free, mp, a, "mpipe_free")  # double
    _locked_misuse(P.mpipe_free, mp, a + 8, "mpipe_free")  # foreign
    P.mpipe_done(mp)
    M.kmalloc_destroy(t)


@s.test
def misuse_objcache_locked():
    M = _kmalloc()
    from mpalloc import objcache as O

    t = M.kmalloc_create("isroc")
    oc = O.objcache_create_simple(t, 16)
    _locked_misuse(O.objcache_put, oc, None, "objcache_put")
    _locked_misuse(O.objcache_get, oc, M.M_NOWAIT | M.M_ZERO, "objcache_get")
    _locked_misuse(O.objcache_get, oc, 0, "objcache_get")
    O.objcache_destroy(oc)
    M.kmalloc_destroy(t)


@s.test
def misuse_vmem_free_locked():
    from mpalloc import vmem as V

    vm = V.vmem_create("isr", 0x1000, 0x1000, 16, 0, V.M_NOWAIT)
    a = V.vmem_alloc(vm, 64, V.M_NOWAIT)
    _locked_misuse(V.vmem_free, vm, a, "vmem_free", 128)  # another size
    _locked_misuse(V.vmem_xfree, vm, a, "vmem_xfree", 64)  # the other function
    _locked_misuse(V.vmem_free, vm, a + 16, "vmem_free", 64)  # never allocated there
    e = _locked_misuse(V.vmem_free, vm, a + 3, "vmem_free", 64)  # not quantum-aligned
    if V.vmem_lasterr[0] != a + 3 or V.vmem_lasterr[1] is not vm:
        raise AssertionError("vmem_lasterr %r does not name the misuse" % (V.vmem_lasterr,))
    _locked_misuse(V.vmem_alloc, vm, 0, "vmem_alloc", V.M_NOWAIT)  # size 0
    qc = V.vmem_create("isrqc", 0x4000, 0x1000, 16, 64, V.M_NOWAIT)
    b = V.vmem_alloc(qc, 32, V.M_NOWAIT)  # from the quantum cache
    V.vmem_free(qc, b, 32)
    _locked_misuse(V.vmem_free, qc, b, "vmem_free", 32)  # double free of a parked item
    b = V.vmem_alloc(qc, 32, V.M_NOWAIT)
    _locked_misuse(V.vmem_free, qc, b, "vmem_free", 48)  # wrong size
    _locked_misuse(V.vmem_xfree, qc, b, "vmem_xfree", 32)  # the other function
    V.vmem_free(qc, b, 32)
    V.vmem_destroy(qc)
    V.vmem_free(vm, a, 64)
    V.vmem_destroy(vm)



def _locked_report(fn, a, b, want, prefix):
    # fn(a, b) with the heap locked must raise the module's preallocated report `want`.
    _got[0] = None
    heap_locked(_call, (fn, a, b))
    e = _got[0]
    _got[0] = None
    if e is not want:
        raise AssertionError("%s: under heap_lock gave %r, not the preallocated report" % (prefix, e))
    check_msg(e, prefix)


@s.test
def debug_checks_locked():
    # pool, pool_cache and kmem debug checks report with the heap locked too
    from mpalloc import pool as P
    from mpalloc import pool_cache as PC

    was = (P._debug[0], PC._debug[0])
    P.pool_debug(True)
    PC.pool_cache_debug(True)
    try:
        P_, pp = _pool()
        a = P.pool_get(pp, P.PR_NOWAIT)
        b = P.pool_get(pp, P.PR_NOWAIT)
        P.pool_put(pp, b)
        P.pool_put(pp, a)
        mem.ram[a - mem.base + 9] = 1  # written after pool_put
        _locked_report(P.pool_get, pp, P.PR_NOWAIT, P.E_DEBUG, "pool")
        eq(P.pool_lasterr[0], a, "pool_lasterr names the item")
        P.pool_put(pp, a)  # reported and handed out: the caller may put it back
        P.pool_chk(pp)
        P.pool_destroy(pp)
        K = _kmem()
        K.kmem_init()
        c = K._cache(0, False)
        o = PC.pool_cache_get(c, 2)
        PC.pool_cache_put(c, o)
        _locked_report(PC.pool_cache_put, c, o, PC.E_DEBUG, "pool_cache")  # double put
        PC.pool_cache_destroy(c)
        K.kmem_debug(True)
        p = K.kmem_intr_alloc(100, K.KM_NOSLEEP)
        K.kmem_intr_free(p, 100)
        mem.ram[p - mem.base + 3] = 0  # use after free
        _locked_report(K.kmem_intr_alloc, 100, K.KM_NOSLEEP, K.E_UAF, "kmem_alloc")
    finally:
        P.pool_debug(was[0])
        PC.pool_cache_debug(was[1])
        mpfuzz._window(16384, 256)  # kmem debug back to what mpalloc.debug says


s.run()
