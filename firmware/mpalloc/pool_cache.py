# pool_cache: pool_cache(9), per-CPU magazines in front of a pool (Bonwick & Adams 2001).
#
#   pc = pool_cache_init(size, align, align_offset, flags, wchan, palloc, ipl, ctor, dtor, arg)
#   o = pool_cache_get(pc, PR_NOWAIT)    # an int address (constructed object) or None
#   pool_cache_put(pc, o)
#
# Objects are int addresses as in pool (bytes via mem.buf(o, n), or mem.ram
# from a handler). pool_cache_get_paddr allocates a tuple: not for handlers.
# Constructors run when an object comes up from the pool (a get miss), never
# on a hit; destructors when it goes down (invalidate, destruct_object, a put
# that finds no magazine, destroy).
#
# Representation: pc is a list; pc[c] (c < MAXCPU) is CPU c's loaded magazine,
# pc[_META] a _Meta with the rest (previous magazines, depot full/empty lists,
# the pool). A magazine is a list
#     [n, obj_1 .. obj_cap, spare, room, n0, cap, gethits]
# (objects at mag[1 .. n]; the fields from the end are at offsets _MAG_ROOM,
# _MAG_N0, _MAG_CAP, _MAG_GETHITS).
#
# Invariants: 0 <= n <= cap; room is _room(cap), room[n] == 1 iff n < cap;
# spare holds no live reference after a put; a magazine is in exactly one
# place (a CPU's loaded or previous slot, depot full list iff n == cap, depot
# empty list iff n == 0); a CPU's previous magazine is full or empty, so at
# most 1 in cap operations reaches the depot; _DUMMY (cap 0) holds nothing.
# Off a CPU, gethits == 0 and n0 == n (puthits = gethits + n - n0).
#
# Locking: a hit runs with nothing held on one-CPU boards, under the CPU's
# interrupt mask where machine.disable_irq exists, under _cl[c] in MODE_THREAD;
# misses take intr.splhigh() and the depot's spin mutex. Order: mask ->
# _cl[c] -> depot lock; the back end is called with neither held.
#
# Hot path (get/put hit): allocates nothing, no jump between reading and
# writing the magazine (so a soft interrupt lands before or after, never
# inside), checks only flags (get) and `not o` (put). pool_cache_get and
# pool_cache_put are rebound by _bind() (intr.setup(), pool_cache_debug()):
# call them through the module, not a name imported before set-up.
# Design notes and measurements: docs/DESIGN-NOTES.md#pool_cache.
try:
    import _thread
except ImportError:
    _thread = None

from mpalloc import intr
from mpalloc import pool as _pool
from mpalloc.pool import PR_WAITOK, PR_NOWAIT, PR_LARGECACHE, PR_ZERO  # noqa: F401

from mpalloc.compat import const, fail


MAXCPU = const(8)
_META = const(8)
_NOCPU = const(8)  # intr._NOCPU
_NOWAIT = const(0x2)  # PR_NOWAIT, PR_WAITOK as constants the hit test inlines
_WAITOK = const(0x1)
_SIO_CPUID = const(-0x30000000)
MAGSIZE = const(15)  # NetBSD LP64 group size; PR_LARGECACHE: 63
MAGSIZE_LARGE = const(63)

pool_cache_list = []
E_FLAGS = ValueError("pool_cache_get: flags need exactly one of PR_WAITOK, PR_NOWAIT")
E_NULL = ValueError("pool_cache_put: object is None")
E_PUT = ValueError("pool_cache_put: not an object of this cache (0, negative or not an int) with the heap locked")
E_TYPE = TypeError("pool_cache: an argument of the wrong type with the heap locked")

# _POS[k] = 1 if k > 0 else 0 (k <= 128, objcache's largest magazine): what a
# get hit takes, as an int without a jump (a bool in arithmetic takes
# MicroPython's slow path; a list subscript is cheaper than a bytes one).
_POS = [0] + [1] * 128
_MAG_ROOM = const(-4)  # magazine fields, from the end (see the header)
_MAG_N0 = const(-3)
_MAG_CAP = const(-2)
_MAG_GETHITS = const(-1)
_DBG_GET_FOREIGN = const(1)  # debug checks' findings (_dbg_fail's messages)
_DBG_GET_CACHED = const(2)
_DBG_PUT_FOREIGN = const(3)
_DBG_PUT_CACHED = const(4)
_rooms = {}  # cap -> its room table: [1] * cap + [0], shared by the magazines of that size


def _room(cap):
    # room[n] = 1 if a magazine of cap objects holding n has room (n < cap):
    # what a put hit adds. Allocates the first time a size is used.
    t = _rooms.get(cap)
    if t is None:
        t = _rooms[cap] = [1] * cap + [0]
    return t


_DUMMY = [0, 0, _room(0), 0, 0, 0]  # n, spare, room, n0, cap 0, gethits

