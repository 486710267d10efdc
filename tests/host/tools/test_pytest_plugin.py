"""The pytest plugin: device suites collected as one item per device test, the
`board` fixture, the `needs` marker, and a board that cannot be reached."""
import os
import subprocess

from board_doubles import FAULTS, ROOT

PY = str(ROOT / ".venv" / "bin" / "python")


def pytest_run(args, cwd, env=None, timeout=180):
    e = dict(os.environ, MPALLOC_CONNECT_TIMEOUT="4")
    e.pop("MPALLOC_PORT", None)
    e.update(env or {})
    return subprocess.run([PY, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:labgrid", "-q", "-rs"] + args, cwd=str(cwd),
                          capture_output=True, text=True, timeout=timeout, env=e)


def test_device_suite_items_pass_fail_skip(tmp_path):
    dev = tmp_path / "device"
    dev.mkdir()
    (dev / "test_mixed.py").write_text((FAULTS / "fault_fail.py").read_text())
    (dev / "test_ok.py").write_text((FAULTS / "fault_ok.py").read_text())
    p = pytest_run([str(dev), "--mpalloc-port", "vboard:unix", "-vv"], cwd=tmp_path)
    out = p.stdout
    assert p.returncode == 1, out + p.stderr
    assert "test_mixed.py::fails_with_log FAILED" in out
    assert "test_mixed.py::skipped_on_purpose SKIPPED" in out and "not today" in out
    assert "test_mixed.py::garbage_output_then_pass PASSED" in out
    assert "test_ok.py::adds PASSED" in out and "test_ok.py::prints_and_passes PASSED" in out
    assert "one vs two: 1 != 2" in out and "before the failure" in out  # device traceback and log
    assert "1 failed, 3 passed, 1 skipped" in out


def test_board_fixture_and_needs_marker(tmp_path):
    (tmp_path / "test_hil.py").write_text(
        "import pytest\n\n"
        "def test_eval(board):\n"
        "    assert board.eval('1 + 2') == 3\n"
        "    assert 'hello' in board.exec('print(\"hello\")')\n"
        "    assert board.eval('__import__(\"mptest\").__name__') == 'mptest'  # deployed\n\n"
        "@pytest.mark.needs('heap:1000000000')\n"
        "def test_needs_more_heap(board):\n"
        "    raise AssertionError('must be skipped')\n\n"
        "@pytest.mark.needs('threads')\n"
        "def test_threads(board):\n"
        "    assert board.eval('__import__(\"_thread\").__name__') == '_thread'\n")
    p = pytest_run(["test_hil.py", "--mpalloc-port", "vboard:rp2040"], cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "2 passed, 1 skipped" in p.stdout
    assert "lacks heap:1000000000" in p.stdout


def test_unreachable_board_is_an_error_not_a_skip(tmp_path):
    (tmp_path / "test_hil.py").write_text("def test_eval(board):\n    assert board.eval('1') == 1\n")
    p = pytest_run(["test_hil.py", "--mpalloc-port", "/dev/ttyNOSUCH3", "--mpalloc-board", "rp2040"], cwd=tmp_path)
    assert p.returncode == 1, p.stdout
    assert "cannot use board /dev/ttyNOSUCH3" in p.stdout
    assert "Traceback" not in p.stdout


def test_tests_after_a_timeout_are_reported_not_run(tmp_path):
    # the endless test fails at its deadline; the one after it is a skip naming why
    dev = tmp_path / "device"
    dev.mkdir()
    (dev / "test_loop.py").write_text((FAULTS / "fault_loop.py").read_text())
    p = pytest_run([str(dev), "--mpalloc-port", "vboard:unix", "--mpalloc-timeout", "2", "-vv"], cwd=tmp_path)
    out = p.stdout
    assert p.returncode == 1, out + p.stderr
    assert "test_loop.py::spins_forever FAILED" in out
    assert "test_loop.py::never_reached SKIPPED" in out
    assert "not run: test loop.spins_forever timed out after 2 s" in out
    assert "1 failed, 1 skipped" in out


SELECTION_SUITE = '''# Which tests ran on the board: `chosen` fails if `other` ran before it.
from mptest import Suite, eq

s = Suite("sel")
ran = []


@s.test
def other():
    ran.append("other")
    print("OTHER RAN ON THE BOARD")


@s.test
def chosen():
    eq(ran, [], "tests that ran before chosen")


@s.test
def also_other():
    ran.append("also_other")


s.run()
'''


def test_deselection_reaches_the_board(tmp_path):
    dev = tmp_path / "device"
    dev.mkdir()
    (dev / "test_sel.py").write_text(SELECTION_SUITE)
    p = pytest_run([str(dev), "--mpalloc-port", "vboard:unix", "-k", "chosen", "-vv"], cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "test_sel.py::chosen PASSED" in p.stdout and "1 passed, 2 deselected" in p.stdout
    assert "OTHER RAN" not in p.stdout
    # node ids select too; and without a selection every test runs (chosen then fails)
    p = pytest_run([str(dev / "test_sel.py") + "::chosen", "--mpalloc-port", "vboard:unix"], cwd=tmp_path)
    assert p.returncode == 0 and "1 passed" in p.stdout, p.stdout + p.stderr
    p = pytest_run([str(dev), "--mpalloc-port", "vboard:unix"], cwd=tmp_path)
    assert p.returncode == 1 and "1 failed, 2 passed" in p.stdout, p.stdout + p.stderr


def test_options_sit_beside_pytest_embedded_and_pytest_timeout(tmp_path):
    # pytest-embedded (installed from requirements.txt) owns --port, pytest-timeout --timeout
    (tmp_path / "test_both.py").write_text(
        "def test_both(request, board):\n"
        "    pm = request.config.pluginmanager\n"
        "    assert pm.hasplugin('pytest_embedded') and pm.hasplugin('mpalloc') and pm.hasplugin('timeout')\n"
        "    assert request.config.getoption('port') == '/dev/ttyEMBEDDED'\n"
        "    assert request.config.getoption('mpalloc_port') == 'vboard:unix'\n"
        "    assert request.config.getoption('mpalloc_timeout') == 7.5\n"
        "    assert request.config.getoption('timeout') == 99\n"
        "    assert board.name == 'vboard:unix' and board.eval('6 * 7') == 42\n")
    p = pytest_run(["test_both.py", "--mpalloc-port", "vboard:unix", "--mpalloc-timeout", "7.5",
                    "--port", "/dev/ttyEMBEDDED", "--timeout", "99"], cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 passed" in p.stdout
    p = pytest_run(["--help"], cwd=tmp_path)
    assert "--mpalloc-port" in p.stdout and "--mpalloc-board" in p.stdout and "--device-timeout" in p.stdout
