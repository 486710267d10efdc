# vmem: the vmem(9) general-purpose resource allocator (Bonwick & Adams 2001).
#
# Module-level functions carry the man-page names and parameter order
# (FreeBSD's vmem(9) page, NetBSD's subr_vmem.c semantics); an out-parameter
# becomes the return value and ENOMEM becomes None:
#
#   vmem_create(name, base, size, quantum, qcache_max, flags) -> arena
#   vmem_add(vm, addr, size, flags) -> 0 | None
#   vmem_alloc(vm, size, flags) -> addr | None
#   vmem_xalloc(vm, size, align, phase, nocross, minaddr, maxaddr, flags) -> addr | None
#   vmem_free(vm, addr, size)          vmem_xfree(vm, addr, size)
#   vmem_destroy(vm)
#   vmem_set_import(vm, importfn, releasefn, arg, import_quantum)
#   vmem_set_reclaim(vm, reclaimfn)    vmem_set_limit(vm, limit)
#   vmem_size(vm, typemask)            vmem_roundup_size(vm, size)
#
# importfn(arg, size, flags) -> addr | None and releasefn(arg, addr, size), so
# an arena imports from a parent arena with
#   vmem_set_import(child, vmem_alloc, vmem_free, parent, q).
# The arena object offers the same functions as methods (vm.alloc(size, flags)
# IS vmem_alloc: the class attributes are the module functions, no wrapper).
#
# Flags: M_WAITOK (= VM_SLEEP) or M_NOWAIT (= VM_NOSLEEP), exactly one; at most
# one of M_FIRSTFIT (= VM_INSTANTFIT), M_BESTFIT, M_NEXTFIT (none = instant fit).
#
# Representation (all metadata in flat arrays, no per-segment Python object):
#   Addresses are kept as quantum numbers relative to the arena's origin `_org`
#   (the first span's address): q = (addr - _org) >> _qsh. So no value on the
#   hot path reaches 2**30 on a 32-bit port as long as the arena spans less than
#   2**29 quanta around its origin and addr itself is a small int (< 2**30).
#   Alignment and nocross are computed on "absolute" quanta q + _ol, where
#   _ol = (_org >> _qsh) mod 2**29, so they hold for the real addresses.
#
#   Boundary tag t (index into the parallel arrays; tag 0 is the segment-list
#   sentinel; 16-bit links, so at most 65535 tags per arena):
#     _st[t]  start (quanta, 'i')       _sz[t]  size (quanta, 'i')
#     _sn[t], _sp[t]   segment list next/prev ('H'), circular through tag 0.
#                      Invariant: within a span, segments follow in address
#                      order right after the span's marker tag and tile it
#                      exactly; spans are appended in the order added.
#     _fn[t], _fp[t]   free list next/prev ('H', 0 = none) while _ty[t] == FREE;
#                      _fn chains the unused tags of the reserve.
#     _ty[t]  type (bytearray): _T_FREE, _T_BUSY (vmem_alloc), _T_XBUSY
#             (vmem_xalloc), _T_QC (busy, parked in a quantum cache), _T_SPAN
#             (imported span marker), _T_SSPAN (static span marker), 0 unused.
#   Free lists: _fh[i] heads the free segments whose size n satisfies
#     2**i <= n < 2**(i+1) (LIFO); bit i of _fmap is set iff list i is non-empty.
#     Invariant: no two FREE tags are neighbours in the segment list.
#   Busy hash: open addressing with linear probing in _ht ('H', tag index,
#     0 = empty), size a power of two >= 2 * tag capacity (load <= 1/2), key
#     _st[t] of busy tags (BUSY, XBUSY, QC) only; deletion by backward shift.
#     Keys are mixed as q ^ (q >> hbits): no dict keyed by raw addresses (those
#     degrade on MicroPython, whose small ints hash to themselves).
#   Tag reserve: unused tags chained through _fn from _tf, _ntf of them. Every
#     allocation needs at most 2 new tags; when fewer than _BT_MINRESERVE are
#     left, _bt_refill doubles the arrays (the only heap allocation, like
#     NetBSD's bt_refill, done before the search and tolerated to fail: under
#     heap_lock or in an interrupt the reserve carries the operation). In steady
#     state (segment count no longer growing) nothing is allocated.
#
# Quantum caches (sizes <= qcache_max): deviation from NetBSD, which builds them
# on pool_cache(9). pool_cache sits above vmem here, so each size class k
# (k quanta, 1 <= k <= 16) has a free stack of tag indices in one flat 'H'
# array (_QCAP slots per class). A cached item stays a busy segment (type _T_QC)
# in the arena, so frees are still validated through the hash. An empty stack
# is refilled with _QBATCH items carved from one segment (one segment-list
# visit); a full stack gives half of its items back.
#
# Locking: one intr spin mutex per arena. M_WAITOK is refused in interrupt
# context; it waits (polling, 1 ms sleeps) for frees for at most `wait_ms`
# milliseconds (module variable, default 2000), then raises MemoryError.
# Constrained requests (align, phase, nocross, minaddr or maxaddr given) never
# import and never wait.
#
# Debug: vmem_debug(True) runs vmem_check(vm) (the VMEM_SANITY-style full
# consistency check) after every operation. Off by default.
#
# Hot path (zero heap allocation, M_NOWAIT, steady state): vmem_alloc,
# vmem_xalloc, vmem_free, vmem_xfree. Misuse raises ValueError whose message
# starts with the function name (formatting it allocates; under heap_lock a
# MemoryError comes out instead, still an exception).
import time

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from array import array

from mpalloc import intr

M_WAITOK = const(0x1)
M_NOWAIT = const(0x2)
VM_SLEEP = const(0x1)
VM_NOSLEEP = const(0x2)
M_FIRSTFIT = const(0x1000)
VM_INSTANTFIT = const(0x1000)
M_BESTFIT = const(0x2000)
VM_BESTFIT = const(0x2000)
M_NEXTFIT = const(0x8000)
VM_NEXTFIT = const(0x8000)
_FITMASK = const(0xB000)
_WAITMASK = const(0x3)

