# pool_native: pool_get / pool_put as @micropython.viper code.
#
# Same representation, invariants and locking as pool.py (its header): the
# page table's arrays are read and written in place through ptr8/ptr16, the
# list heads and counters in pp.hd as list items. Only the common case is
# here: a get with flags exactly PR_NOWAIT or PR_WAITOK (| nothing) on a pool
# that has a free item below its hard limit, a put of an int that is an item
# out. Everything else (other flags, IPL_NONE pools, growing, waiting,
# draining, misuse) goes to pool.py's bytecode _get / _put / _put_err before
# anything changed, so both paths share every slow path and every message.
# pool._bind() loads this module where the runtime compiles viper code (unix
# x64, rp2 armv6m, esp32 xtensawin) and mpalloc.native.switch[0] is set; where
# the import fails (CPython, webassembly, micro:bit, an .mpy of another arch)
# the bytecode pair stays: it is the reference, this one must equal it.
#
# Locking: pp.lock and the CPU's mask exactly as intr.mutex_enter/exit take
# them: in MODE_THREAD by calling them; in the other modes in line (this
# core's splhigh count intr._sdepth[c], machine.disable_irq()/enable_irq()
# where intr has a machine module, and on the last splx the soft interrupts
# that wait, intr._spend / intr._soft_run), as intr.splhigh/splx do.
# Soft interrupts (scheduled callbacks) run only where the VM checks for
# them, at a bytecode jump; viper code has no such check, so outside
# MODE_THREAD a callback lands before or after a native get/put, never inside,
# except where a put gives a page back to palloc (pool._page_remove, above
# maxpages, runs as bytecode under the mask). MODE_THREAD calls
# intr.mutex_enter/exit, bytecode, as the bytecode pair does.
# Nothing here allocates: small ints only (counts < 2**30; addresses below
# 2**30 on the 32-bit boards, any on 64-bit), no tuples.
import micropython
from micropython import const
from mpalloc import intr as _intr
from mpalloc.native import switch  # noqa: F401  (read by pool._bind)

_EMPTY = const(0)  # pool.py's list heads and hd[] places
_PARTIAL = const(1)
_FULL = const(2)
_NGET = const(4)
_NPUT = const(5)
_NITEMS = const(8)
_NPAGES = const(9)
_NIDLE = const(10)
_F1 = 1  # PR_WAITOK, PR_NOWAIT as objects (a viper literal would be a machine int)
_F2 = 2
_ZERO = 0
_NONE = None  # None as an object (a viper local that is also assigned objects)
_I = int  # called, not cast: a machine int back to an object
_INT = int
_MAXA = 0  # the small int range (bind): a larger int is no address here
_MINA = 0

# bound by bind() from pool (its bytecode paths) and intr (the mode)
_get = None
_put = None
_get_flags = None
_page_add = None
_put_err = None
_page_remove = None
_thr = 0
_sio = 0
_dis = None
_en = None


def bind(g):
    """Take pool's bytecode paths (g: its globals()) and intr's mode."""
    global _get, _put, _get_flags, _page_add, _put_err, _page_remove, _thr, _sio, _dis, _en, _MAXA, _MINA
    import sys

    _MAXA = sys.maxsize >> 1
    _MINA = -_MAXA - 1
    _get = g["_get"]
    _put = g["_put"]
    _get_flags = g["_get_flags"]
    _page_add = g["_page_add"]
    _put_err = g["_put_err"]
    _page_remove = g["_page_remove"]
    _thr = 1 if _intr.mode == _intr.MODE_THREAD else 0
    _sio = 1 if _intr.mode == _intr.MODE_SIO else 0
    m = _intr._machine
    _dis = m.disable_irq if m is not None and not _thr else None
    _en = m.enable_irq if m is not None and not _thr else None


@micropython.viper
def _move(pp, sl: int, st: int):
    # pool._move: page sl off its list (none while pg_state is _UNUSED) onto list st.
    h = pp.hd
    nx = ptr16(pp.pg_next)
    pv = ptr16(pp.pg_prev)
    ps = ptr8(pp.pg_state)
    n = nx[sl]
    p = pv[sl]
    o = ps[sl]
    if o != 3:
        if p != 0xFFFF:
            nx[p] = n
        else:
            h[o] = -1 if n == 0xFFFF else n
        if n != 0xFFFF:
            pv[n] = p
    n = int(h[st])
    nx[sl] = n
    pv[sl] = 0xFFFF
    if n >= 0:
        pv[n] = sl
    h[st] = sl
    ps[sl] = st


@micropython.viper
def _emptied(pp, sl: int):
    # pool._give and _shrink once page sl has emptied (lock held): onto the empty
    # list, or back to palloc above maxpages (its address; 0: kept).
    _move(pp, sl, _EMPTY)
    h = pp.hd
    h[_NIDLE] = int(h[_NIDLE]) + 1
    n = int(h[_NPAGES])
    if n > int(pp.maxpages) and n > int(pp.minpages) and int(h[_NITEMS]) - int(pp.ipp) >= int(pp.minitems):
        if not _intr.cpu_intr_p():
            return _page_remove(pp, sl)
    return _ZERO


