"""targets.open_target: every way to name a board, its errors, wasm32 and qemu:microbit
driven by the unmodified mpremote CLI."""
import os
import pty
import signal
import subprocess
import sys
import time
import tty
from pathlib import Path

import pytest

from mpalloc_host.targets import Target, TargetError, open_target

from runtimes import mpremote, open_or_fail, pids_alive, require_tool

# 1 << 29 is a small int on every port; 1 << 30 is one on a 64-bit port only:
# on a 32-bit port it is a heap object, so it fails under heap_lock.
INT_PROBE = """
import micropython
def probe(k):
    micropython.heap_lock()
    try:
        x = 1 << k
        return 'small'
    except MemoryError:
        return 'heap'
    finally:
        micropython.heap_unlock()
print([probe(29), probe(30)])
"""


# ---- errors -------------------------------------------------------------------------

@pytest.mark.parametrize("spec,board,words", [
    ("bogus:rp2040", None, ["bogus:rp2040", "unknown port", "vboard:"]),
    ("vboard:pdp11", None, ["vboard:pdp11", "unknown board 'pdp11'", "rp2040"]),
    ("wasm32:pdp11", None, ["wasm32:pdp11", "unknown board"]),
    ("qemu:rp2040", None, ["qemu:rp2040", "qemu:microbit"]),
    ("vboard:rp2040", "esp32", ["vboard:rp2040", "conflicts"]),
    ("/dev/ttyH1NOSUCH0", None, ["/dev/ttyH1NOSUCH0", "no such device"]),
    ("/dev/null", "pdp11", ["/dev/null", "unknown board"]),
    ("ftp://host:1", None, ["ftp://host:1", "unknown URL scheme"]),
    ("socket://127.0.0.1:1", None, ["socket://127.0.0.1:1", "cannot connect"]),
    ("rfc2217://127.0.0.1", None, ["needs host and port"]),
])
def test_bad_specs_are_one_line_errors_naming_the_spec(spec, board, words):
    with pytest.raises(TargetError) as e:
        open_target(spec, board=board)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_busy_port_names_the_holder():
    master, slave = pty.openpty()
    path = os.ttyname(slave)
    holder = subprocess.Popen([sys.executable, "-c",
                               "import fcntl, os, sys, time\n"
                               "fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX)\n"
                               "print('locked', flush=True)\n"
                               "time.sleep(30)\n", path], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(TargetError) as e:
            open_target(path, board="rp2040")
        assert "busy" in str(e.value) and "pid %d" % holder.pid in str(e.value)
    finally:
        holder.kill()
        holder.wait(5)
    with open_target(path, board="rp2040") as t:     # free again
        assert t.kind == "serial" and t.device == path and t.board == "rp2040"
        assert t.profile["name"] == "rp2040" and "fs" in t.caps and t.alive()
    os.close(master)
    os.close(slave)


def test_plain_device_without_board_leaves_board_to_detect():
    master, slave = pty.openpty()
    try:
        t = open_target(os.ttyname(slave))
        assert t.board is None and t.profile is None and t.caps == {"soft_reset"}
        t.close()
        assert not t.alive()
    finally:
        os.close(master)
        os.close(slave)


def test_url_target_opens_without_probing_loop():
    t = open_target("loop://", board="esp32")
    assert t.kind == "url" and t.device == "loop://" and t.board == "esp32"


@pytest.mark.parametrize("var,spec,words", [
    ("MPALLOC_QEMU", "qemu:microbit", ["qemu:microbit", "qemu-system-arm"]),
    ("MPALLOC_NODE", "wasm32:rp2040", ["wasm32:rp2040", "nodejs", "make setup"]),
    ("MPALLOC_NODE", "emu:rp2040", ["emu:rp2040", "Node.js", "make setup"]),
    ("MPALLOC_MICROPYTHON", "vboard:rp2040", ["vboard:rp2040", "MPALLOC_MICROPYTHON"]),
])
def test_missing_runtime_says_what_to_install(monkeypatch, var, spec, words):
    monkeypatch.setenv(var, "/nonexistent/h1-runtime")
    with pytest.raises(TargetError) as e:
        open_target(spec)
    for w in words:
        assert w in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_runtime_that_never_answers_hits_the_deadline(tmp_path, monkeypatch):
    fake = tmp_path / "micropython"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MPALLOC_MICROPYTHON", str(fake))
    t0 = time.monotonic()
    with pytest.raises(TargetError) as e:
        open_target("vboard:rp2040", timeout=1.5)
    assert time.monotonic() - t0 < 6
    assert "vboard:rp2040" in str(e.value) and "did not start" in str(e.value)
    out = subprocess.run(["pgrep", "-f", "exec sleep 60|sleep 60"], capture_output=True, text=True).stdout
    for pid in out.split():
        cmd = open("/proc/%s/cmdline" % pid, "rb").read()
        assert str(fake).encode() not in cmd


def test_runtime_that_exits_at_start_is_reported(tmp_path, monkeypatch):
    fake = tmp_path / "micropython"
    fake.write_text("#!/bin/sh\necho 'broken build'\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MPALLOC_MICROPYTHON", str(fake))
    with pytest.raises(TargetError) as e:
        open_target("vboard:unix", timeout=5)
    assert "status 3" in str(e.value) and "broken build" in str(e.value)


# ---- wasm32 ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wasm():
    require_tool("node", "nodejs")
    t = open_or_fail("wasm32:rp2040")
    yield t
    pid = t.backend.child.pid if t.backend.child else None
    t.close()
    assert not pids_alive([pid] if pid else [])


def test_wasm32_exec_and_banner(wasm):
    assert wasm.kind == "wasm32" and wasm.board == "rp2040" and "word32" in wasm.caps
    out = mpremote(wasm.device, "exec", "import sys, json; print(sys.platform, json.load(open('board.json'))['name'])")
    assert out.stdout == "webassembly rp2040\n"
    assert b"(virtual, wasm32) with RP2040" in b"".join(wasm.backend._traffic)


def test_wasm32_output_arrives_while_the_code_runs():
    # what lets the runner keep per-test deadlines there (docs/FAULTS.md)
    import time

    from mpalloc_host.board import Board

    with Board.open("wasm32:rp2040") as b:
        seen = []
        code = ("import time\nprint('A')\nt = time.ticks_ms()\n"
                "while time.ticks_diff(time.ticks_ms(), t) < 1500:\n    pass\nprint('B')\n")
        t0 = time.monotonic()
        b.exec(code, timeout=20, on_output=lambda d: seen.append((time.monotonic() - t0, d)))
    a = [t for t, d in seen if b"A" in d]
    z = [t for t, d in seen if b"B" in d]
    assert a and z and z[0] - a[0] >= 1.2, seen  # A came out before the loop ended


def test_wasm32_is_32_bit_and_vboard_is_64_bit(wasm):
    assert mpremote(wasm.device, "exec", INT_PROBE).stdout == "['small', 'heap']\n"
    with open_or_fail("vboard:rp2040") as vb:
        assert mpremote(vb.device, "exec", INT_PROBE).stdout == "['small', 'small']\n"


def test_wasm32_files_survive_soft_reset_and_import(wasm, tmp_path):
    f = tmp_path / "h1_wmod.py"
    f.write_text("W = 'wasm %d' % (6 * 7)\n")
    mpremote(wasm.device, "fs", "cp", str(f), ":lib/h1_wmod.py")
    assert "h1_wmod.py" in mpremote(wasm.device, "fs", "ls", ":lib").stdout
    out = mpremote(wasm.device, "exec", "g = 1", "soft-reset", "exec",
                   "import h1_wmod; print(h1_wmod.W, 'g' in globals())").stdout
    assert out == "wasm 42 False\n"
    mpremote(wasm.device, "fs", "rm", ":lib/h1_wmod.py")
    assert "h1_wmod.py" not in mpremote(wasm.device, "fs", "ls", ":lib").stdout
    assert wasm.alive()


def test_wasm32_killed_node_is_reported():
    require_tool("node", "nodejs")
    t = open_or_fail("wasm32:esp32")
    try:
        os.kill(t.backend.child.pid, signal.SIGKILL)
        end = time.monotonic() + 5
        while t.alive() and time.monotonic() < end:
            time.sleep(0.05)
        assert not t.alive() and "signal 9" in t.dead_reason()
    finally:
        t.close()


# ---- qemu:microbit -----------------------------------------------------------------

@pytest.fixture(scope="module")
def microbit():
    require_tool("qemu-system-arm", "qemu-system-arm")
    t = open_or_fail("qemu:microbit")
    yield t
    pid = t.backend.child.pid
    t.close()
    assert not pids_alive([pid])


def test_qemu_microbit_exec(microbit):
    assert microbit.kind == "qemu" and microbit.board == "microbit" and "fs" not in microbit.caps
    out = mpremote(microbit.device, "exec", "import sys, gc; gc.collect(); print(sys.platform, gc.mem_free() + gc.mem_alloc())")
    plat, total = out.stdout.split()
    assert plat == "microbit" and 8000 < int(total) <= microbit.profile["micropython"]["heap_bytes"]


def test_qemu_microbit_soft_reset_resume_and_run(microbit, tmp_path):
    assert mpremote(microbit.device, "exec", "h1 = 7", "resume", "exec", "print(h1)").stdout == "7\n"
    assert mpremote(microbit.device, "resume", "eval", "h1 * 6").stdout == "42\n"
    assert mpremote(microbit.device, "soft-reset", "resume", "exec", "print('h1' in globals())").stdout == "False\n"
    f = tmp_path / "m.py"
    f.write_text("print('mb', 6 * 7)\n")
    assert mpremote(microbit.device, "run", str(f)).stdout == "mb 42\n"
    assert microbit.alive()


def test_qemu_death_is_reported():
    require_tool("qemu-system-arm", "qemu-system-arm")
    t = open_or_fail("qemu:microbit")
    try:
        assert t.started_s < 20
        os.kill(t.backend.child.pid, signal.SIGKILL)
        time.sleep(0.3)
        assert not t.alive() and "exited" in t.logs()
    finally:
        t.close()
        t.close()


def test_qemu_microbit_paced_takes_a_long_script_without_losing_bytes():
    # ~2.5 KB through the classic raw REPL (no raw-paste on 1.9.2): QEMU's UART has
    # no baud rate; with pacing on, the pump feeds a few bytes at a time. A lost
    # byte would be a SyntaxError or a wrong sum.
    from mpalloc_host.qemu import QemuError, QemuMicrobit

    require_tool("qemu-system-arm", "qemu-system-arm")
    code = "t = 0\n" + "".join("t += %d  # padding padding padding\n" % i for i in range(60)) + "print(t)\n"
    assert len(code) > 2000
    try:
        qb = QemuMicrobit(pace=(4, 0.0005)).start(20)
    except QemuError as e:
        pytest.fail(str(e))
    try:
        for _ in range(3):
            assert mpremote(qb.device, "exec", code).stdout == "%d\n" % sum(range(60))
    finally:
        qb.close()


def test_the_kinds_of_port_come_from_one_registry():
    """README's table, the --port help of the CLI and of the pytest plugin and
    the deadlines all come from targets.KINDS."""
    from mpalloc_host import cli, targets

    readme = (Path(__file__).parents[3] / "README.md").read_text()
    assert "\n".join(targets.kinds_table()) in readme
    help_text = cli.port_help()
    for k in targets.KINDS:
        assert k.syntax in help_text
        assert targets.deadline(k.name) == k.deadline > 0
        assert k.scheme is None or targets.kind_of(k.scheme + ":x") is k
    assert targets.deadline("no-such-kind") == targets.DEFAULT_DEADLINE
    assert targets.kind_of("/dev/ttyACM0").name == "serial" and targets.kind_of("a0").name == "serial"
    assert targets.kind_of("socket://h:1").name == "url"


def test_every_target_has_the_interface_board_uses():
    from mpalloc_host.labgrid_target import LabgridTarget
    from mpalloc_host.targets import Target

    t = open_target("loop://", board="esp32")
    assert isinstance(t, Target) and t.is_physical and t.reconnects and t.alive()
    assert issubclass(LabgridTarget, Target) and LabgridTarget.is_physical and not LabgridTarget.reconnects
    t.close()
    assert not t.alive()
