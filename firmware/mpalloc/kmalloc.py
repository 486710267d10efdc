# kmalloc: DragonFly BSD's kmalloc(9) with malloc types, for mpalloc.
#
#   M_FOO = MALLOC_DEFINE("foo", "foo buffers", limit)   a malloc type (limit 0 = default)
#   kmalloc(size, type, flags) -> address/None     flags: exactly one of M_WAITOK,
#                                                  M_INTWAIT, M_NOWAIT; | M_ZERO, M_NULLOK, M_POWEROF2
#   kfree(addr, type)    krealloc(addr, size, type, flags)    kstrdup(s, type)
#   kmalloc_raise_limit(type, bytes)   kmalloc_limit(type)
#   kmalloc_create(shortdesc, longdesc) / kmalloc_destroy(type)   dynamic types
#   malloc_types, kmalloc_stats(type)                           vmstat -m
#
# Built on kmem(9) (its size-class pool caches, kmem_intr_* in interrupt context):
# every allocation is one kmem block of KM_HDR + chunk bytes; the header records
# the type and the chunk, so kfree needs no size and can tell a wrong type, a
# double free and a foreign pointer apart.
# Representation: the header (KM_HDR bytes before the address: u16 type id,
# u16 magic _MAGIC_BUSY/_MAGIC_FREE, u32 chunk bytes); _types[id] the type.
# Invariants: see malloc_type (ks_memuse, ks_inuse per type). Locking: one
# spin mutex (_lock) over every type's counters; kmem takes its own.
#
# DragonFly semantics kept:
#   * sizes are rounded to DragonFly's slab chunks (8-byte steps below 128, then
#     1/8 of the power of two, page multiples above KM_ZONE_LIMIT); statistics
#     count chunk bytes, as ks_memuse does.
#   * kmalloc(0) returns the non-NULL sentinel ZERO_LENGTH_PTR (-8), which kfree
#     and krealloc accept.
#   * at the type limit: M_NULLOK -> None, otherwise a panic, even with M_WAITOK
#     (here RuntimeError "kmalloc: <type>: malloc limit exceeded"). The default
#     limit is 1/10 of the managed memory, as DragonFly's 1/10 of RAM.
#   * kfree(NULL) panics; krealloc with M_ZERO is refused; krealloc keeps the
#     pointer when the chunk does not change, and leaves the old block untouched
#     when it fails.
# Port decisions: M_WAITOK on a board has nobody to wait for: when kmem has no
# memory it raises MemoryError ("would sleep forever") unless M_NULLOK is given
# (then None). M_POWEROF2 rounds the size but cannot align to it (the header).
#
# Interrupt paths: kmalloc(M_NOWAIT/M_INTNOWAIT) and kfree allocate nothing from
# the MicroPython heap themselves (whether kmem_intr_alloc does is kmem's
# business); misuse there raises a preallocated exception.
from mpalloc import intr
from mpalloc import mem

from mpalloc.compat import const, fail


M_RNOWAIT = const(0x0001)
M_WAITOK = const(0x0002)
M_ZERO = const(0x0100)
M_USE_RESERVE = const(0x0200)
M_NULLOK = const(0x0400)
M_PASSIVE_ZERO = const(0x0800)
M_USE_INTERRUPT_RESERVE = const(0x1000)
M_POWEROF2 = const(0x2000)
_SIZE_LIMIT = const(1 << 40)  # sizes beyond this are refused up front
M_NOWAIT = const(0x0001 | 0x0400 | 0x0200)
M_INTNOWAIT = const(0x0001 | 0x0400 | 0x0200 | 0x1000)
M_SYSNOWAIT = const(0x0001 | 0x0400 | 0x0200)
M_INTWAIT = const(0x0002 | 0x0200 | 0x1000)
M_SYSWAIT = const(0x0002 | 0x0200)
M_SYSALLOC = M_SYSWAIT
_KNOWN = const(0x0001 | 0x0002 | 0x0100 | 0x0200 | 0x0400 | 0x0800 | 0x1000 | 0x2000)

ZERO_LENGTH_PTR = const(-8)
KM_HDR = const(8)  # u16 type id, u16 magic, u32 chunk bytes; before the address given out
KM_ZONE_LIMIT = const(16384)  # larger requests are page multiples
KM_PAGE = const(4096)
KMALLOC_LIMIT_DIV = const(10)  # default type limit: managed memory / 10
_MAGIC_BUSY = const(0x6B4D)
_MAGIC_FREE = const(0x6B46)
_MAGIC_POISON = const(0xDBDB)  # a freed block's header once kmem's debug mode poisoned it
_KS_MAGIC = const(877983977)  # malloc_type.ks_magic while the type is live

