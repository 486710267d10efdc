"""pool(9) and pool_cache(9): hypothesis state machines against a set model, and misuse."""
import os

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import pool_pages as S
from mpalloc import intr, mem, pool
from mpalloc import pool_cache as PC

LONG = os.environ.get("MPALLOC_FUZZ") == "long"
SETTINGS = settings(max_examples=300 if LONG else 25, stateful_step_count=200 if LONG else 40, deadline=None)


class PoolMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        intr.setup(1)
        mem.attach(S.BASE, bytearray(65536))
        self.src = S.PageSource(256, 16)
        self.pp = pool.pool_init(24, 8, 0, 0, "model24", self.src.palloc, pool.IPL_VM)
        self.out = set()
        self.limit = None

    @rule()
    def get(self):
        a = pool.pool_get(self.pp, pool.PR_NOWAIT)
        full = self.limit is not None and len(self.out) >= self.limit
        if a is None:
            assert full or not self.src.free
            return
        assert not full
        assert a not in self.out
        assert (a - S.BASE) % 8 == 0
        self.out.add(a)

    @precondition(lambda self: self.out)
    @rule(data=st.data())
    def put(self, data):
        a = data.draw(st.sampled_from(sorted(self.out)))
        pool.pool_put(self.pp, a)
        self.out.remove(a)

    @precondition(lambda self: self.out)
    @rule(data=st.data())
    def double_put(self, data):
        a = data.draw(st.sampled_from(sorted(self.out)))
        pool.pool_put(self.pp, a)
        self.out.remove(a)
        with pytest.raises(ValueError, match="pool_put: .*(double put|is not an item)"):
            pool.pool_put(self.pp, a)

    @rule(n=st.integers(0, 60))
    def hardlimit(self, n):
        pool.pool_sethardlimit(self.pp, n, None, 0)
        self.limit = n

    @rule()
    def reclaim(self):
        pool.pool_reclaim(self.pp)

    @rule(n=st.integers(0, 40))
    def prime(self, n):
        try:
            pool.pool_prime(self.pp, n)
        except MemoryError:
            assert not self.src.free

    @invariant()
    def consistent(self):
        pool.pool_chk(self.pp)
        s = pool.pool_stats(self.pp)
        assert s["nout"] == len(self.out) == s["nget"] - s["nput"]
        assert s["npages"] == len(self.src.out)
        if self.limit is not None and len(self.out) <= self.limit:
            assert s["nout"] <= self.limit

    def teardown(self):
        for a in list(self.out):
            pool.pool_put(self.pp, a)
        pool.pool_destroy(self.pp)
        assert not self.src.out


TestPoolModel = PoolMachine.TestCase
TestPoolModel.settings = SETTINGS


class CacheMachine(RuleBasedStateMachine):
    """pool_cache on 1 CPU: no object lost or duplicated, ctor once per object, depot <= 1/M."""

    def __init__(self):
        super().__init__()
        intr.setup(1)
        mem.attach(S.BASE, bytearray(65536))
        self.src = S.PageSource(256, 32)
        self.built = set()
        self.pc = PC.pool_cache_init(32, 8, 0, 0, "mc32", self.src.palloc, pool.IPL_VM,
                                     self.ctor, self.dtor, "arg")
        self.out = []
        self.ops = 0

    def ctor(self, arg, o, flags):
        assert arg == "arg" and o not in self.built
        self.built.add(o)
        return 0

    def dtor(self, arg, o):
        self.built.remove(o)

    @rule(k=st.integers(1, 40))
    def gets(self, k):
        for _ in range(k):
            o = PC.pool_cache_get(self.pc, pool.PR_NOWAIT)
            self.ops += 1
            if o is None:
                assert not self.src.free
                continue
            assert o in self.built and o not in self.out
            self.out.append(o)

    @rule(k=st.integers(1, 40), rev=st.booleans())
    def puts(self, k, rev):
        for _ in range(min(k, len(self.out))):
            PC.pool_cache_put(self.pc, self.out.pop() if rev else self.out.pop(0))
            self.ops += 1

    @rule()
    def thrash(self):
        for _ in range(50):
            a = PC.pool_cache_get(self.pc, pool.PR_NOWAIT)
            b = PC.pool_cache_get(self.pc, pool.PR_NOWAIT)
            if a is not None:
                PC.pool_cache_put(self.pc, a)
            if b is not None:
                PC.pool_cache_put(self.pc, b)
            self.ops += 4

    @rule()
    def invalidate(self):
        PC.pool_cache_invalidate(self.pc)
        assert PC.pool_cache_cached(self.pc) == 0
        assert self.built == set(self.out)

    @invariant()
    def consistent(self):
        pp = PC.pool_cache_pool(self.pc)
        pool.pool_chk(pp)
        assert pp.nout == len(self.out) + PC.pool_cache_cached(self.pc)
        assert len(self.built) == pp.nout
        s = PC.pool_cache_stats(self.pc)
        d = s["depot"]
        cpu = s["cpus"][0]
        assert cpu["nget"] + cpu["nput"] == self.ops or self.ops == 0 or cpu["nget"] + cpu["nput"] <= self.ops
        # Bonwick: depot exchanges <= 1 per M operations (+1 for the start-up)
        assert d["gets"] + d["puts"] <= self.ops // s["magsize"] + 2

    def teardown(self):
        for o in self.out:
            PC.pool_cache_put(self.pc, o)
        PC.pool_cache_destroy(self.pc)
        assert not self.built and not self.src.out