VMEM_ALLOC = const(0x1)
VMEM_FREE = const(0x2)
VMEM_MAXFREE = const(0x10)
VMEM_ADDR_MIN = 0
VMEM_ADDR_MAX = (1 << 64) - 1  # all ones; compared, never used in arithmetic

# (vmem_diag.py repeats these values)
_T_FREE = const(1)
_T_BUSY = const(2)
_T_XBUSY = const(3)
_T_QC = const(4)
_T_SPAN = const(5)
_T_SSPAN = const(6)

_NLISTS = const(30)
_BT_MINRESERVE = const(4)
_MAXTAGS = const(65535)
_QMIN = const(-0x3FFFFFFF)
_QMAX = const(0x3FFFFFFF)
_QLIM = const(0x1FFFFFFF)  # |quantum offsets| and span ends stay below this
_QCLASSES = const(16)
_QCAP = const(32)
_QBATCH = const(16)
_NREL = const(8)

wait_ms = 2000
# intr's spin mutex, looked up once (they read intr's mode at each call)
_enter = intr.mutex_enter
_exit = intr.mutex_exit
vmem_list = []
_debug = False

# floor(log2(i)) for 1 <= i < 256; _CL[i] = ceil(log2(i)) for 1 <= i <= 256
_L = bytearray(256)
for _i in range(2, 256):
    _L[_i] = _L[_i >> 1] + 1
_CL = bytearray(257)
for _i in range(2, 257):
    _CL[_i] = _L[_i - 1] + 1
del _i


def _flog2(n):
    # floor(log2(n)) for 1 <= n < 2**30
    if n < 0x100:
        return _L[n]
    if n < 0x10000:
        return _L[n >> 8] + 8
    if n < 0x1000000:
        return _L[n >> 16] + 16
    return _L[n >> 24] + 24


def _ticks():
    try:
        return time.ticks_ms()
    except AttributeError:
        return int(time.monotonic() * 1000)


def _sleep1():
    try:
        time.sleep_ms(1)
    except AttributeError:
        time.sleep(0.001)


def _pow2(x):
    return x > 0 and (x & (x - 1)) == 0


def _zeros(tc, n):
    return array(tc, bytes(n * (4 if tc == "i" else 2)))


class vmem:
    """A vmem arena. Use the module functions (or these methods, which are the
    same functions)."""

    def __init__(self, name, quantum, qcache_max, flags):
        self.name = name
        self.quantum = quantum
        self.qcache_max = qcache_max
        self.flags = flags
        self._qsh = _flog2(quantum) if quantum < 0x40000000 else 30
        self._qm = quantum - 1
        self._lock = intr.mutex_init()
        self._org = 0  # address of quantum 0 (set by the first span)
        self._ol = 0  # (_org >> _qsh) mod 2**29
        self._lo = None  # lowest span address (bytes)
        self._hi = None  # highest span address (inclusive, bytes)
        # boundary tags
        self._cap = 0
        self._st = self._sz = self._sn = self._sp = self._fn = self._fp = None
        self._ty = None
        self._tf = 0
        self._ntf = 0
        self._ht = None
        self._hm = 0
        self._hb = 0
        self._fh = _zeros("H", _NLISTS)
        self._fmap = 0
        # accounting (quanta)
        self._size = 0  # all spans
        self._inuse = 0  # busy segments (incl. quantum-cached items)
        self._nfreeop = 0
        self._nimport = 0
        self._nrelease = 0
        self._nfail = 0
        self._xsteps = 0  # boundary-tag steps beyond the first of each operation
        self._maxsteps = 1  # worst steps of one operation
        self._nfq = _QMIN  # next-fit cursor (quanta, end of the last next-fit allocation)
        # import / reclaim / limit
        self._importfn = None
        self._releasefn = None
        self._arg = None
        self._iq = quantum
        self._reclaimfn = None
        self._limit = 0
        self._rel = _zeros("i", 2 * _NREL)  # spans to release: (q, size) pairs
        self._nrel = 0
        # quantum caches
        self._qcmax = qcache_max >> self._qsh
        self._qcs = _zeros("H", self._qcmax * _QCAP) if self._qcmax else None
        self._qcn = _zeros("H", self._qcmax + 1) if self._qcmax else None
        self._qfills = 0
        self._qdrains = 0
        self._dead = False
        self._grow(32)
        # tag 0: the segment-list sentinel
        self._tf = self._fn[0]
        self._ntf -= 1
        self._sn[0] = 0
        self._sp[0] = 0

    def __repr__(self):
        return "<vmem %r>" % (self.name,)

    def _grow(self, ncap):
        # Grow the tag arrays to ncap tags and rebuild the hash (allocates).
        old = self._cap
        if ncap > _MAXTAGS:
            ncap = _MAXTAGS
        if ncap <= old:
            raise MemoryError("vmem: arena '%s' has %d boundary tags, the maximum" % (self.name, old))
        n = ncap - old
        if old == 0:
            self._st = _zeros("i", n)
            self._sz = _zeros("i", n)
            self._sn = _zeros("H", n)
            self._sp = _zeros("H", n)
            self._fn = _zeros("H", n)
            self._fp = _zeros("H", n)
            self._ty = bytearray(n)
        else:
            # build every new array before touching the arena: a MemoryError
            # half-way leaves it as it was
            a = _zeros("i", n)
            b = _zeros("i", n)
            c = _zeros("H", n)
            d = _zeros("H", n)
            e = _zeros("H", n)
            f = _zeros("H", n)
            g = bytearray(n)
            hs = 4
            while hs < 2 * ncap:
                hs <<= 1
            ht = _zeros("H", hs)
            self._st.extend(a)
            self._sz.extend(b)
            self._sn.extend(c)
            self._sp.extend(d)
            self._fn.extend(e)
            self._fp.extend(f)
            self._ty.extend(g)
        # chain the new tags into the reserve
        fn = self._fn
        for t in range(ncap - 1, old - 1, -1):
            fn[t] = self._tf
            self._tf = t
        self._ntf += n
        self._cap = ncap
        if old == 0:
            hs = 4
            while hs < 2 * ncap:
                hs <<= 1
            ht = _zeros("H", hs)
        self._ht = ht
        self._hm = hs - 1
        self._hb = _flog2(hs)
        st = self._st
        ty = self._ty
        hm = self._hm
        hb = self._hb
        for t in range(1, old):
            if _T_BUSY <= ty[t] <= _T_QC:
                q = st[t]
                h = (q ^ (q >> hb)) & hm
                while ht[h]:
                    h = (h + 1) & hm
                ht[h] = t


