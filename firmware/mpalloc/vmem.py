# vmem: the vmem(9) general-purpose resource allocator (Bonwick & Adams 2001).
#
#   vmem_create(name, base, size, quantum, qcache_max, flags) -> arena
#   vmem_add(vm, addr, size, flags) -> 0 | None
#   vmem_alloc(vm, size, flags) -> addr | None
#   vmem_xalloc(vm, size, align, phase, nocross, minaddr, maxaddr, flags) -> addr | None
#   vmem_free(vm, addr, size)          vmem_xfree(vm, addr, size)    vmem_destroy(vm)
#   vmem_set_import(vm, importfn, releasefn, arg, import_quantum)
#   vmem_set_reclaim(vm, reclaimfn)    vmem_set_limit(vm, limit)
#   vmem_size(vm, typemask)            vmem_roundup_size(vm, size)
# Man-page names and order (NetBSD subr_vmem.c); an out-parameter becomes
# the return value, ENOMEM None. importfn(arg, size, flags) -> addr | None,
# releasefn(arg, addr, size): a child imports with
# vmem_set_import(child, vmem_alloc, vmem_free, parent, q). The arena's methods
# ARE the module functions (vm.alloc is vmem_alloc). Flags: exactly one of
# M_WAITOK/M_NOWAIT, at most one of M_FIRSTFIT/M_BESTFIT/M_NEXTFIT.
#
# Representation: flat arrays, no per-segment object. Addresses are quanta
# from the arena origin: q = (addr - _origin) >> _qshift. Boundary tag t
# indexes parallel arrays: _seg_start, _seg_size, _seg_next/_seg_prev (the
# segment list, circular through sentinel tag 0), _free_next/_free_prev
# (free-list links; busy tags: _free_next chains the busy hash; unused tags:
# the spare chain from _spare_head), _seg_type (_T_SPAN .. _T_QC, _T_FREE +
# list). _free_head[i] heads free list i, bit i of _free_map set iff it is
# non-empty. Busy hash: heads in _hash_bucket, _hash_mask, _hash_shift.
# Quantum caches (1..16 quanta): _qc_stack, _qc_top, _qc_state per quantum.
#
# Invariants: segments of a span tile it in address order after its marker;
# no two FREE tags are neighbours; a free segment of n quanta on list i has
# 2**i <= n < 2**(i+2); every busy tag is on exactly one hash chain;
# _qc_state[q] != 0 iff a _T_QC tag starts at q, each parked item is on its
# class's stack once. Full statement: vmem_diag.check (vmem_check).
#
# Locking: one intr spin mutex per arena (skipped where it does nothing: _lk);
# arguments checked before the lock; locked sections release it on any
# exception. M_WAITOK is refused in interrupt context, waits <= wait_ms for
# frees. vmem_debug(True): vmem_check after every op but quantum-cache hits.
#
# Hot paths (vmem_alloc, vmem_xalloc, vmem_free, vmem_xfree; M_NOWAIT, steady
# state) allocate nothing: the tag reserve is refilled (_bt_refill) before a
# search. Misuse raises ValueError naming the function; heap locked: the
# preallocated E_*_LOCKED. Resident: what a running program reaches;
# vmem_setup (create, set_*) and vmem_diag (destroy, check, stats, misuse
# messages) load on use, then go (lazy.unload). Notes: docs/DESIGN-NOTES.md#vmem.
import sys
import time
from array import array

from mpalloc.compat import const, ticks_ms, ticks_diff
from mpalloc import intr, lazy

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
_T_SPAN = const(1)
_T_SSPAN = const(2)
_T_BUSY = const(3)
_T_XBUSY = const(4)
_T_QC = const(5)
_T_FREE = const(8)  # + the index of the free list the tag is on

_NLISTS = const(30)
_BT_MINRESERVE = const(4)
_MAXTAGS = const(65535)
_QMIN = const(-0x3FFFFFFF)
_QMAX = const(0x3FFFFFFF)
_QLIM = const(0x1FFFFFFF)  # |quantum offsets| and span ends stay below this
_NOQ = const(-0x40000000)  # _seg_start[0]: no segment starts there
_QCLASSES = const(16)
_QCAP = const(31)  # items per quantum-cache class (stack slots 1..31 of 32)
_QBATCH = const(16)
_NREL = const(8)
_BN = const(0xA000)  # M_BESTFIT | M_NEXTFIT
_NOWAIT_IF = const(0x1002)
_XLIM = const(1 << 40)  # sizes, alignments beyond this are refused up front  # M_NOWAIT | M_FIRSTFIT
_QS_CACHED = const(0x80)  # _qc_state: a parked quantum-cache item (1..16: handed out)

# Quantum-cache window: at most this many quanta (= bytes of state) above
# the arena's origin hold quantum-cache items (see the header).
qcache_window = 4096

wait_ms = 2000
vmem_list = []
_debug = [False]  # the debug switch (every module's idiom: see mpalloc/debug.py)

# The arena lock on the hot paths (refreshed after every intr.setup()):
#   _lk False: intr's mutex does nothing here (one CPU, nothing to mask: unix
#     MODE_UP, webassembly); the hot paths skip the calls.
#   Boards (MODE_UP/MODE_SIO with machine.disable_irq): intr.mutex_enter/exit.
#   MODE_THREAD (virtual board, host tests): the arena's _thread lock alone,
#     acquire()/release() without intr's per-CPU interrupt mask (_BARE). The
#     mask is there for data shared with handlers without a lock; every vmem
#     datum is under the arena lock, and an emulated handler (run_hard, its
#     own thread) that wants the arena blocks on that lock until the CPU's
#     thread drops it, as a masked IRQ stays pending. No holder of an arena
#     lock ever waits for a mask (imports, releases and the debug check run
#     unlocked), so no deadlock; the cold paths still take intr's full mutex.
#     _BARE = False uses intr.mutex_enter/exit there too.
#   _thr True: that bare lock, released on the quantum-cache hit paths by the
#     lock type's own release (_rel(vm._lock): one native call, where
#     _exit(vm._lock, s) is a Python call that then calls release).
_BARE = True
_lk = True
_thr = False
_enter = intr.mutex_enter
_exit = intr.mutex_exit
_rel = None


def _bare_exit(m, s):
    m.release()


def _sync():
    global _lk, _thr, _enter, _exit, _rel
    _enter = intr.mutex_enter
    _exit = intr.mutex_exit
    _lk = intr.mode == intr.MODE_THREAD or intr._machine is not None
    _thr = False
    if intr.mode == intr.MODE_THREAD:
        for vm in vmem_list:  # arenas made in another mode get their lock
            if vm._lock is None:
                vm._lock = intr.mutex_init()
        m = intr.mutex_init()
        if _BARE and hasattr(m, "acquire") and hasattr(m, "release"):
            _enter = type(m).acquire
            _exit = _bare_exit
            _rel = type(m).release
            _thr = True
    if _nat:  # the native paths take the mode's values too
        _nat.bind(globals(), _SXW)


