"""A micro:bit firmware with mpalloc frozen as bytecode in flash (``qemu:microbit-frozen``).

Debian's firmware-microbit-micropython (MicroPython 1.9.2) compiles every module
from source into its 10 KB heap, where pool(9) does not fit. Built from the same
Debian source package with the modules of FROZEN_SUITES frozen
(MICROPY_MODULE_FROZEN_MPY), the code stays in flash and the heap holds only
their data: pool's get/put can be shown allocation-free under heap_lock on the
micro:bit itself.

Steps (build(); everything under out/microbit-frozen/, the .hex cached by a hash
of its inputs, so a rebuild happens only when one changes):

1. ``apt-get source --download-only firmware-microbit-micropython=DEBIAN_VERSION``
   (needs a deb-src entry: host_tools/setup.sh adds one when root), then
   ``dpkg-source -x`` into a fresh tree (Debian's patches applied).
2. mbfreeze (mbfreeze/main.c, a host program built from that tree's own py/
   core: same compiler, same static qstr table) compiles each module and writes
   it as C: bytecode, constant tables and the new qstrs in ROM
   (mp_frozen_mpy_names/_content, MICROPY_QSTR_EXTRA_POOL). The source package
   has neither mpy-cross nor mpy-tool.py, hence this.
3. The port config gets MICROPY_MODULE_FROZEN_MPY and memoryview (mpalloc.mem
   needs it; its qstr is appended to the pregenerated qstr table), then the
   build runs as debian/rules does (``make all`` with yotta, offline, C++14).

Frozen: each suite's modules cut to what it reaches (shrink.closure), imports
flattened (``import mpalloc_intr as intr``, as for qemu:microbit), mptest, and
the suite itself as ``mpt_suite_<name>`` (its closing ``s.run()`` dropped).
On the board the modules are imported from the REPL one by one and the suite is
run from there (run_suite()): the C stack (2 KB) holds only about six nested
Python calls.

    python -m mpalloc_host.flash.microbit_frozen      # build (or find) it, print the path
"""
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .. import DEVICE_TESTS_DIR, ROOT
from .errors import FlashError

PACKAGE = "firmware-microbit-micropython"
DEBIAN_VERSION = "1.0.1-4"
UPSTREAM = "1.0.1"
OUT = ROOT / "out" / "microbit-frozen"
MBFREEZE = Path(__file__).resolve().parent / "mbfreeze"
FROZEN_SUITES = ["test_pool_heaplock.py"]
# what the build runs; host_tools/setup.sh installs the packages
TOOLS = {"arm-none-eabi-gcc": "gcc-arm-none-eabi", "yotta": "yotta", "srec_cat": "srecord",
         "cmake": "cmake", "ninja": "ninja-build", "dpkg-source": "dpkg-dev", "gcc": "gcc"}

# appended to inc/microbit/mpconfigport.h
PORT_CONFIG = """
// mpalloc: modules frozen as bytecode in flash (frozen_mpy.c, made by mbfreeze)
#define MICROPY_MODULE_FROZEN_MPY   (1)
#define MICROPY_QSTR_EXTRA_POOL     mp_qstr_frozen_const_pool
#undef MICROPY_PY_BUILTINS_MEMORYVIEW
#define MICROPY_PY_BUILTINS_MEMORYVIEW (1)
"""
# static qstrs the added features need (the source package ships the table generated)
EXTRA_QSTRS = ["memoryview"]


def _qdef(name):
    h = 5381
    for c in name.encode():
        h = ((h * 33) ^ c) & 0xFFFFFFFF
    h &= 0xFF
    return 'QDEF(MP_QSTR_%s, (const byte*)"\\x%02x\\x%02x" "%s")\n' % (name, h or 1, len(name), name)


