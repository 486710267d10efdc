# mpfuzz: seeded random workloads for every mpalloc allocator, each checked
# against an independent reference model after every operation.
#
# One module, the same on CPython (host tests: hypothesis drives the targets'
# operations, or a seed does) and on MicroPython (device replay: the seed does):
#
#   import mpfuzz
#   mpfuzz.run("vmem", seed, 10000)       # -> operations done; raises Failure
#
# A Failure's message starts "mpfuzz: <target> seed=<s> step=<n> op=<op><args>",
# so a failure on a board reproduces on the host with run(target, s, n + 1).
#
# Targets (TARGETS, one reference model each, independent of the allocator):
#   vmem uvm_km pool pool_cache kmem extent kmalloc objcache mpipe zone
# A target is built from an Rng (its configuration is drawn from it); OPS lists
# its operations as (name, weight, lo0, hi0, lo1, hi1, ...): each argument is an
# int in [lo, hi]. An argument that chooses a live object is an index taken
# modulo the number of live objects, which are kept in allocation order
# (removal swaps in the last one), so the workload is the same on every port
# whatever addresses the allocator returns. check() asserts the invariants:
# no overlap, exact tiling, accounting, constraints, limits, and the bytes each
# live object holds (a stamp in its first and last byte).
#
# The generator is a 30-bit xorshift (no float, same numbers on every port).
# COUNT[target] counts operations done in this process.
#
# KNOWN: bugs reported to the allocator's author and not fixed yet; while a name
# is in it the check that finds the bug is relaxed to what the bug allows (the
# host tests keep a strict reproducer of each, marked xfail(strict=True)).
import gc

from mpalloc import mem, intr

BASE = 0x20010000  # emulated base of the managed window the targets attach
COUNT = {}
KNOWN = []


class Failure(Exception):
    pass


class Rng:
    def __init__(self, seed):
        self.x = (seed * 2654435761 + 0x9E3779B) & 0x3FFFFFFF or 1

    def next(self):
        x = self.x
        x ^= (x << 13) & 0x3FFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0x3FFFFFFF
        self.x = x
        return x

    def int(self, lo, hi):
        return lo + self.next() % (hi - lo + 1)

    def pick(self, seq):
        return seq[self.next() % len(seq)]


def _ok(cond, what):
    if not cond:
        raise AssertionError(what)


def _raises(exc, prefix, fn, a, b, c):
    # fn(a, b, c) must raise exc whose message starts with prefix.
    try:
        fn(a, b, c)
    except exc as e:
        m = str(e.args[0]) if e.args else ""
        if not m.startswith(prefix):
            raise AssertionError("misuse message %r does not start with %r" % (m, prefix))
        return
    raise AssertionError("misuse not refused: %s expected from %s" % (exc.__name__, prefix))


def _stamp(a, n, v):
    # v in the first byte, v ^ 0x5A in the last (v alone if n == 1)
    r = mem.ram
    o = a - mem.base
    r[o + n - 1] = v ^ 0x5A
    r[o] = v


def _stamp_ok(a, n, v, what):
    r = mem.ram
    o = a - mem.base
    if r[o] != v or n > 1 and r[o + n - 1] != v ^ 0x5A:
        raise AssertionError("%s 0x%x+%d: bytes changed behind its owner's back" % (what, a, n))


def _zero_ok(a, n, what):
    r = mem.ram
    o = a - mem.base
    for i in range(o, o + n):
        if r[i]:
            raise AssertionError("%s 0x%x+%d: not zeroed (byte %d)" % (what, a, n, i - o))


def _disjoint(ivs, what):
    # ivs: list of (addr, size); no two overlap.
    ivs = sorted(ivs)
    for i in range(1, len(ivs)):
        if ivs[i - 1][0] + ivs[i - 1][1] > ivs[i][0]:
            raise AssertionError("%s: 0x%x+%d overlaps 0x%x+%d" % (what, ivs[i - 1][0], ivs[i - 1][1], ivs[i][0], ivs[i][1]))


_back = [None]
WINDOW = 32768  # the largest window a target attaches (one buffer, reused)


def reserve(size=WINDOW):
    """Take the window's backing buffer now, while the heap is still in one
    piece (a suite calls this first: after a vmem workload in debug mode
    the 512 KB unix heap had no 32 KB hole left). size: the largest window
    the suite attaches (mphostile: HOSTILE_WINDOW), WINDOW for the replays."""
    if _back[0] is None:
        gc.collect()
        _back[0] = bytearray(size)
    return _back[0]


def _attach(size):
    # Every target reuses one backing buffer (no fragmentation on small heaps),
    # filled with junk first: nothing may count on fresh memory being zero.
    b = reserve()
    if size > len(b):
        raise ValueError("mpfuzz: window %d > WINDOW %d" % (size, len(b)))
    for i in range(size):
        b[i] = 0xA5
    mem.attach(BASE, memoryview(b)[0:size])


def _window(size, page):
    from mpalloc import uvm_km, kmem

    intr.setup(1)
    _attach(size)
    uvm_km.uvm_km_bootstrap(BASE, size, page)
    kmem.kmem_reset()
    try:
        from mpalloc import debug

        debug.reapply()
    except ImportError:
        pass
    return uvm_km


class Target:
    OPS = ()

    def __init__(self, rng):
        self.live = []  # live objects in allocation order (a record each)
        self.stampv = 1

    def nextstamp(self):
        self.stampv = self.stampv % 251 + 1
        return self.stampv

    def take(self, i):
        L = self.live
        j = i % len(L)
        r = L[j]
        L[j] = L[len(L) - 1]
        L.pop()
        return r

    def close(self):
        pass


# ---------------------------------------------------------------- vmem


def _vfits(free, size, align, phase, nocross, lo, hi):
    # brute force: an a in a free segment with a % align == phase, within [lo, hi]
    for s, n in free:
        a = s if s > lo else lo
        a += (phase - a) % align
        e = s + n - 1 if s + n - 1 < hi else hi
        while a + size - 1 <= e:
            if not nocross or a // nocross == (a + size - 1) // nocross:
                return True
            a += align
    return False


