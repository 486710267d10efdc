# 32-bit truth with the board's real addresses: after board.init(), vmem,
# uvm_km, extent and the board's own maps work at the profile's addresses
# (RP2040: SRAM 0x2000_0000, peripherals 0x4000_0000, SIO 0xD000_0000), and the
# hot paths of vmem, uvm_km and extent (claims and frees in the board's maps,
# board.claim/release) allocate nothing under micropython.heap_lock() where the
# ends are small ints (board.claim: only the (base, size) it returns).
#
# On a 32-bit port an int >= 2**30 is a heap object: 0x4000_0000 and
# 0xD000_0000 are. Where the address handed back is such an int nothing can
# avoid making it, so there the heap the hot path uses is compared with a
# control that only makes the same addresses (the allocator's own work must add
# nothing); below 2**30 (SRAM, the managed window) and on 64-bit ports every
# pair runs under heap_lock, and so do extent's claims of a caller's own
# address and its frees at 0x4000_0000 and up (nothing to hand back). emu:rp2040 (and a Pico) run this at the chip's real
# addresses, with the window a bytearray at its address in the rp2's SRAM; the
# virtual boards at the profile's addresses.
import gc
import sys

from mptest import Suite, eq, heap_locked, skip

from mpalloc import board
from mpalloc import uvm_km as U
from mpalloc.extent import EX_NOWAIT, extent_alloc_region, extent_alloc_subregion, extent_free, extent_regions
from mpalloc.vmem import M_NOWAIT, vmem_alloc, vmem_create, vmem_destroy, vmem_free

s = Suite("addr32", needs=("heap:40000",))

SRAM = 0x20000000
PERIPH = 0x40000000
SIO = 0xD0000000
SMALL32 = sys.maxsize < (1 << 32) if hasattr(sys, "maxsize") else True
_N = 100


def _rp2040():
    board.init()
    if board.name != "rp2040":
        skip("the RP2040's addresses (profile %s)" % board.name)


def _vpairs(vm):
    # vmem_alloc/vmem_free, instant fit and quantum cache sizes
    i = 0
    while i < _N:
        a = vmem_alloc(vm, 16, M_NOWAIT)
        b = vmem_alloc(vm, 200, M_NOWAIT)
        vmem_free(vm, a, 16)
        vmem_free(vm, b, 200)
        i += 1
    return i


def _ctl2(org):
    # what a caller pays anyway for addresses above 2**30 (two a round, as in
    # _vpairs): the int handed back and the subtraction back to an offset, both
    # heap objects on 32-bit (test_vmem's high_arena_offsets: the same control)
    i = 0
    while i < _N:
        a = org + 16
        o = a - org
        b = org + 48
        o = b - org
        i += 1
    return o


def _heap_of(fn, arg):
    gc.collect()
    gc.disable()
    try:
        m0 = gc.mem_alloc()
        fn(arg)
        return gc.mem_alloc() - m0
    finally:
        gc.enable()


