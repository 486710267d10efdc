"""Firmware sources cut down to what one suite reaches, for boards whose flash and
heap cannot hold whole modules (the micro:bit v1: about 15 KB of flash filesystem,
10 KB of gc heap, MicroPython 1.9.2 compiling from source).

Nothing is rewritten by hand and no module is forked: this is dead-code
elimination on the module's own text.

* shake(): a module keeps every top-level statement except `def` and `class`
  statements and private constants (`_NAME = const(...)`) that nothing kept
  refers to. Roots are the names other code uses
  from the module (`pool.pool_get` in a suite, `intr.mutex_enter` in pool) and
  every name any kept statement mentions (a function body mentioning a name
  keeps that definition: over-approximate, never under). A module used as a
  value (`_mem[0] = mem`) is kept whole.
* minify(): docstrings and comments out, one space per indentation level
  (checked: the result parses to the same tree).
* closure(): the suite's modules, dependencies first, each shaken with the roots
  of every kept user; lazy imports inside dropped functions no longer count, so
  e.g. pool without pool_allocator_kmem needs no uvm_km/vmem.

    for name, text in closure(suite_source):   # [("mpalloc.intr", "..."), ...]
        ...
"""
import ast
from pathlib import Path

from . import FIRMWARE_DIR

ALL = "*"  # root set meaning: keep the whole module


def _module_path(name, root=FIRMWARE_DIR):
    if name.startswith("mpalloc."):
        return Path(root) / "mpalloc" / (name[8:] + ".py")
    return Path(root) / (name + ".py")


def _is_module(name, root=FIRMWARE_DIR):
    return name != "mpalloc" and _module_path(name, root).is_file()


def _walk_outside_defs(tree):
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for c in ast.iter_child_nodes(node):
            if not isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                todo.append(c)


def _imports(tree, root=FIRMWARE_DIR, walk=ast.walk):
    """{alias: module} for firmware modules bound to a name anywhere in the tree,
    and {name: (module, attr)} for names imported from a firmware module."""
    mods, names = {}, {}
    for node in walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if _is_module(a.name, root):
                    mods[a.asname or a.name.split(".")[0]] = a.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = "mpalloc" + ("." + base if base else "")
            for a in node.names:
                full = base + "." + a.name if base else a.name
                if _is_module(full, root):
                    mods[a.asname or a.name] = full
                elif _is_module(base, root):
                    names[a.asname or a.name] = (base, a.name)
    return mods, names


class _Refs(ast.NodeVisitor):
    """Names a piece of code mentions; module.attr uses; modules used whole."""

    def __init__(self, mods, names):
        self.mods, self.imported = mods, names
        self.names = set()
        self.attrs = set()  # (module, attr)
        self.whole = set()  # modules used as values

    def visit_Attribute(self, node):
        if isinstance(node.value, ast.Name) and node.value.id in self.mods:
            self.attrs.add((self.mods[node.value.id], node.attr))
            return
        self.generic_visit(node)

    def visit_Name(self, node):
        self.names.add(node.id)
        if node.id in self.mods and isinstance(node.ctx, ast.Load):
            self.whole.add(self.mods[node.id])
        if node.id in self.imported:
            self.attrs.add(self.imported[node.id])

    def visit_Global(self, node):
        self.names.update(node.names)

    def visit_alias(self, node):
        n = node.asname or node.name.split(".")[0]
        if n in self.imported:
            self.attrs.add(self.imported[n])


def _refs(node, mods, names):
    r = _Refs(mods, names)
    r.visit(node)
    return r


def _private_const(st):
    # `_NAME = const(...)`: MicroPython folds it into its users and keeps no
    # global (so no other module can use it); nothing kept using it, it goes
    return (isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name)
            and st.targets[0].id.startswith("_") and isinstance(st.value, ast.Call)
            and isinstance(st.value.func, ast.Name) and st.value.func.id == "const")


