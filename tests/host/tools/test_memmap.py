"""The memory-map picture is drawn from a saved snapshot, off-line (PNG and SVG)."""
import json
import struct
from pathlib import Path

import pytest

from mpalloc_host import memmap
from mpalloc_host import stats as st
from mpalloc_host.cli import main

BASE = 0x20010000


PERIPH = [[0x40034000, 0x40037FFF, "uart0"], [0x40070000, 0x4FFFFFFF, "(unmapped)"],
          [0x50000000, 0x50000FFF, "uart0-dma"]]
SRAM_EXT = [[BASE + 768, BASE + 1791, "dma:uart0"]]


def snapshot():
    """A snapshot as the board streams it: kernel_map with a submap, two pools' pages,
    a DMA claim in the SRAM extent, two peripheral owners and an unmapped hole; the
    memmap record repeats both extent maps (as board.memory_map() does) and names the
    RP2040's non-striped alias of SRAM0-3."""
    recs = [
        ("begin", {"v": 1, "platform": "rp2", "impl": "micropython 1.28.0", "board": "rp2040"}),
        ("vmem", {"name": "kernel_map", "size": 65536, "inuse": 6144}),
        ("segs", {"arena": "kernel_map", "spans": [[BASE, 65536, False]],
                  "segs": [[BASE, 512, "alloc"], [BASE + 512, 256, "alloc"], [BASE + 768, 1024, "alloc"],
                           [BASE + 1792, 4096, "alloc"], [BASE + 5888, 65536 - 5888, "free"]]}),
        ("vmem", {"name": "dma_map", "size": 4096, "inuse": 1024}),
        ("segs", {"arena": "dma_map", "spans": [[BASE + 1792, 4096, False]],
                  "segs": [[BASE + 1792, 1024, "alloc"], [BASE + 2816, 3072, "free"]]}),
        ("pool", {"name": "pktbuf", "size": 256}),
        ("pages", {"pool": "pktbuf", "pages": [[BASE, 512, 2]]}),
        ("pool", {"name": "kmem-32", "size": 32}),
        ("pages", {"pool": "kmem-32", "pages": [[BASE + 512, 256, 7]]}),
        ("memmap", {"board": "rp2040",
                    "sram": [{"name": "SRAM0-3", "base": 0x20000000, "size": 0x40000},
                             {"name": "SRAM4", "base": 0x20040000, "size": 0x1000},
                             {"name": "SRAM5", "base": 0x20041000, "size": 0x1000},
                             {"name": "SRAM0-3 non-striped", "base": 0x21000000, "size": 0x40000,
                              "alias_of": "SRAM0-3", "banks": 4, "striped": False}],
                    "managed": {"base": BASE, "size": 65536, "real_address": False},
                    "peripherals": [{"name": "UART0", "base": 0x40034000, "size": 0x4000, "owner": "uart0"}],
                    "extents": {"peripherals": PERIPH, "sram": SRAM_EXT}}),
        ("extent", {"name": "periph", "start": 0x40000000, "end": 0x5FFFFFFF, "regions": PERIPH}),
        ("extent", {"name": "sram", "start": 0x20000000, "end": 0x20041FFF, "regions": SRAM_EXT}),
        ("end", {"records": 13, "heap_cost": 900, "ms": 3}),
    ]
    return st.Snapshot(records=recs)


def test_owners_of_segments():
    o = memmap.owners_of_segments(snapshot())
    assert [s[2] for s in o["kernel_map"]] == ["pool pktbuf", "pool kmem-32", "dma:uart0", "arena dma_map",
                                                 memmap.FREE]
    assert [s[2] for s in o["dma_map"]] == ["allocated", memmap.FREE]


@pytest.fixture
def saved(tmp_path):
    p = tmp_path / "snap.json"
    snapshot().save(p)
    return p


def test_svg_from_saved_snapshot_has_labels_and_addresses(saved, tmp_path):
    out = tmp_path / "map.svg"
    assert main(["map", "--from", str(saved), "-o", str(out), "-q"]) == 0
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for label in ("mpalloc memory map: rp2040", "SRAM0-3", "arena kernel_map", "arena dma_map", "pool pages",
                  "pool pktbuf", "pool kmem-32", "uart0", "uart0-dma", "dma:uart0", "extent periph",
                  "0x40034000", "0x20010000", "free", "managed window 0x20010000-0x2001ffff (64 KiB)"):
        assert label in svg, label


