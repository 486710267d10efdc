"""zone(9) zinit zones: growth by pages, ZONE_INTERRUPT never grows and works from
an emulated hard interrupt, ZONE_DESTROYABLE. Pages come from mpalloc's uvm_km
when the stack imports; until then from a stand-in page source patched in for
the test only."""
import sys
import types

import pytest

import mpalloc
from mpalloc import intr, mem, zone

BASE = 0x20020000
SIZE = 64 * 1024


class _PageSource:
    PAGE_SIZE = 4096
    UVM_KMF_WIRED = 1
    UVM_KMF_NOWAIT = 0x400000

    def __init__(self):
        self.kernel_map = "kernel_map"
        self.next = BASE
        self.freed = []

    def uvm_km_alloc(self, map, size, align, flags):
        if self.next + size > BASE + SIZE:
            return 0
        a = self.next
        self.next += size
        return a

    def uvm_km_free(self, map, a, size, flags):
        self.freed.append((a, size))


@pytest.fixture
def pages(monkeypatch):
    del zone.zone_list[:]
    mem.attach(BASE, bytearray(SIZE))
    try:
        from mpalloc import uvm_km

        uvm_km.uvm_km_bootstrap(BASE, SIZE, 4096)
        yield uvm_km
    except ImportError:
        src = _PageSource()
        mod = types.ModuleType("mpalloc.uvm_km")
        for k in ("PAGE_SIZE", "UVM_KMF_WIRED", "UVM_KMF_NOWAIT", "kernel_map", "uvm_km_alloc", "uvm_km_free"):
            setattr(mod, k, getattr(src, k))
        monkeypatch.setitem(sys.modules, "mpalloc.uvm_km", mod)
        monkeypatch.setattr(mpalloc, "uvm_km", mod, raising=False)
        yield mod
    del zone.zone_list[:]


def test_zinit_grows_by_pages(pages):
    z = zone.zinit("grow", 100, 0, 0)
    assert z.zsize == 104  # rounded to ZONE_ROUNDING
    items = [zone.zalloc(z) for _ in range(60)]
    assert None not in items and len(set(items)) == 60
    st = zone.zone_stats(z)
    assert st["max"] == 0 and st["pages"] >= 2 and st["used"] == 60
    for a in items:
        assert bytes(zone.zbuf(z, a)) == bytes(104)  # first allocation zeroed


def test_interrupt_zone_never_grows(pages):
    z = zone.zinit("intr", 64, 10, zone.ZONE_INTERRUPT)
    n = zone.zone_stats(z)["total"]
    assert n >= 10
    items = [zone.zalloc(z) for _ in range(n)]
    assert None not in items
    assert zone.zalloc(z) is None
    assert zone.zone_stats(z)["total"] == n and zone.zone_stats(z)["nfail"] == 1


def test_interrupt_zone_from_hard_irq(pages):
    z = zone.zinit("irq", 32, 4, zone.ZONE_INTERRUPT)
    got = []

    def handler(_):
        a = zone.zalloc(z)
        zone.zfree(z, a)
        return a

    got.append(intr.run_hard(handler, 0))
    assert got[0] is not None


def test_growable_zone_refused_in_interrupt(pages):
    z = zone.zinit("nogrow", 32, 0, 0)

    def handler(_):
        return zone.zalloc(z)

    with pytest.raises(ValueError, match="^zalloc: zone can grow"):
        intr.run_hard(handler, 0)


def test_zdestroy(pages):
    z = zone.zinit("d", 32, 4, zone.ZONE_INTERRUPT | zone.ZONE_DESTROYABLE)
    a = zone.zalloc(z)
    with pytest.raises(ValueError, match="^zdestroy: zone 'd' still has 1 items in use"):
        zone.zdestroy(z)
    zone.zfree(z, a)
    zone.zdestroy(z)
    assert z not in zone.zone_list
    with pytest.raises(ValueError, match="^zalloc: zone was destroyed"):
        zone.zalloc(z)
    with pytest.raises(ValueError, match="^zdestroy: zone 'd' already destroyed"):
        zone.zdestroy(z)


def test_zdestroy_needs_destroyable(pages):
    z = zone.zinit("nd", 32, 0, 0)
    with pytest.raises(ValueError, match="^zdestroy: zone 'nd' was not made by zinit with ZONE_DESTROYABLE"):
        zone.zdestroy(z)


def test_boot_zone_completed_by_zinitna_can_grow(pages):
    z = zone.zbootinit(None, "b", 16, bytearray(32), 2)
    zone.zalloc(z), zone.zalloc(z)
    assert zone.zalloc(z) is None
    assert zone.zinitna(z, None, "b", 16, 0, 0) == 1
    assert zone.zalloc(z) is not None
