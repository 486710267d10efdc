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
    _flog2,
    _hash_find,
    _largest,
    _qc_drain_all,
    _release_pending,
)

from mpalloc.compat import const


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


def bad_arena(fn, vm):
    # vmem._chk_arena's message
    if not isinstance(vm, _v.vmem):
        raise TypeError("%s: %r is not a vmem arena" % (fn, vm))
    raise ValueError("%s: arena '%s' was destroyed" % (fn, vm.name))


def chk_flags(fn, flags):
    if not isinstance(flags, int):
        raise TypeError("%s: flags must be an int, not %s" % (fn, type(flags).__name__))
    w = flags & 0x3
    if w == 0:
        raise ValueError("%s: flags 0x%x have no wait flag (need M_WAITOK or M_NOWAIT)" % (fn, flags))
    if w == 0x3:
        raise ValueError("%s: flags 0x%x have both M_WAITOK and M_NOWAIT" % (fn, flags))
    f = flags & 0xB000
    if f & (f - 1):
        raise ValueError("%s: flags 0x%x name more than one of M_FIRSTFIT, M_BESTFIT, M_NEXTFIT" % (fn, flags))


def bad_xargs(vm, size, align, phase, nocross, minaddr, maxaddr):
    # vmem_xalloc's constraint misuse, in the order it was always checked
    if (align.__class__ is not int or phase.__class__ is not int or nocross.__class__ is not int
            or minaddr.__class__ is not int or maxaddr.__class__ is not int):
        raise TypeError("vmem_xalloc: align, phase, nocross, minaddr and maxaddr must be ints (got %r, %r, %r)"
                        % (align, phase, nocross))
    X = 1 << 40
    if not (0 <= align <= X and 0 <= phase <= X and 0 <= nocross <= X):
        raise ValueError("vmem_xalloc: align %d, phase %d and nocross %d must be in 0..2**40" % (align, phase, nocross))
    Q = vm.quantum
    qm = vm._qmask
    n = ((size + qm) >> vm._qshift) << vm._qshift
    if align == 0:
        align = Q
    if align & (align - 1):
        raise ValueError("vmem_xalloc: align %d is not a power of two" % align)
    if align & qm:
        raise ValueError("vmem_xalloc: align %d is not a multiple of the quantum %d" % (align, Q))
    if phase & qm:
        raise ValueError("vmem_xalloc: phase %d is not a multiple of the quantum %d" % (phase, Q))
    if phase >= align:
        raise ValueError("vmem_xalloc: phase %d >= align %d" % (phase, align))
    if nocross:
        if nocross & (nocross - 1) or nocross & qm:
            raise ValueError("vmem_xalloc: nocross %d is not a power-of-two multiple of the quantum %d" % (nocross, Q))
        if nocross < n:
            raise ValueError("vmem_xalloc: nocross %d is smaller than the size %d" % (nocross, n))
        if (phase & (nocross - 1)) + n > nocross:
            raise ValueError("vmem_xalloc: phase %d with size %d crosses the nocross boundary %d" % (phase, n, nocross))
    if minaddr > maxaddr:
        raise ValueError("vmem_xalloc: minaddr 0x%x > maxaddr 0x%x" % (minaddr, maxaddr))
    raise ValueError("vmem_xalloc: bad arguments")


def bad_span(fname, vm, addr, size, t):
    # vmem._add's misuse: t 0 the arguments, -1 too far from the origin, else
    # the tag of the span [addr, addr+size) overlaps
    if t == 0:
        if not isinstance(addr, int) or not isinstance(size, int):
            raise TypeError("%s: addr and size must be ints (got %r, %r)" % (fname, addr, size))
        if size <= 0:
            raise ValueError("%s: size %d must be > 0" % (fname, size))
        raise ValueError("%s: span 0x%x+0x%x is not aligned to the quantum %d" % (fname, addr, size, vm.quantum))
    org = vm._origin if vm._lo is not None else addr
    if t < 0:
        raise ValueError(
            "%s: span 0x%x+0x%x is too far (> 2**29 quanta) from the arena origin 0x%x" % (fname, addr, size, org)
        )
    a = org + (vm._seg_start[t] << vm._qshift)
    raise ValueError(
        "%s: span 0x%x-0x%x overlaps span 0x%x-0x%x of arena '%s'"
        % (fname, addr, addr + size - 1, a, a + (vm._seg_size[t] << vm._qshift) - 1, vm.name)
    )


