# mphostile: hostile-argument fuzz of every public allocator function (issue 16).
#
# Runs on CPython (tests/host/allocators/test_fuzz_hostile.py, hypothesis picks the calls)
# and on MicroPython (tests/device/test_hostile.py, a seeded generator): one
# call = one public function with a valid argument list in which one or two
# arguments are replaced by hostile values (huge, negative, zero, float, str,
# bytes, None). Verdict of a call (check()):
#   - it returns (the value was acceptable), or raises TypeError, ValueError or
#     MemoryError whose message starts with the function's name (or a name in
#     ALIAS: the documented entry point it is a wrapper of);
#   - afterwards no lock is held (intr's masks and depths, every arena, pool,
#     cache and depot lock), the allocator still allocates and frees, and its
#     consistency check and statistics pass (the case's after()).
# Anything else raises Failure naming the call. The per-call deadline is the
# caller's: faulthandler on the host, the runner's test deadline on a board
# (a held lock is found by the lock check first, so nothing blocks on it).
#
#   import mphostile; mphostile.run(seed, n)   # n calls; returns the counts
import gc
import sys

from mpalloc import intr, mem
import mpfuzz

from mpalloc.compat import const

HOSTILE_WINDOW = const(16384)  # the largest window a case attaches (mpfuzz.reserve's size)

_MP = sys.implementation.name == "micropython"


class Failure(Exception):
    pass


def hostile():
    # built on call: 2**64 is a big int (and no work at import)
    return (1 << 36, 1 << 64, -1, -(1 << 36), 0, 1.5, "x", b"x", None)


# What a wrapper may name instead of itself (its documented back end).
ALIAS = {
    "kmem_zalloc": ("kmem_alloc",),
    "kmem_intr_alloc": ("kmem_alloc",),
    "kmem_intr_zalloc": ("kmem_alloc", "kmem_intr_alloc"),
    "kmem_intr_free": ("kmem_free",),
    "pool_cache_get_paddr": ("pool_cache_get",),
    "pool_cache_put_paddr": ("pool_cache_put",),
}


# The hit paths (a few cu each) do not test the type of what they are given: a
# float, str, bytes or None where an int or the allocator's object belongs
# fails in the interpreter's arithmetic or subscript, BEFORE any lock is taken
# or anything is changed, with the interpreter's message (README, Reliability).
# Those (function: argument places) may raise TypeError, AttributeError or
# IndexError without the name; the lock and allocator checks still apply.
HOT = {
    "vmem_alloc": (0, 1), "vmem_free": (0, 1, 2), "vmem_xfree": (0, 1, 2),
    "pool_get": (0,), "pool_put": (0,),
    "pool_cache_get": (0,), "pool_cache_put": (0,), "pool_cache_get_paddr": (0,), "pool_cache_put_paddr": (0,),
    "kmem_alloc": (0, 1), "kmem_zalloc": (0, 1), "kmem_intr_alloc": (0, 1), "kmem_intr_zalloc": (0, 1),
    "kmem_free": (0, 1), "kmem_intr_free": (0, 1),
}


def _hot_type(fname, nargs, subst, e):
    places = HOT.get(fname)
    if places is None or not isinstance(e, (TypeError, AttributeError, IndexError)):
        return False
    for j in subst:  # (an int in an object's place, e.g. pool_get(2**36, ...), counts too)
        if j % nargs in places:
            return True
    return False


# Functions whose misuse may be caught after the call rather than by it (a
# foreign int address put on a pool_cache hit: found when the magazine's
# objects go back to the pool, see README "Reliability"); result "late".
LATE = ("pool_cache_put", "pool_cache_put_paddr")


def _m(name):
    return __import__("mpalloc." + name, None, None, (name,))


# ---------------------------------------------------------------- fixtures
# Each returns a dict: the module, the objects made, and `ok`, a function that
# allocates, frees and checks (raises on a broken allocator).


