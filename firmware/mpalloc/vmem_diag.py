# vmem_diag: the cold half of vmem(9): the full consistency check (VMEM_SANITY),
# statistics and segment maps (STATS_CONTRACT.md), vmem_destroy, and the
# error messages for misuse. Kept apart so that importing vmem compiles less
# (the direct run of a device suite at -X heapsize=192K compiles from source);
# vmem's functions of the same names call into this module. Nothing here is on
# a hot path: these functions allocate.
from mpalloc import intr
from mpalloc import vmem as _v
from mpalloc.vmem import (
    M_WAITOK,
    _chk_arena,
    _chk_flags,
    _flog2,
    _hash_find,
    _largest,
    _qc_drain_all,
    _release_pending,
)

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# the same values as in vmem.py (const names with a leading underscore are
# not exported by MicroPython)
_T_SPAN = const(1)
_T_SSPAN = const(2)
_T_BUSY = const(3)
_T_XBUSY = const(4)
_T_QC = const(5)
_T_FREE = const(8)
_NLISTS = const(30)
_QS_CACHED = const(0x80)
_NOSPAN = const(-0x40000000)  # no span seen yet (below every quantum offset)


def bad_alloc(fn, vm, size, flags):
    _chk_arena(fn, vm)
    if not isinstance(size, int):
        raise TypeError("%s: size %r is not an int" % (fn, size))
    if size <= 0:
        raise ValueError("%s: size %d must be > 0" % (fn, size))
    _chk_flags(fn, flags)
    if flags & M_WAITOK and intr.cpu_intr_p():
        raise ValueError("%s: M_WAITOK in interrupt context (use M_NOWAIT)" % fn)
    raise ValueError("%s: bad arguments" % fn)


def _where(vm, q):
    # describe where quantum q lies (slow; error paths only)
    st = vm._st
    sz = vm._sz
    ty = vm._ty
    t = vm._sn[0]
    while t:
        if ty[t] > _T_SSPAN and st[t] <= q < st[t] + sz[t]:
            a = vm._org + (st[t] << vm._qsh)
            if ty[t] >= _T_FREE:
                return "it is free (double free?)"
            if ty[t] == _T_QC and _qstate(vm, st[t]) == _QS_CACHED:
                return "it is free in the quantum cache (double free?)"
            return "it lies inside the allocation at 0x%x" % a
        t = vm._sn[t]
    return "it is outside every span of the arena"


def _qstate(vm, q):
    # the quantum-cache state of quantum q (0 outside the window)
    return vm._qst[q] if 0 <= q < len(vm._qst) else 0


def bad_free(fn, vm, addr, size):
    # raise the right error for a free that failed validation
    _chk_arena(fn, vm)
    if not isinstance(addr, int) or not isinstance(size, int):
        raise TypeError("%s: address and size must be ints, got %r, %r" % (fn, addr, size))
    if size <= 0:
        raise ValueError("%s: size %d must be > 0" % (fn, size))
    if vm._lo is None:
        raise ValueError("%s: address 0x%x was never allocated from arena '%s' (it has no span)" % (fn, addr, vm.name))
    o = addr - vm._org
    if o & vm._qm:
        raise ValueError("%s: address 0x%x is not a multiple of the quantum %d" % (fn, addr, vm.quantum))
    s = intr.mutex_enter(vm._lock)
    t = _hash_find(vm, o >> vm._qsh)
    intr.mutex_exit(vm._lock, s)
    if t:
        ty = vm._ty[t]
        if ty == _T_QC:
            if _qstate(vm, vm._st[t]) == _QS_CACHED:
                raise ValueError("%s: double free of 0x%x in arena '%s' (it is in the quantum cache)" % (fn, addr, vm.name))
            ty = _T_BUSY  # handed out by the quantum cache: a vmem_alloc allocation
        rs = vm._sz[t] << vm._qsh
        if ty == _T_XBUSY and fn == "vmem_free":
            raise ValueError("vmem_free: 0x%x was allocated with vmem_xalloc; free it with vmem_xfree" % addr)
        if ty == _T_BUSY and fn == "vmem_xfree":
            raise ValueError("vmem_xfree: 0x%x was allocated with vmem_alloc; free it with vmem_free" % addr)
        raise ValueError("%s: size %d does not match the allocation of %d bytes at 0x%x" % (fn, size, rs, addr))
    q = o >> vm._qsh
    raise ValueError("%s: address 0x%x was never allocated from arena '%s': %s" % (fn, addr, vm.name, _where(vm, q)))


