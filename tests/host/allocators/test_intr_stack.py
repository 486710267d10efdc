"""intr.run_hard's C-stack check (MODE_SIO, rp2: a hard handler runs on the
interrupted program's stack): setup(MODE_SIO) finds the stack check's limit;
less than the handler's allowance (run_hard's `need`, default intr_stack.POOL)
left refuses the handler with a preallocated RuntimeError before anything is
touched; enough runs it as before. The device side (real hard Timer interrupts
and each path's need measured against intr_stack's table on emu:rp2040) is
tests/device/test_rp2_irq.py."""
import sys

import pytest

from mpalloc import intr, intr_stack


class _Mask:
    """machine.disable_irq/enable_irq stand-in: counts the nesting."""

    def __init__(self):
        self.depth = 0

    def disable_irq(self):
        self.depth += 1
        return self.depth

    def enable_irq(self, s):
        assert s == self.depth
        self.depth -= 1


class _Micropython:
    """micropython.stack_use stand-in: returns use[0], or counts up (probe)."""

    def __init__(self):
        self.use = [0]
        self.calls = 0

    def stack_use(self):
        self.calls += 1
        return self.use[0] or self.calls * 16  # 16 "bytes" a frame


@pytest.fixture
def sio(monkeypatch):
    mask = _Mask()
    mp = _Micropython()
    intr.setup(1)
    monkeypatch.setattr(intr, "micropython", mp)
    monkeypatch.setattr(sys, "platform", "rp2")  # setup(MODE_SIO) refuses other platforms
    intr.setup(1, intr.MODE_SIO)  # probes the limit: the stand-in counts up to CPython's recursion limit
    monkeypatch.setattr(intr, "_machine", mask)
    monkeypatch.setattr(intr, "_mem32", {-0x30000000: 0})  # the SIO CPUID: core 0
    yield mask, mp
    monkeypatch.undo()
    intr.setup(1)
    intr._hard_depth[2] = 0


def test_setup_finds_the_limit_and_arms_the_check(sio):
    _, mp = sio
    assert mp.calls > 500 and intr._hard_depth[1] == mp.calls * 16
    assert isinstance(intr._hard_depth[3], RuntimeError) and "C stack" in str(intr._hard_depth[3])


def test_too_little_stack_refuses_before_touching_anything(sio):
    mask, mp = sio
    ran = []
    mp.use[0] = intr._hard_depth[1] - intr_stack.POOL + 1
    with pytest.raises(RuntimeError) as e:
        intr.run_hard(ran.append, 1)
    assert e.value is intr._hard_depth[3]
    assert ran == [] and intr._hard_depth[2] == 1
    assert mask.depth == 0 and intr._sdepth[0] == 0 and intr._hard_depth[0] == 0
    assert not intr.cpu_intr_p()


def test_enough_stack_runs_the_handler_masked(sio):
    mask, mp = sio
    mp.use[0] = intr._hard_depth[1] - intr_stack.POOL
    seen = []

    def h(arg):
        seen.append((arg, mask.depth, intr.cpu_intr_p()))
        return 7

    assert intr.run_hard(h, 5) == 7
    assert seen == [(5, 1, True)] and mask.depth == 0 and intr._hard_depth[2] == 0


def test_other_modes_do_not_check():
    intr.setup(1)
    assert intr._hard_depth[1] == 0
    assert intr.run_hard(lambda a: a + 1, 1) == 2


def test_the_allowance_is_per_call(sio):
    # a kmem handler asks for kmem's figure: refused where the default would run
    mask, mp = sio
    mp.use[0] = intr._hard_depth[1] - intr_stack.POOL
    assert intr.run_hard(lambda a: a, 3) == 3
    with pytest.raises(RuntimeError) as e:
        intr.run_hard(lambda a: a, 3, 0, intr_stack.KMEM)
    assert e.value is intr._hard_depth[3] and intr._hard_depth[2] == 1
    mp.use[0] = intr._hard_depth[1] - intr_stack.KMEM
    assert intr.run_hard(lambda a: a, 4, 0, intr_stack.KMEM) == 4
    assert mask.depth == 0 and intr._sdepth[0] == 0


def test_the_table():
    # run_hard's default is the table's POOL; the deeper paths ask for more
    assert intr._HARD_STACK == intr_stack.POOL
    assert intr_stack.POOL <= intr_stack.POOL_CACHE <= intr_stack.KMEM < 7900


def test_measure_refused_off_rp2():
    with pytest.raises(ValueError, match="refused on"):
        intr_stack.measure(lambda a: 0, 0)
