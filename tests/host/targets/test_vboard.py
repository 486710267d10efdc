"""The virtual board (vboard.py, cmd_vboard.py) driven by the unmodified mpremote CLI.

vboard:rp2040 and vboard:esp32 run at the same time (independent boards); the
fault cases kill children and the `mpalloc vboard` command.
"""
import os
import select
import signal
import subprocess
import time
import uuid

import pytest

from runtimes import MPALLOC, mpremote, open_or_fail, pids_alive, tagged_pids
from mpalloc_host import heaps, vboard

HEAP_TOTAL = "import gc; gc.collect(); print(gc.mem_free() + gc.mem_alloc())"


@pytest.fixture(scope="module")
def rp2040():
    t = open_or_fail("vboard:rp2040")
    yield t
    t.close()


@pytest.fixture(scope="module")
def esp32():
    t = open_or_fail("vboard:esp32")
    yield t
    t.close()


def read_until(fd, marker, timeout):
    buf = b""
    end = time.monotonic() + timeout
    while marker not in buf:
        left = end - time.monotonic()
        assert left > 0, "no %r within %s s; got %r" % (marker, timeout, buf[-300:])
        r, _, _ = select.select([fd], [], [], left)
        if r:
            buf += os.read(fd, 4096)
    return buf


def settle(fd, quiet=0.3):
    """Read and drop output until the board has been quiet for `quiet` s."""
    while select.select([fd], [], [], quiet)[0]:
        os.read(fd, 4096)