def bad_alloc(fn, vm, size, flags):
    _chk_arena(fn, vm)
    if not isinstance(size, int):
        raise TypeError("%s: size must be an int, not %s" % (fn, type(size).__name__))
    if not isinstance(flags, int):
        raise TypeError("%s: flags must be an int, not %s" % (fn, type(flags).__name__))
    if size <= 0:
        raise ValueError("%s: size %d must be > 0" % (fn, size))
    chk_flags(fn, flags)
    if flags & M_WAITOK and intr.cpu_intr_p():
        raise ValueError("%s: M_WAITOK in interrupt context (use M_NOWAIT)" % fn)
    if size > 1 << 40 or (size + vm._qmask) >> vm._qshift > 0x1FFFFFFF:
        raise ValueError("%s: size %d exceeds what arena '%s' can ever hold (%d bytes now)" % (fn, size, vm.name, vm._size << vm._qshift))
    raise ValueError("%s: bad arguments" % fn)


def _where(vm, q):
    # describe where quantum q lies (slow; error paths only)
    st = vm._seg_start
    sz = vm._seg_size
    ty = vm._seg_type
    t = vm._seg_next[0]
    while t:
        if ty[t] > _T_SSPAN and st[t] <= q < st[t] + sz[t]:
            a = vm._origin + (st[t] << vm._qshift)
            if ty[t] >= _T_FREE:
                return "it is free (double free?)"
            if ty[t] == _T_QC and _qstate(vm, st[t]) == _QS_CACHED:
                return "it is free in the quantum cache (double free?)"
            return "it lies inside the allocation at 0x%x" % a
        t = vm._seg_next[t]
    return "it is outside every span of the arena"


def _qstate(vm, q):
    # the quantum-cache state of quantum q (0 outside the window)
    return vm._qc_state[q] if 0 <= q < len(vm._qc_state) else 0


def bad_free(fn, vm, addr, size):
    # raise the right error for a free that failed validation
    _chk_arena(fn, vm)
    if not isinstance(addr, int) or not isinstance(size, int):
        raise TypeError("%s: address and size must be ints, got %r, %r" % (fn, addr, size))
    if size <= 0:
        raise ValueError("%s: size %d must be > 0" % (fn, size))
    if vm._lo is None:
        raise ValueError("%s: address 0x%x was never allocated from arena '%s' (it has no span)" % (fn, addr, vm.name))
    o = addr - vm._origin
    if o & vm._qmask:
        raise ValueError("%s: address 0x%x is not a multiple of the quantum %d" % (fn, addr, vm.quantum))
    s = intr.mutex_enter(vm._lock)
    t = _hash_find(vm, o >> vm._qshift)
    intr.mutex_exit(vm._lock, s)
    if t:
        ty = vm._seg_type[t]
        if ty == _T_QC:
            if _qstate(vm, vm._seg_start[t]) == _QS_CACHED:
                raise ValueError("%s: double free of 0x%x in arena '%s' (it is in the quantum cache)" % (fn, addr, vm.name))
            ty = _T_BUSY  # handed out by the quantum cache: a vmem_alloc allocation
        rs = vm._seg_size[t] << vm._qshift
        if ty == _T_XBUSY and fn == "vmem_free":
            raise ValueError("vmem_free: 0x%x was allocated with vmem_xalloc; free it with vmem_xfree" % addr)
        if ty == _T_BUSY and fn == "vmem_xfree":
            raise ValueError("vmem_xfree: 0x%x was allocated with vmem_alloc; free it with vmem_free" % addr)
        raise ValueError("%s: size %d does not match the allocation of %d bytes at 0x%x" % (fn, size, rs, addr))
    q = o >> vm._qshift
    raise ValueError("%s: address 0x%x was never allocated from arena '%s': %s" % (fn, addr, vm.name, _where(vm, q)))


