"""`mpalloc footprint`: mpalloc's own heap on a board, measured on wasm32 with
the Pico's heap. The parts (before mpalloc, core code, set-up, window, free)
add up to the whole gc pool, the window is what board.init() took, and the
report names each part."""
import json
import subprocess

from runtimes import MPALLOC
from mpalloc_host import cmd_footprint, heaps, profiles


def test_footprint_parts_add_up_to_the_heap():
    r = subprocess.run([str(MPALLOC), "footprint", "--port", "wasm32:rp2040", "--json"],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    f = json.loads(r.stdout.strip().splitlines()[-1])
    want = heaps.target_heap("wasm32", profiles.load("rp2040"))
    assert abs(f["total"] - want) <= want // 100, f
    assert f["base"] + f["code"] + f["setup"] + f["window"] + f["free"] == f["total"], f
    assert f["mode"] == ".mpy" and f["platform"] == "webassembly"
    assert 20000 < f["code"] < f["total"] // 2, f        # eight modules of bytecode
    assert f["window"] % 256 == 0 and 0 < f["window"] <= 65536, f
    assert f["free"] > 0, f


def test_footprint_report_names_each_part():
    f = {"total": 200000, "base": 1000, "code": 90000, "setup": 20000, "window": 32768, "free": 56232}
    text = "\n".join(cmd_footprint.lines("wasm32:rp2040", ".mpy", f))
    assert "wasm32:rp2040: mpalloc's heap (.mpy)" in text
    assert "core code (8 modules)           90,000 B  45.0 %" in text
    assert "managed window                  32,768 B  16.4 %   what the allocators manage" in text
    assert "free for the program            56,232 B  28.1 %" in text
