# extent: NetBSD's extent(9), a linear manager of an integer range.
#
# An extent is the inclusive range [start, end] of some resource (peripheral
# register space, SRAM, DMA channels, IRQ numbers). Claims are regions of it;
# free space is the gaps between them. Every operation is linear in the number
# of regions, as in NetBSD. Used by mpalloc.board so that two drivers never
# claim the same register window or SRAM bank.
#
#   extent_create(name, start, end, storage, storagesize, flags)   -> extent
#   extent_destroy(ex)
#   extent_alloc(ex, size, alignment, boundary, flags, owner=None)  -> start
#   extent_alloc_subregion(ex, substart, subend, size, alignment, boundary,
#                          flags, owner=None)                        -> start
#   extent_alloc_region(ex, start, size, flags, owner=None)
#   extent_free(ex, start, size, flags, owner=None)
#   extent_print(ex)
#   extent_list, extent_regions(ex)        statistics (STATS_CONTRACT.md)
#
# Adaptation to Python (the details: docs/DESIGN-NOTES.md, "extent"): results
# are return values; extent(9)'s errnos raise OSError(errno) naming the function
# and, for a busy region, the owner of the overlapping claim; what NetBSD panics
# on raises ValueError; `owner=` (not in the man page) names who claims, and
# only regions of one owner coalesce; waits sleep in 1 ms steps up to maxwait_ms.
#
# Region descriptors live in one flat array of 32-bit words (4 per descriptor:
# start, end, owner index, next), start and end as offsets from ex.start, so
# they are small ints wherever the extent spans less than 2**30 units, even at
# addresses that are heap objects on a 32-bit port (0x4000_0000 and up): an
# address argument becomes an offset through ex.cv (_rel), an offset becomes
# an address only in the value handed back. A fixed extent uses the caller's
# storage (an array('I') of storagesize bytes, EXTENT_FIXED_STORAGE_SIZE(n) for
# n regions) and never allocates, unless EX_MALLOCOK lets it move to a larger
# array from the heap. A dynamic extent (storage None) grows its array as
# needed. Extents spanning more than 32 bits use a dynamic array('Q').
#
# Slow paths (create, destroy, waits, listings, the check) are in
# extent_setup.py, imported on use and dropped after (lazy.unload).
# Invariants (checked by extent_setup.check when extent_debug(True)), in offsets:
#   the region list from ex.head is sorted: r.start <= r.end < next.start
#   0 <= r.start and r.end <= ex.span (ex.end - ex.start) for every region
#   unless EXF_NOCOALESCE: r.end + 1 == next.start implies different owners
#   every descriptor is on exactly one of the region list and the free list
#   ex.nregions == length of the region list

from mpalloc.compat import const


from array import array

from mpalloc import intr, lazy

EX_NOWAIT = const(0x00)
EX_WAITOK = const(0x01)
EX_FAST = const(0x02)
EX_CATCH = const(0x04)
EX_NOCOALESCE = const(0x08)
EX_MALLOCOK = const(0x10)
EX_WAITSPACE = const(0x20)
EX_BOUNDZERO = const(0x40)
EX_NOALIGN = const(1)  # placeholder argument values
EX_NOBOUNDARY = const(0)

# ex.flags (what extent_print shows)
EXF_FIXED = const(0x1)
EXF_NOCOALESCE = const(0x2)
EXF_MALLOCED = const(0x4)  # a fixed extent that moved to a heap array (EX_MALLOCOK)

# errno values (MicroPython's errno module lacks some; these are the usual Linux numbers)
EINTR = const(4)
EAGAIN = const(11)
ENOMEM = const(12)

_W = const(4)  # words per descriptor
_S = const(0)
_E = const(1)
_O = const(2)
_N = const(3)  # next descriptor number; 0 ends a list (descriptor k sits at (k-1)*_W)
_M32 = const(0xFFFFFFFF)
_NOT_WITHIN = "not within extent"  # extent_free's wording in _outside

maxwait_ms = 5000
extent_list = []
_debug = [False, None]  # on?, the check run after every operation while on (extent_setup.check)


