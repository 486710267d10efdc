# vmem_native: vmem's hot paths as @micropython.viper code (#20): the
# quantum-cache hit (vmem_alloc/vmem_free of 1..qcache_max quanta), instant
# fit (the head of the first list whose every member fits, split in place)
# and the free of a segment whose neighbours make one of the three common
# cases (the free previous or next neighbour absorbs it, or none is free).
#
# Same representation, invariants and locking as vmem.py (its header): the
# arena's arrays are read and written in place through ptr8/16/32. Anything
# else is vmem.py's bytecode vmem_alloc/vmem_free, called with nothing
# changed and the lock dropped: misuse (non-int or huge size, other flags),
# a miss, a full stack, a hash chain walk, a whole imported span, both
# neighbours free, debug mode, an arena above 0x7FFFFFFF. vmem._bind() loads
# this where the runtime compiles viper (unix x64, rp2 armv6m, esp32
# xtensawin); elsewhere (CPython, webassembly, micro:bit) the import fails
# and the bytecode pair stays: it is the reference, this one must equal it.
#
# Locking (_LKM, from vmem's mode): 0 nothing (one CPU, nothing to mask);
# 1 the arena's bare lock (MODE_THREAD, as the bytecode hot paths); 2 the
# board's interrupt mask, machine.disable_irq/enable_irq (rp2 also takes its
# cross-core mutex there); 3 intr.mutex_enter/exit. Every array access is
# between lock and unlock, and only viper code runs in between. Interrupts:
# a hard IRQ is masked as on the bytecode path. Soft callbacks
# (micropython.schedule, softint.py) run only where the VM checks for them,
# at a bytecode jump or in a C function that calls mp_handle_pending: viper
# code has no such check and the C calls made here (subscripts, disable_irq,
# the lock methods) do not run them, so a callback lands before or after a
# native section, never inside. The bytecode path needs intr's _sdepth count
# for that (mutex_enter); mode 2 does without it, as pool_cache_native does.
#
# Nothing here allocates: machine ints (sizes < 2**28, offsets in quanta),
# addresses boxed as the small ints the bytecode path returns, no tuples.
import micropython
from mpalloc.native import switch  # noqa: F401  (read by vmem._native_bind)

_SX = 0  # 32 on a 64-bit runtime: sign-extends an array('i') word (set by bind)
_XL = 1 << 28  # sizes above this take the bytecode path (no machine overflow)
_int = int
_LKM = 0  # the lock, bound by bind(): 0 none, 1 the arena's bare lock, 2 the mask, 3 intr's mutex
_acq = None
_rel = None
_dis = None
_en = None
_enter = None
_exit = None
_alloc_b = None  # the bytecode vmem_alloc / vmem_free: every other case
_free_b = None
_best_fit_alloc = None
_qc_miss = None
_release_pending = None
_debug = None
_L = None
_B37 = None
_NW = 2  # M_NOWAIT, M_NOWAIT | M_FIRSTFIT as objects
_NWIF = 0x1002
_ONE = 1
_AMAX = 0x7FFFFFFF  # addresses above: the bytecode path (int() would not fit a 32-bit word)


def bind(g, sx):
    """Take vmem's mode-dependent values and bytecode paths (g: its globals())."""
    global _LKM, _acq, _rel, _dis, _en, _enter, _exit, _alloc_b, _free_b, _best_fit_alloc, _qc_miss
    global _debug, _L, _B37, _SX, _release_pending
    from mpalloc import intr

    _enter = g["_enter"]
    _exit = g["_exit"]
    _acq = _enter
    _rel = g["_rel"]
    m = intr._machine
    _dis = m.disable_irq if m is not None else None
    _en = m.enable_irq if m is not None else None
    if not g["_lk"]:
        _LKM = 0
    elif g["_thr"]:
        _LKM = 1
    elif m is not None and intr.mode != intr.MODE_THREAD:
        _LKM = 2
    else:
        _LKM = 3
    _alloc_b = g["_vmem_alloc"]
    _free_b = g["_vmem_free"]
    _best_fit_alloc = g["_best_fit_alloc"]
    _qc_miss = g["_qc_miss"]
    _release_pending = g["_release_pending"]
    _debug = g["_debug"]
    _L = g["_L"]
    _B37 = g["_B37"]
    _SX = sx


