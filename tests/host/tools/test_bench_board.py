"""The board-sized bench's figures issue #19/#20/#22 ask for (bench/board_report.py,
bench/suite.py's board_footprint, tests/bench/bench_board.py): bytearray(64) on a
fresh heap beside the bench heap's and each allocator's ratio to both, the
bytecode path beside the native one, the pool_cache hit per core, mpalloc's own
heap. Report tests on made-up result documents; the script on the unix port."""
import os
import subprocess

from mpalloc_host import ROOT
from mpalloc_host.bench import board_report, runner, suite
from mpalloc_host.footprint import FootprintError


def doc(**mp):
    figs = {"env.version": "1.28.0", "env.platform": "rp2", "env.word_bits": 32, "calib.cu_ns": 6900.0,
            "board.mode": "sio", "board.hit_path": "native", "board.window_bytes": 32512,
            "board.native_paths": "pool_cache=native",
            "board.pool_cache_hit.cu": 3.0, "board.pool_cache_hit.cycles": 2587.5,
            "board.kmem64.cu": 27.0,
            "board.bytearray64.cu": 15.0, "board.bytearray64.cycles": 12937.5,
            "board.bytearray64_fresh.cu": 2.5, "board.bytearray64_fresh.cycles": 2156.25}
    figs.update(mp)
    return {"schema": 1, "meta": {"port": "emu:rp2040", "kind": "board", "mhz": 125, "date": "d", "seconds": 40.0,
                                  "machine": {"cpu": "x", "cores": 2}, "commit": "abc1234"},
            "runs": {"micropython": figs}, "notes": [], "goals": []}


def _row(md, label_start):
    (line,) = [ln for ln in md.splitlines() if ln.startswith("| " + label_start)]
    return [c.strip() for c in line.strip("|").split("|")]


def test_ratios_to_bytearray_on_both_heaps():
    md = board_report.markdown(doc())
    r = _row(md, "pool_cache_get + pool_cache_put")
    assert r[1:6] == ["3", "-", "2,588", "0.20x", "1.20x"]       # 3/15 bench heap, 3/2.5 fresh heap
    assert _row(md, "kmem_alloc")[4:6] == ["1.80x", "10.80x"]
    assert _row(md, "pool_get + pool_put")[4:6] == ["-", "-"]     # not measured: dashes, no ratio made up
    fresh = _row(md, "bytearray(64) on a fresh heap")
    assert fresh[1] == "2.5" and fresh[3] == "2,156" and fresh[4:6] == ["-", "-"]
    assert "bytecode path: cu" not in md                         # no bytecode run: no such columns
    assert "(no native path: one column)" in md and "Per core" not in md


def test_bytecode_columns_beside_native():
    md = board_report.markdown(doc(**{"board.pool_cache_hit.bytecode.cu": 5.0,
                                      "board.pool_cache_hit.bytecode.cycles": 4312.5,
                                      "board.bytecode_paths": "pool_cache=bytecode"}))
    assert "| bytecode path: cu | bytecode: cycles / op | bytecode: x bytearray(64) fresh |" in md
    r = _row(md, "pool_cache_get + pool_cache_put")
    assert r[6:9] == ["5", "4,312", "2.00x"]
    assert _row(md, "kmem_alloc")[6:9] == ["-", "-", "-"]
    assert "pool_cache=native; the bytecode columns ran after native.off(): pool_cache=bytecode" in md


def test_per_core_table_and_footprint():
    figs = {"board.pool_cache_hit.%s.cycles" % k: c for k, c in
            (("core0", 2600.0), ("core1", 2700.0), ("both_core0", 3000.0), ("both_core1", 3100.0))}
    figs.update({"board.pool_cache_hit.core0.cu": 3.01, "footprint.code": 95000, "footprint.setup": 4100,
                 "footprint.window": 32512, "footprint.free": 84000, "footprint.total": 229600})
    md = board_report.markdown(doc(**figs))
    assert "| pool_cache hit, per core (per call: a pair's time / 2) | cycles / op | cu | x bytearray(64), fresh heap |" in md
    assert _row(md, "core 0 alone") == ["core 0 alone (core 1 idle)", "2,600", "3.01", "1.21x"]
    assert _row(md, "core 1, both cores churning") == ["core 1, both cores churning", "3,100", "-", "1.44x"]
    assert ("code 95,000 B (the core modules imported), set-up 4,100 B (board.init() beyond the window: intr, "
            "kernel_map, maps), managed window 32,512 B; 84,000 B of 229,600 B left free") in md