@pytest.fixture
def raw_fd(rp2040):
    """The rp2040 vboard's pty opened directly (no mpremote), friendly REPL."""
    import tty

    fd = os.open(rp2040.device, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    os.write(fd, b"\r\x03\x02")
    read_until(fd, b"for more information.\r\n>>> ", 5)
    settle(fd)
    yield fd
    os.close(fd)


def test_heap_follows_the_profile(rp2040, esp32):
    totals = {}
    for t in (rp2040, esp32):
        r = mpremote(t.device, "exec", HEAP_TOTAL)
        totals[t.board] = int(r.stdout.split()[0])
        # the board's heap plus what 64-bit objects add to mpalloc's core (heaps.py)
        want = t.profile["micropython"]["heap_bytes"] + heaps.EXTRA["vboard"]
        # the gc keeps its block table beside the pool: -X heapsize is set a little larger
        assert want <= totals[t.board] <= 1.01 * want, (t.board, totals[t.board], want)
    assert totals["rp2040"] > totals["esp32"] + 100000


def test_exec_output_is_cooked_and_board_json_is_there(rp2040):
    r = subprocess.run([str(MPALLOC.parent / "mpremote"), "connect", rp2040.device, "exec",
                        "import json; print(json.load(open('board.json'))['name']); print('a\\nb')"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r
    assert r.stdout == b"rp2040\r\na\r\nb\r\n"


def test_fs_cp_ls_rm_and_import(rp2040, tmp_path):
    src = tmp_path / "h1_probe_mod.py"
    src.write_text("VALUE = 'probe %d' % (6 * 7)\n")
    mpremote(rp2040.device, "fs", "cp", str(src), ":lib/h1_probe_mod.py")
    assert rp2040.backend.fs.read_text("lib/h1_probe_mod.py") == src.read_text()
    assert "h1_probe_mod.py" in mpremote(rp2040.device, "fs", "ls", ":lib").stdout
    assert mpremote(rp2040.device, "exec", "import h1_probe_mod; print(h1_probe_mod.VALUE)").stdout == "probe 42\n"
    mpremote(rp2040.device, "fs", "rm", ":lib/h1_probe_mod.py")
    assert "h1_probe_mod.py" not in mpremote(rp2040.device, "fs", "ls", ":lib").stdout
    assert not rp2040.backend.fs.exists("lib/h1_probe_mod.py")


def test_absolute_paths_stay_inside_the_board(rp2040):
    name = "h1_%s.txt" % uuid.uuid4().hex[:8]
    mpremote(rp2040.device, "exec", "f = open('/%s', 'w'); f.write('x'); f.close()" % name)
    assert rp2040.backend.fs.read_text(name) == "x"
    assert not os.path.exists("/" + name)
    mpremote(rp2040.device, "fs", "rm", ":" + name)


def test_run_file(rp2040, tmp_path):
    f = tmp_path / "hello.py"
    f.write_text("import sys\nprint('run', sys.platform, 3 * 7)\n")
    assert mpremote(rp2040.device, "run", str(f)).stdout == "run linux 21\n"


def test_soft_reset_and_resume(rp2040):
    before = rp2040.backend.resets
    assert mpremote(rp2040.device, "exec", "h1_x = 5", "resume", "exec", "print(h1_x)").stdout == "5\n"
    assert mpremote(rp2040.device, "resume", "exec", "print(h1_x)").stdout == "5\n"
    # soft-reset: a fresh interpreter, state gone, files kept
    out = mpremote(rp2040.device, "soft-reset", "resume", "exec", "print('h1_x' in globals())").stdout
    assert out == "False\n"
    assert rp2040.backend.resets > before
    assert rp2040.backend.fs.exists("board.json")
    assert rp2040.alive()


def test_banner_and_soft_reboot_text(raw_fd):
    os.write(raw_fd, b"\x02")
    banner = read_until(raw_fd, b">>> ", 5)
    assert b"; Raspberry Pi Pico (RP2040) (virtual) with RP2040\r\n" in banner
    os.write(raw_fd, b"\x01")
    read_until(raw_fd, b"raw REPL; CTRL-B to exit\r\n>", 5)
    os.write(raw_fd, b"\x04")            # empty Ctrl-D in raw REPL: soft reset, back in raw REPL
    out = read_until(raw_fd, b"raw REPL; CTRL-B to exit\r\n>", 10)
    assert b"OK\r\nMPY: soft reboot\r\nraw REPL; CTRL-B to exit\r\n>" in out
    os.write(raw_fd, b"\x02")
    read_until(raw_fd, b"for more information.\r\n>>> ", 5)


def test_ctrl_c_interrupts_running_code(rp2040, raw_fd):
    os.write(raw_fd, b"while True: pass\r\r")
    read_until(raw_fd, b"... \r\n", 5)
    # A Ctrl-C that arrives while the REPL is still reading the line is input, not
    # an interrupt (as on a board): press again until it lands, like a user would.
    out = b""
    end = time.monotonic() + 10
    while b"KeyboardInterrupt" not in out:
        assert time.monotonic() < end, "Ctrl-C did not interrupt: %r" % out[-300:]
        time.sleep(0.3)
        os.write(raw_fd, b"\x03")
        r, _, _ = select.select([raw_fd], [], [], 1.0)
        if r:
            out += os.read(raw_fd, 4096)
    if not out.endswith(b">>> "):
        read_until(raw_fd, b">>> ", 5)
    settle(raw_fd)
    os.write(raw_fd, b"\x03print(6 * 7)\r")
    assert b"42\r\n" in read_until(raw_fd, b"42\r\n>>> ", 5)
    assert rp2040.alive()


def test_two_boards_have_their_own_filesystem(rp2040, esp32):
    assert rp2040.device != esp32.device and rp2040.backend.fs.path != esp32.backend.fs.path
    mpremote(rp2040.device, "exec", "open('h1_only_here.txt', 'w').write('rp')")
    assert "h1_only_here.txt" in mpremote(rp2040.device, "fs", "ls").stdout
    assert "h1_only_here.txt" not in mpremote(esp32.device, "fs", "ls").stdout
    mpremote(rp2040.device, "fs", "rm", ":h1_only_here.txt")


def test_child_killed_is_reported_and_close_leaves_nothing():
    t = open_or_fail("vboard:unix")
    pid = t.backend.child.pid
    fsdir = t.fsdir
    os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + 5
    while t.alive() and time.monotonic() < end:
        time.sleep(0.05)
    assert not t.alive()
    assert "killed by signal 9" in t.dead_reason()
    assert "exited" in t.logs()
    t.close()
    t.close()                            # idempotent
    assert not pids_alive([pid]) and not fsdir.exists()


def test_boot_py_runs_at_every_reset_like_a_board():
    # sys.exit() in boot.py ends boot.py only, as on a board
    t = vboard.start("unix", files={"boot.py": b"H1_BOOTED = 1\nimport sys\nsys.exit(0)\n"})
    try:
        out = mpremote(t.device, "soft-reset", "resume", "exec", "print(H1_BOOTED)").stdout
        assert out == "1\n" and t.alive()
    finally:
        t.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_mpalloc_vboard_command_stops_cleanly(tmp_path, sig):
    tag = uuid.uuid4().hex
    link = tmp_path / "pico"
    env = dict(os.environ, MPALLOC_TEST_TAG=tag)
    p = subprocess.Popen([str(MPALLOC), "vboard", "--board", "rp2040", "--link", str(link)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        r, _, _ = select.select([p.stdout], [], [], 20)
        assert r, "mpalloc vboard printed no device path"
        device = p.stdout.readline().decode().strip()
        assert device.startswith("/dev/pts/") and os.readlink(link) == device
        assert mpremote(str(link), "exec", "print(6 * 7)").stdout == "42\n"
        assert len(tagged_pids(tag)) >= 2          # mpalloc and its micropython
        p.send_signal(sig)
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    time.sleep(0.2)
    assert tagged_pids(tag) == [], "processes left behind"
    assert not os.path.lexists(link)
    assert b"stopped" in p.stderr.read()


def test_mpremote_repl(rp2040):
    """`mpremote repl` needs a terminal: run it on a pty, type a line, leave with Ctrl-]."""
    import pty

    m, s = pty.openpty()
    p = subprocess.Popen([str(MPALLOC.parent / "mpremote"), "connect", rp2040.device, "repl"],
                         stdin=s, stdout=s, stderr=s, start_new_session=True)
    os.close(s)
    try:
        read_until(m, b"Use Ctrl-] or Ctrl-x to exit this shell", 15)
        os.write(m, b"\r")
        read_until(m, b">>> ", 5)
        os.write(m, b"print(6 * 7)\r")
        assert b"42\r\n>>> " in read_until(m, b"42\r\n>>> ", 5)
        os.write(m, b"\x1d")
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        os.close(m)