_nat = None  # vmem_native once loaded, False where it cannot be (see the end)
_SXW = 32 if sys.maxsize > 0xFFFFFFFF else 0
intr._on_setup.append(_sync)
_sync()

# floor(log2(i)) for 1 <= i < 256; _CL[i] = ceil(log2(i)) for 1 <= i <= 256;
# _B37[(1 << k) % 37] = k for 0 <= k < 30 (2 is a primitive root mod 37)
_L = bytearray(256)
for _i in range(2, 256):
    _L[_i] = _L[_i >> 1] + 1
_CL = bytearray(257)
for _i in range(2, 257):
    _CL[_i] = _L[_i - 1] + 1
_B37 = bytearray(37)
for _i in range(30):
    _B37[(1 << _i) % 37] = _i
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


def _sleep1():
    try:
        time.sleep_ms(1)
    except AttributeError:
        time.sleep(0.001)


def _zeros(tc, n):
    return array(tc, bytes(n * (4 if tc == "i" else 2)))


class vmem:
    """A vmem arena. Use the module functions (or these methods, which are the
    same functions)."""

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
        hs = 4
        while hs < ncap // 2:
            hs <<= 1
        if old == 0:
            self._seg_start = _zeros("i", n)
            self._seg_size = _zeros("i", n)
            self._seg_next = _zeros("H", n)
            self._seg_prev = _zeros("H", n)
            self._free_next = _zeros("H", n)
            self._free_prev = _zeros("H", n)
            self._seg_type = bytearray(n)
            bk = _zeros("H", hs)
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
            bk = _zeros("H", hs)
            self._seg_start.extend(a)
            self._seg_size.extend(b)
            self._seg_next.extend(c)
            self._seg_prev.extend(d)
            self._free_next.extend(e)
            self._free_prev.extend(f)
            self._seg_type.extend(g)
        # chain the new tags into the reserve
        fn = self._free_next
        for t in range(ncap - 1, old - 1, -1):
            fn[t] = self._spare_head
            self._spare_head = t
        self._nspare += n
        self._cap = ncap
        # rehash the busy tags into the new buckets
        self._hash_bucket = bk
        self._hash_mask = hm = hs - 1
        self._hash_shift = hb = _flog2(hs)
        st = self._seg_start
        ty = self._seg_type
        for t in range(1, old):
            if _T_BUSY <= ty[t] <= _T_QC:
                q = st[t]
                h = (q ^ (q >> hb)) & hm
                fn[t] = bk[h]
                bk[h] = t


def _bt_refill(vm, need):
    # Called with the lock held when fewer than _BT_MINRESERVE tags are left.
    # Returns True if at least `need` tags are available afterwards.
    try:
        vm._grow(vm._cap * 2)
    except MemoryError:
        pass
    return vm._nspare >= need


def _bt_get(vm):
    t = vm._spare_head
    vm._spare_head = vm._free_next[t]
    vm._nspare -= 1
    return t


def _bt_put(vm, t):
    vm._seg_type[t] = 0
    vm._free_next[t] = vm._spare_head
    vm._spare_head = t
    vm._nspare += 1


def _fl_insert(vm, t):
    # free tag t onto the head of list floor(log2(size)); its type records it
    n = vm._seg_size[t]
    i = _L[n] if n < 0x100 else (_L[n >> 8] + 8 if n < 0x10000 else _flog2(n))  # in-line _flog2(n)
    vm._seg_type[t] = _T_FREE + i
    n = vm._free_head[i]
    vm._free_next[t] = n
    vm._free_prev[t] = 0
    if n:
        vm._free_prev[n] = t
    vm._free_head[i] = t
    vm._free_map |= 1 << i


def _fl_remove(vm, t):
    # take free tag t off its list (its type still names the list)
    p = vm._free_prev[t]
    n = vm._free_next[t]
    if p:
        vm._free_next[p] = n
    else:
        p = vm._seg_type[t] - _T_FREE
        vm._free_head[p] = n
        if not n:
            vm._free_map &= ~(1 << p)
        p = 0
    if n:
        vm._free_prev[n] = p


def _fl_move(vm, t):
    # free tag t's size left the range of its list: to the right one
    _fl_remove(vm, t)
    _fl_insert(vm, t)


def _hash_insert(vm, t):
    q = vm._seg_start[t]
    q = (q ^ (q >> vm._hash_shift)) & vm._hash_mask
    vm._free_next[t] = vm._hash_bucket[q]
    vm._hash_bucket[q] = t


def _hash_remove(vm, t):
    # take busy tag t off its chain
    u = vm._seg_start[t]
    h = (u ^ (u >> vm._hash_shift)) & vm._hash_mask
    u = vm._hash_bucket[h]
    if u == t:
        vm._hash_bucket[h] = vm._free_next[t]
        return
    while vm._free_next[u] != t:
        u = vm._free_next[u]
    vm._free_next[u] = vm._free_next[t]


def _hash_find(vm, q):
    # the busy tag starting at q, or 0
    t = vm._hash_bucket[(q ^ (q >> vm._hash_shift)) & vm._hash_mask]
    if vm._seg_start[t] != q:
        t = _hwalk(vm, t, q)
    return t


def _hwalk(vm, t, q):
    # the chain from t (whose start is not q) on to the tag starting at q, or 0;
    # the extra steps are counted
    n = 1
    while t:
        t = vm._free_next[t]
        n += 1
        if vm._seg_start[t] == q:
            break
    vm._xsteps += n - 1
    if n > vm._maxsteps:
        vm._maxsteps = n
    return t


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