class _FakeBoard:
    name = "emu:rp2040"
    caps = {"soft_reset"}

    class delivery:
        @staticmethod
        def adapt(code):
            return code

    def __init__(self, outputs):
        self.outputs = list(outputs)
        self.resets = 0

    def soft_reset(self):
        self.resets += 1

    def exec(self, code, timeout=None):
        return self.outputs.pop(0)


def test_board_footprint_reuses_mpalloc_footprint():
    fp = {"total": 229600, "base": 2000, "code": 95000, "setup": 4100, "window": 32512, "free": 84000,
          "platform": "rp2"}
    b = _FakeBoard(["", "", "@@fp {'code': 95000}\n", "@@fp %r\n" % fp])
    notes = []
    got = suite.board_footprint(b, notes)
    assert b.resets == 1 and notes == []
    assert got == {"footprint.%s" % k: v for k, v in fp.items()}


def test_board_footprint_failure_is_a_note_not_a_crash(monkeypatch):
    from mpalloc_host import footprint

    def boom(board):
        raise FootprintError("emu:rp2040: measuring mpalloc's footprint failed: MemoryError")

    monkeypatch.setattr(footprint, "measure", boom)
    notes = []
    assert suite.board_footprint(_FakeBoard([]), notes) == {}
    assert notes == ["emu:rp2040: measuring mpalloc's footprint failed: MemoryError"]


def test_bench_board_script_fresh_heap_and_bytecode_round_on_the_unix_port():
    # the script itself (figures not judged: the unix port's time is the host's)
    env = dict(os.environ, MICROPYPATH="%s:%s" % (ROOT / "firmware", runner.BENCH_DIR))
    p = subprocess.run([runner.micropython_exe(), "-X", "heapsize=400000", str(runner.BENCH_DIR / "bench_board.py"),
                        "quick=1", "mhz=125", "batch_us=1000"], capture_output=True, text=True, timeout=180, env=env,
                       cwd=str(ROOT))
    assert p.returncode == 0, p.stdout[-800:] + p.stderr
    r = runner.parse(p.stdout)
    # (one run of the script for both: the report's rows, then the fresh heap and bytecode round)
    for key, _ in board_report.ROWS:   # (a cheap pair's median may dip under noise: present, a number)
        assert all(isinstance(r["board.%s.%s" % (key, f)], (int, float)) for f in ("cu", "cycles")), (key, r)
    for key in ("pool_get_put", "kmem64", "vmem"):
        assert r["board.%s.cu" % key] > 0, (key, r)
    assert r["board.pool_cache_hit.heap_bytes_per_op"] == 0 and r["board.pool_cache_hit.heap_locked_ok"] is True
    assert r["board.window_bytes"] > 0 and r["board.free_after_init"] < r["board.free_at_start"]
    assert isinstance(r["board.bytearray64_fresh.cu"], (int, float))
    out = p.stdout.splitlines()
    # measured before mpalloc's first import: its line comes before the window's
    assert out.index([ln for ln in out if "board.bytearray64_fresh.cu " in ln][0]) < \
        out.index([ln for ln in out if "board.window_bytes" in ln][0])
    paths = dict(kv.split("=") for kv in r["board.native_paths"].split(","))
    assert paths.get("pool_cache") in ("native", "bytecode")
    if "native" in paths.values():
        # the bytecode round: every allocator again after native.off(), then native.on()
        assert set(dict(kv.split("=") for kv in r["board.bytecode_paths"].split(",")).values()) == {"bytecode"}
        native = {k for k, v in paths.items() if v == "native"}
        for key, uses in (("pool_cache_hit", {"pool_cache"}), ("pool_get_put", {"pool"}), ("vmem", {"vmem"})):
            # measured again exactly where a layer it runs through has native code
            assert ("board.%s.bytecode.cu" % key in r) == bool(uses & native), (key, paths, r)
        if "pool_cache" in native:
            assert r["board.pool_cache_hit.bytecode.heap_bytes_per_op"] == 0
    # no second core running Python on the unix port (MODE_THREAD): no per-core figures
    assert not any(k.startswith("board.pool_cache_hit.core") for k in r)