TestCacheModel = CacheMachine.TestCase
TestCacheModel.settings = SETTINGS


@pytest.fixture
def pp():
    intr.setup(1)
    mem.attach(S.BASE, bytearray(65536))
    src = S.PageSource(256, 8)
    p = pool.pool_init(24, 8, 0, 0, "misuse", src.palloc, pool.IPL_VM)
    yield p


def test_put_foreign(pp):
    with pytest.raises(ValueError, match="pool_put: 0x5 is not an item of pool 'misuse'"):
        pool.pool_put(pp, 5)


def test_put_inside_item(pp):
    a = pool.pool_get(pp, pool.PR_NOWAIT)
    with pytest.raises(ValueError, match="is not an item"):
        pool.pool_put(pp, a + 1)


def test_put_twice(pp):
    a = pool.pool_get(pp, pool.PR_NOWAIT)
    pool.pool_put(pp, a)
    with pytest.raises(ValueError, match="double put"):
        pool.pool_put(pp, a)


def test_put_never_handed_out(pp):
    a = pool.pool_get(pp, pool.PR_NOWAIT)
    with pytest.raises(ValueError, match="double put"):
        pool.pool_put(pp, a + pp.size)  # same page, never handed out


def test_get_flags(pp):
    with pytest.raises(ValueError, match="pool_get: flags"):
        pool.pool_get(pp, 0)
    with pytest.raises(ValueError, match="pool_get: flags"):
        pool.pool_get(pp, pool.PR_WAITOK | pool.PR_NOWAIT)


def test_hardlimit_nowait_and_waitok(pp, capsys):
    pool.pool_sethardlimit(pp, 3, "too many", 60)
    xs = [pool.pool_get(pp, pool.PR_NOWAIT) for _ in range(3)]
    assert None not in xs
    assert pool.pool_get(pp, pool.PR_NOWAIT) is None
    assert pool.pool_get(pp, pool.PR_NOWAIT) is None
    assert capsys.readouterr().out.count("too many") == 1  # rate-limited
    assert pool.pool_get(pp, pool.PR_WAITOK | pool.PR_LIMITFAIL) is None
    with pytest.raises(MemoryError, match="pool_get: pool 'misuse' stays at its hard limit 3"):
        pool.pool_get(pp, pool.PR_WAITOK)
    assert pool.pool_stats(pp)["nfail"] == 4


def test_exhausted_waitok_raises(pp):
    while pool.pool_get(pp, pool.PR_NOWAIT) is not None:
        pass
    with pytest.raises(MemoryError, match="no page"):
        pool.pool_get(pp, pool.PR_WAITOK)


def test_destroy_busy(pp):
    pool.pool_get(pp, pool.PR_NOWAIT)
    with pytest.raises(ValueError, match="pool_destroy: pool 'misuse' busy: 1 items"):
        pool.pool_destroy(pp)


def test_init_errors():
    src = S.PageSource(256, 4)
    with pytest.raises(ValueError, match="pool_init: item size 0"):
        pool.pool_init(0, 0, 0, 0, "x", src.palloc, 0)
    with pytest.raises(ValueError, match="pool_init: align 3"):
        pool.pool_init(8, 3, 0, 0, "x", src.palloc, 0)
    with pytest.raises(ValueError, match="does not fit"):
        pool.pool_init(300, 8, 0, 0, "x", src.palloc, 0)


def test_ipl_none_from_interrupt():
    intr.setup(1)
    mem.attach(S.BASE, bytearray(65536))
    src = S.PageSource(256, 4)
    p = pool.pool_init(16, 0, 0, 0, "ipl0", src.palloc, pool.IPL_NONE)
    with pytest.raises(ValueError, match="IPL_NONE"):
        intr.run_hard(lambda a: pool.pool_get(p, pool.PR_NOWAIT), None, 0)


