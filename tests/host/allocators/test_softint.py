"""Soft interrupts (softint.py: softint_establish & co.) under CPython: when an
established handler runs, when it waits for splx(), coalescing, no nesting,
and the errors. The MicroPython side (real scheduled callbacks racing pool,
pool_cache and kmem) is tests/device/test_softint.py."""

import pytest

from mpalloc import intr, softint  # noqa: E402


@pytest.fixture(params=[intr.MODE_UP, intr.MODE_THREAD], ids=["up", "thread"])
def mode(request):
    intr.setup(1, request.param)
    yield request.param
    while softint._soft:
        softint.softint_disestablish(softint._soft[-1][0])
    intr.setup(1)


def test_runs_at_once_when_unmasked(mode):
    seen = []
    sih = softint.softint_establish(seen.append, "a")
    sih(None)  # what micropython.schedule / machine.Timer would call
    assert seen == ["a"]
    assert softint.softint_pending() == 0


def test_held_until_the_outermost_splx(mode):
    seen = []
    sih = softint.softint_establish(seen.append, "x")
    held = softint._sheld[0]
    s1 = intr.splhigh()
    sih()
    sih()  # a second arrival while pending coalesces, like an IRQ line
    s2 = intr.splhigh()
    intr.splx(s2)
    assert seen == [] and softint.softint_pending() == 1
    intr.splx(s1)
    assert seen == ["x"]
    assert softint.softint_pending() == 0
    assert softint._sheld[0] - held == 2


def test_mutex_section_holds_it_too(mode):
    seen = []
    sih = softint.softint_establish(seen.append, 1)
    m = intr.mutex_init()
    s = intr.mutex_enter(m)
    sih()
    assert seen == []
    intr.mutex_exit(m, s)
    assert seen == [1]


def test_handlers_do_not_nest(mode):
    order = []
    inner = softint.softint_establish(lambda a: order.append("inner"))

    def outer_fn(a):
        order.append("outer-start")
        inner()  # arrives while outer runs: waits for it
        order.append("outer-end")

    outer = softint.softint_establish(outer_fn)
    outer()
    assert order == ["outer-start", "outer-end", "inner"]
    assert not softint.cpu_softintr_p()


def test_run_in_establish_order_after_splx(mode):
    order = []
    a = softint.softint_establish(lambda x: order.append("a"))
    b = softint.softint_establish(lambda x: order.append("b"))
    s = intr.splhigh()
    b()
    a()
    intr.splx(s)
    assert order == ["a", "b"]


def test_handler_error_leaves_state_clean(mode):
    def boom(a):
        raise RuntimeError("handler failed")

    sih = softint.softint_establish(boom)
    seen = []
    later = softint.softint_establish(seen.append, "later")
    s = intr.splhigh()
    sih()
    later()
    with pytest.raises(RuntimeError, match="handler failed"):
        intr.splx(s)
    assert not softint.cpu_softintr_p()
    assert softint.softint_pending() == 1  # 'later' was not lost
    intr.splx(intr.splhigh())
    assert seen == ["later"]
    ok = softint.softint_establish(seen.append, 2)
    ok()
    assert seen == ["later", 2]


def test_disestablish(mode):
    seen = []
    sih = softint.softint_establish(seen.append, 3)
    softint.softint_disestablish(sih)
    with pytest.raises(ValueError, match="softint_disestablish: not an established soft interrupt"):
        softint.softint_disestablish(sih)


def test_schedule_needs_micropython():
    sih = softint.softint_establish(lambda a: None)
    try:
        with pytest.raises(ValueError, match="softint_schedule: needs MicroPython's scheduler"):
            softint.softint_schedule(sih)
    finally:
        softint.softint_disestablish(sih)
