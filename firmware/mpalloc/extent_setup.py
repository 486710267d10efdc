# extent_setup: extent(9)'s slow paths, imported on first use and dropped after
# (lazy.unload): creating and destroying an extent, waiting for space, the
# listings and the debug check. extent.py keeps the claim and free paths (#19).
#
#   create(...), destroy(ex)        extent_create / extent_destroy's work
#   regions(ex), prints(ex)         extent_regions / extent_print's work
#   wait(fn, ex, gen, flags, err, msg)   an EX_WAITOK / EX_WAITSPACE sleep
#   check(ex)                       the invariants (extent.py's header);
#                                   extent_debug(True) keeps it (and this
#                                   module) until switched off
#
# Data: none of its own (extent's extent_list, maxwait_ms). Locking: each
# extent's lock (intr spin mutex), as extent.py. Thread context: it allocates.
from array import array

from mpalloc import intr
from mpalloc import extent as X
from mpalloc.compat import const
from mpalloc.extent import (extent, _valid, _int, _hex, _setdesc, EX_NOCOALESCE, EXF_NOCOALESCE, EXF_FIXED, EINTR,
                            EX_CATCH, EXTENT_FIXED_STORAGE_SIZE)

# extent.py's descriptor layout (an underscore const() is no module attribute on
# MicroPython: the values are repeated here)
_W = const(4)
_S = const(0)
_E = const(1)
_O = const(2)
_N = const(3)
_M32 = const(0xFFFFFFFF)


def create(name, start, end, storage, storagesize, flags):
    # => as extent.extent_create.
    fn = "extent_create"
    if not isinstance(name, str):
        raise ValueError(fn + ": name must be a str, not %r" % (name,))
    _int(fn, "start", start)
    _int(fn, "end", end)
    _int(fn, "flags", flags)
    _int(fn, "storagesize", storagesize)
    if start < 0:
        raise ValueError(fn + ": extent '%s': start %s is negative" % (name, _hex(start)))
    if end < start:
        raise ValueError(fn + ": extent '%s': end %s < start %s" % (name, _hex(end), _hex(start)))
    ex = extent(name, start, end, EXF_NOCOALESCE if flags & EX_NOCOALESCE else 0)
    if storage is not None:
        _int(fn, "storagesize", storagesize)
        n = storagesize // (_W * 4)
        if n < 1:
            raise ValueError(fn + ": extent '%s': fixed storage of %d bytes holds no region descriptor (need %d)"
                             % (name, storagesize, EXTENT_FIXED_STORAGE_SIZE(1)))
        if end - start > _M32:
            raise ValueError(fn + ": extent '%s': fixed storage holds 32-bit offsets; %s-%s spans more"
                             % (name, _hex(start), _hex(end)))
        try:
            ok = len(storage) * 4 >= storagesize
            old = storage[0]
            storage[0] = _M32
            ok = ok and storage[0] == _M32
            storage[0] = old
        except Exception:
            ok = False
        if not ok:
            raise ValueError(fn + ": extent '%s': storage must be an array('I') of at least %d bytes"
                             % (name, storagesize))
        for i in range(n * _W):
            storage[i] = 0
        ex.flags |= EXF_FIXED
        ex.d = storage
    elif storagesize:
        raise ValueError(fn + ": extent '%s': storagesize %d given without storage" % (name, storagesize))
    else:
        n = 4
        ex.d = array("I" if ex.span <= _M32 else "Q", bytes(n * _W * (4 if ex.span <= _M32 else 8)))
    # a heap object on 32-bit ports: extent._rel works in bytes (on every port,
    # so that the host's model tests run the path 32-bit boards run)
    if start >= 0x40000000 and end <= _M32:
        try:
            from struct import pack_into
        except ImportError:  # MicroPython 1.9
            from ustruct import pack_into
        ex.pack = pack_into
        ex.cv = bytearray(4)
    ex.ndesc = n
    _setdesc(ex, 1, n)
    X.extent_list.append(ex)
    return ex