def test_zero_and_align_offset():
    intr.setup(1)
    mem.attach(S.BASE, bytearray(65536))
    mem.ram[:] = b"\xaa" * 65536
    src = S.PageSource(256, 4)
    p = pool.pool_init(20, 16, 4, 0, "z", src.palloc, pool.IPL_VM)
    a = pool.pool_get(p, pool.PR_NOWAIT | pool.PR_ZERO)
    assert (a + 4) % 16 == 0
    assert bytes(mem.buf(a, 20)) == bytes(20)
    assert pool.pool_paddr(p, a) == a


def test_watermarks_and_reclaim():
    intr.setup(1)
    mem.attach(S.BASE, bytearray(65536))
    src = S.PageSource(256, 16)
    p = pool.pool_init(64, 8, 0, 0, "wm", src.palloc, pool.IPL_VM)  # 4 per page
    pool.pool_setlowat(p, 10)
    assert pool.pool_stats(p)["npages"] == 3
    pool.pool_prime(p, 20)
    assert pool.pool_stats(p)["npages"] == 5 and pool.pool_stats(p)["minpages"] == 5
    assert pool.pool_reclaim(p) == 0  # all kept: minpages
    pool.pool_sethiwat(p, 4)
    xs = [pool.pool_get(p, pool.PR_NOWAIT) for _ in range(24)]
    for x in xs:
        pool.pool_put(p, x)
    assert pool.pool_stats(p)["npages"] == 5  # back to minpages as pages emptied
    assert pool.pool_pages(p)[0][1] == 256


def test_pool_cache_ctor_failure_and_destruct():
    intr.setup(1)
    mem.attach(S.BASE, bytearray(65536))
    src = S.PageSource(256, 8)
    fail = [True]
    dt = []
    pc = PC.pool_cache_init(32, 8, 0, 0, "cf", src.palloc, pool.IPL_VM,
                            lambda arg, o, f: 1 if fail[0] else 0, lambda arg, o: dt.append(o), None)
    assert PC.pool_cache_get(pc, pool.PR_NOWAIT) is None
    assert pool.pool_stats(PC.pool_cache_pool(pc))["nout"] == 0
    fail[0] = False
    o, pa = PC.pool_cache_get_paddr(pc, pool.PR_NOWAIT)
    assert pa == o
    PC.pool_cache_destruct_object(pc, o)
    assert dt == [o]
    o = PC.pool_cache_get(pc, pool.PR_NOWAIT)
    with pytest.raises(ValueError, match="pool_cache_destroy: cache 'cf' busy"):
        PC.pool_cache_destroy(pc)
    PC.pool_cache_put_paddr(pc, o, o)
    with pytest.raises(ValueError, match="pool_cache_put: object is None"):
        PC.pool_cache_put(pc, None)  # refused on the hit too (issue 16)
    with pytest.raises(ValueError, match="pool_cache_put: 0 is not an object of cache 'cf'"):
        PC.pool_cache_put(pc, 0)
    assert PC.pool_cache_stats(pc)["suspicious"] == 2
    PC.pool_cache_invalidate(pc)  # nothing foreign went in
    # the hit looks at nothing else: another non-address goes into the magazine
    # and is named when the cache gives its objects back to the pool
    for bad in (-8, 1.5, "x", b"x"):
        PC.pool_cache_put(pc, bad)
    with pytest.raises(ValueError, match=r"pool_cache_invalidate: cache 'cf' held 4 object\(s\) that are not its own"):
        PC.pool_cache_invalidate(pc)
    assert PC.pool_cache_stats(pc)["suspicious"] == 6