@micropython.viper
def vmem_alloc(vm, size, flags):
    org = vm._origin
    if (flags != _NW and flags != _NWIF) or size.__class__ is not _int or size > _XL or org > _AMAX or _debug[0]:
        return _alloc_b(vm, size, flags)
    qsh = int(vm._qshift)
    qs = (int(size) + int(vm._qmask)) >> qsh
    if qs <= 0:
        return _alloc_b(vm, size, flags)
    sx = int(_SX)
    lk = int(_LKM)
    s = _LKM  # an object (viper: one type per local); the token once locked
    if qs <= int(vm._qcmax):
        # quantum cache: pop the top item of class qs
        m = vm._lock
        if lk == 1:
            _acq(m)
        elif lk == 2:
            s = _dis()
        elif lk:
            s = _enter(m)
        top = ptr16(vm._qc_top)
        n = top[qs]
        if n & 31:
            top[qs] = n - 1
            q = int(ptr16(vm._qc_stack)[n])
            ptr8(vm._qc_state)[q] = qs
            a = int(org) + (q << qsh)
            if lk == 1:
                _rel(m)
            elif lk == 2:
                _en(s)
            elif lk:
                _exit(m, s)
            return _int(a)  # boxed (a small int: no heap)
        _unlock(lk, m, s)
        return _qc_miss(vm, qs, flags)
    # instant fit: the head of the first list whose every member is big enough
    m = vm._lock
    if lk == 1:
        _acq(m)
    elif lk == 2:
        s = _dis()
    elif lk:
        s = _enter(m)
    j = 0
    if qs < 0x100:
        if qs > 1:
            j = int(ptr8(_L)[qs - 1]) + 1
    else:
        j = 8
        while (1 << j) < qs:
            j += 1
    c = (int(vm._free_map) >> j) << j
    if c and int(vm._nspare) >= 4:
        j = int(ptr8(_B37)[(c & -c) % 37])
        fh = ptr16(vm._free_head)
        t = fh[j]
        fn = ptr16(vm._free_next)
        fp = ptr16(vm._free_prev)
        st = ptr32(vm._seg_start)
        sz = ptr32(vm._seg_size)
        ty = ptr8(vm._seg_type)
        n = int(sz[t]) - qs
        if n:
            # split (vmem._split, t a list head): a spare tag b takes t's first
            # qs quanta, t keeps the tail; t moves to the head of list
            # floor(log2(n)) when n dropped below its list's range
            b = int(vm._spare_head)
            vm._spare_head = fn[b]
            vm._nspare = int(vm._nspare) - 1
            c = (int(st[t]) << sx) >> sx
            st[b] = c
            sz[b] = qs
            st[t] = c + qs
            sn = ptr16(vm._seg_next)
            sp = ptr16(vm._seg_prev)
            c = sp[t]
            sn[c] = b
            sp[b] = c
            sn[b] = t
            sp[t] = b
            sz[t] = n
            if not n >> j:  # below list j: to the head of list floor(log2(n))
                c = fn[t]
                fh[j] = c
                fm = int(vm._free_map)
                if c:
                    fp[c] = 0
                else:
                    fm &= ~(1 << j)
                if n < 0x100:
                    j = int(ptr8(_L)[n])
                else:
                    j = 8
                    while n >> (j + 1):
                        j += 1
                ty[t] = 8 + j  # _T_FREE + j
                c = fh[j]
                fn[t] = c
                if c:
                    fp[c] = t
                fh[j] = t
                vm._free_map = fm | (1 << j)
            t = b
        else:  # exact: t leaves the head of list j
            c = fn[t]
            fh[j] = c
            if c:
                fp[c] = 0
            else:
                vm._free_map = int(vm._free_map) & ~(1 << j)
        ty[t] = 3  # _T_BUSY
        c = (int(st[t]) << sx) >> sx
        j = (c ^ (c >> int(vm._hash_shift))) & int(vm._hash_mask)
        hb = ptr16(vm._hash_bucket)
        fn[t] = hb[j]
        hb[j] = t
        vm._inuse = int(vm._inuse) + qs
        a = int(org) + (c << qsh)
        if lk == 1:
            _rel(m)
        elif lk == 2:
            _en(s)
        elif lk:
            _exit(m, s)
        return _int(a)
    _unlock(lk, m, s)
    return _best_fit_alloc(vm, qs, flags)


