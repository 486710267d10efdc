# kmem_native: kmem's hot paths (kmem_alloc/free, kmem_intr_alloc/free of sizes
# up to 1024) as @micropython.viper code.
#
# Same representation, invariants and locking as kmem.py (its header); this
# module holds kmem's globals as bind() gave them (kmem calls it again when
# kmem_init/kmem_reset or intr.setup rebind them) and changes only _own's
# bytes, as the bytecode hit does. Everything but the hit (argument errors,
# first use of a class, large sizes, debug mode, misuse) is kmem.py's own
# _alloc_slow / _free_other, so both paths share them. kmem._bind() loads this
# module where the runtime compiles viper code (unix x64, rp2 armv6m, esp32
# xtensawin); elsewhere (CPython, webassembly, micro:bit 1.9.2, an .mpy made
# without -march) the import fails and the bytecode functions stay.
#
# Arguments are compared as objects before any is taken as a machine int
# (0 < size <= 1024, kmem._base <= p < kmem._base + kmem._olim), so a huge int
# is never truncated into a small one; a float or str raises the interpreter's
# TypeError before anything changes (the documented exception of the hit paths).
# Interrupts: the same argument as pool_cache_native.py: no bytecode jump, so a
# scheduled callback lands before or after, never inside; a hard IRQ may land
# anywhere, and the _own byte of an item is only written by its owner.
# Nothing here allocates: small ints and the objects kmem's lists hold.
import micropython
from mpalloc.native import switch  # noqa: F401  (read by kmem._native_bind)
from mpalloc import pool_cache as _pc
from mpalloc import intr as _intr

_N = None
_Z = 0  # objects for the comparisons (a viper literal would be a machine int)
_MAX = 1024
_K1 = 1  # KM_SLEEP, KM_NOSLEEP
_K2 = 2
_hd = None  # bound by bind(): kmem's globals of the same names
_tab = None
_ac = None
_caches = None
_own = None
_base = None
_olim = None
_thr = None
_alloc_slow = None
_free_other = None
_E_INTR = None
_E_FREE_INTR = None


def bind(g):
    """Take kmem's tables, mode, errors and slow paths (g: its globals())."""
    global _hd, _tab, _ac, _caches, _own, _base, _olim, _thr, _alloc_slow, _free_other, _E_INTR, _E_FREE_INTR
    _own = g["_own"]
    _base = g["_base"]
    _olim = g["_olim"]
    _thr = g["_thr"]
    _hd = g["_hd"]
    _tab = g["_tab"]
    _ac = g["_ac"]
    _caches = g["_caches"]
    _alloc_slow = g["_alloc_slow"]
    _free_other = g["_free_other"]
    _E_INTR = g["E_INTR"]
    _E_FREE_INTR = g["E_FREE_INTR"]


@micropython.viper
def kmem_intr_alloc(size, kmflags):
    if size > _Z and size <= _MAX and (kmflags == _K2 or kmflags == _K1):
        i = int(ptr8(_tab)[(int(size) - 1) >> 3])
        pc = _ac[i]
        if pc:
            p = _pc.pool_cache_get(pc, kmflags)
            if p:
                o = int(p) - int(_base)
                ptr8(_own)[o >> 4] = (i + 1) | ((o & 8) << 4)
            return p
    return _alloc_slow(size, kmflags)


@micropython.viper
def kmem_alloc(size, kmflags):
    if int(_hd[0]) or (_thr and _intr.cpu_intr_p()):
        raise _E_INTR
    if size > _Z and size <= _MAX and (kmflags == _K2 or kmflags == _K1):
        i = int(ptr8(_tab)[(int(size) - 1) >> 3])
        pc = _ac[i]
        if pc:
            p = _pc.pool_cache_get(pc, kmflags)
            if p:
                o = int(p) - int(_base)
                ptr8(_own)[o >> 4] = (i + 1) | ((o & 8) << 4)
            return p
    return _alloc_slow(size, kmflags)


@micropython.viper
def kmem_intr_free(p, size):
    if size > _Z and size <= _MAX and p is not _N:
        b = _base
        if p >= b and p < b + _olim:
            o = int(p) - int(b)
            i = int(ptr8(_tab)[(int(size) - 1) >> 3])
            if i and (o & 7) == 0:
                own = ptr8(_own)
                if own[o >> 4] == (i + 1) | ((o & 8) << 4):
                    own[o >> 4] = 0
                    _pc.pool_cache_put(_caches[i], p)
                    return None
    _free_other(p, size)
    return None


@micropython.viper
def kmem_free(p, size):
    if int(_hd[0]) or (_thr and _intr.cpu_intr_p()):
        raise _E_FREE_INTR
    if size > _Z and size <= _MAX and p is not _N:
        b = _base
        if p >= b and p < b + _olim:
            o = int(p) - int(b)
            i = int(ptr8(_tab)[(int(size) - 1) >> 3])
            if i and (o & 7) == 0:
                own = ptr8(_own)
                if own[o >> 4] == (i + 1) | ((o & 8) << 4):
                    own[o >> 4] = 0
                    _pc.pool_cache_put(_caches[i], p)
                    return None
    _free_other(p, size)
    return None