def test_pool_cache_flags_and_foreign():
    intr.setup(1)
    mem.attach(S.BASE, bytearray(65536))
    src = S.PageSource(256, 8)
    pc = PC.pool_cache_init(32, 8, 0, 0, "ff", src.palloc, pool.IPL_VM, None, None, None)
    with pytest.raises(ValueError, match="pool_cache_get: flags"):
        PC.pool_cache_get(pc, 0)
    PC.pool_cache_sethardlimit(pc, 2, None, 0)
    a = PC.pool_cache_get(pc, pool.PR_NOWAIT)
    b = PC.pool_cache_get(pc, pool.PR_NOWAIT)
    assert PC.pool_cache_get(pc, pool.PR_NOWAIT) is None
    PC.pool_cache_put(pc, a)
    PC.pool_cache_put(pc, b)
    PC.pool_cache_invalidate(pc)
    # the hit refuses flags pool_get refuses, a loaded magazine or not (issue 16)
    a = PC.pool_cache_get(pc, pool.PR_NOWAIT)
    PC.pool_cache_put(pc, a)
    for f in (0, 3, pool.PR_ZERO):
        with pytest.raises(ValueError, match="pool_cache_get: flags need exactly one of PR_WAITOK, PR_NOWAIT"):
            PC.pool_cache_get(pc, f)
    with pytest.raises(TypeError, match="pool_cache_get: flags must be an int, not float"):
        PC.pool_cache_get(pc, 1.5)
    assert PC.pool_cache_get(pc, pool.PR_NOWAIT | pool.PR_ZERO) == a  # other bits beside one wait flag: a hit
    PC.pool_cache_put(pc, a)
    # a foreign int address is not looked up on a put hit: it is found when the
    # cache gives its objects back to the pool, and the others still go back
    PC.pool_cache_put(pc, 12345)
    with pytest.raises(ValueError, match=r"pool_cache_invalidate: cache 'ff' held 1 object\(s\) that are not its own.*12345"):
        PC.pool_cache_invalidate(pc)
    assert PC.pool_cache_stats(pc)["suspicious"] == 1
    assert pool.pool_stats(PC.pool_cache_pool(pc))["nout"] == 0
    PC.pool_cache_destroy(pc)


def test_noalign_pages_at_odd_addresses():
    """PR_NOALIGN: pages anywhere; every item still has item + align_offset
    aligned and lies inside its page (item 0 is computed from the page address,
    not stored)."""
    intr.setup(1)
    mem.attach(S.BASE, bytearray(65536))
    src = S.PageSource(256, 16, base=S.BASE + 3)  # every page 3 bytes off alignment
    p = pool.pool_init(20, 16, 4, pool.PR_NOALIGN, "odd", src.palloc, pool.IPL_VM)
    ipp = pool.pool_stats(p)["itemsperpage"]
    assert ipp == (256 - 15) // 32
    xs = [pool.pool_get(p, pool.PR_NOWAIT) for _ in range(3 * ipp)]
    pages = sorted(src.out)
    for x in xs:
        assert (x + 4) % 16 == 0
        pg = max(a for a in pages if a <= x)
        assert x + 20 <= pg + 256
    assert len(set(xs)) == len(xs)
    with pytest.raises(ValueError, match="not an item"):
        pool.pool_put(p, xs[0] + 1)
    for x in xs:
        pool.pool_put(p, x)
    pool.pool_chk(p)
    # without PR_NOALIGN a page whose items would not fit is refused, and goes back
    q = pool.pool_init(32, 32, 0, 0, "odd2", src.palloc, pool.IPL_VM)  # 8 a page, no slack
    n = len(src.out)
    with pytest.raises(ValueError, match="not 32-aligned"):
        pool.pool_get(q, pool.PR_NOWAIT)
    assert len(src.out) == n


def test_page_table_grows_by_a_quarter():
    """The page table keeps at most about a fifth spare (it doubled before:
    up to half of it spare, a heap word or more per page slot)."""
    intr.setup(1)
    mem.attach(S.BASE, bytearray(65536))
    src = S.PageSource(256, 256)
    p = pool.pool_init(32, 8, 0, 0, "grow", src.palloc, pool.IPL_VM)
    pool.pool_prime(p, 200 * 8)
    assert pool.pool_stats(p)["npages"] == 200
    assert 200 < len(p.pg_addr) <= 200 * 5 // 4 + 2  # page slots
    pool.pool_chk(p)


class _Mask:
    """machine.disable_irq / enable_irq stand-ins: a nesting depth that must unwind in order."""

    def __init__(self):
        self.depth = self.calls = 0

    def disable_irq(self):
        self.depth += 1
        self.calls += 1
        return self.depth

    def enable_irq(self, s):
        assert s == self.depth, "enable_irq(%r) out of order (depth %d)" % (s, self.depth)
        self.depth -= 1


@pytest.fixture
def board_mode(monkeypatch):
    """Put intr in a board's mode (MODE_UP with an interrupt mask: esp32; MODE_SIO:
    rp2, the core id from a stand-in SIO CPUID register) without touching any
    register: the hit pairs _get_irq/_put_irq and _get_sio/_put_sio only run on
    boards otherwise."""
    mask = _Mask()
    sio = {-0x30000000: 0}  # machine.mem32[-0x30000000]: the core running

    def enter(mode, ncpu):
        monkeypatch.setattr(intr, "mode", mode)
        monkeypatch.setattr(intr, "ncpu", ncpu)
        monkeypatch.setattr(intr, "_machine", mask)
        monkeypatch.setattr(intr, "_mem32", sio if mode == intr.MODE_SIO else None)
        for f in intr._on_setup:
            f()
        return mask, sio

    intr.setup(1)
    mem.attach(S.BASE, bytearray(65536))
    yield enter
    monkeypatch.undo()
    intr.setup(1)