# Mode-dependent values, refreshed by intr.setup() through _sync().
_thr = False
_cpuget = intr._cpu_of.get
_ident = _thread.get_ident if _thread is not None else None
_dis = None
_en = None
_sio = False
_mem32 = None


_cl = None  # MODE_THREAD: per-CPU magazine locks (see the header)


class _NoCpu:
    # _cl's entry for a thread that never called intr.cpu_attach: taking it
    # raises intr.E_NOCPU (a hit costs nothing more for the check)
    def acquire(self, *a):
        raise intr.E_NOCPU

    def release(self):
        pass

    def locked(self):
        return False


def _sync():
    global _thr, _dis, _en, _sio, _mem32, _cl
    _thr = intr.mode == intr.MODE_THREAD
    if _thr and _cl is None:
        _cl = [_thread.allocate_lock() for _ in range(MAXCPU)]
        _cl.append(_NoCpu())  # _cl[intr._NOCPU]: what a thread with no CPU finds
    m = intr._machine
    _dis = m.disable_irq if m is not None else None
    _en = m.enable_irq if m is not None else None
    _sio = intr.mode == intr.MODE_SIO
    _mem32 = intr._mem32


intr._on_setup.append(_sync)
_sync()


class _Meta:
    # No constructor/destructor: the class's None, not a slot in every
    # cache's attribute dict (kmem's 22 caches have none).
    ctor = None
    dtor = None
    arg = None
    nbad = 0  # puts refused: None, 0, a negative or non-int object (see _put_odd)


def pool_cache_init(size, align, align_offset, flags, wchan, palloc, ipl, ctor, dtor, arg):
    """A cache of constructed `size`-byte objects (pool_cache(9) pool_cache_init)."""
    # => thread context (allocates); pool_init's arguments; ctor, dtor callable or None.
    # => bad arguments: TypeError/ValueError.
    if not isinstance(flags, int):
        raise TypeError("pool_cache_init: flags must be an int, not %s" % type(flags).__name__)
    if not (ctor is None or callable(ctor)) or not (dtor is None or callable(dtor)):
        raise TypeError("pool_cache_init: ctor and dtor must be callable or None")
    try:
        pp = _pool.pool_init(size, align, align_offset, flags & ~PR_LARGECACHE, wchan, palloc, ipl)
    except (TypeError, ValueError) as e:  # pool_init's message, under this function's name
        raise type(e)("pool_cache_init: " + str(e.args[0] if e.args else e)[len("pool_init: "):])
    d = _Meta()
    d.name = wchan
    d.pp = pp
    # Back end of the cache: pool_get/pool_put on d.pp. objcache(9) replaces the
    # three (its objects come from an alloc/free pair, not a pool); nothing else
    # in this module assumes d.pp is a pool except pool_cache_destroy.
    d.pget = _pool.pool_get
    d.pput = _pool.pool_put
    if ctor is not None or dtor is not None or arg is not None:
        d.ctor = ctor
        d.dtor = dtor
        d.arg = arg
    d.magsize = MAGSIZE_LARGE if flags & PR_LARGECACHE else MAGSIZE
    _room(d.magsize)  # its magazines' room table, made now rather than on an interrupt path
    d.prev = [_DUMMY] * MAXCPU
    d.ghits = [0] * MAXCPU  # folded hit counts (see the header)
    d.phits = [0] * MAXCPU
    d.gmiss = [0] * MAXCPU
    d.pmiss = [0] * MAXCPU
    d.gfail = [0] * MAXCPU  # get misses that found nothing (or whose ctor failed)
    # Depot: stacks with room for every magazine ever made (nmags), so pushing
    # never grows a list. Guarded by d.lock.
    d.full = []
    d.nfull = 0
    d.empty = []
    d.nempty = 0
    d.nmags = 0
    d.dgets = d.dputs = d.contention = 0
    d.nconstructed = 0
    d.want = 0  # 1: an interrupt handler found no empty magazine (see _mag_new)
    d.lock = intr.mutex_init()
    d.ds = 0  # mask token of the depot lock holder (_depot_enter)
    pc = [_DUMMY] * MAXCPU
    pc.append(d)
    # One empty magazine in the depot from the start: a hard interrupt that comes
    # before the thread's first put can load it (it cannot make one, the heap is
    # locked). Without it every handler call took the back end both ways, a
    # pool_get and a pool_put (~190,000 cycles on an RP2040): longer than a 1 ms
    # machine.Timer period, which then ran back to back and never let the thread
    # in to make the magazine (emu:rp2040, tests/device/test_isr.py rp2_hard_timer).
    _mag_reserve(d, 1)
    pp.cache = pc
    pool_cache_list.append(pc)
    return pc


