"""The catalogue of bad inputs (docs/MISUSE.md) and one test per row.

CASES is the catalogue: (function, misuse, exception, message start, call). Each
row is a test: call() must raise exactly that exception type with a message that
starts with that text, and the check after it (where given) must hold (nothing
already stored is lost). docs/MISUSE.md is generated from CASES and
test_catalogue_is_current fails if it drifts; regenerate with

    .venv/bin/python tests/host/test_fuzz_misuse.py --write

test_every_public_function_is_catalogued fails when a module gains a public
function that is neither in CASES nor in UNCATALOGUED (which the document lists
too, so what is not covered yet is visible).
"""
import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "firmware"))

import mpfuzz  # noqa: E402
from mpalloc import intr  # noqa: E402

DOC = os.path.join(ROOT, "docs", "MISUSE.md")
MODULES = ("vmem", "uvm_km", "pool", "pool_cache", "kmem", "extent", "kmalloc", "objcache", "mpipe", "zone")

pytestmark = pytest.mark.fuzz


def _m(name):
    import importlib

    return importlib.import_module("mpalloc." + name)


# ---------------------------------------------------------------- fresh state for each row


def vm():
    V = _m("vmem")
    return V, V.vmem_create("mis", 0x1000, 0x1000, 16, 0, V.M_NOWAIT)


def uk():
    return mpfuzz._window(32768, 256)


def pl():
    P = _m("pool")
    intr.setup(1)
    mpfuzz._attach(4096)
    pg = mpfuzz._Pages(256, 16)
    return P, P.pool_init(32, 8, 0, 0, "mis", pg.palloc, P.IPL_VM)


def pc():
    P = _m("pool")
    PC = _m("pool_cache")
    intr.setup(1)
    mpfuzz._attach(4096)
    pg = mpfuzz._Pages(256, 16)
    return PC, PC.pool_cache_init(32, 8, 0, 0, "misc", pg.palloc, P.IPL_VM, None, None, None)


def km():
    uk()
    return _m("kmem")


def ex():
    E = _m("extent")
    return E, E.extent_create("mis", 0x100, 0x1ff, None, 0, E.EX_NOWAIT)


def kma():
    mpfuzz._window(32768, 1024)
    M = _m("kmalloc")
    M._kmem[0] = _m("kmem")
    return M, M.kmalloc_create("mis")


def oc():
    M, t = kma()
    O = _m("objcache")
    return M, O, O.objcache_create_simple(t, 16)


def mp():
    M, t = kma()
    P = _m("mpipe")
    return P, P.mpipe_init(None, t, 32, 2, 2, 0, None, None, None), t


def zn(flags=None):
    uk()
    Z = _m("zone")
    f = Z.ZONE_INTERRUPT | Z.ZONE_DESTROYABLE if flags is None else flags
    return Z, Z.zinit("mis", 16, 8, f)


# ---------------------------------------------------------------- the rows
# Each call is a function of no arguments doing the setup and then the misuse.


def _vmem_double():
    V, a = vm()
    p = V.vmem_alloc(a, 32, V.M_NOWAIT)
    V.vmem_free(a, p, 32)
    V.vmem_free(a, p, 32)


def _vmem_wrongsize():
    V, a = vm()
    p = V.vmem_alloc(a, 32, V.M_NOWAIT)
    V.vmem_free(a, p, 64)


def _vmem_x_vs_plain():
    V, a = vm()
    p = V.vmem_alloc(a, 32, V.M_NOWAIT)
    V.vmem_xfree(a, p, 32)


def _vmem_xfree_foreign():
    V, a = vm()
    V.vmem_xfree(a, 0x1230, 16)


def _uk_alloc(size, align, flags):
    def f():
        U = uk()
        U.uvm_km_alloc(U.kernel_map, size, align, flags(U))
    return f


def _uk_free(kind):
    def f():
        U = uk()
        a = U.uvm_km_alloc(U.kernel_map, 512, 0, U.UVM_KMF_WIRED)
        if kind == "size":
            U.uvm_km_free(U.kernel_map, a, 1024, U.UVM_KMF_WIRED)
        elif kind == "type":
            U.uvm_km_free(U.kernel_map, a, 512, U.UVM_KMF_VAONLY)
        else:
            U.uvm_km_free(U.kernel_map, a + 256, 256, U.UVM_KMF_WIRED)
    return f