def test_esp32_hit_pair_masks_interrupts(board_mode):
    mask, _ = board_mode(intr.MODE_UP, 1)
    assert PC.pool_cache_get is PC._get_irq and PC.pool_cache_put is PC._put_irq
    src = S.PageSource(256, 8)
    pc = PC.pool_cache_init(32, 8, 0, 0, "irq", src.palloc, pool.IPL_VM, None, None, None)
    objs = [PC.pool_cache_get(pc, pool.PR_NOWAIT) for _ in range(20)]  # misses: from the pool
    for o in objs:
        PC.pool_cache_put(pc, o)
    n = mask.calls
    for _ in range(100):
        PC.pool_cache_put(pc, PC.pool_cache_get(pc, pool.PR_NOWAIT))
    assert mask.calls - n == 200 and mask.depth == 0  # one mask pair per hit, unwound
    st = PC.pool_cache_stats(pc)["cpus"][0]
    assert st["nget"] == 120 and st["nput"] == 120 and st["hits"] >= 200
    PC.pool_cache_destroy(pc)
    assert not src.out


def test_rp2_hit_pair_uses_the_core_it_reads(board_mode):
    mask, sio = board_mode(intr.MODE_SIO, 2)
    assert PC.pool_cache_get is PC._get_sio and PC.pool_cache_put is PC._put_sio
    src = S.PageSource(256, 8)
    pc = PC.pool_cache_init(32, 8, 0, 0, "sio", src.palloc, pool.IPL_VM, None, None, None)
    a = [PC.pool_cache_get(pc, pool.PR_NOWAIT) for _ in range(4)]
    for o in a:
        PC.pool_cache_put(pc, o)  # cached on core 0
    sio[-0x30000000] = 1
    b = PC.pool_cache_get(pc, pool.PR_NOWAIT)  # core 1 has nothing cached: a miss, a fresh item
    assert b not in a
    PC.pool_cache_put(pc, b)
    assert PC.pool_cache_get(pc, pool.PR_NOWAIT) == b  # core 1's own magazine now
    PC.pool_cache_put(pc, b)
    sio[-0x30000000] = 0
    assert PC.pool_cache_get(pc, pool.PR_NOWAIT) == a[-1]  # core 0's magazine, last in first out
    PC.pool_cache_put(pc, a[-1])
    cpus = PC.pool_cache_stats(pc)["cpus"]
    assert cpus[0]["misses"] == 4 and cpus[1]["misses"] == 1
    assert cpus[0]["hits"] == 6 and cpus[1]["hits"] == 3
    assert mask.depth == 0
    PC.pool_cache_invalidate(pc)
    assert PC.pool_cache_cached(pc) == 0
    PC.pool_cache_destroy(pc)
    assert not src.out


def test_rp2_spl_depth_is_per_core(board_mode, monkeypatch):
    """MODE_SIO: each core counts its own splhigh() nesting (one shared count lost
    updates when both cores entered at once); only core 0's count holds soft
    interrupts (they run on core 0's main program) and only core 0's last splx()
    runs them."""
    from mpalloc import softint

    mask, sio = board_mode(intr.MODE_SIO, 2)
    ran = []
    monkeypatch.setattr(intr, "_soft_run", lambda: ran.append(sio[-0x30000000]))
    intr._spend[0] = 1                       # a soft interrupt waits
    try:
        _spl_per_core(mask, sio, ran)
    finally:
        intr._spend[0] = 0


def _spl_per_core(mask, sio, ran):
    from mpalloc import softint

    s0 = intr.splhigh()                      # core 0 enters
    sio[-0x30000000] = 1
    s1 = intr.splhigh()                      # core 1 enters, nested inside core 0's section in time
    assert intr._sdepth[:2] == [1, 1] and softint._soft_masked()
    intr.splx(s1)                            # core 1 leaves: core 0 is still inside
    assert intr._sdepth[:2] == [1, 0] and softint._soft_masked() and ran == []
    sio[-0x30000000] = 0
    intr.splx(s0)                            # core 0's last splx runs what waits, on core 0
    assert intr._sdepth[:2] == [0, 0] and ran == [0]
    sio[-0x30000000] = 1
    intr.splx(intr.splhigh())                # core 1 alone: never runs core 0's soft interrupts
    assert ran == [0] and intr._sdepth[:2] == [0, 0] and mask.depth == 0