def _split(vm, t, qs):
    # Free tag t (on a list, bigger than qs): a new tag b (returned) takes its
    # first qs quanta; t keeps the tail and its free-list place unless its
    # list index drops. Lock held, a reserve tag available.
    # In-line version of _bt_get(vm)
    b = vm._spare_head
    vm._spare_head = vm._free_next[b]
    vm._nspare -= 1
    q = vm._seg_start[t]
    vm._seg_start[b] = q
    vm._seg_size[b] = qs
    vm._seg_start[t] = q + qs
    q = vm._seg_prev[t]
    vm._seg_next[q] = b
    vm._seg_prev[b] = q
    vm._seg_next[b] = t
    vm._seg_prev[t] = b
    q = vm._seg_size[t] - qs
    vm._seg_size[t] = q
    qs = vm._seg_type[t] - _T_FREE
    if not q >> qs:  # below its list's range: to the head of its list
        if vm._free_prev[t]:
            _fl_move(vm, t)
            return b
        # t heads list qs (instant fit's case): off it, onto the head of list q.
        # In-line version of _fl_remove(vm, t) + _fl_insert(vm, t) (t a list head)
        c = vm._free_next[t]
        vm._free_head[qs] = c
        if c:
            vm._free_prev[c] = 0
        else:
            vm._free_map &= ~(1 << qs)
        q = _L[q] if q < 0x100 else (_L[q >> 8] + 8 if q < 0x10000 else _flog2(q))  # in-line _flog2(q)
        vm._seg_type[t] = _T_FREE + q
        c = vm._free_head[q]
        vm._free_next[t] = c
        if c:
            vm._free_prev[c] = t
        vm._free_head[q] = t
        vm._free_map |= 1 << q
    return b


def _carve(vm, t, a, qs, btype):
    # Allocate [a, a+qs) out of free tag t (already off its free list).
    # Needs 2 reserve tags. Returns the busy tag (in the hash).
    st = vm._seg_start
    sz = vm._seg_size
    sn = vm._seg_next
    sp = vm._seg_prev
    s = st[t]
    if a > s:  # leading fragment stays free, as its own tag
        f = _bt_get(vm)
        st[f] = s
        sz[f] = a - s
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
    vm._seg_type[b] = btype
    _hash_insert(vm, b)
    vm._inuse += qs
    return b


def _free_tag(vm, t):
    # t (busy, already off the hash) becomes free and coalesces with its free
    # neighbours; a wholly free imported span is noted for release
    # (vm._rel, see _release_pending). Lock held.
    vm._inuse -= vm._seg_size[t]
    n = vm._seg_next[t]
    if vm._seg_type[n] >= _T_FREE:  # t absorbs the next segment
        _fl_remove(vm, n)
        vm._seg_size[t] += vm._seg_size[n]
        p = vm._seg_next[n]
        vm._seg_next[t] = p
        vm._seg_prev[p] = t
        _bt_put(vm, n)
    p = vm._seg_prev[t]
    if vm._seg_type[p] >= _T_FREE:  # the previous segment absorbs t
        vm._seg_size[p] += vm._seg_size[t]
        n = vm._seg_next[t]
        vm._seg_next[p] = n
        vm._seg_prev[n] = p
        _bt_put(vm, t)
        if vm._seg_type[vm._seg_prev[p]] == _T_SPAN and _span_free(vm, p, True):
            return
        _fl_move(vm, p)  # to the head of list floor(log2), as NetBSD
        return
    if vm._seg_type[p] != _T_SPAN or not _span_free(vm, t, False):
        _fl_insert(vm, t)


def _span_free(vm, t, onlist):
    # Free tag t (on its free list if onlist): if it is a whole imported span,
    # take it off, unlink it and its marker, note the span for release and
    # return True.
    p = vm._seg_prev[t]
    if vm._seg_type[p] != _T_SPAN or vm._seg_size[p] != vm._seg_size[t] or vm._releasefn is None or vm._nrel >= _NREL:
        return False
    if onlist:
        _fl_remove(vm, t)
    i = vm._nrel * 2
    vm._rel[i] = vm._seg_start[p]
    vm._rel[i + 1] = vm._seg_size[p]
    vm._nrel += 1
    vm._size -= vm._seg_size[p]
    i = vm._seg_next[t]
    vm._seg_next[vm._seg_prev[p]] = i
    vm._seg_prev[i] = vm._seg_prev[p]
    _bt_put(vm, t)
    _bt_put(vm, p)
    vm._nrelease += 1
    return True


def _free_seg(vm, t, s):
    # vmem_free/vmem_xfree past validation, lock held (token s): busy tag t
    # leaves the hash and becomes free; drops the lock
    # In-line version of _hash_remove(vm, t)
    n = vm._seg_start[t]
    p = (n ^ (n >> vm._hash_shift)) & vm._hash_mask
    n = vm._hash_bucket[p]
    if n == t:
        vm._hash_bucket[p] = vm._free_next[t]
    else:  # t is further down the chain (vmem_free walked it)
        p = vm._free_next[n]
        while p != t:
            n = p
            p = vm._free_next[n]
        vm._free_next[n] = vm._free_next[t]
    n = vm._seg_next[t]
    p = vm._seg_prev[t]
    if vm._seg_type[p] >= _T_FREE and vm._seg_type[n] < _T_FREE:
        # common case (a ring of allocations freed oldest first): the free
        # previous neighbour p absorbs t; t goes to the reserve
        k = vm._seg_size[t]
        vm._inuse -= k
        vm._seg_next[p] = n
        vm._seg_prev[n] = p
        vm._seg_type[t] = 0  # in-line version of _bt_put(vm, t)
        vm._free_next[t] = vm._spare_head
        vm._spare_head = t
        vm._nspare += 1
        k += vm._seg_size[p]
        vm._seg_size[p] = k
        if vm._seg_type[vm._seg_prev[p]] != _T_SPAN or not _span_free(vm, p, True):
            # p to the head of list floor(log2(k)), as NetBSD
            t = _L[k] if k < 0x100 else (_L[k >> 8] + 8 if k < 0x10000 else _flog2(k))  # in-line _flog2(k)
            n = vm._seg_type[p] - _T_FREE
            if vm._free_prev[p]:
                _fl_move(vm, p)
            elif n != t:  # p heads list n: off it, onto the head of list t
                # In-line version of _fl_remove(vm, p) + _fl_insert(vm, p) (p a list head)
                k = vm._free_next[p]
                vm._free_head[n] = k
                if k:
                    vm._free_prev[k] = 0
                else:
                    vm._free_map &= ~(1 << n)
                vm._seg_type[p] = _T_FREE + t
                k = vm._free_head[t]
                vm._free_next[p] = k
                if k:
                    vm._free_prev[k] = p
                vm._free_head[t] = p
                vm._free_map |= 1 << t
    elif vm._seg_type[n] >= _T_FREE and _T_SPAN < vm._seg_type[p] < _T_FREE:
        # common case: the free next neighbour n absorbs t (keeping its
        # free-list place unless it outgrows its list); t goes to the reserve
        k = vm._seg_size[t]
        vm._inuse -= k
        vm._seg_start[n] = vm._seg_start[t]
        vm._seg_next[p] = n
        vm._seg_prev[n] = p
        vm._seg_type[t] = 0  # in-line version of _bt_put(vm, t)
        vm._free_next[t] = vm._spare_head
        vm._spare_head = t
        vm._nspare += 1
        k += vm._seg_size[n]
        vm._seg_size[n] = k
        _fl_move(vm, n)  # to the head of list floor(log2), as NetBSD
    elif vm._seg_type[n] >= _T_FREE or vm._seg_type[p] >= _T_FREE or vm._seg_type[p] == _T_SPAN:
        _free_tag(vm, t)
    else:  # no free neighbour: t goes on its free list
        vm._inuse -= vm._seg_size[t]
        _fl_insert(vm, t)
    if _lk:
        _exit(vm._lock, s)
    if vm._nrel:
        _release_pending(vm)
    if _debug[0]:
        vmem_check(vm)


