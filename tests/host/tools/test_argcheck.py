"""Argument validation (issue #16): deadlines are finite positive seconds, counts
are non-negative, anything else is one line on stderr naming the option, exit
status 2, before any board is opened."""
import argparse

import pytest

from board_doubles import run_cli  # noqa: F401 (fixture)
from mpalloc_host import argcheck
from test_cli import error_line
from test_pytest_plugin import pytest_run


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "-5", "0", "0.0", "-0", "x", "", "1e400"])
def test_seconds_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError) as ei:
        argcheck.seconds(text)
    assert repr(text) in str(ei.value)


def test_seconds_and_count_accept():
    assert argcheck.seconds("2.5") == 2.5 and argcheck.seconds("1e-3") == 0.001
    assert argcheck.count("0") == 0 and argcheck.count("7") == 7


@pytest.mark.parametrize("text", ["-1", "1.5", "x", "nan"])
def test_count_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError):
        argcheck.count(text)


def test_env_seconds(monkeypatch):
    monkeypatch.setenv("H16_S", "nan")
    with pytest.raises(ValueError, match="H16_S='nan'"):
        argcheck.env_seconds("H16_S", 1.0)
    monkeypatch.setenv("H16_S", "3")
    assert argcheck.env_seconds("H16_S", 1.0) == 3.0
    monkeypatch.setenv("H16_S", "")
    assert argcheck.env_seconds("H16_S", 1.0) == 1.0


@pytest.mark.parametrize("argv, option", [
    (["test", "--timeout", "nan", "ok"], "--timeout"),
    (["test", "--timeout", "inf", "ok"], "--timeout"),
    (["test", "--timeout", "-5", "ok"], "--timeout"),
    (["test", "--timeout", "0", "ok"], "--timeout"),
    (["stats", "--watch", "nan"], "--watch"),
    (["stats", "--watch", "-1"], "--watch"),
    (["demo", "--packets", "-1"], "--packets"),
    (["demo", "--packets", "2.5"], "--packets"),
])
def test_cli_refuses_bad_numbers(run_cli, argv, option):
    # --port names a board that does not exist: the check must come first
    p = run_cli(argv + ["--port", "/dev/ttyNOSUCH16"], timeout=30)
    line = error_line(p)
    assert "argument %s: %r" % (option, argv[argv.index(option) + 1]) in line, line
    assert p.stdout == ""


def test_plugin_refuses_bad_device_timeout(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    for bad in ("nan", "inf", "-5", "0"):
        p = pytest_run(["test_x.py", "--mpalloc-timeout", bad], cwd=tmp_path, timeout=60)
        assert p.returncode == 4, (bad, p.stdout, p.stderr)       # pytest's usage error
        assert "argument --mpalloc-timeout/--device-timeout: %r: a deadline must be a finite number of seconds > 0" \
            % bad in p.stderr
        assert "Traceback" not in p.stdout + p.stderr


def test_runner_refuses_bad_reconnect_env(monkeypatch):
    from mpalloc_host.runner import Runner
    from mpalloc_host.transport import BoardError

    monkeypatch.setenv("MPALLOC_RECONNECT_TIMEOUT", "inf")
    with pytest.raises(BoardError, match="MPALLOC_RECONNECT_TIMEOUT='inf'"):
        Runner(board=None)