# The hit paths, one pair per way of excluding interrupts and other CPUs
# (_bind() makes pool_cache_get / pool_cache_put the pair of the current mode,
# so no hit tests the mode). Call them through the module, or bind them after
# intr.setup() (the board's init): a reference taken before a mode change keeps
# the old mode's pair. Every frame on a hit or a normal miss stays within 11
# words (arguments + locals + value stack), so MicroPython keeps it off the
# heap (VM_MAX_STATE_ON_STACK); the rare work is in functions of their own.
# From reading mag to its last write there is no jump (see the header): on an
# empty magazine get's c = _POS[0] = 0 and nothing changes; on a full one put's
# room is 0, o lands in the spare slot and the count stays.


def _get_up(pc, flags):
    """A constructed object's address, or None (PR_NOWAIT, hard limit, ctor failure)."""
    if flags != _NOWAIT and flags != _WAITOK:
        _get_flags(pc, flags)
    # one CPU, nothing to exclude (unix MODE_UP, webassembly, micro:bit):
    # 30 bytecodes on a hit (magazine 4, count 4, step 4, store 6, hit count 8, object 4)
    mag = pc[0]
    n = mag[0]
    c = _POS[n]
    mag[0] = n - c
    mag[_MAG_GETHITS] += c
    c = mag[n]
    if n:
        return c
    return _get_slow(pc, flags)


def _put_up(pc, o):
    """Return object o (still constructed) to the cache."""
    if not o:  # None, 0 (an objcache's falsy object too: _put_odd takes it the general way)
        return _put_odd(pc, o)
    # a put hit counts nothing (see the header)
    mag = pc[0]
    n = mag[0]
    mag[n + 1] = o
    c = mag[_MAG_ROOM][n]
    mag[0] = n + c
    if c:
        return
    _put_slow(pc, o)


def _get_thr(pc, flags):
    """A constructed object's address, or None (PR_NOWAIT, hard limit, ctor failure)."""
    if flags != _NOWAIT and flags != _WAITOK:
        _get_flags(pc, flags)
    pc[_META]  # a pc that is no cache fails here, before the lock (unnamed: see the header)
    # MODE_THREAD: the caller's CPU (handlers too) and its magazine lock
    c = _cpuget(_ident(), _NOCPU) & 0xFF
    m = _cl[c]
    m.acquire()
    mag = pc[c]
    n = mag[0]
    c = _POS[n]
    mag[0] = n - c
    mag[_MAG_GETHITS] += c
    c = mag[n]
    m.release()
    if n:
        return c
    return _get_slow(pc, flags)


def _put_thr(pc, o):
    """Return object o (still constructed) to the cache."""
    if not o:  # None, 0 (an objcache's falsy object too: _put_odd takes it the general way)
        return _put_odd(pc, o)
    pc[_META]  # as in _get_thr
    c = _cpuget(_ident(), _NOCPU) & 0xFF
    m = _cl[c]
    m.acquire()
    mag = pc[c]
    n = mag[0]
    mag[n + 1] = o
    c = mag[_MAG_ROOM][n]
    mag[0] = n + c
    m.release()
    if c:
        return
    _put_slow(pc, o)


def _get_irq(pc, flags):
    """A constructed object's address, or None (PR_NOWAIT, hard limit, ctor failure)."""
    if flags != _NOWAIT and flags != _WAITOK:
        _get_flags(pc, flags)
    # one CPU with an interrupt mask (machine.disable_irq: esp32)
    m = _dis()
    mag = pc[0]
    n = mag[0]
    c = _POS[n]
    mag[0] = n - c
    mag[_MAG_GETHITS] += c
    c = mag[n]
    _en(m)
    if n:
        return c
    return _get_slow(pc, flags)


def _put_irq(pc, o):
    """Return object o (still constructed) to the cache."""
    if not o:  # None, 0 (an objcache's falsy object too: _put_odd takes it the general way)
        return _put_odd(pc, o)
    m = _dis()
    mag = pc[0]
    n = mag[0]
    mag[n + 1] = o
    c = mag[_MAG_ROOM][n]
    mag[0] = n + c
    _en(m)
    if c:
        return
    _put_slow(pc, o)


def _get_sio(pc, flags):
    """A constructed object's address, or None (PR_NOWAIT, hard limit, ctor failure)."""
    if flags != _NOWAIT and flags != _WAITOK:
        _get_flags(pc, flags)
    # RP2040 (MODE_SIO): this core's mask, then its id from the SIO CPUID register
    m = _dis()
    mag = pc[_mem32[_SIO_CPUID]]
    n = mag[0]
    c = _POS[n]
    mag[0] = n - c
    mag[_MAG_GETHITS] += c
    c = mag[n]
    _en(m)
    if n:
        return c
    return _get_slow(pc, flags)


def _put_sio(pc, o):
    """Return object o (still constructed) to the cache."""
    if not o:  # None, 0 (an objcache's falsy object too: _put_odd takes it the general way)
        return _put_odd(pc, o)
    m = _dis()
    mag = pc[_mem32[_SIO_CPUID]]
    n = mag[0]
    mag[n + 1] = o
    c = mag[_MAG_ROOM][n]
    mag[0] = n + c
    _en(m)
    if c:
        return
    _put_slow(pc, o)