def test_png_from_saved_snapshot(saved, tmp_path):
    out = tmp_path / "map.png"
    summary = memmap.draw(st.Snapshot.load(saved), out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    assert w >= 1000 and h >= 500
    assert b"owners: allocated, arena dma_map, dma:uart0, pool kmem-32, pool pktbuf, uart0, uart0-dma" in data
    assert summary["panels"] == ["sram", "window", "extent"]


def test_alias_is_not_drawn_as_sram(saved, tmp_path):
    snap = st.Snapshot.load(saved)
    regs, aliases = memmap.sram_layout(snap)
    assert [r["name"] for r in regs] == ["SRAM0-3", "SRAM4", "SRAM5"]
    assert [a["name"] for a in aliases] == ["SRAM0-3 non-striped"]
    assert regs[0]["banks"] == 4 and regs[0]["striped"] is True  # bank layout from the profile
    summary = memmap.draw(snap, tmp_path / "m.svg")
    assert summary["aliases"] == ["SRAM0-3 non-striped"]
    svg = (tmp_path / "m.svg").read_text()
    # named once, in the title's alias line; never a box of its own, never an axis tick
    assert svg.count("SRAM0-3 non-striped") == 1
    assert "SRAM0-3 non-striped at 0x21000000 = SRAM0-3" in svg
    assert "SRAM: 264 KiB in 3 regions" in svg  # 256 + 4 + 4, the alias not counted
    assert ">0x21000000<" not in svg
    # the small banks are labelled with their addresses (outside, with a leader line)
    assert "SRAM4 0x20040000 4 KiB" in svg and "SRAM5 0x20041000 4 KiB" in svg
    assert "4 banks x 64 KiB, word-striped" in svg


def test_each_extent_map_drawn_once_unmapped_greyed(saved, tmp_path):
    snap = st.Snapshot.load(saved)
    assert list(memmap._extent_maps(snap)) == ["periph", "sram"]  # memmap's copies dropped
    summary = memmap.draw(snap, tmp_path / "m.svg")
    assert summary["extents"] == ["periph", "sram"]
    assert summary["rows"].count("extent periph") == 1 and "extent peripherals" not in summary["rows"]
    svg = (tmp_path / "m.svg").read_text()
    assert svg.count("extent periph") == 1
    assert "(unmapped)" not in summary["owners"]
    assert "0x40070000" not in svg  # the hole is a narrow grey cell, not a labelled claim
    assert "between claims, grey: unmapped, no device there" in svg
    assert "free hole (hatched): nobody holds it" in svg


def test_memmap_copy_of_a_different_map_is_kept():
    snap = snapshot()
    mm = snap.memmap
    mm["extents"]["irq"] = [[1, 2, "x"]]
    assert list(memmap._extent_maps(snap)) == ["periph", "sram", "irq"]


def test_dma_buffers_and_outside_arenas():
    recs = list(snapshot().records)
    mm = dict(recs[-4][1])
    assert recs[-4][0] == "memmap"
    mm["dma"] = [[BASE + 768, 1024, "uart0"]]
    recs[-4] = ("memmap", mm)
    recs.insert(1, ("segs", {"arena": "kernel_exec", "spans": [[0x20040000, 4096, False]],
                             "segs": [[0x20040000, 512, "alloc"], [0x20040200, 3584, "free"]]}))
    snap = st.Snapshot(records=recs)
    o = memmap.owners_of_segments(snap)
    assert [s[2] for s in o["kernel_map"]][:3] == ["pool pktbuf", "pool kmem-32", "DMA uart0"]
    assert memmap.owner_kind("DMA uart0") == "dma" and memmap.owner_kind("pool kmem-32") == "kmem"
    assert memmap.outside_arenas(snap) == [("kernel_exec", [(0x20040000, 4096)], 512)]


def test_bad_output_name_and_empty_snapshot(saved, tmp_path, capsys):
    assert main(["map", "--from", str(saved), "-o", str(tmp_path / "map.jpg")]) == 2
    assert ".png or .svg" in capsys.readouterr().err
    empty = tmp_path / "e.json"
    empty.write_text(json.dumps({"mps": 1, "records": [["begin", {}], ["end", {}]]}))
    with pytest.raises(ValueError, match="nothing|no memory map"):
        memmap.draw(st.Snapshot.load(empty), tmp_path / "e.png")


def test_unknown_board_without_memmap_draws_window_and_claims(tmp_path):
    """No memmap record and no profile for the board: the SRAM panel falls back to the
    SRAM extent map's claims around the window, on one scale."""
    recs = [(k, dict(d, board="nosuch") if k == "begin" else d) for k, d in snapshot().records if k != "memmap"]
    recs.insert(-1, ("extent", {"name": "nosuch sram", "start": 0x20000000, "end": 0x2003FFFF,
                                "regions": [[0x20000000, BASE - 1, "micropython"],
                                            [BASE, BASE + 65535, "mpalloc"]]}))
    snap = st.Snapshot(records=recs)
    assert memmap.micropython_regions(snap) == [("micropython", 0x20000000, BASE - 0x20000000)]
    summary = memmap.draw(snap, tmp_path / "u.svg")
    assert summary["rows"][:2] == ["MicroPython", "mpalloc"] and summary["aliases"] == []
    svg = (tmp_path / "u.svg").read_text()
    assert "micropython  64 KiB" in svg and "managed by mpalloc  64 KiB" in svg


def test_demo_picture_classes_banks_window_and_no_overlaps(tmp_path):
    # a snapshot the demo took on vboard:rp2040 (16 kmem classes, a pool, DMA buffers)
    snap = st.Snapshot.load(Path(__file__).parents[1] / "data" / "demo_snapshot_rp2040.json")
    out = tmp_path / "m.svg"
    s = memmap.draw(snap, out)
    assert s["overlaps"] == []
    assert "kmem by class" in s["rows"]
    svg = out.read_text()
    # every class is named in the breakdown row with its bytes (the colour is one for all)
    for cls, size in (("16 B", "256 B"), ("64 B", "512 B"), ("320 B", "6 KiB")):
        assert cls in svg and size in svg
    regs, _ = memmap.sram_layout(snap)
    assert memmap.bank_boundaries(regs) == [0x20040000, 0x20041000]
    assert "dashed line: bank boundary" in svg and "word-striped over its banks" in svg
    assert "mpalloc's window: a bytearray" in svg and "in the gc heap" in svg
    pal = memmap._Palette({"pool kmem-00016", "pool kmem-00320"}, set())
    assert pal("pool kmem-00016") == pal("pool kmem-00320") == memmap.C_KMEM
