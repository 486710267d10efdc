# kmem: kmem(9), memory of any size: size-class pool caches and uvm_km pages.
#
#   p = kmem_alloc(size, KM_NOSLEEP)     # an int address, or None
#   kmem_free(p, size)                   # the same size
#   kmem_intr_alloc / kmem_intr_zalloc / kmem_intr_free from interrupt handlers
#
# What the caller gets: an address (int) of at least `size` bytes, 8-aligned;
# reach the bytes with mem.buf(p, size) (allocates) or mem.ram[p - mem.base + i]
# from a handler. Sizes up to 1024 come from the caches kmem-00008 ..
# kmem-01024 (NetBSD's classes 8, 16, .., 64, 80, .., 128, 160, .., 256, 320,
# .., 512, 768, 1024; uniform random 1..1024 byte requests waste 12.7 %);
# larger ones are whole pages of uvm_km's kernel_map.
#
# kmem_alloc/zalloc/free refuse interrupt context (use kmem_intr_*). KM_SLEEP
# never returns None: where nothing can be freed it raises MemoryError.
# kmem_free with a size of another class than the allocation, or an address
# that class never handed out, is a ValueError; the same class with another
# size is only caught in debug mode.
#
# Interrupts: kmem_intr_alloc(size <= 1024, KM_NOSLEEP) and kmem_intr_free
# allocate nothing from the heap in steady state (a magazine hit, or a pool
# item when the class has pages). A class cache is made on its first use
# (allocates); call kmem_init(True) at start-up if a handler may be first. Misuse seen with the heap locked raises a
# preallocated ValueError (E_FREE) with the address in kmem_lasterr[0].
#
# Debug mode (kmem_debug(True), off by default): allocations made from then on
# come from separate caches kmem-dbg-NNNNN, each item laid out as
#     [size user bytes][redzone 0xFE .. ][2-byte magic][2-byte size]
# The magic says live (0xC0DE) or free (0xDEAD). kmem_free checks the magic
# (double free), the stored size (size check) and the redzone (overflow), then
# poisons the item with 0xDB; the next allocation of that item checks the
# poison (use after free). Every report names the size class and the address.
# Items allocated before debug mode was switched on are freed without checks;
# debug items stay checked after it is switched off.
try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


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
E_ARG = ValueError("kmem_alloc: size must be > 0 and flags exactly one of KM_SLEEP, KM_NOSLEEP")