def _cchk(fn, pc):
    # a public function's pc: a cache made by pool_cache_init, else TypeError
    if pc.__class__ is not list or len(pc) != _META + 1 or pc[_META].__class__ is not _Meta:
        fail(E_TYPE, TypeError, "%s: pc must be a pool cache (from pool_cache_init), not %s", fn, type(pc).__name__)


def _get_flags(pc, flags):
    # a get whose flags are not exactly PR_NOWAIT or PR_WAITOK (or, in
    # MODE_THREAD, whose pc is no list): returns if the hit may go on,
    # raises as pool_get does otherwise (before any lock)
    _cchk("pool_cache_get", pc)
    if flags.__class__ is not int:
        fail(E_TYPE, TypeError, "pool_cache_get: flags must be an int, not %s%s", type(flags).__name__, "")
    f = flags & 3
    if f == 0 or f == 3:
        raise E_FLAGS


def _put_odd(pc, o):
    # a put of a false object (the hit's one test, `not o`: None and 0, and
    # no compare an objcache object could refuse): None and 0 are refused and
    # counted (d.nbad); objcache's caches hold any object but None
    _cchk("pool_cache_put", pc)
    d = pc[_META]
    if o is not None and d.pget is not _pool.pool_get:
        _put_slow(pc, o)
        return
    d.nbad += 1
    if o is None:
        raise E_NULL
    fail(E_PUT, ValueError, "pool_cache_put: %r is not an object of cache '%s' (a pool item's address)", o, d.name)


pool_cache_get = _get_up  # _bind() (at the end of the module) sets the pair of the mode
pool_cache_put = _put_up


def _fold(d, c, mag):
    # Magazine leaves CPU c: its hit counts go to c's totals (see the header).
    g = mag[_MAG_GETHITS]
    d.ghits[c] += g
    d.phits[c] += g + mag[0] - mag[_MAG_N0]
    mag[_MAG_GETHITS] = 0
    mag[_MAG_N0] = mag[0]


def _depot_enter(d):
    # The depot lock, taken with this CPU masked, so no soft interrupt lands
    # while it is held (order: mask -> _cl[c] -> depot lock). d.ds keeps the
    # mask token: only the lock holder writes it.
    s = intr.splhigh()
    m = d.lock
    if m is not None and not m.acquire(0):
        d.contention += 1
        m.acquire()
    d.ds = s


def _depot_exit(d):
    s = d.ds
    if d.lock is not None:
        d.lock.release()
    intr.splx(s)


def _get_slow(pc, flags):
    # The general get path: interrupt handlers, nested critical sections and
    # misses of the loaded magazine.
    f = flags & 3
    if f == 0 or f == 3:
        raise E_FLAGS
    c = _cpu()
    s = _cpu_enter(c)
    while True:
        mag = pc[c]
        f = mag[0]
        if f:
            mag[0] = f - 1
            mag[_MAG_GETHITS] += 1
            f = mag[f]
            _cpu_exit(c, s)
            return f
        if not _get_swap(pc, c):
            break
    return _get_miss(pc, c, s, flags)


def _get_swap(pc, c):
    # CPU c (masked) has an empty loaded magazine: swap in the previous one if
    # it is full, else trade with the depot. False: no full magazine anywhere.
    d = pc[_META]
    prev = d.prev[c]
    if prev[_MAG_CAP] and prev[0] == prev[_MAG_CAP]:
        d.prev[c] = pc[c]  # previous is full: swap (no depot access)
        pc[c] = prev
        return True
    _depot_enter(d)
    i = d.nfull
    if not i:
        _depot_exit(d)
        if d.want:
            _mag_reserve(d)
        return False
    i -= 1
    full = d.full[i]
    d.full[i] = None
    d.nfull = i
    d.dgets += 1
    if prev[_MAG_CAP]:
        _fold(d, c, prev)
        d.empty[d.nempty] = prev
        d.nempty += 1
    _depot_exit(d)
    d.prev[c] = pc[c]
    pc[c] = full
    return True


def _get_miss(pc, c, s, flags):
    # Nothing cached for CPU c: an object from the back end (pool), constructed.
    d = pc[_META]
    d.gmiss[c] += 1
    _cpu_exit(c, s)
    o = d.pget(d.pp, flags)
    if o is None:
        _gfail(d, c)
        return None
    if d.ctor is not None and d.ctor(d.arg, o, flags):
        d.pput(d.pp, o)
        _gfail(d, c)
        return None
    _depot_enter(d)  # counters of the shared part under the depot lock
    d.nconstructed += 1
    _depot_exit(d)
    return o


def _gfail(d, c):
    # A get miss that found nothing (or whose ctor failed), counted with CPU
    # c's magazines held: its handlers count there too.
    s = _cpu_enter(c)
    d.gfail[c] += 1
    _cpu_exit(c, s)