malloc_types = []  # live types, in creation order (vmstat -m)
_types = []  # type id -> type (None once destroyed); ids are never reused
_lock = intr.mutex_init()


class malloc_type:
    """struct malloc_type (one set of counters, under _lock, not per CPU).

    Invariants: ks_memuse == sum of the chunks of live allocations of this type,
    ks_inuse == their number, ks_maxused >= ks_memuse, ks_memuse <= ks_limit
    (when ks_limit != 0; 0 = resolve the default at first use).
    """

    def __init__(self, shortdesc, longdesc, limit):
        self.ks_shortdesc = shortdesc
        self.ks_longdesc = longdesc
        self.ks_limit = limit
        self.ks_memuse = 0
        self.ks_inuse = 0
        self.ks_calls = 0
        self.ks_maxused = 0
        self.ks_limblocks = 0  # times the limit refused an allocation
        self.ks_nfail = 0  # None returned for want of memory or at the limit
        self.ks_size = 0  # OR of the power-of-two chunk classes used (vmstat -m)
        self.ks_magic = _KS_MAGIC
        self.ks_tid = len(_types)


def MALLOC_DEFINE(shortdesc, longdesc="", limit=0):
    """Declare a malloc type. limit: bytes (0 = 1/10 of the managed memory)."""
    if not isinstance(shortdesc, str) or not shortdesc:
        raise ValueError("MALLOC_DEFINE: shortdesc must be a non-empty string")
    if not isinstance(limit, int) or limit < 0:
        raise ValueError("MALLOC_DEFINE: limit %r must be an int >= 0" % (limit,))
    if len(_types) >= 0xFFFF:
        raise ValueError("MALLOC_DEFINE: too many malloc types")
    t = malloc_type(shortdesc, longdesc or shortdesc, limit)
    _types.append(t)
    malloc_types.append(t)
    return t


def kmalloc_create(shortdesc, longdesc=""):
    """A dynamic type (DragonFly's kmalloc_create(&type, descr))."""
    if not isinstance(shortdesc, str) or not shortdesc:
        raise ValueError("kmalloc_create: shortdesc must be a non-empty string")
    return MALLOC_DEFINE(shortdesc, longdesc)


def kmalloc_destroy(t):
    """Retire a dynamic type; its allocations must all be freed. No-op if done."""
    if t.ks_magic != _KS_MAGIC:
        return
    if t.ks_inuse:
        raise ValueError("kmalloc_destroy: type '%s' still has %d allocations (%d bytes)" % (t.ks_shortdesc, t.ks_inuse, t.ks_memuse))
    t.ks_magic = 0
    _types[t.ks_tid] = None
    malloc_types.remove(t)


def malloc_type_live(t):
    """True if t is a malloc type not yet destroyed."""
    return isinstance(t, malloc_type) and t.ks_magic == _KS_MAGIC


def _default_limit():
    n = mem.size // KMALLOC_LIMIT_DIV
    return n if n > 0 else 1


def kmalloc_limit(t):
    _check_type_slow("kmalloc_limit", t)
    if t.ks_limit == 0:
        t.ks_limit = _default_limit()
    return t.ks_limit


def kmalloc_raise_limit(t, nbytes):
    """Raise (never lower) the type's limit; 0 = the whole managed memory."""
    _check_type_slow("kmalloc_raise_limit", t)
    if not isinstance(nbytes, int) or nbytes < 0:
        raise ValueError("kmalloc_raise_limit: nbytes %r must be an int >= 0" % (nbytes,))
    if nbytes == 0:
        nbytes = mem.size
    if nbytes > kmalloc_limit(t):
        t.ks_limit = nbytes


def _check_type_slow(fn, t):
    if not isinstance(t, malloc_type) or t.ks_magic != _KS_MAGIC:
        raise ValueError("%s: not a live malloc type: %r" % (fn, t))


def _chunk(size):
    """DragonFly's slab chunk for a request of `size` bytes (> 0)."""
    if size < 128:
        return (size + 7) & ~7
    if size >= KM_ZONE_LIMIT:
        return (size + KM_PAGE - 1) // KM_PAGE * KM_PAGE
    p = 128
    while p * 2 <= size:
        p *= 2
    step = p // 8
    return (size + step - 1) // step * step


