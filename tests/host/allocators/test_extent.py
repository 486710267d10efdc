"""extent(9): the man page's examples, every misuse case, fixed storage, waits."""
import threading
import time
from array import array
from pathlib import Path

import pytest


from mpalloc import extent as E  # noqa: E402
from mpalloc.extent import (  # noqa: E402
    EX_BOUNDZERO,
    EX_CATCH,
    EX_FAST,
    EX_MALLOCOK,
    EX_NOALIGN,
    EX_NOBOUNDARY,
    EX_NOCOALESCE,
    EX_NOWAIT,
    EX_WAITOK,
    EX_WAITSPACE,
    EXTENT_FIXED_STORAGE_SIZE,
    extent_alloc,
    extent_alloc_region,
    extent_alloc_subregion,
    extent_create,
    extent_destroy,
    extent_free,
    extent_print,
    extent_regions,
)


@pytest.fixture(autouse=True)
def debug_on():
    E.extent_debug(True)
    yield
    E.extent_debug(False)


def mk(start=0, end=0x3FFFF, flags=0, name="t"):
    return extent_create(name, start, end, None, 0, flags)


def test_flag_values_are_netbsds():
    assert (EX_NOWAIT, EX_WAITOK, EX_FAST, EX_CATCH, EX_NOCOALESCE, EX_MALLOCOK, EX_WAITSPACE, EX_BOUNDZERO) == (
        0, 1, 2, 4, 8, 0x10, 0x20, 0x40)
    assert (EX_NOALIGN, EX_NOBOUNDARY) == (1, 0)


def test_boundary_example_from_the_semantics():
    # [0, 0xEFFF] taken; 0x2000 bytes aligned 0x1000 not crossing 0x10000 -> 0x10000
    ex = mk()
    extent_alloc_region(ex, 0, 0xF000, 0)
    assert extent_alloc(ex, 0x2000, 0x1000, 0x10000, 0) == 0x10000
    # lines are counted from ex_start unless EX_BOUNDZERO
    ex2 = mk(0x8000, 0x3FFFF)
    extent_alloc_region(ex2, 0x8000, 0xF000, 0)  # up to 0x16FFF
    a = extent_alloc(ex2, 0x2000, 0x1000, 0x10000, 0)
    assert a == 0x18000  # 0x17000 would cross the line at 0x18000
    ex3 = mk(0x8000, 0x3FFFF)
    extent_alloc_region(ex3, 0x8000, 0xF000, 0)
    assert extent_alloc(ex3, 0x2000, 0x1000, 0x10000, EX_BOUNDZERO) == 0x17000  # next line 0x20000


def test_alignment_kept_after_moving_to_a_boundary_line():
    ex = mk(0x1003, 0x2000)
    a = extent_alloc(ex, 8, 8, 12, 0)  # lines at 0x1003 + 12k are not 8-aligned
    assert a % 8 == 0 and (a - 0x1003) // 12 == (a + 7 - 0x1003) // 12


def test_best_fit_and_first_fit():
    ex = mk(0, 99)
    extent_alloc_region(ex, 10, 10, 0, owner="x")  # gaps: [0,9] (10), [20,49] (30), [60,99]
    extent_alloc_region(ex, 50, 10, 0, owner="y")
    assert extent_alloc(ex, 8, 1, 0, 0) == 0  # smallest leftover: gap [0,9]
    assert extent_alloc(ex, 30, 1, 0, EX_FAST) == 20  # first that fits
    assert extent_alloc(ex, 40, 1, 0, 0) == 60  # only [60,99] fits: exact


def test_coalescing_same_owner_only_and_nocoalesce():
    ex = mk(0, 99)
    extent_alloc_region(ex, 0, 10, 0, owner="a")
    extent_alloc_region(ex, 20, 10, 0, owner="a")
    extent_alloc_region(ex, 10, 10, 0, owner="a")  # fills the hole: one region
    assert extent_regions(ex) == [(0, 29, "a")]
    extent_alloc_region(ex, 30, 5, 0, owner="b")  # adjacent, other owner: separate
    assert extent_regions(ex) == [(0, 29, "a"), (30, 34, "b")]
    extent_free(ex, 5, 10, 0)  # middle part: split
    assert extent_regions(ex) == [(0, 4, "a"), (15, 29, "a"), (30, 34, "b")]
    nc = mk(0, 99, EX_NOCOALESCE)
    extent_alloc_region(nc, 0, 10, 0)
    extent_alloc_region(nc, 10, 10, 0)
    assert extent_regions(nc) == [(0, 9, None), (10, 19, None)]
    with pytest.raises(ValueError, match=r"^extent_free: .*only whole regions"):
        extent_free(nc, 0, 5, 0)
    with pytest.raises(ValueError, match=r"^extent_free: .*not found"):
        extent_free(nc, 5, 10, 0)  # spans two regions
    extent_free(nc, 0, 10, 0)
    assert extent_regions(nc) == [(10, 19, None)]