def destroy(vm):
    """Destroy the arena. Outstanding allocations are reported (ValueError,
    the arena stays intact); imported spans go back through releasefn."""
    _chk_arena("vmem_destroy", vm)
    m = vm._lock
    s = intr.mutex_enter(m)
    _qc_drain_all(vm)
    out = []
    t = vm._sn[0]
    while t:
        if vm._ty[t] in (_T_BUSY, _T_XBUSY) or (vm._ty[t] == _T_QC and _qstate(vm, vm._st[t]) != _QS_CACHED):
            out.append((vm._org + (vm._st[t] << vm._qsh), vm._sz[t] << vm._qsh))
        t = vm._sn[t]
    intr.mutex_exit(m, s)
    if vm._nrel:
        _release_pending(vm)
    if out:
        lst = ", ".join(["0x%x+%d" % a for a in out[:8]])
        raise ValueError(
            "vmem_destroy: arena '%s' has %d outstanding allocation(s) (%d bytes): %s%s"
            % (vm.name, len(out), sum([a[1] for a in out]), lst, ", ..." if len(out) > 8 else "")
        )
    spans = [(a, n) for a, n, imp in _spans(vm) if imp]
    vm._dead = True
    # the fast paths see an arena with no quantum cache and no free segment,
    # so every request reaches the general path, which reports the arena dead
    vm._qcmax = 0
    vm._fmap = 0
    if vm in _v.vmem_list:
        _v.vmem_list.remove(vm)
    if vm._releasefn is not None:
        for a, n in spans:
            vm._releasefn(vm._arg, a, n)


# vmem_check's last failure (what, arena, a, b), kept where the heap is locked
# and the message cannot be formatted (then E_CHECK is raised).
check_lasterr = [None, None, 0, 0]
E_CHECK = AssertionError("vmem_check: arena inconsistent, found with the heap locked (vmem_diag.check_lasterr)")


def _fail(vm, what, a, b):
    # report a failed invariant: formatted where the heap allows, else E_CHECK
    check_lasterr[0] = what
    check_lasterr[1] = vm
    check_lasterr[2] = a
    check_lasterr[3] = b
    try:
        m = "vmem_check: arena '%s': %s (%r, %r)" % (vm.name, what, a, b)
    except MemoryError:
        raise E_CHECK
    raise AssertionError(m)


def check(vm):
    """VMEM_SANITY: check every invariant of the arena; AssertionError if not.
    Allocates nothing (flat arrays walked with while loops, no lists, no
    formatting) unless it reports a failure, so it also runs with the heap
    locked (debug mode in interrupt handlers); a failure found then raises
    the preallocated E_CHECK, details in check_lasterr."""
    _check_segs(vm)
    _check_spans(vm)
    _check_lists(vm)
    _check_hash(vm)
    _check_reserve(vm)
    _check_qc(vm)
    return True


def _check_segs(vm):
    # the segment list: links, spans tiled exactly, counters, coalescing,
    # every busy segment in the hash
    st = vm._st
    sz = vm._sz
    sn = vm._sn
    sp = vm._sp
    ty = vm._ty
    cap = vm._cap
    seen = size = inuse = 0
    t = sn[0]
    prev = 0
    end = pos = _NOSPAN
    while t:
        seen += 1
        if seen > cap:
            _fail(vm, "segment list loops", t, seen)
        if sp[t] != prev:
            _fail(vm, "tag: prev link, expected", t, prev)
        k = ty[t]
        if k and k <= _T_SSPAN:
            if end != _NOSPAN and pos != end:
                _fail(vm, "span not tiled: ends at q, stops at q", end, pos)
            size += sz[t]
            pos = st[t]
            end = pos + sz[t]
        elif k >= _T_FREE or _T_BUSY <= k <= _T_QC:
            if end == _NOSPAN:
                _fail(vm, "segment tag before any span", t, 0)
            if sz[t] <= 0:
                _fail(vm, "tag has size", t, sz[t])
            if st[t] != pos:
                _fail(vm, "tag starts elsewhere than q (gap or overlap)", t, pos)
            pos = st[t] + sz[t]
            if pos > end:
                _fail(vm, "tag runs past its span ending at q", t, end)
            if k >= _T_FREE:
                if ty[prev] >= _T_FREE:
                    _fail(vm, "free neighbours not coalesced", prev, t)
            else:
                inuse += sz[t]
                if _hash_find(vm, st[t]) != t:
                    _fail(vm, "busy tag missing from the hash (tag, q)", t, st[t])
        else:
            _fail(vm, "tag in the segment list has type", t, k)
        prev = t
        t = sn[t]
    if sp[0] != prev:
        _fail(vm, "sentinel prev link", sp[0], prev)
    if end != _NOSPAN and pos != end:
        _fail(vm, "last span not tiled: ends at q, stops at q", end, pos)
    if size != vm._size:
        _fail(vm, "size, counted", vm._size, size)
    if inuse != vm._inuse:
        _fail(vm, "inuse, counted", vm._inuse, inuse)