def destroy(ex):
    # => as extent.extent_destroy.
    _valid("extent_destroy", ex)
    s = intr.mutex_enter(ex.lock)
    try:
        ex.dead = True
        ex.head = 0
        ex.nregions = 0
        ex.gen += 1
    finally:
        intr.mutex_exit(ex.lock, s)
    if ex in X.extent_list:
        X.extent_list.remove(ex)


def _threads():
    try:
        import _thread  # noqa: F401

        return True
    except ImportError:
        return False


def wait(fn, ex, gen, flags, err, msg):
    # Called with ex.lock NOT held. Returns when ex.gen != gen, else raises.
    try:
        from time import sleep_ms
    except ImportError:  # CPython
        from time import sleep

        def sleep_ms(n):
            sleep(n / 1000)

    if not _threads():
        raise OSError(err, msg + " (would wait forever: no other thread can free)")
    waited = 0
    try:
        while ex.gen == gen and not ex.dead:
            if waited >= X.maxwait_ms:
                raise OSError(err, msg + " (waited %d ms)" % waited)
            sleep_ms(1)
            waited += 1
    except KeyboardInterrupt:
        if flags & EX_CATCH:
            raise OSError(EINTR, fn + ": wait interrupted")
        raise
    if ex.dead:
        raise ValueError(fn + ": extent '%s' was destroyed while waiting" % ex.name)


def regions(ex):
    # => as extent.extent_regions.
    _valid("extent_regions", ex)
    out = []
    s = intr.mutex_enter(ex.lock)
    try:
        d = ex.d
        r = ex.head
        while r:
            b = (r - 1) * _W
            out.append((ex.start + d[b + _S], ex.start + d[b + _E], ex.owners[d[b + _O]]))
            r = d[b + _N]
    finally:
        intr.mutex_exit(ex.lock, s)
    return out


def prints(ex):
    # => as extent.extent_print.
    _valid("extent_print", ex)
    print("extent `%s' (0x%x - 0x%x), flags = 0x%x" % (ex.name, ex.start, ex.end, ex.flags))
    for rs, re, o in regions(ex):
        print("     0x%x - 0x%x  %s" % (rs, re, "?" if o is None else o))


def check(ex):
    # The invariants in extent.py's header; AssertionError names the broken one.
    d = ex.d
    seen = {}
    n = 0
    prev_e = -1
    prev_o = -1
    r = ex.head
    while r:
        if r in seen or not 1 <= r <= ex.ndesc:
            raise AssertionError("extent '%s': region list broken at descriptor %d" % (ex.name, r))
        seen[r] = 1
        b = (r - 1) * _W
        rs = d[b + _S]
        re = d[b + _E]
        if rs > re or rs < 0 or re > ex.span:
            raise AssertionError("extent '%s': bad region 0x%x-0x%x" % (ex.name, ex.start + rs, ex.start + re))
        if n and rs <= prev_e:
            raise AssertionError("extent '%s': regions unsorted/overlapping at 0x%x" % (ex.name, ex.start + rs))
        if n and not ex.flags & EXF_NOCOALESCE and rs == prev_e + 1 and d[b + _O] == prev_o:
            raise AssertionError("extent '%s': uncoalesced neighbours at 0x%x" % (ex.name, ex.start + rs))
        prev_e = re
        prev_o = d[b + _O]
        n += 1
        r = d[b + _N]
    if n != ex.nregions:
        raise AssertionError("extent '%s': nregions %d but %d on the list" % (ex.name, ex.nregions, n))
    f = ex.free
    while f:
        if f in seen or not 1 <= f <= ex.ndesc:
            raise AssertionError("extent '%s': free list broken at descriptor %d" % (ex.name, f))
        seen[f] = 1
        f = d[(f - 1) * _W + _N]
    if len(seen) != ex.ndesc:
        raise AssertionError("extent '%s': %d descriptors lost" % (ex.name, ex.ndesc - len(seen)))