def test_conflict_names_the_owner_and_changes_nothing():
    ex = mk(0x40000000, 0x5FFFFFFF, name="periph")
    extent_alloc_region(ex, 0x40034000, 0x4000, 0, owner="uart0-driver")
    before = extent_regions(ex)
    with pytest.raises(OSError) as ei:
        extent_alloc_region(ex, 0x40036000, 0x4000, 0, owner="other")
    assert ei.value.errno == E.EAGAIN
    msg = ei.value.args[1]
    assert msg.startswith("extent_alloc_region: ")
    assert "claimed by 'uart0-driver'" in msg and "0x40034000-0x40037fff" in msg
    assert extent_regions(ex) == before


def test_no_space_is_eagain():
    ex = mk(0, 15)
    extent_alloc_region(ex, 0, 16, 0)
    with pytest.raises(OSError) as ei:
        extent_alloc(ex, 1, 1, 0, 0)
    assert ei.value.errno == E.EAGAIN and ei.value.args[1].startswith("extent_alloc: ")


@pytest.mark.parametrize("call, words", [
    (lambda ex: extent_alloc_region(ex, 0x10, 0, 0), "extent_alloc_region: .*bad size 0"),
    (lambda ex: extent_alloc_region(ex, 0xF0, 0x20, 0), "extent_alloc_region: .*outside"),
    (lambda ex: extent_alloc_region(ex, -1, 2, 0), "extent_alloc_region: .*outside"),
    (lambda ex: extent_alloc(ex, 0, 1, 0, 0), "extent_alloc: .*bad size 0"),
    (lambda ex: extent_alloc(ex, 0x101, 1, 0, 0), "extent_alloc: .*bad size"),
    (lambda ex: extent_alloc(ex, 4, 0, 0, 0), "extent_alloc: .*alignment 0 is not a power of two"),
    (lambda ex: extent_alloc(ex, 4, 12, 0, 0), "extent_alloc: .*alignment 12 is not a power of two"),
    (lambda ex: extent_alloc(ex, 16, 1, 8, 0), "extent_alloc: .*boundary 0x8 is smaller than size 0x10"),
    (lambda ex: extent_alloc_subregion(ex, 0x80, 0x40, 4, 1, 0, 0), "extent_alloc_subregion: .*bad subregion"),
    (lambda ex: extent_alloc_subregion(ex, 0x80, 0x100, 4, 1, 0, 0), "extent_alloc_subregion: .*bad subregion"),
    (lambda ex: extent_alloc_subregion(ex, 0x80, 0x82, 4, 1, 0, 0), "extent_alloc_subregion: .*bad size"),
    (lambda ex: extent_free(ex, 0x40, 0x10, 0), "extent_free: .*not found"),
    (lambda ex: extent_free(ex, 0x18, 0x10, 0), "extent_free: .*not found"),  # runs past the region
    (lambda ex: extent_free(ex, 0x10, 0, 0), "extent_free: .*bad size 0"),
    (lambda ex: extent_free(ex, 0xF8, 0x10, 0), "extent_free: .*not within extent"),
    (lambda ex: extent_free(ex, 0x10, 0x10, 0, owner="b"), "extent_free: .*claimed by 'a', not 'b'"),
    (lambda ex: extent_alloc(ex, "4", 1, 0, 0), "extent_alloc: size must be an int"),
    (lambda ex: extent_alloc_region(ex, 0x40, 4, 0, owner=3), "extent_alloc_region: owner must be a str"),
    (lambda ex: extent_alloc("nope", 4, 1, 0, 0), "extent_alloc: not an extent"),
])
def test_misuse(call, words):
    ex = mk(0, 0xFF)
    extent_alloc_region(ex, 0x10, 0x10, 0, owner="a")
    before = extent_regions(ex)
    with pytest.raises(ValueError, match="^" + words):
        call(ex)
    assert extent_regions(ex) == before


def test_create_misuse():
    with pytest.raises(ValueError, match="^extent_create: .*end 0x0 < start 0x10"):
        extent_create("x", 0x10, 0, None, 0, 0)
    with pytest.raises(ValueError, match="^extent_create: .*holds no region descriptor"):
        extent_create("x", 0, 0xFF, array("I", [0]), 4, 0)
    with pytest.raises(ValueError, match=r"^extent_create: .*must be an array\('I'\)"):
        extent_create("x", 0, 0xFF, bytearray(64), 64, 0)
    with pytest.raises(ValueError, match=r"^extent_create: .*must be an array\('I'\)"):
        extent_create("x", 0, 0xFF, array("I", bytes(16)), 64, 0)  # too short
    with pytest.raises(ValueError, match="^extent_create: .*without storage"):
        extent_create("x", 0, 0xFF, None, 64, 0)
    with pytest.raises(ValueError, match="^extent_create: name must be a str"):
        extent_create(None, 0, 0xFF, None, 0, 0)