def _pool_put(kind):
    def f():
        P, pp = pl()
        a = P.pool_get(pp, P.PR_NOWAIT)
        if kind == "double":
            P.pool_put(pp, a)
            P.pool_put(pp, a)
        else:
            P.pool_put(pp, a + 3)
    return f


def _pool_get_flags():
    P, pp = pl()
    P.pool_get(pp, 0)


def _kmem_free(kind):
    def f():
        K = km()
        p = K.kmem_alloc(40, K.KM_NOSLEEP)
        if kind == "class":
            K.kmem_free(p, 600)
        elif kind == "none":
            K.kmem_free(None, 40)
        else:
            K.kmem_free(p + 8, 40)
    return f


def _kmem_debug(kind):
    def f():
        K = km()
        K.kmem_debug(True)
        p = K.kmem_alloc(40, K.KM_NOSLEEP)
        if kind == "double":
            K.kmem_free(p, 40)
            K.kmem_free(p, 40)
        elif kind == "size":
            K.kmem_free(p, 36)
        else:
            from mpalloc import mem

            mem.ram[p - mem.base + 40] = 0
            K.kmem_free(p, 40)
    return f


def _kmem_intr():
    K = km()
    err = []

    def h(x):
        try:
            K.kmem_alloc(32, K.KM_NOSLEEP)
        except ValueError as e:
            err.append(e)

    intr.run_hard(h, 0)
    raise err[0]


def _ex_region_busy():
    E, e = ex()
    E.extent_alloc_region(e, 0x120, 0x10, E.EX_NOWAIT, "uart-a")
    E.extent_alloc_region(e, 0x128, 0x10, E.EX_NOWAIT, "uart-b")


def _ex_free_unclaimed():
    E, e = ex()
    E.extent_free(e, 0x120, 0x10, E.EX_NOWAIT)


def _ex_free_owner():
    E, e = ex()
    E.extent_alloc_region(e, 0x120, 0x10, E.EX_NOWAIT, "uart-a")
    E.extent_free(e, 0x120, 0x10, E.EX_NOWAIT, "uart-b")


def _ex_alloc(size, align, boundary):
    def f():
        E, e = ex()
        E.extent_alloc(e, size, align, boundary, E.EX_NOWAIT)
    return f


def _ex_nospace():
    E, e = ex()
    E.extent_alloc(e, 0x100, 1, 0, E.EX_NOWAIT)
    E.extent_alloc(e, 1, 1, 0, E.EX_NOWAIT)


def _ex_sub_bad():
    E, e = ex()
    E.extent_alloc_subregion(e, 0x180, 0x17f, 1, 1, 0, E.EX_NOWAIT)


def _ex_outside():
    E, e = ex()
    E.extent_alloc_region(e, 0x1f8, 0x10, E.EX_NOWAIT)


def _kfree(kind):
    def f():
        M, t = kma()
        p = M.kmalloc(24, t, M.M_NOWAIT)
        if kind == "double":
            M.kfree(p, t)
            M.kfree(p, t)
        elif kind == "type":
            M.kfree(p, M.kmalloc_create("other"))
        elif kind == "null":
            M.kfree(None, t)
        else:
            M.kfree(p + 16, t)
    return f


def _kmalloc_flags():
    M, t = kma()
    M.kmalloc(8, t, M.M_RNOWAIT | M.M_WAITOK)


def _kmalloc_limit():
    M, t = kma()
    while True:
        M.kmalloc(512, t, M.M_INTWAIT)


def _kmalloc_dead():
    M, t = kma()
    M.kmalloc_destroy(t)
    M.kmalloc(8, t, M.M_NOWAIT)


def _kmalloc_destroy_busy():
    M, t = kma()
    M.kmalloc(8, t, M.M_NOWAIT)
    M.kmalloc_destroy(t)


def _krealloc_zero():
    M, t = kma()
    p = M.kmalloc(8, t, M.M_NOWAIT)
    M.krealloc(p, 16, t, M.M_NOWAIT | M.M_ZERO)