def _mag_new(d):
    # A new empty magazine, or None where the heap cannot give one (locked:
    # d.want asks the next depot access outside it to make a spare one).
    try:
        mag = [0] * (d.magsize + 6)
        mag[_MAG_ROOM] = _room(d.magsize)
    except MemoryError:
        d.want = 1
        return None
    mag[_MAG_CAP] = d.magsize
    _depot_enter(d)
    ok = _depot_grow(d)
    _depot_exit(d)
    if not ok:
        d.want = 1
        return None
    return mag


def _depot_grow(d):
    # Room in the depot's arrays for one more magazine; the depot lock is held.
    # Invariant: len(d.full) >= d.nmags and len(d.empty) >= d.nmags, so every
    # magazine fits in either array. The arrays grow in place: a copy made
    # outside the lock lost another CPU's concurrent growth or depot store
    # (two CPUs making magazines at once left one slot short, and invalidate
    # then ran off the end of d.empty).
    try:
        if len(d.full) <= d.nmags:
            d.full.append(None)
        if len(d.empty) <= d.nmags:
            d.empty.append(None)
    except MemoryError:
        return False
    d.nmags += 1
    return True


def _mag_reserve(d, n=1):
    # Put empty magazines in the depot until it holds n (allocates; quietly
    # stops where the heap is locked). For CPUs whose first puts come from an
    # interrupt handler, which cannot make a magazine.
    while d.nempty < n:
        mag = _mag_new(d)
        if mag is None:
            return
        _depot_enter(d)
        d.empty[d.nempty] = mag
        d.nempty += 1
        _depot_exit(d)
    d.want = 0


def _put_slow(pc, o):
    # The general put path (see _get_slow).
    if o is None:
        raise E_NULL
    c = _cpu()
    s = _cpu_enter(c)
    mag = pc[c]  # the hit found it full and left o in its spare slot:
    mag[mag[_MAG_CAP] + 1] = 0  # drop that reference (objcache objects may be any object)
    while True:
        mag = pc[c]
        n = mag[0]
        if n < mag[_MAG_CAP]:
            n += 1
            mag[n] = o
            mag[0] = n
            _cpu_exit(c, s)
            return
        if not _put_swap(pc, c):
            break
    mag = pc[_META]  # no room anywhere: destruct, back to the pool
    mag.pmiss[c] += 1
    _cpu_exit(c, s)
    if mag.dtor is not None:
        mag.dtor(mag.arg, o)
    mag.pput(mag.pp, o)


def _put_swap(pc, c):
    # CPU c (masked) has a full loaded magazine: swap in the previous one if
    # it is empty, else trade with the depot. False: no empty magazine to be had.
    d = pc[_META]
    prev = d.prev[c]
    if prev[_MAG_CAP] and prev[0] == 0:
        d.prev[c] = pc[c]  # previous is empty: swap
        pc[c] = prev
        return True
    e = None
    _depot_enter(d)
    i = d.nempty
    if i:
        i -= 1
        e = d.empty[i]
        d.empty[i] = None
        d.nempty = i
    _depot_exit(d)
    if e is None:
        e = _mag_new(d)
        if e is None:
            return False
    elif d.want:
        _mag_reserve(d)
    if not prev[_MAG_CAP]:
        d.prev[c] = e  # previous is the dummy: the empty magazine becomes previous
        return True
    _fold(d, c, prev)
    _depot_enter(d)
    d.full[d.nfull] = prev
    d.nfull += 1
    d.dputs += 1
    _depot_exit(d)
    d.prev[c] = pc[c]
    pc[c] = e
    return True


# -- debug mode (POOL_DIAGNOSTIC for the cache layer, switched at run time) --
#
# pool_cache_debug(True) (mpalloc.debug.on() calls it) swaps pool_cache_get /
# pool_cache_put for _dbg_get / _dbg_put, which also check, for caches whose
# back end is their pool (not objcache's):
#   put: the object is an item its pool handed out (not foreign, not inside an
#        item, not already back in the pool) and is in no magazine yet (a
#        double put into the cache, which the plain put cannot see);
#   get: the object handed out is an item its pool counts as out and is in no
#        magazine any more (a duplicate there means an earlier double put).
# The magazine scan takes every CPU's magazines in turn (as invalidate does)
# and the depot lock: O(cached objects) per operation. Off (the default) the
# plain functions are back: the hit path is exactly the plain one. Both debug
# paths allocate nothing (interrupt handlers use them too); a report with the
# heap locked raises the preallocated E_DEBUG (object in pool_cache_lasterr[0]).
pool_cache_lasterr = [0, None]
E_DEBUG = ValueError("pool_cache: misuse found by the debug checks with the heap locked (object in "
                     "pool_cache.pool_cache_lasterr)")
_debug = [False]


def pool_cache_debug(on):
    """Switch pool_cache's debug checks (foreign, double and duplicate objects) on or off."""
    # => thread context; no pool_cache_get/put under way (it rebinds them).
    _debug[0] = bool(on)
    _bind()