def _pow2(size):
    p = 8
    while p < size:
        p *= 2
    return p


# Preallocated errors for paths that may run with the heap locked.
_E_FLAGS = ValueError("kmalloc: flags need exactly one of M_WAITOK, M_INTWAIT, M_NOWAIT")
_E_TYPE = ValueError("kmalloc: not a live malloc type")
_E_LIMIT = RuntimeError("kmalloc: malloc limit exceeded")
_E_INTRWAIT = ValueError("kmalloc: M_WAITOK from an interrupt handler (use M_NOWAIT or M_INTWAIT)")
_E_NOMEM = MemoryError("kmalloc: no memory and nobody to wait for (M_WAITOK)")
_E_KF_NULL = ValueError("kfree: NULL pointer")
_E_ARGTYPE = TypeError("kmalloc: size and flags must be ints")
_E_KF_PTYPE = TypeError("kfree: the pointer must be an int")
_E_KF_TYPE = ValueError("kfree: not a live malloc type")
_E_KF_FOREIGN = ValueError("kfree: pointer was not allocated by kmalloc")
_E_KF_DOUBLE = ValueError("kfree: pointer already freed")
_E_KF_WRONG = ValueError("kfree: pointer was allocated with another malloc type")


_kmem = [None]  # kmem, imported at first use (an import under the heap lock allocates)


def _kmem_mod():
    m = _kmem[0]
    if m is None:
        from mpalloc import kmem as m

        _kmem[0] = m
    return m


def _backend_alloc(nbytes, flags):
    kmem = _kmem_mod()
    if intr.cpu_intr_p():
        return kmem.kmem_intr_alloc(nbytes, kmem.KM_NOSLEEP)
    return kmem.kmem_alloc(nbytes, kmem.KM_SLEEP if flags & M_WAITOK else kmem.KM_NOSLEEP)


def _backend_free(a, nbytes):
    kmem = _kmem_mod()
    if intr.cpu_intr_p():
        kmem.kmem_intr_free(a, nbytes)
    else:
        kmem.kmem_free(a, nbytes)


def _put_hdr(a, tid, magic, chunk):
    r = mem.ram
    o = a - mem.base
    r[o] = tid & 0xFF
    r[o + 1] = tid >> 8
    r[o + 2] = magic & 0xFF
    r[o + 3] = magic >> 8
    r[o + 4] = chunk & 0xFF
    r[o + 5] = (chunk >> 8) & 0xFF
    r[o + 6] = (chunk >> 16) & 0xFF
    r[o + 7] = chunk >> 24


def _hdr_ok(a):
    """True if the header of address a lies inside the managed window."""
    o = a - KM_HDR - mem.base
    return mem.ram is not None and 0 <= o and o + KM_HDR <= mem.size


def _hdr_tid(a):
    r = mem.ram
    o = a - KM_HDR - mem.base
    return r[o] | r[o + 1] << 8


def _hdr_magic(a):
    r = mem.ram
    o = a - KM_HDR - mem.base
    return r[o + 2] | r[o + 3] << 8


def _hdr_chunk(a):
    r = mem.ram
    o = a - KM_HDR - mem.base
    return r[o + 4] | r[o + 5] << 8 | r[o + 6] << 16 | r[o + 7] << 24


def _size_bit(chunk):
    """The power-of-two class bit of a chunk for ks_size (bit n = 2**n bytes)."""
    n = 3
    while (1 << n) < chunk and n < 30:
        n += 1
    return 1 << n