def _vm():
    V = _m("vmem")
    intr.setup(1)
    a = V.vmem_create("hx", 0x1000, 0x1000, 16, 64, V.M_NOWAIT)
    p = V.vmem_alloc(a, 32, V.M_NOWAIT)
    x = V.vmem_xalloc(a, 32, 64, 0, 0, 0x1000, 0x1fff, V.M_NOWAIT)
    parent = V.vmem_create("hxp", 0x8000, 0x1000, 16, 0, V.M_NOWAIT)

    def ok():
        q = V.vmem_alloc(a, 48, V.M_NOWAIT)
        if q is None:
            raise Failure("vmem: the arena cannot allocate 48 bytes any more")
        V.vmem_free(a, q, 48)
        V.vmem_check(a)
        V.vmem_stats(a)
    return {"V": V, "a": a, "p": p, "x": x, "parent": parent, "ok": ok}


def _uk():
    U = mpfuzz._window(HOSTILE_WINDOW, 256)
    K = _m("kmem")
    p = U.uvm_km_alloc(U.kernel_map, 512, 0, U.UVM_KMF_WIRED)

    def ok():
        q = U.uvm_km_alloc(U.kernel_map, 256, 0, U.UVM_KMF_WIRED | U.UVM_KMF_CANFAIL)
        if q is None:
            raise Failure("uvm_km: kernel_map cannot allocate 256 bytes any more")
        U.uvm_km_free(U.kernel_map, q, 256, U.UVM_KMF_WIRED)
        U.uvm_km_stats()
        U.uvm_km_allocations(U.kernel_map)
        b = K.kmem_alloc(40, K.KM_NOSLEEP)
        K.kmem_free(b, 40)
        K.kmem_stats()
    return {"U": U, "K": K, "p": p, "ok": ok}


def _pl():
    P = _m("pool")
    intr.setup(1)
    mpfuzz._attach(4096)
    pg = mpfuzz._Pages(256, 16)
    pp = P.pool_init(32, 8, 0, 0, "hx", pg.palloc, P.IPL_VM)
    p = P.pool_get(pp, P.PR_NOWAIT)

    def ok():
        P.pool_sethardlimit(pp, 1 << 20, None, 0)  # a hostile call may have set a valid limit of 0
        q = P.pool_get(pp, P.PR_NOWAIT)
        if q is None:
            raise Failure("pool: cannot get an item any more")
        P.pool_put(pp, q)
        P.pool_chk(pp)
        P.pool_stats(pp)
    return {"P": P, "pp": pp, "p": p, "pa": pg.palloc, "ok": ok}


def _pc():
    P = _m("pool")
    PC = _m("pool_cache")
    intr.setup(1)
    mpfuzz._attach(4096)
    pg = mpfuzz._Pages(256, 16)
    c = PC.pool_cache_init(32, 8, 0, 0, "hxc", pg.palloc, P.IPL_VM, None, None, None)
    p = PC.pool_cache_get(c, P.PR_NOWAIT)

    def ok():
        PC.pool_cache_sethardlimit(c, 1 << 20, None, 0)  # a valid limit of 0 may have been set
        q = PC.pool_cache_get(c, P.PR_NOWAIT)
        if q is None:
            raise Failure("pool_cache: cannot get an object any more")
        PC.pool_cache_put(c, q)
        PC.pool_cache_invalidate(c)
        P.pool_chk(PC.pool_cache_pool(c))
        PC.pool_cache_stats(c)
    return {"P": P, "PC": PC, "c": c, "p": p, "pa": pg.palloc, "ok": ok}


def _ex():
    E = _m("extent")
    intr.setup(1)
    e = E.extent_create("hx", 0x100, 0x1ff, None, 0, E.EX_NOWAIT)
    E.extent_alloc_region(e, 0x120, 0x10, E.EX_NOWAIT)

    def ok():
        r = E.extent_alloc(e, 0x10, 1, 0, E.EX_NOWAIT)
        if r is None or not isinstance(r, int):
            raise Failure("extent: cannot allocate 16 any more (%r)" % (r,))
        E.extent_free(e, r, 0x10, E.EX_NOWAIT)
        E.extent_regions(e)
    return {"E": E, "e": e, "ok": ok}