_tab = bytearray(_MAXSMALL // 8)  # (size - 1) >> 3 -> class index
_caches = []  # class index -> pool_cache
_dcaches = []  # debug caches, made by kmem_debug(True)
_debug = [False]
_large = [0, 0, 0]  # inuse bytes, nalloc, nfree


def _init():
    if _caches:
        return
    if uvm_km.kernel_map is None:
        raise ValueError("kmem: uvm_km has no kernel_map (call uvm_km_bootstrap first)")
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
        c = _CLASSES[i]
        pc = _pc.pool_cache_init(c, 8, 0, 0, ("kmem-dbg-%05d" if dbg else "kmem-%05d") % c, None,
                                 _pool.IPL_VM, None, None, None)
        cs[i] = pc
    return pc


def kmem_init(all_classes=False):
    """Set up the class table; with all_classes make every class cache now."""
    _init()
    if all_classes:
        for i in range(len(_CLASSES)):
            _cache(i, False)


def kmem_reset():
    """Forget the caches (tests, after uvm_km_bootstrap made a new kernel_map)."""
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
    _debug[0] = False
    _large[0] = _large[1] = _large[2] = 0


def kmem_debug(on):
    """Switch debug mode (redzones, size check, poisoning, double free) on or off."""
    _init()
    if on and not _dcaches:
        for c in _CLASSES:
            _dcaches.append(None)
    _debug[0] = bool(on)


def kmem_alloc(size, kmflags):
    if intr.cpu_intr_p():
        raise E_INTR
    return kmem_intr_alloc(size, kmflags)


def kmem_zalloc(size, kmflags):
    if intr.cpu_intr_p():
        raise E_INTR
    return kmem_intr_zalloc(size, kmflags)


def kmem_free(p, size):
    if intr.cpu_intr_p():
        raise E_FREE_INTR
    kmem_intr_free(p, size)


def kmem_intr_alloc(size, kmflags):
    """size bytes (uninitialised) or None (KM_NOSLEEP)."""
    f = kmflags & 3
    if size <= 0 or f == 0 or f == 3:
        raise E_ARG
    if not _caches:
        _init()
    if _debug[0]:
        return _dbg_alloc(size, kmflags)
    if size <= _MAXSMALL:
        pc = _caches[_tab[(size - 1) >> 3]]
        if pc is None:
            pc = _cache(_tab[(size - 1) >> 3], False)
        return _pc.pool_cache_get(pc, f)
    return _large_alloc(size, kmflags)


def kmem_intr_zalloc(size, kmflags):
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
    pp = pc[_PCMETA].pp
    s = intr.mutex_enter(pp.lock)
    sl = _pool._slot_of(pp, p)
    intr.mutex_exit(pp.lock, s)
    return sl >= 0


def _fail(fmt, a, b):
    kmem_lasterr[0] = a
    try:
        m = fmt % (a, b)
    except MemoryError:
        raise E_FREE
    raise ValueError(m)


def kmem_intr_free(p, size):
    """Free p, allocated with this size."""
    # Hot path (frame within 11 words, see pool_cache_get): a small size
    # outside debug mode; everything else in _free_other.
    if _dcaches or p is None or size <= 0 or size > _MAXSMALL:
        _free_other(p, size)
        return
    pc = _caches[_tab[(size - 1) >> 3]]
    if pc is not None and _owns(pc, p):
        _pc.pool_cache_put(pc, p)
        return
    _free_other(p, size)


def _free_other(p, size):
    # kmem_intr_free of debug-mode items, large sizes and misuse.
    if p is None or size <= 0:
        _fail("kmem_free: bad arguments p=%r size=%r", p, size)
    if _dcaches and size + _DBG <= _MAXSMALL:
        dpc = _dcaches[_tab[(size + _DBG - 1) >> 3]]
        if dpc is not None and _owns(dpc, p):
            _dbg_free(dpc, p, size)
            return
    if size <= _MAXSMALL:
        pc = _caches[_tab[(size - 1) >> 3]]
        if pc is not None and _owns(pc, p):
            _pc.pool_cache_put(pc, p)
            return
        if not (_dcaches and size + _DBG > _MAXSMALL):  # else: a debug-mode large allocation
            kmem_lasterr[1] = size
            _fail("kmem_free: 0x%x is not from size class kmem-%05d (wrong size or never allocated)",
                  p, _CLASSES[_tab[(size - 1) >> 3]])
    try:
        uvm_km.uvm_km_free(uvm_km.kernel_map, p, size, uvm_km.UVM_KMF_WIRED)
    except ValueError as e:
        raise ValueError("kmem_free: %s (size %d)" % (e.args[0] if e.args else e, size))
    ps = uvm_km.PAGE_SIZE
    _large[0] -= (size + ps - 1) & -ps
    _large[2] += 1


# -- debug mode --------------------------------------------------------------


def _dbg_alloc(size, kmflags):
    a = size + _DBG
    if a > _MAXSMALL:
        return _large_alloc(size, kmflags)
    ci = _tab[(a - 1) >> 3]
    csz = _CLASSES[ci]
    p = _pc.pool_cache_get(_cache(ci, True), kmflags & 3)
    if p is None:
        return None
    mem = _mem
    r = mem.ram
    o = p - mem.base
    t = o + csz - 4
    if r[t] | r[t + 1] << 8 == _FREED:
        for j in range(o, t):
            if r[j] != _POISON:
                # leave the item out of circulation: it is corrupt
                kmem_lasterr[1] = j - o
                _fail("kmem_alloc: use after free at 0x%x (class kmem-%05d): written after kmem_free",
                      p + (j - o), csz)
    for j in range(o + size, t):
        r[j] = _RZ
    r[t] = _LIVE & 0xFF
    r[t + 1] = _LIVE >> 8
    r[t + 2] = size & 0xFF
    r[t + 3] = size >> 8
    return p


def _dbg_free(pc, p, size):
    mem = _mem
    csz = pc[_PCMETA].pp.reqsize
    r = mem.ram
    o = p - mem.base
    t = o + csz - 4
    m = r[t] | r[t + 1] << 8
    if m == _FREED:
        _fail("kmem_free: double free of 0x%x (class kmem-%05d)", p, csz)
    if m != _LIVE:
        _fail("kmem_free: size/magic trailer of 0x%x overwritten (overflow; class kmem-%05d)", p, csz)
    n = r[t + 2] | r[t + 3] << 8
    if n != size:
        kmem_lasterr[1] = n
        _fail("kmem_free: size check: 0x%x was allocated with %d bytes, freed with another size"
              " (class kmem-" + "%05d" % csz + ")", p, n)
    for j in range(o + size, t):
        if r[j] != _RZ:
            _fail("kmem_free: redzone overwritten at 0x%x (overflow; class kmem-%05d)", p + (j - o), csz)
    for j in range(o, t):
        r[j] = _POISON
    r[t] = _FREED & 0xFF
    r[t + 1] = _FREED >> 8
    _pc.pool_cache_put(pc, p)


def kmem_roundup_size(size):
    return (size + 7) & -8


def kmem_class(size):
    """The class size that serves a request of size bytes (0: from uvm_km)."""
    if size <= 0:
        raise ValueError("kmem_class: size %d" % size)
    if size > _MAXSMALL:
        return 0
    _init()
    return _CLASSES[_tab[(size - 1) >> 3]]


def kmem_stats():
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