def kmalloc(size, t, flags):
    """Allocate `size` bytes charged to malloc type t; returns the address or None."""
    if not isinstance(t, malloc_type) or t.ks_magic != _KS_MAGIC:
        raise _E_TYPE
    if size.__class__ is not int or flags.__class__ is not int:
        fail(_E_ARGTYPE, TypeError, "kmalloc: size and flags must be ints, not %s, %s", type(size).__name__, type(flags).__name__)
    w = flags & (M_RNOWAIT | M_WAITOK)
    if w == 0 or w == (M_RNOWAIT | M_WAITOK) or flags & ~_KNOWN:
        fail(_E_FLAGS, ValueError, "kmalloc: flags 0x%x for type '%s': need exactly one of M_WAITOK, M_INTWAIT, M_NOWAIT", flags, t.ks_shortdesc)
    if size < 0 or size > _SIZE_LIMIT:
        fail(_E_FLAGS, ValueError, "kmalloc: size %d not in 0..2**40 (type '%s')", size, t.ks_shortdesc)
    inintr = intr.cpu_intr_p()
    if inintr and w == M_WAITOK and not flags & M_USE_INTERRUPT_RESERVE:
        raise _E_INTRWAIT
    if t.ks_limit == 0:
        t.ks_limit = _default_limit()
    s = intr.mutex_enter(_lock)
    t.ks_calls += 1
    intr.mutex_exit(_lock, s)
    if size == 0:
        return ZERO_LENGTH_PTR
    if flags & M_POWEROF2:
        size = _pow2(size)
    chunk = _chunk(size)
    # Reserve the bytes against the limit first, so racing CPUs cannot both pass.
    s = intr.mutex_enter(_lock)
    if t.ks_memuse + chunk > t.ks_limit:
        t.ks_limblocks += 1
        t.ks_nfail += 1
        intr.mutex_exit(_lock, s)
        if flags & M_NULLOK:
            return None
        fail(_E_LIMIT, RuntimeError, "kmalloc: %s: malloc limit exceeded (limit %d bytes)", t.ks_shortdesc, t.ks_limit)
    t.ks_memuse += chunk
    t.ks_inuse += 1
    if t.ks_memuse > t.ks_maxused:
        t.ks_maxused = t.ks_memuse
    intr.mutex_exit(_lock, s)
    try:
        a = _backend_alloc(KM_HDR + chunk, flags)
    except MemoryError:
        a = None
    if not a:
        s = intr.mutex_enter(_lock)
        t.ks_memuse -= chunk
        t.ks_inuse -= 1
        t.ks_nfail += 1
        intr.mutex_exit(_lock, s)
        if w == M_WAITOK and not flags & M_NULLOK:
            fail(_E_NOMEM, MemoryError, "kmalloc: %d bytes for type '%s': no memory and nobody to wait for", size, t.ks_shortdesc)
        return None
    _put_hdr(a, t.ks_tid, _MAGIC_BUSY, chunk)
    p = a + KM_HDR
    if flags & M_ZERO:
        mem.fill(p, chunk, 0)
    if not t.ks_size & _size_bit(chunk):
        t.ks_size |= _size_bit(chunk)
    return p


def _check_owned(fn, p, t, pre_foreign, pre_double, pre_wrong):
    """The chunk size of kmalloc block p of type t; raises on misuse."""
    if not _hdr_ok(p):
        fail(pre_foreign, ValueError, "%s: 0x%x is not memory from kmalloc (type '%s')", fn, p, t.ks_shortdesc)
    m = _hdr_magic(p)
    if m == _MAGIC_FREE or m == _MAGIC_POISON:
        fail(pre_double, ValueError, "%s: 0x%x already freed (type '%s')", fn, p, t.ks_shortdesc)
    if m != _MAGIC_BUSY:
        fail(pre_foreign, ValueError, "%s: 0x%x was not allocated by kmalloc or is already free (type '%s')", fn, p, t.ks_shortdesc)
    tid = _hdr_tid(p)
    if tid != t.ks_tid:
        fail(pre_wrong, ValueError, "%s: 0x%x was allocated with another malloc type, freed with '%s'",
             fn, p, t.ks_shortdesc)
    return _hdr_chunk(p)


def kfree(p, t):
    """Free kmalloc block p, which must have been allocated with type t."""
    if p is None:
        raise _E_KF_NULL
    if p.__class__ is not int:
        fail(_E_KF_PTYPE, TypeError, "kfree: the pointer must be an int, not %s%s", type(p).__name__, "")
    if not isinstance(t, malloc_type) or t.ks_magic != _KS_MAGIC:
        raise _E_KF_TYPE
    if p == ZERO_LENGTH_PTR:
        return
    if intr.cpu_intr_p():
        chunk = _check_owned("kfree", p, t, _E_KF_FOREIGN, _E_KF_DOUBLE, _E_KF_WRONG)
    else:
        chunk = _check_owned_verbose("kfree", p, t)
    a = p - KM_HDR
    _put_hdr(a, t.ks_tid, _MAGIC_FREE, chunk)
    s = intr.mutex_enter(_lock)
    t.ks_memuse -= chunk
    t.ks_inuse -= 1
    intr.mutex_exit(_lock, s)
    _backend_free(a, KM_HDR + chunk)