def _oc(kind):
    def f():
        M, O, c = oc()
        if kind == "zero":
            O.objcache_get(c, M.M_NOWAIT | M.M_ZERO)
        elif kind == "flags":
            O.objcache_get(c, 0)
        elif kind == "none":
            O.objcache_put(c, None)
        else:
            O.objcache_destroy(c)
            O.objcache_get(c, M.M_NOWAIT)
    return f


def _oc_debug_double():
    O = _m("objcache")
    O.objcache_debug(True)
    try:
        M, O, c = oc()
        o = O.objcache_get(c, M.M_NOWAIT)
        O.objcache_put(c, o)
        O.objcache_put(c, o)
    finally:
        O.objcache_debug(False)


def _mp(kind):
    def f():
        P, p, t = mp()
        a = P.mpipe_alloc_nowait(p)
        if kind == "double":
            P.mpipe_free(p, a)
            P.mpipe_free(p, a)
        elif kind == "foreign":
            P.mpipe_free(p, a + 8)
        elif kind == "done":
            P.mpipe_free(p, a)
            P.mpipe_done(p)
            P.mpipe_alloc_nowait(p)
        else:
            P.mpipe_done(p)
    return f


def _mp_init(bytes_, flags):
    def f():
        M, t = kma()
        _m("mpipe").mpipe_init(None, t, bytes_, 2, 2, flags, None, None, None)
    return f


def _z(kind):
    def f():
        Z, z = zn()
        a = Z.zalloc(z)
        if kind == "double":
            Z.zfree(z, a)
            Z.zfree(z, a)
        elif kind == "foreign":
            Z.zfree(z, a + 4)
        elif kind == "dead":
            Z.zfree(z, a)
            Z.zdestroy(z)
            Z.zalloc(z)
    return f


def _z_nodestroy():
    uk()
    Z = _m("zone")
    Z.zdestroy(Z.zinit("mis", 16, 8, 0))


def _z_grow_intr():
    Z, z = zn(0)
    err = []

    def h(x):
        try:
            Z.zalloc(z)
        except ValueError as e:
            err.append(e)

    intr.run_hard(h, 0)
    raise err[0]


def _z_flags():
    uk()
    Z = _m("zone")
    Z.zinit("mis", 16, 8, 0x80)


