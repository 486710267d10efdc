# kmem_dbg: kmem's debug mode (kmem_debug(True)), loaded when it is first
# switched on and kept while debug items may be out (kmem_reset drops it).
#
# Allocations up to 1024 bytes come from kmem-dbg-NNNNN (the class of size + 6,
# or 1360 for 1019..1024 bytes); kmem_free checks magic (double free), size and
# redzone (overflow) and poisons; the next allocation of the item checks the
# poison (use after free). Items allocated before it was switched on are freed
# unchecked; debug items stay checked.
# Representation: kmem._dcaches[i], the debug cache of class i (_NCL + 1 of
# them, the last one of class _DBGTOP); an item ends in a trailer
# [redzone 0xFE .. ][2-byte magic][2-byte size].
# Invariants: magic 0xC0DE while live, 0xDEAD (item poisoned with 0xDB) once
# freed. Locking: the debug caches' own; nothing here holds a lock.
from mpalloc.compat import const, fail
from mpalloc import kmem as K
from mpalloc.kmem import _fill, _owns
from mpalloc import mem as _mem
from mpalloc import pool_cache as _pc

_MAXSMALL = const(1024)
_DBG = const(6)  # debug: >= 2 redzone bytes + magic + size
_NCL = const(22)  # len(kmem._CLASSES)
_PCMETA = const(8)  # pool_cache's _META slot (kmem.py)
_LIVE = const(0xC0DE)
_FREED = const(0xDEAD)
_RZ = const(0xFE)
_POISON = const(0xDB)
_ALREADY_FREE = const(-2)  # pool._item_index's code


# Every function on the debug alloc/free paths keeps its frame within 11 words
# and allocates nothing (kmem_intr_* from handlers in debug mode too).


def _dclass(size):
    # The debug class index for size (<= 1024): size + _DBG bytes.
    size += _DBG
    if size > _MAXSMALL:
        return _NCL
    return K._tab[(size - 1) >> 3]


def alloc(size, f):
    # => any context (kmem_intr_alloc in debug mode); 0 < size <= 1024, f KM_SLEEP or KM_NOSLEEP.
    i = _dclass(size)
    pc = K._dcaches[i]
    if pc is None:
        pc = K._cache(i, True)
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
    _dbg_err(K.E_UAF, "kmem_alloc: use after free at 0x%x (class kmem-%05d): written after kmem_free",
             p + j - o, t + 4 - o)


def _dbg_rz(p, j, t):
    # Byte offset j of debug item p's redzone was written.
    o = p - _mem.base
    _dbg_err(K.E_FREE, "kmem_free: redzone overwritten at 0x%x (overflow; class kmem-%05d)", p + j - o, t + 4 - o)


def _dbg_err(pre, fmt, a, b):
    # The item is left out of circulation (it is corrupt).
    K.kmem_lasterr[0] = a
    fail(pre, ValueError, fmt, a, b)


def free(p, size):
    # => any context; p, size: kmem_free's.
    # True when p is an item of size's debug class: checked, poisoned, freed.
    pc = K._dcaches[_dclass(size)]
    if pc is None:
        return False
    i = _owns(pc, p)
    if i == _ALREADY_FREE:
        _dbg_err(K.E_FREE, "kmem_free: double free of 0x%x (class kmem-%05d): already back in its pool",
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
        _dbg_err(K.E_FREE, "kmem_free: double free of 0x%x (class kmem-%05d)", p, c)
    if m != _LIVE:
        _dbg_err(K.E_FREE, "kmem_free: size/magic trailer of 0x%x overwritten (overflow; class kmem-%05d)", p, c)
    m = r[t + 2] | r[t + 3] << 8
    if m != size:
        K.kmem_lasterr[1] = m
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
    K.kmem_lasterr[0] = p
    fail(K.E_FREE, ValueError, "kmem_free: size check: 0x%x was allocated with %d bytes, freed with %d (class kmem-%05d)",
         p, n, size, c)