def _bt_refill(vm, need):
    # Called with the lock held when fewer than _BT_MINRESERVE tags are left.
    # Returns True if at least `need` tags are available afterwards.
    try:
        vm._grow(vm._cap * 2)
    except MemoryError:
        pass
    return vm._ntf >= need


def _bt_get(vm):
    t = vm._tf
    vm._tf = vm._fn[t]
    vm._ntf -= 1
    return t


def _bt_put(vm, t):
    vm._ty[t] = 0
    vm._fn[t] = vm._tf
    vm._tf = t
    vm._ntf += 1


def _fl_insert(vm, t):
    n = vm._sz[t]
    i = _L[n] if n < 0x100 else _flog2(n)
    fh = vm._fh
    fn = vm._fn
    h = fh[i]
    fn[t] = h
    vm._fp[t] = 0
    if h:
        vm._fp[h] = t
    fh[i] = t
    vm._fmap |= 1 << i


def _fl_remove(vm, t):
    fn = vm._fn
    fp = vm._fp
    p = fp[t]
    n = fn[t]
    if p:
        fn[p] = n
    else:
        s = vm._sz[t]
        i = _L[s] if s < 0x100 else _flog2(s)
        vm._fh[i] = n
        if not n:
            vm._fmap &= ~(1 << i)
    if n:
        fp[n] = p


def _fl_move(vm, t, j, i):
    # free tag t moves from list j to list i (its size changed)
    fn = vm._fn
    fp = vm._fp
    fh = vm._fh
    p = fp[t]
    n = fn[t]
    if p:
        fn[p] = n
    else:
        fh[j] = n
        if not n:
            vm._fmap &= ~(1 << j)
    if n:
        fp[n] = p
    n = fh[i]
    fn[t] = n
    fp[t] = 0
    if n:
        fp[n] = t
    fh[i] = t
    vm._fmap |= 1 << i


def _hash_insert(vm, t, q):
    ht = vm._ht
    hm = vm._hm
    h = (q ^ (q >> vm._hb)) & hm
    while ht[h]:
        h = (h + 1) & hm
    ht[h] = t


def _hash_delete(vm, h):
    # remove the entry at slot h (backward-shift deletion)
    ht = vm._ht
    hm = vm._hm
    hb = vm._hb
    st = vm._st
    i = h
    j = h
    while True:
        j = (j + 1) & hm
        u = ht[j]
        if not u:
            break
        q = st[u]
        k = (q ^ (q >> hb)) & hm
        # u may move to i unless its home k lies cyclically in (i, j]
        if i <= j:
            if i < k <= j:
                continue
        elif i < k or k <= j:
            continue
        ht[i] = u
        i = j
    ht[i] = 0


def _hash_find(vm, q):
    # slot of the busy tag starting at q, or -1
    ht = vm._ht
    hm = vm._hm
    st = vm._st
    h = (q ^ (q >> vm._hb)) & hm
    t = ht[h]
    while t:
        if st[t] == q:
            return h
        h = (h + 1) & hm
        t = ht[h]
    return -1


def _fit(s, n, qs, align, phase, nocross, minq, maxqx, ol):
    # First start >= max(s, minq) inside [s, s+n) and below maxqx (exclusive)
    # that meets align/phase/nocross (on absolute quanta q + ol); or None.
    lo = s if s > minq else minq
    hi = s + n
    if hi > maxqx:
        hi = maxqx
    if hi - lo < qs:
        return None
    a = lo + ol
    if align > 1:
        a = ((a - phase + align - 1) & -align) + phase
    if nocross and (a ^ (a + qs - 1)) & -nocross:
        a = ((a - phase + nocross - 1) & -nocross) + phase
    a -= ol
    if a + qs <= hi:
        return a
    return None


def _carve(vm, t, a, qs, btype):
    # Allocate [a, a+qs) out of free tag t (already off its free list).
    # Needs 2 reserve tags. Returns the busy tag.
    st = vm._st
    sz = vm._sz
    sn = vm._sn
    sp = vm._sp
    s = st[t]
    if a > s:  # leading fragment stays free, as its own tag
        f = _bt_get(vm)
        st[f] = s
        sz[f] = a - s
        vm._ty[f] = _T_FREE
        p = sp[t]
        sn[p] = f
        sp[f] = p
        sn[f] = t
        sp[t] = f
        _fl_insert(vm, f)
        sz[t] -= a - s
        st[t] = a
    n = sz[t]
    if n == qs:
        b = t
    else:
        b = _bt_get(vm)
        st[b] = a
        sz[b] = qs
        p = sp[t]
        sn[p] = b
        sp[b] = p
        sn[b] = t
        sp[t] = b
        st[t] = a + qs
        sz[t] = n - qs
        _fl_insert(vm, t)
    vm._ty[b] = btype
    _hash_insert(vm, b, a)
    vm._inuse += qs
    return b


