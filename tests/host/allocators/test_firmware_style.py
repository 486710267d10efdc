"""The firmware's written conventions (docs/DEVELOPING.md, "Device code rules")
that a reader relies on: module headers stay short (synopsis, representation,
invariants, locking, hot-path rules; history goes to docs/DESIGN-NOTES.md), and
every public function of the allocators states its preconditions in `# =>`
lines, NetBSD style."""
import ast

import pytest

from mpalloc_host import FIRMWARE_DIR

PKG = FIRMWARE_DIR / "mpalloc"
HEADER_MAX = 45
# modules whose every public function carries `=>` lines
WITH_PRECONDITIONS = ["vmem", "uvm_km", "pool", "pool_cache", "kmem", "extent", "intr", "mem", "board"]


def header_lines(text):
    """Comment lines before the module's first statement (blank lines not counted)."""
    n = 0
    for line in text.splitlines():
        if line.startswith("#"):
            n += 1
        elif line.strip():
            break
    return n


def missing_preconditions(text):
    """Public module-level functions with no `=>` line between the def and the
    first statement after the docstring."""
    lines = text.splitlines()
    out = []
    for node in ast.parse(text).body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
            continue
        body = node.body
        first = body[1] if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(
            getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str) else body[0]
        head = "\n".join(lines[node.lineno - 1:first.lineno - 1])
        if "=>" not in head:
            out.append(node.name)
    return out


@pytest.mark.parametrize("path", sorted(PKG.glob("*.py")), ids=lambda p: p.name)
def test_module_header_is_short(path):
    n = header_lines(path.read_text())
    assert n <= HEADER_MAX, "%s: header of %d comment lines (at most %d; history and measurements go to " \
        "docs/DESIGN-NOTES.md)" % (path.name, n, HEADER_MAX)


@pytest.mark.parametrize("mod", WITH_PRECONDITIONS)
def test_public_functions_state_preconditions(mod):
    missing = missing_preconditions((PKG / (mod + ".py")).read_text())
    assert not missing, "%s: no `# =>` precondition lines in %s" % (mod, ", ".join(missing))


def test_rebound_pool_cache_pair_states_preconditions():
    # pool_cache_get/put are bound by _bind(), not defined by def: their `=>`
    # lines stand in _bind
    text = (PKG / "pool_cache.py").read_text()
    bind = next(n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == "_bind")
    src = "\n".join(text.splitlines()[bind.lineno - 1:bind.end_lineno])
    for name in ("pool_cache_get(pc, flags):", "pool_cache_put(pc, o):"):
        at = src.find(name)
        assert at >= 0 and "=>" in src[at:at + 200], "pool_cache._bind: no `=>` lines for %s" % name


def test_checks_can_fail():
    # the two detectors find what they are for
    assert header_lines("# a\n# b\n\nimport x\n# c\n") == 2
    assert missing_preconditions('def f(a):\n    """doc"""\n    return a\n') == ["f"]
    assert missing_preconditions('def f(a):\n    """doc"""\n    # => a > 0\n    return a\n') == []
    assert missing_preconditions('def _f(a):\n    return a\n') == []


def private_consts(text):
    """{name: value} of the module's `_NAME = const(<literal>)` lines."""
    out = {}
    for node in ast.parse(text).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id.startswith("_") and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None) == "const" and node.value.args
                and isinstance(node.value.args[0], ast.Constant)):
            out[node.targets[0].id] = node.value.args[0].value
    return out


# a slow-path module repeats its core module's private const()s (MicroPython
# keeps no module attribute for them, so they cannot be imported): same values
SLOW_PATH_MODULES = [(core, m.stem) for m in sorted(PKG.glob("*.py")) for core in
                     ("vmem", "uvm_km", "pool_cache", "pool", "kmem", "extent", "board", "intr")
                     if m.stem.startswith(core + "_") and not m.stem.startswith("pool_cache" if core == "pool" else "\0")]


@pytest.mark.parametrize("core,slow", SLOW_PATH_MODULES, ids=["%s-%s" % p for p in SLOW_PATH_MODULES])
def test_repeated_private_consts_agree(core, slow):
    a = private_consts((PKG / (core + ".py")).read_text())
    b = private_consts((PKG / (slow + ".py")).read_text())
    differ = sorted(n for n in set(a) & set(b) if a[n] != b[n])
    assert not differ, "%s.py and %s.py give %s different values: %s" % (
        core, slow, ", ".join(differ), ["%s=%r/%r" % (n, a[n], b[n]) for n in differ])


def test_the_slow_path_modules_are_checked():
    names = {s for _, s in SLOW_PATH_MODULES}
    assert {"pool_setup", "pool_cache_setup", "vmem_setup", "kmem_native", "board_setup"} <= names, names
