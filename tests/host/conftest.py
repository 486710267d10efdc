"""Host-test switches shared by every tests/host module.

MPALLOC_DEBUG=1: every allocator's debug checks on for the whole run
(mpalloc.debug.on(): vmem sanity checks after every operation, kmem redzones,
poisoning, double-free and wrong-size checks, extent and zone checks, objcache
tracking), switched on again before each test (tests may reset modules).

The fuzzing harness's operation counts (tests/host/allocators/test_fuzz.py) are printed
at the end of the run.
"""
import os
import sys

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


def pytest_terminal_summary(terminalreporter):
    mod = sys.modules.get("test_fuzz")
    rep = getattr(mod, "REPORT", None)
    if not rep or not (rep["seeded"] or rep["hypothesis"]):
        return
    tr = terminalreporter
    total = sum(rep["seeded"].values()) + sum(rep["hypothesis"].values())
    tr.write_sep("-", "mpfuzz (%s): %d operations; seeds in out/fuzz-report.json" % (rep["mode"], total))
    for name in mod.mpfuzz.NAMES:
        tr.write_line("  %-11s %9d seeded + %7d hypothesis operations" % (
            name, rep["seeded"].get(name, 0), rep["hypothesis"].get(name, 0)))