def _check_owned_verbose(fn, p, t):
    """As _check_owned, naming the allocating type on a mismatch (allocates)."""
    if _hdr_ok(p) and _hdr_magic(p) == _MAGIC_BUSY:
        tid = _hdr_tid(p)
        if tid != t.ks_tid:
            o = _types[tid] if tid < len(_types) else None
            try:
                m = "%s: 0x%x was allocated with malloc type '%s', freed with '%s'" % (
                    fn, p, o.ks_shortdesc if o is not None else "?", t.ks_shortdesc)
            except MemoryError:  # heap locked (a hard IRQ not run through intr.run_hard)
                m = None  # _check_owned raises the preallocated error
            if m is not None:
                raise ValueError(m)
    return _check_owned(fn, p, t, _E_KF_FOREIGN, _E_KF_DOUBLE, _E_KF_WRONG)


def krealloc(p, size, t, flags):
    """Resize kmalloc block p (type t). None on failure, p then untouched."""
    _check_type_slow("krealloc", t)
    if not (p is None or isinstance(p, int)) or not isinstance(size, int) or not isinstance(flags, int):
        raise TypeError("krealloc: p (int or None), size and flags (ints) have the wrong type: %s, %s, %s"
                        % (type(p).__name__, type(size).__name__, type(flags).__name__))
    w = flags & (M_RNOWAIT | M_WAITOK)
    if w == 0 or w == (M_RNOWAIT | M_WAITOK) or flags & ~_KNOWN:
        raise ValueError("krealloc: flags 0x%x: need exactly one of M_WAITOK, M_INTWAIT, M_NOWAIT" % flags)
    if size < 0 or size > _SIZE_LIMIT:
        raise ValueError("krealloc: size %d not in 0..2**40" % size)
    if flags & M_ZERO:
        raise ValueError("krealloc: M_ZERO is not allowed (type '%s')" % t.ks_shortdesc)
    _check_type_slow("krealloc", t)
    if p is None or p == ZERO_LENGTH_PTR:
        return kmalloc(size, t, flags)
    old = _check_owned_verbose("krealloc", p, t)  # before a free: its errors name krealloc
    if size == 0:
        kfree(p, t)
        return None
    want = _pow2(size) if flags & M_POWEROF2 else size
    if _chunk(want) == old:
        s = intr.mutex_enter(_lock)
        t.ks_calls += 1
        intr.mutex_exit(_lock, s)
        return p
    q = kmalloc(size, t, flags)
    if q is None:
        return None
    n = old if old < _chunk(want) else _chunk(want)
    mem.buf(q, n)[:] = mem.buf(p, n)
    kfree(p, t)
    return q


def kstrdup(s, t):
    """A NUL-terminated copy of str/bytes s (M_WAITOK)."""
    _check_type_slow("kstrdup", t)
    if not isinstance(s, (str, bytes, bytearray)):
        raise TypeError("kstrdup: s must be a str or bytes, not %s" % type(s).__name__)
    b = s.encode() if isinstance(s, str) else bytes(s)
    p = kmalloc(len(b) + 1, t, M_WAITOK)
    v = mem.buf(p, len(b) + 1)
    v[:len(b)] = b
    v[len(b)] = 0
    return p


def kmalloc_usable(p):
    """Bytes usable at kmalloc block p (its chunk)."""
    if not isinstance(p, int):
        raise TypeError("kmalloc_usable: p must be an int, not %s" % type(p).__name__)
    if p == ZERO_LENGTH_PTR:
        return 0
    if not _hdr_ok(p) or _hdr_magic(p) != _MAGIC_BUSY:
        raise ValueError("kmalloc_usable: 0x%x is not a live kmalloc block" % p)
    return _hdr_chunk(p)


def kmalloc_stats(t):
    """vmstat -m row: name, desc, inuse (bytes), ninuse, nreq, hiwat, limit, nfail, limblocks, sizes."""
    if not isinstance(t, malloc_type):
        raise TypeError("kmalloc_stats: t must be a malloc_type, not %s" % type(t).__name__)
    return {
        "name": t.ks_shortdesc,
        "desc": t.ks_longdesc,
        "inuse": t.ks_memuse,
        "ninuse": t.ks_inuse,
        "nreq": t.ks_calls,
        "hiwat": t.ks_maxused,
        "limit": t.ks_limit,
        "nfail": t.ks_nfail,
        "limblocks": t.ks_limblocks,
        "sizes": t.ks_size,
    }
