"""Runs the DragonFly device suite (zone, kmalloc, mpipe, objcache) on the unix
MicroPython port with a board-sized heap; every test must pass."""
import os
import re
import subprocess

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_dragonfly_suite_on_unix_micropython():
    mp = os.path.join(ROOT, ".venv", "bin", "micropython")
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "firmware"))
    r = subprocess.run([mp, "-X", "heapsize=192K", os.path.join(ROOT, "tests", "device", "test_dragonfly.py")],
                       capture_output=True, text=True, timeout=120, env=env)
    out = r.stdout + r.stderr
    m = re.search(r"@@mpt summary dragonfly passed=(\d+) failed=(\d+) skipped=(\d+)", out)
    assert m, out
    assert (int(m.group(2)), int(m.group(3))) == (0, 0), out
    assert int(m.group(1)) >= 7, out