def _kma():
    mpfuzz._window(HOSTILE_WINDOW, 512)
    M = _m("kmalloc")
    M._kmem[0] = _m("kmem")
    t = M.kmalloc_create("hx")
    p = M.kmalloc(24, t, M.M_NOWAIT)
    O = _m("objcache")
    oc = O.objcache_create_simple(t, 16)
    o = O.objcache_get(oc, M.M_NOWAIT)
    Pi = _m("mpipe")
    mp = Pi.mpipe_init(None, t, 32, 2, 2, 0, None, None, None)
    b = Pi.mpipe_alloc_nowait(mp)

    def ok():
        q = M.kmalloc(40, t, M.M_NOWAIT)
        if q is None:
            raise Failure("kmalloc: cannot allocate 40 bytes any more")
        M.kfree(q, t)
        M.kmalloc_stats(t)
        r = O.objcache_get(oc, M.M_NOWAIT)
        if r is None:
            raise Failure("objcache: cannot get an object any more")
        O.objcache_put(oc, r)
        O.objcache_stats(oc)
        Pi.mpipe_stats(mp)
    return {"M": M, "t": t, "p": p, "O": O, "oc": oc, "o": o, "Pi": Pi, "mp": mp, "b": b, "ok": ok}


def _zn():
    mpfuzz._window(HOSTILE_WINDOW, 256)
    Z = _m("zone")
    z = Z.zinit("hx", 16, 8, Z.ZONE_INTERRUPT | Z.ZONE_DESTROYABLE)
    p = Z.zalloc(z)

    def ok():
        q = Z.zalloc(z)
        if q is None:
            raise Failure("zone: cannot allocate an item any more")
        Z.zfree(z, q)
        Z.zone_stats(z)
    return {"Z": Z, "z": z, "p": p, "ok": ok}


# ---------------------------------------------------------------- the cases
# (function name, fixture, valid arguments from the fixture's dict)


def _nop2(a, b):
    return None