def destroy(vm):
    """Destroy the arena. Outstanding allocations are reported (ValueError,
    the arena stays intact); imported spans go back through releasefn."""
    _chk_arena("vmem_destroy", vm)
    m = vm._lock
    s = intr.mutex_enter(m)
    _qc_drain_all(vm)
    out = []
    t = vm._seg_next[0]
    while t:
        if vm._seg_type[t] in (_T_BUSY, _T_XBUSY) or (vm._seg_type[t] == _T_QC and _qstate(vm, vm._seg_start[t]) != _QS_CACHED):
            out.append((vm._origin + (vm._seg_start[t] << vm._qshift), vm._seg_size[t] << vm._qshift))
        t = vm._seg_next[t]
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
    vm._free_map = 0
    if vm in _v.vmem_list:
        _v.vmem_list.remove(vm)
    if vm._releasefn is not None:
        for a, n in spans:
            vm._releasefn(vm._arg, a, n)


# vmem_check's last failure (what, arena, a, b), kept where the heap is locked
# and the message cannot be formatted (then E_CHECK is raised).
check_lasterr = [None, None, 0, 0]
E_CHECK = AssertionError("vmem_check: arena inconsistent, found with the heap locked (vmem_diag.check_lasterr)")


def _fail(what, a, b):
    # report a failed invariant of the arena in check_lasterr[1]: formatted
    # where the heap allows, else E_CHECK
    check_lasterr[0] = what
    check_lasterr[2] = a
    check_lasterr[3] = b
    try:
        m = "vmem_check: arena '%s': %s (%r, %r)" % (check_lasterr[1].name, what, a, b)
    except MemoryError:
        raise E_CHECK
    raise AssertionError(m)


# The check allocates nothing: no lists, dicts, iterators or formatting (but
# for a failure), and every function below keeps its frame within the 11
# words MicroPython keeps on the C stack (arrays read through the arena's
# attributes, small functions), so not even a transient heap frame is taken.


def check(vm):
    """VMEM_SANITY: check every invariant of the arena; AssertionError if not.
    Allocates nothing unless it reports a failure, so it also runs with the
    heap locked (debug mode in interrupt handlers); a failure found then
    raises the preallocated E_CHECK, details in check_lasterr. Takes the
    arena's lock (other threads may be working on the arena); never call it
    with the lock held."""
    check_lasterr[1] = vm
    s = intr.mutex_enter(vm._lock)
    try:
        _ck_all(vm)
    finally:
        intr.mutex_exit(vm._lock, s)
    check_lasterr[1] = None  # passed: keep no arena alive
    return True


def _ck_all(vm):
    n = _ck_links(vm)
    if n + 1 + vm._nspare != vm._cap:
        _fail("tags listed + 1 + reserve, capacity", n + 1 + vm._nspare, vm._cap)
    _ck_reserve(vm)
    _ck_tiles(vm)
    _ck_counts(vm)
    _ck_spans(vm)
    n = _ck_lists(vm)
    if n != _ck_count(vm, _T_FREE, 255):
        _fail("tags on free lists, free segments", n, _ck_count(vm, _T_FREE, 255))
    n = _ck_hash(vm)
    if n != _ck_count(vm, _T_BUSY, _T_QC):
        _fail("hash holds tags, busy segments", n, _ck_count(vm, _T_BUSY, _T_QC))
    if vm._qc_nwindow != len(vm._qc_state):
        _fail("quantum-cache window, state array length", vm._qc_nwindow, len(vm._qc_state))
    n = _ck_qctags(vm, _ck_stacks(vm))
    if n != _ck_qstates(vm):
        _fail("quantum-cache segments, quantum-cache states set", n, _ck_qstates(vm))


def _ck_links(vm):
    # the segment list's links; the number of tags on it
    n = 0
    p = 0
    t = vm._seg_next[0]
    while t:
        n += 1
        if n > vm._cap:
            _fail("segment list loops (tag, count)", t, n)
        if vm._seg_prev[t] != p:
            _fail("tag's prev link, expected", t, p)
        p = t
        t = vm._seg_next[t]
    if vm._seg_prev[0] != p:
        _fail("sentinel prev link, last tag", vm._seg_prev[0], p)
    return n