@micropython.viper
def vmem_free(vm, addr, size):
    if addr.__class__ is not _int or size.__class__ is not _int or size > _XL or size < _ONE or _debug[0]:
        return _free_b(vm, addr, size)
    org = vm._origin
    if addr < org or addr > _AMAX:  # (int() of an address is then a machine word: no heap)
        return _free_b(vm, addr, size)
    qsh = int(vm._qshift)
    qm = int(vm._qmask)
    q = int(addr) - int(org)
    if q & qm or q > int(_XL):
        return _free_b(vm, addr, size)
    q >>= qsh
    qs = (int(size) + qm) >> qsh
    sx = int(_SX)
    lk = int(_LKM)
    s = _LKM  # an object (viper: one type per local); the token once locked
    m = vm._lock
    if lk == 1:
        _acq(m)
    elif lk == 2:
        s = _dis()
    elif lk:
        s = _enter(m)
    if qs <= int(vm._qcmax) and q < int(vm._qc_nwindow):
        qst = ptr8(vm._qc_state)
        if qst[q] == qs:
            top = ptr16(vm._qc_top)
            n = top[qs] + 1
            if n & 31:  # room on the stack of class qs: push
                qst[q] = 0x80  # _QS_CACHED
                vm._nfreeop = int(vm._nfreeop) + 1
                ptr16(vm._qc_stack)[n] = q
                top[qs] = n
                if lk == 1:
                    _rel(m)
                elif lk == 2:
                    _en(s)
                elif lk:
                    _exit(m, s)
                return None
            _unlock(lk, m, s)  # full: the bytecode path drains half of it
            return _free_b(vm, addr, size)
    # the busy tag starting at q, from the head of its hash chain
    t = int(ptr16(vm._hash_bucket)[(q ^ (q >> int(vm._hash_shift))) & int(vm._hash_mask)])
    if ((int(ptr32(vm._seg_start)[t]) << sx) >> sx) != q or int(ptr8(vm._seg_type)[t]) != 3 or int(
            ptr32(vm._seg_size)[t]) != qs:
        _unlock(lk, m, s)  # further down the chain, or misuse: the bytecode path
        return _free_b(vm, addr, size)
    ty = ptr8(vm._seg_type)
    sn = ptr16(vm._seg_next)
    sp = ptr16(vm._seg_prev)
    n = sn[t]
    p = sp[t]
    tn = int(ty[n])
    tp = int(ty[p])
    if tp >= 8 and tn < 8 and int(ty[sp[p]]) != 1:
        k = 1  # the free previous neighbour p absorbs t (not a whole imported span)
    elif tn >= 8 and 1 < tp < 8:
        k = 2  # the free next neighbour n absorbs t
    elif tn < 8 and tp < 8 and tp != 1:
        k = 3  # no free neighbour: t onto its free list
    else:  # the other cases (nothing changed yet): the bytecode path
        _unlock(lk, m, s)
        return _free_b(vm, addr, size)
    vm._nfreeop = int(vm._nfreeop) + 1
    # t leaves its hash chain (it heads it: found above)
    fn = ptr16(vm._free_next)
    ptr16(vm._hash_bucket)[(q ^ (q >> int(vm._hash_shift))) & int(vm._hash_mask)] = fn[t]
    vm._inuse = int(vm._inuse) - qs
    sz = ptr32(vm._seg_size)
    if k == 3:
        _fl_ins(vm, t)
    else:
        if k == 1:
            sn[p] = n
            sp[n] = p
            qs += int(sz[p])
            sz[p] = qs
        else:
            ptr32(vm._seg_start)[n] = ptr32(vm._seg_start)[t]
            sn[p] = n
            sp[n] = p
            qs += int(sz[n])
            sz[n] = qs
            p = n
        ty[t] = 0  # t to the reserve (vmem._bt_put)
        fn[t] = int(vm._spare_head)
        vm._spare_head = t
        vm._nspare = int(vm._nspare) + 1
        # p (grown to qs quanta) to the head of list floor(log2(qs)), as NetBSD
        if qs < 0x100:
            j = int(ptr8(_L)[qs])
        else:
            j = 8
            while qs >> (j + 1):
                j += 1
        i = int(ty[p]) - 8
        if k == 2 or ptr16(vm._free_prev)[p] or i != j:
            _fl_rem(vm, p)
            _fl_ins(vm, p)
    if lk == 1:
        _rel(m)
    elif lk == 2:
        _en(s)
    elif lk:
        _exit(m, s)
    if vm._nrel:
        _release_pending(vm)
    return None


@micropython.viper
def _unlock(lk: int, m, s):
    if lk == 1:
        _rel(m)
    elif lk == 2:
        _en(s)
    elif lk:
        _exit(m, s)


@micropython.viper
def _fl_ins(vm, t: int):
    # vmem._fl_insert: free tag t onto the head of list floor(log2(size))
    n = int(ptr32(vm._seg_size)[t])
    i = 8
    if n < 0x100:
        i = int(ptr8(_L)[n])
    else:
        while n >> (i + 1):
            i += 1
    ptr8(vm._seg_type)[t] = 8 + i
    fh = ptr16(vm._free_head)
    fp = ptr16(vm._free_prev)
    n = fh[i]
    ptr16(vm._free_next)[t] = n
    fp[t] = 0
    if n:
        fp[n] = t
    fh[i] = t
    vm._free_map = int(vm._free_map) | (1 << i)


@micropython.viper
def _fl_rem(vm, t: int):
    # vmem._fl_remove: free tag t off its list (its type still names the list)
    fn = ptr16(vm._free_next)
    fp = ptr16(vm._free_prev)
    p = fp[t]
    n = fn[t]
    if p:
        fn[p] = n
    else:
        i = int(ptr8(vm._seg_type)[t]) - 8
        ptr16(vm._free_head)[i] = n
        if not n:
            vm._free_map = int(vm._free_map) & ~(1 << i)
    if n:
        fp[n] = p