CASES = (
    ("vmem_alloc", _vm, lambda f: (f["a"], 32, f["V"].M_NOWAIT)),
    ("vmem_xalloc", _vm, lambda f: (f["a"], 32, 64, 0, 0, 0x1000, 0x1fff, f["V"].M_NOWAIT)),
    ("vmem_free", _vm, lambda f: (f["a"], f["p"], 32)),
    ("vmem_xfree", _vm, lambda f: (f["a"], f["x"], 32)),
    ("vmem_create", _vm, lambda f: ("hy", 0x4000, 0x1000, 16, 64, f["V"].M_NOWAIT)),
    ("vmem_add", _vm, lambda f: (f["a"], 0x4000, 0x1000, f["V"].M_NOWAIT)),
    ("vmem_destroy", _vm, lambda f: (f["parent"],)),
    ("vmem_set_import", _vm, lambda f: (f["a"], f["V"].vmem_alloc, f["V"].vmem_free, f["parent"], 64)),
    ("vmem_set_reclaim", _vm, lambda f: (f["a"], _nop2)),
    ("vmem_set_limit", _vm, lambda f: (f["a"], 0x4000)),
    ("vmem_roundup_size", _vm, lambda f: (f["a"], 20)),
    ("vmem_size", _vm, lambda f: (f["a"], 3)),
    ("vmem_check", _vm, lambda f: (f["a"],)),
    ("vmem_spans", _vm, lambda f: (f["a"],)),
    ("vmem_segments", _vm, lambda f: (f["a"],)),
    ("vmem_stats", _vm, lambda f: (f["a"],)),
    ("uvm_km_alloc", _uk, lambda f: (f["U"].kernel_map, 512, 0, f["U"].UVM_KMF_WIRED)),
    ("uvm_km_free", _uk, lambda f: (f["U"].kernel_map, f["p"], 512, f["U"].UVM_KMF_WIRED)),
    ("uvm_km_suballoc", _uk, lambda f: (f["U"].kernel_map, 1024, f["U"].VM_MAP_INTRSAFE, False, 0, "sub")),
    ("uvm_km_buf", _uk, lambda f: (f["p"], 16)),
    ("uvm_km_allocations", _uk, lambda f: (f["U"].kernel_map,)),
    ("kmem_alloc", _uk, lambda f: (40, f["K"].KM_NOSLEEP)),
    ("kmem_zalloc", _uk, lambda f: (40, f["K"].KM_NOSLEEP)),
    ("kmem_intr_alloc", _uk, lambda f: (40, f["K"].KM_NOSLEEP)),
    ("kmem_intr_zalloc", _uk, lambda f: (40, f["K"].KM_NOSLEEP)),
    ("kmem_free", _uk, lambda f: (f["K"].kmem_alloc(40, f["K"].KM_NOSLEEP), 40)),
    ("kmem_intr_free", _uk, lambda f: (f["K"].kmem_alloc(40, f["K"].KM_NOSLEEP), 40)),
    ("kmem_roundup_size", _uk, lambda f: (40,)),
    ("kmem_class", _uk, lambda f: (40,)),
    ("pool_init", _pl, lambda f: (32, 8, 0, 0, "hy", f["pa"], f["P"].IPL_VM)),
    ("pool_get", _pl, lambda f: (f["pp"], f["P"].PR_NOWAIT)),
    ("pool_put", _pl, lambda f: (f["pp"], f["p"])),
    ("pool_prime", _pl, lambda f: (f["pp"], 2)),
    ("pool_setlowat", _pl, lambda f: (f["pp"], 2)),
    ("pool_sethiwat", _pl, lambda f: (f["pp"], 8)),
    ("pool_sethardlimit", _pl, lambda f: (f["pp"], 64, "hx limit", 1)),
    ("pool_set_drain_hook", _pl, lambda f: (f["pp"], _nop2, None)),
    ("pool_reclaim", _pl, lambda f: (f["pp"],)),
    ("pool_paddr", _pl, lambda f: (f["pp"], f["p"])),
    ("pool_nget", _pl, lambda f: (f["pp"],)),
    ("pool_nput", _pl, lambda f: (f["pp"],)),
    ("pool_stats", _pl, lambda f: (f["pp"],)),
    ("pool_pages", _pl, lambda f: (f["pp"],)),
    ("pool_chk", _pl, lambda f: (f["pp"],)),
    ("pool_cache_init", _pc, lambda f: (32, 8, 0, 0, "hy", f["pa"], f["P"].IPL_VM, None, None, None)),
    ("pool_cache_get", _pc, lambda f: (f["c"], f["P"].PR_NOWAIT)),
    ("pool_cache_put", _pc, lambda f: (f["c"], f["p"])),
    ("pool_cache_get_paddr", _pc, lambda f: (f["c"], f["P"].PR_NOWAIT)),
    ("pool_cache_put_paddr", _pc, lambda f: (f["c"], f["p"], f["p"])),
    ("pool_cache_destruct_object", _pc, lambda f: (f["c"], f["p"])),
    ("pool_cache_invalidate", _pc, lambda f: (f["c"],)),
    ("pool_cache_setlowat", _pc, lambda f: (f["c"], 2)),
    ("pool_cache_sethiwat", _pc, lambda f: (f["c"], 8)),
    ("pool_cache_sethardlimit", _pc, lambda f: (f["c"], 64, "hx limit", 1)),
    ("pool_cache_prime", _pc, lambda f: (f["c"], 2)),
    ("pool_cache_reclaim", _pc, lambda f: (f["c"],)),
    ("pool_cache_set_drain_hook", _pc, lambda f: (f["c"], _nop2, None)),
    ("pool_cache_pool", _pc, lambda f: (f["c"],)),
    ("pool_cache_nget", _pc, lambda f: (f["c"],)),
    ("pool_cache_nput", _pc, lambda f: (f["c"],)),
    ("pool_cache_stats", _pc, lambda f: (f["c"],)),
    ("pool_cache_cached", _pc, lambda f: (f["c"],)),
    ("extent_alloc", _ex, lambda f: (f["e"], 0x10, 1, 0, f["E"].EX_NOWAIT)),
    ("extent_alloc_region", _ex, lambda f: (f["e"], 0x140, 0x10, f["E"].EX_NOWAIT)),
    ("extent_alloc_subregion", _ex, lambda f: (f["e"], 0x180, 0x1ff, 0x10, 1, 0, f["E"].EX_NOWAIT)),
    ("extent_free", _ex, lambda f: (f["e"], 0x120, 0x10, f["E"].EX_NOWAIT)),
    ("extent_create", _ex, lambda f: ("hy", 0x100, 0x1ff, None, 0, f["E"].EX_NOWAIT)),
    ("extent_regions", _ex, lambda f: (f["e"],)),
    ("kmalloc", _kma, lambda f: (24, f["t"], f["M"].M_NOWAIT)),
    ("kfree", _kma, lambda f: (f["p"], f["t"])),
    ("krealloc", _kma, lambda f: (f["p"], 40, f["t"], f["M"].M_NOWAIT)),
    ("kstrdup", _kma, lambda f: ("abc", f["t"])),
    ("kmalloc_usable", _kma, lambda f: (f["p"],)),
    ("kmalloc_raise_limit", _kma, lambda f: (f["t"], 4096)),
    ("kmalloc_create", _kma, lambda f: ("hy",)),
    ("kmalloc_stats", _kma, lambda f: (f["t"],)),
    ("objcache_get", _kma, lambda f: (f["oc"], f["M"].M_NOWAIT)),
    ("objcache_put", _kma, lambda f: (f["oc"], f["o"])),
    ("objcache_dtor", _kma, lambda f: (f["oc"], f["o"])),
    ("objcache_create_simple", _kma, lambda f: (f["t"], 16)),
    ("objcache_stats", _kma, lambda f: (f["oc"],)),
    ("mpipe_alloc_nowait", _kma, lambda f: (f["mp"],)),
    ("mpipe_free", _kma, lambda f: (f["mp"], f["b"])),
    ("mpipe_init", _kma, lambda f: (None, f["t"], 32, 2, 2, 0, None, None, None)),
    ("mpipe_stats", _kma, lambda f: (f["mp"],)),
    ("zalloc", _zn, lambda f: (f["z"],)),
    ("zfree", _zn, lambda f: (f["z"], f["p"])),
    ("zinit", _zn, lambda f: ("hy", 16, 8, f["Z"].ZONE_INTERRUPT)),
    ("zbuf", _zn, lambda f: (f["z"], f["p"])),
    ("zone_stats", _zn, lambda f: (f["z"],)),
)

