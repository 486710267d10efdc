"""Helpers and fixtures for the host tests of the harness (transport, board, runner,
CLI). Test modules import what they use (fixtures too: `from board_doubles import
fake_board`); conftest.py stays free for project-wide switches.

CI=true turns a missing runtime or emulator into a failure instead of a skip.
"""
import contextlib
import os
import pty
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MPALLOC = ROOT / ".venv" / "bin" / "mpalloc"
FAULTS = Path(__file__).resolve().parents[1] / "device_faults"


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_target(spec, board=None):
    """open_target(spec) or skip (fail in CI) when its runtime is missing here."""
    try:
        from mpalloc_host.targets import TargetError, open_target
    except ImportError as e:
        if in_ci():
            pytest.fail("mpalloc_host.targets is missing: %s" % e, pytrace=False)
        pytest.skip("mpalloc_host.targets is missing: %s" % e)
    try:
        return open_target(spec, board=board)
    except TargetError as e:
        msg = "%s unavailable: %s" % (spec, e)
        if in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


class FakeBoard:
    """The far end of a pty, scripted: what a broken board would do.

    mode "silent": never answers; "garbage": answers every write with bytes that
    are no REPL; "flood": sends garbage without end.
    """

    def __init__(self, mode):
        import tty

        self.mode = mode
        self.master, slave = pty.openpty()
        tty.setraw(slave)
        self.device = os.ttyname(slave)
        self._slave = slave
        self._stop = threading.Event()
        self.received = bytearray()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        import select

        junk = bytes(range(256)) * 4
        while not self._stop.is_set():
            if self.mode == "flood":
                try:
                    os.write(self.master, junk[:512])
                except OSError:
                    return
                time.sleep(0.005)
            r, _, _ = select.select([self.master], [], [], 0.05)
            if r:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    return
                self.received += data
                if self.mode == "garbage":
                    os.write(self.master, b"\xff\xfe\x00garbage\x1b[2J\x80\x81>" + junk[:64])

    def close(self):
        self._stop.set()
        self._t.join(2)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture
def fake_board():
    boards = []

    def make(mode):
        b = FakeBoard(mode)
        boards.append(b)
        return b

    yield make
    for b in boards:
        b.close()


@contextlib.contextmanager
def process_tag(name):
    """Sets MPALLOC_TEST_TAG=<name>-<pid> in os.environ for the block, so the board
    processes started in it (restarts too) carry it; yields the tag for
    tagged_processes(). The variable is removed afterwards."""
    tag = "%s-%d" % (name, os.getpid())
    os.environ["MPALLOC_TEST_TAG"] = tag
    try:
        yield tag
    finally:
        del os.environ["MPALLOC_TEST_TAG"]


def tagged_processes(tag):
    """PIDs of live processes whose environment carries MPALLOC_TEST_TAG=tag."""
    pids = []
    want = ("MPALLOC_TEST_TAG=%s" % tag).encode()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            env = (d / "environ").read_bytes()
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if want in env.split(b"\0") and ") Z " not in stat:
            pids.append(int(d.name))
    return pids


@pytest.fixture
def run_cli():
    """Run the mpalloc command in a subprocess: run(argv, timeout=...) ->
    CompletedProcess. Afterwards asserts no process it started is left (they are
    found through MPALLOC_TEST_TAG in their environment)."""
    tags = []

    def run(argv, timeout=120, env=None, **kw):
        tag = uuid.uuid4().hex
        tags.append(tag)
        e = dict(os.environ, MPALLOC_TEST_TAG=tag, MPALLOC_CONNECT_TIMEOUT="4", COLUMNS="200")
        e.pop("MPALLOC_PORT", None)
        e.update(env or {})
        return subprocess.run([str(MPALLOC)] + list(argv), capture_output=True, text=True, timeout=timeout,
                              env=e, cwd=kw.pop("cwd", str(ROOT)), **kw)

    run.tags = tags
    yield run
    time.sleep(0.3)
    left = [p for t in tags for p in tagged_processes(t)]
    assert not left, "processes left behind: %s" % left


def no_traceback(text):
    assert "Traceback" not in text, text