def _free_tag(vm, t):
    # t (busy, already out of the hash) becomes free; coalesce; maybe release
    # its span. Returns True if a span must be released (see _release_pending).
    # Free-list and reserve operations are inlined (hot path).
    sz = vm._sz
    sn = vm._sn
    sp = vm._sp
    ty = vm._ty
    fn = vm._fn
    fp = vm._fp
    fh = vm._fh
    vm._inuse -= sz[t]
    steps = 0
    n = sn[t]
    if ty[n] == _T_FREE:  # absorb the next segment
        x = fp[n]
        y = fn[n]
        if x:
            fn[x] = y
        else:
            k = sz[n]
            i = _L[k] if k < 0x100 else _flog2(k)
            fh[i] = y
            if not y:
                vm._fmap &= ~(1 << i)
        if y:
            fp[y] = x
        sz[t] += sz[n]
        x = sn[n]
        sn[t] = x
        sp[x] = t
        ty[n] = 0
        fn[n] = vm._tf
        vm._tf = n
        vm._ntf += 1
        steps += 1
    p = sp[t]
    if ty[p] == _T_FREE:  # the previous segment absorbs t
        x = fp[p]
        y = fn[p]
        if x:
            fn[x] = y
        else:
            k = sz[p]
            i = _L[k] if k < 0x100 else _flog2(k)
            fh[i] = y
            if not y:
                vm._fmap &= ~(1 << i)
        if y:
            fp[y] = x
        sz[p] += sz[t]
        x = sn[t]
        sn[p] = x
        sp[x] = p
        ty[t] = 0
        fn[t] = vm._tf
        vm._tf = t
        vm._ntf += 1
        t = p
        p = sp[t]
        steps += 1
    ty[t] = _T_FREE
    if steps:
        vm._xsteps += steps
        if steps >= vm._maxsteps:
            vm._maxsteps = steps + 1
    k = sz[t]
    if ty[p] == _T_SPAN and sz[p] == k and vm._releasefn is not None and vm._nrel < _NREL:
        # t is the whole imported span: give it back (after the lock is
        # dropped, see _release_pending)
        i = vm._nrel * 2
        vm._rel[i] = vm._st[p]
        vm._rel[i + 1] = k
        vm._nrel += 1
        vm._size -= k
        x = sn[t]
        y = sp[p]
        sn[y] = x
        sp[x] = y
        _bt_put(vm, t)
        _bt_put(vm, p)
        vm._nrelease += 1
        return True
    # onto free list floor(log2(k))
    i = _L[k] if k < 0x100 else _flog2(k)
    x = fh[i]
    fn[t] = x
    fp[t] = 0
    if x:
        fp[x] = t
    fh[i] = t
    vm._fmap |= 1 << i
    return False


def _release_pending(vm):
    # hand the spans noted by _free_tag to releasefn, one at a time, each
    # taken off the list under the lock and released without it
    m = vm._lock
    while True:
        s = _enter(m)
        n = vm._nrel
        if not n:
            _exit(m, s)
            return
        n -= 1
        vm._nrel = n
        q = vm._rel[2 * n]
        sz = vm._rel[2 * n + 1]
        _exit(m, s)
        vm._releasefn(vm._arg, vm._org + (q << vm._qsh), sz << vm._qsh)


# ---------------------------------------------------------------- misuse


def _chk_flags(fn, flags):
    w = flags & _WAITMASK
    if w == 0:
        raise ValueError("%s: flags 0x%x have no wait flag (need M_WAITOK or M_NOWAIT)" % (fn, flags))
    if w == _WAITMASK:
        raise ValueError("%s: flags 0x%x have both M_WAITOK and M_NOWAIT" % (fn, flags))
    f = flags & _FITMASK
    if f & (f - 1):
        raise ValueError("%s: flags 0x%x name more than one of M_FIRSTFIT, M_BESTFIT, M_NEXTFIT" % (fn, flags))


def _chk_arena(fn, vm):
    if not isinstance(vm, vmem):
        raise TypeError("%s: %r is not a vmem arena" % (fn, vm))
    if vm._dead:
        raise ValueError("%s: arena '%s' was destroyed" % (fn, vm.name))


def _bad_alloc(fn, vm, size, flags):
    from mpalloc import vmem_diag

    vmem_diag.bad_alloc(fn, vm, size, flags)


def _bad_free(fn, vm, addr, size, t):
    from mpalloc import vmem_diag

    vmem_diag.bad_free(fn, vm, addr, size, t)


# ---------------------------------------------------------------- allocation


def _qc_fill(vm, qs, btype):
    # Quantum-cache miss (lock held): carve _QBATCH items of qs quanta from
    # one segment, park all but one, return the busy tag of that one (or 0).
    nb = _QBATCH
    if vm._ntf < nb + 2 and not _bt_refill(vm, nb + 2):
        nb = vm._ntf - 2
        if nb < 1:
            return 0
    tot = qs * nb
    # instant fit for the whole batch, else just one item
    k = _flog2(tot - 1) + 1 if tot > 1 else 0
    c = vm._fmap >> k
    if not c:
        return 0
    low = c & -c
    j = k + _flog2(low)
    t = vm._fh[j]
    _fl_remove(vm, t)
    b = _carve(vm, t, vm._st[t], tot, btype)
    vm._qfills += 1
    # split b into nb items: b keeps the first, the others go to the stack
    st = vm._st
    sz = vm._sz
    sn = vm._sn
    sp = vm._sp
    ty = vm._ty
    qcs = vm._qcs
    qcn = vm._qcn
    base = (qs - 1) * _QCAP
    sz[b] = qs
    q = st[b]
    nxt = sn[b]
    prev = b
    for i in range(1, nb):
        u = _bt_get(vm)
        q += qs
        st[u] = q
        sz[u] = qs
        ty[u] = _T_QC
        sn[prev] = u
        sp[u] = prev
        prev = u
        _hash_insert(vm, u, q)
        qcs[base + qcn[qs]] = u
        qcn[qs] += 1
    sn[prev] = nxt
    sp[nxt] = prev
    return b


def _qc_drain(vm, qs, keep):
    # give cached items of class qs back to the arena until `keep` are left
    # (lock held; spans to release end up in vm._rel)
    qcs = vm._qcs
    qcn = vm._qcn
    base = (qs - 1) * _QCAP
    st = vm._st
    while qcn[qs] > keep:
        qcn[qs] -= 1
        t = qcs[base + qcn[qs]]
        _hash_delete(vm, _hash_find(vm, st[t]))
        _free_tag(vm, t)
    vm._qdrains += 1