CASES = [
    # vmem
    ("vmem_create", "quantum not a power of two", ValueError, "vmem_create",
     lambda: _m("vmem").vmem_create("m", 0x1000, 0x1000, 24, 0, 2)),
    ("vmem_alloc", "size 0", ValueError, "vmem_alloc", lambda: (lambda V, a: V.vmem_alloc(a, 0, V.M_NOWAIT))(*vm())),
    ("vmem_alloc", "both M_WAITOK and M_NOWAIT", ValueError, "vmem_alloc",
     lambda: (lambda V, a: V.vmem_alloc(a, 16, V.M_NOWAIT | V.M_WAITOK))(*vm())),
    ("vmem_xalloc", "align not a power of two", ValueError, "vmem_xalloc",
     lambda: (lambda V, a: V.vmem_xalloc(a, 16, 48, 0, 0, 0, V.VMEM_ADDR_MAX, V.M_NOWAIT))(*vm())),
    ("vmem_xalloc", "phase >= align", ValueError, "vmem_xalloc",
     lambda: (lambda V, a: V.vmem_xalloc(a, 16, 32, 32, 0, 0, V.VMEM_ADDR_MAX, V.M_NOWAIT))(*vm())),
    ("vmem_xalloc", "nocross smaller than size", ValueError, "vmem_xalloc",
     lambda: (lambda V, a: V.vmem_xalloc(a, 64, 16, 0, 32, 0, V.VMEM_ADDR_MAX, V.M_NOWAIT))(*vm())),
    ("vmem_xalloc", "minaddr > maxaddr", ValueError, "vmem_xalloc",
     lambda: (lambda V, a: V.vmem_xalloc(a, 16, 16, 0, 0, 0x1800, 0x1000, V.M_NOWAIT))(*vm())),
    ("vmem_free", "double free", ValueError, "vmem_free", _vmem_double),
    ("vmem_free", "another size than allocated", ValueError, "vmem_free", _vmem_wrongsize),
    ("vmem_xfree", "a vmem_alloc segment (the other function)", ValueError, "vmem_xfree", _vmem_x_vs_plain),
    ("vmem_xfree", "an address never allocated", ValueError, "vmem_xfree", _vmem_xfree_foreign),
    ("vmem_add", "span overlapping an existing span", ValueError, "vmem_add",
     lambda: (lambda V, a: V.vmem_add(a, 0x1800, 0x1000, V.M_NOWAIT))(*vm())),
    ("vmem_size", "typemask neither VMEM_ALLOC nor VMEM_FREE nor VMEM_MAXFREE", ValueError, "vmem_size",
     lambda: (lambda V, a: V.vmem_size(a, 0x40))(*vm())),
    # uvm_km
    ("uvm_km_alloc", "flags without exactly one of WIRED/PAGEABLE/VAONLY", ValueError, "uvm_km_alloc",
     _uk_alloc(256, 0, lambda U: U.UVM_KMF_WIRED | U.UVM_KMF_VAONLY)),
    ("uvm_km_alloc", "size 0", ValueError, "uvm_km_alloc", _uk_alloc(0, 0, lambda U: U.UVM_KMF_WIRED)),
    ("uvm_km_alloc", "UVM_KMF_ZERO without WIRED", ValueError, "uvm_km_alloc",
     _uk_alloc(256, 0, lambda U: U.UVM_KMF_VAONLY | U.UVM_KMF_ZERO)),
    ("uvm_km_alloc", "align not a power-of-two multiple of PAGE_SIZE", ValueError, "uvm_km_alloc",
     _uk_alloc(256, 384, lambda U: U.UVM_KMF_WIRED)),
    ("uvm_km_alloc", "UVM_KMF_EXEC on a board without an executable region", ValueError, "uvm_km_alloc",
     _uk_alloc(256, 0, lambda U: U.UVM_KMF_WIRED | U.UVM_KMF_EXEC)),
    ("uvm_km_free", "another size than allocated", ValueError, "uvm_km_free", _uk_free("size")),
    ("uvm_km_free", "another type than allocated", ValueError, "uvm_km_free", _uk_free("type")),
    ("uvm_km_free", "an address inside an allocation", ValueError, "uvm_km_free", _uk_free("inside")),
    # pool
    ("pool_init", "item size 0", ValueError, "pool_init", lambda: _m("pool").pool_init(0, 8, 0, 0, "x", None, 0)),
    ("pool_init", "align not a power of two", ValueError, "pool_init",
     lambda: _m("pool").pool_init(16, 12, 0, 0, "x", None, 0)),
    ("pool_put", "double put", ValueError, "pool_put", _pool_put("double")),
    ("pool_put", "an address that is not an item", ValueError, "pool_put", _pool_put("foreign")),
    ("pool_get", "flags without PR_WAITOK or PR_NOWAIT", ValueError, "pool_get", _pool_get_flags),
    # pool_cache
    ("pool_cache_init", "item size 0", ValueError, "pool_init",
     lambda: _m("pool_cache").pool_cache_init(0, 8, 0, 0, "x", None, 0, None, None, None)),
    ("pool_cache_destruct_object", "an address that is not an item (reaches the pool)",
     ValueError, "pool_put", lambda: (lambda PC, c: [PC.pool_cache_invalidate(c), PC.pool_cache_destruct_object(c, 0x123)])(*pc())),
    # kmem
    ("kmem_alloc", "size 0", ValueError, "kmem_alloc", lambda: km().kmem_alloc(0, 2)),
    ("kmem_alloc", "flags neither KM_SLEEP nor KM_NOSLEEP", ValueError, "kmem_alloc", lambda: km().kmem_alloc(8, 0)),
    ("kmem_alloc", "from interrupt context (use kmem_intr_alloc)", ValueError, "kmem_alloc", _kmem_intr),
    ("kmem_free", "a size of another class", ValueError, "kmem_free", _kmem_free("class")),
    ("kmem_free", "None", ValueError, "kmem_free", _kmem_free("none")),
    ("kmem_free", "an address inside an item", ValueError, "kmem_free", _kmem_free("inside")),
    ("kmem_free", "double free (debug mode)", ValueError, "kmem_free", _kmem_debug("double")),
    ("kmem_free", "same class, another size (debug mode)", ValueError, "kmem_free", _kmem_debug("size")),
    ("kmem_free", "overflow into the redzone (debug mode)", ValueError, "kmem_free", _kmem_debug("redzone")),
    ("kmem_class", "size 0", ValueError, "kmem_class", lambda: km().kmem_class(0)),
    # extent
    ("extent_create", "end < start", ValueError, "extent_create",
     lambda: _m("extent").extent_create("x", 10, 5, None, 0, 0)),
    ("extent_alloc", "size 0", ValueError, "extent_alloc", _ex_alloc(0, 1, 0)),
    ("extent_alloc", "alignment not a power of two", ValueError, "extent_alloc", _ex_alloc(4, 3, 0)),
    ("extent_alloc", "boundary smaller than size", ValueError, "extent_alloc", _ex_alloc(16, 1, 8)),
    ("extent_alloc", "no space (EX_NOWAIT)", OSError, "extent_alloc", _ex_nospace),
    ("extent_alloc_subregion", "subend < substart", ValueError, "extent_alloc_subregion", _ex_sub_bad),
    ("extent_alloc_region", "range busy: names the owner", OSError, "extent_alloc_region", _ex_region_busy),
    ("extent_alloc_region", "range outside the extent", ValueError, "extent_alloc_region", _ex_outside),
    ("extent_free", "a range no region covers", ValueError, "extent_free", _ex_free_unclaimed),
    ("extent_free", "owner other than the claim's", ValueError, "extent_free", _ex_free_owner),
    # kmalloc
    ("MALLOC_DEFINE", "empty shortdesc", ValueError, "MALLOC_DEFINE", lambda: _m("kmalloc").MALLOC_DEFINE("")),
    ("MALLOC_DEFINE", "negative limit", ValueError, "MALLOC_DEFINE", lambda: _m("kmalloc").MALLOC_DEFINE("x", "", -1)),
    ("kmalloc", "flags with both M_WAITOK and M_RNOWAIT", ValueError, "kmalloc", _kmalloc_flags),
    ("kmalloc", "past the type's limit without M_NULLOK", RuntimeError, "kmalloc", _kmalloc_limit),
    ("kmalloc", "a destroyed type", ValueError, "kmalloc", _kmalloc_dead),
    ("kmalloc_destroy", "type with live allocations", ValueError, "kmalloc_destroy", _kmalloc_destroy_busy),
    ("kfree", "double free", ValueError, "kfree", _kfree("double")),
    ("kfree", "another malloc type", ValueError, "kfree", _kfree("type")),
    ("kfree", "NULL", ValueError, "kfree", _kfree("null")),
    ("kfree", "an address inside a block", ValueError, "kfree", _kfree("inside")),
    ("krealloc", "M_ZERO", ValueError, "krealloc", _krealloc_zero),
    # objcache
    ("objcache_get", "M_ZERO", ValueError, "objcache_get", _oc("zero")),
    ("objcache_get", "flags without M_WAITOK / M_NOWAIT", ValueError, "objcache_get", _oc("flags")),
    ("objcache_get", "after objcache_destroy", ValueError, "objcache_get", _oc("dead")),
    ("objcache_put", "None", ValueError, "objcache_put", _oc("none")),
    ("objcache_put", "double put (objcache_debug)", ValueError, "objcache_put", _oc_debug_double),
    # mpipe
    ("mpipe_init", "bytes 0", ValueError, "mpipe_init", _mp_init(0, 0)),
    ("mpipe_init", "unknown flags", ValueError, "mpipe_init", _mp_init(8, 0x80)),
    ("mpipe_free", "double free", ValueError, "mpipe_free", _mp("double")),
    ("mpipe_free", "a buffer not from this pipeline", ValueError, "mpipe_free", _mp("foreign")),
    ("mpipe_alloc_nowait", "after mpipe_done", ValueError, "mpipe_alloc_nowait", _mp("done")),
    ("mpipe_done", "buffers still out", ValueError, "mpipe_done", _mp("busy")),
    # zone
    ("zinit", "unknown flags", ValueError, "zinitna", _z_flags),
    ("zfree", "double free", ValueError, "zfree", _z("double")),
    ("zfree", "an address that is not an item", ValueError, "zfree", _z("foreign")),
    ("zalloc", "after zdestroy", ValueError, "zalloc", _z("dead")),
    ("zalloc", "growable zone from an interrupt handler", ValueError, "zalloc", _z_grow_intr),
    ("zdestroy", "zone without ZONE_DESTROYABLE", ValueError, "zdestroy", _z_nodestroy),
]