_MOD = {"vmem": "vmem", "uvm_km": "uvm_km", "kmem": "kmem", "pool": "pool", "pool_cache": "pool_cache",
        "extent": "extent", "kmalloc": "kmalloc", "kfree": "kmalloc", "krealloc": "kmalloc",
        "kstrdup": "kmalloc", "objcache": "objcache", "mpipe": "mpipe", "zalloc": "zone", "zfree": "zone",
        "zinit": "zone", "zbuf": "zone", "zone": "zone"}


def _module(name):
    if name in _MOD:
        return _m(_MOD[name])
    for k in ("pool_cache", "uvm_km", "vmem", "kmem", "pool", "extent", "kmalloc", "objcache", "mpipe", "zone"):
        if name.startswith(k + "_") or name == k:
            return _m(_MOD[k])
    raise KeyError(name)


# ---------------------------------------------------------------- locks


def _locked(m):
    return m is not None and hasattr(m, "locked") and m.locked()


def locks_free():
    """None if no allocator lock is held, else what is held."""
    if intr.mode == intr.MODE_THREAD:
        for c in range(intr.ncpu):
            if intr._depth[c] or _locked(intr._mask[c]):
                return "intr: CPU %d's interrupt mask (depth %d)" % (c, intr._depth[c])
    elif intr._sdepth[0]:
        return "intr: splhigh depth %d" % intr._sdepth[0]
    V = _m("vmem")
    for vm in V.vmem_list:
        if _locked(vm._lock):
            return "vmem: arena '%s' lock" % vm.name
    PC = _m("pool_cache")
    if PC._cl is not None:
        for c in range(len(PC._cl)):
            if _locked(PC._cl[c]):
                return "pool_cache: CPU %d's magazine lock" % c
    for pc in PC.pool_cache_list:
        d = pc[PC.MAXCPU]  # the cache's meta (pool_cache._META: a const, no attribute on MicroPython)
        if _locked(d.lock):
            return "pool_cache: depot lock of '%s'" % d.name
    return None


# ---------------------------------------------------------------- one call


def _named(fname, e):
    # (an OSError's message is its second argument: extent's EAGAIN, ENOMEM)
    msg = str(e.args[1] if isinstance(e, OSError) and len(e.args) > 1 else e.args[0]) if e.args else ""
    for n in (fname,) + ALIAS.get(fname, ()):
        if msg.startswith(n):
            return True
    return False


