"""pip install of a built wheel into a fresh venv works outside the checkout: the
firmware, the board profiles and the device suites are inside the package, and the
extras bring what their commands import. Builds with pip (the registry or the local
pip cache supply setuptools and the pinned dependencies); ~20 s.
"""
import shutil
import subprocess
import sys
import venv

import pytest

from mpalloc_host import ROOT

SOURCES = ("pyproject.toml", "setup.py", "README.md", "host_tools/mpalloc_host", "firmware", "boards",
           "tests/device")


def run(argv, cwd, timeout=300):
    r = subprocess.run([str(a) for a in argv], cwd=str(cwd), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, "%s: exit %d\n%s\n%s" % (" ".join(map(str, argv)), r.returncode, r.stdout[-2000:],
                                                       r.stderr[-2000:])
    return r.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for rel in SOURCES:                  # a clean copy: no build/ or egg-info of the checkout
        p = ROOT / rel
        if p.is_dir():
            shutil.copytree(p, src / rel, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, src / rel)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check", "-w", tmp / "dist",
         src], cwd=tmp)
    wheels = list((tmp / "dist").glob("mpalloc-*.whl"))
    assert len(wheels) == 1, wheels
    venv.create(tmp / "venv", with_pip=True)
    py = tmp / "venv" / "bin" / "python"
    run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "%s[flash,vboard]" % wheels[0]], cwd=tmp)
    shutil.rmtree(src)                   # nothing of a checkout is left to lean on
    work = tmp / "work"
    work.mkdir()
    return tmp / "venv" / "bin", work


def test_the_package_holds_firmware_profiles_and_suites(installed):
    bin_, work = installed
    out = run([bin_ / "python", "-c", "import mpalloc_host as m; print(m.ROOT); print(m.FIRMWARE_DIR.is_dir(), "
               "(m.BOARDS_DIR / 'rp2040.json').is_file(), (m.DEVICE_TESTS_DIR / 'test_vmem.py').is_file())"], cwd=work)
    root, flags = out.splitlines()
    assert root.endswith("site-packages/mpalloc_host/_data") and flags == "True True True"


def test_boards_lists_the_profiles(installed):
    bin_, work = installed
    out = run([bin_ / "mpalloc", "boards"], cwd=work)
    for name in ("rp2040", "esp32", "microbit"):
        assert name in out
    assert "warning" not in out


def test_flash_extra_brings_what_flashing_imports(installed):
    bin_, work = installed
    run([bin_ / "python", "-c", "import mpalloc_host.cmd_flash, mpalloc_host.flash.microbit_hex, "
         "mpalloc_host.flash.esp"], cwd=work)
    assert "usage" in run([bin_ / "mpalloc", "flash", "--help"], cwd=work)


def test_test_and_stats_on_a_virtual_board(installed):
    bin_, work = installed
    out = run([bin_ / "mpalloc", "test", "--port", "vboard:rp2040", "mptest"], cwd=work, timeout=120)
    assert "5 passed, 0 failed" in out
    out = run([bin_ / "mpalloc", "stats", "--port", "vboard:rp2040", "--json"], cwd=work, timeout=120)
    assert '"memmap"' in out
