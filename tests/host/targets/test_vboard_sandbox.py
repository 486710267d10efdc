"""The virtual board is a sandbox for its filesystem (issue #16): its `/` is a
littlefs image, so `..`, absolute host paths and symlinks stay inside it;
machine.mem8/16/32 (the host's /dev/mem), vfs.VfsPosix, os.system and ffi are
refused. Every escape attempt fails cleanly (an OSError/AttributeError on the
board, an mpremote error), and nothing appears on the host."""
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from mpalloc_host import vboard

MPREMOTE = str(Path(sys.executable).parent / "mpremote")


@pytest.fixture(scope="module")
def vb(tmp_path_factory):
    b = vboard.start("rp2040", files={"lib/inside.py": b"X = 1\n"})
    yield b
    b.close()


def board_exec(vb, code):
    return subprocess.run([MPREMOTE, "connect", vb.device, "exec", code], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("code, error", [
    ("import os; print(os.listdir('/../..'))", "OSError"),
    ("import os; print(os.listdir('..'))", "OSError"),
    ("import os; os.chdir('/lib'); print(os.listdir('../..'))", "OSError"),
    ("print(open('/etc/passwd').read())", "OSError"),
    ("print(open('/../../../etc/passwd').read())", "OSError"),
    ("print(open('%s').read())" % os.path.realpath(__file__), "OSError"),
    ("import machine; machine.mem32[0]", "AttributeError: machine.mem32: not on the virtual board"),
    ("import umachine; umachine.mem8[0]", "AttributeError: machine.mem8: not on the virtual board"),
    ("from machine import mem16", "AttributeError: machine.mem16: not on the virtual board"),
    ("import os; os.system('id')", "AttributeError: os.system: not on the virtual board"),
    ("import vfs; vfs.mount(vfs.VfsPosix('/'), '/host')", "AttributeError: vfs.VfsPosix: not on the virtual board"),
    ("import os; os.mount(os.VfsPosix('/'), '/host')", "AttributeError"),
    ("import ffi; ffi.open('libc.so.6')", "ffi.open: refused on the virtual board"),
])
def test_escape_attempts_fail_cleanly(vb, code, error):
    r = board_exec(vb, code)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert error in r.stdout, r.stdout
    assert vb.alive()


def test_mpremote_cp_to_parent_stays_inside(vb, tmp_path):
    name = "h16_escape_%s" % uuid.uuid4().hex[:8]
    src = tmp_path / "x"
    src.write_text("x")
    for dest in (":../" + name, ":/../" + name, ":lib/../../" + name, ":" + str(tmp_path / name)):
        r = subprocess.run([MPREMOTE, "connect", vb.device, "fs", "cp", str(src), dest],
                           capture_output=True, text=True, timeout=30)
        assert "Traceback" not in r.stderr, r.stderr
    # nothing outside the board: not beside its image, not in the host's /tmp, not at tmp_path
    for p in (vb.fsdir.parent / name, vb.fsdir / name, tmp_path / name, "/tmp/" + name, "/" + name):
        assert not os.path.exists(p), p
    # an absolute host path is a path inside the board's own filesystem
    inside = vb.fs.listdir("/")
    assert "board.json" in inside and name not in inside


def test_a_host_symlink_is_not_followed(vb, tmp_path):
    # the host's directory beside the image is not the board's filesystem: a symlink
    # put there (pointing at the host's root) is not seen by the board
    link = vb.fsdir / "hostroot"
    os.symlink("/", link)
    try:
        r = board_exec(vb, "import os; print(os.listdir('/hostroot'))")
        assert r.returncode == 1 and "OSError" in r.stdout, r.stdout
        r = board_exec(vb, "import os; print(sorted(os.listdir('/')))")
        assert r.returncode == 0 and "hostroot" not in r.stdout and "board.json" in r.stdout, r.stdout
    finally:
        os.unlink(link)


def test_board_filesystem_still_works(vb):
    r = board_exec(vb, "import inside, os; print(inside.X, os.statvfs('/')[0]); "
                       "f = open('made.txt', 'w'); f.write('m'); f.close()")
    assert r.returncode == 0 and r.stdout.split() == ["1", "4096"], (r.stdout, r.stderr)
    assert vb.fs.read_text("made.txt") == "m"
    # the board's free space is its own image's, not the host disk's
    r = board_exec(vb, "import os; s = os.statvfs('/'); print(s[0] * s[2])")
    assert int(r.stdout) == 1408 * 1024
