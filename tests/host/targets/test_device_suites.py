"""Every device suite (tests/device/test_*.py, found anew each run) on the five
targets make test covers: two virtual boards, the 32-bit webassembly port, and
the micro:bit firmware in QEMU (there the suites whose needs fit: a suite too big
for the board skips with the reason, see the README).

One pytest test per (target, suite); a target is started once for all its suites
(and again if a suite left it unusable). A failing device test fails its pytest
test with the device traceback and log. In CI (CI=true) a target that cannot start
is a failure, elsewhere a skip.
"""
import os
import re

import pytest

from board_doubles import need_target
from mpalloc_host import heaps
from mpalloc_host.board import Board
from mpalloc_host.flash import microbit_frozen
from mpalloc_host.runner import Runner, discover

TARGETS = ["vboard:rp2040", "vboard:esp32", "wasm32:rp2040", "qemu:microbit", "emu:rp2040"]
# How the firmware reaches each target. The ESP32's 110 KB heap cannot compile the
# whole allocator stack from source next to its managed window, so it gets
# precompiled bytecode (`mpalloc deploy --mpy`), as a real ESP32 would; the
# others run from source, so both paths stay covered.
DEPLOY_MPY = {"vboard:esp32", "emu:rp2040"}
SUITES = discover()
# emu:rp2040 (the RP2040's own firmware in rp2040js, ~0.25x real time) runs every
# suite: its target has the "slow" cap, and the suites whose full figures take
# minutes there (vmem, replay, softint) size them down (mptest_sized); the full
# figures stay on the virtual boards, with MPALLOC_LONG=1 and under `make hil`.




@pytest.fixture(scope="module", autouse=True)
def suites_heap():
    """The emulated targets (vboard, wasm32) with heaps.SUITES_FACTOR times the
    board's heap: a suite brings mptest and its own code on top of mpalloc's
    core, which today leaves a board too little for that (heaps.py)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MPALLOC_HEAP_FACTOR", heaps.SUITES_FACTOR)
    yield
    mp.undo()


class _Boards:
    def __init__(self):
        self.open = {}

    def get(self, spec):
        if spec not in self.open:
            target = need_target(spec)
            try:
                b = Board(target)
                b.deploy(mpy=spec in DEPLOY_MPY)
            except BaseException:
                target.close()
                raise
            self.open[spec] = (target, b)
        return self.open[spec][1]

    def drop(self, spec):
        target, b = self.open.pop(spec)
        b.close()
        target.close()

    def close(self):
        for spec in list(self.open):
            self.drop(spec)


@pytest.fixture(scope="module")
def boards():
    bs = _Boards()
    yield bs
    bs.close()


def _describe(res):
    out = []
    if res.error:
        out.append(res.error)
        out.extend("  | " + ln for ln in res.log[-20:])
    for t in res.tests:
        if t.status not in ("passed", "skipped"):
            out.append("%s: %s" % (t.id, t.message))
            out.extend("  " + ln for ln in t.traceback[-15:])
            out.extend("  | " + ln for ln in t.log[-10:])
    return "\n".join(out)


@pytest.mark.parametrize("suite", SUITES, ids=[p.stem[5:] for p in SUITES])
@pytest.mark.parametrize("spec", TARGETS)
def test_suite(boards, spec, suite):
    board = boards.get(spec)
    runner = Runner(board, test_timeout=120, suite_timeout=600)
    res = runner.run_suite(suite)
    if runner.dead:
        boards.drop(spec)
    assert res.tests or res.error, "suite %s listed no tests" % suite.name
    assert res.ok, "%s: suite %s failed:\n%s" % (spec, res.name, _describe(res))
    if spec.startswith("vboard:") and suite.name == "test_isr.py":
        _isr_figures(spec, res)
    if spec == "emu:rp2040" and suite.name == "test_rp2_irq.py":
        _rp2_irq_figures(spec, res)


def _isr_figures(spec, res):
    # Issue #4's figures, reported by the board (the unix port runs them in
    # full, mptest_long.full_figures): >= 100,000 interrupt-context operations per
    # stress test, >= 1,000,000 race operations at >= 95 % hits on each CPU.
    m = {t.name: t.metrics for t in res.tests}
    for name in ("isr_stress_pool", "isr_stress_pool_cache"):
        assert int(m[name]["isr_ops"]) >= 100000, "%s %s: %s interrupt-context ops" % (spec, name, m[name])
    race = m["race_two_cpus"]
    assert int(race["ops"]) >= 1000000, "%s race_two_cpus: %s" % (spec, race)
    assert min(float(race["cpu0_hit_rate"]), float(race["cpu1_hit_rate"])) >= 0.95, race


def _rp2_irq_figures(spec, res):
    # Real hard Timer interrupts on the RP2040's firmware: board.init() binds
    # MODE_SIO and the _get_sio/_put_sio pair; each allocator did the count the
    # suite asks for (1,500; 20,000 with MPALLOC_LONG=1) from interrupt context,
    # and some interrupts landed (interrupts >= operations).
    m = {t.name: t.metrics for t in res.tests}
    b = m["board_init_binds_mode"]
    assert (b["mode"], b["hit_pair"]) == ("1", "_get_sio/_put_sio"), "%s: %s" % (spec, b)
    want = 20000 if os.environ.get("MPALLOC_LONG") else 1500
    for name in ("hard_timer_pool", "hard_timer_pool_cache", "hard_timer_kmem"):
        f = m[name]
        assert int(f["isr_ops"]) >= want, "%s %s: %s" % (spec, name, f)
        assert int(f["interrupts"]) >= int(f["isr_ops"]), "%s %s: %s" % (spec, name, f)
        assert int(f["main_ops"]) > 0, "%s %s: the main program did not churn: %s" % (spec, name, f)


# qemu:microbit-frozen: Debian's micro:bit firmware rebuilt from its source package
# with the suites of microbit_frozen.FROZEN_SUITES and the code they reach frozen
# in flash (built once into out/microbit-frozen/, ~45 s). The runner runs such a
# suite from the REPL (Runner._run_frozen); every test must pass there, none skip.
@pytest.mark.parametrize("suite", microbit_frozen.FROZEN_SUITES, ids=[f[5:-3] for f in microbit_frozen.FROZEN_SUITES])
def test_frozen_suite(suite):
    target = need_target("qemu:microbit-frozen")
    try:
        board = Board(target)
        try:
            res = Runner(board, test_timeout=120, suite_timeout=600).run_suite(microbit_frozen.DEVICE_TESTS_DIR / suite)
        finally:
            board.close()
    finally:
        target.close()
    n = len(re.findall(r"^@s\.test", (microbit_frozen.DEVICE_TESTS_DIR / suite).read_text(), re.M))
    assert res.ok and res.count("passed") == n, "qemu:microbit-frozen: suite %s:\n%s" % (suite, _describe(res))