def frozen_sources(suites=None):
    """[(flat module name, source text)] to freeze, dependencies first."""
    from ..delivery.sources import flat_name, flat_source, strip_docstrings
    from ..shrink import closure

    mods, out = {}, []
    for fname in suites or FROZEN_SUITES:
        path = DEVICE_TESTS_DIR / fname
        src = path.read_text()
        for name, text in closure(src):
            if name not in mods:
                mods[name] = flat_source(text, origin=name)
                out.append((flat_name(name), mods[name]))
        flat = strip_docstrings(flat_source(src, origin=str(path)))
        m = re.search(r"^(\w+)\.run\(\)\s*\Z", flat, re.M)
        if not m:
            raise FlashError("a frozen suite must end with `s.run()`", where=path)
        out.append((suite_module(fname), flat[:m.start()]))
    return out


def suite_module(fname):
    """'test_pool_heaplock.py' -> 'mpt_suite_pool_heaplock' (its frozen name)."""
    return "mpt_suite_" + Path(fname).stem[5:]


def cache_key(sources):
    h = hashlib.sha256()
    h.update(("%s %s\n" % (PACKAGE, DEBIAN_VERSION)).encode())
    h.update(Path(__file__).read_bytes())
    for f in sorted(MBFREEZE.iterdir()):
        if f.is_file():
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    for name, text in sources:
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()[:16]


def hex_path(out=OUT, suites=None):
    return Path(out) / ("firmware-%s.hex" % cache_key(frozen_sources(suites)))


def _run(argv, cwd, log, env=None):
    with open(log, "ab") as f:
        f.write(("$ %s\n" % " ".join(map(str, argv))).encode())
        f.flush()
        r = subprocess.run(argv, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env)
    if r.returncode:
        tail = Path(log).read_text(errors="replace").splitlines()[-15:]
        raise FlashError("microbit-frozen: %s failed (exit %d), log %s:\n%s"
                         % (argv[0], r.returncode, log, "\n".join(tail)))


def check_tools():
    missing = sorted({pkg for exe, pkg in TOOLS.items() if not shutil.which(exe)})
    if missing:
        raise FlashError("microbit-frozen: missing Debian packages %s: run `make setup` as root "
                         "(host_tools/setup.sh installs them)" % " ".join(missing))


def _fetch_source(out, log):
    """The Debian source package's .dsc (downloaded once into out/src)."""
    src = out / "src"
    dsc = src / ("%s_%s.dsc" % (PACKAGE, DEBIAN_VERSION))
    if not dsc.is_file():
        src.mkdir(parents=True, exist_ok=True)
        try:
            _run(["apt-get", "source", "--download-only", "%s=%s" % (PACKAGE, DEBIAN_VERSION)], src, log)
        except FlashError as e:
            raise FlashError("%s\n(apt-get source needs a deb-src entry for Debian bookworm main: "
                             "`make setup` as root adds /etc/apt/sources.list.d/mpalloc-debsrc.sources)"
                             % e) from None
    return dsc


def build(out=OUT, suites=None, progress=None):
    """Path of the frozen firmware .hex, built first when no cached one matches.
    One build at a time per `out` (a lock file there): a second process (another
    pytest-xdist worker, a second `make microbit-frozen`) waits and uses its hex."""
    out = Path(out)
    sources = frozen_sources(suites)
    key = cache_key(sources)
    target = out / ("firmware-%s.hex" % key)
    if target.is_file():
        return target
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():  # built by the process that held the lock
            return target
        return _build(out, sources, key, target, progress)