def test_fixed_storage_never_grows_without_mallocok():
    st = array("I", bytes(EXTENT_FIXED_STORAGE_SIZE(2)))
    ex = extent_create("fx", 0, 0xFF, st, EXTENT_FIXED_STORAGE_SIZE(2), 0)
    assert ex.d is st
    extent_alloc_region(ex, 0, 4, 0)
    extent_alloc_region(ex, 8, 4, 0)
    with pytest.raises(OSError) as ei:
        extent_alloc_region(ex, 16, 4, EX_NOWAIT)
    assert ei.value.errno == E.ENOMEM
    # a descriptor is needed even when the claim would coalesce (as in NetBSD)
    with pytest.raises(OSError):
        extent_alloc_region(ex, 4, 2, 0)
    with pytest.raises(OSError) as ei:  # splitting a region needs one too
        extent_free(ex, 1, 1, 0)
    assert ei.value.errno == E.ENOMEM
    assert extent_regions(ex) == [(0, 3, None), (8, 11, None)]
    assert ex.d is st  # still the caller's storage
    extent_alloc_region(ex, 16, 4, EX_MALLOCOK)  # now it may take heap memory
    assert ex.d is not st and ex.flags & E.EXF_MALLOCED
    assert extent_regions(ex) == [(0, 3, None), (8, 11, None), (16, 19, None)]


def test_dynamic_descriptors_grow():
    ex = mk(0, 0xFFFF)
    for i in range(100):
        extent_alloc_region(ex, i * 4, 2, 0)
    assert ex.nregions == 100 and ex.ndesc >= 100


def test_big_addresses_and_64bit_extents():
    ex = mk(0xD0000000, 0xFFFFFFFF)
    a = extent_alloc(ex, 0x180, 0x1000, 0, 0, owner="sio")
    assert a == 0xD0000000
    big = mk(1 << 40, (1 << 40) + 0xFFFF)
    assert extent_alloc(big, 16, 16, 0, 0) == 1 << 40
    with pytest.raises(ValueError, match="fixed storage holds 32-bit"):
        extent_create("x", 0, 1 << 33, array("I", bytes(64)), 64, 0)


def test_destroy_and_list():
    ex = mk(name="gone")
    assert ex in E.extent_list
    extent_destroy(ex)
    assert ex not in E.extent_list
    with pytest.raises(ValueError, match="^extent_alloc: extent 'gone' was destroyed"):
        extent_alloc(ex, 1, 1, 0, 0)


def test_print_shows_owners(capsys):
    ex = mk(0x40000000, 0x4FFFFFFF, name="periph")
    extent_alloc_region(ex, 0x40034000, 0x4000, 0, owner="uart0")
    extent_print(ex)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "extent `periph' (0x40000000 - 0x4fffffff), flags = 0x0"
    assert out[1].split() == ["0x40034000", "-", "0x40037fff", "uart0"]


def test_waitspace_wakes_on_free():
    from mpalloc import intr

    intr.setup(2)  # the waiter is a CPU of its own (a thread with none is refused)
    ex = mk(0, 15)
    extent_alloc_region(ex, 0, 16, 0, owner="first")
    got = []

    def waiter():
        intr.cpu_attach(1)
        got.append(extent_alloc(ex, 4, 1, 0, EX_WAITSPACE, owner="second"))

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.05)
    assert not got  # still waiting
    extent_free(ex, 0, 8, 0)
    t.join(5)
    assert got and 0 <= got[0] <= 4


def test_waitspace_gives_up_after_maxwait(monkeypatch):
    monkeypatch.setattr(E, "maxwait_ms", 20)
    ex = mk(0, 15)
    extent_alloc_region(ex, 0, 16, 0, owner="first")
    with pytest.raises(OSError) as ei:
        extent_alloc_region(ex, 0, 4, EX_WAITSPACE)
    assert ei.value.errno == E.EAGAIN and "waited" in ei.value.args[1] and "first" in ei.value.args[1]


def test_catch_turns_interrupt_into_eintr(monkeypatch):
    ex = mk(0, 15)
    extent_alloc_region(ex, 0, 16, 0)
    calls = [0]

    def sleep_ms_interrupt(n):
        calls[0] += 1
        raise KeyboardInterrupt

    import time as _t

    monkeypatch.setattr(_t, "sleep_ms", sleep_ms_interrupt, raising=False)
    with pytest.raises(OSError) as ei:
        extent_alloc(ex, 4, 1, 0, EX_WAITSPACE | EX_CATCH)
    assert ei.value.errno == E.EINTR
    with pytest.raises(KeyboardInterrupt):
        extent_alloc(ex, 4, 1, 0, EX_WAITSPACE)
    assert calls[0] == 2


def test_waitok_for_descriptor_of_fixed_extent():
    from mpalloc import intr

    intr.setup(2)  # the waiter is a CPU of its own (it passed only when a dead thread's ident was reused)
    st = array("I", bytes(EXTENT_FIXED_STORAGE_SIZE(1)))
    ex = extent_create("fx", 0, 0xFF, st, EXTENT_FIXED_STORAGE_SIZE(1), 0)
    extent_alloc_region(ex, 0, 4, 0)
    done = []

    def waiter():
        intr.cpu_attach(1)
        done.append(extent_alloc_region(ex, 16, 4, EX_WAITOK) or 1)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.05)
    assert not done
    extent_free(ex, 0, 4, 0)
    t.join(5)
    assert done and extent_regions(ex) == [(16, 19, None)]
