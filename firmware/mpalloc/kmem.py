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
# _caches[i] its pool_cache (None until first use), _dcaches[i] the debug
# one; _large counts the page allocations. Nothing else is kept: an item's
# class is found again from the size kmem_free is given.
# Invariants: an item is out of exactly one class cache (the class of the
# size it was asked with, or its debug class); a debug item ends in a trailer
# [redzone 0xFE .. ][2-byte magic][2-byte size], magic 0xC0DE while live and
# 0xDEAD (item poisoned with 0xDB) once freed.
# Locking: kmem holds no lock of its own; the class caches and uvm_km take
# theirs. kmem_alloc/zalloc/free refuse interrupt context (kmem_intr_*).
#
# Failure and misuse: KM_NOSLEEP returns None; KM_SLEEP never does (where
# nothing can be freed it raises MemoryError). kmem_free refuses an address
# that is no item of the size's class (another class, inside an item, never
# allocated, already back in its pool) naming the address and both sizes, and
# a small item freed with a large size (uvm_km records pool pages apart). The
# same class with another size, and a double free of an item still in a
# magazine, are only caught in debug mode.
#
# Hot path: kmem_intr_alloc(size <= 1024, KM_NOSLEEP) and kmem_intr_free
# allocate nothing from the heap in steady state (a magazine hit, or a pool
# item when the class has pages), debug mode on or off; a class cache is made
# on first use (allocates: kmem_init(True) at start-up if a handler may be
# first). Misuse with the heap locked raises preallocated E_FREE / E_UAF, the
# address in kmem_lasterr[0].
#
# Debug mode (kmem_debug(True); mpalloc.debug.on(); kmem_reset() keeps what
# mpalloc.debug says): allocations up to 1024 bytes come from kmem-dbg-NNNNN
# (the class of size + 6, or 1360 for 1019..1024 bytes); kmem_free checks
# magic (double free), size and redzone (overflow) and poisons; the next
# allocation of the item checks the poison (use after free). Items allocated
# before it was switched on are freed unchecked; debug items stay checked.
from mpalloc.compat import const, fail


import sys

from mpalloc import intr
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
_DBG = const(6)  # debug: >= 2 redzone bytes + magic + size
_NCL = const(22)  # len(_CLASSES)
_DBGTOP = const(1360)  # debug class _NCL: 1019..1024 bytes + trailer (3 to a 4 KB page)
_LIVE = const(0xC0DE)
_FREED = const(0xDEAD)
_RZ = const(0xFE)
_POISON = const(0xDB)

_CLASSES = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256,
            320, 384, 448, 512, 768, 1024)

kmem_lasterr = [0, 0]
E_INTR = ValueError("kmem_alloc: not from interrupt context (use kmem_intr_alloc)")
E_FREE_INTR = ValueError("kmem_free: not from interrupt context (use kmem_intr_free)")
E_FREE = ValueError("kmem_free: misuse with the heap locked (address in kmem.kmem_lasterr)")
E_UAF = ValueError("kmem_alloc: use after free found with the heap locked (address in kmem.kmem_lasterr)")
E_ARG = ValueError("kmem_alloc: size must be > 0 (and <= 2**40) and flags exactly one of KM_SLEEP, KM_NOSLEEP")
E_TYPE = TypeError("kmem_alloc: size and kmflags must be ints")
E_FREE_TYPE = TypeError("kmem_free: address and size must be ints")
_SIZE_LIMIT = const(1 << 40)
_NOT_ITEM = const(-1)  # pool._item_index's codes (pool's consts of the same names)
_ALREADY_FREE = const(-2)