def _check_spans(vm):
    # no two spans overlap (spans are few: every pair is compared)
    st = vm._st
    sz = vm._sz
    sn = vm._sn
    ty = vm._ty
    t = sn[0]
    while t:
        if ty[t] <= _T_SSPAN:
            u = sn[t]
            while u:
                if ty[u] <= _T_SSPAN and st[u] < st[t] + sz[t] and st[t] < st[u] + sz[u]:
                    _fail(vm, "spans overlap (tags)", t, u)
                u = sn[u]
        t = sn[t]


def _check_lists(vm):
    # free lists: bitmap, types, links, size ranges; every free segment on one
    sz = vm._sz
    ty = vm._ty
    fn = vm._fn
    fp = vm._fp
    cap = vm._cap
    n = 0
    i = 0
    while i < _NLISTS:
        t = vm._fh[i]
        if (t != 0) != ((vm._fmap >> i) & 1 != 0):
            _fail(vm, "free list and the bitmap disagree (list, head)", i, t)
        p = 0
        while t:
            n += 1
            if n > cap:
                _fail(vm, "free list loops", i, t)
            if ty[t] != _T_FREE + i:
                _fail(vm, "tag on free list has another type (tag, list)", t, i)
            if fp[t] != p:
                _fail(vm, "free list: bad prev link at tag", i, t)
            if not 0 < sz[t] >> i < 4:
                _fail(vm, "tag's size out of its free list's range (tag, list)", t, i)
            p = t
            t = fn[t]
        i += 1
    f = 0
    t = vm._sn[0]
    while t:
        if ty[t] >= _T_FREE:
            f += 1
        t = vm._sn[t]
    if n != f:
        _fail(vm, "tags on free lists, free segments", n, f)


def _check_hash(vm):
    # the hash holds exactly the busy tags, each on its own chain
    st = vm._st
    ty = vm._ty
    fn = vm._fn
    cap = vm._cap
    hb = vm._hb
    hm = vm._hm
    nh = 0
    h = 0
    while h <= hm:
        t = vm._bk[h]
        while t:
            nh += 1
            if nh > cap:
                _fail(vm, "hash chain loops", h, t)
            if not _T_BUSY <= ty[t] <= _T_QC:
                _fail(vm, "hash chain holds a non-busy tag", h, t)
            if (st[t] ^ (st[t] >> hb)) & hm != h:
                _fail(vm, "tag on the wrong hash chain", t, h)
            t = fn[t]
        h += 1
    nb = 0
    t = vm._sn[0]
    while t:
        if _T_BUSY <= ty[t] <= _T_QC:
            nb += 1
        t = vm._sn[t]
    if nh != nb:
        _fail(vm, "hash holds tags, busy segments", nh, nb)


def _check_reserve(vm):
    ty = vm._ty
    n = 0
    t = vm._tf
    while n < vm._ntf:
        if ty[t] != 0:
            _fail(vm, "reserve tag has type", t, ty[t])
        t = vm._fn[t]
        n += 1
    seen = 0
    t = vm._sn[0]
    while t:
        seen += 1
        t = vm._sn[t]
    if seen + 1 + vm._ntf != vm._cap:
        _fail(vm, "tags listed + 1 + reserve, capacity", seen + 1 + vm._ntf, vm._cap)


