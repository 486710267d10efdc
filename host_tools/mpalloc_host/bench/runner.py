"""Running one benchmark script and reading its "@@bench <key> <value>" lines."""
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from .. import FIRMWARE_DIR, ROOT
from ..errors import BenchError  # noqa: F401 (re-exported)

BENCH_DIR = ROOT / "tests" / "bench"
VENV_BIN = ROOT / ".venv" / "bin"



def parse_value(s):
    s = s.strip()
    if s in ("True", "False"):
        return s == "True"
    if s == "None":
        return None
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s.strip("'\"")


def parse(text):
    """{key: value} from the @@bench lines of a script's output (later lines win)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("@@bench "):
            continue
        parts = line.split(None, 2)
        if len(parts) == 3:
            out[parts[1]] = parse_value(parts[2])
    return out


def script_text(name, args):
    """benchcore + the script as one piece of code (for a board without the files),
    with BENCH_ARGS set in front."""
    core = (BENCH_DIR / "benchcore.py").read_text()
    body = (BENCH_DIR / name).read_text()
    body = "\n".join(ln for ln in body.splitlines() if not ln.startswith("from benchcore import"))
    return "BENCH_ARGS = %r\n%s\n%s\n" % (" ".join(args), core, body)


def micropython_exe():
    exe = VENV_BIN / "micropython"
    if exe.exists():
        return str(exe)
    from shutil import which

    w = which("micropython")
    if not w:
        raise BenchError("no MicroPython unix port (.venv/bin/micropython): run make setup")
    return w


def compiled_firmware(dest=None):
    """firmware/ compiled with mpy-cross into out/bench/mpy (refreshed when a source
    is newer): what `deploy --mpy` gives a board, and it spares a small heap the
    compiler's peak. Returns the directory, or None where mpy-cross is missing."""
    dest = Path(dest or ROOT / "out" / "bench" / "mpy")
    exe = VENV_BIN / "mpy-cross"
    if not exe.exists():
        return None
    for src in FIRMWARE_DIR.rglob("*.py"):
        rel = src.relative_to(FIRMWARE_DIR).with_suffix(".mpy")
        out = dest / rel
        if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [str(exe), "-o", str(out), str(src)]
        if src.name.endswith("_native.py"):  # viper code compiles only for an arch: the unix port's
            arch = {"x86_64": "x64", "AMD64": "x64", "aarch64": "arm64"}.get(platform.machine())
            if arch is None:
                shutil.copyfile(src, out.with_suffix(".py"))
                continue
            cmd.insert(1, "-march=" + arch)
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise BenchError("mpy-cross %s: %s" % (src.name, (p.stderr.strip().splitlines() or ["failed"])[-1]))
    return dest


def _last_error(p):
    # MicroPython prints its traceback on stdout, CPython on stderr
    lines = [ln for ln in (p.stderr + "\n" + p.stdout).splitlines() if ln.strip() and not ln.startswith("@@bench")]
    return lines[-1].strip() if lines else "exit %d" % p.returncode


class Local:
    """A script in a fresh local interpreter: the MicroPython unix port with a given
    heap (the vboard profile's), or CPython. Each run is a new process."""

    def __init__(self, kind, heap=None, timeout=600, mpy=True):
        self.kind = kind  # "micropython" | "cpython"
        self.heap = heap
        self.timeout = timeout
        self.fw = compiled_firmware() if (mpy and kind == "micropython") else None

    def run(self, name, args=(), heap=None):
        path = str(BENCH_DIR / name)
        env = dict(os.environ)
        paths = "%s%s%s" % (self.fw or FIRMWARE_DIR, os.pathsep, BENCH_DIR)
        if self.kind == "micropython":
            argv = [micropython_exe()]
            h = heap or self.heap
            if h:
                argv += ["-X", "heapsize=%d" % h]
            env["MICROPYPATH"] = paths
        else:
            argv = [sys.executable]
            env["PYTHONPATH"] = paths + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        argv += [path] + list(args)
        try:
            p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=self.timeout, cwd=str(ROOT))
        except subprocess.TimeoutExpired:
            raise BenchError("%s on %s: no result within %d s" % (name, self.kind, self.timeout)) from None
        res = parse(p.stdout)
        if p.returncode != 0:
            res["%s.crashed" % Path(name).stem] = _last_error(p).replace(" ", "_")[:160]
        return res


class OnBoard:
    """A script on a connected Board (mpalloc_host.board.Board): firmware deployed
    once, then benchcore + script sent through the raw REPL."""

    def __init__(self, board, timeout=600):
        self.board = board
        self.timeout = timeout
        self._deployed = False

    def run(self, name, args=(), heap=None, fresh=False):
        b = self.board
        if not self._deployed:
            b.deploy()
            self._deployed = True
        if fresh:
            b.soft_reset()
        try:
            out = b.exec(script_text(name, args), timeout=self.timeout)
        except Exception as e:  # BoardExecError: the script raised on the board
            res = parse(str(getattr(e, "output", "") or ""))
            res["%s.crashed" % Path(name).stem] = str(e).splitlines()[-1].replace(" ", "_")[:120] if str(e) else "error"
            return res
        return parse(out)