def EXTENT_FIXED_STORAGE_SIZE(n):
    """Bytes of fixed storage for n region descriptors."""
    # => any context; n >= 0.
    return n * _W * 4


def extent_debug(on=True):
    """Switch the invariant check after every operation on or off."""
    # => thread context (allocates: imports extent_setup, kept while on).
    if on:
        from mpalloc import extent_setup

        _debug[1] = extent_setup.check
        _debug[0] = True
    else:
        _debug[0] = False
        _debug[1] = None
        lazy.unload("extent_setup")


class extent:
    def __init__(self, name, start, end, flags):
        self.name = name
        self.start = start
        self.end = end
        self.span = end - start  # the last offset
        self.cv = None  # 32-bit extents at 0x4000_0000 and up: _rel's scratch (4 bytes)
        self.pack = None  # and struct.pack_into
        self.blo = start & 0xFFFF  # start's low and high halves, for _rel
        self.bhi = (start >> 16) & 0xFFFF
        self.slo = start & 0x1FFFFFFF  # start modulo small powers of two, for _mod
        self.flags = flags
        self.d = None  # descriptor words
        self.ndesc = 0
        self.head = 0  # region list, sorted by address
        self.free = 0  # free descriptor list
        self.nregions = 0
        self.owners = [None]  # owner index -> name
        self.gen = 0  # bumped by every free (wakes waiters)
        self.lock = intr.mutex_init()
        self.dead = False

    def __repr__(self):
        return "<extent %s 0x%x-0x%x regions=%d>" % (self.name, self.start, self.end, self.nregions)


def _hex(a):
    return "0x%x" % a


def _valid(fn, ex):
    if not isinstance(ex, extent):
        raise ValueError(fn + ": not an extent: %r" % (ex,))
    if ex.dead:
        raise ValueError(fn + ": extent '%s' was destroyed" % ex.name)


def _int(fn, what, v):
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(fn + ": %s must be an int, not %r" % (what, v))


def _rel(ex, v):
    # The offset of address v (ex.start <= v <= ex.end): with ex.cv (a 32-bit
    # extent whose addresses are heap objects on 32-bit ports) through its
    # bytes, allocating nothing. Called with ex.lock held (ex.cv is shared).
    c = ex.cv
    if c is None:
        return v - ex.start
    ex.pack("<I", c, 0, v)
    return (((c[2] | c[3] << 8) - ex.bhi) << 16) + (c[0] | c[1] << 8) - ex.blo


def _mod(ex, m):
    # ex.start % m (m >= 1); no big-int arithmetic for a power of two <= 2**29
    if m & (m - 1) == 0 and m <= 0x20000000:
        return ex.slo & (m - 1)
    return ex.start % m


def _setdesc(ex, lo, hi):
    # Put descriptors lo..hi (inclusive numbers) on the free list.
    d = ex.d
    k = hi
    while k >= lo:
        d[(k - 1) * _W + _N] = ex.free
        ex.free = k
        k -= 1


def extent_create(name, start, end, storage, storagesize, flags):
    # => thread context (storage None: allocates); start <= end; storage an array('I') of
    # => storagesize bytes or None. Bad arguments: ValueError.
    from mpalloc import extent_setup  # the slow paths: on the heap only while they run

    try:
        return extent_setup.create(name, start, end, storage, storagesize, flags)
    finally:
        _unload()


def extent_destroy(ex):
    # => thread context; the extent lock not held; nobody else uses the extent.
    from mpalloc import extent_setup

    try:
        extent_setup.destroy(ex)
    finally:
        _unload()


def _unload():
    if not _debug[0]:  # debug mode keeps extent_setup (its check runs after every operation)
        lazy.unload("extent_setup")


def _wait(fn, ex, gen, flags, err, msg):
    # Called with ex.lock NOT held. Returns when ex.gen != gen, else raises.
    from mpalloc import extent_setup

    try:
        extent_setup.wait(fn, ex, gen, flags, err, msg)
    finally:
        _unload()


