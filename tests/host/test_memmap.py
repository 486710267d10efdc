"""The memory-map picture is drawn from a saved snapshot, off-line (PNG and SVG)."""
import json
import struct

import pytest

from mpalloc_host import memmap
from mpalloc_host import stats as st
from mpalloc_host.cli import main

BASE = 0x20010000


def snapshot():
    """A snapshot as the board streams it: kernel_map with a submap, two pools' pages,
    a DMA claim in the SRAM extent and two peripheral owners."""
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
                             {"name": "SRAM5", "base": 0x20041000, "size": 0x1000}],
                    "managed": {"base": BASE, "size": 65536, "real": False}}),
        ("extent", {"name": "periph", "start": 0x40000000, "end": 0x5FFFFFFF,
                    "regions": [[0x40034000, 0x40037FFF, "uart0"], [0x50000000, 0x50000FFF, "uart0-dma"]]}),
        ("extent", {"name": "sram", "start": 0x20000000, "end": 0x20041FFF,
                    "regions": [[BASE + 768, BASE + 1791, "dma:uart0"]]}),
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


def test_bad_output_name_and_empty_snapshot(saved, tmp_path, capsys):
    assert main(["map", "--from", str(saved), "-o", str(tmp_path / "map.jpg")]) == 2
    assert ".png or .svg" in capsys.readouterr().err
    empty = tmp_path / "e.json"
    empty.write_text(json.dumps({"mps": 1, "records": [["begin", {}], ["end", {}]]}))
    with pytest.raises(ValueError, match="nothing|no memory map"):
        memmap.draw(st.Snapshot.load(empty), tmp_path / "e.png")