def _release_pending(vm):
    # hand the spans noted by _free_tag to releasefn, one at a time, each
    # taken off the list under the lock and released without it
    m = vm._lock
    while True:
        s = _enter(m)
        try:
            n = vm._nrel
            if n:
                vm._nrel = n - 1
                q = vm._rel[2 * n - 2]
                sz = vm._rel[2 * n - 1]
        finally:
            _exit(m, s)
        if not n:
            return
        vm._releasefn(vm._arg, vm._origin + (q << vm._qshift), sz << vm._qshift)


# ---------------------------------------------------------------- misuse


def _chk_arena(fn, vm):
    # TypeError/ValueError naming fn unless vm is a live arena
    if vm.__class__ is not vmem or vm._dead:
        _cold("vmem_diag", "bad_arena", fn, vm)


def _cold(mod, fn, *args):
    # mod.fn(*args) from a module of cold paths, imported for the call and
    # dropped after (vmem_diag stays while debug mode holds it)
    # => thread context (the import allocates).
    if mod == "vmem_setup":
        from mpalloc import vmem_setup as m
    else:
        from mpalloc import vmem_diag as m
    try:
        return getattr(m, fn)(*args)
    finally:
        if mod != "vmem_diag" or _diag is None:
            lazy.unload(mod)


def _chk_alloc(vm, size, flags):
    # vmem_alloc's checks past its one-comparison fast test (size > 0 and
    # flags == M_NOWAIT): raises on misuse, returns for a valid request
    if flags.__class__ is not int:
        _bad_alloc("vmem_alloc", vm, size, flags)
    f = flags & _FITMASK
    if size <= 0 or not (flags + 1) & 2 or f & (f - 1) or vm._dead or (flags & M_WAITOK and intr.cpu_intr_p()):
        _bad_alloc("vmem_alloc", vm, size, flags)


# Misuse found on a path callable from interrupt context (the heap locked):
# the message cannot be formatted, so one of these PREALLOCATED exceptions is
# raised instead; the offending address (or size) is in vmem_lasterr[0], the
# arena in vmem_lasterr[1]. Elsewhere misuse raises a ValueError/TypeError
# whose message names the function and what was wrong.
vmem_lasterr = [0, None]
E_ALLOC_LOCKED = ValueError("vmem_alloc: misuse with the heap locked (size, arena in vmem.vmem_lasterr)")
E_XALLOC_LOCKED = ValueError("vmem_xalloc: misuse with the heap locked (size, arena in vmem.vmem_lasterr)")
E_FREE_LOCKED = ValueError("vmem_free: misuse with the heap locked (address, arena in vmem.vmem_lasterr)")
E_XFREE_LOCKED = ValueError("vmem_xfree: misuse with the heap locked (address, arena in vmem.vmem_lasterr)")


def _bad_alloc(fn, vm, size, flags):
    vmem_lasterr[0] = size
    vmem_lasterr[1] = vm
    try:
        _misuse().bad_alloc(fn, vm, size, flags)
    except MemoryError:
        raise E_XALLOC_LOCKED if fn == "vmem_xalloc" else E_ALLOC_LOCKED
    finally:
        _misuse_done()


def _misuse():
    # vmem_diag for a misuse message (MemoryError with the heap locked)
    from mpalloc import vmem_diag

    return vmem_diag


def _misuse_done():
    # drop vmem_diag again unless debug mode holds it (allocates nothing:
    # with the heap locked the import failed and there is nothing to drop)
    if _diag is None and "mpalloc.vmem_diag" in sys.modules:
        lazy.unload("vmem_diag")


def _bad_xargs(vm, size, align, phase, nocross, minaddr, maxaddr):
    # vmem_xalloc's constraint misuse: a formatted ValueError/TypeError, or
    # with the heap locked the preallocated E_XALLOC_LOCKED (size in vmem_lasterr)
    vmem_lasterr[0] = size
    vmem_lasterr[1] = vm
    try:
        _misuse().bad_xargs(vm, size, align, phase, nocross, minaddr, maxaddr)
    except MemoryError:
        raise E_XALLOC_LOCKED
    finally:
        _misuse_done()


def _bad_free(vm, addr, size):
    vmem_lasterr[0] = addr
    vmem_lasterr[1] = vm
    try:
        _misuse().bad_free("vmem_free", vm, addr, size)
    except MemoryError:
        raise E_FREE_LOCKED
    finally:
        _misuse_done()


def _bad_xfree(vm, addr, size):
    vmem_lasterr[0] = addr
    vmem_lasterr[1] = vm
    try:
        _misuse().bad_free("vmem_xfree", vm, addr, size)
    except MemoryError:
        raise E_XFREE_LOCKED
    finally:
        _misuse_done()


# ---------------------------------------------------------------- allocation


def _qc_fill(vm, qs):
    # Quantum-cache miss (lock held, the stack of class qs empty): carve
    # _QBATCH items of qs quanta from one free segment inside the window
    # (instant fit when the head it picks lies there, else a constrained
    # search), park all but the first, hand that one out. Its tag, or 0.
    nb = _QBATCH
    if vm._nspare < nb + 2 and not _bt_refill(vm, nb + 2):
        nb = vm._nspare - 2
        if nb < 1:
            return 0
    tot = qs * nb
    w = len(vm._qc_state)
    k = _flog2(tot - 1) + 1 if tot > 1 else 0
    c = vm._free_map >> k
    b = 0
    if c:
        b = vm._free_head[k + _B37[(c & -c) % 37]]
        a = vm._seg_start[b]
        if 0 <= a and a + tot <= w:
            _fl_remove(vm, b)
            b = _carve(vm, b, a, tot, _T_QC)
        else:
            b = 0
    if not b:
        b = _search(vm, tot, 1, 0, 0, 0, w, 0, _T_QC)
        if not b:
            return 0
    vm._qfills += 1
    # split b into nb items: b keeps the first, the others go to the stack
    st = vm._seg_start
    sz = vm._seg_size
    sn = vm._seg_next
    sp = vm._seg_prev
    ty = vm._seg_type
    qcs = vm._qc_stack
    qst = vm._qc_state
    top = vm._qc_top[qs]
    sz[b] = qs
    q = st[b]
    qst[q] = qs
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
        _hash_insert(vm, u)
        top += 1  # (nb <= _QBATCH < _QCAP: the stack was empty)
        qcs[top] = q
        qst[q] = _QS_CACHED
    vm._qc_top[qs] = top
    sn[prev] = nxt
    sp[nxt] = prev
    return b