def shake(text, roots, root=FIRMWARE_DIR):
    """(kept tree, {module: roots it needs}, hard) for module source `text` whose
    users need `roots` (a set of names, or ALL). hard: the modules imported at
    module level (an import inside a function is soft: it runs only if the
    function is called, so it does not bring its module to a small board)."""
    tree = ast.parse(text)
    mods, names = _imports(tree, root)
    if roots == ALL:
        keep = list(tree.body)
    else:
        defs = {}
        keep_idx = set()
        for i, st in enumerate(tree.body):
            if isinstance(st, (ast.FunctionDef, ast.ClassDef)) and not st.decorator_list:
                defs.setdefault(st.name, []).append(i)
            elif _private_const(st):
                defs.setdefault(st.targets[0].id, []).append(i)
            else:
                keep_idx.add(i)
        want = set(roots)
        done = set()
        todo = list(keep_idx)
        while True:
            for n in list(want - done):
                done.add(n)
                for i in defs.get(n, ()):
                    if i not in keep_idx:
                        keep_idx.add(i)
                        todo.append(i)
            if not todo:
                break
            while todo:
                want |= _refs(tree.body[todo.pop()], mods, names).names
        keep = [st for i, st in enumerate(tree.body) if i in keep_idx]
    tree.body = keep
    r = _refs(tree, mods, names)
    need = {}
    for m, a in r.attrs:
        need.setdefault(m, set()).add(a)
    for m in r.whole:
        need[m] = ALL
    top_mods, top_names = _imports(tree, root, _walk_outside_defs)
    hard = set(top_mods.values()) | {m for m, _ in top_names.values()}
    for m in hard:  # imported at module level but never used: the import must still work
        need.setdefault(m, set())
    return tree, need, hard


def drop_docstrings(tree):
    """`tree` (an ast.Module) without its module, class and function docstrings."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def minify(tree):
    """Source of `tree` without docstrings or comments, one space per indent level."""
    if isinstance(tree, str):
        tree = ast.parse(tree)
    text = ast.unparse(drop_docstrings(tree))
    out = []
    for line in text.splitlines():
        n = len(line) - len(line.lstrip(" "))
        out.append(" " * (n // 4) + line[n:] if n % 4 == 0 else line)
    small = "\n".join(out) + "\n"
    if ast.dump(ast.parse(small)) != ast.dump(ast.parse(text)):
        return text + "\n"  # a string spanning lines: keep the indentation as is
    return small


def closure(suite_text, root=FIRMWARE_DIR, whole=()):
    """[(module name, minified shaken source)] the suite needs, dependencies first.
    Only modules imported at module level (by the suite or a module it needs) are
    in it; an import inside a function names a module that may be absent (calling
    that function then raises ImportError on the board). whole: module names to
    keep complete."""
    _, need, hard = shake(suite_text, ALL, root)
    members = set(hard)
    roots = {}  # module -> set of names, or ALL

    def add(m, r):
        if roots.get(m) == ALL:
            return False
        if r == ALL or m in whole:
            roots[m] = ALL
            return True
        old = roots.setdefault(m, set())
        if r - old:
            old |= r
            return True
        return False

    for m, r in need.items():
        add(m, r)
    for m in whole:
        add(m, ALL)
    trees, deps = {}, {}
    changed = True
    while changed:  # to a fixpoint: a user's kept code adds roots to what it imports
        changed = False
        for m in sorted(members):
            t, sub, h = shake(_module_path(m, root).read_text(), roots.get(m, set()), root)
            trees[m], deps[m] = t, h
            if h - members:
                members |= h
                changed = True
            for d, r in sub.items():
                if add(d, r):
                    changed = True
    order = []

    def visit(m, path=()):
        if m in order or m in path:
            return
        for d in sorted(deps[m]):
            visit(d, path + (m,))
        order.append(m)

    for m in sorted(members):
        visit(m)
    return [(m, minify(trees[m])) for m in order]


class _Inline(ast.NodeTransformer):
    def __init__(self, consts):
        self.consts = consts

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load) and node.id in self.consts:
            return ast.copy_location(ast.Constant(self.consts[node.id]), node)
        return node


def inline_consts(tree):
    """Module-level `NAME = const(N)` folded into every use, as MicroPython's
    compiler does within one compilation unit; needed when a module is compiled
    in pieces (a `_NAME` const is not stored in the module's globals). `_NAME`
    assignments go, public ones stay (users read them from the module)."""
    consts = {}
    body = []
    for st in tree.body:
        if (isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name)
                and isinstance(st.value, ast.Call) and isinstance(st.value.func, ast.Name)
                and st.value.func.id == "const" and len(st.value.args) == 1
                and isinstance(st.value.args[0], ast.Constant) and isinstance(st.value.args[0].value, int)):
            consts[st.targets[0].id] = st.value.args[0].value
            if st.targets[0].id.startswith("_"):
                continue
        body.append(st)
    tree.body = body
    return ast.fix_missing_locations(_Inline(consts).visit(tree))


def pieces(text, limit=600):
    """Module source (minified) cut at top-level statements into pieces of about
    `limit` bytes (a longer statement is a piece alone), consts inlined: each
    piece compiles on its own into the module's globals."""
    tree = inline_consts(ast.parse(text))
    out, cur = [], ""
    for st in tree.body:
        s = minify(ast.Module(body=[st], type_ignores=[]))
        if cur and len(cur) + len(s) > limit:
            out.append(cur)
            cur = ""
        cur += s
    if cur:
        out.append(cur)
    return out