def _getdesc(fn, ex, flags):
    # A descriptor number, or 0 if none is available without waiting.
    # Called with ex.lock held.
    k = ex.free
    if k:
        ex.free = ex.d[(k - 1) * _W + _N]
        return k
    fixed = ex.flags & EXF_FIXED and not ex.flags & EXF_MALLOCED
    if fixed and not flags & EX_MALLOCOK:
        return 0
    n = ex.ndesc
    old = ex.d
    try:
        new = array("I" if ex.span <= _M32 else "Q", bytes(2 * n * _W * (4 if ex.span <= _M32 else 8)))
    except MemoryError:
        return 0
    for i in range(n * _W):
        new[i] = old[i]
    ex.d = new
    ex.ndesc = 2 * n
    if fixed:
        ex.flags |= EXF_MALLOCED
    _setdesc(ex, n + 1, 2 * n)
    return _getdesc(fn, ex, flags)


def _putdesc(ex, k):
    ex.d[(k - 1) * _W + _N] = ex.free
    ex.free = k


def _owner_index(fn, ex, owner):
    if owner is None:
        return 0
    if not isinstance(owner, str):
        raise ValueError(fn + ": owner must be a str or None, not %r" % (owner,))
    o = ex.owners
    for i in range(1, len(o)):
        if o[i] == owner:
            return i
    o.append(owner)
    return len(o) - 1


def _oname(ex, i):
    o = ex.owners[i]
    return "?" if o is None else o


def _insert(ex, start, size, oi, last, k):
    # Insert [start, start+size-1] owned by oi after region `last` (0: at the
    # head), coalescing with same-owner neighbours unless EXF_NOCOALESCE.
    # k is a descriptor taken beforehand; it goes back if not needed.
    d = ex.d
    end = start + size - 1
    nxt = d[(last - 1) * _W + _N] if last else ex.head
    if not ex.flags & EXF_NOCOALESCE:
        if last and d[(last - 1) * _W + _E] + 1 == start and d[(last - 1) * _W + _O] == oi:
            lb = (last - 1) * _W
            if nxt and end + 1 == d[(nxt - 1) * _W + _S] and d[(nxt - 1) * _W + _O] == oi:
                nb = (nxt - 1) * _W
                d[lb + _E] = d[nb + _E]
                d[lb + _N] = d[nb + _N]
                _putdesc(ex, nxt)
                ex.nregions -= 1
            else:
                d[lb + _E] = end
            _putdesc(ex, k)
            return
        if nxt and end + 1 == d[(nxt - 1) * _W + _S] and d[(nxt - 1) * _W + _O] == oi:
            d[(nxt - 1) * _W + _S] = start
            _putdesc(ex, k)
            return
    b = (k - 1) * _W
    d[b + _S] = start
    d[b + _E] = end
    d[b + _O] = oi
    d[b + _N] = nxt
    if last:
        d[(last - 1) * _W + _N] = k
    else:
        ex.head = k
    ex.nregions += 1


def extent_alloc_region(ex, start, size, flags, owner=None):
    """Claim exactly [start, start+size-1]. OSError(EAGAIN) names the owner
    of an overlapping claim."""
    # => thread context with EX_WAITOK/EX_WAITSPACE, else any context (a fixed extent);
    # => the extent lock not held; size > 0. Overlap: OSError(EAGAIN) naming the owner;
    # => no descriptor: OSError(ENOMEM).
    fn = "extent_alloc_region"
    _valid(fn, ex)
    _int(fn, "start", start)
    _int(fn, "size", size)
    if size < 1:
        raise ValueError(fn + ": extent '%s': bad size %d" % (ex.name, size))
    if start < ex.start or start > ex.end:
        _outside(fn, ex, start, size)
    oi = _owner_index(fn, ex, owner)
    _claim(fn, ex, flags, 0, start, start, size, 1, 0, oi)


def _outside(fn, ex, start, size, how="lies outside the extent"):
    # ValueError for [start, start+size-1] not inside ex (extent_free says "not within extent")
    raise ValueError(fn + ": extent '%s': region %s-%s %s %s-%s"
                     % (ex.name, _hex(start), _hex(start + size - 1), how, _hex(ex.start), _hex(ex.end)))


