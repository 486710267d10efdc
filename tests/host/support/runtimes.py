"""Helpers for tests that need an emulator or runtime (H1's target tests).

require_tool / open_or_fail: a missing runtime is a skip on a developer machine
and a FAILURE when CI=true (never a silent skip in CI).
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MPREMOTE = ROOT / ".venv" / "bin" / "mpremote"
MPALLOC = ROOT / ".venv" / "bin" / "mpalloc"


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(msg):
    if in_ci():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def require_tool(exe, package):
    """Path of `exe` (a name on PATH or a path); skip/fail naming the Debian package."""
    path = exe if os.path.sep in str(exe) else shutil.which(exe)
    if not path or not os.access(path, os.X_OK):
        missing("%s not found (Debian package %s)" % (exe, package))
    return path


def open_or_fail(spec, board=None, **kw):
    """open_target(spec); a TargetError is a skip here and a failure in CI."""
    from mpalloc_host.targets import TargetError, open_target

    try:
        return open_target(spec, board=board, **kw)
    except TargetError as e:
        missing("%s unavailable: %s" % (spec, e))


def mpremote(device, *args, timeout=30, check=True):
    """Run the real mpremote CLI against `device`; returns CompletedProcess (text)."""
    r = subprocess.run([str(MPREMOTE), "connect", device] + list(args), capture_output=True,
                       timeout=timeout)
    r.stdout = r.stdout.decode("utf-8", "replace").replace("\r\n", "\n")
    r.stderr = r.stderr.decode("utf-8", "replace")
    if check:
        assert r.returncode == 0, "mpremote %s failed (%d): %s %s" % (args, r.returncode, r.stdout, r.stderr)
    return r


def pids_alive(pids):
    """Those of `pids` that still exist and are not zombies."""
    left = []
    for pid in pids:
        try:
            stat = Path("/proc/%d/stat" % pid).read_text()
        except OSError:
            continue
        if ") Z " not in stat:
            left.append(pid)
    return left


def tagged_pids(tag):
    """Live processes whose environment holds MPALLOC_TEST_TAG=tag."""
    want = ("MPALLOC_TEST_TAG=%s" % tag).encode()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            env = (d / "environ").read_bytes()
        except OSError:
            continue
        if want in env.split(b"\0"):
            found.append(int(d.name))
    return pids_alive(found)