# Public functions with no row yet, and why. The document lists them as such.
UNCATALOGUED = {
    "const": "MicroPython's const() fallback on CPython, not an allocator function",
}


def _params():
    # a 6th element names a bug reported and not fixed yet: strict xfail until it is
    return [pytest.param(c[:5], id="%s-%d" % (c[0], i),
                         marks=[pytest.mark.xfail(strict=True, reason=c[5])] if len(c) > 5 else [])
            for i, c in enumerate(CASES)]


@pytest.mark.parametrize("case", _params())
def test_misuse(case):
    fn, what, exc, start, call = case
    with pytest.raises(exc) as ei:
        call()
    # OSError(EAGAIN, ...) is BlockingIOError on CPython, OSError on MicroPython
    assert type(ei.value) is exc or exc is OSError, "%s: %s raised %r" % (fn, what, ei.value)
    msg = str(ei.value.args[1] if isinstance(ei.value, OSError) and len(ei.value.args) > 1 else ei.value)
    assert msg.startswith(start), "%s (%s): message %r does not start with %r" % (fn, what, msg, start)


def public_functions():
    import inspect

    out = []
    for m in MODULES:
        mod = _m(m)
        for n, v in vars(mod).items():
            if not n.startswith("_") and inspect.isfunction(v) and v.__module__ == mod.__name__:
                out.append((m, n))
    return out


