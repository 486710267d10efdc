"""Host-test switches shared by every tests/host module.

MPALLOC_DEBUG=1: every allocator's debug checks on for the whole run
(mpalloc.debug.on(): vmem sanity checks after every operation, kmem redzones,
poisoning, double-free and wrong-size checks, extent and zone checks, objcache
tracking), switched on again before each test (tests may reset modules).

The fuzzing harness's operation counts (tests/host/allocators/test_fuzz.py) are printed
at the end of the run.
"""
import json
import os
import sys
import time

import pytest

DEBUG = os.environ.get("MPALLOC_DEBUG", "") not in ("", "0")


@pytest.fixture(autouse=True)
def _mpalloc_debug():
    if not DEBUG:
        yield
        return
    from mpalloc import debug  # firmware/ is on pythonpath (pyproject.toml)

    debug.on()
    yield
    debug.on()  # a test may have switched a module off: the next one starts on again


def pytest_report_header(config):
    if DEBUG:
        return "mpalloc: MPALLOC_DEBUG=1, every allocator's debug checks on"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`make test` runs on pytest-xdist workers (-n 2 --dist loadfile). A test file
    is one unit of work there (its module fixtures start emulators and runtimes
    once), except the device matrix, whose unit is one target: its suites share
    the started board, and the five targets spread over the workers. (Not with
    xdist_group marks: pytest-xdist 3.8 groups by rewriting item._nodeid, which
    pytest 9.2's nodeid no longer reads.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class TargetOrFileScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid):
            path, _, rest = nodeid.partition("::")
            if path.endswith("/test_device_suites.py") and rest.startswith("test_suite["):
                return "%s::%s" % (path, rest[len("test_suite["):].split("-", 1)[0])  # the target
            return path

    return TargetOrFileScheduling(config, log)


def _fuzz_report():
    """test_fuzz's counts: its module's REPORT in this process, else (pytest-xdist:
    a worker ran it) the out/fuzz-report.json it wrote in this run."""
    mod = sys.modules.get("test_fuzz")
    if mod is not None:
        return getattr(mod, "REPORT", None), mod.mpfuzz.NAMES
    if not _SESSION_START:
        return None, ()
    path = os.path.join(os.path.dirname(__file__), "..", "..", "out", "fuzz-report.json")
    try:
        if os.path.getmtime(path) < _SESSION_START[0]:
            return None, ()
        with open(path) as f:
            rep = json.load(f)
    except (OSError, ValueError):
        return None, ()
    return rep, sorted(set(rep["seeded"]) | set(rep["hypothesis"]))


_SESSION_START = []


def pytest_sessionstart(session):
    _SESSION_START.append(time.time())


def pytest_terminal_summary(terminalreporter):
    rep, names = _fuzz_report()
    if not rep or not (rep["seeded"] or rep["hypothesis"]):
        return
    tr = terminalreporter
    total = sum(rep["seeded"].values()) + sum(rep["hypothesis"].values())
    tr.write_sep("-", "mpfuzz (%s): %d operations; seeds in out/fuzz-report.json" % (rep["mode"], total))
    for name in names:
        tr.write_line("  %-11s %9d seeded + %7d hypothesis operations" % (
            name, rep["seeded"].get(name, 0), rep["hypothesis"].get(name, 0)))