def _check_qc(vm):
    # quantum caches: every stacked item is a parked QC tag, every QC tag lies
    # in the window with state "handed out" (its class) or "parked", and no
    # other state is set
    st = vm._st
    sz = vm._sz
    ty = vm._ty
    qst = vm._qst
    w = len(qst)
    if vm._qwn != w:
        _fail(vm, "quantum-cache window, state array length", vm._qwn, w)
    nqc = 0
    k = 1
    while k <= vm._qcmax:
        top = vm._qcn[k]
        if top >> 5 != k - 1:
            _fail(vm, "quantum cache: top index outside its stack (class, top)", k, top)
        i = (k - 1) * 32 + 1
        while i <= top:
            q = vm._qcs[i]
            t = _hash_find(vm, q) if q < w else 0
            if not t or ty[t] != _T_QC or sz[t] != k or qst[q] != _QS_CACHED:
                _fail(vm, "quantum cache holds a bad item (class, q)", k, q)
            nqc += 1
            i += 1
        k += 1
    n = parked = 0
    t = vm._sn[0]
    while t:
        if ty[t] == _T_QC:
            n += 1
            q = st[t]
            if not 0 <= q < w or (qst[q] != sz[t] and qst[q] != _QS_CACHED):
                _fail(vm, "quantum-cache tag outside the window or in a bad state (tag, q)", t, q)
            if qst[q] == _QS_CACHED:
                parked += 1
        t = vm._sn[t]
    if parked != nqc:
        _fail(vm, "parked quantum-cache segments, items on the stacks", parked, nqc)
    set_ = 0
    q = 0
    while q < w:
        if qst[q]:
            set_ += 1
        q += 1
    if set_ != n:
        _fail(vm, "quantum-cache states set, quantum-cache segments", set_, n)


def _spans(vm):
    out = []
    t = vm._sn[0]
    while t:
        if vm._ty[t] <= _T_SSPAN:
            out.append((vm._org + (vm._st[t] << vm._qsh), vm._sz[t] << vm._qsh, vm._ty[t] == _T_SPAN))
        t = vm._sn[t]
    return out


def spans(vm):
    """[("span", addr, size, imported), ...] in segment-list order."""
    return [("span", a, n, imp) for a, n, imp in _spans(vm)]


def segments(vm):
    """[(addr, size, "free"|"alloc"), ...] in address order (quantum-cached
    items count as "alloc": the arena has handed them to its caches)."""
    out = []
    t = vm._sn[0]
    while t:
        k = vm._ty[t]
        if k > _T_SSPAN:
            out.append((vm._org + (vm._st[t] << vm._qsh), vm._sz[t] << vm._qsh, "free" if k >= _T_FREE else "alloc"))
        t = vm._sn[t]
    out.sort()
    return out


def qcached(vm):
    """Bytes parked in the quantum caches (busy in the arena, free to callers)."""
    n = 0
    for k in range(1, vm._qcmax + 1):
        n += k * (vm._qcn[k] & 31)
    return n << vm._qsh


def stats(vm):
    # counted here, not on the hot path: nalloc = nfree + live allocations
    nfree = nbusy = live = 0
    t = vm._sn[0]
    while t:
        k = vm._ty[t]
        if k >= _T_FREE:
            nfree += 1
        elif k > _T_SSPAN:
            nbusy += 1
            if k != _T_QC or _qstate(vm, vm._st[t]) != _QS_CACHED:
                live += 1
        t = vm._sn[t]
    nalloc = vm._nfreeop + live
    qsh = vm._qsh
    return {
        "name": vm.name,
        "quantum": vm.quantum,
        "qcache_max": vm.qcache_max,
        "spans": len(_spans(vm)),
        "size": vm._size << qsh,
        "inuse": vm._inuse << qsh,
        "free": (vm._size - vm._inuse) << qsh,
        "largest_free": _largest(vm) << qsh,
        "nalloc": nalloc,
        "nfree": vm._nfreeop,
        "nimport": vm._nimport,
        "nrelease": vm._nrelease,
        "nfail": vm._nfail,
        "nfreesegs": nfree,
        "nbusysegs": nbusy,
        "maxsteps": vm._maxsteps,
        "steps": nalloc + vm._nfreeop + vm._xsteps,
        "qcached": qcached(vm),
        "qfills": vm._qfills,
        "qdrains": vm._qdrains,
        "tags": vm._cap,
    }
