"""The device suites for extent and board, run straight on the unix port with
each profile's board.json (as the virtual board does), plus CPython checks of
the board module's profile handling."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))
MP = ROOT / ".venv" / "bin" / "micropython"

from mpalloc_host import profiles as P  # noqa: E402


def run_suite(tmp_path, board, suite, trimmed=False):
    prof = P.load(board)
    data = P.device_json(prof, 10240 if trimmed else None) if trimmed else json.dumps(prof).encode()
    (tmp_path / "board.json").write_bytes(data)
    r = subprocess.run([str(MP), "-X", "heapsize=384K", str(ROOT / "tests" / "device" / suite)],
                       cwd=tmp_path, env={"MICROPYPATH": str(ROOT / "firmware")},
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    m = re.search(r"@@mpt summary \S+ passed=(\d+) failed=(\d+) skipped=(\d+)", out)
    assert m, out
    return int(m.group(1)), int(m.group(2)), out


@pytest.mark.parametrize("board", ["rp2040", "esp32", "unix"])
def test_board_suite_on_unix_port(tmp_path, board):
    passed, failed, out = run_suite(tmp_path, board, "test_board.py")
    assert failed == 0, out
    assert passed >= 6


def test_board_suite_with_trimmed_profile(tmp_path):
    passed, failed, out = run_suite(tmp_path, "rp2040", "test_board.py", trimmed=True)
    assert failed == 0, out


def test_extent_suite_on_unix_port(tmp_path):
    passed, failed, out = run_suite(tmp_path, "unix", "test_extent.py")
    assert failed == 0 and passed == 6, out


def test_uart0_twice_names_first_owner_on_virtual_rp2040(tmp_path):
    (tmp_path / "board.json").write_text(json.dumps(P.load("rp2040")))
    code = ("from mpalloc import board\nboard.init()\nboard.claim('uart-a', 'UART0')\n"
            "try:\n board.claim('uart-b', 0x40034000, 4)\nexcept OSError as e:\n print('ERR', e.args[0], e.args[1])\n")
    r = subprocess.run([str(MP), "-X", "heapsize=384K", "-c", code], cwd=tmp_path,
                       env={"MICROPYPATH": str(ROOT / "firmware")}, capture_output=True, text=True, timeout=60)
    assert "ERR 11 extent_alloc_region: 0x40034000-0x40034003 in 'rp2040 peripherals' overlaps " \
           "0x40034000-0x40037fff claimed by 'uart-a'" in r.stdout, r.stdout + r.stderr
