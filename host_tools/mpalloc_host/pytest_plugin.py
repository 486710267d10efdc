"""pytest plugin `mpalloc` (entry point pytest11): boards in host tests, device suites as items.

Options (prefixed, so they sit beside pytest-embedded's --port and pytest-timeout's
--timeout; the values are those of `mpalloc --port/--board/--timeout`):
           --mpalloc-port P     where the board is (default $MPALLOC_PORT or vboard:rp2040)
           --mpalloc-board B    the profile when the port does not imply it
           --mpalloc-timeout S  per device test deadline (default 60 s; alias --device-timeout)

Fixture `board` (session scope): a connected mpalloc_host.board.Board with the
firmware deployed: board.exec(code), board.eval(expr), board.run_file(path),
board.deploy(), board.caps, board.info.

Marker `@pytest.mark.needs("threads", "heap:65536", ...)`: skip (with the reason)
where the board lacks one of them.

Device suites: a tests/device/test_*.py that uses mptest.Suite is collected as a
DeviceSuite instead of being imported by CPython; its tests are listed without a
board (from the `@s.test` functions in the source), one pytest item per device
test. The first item of a suite runs the whole suite on the board once; every item
then reports its own result (pass, fail with the device traceback and log, skip
with the device's reason). So:

    pytest tests/device                          # on the virtual RP2040
    pytest tests/device --mpalloc-port /dev/ttyACM0 --mpalloc-board rp2040
    pytest tests/device -k pool --mpalloc-port qemu:microbit

Selection reaches the board: only the items left after -k, -m and node ids run
there (mptest.ONLY), a suite with none selected is not sent at all.

A board that cannot be reached is an error for every test needing it (never a
silent skip), except that without an explicit --mpalloc-port and outside CI (CI unset) a
missing virtual-board runtime skips.
"""
import os
from pathlib import Path

import pytest

from .argcheck import seconds
from .errors import MpallocError

DEFAULT_PORT = "vboard:rp2040"


def pytest_addoption(parser):
    g = parser.getgroup("mpalloc", "mpalloc boards")
    from .targets import port_help

    g.addoption("--mpalloc-port", dest="mpalloc_port", action="store", default=None,
                help=port_help("$MPALLOC_PORT or %s" % DEFAULT_PORT)
                + "; a comma-separated list spreads suites over boards with pytest -n")
    g.addoption("--mpalloc-board", dest="mpalloc_board", action="store", default=None,
                help="board profile when the port does not imply it (default $MPALLOC_BOARD)")
    g.addoption("--mpalloc-timeout", "--device-timeout", dest="mpalloc_timeout", action="store", type=seconds,
                default=60.0, help="deadline per device test in seconds (default 60)")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(*what): skip unless the board has all of them "
                                       "(threads, hard_irq, fs, native, heap:<bytes>)")
    config._mpalloc = _Session(config)


def pytest_unconfigure(config):
    s = getattr(config, "_mpalloc", None)
    if s is not None:
        s.close()


class _Session:
    """One board per pytest session, opened on first use."""

    def __init__(self, config):
        self.config = config
        self.port_given = config.getoption("mpalloc_port") is not None
        self.port = config.getoption("mpalloc_port") or os.environ.get("MPALLOC_PORT") or DEFAULT_PORT
        self.board_name = config.getoption("mpalloc_board") or os.environ.get("MPALLOC_BOARD") or None
        self.timeout = config.getoption("mpalloc_timeout")
        self._stack = None
        self._board = None
        self._error = None
        self.results = {}  # suite path -> SuiteResult
        self.selected = {}  # suite path -> tuple of the test names selected (absent: all)

    def board(self):
        if self._board is not None:
            return self._board
        if self._error is not None:
            self._fail(self._error)
        import contextlib

        from .board import Board

        stack = contextlib.ExitStack()
        try:
            b = stack.enter_context(Board.open(self.port, board=self.board_name))
            b.deploy()
        except MpallocError as e:
            stack.close()
            self._error = "cannot use board %s: %s" % (self.port, str(e).splitlines()[0] if str(e) else e)
            self._fail(self._error)
        self._stack, self._board = stack, b
        return b

    def _fail(self, msg):
        if self.port_given or os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)

    def close(self):
        if self._stack is not None:
            self._stack.close()
            self._stack = self._board = None

    def suite_result(self, path):
        path = Path(path)
        if path not in self.results:
            from .runner import Runner

            b = self.board()
            self.results[path] = Runner(b, test_timeout=self.timeout).run_suite(path, only=self.selected.get(path))
        return self.results[path]


@pytest.fixture(scope="session")
def board(request):
    """A connected Board (firmware deployed) for the session's --port."""
    return request.config._mpalloc.board()


def pytest_runtest_setup(item):
    m = list(item.iter_markers("needs"))
    if not m:
        return
    if "board" not in getattr(item, "fixturenames", ()) and not isinstance(item, DeviceTest):
        return
    from .runner import lacks

    b = item.config._mpalloc.board()
    for mark in m:
        for need in mark.args:
            why = lacks(b, need)
            if why:
                pytest.skip("%s lacks %s" % (b.name, why))


# -- device suites as pytest items ----------------------------------------------------

@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    """After -k/-m deselection: the device tests each suite has to run on the board."""
    s = getattr(config, "_mpalloc", None)
    if s is None:
        return
    chosen = {}
    for it in items:
        if isinstance(it, DeviceTest):
            chosen.setdefault(Path(it.path), []).append(it.name)
    s.selected = {}
    for path, names in chosen.items():
        if len(names) < len(_suite_tests(path)):
            s.selected[path] = tuple(names)


def _suite_tests(path):
    from .runner import SuiteInfo

    return SuiteInfo(path).tests


def _is_device_suite(path):
    if path.suffix != ".py" or path.parent.name != "device":
        return False
    try:
        text = path.read_text()
    except OSError:
        return False
    return "mptest" in text and "Suite(" in text


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path, parent):
    if _is_device_suite(Path(module_path)):
        return DeviceSuite.from_parent(parent, path=Path(module_path))
    return None


class DeviceSuite(pytest.File):
    """A device suite file: listed on the host, run on the board."""

    def collect(self):
        from .runner import SuiteInfo

        info = SuiteInfo(self.path)
        for name in info.tests:
            yield DeviceTest.from_parent(self, name=name, suite=info.name)


class DeviceFailure(Exception):
    pass


class DeviceTest(pytest.Item):
    def __init__(self, *, suite, **kw):
        super().__init__(**kw)
        self.suite = suite
        self.fixturenames = []  # other plugins (labgrid's) look at every item's fixtures
        self.funcargs = {}  # and pytest-embedded at every item's fixture values

    def runtest(self):
        res = self.config._mpalloc.suite_result(self.path)
        t = res.get(self.name)
        if t is None:
            raise DeviceFailure(res.error or "%s: test %s.%s did not run" % (self.config._mpalloc.port, self.suite, self.name))
        for k, v in t.metrics.items():
            self.user_properties.append((k, v))
        if t.log:
            self.add_report_section("call", "device log", "\n".join(t.log))
        if t.status == "skipped":
            raise pytest.skip.Exception(t.message, _use_item_location=True)
        if t.status != "passed":
            raise DeviceFailure("\n".join([t.message] + t.traceback))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, DeviceFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, "%s::%s" % (self.suite, self.name)