def _place_region(ex, k, start, end, size, oi):
    # Under ex.lock with descriptor k: insert [start, end] unless a claim
    # overlaps it. Returns 0, or the overlapping region's descriptor.
    d = ex.d
    last = 0
    r = ex.head
    while r:
        b = (r - 1) * _W
        if d[b + _S] > end:
            break
        if d[b + _E] >= start:
            return r
        last = r
        r = d[b + _N]
    _insert(ex, start, size, oi, last, k)
    return 0


def _claim(fn, ex, flags, sub, lo, hi, size, alignment, boundary, oi):
    # The lock / descriptor / wait loop shared by every claim: under ex.lock,
    # the addresses lo and hi (inside the extent) made offsets, with a free
    # descriptor k, _place_sub (sub: the best start in [lo, hi]) or
    # _place_region (exactly [lo, lo+size-1]) inserts. Returns the start (sub)
    # or None. EAGAIN waits with EX_WAITSPACE, ENOMEM (no descriptor) with
    # EX_WAITOK; otherwise OSError; a size that does not fit: ValueError.
    # Allocates nothing (offsets small ints) unless it fails or hands back an
    # address that is a heap object: no argument or result tuples, the
    # message made only then.
    while True:
        s = intr.mutex_enter(ex.lock)
        gen = ex.gen
        try:
            lo_off = _rel(ex, lo)
            if sub:
                hi_off = _rel(ex, hi)
                if size - 1 > hi_off - lo_off:
                    raise ValueError(fn + ": extent '%s': bad size %d for subregion %s-%s"
                                     % (ex.name, size, _hex(lo), _hex(hi)))
            else:
                if size - 1 > ex.span - lo_off:
                    _outside(fn, ex, lo, size)
                hi_off = lo_off + size - 1
            k = _getdesc(fn, ex, flags)
            if not k:
                err = ENOMEM
                msg = fn + ": extent '%s': no region descriptor left (%d in fixed storage)" % (ex.name, ex.ndesc)
            else:
                if sub:
                    r = _place_sub(ex, k, lo_off, hi_off, size, alignment, boundary, flags, oi)
                    err = EAGAIN if r < 0 else 0
                else:
                    r = _place_region(ex, k, lo_off, hi_off, size, oi)
                    err = EAGAIN if r else 0
                if err:
                    _putdesc(ex, k)
                    msg = _busy(fn, ex, sub, r, lo, hi, size, alignment, boundary)
                elif _debug[0]:
                    _debug[1](ex)
        finally:
            intr.mutex_exit(ex.lock, s)
        if not err:
            return ex.start + r if sub else None
        if err == EAGAIN and flags & EX_WAITSPACE or err == ENOMEM and flags & EX_WAITOK:
            _wait(fn, ex, gen, flags, err, msg)
            continue
        raise OSError(err, msg)


def _busy(fn, ex, sub, r, lo, hi, size, alignment, boundary):
    # EAGAIN's message (under ex.lock): no space in the addresses [lo, hi]
    # (sub), or the claim of descriptor r overlapping [lo, lo+size-1]
    if sub:
        return (fn + ": extent '%s': no space for %s units (alignment %s, boundary %s) in %s-%s"
                % (ex.name, _hex(size), _hex(alignment), _hex(boundary), _hex(lo), _hex(hi)))
    b = (r - 1) * _W
    d = ex.d
    return (fn + ": %s-%s in '%s' overlaps %s-%s claimed by '%s'"
            % (_hex(lo), _hex(lo + size - 1), ex.name, _hex(ex.start + d[b + _S]), _hex(ex.start + d[b + _E]),
               _oname(ex, d[b + _O])))


def _align(ex, v, a):
    # the lowest offset >= v whose address is a multiple of a (a power of two)
    m = _mod(ex, a)
    return ((v + m + a - 1) & -a) - m


def extent_alloc(ex, size, alignment, boundary, flags, owner=None):
    """Allocate size units anywhere in the extent; returns the start."""
    # => as extent_alloc_region; alignment a power of two, boundary 0 or a power of two >= size.
    # => No space: OSError(EAGAIN) (EX_WAITSPACE: waits up to maxwait_ms); no descriptor: ENOMEM.
    _valid("extent_alloc", ex)
    return _alloc_sub("extent_alloc", ex, ex.start, ex.end, size, alignment, boundary, flags, owner)