@micropython.viper
def pool_get(pp, flags):
    if flags != _F2 and flags != _F1:
        if flags.__class__ is not _INT or int(flags) & 0x8000:
            return _get(pp, flags)  # PR_ZERO, no int: the bytecode path
        _get_flags(pp, flags)
    if int(pp.ipl) == 0:  # IPL_NONE: the bytecode path checks the context
        return _get(pp, flags)
    h = pp.hd
    # intr.mutex_enter(pp.lock)
    c = 0
    sd = _intr._sdepth
    if _thr:
        s = _intr.mutex_enter(pp.lock)
    else:
        if _sio:
            c = ptr32(0xD0000000)[0]
        sd[c] = int(sd[c]) + 1
        s = _NONE
        if _dis:
            s = _dis()
    sl = int(h[_PARTIAL])
    if sl < 0:
        sl = int(h[_EMPTY])
    if sl < 0 or int(pp.nout) >= int(pp.hardlimit):
        sl = -1
    else:
        # pool._take
        ipp = int(pp.ipp)
        pf = ptr16(pp.pg_free)
        nu = ptr16(pp.pg_nused)
        i = pf[sl]
        b = sl * ipp + i
        pf[sl] = ptr16(pp.inext)[b]
        n = nu[sl] + 1
        nu[sl] = n
        if n == 1:
            h[_NIDLE] = int(h[_NIDLE]) - 1
            _move(pp, sl, _FULL if n == ipp else _PARTIAL)
        elif n == ipp:
            _move(pp, sl, _FULL)
        bm = ptr8(pp.bmap)
        bm[b >> 3] = bm[b >> 3] | (1 << (b & 7))
        h[_NGET] = int(h[_NGET]) + 1
        n = int(pp.nout) + 1
        pp.nout = n
        b = int(pp.pg_addr[sl])
        b = b + ((0 - b - int(pp.ioff)) & int(pp.amask)) + i * int(pp.size)
        i = 0
        if int(h[_NITEMS]) - n < int(pp.minitems) or int(h[_NPAGES]) < int(pp.minpages):
            i = 1
    # intr.mutex_exit(pp.lock, s)
    if _thr:
        _intr.mutex_exit(pp.lock, s)
    else:
        if _en:
            _en(s)
        n = int(sd[c]) - 1
        sd[c] = n
        if n == 0 and c == 0 and _intr._spend[0]:
            _intr._soft_run()
    if sl < 0:
        return _get(pp, flags)  # nothing free here: the bytecode path grows, waits or fails
    if i and not _intr.cpu_intr_p():
        _page_add(pp, _F2)  # catch up with the low watermark (PR_NOWAIT)
    return _I(b)


@micropython.viper
def pool_put(pp, a):
    if a.__class__ is not _INT or a > _MAXA or a < _MINA:
        return _put(pp, a)  # None, no int, beyond a machine word: the bytecode path names the misuse
    x = int(a)
    ps = int(pp.pagesz)
    k = x // ps
    lk = pp.pg_of
    sl = int(lk.get(k, -1))
    if sl < 0 or x < int(pp.pg_addr[sl]):
        sl = int(lk.get(k - 1, -1))
    if sl < 0:
        return _put(pp, a)
    ipp = int(pp.ipp)
    sz = int(pp.size)
    b = int(pp.pg_addr[sl])
    if x >= b + ps:
        return _put(pp, a)
    x = x - b - ((0 - b - int(pp.ioff)) & int(pp.amask))
    if x < 0 or x >= ipp * sz or x % sz:
        return _put(pp, a)
    b = sl * ipp + x // sz
    h = pp.hd
    # intr.mutex_enter(pp.lock)
    c = 0
    sd = _intr._sdepth
    if _thr:
        s = _intr.mutex_enter(pp.lock)
    else:
        if _sio:
            c = ptr32(0xD0000000)[0]
        sd[c] = int(sd[c]) + 1
        s = _NONE
        if _dis:
            s = _dis()
    bm = ptr8(pp.bmap)
    r = _NONE
    x = 1 << (b & 7)
    if bm[b >> 3] & x:
        # pool._give
        bm[b >> 3] = bm[b >> 3] & (0xFF ^ x)
        pf = ptr16(pp.pg_free)
        nu = ptr16(pp.pg_nused)
        ptr16(pp.inext)[b] = pf[sl]
        pf[sl] = b - sl * ipp
        x = nu[sl] - 1
        nu[sl] = x
        h[_NPUT] = int(h[_NPUT]) + 1
        pp.nout = int(pp.nout) - 1
        if x == 0:
            r = _emptied(pp, sl)
        elif x == ipp - 1:
            _move(pp, sl, _PARTIAL)
        x = 0
    # intr.mutex_exit(pp.lock, s)
    if _thr:
        _intr.mutex_exit(pp.lock, s)
    else:
        if _en:
            _en(s)
        n = int(sd[c]) - 1
        sd[c] = n
        if n == 0 and c == 0 and _intr._spend[0]:
            _intr._soft_run()
    if x:
        _put_err(pp, a, -2)  # an item, but free: a double put
    if r:
        pp.palloc.pa_free(pp, r)
    return None
