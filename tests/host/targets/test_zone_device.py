"""Runs the DragonFly device suite (zone, kmalloc, mpipe, objcache) on the unix
MicroPython port with a board-sized heap; every test must pass.

The heap is the virtual RP2040's: as many words as the board's heap has (the
project rule, vboard.scaled_heap_bytes at heaps.SUITES_VBOARD, as the device suites get), not a
hand-picked figure that goes stale as the modules grow."""
import os
import re
import subprocess

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..")

from mpalloc_host import profiles  # noqa: E402
from mpalloc_host.heaps import SUITES_VBOARD  # noqa: E402
from mpalloc_host.vboard import scaled_heap_bytes  # noqa: E402

HEAP = scaled_heap_bytes(profiles.load("rp2040"), SUITES_VBOARD)


def test_dragonfly_suite_on_unix_micropython():
    mp = os.path.join(ROOT, ".venv", "bin", "micropython")
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "firmware"))
    r = subprocess.run([mp, "-X", "heapsize=%d" % HEAP, os.path.join(ROOT, "tests", "device", "test_dragonfly.py")],
                       capture_output=True, text=True, timeout=120, env=env)
    out = r.stdout + r.stderr
    m = re.search(r"@@mpt summary dragonfly passed=(\d+) failed=(\d+) skipped=(\d+)", out)
    assert m, out
    assert (int(m.group(2)), int(m.group(3))) == (0, 0), out
    assert int(m.group(1)) >= 7, out