def _ck_reserve(vm):
    n = 0
    t = vm._spare_head
    while n < vm._nspare:
        if vm._seg_type[t] != 0:
            _fail("reserve tag has type", t, vm._seg_type[t])
        t = vm._free_next[t]
        n += 1


def _ck_tiles(vm):
    # within a span, the segments follow in address order and tile it exactly
    end = pos = _NOSPAN
    t = vm._seg_next[0]
    while t:
        k = vm._seg_type[t]
        if k and k <= _T_SSPAN:
            if end != _NOSPAN and pos != end:
                _fail("span not tiled: ends at q, stops at q", end, pos)
            pos = vm._seg_start[t]
            end = pos + vm._seg_size[t]
        elif k >= _T_FREE or _T_BUSY <= k <= _T_QC:
            if end == _NOSPAN:
                _fail("segment tag before any span (tag, type)", t, k)
            if vm._seg_size[t] <= 0:
                _fail("tag has size", t, vm._seg_size[t])
            if vm._seg_start[t] != pos:
                _fail("tag starts elsewhere than q (gap or overlap)", t, pos)
            pos += vm._seg_size[t]
            if pos > end:
                _fail("tag runs past its span ending at q", t, end)
        else:
            _fail("tag in the segment list has type", t, k)
        t = vm._seg_next[t]
    if end != _NOSPAN and pos != end:
        _fail("last span not tiled: ends at q, stops at q", end, pos)


def _ck_counts(vm):
    # size and inuse agree with the segments; busy ones are in the hash; no
    # two free neighbours
    size = inuse = 0
    t = vm._seg_next[0]
    while t:
        k = vm._seg_type[t]
        if k <= _T_SSPAN:
            size += vm._seg_size[t]
        elif k <= _T_QC:
            inuse += vm._seg_size[t]
            if _hash_find(vm, vm._seg_start[t]) != t:
                _fail("busy tag missing from the hash (tag, q)", t, vm._seg_start[t])
        elif vm._seg_type[vm._seg_prev[t]] >= _T_FREE:
            _fail("free neighbours not coalesced", vm._seg_prev[t], t)
        t = vm._seg_next[t]
    if size != vm._size:
        _fail("size, counted", vm._size, size)
    if inuse != vm._inuse:
        _fail("inuse, counted", vm._inuse, inuse)


def _ck_spans(vm):
    # no two spans overlap (spans are few: every pair is compared)
    t = vm._seg_next[0]
    while t:
        if vm._seg_type[t] <= _T_SSPAN:
            u = vm._seg_next[t]
            while u:
                if vm._seg_type[u] <= _T_SSPAN and vm._seg_start[u] < vm._seg_start[t] + vm._seg_size[t] and vm._seg_start[t] < vm._seg_start[u] + vm._seg_size[u]:
                    _fail("spans overlap (tags)", t, u)
                u = vm._seg_next[u]
        t = vm._seg_next[t]


def _ck_count(vm, lo, hi):
    # tags on the segment list with lo <= type <= hi
    n = 0
    t = vm._seg_next[0]
    while t:
        if lo <= vm._seg_type[t] <= hi:
            n += 1
        t = vm._seg_next[t]
    return n


def _ck_lists(vm):
    # free lists: bitmap, types, links, size ranges; the number of tags on them
    n = 0
    i = 0
    while i < _NLISTS:
        t = vm._free_head[i]
        if (t != 0) != ((vm._free_map >> i) & 1 != 0):
            _fail("free list and the bitmap disagree (list, head)", i, t)
        p = 0
        while t:
            n += 1
            if n > vm._cap:
                _fail("free list loops (list, tag)", i, t)
            if vm._seg_type[t] != _T_FREE + i:
                _fail("tag on free list has another type (tag, list)", t, i)
            if vm._free_prev[t] != p:
                _fail("free list: bad prev link (list, tag)", i, t)
            if not 0 < vm._seg_size[t] >> i < 4:
                _fail("tag's size out of its free list's range (tag, list)", t, i)
            p = t
            t = vm._free_next[t]
        i += 1
    return n


