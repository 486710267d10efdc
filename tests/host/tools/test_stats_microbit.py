"""`mpalloc stats` and `mpalloc map` against the real micro:bit firmware in qemu
(MicroPython 1.9.2, 10 KB heap): no allocator fits there, so they show the board's
live gc heap and which allocators do not fit (host_tools/mpalloc_host/stats_flat.py).
A missing qemu or firmware is a skip here and a failure with CI=true."""
import json
import os
import subprocess
from pathlib import Path

from runtimes import MPALLOC, missing, require_tool

FW = Path(os.environ.get("MPALLOC_MICROBIT_FIRMWARE") or "/usr/share/firmware-microbit-micropython/firmware.hex")


def _need_qemu():
    require_tool(os.environ.get("MPALLOC_QEMU") or "qemu-system-arm", "qemu-system-arm")
    if not FW.is_file():
        missing("micro:bit firmware %s not found (Debian package firmware-microbit-micropython)" % FW)


def _mpalloc(*argv):
    r = subprocess.run([str(MPALLOC)] + list(argv), capture_output=True, text=True, timeout=240,
                       env=dict(os.environ, COLUMNS="200"))
    assert r.returncode == 0, "mpalloc %s: exit %d\n%s\n%s" % (" ".join(argv), r.returncode, r.stdout, r.stderr)
    return r.stdout


def test_stats_microbit_heap_and_fit():
    _need_qemu()
    snap = json.loads(_mpalloc("stats", "--port", "qemu:microbit", "--json"))
    recs = {k: lst[-1] for k, lst in snap["records"].items()}
    assert list(snap["records"])[0] == "begin" and list(snap["records"])[-1] == "end"
    heap = recs["heap"]
    assert heap["platform"] == "microbit"
    assert heap["version"].startswith("micropython 1.9")
    assert 8000 <= heap["total"] <= 10240
    assert heap["free"] + heap["alloc"] == heap["total"] and 0 < heap["free"] < heap["total"]
    fit = recs["fit"]
    assert fit["heap_free"] == heap["free"]
    by = {a["module"]: a for a in fit["allocators"]}
    assert not by["pool"]["fits"] and by["pool"]["need"] > heap["free"]
    assert by["pool"]["modules"]["pool"] > 8000  # pool's own shaken source
    text = _mpalloc("stats", "--port", "qemu:microbit")
    assert "MicroPython gc heap" in text and "microbit" in text
    line = [ln for ln in text.splitlines() if "do not fit" in ln]
    assert line and "pool %d B" % by["pool"]["source"] in line[0], text
    assert str(heap["total"]) in text


def test_map_microbit(tmp_path):
    _need_qemu()
    out = tmp_path / "mb.svg"
    snap = tmp_path / "mb.json"
    text = _mpalloc("map", "--port", "qemu:microbit", "-o", str(out), "--save", str(snap), "-q")
    assert "memory map of microbit" in text and "SRAM" in text
    svg = out.read_text()
    assert "SRAM: 16 KiB" in svg
    heap = json.loads(snap.read_text())["records"]["heap"][-1]
    from mpalloc_host.memmap import _size

    assert "gc heap as the board reports it now" in svg and ("of %s" % _size(heap["total"])) in svg