def _no_extra(name, fn, arg, control, carg):
    # under heap_lock where addresses are small ints; else no more heap than
    # the control that only makes the addresses
    fn(arg)  # warm up
    if not SMALL32:
        eq(heap_locked(fn, arg), _N, "%s under heap_lock (64-bit)" % name)
        return
    ctl = _heap_of(control, carg)
    got = _heap_of(fn, arg)
    s.metric(name, "bytes_per_round", got // _N)
    s.metric(name, "control_bytes_per_round", ctl // _N)
    if got > ctl:
        raise AssertionError("%s: %d rounds allocated %d bytes, the addresses alone %d" % (name, _N, got, ctl))


def _pmap(a):
    # the board's peripheral map holding address a
    for pm in board.periph_maps:
        if pm.start <= a <= pm.end:
            return pm
    raise AssertionError("no peripheral map holds 0x%x (maps: %s)" % (a, board.periph_maps))


@s.test
def maps_at_real_addresses():
    _rp2040()
    from mpalloc import mem

    sm = board.sram_map
    for pm in board.periph_maps:
        s.metric("maps_at_real_addresses", "periph_0x%x" % pm.start, "0x%x-0x%x" % (pm.start, pm.end))
        eq(pm.start >> 30, pm.end >> 30, "peripheral map %s inside one 1 GiB window" % pm.name)
    s.metric("maps_at_real_addresses", "sram", "0x%x-0x%x" % (sm.start, sm.end))
    eq(sm.start, SRAM, "SRAM map starts at 0x2000_0000")
    eq(_pmap(PERIPH).start <= PERIPH, True, "a peripheral map covers 0x4000_0000")
    owners = {}
    for a, e, o in extent_regions(_pmap(SIO + 0x17F)):
        if a <= SIO <= e:
            owners["sio"] = o
    eq(owners.get("sio"), "micropython", "SIO claimed by micropython")
    b, n, _ = board.window
    s.metric("maps_at_real_addresses", "window", "0x%x+%d" % (b, n))
    eq(SRAM <= b and b + n <= SRAM + 0x42000, True, "window inside the RP2040's SRAM")
    eq((b, b + n - 1, "mpalloc") in extent_regions(sm), True, "window claimed by mpalloc in the SRAM map")
    eq(U.kernel_map is not None and mem.base == b, True, "kernel_map over the window")
    if sys.platform == "rp2":
        import uctypes

        eq(uctypes.addressof(mem.ram), b, "the window is the bytearray's own address")


@s.test
def vmem_sram_heap_locked():
    # an arena at the RP2040's SRAM (its first 64 KiB): small ints everywhere
    gc.collect()
    vm = vmem_create("sram", SRAM, 0x10000, 16, 64, M_NOWAIT)
    try:
        _vpairs(vm)
        eq(heap_locked(_vpairs, vm), _N, "vmem pairs at 0x2000_0000 under heap_lock")
    finally:
        vmem_destroy(vm)


@s.test
def vmem_sio_no_extra_heap():
    # an arena over the SIO's 0x180 bytes of registers at 0xD000_0000 (a big
    # int on 32-bit): vmem works in offsets, only the address handed back is new
    gc.collect()
    vm = vmem_create("sio", SIO, 0x1000, 16, 64, M_NOWAIT)
    try:
        _no_extra("vmem_sio_no_extra_heap", _vpairs, vm, _ctl2, SIO)
    finally:
        vmem_destroy(vm)


def _kpairs(km):
    i = 0
    f = U.UVM_KMF_WIRED | U.UVM_KMF_NOWAIT
    while i < _N:
        a = U.uvm_km_alloc(km, 256, 0, f)
        b = U.uvm_km_alloc(km, 1024, 0, f)
        U.uvm_km_free(km, a, 256, U.UVM_KMF_WIRED)
        U.uvm_km_free(km, b, 1024, U.UVM_KMF_WIRED)
        i += 1
    return i


@s.test
def uvm_km_window_heap_locked():
    board.init()
    km = U.kernel_map
    b, n, _ = board.window
    a = U.uvm_km_alloc(km, 256, 0, U.UVM_KMF_WIRED)
    eq(b <= a and a + 256 <= b + n, True, "kernel_map hands out the window's addresses")
    U.uvm_km_free(km, a, 256, U.UVM_KMF_WIRED)
    _kpairs(km)
    eq(heap_locked(_kpairs, km), _N, "uvm_km pairs in the window (0x%x) under heap_lock" % b)


_EX = [None, 0, 0]  # extent, substart, subend
_NX = 10  # extent pairs a round: with the gc off, 100 exhaust the webassembly port's heap


def _xpairs(arg):
    ex, lo, hi = _EX[0], _EX[1], _EX[2]
    i = 0
    while i < _NX:
        a = extent_alloc_subregion(ex, lo, hi, 16, 16, 0, EX_NOWAIT, "t")
        extent_free(ex, a, 16, EX_NOWAIT, "t")
        i += 1
    return i


def _rpairs(arg):
    # claim exactly [lo, lo+15] and free it: addresses the caller has, nothing handed back
    ex, lo = _EX[0], _EX[1]
    i = 0
    while i < _NX:
        extent_alloc_region(ex, lo, 16, EX_NOWAIT, "t")
        extent_free(ex, lo, 16, EX_NOWAIT, "t")
        i += 1
    return i


def _ctl1(org):
    # what a caller of extent_alloc_subregion pays anyway above 2**30: the start handed back
    i = 0
    while i < _NX:
        a = org + 16
        i += 1
    return a


def _free_span(ex, lo, hi):
    # the first free gap of ex inside [lo, hi]: (start, end) or None
    at = lo
    for a, e, o in extent_regions(ex):
        if e < at:
            continue
        if a > at:
            return at, min(a - 1, hi)
        at = e + 1
        if at > hi:
            return None
    return (at, hi) if at <= hi else None


def _extent_debug():
    from mpalloc import extent

    return extent._debug[0]


def _borrow_sram():
    # 64 bytes of the SRAM map to claim in: the map is all claimed (micropython's
    # heap and stack, the window), so the last 64 bytes of micropython's first
    # region are released for the test (_give_back claims them again)
    for a, e, o in extent_regions(board.sram_map):
        if o == "micropython" and e - a >= 127:
            extent_free(board.sram_map, e - 63, 64, EX_NOWAIT, "micropython")
            return e - 63, e
    raise AssertionError("no region of micropython's in the SRAM map to borrow 64 bytes from")


def _give_back(g):
    extent_alloc_region(board.sram_map, g[0], 64, EX_NOWAIT, "micropython")


@s.test
def extent_board_maps_claims():
    # claims and frees in the board's own maps: at a free gap of the SRAM map
    # (small ints on every port) under heap_lock; at a free gap of the
    # peripheral map (0x4000_0000 and up: heap objects on 32-bit) claims of the
    # gap's own address and frees under heap_lock too (extent works in offsets
    # from the map's start), and a first-fit claim and its free take no more
    # heap than the start they hand back (heap_lock on 64-bit ports).
    _rp2040()
    gc.collect()
    g = _borrow_sram()
    try:
        s.metric("extent_board_maps_claims", "sram_gap", "0x%x-0x%x" % g)
        eq(_free_span(board.sram_map, SRAM, SRAM + 0x41FFF), g, "the borrowed 64 bytes: the SRAM map's free gap")
        _EX[0], _EX[1], _EX[2] = board.sram_map, g[0], g[1]
        eq(_xpairs(0), _NX, "claims and frees in the SRAM map")
        s.metric("extent_board_maps_claims", "sram_bytes_per_pair", _heap_of(_xpairs, 0) // _NX)
        if not _extent_debug():  # debug mode's invariant check allocates (a dict of the descriptors seen)
            eq(heap_locked(_xpairs, 0), _NX, "extent claim/free pairs in the SRAM map (0x%x) under heap_lock" % g[0])
        eq(_free_span(board.sram_map, g[0], g[1]), g, "SRAM gap free again")
    finally:
        _give_back(g)
    pm = _pmap(PERIPH)
    g = _free_span(pm, PERIPH, 0x5FFFFFFF)
    eq(g is not None, True, "a free gap in the peripheral map")
    s.metric("extent_board_maps_claims", "periph_gap", "0x%x-0x%x" % g)
    _EX[0], _EX[1], _EX[2] = pm, g[0], g[1]
    eq(extent_alloc_subregion(pm, g[0], g[1], 16, 16, 0, EX_NOWAIT, "t"), g[0], "first fit at the gap")
    extent_free(pm, g[0], 16, EX_NOWAIT, "t")
    _xpairs(0)
    _rpairs(0)
    got = _heap_of(_xpairs, 0)
    ctl = _heap_of(_ctl1, g[0])
    s.metric("extent_board_maps_claims", "bytes_per_pair", got // _NX)
    s.metric("extent_board_maps_claims", "control_bytes_per_pair", ctl // _NX)
    s.metric("extent_board_maps_claims", "region_bytes_per_pair", _heap_of(_rpairs, 0) // _NX)
    if not _extent_debug():  # debug mode's invariant check allocates (a dict of the descriptors seen)
        eq(heap_locked(_rpairs, 0), _NX, "extent_alloc_region/extent_free at 0x%x under heap_lock" % g[0])
        if not SMALL32:
            eq(heap_locked(_xpairs, 0), _NX, "extent pairs in the peripheral map under heap_lock (64-bit)")
        elif got > ctl:
            raise AssertionError("extent_alloc_subregion/extent_free at 0x%x: %d pairs allocated %d bytes, "
                                 "the starts handed back alone %d" % (g[0], _NX, got, ctl))
    eq(_free_span(pm, g[0], g[1]), g, "peripheral gap free again")


def _bpairs(arg):
    # board.claim/release of a range of the SRAM gap (an int base: no name lookup)
    a, n = _EX[1], 0
    while n < _NX:
        board.claim("t", a, 64)
        board.release("t", a, 64)
        n += 1
    return n


def _tuples(arg):
    # the control: what board.claim returns, (base, size), _NX times
    a, n = _EX[1], 0
    while n < _NX:
        r = (a, n)
        n += 1
    return r


@s.test
def board_claim_release_sram():
    # board.claim/release in SRAM allocate nothing but claim's (base, size) result
    _rp2040()
    g = _borrow_sram()
    try:
        _EX[0], _EX[1], _EX[2] = board.sram_map, g[0], g[1]
        _bpairs(0)
        got = _heap_of(_bpairs, 0)
        ctl = _heap_of(_tuples, 0)
        s.metric("board_claim_release_sram", "bytes_per_pair", got // _NX)
        s.metric("board_claim_release_sram", "result_tuple_bytes", ctl // _NX)
        if got > ctl and not _extent_debug():
            raise AssertionError("board.claim/release: %d pairs allocated %d bytes, their results alone %d"
                                 % (_NX, got, ctl))
        eq(_free_span(board.sram_map, g[0], g[1]), g, "SRAM gap free again")
    finally:
        _give_back(g)



@s.test
def board_claim_release_periph():
    # board.claim/release at 0x4000_0000 and up (heap objects on 32-bit): no
    # more heap than claim's (base, size) result (the map is picked by
    # comparisons, extent works in offsets)
    _rp2040()
    g = _free_span(_pmap(PERIPH), PERIPH, 0x5FFFFFFF)
    _EX[0], _EX[1], _EX[2] = _pmap(PERIPH), g[0], g[1]
    _bpairs(0)
    got = _heap_of(_bpairs, 0)
    ctl = _heap_of(_tuples, 0)
    s.metric("board_claim_release_periph", "bytes_per_pair", got // _NX)
    s.metric("board_claim_release_periph", "result_tuple_bytes", ctl // _NX)
    if got > ctl and not _extent_debug():
        raise AssertionError("board.claim/release at 0x%x: %d pairs allocated %d bytes, their results alone %d"
                             % (g[0], _NX, got, ctl))
    eq(_free_span(_pmap(PERIPH), g[0], g[1]), g, "peripheral gap free again")

s.run()
