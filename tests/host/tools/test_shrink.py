"""shrink: firmware cut to what a suite reaches (dead-code elimination, minified,
pieces with consts folded), and the runner's fit check on flat (micro:bit) boards."""
import ast
import sys
import types
from pathlib import Path

from mpalloc_host import DEVICE_TESTS_DIR, FIRMWARE_DIR, shrink
from mpalloc_host.delivery import by_name
from mpalloc_host.delivery.sources import flat_source
from mpalloc_host.runner import Runner, SuiteInfo

POOL_SUITE = Path(DEVICE_TESTS_DIR) / "test_pool.py"


def _defs(text):
    return {st.name for st in ast.parse(text).body if isinstance(st, (ast.FunctionDef, ast.ClassDef))}


def test_pool_suite_closure_drops_what_it_never_reaches():
    mods = dict(shrink.closure(POOL_SUITE.read_text()))
    # pool_cache is imported inside one test only, uvm_km inside pool_allocator_kmem:
    # neither comes along; mem and intr are imported at module level; mptest_pages
    # is the suite's page source
    assert sorted(mods) == ["mpalloc.compat", "mpalloc.intr", "mpalloc.mem", "mpalloc.pool", "mptest", "mptest_pages"]
    pool = _defs(mods["mpalloc.pool"])
    assert {"pool_init", "_get", "_put", "pool_prime", "pool_stats", "pool_sethardlimit"} <= pool  # pool_get/put: bound to _get/_put
    assert not {"pool_debug", "_dbg_get", "pool_reclaim", "pool_chk"} & pool
    assert pool < _defs((Path(FIRMWARE_DIR) / "mpalloc" / "pool.py").read_text())
    for text in mods.values():
        assert '"""' not in text  # no docstrings
        assert len(text) < len(ast.unparse(ast.parse(text)))  # one-space indents


def test_shake_drops_private_consts_nothing_kept_uses():
    # pool's debug-check findings (_BAD_*) go with the debug functions; the
    # codes of _item_index, which pool_put reaches, stay; public consts stay
    mods = dict(shrink.closure(POOL_SUITE.read_text()))
    top = {st.targets[0].id for st in ast.parse(mods["mpalloc.pool"]).body
           if isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Name)}
    assert {"_NOT_ITEM", "_ALREADY_FREE", "_NOT_INT", "PR_NOWAIT"} <= top
    assert not {n for n in top if n.startswith("_BAD_")}
    src = "from micropython import const\n_A = const(1)\n_B = const(2)\nC = const(3)\ndef f():\n return _A\n"
    kept, _, _ = shrink.shake(src, {"f"})
    names = {st.targets[0].id for st in kept.body if isinstance(st, ast.Assign)}
    assert names == {"_A", "C"}


def test_minify_keeps_the_tree():
    src = (Path(FIRMWARE_DIR) / "mpalloc" / "intr.py").read_text()
    small = shrink.minify(src)
    assert len(small) < len(src) * 0.7
    assert ast.dump(ast.parse(small)) == ast.dump(shrink.drop_docstrings(ast.parse(src)))


def test_pieces_fold_consts_and_compile_alone():
    src = "from micropython import const\n_A = const(3)\nB = const(4)\ndef f():\n return _A + B\n"
    ps = shrink.pieces(src, limit=10)
    assert len(ps) >= 2 and all(compile(p, "piece", "exec") for p in ps)
    g = {"const": lambda x: x}
    for p in ps:
        exec(p.replace("from micropython import const\n", ""), g)
    assert "_A" not in g and g["B"] == 4 and g["f"]() == 7


def test_shaken_pool_runs_get_put_from_pieces(monkeypatch):
    """The cut-down modules, compiled piece by piece into module dicts as on the
    micro:bit, still allocate and free pool items."""
    for name, text in shrink.closure(POOL_SUITE.read_text()):
        flat = name.replace(".", "_")
        mod = types.ModuleType(flat)
        monkeypatch.setitem(sys.modules, flat, mod)
        for p in shrink.pieces(flat_source(text)):
            exec(compile(p, flat, "exec"), mod.__dict__)
    intr, mem, pool = (sys.modules["mpalloc_" + n] for n in ("intr", "mem", "pool"))
    intr.setup(1)
    mem.attach(0x20002000, bytearray(256))
    pages = [0x20002000 + 64 * i for i in range(4)]
    pa = pool.pool_allocator(lambda pp, fl: pages.pop() if pages else None, lambda pp, a: pages.append(a), 64)
    pp = pool.pool_init(12, 4, 0, 0, "p12", pa, pool.IPL_VM)
    got = [pool.pool_get(pp, pool.PR_NOWAIT) for _ in range(20)]
    assert None not in got and len(set(got)) == 20
    for a in got:
        pool.pool_put(pp, a)
    assert pp.nout == 0  # (pool_stats loads pool_setup, not in these pieces)


class _FlatBoard:
    delivery = by_name("flat")
    info = {"heap_total": 10048}


def test_runner_skips_suites_whose_code_exceeds_the_heap():
    r = Runner(_FlatBoard())
    why = r.code_too_big(SuiteInfo(POOL_SUITE))
    assert why and "10048-byte heap" in why and "pool " in why and "mptest " in why
    assert r.code_too_big(SuiteInfo(Path(DEVICE_TESTS_DIR) / "test_mptest.py")) is None
    big = _FlatBoard()
    big.delivery = by_name("fs")
    assert Runner(big).code_too_big(SuiteInfo(POOL_SUITE)) is None