def _bind():
    # pool_cache_get / pool_cache_put: the hit pair of the current mode, or
    # the debug pair in front of it (_pc_get / _pc_put: the plain pair).
    # pool_cache_get(pc, flags):
    # => any context with PR_NOWAIT (a handler finds a magazine only after
    #    pool_cache_prime); PR_WAITOK: thread context. No lock of pc held.
    # => failure: None; bad flags: ValueError E_FLAGS.
    # pool_cache_put(pc, o):
    # => any context; o an object pool_cache_get(pc) handed out, not yet put.
    # => None: ValueError E_NULL; debug mode: foreign or double put ValueError.
    global pool_cache_get, pool_cache_put, _pc_get, _pc_put
    if _thr:
        _pc_get, _pc_put = _get_thr, _put_thr
    elif _dis is None:
        _pc_get, _pc_put = _get_up, _put_up
    elif _sio:
        _pc_get, _pc_put = _get_sio, _put_sio
    else:
        _pc_get, _pc_put = _get_irq, _put_irq
    _native_bind()  # the native pair of the mode where the runtime has one
    pool_cache_get = _dbg_get if _debug[0] else _pc_get
    pool_cache_put = _dbg_put if _debug[0] else _pc_put


def _dbg_get(pc, flags):
    o = _pc_get(pc, flags)
    if o is not None and pc[_META].pget is _pool.pool_get:
        if _dbg_pool(pc, o) < 0:
            _dbg_fail(pc, o, _DBG_GET_FOREIGN)
        if _dbg_cached(pc, o):
            _dbg_fail(pc, o, _DBG_GET_CACHED)
    return o


def _dbg_put(pc, o):
    if o is not None and pc[_META].pget is _pool.pool_get:
        if _dbg_pool(pc, o) < 0:
            _dbg_fail(pc, o, _DBG_PUT_FOREIGN)
        if _dbg_cached(pc, o):
            _dbg_fail(pc, o, _DBG_PUT_CACHED)
    _pc_put(pc, o)


def _dbg_pool(pc, o):
    # pool._item_index's code for o in the cache's pool (>= 0: handed out by it).
    pc = pc[_META].pp
    s = intr.mutex_enter(pc.lock)
    o = _pool._item_index(pc, o)
    intr.mutex_exit(pc.lock, s)
    return o


def _dbg_cached(pc, o):
    # True if o sits in a magazine: a CPU's loaded or previous one, or the depot's.
    d = pc[_META]
    for c in range(MAXCPU):
        s = _cpu_enter(c)
        f = _dbg_inmag(pc[c], o) or _dbg_inmag(d.prev[c], o)
        _cpu_exit(c, s)
        if f:
            return True
    _depot_enter(d)
    f = False
    for c in range(d.nfull):
        if _dbg_inmag(d.full[c], o):
            f = True
    _depot_exit(d)
    return f


def _dbg_inmag(mag, o):
    for i in range(1, mag[0] + 1):
        if mag[i] == o:
            return True
    return False


def _dbg_fail(pc, o, e):
    pool_cache_lasterr[0] = o
    pool_cache_lasterr[1] = pc
    try:
        n = pc[_META].name
        if e == _DBG_GET_FOREIGN:
            m = "pool_cache_get: cache '%s' handed out 0x%x, which its pool does not count as out" % (n, o)
        elif e == _DBG_GET_CACHED:
            m = "pool_cache_get: cache '%s' handed out 0x%x, which is still in a magazine (an earlier double put)" % (
                n, o)
        elif e == _DBG_PUT_FOREIGN:
            m = "pool_cache_put: %r is not an object of cache '%s' (foreign, inside an item, or already free)" % (
                o, n)
        else:
            m = "pool_cache_put: 0x%x already cached (double put) in cache '%s'" % (o, n)
    except MemoryError:
        raise E_DEBUG
    raise ValueError(m)


# -- native hit paths (pool_cache_native.py) ------------------------------
# The switch is mpalloc.native.switch[0] (1: use them where the runtime
# compiles viper code, the default; 0: bytecode, mpalloc.native.off()), read
# through the loaded module. _nat: the loaded module, None before the first
# try, False where it cannot load (CPython, no native emitter: webassembly,
# micro:bit). Loaded by __import__ so that the flat filesystem's dependency
# scan (micro:bit) does not copy it there.
_nat = None


def _native_load():
    # collections around the import: the module's objects (~2.3 KB) go low in
    # the heap and the compiler's temporaries leave no holes between them
    # (a 110 KB heap then still gives the 32 KB a program asks next)
    import sys

    n = sys.modules.get("mpalloc.native")
    if n is not None and not n.switch[0]:
        return None  # switched off before the first bind: not loaded (native.on() tries again)
    try:
        import gc

        gc.collect()
        m = __import__("mpalloc.pool_cache_native", None, None, ("bind",))
        gc.collect()
        return m
    except (ImportError, SyntaxError, NotImplementedError, ValueError, MemoryError):
        # no module, no emitter, an .mpy of another arch (ValueError), no room
        return False