def _build(out, sources, key, target, progress):
    check_tools()
    say = progress or (lambda msg: None)
    log = out / ("build-%s.log" % key)
    log.write_text("")
    t0 = time.monotonic()
    dsc = _fetch_source(out, log)
    work = out / ("build-%s" % key)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    tree = work / ("%s-%s" % (PACKAGE, UPSTREAM))
    say("unpacking %s" % dsc.name)
    _run(["dpkg-source", "--no-check", "-x", str(dsc), str(tree)], out, log)
    for a, b in (("yotta-targets", "yotta_targets"), ("yotta-modules", "yotta_modules")):
        if (tree / a).is_dir():
            (tree / a).rename(tree / b)
    with open(tree / "inc" / "microbit" / "mpconfigport.h", "a") as f:
        f.write(PORT_CONFIG)
    with open(tree / "inc" / "genhdr" / "qstrdefs.generated.h", "a") as f:
        for q in EXTRA_QSTRS:
            f.write(_qdef(q))
    say("building mbfreeze (host compiler from the firmware's py/ core)")
    mbf = work / "mbfreeze"
    objs = mbf / "obj"
    objs.mkdir(parents=True)
    for f in MBFREEZE.iterdir():
        shutil.copy(f, mbf / f.name)
    inc = ["-I%s" % mbf, "-I%s" % (tree / "inc"), "-I%s" % (tree / "inc" / "py")]
    skip = ("asm", "emitn", "emitinline", "nlrthumb", "nlrx86", "nlrxtensa", "nlrsetjmp", "modthread")
    for c in sorted((tree / "source" / "py").glob("*.c")):
        if c.stem.startswith(skip):
            continue
        _run(["gcc", "-c", "-O1", "-w", "-std=gnu99"] + inc + ["-o", str(objs / (c.stem + ".o")), str(c)], mbf, log)
    _run(["gcc", "-c", "-O1", "-Wall", "-std=gnu99"] + inc + ["-o", str(objs / "main.o"), str(mbf / "main.c")], mbf, log)
    _run(["gcc", "-o", str(mbf / "mbfreeze")] + sorted(str(p) for p in objs.glob("*.o")) + ["-lm"], mbf, log)
    say("freezing %s" % ", ".join(n for n, _ in sources))
    pydir = work / "frozen"
    pydir.mkdir()
    args = []
    for name, text in sources:
        (pydir / (name + ".py")).write_text(text)
        args.append("%s.py=%s" % (name, pydir / (name + ".py")))
    with open(tree / "source" / "microbit" / "frozen_mpy.c", "wb") as f, open(log, "ab") as lf:
        r = subprocess.run([str(mbf / "mbfreeze")] + args, stdout=f, stderr=lf)
    if r.returncode:
        raise FlashError("microbit-frozen: mbfreeze failed: %s" % log.read_text(errors="replace").splitlines()[-3:])
    say("building the firmware (yotta, arm-none-eabi-gcc)")
    # as debian/rules: C++14 (the DAL does not build as C++17)
    env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", CXXFLAGS="-std=gnu++14")
    _run(["make", "all"], tree, log, env=env)
    elf = tree / "build" / "bbc-microbit-classic-gcc-nosd" / "source" / "microbit-micropython"
    size = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True).stdout
    tmp = target.with_suffix(".tmp")
    shutil.copy(tree / "build" / "firmware.hex", tmp)
    tmp.rename(target)
    (out / ("firmware-%s.txt" % key)).write_text(
        "built in %.0f s from %s %s\nfrozen: %s\n%s" % (time.monotonic() - t0, PACKAGE, DEBIAN_VERSION,
                                                      " ".join(n for n, _ in sources), size))
    shutil.rmtree(work, ignore_errors=True)
    for old in out.glob("*-*.*"):  # earlier builds' hex, figures and logs
        if old.name.startswith(("firmware-", "build-")) and key not in old.name:
            old.unlink()
    return target


def run_suite(board, fname, timeout=120):
    """Run frozen suite `fname` on a Board booted from the frozen firmware:
    its modules imported from the REPL one per line (dependencies first), then
    ``mpt_suite_<name>.s.run()``. Returns the suite's output lines (@@mpt ...)."""
    if "soft_reset" in board.caps:
        board.soft_reset()  # a clean heap: the suite needs about 2 KB of the 3 KB left
    for name, _ in frozen_sources([fname]):
        board.exec("import %s" % name)
    board.exec("import gc\ngc.collect()")
    return board.exec("%s.s.run()" % suite_module(fname), timeout=timeout).splitlines()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    t0 = time.monotonic()
    try:
        p = build(progress=lambda m: print("[microbit-frozen] %s" % m, file=sys.stderr))
    except FlashError as e:
        print(e, file=sys.stderr)
        return 1
    print(p)
    if "-v" in argv:
        print("%.0f s" % (time.monotonic() - t0), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
