# kmem: kmem(9), memory of any size: size-class pool caches and uvm_km pages.
#
#   p = kmem_alloc(size, KM_NOSLEEP)     # an int address, or None
#   kmem_free(p, size)                   # the same size
#   kmem_intr_alloc / kmem_intr_zalloc / kmem_intr_free from interrupt handlers
#
# The caller gets an int address of at least `size` bytes, 8-aligned (bytes:
# mem.buf(p, size), or mem.ram[p - mem.base + i] from a handler). Sizes up to
# 1024 come from the pool caches kmem-00008 .. kmem-01024 (NetBSD's classes);
# larger ones are whole pages of uvm_km's kernel_map (UVM_KMF_WIRED).
#
# Representation: _tab[(size - 1) >> 3] is the class index of a small size;
# _caches[i] its pool_cache (None until first use), _ac[i] the same where a
# kmem_alloc hit may use it (None until made, and while debug mode is on);
# _dcaches the debug caches (kmem_dbg.py); _large counts the page
# allocations. _own, one byte per 16 bytes of kernel_map from _base (made by
# kmem_init, kept by kmem_reset), is (1 + the class index) | (bit 3 of the
# offset) << 4 for the live item of class >= 16 starting there, else 0.
# Invariants: an item is out of exactly one class cache (the class of the size
# it was asked with, or its debug class); an item of class i >= 1 (16 bytes and
# up: one item at most per 16 bytes) is handed out and not freed iff its _own
# byte says so; class 8 (two items a byte) and debug items are checked through
# pool's lookup. Only an item's owner writes its byte (alloc after the get,
# free before the put): no read-modify-write, no lock needed for it.
# Locking: kmem holds no lock of its own; the class caches and uvm_km take
# theirs. kmem_alloc/zalloc/free refuse interrupt context (kmem_intr_*).
#
# Failure and misuse: KM_NOSLEEP returns None; KM_SLEEP never does (where
# nothing can be freed it raises MemoryError). kmem_free refuses an address
# that is no live item of the size's class (another class, inside an item,
# never allocated, already freed: in a magazine or back in its pool) naming the
# address and both sizes (kmem_cold.py), and a small item freed with a large
# size (uvm_km records pool pages apart). The same class with another size is
# only caught in debug mode.
#
# Hot path: kmem_alloc/kmem_free (and kmem_intr_*) of size <= 1024 with
# KM_NOSLEEP/KM_SLEEP: the size's class, the pool_cache get/put, the _own
# byte; nothing allocated in steady state (a magazine hit, or a pool item when
# the class has pages), debug mode on or off. A class cache is made on first
# use (allocates: kmem_init(True) at start-up if a handler may be first).
# Misuse with the heap locked raises preallocated E_FREE / E_UAF (address in
# kmem_lasterr[0]). Misuse messages: kmem_cold.py (lazy.unload).
#
# Debug mode (kmem_debug(True); mpalloc.debug.on(); kmem_reset() keeps what
# mpalloc.debug says): kmem_dbg.py, loaded when it is first switched on, kept.
import sys

from mpalloc.compat import const
from mpalloc import intr
from mpalloc import lazy
from mpalloc import mem as _mem  # at import: an import statement in a function allocates
from mpalloc import pool as _pool
from mpalloc import pool_cache as _pc
from mpalloc import uvm_km

KM_SLEEP = const(0x1)
KM_NOSLEEP = const(0x2)

_MAXSMALL = const(1024)
# pool_cache's _META slot (pc[8]); MicroPython keeps no module attribute for an
# underscore const(), so pool_cache._META does not exist there
_PCMETA = const(8)
_NCL = const(22)  # len(_CLASSES)

_CLASSES = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256,
            320, 384, 448, 512, 768, 1024)

