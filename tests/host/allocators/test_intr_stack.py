"""intr.run_hard's C-stack check (MODE_SIO, rp2: a hard handler runs on the
interrupted program's stack): too little left refuses the handler with the
preallocated E_STACK before anything is touched; enough runs it as before.
The device side (real hard Timer interrupts on emu:rp2040) is
tests/device/test_rp2_irq.py."""
import pytest

from mpalloc import intr


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


@pytest.fixture
def sio(monkeypatch):
    mask = _Mask()
    use = [0]
    intr.setup(1)
    monkeypatch.setattr(intr, "mode", intr.MODE_SIO)
    monkeypatch.setattr(intr, "_machine", mask)
    monkeypatch.setattr(intr, "_stack_use", lambda: use[0])
    intr._hard_max[0] = 3000
    intr.nstackfail[0] = 0
    yield mask, use
    monkeypatch.undo()
    intr.setup(1)  # _hard_max[0] back to 0
    intr.nstackfail[0] = 0


def test_too_little_stack_refuses_before_touching_anything(sio):
    mask, use = sio
    ran = []
    use[0] = 3001
    with pytest.raises(RuntimeError) as e:
        intr.run_hard(ran.append, 1)
    assert e.value is intr.E_STACK and "C stack" in str(e.value)
    assert ran == [] and intr.nstackfail[0] == 1
    assert mask.depth == 0 and intr._sdepth[0] == 0 and intr._hard_depth[0] == 0
    assert not intr.cpu_intr_p()


def test_enough_stack_runs_the_handler_masked(sio):
    mask, use = sio
    use[0] = 3000
    seen = []

    def h(arg):
        seen.append((arg, mask.depth, intr.cpu_intr_p()))
        return 7

    assert intr.run_hard(h, 5) == 7
    assert seen == [(5, 1, True)] and mask.depth == 0 and intr.nstackfail[0] == 0


def test_no_limit_no_check(sio):
    _, use = sio
    intr._hard_max[0] = 0  # other modes, or no micropython.stack_use
    use[0] = 10 ** 6
    assert intr.run_hard(lambda a: a + 1, 1) == 2


def test_stack_probe_finds_the_deepest_use(monkeypatch):
    # on CPython the recursion limit plays MicroPython's stack check
    depth = [0]

    def use():
        depth[0] += 1
        return depth[0]

    monkeypatch.setattr(intr, "_stack_use", use)
    got = intr._stack_probe()
    assert got == depth[0] and got > 100