def _ck_hash(vm):
    # every tag on chain h hashes to h and is busy; the number of them
    n = 0
    h = 0
    while h <= vm._hash_mask:
        t = vm._hash_bucket[h]
        while t:
            n += 1
            if n > vm._cap:
                _fail("hash chain loops (chain, tag)", h, t)
            if not _T_BUSY <= vm._seg_type[t] <= _T_QC:
                _fail("hash chain holds a non-busy tag (chain, tag)", h, t)
            if (vm._seg_start[t] ^ (vm._seg_start[t] >> vm._hash_shift)) & vm._hash_mask != h:
                _fail("tag on the wrong hash chain (tag, chain)", t, h)
            t = vm._free_next[t]
        h += 1
    return n


def _ck_stacks(vm):
    # every stacked item is a parked QC tag of its class; how many there are
    n = 0
    k = 1
    while k <= vm._qcmax:
        i = vm._qc_top[k]
        if i >> 5 != k - 1:
            _fail("quantum cache: top index outside its stack (class, top)", k, i)
        while i & 31:
            q = vm._qc_stack[i]
            if not q < len(vm._qc_state) or vm._qc_state[q] != _QS_CACHED:
                _fail("quantum cache holds an item not parked (class, q)", k, q)
            q = _hash_find(vm, q)
            if vm._seg_type[q] != _T_QC or vm._seg_size[q] != k:
                _fail("quantum cache holds a bad tag (class, tag)", k, q)
            n += 1
            i -= 1
        k += 1
    return n


def _ck_qctags(vm, nstack):
    # every QC tag lies in the window, handed out (state = its class) or
    # parked; as many parked as stacked. The number of QC tags.
    n = p = 0
    t = vm._seg_next[0]
    while t:
        if vm._seg_type[t] == _T_QC:
            n += 1
            q = vm._seg_start[t]
            if not 0 <= q < len(vm._qc_state) or (vm._qc_state[q] != vm._seg_size[t] and vm._qc_state[q] != _QS_CACHED):
                _fail("quantum-cache tag outside the window or in a bad state (tag, q)", t, q)
            if vm._qc_state[q] == _QS_CACHED:
                p += 1
        t = vm._seg_next[t]
    if p != nstack:
        _fail("parked quantum-cache segments, items on the stacks", p, nstack)
    return n


def _ck_qstates(vm):
    # how many quanta of the window have a state set
    n = 0
    q = len(vm._qc_state)
    while q:
        q -= 1
        if vm._qc_state[q]:
            n += 1
    return n


def _spans(vm):
    out = []
    t = vm._seg_next[0]
    while t:
        if vm._seg_type[t] <= _T_SSPAN:
            out.append((vm._origin + (vm._seg_start[t] << vm._qshift), vm._seg_size[t] << vm._qshift, vm._seg_type[t] == _T_SPAN))
        t = vm._seg_next[t]
    return out


def spans(vm):
    """[("span", addr, size, imported), ...] in segment-list order."""
    return [("span", a, n, imp) for a, n, imp in _spans(vm)]


def segments(vm):
    """[(addr, size, "free"|"alloc"), ...] in address order (quantum-cached
    items count as "alloc": the arena has handed them to its caches)."""
    out = []
    t = vm._seg_next[0]
    while t:
        k = vm._seg_type[t]
        if k > _T_SSPAN:
            out.append((vm._origin + (vm._seg_start[t] << vm._qshift), vm._seg_size[t] << vm._qshift, "free" if k >= _T_FREE else "alloc"))
        t = vm._seg_next[t]
    out.sort()
    return out


def qcached(vm):
    """Bytes parked in the quantum caches (busy in the arena, free to callers)."""
    n = 0
    for k in range(1, vm._qcmax + 1):
        n += k * (vm._qc_top[k] & 31)
    return n << vm._qshift


def stats(vm):
    # counted here, not on the hot path: nalloc = nfree + live allocations
    nfree = nbusy = live = 0
    t = vm._seg_next[0]
    while t:
        k = vm._seg_type[t]
        if k >= _T_FREE:
            nfree += 1
        elif k > _T_SSPAN:
            nbusy += 1
            if k != _T_QC or _qstate(vm, vm._seg_start[t]) != _QS_CACHED:
                live += 1
        t = vm._seg_next[t]
    nalloc = vm._nfreeop + live
    qsh = vm._qshift
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
