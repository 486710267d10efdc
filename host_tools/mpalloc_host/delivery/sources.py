"""Firmware sources as a board gets them: the module list, the package closure a
piece of code reaches, the flat rewrite for boards without directories, and
the prelude that turns sources sent through the REPL into modules.

No board is touched here; the strategies (fs, flat, ram, frozen) use these.
"""
import ast
import re

from .. import FIRMWARE_DIR
from ..errors import BoardError
from ..shrink import drop_docstrings

_NOT_FOR_BOARD = ("manifest.py",)  # firmware/manifest.py is for freezing into a build


def firmware_files(root=FIRMWARE_DIR):
    """[(board path, host Path)]: the top-level firmware modules (mptest, ...) and
    the mpalloc package, sorted."""
    files = [(p.name, p) for p in sorted(root.glob("*.py")) if p.name not in _NOT_FOR_BOARD]
    for p in sorted((root / "mpalloc").glob("*.py")):
        files.append(("mpalloc/" + p.name, p))
    return files


_IMPORT_RE = re.compile(r"^(\s*)(?:from\s+(?:mpalloc(?:\.(\w+))?|\.(\w+)?)\s+import\s+(.+?)"
                        r"|import\s+mpalloc(?:\.(\w+))?(\s+as\s+\w+)?)\s*(?:#.*)?$")


def flat_name(module):
    """'mpalloc.intr' -> 'mpalloc_intr' (flat filesystems have no directories)."""
    return module.replace(".", "_")


def flat_source(text, origin="?"):
    """Rewrite package imports for a flat filesystem (see the module docstring).
    Unknown import forms of mpalloc raise BoardError naming file and line."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        m = _IMPORT_RE.match(line)
        if not m:
            out.append(line)
            continue
        ind, sub_from, rel_sub, names, sub_imp, alias = m.groups()
        if names is None:  # import mpalloc.x as y
            if not sub_imp or not alias:
                raise BoardError("%s:%d: cannot flatten %r (use 'import mpalloc.x as y')" % (origin, n, line.strip()))
            out.append("%simport mpalloc_%s%s" % (ind, sub_imp, alias))
            continue
        sub = sub_from or rel_sub
        if sub:  # from mpalloc.x import a, b   /   from .x import a
            out.append("%sfrom mpalloc_%s import %s" % (ind, sub, names.strip()))
            continue
        parts = []
        for item in names.strip().strip("()").split(","):
            w = item.split()
            if not w:
                continue
            if len(w) == 3 and w[1] == "as":
                parts.append("import mpalloc_%s as %s" % (w[0], w[2]))
            elif len(w) == 1 and w[0] != "*":
                parts.append("import mpalloc_%s as %s" % (w[0], w[0]))
            else:
                raise BoardError("%s:%d: cannot flatten %r" % (origin, n, line.strip()))
        out.append(ind + "; ".join(parts))
    return "\n".join(out) + "\n"


def strip_docstrings(text):
    """Same code without docstrings and comments (ast round trip): on a 10 KB heap
    the parse tree of a module's docstrings is what makes the import fail."""
    return ast.unparse(drop_docstrings(ast.parse(text))) + "\n"


def module_deps(text, root=FIRMWARE_DIR):
    """Names of firmware modules a source imports: {'mptest', 'mpalloc.intr', ...}."""
    top = {p.stem for p in root.glob("*.py") if p.name not in _NOT_FOR_BOARD}
    deps = set()
    for line in text.splitlines():
        s = line.strip()
        m = re.match(r"from\s+(\.|mpalloc)(\.(\w+))?\s+import\s+(.+)", s)
        if m:
            if m.group(3):
                deps.add("mpalloc." + m.group(3))
            else:
                for item in m.group(4).strip("()").split(","):
                    w = item.split()
                    if w and w[0] != "*":
                        deps.add("mpalloc." + w[0])
            continue
        m = re.match(r"import\s+(mpalloc\.\w+)", s)
        if m:
            deps.add(m.group(1))
            continue
        m = re.match(r"(?:from\s+(\w+)\s+import|import\s+([\w, ]+))", s)
        if m:
            for name in (m.group(1) or m.group(2)).split(","):
                name = name.strip().split(" ")[0]
                if name in top:
                    deps.add(name)
    return deps


def module_closure(text, root=FIRMWARE_DIR):
    """Firmware modules needed by `text`, dependencies first: [(name, Path)]."""
    order, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        path = root / "mpalloc" / (name.split(".", 1)[1] + ".py") if "." in name else root / (name + ".py")
        if not path.is_file():
            return  # a name imported from the package that is not a module (e.g. a function)
        for d in sorted(module_deps(path.read_text(), root)):
            visit(d)
        order.append((name, path))

    for d in sorted(module_deps(text, root)):
        visit(d)
    return order


# Sources sent through the REPL become modules: exec'd into a dict, copied onto a
# class standing in for the module (MicroPython 1.9.2 has no module type to call),
# entered in sys.modules under the package name.
RAM_PRELUDE = r"""
import sys
def _mod(name, src):
    d = {'__name__': name}
    exec(src, d)
    m = type(name.replace('.', '_'), (), {})
    for k in d:
        try:
            setattr(m, k, d[k])
        except Exception:
            pass
    sys.modules[name] = m
    if '.' in name:
        p, c = name.rsplit('.', 1)
        if p not in sys.modules:
            sys.modules[p] = type(p, (), {})
        setattr(sys.modules[p], c, m)
"""


def ram_modules(modules, skip=()):
    """REPL code that makes `modules` ([(name, Path)]) importable, except those in `skip`."""
    code = RAM_PRELUDE
    for name, path in modules:
        if name not in skip:
            code += "_mod(%r, %r)\n" % (name, path.read_text())
    return code + "del _mod\n"