kmem_lasterr = [0, 0]
E_INTR = ValueError("kmem_alloc: not from interrupt context (use kmem_intr_alloc)")
E_FREE_INTR = ValueError("kmem_free: not from interrupt context (use kmem_intr_free)")
E_FREE = ValueError("kmem_free: misuse with the heap locked (address in kmem.kmem_lasterr)")
E_UAF = ValueError("kmem_alloc: use after free found with the heap locked (address in kmem.kmem_lasterr)")
E_ARG = ValueError("kmem_alloc: size must be > 0 (and <= 2**40) and flags exactly one of KM_SLEEP, KM_NOSLEEP")
E_FREE_TYPE = TypeError("kmem_free: address and size must be ints")
_SIZE_LIMIT = const(1 << 40)

_tab = bytearray(_MAXSMALL // 8)  # (size - 1) >> 3 -> class index (_setup)
_caches = []
_ac = [None] * _NCL
_dcaches = []
_debug = [False]
_large = [0, 0, 0]  # inuse bytes, nalloc, nfree
_own = bytearray(0)
_base = 0
_olim = 0  # bytes of kernel_map _own covers
_hd = intr._hard_depth  # [0] > 0: in run_hard's handler (every mode but MODE_THREAD)
_thr = False  # MODE_THREAD: interrupt context is the thread's (intr.cpu_intr_p)
_dbg = None  # kmem_dbg, once debug mode was switched on


def _cold():
    # kmem_cold, imported on first use (thread context: with the heap locked the
    # list below raises MemoryError before any import is tried)
    [0]
    from mpalloc import kmem_cold

    return kmem_cold


_PC_SETUP = ("pool_cache_setup", "pool_setup")  # what pool_cache's set-up and statistics load


def _cache(i, dbg):
    # The cache of class i, made on first use (allocates: kmem_init(True) makes
    # them all up front for boards that allocate from interrupts first).
    cs = _dcaches if dbg else _caches
    pc = cs[i]
    if pc is None:
        c = _CLASSES[i] if i < _NCL else 1360  # debug class _NCL: 1019..1024 bytes + trailer
        pc = _pc.pool_cache_init(c, 8, 0, 0, ("kmem-dbg-%05d" if dbg else "kmem-%05d") % c, None,
                                 _pool.IPL_VM, None, None, None)
        cs[i] = pc
        if not dbg and not _debug[0]:
            _ac[i] = pc
    return pc


def _setup(fn, all_classes):
    # kmem_init's work; fn names the caller in the error.
    global _base, _own, _olim
    if not _caches:
        if uvm_km.kernel_map is None:
            raise ValueError(fn + ": uvm_km has no kernel_map (call uvm_km_bootstrap first)")
        j = 0
        for i in range(len(_tab)):
            while _CLASSES[j] < (i + 1) * 8:
                j += 1
            _tab[i] = j
        mi = uvm_km._maps[id(uvm_km.kernel_map)]
        _base = mi.lo
        n = (mi.hi - mi.lo + 15) >> 4  # one byte per 16 bytes of kernel_map
        if len(_own) < n:
            _own = None
            _own = bytearray(n)
        else:  # the last map again (kmem_reset keeps it: no new hole per window on a small heap)
            for i in range(n):
                _own[i] = 0
        _olim = n * 16
        _bind()
        for _ in _CLASSES:
            _caches.append(None)
    if all_classes:
        lazy.hold()  # pool_cache's set-up module loaded once for all classes
        try:
            for i in range(_NCL):
                _cache(i, False)
            if _debug[0]:
                for i in range(_NCL + 1):
                    _cache(i, True)
        finally:
            lazy.release(_PC_SETUP)


def kmem_init(all_classes=False):
    """Set up the class table; with all_classes make every class cache now
    (and every debug cache too while debug mode is on)."""
    # => thread context (allocates), at start-up (before handlers allocate).
    _setup("kmem_init", all_classes)


def kmem_reset():
    """Forget the caches (tests, after uvm_km_bootstrap made a new kernel_map).
    Debug mode is then what mpalloc.debug says (off when it was never loaded)."""
    # => thread context (allocates); no kmem allocation out that will still be freed.
    global _olim
    for pc in _caches + _dcaches:
        if pc is None:
            continue
        if pc in _pc.pool_cache_list:
            _pc.pool_cache_list.remove(pc)
        pp = _pc.pool_cache_pool(pc)
        if pp in _pool.pool_list:
            _pool.pool_list.remove(pp)
    del _caches[:]
    del _dcaches[:]
    for i in range(_NCL):
        _ac[i] = None
    _olim = 0  # _own kept for the next kernel_map
    _bind()
    _large[0] = _large[1] = _large[2] = 0
    d = sys.modules.get("mpalloc.debug") or sys.modules.get("mpalloc_debug")
    kmem_debug(d is not None and d.enabled())


def kmem_debug(on):
    """Switch debug mode (redzones, size check, poisoning, double free) on or off."""
    # => thread context; allocations made before keep their mode.
    global _dbg
    if on and not _dcaches:
        if _dbg is None:
            from mpalloc import kmem_dbg

            _dbg = kmem_dbg
        for i in range(_NCL + 1):
            _dcaches.append(None)
    _debug[0] = bool(on)
    for i in range(len(_caches)):
        _ac[i] = None if on else _caches[i]


def kmem_alloc(size, kmflags):
    # => thread context (interrupt: ValueError E_INTR, use kmem_intr_alloc). 0 < size <= 2**40;
    # => kmflags KM_SLEEP or KM_NOSLEEP. failure: None (KM_NOSLEEP); KM_SLEEP: MemoryError.
    # Hot path (frame within 11 words, see pool_cache_get); kmem_intr_alloc's body.
    if _hd[0] or _thr and intr.cpu_intr_p():
        raise E_INTR
    if 0 < size <= _MAXSMALL and (kmflags == KM_NOSLEEP or kmflags == KM_SLEEP):
        i = _tab[(size - 1) >> 3]
        pc = _ac[i]
        if pc is not None:
            p = _pc.pool_cache_get(pc, kmflags)
            if p is not None:
                p -= _base
                _own[p >> 4] = i + 1 | (p & 8) << 4
                p += _base
            return p
    return _alloc_slow(size, kmflags)


def kmem_zalloc(size, kmflags):
    # => as kmem_alloc; the bytes are zero.
    if _hd[0] or _thr and intr.cpu_intr_p():
        raise E_INTR
    return kmem_intr_zalloc(size, kmflags)


def kmem_free(p, size):
    # => thread context (interrupt: ValueError E_FREE_INTR, use kmem_intr_free); p, size: an
    # => allocation and the size it was asked with. Misuse: ValueError naming address and sizes.
    # Hot path: kmem_intr_free's body.
    if _hd[0] or _thr and intr.cpu_intr_p():
        raise E_FREE_INTR
    if 0 < size <= _MAXSMALL and p is not None:
        i = _tab[(size - 1) >> 3]
        o = p - _base
        if i and not o & 7 and 0 <= o < _olim and _own[o >> 4] == i + 1 | (o & 8) << 4:
            _own[o >> 4] = 0
            _pc.pool_cache_put(_caches[i], p)
            return
    _free_other(p, size)


def kmem_intr_alloc(size, kmflags):
    """size bytes (uninitialised) or None (KM_NOSLEEP)."""
    # => any context (size <= 1024, KM_NOSLEEP: no heap in steady state); kmem_alloc's
    # => arguments. failure: None (KM_NOSLEEP).
    if 0 < size <= _MAXSMALL and (kmflags == KM_NOSLEEP or kmflags == KM_SLEEP):
        i = _tab[(size - 1) >> 3]
        pc = _ac[i]
        if pc is not None:
            p = _pc.pool_cache_get(pc, kmflags)
            if p is not None:
                p -= _base
                _own[p >> 4] = i + 1 | (p & 8) << 4
                p += _base
            return p
    return _alloc_slow(size, kmflags)


def kmem_intr_zalloc(size, kmflags):
    # => as kmem_intr_alloc; the bytes are zero.
    p = kmem_intr_alloc(size, kmflags)
    if p is not None:
        _fill(p, 0, size, 0)
    return p


def kmem_intr_free(p, size):
    """Free p, allocated with this size."""
    # => any context; as kmem_free (heap locked: preallocated E_FREE, kmem_lasterr).
    if 0 < size <= _MAXSMALL and p is not None:
        i = _tab[(size - 1) >> 3]
        o = p - _base
        if i and not o & 7 and 0 <= o < _olim and _own[o >> 4] == i + 1 | (o & 8) << 4:
            _own[o >> 4] = 0
            _pc.pool_cache_put(_caches[i], p)
            return
    _free_other(p, size)


def _alloc_slow(size, kmflags):
    # Everything but a small hit: argument checks, set-up and a class's first
    # cache, large sizes, debug mode, flags given as other ints.
    f = kmflags & 3 | size & 0  # ints only: a float, str, None... raises here, before any lock
    if size <= 0 or f == 0 or f == 3 or size > _SIZE_LIMIT:
        raise E_ARG
    if not _caches:
        _setup("kmem_alloc", False)
    if size > _MAXSMALL:
        return _large_alloc(size, kmflags)
    if _debug[0]:
        return _dbg.alloc(size, f)
    i = _tab[(size - 1) >> 3]
    p = _pc.pool_cache_get(_cache(i, False), f)
    if p is not None:
        p -= _base
        _own[p >> 4] = i + 1 | (p & 8) << 4
        p += _base
    return p


def _fill(p, o, n, b):
    # n bytes b from p + o (no heap: a frame within 11 words, no slice).
    o += p - _mem.base
    p = _mem.ram
    for n in range(o, o + n):  # n: the count, then the index
        p[n] = b


def _large_alloc(size, kmflags):
    f = uvm_km.UVM_KMF_WIRED
    if kmflags & KM_NOSLEEP:
        f |= uvm_km.UVM_KMF_NOWAIT | uvm_km.UVM_KMF_CANFAIL
    p = uvm_km.uvm_km_alloc(uvm_km.kernel_map, size, 0, f)
    if not p:
        if kmflags & KM_SLEEP:
            raise MemoryError("kmem_alloc: no %d bytes in kernel_map (KM_SLEEP cannot wait here)" % size)
        return None
    ps = uvm_km.PAGE_SIZE
    _large[0] += (size + ps - 1) & -ps
    _large[1] += 1
    return p


def _owns(pc, p):
    # pool._item_index's code for p in class cache pc's pool: >= 0 when p is an item
    # handed out (in use or in a magazine); < 0 (pool's _NOT_ITEM: another
    # class, inside an item, never allocated; _ALREADY_FREE: back in the
    # pool; _NOT_INT) otherwise.
    pc = pc[_PCMETA].pp
    s = intr.mutex_enter(pc.lock)
    p = _pool._item_index(pc, p)
    intr.mutex_exit(pc.lock, s)
    return p


def _free_other(p, size):
    # kmem_intr_free of debug-mode items, large sizes and misuse.
    if p is None:
        _free_err(p, size)
    if type(p) is not int or type(size) is not int:
        _free_err(p, size, E_FREE_TYPE)
    if size <= 0:
        _free_err(p, size)
    if size > _MAXSMALL:
        _large_free(p, size)
        return
    if _dcaches and _dbg.free(p, size):
        return
    p0 = _caches[0] if size <= 8 and _caches else None  # class 8: pool's lookup (no _own byte)
    if p0 is not None and _owns(p0, p) >= 0:
        _pc.pool_cache_put(p0, p)
        return
    _free_err(p, size)


def _large_free(p, size):
    # uvm_km refuses another size, an address it never returned and a pool
    # page (a small item freed with a large size); its message (or, with the
    # heap locked, the failure to build one) becomes kmem_free's.
    try:
        uvm_km.uvm_km_free(uvm_km.kernel_map, p, size, uvm_km.UVM_KMF_WIRED)
    except Exception as e:  # one class: an except tuple would be built (heap)
        _free_err(p, size, e)
    p = uvm_km.PAGE_SIZE
    _large[0] -= (size + p - 1) & -p
    _large[2] += 1


def _free_err(p, size, e=None):
    # kmem_free misuse: raise with a message naming the address and both
    # sizes (kmem_cold), or the preallocated E_FREE (E_FREE_TYPE for a type)
    # where the heap cannot hold a message.
    kmem_lasterr[0] = p
    kmem_lasterr[1] = size
    try:
        e = _cold().free_error(p, size, e)
        lazy.unload("kmem_cold")
    except MemoryError:
        raise E_FREE_TYPE if e is E_FREE_TYPE else E_FREE
    raise e


def kmem_roundup_size(size):
    # => any context; size an int.
    if not isinstance(size, int):
        raise TypeError("kmem_roundup_size: size must be an int, not %s" % type(size).__name__)
    return (size + 7) & -8


def kmem_class(size):
    """The class size that serves a request of size bytes (0: from uvm_km)."""
    # => any context; size an int.
    if not isinstance(size, int):
        raise TypeError("kmem_class: size must be an int, not %s" % type(size).__name__)
    if size <= 0:
        raise ValueError("kmem_class: size %d" % size)
    if size > _MAXSMALL:
        return 0
    if not _caches:
        _setup("kmem_class", False)
    return _CLASSES[_tab[(size - 1) >> 3]]


def kmem_stats():
    # => thread context (allocates).
    cl = []
    lazy.hold()  # pool_cache's statistics module loaded once for all classes
    try:
        for pc in _caches + _dcaches:
            if pc is None:
                continue
            st = _pc.pool_cache_stats(pc)
            na = nf = 0
            for c in st["cpus"]:
                na += c["nget"]
                nf += c["nput"]
            cl.append({"size": st["size"], "cache": st["name"], "inuse": na - nf, "nalloc": na, "nfree": nf})
    finally:
        lazy.release(_PC_SETUP)
    return {"classes": cl, "large": {"inuse_bytes": _large[0], "nalloc": _large[1], "nfree": _large[2]},
            "debug": _debug[0]}


# -- native hot paths (kmem_native.py) -------------------------------------
# As pool_cache.py's: mpalloc.native.switch[0] (1: native where the runtime
# compiles viper code, the default; 0: bytecode, mpalloc.native.off()), read
# through the loaded module. _nat: that module, None before the first try,
# False where it cannot load (CPython, webassembly, micro:bit). Loaded by
# __import__ so that the flat filesystem's dependency scan (micro:bit) does
# not copy it there. _bc: the bytecode hot functions.
_nat = None
_bc = (kmem_alloc, kmem_free, kmem_intr_alloc, kmem_intr_free)


def _native_load():
    import sys

    if not (getattr(sys.implementation, "_mpy", 0) >> 10) & 0x0F:
        return False  # no native arch in this firmware (pool._native_load)
    n = sys.modules.get("mpalloc.native")
    if n is not None and not n.switch[0]:
        return None  # switched off before the first bind: not loaded (native.on() tries again)
    try:
        import gc

        gc.collect()
        m = __import__("mpalloc.kmem_native", None, None, ("bind",))
        gc.collect()
        return m
    except (ImportError, SyntaxError, NotImplementedError, ValueError, MemoryError):
        # no module, no emitter, an .mpy of another arch (ValueError), no room
        return False


def _bind():
    # kmem_alloc, kmem_free, kmem_intr_alloc, kmem_intr_free: the native ones
    # where they load and the switch is on, else the bytecode ones.
    # => thread context; no kmem call under way.
    global _nat, kmem_alloc, kmem_free, kmem_intr_alloc, kmem_intr_free
    if _nat is None:
        _nat = _native_load()
    if _nat and _nat.switch[0]:
        _nat.bind(globals())
        kmem_alloc, kmem_free = _nat.kmem_alloc, _nat.kmem_free
        kmem_intr_alloc, kmem_intr_free = _nat.kmem_intr_alloc, _nat.kmem_intr_free
    else:
        kmem_alloc, kmem_free, kmem_intr_alloc, kmem_intr_free = _bc


def native_path():
    """'native' if the hot functions bound now are kmem_native's, else 'bytecode'."""
    # => any context.
    return "native" if _nat and kmem_alloc is _nat.kmem_alloc else "bytecode"


def _sync():
    # intr.setup() chose a mode: MODE_THREAD's interrupt test, and the native
    # functions take the new value
    global _thr
    _thr = intr.mode == intr.MODE_THREAD
    _bind()


_sync()
intr._on_setup.append(_sync)