def _qc_drain(vm, qs, keep):
    # give cached items of class qs back to the arena until `keep` are left
    # (lock held; spans to release end up in vm._rel)
    n = vm._qc_top[qs]
    while n & 31 > keep:
        q = vm._qc_stack[n]
        n -= 1
        vm._qc_top[qs] = n
        vm._qc_state[q] = 0
        q = _hash_find(vm, q)
        _hash_remove(vm, q)
        _free_tag(vm, q)
    vm._qdrains += 1


def _qc_drain_all(vm):
    # lock held; True if something was drained
    r = False
    k = 1
    while k <= vm._qcmax:
        if vm._qc_top[k] & 31:
            _qc_drain(vm, k, 0)
            r = True
        k += 1
    return r


def vmem_alloc(vm, size, flags):
    """Allocate size bytes (rounded up to the quantum); the address or None."""
    # => any context with M_NOWAIT; M_WAITOK only in thread context. The arena lock not held.
    # => size > 0; flags: one of M_WAITOK/M_NOWAIT, at most one of M_FIRSTFIT/M_BESTFIT/M_NEXTFIT.
    # => failure: None (M_WAITOK: after wait_ms); misuse: ValueError/TypeError naming vmem_alloc.
    qs = (size + vm._qmask) >> vm._qshift  # a non-int size or arena fails here, before the lock
    if qs <= 0 or (flags != M_NOWAIT and flags != _NOWAIT_IF):
        _chk_alloc(vm, size, flags)
    if qs > vm._qcmax:
        return _instant_fit_alloc(vm, qs, flags)
    # quantum cache: pop the top item of class qs; it is handed out
    s = _enter(vm._lock) if _lk else 0
    n = vm._qc_top[qs]
    if n & 31:
        vm._qc_top[qs] = n - 1
        n = vm._qc_stack[n]
        vm._qc_state[n] = qs
        n = vm._origin + (n << vm._qshift)
        if _thr:
            _rel(vm._lock)
        elif _lk:
            _exit(vm._lock, s)
        return n
    if _lk:
        _exit(vm._lock, s)
    return _qc_miss(vm, qs, flags)


def _qc_miss(vm, qs, flags):
    s = _enter(vm._lock) if _lk else 0
    t = vm._qc_top[qs]
    if t & 31:  # refilled by another thread meanwhile
        vm._qc_top[qs] = t - 1
        t = vm._qc_stack[t]
        vm._qc_state[t] = qs
    else:
        t = _qc_fill(vm, qs)
        if not t:
            if _lk:
                _exit(vm._lock, s)
            return _best_fit_alloc(vm, qs, flags)  # the segment path (it imports / waits)
        t = vm._seg_start[t]
    t = vm._origin + (t << vm._qshift)
    if _lk:
        _exit(vm._lock, s)
    if _debug[0]:
        vmem_check(vm)
    return t


def _instant_fit_alloc(vm, qs, flags):
    # vmem_alloc above the quantum caches: instant fit takes the head of the
    # first free list whose every member is big enough, from its front
    if flags & _BN or qs > _QLIM:
        return _best_fit_alloc(vm, qs, flags)
    s = _enter(vm._lock) if _lk else 0
    j = _CL[qs] if qs < 0x101 else _flog2(qs - 1) + 1
    c = vm._free_map >> j << j
    if c and vm._nspare >= _BT_MINRESERVE:
        j = _B37[(c & -c) % 37]
        t = vm._free_head[j]
        if vm._seg_size[t] != qs:
            t = _split(vm, t, qs)
        else:  # exact: t leaves the head of list j
            # In-line version of _fl_remove(vm, t) (t a list head)
            c = vm._free_next[t]
            vm._free_head[j] = c
            if c:
                vm._free_prev[c] = 0
            else:
                vm._free_map &= ~(1 << j)
        vm._seg_type[t] = _T_BUSY
        # In-line version of _hash_insert(vm, t)
        c = vm._seg_start[t]
        j = (c ^ (c >> vm._hash_shift)) & vm._hash_mask
        vm._free_next[t] = vm._hash_bucket[j]
        vm._hash_bucket[j] = t
        vm._inuse += qs
        c = vm._origin + (c << vm._qshift)
        if _lk:
            _exit(vm._lock, s)
        if _debug[0]:
            vmem_check(vm)
        return c
    if _lk:
        _exit(vm._lock, s)
    return _best_fit_alloc(vm, qs, flags)


def _best_fit_alloc(vm, qs, flags):
    # vmem_alloc past instant fit: best fit (also instant fit's fallback to
    # the lists that may hold a big-enough segment) in small frames; then the
    # general path (next fit, tag refill, import, reclaim, wait, failure)
    if not flags & M_NEXTFIT and qs <= _QLIM and not vm._dead:
        s = _enter(vm._lock) if _lk else 0
        t = _best_fit(vm, qs) if vm._nspare >= _BT_MINRESERVE else 0
        if t:
            if vm._seg_size[t] != qs:
                t = _split(vm, t, qs)
            else:
                _fl_remove(vm, t)
            vm._seg_type[t] = _T_BUSY
            _hash_insert(vm, t)
            vm._inuse += qs
            t = vm._origin + (vm._seg_start[t] << vm._qshift)
            if _lk:
                _exit(vm._lock, s)
            if _debug[0]:
                vmem_check(vm)
            return t
        if _lk:
            _exit(vm._lock, s)
    return _general_alloc(vm, qs, flags)


def _general_alloc(vm, qs, flags):
    if qs > _QLIM:  # refused before any lock: no span is that big
        _bad_alloc("vmem_alloc", vm, qs << vm._qshift, flags)
    return _xalloc(vm, qs, 1, 0, 0, _QMIN, _QMAX, flags, _T_BUSY, "vmem_alloc")