# The registries a fixture adds to (module, list): check() drops what one call
# added, so thousands of calls fit a board's heap.
_REGS = (("vmem", "vmem_list"), ("extent", "extent_list"), ("mpipe", "mpipe_list"),
         ("objcache", "objcache_list"), ("pool", "pool_list"), ("pool_cache", "pool_cache_list"),
         ("zone", "zone_list"), ("kmalloc", "malloc_types"))


def _marks():
    return [len(getattr(_m(m), n)) for m, n in _REGS] + [len(_m("kmalloc")._types)]


def _forget(marks):
    keep = {}
    U = _m("uvm_km")
    for mi in U._maps.values():  # the current kernel_map and its submaps stay registered
        keep[id(mi.arena)] = 1
    for k in range(len(_REGS)):
        lst = getattr(_m(_REGS[k][0]), _REGS[k][1])
        tail = lst[marks[k]:]
        del lst[marks[k]:]
        for o in tail:
            if id(o) in keep:
                lst.append(o)
    ts = _m("kmalloc")._types  # type id -> type: ids are never reused, the types are dropped
    for k in range(marks[len(_REGS)], len(ts)):
        ts[k] = None
    if _MP:
        gc.collect()  # a board's heap (CPython's reference counts free the rest at once)


def check(i, subst, stats=None):
    """Call CASES[i] with subst ({argument index: value}) replacing arguments.
    Returns 'ok' (returned), 'refused' (a clear error), 'hot-type' (see HOT)
    or 'late' (see LATE);
    raises Failure."""
    marks = _marks()
    try:
        return _check(i, subst, stats)
    finally:
        _forget(marks)


def _check(i, subst, stats):
    fname, fixture, argsf = CASES[i]
    f = fixture()
    args = list(argsf(f))
    for j in subst:
        args[j % len(args)] = subst[j]
    fn = getattr(_module(fname), fname)
    what = "%s%r" % (fname, tuple(args))
    r = "ok"
    try:
        fn(*args)
    except (TypeError, ValueError, MemoryError, OSError) as e:
        if _named(fname, e):
            r = "refused"
        elif _hot_type(fname, len(args), subst, e):
            r = "hot-type"
        else:
            raise Failure("%s raised %s(%r): the message does not name %s" % (what, type(e).__name__, e, fname))
    except Exception as e:
        if not _hot_type(fname, len(args), subst, e):
            raise Failure("%s raised %s(%r)" % (what, type(e).__name__, e))
        r = "hot-type"
    held = locks_free()
    if held is not None:
        raise Failure("%s left a lock held: %s" % (what, held))
    try:
        f["ok"]()
    except ValueError as e:
        # documented (README, Reliability): a put hit does not look up the
        # object, so a foreign address is found when it goes down to the pool
        if fname not in LATE or not str(e).startswith("pool_cache_invalidate:"):
            raise Failure("%s: afterwards the allocator is broken: ValueError(%r)" % (what, e))
        r = "late"
        try:
            f["ok"]()
        except Exception as e:
            raise Failure("%s: after the foreign object was found the cache is broken: %s(%r)" % (what, type(e).__name__, e))
    except Exception as e:
        raise Failure("%s: afterwards the allocator is broken: %s(%r)" % (what, type(e).__name__, e))
    held = locks_free()
    if held is not None:
        raise Failure("%s: the allocator's check left a lock held: %s" % (what, held))
    if stats is not None:
        stats[r] = stats.get(r, 0) + 1
    return r


def run(seed, n, stats=None):
    """n hostile calls drawn from seed (one or two arguments replaced)."""
    rng = mpfuzz.Rng(seed)
    H = hostile()
    if stats is None:
        stats = {}
    for _ in range(n):
        i = rng.int(0, len(CASES) - 1)
        subst = {rng.int(0, 9): H[rng.int(0, len(H) - 1)]}
        if rng.int(0, 3) == 0:
            subst[rng.int(0, 9)] = H[rng.int(0, len(H) - 1)]
        check(i, subst, stats)
    stats["calls"] = stats.get("calls", 0) + n
    return stats
