"""mpalloc.stats (device) -> @@mps stream -> host parser -> vmstat tables, on a known workload.

The workload (tests/host/data/stats_workload.py) runs on the real MicroPython unix
port and on CPython; every count in the tables is fixed by it.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mpalloc_host import profiles
from mpalloc_host import stats as st
from mpalloc_host import tables
from mpalloc_host.heaps import SUITES_VBOARD
from mpalloc_host.vboard import scaled_heap_bytes

ROOT = Path(__file__).resolve().parents[3]
FW = ROOT / "firmware"
MICROPYTHON = ROOT / ".venv" / "bin" / "micropython"
WORKLOAD = Path(__file__).parents[1] / "data" / "stats_workload.py"
# The virtual RP2040's heap: the board's heap in as many 64-bit words (the rule of
# vboard.scaled_heap_bytes), not a hand-picked size.
HEAP = "heapsize=%d" % scaled_heap_bytes(profiles.load("rp2040"), SUITES_VBOARD)


def run_device(script, runtime):
    """Run a script with the firmware importable; return its stdout."""
    env = dict(os.environ)
    if runtime == "micropython":
        if not MICROPYTHON.exists():
            pytest.fail("the MicroPython unix port is missing (.venv/bin/micropython): run make setup")
        env["MICROPYPATH"] = str(FW)
        cmd = [str(MICROPYTHON), "-X", HEAP, "-c", script] if "\n" in script else \
            [str(MICROPYTHON), "-X", HEAP, script]
    else:
        env["PYTHONPATH"] = str(FW)
        cmd = [sys.executable, "-c", script] if "\n" in script else [sys.executable, script]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


@pytest.fixture(scope="module", params=["micropython", "cpython"])
def snap(request):
    return st.parse(run_device(str(WORKLOAD), request.param))


def test_stream_is_complete_and_versioned(snap):
    assert snap.complete
    kinds = [k for k, _ in snap.records]
    assert kinds[0] == "begin" and kinds[-1] == "end"
    assert snap.end["records"] == len(snap.records)
    assert kinds.count("pool") == 3 and kinds.count("pool_cache") == 1 and kinds.count("extent") == 1
    assert not snap.errors


def test_vmstat_m_rows_match_the_workload_exactly(snap):
    rows, tot, summ = tables.pool_rows(snap)
    # pktbuf: 10 gets, items 0..7 put back, reclaim. With k items a page that is
    # ceil(10/k) pages requested, the floor(8/k) pages emptied by the puts released.
    k = snap.pool("pktbuf")["itemsperpage"]
    assert k == 256 // 64 - (1 if k == 3 else 0)  # 4 a page (3 if the pool keeps align slack)
    req, rel = -(-10 // k), 8 // k
    # Name Size Requests Fail Releases Pgreq Pgrel Npage Hiwat Minpg Maxpg Idle
    assert rows == [
        ["pktbuf", 64, 10, 0, 8, req, rel, req - rel, req, 0, "inf", 0],
        ["rxbuf", 48, 7, 0, 0, 2, 0, 2, 2, 0, "inf", 0],
    ]
    assert (tot["nget"], tot["nfail"], tot["nput"], tot["npagealloc"], tot["npagefree"], tot["npages"]) == \
        (17, 0, 8, req + 2, rel, req - rel + 2)
    # in use = 2 x 64 + 7 x 48 bytes; allocated = the pages of 256 bytes
    assert summ["inuse"] == 464 and summ["total"] == (req - rel + 2) * 256
    assert round(summ["util"], 1) == round(100.0 * 464 / ((req - rel + 2) * 256), 1)


def test_unused_pool_only_with_verbose(snap):
    names = [r[0] for r in tables.pool_rows(snap, verbose=True)[0]]
    assert names == ["pktbuf", "rxbuf", "unused"]


def test_wide_pool_columns(snap):
    rows, _, _ = tables.pool_rows(snap, wide=True)
    k = snap.pool("pktbuf")["itemsperpage"]
    npages = -(-10 // k) - 8 // k
    # ... + InUse Avail PageSz Util
    assert rows[0][12:] == [2, npages * k, 256, "%.1f" % (100.0 * 128 / (npages * 256))]
    text = tables.render_text(snap, wide=True)
    for col in ("InUse", "Avail", "PageSz", "Util"):
        assert col in text


def test_vmstat_C_rows(snap):
    # Name Spin GrpSz Full Emty PoolLayer CacheLayer Hit% CpuLayer Hit%
    # 7 misses went to the pool; 14 magazine hits + 7 misses on the CPU layer
    assert tables.cache_rows(snap) == [["rxbuf", 0, 15, 0, 0, 7, 7, "0.0", 21, "66.7"]]
    assert tables.cpu_rows(snap) == [["rxbuf", 0, 14, 7, 14, 7, "66.7"]]


def test_extent_rows_with_owners(snap):
    assert tables.extent_rows(snap) == [
        ["periph", "0x40034000", "0x40037fff", 0x4000, "uart0"],
        ["periph", "0x40050000", "0x40050fff", 0x1000, "pwm"],
    ]


def test_unmapped_holes_only_with_verbose():
    snap = st.Snapshot(records=[
        ("begin", {"v": 1, "board": "rp2040"}),
        ("extent", {"name": "periph", "start": 0x40000000, "end": 0x5FFFFFFF,
                    "regions": [[0x40034000, 0x40037FFF, "uart0"], [0x40070000, 0x4FFFFFFF, "(unmapped)"],
                                [0x50000000, 0x50000FFF, "micropython"]]}),
        ("end", {"records": 3})])
    assert [r[4] for r in tables.extent_rows(snap)] == ["uart0", "micropython"]
    assert [r[4] for r in tables.extent_rows(snap, verbose=True)] == ["uart0", "(unmapped)", "micropython"]
    assert tables.hidden_unmapped(snap) == (1, 0x50000000 - 0x40070000) == (1, 267976704)
    text = tables.render_text(snap)
    assert "(unmapped)" not in text and "1 unmapped hole (255.6 MiB" in text and "-v shows them" in text
    text = tables.render_text(snap, verbose=True)
    assert "(unmapped)" in text and "-v shows them" not in text


def test_rendered_tables_carry_netbsd_headers(snap):
    text = tables.render_text(snap)
    assert "Memory resource pool statistics" in text
    assert "Pool cache statistics" in text
    for col in ("Name", "Size", "Requests", "Fail", "Releases", "Pgreq", "Pgrel", "Npage", "Hiwat",
                "Minpg", "Maxpg", "Idle", "Spin", "GrpSz", "Full", "Emty", "PoolLayer", "CacheLayer",
                "CpuLayer", "Hit%", "Totals"):
        assert col in text, col
    _, _, summ = tables.pool_rows(snap)
    assert "In use 464 B, total allocated %d B; utilization %.1f%%" % (summ["total"], summ["util"]) in text


def test_segments_left_out_on_request():
    out = run_device(WORKLOAD.read_text().replace("stats.dump()", "stats.dump(False)"), "micropython")
    s = st.parse(out)
    assert s.of("pages") == [] and len(s.pools) == 3


def test_snapshot_reads_only_what_is_imported_and_moves_no_counter():
    code = (
        "import sys\n"
        "from mpalloc import extent, stats\n"
        "ex = extent.extent_create('irq', 0, 31, None, 0, 0)\n"
        "extent.extent_alloc_region(ex, 3, 1, 0, owner='timer')\n"
        "stats.dump()\n"
        "stats.dump()\n"
        "print('loaded', sorted(k for k in sys.modules if k.startswith('mpalloc')))\n"
    )
    out = run_device(code, "micropython")
    first, second = out.split("@@mps 1 end", 1)
    a = st.parse(first + "@@mps 1 end" + second.split("\n", 1)[0])
    b = st.parse(second.split("\n", 1)[1])
    assert [k for k, _ in a.records] == ["begin", "extent", "end"]
    assert a.extents == b.extents
    loaded = out.strip().splitlines()[-1]
    for m in ("vmem", "pool", "pool_cache", "kmem", "uvm_km", "kmalloc", "board"):
        assert "'mpalloc.%s'" % m not in loaded
    assert a.end["heap_cost"] > 0  # MicroPython reports what the snapshot cost


def test_a_failing_reader_gives_an_error_record_and_the_stream_goes_on():
    code = (
        "from mpalloc import extent, stats\n"
        "ex = extent.extent_create('irq', 0, 31, None, 0, 0)\n"
        "def boom(ex):\n    raise ValueError('broken')\n"
        "extent.extent_regions = boom\n"
        "stats.dump()\n"
    )
    s = st.parse(run_device(code, "micropython"))
    assert s.errors == [{"kind": "extent", "error": "ValueError: broken"}]
    assert s.complete


def test_encoder_round_trips_through_json():
    from importlib import util

    spec = util.spec_from_file_location("_mps_enc", FW / "mpalloc" / "stats.py")
    m = util.module_from_spec(spec)
    spec.loader.exec_module(m)
    v = {"s": 'a"b\\c\n\u00e9', "l": [1, -2, (3, 4)], "t": True, "f": False, "n": None, "big": 2**40,
         "d": {"x": []}, "b": b"raw"}
    assert json.loads(m.tojson(v)) == {**v, "l": [1, -2, [3, 4]], "b": "raw"}


def test_parser_rejects_bad_streams():
    with pytest.raises(st.StreamError, match="no @@mps lines"):
        st.parse("hello\n")
    with pytest.raises(st.StreamError, match="version 2"):
        st.parse('@@mps 2 begin {}\n')
    with pytest.raises(st.StreamError, match="bad JSON"):
        st.parse('@@mps 1 begin {"a":\n')
    with pytest.raises(st.StreamError, match="cut short"):
        st.parse('@@mps 1 begin {}\n')
    s = st.parse('log line\r\n>>> @@mps 1 begin {}\r\n@@mps 1 end {"records": 2}\r\n')
    assert s.log == ["log line"] and s.complete


def test_snapshot_file_round_trip(snap, tmp_path):
    p = tmp_path / "s.json"
    snap.save(p)
    again = st.Snapshot.load(p)
    assert sorted(again.records, key=repr) == sorted(snap.records, key=repr)
    for kind in {k for k, _ in snap.records}:
        assert again.of(kind) == snap.of(kind)  # each kind in stream order
    assert again.records[0][0] == "begin" and again.records[-1][0] == "end"
    assert tables.pool_rows(again) == tables.pool_rows(snap)
    data = json.loads(p.read_text())  # keyed by kind, versioned: what jq users read
    assert data["format"] == 2 and data["mps"] == 1 and isinstance(data["records"]["pool"], list)
    p.write_text(json.dumps({"mps": 1, "records": [[k, d] for k, d in snap.records]}))  # format 1 still read
    assert st.Snapshot.load(p).records == snap.records
    p.write_text('{"mps": 9, "records": []}')
    with pytest.raises(st.StreamError, match="version 9"):
        st.Snapshot.load(p)
    with pytest.raises(st.StreamError, match="no such file"):
        st.Snapshot.load(tmp_path / "missing.json")


def test_own_heap_beside_what_it_manages():
    # the gc heap split: the managed window (a bytearray in the heap), what of it is
    # handed out, the rest of the used heap, what is free (begin record's figures)
    out = ("@@mps 1 begin {\"v\":1,\"heap_free\":97280,\"heap_alloc\":178688}\n"
           "@@mps 1 vmem {\"name\":\"kernel_map\",\"size\":47104,\"inuse\":1024}\n"
           "@@mps 1 memmap {\"managed\":{\"base\":536936448,\"size\":47104,\"real_address\":false}}\n"
           "@@mps 1 end {\"records\":4}\n")
    snap = st.parse(out)
    assert tables.own_heap_rows(snap) == [
        ["managed window (what the allocators manage)", 47104, "17.1"],
        ["  of it handed out now (kernel_map in use)", 1024, "0.4"],
        ["code, metadata and the program (used - window)", 131584, "47.7"],
        ["free for the program", 97280, "35.3"]]
    assert "mpalloc's own heap beside what it manages" in tables.render_text(snap)
    assert tables.own_heap_rows(st.parse("@@mps 1 begin {\"v\":1}\n@@mps 1 end {\"records\":2}\n")) == []