def _native_bind():
    global _nat, _pc_get, _pc_put
    if _nat is None:
        _nat = _native_load()
    if not _nat or not _nat.switch[0]:
        return
    _nat.bind(globals())
    if _thr:
        _pc_get, _pc_put = _nat._get_thr, _nat._put_thr
    elif _dis is None:
        _pc_get, _pc_put = _nat._get_up, _nat._put_up
    elif _sio:
        _pc_get, _pc_put = _nat._get_sio, _nat._put_sio
    else:
        _pc_get, _pc_put = _nat._get_irq, _nat._put_irq


def native_path():
    """'native' if the hit pair bound now is pool_cache_native's, else 'bytecode'
    (the native functions have the bytecode ones' names: tests that name the
    mode's pair hold on both paths)."""
    # => any context.
    return "native" if _nat and _pc_get in (_nat._get_up, _nat._get_thr, _nat._get_irq, _nat._get_sio) else "bytecode"


_pc_get = _get_up  # the plain pair of the mode (_bind)
_pc_put = _put_up


def _repoint():
    # pool_debug switched pool_get / pool_put: caches over a pool follow.
    for pc in pool_cache_list:
        d = pc[_META]
        if d.pget is _pool._pool_get or d.pget is _pool._dbg_get:
            d.pget = _pool.pool_get
            d.pput = _pool.pool_put


_pool._debug_hooks.append(_repoint)


def pool_cache_get_paddr(pc, flags):
    """(object, physical address) or None; allocates the tuple: not for handlers."""
    # => thread context (allocates) (a tuple); pool_cache_get's flags. failure: None.
    _cchk("pool_cache_get_paddr", pc)
    o = pool_cache_get(pc, flags)
    if o is None:
        return None
    return (o, o)


def pool_cache_put_paddr(pc, o, pa):
    # => as pool_cache_put; pa is ignored (the physical address is the address).
    _cchk("pool_cache_put_paddr", pc)
    pool_cache_put(pc, o)


def pool_cache_destruct_object(pc, o):
    """Destruct o and give it straight back to the pool."""
    # => thread context (runs the destructor); o an object of the cache, out.
    _cchk("pool_cache_destruct_object", pc)
    d = pc[_META]
    if d.pget is _pool.pool_get and _pool._out(d.pp, o) < 0:  # before the destructor sees it
        d.nbad += 1
        raise ValueError("pool_cache_destruct_object: %r is not an object of cache '%s' that is out" % (o, d.name))
    if d.dtor is not None:
        d.dtor(d.arg, o)
    d.pput(d.pp, o)


def _cpu():
    # The CPU whose magazines the caller uses (a handler: its CPU's).
    if _thr:
        return _cpuget(_ident(), 0) & 0xFF
    return intr.curcpu()


def _cpu_enter(c):
    # Exclusive use of CPU c's magazines (c: the caller's own CPU, or any
    # CPU in MODE_THREAD): this CPU's interrupt mask and, in MODE_THREAD, c's
    # magazine lock (the mask first: soft interrupts stay pending meanwhile).
    s = intr.splhigh()
    if _thr:
        _cl[c].acquire()
    return s


def _cpu_exit(c, s):
    if _thr:
        _cl[c].release()
    intr.splx(s)


def pool_cache_invalidate(pc):
    """Destruct every cached object: per-CPU magazines and the depot's full ones."""
    # => thread context; no lock of the cache held.
    _cchk("pool_cache_invalidate", pc)
    if intr.cpu_intr_p():
        raise ValueError("pool_cache_invalidate: not from interrupt context")
    d = pc[_META]
    objs = []
    for c in range(MAXCPU):
        s = _cpu_enter(c)
        for mag in (pc[c], d.prev[c]):
            if not mag[_MAG_CAP]:
                continue
            _fold(d, c, mag)
            for i in range(1, mag[0] + 1):
                objs.append(mag[i])
            mag[0] = 0
            mag[_MAG_N0] = 0
            _depot_enter(d)
            d.empty[d.nempty] = mag
            d.nempty += 1
            _depot_exit(d)
        pc[c] = _DUMMY
        d.prev[c] = _DUMMY
        _cpu_exit(c, s)
    _depot_enter(d)
    while d.nfull:
        i = d.nfull - 1
        mag = d.full[i]
        d.full[i] = None
        d.nfull = i
        for j in range(1, mag[0] + 1):
            objs.append(mag[j])
        mag[0] = 0
        mag[_MAG_N0] = 0
        d.empty[d.nempty] = mag
        d.nempty += 1
    _depot_exit(d)
    bad = []
    for o in objs:
        try:
            pool_cache_destruct_object(pc, o)
        except ValueError:  # a foreign object a put hit let in: the others still go down
            bad.append(o)
    if bad:
        raise ValueError("pool_cache_invalidate: cache '%s' held %d object(s) that are not its own (put without a check on a hit): %r"
                         % (d.name, len(bad), bad[:4]))


