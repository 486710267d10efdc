# mpipe: DragonFly BSD's mpipe(9) malloc pipelines for mpalloc.
#
#   mp = mpipe_init(None, type, bytes, nnom, nmax, flags, construct, deconstruct, priv)
#   a = mpipe_alloc_nowait(mp)     never None while fewer than nnom buffers are out
#   a = mpipe_alloc_waitok(mp)     never None (waits for a free, or MemoryError)
#   mpipe_free(mp, a)              mpipe_done(mp)
#   mpipe_list, mpipe_stats(mp)
#
# A pipeline owns nnom buffers of `bytes` bytes from kmalloc type `type`, made at
# mpipe_init (construct(buf, priv) called on each), and hands out up to nmax:
# beyond the nnom it kmallocs with M_NOWAIT, best effort. Freed buffers refill the
# array of nnom first (zeroed unless MPF_CACHEDATA / MPF_NOZERO); a buffer freed
# while the array is full is deconstructed (deconstruct(buf, priv)) and kfree'd.
# The mpipe argument of mpipe_init is the out-parameter: pass None (or a
# malloc_pipe to reinitialise after mpipe_done); the pipeline is returned.
# Representation and invariants: malloc_pipe (slot states _st, addresses
# _bufs, the free slots _free). Locking: mp_lock, a spin mutex per pipeline;
# kmalloc, construct and deconstruct are called with it released.
#
# Interrupts: while fewer than nnom buffers are out, mpipe_alloc_nowait and
# mpipe_free of those buffers allocate nothing from the MicroPython heap (the
# guarantee holds from a hard interrupt handler). Beyond nnom the kmalloc path
# may fail under the heap lock; that is "best effort" and returns None.
# Misuse (foreign or double mpipe_free, use after mpipe_done) raises a
# preallocated exception on those paths, a detailed one elsewhere.
#
# Port decision: mpipe_alloc_waitok cannot sleep on a board with nobody to free:
# with threads it waits up to MPIPE_WAIT_MS for another CPU's mpipe_free, then
# (and at once on a one-CPU board or from an interrupt) raises MemoryError.
from array import array

from mpalloc import intr
from mpalloc import mem
from mpalloc import kmalloc as _km

from mpalloc.compat import const, fail


MPF_NOZERO = const(0x0001)
MPF_CACHEDATA = const(0x0002)
MPF_INT = const(0x0004)
MPIPE_WAIT_MS = const(2000)
_UNLIMITED = const(0x3FFFFFFF)

_S_NONE = const(0)  # _st[slot]: slot holds no buffer
_S_FREE = const(1)  # buffer in the free array
_S_OUT = const(2)  # buffer handed out

mpipe_list = []

_E_DONE_NOWAIT = ValueError("mpipe_alloc_nowait: pipeline used after mpipe_done")
_E_DONE_WAITOK = ValueError("mpipe_alloc_waitok: pipeline used after mpipe_done")
_E_DONE_FREE = ValueError("mpipe_free: pipeline used after mpipe_done")
_E_FOREIGN = ValueError("mpipe_free: buffer not from this pipeline")
_E_DOUBLE = ValueError("mpipe_free: buffer already free")


class malloc_pipe:
    """struct malloc_pipe.

    Invariants (under mp_lock):
      _bufs[s] is the address of the buffer in slot s when _st[s] != _S_NONE
      total_count == number of slots with _st != _S_NONE <= max_count
      _free[0 .. free_count-1] are exactly the slots with _st == _S_FREE;
        free_count <= array_count (== nnom)
      out == total_count - free_count
    """

    def __init__(self):
        self.dead = True
        self.type = None
        self.bytes = 0
        self.array_count = 0
        self.max_count = 0
        self.free_count = 0
        self.total_count = 0
        self.mpflags = 0
        self.construct = None
        self.deconstruct = None
        self.priv = None
        self.mp_lock = intr.mutex_init()
        self._free = array("h")
        self._bufs = []
        self._st = bytearray(0)
        self.nalloc = 0
        self.nfree = 0
        self.nfail = 0
        self.nkmalloc = 0  # buffers kmalloc'd beyond the nominal ones
        self.nwait = 0


_E_TYPE = TypeError("mpipe: an argument of the wrong type with the heap locked")


def _tn(v):
    return type(v).__name__


def _mchk(fn, mp, buf=0):
    # mp a malloc_pipe and buf an int, else a TypeError naming fn
    if mp.__class__ is not malloc_pipe or buf.__class__ is not int:
        fail(_E_TYPE, TypeError, "%s: mp must be a malloc_pipe and buf an int, not %s, %s", fn, _tn(mp), _tn(buf))


