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
            if ty[t] == _T_QC:
                return "it is free in the quantum cache (double free?)"
            return "it lies inside the allocation at 0x%x" % a
        t = vm._sn[t]
    return "it is outside every span of the arena"


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
            raise ValueError("%s: double free of 0x%x in arena '%s' (it is in the quantum cache)" % (fn, addr, vm.name))
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
        if vm._ty[t] in (_T_BUSY, _T_XBUSY):
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


def check(vm):
    """VMEM_SANITY: check every invariant of the arena; AssertionError if not."""
    st = vm._st
    sz = vm._sz
    sn = vm._sn
    sp = vm._sp
    ty = vm._ty
    name = vm.name

    def bad(msg):
        raise AssertionError("vmem_check: arena '%s': %s" % (name, msg))

    seen = 0
    size = inuse = nfree = nbusy = 0
    t = sn[0]
    prev = 0
    span_end = None
    spans = []
    pos = None
    while t:
        seen += 1
        if seen > vm._cap:
            bad("segment list loops")
        if sp[t] != prev:
            bad("tag %d: prev link %d, expected %d" % (t, sp[t], prev))
        k = ty[t]
        if k and k <= _T_SSPAN:
            if span_end is not None and pos != span_end:
                bad("span ending at q%d not tiled (stops at q%d)" % (span_end, pos))
            spans.append((st[t], st[t] + sz[t]))
            size += sz[t]
            pos = st[t]
            span_end = st[t] + sz[t]
        elif k >= _T_FREE or _T_BUSY <= k <= _T_QC:
            if span_end is None:
                bad("segment tag %d before any span" % t)
            if sz[t] <= 0:
                bad("tag %d has size %d" % (t, sz[t]))
            if st[t] != pos:
                bad("tag %d starts at q%d, expected q%d (gap or overlap)" % (t, st[t], pos))
            pos = st[t] + sz[t]
            if pos > span_end:
                bad("tag %d runs past its span" % t)
            if k >= _T_FREE:
                nfree += 1
                if ty[prev] >= _T_FREE:
                    bad("free neighbours %d and %d not coalesced" % (prev, t))
            else:
                nbusy += 1
                inuse += sz[t]
                if _hash_find(vm, st[t]) != t:
                    bad("busy tag %d (q%d) missing from the hash" % (t, st[t]))
        else:
            bad("tag %d in the segment list has type %d" % (t, k))
        prev = t
        t = sn[t]
    if sp[0] != prev:
        bad("sentinel prev link")
    if span_end is not None and pos != span_end:
        bad("last span not tiled")
    spans.sort()
    for i in range(1, len(spans)):
        if spans[i][0] < spans[i - 1][1]:
            bad("spans overlap")
    if size != vm._size:
        bad("size %d, counted %d" % (vm._size, size))
    if inuse != vm._inuse:
        bad("inuse %d, counted %d" % (vm._inuse, inuse))
    # free lists
    n = 0
    for i in range(_NLISTS):
        t = vm._fh[i]
        if bool(t) != bool(vm._fmap & (1 << i)):
            bad("free list %d and the bitmap disagree" % i)
        p = 0
        while t:
            n += 1
            if n > vm._cap:
                bad("free list %d loops" % i)
            if ty[t] != _T_FREE + i:
                bad("tag %d on free list %d has type %d" % (t, i, ty[t]))
            if vm._fp[t] != p:
                bad("free list %d: bad prev link at %d" % (i, t))
            if not 0 < sz[t] >> i < 4:
                bad("tag %d of size %d on free list %d" % (t, sz[t], i))
            p = t
            t = vm._fn[t]
    if n != nfree:
        bad("%d tags on free lists, %d free segments" % (n, nfree))
    # hash holds exactly the busy tags
    nh = 0
    hb = vm._hb
    hm = vm._hm
    for h in range(hm + 1):
        t = vm._bk[h]
        while t:
            nh += 1
            if nh > vm._cap:
                bad("hash chain %d loops" % h)
            if not _T_BUSY <= ty[t] <= _T_QC:
                bad("hash chain %d holds non-busy tag %d" % (h, t))
            if (st[t] ^ (st[t] >> hb)) & hm != h:
                bad("tag %d (q%d) on hash chain %d" % (t, st[t], h))
            t = vm._fn[t]
    if nh != nbusy:
        bad("hash holds %d tags, %d busy segments" % (nh, nbusy))
    # reserve
    n = 0
    t = vm._tf
    while n < vm._ntf:
        if ty[t] != 0:
            bad("reserve tag %d has type %d" % (t, ty[t]))
        t = vm._fn[t]
        n += 1
    if seen + 1 + vm._ntf != vm._cap:
        bad("tags: %d listed + 1 + %d reserve != capacity %d" % (seen, vm._ntf, vm._cap))
    # quantum caches
    qcq = 0
    nqc = 0
    for k in range(1, vm._qcmax + 1):
        top = vm._qcn[k]
        if top >> 5 != k - 1:
            bad("quantum cache %d: top index %d outside its stack" % (k, top))
        for i in range((k - 1) * 32 + 1, top + 1):
            t = vm._qcs[i]
            if ty[t] != _T_QC or sz[t] != k:
                bad("quantum cache %d holds tag %d (type %d, size %d)" % (k, t, ty[t], sz[t]))
            qcq += k
            nqc += 1
    n = 0
    t = sn[0]
    while t:
        if ty[t] == _T_QC:
            n += 1
        t = sn[t]
    if n != nqc:
        bad("%d quantum-cache segments, %d on the stacks" % (n, nqc))
    return True


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
            if k != _T_QC:
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