def _qc_drain_all(vm):
    # lock held; True if something was drained
    r = False
    for k in range(1, vm._qcmax + 1):
        if vm._qcn[k]:
            _qc_drain(vm, k, 0)
            r = True
    return r


def vmem_alloc(vm, size, flags):
    """Allocate size bytes (rounded up to the quantum); the address or None."""
    # (flags + 1) & 2 is set iff exactly one of M_WAITOK (1), M_NOWAIT (2)
    f = flags & _FITMASK
    if size <= 0 or not (flags + 1) & 2 or f & (f - 1) or vm._dead:
        _bad_alloc("vmem_alloc", vm, size, flags)
    if flags & M_WAITOK and intr.cpu_intr_p():
        _bad_alloc("vmem_alloc", vm, size, flags)
    qs = (size + vm._qm) >> vm._qsh
    m = vm._lock
    if qs <= vm._qcmax:
        s = _enter(m)
        n = vm._qcn[qs]
        if n:
            n -= 1
            vm._qcn[qs] = n
            t = vm._qcs[(qs - 1) * _QCAP + n]
            vm._ty[t] = _T_BUSY
            q = vm._st[t]
            _exit(m, s)
            if _debug:
                vmem_check(vm)
            return vm._org + (q << vm._qsh)
        t = _qc_fill(vm, qs, _T_BUSY)
        if t:
            q = vm._st[t]
            _exit(m, s)
            if _debug:
                vmem_check(vm)
            return vm._org + (q << vm._qsh)
        _exit(m, s)
        # fall through to the segment path (it imports / waits)
    elif not flags & (M_BESTFIT | M_NEXTFIT):
        # instant fit, fast path: the head of the first free list whose every
        # member is big enough; the allocation is carved from its front
        s = _enter(m)
        k = _CL[qs] if qs < 0x101 else _flog2(qs - 1) + 1
        c = vm._fmap >> k
        if vm._ntf < _BT_MINRESERVE and not _bt_refill(vm, 2):
            c = 0  # no tags for a split: the general path says why
        if c:
            low = c & -c
            j = k + (_L[low] if low < 0x100 else (_L[low >> 8] + 8 if low < 0x10000 else _flog2(low)))
            fh = vm._fh
            fn = vm._fn
            t = fh[j]
            st = vm._st
            q = st[t]
            n = vm._sz[t] - qs
            if n == 0:  # exact: t itself leaves list j
                b = fn[t]
                fh[j] = b
                if b:
                    vm._fp[b] = 0
                else:
                    vm._fmap &= ~(1 << j)
                b = t
            else:
                # new busy tag b before t; t keeps the tail
                b = vm._tf
                vm._tf = fn[b]
                vm._ntf -= 1
                st[b] = q
                vm._sz[b] = qs
                sp = vm._sp
                p = sp[t]
                vm._sn[p] = b
                sp[b] = p
                vm._sn[b] = t
                sp[t] = b
                st[t] = q + qs
                vm._sz[t] = n
                if (n + qs) ^ n > n:  # top bit changed: the tail moves to a smaller list
                    i = _L[n] if n < 0x100 else _flog2(n)
                    fp = vm._fp
                    x = fn[t]
                    fh[j] = x
                    if x:
                        fp[x] = 0
                    else:
                        vm._fmap &= ~(1 << j)
                    x = fh[i]
                    fn[t] = x
                    fp[t] = 0
                    if x:
                        fp[x] = t
                    fh[i] = t
                    vm._fmap |= 1 << i
            vm._ty[b] = _T_BUSY
            ht = vm._ht
            hm = vm._hm
            h = (q ^ (q >> vm._hb)) & hm
            if ht[h]:
                x = 0
                while ht[h]:
                    h = (h + 1) & hm
                    x += 1
                vm._xsteps += x
                if x >= vm._maxsteps:
                    vm._maxsteps = x + 1
            ht[h] = b
            vm._inuse += qs
            _exit(m, s)
            if _debug:
                vmem_check(vm)
            return vm._org + (q << vm._qsh)
        _exit(m, s)
    return _xalloc(vm, qs, 1, 0, 0, _QMIN, _QMAX, flags, _T_BUSY, "vmem_alloc")


def vmem_xalloc(vm, size, align, phase, nocross, minaddr, maxaddr, flags):
    """Allocate size bytes at an address a with a % align == phase, [a, a+size)
    within one nocross-aligned block, minaddr <= a and a+size-1 <= maxaddr
    (maxaddr inclusive). align 0 = the quantum, nocross 0 = none. Never from
    the quantum cache. The address or None."""
    fname = "vmem_xalloc"
    f = flags & _FITMASK
    if vm._dead or size <= 0 or not (flags + 1) & 2 or f & (f - 1):
        _bad_alloc(fname, vm, size, flags)
    Q = vm.quantum
    qm = vm._qm
    qsh = vm._qsh
    qs = (size + qm) >> qsh
    if align == 0:
        align = Q
    if align < 0 or align & (align - 1):
        raise ValueError("vmem_xalloc: align %d is not a power of two" % align)
    if align & qm:
        raise ValueError("vmem_xalloc: align %d is not a multiple of the quantum %d" % (align, Q))
    if phase < 0 or phase & qm:
        raise ValueError("vmem_xalloc: phase %d is not a multiple of the quantum %d" % (phase, Q))
    if phase >= align:
        raise ValueError("vmem_xalloc: phase %d >= align %d" % (phase, align))
    if nocross:
        if nocross < 0 or nocross & (nocross - 1) or nocross & qm:
            raise ValueError("vmem_xalloc: nocross %d is not a power-of-two multiple of the quantum %d" % (nocross, Q))
        if nocross < qs << qsh:
            raise ValueError("vmem_xalloc: nocross %d is smaller than the size %d" % (nocross, qs << qsh))
        if (phase & (nocross - 1)) + (qs << qsh) > nocross:
            raise ValueError("vmem_xalloc: phase %d with size %d crosses the nocross boundary %d" % (phase, qs << qsh, nocross))
    if minaddr > maxaddr:
        raise ValueError("vmem_xalloc: minaddr 0x%x > maxaddr 0x%x" % (minaddr, maxaddr))
    if flags & M_WAITOK and intr.cpu_intr_p():
        _bad_alloc(fname, vm, size, flags)
    org = vm._org
    if vm._lo is None:
        return _xalloc(vm, qs, align >> qsh, phase >> qsh, nocross >> qsh, _QMIN, _QMAX, flags, _T_XBUSY, fname)
    if minaddr <= vm._lo:
        minq = _QMIN
    else:
        minq = (minaddr - org + qm) >> qsh
        if minq > _QLIM:
            minq = _QMAX
    if maxaddr >= vm._hi:
        maxq = _QMAX
    else:
        maxq = (maxaddr + 1 - org) >> qsh
        if maxq < -_QLIM:
            maxq = _QMIN
    return _xalloc(vm, qs, align >> qsh, phase >> qsh, nocross >> qsh, minq, maxq, flags, _T_XBUSY, fname)