def render():
    lines = [
        "# Misuse catalogue",
        "",
        "Every bad input the allocators refuse, with the exception and the start of its",
        "message (the function name, docs/DEVELOPING.md). Generated from",
        "`tests/host/test_fuzz_misuse.py` (CASES), where each row is a test; regenerate with",
        "`.venv/bin/python tests/host/test_fuzz_misuse.py --write`.",
        "",
        "On interrupt paths (heap locked) the same misuse raises a preallocated exception",
        "with the same type and message start; `tests/device/test_replay.py` checks that",
        "under `micropython.heap_lock` (pool_put, kmem_intr_free, kfree, kmalloc, zfree,",
        "zalloc, mpipe_free, objcache_get/put; vmem_free/xfree still give MemoryError there:",
        "a known bug, mpfuzz.KNOWN). Extent failures extent(9) reports with an errno are",
        "`OSError(errno, message)` (EAGAIN: no space or busy; ENOMEM: no descriptor).",
        "",
    ]
    by = {}
    for c in CASES:
        by.setdefault(c[0], []).append(c)
    covered = set(by)
    for m in MODULES:
        fns = [n for mm, n in public_functions() if mm == m]
        rows = [c for f in fns for c in by.get(f, [])]
        rows += [c for c in CASES if c[0] not in fns and _module_of(c[0]) == m]
        lines.append("## %s" % m)
        lines.append("")
        if rows:
            lines.append("| function | misuse | exception | message starts |")
            lines.append("|---|---|---|---|")
            for c in rows:
                fn, what, exc, start = c[:4]
                if len(c) > 5:
                    what += " **(known bug, not refused yet: %s)**" % c[5]
                lines.append("| `%s` | %s | `%s` | `%s` |" % (fn, what, exc.__name__, start))
            lines.append("")
        rest = [n for n in fns if n not in covered and n not in UNCATALOGUED]
        if rest:
            lines.append("Not catalogued yet: " + ", ".join("`%s`" % n for n in rest) + ".")
            lines.append("")
    n = len(CASES)
    k = sum(1 for c in CASES if len(c) > 5)
    lines.append("%d misuse cases, each tested (%d of them known bugs, tested as expected failures)." % (n, k))
    return "\n".join(lines) + "\n"


def _module_of(fn):
    for m, n in public_functions():
        if n == fn:
            return m
    return None


def test_catalogue_is_current():
    with open(DOC) as f:
        assert f.read() == render(), "docs/MISUSE.md is stale: python tests/host/test_fuzz_misuse.py --write"


def test_every_catalogued_function_exists():
    names = {n for _, n in public_functions()}
    for c in CASES:
        assert c[0] in names, c[0]


if __name__ == "__main__":
    if "--write" in sys.argv:
        with open(DOC, "w") as f:
            f.write(render())
    else:
        sys.stdout.write(render())