def mpipe_init(mpipe, type, bytes, nnom, nmax, flags, construct, deconstruct, priv):
    """Make a pipeline of nnom preallocated buffers (at most nmax; < 0 = no maximum)."""
    if mpipe is None:
        mpipe = malloc_pipe()
    elif not isinstance(mpipe, malloc_pipe):
        raise TypeError("mpipe_init: mpipe must be a malloc_pipe or None")
    elif not mpipe.dead:
        raise ValueError("mpipe_init: pipeline of type '%s' is live; mpipe_done it first" % mpipe.type.ks_shortdesc)
    if not _km.malloc_type_live(type):
        raise ValueError("mpipe_init: type must be a live malloc type, not %r" % (type,))
    for v in (bytes, nnom, nmax, flags):
        if not isinstance(v, int):
            raise TypeError("mpipe_init: bytes, nnom, nmax and flags must be ints, not %s" % _tn(v))
    for f in (construct, deconstruct):
        if not (f is None or callable(f)):
            raise TypeError("mpipe_init: construct and deconstruct must be callable or None, not %s" % _tn(f))
    if bytes > 1 << 20 or nnom > 1 << 16 or nmax > 1 << 16:
        raise ValueError("mpipe_init: bytes %d, nnom %d or nmax %d too large (2**20, 2**16)" % (bytes, nnom, nmax))
    if bytes < 1:
        raise ValueError("mpipe_init: bytes %d < 1" % bytes)
    if flags & ~(MPF_NOZERO | MPF_CACHEDATA | MPF_INT):
        raise ValueError("mpipe_init: unknown flags 0x%x" % flags)
    if nnom < 1:
        nnom = 1
    if nmax < 0:
        nmax = _UNLIMITED
    if nmax < nnom:
        nmax = nnom
    mp = mpipe
    mp.type = type
    mp.bytes = bytes
    mp.array_count = nnom
    mp.max_count = nmax
    mp.mpflags = flags
    mp.construct = construct
    mp.deconstruct = deconstruct
    mp.priv = priv
    mp.free_count = 0
    mp.total_count = 0
    mp._free = array("h", [0] * nnom)
    mp._bufs = [0] * nnom
    mp._st = bytearray(nnom)
    mp.nalloc = mp.nfree = mp.nfail = mp.nkmalloc = mp.nwait = 0
    kf = _km.M_WAITOK | (0 if flags & MPF_NOZERO else _km.M_ZERO)
    try:
        for s in range(nnom):
            a = _km.kmalloc(bytes, type, kf)
            mp._bufs[s] = a
            mp._st[s] = _S_FREE
            mp.total_count += 1
            if construct is not None:
                construct(a, priv)
            mp._free[mp.free_count] = s
            mp.free_count += 1
    except Exception as e:
        _release_free(mp)
        raise MemoryError("mpipe_init: could not preallocate %d buffers of %d bytes (type '%s'): %s" % (nnom, bytes, type.ks_shortdesc, e))
    mp.dead = False
    mpipe_list.append(mp)
    return mp


def _release_free(mp):
    """Deconstruct and kfree every buffer in the free array (not an intr path)."""
    for s in range(len(mp._st)):
        if mp._st[s] == _S_FREE:
            a = mp._bufs[s]
            mp._st[s] = _S_NONE
            mp.total_count -= 1
            if mp.deconstruct is not None:
                mp.deconstruct(a, mp.priv)
            _km.kfree(a, mp.type)
    mp.free_count = 0


def _take(mp):
    """A buffer from the array, or beyond it from kmalloc; None if none now."""
    s = intr.mutex_enter(mp.mp_lock)
    if mp.free_count:
        mp.free_count -= 1
        sl = mp._free[mp.free_count]
        mp._st[sl] = _S_OUT
        mp.nalloc += 1
        intr.mutex_exit(mp.mp_lock, s)
        return mp._bufs[sl]
    if mp.total_count >= mp.max_count:
        intr.mutex_exit(mp.mp_lock, s)
        return None
    mp.total_count += 1  # reserve the buffer against max_count
    intr.mutex_exit(mp.mp_lock, s)
    return _grow(mp)


def _grow(mp):
    """Best effort: kmalloc one more buffer (total_count already counts it)."""
    kf = _km.M_INTNOWAIT if mp.mpflags & MPF_INT else _km.M_NOWAIT
    if not mp.mpflags & MPF_NOZERO:
        kf |= _km.M_ZERO
    a = None
    try:
        a = _km.kmalloc(mp.bytes, mp.type, kf)
        if a is not None:
            if mp.construct is not None:
                mp.construct(a, mp.priv)
            s = intr.mutex_enter(mp.mp_lock)
            try:
                sl = _slot(mp)
                mp._bufs[sl] = a
                mp._st[sl] = _S_OUT
                mp.nalloc += 1
                mp.nkmalloc += 1
            finally:
                intr.mutex_exit(mp.mp_lock, s)
            return a
    except MemoryError:  # heap locked (interrupt) or no memory: best effort
        if a is not None:
            _km.kfree(a, mp.type)
    s = intr.mutex_enter(mp.mp_lock)
    mp.total_count -= 1
    intr.mutex_exit(mp.mp_lock, s)
    return None


