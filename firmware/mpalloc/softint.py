# softint: soft interrupts, softint(9), for MicroPython's scheduled callbacks.
#
#   sih = softint_establish(func, arg)   # once (allocates); sih is the callback
#   machine.Timer(0).init(period=1, callback=sih)   # or micropython.schedule(sih, 0)
#   softint_schedule(sih)                # = micropython.schedule(sih, None)
#   softint_disestablish(sih)
#   cpu_softintr_p()                     # True while a handler runs
#
# A scheduled callback (micropython.schedule, a machine.Timer without
# hard=True: the only kind esp32 has, rp2's default) runs on the main thread
# between two bytecodes, at a jump (a loop, an if: measured on the unix port,
# never at a call, a store or an arithmetic bytecode). Like an interrupt it can
# land inside an allocator's critical section, and machine.disable_irq() does
# not keep it out. A handler established here is held pending while its CPU is
# inside intr.splhigh() .. splx() (so inside every mutex_enter() ..
# mutex_exit()) and runs at the splx() that ends the section, as a masked
# interrupt is taken when the mask drops. Handlers do not nest: one that
# arrives while another runs waits for it. The hot paths that take no mask
# (pool_cache's magazine hit) have no jump between reading and writing the
# shared state, so no callback can run in between.
# A callback scheduled without softint_establish() gets none of this: calling
# an allocator from it can land inside a critical section (one CPU: corrupt
# state; virtual board: a lock its own thread holds, i.e. a hang).
#
# Data (shared with intr's splx through intr._spend and intr._soft_run):
#   _soft: [sih, func, arg, pending] per handler, in establish order
#   intr._spend[0] = 1  =>  some entry may have pending == 1
#   _sactive[0] > 0     <=>  a handler runs (and the others wait)
from mpalloc import intr
from mpalloc.compat import micropython
from mpalloc.intr import MODE_THREAD, _depth, _cpu_of, _sdepth, _spend

_soft = []
_sactive = [0]
_sheld = [0]  # handlers that arrived masked or during another (a statistic)


def _soft_masked():
    # Is the context a soft interrupt would interrupt inside splhigh()?
    if intr.mode == MODE_THREAD:
        return _depth[_cpu_of.get(intr._get_ident(), 0) & 0xFF] > 0
    return _sdepth[0] > 0


def softint_establish(func, arg=None):
    """A soft interrupt running func(arg). Returns sih, the callable to hand to
    micropython.schedule(sih, x) or machine.Timer(callback=sih) (x or the timer
    is ignored); see the header for when func runs. Soft interrupt handlers do
    not nest: one arriving while another runs waits for it to finish.
    Allocates: call once."""
    ent = [None, func, arg, 0]

    def sih(_x=None):
        ent[3] = 1  # pending until _soft_take() runs it
        _spend[0] = 1
        if _sactive[0] or _soft_masked():
            _sheld[0] += 1  # taken at the splx() that ends the section
            return
        _soft_take()

    ent[0] = sih
    _soft.append(ent)
    return sih


def softint_schedule(sih):
    """Ask for sih to run soon (micropython.schedule; RuntimeError if its queue is full)."""
    if micropython is None:
        raise ValueError("softint_schedule: needs MicroPython's scheduler (micropython.schedule)")
    micropython.schedule(sih, None)


def softint_disestablish(sih):
    i = 0
    while i < len(_soft):
        if _soft[i][0] is sih:
            _soft.pop(i)
            return
        i += 1
    raise ValueError("softint_disestablish: not an established soft interrupt")


def softint_pending():
    """How many established soft interrupts wait for a splx()."""
    n = 0
    i = 0
    while i < len(_soft):
        n += _soft[i][3]
        i += 1
    return n


def _soft_run():
    # splx() dropped the mask with soft interrupts pending.
    if not _sactive[0]:
        _soft_take()


def _soft_take():
    # Run pending soft interrupts, in the order they were established, until
    # none is left; one at a time (_sactive), no iterator (the heap may be locked).
    _sactive[0] = 1
    try:
        while _spend[0]:
            _spend[0] = 0
            i = 0
            while i < len(_soft):
                ent = _soft[i]
                if ent[3]:
                    ent[3] = 0
                    ent[1](ent[2])
                i += 1
    except BaseException:
        _spend[0] = 1  # a handler raised: the others still pending stay so
        raise
    finally:
        _sactive[0] = 0


def cpu_softintr_p():
    """True while a soft interrupt handler (softint_establish) runs."""
    return _sactive[0] > 0


intr._soft_run = _soft_run