def _search(vm, qs, align, phase, nocross, minq, maxqx, flags, btype):
    # One search of the free lists (lock held, >= 2 reserve tags). Returns the
    # busy tag or 0.
    st = vm._st
    sz = vm._sz
    fn = vm._fn
    fh = vm._fh
    ol = vm._ol
    fmap = vm._fmap
    steps = 0
    found = 0
    fa = 0
    strat = flags & _FITMASK
    if strat == M_NEXTFIT:
        # address-ordered next fit: the lowest fit at or after the cursor (the
        # end of the previous next-fit allocation), else wrap to the lowest fit.
        # Walks the whole segment list: for cyclic IDs, not a constant-time path.
        ty = vm._ty
        sn = vm._sn
        cur = vm._nfq
        lo = cur if cur > minq else minq
        while True:
            t = sn[0]
            while t:
                steps += 1
                if ty[t] == _T_FREE and sz[t] >= qs:
                    a = _fit(st[t], sz[t], qs, align, phase, nocross, lo, maxqx, ol)
                    if a is not None and (not found or a < fa):
                        found = t
                        fa = a
                t = sn[t]
            if found or lo == minq:
                break
            lo = minq
        if found:
            _fl_remove(vm, found)
            found = _carve(vm, found, fa, qs, btype)
            vm._nfq = fa + qs
    else:
        k = (_flog2(qs - 1) + 1) if qs > 1 else 0
        if strat != M_BESTFIT:
            # instant fit: only the head of each list whose members all fit
            i = k
            c = fmap >> k
            while c:
                if c & 1:
                    t = fh[i]
                    steps += 1
                    a = _fit(st[t], sz[t], qs, align, phase, nocross, minq, maxqx, ol)
                    if a is not None:
                        found = t
                        fa = a
                        break
                c >>= 1
                i += 1
        if not found:
            # best fit: from the list that may hold big-enough segments, the
            # smallest fitting segment of the first list that has one
            i = _flog2(qs)
            c = fmap >> i
            best = 0
            while c:
                if c & 1:
                    t = fh[i]
                    while t:
                        steps += 1
                        n = sz[t]
                        if n >= qs and (not best or n < sz[best]):
                            a = _fit(st[t], n, qs, align, phase, nocross, minq, maxqx, ol)
                            if a is not None:
                                best = t
                                fa = a
                        t = fn[t]
                    if best:
                        break
                c >>= 1
                i += 1
            found = best
        if found:
            _fl_remove(vm, found)
            found = _carve(vm, found, fa, qs, btype)
    if steps > 1:
        vm._xsteps += steps - 1
        if steps > vm._maxsteps:
            vm._maxsteps = steps
    return found


def _xalloc(vm, qs, align, phase, nocross, minq, maxqx, flags, btype, fname):
    # the general path: search, then (unconstrained only) import, reclaim, wait
    constrained = align > 1 or phase or nocross or minq != _QMIN or maxqx != _QMAX
    m = vm._lock
    deadline = None
    tried_reclaim = False
    while True:
        s = _enter(m)
        t = 0
        if vm._ntf >= 2 or _bt_refill(vm, 2):
            t = _search(vm, qs, align, phase, nocross, minq, maxqx, flags, btype)
        if t:
            q = vm._st[t]
            _exit(m, s)
            if _debug:
                vmem_check(vm)
            return vm._org + (q << vm._qsh)
        gen = vm._nfreeop
        # drain the quantum caches before giving up
        drained = _qc_drain_all(vm) if vm._qcmax else False
        _exit(m, s)
        if vm._nrel:
            _release_pending(vm)
        if drained:
            continue
        if constrained:
            break
        if vm._importfn is not None and _import(vm, qs, flags):
            continue
        if flags & M_NOWAIT:
            break
        if not tried_reclaim and vm._reclaimfn is not None:
            tried_reclaim = True
            vm._reclaimfn(vm, flags)
            continue
        # M_WAITOK: wait for a free
        now = _ticks()
        if deadline is None:
            deadline = now + wait_ms
        if now - deadline >= 0:
            s = _enter(m)
            vm._nfail += 1
            _exit(m, s)
            raise MemoryError(
                "%s: arena '%s' could not supply %d bytes within %d ms" % (fname, vm.name, qs << vm._qsh, wait_ms)
            )
        while vm._nfreeop == gen and _ticks() - deadline < 0:
            _sleep1()
    s = _enter(m)
    vm._nfail += 1
    _exit(m, s)
    if _debug:
        vmem_check(vm)
    return None


def _import(vm, qs, flags):
    # bring a span in from the source; True if one was added
    iq = vm._iq
    size = ((qs << vm._qsh) + iq - 1) // iq * iq
    if vm._limit and (vm._size << vm._qsh) + size > vm._limit:
        return False
    addr = vm._importfn(vm._arg, size, flags)
    if addr is None:
        return False
    try:
        _add(vm, addr, size, _T_SPAN, "vmem_import")
    except MemoryError:  # no tags: hand the span straight back
        if vm._releasefn is not None:
            vm._releasefn(vm._arg, addr, size)
        return False
    vm._nimport += 1
    return True