def _best_fit(vm, qs):
    # Best fit without constraints (lock held): the smallest free segment of
    # at least qs quanta, or 0. Lists below floor(log2(qs)) - 1 hold none big
    # enough; once list i has one, lists above i + 1 hold only bigger ones.
    i = _flog2(qs) - 1 if qs > 1 else 0
    c = vm._free_map >> i
    vm._ops = 0
    b = 0
    while c:
        if c & 1:
            b = _best_fit_scan(vm, vm._free_head[i], qs, 0)
            if b:
                if c & 2:
                    b = _best_fit_scan(vm, vm._free_head[i + 1], qs, b)
                break
        c >>= 1
        i += 1
    c = vm._ops
    if c > 1:
        vm._xsteps += c - 1
        if c > vm._maxsteps:
            vm._maxsteps = c
    return b


def _best_fit_scan(vm, t, qs, b):
    # the smallest segment of at least qs quanta on the free list from t, or b
    # if b (or nothing there) is smaller; the visits counted in vm._ops
    n = 0
    while t:
        n += 1
        if vm._seg_size[t] >= qs and (not b or vm._seg_size[t] < vm._seg_size[b]):
            b = t
        t = vm._free_next[t]
    vm._ops += n
    return b


def vmem_xalloc(vm, size, align, phase, nocross, minaddr, maxaddr, flags):
    """Allocate size bytes at an address a with a % align == phase, [a, a+size)
    within one nocross-aligned block, minaddr <= a and a+size-1 <= maxaddr
    (maxaddr inclusive). align 0 = the quantum, nocross 0 = none. Never from
    the quantum cache. The address or None."""
    # => as vmem_alloc; align, phase, nocross in 0..2**40 (align, nocross 0 or powers of two),
    # => minaddr <= maxaddr. failure: None; misuse: ValueError naming vmem_xalloc.
    fname = "vmem_xalloc"
    if vm.__class__ is not vmem or size.__class__ is not int or flags.__class__ is not int:
        _bad_alloc(fname, vm, size, flags)
    f = flags & _FITMASK
    if vm._dead or size <= 0 or not (flags + 1) & 2 or f & (f - 1) or size > _XLIM:
        _bad_alloc(fname, vm, size, flags)
    if (align.__class__ is not int or phase.__class__ is not int or nocross.__class__ is not int
            or minaddr.__class__ is not int or maxaddr.__class__ is not int
            or not (0 <= align <= _XLIM and 0 <= phase <= _XLIM and 0 <= nocross <= _XLIM)):
        _bad_xargs(vm, size, align, phase, nocross, minaddr, maxaddr)
    qm = vm._qmask
    qsh = vm._qshift
    qs = (size + qm) >> qsh
    if qs > _QLIM:
        _bad_alloc(fname, vm, size, flags)
    if align == 0:
        align = vm.quantum
    # (no tuple, no loop: vmem_xalloc runs from interrupt handlers, heap locked;
    # vmem_diag.bad_xargs names the first constraint broken)
    if (align & (align - 1) or align & qm or phase & qm or phase >= align or minaddr > maxaddr
            or nocross and (nocross & (nocross - 1) or nocross & qm or nocross < qs << qsh
                            or (phase & (nocross - 1)) + (qs << qsh) > nocross)):
        _bad_xargs(vm, size, align, phase, nocross, minaddr, maxaddr)
    if flags & M_WAITOK and intr.cpu_intr_p():
        _bad_alloc(fname, vm, size, flags)
    org = vm._origin
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
    st = vm._seg_start
    sz = vm._seg_size
    fn = vm._free_next
    fh = vm._free_head
    ol = vm._origin_q
    fmap = vm._free_map
    steps = 0
    found = 0
    fa = 0
    strat = flags & _FITMASK
    if strat == M_NEXTFIT:
        # address-ordered next fit: the lowest fit at or after the cursor (the
        # end of the previous next-fit allocation), else wrap to the lowest fit.
        # Walks the whole segment list: for cyclic IDs, not a constant-time path.
        ty = vm._seg_type
        sn = vm._seg_next
        cur = vm._nextfit_cursor
        lo = cur if cur > minq else minq
        while True:
            t = sn[0]
            while t:
                steps += 1
                if ty[t] >= _T_FREE and sz[t] >= qs:
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
            vm._nextfit_cursor = fa + qs
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
            # best fit: the smallest fitting segment. Lists below
            # floor(log2(qs)) - 1 hold none big enough; once list i has a
            # fit, lists above i + 1 hold only bigger segments (2**(i+2) or
            # more), so the search ends after list i + 1.
            i = _flog2(qs) - 1 if qs > 1 else 0
            c = fmap >> i
            best = 0
            last = _NLISTS
            while c and i <= last:
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
                    if best and last == _NLISTS:
                        last = i + 1
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
    if vm._dead:
        _bad_alloc(fname, vm, qs << vm._qshift, flags)
    constrained = align > 1 or phase or nocross or minq != _QMIN or maxqx != _QMAX
    m = vm._lock
    t0 = None  # ticks_ms when the first wait began
    tried_reclaim = False
    while True:
        s = _enter(m)
        try:  # whatever raises in here (MemoryError, KeyboardInterrupt) drops the lock
            t = 0
            if vm._nspare >= 2 or _bt_refill(vm, 2):
                t = _search(vm, qs, align, phase, nocross, minq, maxqx, flags, btype)
            if t:
                q = vm._seg_start[t]
            else:
                gen = vm._nfreeop
                # drain the quantum caches before giving up
                drained = _qc_drain_all(vm) if vm._qcmax else False
        finally:
            _exit(m, s)
        if t:
            if _debug[0]:
                vmem_check(vm)
            return vm._origin + (q << vm._qshift)
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
        now = ticks_ms()
        if t0 is None:
            t0 = now
        if ticks_diff(now, t0) >= wait_ms:
            s = _enter(m)
            vm._nfail += 1
            _exit(m, s)
            raise MemoryError(
                "%s: arena '%s' could not supply %d bytes within %d ms" % (fname, vm.name, qs << vm._qshift, wait_ms)
            )
        while vm._nfreeop == gen and ticks_diff(ticks_ms(), t0) < wait_ms:
            _sleep1()
    s = _enter(m)
    vm._nfail += 1
    _exit(m, s)
    if _debug[0]:
        vmem_check(vm)
    return None


