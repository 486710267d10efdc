"""board.init() sizes its managed window from the free heap (issue #19): by
default the profile's managed.bytes capped at a quarter of the heap free once the
modules are in; init(window=N) takes N bytes, refused with the sizes when it
would leave the program less than a quarter. Checked on CPython (window_size's
arithmetic, nothing set up after a refusal) and on the MicroPython unix port
with a real gc heap (the window the board gets, the error it prints)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MP = ROOT / ".venv" / "bin" / "micropython"

from mpalloc import board  # noqa: E402


def test_default_is_the_profile_window_when_a_quarter_of_the_heap_holds_it():
    assert board.window_size(65536, 256, 1 << 20) == 65536
    assert board.window_size(65536, 256, None) == 65536      # no gc module: no cap


def test_default_is_a_quarter_of_the_free_heap_in_whole_pages():
    assert board.window_size(65536, 256, 100000) == 24832    # 100000 // 4 = 25000 -> 97 pages
    assert board.window_size(2048, 64, 4000) == 960


def test_explicit_window_within_three_quarters_of_the_free_heap():
    assert board.window_size(65536, 256, 100000, 40000) == 40192     # rounded up to pages
    assert board.window_size(131072, 256, 100000, 74752) == 74752    # 75000 is the most


def test_explicit_window_too_big_names_the_sizes():
    with pytest.raises(ValueError) as e:
        board.window_size(131072, 256, 100000, 76000)
    assert str(e.value) == ("board.init: a 76032-byte window does not fit: 100000 bytes of heap free, at most "
                            "75000 may go to the window (a quarter stays the program's)")
    with pytest.raises(ValueError, match=r"a 70144-byte window is larger than the profile's managed.bytes \(65536\)"):
        board.window_size(65536, 256, 1 << 20, 70000)
    with pytest.raises(ValueError, match=r"window must be an int of at least one page \(256 bytes\), not 'big'"):
        board.window_size(65536, 256, 1 << 20, "big")


def test_no_room_for_one_page():
    with pytest.raises(ValueError, match="900 bytes of heap free, a quarter is less than one 256-byte page"):
        board.window_size(65536, 256, 900)


def test_refused_window_sets_nothing_up():
    board.use({"name": "t", "page_size": 256, "managed": {"bytes": 65536, "virtual_base": 0x10000000}})
    with pytest.raises(ValueError, match="larger than the profile's managed.bytes"):
        board.init(window=1 << 20)
    assert board.booted() is False


def _unix_port(code, heap=280000, managed=65536):
    prof = "{'name': 't', 'page_size': 256, 'managed': {'bytes': %d, 'virtual_base': 0x10000000}}" % managed
    r = subprocess.run([str(MP), "-X", "heapsize=%d" % heap, "-c", "from mpalloc import board\nboard.use(%s)\n%s"
                        % (prof, code)], env={"MICROPYPATH": str(ROOT / "firmware")}, capture_output=True, text=True,
                       timeout=60)
    return r.stdout + r.stderr


def test_small_heap_gets_at_most_a_quarter_on_micropython():
    out = _unix_port("import gc\nfrom mpalloc import uvm_km, mem\ngc.collect()\nf = gc.mem_free()\nboard.init()\n"
                     "print('W', f, board.window[1], uvm_km.kernel_map is not None)\n")
    m = re.search(r"W (\d+) (\d+) True", out)
    assert m, out
    free, win = int(m.group(1)), int(m.group(2))
    assert free < 4 * 65536, "the heap must be small enough that a quarter is below 64 KiB: %d free" % free
    # a quarter, or half of that when the free heap is in pieces (compiled from source here)
    assert win % 256 == 0 and 1024 <= win <= free // 4 and win < 65536, (free, win)


def test_explicit_window_that_does_not_fit_on_micropython():
    out = _unix_port("try:\n board.init(window=300000)\nexcept ValueError as e:\n print('E', e)\n"
                     "print('booted', board.booted())\n", managed=1 << 20)
    assert re.search(r"E board.init: a 300032-byte window does not fit: \d+ bytes of heap free, at most \d+ may go "
                     r"to the window \(a quarter stays the program's\)", out), out
    assert "booted False" in out