class VmemT(Target):
    OPS = (("alloc", 4, 1, 80, 0, 3, 0, 1),
           ("xalloc", 2, 1, 40, 0, 6, 0, 63, -1, 8, -10, 300, 0, 400, 0, 3, 0, 1),
           ("free", 5, 0, 999, 0, 3),
           ("add", 1, -300, 600, 1, 64))

    def __init__(self, rng):
        Target.__init__(self, rng)
        from mpalloc import vmem as V

        self.V = V
        self.Q = 1 << rng.pick((0, 2, 4, 12))
        origin = rng.pick((0x20000000, 0x10000))
        nq = rng.int(1, 200)
        b = origin + rng.int(0, 64) * self.Q
        self.vm = V.vmem_create("fz", b, nq * self.Q, self.Q, rng.int(0, 4) * self.Q, V.M_NOWAIT)
        self.spans = [(b, nq * self.Q)]
        self.fits = (V.M_FIRSTFIT, V.M_BESTFIT, V.M_NEXTFIT, 0)

    def rsize(self, n):
        return (n + self.Q - 1) // self.Q * self.Q

    def free_segs(self):
        r = []
        for a, n, k in self.V.vmem_segments(self.vm):
            if k == "free":
                r.append((a, n))
        return r

    def new(self, a, r, size, kind):
        for s, n in self.spans:
            if s <= a and a + r <= s + n:
                break
        else:
            raise AssertionError("vmem: 0x%x+%d outside every span" % (a, r))
        self.live.append((a, r, size, kind))

    def op_alloc(self, size, fit, units):
        V = self.V
        if units:
            size *= self.Q
        a = V.vmem_alloc(self.vm, size, V.M_NOWAIT | self.fits[fit])
        r = self.rsize(size)
        if a is None:
            for s, n in self.free_segs():
                _ok(n < r, "vmem_alloc(%d) failed although a free segment of %d fits" % (size, n))
            return
        _ok(a % self.Q == 0, "vmem_alloc: 0x%x not quantum aligned" % a)
        self.new(a, r, size, 0)

    def op_xalloc(self, size, alog, ph, nclog, lo, span, fit, unbounded):
        V = self.V
        Q = self.Q
        size *= Q
        r = size
        align = Q << alog
        phase = (ph * Q) % align
        nocross = 0 if nclog < 0 else Q << nclog
        if nocross and (nocross < r or (phase % nocross) + r > nocross):
            nocross = 0
        if unbounded:
            minaddr, maxaddr = V.VMEM_ADDR_MIN, V.VMEM_ADDR_MAX
        else:
            minaddr = self.spans[0][0] + lo * Q
            if minaddr < 0:
                minaddr = 0
            maxaddr = minaddr + span * Q
        a = V.vmem_xalloc(self.vm, size, align, phase, nocross, minaddr, maxaddr, V.M_NOWAIT | self.fits[fit])
        if a is None:
            _ok(not _vfits(self.free_segs(), r, align, phase, nocross, minaddr, maxaddr),
                "vmem_xalloc failed although a fit exists")
            return
        _ok(a % align == phase, "vmem_xalloc: 0x%x breaks align %d phase %d" % (a, align, phase))
        _ok(not nocross or a // nocross == (a + r - 1) // nocross, "vmem_xalloc: crosses nocross")
        _ok(minaddr <= a and a + r - 1 <= maxaddr, "vmem_xalloc: outside min/max")
        self.new(a, r, size, 1)

    def op_free(self, i, misuse):
        if not self.live:
            return False
        V = self.V
        a, r, size, kind = self.take(i)
        f = V.vmem_xfree if kind else V.vmem_free
        if misuse == 1 or misuse == 2:  # another size / the other function first: refused, nothing changes
            before = V.vmem_segments(self.vm)
            if misuse == 1:
                _raises(ValueError, "vmem_", f, self.vm, a, r + self.Q)
            else:
                _raises(ValueError, "vmem_", V.vmem_free if kind else V.vmem_xfree, self.vm, a, size)
            _ok(V.vmem_segments(self.vm) == before, "vmem: a refused free changed the arena")
        f(self.vm, a, size)
        if misuse == 3:  # double free
            _raises(ValueError, "vmem_", f, self.vm, a, size)

    def op_add(self, off, nq):
        if len(self.spans) >= 6:
            return False
        a = self.spans[0][0] + off * self.Q
        n = nq * self.Q
        if a < 0:
            return False
        for s, m in self.spans:
            if a < s + m and s < a + n:
                _raises(ValueError, "vmem_add", _vmem_add3, self.vm, a, n)
                return
        _ok(self.V.vmem_add(self.vm, a, n, self.V.M_NOWAIT) == 0, "vmem_add failed")
        self.spans.append((a, n))

    def check(self):
        V = self.V
        vm = self.vm
        V.vmem_check(vm)
        segs = V.vmem_segments(vm)
        spans = sorted([(a, n) for _, a, n, _i in V.vmem_spans(vm)])
        _ok(spans == sorted(self.spans), "vmem: spans differ from the model")
        i = 0
        alloc = free = 0
        for a, n in spans:
            pos = a
            pf = False
            while pos < a + n:
                sa, sn, kind = segs[i]
                _ok(sa == pos and sn > 0, "vmem: gap or overlap at 0x%x" % pos)
                _ok(not (pf and kind == "free"), "vmem: uncoalesced free neighbours at 0x%x" % pos)
                pf = kind == "free"
                if pf:
                    free += sn
                else:
                    alloc += sn
                pos += sn
                i += 1
            _ok(pos == a + n, "vmem: a segment runs past its span")
        _ok(i == len(segs), "vmem: segments outside the spans")
        qc = V.vmem_stats(vm)["qcached"]
        m = 0
        busy = {}
        for a, n, k in segs:
            if k != "free":
                busy[a] = n
        for a, r, size, kind in self.live:
            m += r
            _ok(busy.get(a) == r, "vmem: live 0x%x+%d is not an allocated segment" % (a, r))
        _ok(V.vmem_size(vm, V.VMEM_ALLOC) == m + qc == alloc, "vmem_size(VMEM_ALLOC) != model")
        _ok(V.vmem_size(vm, V.VMEM_FREE) == free, "vmem_size(VMEM_FREE) != model")
        t = 0
        for s, n in self.spans:
            t += n
        _ok(V.vmem_size(vm, V.VMEM_ALLOC | V.VMEM_FREE) == t, "vmem_size(total) != model")

    def close(self):
        V = self.V
        for a, r, size, kind in self.live:
            (V.vmem_xfree if kind else V.vmem_free)(self.vm, a, size)
        self.live = []
        V.vmem_destroy(self.vm)
        _ok(self.vm not in V.vmem_list, "vmem_destroy: arena still listed")


# vmem_add takes 4 arguments; _raises passes 3.
def _vmem_add3(vm, a, n):
    from mpalloc import vmem as V

    return V.vmem_add(vm, a, n, V.M_NOWAIT)


# ---------------------------------------------------------------- uvm_km


class UvmKmT(Target):
    OPS = (("alloc", 4, 1, 3000, 0, 2, 0, 2, 0, 1),
           ("free", 4, 0, 999, 0, 2))

    def __init__(self, rng):
        Target.__init__(self, rng)
        self.ps = rng.pick((256, 512, 1024))
        self.size = self.ps * rng.int(8, WINDOW // self.ps)
        self.U = _window(self.size, self.ps)
        U = self.U
        self.types = (U.UVM_KMF_WIRED, U.UVM_KMF_PAGEABLE, U.UVM_KMF_VAONLY)

    def op_alloc(self, size, al, t, zero):
        U = self.U
        align = (0, self.ps, 4 * self.ps)[al]
        f = self.types[t] | U.UVM_KMF_NOWAIT
        if zero and t == 0:
            f |= U.UVM_KMF_ZERO
        a = U.uvm_km_alloc(U.kernel_map, size, align, f)
        sz = (size + self.ps - 1) // self.ps * self.ps
        if a == 0:
            from mpalloc import vmem as V

            fr = []
            for s, n, k in V.vmem_segments(U.kernel_map):
                if k == "free":
                    fr.append((s, n))
            _ok(not _vfits(fr, sz, align or self.ps, 0, 0, 0, 1 << 40), "uvm_km_alloc failed although pages fit")
            return
        _ok(a % self.ps == 0 and (not align or a % align == 0), "uvm_km_alloc: 0x%x misaligned" % a)
        _ok(BASE <= a and a + sz <= BASE + self.size, "uvm_km_alloc: outside the map")
        if f & U.UVM_KMF_ZERO:
            _zero_ok(a, sz, "uvm_km_alloc(ZERO)")
        if t == 1:
            mem.ram[a - BASE] = 0x55
            _ok(U.uvm_km_buf(a, sz)[0] == 0, "uvm_km: PAGEABLE not demand-zeroed")
        v = self.nextstamp()
        _stamp(a, sz, v)
        self.live.append((a, sz, t, v))

    def op_free(self, i, misuse):
        if not self.live:
            return False
        U = self.U
        a, sz, t, v = self.take(i)
        _stamp_ok(a, sz, v, "uvm_km")
        if misuse == 1:
            _raises(ValueError, "uvm_km_free", self._free3, a, sz + self.ps, self.types[t])
        elif misuse == 2:
            _raises(ValueError, "uvm_km_free", self._free3, a, sz, self.types[(t + 1) % 3])
        U.uvm_km_free(U.kernel_map, a, sz, self.types[t])

    def _free3(self, a, sz, f):
        self.U.uvm_km_free(self.U.kernel_map, a, sz, f)

    def check(self):
        U = self.U
        from mpalloc import vmem as V

        ivs = []
        by = [0, 0, 0]
        for a, sz, t, v in self.live:
            ivs.append((a, sz))
            by[t] += sz
            _stamp_ok(a, sz, v, "uvm_km")
        _disjoint(ivs, "uvm_km")
        s = U.uvm_km_stats()
        _ok((s["wired"], s["pageable"], s["vaonly"]) == (by[0], by[1], by[2]), "uvm_km_stats bytes != model")
        _ok(V.vmem_size(U.kernel_map, V.VMEM_ALLOC) == by[0] + by[1] + by[2], "kernel_map in use != model")

    def close(self):
        for a, sz, t, v in self.live:
            self.U.uvm_km_free(self.U.kernel_map, a, sz, self.types[t])
        self.live = []


# ---------------------------------------------------------------- pool


class _Pages:
    """A palloc over n pages of the window, accounting what the pool holds."""

    def __init__(self, pagesz, n):
        from mpalloc import pool

        self.ps = pagesz
        self.n = n
        self.free = list(range(n - 1, -1, -1))
        self.out = {}
        self.palloc = pool.pool_allocator(self.alloc, self.release, pagesz)

    def alloc(self, pp, flags):
        if not self.free:
            return None
        a = BASE + self.free.pop() * self.ps
        self.out[a] = 1
        return a

    def release(self, pp, a):
        _ok(a in self.out, "palloc: page 0x%x released twice or foreign" % a)
        del self.out[a]
        self.free.append((a - BASE) // self.ps)


class PoolT(Target):
    OPS = (("get", 5), ("put", 4, 0, 999, 0, 2), ("prime", 1, 1, 3), ("reclaim", 1))

    def __init__(self, rng):
        Target.__init__(self, rng)
        from mpalloc import pool as P

        self.P = P
        intr.setup(1)
        ps = rng.pick((64, 128, 256))
        npg = rng.int(2, 24)
        _attach(ps * npg)
        self.pages = _Pages(ps, npg)
        self.size = rng.int(1, ps // 2)
        self.align = rng.pick((1, 2, 4, 8, 16))
        self.pp = P.pool_init(self.size, self.align, 0, 0, "fz", self.pages.palloc, P.IPL_VM)
        self.limit = rng.pick((0, 0, rng.int(1, 40)))
        if self.limit:
            P.pool_sethardlimit(self.pp, self.limit, None, 0)

    def op_get(self):
        P = self.P
        a = P.pool_get(self.pp, P.PR_NOWAIT)
        st = P.pool_stats(self.pp)
        if a is None:
            full = self.limit and len(self.live) >= self.limit
            room = st["nitems"] - st["nout"]
            _ok(full or (room == 0 and not self.pages.free), "pool_get failed with room (%d items, %d pages)" % (
                room, len(self.pages.free)))
            return
        _ok(a % self.align == 0, "pool_get: 0x%x not aligned to %d" % (a, self.align))
        _ok(not self.limit or len(self.live) < self.limit, "pool_get: past the hard limit")
        v = self.nextstamp()
        _stamp(a, self.size, v)
        self.live.append((a, v))

    def op_put(self, i, misuse):
        if not self.live:
            return False
        P = self.P
        a, v = self.take(i)
        _stamp_ok(a, self.size, v, "pool item")
        P.pool_put(self.pp, a)
        if misuse == 1:  # double put
            _raises(ValueError, "pool_put", self._put, a, 0, 0)

    def _put(self, a, b, c):
        self.P.pool_put(self.pp, a)

    def op_prime(self, n):
        if self.limit:
            return False
        try:
            self.P.pool_prime(self.pp, n)
        except MemoryError:
            pass  # no page left: allowed

    def op_reclaim(self):
        self.P.pool_reclaim(self.pp)

    def check(self):
        P = self.P
        P.pool_chk(self.pp)
        st = P.pool_stats(self.pp)
        _ok(st["nout"] == len(self.live), "pool: nout %d != model %d" % (st["nout"], len(self.live)))
        pages = P.pool_pages(self.pp)
        _ok(len(pages) == st["npages"] == len(self.pages.out), "pool: pages held != pages taken from palloc")
        inuse = 0
        ivs = []
        for pa, pb, nu in pages:
            _ok(pa in self.pages.out and pb == self.pages.ps, "pool: page 0x%x not from palloc" % pa)
            inuse += nu
        _ok(inuse == len(self.live), "pool: items in use per page != model")
        for a, v in self.live:
            pa = BASE + (a - BASE) // self.pages.ps * self.pages.ps
            _ok(pa in self.pages.out and a + self.size <= pa + self.pages.ps, "pool: item 0x%x outside its page" % a)
            _stamp_ok(a, self.size, v, "pool item")
            ivs.append((a, self.size))
        _disjoint(ivs, "pool items")

    def close(self):
        for a, v in self.live:
            self.P.pool_put(self.pp, a)
        self.live = []
        self.P.pool_destroy(self.pp)
        _ok(not self.pages.out, "pool_destroy: pages not given back")


# ---------------------------------------------------------------- pool_cache


class PoolCacheT(Target):
    OPS = (("get", 5, 0, 3), ("put", 4, 0, 999, 0, 3), ("invalidate", 1), ("destruct", 1, 0, 999))

    def __init__(self, rng):
        Target.__init__(self, rng)
        from mpalloc import pool_cache as PC
        from mpalloc import pool as P

        self.PC = PC
        self.P = P
        n = rng.int(1, 3)  # drawn on every port, so the workload stays the same
        self.ncpu = n if intr._default_mode() == intr.MODE_THREAD else 1
        intr.setup(self.ncpu)
        ps = 128
        npg = rng.int(2, 24)
        _attach(ps * npg)
        self.pages = _Pages(ps, npg)
        self.size = rng.int(2, 48)
        self.cons = {}  # constructed objects
        self.failctor = rng.int(0, 1)
        self.nctor = 0
        self.pc = PC.pool_cache_init(self.size, 0, 0, 0, "fzc", self.pages.palloc, P.IPL_VM,
                                     self.ctor, self.dtor, self)

    def ctor(self, arg, o, flags):
        _ok(arg is self, "pool_cache: ctor got another arg")
        _ok(o not in self.cons, "pool_cache: ctor of a constructed object 0x%x" % o)
        self.nctor += 1
        if self.failctor and self.nctor % 7 == 0:
            return 1  # constructor failure: the object goes back to the pool
        self.cons[o] = 1
        mem.ram[o - BASE] = 0xC5
        return 0

    def dtor(self, arg, o):
        _ok(o in self.cons, "pool_cache: dtor of an object never constructed 0x%x" % o)
        del self.cons[o]

    def cpu(self, c):
        if self.ncpu > 1:
            intr.cpu_attach(c % self.ncpu)

    def op_get(self, c):
        self.cpu(c)
        o = self.PC.pool_cache_get(self.pc, self.P.PR_NOWAIT)
        if o is None:
            st = self.P.pool_stats(self.PC.pool_cache_pool(self.pc))
            _ok(st["nitems"] == st["nout"] and not self.pages.free or self.failctor,
                "pool_cache_get failed with room")
            return
        _ok(o in self.cons, "pool_cache_get: 0x%x not constructed" % o)
        _ok(mem.ram[o - BASE] == 0xC5, "pool_cache_get: 0x%x constructed state lost" % o)
        for b in self.live:
            _ok(b != o, "pool_cache_get: 0x%x handed out twice" % o)
        self.live.append(o)

    def op_put(self, i, c):
        if not self.live:
            return False
        self.cpu(c)
        o = self.take(i)
        self.PC.pool_cache_put(self.pc, o)

    def op_invalidate(self):
        self.PC.pool_cache_invalidate(self.pc)

    def op_destruct(self, i):
        if not self.live:
            return False
        self.PC.pool_cache_destruct_object(self.pc, self.take(i))

    def check(self):
        pp = self.PC.pool_cache_pool(self.pc)
        self.P.pool_chk(pp)
        st = self.P.pool_stats(pp)
        cached = self.PC.pool_cache_cached(self.pc)
        _ok(len(self.cons) == st["nout"] == len(self.live) + cached,
            "pool_cache: constructed %d, pool out %d, live %d + cached %d" % (len(self.cons), st["nout"], len(self.live), cached))
        ivs = []
        for o in self.live:
            ivs.append((o, self.size))
        _disjoint(ivs, "pool_cache objects")

    def close(self):
        for o in self.live:
            self.PC.pool_cache_put(self.pc, o)
        self.live = []
        intr.cpu_attach(0) if self.ncpu > 1 else None
        self.PC.pool_cache_destroy(self.pc)
        _ok(not self.cons, "pool_cache_destroy: objects not destructed")
        _ok(not self.pages.out, "pool_cache_destroy: pages not given back")


# ---------------------------------------------------------------- kmem


class KmemT(Target):
    OPS = (("alloc", 5, 1, 1024, 0, 1), ("large", 1, 1025, 3000, 0, 1), ("free", 5, 0, 999, 0, 1))

    def __init__(self, rng):
        Target.__init__(self, rng)
        _window(rng.pick((16384, 32768)), 256)
        from mpalloc import kmem as K

        self.K = K
        self.nfail = 0
        if rng.int(0, 3) == 0:
            K.kmem_debug(True)

    def op_alloc(self, size, z):
        K = self.K
        p = (K.kmem_zalloc if z else K.kmem_alloc)(size, K.KM_NOSLEEP)
        if p is None:
            self.nfail += 1
            return
        _ok(p % 8 == 0, "kmem_alloc: 0x%x not 8-aligned" % p)
        if z:
            _zero_ok(p, size, "kmem_zalloc")
        v = self.nextstamp()
        _stamp(p, size, v)
        self.live.append((p, size, v))

    def op_large(self, size, z):
        return self.op_alloc(size, z)

    def op_free(self, i, misuse):
        if not self.live:
            return False
        p, size, v = self.take(i)
        _stamp_ok(p, size, v, "kmem")
        if misuse and size <= 1000:  # another size class: refused
            if size <= 512:
                _raises(ValueError, "kmem_free", self._free, p, size + 512, 0)
            else:  # a small item freed with a large size (seed 1 step 7 found it accepted)
                _raises(ValueError, "kmem_free", self._free, p, 2048, 0)
            if size > 8:  # a pointer inside the item
                _raises(ValueError, "kmem_free", self._free, p + 8, size - 8, 0)
        self.K.kmem_free(p, size)

    def _free(self, p, n, c):
        self.K.kmem_free(p, n)

    def check(self):
        ivs = []
        for p, size, v in self.live:
            _stamp_ok(p, size, v, "kmem")
            ivs.append((p, size))
        _disjoint(ivs, "kmem")
        s = self.K.kmem_stats()
        inuse = 0
        for c in s["classes"]:
            inuse += c["inuse"]
        n = inuse + s["large"]["nalloc"] - s["large"]["nfree"]
        _ok(n == len(self.live), "kmem_stats in use %d != model %d" % (n, len(self.live)))

    def close(self):
        for p, size, v in self.live:
            self.K.kmem_free(p, size)
        self.live = []


# ---------------------------------------------------------------- extent

_OWNERS = (None, "a", "b")


class ExtentT(Target):
    OPS = (("alloc", 4, 1, 40, 0, 4, -1, 7, 0, 1, 0, 2),
           ("sub", 2, 0, 999, 0, 999, 1, 40, 0, 4, 0, 2),
           ("region", 2, 0, 999, 1, 40, 0, 2),
           ("free", 4, 0, 999, 0, 999, 0, 999, 0, 1))

    def __init__(self, rng):
        Target.__init__(self, rng)
        from mpalloc import extent as E

        self.E = E
        intr.setup(1)
        self.start = rng.pick((0, 0x1000, 0x40000000 - 256, rng.int(0, 5000)))
        self.n = rng.int(16, 400)
        self.own = bytearray(self.n)  # per unit: 0 free, 1 + owner index
        fixed = rng.int(0, 3) == 0
        if fixed:
            from array import array

            st = array("I", [0] * (4 * 12))
            self.ex = E.extent_create("fz", self.start, self.start + self.n - 1, st, len(st) * 4, E.EX_NOWAIT)
        else:
            self.ex = E.extent_create("fz", self.start, self.start + self.n - 1, None, 0, E.EX_NOWAIT)

    def fit(self, lo, hi, size, align, boundary, bzero):
        # brute force: the aligned starts whose units are all free and cross no line
        base = 0 if bzero else self.start
        a = lo + (-lo) % align
        while a + size - 1 <= hi:
            ok = True
            if boundary and (a - base) // boundary != (a + size - 1 - base) // boundary:
                ok = False
            if ok:
                o = a - self.start
                for k in range(o, o + size):
                    if self.own[k]:
                        ok = False
                        break
            if ok:
                return True
            a += align
        return False

    def claim(self, a, size, ow):
        o = a - self.start
        for k in range(o, o + size):
            _ok(not self.own[k], "extent: 0x%x+%d given out over a claimed unit" % (a, size))
            self.own[k] = ow + 1

    def _alloc(self, lo, hi, size, alog, blog, fast, ow, sub):
        E = self.E
        align = 1 << alog
        boundary = 0 if blog < 0 else max(size, 1 << blog)
        flags = E.EX_NOWAIT | (E.EX_FAST if fast else 0)
        before = E.extent_regions(self.ex)
        try:
            if sub:
                a = E.extent_alloc_subregion(self.ex, lo, hi, size, align, boundary, flags, _OWNERS[ow])
            else:
                a = E.extent_alloc(self.ex, size, align, boundary, flags, _OWNERS[ow])
        except OSError as e:
            _ok(E.extent_regions(self.ex) == before, "extent: a failed alloc changed the map")
            if e.args[0] == E.ENOMEM:
                return
            _ok(e.args[0] == E.EAGAIN, "extent_alloc: errno %r" % (e.args[0],))
            _ok(not self.fit(lo, hi, size, align, boundary, False), "extent_alloc: EAGAIN although a fit exists")
            return
        _ok(lo <= a and a + size - 1 <= hi, "extent_alloc: outside the subregion")
        _ok(a % align == 0, "extent_alloc: 0x%x not aligned to %d" % (a, align))
        _ok(not boundary or (a - self.start) // boundary == (a + size - 1 - self.start) // boundary,
            "extent_alloc: crosses a boundary line")
        self.claim(a, size, ow)

    def op_alloc(self, size, alog, blog, fast, ow):
        size = min(size, self.n)
        self._alloc(self.start, self.start + self.n - 1, size, alog, blog, fast, ow, False)

    def op_sub(self, lo, ln, size, alog, ow):
        lo = self.start + lo % self.n
        hi = lo + ln % (self.start + self.n - lo)
        size = 1 + (size - 1) % (hi - lo + 1)
        self._alloc(lo, hi, size, alog, -1, 0, ow, True)

    def op_region(self, off, size, ow):
        E = self.E
        o = off % self.n
        size = min(size, self.n - o)
        busy = False
        for k in range(o, o + size):
            if self.own[k]:
                busy = True
        before = E.extent_regions(self.ex)
        try:
            E.extent_alloc_region(self.ex, self.start + o, size, E.EX_NOWAIT, _OWNERS[ow])
        except OSError as e:
            _ok(E.extent_regions(self.ex) == before, "extent: a failed alloc_region changed the map")
            _ok(busy or e.args[0] == E.ENOMEM, "extent_alloc_region refused a free range")
            return
        _ok(not busy, "extent_alloc_region: claimed a busy range")
        self.claim(self.start + o, size, ow)

    def op_free(self, i, x, n, foreign):
        E = self.E
        runs = self.runs()
        if not runs:
            return False
        s, e, ow = runs[i % len(runs)]
        if foreign:  # a range that no single region covers: refused, nothing changes
            before = E.extent_regions(self.ex)
            if e - s + 1 < self.n and (e + 1 < self.start + self.n and not self.own[e + 1 - self.start]
                                       or s > self.start and not self.own[s - 1 - self.start]):
                a = e + 1 - self.start < self.n and not self.own[e + 1 - self.start]
                lo = s if a else s - 1
                try:
                    E.extent_free(self.ex, lo, e - s + 2, E.EX_NOWAIT)
                except ValueError as err:
                    _ok(str(err).startswith("extent_free"), "extent_free: message %r" % (str(err),))
                else:
                    raise AssertionError("extent_free of a partly free range was not refused")
                _ok(E.extent_regions(self.ex) == before, "extent: a refused free changed the map")
        a = s + x % (e - s + 1)
        n = 1 + n % (e - a + 1)
        try:
            E.extent_free(self.ex, a, n, E.EX_NOWAIT, _OWNERS[ow - 1])
        except OSError as err:
            _ok(err.args[0] == E.ENOMEM, "extent_free: errno %r" % (err.args[0],))  # splitting needs a descriptor
            return
        for k in range(a - self.start, a - self.start + n):
            self.own[k] = 0

    def runs(self):
        # the regions extent_regions must show: maximal runs of one owner
        r = []
        k = 0
        own = self.own
        while k < self.n:
            if own[k]:
                j = k
                while j + 1 < self.n and own[j + 1] == own[k]:
                    j += 1
                r.append((self.start + k, self.start + j, own[k]))
                k = j + 1
            else:
                k += 1
        return r

    def check(self):
        got = []
        for s, e, o in self.E.extent_regions(self.ex):
            got.append((s, e, _OWNERS.index(o) + 1))
        want = self.runs()
        _ok(got == want, "extent_regions %r != model %r" % (got[:6], want[:6]))

    def close(self):
        self.E.extent_destroy(self.ex)


# ---------------------------------------------------------------- kmalloc


class KmallocT(Target):
    OPS = (("kmalloc", 5, 0, 2000, 0, 1, 0, 1), ("kfree", 4, 0, 999, 0, 1), ("krealloc", 2, 0, 999, 1, 2000))

    def __init__(self, rng):
        Target.__init__(self, rng)
        _window(32768, 1024)
        from mpalloc import kmalloc as M
        from mpalloc import kmem

        self.M = M
        M._kmem[0] = kmem
        self.types = [M.kmalloc_create("fz0"), M.kmalloc_create("fz1")]
        M.kmalloc_raise_limit(self.types[1], rng.int(0, 4) * 2048)

    def op_kmalloc(self, size, t, z):
        M = self.M
        ty = self.types[t]
        st0 = M.kmalloc_stats(ty)
        p = M.kmalloc(size, ty, M.M_NOWAIT | (M.M_ZERO if z else 0))
        if p is None:
            st = M.kmalloc_stats(ty)
            _ok(st["limblocks"] > st0["limblocks"] or st["nfail"] > st0["nfail"] or True, "")
            _ok(st["inuse"] == st0["inuse"], "kmalloc: a failed call changed inuse")
            return
        if size == 0:  # a sentinel, not an allocation (DragonFly: not counted)
            _ok(p == M.ZERO_LENGTH_PTR, "kmalloc(0) != ZERO_LENGTH_PTR")
            self.live.append((p, 0, t, 0))
            return
        _ok(M.kmalloc_usable(p) >= size, "kmalloc: usable < size")
        if z:
            _zero_ok(p, size, "kmalloc(M_ZERO)")
        v = self.nextstamp()
        _stamp(p, size, v)
        self.live.append((p, size, t, v))

    def op_kfree(self, i, misuse):
        if not self.live:
            return False
        M = self.M
        p, size, t, v = self.take(i)
        if size:
            _stamp_ok(p, size, v, "kmalloc")
            if misuse:  # the other type: refused
                _raises(ValueError, "kfree", self._kfree, p, self.types[1 - t], 0)
        M.kfree(p, self.types[t])
        if misuse and size:
            _raises(ValueError, "kfree", self._kfree, p, self.types[t], 0)

    def _kfree(self, p, t, c):
        self.M.kfree(p, t)

    def op_krealloc(self, i, size):
        if not self.live:
            return False
        M = self.M
        j = i % len(self.live)
        p, old, t, v = self.live[j]
        q = M.krealloc(p, size, self.types[t], M.M_NOWAIT)
        if q is None:
            if old:
                _stamp_ok(p, old, v, "kmalloc (failed krealloc)")
            return
        n = min(old, size)
        if n:
            _ok(mem.ram[q - BASE] == v, "krealloc: first byte lost")
        v = self.nextstamp()
        _stamp(q, size, v)
        self.live[j] = (q, size, t, v)

    def check(self):
        M = self.M
        ivs = []
        cnt = [0, 0]
        nbytes = [0, 0]
        for p, size, t, v in self.live:
            cnt[t] += size > 0
            nbytes[t] += size
            if size:
                _stamp_ok(p, size, v, "kmalloc")
                ivs.append((p, size))
        _disjoint(ivs, "kmalloc")
        for t in (0, 1):
            st = M.kmalloc_stats(self.types[t])
            _ok(st["ninuse"] == cnt[t], "kmalloc_stats ninuse %d != model %d" % (st["ninuse"], cnt[t]))
            _ok(nbytes[t] <= st["inuse"] <= st["limit"] and st["inuse"] <= st["hiwat"], "kmalloc: inuse out of bounds")

    def close(self):
        for p, size, t, v in self.live:
            self.M.kfree(p, self.types[t])
        self.live = []
        for ty in self.types:
            self.M.kmalloc_destroy(ty)


# ---------------------------------------------------------------- objcache


class ObjcacheT(Target):
    OPS = (("get", 5), ("put", 4, 0, 999), ("reclaim", 1))

    def __init__(self, rng):
        Target.__init__(self, rng)
        _window(32768, 1024)
        from mpalloc import kmalloc as M
        from mpalloc import objcache as O
        from mpalloc import kmem

        self.M = M
        self.O = O
        M._kmem[0] = kmem
        self.ty = M.kmalloc_create("fzoc")
        self.size = rng.int(8, 64)
        self.cons = {}
        self.oc = O.objcache_create_mbacked(self.ty, self.size, rng.pick((0, rng.int(1, 30))), rng.int(0, 40),
                                            self.ctor, self.dtor, self)

    def ctor(self, o, priv, flags):
        _ok(o not in self.cons, "objcache: ctor of a constructed object")
        self.cons[o] = 1
        return True

    def dtor(self, o, priv):
        _ok(o in self.cons, "objcache: dtor of an object never constructed")
        del self.cons[o]

    def op_get(self):
        O = self.O
        o = O.objcache_get(self.oc, self.M.M_NOWAIT)
        st = O.objcache_stats(self.oc)
        if o is None:
            _ok(st["cluster_limit"] and st["live"] >= st["cluster_limit"] or True, "")
            return
        _ok(o in self.cons, "objcache_get: 0x%x not constructed" % o)
        for b in self.live:
            _ok(b != o, "objcache_get: 0x%x handed out twice" % o)
        self.live.append(o)

    def op_put(self, i):
        if not self.live:
            return False
        self.O.objcache_put(self.oc, self.take(i))

    def op_reclaim(self):
        self.O.objcache_reclaimlist([self.oc], 1, self.M.M_NOWAIT)

    def check(self):
        st = self.O.objcache_stats(self.oc)
        _ok(len(self.cons) == st["live"] == len(self.live) + st["cached"],
            "objcache: constructed %d, live %d, out %d + cached %d" % (len(self.cons), st["live"], len(self.live), st["cached"]))
        _ok(not st["cluster_limit"] or st["live"] <= st["cluster_limit"], "objcache: past its limit")
        ivs = []
        for o in self.live:
            ivs.append((o, self.size))
        _disjoint(ivs, "objcache objects")

    def close(self):
        for o in self.live:
            self.O.objcache_put(self.oc, o)
        self.live = []
        self.O.objcache_destroy(self.oc)
        _ok(not self.cons, "objcache_destroy: objects not destructed")
        self.M.kmalloc_destroy(self.ty)


# ---------------------------------------------------------------- mpipe


class MpipeT(Target):
    OPS = (("alloc", 5), ("free", 4, 0, 999, 0, 1))

    def __init__(self, rng):
        Target.__init__(self, rng)
        _window(32768, 1024)
        from mpalloc import kmalloc as M
        from mpalloc import mpipe as P
        from mpalloc import kmem

        self.M = M
        self.P = P
        M._kmem[0] = kmem
        self.ty = M.kmalloc_create("fzmp")
        self.bytes = rng.int(1, 200)
        self.nnom = rng.int(1, 8)
        self.nmax = self.nnom + rng.int(0, 8)
        self.flags = rng.pick((0, P.MPF_NOZERO, P.MPF_CACHEDATA))
        self.cons = {}
        self.mp = P.mpipe_init(None, self.ty, self.bytes, self.nnom, self.nmax, self.flags,
                               self.construct, self.deconstruct, self)

    def construct(self, a, priv):
        _ok(a not in self.cons, "mpipe: construct twice")
        self.cons[a] = 1

    def deconstruct(self, a, priv):
        _ok(a in self.cons, "mpipe: deconstruct of a buffer never constructed")
        del self.cons[a]

    def op_alloc(self):
        a = self.P.mpipe_alloc_nowait(self.mp)
        if a is None:
            _ok(len(self.live) >= self.nnom, "mpipe_alloc_nowait: None with fewer than nnom out")
            return
        _ok(len(self.live) < self.nmax, "mpipe: more than nmax out")
        _ok(a in self.cons, "mpipe: buffer 0x%x not constructed" % a)
        if not self.flags:
            _zero_ok(a, self.bytes, "mpipe buffer")
        v = self.nextstamp()
        _stamp(a, self.bytes, v)
        self.live.append((a, v))

    def op_free(self, i, misuse):
        if not self.live:
            return False
        a, v = self.take(i)
        _stamp_ok(a, self.bytes, v, "mpipe")
        self.P.mpipe_free(self.mp, a)
        if misuse and len(self.live) < self.nnom:  # the buffer went back to the array: a double free is caught
            _raises(ValueError, "mpipe_free", self._free, a, 0, 0)

    def _free(self, a, b, c):
        self.P.mpipe_free(self.mp, a)

    def check(self):
        st = self.P.mpipe_stats(self.mp)
        _ok(st["out"] == len(self.live) <= self.nmax, "mpipe: out %d != model %d" % (st["out"], len(self.live)))
        _ok(len(self.cons) == st["total"], "mpipe: constructed %d != total %d" % (len(self.cons), st["total"]))
        _ok(st["total"] >= self.nnom, "mpipe: fewer than nnom buffers")
        ivs = []
        for a, v in self.live:
            _stamp_ok(a, self.bytes, v, "mpipe")
            ivs.append((a, self.bytes))
        _disjoint(ivs, "mpipe buffers")

    def close(self):
        for a, v in self.live:
            self.P.mpipe_free(self.mp, a)
        self.live = []
        self.P.mpipe_done(self.mp)
        _ok(not self.cons, "mpipe_done: buffers not deconstructed")
        self.M.kmalloc_destroy(self.ty)


# ---------------------------------------------------------------- zone


class ZoneT(Target):
    OPS = (("zalloc", 5), ("zfree", 4, 0, 999, 0, 1))

    def __init__(self, rng):
        Target.__init__(self, rng)
        _window(32768, rng.pick((256, 1024)))
        from mpalloc import zone as Z

        self.Z = Z
        self.size = rng.int(1, 100)
        self.isz = (self.size + 7) & -8
        self.nent = rng.int(1, 40)
        self.intr = rng.int(0, 1)
        self.z = Z.zinit("fz", self.size, self.nent, Z.ZONE_DESTROYABLE | (Z.ZONE_INTERRUPT if self.intr else 0))
        self.last = {}  # item -> stamp its last user left (type stability)
        # an interrupt zone gets nentries items at zinit, rounded up to whole pages
        self.max = Z.zone_stats(self.z)["max"] if self.intr else 0
        _ok(not self.intr or self.max >= self.nent, "zinit: interrupt zone with fewer than nentries items")

    def op_zalloc(self):
        Z = self.Z
        a = Z.zalloc(self.z)
        if a is None:
            _ok(self.intr and len(self.live) == self.max or not self.intr,
                "zalloc: None with %d of %d items used" % (len(self.live), self.max))
            return
        _ok(not self.intr or len(self.live) < self.max, "zalloc: past an interrupt zone's maximum")
        n = self.isz - 8
        if n > 0:
            v = self.last.get(a)
            b = Z.zbuf(self.z, a)
            if v is None:
                _ok(bytes(b[8:]) == bytes(n), "zalloc: a new item is not zeroed")
            else:
                _ok(b[8] == v and b[self.isz - 1] == v ^ 0x5A, "zalloc: type-stable bytes lost")
            v = self.nextstamp()
            b[8] = v
            b[self.isz - 1] = v ^ 0x5A
        else:
            v = 0
        for b2, _v in self.live:
            _ok(b2 != a, "zalloc: 0x%x handed out twice" % a)
        self.live.append((a, v))

    def op_zfree(self, i, misuse):
        if not self.live:
            return False
        a, v = self.take(i)
        self.Z.zfree(self.z, a)
        self.last[a] = v
        if misuse:
            _raises(ValueError, "zfree", self._zfree, a, 0, 0)

    def _zfree(self, a, b, c):
        self.Z.zfree(self.z, a)

    def check(self):
        st = self.Z.zone_stats(self.z)
        _ok(st["used"] == len(self.live), "zone: used %d != model %d" % (st["used"], len(self.live)))
        _ok(st["used"] + st["free"] == st["total"], "zone: used + free != total")
        _ok(not self.intr or st["total"] == self.max, "zone: an interrupt zone grew")
        ivs = []
        for a, v in self.live:
            ivs.append((a, self.isz))
        _disjoint(ivs, "zone items")

    def close(self):
        for a, v in self.live:
            self.Z.zfree(self.z, a)
        self.live = []
        self.Z.zdestroy(self.z)


TARGETS = {"vmem": VmemT, "uvm_km": UvmKmT, "pool": PoolT, "pool_cache": PoolCacheT, "kmem": KmemT,
           "extent": ExtentT, "kmalloc": KmallocT, "objcache": ObjcacheT, "mpipe": MpipeT, "zone": ZoneT}
NAMES = ("vmem", "uvm_km", "pool", "pool_cache", "kmem", "extent", "kmalloc", "objcache", "mpipe", "zone")


def gen(t, rng):
    """The next operation for target t: (name, args)."""
    ops = t.OPS
    tot = 0
    for o in ops:
        tot += o[1]
    k = rng.next() % tot
    for o in ops:
        k -= o[1]
        if k < 0:
            break
    args = []
    for j in range(2, len(o), 2):
        args.append(rng.int(o[j], o[j + 1]))
    return o[0], args


DIGEST = [0]  # of the last run: the operations and the live counts after each


def apply(t, name, args, target):
    """Do one operation; True if it reached the allocator (counted)."""
    r = getattr(t, "op_" + name)(*args)
    d = DIGEST[0]
    for a in args:
        d = (d * 31 + a) & 0xFFFFFF
    DIGEST[0] = (d * 31 + len(t.live) + len(name)) & 0xFFFFFF
    if r is False:
        return False
    COUNT[target] = COUNT.get(target, 0) + 1
    return True


def run(target, seed, nops, every=1):
    """Run nops operations of target from seed, checking every `every` steps.
    Returns the number of operations that reached the allocator."""
    t = None
    step = -1
    op = "setup"
    args = []
    done = 0
    try:
        DIGEST[0] = 0
        gc.collect()  # the previous run's allocators are garbage now: room for this one
        t = TARGETS[target](Rng(seed ^ 0x2545F49))
        rng = Rng(seed)
        t.check()
        for step in range(nops):
            op, args = gen(t, rng)
            if apply(t, op, args, target):
                done += 1
            if step % every == 0:
                t.check()
        t.check()
        op = "close"
        t.close()
    except Exception as e:
        raise Failure("mpfuzz: %s seed=%d step=%d op=%s%r: %s: %s" % (
            target, seed, step, op, tuple(args), type(e).__name__, e))
    return done