def pool_cache_destroy(pc):
    """Invalidate, then destroy the pool (objects still out are an error)."""
    # => thread context; no object out (else ValueError).
    _cchk("pool_cache_destroy", pc)
    pool_cache_invalidate(pc)
    d = pc[_META]
    d.pp.cache = None
    try:
        _pool.pool_destroy(d.pp)
    except ValueError:
        d.pp.cache = pc
        raise ValueError("pool_cache_destroy: cache '%s' busy: %d objects still out" % (d.name, d.pp.nout))
    if pc in pool_cache_list:
        pool_cache_list.remove(pc)


def pool_cache_setlowat(pc, n):
    # => as pool_setlowat.
    _cchk("pool_cache_setlowat", pc)
    _pool._count("pool_cache_setlowat", n)
    _pool.pool_setlowat(pc[_META].pp, n)


def pool_cache_sethiwat(pc, n):
    # => as pool_sethiwat.
    _cchk("pool_cache_sethiwat", pc)
    _pool._count("pool_cache_sethiwat", n)
    _pool.pool_sethiwat(pc[_META].pp, n)


def pool_cache_sethardlimit(pc, limit, warnmess, ratecap):
    # => as pool_sethardlimit.
    _cchk("pool_cache_sethardlimit", pc)
    _pool._limit_chk("pool_cache_sethardlimit", limit, warnmess, ratecap)
    _pool.pool_sethardlimit(pc[_META].pp, limit, warnmess, ratecap)


def pool_cache_prime(pc, n):
    """Pages for n objects, and empty magazines in the depot for every CPU, so
    that interrupt handlers (which cannot make a magazine) find caches ready."""
    # => thread context (allocates); n >= 0. Call before handlers use the cache.
    _cchk("pool_cache_prime", pc)
    _pool._count("pool_cache_prime", n)
    d = pc[_META]
    _pool.pool_prime(d.pp, n)
    _mag_reserve(d, 2 * intr.ncpu)


def pool_cache_reclaim(pc):
    # => as pool_reclaim.
    _cchk("pool_cache_reclaim", pc)
    return _pool.pool_reclaim(pc[_META].pp)


def pool_cache_set_drain_hook(pc, fn, arg):
    # => as pool_set_drain_hook.
    _cchk("pool_cache_set_drain_hook", pc)
    _pool._call_chk("pool_cache_set_drain_hook", fn)
    _pool.pool_set_drain_hook(pc[_META].pp, fn, arg)


def pool_cache_pool(pc):
    """The pool under the cache."""
    # => any context.
    _cchk("pool_cache_pool", pc)
    return pc[_META].pp


def pool_cache_nget(pc):
    # => any context.
    _cchk("pool_cache_nget", pc)
    return _pool.pool_nget(pc[_META].pp)


def pool_cache_nput(pc):
    # => any context.
    _cchk("pool_cache_nput", pc)
    return _pool.pool_nput(pc[_META].pp)


def pool_cache_stats(pc):
    # => thread context (allocates).
    _cchk("pool_cache_stats", pc)
    d = pc[_META]
    cpus = []
    for c in range(intr.ncpu):
        a = pc[c]
        b = d.prev[c]
        gh = d.ghits[c] + a[_MAG_GETHITS] + b[_MAG_GETHITS]
        ph = d.phits[c] + a[_MAG_GETHITS] + a[0] - a[_MAG_N0] + b[_MAG_GETHITS] + b[0] - b[_MAG_N0]
        cpus.append({"hits": gh + ph, "misses": d.gmiss[c] + d.pmiss[c],
                     "nget": gh + d.gmiss[c] - d.gfail[c], "nput": ph + d.pmiss[c],
                     "nfail": d.gfail[c]})
    return {
        "name": d.name, "size": d.pp.size, "pool": d.pp.name, "ncpu": intr.ncpu, "cpus": cpus,
        "depot": {"full": d.nfull, "empty": d.nempty, "gets": d.dgets, "puts": d.dputs,
                  "contention": d.contention, "hits": d.dgets, "misses": sum(d.gmiss)},
        "magsize": d.magsize, "nconstructed": d.nconstructed, "suspicious": d.nbad,
    }


def pool_cache_cached(pc):
    """Number of objects sitting in magazines (CPUs and depot)."""
    # => any context; counts without locks: a snapshot while other CPUs run.
    _cchk("pool_cache_cached", pc)
    d = pc[_META]
    n = 0
    for c in range(MAXCPU):
        n += pc[c][0] + d.prev[c][0]
    for i in range(d.nfull):
        n += d.full[i][0]
    return n


_bind()
intr._on_setup.append(_bind)  # after _sync: the pair of the mode intr.setup() chose
