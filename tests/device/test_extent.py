# extent(9) on the device: the same semantics as the host model, on the real
# interpreter (32-bit ints on boards and wasm: addresses >= 2**30 are big ints).
from array import array

from mptest import Suite, raises, check_msg, eq

from mpalloc import extent as E
from mpalloc.extent import (extent_create, extent_destroy, extent_alloc, extent_alloc_region,
                            extent_alloc_subregion, extent_free, extent_regions,
                            EX_NOCOALESCE, EX_BOUNDZERO, EX_FAST, EX_MALLOCOK, EXTENT_FIXED_STORAGE_SIZE)

s = Suite("extent", needs=("heap:16384",))


@s.test
def conflict_names_owner():
    ex = extent_create("periph", 0x40000000, 0x5FFFFFFF, None, 0, 0)
    try:
        extent_alloc_region(ex, 0x40034000, 0x4000, 0, owner="uart0")
        e = raises(OSError, extent_alloc_region, ex, 0x40035000, 0x10, 0)
        eq(e.args[0], E.EAGAIN, "EAGAIN")
        check_msg(e, "extent_alloc_region", "claimed by 'uart0'", "0x40034000-0x40037fff")
        eq(extent_regions(ex), [(0x40034000, 0x40037FFF, "uart0")], "unchanged")
    finally:
        extent_destroy(ex)


@s.test
def alignment_boundary_fit():
    ex = extent_create("t", 0, 0x3FFFF, None, 0, 0)
    extent_alloc_region(ex, 0, 0xF000, 0)
    eq(extent_alloc(ex, 0x2000, 0x1000, 0x10000, 0), 0x10000, "moved past the boundary line")
    a = extent_alloc_subregion(ex, 0x20000, 0x3FFFF, 0x100, 0x100, 0, EX_FAST)
    eq(a, 0x20000, "first fit in the subregion")
    extent_destroy(ex)
    ex = extent_create("t", 0x1003, 0x2000, None, 0, 0)
    a = extent_alloc(ex, 8, 8, 12, 0)
    eq(a % 8, 0, "aligned after moving to a line")
    eq((a - 0x1003) // 12, (a + 7 - 0x1003) // 12, "no line crossed")
    a = extent_alloc(ex, 8, 8, 16, EX_BOUNDZERO)
    eq(a // 16, (a + 7) // 16, "EX_BOUNDZERO lines from 0")
    extent_destroy(ex)


@s.test
def coalesce_split_and_nocoalesce():
    ex = extent_create("t", 0, 99, None, 0, 0)
    extent_alloc_region(ex, 0, 10, 0, owner="a")
    extent_alloc_region(ex, 10, 10, 0, owner="a")
    extent_alloc_region(ex, 20, 5, 0, owner="b")
    eq(extent_regions(ex), [(0, 19, "a"), (20, 24, "b")], "same owner coalesced")
    extent_free(ex, 5, 5, 0)
    eq(extent_regions(ex), [(0, 4, "a"), (10, 19, "a"), (20, 24, "b")], "split")
    extent_destroy(ex)
    nc = extent_create("nc", 0, 99, None, 0, EX_NOCOALESCE)
    extent_alloc_region(nc, 0, 10, 0)
    extent_alloc_region(nc, 10, 10, 0)
    eq(len(extent_regions(nc)), 2, "not coalesced")
    e = raises(ValueError, extent_free, nc, 0, 5, 0)
    check_msg(e, "extent_free", "only whole regions")
    extent_destroy(nc)


@s.test
def misuse_is_clear():
    ex = extent_create("m", 0, 0xFF, None, 0, 0)
    extent_alloc_region(ex, 0x10, 0x10, 0, owner="a")
    for fn, args, words in (
        (extent_alloc_region, (ex, 0x10, 0, 0), "bad size"),
        (extent_alloc_region, (ex, 0xF0, 0x20, 0), "outside"),
        (extent_alloc, (ex, 4, 12, 0, 0), "not a power of two"),
        (extent_alloc, (ex, 16, 1, 8, 0), "smaller than size"),
        (extent_alloc_subregion, (ex, 0x80, 0x40, 4, 1, 0, 0), "bad subregion"),
        (extent_free, (ex, 0x40, 0x10, 0), "not found"),
        (extent_free, (ex, 0x18, 0x10, 0), "not found"),
    ):
        e = raises(ValueError, fn, *args)
        check_msg(e, fn.__name__, words)
    e = raises(ValueError, extent_create, "x", 5, 1, None, 0, 0)
    check_msg(e, "extent_create", "end")
    eq(extent_regions(ex), [(0x10, 0x1F, "a")], "nothing changed")
    extent_destroy(ex)
    e = raises(ValueError, extent_alloc, ex, 1, 1, 0, 0)
    check_msg(e, "extent_alloc", "destroyed")


@s.test
def fixed_storage():
    st = array("I", bytes(EXTENT_FIXED_STORAGE_SIZE(2)))
    ex = extent_create("fx", 0, 0xFF, st, EXTENT_FIXED_STORAGE_SIZE(2), 0)
    extent_alloc_region(ex, 0, 4, 0)
    extent_alloc_region(ex, 8, 4, 0)
    e = raises(OSError, extent_alloc_region, ex, 16, 4, 0)
    eq(e.args[0], E.ENOMEM, "ENOMEM without EX_MALLOCOK")
    eq(ex.d is st, True, "still the caller's storage")
    extent_alloc_region(ex, 16, 4, EX_MALLOCOK)
    eq(len(extent_regions(ex)), 3, "grew with EX_MALLOCOK")
    extent_destroy(ex)


@s.test
def many_claims_and_frees():
    ex = extent_create("many", 0xD0000000, 0xD000FFFF, None, 0, 0)
    got = []
    for i in range(40):
        got.append(extent_alloc(ex, 16 + (i % 5) * 8, 16, 0, 0, "o%d" % (i % 3)))
    for a in got:
        eq(a % 16, 0, "aligned")
    regs = extent_regions(ex)
    for i in range(1, len(regs)):
        eq(regs[i - 1][1] < regs[i][0], True, "no overlap")
    for i, a in enumerate(got):
        extent_free(ex, a, 16 + (i % 5) * 8, 0)
    eq(extent_regions(ex), [], "all freed")
    extent_destroy(ex)


s.run()