_tab = bytearray(_MAXSMALL // 8)  # (size - 1) >> 3 -> class index
# Class index -> pool_cache (None until first use). _dcaches: the debug caches,
# _NCL + 1 of them (the last one of class _DBGTOP); empty until debug mode was
# first switched on, and kept after it is switched off (its items stay checked).
_caches = []
_dcaches = []
_debug = [False]
_large = [0, 0, 0]  # inuse bytes, nalloc, nfree


def _init(fn):
    if _caches:
        return
    if uvm_km.kernel_map is None:
        raise ValueError(fn + ": uvm_km has no kernel_map (call uvm_km_bootstrap first)")
    j = 0
    for i in range(len(_tab)):
        while _CLASSES[j] < (i + 1) * 8:
            j += 1
        _tab[i] = j
    for c in _CLASSES:
        _caches.append(None)


def _cache(i, dbg):
    # The cache of class i, made on first use (allocates: kmem_init(True) makes
    # them all up front for boards that allocate from interrupts first).
    cs = _dcaches if dbg else _caches
    pc = cs[i]
    if pc is None:
        c = _CLASSES[i] if i < _NCL else _DBGTOP
        pc = _pc.pool_cache_init(c, 8, 0, 0, ("kmem-dbg-%05d" if dbg else "kmem-%05d") % c, None,
                                 _pool.IPL_VM, None, None, None)
        cs[i] = pc
    return pc


def kmem_init(all_classes=False):
    """Set up the class table; with all_classes make every class cache now
    (and every debug cache too while debug mode is on)."""
    # => thread context (allocates), at start-up (before handlers allocate).
    _init("kmem_init")
    if all_classes:
        for i in range(_NCL):
            _cache(i, False)
        if _debug[0]:
            for i in range(_NCL + 1):
                _cache(i, True)


def kmem_reset():
    """Forget the caches (tests, after uvm_km_bootstrap made a new kernel_map).
    Debug mode is then what mpalloc.debug says (off when it was never loaded)."""
    # => thread context (allocates); no kmem allocation out that will still be freed.
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
    _large[0] = _large[1] = _large[2] = 0
    d = sys.modules.get("mpalloc.debug") or sys.modules.get("mpalloc_debug")
    kmem_debug(d is not None and d.enabled())


def kmem_debug(on):
    """Switch debug mode (redzones, size check, poisoning, double free) on or off."""
    # => thread context; allocations made before keep their mode.
    if on and not _dcaches:
        for i in range(_NCL + 1):
            _dcaches.append(None)
    _debug[0] = bool(on)


def kmem_alloc(size, kmflags):
    # => thread context (interrupt: ValueError E_INTR, use kmem_intr_alloc). 0 < size <= 2**40;
    # => kmflags KM_SLEEP or KM_NOSLEEP. failure: None (KM_NOSLEEP); KM_SLEEP: MemoryError.
    if intr.cpu_intr_p():
        raise E_INTR
    return kmem_intr_alloc(size, kmflags)


def kmem_zalloc(size, kmflags):
    # => as kmem_alloc; the bytes are zero.
    if intr.cpu_intr_p():
        raise E_INTR
    return kmem_intr_zalloc(size, kmflags)


def kmem_free(p, size):
    # => thread context (interrupt: ValueError E_FREE_INTR, use kmem_intr_free); p, size: an
    # => allocation and the size it was asked with. Misuse: ValueError naming address and sizes.
    if intr.cpu_intr_p():
        raise E_FREE_INTR
    kmem_intr_free(p, size)


def kmem_intr_alloc(size, kmflags):
    """size bytes (uninitialised) or None (KM_NOSLEEP)."""
    # => any context (size <= 1024, KM_NOSLEEP: no heap in steady state); kmem_alloc's
    # => arguments. failure: None (KM_NOSLEEP).
    f = kmflags & 3 | size & 0  # ints only: a float, str, None... raises here, before any lock
    if size <= 0 or f == 0 or f == 3 or size > _SIZE_LIMIT:
        raise E_ARG
    if not _caches:
        _init("kmem_alloc")
    if size > _MAXSMALL:
        return _large_alloc(size, kmflags)
    if _debug[0]:
        return _dbg_alloc(size, f)
    pc = _caches[_tab[(size - 1) >> 3]]
    if pc is None:
        pc = _cache(_tab[(size - 1) >> 3], False)
    return _pc.pool_cache_get(pc, f)


def kmem_intr_zalloc(size, kmflags):
    # => as kmem_intr_alloc; the bytes are zero.
    p = kmem_intr_alloc(size, kmflags)
    if p is not None:
        _fill(p, 0, size, 0)
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


def kmem_intr_free(p, size):
    """Free p, allocated with this size."""
    # => any context; as kmem_free (heap locked: preallocated E_FREE, kmem_lasterr).
    # Hot path (frame within 11 words, see pool_cache_get): a small size
    # outside debug mode; everything else in _free_other.
    if p is None:
        _free_other(p, size)
    p | size  # ints only: a float, str... raises here, before anything changes
    if _dcaches or size <= 0 or size > _MAXSMALL:
        _free_other(p, size)
        return
    pc = _caches[_tab[(size - 1) >> 3]]
    if pc is not None and _owns(pc, p) >= 0:
        _pc.pool_cache_put(pc, p)
        return
    _free_other(p, size)


def _free_other(p, size):
    # kmem_intr_free of debug-mode items, large sizes and misuse.
    if p is None:
        _free_err(p, size)
    if type(p) is not int or type(size) is not int:
        _free_type(p, size)
    if size <= 0:
        _free_err(p, size)
    if size > _MAXSMALL:
        _large_free(p, size)
        return
    if _dcaches and _dbg_free(p, size):
        return
    pc = _caches[_tab[(size - 1) >> 3]]
    if pc is not None and _owns(pc, p) >= 0:
        _pc.pool_cache_put(pc, p)
        return
    _free_err(p, size)


def _free_type(p, size):
    fail(E_FREE_TYPE, TypeError, "kmem_free: address and size must be ints, not %s, %s", type(p).__name__, type(size).__name__)


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
    # sizes, or the preallocated E_FREE where the heap cannot hold a message.
    kmem_lasterr[0] = p
    kmem_lasterr[1] = size
    try:
        m = _free_msg(p, size, e)
    except MemoryError:
        raise E_FREE
    raise ValueError(m)


def _which(p):
    # (cache, _owns code) of the class cache whose pages hold p, or (None, -1).
    for cs in (_caches, _dcaches):
        for pc in cs:
            if pc is not None:
                pp = pc[_PCMETA].pp
                if _pool._slot_of(pp, p) >= 0:
                    return pc, _owns(pc, p)
    return None, -1


def _free_msg(p, size, e):
    if p is None or not isinstance(p, int) or not isinstance(size, int) or size <= 0:
        return "kmem_free: bad arguments p=%r size=%r" % (p, size)
    pc, code = _which(p)
    own = None
    if pc is not None:
        pp = pc[_PCMETA].pp
        own = "%s (items of %d bytes)" % (pp.name, pp.reqsize)
    if size > _MAXSMALL:
        if own is not None and code >= 0:
            return "kmem_free: 0x%x is an item of %s, freed with the large size %d" % (p, own, size)
        m = e.args[0] if e is not None and e.args else str(e)
        return "kmem_free: %s (size %d)" % (m, size)
    cl = "kmem-%05d" % _CLASSES[_tab[(size - 1) >> 3]]
    if own is None:
        return "kmem_free: 0x%x is not from size class %s (size %d): never allocated, or a large allocation" % (
            p, cl, size)
    if code == _ALREADY_FREE:
        return "kmem_free: 0x%x already free (double free) in %s; freed with size %d" % (p, own, size)
    if code == _NOT_ITEM:
        return "kmem_free: 0x%x is inside an item of %s, not its start (size %d, class %s)" % (p, own, size, cl)
    return "kmem_free: 0x%x is not from size class %s (size %d): it is an item of %s" % (p, cl, size, own)


# -- debug mode --------------------------------------------------------------
# Every function on the debug alloc/free paths keeps its frame within 11 words
# and allocates nothing (kmem_intr_* from handlers in debug mode too).


def _dclass(size):
    # The debug class index for size (<= 1024): size + _DBG bytes.
    size += _DBG
    if size > _MAXSMALL:
        return _NCL
    return _tab[(size - 1) >> 3]


def _dbg_alloc(size, f):
    i = _dclass(size)
    pc = _dcaches[i]
    if pc is None:
        pc = _cache(i, True)
    p = _pc.pool_cache_get(pc, f)
    if p is not None:
        _dbg_arm(p, size, pc[_PCMETA].pp.reqsize)
    return p


def _dbg_arm(p, size, t):
    # A debug item of class size t handed out: check the poison if it was
    # freed, then write the redzone and the trailer.
    r = _mem.ram
    t += p - _mem.base - 4  # the trailer's offset in r
    if r[t] | r[t + 1] << 8 == _FREED:
        _dbg_poisoned(p, t)
    _fill(p, size, t - (p - _mem.base) - size, _RZ)
    r[t] = _LIVE & 0xFF
    r[t + 1] = _LIVE >> 8
    r[t + 2] = size & 0xFF
    r[t + 3] = size >> 8


def _dbg_poisoned(p, t):
    # A freed debug item (trailer at offset t) about to be handed out again:
    # every byte before the trailer must still be poison.
    r = _mem.ram
    for j in range(p - _mem.base, t):
        if r[j] != _POISON:
            _dbg_uaf(p, j, t)


def _dbg_uaf(p, j, t):
    # Byte offset j of freed debug item p (trailer at offset t) was written.
    o = p - _mem.base
    _dbg_err(E_UAF, "kmem_alloc: use after free at 0x%x (class kmem-%05d): written after kmem_free",
             p + j - o, t + 4 - o)


def _dbg_rz(p, j, t):
    # Byte offset j of debug item p's redzone was written.
    o = p - _mem.base
    _dbg_err(E_FREE, "kmem_free: redzone overwritten at 0x%x (overflow; class kmem-%05d)", p + j - o, t + 4 - o)


def _dbg_err(pre, fmt, a, b):
    # The item is left out of circulation (it is corrupt).
    kmem_lasterr[0] = a
    fail(pre, ValueError, fmt, a, b)


def _dbg_free(p, size):
    # True when p is an item of size's debug class: checked, poisoned, freed.
    pc = _dcaches[_dclass(size)]
    if pc is None:
        return False
    i = _owns(pc, p)
    if i == _ALREADY_FREE:
        _dbg_err(E_FREE, "kmem_free: double free of 0x%x (class kmem-%05d): already back in its pool",
                 p, pc[_PCMETA].pp.reqsize)
    if i < 0:
        return False
    _dbg_check(p, size, pc[_PCMETA].pp.reqsize)
    _pc.pool_cache_put(pc, p)
    return True


def _dbg_check(p, size, c):
    # kmem_free of debug item p (class size c) with size: trailer, size,
    # redzone; then poison it and mark it free.
    r = _mem.ram
    t = p - _mem.base + c - 4
    m = r[t] | r[t + 1] << 8
    if m == _FREED:
        _dbg_err(E_FREE, "kmem_free: double free of 0x%x (class kmem-%05d)", p, c)
    if m != _LIVE:
        _dbg_err(E_FREE, "kmem_free: size/magic trailer of 0x%x overwritten (overflow; class kmem-%05d)", p, c)
    m = r[t + 2] | r[t + 3] << 8
    if m != size:
        kmem_lasterr[1] = m
        _dbg_size_err(p, m, size, c)
    _dbg_redzone(p, size, t)
    _fill(p, 0, c - 4, _POISON)
    r[t] = _FREED & 0xFF
    r[t + 1] = _FREED >> 8


def _dbg_redzone(p, size, t):
    r = _mem.ram
    for size in range(p - _mem.base + size, t):  # size: the offset
        if r[size] != _RZ:
            _dbg_rz(p, size, t)


def _dbg_size_err(p, n, size, c):
    kmem_lasterr[0] = p
    fail(E_FREE, ValueError, "kmem_free: size check: 0x%x was allocated with %d bytes, freed with %d (class kmem-%05d)",
         p, n, size, c)


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
    _init("kmem_class")
    return _CLASSES[_tab[(size - 1) >> 3]]


def kmem_stats():
    # => thread context (allocates).
    cl = []
    for pc in _caches + _dcaches:
        if pc is None:
            continue
        st = _pc.pool_cache_stats(pc)
        na = nf = 0
        for c in st["cpus"]:
            na += c["nget"]
            nf += c["nput"]
        cl.append({"size": st["size"], "cache": st["name"], "inuse": na - nf, "nalloc": na, "nfree": nf})
    return {"classes": cl, "large": {"inuse_bytes": _large[0], "nalloc": _large[1], "nfree": _large[2]},
            "debug": _debug[0]}
