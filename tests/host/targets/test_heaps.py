"""Honest heaps (issue #19): wasm32:<board> and vboard:<board> give a program the
board's heap plus what their runtime adds to mpalloc's core (heaps.py), the
webassembly port no longer grows its heap on demand, gc.mem_free() there is the
free heap (not 128 MiB more), and `mpalloc boards` lists each target's heap."""
import argparse

import pytest

from runtimes import open_or_fail
from mpalloc_host import cmd_boards, heaps, profiles
from mpalloc_host.board import Board
from mpalloc_host.errors import BoardExecError


def test_targets_get_the_board_heap_plus_their_runtime_extra():
    rp = profiles.load("rp2040")
    assert heaps.board_heap(rp) == 233024
    assert heaps.target_heap("wasm32", rp) == 233024 + heaps.EXTRA["wasm32"]
    assert heaps.target_heap("vboard", rp) == 233024 + heaps.EXTRA["vboard"]
    assert heaps.target_heap("emu", rp) == 233024
    assert heaps.target_heap("vboard", profiles.load("unix")) == 196608   # 64-bit: the host itself


def test_boards_lists_each_targets_heap(capsys):
    assert cmd_boards.run(argparse.Namespace(json=False)) == 0
    out = capsys.readouterr().out.splitlines()
    head = out[0].split()
    assert head[3:6] == ["heap", "B", "wasm32"], out[0]
    esp = next(ln.split() for ln in out if ln.startswith("esp32 "))
    assert "111936" in esp and str(111936 + heaps.EXTRA["wasm32"]) in esp and str(111936 + heaps.EXTRA["vboard"]) in esp


@pytest.mark.parametrize("spec", ["wasm32:esp32", "vboard:esp32"])
def test_target_heap_is_the_listed_one_and_does_not_grow(spec):
    want = heaps.target_heap(spec.split(":")[0], profiles.load("esp32"))
    t = open_or_fail(spec)
    with t:
        b = Board(t)
        try:
            _check(b, want)
        finally:
            b.close()


def _check(b, want):
    total = b.info["heap_total"]
    assert abs(total - want) <= want // 100, (total, want)       # the gc's own rounding only
    assert b.info["heap_free"] <= total
    # more than the whole heap: a MemoryError, as on the board (the port used to grow its heap)
    with pytest.raises(BoardExecError, match="MemoryError"):
        b.exec("x = bytearray(%d)" % (total + 4096))
    free = b.eval("__import__('gc').mem_free()")
    assert 0 < free <= total


def test_heap_factor_scales_every_target_and_refuses_nonsense(monkeypatch):
    rp = profiles.load("rp2040")
    monkeypatch.setenv("MPALLOC_HEAP_FACTOR", "2")
    assert heaps.target_heap("vboard", rp) == 2 * (233024 + heaps.EXTRA["vboard"])
    monkeypatch.setenv("MPALLOC_HEAP_FACTOR", "lots")
    with pytest.raises(ValueError, match=r"MPALLOC_HEAP_FACTOR='lots': must be a number from 0.25 to 64"):
        heaps.target_heap("wasm32", rp)


def test_heap_factor_per_kind_and_grow(monkeypatch):
    rp = profiles.load("rp2040")
    monkeypatch.setenv("MPALLOC_HEAP_FACTOR", "vboard:2,wasm32:grow")
    assert heaps.target_heap("vboard", rp) == 2 * (233024 + heaps.EXTRA["vboard"])
    assert heaps.target_heap("wasm32", rp) == 233024 and heaps.grows("wasm32")
    monkeypatch.setenv("MPALLOC_HEAP_FACTOR", "vboard:3")
    assert not heaps.grows("wasm32") and heaps.target_heap("wasm32", rp) == 233024


def test_wasm32_heap_fills_with_one_commands_garbage_as_documented():
    """The webassembly port collects only between REPL commands: garbage of one
    command counts against the capped heap; the next command has it back."""
    t = open_or_fail("wasm32:rp2040")
    with t:
        b = Board(t)
        try:
            with pytest.raises(BoardExecError, match="MemoryError"):
                b.exec("for i in range(2000):\n b = bytearray(1000)\n")
            assert b.eval("__import__('gc').mem_free()") > 200000
        finally:
            b.close()