def _import(vm, qs, flags):
    # bring a span in from the source; True if one was added
    iq = vm._import_quantum
    size = ((qs << vm._qshift) + iq - 1) // iq * iq
    if vm._limit and (vm._size << vm._qshift) + size > vm._limit:
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
    # => any context; the arena lock not held. addr, size: an allocation of vmem_alloc, its size.
    # => foreign address, other size, double free: ValueError (heap locked: E_FREE_LOCKED).
    q = addr - vm._origin  # a non-int address or arena fails here, before the lock (so does a size below)
    qs = (size + vm._qmask) >> vm._qshift
    if q & vm._qmask:  # (a size <= 0 fails the size check below)
        _bad_free(vm, addr, size)
    q >>= vm._qshift
    s = _enter(vm._lock) if _lk else 0
    if 0 < qs <= vm._qcmax and 0 <= q < vm._qc_nwindow and vm._qc_state[q] == qs:
        # a quantum-cache item handed out with this size: push it onto the
        # stack of class qs (addr reused: the new top index)
        vm._qc_state[q] = _QS_CACHED
        vm._nfreeop += 1
        addr = vm._qc_top[qs] + 1
        if addr & 31:
            vm._qc_stack[addr] = q
            vm._qc_top[qs] = addr
            if _thr:
                _rel(vm._lock)
            elif _lk:
                _exit(vm._lock, s)
            return
        # full: half of the stack goes back to the arena first
        _qc_drain(vm, qs, _QCAP // 2)
        addr = vm._qc_top[qs] + 1
        vm._qc_stack[addr] = q
        vm._qc_top[qs] = addr
        if _lk:
            _exit(vm._lock, s)
        return _qc_after(vm)
    # In-line version of _hash_find(vm, q)
    t = vm._hash_bucket[(q ^ (q >> vm._hash_shift)) & vm._hash_mask]
    if vm._seg_start[t] != q:
        t = _hwalk(vm, t, q)
    if vm._seg_type[t] != _T_BUSY or vm._seg_size[t] != qs:
        if _lk:
            _exit(vm._lock, s)
        _bad_free(vm, addr, size)
    vm._nfreeop += 1
    _free_seg(vm, t, s)


def _qc_after(vm):
    # after a quantum-cache drain, unlocked: release spans, debug check
    if vm._nrel:
        _release_pending(vm)
    if _debug[0]:
        vmem_check(vm)


def vmem_xfree(vm, addr, size):
    """Free an allocation of vmem_xalloc (same size)."""
    # => any context; the arena lock not held. addr, size: an allocation of vmem_xalloc, its size.
    # => foreign address, other size, double free: ValueError (heap locked: E_XFREE_LOCKED).
    q = addr - vm._origin  # as in vmem_free
    qs = (size + vm._qmask) >> vm._qshift
    if q & vm._qmask:  # (a size <= 0 fails the size check below)
        _bad_xfree(vm, addr, size)
    q >>= vm._qshift
    s = _enter(vm._lock) if _lk else 0
    # In-line version of _hash_find(vm, q)
    t = vm._hash_bucket[(q ^ (q >> vm._hash_shift)) & vm._hash_mask]
    if vm._seg_start[t] != q:
        t = _hwalk(vm, t, q)
    if vm._seg_type[t] != _T_XBUSY or vm._seg_size[t] != qs:
        if _lk:
            _exit(vm._lock, s)
        _bad_xfree(vm, addr, size)
    vm._nfreeop += 1
    _free_seg(vm, t, s)


# ---------------------------------------------------------------- arenas


def vmem_create(name, base, size, quantum, qcache_max, flags):
    """A new arena named `name` managing [base, base+size) (size 0: none yet)."""
    # => thread context (allocates; vmem_setup does the work). quantum a power of two,
    # => qcache_max a multiple of it, size >= 0. Bad arguments: TypeError/ValueError;
    # => no heap for the arrays: MemoryError.
    return _cold("vmem_setup", "create", name, base, size, quantum, qcache_max, flags)


def _add(vm, addr, size, stype, fname):
    # add span [addr, addr+size) (lock taken here; allocates)
    qm = vm._qmask
    if addr.__class__ is not int or size.__class__ is not int or size <= 0 or addr < 0 or addr & qm or size & qm:
        _bad_span(fname, vm, addr, size, 0)
    m = vm._lock
    s = _enter(m)
    try:
        org = vm._origin
        if vm._lo is None:
            org = addr
        qsh = vm._qshift
        q = (addr - org) >> qsh
        n = size >> qsh
        if q < -_QLIM or q + n > _QLIM:
            _bad_span(fname, vm, addr, size, -1)
        st = vm._seg_start
        sz = vm._seg_size
        ty = vm._seg_type
        t = vm._seg_next[0]
        while t:
            if ty[t] <= _T_SSPAN and st[t] < q + n and q < st[t] + sz[t]:
                _bad_span(fname, vm, addr, size, t)
            t = vm._seg_next[t]
        if vm._nspare < _BT_MINRESERVE + 2:
            vm._grow(vm._cap * 2)
        st = vm._seg_start
        sz = vm._seg_size
        ty = vm._seg_type
        sn = vm._seg_next
        sp = vm._seg_prev
        if vm._lo is None:
            vm._origin = org
            vm._origin_q = (org >> qsh) & _QLIM
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
        last = sp[0]
        sn[last] = sp_t
        sp[sp_t] = last
        sn[sp_t] = f
        sp[f] = sp_t
        sn[f] = 0
        sp[0] = f
        _fl_insert(vm, f)
        vm._size += n
        if vm._qcmax:
            _qc_window(vm)
    finally:
        _exit(m, s)


def _bad_span(fname, vm, addr, size, t):
    # _add's misuse (t: 0 arguments, -1 too far from the origin, else the
    # overlapped span's tag): vmem_diag formats the message
    _misuse().bad_span(fname, vm, addr, size, t)


def _qc_window(vm):
    # grow the quantum-cache window to the arena's extent above its origin,
    # at most qcache_window quanta (lock held; allocates; a failure leaves
    # the window as it was, which is always safe)
    w = (vm._hi + 1 - vm._origin) >> vm._qshift
    if w > qcache_window:
        w = qcache_window
    n = len(vm._qc_state)
    if w <= n:
        return
    try:
        a = bytearray(w)
    except MemoryError:
        return
    a[0:n] = vm._qc_state
    vm._qc_state = a
    vm._qc_nwindow = w


def vmem_add(vm, addr, size, flags):
    """Add the static span [addr, addr+size) (never released). 0 or None."""
    # => thread context (allocates); the arena lock not held. [addr, addr+size) overlaps no span of the arena.
    # => returns 0; None when flags is M_NOWAIT and no boundary tag can be had.
    _chk_arena("vmem_add", vm)
    f = flags & _FITMASK if flags.__class__ is int else 0
    if flags.__class__ is not int or not (flags + 1) & 2 or f & (f - 1):
        _cold("vmem_diag", "chk_flags", "vmem_add", flags)
    try:
        _add(vm, addr, size, _T_SSPAN, "vmem_add")
    except MemoryError:
        if flags & M_WAITOK:
            raise
        return None
    if _debug[0]:
        vmem_check(vm)
    return 0


def vmem_destroy(vm):
    """Destroy the arena. Outstanding allocations are reported (ValueError,
    the arena stays intact); imported spans go back through releasefn."""
    # => thread context (allocates); nobody else uses the arena. Allocations still out: ValueError, arena intact.
    return _cold("vmem_diag", "destroy", vm)


def vmem_set_import(vm, importfn, releasefn, arg, import_quantum):
    """importfn(arg, size, flags) -> addr|None; releasefn(arg, addr, size)."""
    # => thread context (allocates), before the arena is shared. importfn, releasefn callable or None;
    # => import_quantum a multiple of the quantum. Bad arguments: TypeError/ValueError.
    return _cold("vmem_setup", "set_import", vm, importfn, releasefn, arg, import_quantum)


def vmem_set_reclaim(vm, reclaimfn):
    """reclaimfn(vm, flags) is called once before an M_WAITOK request waits."""
    # => thread context (allocates), before the arena is shared. reclaimfn callable or None.
    return _cold("vmem_setup", "set_reclaim", vm, reclaimfn)


def vmem_set_limit(vm, limit):
    """Import no span that would bring the arena above `limit` bytes (0: none)."""
    # => thread context; limit >= 0 (0: no limit). Bad arguments: TypeError/ValueError.
    return _cold("vmem_setup", "set_limit", vm, limit)


def vmem_roundup_size(vm, size):
    # => any context; size an int. Returns size rounded up to the quantum.
    _chk_arena("vmem_roundup_size", vm)
    if not isinstance(size, int):
        raise TypeError("vmem_roundup_size: size must be an int, not %s" % type(size).__name__)
    return (size + vm._qmask) & ~vm._qmask


def vmem_size(vm, typemask):
    """VMEM_ALLOC: bytes allocated; VMEM_FREE: bytes free; both: total;
    VMEM_MAXFREE: the largest free segment."""
    # => any context; the arena lock not held. typemask VMEM_ALLOC, VMEM_FREE, both, or VMEM_MAXFREE.
    _chk_arena("vmem_size", vm)
    qsh = vm._qshift
    if typemask == VMEM_ALLOC:
        return vm._inuse << qsh
    if typemask == VMEM_FREE:
        return (vm._size - vm._inuse) << qsh
    if typemask == VMEM_ALLOC | VMEM_FREE:
        return vm._size << qsh
    if typemask == VMEM_MAXFREE:
        return _largest(vm) << qsh
    if not isinstance(typemask, int):
        raise TypeError("vmem_size: typemask must be an int, not %s" % type(typemask).__name__)
    raise ValueError("vmem_size: typemask 0x%x is not VMEM_ALLOC, VMEM_FREE, both or VMEM_MAXFREE" % typemask)


def _largest(vm):
    # the top non-empty list i holds segments below 2**(i+2); list i - 1 may
    # hold bigger ones than list i (up to 2**(i+1)), lists below it do not
    fmap = vm._free_map
    if not fmap:
        return 0
    i = _flog2(fmap)
    best = 0
    for j in (i - 1, i):
        t = vm._free_head[j] if j >= 0 else 0
        while t:
            if vm._seg_size[t] > best:
                best = vm._seg_size[t]
            t = vm._free_next[t]
    return best


# ---------------------------------------------------------------- debug, stats


_diag = None  # vmem_diag once loaded (an import allocates, even a repeated one)


def _load_diag():
    global _diag
    from mpalloc import vmem_diag

    _diag = vmem_diag
    return vmem_diag


def vmem_debug(on):
    """Switch the full consistency check after every operation on or off."""
    # => thread context (loads vmem_diag the first time).
    if on:
        _load_diag()  # now: the check must not import (heap_lock, interrupts)
    _debug[0] = bool(on)


def vmem_check(vm):
    """VMEM_SANITY: check every invariant of the arena; AssertionError if not.
    Allocates nothing once vmem_diag is loaded (vmem_debug(True) loads it)."""
    # => the arena lock not held; thread context unless vmem_diag is loaded (vmem_debug(True)).
    # => a broken invariant: AssertionError.
    if vm.__class__ is not vmem:
        _chk_arena("vmem_check", vm)
    return (_diag or _load_diag()).check(vm)


def vmem_spans(vm):
    """[("span", addr, size, imported), ...] in segment-list order."""
    # => thread context (allocates); the arena lock not held.
    _chk_arena("vmem_spans", vm)
    return _cold("vmem_diag", "spans", vm)


def vmem_segments(vm):
    """[(addr, size, "free"|"alloc"), ...] in address order (quantum-cached
    items count as "alloc": the arena has handed them to its caches)."""
    # => thread context (allocates); the arena lock not held.
    _chk_arena("vmem_segments", vm)
    return _cold("vmem_diag", "segments", vm)


def vmem_stats(vm):
    """The statistics of STATS_CONTRACT.md (plus qcached, qhits, qfills,
    qdrains, tags)."""
    # => thread context (allocates); the arena lock not held.
    _chk_arena("vmem_stats", vm)
    return _cold("vmem_diag", "stats", vm)


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


# -- native hot paths (vmem_native.py, #20) -----------------------------------
# vmem_alloc and vmem_free (and the arena's alloc/free methods) are the viper
# pair where the runtime compiles it and mpalloc.native.switch[0] is on, else
# the bytecode pair above (_vmem_alloc, _vmem_free: the native pair's fallback
# for everything off its common path). Loaded by __import__ so that the flat
# filesystem's dependency scan (micro:bit) does not copy it there.
_vmem_alloc = vmem_alloc
_vmem_free = vmem_free


def _native_load():
    try:
        m = __import__("mpalloc.vmem_native", None, None, ("bind",))
        m.bind(globals(), _SXW)
        return m
    except (ImportError, SyntaxError, NotImplementedError, ValueError, MemoryError, AttributeError):
        # no module, no emitter, an .mpy of another arch (ValueError), no room
        return False


def _bind():
    # => thread context; no vmem_alloc/vmem_free under way (native.off()/on()).
    global _nat, vmem_alloc, vmem_free
    if _nat is None:
        m = sys.modules.get("mpalloc.native")  # (not imported: the switch is on)
        if m is None or m.switch[0]:  # off before vmem's import: no heap for the native code
            _nat = _native_load()
    if _nat and _nat.switch[0]:
        vmem_alloc, vmem_free = _nat.vmem_alloc, _nat.vmem_free
    else:
        vmem_alloc, vmem_free = _vmem_alloc, _vmem_free
    vmem.alloc = vmem_alloc
    vmem.free = vmem_free


def native_path():
    """'native' if vmem_alloc/vmem_free are vmem_native's now, else 'bytecode'."""
    # => any context.
    return "native" if _nat and vmem_alloc is _nat.vmem_alloc else "bytecode"


_bind()
