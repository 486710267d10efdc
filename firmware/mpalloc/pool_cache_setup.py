# pool_cache_setup: pool_cache's set-up, tuning, invalidation and statistics
# (pool_cache.py's slow side), imported on first use by pool_cache.py's
# functions of the same names and dropped after (lazy.unload).
#
# Same representation, invariants and locking as pool_cache.py (its header).
# Everything here runs in thread context (it allocates, or imports).
from mpalloc import intr
from mpalloc import pool as _pool
from mpalloc import pool_cache as PC
from mpalloc import pool_setup as _ps
from mpalloc.pool import PR_LARGECACHE

from mpalloc.compat import const

MAXCPU = const(8)
_META = const(8)
_MAG_N0 = const(-3)  # magazine fields, from the end (pool_cache.py's header)
_MAG_CAP = const(-2)
_MAG_GETHITS = const(-1)
MAGSIZE = const(15)
MAGSIZE_LARGE = const(63)


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
    d = PC._Meta()
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
    PC._room(d.magsize)  # its magazines' room table, made now rather than on an interrupt path
    d.prev = [PC._DUMMY] * MAXCPU
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
    pc = [PC._DUMMY] * MAXCPU
    pc.append(d)
    # One empty magazine in the depot from the start: a hard interrupt that comes
    # before the thread's first put can load it (it cannot make one, the heap is
    # locked). Without it every handler call took the back end both ways, a
    # pool_get and a pool_put (~190,000 cycles on an RP2040): longer than a 1 ms
    # machine.Timer period, which then ran back to back and never let the thread
    # in to make the magazine (emu:rp2040, tests/device/test_isr.py rp2_hard_timer).
    PC._mag_reserve(d, 1)
    pp.cache = pc
    PC.pool_cache_list.append(pc)
    return pc


def pool_cache_get_paddr(pc, flags):
    """(object, physical address) or None; allocates the tuple: not for handlers."""
    # => thread context (allocates) (a tuple); pool_cache_get's flags. failure: None.
    PC._cchk("pool_cache_get_paddr", pc)
    o = PC.pool_cache_get(pc, flags)
    if o is None:
        return None
    return (o, o)


def pool_cache_put_paddr(pc, o, pa):
    # => as pool_cache_put; pa is ignored (the physical address is the address).
    PC._cchk("pool_cache_put_paddr", pc)
    PC.pool_cache_put(pc, o)


def pool_cache_destruct_object(pc, o):
    """Destruct o and give it straight back to the pool."""
    # => thread context (runs the destructor); o an object of the cache, out.
    PC._cchk("pool_cache_destruct_object", pc)
    d = pc[_META]
    if d.pp.__class__ is _pool._Pool and _pool._out(d.pp, o) < 0:  # before the destructor sees it
        d.nbad += 1
        raise ValueError("pool_cache_destruct_object: %r is not an object of cache '%s' that is out" % (o, d.name))
    if d.dtor is not None:
        d.dtor(d.arg, o)
    d.pput(d.pp, o)


def pool_cache_invalidate(pc):
    """Destruct every cached object: per-CPU magazines and the depot's full ones."""
    # => thread context; no lock of the cache held.
    PC._cchk("pool_cache_invalidate", pc)
    if intr.cpu_intr_p():
        raise ValueError("pool_cache_invalidate: not from interrupt context")
    d = pc[_META]
    objs = []
    for c in range(MAXCPU):
        s = PC._cpu_enter(c)
        for mag in (pc[c], d.prev[c]):
            if not mag[_MAG_CAP]:
                continue
            PC._fold(d, c, mag)
            for i in range(1, mag[0] + 1):
                objs.append(mag[i])
            mag[0] = 0
            mag[_MAG_N0] = 0
            PC._depot_enter(d)
            d.empty[d.nempty] = mag
            d.nempty += 1
            PC._depot_exit(d)
        pc[c] = PC._DUMMY
        d.prev[c] = PC._DUMMY
        PC._cpu_exit(c, s)
    PC._depot_enter(d)
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
    PC._depot_exit(d)
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
    PC._cchk("pool_cache_destroy", pc)
    pool_cache_invalidate(pc)
    d = pc[_META]
    d.pp.cache = None
    try:
        _pool.pool_destroy(d.pp)
    except ValueError:
        d.pp.cache = pc
        raise ValueError("pool_cache_destroy: cache '%s' busy: %d objects still out" % (d.name, d.pp.nout))
    if pc in PC.pool_cache_list:
        PC.pool_cache_list.remove(pc)


def pool_cache_setlowat(pc, n):
    # => as pool_setlowat.
    PC._cchk("pool_cache_setlowat", pc)
    _pool._count("pool_cache_setlowat", n)
    _ps.pool_setlowat(pc[_META].pp, n)


def pool_cache_sethiwat(pc, n):
    # => as pool_sethiwat.
    PC._cchk("pool_cache_sethiwat", pc)
    _pool._count("pool_cache_sethiwat", n)
    _ps.pool_sethiwat(pc[_META].pp, n)


def pool_cache_sethardlimit(pc, limit, warnmess, ratecap):
    # => as pool_sethardlimit.
    PC._cchk("pool_cache_sethardlimit", pc)
    _ps._limit_chk("pool_cache_sethardlimit", limit, warnmess, ratecap)
    _ps.pool_sethardlimit(pc[_META].pp, limit, warnmess, ratecap)


def pool_cache_prime(pc, n):
    """Pages for n objects, and empty magazines in the depot for every CPU, so
    that interrupt handlers (which cannot make a magazine) find caches ready."""
    # => thread context (allocates); n >= 0. Call before handlers use the cache.
    PC._cchk("pool_cache_prime", pc)
    _pool._count("pool_cache_prime", n)
    d = pc[_META]
    _pool.pool_prime(d.pp, n)
    PC._mag_reserve(d, 2 * intr.ncpu)


def pool_cache_reclaim(pc):
    # => as pool_reclaim.
    PC._cchk("pool_cache_reclaim", pc)
    return _ps.pool_reclaim(pc[_META].pp)


def pool_cache_set_drain_hook(pc, fn, arg):
    # => as pool_set_drain_hook.
    PC._cchk("pool_cache_set_drain_hook", pc)
    _ps._call_chk("pool_cache_set_drain_hook", fn)
    _ps.pool_set_drain_hook(pc[_META].pp, fn, arg)


def pool_cache_stats(pc):
    # => thread context (allocates).
    PC._cchk("pool_cache_stats", pc)
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