# ---------------------------------------------------------------- free


def vmem_free(vm, addr, size):
    """Free an allocation of vmem_alloc (same size)."""
    o = addr - vm._org
    qm = vm._qm
    if size <= 0 or o & qm:
        _bad_free("vmem_free", vm, addr, size, 0)
    qsh = vm._qsh
    q = o >> qsh
    qs = (size + qm) >> qsh
    m = vm._lock
    s = _enter(m)
    st = vm._st
    ht = vm._ht
    hm = vm._hm
    h = (q ^ (q >> vm._hb)) & hm
    t = ht[h]
    steps = 0
    while t:
        if st[t] == q:
            break
        h = (h + 1) & hm
        t = ht[h]
        steps += 1
    if not t or vm._ty[t] != _T_BUSY or vm._sz[t] != qs:
        _exit(m, s)
        _bad_free("vmem_free", vm, addr, size, t)
    vm._nfreeop += 1
    if qs <= vm._qcmax:
        n = vm._qcn[qs]
        if n < _QCAP:
            vm._qcs[(qs - 1) * _QCAP + n] = t
            vm._qcn[qs] = n + 1
            vm._ty[t] = _T_QC
            _exit(m, s)
            if _debug:
                vmem_check(vm)
            return
        _hash_delete(vm, h)
        _qc_drain(vm, qs, _QCAP // 2)
        _free_tag(vm, t)
        _exit(m, s)
        if vm._nrel:
            _release_pending(vm)
        if _debug:
            vmem_check(vm)
        return
    # backward-shift deletion of slot h
    hb = vm._hb
    i = h
    j = h
    while True:
        j = (j + 1) & hm
        u = ht[j]
        if not u:
            break
        steps += 1
        k = st[u]
        k = (k ^ (k >> hb)) & hm
        if i <= j:
            if i < k <= j:
                continue
        elif i < k or k <= j:
            continue
        ht[i] = u
        i = j
    ht[i] = 0
    if steps:
        vm._xsteps += steps
        if steps >= vm._maxsteps:
            vm._maxsteps = steps + 1
    ty = vm._ty
    sn = vm._sn
    n = sn[t]
    p = vm._sp[t]
    x = ty[p]
    if ty[n] == _T_FREE and x != _T_FREE and x != _T_SPAN:
        # common case: the free next neighbour n absorbs t (it keeps its
        # free-list place unless its list index changes); t goes back to
        # the reserve
        sz = vm._sz
        j = sz[n]
        k = j + qs
        sz[n] = k
        st[n] = q
        sn[p] = n
        vm._sp[n] = p
        ty[t] = 0
        vm._fn[t] = vm._tf
        vm._tf = t
        vm._ntf += 1
        vm._inuse -= qs
        if k ^ j > j:  # top bit changed: n moves to a bigger list
            _fl_move(vm, n, _flog2(j), _flog2(k))
        _exit(m, s)
        if _debug:
            vmem_check(vm)
        return
    if _free_tag(vm, t):
        _exit(m, s)
        _release_pending(vm)
    else:
        _exit(m, s)
    if _debug:
        vmem_check(vm)


def vmem_xfree(vm, addr, size):
    """Free an allocation of vmem_xalloc (same size)."""
    o = addr - vm._org
    qm = vm._qm
    if size <= 0 or o & qm:
        _bad_free("vmem_xfree", vm, addr, size, 0)
    qsh = vm._qsh
    q = o >> qsh
    qs = (size + qm) >> qsh
    m = vm._lock
    s = _enter(m)
    h = _hash_find(vm, q)
    t = vm._ht[h] if h >= 0 else 0
    if not t or vm._ty[t] != _T_XBUSY or vm._sz[t] != qs:
        _exit(m, s)
        _bad_free("vmem_xfree", vm, addr, size, t)
    vm._nfreeop += 1
    _hash_delete(vm, h)
    if _free_tag(vm, t):
        _exit(m, s)
        _release_pending(vm)
    else:
        _exit(m, s)
    if _debug:
        vmem_check(vm)


# ---------------------------------------------------------------- arenas


def vmem_create(name, base, size, quantum, qcache_max, flags):
    """A new arena named `name` managing [base, base+size) (size 0: none yet)."""
    if not isinstance(name, str):
        raise TypeError("vmem_create: name %r is not a str" % (name,))
    if not isinstance(quantum, int) or not _pow2(quantum):
        raise ValueError("vmem_create: quantum %r is not a power of two" % (quantum,))
    if qcache_max < 0 or qcache_max & (quantum - 1):
        raise ValueError("vmem_create: qcache_max %d is not a multiple of the quantum %d" % (qcache_max, quantum))
    if size < 0:
        raise ValueError("vmem_create: size %d < 0" % size)
    _chk_flags("vmem_create", flags)
    if qcache_max > _QCLASSES * quantum:
        qcache_max = _QCLASSES * quantum  # clamped as NetBSD does
    vm = vmem(name[:16], quantum, qcache_max, flags)
    if size:
        vmem_add(vm, base, size, flags)
    vmem_list.append(vm)
    return vm


def _add(vm, addr, size, stype, fname):
    # add span [addr, addr+size) (lock taken here)
    qm = vm._qm
    if size <= 0:
        raise ValueError("%s: size %d must be > 0" % (fname, size))
    if addr < 0 or addr & qm or size & qm:
        raise ValueError("%s: span 0x%x+0x%x is not aligned to the quantum %d" % (fname, addr, size, vm.quantum))
    m = vm._lock
    s = _enter(m)
    try:
        org = vm._org
        if vm._lo is None:
            org = addr
        qsh = vm._qsh
        q = (addr - org) >> qsh
        n = size >> qsh
        if q < -_QLIM or q + n > _QLIM:
            raise ValueError(
                "%s: span 0x%x+0x%x is too far (> 2**29 quanta) from the arena origin 0x%x" % (fname, addr, size, org)
            )
        st = vm._st
        sz = vm._sz
        ty = vm._ty
        t = vm._sn[0]
        while t:
            if ty[t] >= _T_SPAN and st[t] < q + n and q < st[t] + sz[t]:
                a = org + (st[t] << qsh)
                raise ValueError(
                    "%s: span 0x%x-0x%x overlaps span 0x%x-0x%x of arena '%s'"
                    % (fname, addr, addr + size - 1, a, a + (sz[t] << qsh) - 1, vm.name)
                )
            t = vm._sn[t]
        if vm._ntf < _BT_MINRESERVE + 2:
            vm._grow(vm._cap * 2)
        st = vm._st
        sz = vm._sz
        ty = vm._ty
        sn = vm._sn
        sp = vm._sp
        if vm._lo is None:
            vm._org = org
            vm._ol = (org >> qsh) & _QLIM
            vm._lo = addr
            vm._hi = addr + size - 1
        else:
            if addr < vm._lo:
                vm._lo = addr
            if addr + size - 1 > vm._hi:
                vm._hi = addr + size - 1
        sp_t = _bt_get(vm)
        f = _bt_get(vm)
        st[sp_t] = q
        sz[sp_t] = n
        ty[sp_t] = stype
        st[f] = q
        sz[f] = n
        ty[f] = _T_FREE
        last = sp[0]
        sn[last] = sp_t
        sp[sp_t] = last
        sn[sp_t] = f
        sp[f] = sp_t
        sn[f] = 0
        sp[0] = f
        _fl_insert(vm, f)
        vm._size += n
    finally:
        _exit(m, s)


def vmem_add(vm, addr, size, flags):
    """Add the static span [addr, addr+size) (never released). 0 or None."""
    _chk_arena("vmem_add", vm)
    _chk_flags("vmem_add", flags)
    try:
        _add(vm, addr, size, _T_SSPAN, "vmem_add")
    except MemoryError:
        if flags & M_WAITOK:
            raise
        return None
    if _debug:
        vmem_check(vm)
    return 0


def vmem_destroy(vm):
    """Destroy the arena. Outstanding allocations are reported (ValueError,
    the arena stays intact); imported spans go back through releasefn."""
    from mpalloc import vmem_diag

    vmem_diag.destroy(vm)


def vmem_set_import(vm, importfn, releasefn, arg, import_quantum):
    """importfn(arg, size, flags) -> addr|None; releasefn(arg, addr, size)."""
    _chk_arena("vmem_set_import", vm)
    if import_quantum == 0:
        import_quantum = vm.quantum
    if import_quantum < 0 or import_quantum & vm._qm:
        raise ValueError(
            "vmem_set_import: import_quantum %d is not a multiple of the quantum %d" % (import_quantum, vm.quantum)
        )
    vm._importfn = importfn
    vm._releasefn = releasefn
    vm._arg = arg
    vm._iq = import_quantum


def vmem_set_reclaim(vm, reclaimfn):
    """reclaimfn(vm, flags) is called once before an M_WAITOK request waits."""
    _chk_arena("vmem_set_reclaim", vm)
    vm._reclaimfn = reclaimfn


def vmem_set_limit(vm, limit):
    """Import no span that would bring the arena above `limit` bytes (0: none)."""
    _chk_arena("vmem_set_limit", vm)
    if limit < 0:
        raise ValueError("vmem_set_limit: limit %d < 0" % limit)
    vm._limit = limit


def vmem_roundup_size(vm, size):
    return (size + vm._qm) & ~vm._qm


def vmem_size(vm, typemask):
    """VMEM_ALLOC: bytes allocated; VMEM_FREE: bytes free; both: total;
    VMEM_MAXFREE: the largest free segment."""
    qsh = vm._qsh
    if typemask == VMEM_ALLOC:
        return vm._inuse << qsh
    if typemask == VMEM_FREE:
        return (vm._size - vm._inuse) << qsh
    if typemask == VMEM_ALLOC | VMEM_FREE:
        return vm._size << qsh
    if typemask == VMEM_MAXFREE:
        return _largest(vm) << qsh
    raise ValueError("vmem_size: typemask 0x%x is not VMEM_ALLOC, VMEM_FREE, both or VMEM_MAXFREE" % typemask)


def _largest(vm):
    fmap = vm._fmap
    if not fmap:
        return 0
    i = _flog2(fmap)
    t = vm._fh[i]
    best = 0
    while t:
        if vm._sz[t] > best:
            best = vm._sz[t]
        t = vm._fn[t]
    return best


# ---------------------------------------------------------------- debug, stats


def vmem_debug(on):
    """Switch the full consistency check after every operation on or off."""
    global _debug
    _debug = bool(on)


def vmem_check(vm):
    """VMEM_SANITY: check every invariant of the arena; AssertionError if not."""
    from mpalloc import vmem_diag

    return vmem_diag.check(vm)


def vmem_spans(vm):
    """[("span", addr, size, imported), ...] in segment-list order."""
    from mpalloc import vmem_diag

    return vmem_diag.spans(vm)


def vmem_segments(vm):
    """[(addr, size, "free"|"alloc"), ...] in address order (quantum-cached
    items count as "alloc": the arena has handed them to its caches)."""
    from mpalloc import vmem_diag

    return vmem_diag.segments(vm)


def vmem_stats(vm):
    """The statistics of STATS_CONTRACT.md (plus qcached, qhits, qfills,
    qdrains, tags)."""
    from mpalloc import vmem_diag

    return vmem_diag.stats(vm)


# the arena's methods are the module functions themselves (no wrapper call)
vmem.add = vmem_add
vmem.alloc = vmem_alloc
vmem.xalloc = vmem_xalloc
vmem.free = vmem_free
vmem.xfree = vmem_xfree
vmem.destroy = vmem_destroy
vmem.size = vmem_size
vmem.roundup_size = vmem_roundup_size
vmem.set_import = vmem_set_import
vmem.set_reclaim = vmem_set_reclaim
vmem.set_limit = vmem_set_limit
vmem.check = vmem_check
