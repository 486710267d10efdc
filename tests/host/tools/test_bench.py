"""The benchmark suite's plumbing and reports (issue #8). Nothing here is timed:
speed goals are figures in BENCHMARKS.md, not assertions."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mpalloc_host.bench import goals, report, runner, suite

ROOT = Path(__file__).resolve().parents[3]


def doc_with(mp, cp=None):
    d = {"schema": 1, "meta": {"date": "2026-01-01 00:00 UTC", "port": "vboard:rp2040", "board": "rp2040",
                               "quick": True, "seconds": 1.0, "machine": {"cpu": "x", "cores": 2}},
         "runs": {"micropython": mp, "cpython": cp or {}}, "notes": ["a note"]}
    d["goals"] = goals.evaluate(d)
    return d


FIGS = {
    "env.impl": "micropython", "env.version": "1.29.0", "env.word_bits": 64, "calib.cu_ns": 40.0,
    "up.magsize": 15, "up.depot_bound": 1 / 15, "thread.depot_bound": 1 / 15,
    "up.pool_cache_hit.cu": 3.5, "thread.pool_cache_hit.cu": 4.5,
    "up.pool_cache_hit.heap_bytes_per_op": 0, "up.pool_cache_hit.garbage_bytes_per_op": 0,
    "up.pool_cache_hit.heap_locked_ok": True, "up.pool_cache_hit.depot_per_op": 0,
    "up.burst_k60.depot_per_op": 1 / 30, "thread.burst_k16.depot_per_op": 0.1,
    "up.pool_get_put.heap_bytes_per_op": 12.5,
    "vmem.instant.H16.cu": 60.0, "vmem.instant.H256.cu": 62.0, "vmem.instant.H4096.cu": 63.0,
    "vmem.instant.H16.maxsteps": 3, "vmem.instant.H4096.maxsteps": 3,
    "firstfit.H16.cu": 50.0, "firstfit.H256.cu": 500.0, "firstfit.H4096.cu": 5000.0,
    "vmem.small.segment_over_qcache": 2.0, "vmem.small.qcache.seglist_share": 0.0004,
    "frag.instant.utilisation": 0.9, "frag.gcheap.utilisation": 0.85, "frag.best.utilisation": 0.95,
    "kmem.error": "ImportError:no_vmem",
}


def by_id(rows, gid, text=None):
    return [r for r in rows if r["id"] == gid and (text is None or text in r["goal"])][0]


def test_parse_lines_and_values():
    out = "noise\n@@bench a.cu 3.5\n@@bench b.ok True\n@@bench c.n 12\n@@bench d None\n@@bench e some_word\n"
    assert runner.parse(out) == {"a.cu": 3.5, "b.ok": True, "c.n": 12, "d": None, "e": "some_word"}


def test_goals_met_and_not_met():
    rows = doc_with(dict(FIGS))["goals"]
    assert by_id(rows, "G1u")["met"] is True and by_id(rows, "G1u")["stretch_met"] is False
    assert by_id(rows, "G1t")["met"] is False
    assert by_id(rows, "G1t")["miss_factor"] == pytest.approx(4.5 / 4)
    assert by_id(rows, "G2", "pool_cache")["met"] is True
    assert by_id(rows, "G2", ", pool")["met"] is False  # 12.5 bytes per op
    assert by_id(rows, "G2", "kmem")["met"] is None  # not measured is not "met"
    assert by_id(rows, "G4")["value"] == pytest.approx(63 / 60)
    assert by_id(rows, "G4f")["value"] == pytest.approx(100.0)
    assert by_id(rows, "G5")["met"] is False
    assert by_id(rows, "G6")["met"] is True
    assert by_id(rows, "G7")["met"] is True
    assert by_id(rows, "G7g")["value"] == pytest.approx(5.0) and by_id(rows, "G7g")["met"] is False
    g8 = by_id(rows, "G8")
    assert g8["value"] == pytest.approx(1.5) and g8["met"] is False and "thread.burst_k16" in g8["detail"]


def test_repeated_job_is_merged_by_median_and_the_goal_shows_every_process():
    each = [{"up.pool_cache_hit.cu": 4.3, "up.pool_cache_hit.cu_p25": 4.1, "up.magsize": 15, "env.impl": "micropython"},
            {"up.pool_cache_hit.cu": 3.8, "up.pool_cache_hit.cu_p25": 3.6, "up.magsize": 15, "env.impl": "micropython"},
            {"up.pool_cache_hit.cu": 3.9, "up.pool_cache_hit.cu_p25": 3.7, "up.magsize": 15, "env.impl": "micropython"}]
    m = suite.merge_runs(each)
    assert m["up.pool_cache_hit.cu"] == 3.9 and m["up.pool_cache_hit.cu_p25"] == 3.7
    assert m["up.pool_cache_hit.cu_runs"] == [4.3, 3.8, 3.9]
    assert m["up.magsize"] == 15 and m["env.impl"] == "micropython"
    assert suite.merge_runs(each[:1]) == each[0]
    assert suite.merge_runs(each[:2])["up.pool_cache_hit.cu"] == pytest.approx(4.05)
    g1 = by_id(doc_with(dict(FIGS, **m))["goals"], "G1u")
    assert g1["value"] == 3.9 and g1["met"] is True
    assert g1["detail"].startswith("median of 3 processes (4.3, 3.8, 3.9)")
    # a figure only some runs produced is not a median of fewer runs: the last run's stands
    m2 = suite.merge_runs([{"a.cu": 1.0}, {"a.cu": 2.0}, {"b": 1}])
    assert m2["a.cu"] == 2.0 and "a.cu_runs" not in m2
    assert [j[3].get("repeat") for j in suite.jobs() if "part=pool" in j[2]] == [3]
    assert [j[3].get("repeat") for j in suite.jobs(quick=True) if "part=pool" in j[2]] == [1]


def test_memory_goals_of_issue_4():
    figs = dict(FIGS, **{"pool.meta.item_bytes": 2.6, "pool.meta.page_bytes": 40.0, "pool.meta.pagesz": 256,
                         "pool.meta.pages": 48, "pool.meta.s8.bytes_per_item": 4.75,
                         "pool.meta.s128.bytes_per_item": 34.7, "kmem.waste_uniform_1024": 0.131})
    rows = doc_with(figs)["goals"]
    g9 = by_id(rows, "G9")
    assert g9["value"] == pytest.approx(2.6 / 8) and g9["met"] is True
    # the page table's share is shown beside it: (2.6 + 40 / 8) / 8 words at 8 items a page
    assert "40 B" in g9["detail"] and "0.95 words per item at 8 items" in g9["detail"]
    assert g9["detail"].endswith("8 B: 4.75, 128 B: 34.7 B")
    g9_32 = by_id(doc_with(dict(figs, **{"env.word_bits": 32}))["goals"], "G9")
    assert g9_32["value"] == pytest.approx(2.6 / 4)
    g10 = by_id(rows, "G10")
    assert g10["value"] == pytest.approx(0.131) and g10["met"] is False
    sk = by_id(doc_with(dict(FIGS, **{"pool.meta.skipped": "gc_frees_nothing"}))["goals"], "G9")
    assert sk["met"] is None and sk["detail"] == "gc frees nothing"


def test_markdown_has_run_facts_goals_and_problems():
    md = report.markdown(doc_with(dict(FIGS)))
    assert md.startswith("# Benchmarks")
    assert "2026-01-01" in md and "1.29.0" in md and "vboard:rp2040" in md
    assert "| G1t | pool_cache magazine hit" in md and "NOT met" in md
    assert "not measured" in md  # kmem row
    assert "kmem.error" in md and "a note" in md
    assert "docs/bench-cost.png" in md
    assert "## Method" in md


def test_plot_writes_png(tmp_path):
    p = tmp_path / "cost.png"
    report.plot(doc_with(dict(FIGS), {"peer.tlsf.H16.cu": 20.0, "peer.tlsf.H256.cu": 21.0}), p)
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    s = report.series(doc_with(dict(FIGS)))
    assert s["first fit (MicroPython)"] == [(16, 50.0), (256, 500.0), (4096, 5000.0)]


def test_json_round_trip_and_regenerate_from_file(tmp_path):
    d = doc_with(dict(FIGS))
    f = tmp_path / "b.json"
    suite.save(d, f)
    assert suite.load(f)["runs"]["micropython"]["vmem.instant.H16.cu"] == 60.0
    md = tmp_path / "B.md"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "host_tools"))
    p = subprocess.run([sys.executable, "-m", "mpalloc_host.cli", "bench", "--from", str(f), "--markdown", str(md),
                        "--plot", str(tmp_path / "c.png"), "-q"], capture_output=True, text=True, env=env,
                       cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert "| G3 | vmem alloc+free pair" in md.read_text()
    (tmp_path / "bad.json").write_text(json.dumps({"schema": 99}))
    with pytest.raises(ValueError):
        suite.load(tmp_path / "bad.json")


def test_script_text_is_one_piece():
    code = runner.script_text("bench_frag.py", ["alloc=firstfit", "steps=300"])
    assert code.startswith("BENCH_ARGS = 'alloc=firstfit steps=300'")
    assert "\nfrom benchcore import" not in code and "class FirstFit" in code


@pytest.mark.timeout(120)
def test_fragmentation_trace_same_on_micropython_and_cpython():
    """The seeded trace and the first-fit peer give identical counts on both interpreters."""
    mp = runner.Local("micropython", heap=233024).run("bench_frag.py", ["alloc=firstfit"])
    cp = runner.Local("cpython").run("bench_frag.py", ["alloc=firstfit"])
    for k in ("frag.firstfit.steps", "frag.firstfit.live_bytes", "frag.firstfit.failed"):
        assert mp[k] == cp[k], k
    assert mp["frag.firstfit.failed"] is True
    assert 0 < mp["frag.firstfit.utilisation"] <= 1
    assert mp["frag.firstfit.live_bytes"] == round(mp["frag.firstfit.utilisation"] * 65536) or \
        abs(mp["frag.firstfit.live_bytes"] / 65536 - mp["frag.firstfit.utilisation"]) < 1e-3


@pytest.mark.timeout(120)
def test_fixed_churn_small_run_on_micropython():
    """bench_fixed on the unix port, one CPU, quick: every figure present, counts exact."""
    r = runner.Local("micropython", heap=233024).run("bench_fixed.py", ["quick=1", "modes=up", "part=pool"])
    assert "bench_fixed.crashed" not in r, r.get("bench_fixed.crashed")
    assert r["env.impl"] == "micropython" and r["up.magsize"] > 0
    for p in ("pool_cache_hit", "pool_cache_2get2put", "pool_get_put"):
        assert r["up.%s.cu" % p] > 0
        assert r["up.%s.garbage_bytes_per_op" % p] == 0  # exact: nothing left for the collector
        assert r["up.%s.heap_locked_ok" % p] is True
    # depot traffic is an exact count: magazine hits never reach it, 4M bursts at most 1/M
    assert r["up.pool_cache_hit.depot_per_op"] == 0
    assert r["up.burst_k%d.depot_per_op" % (4 * r["up.magsize"])] <= 1 / r["up.magsize"]


@pytest.mark.timeout(120)
def test_gcheap_trace_fails_and_reports_utilisation():
    r = runner.Local("micropython").run("bench_frag.py", ["alloc=gcheap"], heap=suite.GCHEAP_HEAP)
    assert r["frag.gcheap.failed"] is True
    assert abs(r["frag.gcheap.arena_bytes"] - 65536) < 1024  # padded to the arena's size
    assert 0 < r["frag.gcheap.utilisation"] < 1


def test_batches_last_fifty_steps_of_a_coarse_clock(monkeypatch):
    """The webassembly port's ticks_us counts milliseconds: a 2 ms batch would be
    all quantisation (it reported pool_cache hits at 0 cu). pick_n stretches a
    batch to MIN_STEPS steps of the clock."""
    sys.path.insert(0, str(ROOT / "tests" / "bench"))
    try:
        import benchcore as B
    finally:
        sys.path.pop(0)
    now = [0]  # a virtual clock in us that only the workload advances, read in 1 ms steps

    def ticks_us():
        return now[0] // 1000 * 1000

    def work(arg, n):
        now[0] += 10 * n  # 10 us per iteration

    reads = [0]

    def running_ms():  # a clock that runs (7 us a read) and shows milliseconds
        reads[0] += 1
        return reads[0] * 7 // 1000 * 1000

    monkeypatch.setattr(B, "ticks_us", running_ms)
    assert B._clock_step() == 1000
    monkeypatch.setattr(B, "ticks_us", lambda: reads.__setitem__(0, reads[0] + 1) or reads[0])
    assert B._clock_step() == 1  # a microsecond clock
    monkeypatch.setattr(B, "ticks_us", ticks_us)
    monkeypatch.setattr(B, "CLOCK_US", 1000)
    n = B.pick_n(work, 0, 2000)
    assert 0.9 * 50000 <= n * 10 <= 1.2 * 50000  # ~50 ms: fifty 1 ms steps, not 2 ms
    monkeypatch.setattr(B, "CLOCK_US", 1)
    n = B.pick_n(work, 0, 2000)
    assert 1500 <= n * 10 <= 2500  # a fine clock: the batch asked for


# ---- the board-sized bench (a Pico's heap: emu:rp2040, a real Pico, an ESP32) ------------
from mpalloc_host.bench import board_report  # noqa: E402


def board_doc(**mp):
    figs = {"env.version": "1.28.0", "env.platform": "rp2", "env.word_bits": 32, "calib.cu_ns": 6903.0,
            "board.mode": "sio", "board.hit_path": "native", "board.window_bytes": 32512,
            "board.pool_cache_hit.cu": 3.09, "board.pool_cache_hit.cycles": 2670.4,
            "board.bytearray64.cu": 16.5, "board.bytearray64.cycles": 14220.0}
    figs.update(mp)
    return {"schema": 1, "meta": {"port": "emu:rp2040", "kind": "board", "mhz": 125, "date": "d", "seconds": 28.0,
                                  "machine": {"cpu": "x", "cores": 2}, "commit": "abc1234"},
            "runs": {"micropython": figs}, "notes": [], "goals": []}


def test_small_boards_get_the_board_bench_with_their_clock():
    assert suite.small_board({"heap_total": 245888, "word_bits": 32})          # a Pico
    assert suite.small_board({"heap_total": 300000, "word_bits": 64})          # the vboard's, in 32-bit bytes
    assert not suite.small_board({"heap_total": 2 * 1024 * 1024, "word_bits": 32})
    assert suite.board_mhz({"cpu": {"clock_hz": 125000000}}) == 125
    assert suite.board_mhz({}) is None
    (job,) = suite.board_jobs(quick=True, mhz=125)
    assert job[1] == "bench_board.py" and job[2] == ["quick=1", "mhz=125"] and job[3] == {"fresh": True}
    assert (runner.BENCH_DIR / "bench_board.py").is_file()


def test_board_section_has_cu_and_cycles_and_is_spliced_in_place():
    doc = board_doc()
    md = board_report.markdown(doc)
    assert md.startswith("<!-- board-bench emu:rp2040 -->\n") and md.rstrip().endswith("<!-- /board-bench -->")
    assert "| pool_cache_get + pool_cache_put, magazine hit (the pair this board binds) | 3.09 |" in md
    assert "| 2,670 |" in md and "| 14,220 |" in md          # cycles / op
    assert "pool_get + pool_put" in md and "| - |" in md      # not measured: a dash, never a made-up figure
    assert "mode sio, hit pair native" in md and "commit abc1234" in md
    full = "# Benchmarks\n\nbody\n"
    once = board_report.splice(full, md, "emu:rp2040")
    assert once.startswith(full.rstrip("\n")) and once.count("board-bench emu:rp2040") == 1
    md2 = board_report.markdown(board_doc(**{"board.pool_cache_hit.cu": 2.5}))
    twice = board_report.splice(once, md2, "emu:rp2040")
    assert twice.count("board-bench emu:rp2040") == 1 and "| 2.5 |" in twice and "| 3.09 |" not in twice
    # the full suite's report (make bench) keeps the board sections of the old file
    kept = board_report.keep_sections(twice, "# Benchmarks\n\nnew body\n")
    assert "new body" in kept and "body\n" in kept and board_report.sections(kept)["emu:rp2040"] == md2
    # and a hand-written section (measured by hand, e.g. emu:rp2040's memory table), once
    hand = "<!-- hand emu-memory -->\n## Memory\n\n| a | 1 |\n<!-- /hand -->\n"
    kept = board_report.keep_sections(hand + twice, "# Benchmarks\n\nnew body\n")
    assert kept.count(hand) == 1 and "new body" in kept and board_report.sections(kept)["emu:rp2040"] == md2
    again = board_report.keep_sections(kept, "# Benchmarks\n\nnewer body\n")
    assert again.count(hand) == 1 and "newer body" in again and "new body\n" not in again


def test_native_code_size_covers_every_layer_with_native_code():
    # BENCHMARKS.md's "Native hot paths: code size": one row per layer that
    # mpalloc.native switches, each compiled for the boards' archs (viper code is
    # bigger than the same functions as bytecode)
    from mpalloc import native
    from mpalloc_host.bench import native_size

    got = native_size.sizes()
    assert set(got) == {n + "_native" for n in native.LAYERS}, got
    for m, row in got.items():
        assert row["bytecode"] and row["armv6m"] and row["xtensawin"], (m, row)
        assert row["armv6m"] > row["bytecode"], (m, row)