def extent_alloc_subregion(ex, substart, subend, size, alignment, boundary, flags, owner=None):
    """Allocate size units inside [substart, subend]; returns the start."""
    # => as extent_alloc; ex.start <= substart <= subend <= ex.end.
    return _alloc_sub("extent_alloc_subregion", ex, substart, subend, size, alignment, boundary, flags, owner)


def _fit(ex, lo, hi, size, alignment, boundary, flags):
    # Lowest start offset >= lo, aligned, not crossing a boundary line, with
    # the region inside the offsets [lo, hi]; -1 if none. Lines sit at the
    # addresses ex.start + k*boundary (EX_BOUNDZERO: k*boundary), offset base.
    # Unlike NetBSD, a start moved to a line is re-aligned, so alignment and
    # boundary are both always met.
    a = _align(ex, lo, alignment)
    if boundary:
        base = (boundary - _mod(ex, boundary)) % boundary if flags & EX_BOUNDZERO else 0
        while a + size - 1 <= hi:
            line = base + ((a - base) // boundary + 1) * boundary  # next line after a
            if a + size - 1 < line:
                break
            a = _align(ex, line, alignment)
    if a + size - 1 > hi:
        return -1
    return a


def _alloc_sub(fn, ex, substart, subend, size, alignment, boundary, flags, owner):
    _valid(fn, ex)
    _int(fn, "substart", substart)
    _int(fn, "subend", subend)
    _int(fn, "size", size)
    _int(fn, "alignment", alignment)
    _int(fn, "boundary", boundary)
    _int(fn, "flags", flags)
    if substart < ex.start or substart > ex.end or subend > ex.end or subend < substart:
        raise ValueError(fn + ": extent '%s' (%s-%s): bad subregion %s-%s"
                         % (ex.name, _hex(ex.start), _hex(ex.end), _hex(substart), _hex(subend)))
    if size < 1:  # larger than the subregion: _claim (it needs the offsets)
        raise ValueError(fn + ": extent '%s': bad size %d for subregion %s-%s"
                         % (ex.name, size, _hex(substart), _hex(subend)))
    if alignment < 1 or alignment & (alignment - 1):
        raise ValueError(fn + ": extent '%s': alignment %d is not a power of two" % (ex.name, alignment))
    if boundary < 0 or boundary and boundary < size:
        raise ValueError(fn + ": extent '%s': boundary %s is smaller than size %s"
                         % (ex.name, _hex(boundary), _hex(size)))
    oi = _owner_index(fn, ex, owner)
    return _claim(fn, ex, flags, 1, substart, subend, size, alignment, boundary, oi)


def _place_sub(ex, k, substart, subend, size, alignment, boundary, flags, oi):
    # Under ex.lock with descriptor k: the best (or with EX_FAST the first)
    # fitting start in the offsets [substart, subend]; inserts it and returns
    # its offset, else -1.
    fast = flags & EX_FAST
    d = ex.d
    best = -1
    bestovh = 0
    bestlast = 0
    last = 0
    lo = substart
    r = ex.head
    # Walk the gaps: [lo, r.start-1] before each region r, then [lo, subend].
    while True:
        if r:
            b = (r - 1) * _W
            rs = d[b + _S]
            if d[b + _E] < lo:
                last = r
                r = d[b + _N]
                continue
            gap_hi = rs - 1 if rs - 1 < subend else subend
        else:
            rs = ex.span + 1
            gap_hi = subend
        if gap_hi >= lo:
            a = _fit(ex, lo, gap_hi, size, alignment, boundary, flags)
            if a >= 0:
                ovh = rs - a - size  # leftover up to the next region (or the extent end)
                if fast or ovh == 0:
                    best = a
                    bestlast = last
                    break
                if best < 0 or ovh < bestovh:
                    best = a
                    bestovh = ovh
                    bestlast = last
        if not r or rs > subend:
            break
        lo = d[b + _E] + 1
        last = r
        r = d[b + _N]
    if best < 0:
        return -1
    _insert(ex, best, size, oi, bestlast, k)
    return best


def extent_free(ex, start, size, flags, owner=None):
    """Free all or part of one allocated region (a middle part splits it and
    needs a descriptor: ENOMEM with EX_NOWAIT on a full fixed extent)."""
    # => as extent_alloc_region's context; [start, start+size-1] inside one region of owner.
    # => misuse: ValueError; no descriptor for a split: OSError(ENOMEM).
    fn = "extent_free"
    _valid(fn, ex)
    _int(fn, "start", start)
    _int(fn, "size", size)
    if size < 1:
        raise ValueError(fn + ": extent '%s': bad size %d" % (ex.name, size))
    if start < ex.start or start > ex.end:
        _outside(fn, ex, start, size, _NOT_WITHIN)
    coalesce = not ex.flags & EXF_NOCOALESCE
    while True:
        s = intr.mutex_enter(ex.lock)
        gen = ex.gen
        k = 0
        try:
            so = _rel(ex, start)  # [so, eo]: the offsets freed
            if size - 1 > ex.span - so:
                _outside(fn, ex, start, size, _NOT_WITHIN)
            eo = so + size - 1
            d = ex.d
            prev = 0
            r = ex.head
            while r and d[(r - 1) * _W + _E] < so:
                prev = r
                r = d[(r - 1) * _W + _N]
            b = (r - 1) * _W
            if not r or d[b + _S] > so or d[b + _E] < eo:
                raise ValueError(fn + ": extent '%s': region %s-%s not found (not within one allocated region)"
                                 % (ex.name, _hex(start), _hex(start + size - 1)))
            rs = d[b + _S]
            re = d[b + _E]
            if not coalesce and (so != rs or eo != re):
                raise ValueError(fn + ": extent '%s' (EX_NOCOALESCE): %s-%s is part of region %s-%s; "
                                 "only whole regions can be freed"
                                 % (ex.name, _hex(start), _hex(start + size - 1), _hex(ex.start + rs),
                                    _hex(ex.start + re)))
            if owner is not None and ex.owners[d[b + _O]] != owner:
                raise ValueError(fn + ": %s-%s in '%s' is claimed by '%s', not '%s'"
                                 % (_hex(start), _hex(start + size - 1), ex.name, _oname(ex, d[b + _O]), owner))
            if so == rs and eo == re:
                if prev:
                    d[(prev - 1) * _W + _N] = d[b + _N]
                else:
                    ex.head = d[b + _N]
                _putdesc(ex, r)
                ex.nregions -= 1
            elif so == rs:
                d[b + _S] = eo + 1
            elif eo == re:
                d[b + _E] = so - 1
            else:
                k = _getdesc(fn, ex, flags)
                if k:
                    d = ex.d  # _getdesc may have grown it
                    nb = (k - 1) * _W
                    d[nb + _S] = eo + 1
                    d[nb + _E] = re
                    d[nb + _O] = d[b + _O]
                    d[nb + _N] = d[b + _N]
                    d[b + _E] = so - 1
                    d[b + _N] = k
                    ex.nregions += 1
            if so == rs or eo == re or k:
                ex.gen += 1
                if _debug[0]:
                    _debug[1](ex)
                return None
            msg = (fn + ": extent '%s': no region descriptor left to split %s-%s"
                   % (ex.name, _hex(ex.start + rs), _hex(ex.start + re)))
        finally:
            intr.mutex_exit(ex.lock, s)
        if flags & EX_WAITOK:
            _wait(fn, ex, gen, flags, ENOMEM, msg)
            continue
        raise OSError(ENOMEM, msg)


def extent_regions(ex):
    """[(start, end_inclusive, owner), ...] in address order (allocates)."""
    # => thread context (allocates).
    from mpalloc import extent_setup

    try:
        return extent_setup.regions(ex)
    finally:
        _unload()


def extent_print(ex):
    """extent(9)'s listing, plus each region's owner."""
    # => thread context (allocates).
    from mpalloc import extent_setup

    try:
        extent_setup.prints(ex)
    finally:
        _unload()