def _slot(mp):
    """An empty slot index, growing the slot table (allocates) when there is none."""
    st = mp._st
    for i in range(len(st)):
        if st[i] == _S_NONE:
            return i
    mp._bufs.append(0)
    mp._st.append(_S_NONE)
    return len(mp._st) - 1


def mpipe_alloc_nowait(mp):
    """A buffer without blocking; None only with nnom or more buffers out."""
    if mp.__class__ is not malloc_pipe:
        _mchk("mpipe_alloc_nowait", mp)
    if mp.dead:
        raise _E_DONE_NOWAIT
    a = _take(mp)
    if a is None:
        mp.nfail += 1
    return a


def mpipe_alloc_waitok(mp):
    """A buffer; waits for a free when at nmax or when kmalloc fails."""
    _mchk("mpipe_alloc_waitok", mp)
    if mp.dead:
        raise _E_DONE_WAITOK
    a = _take(mp)
    if a is not None:
        return a
    if intr.cpu_intr_p():
        raise ValueError("mpipe_alloc_waitok: may block; not from an interrupt handler")
    mp.nwait += 1
    if intr.mode == intr.MODE_THREAD and intr.ncpu > 1:
        import time

        t = 0
        while t < MPIPE_WAIT_MS:
            time.sleep_ms(1) if hasattr(time, "sleep_ms") else time.sleep(0.001)
            t += 1
            if mp.dead:
                raise _E_DONE_WAITOK
            a = _take(mp)
            if a is not None:
                return a
    mp.nfail += 1
    raise MemoryError("mpipe_alloc_waitok: type '%s': %d of %d buffers out and none freed; would sleep forever" % (
        mp.type.ks_shortdesc, mp.total_count - mp.free_count, mp.max_count))


def mpipe_free(mp, buf):
    """Give buf back: into the array of nnom (zeroed unless MPF_CACHEDATA/NOZERO), else kfree."""
    if mp.__class__ is not malloc_pipe or buf.__class__ is not int:
        _mchk("mpipe_free", mp, 0 if buf is None else buf)  # (NULL is ignored, as DragonFly)
    if buf is None:
        return
    if mp.dead:
        raise _E_DONE_FREE
    s = intr.mutex_enter(mp.mp_lock)
    bufs = mp._bufs
    st = mp._st
    sl = -1
    for i in range(len(st)):
        if st[i] != _S_NONE and bufs[i] == buf:
            sl = i
            break
    if sl < 0 or st[sl] != _S_OUT:
        intr.mutex_exit(mp.mp_lock, s)
        if sl < 0:
            fail(_E_FOREIGN, ValueError, "mpipe_free: 0x%x is not a buffer of the pipeline of type '%s'", buf, mp.type.ks_shortdesc)
        fail(_E_DOUBLE, ValueError, "mpipe_free: 0x%x already free (pipeline of type '%s')", buf, mp.type.ks_shortdesc)
    mp.nfree += 1
    if mp.free_count < mp.array_count:
        st[sl] = _S_FREE
        mp._free[mp.free_count] = sl
        mp.free_count += 1
        intr.mutex_exit(mp.mp_lock, s)
        if not mp.mpflags & (MPF_CACHEDATA | MPF_NOZERO):
            _bzero(buf, mp.bytes)
        return
    st[sl] = _S_NONE
    mp.total_count -= 1
    intr.mutex_exit(mp.mp_lock, s)
    if mp.deconstruct is not None:
        mp.deconstruct(buf, mp.priv)
    _km.kfree(buf, mp.type)


def _bzero(a, n):
    r = mem.ram
    o = a - mem.base
    for i in range(o, o + n):
        r[i] = 0


def mpipe_done(mp):
    """Destroy the pipeline: no buffer may be out. A second call does nothing."""
    _mchk("mpipe_done", mp)
    if mp.dead:
        return
    out = mp.total_count - mp.free_count
    if out:
        raise ValueError("mpipe_done: pipeline of type '%s' still has %d buffers out" % (mp.type.ks_shortdesc, out))
    _release_free(mp)
    mp.dead = True
    mpipe_list.remove(mp)


def mpipe_stats(mp):
    """name (the type's), bytes, nnom, nmax, total, free, out, nalloc, nfree, nfail, nkmalloc, nwait."""
    _mchk("mpipe_stats", mp)
    return {
        "name": mp.type.ks_shortdesc if mp.type is not None else None,
        "bytes": mp.bytes,
        "nnom": mp.array_count,
        "nmax": mp.max_count,
        "total": mp.total_count,
        "free": mp.free_count,
        "out": mp.total_count - mp.free_count,
        "nalloc": mp.nalloc,
        "nfree": mp.nfree,
        "nfail": mp.nfail,
        "nkmalloc": mp.nkmalloc,
        "nwait": mp.nwait,
    }
