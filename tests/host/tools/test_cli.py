"""The mpalloc command end to end (subprocesses): results, exit status, JUnit, and
every bad-input case ending in one line on stderr, exit status 2, no traceback,
no process left behind (run_cli checks)."""
import os
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import serial

from board_doubles import FAULTS, MPALLOC, ROOT, fake_board, run_cli, tagged_processes  # noqa: F401 (fixtures)


def error_line(p):
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr + p.stdout, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mpalloc: error: "), p.stderr
    return lines[0]


def test_help_lists_commands(run_cli):
    p = run_cli(["--help"])
    assert p.returncode == 0
    for cmd in ("boards", "deploy", "test"):
        assert cmd in p.stdout


def test_boards_table(run_cli):
    p = run_cli(["boards"])
    assert p.returncode == 0, p.stderr
    rows = {ln.split()[0]: ln for ln in p.stdout.splitlines()[1:] if ln.strip()}
    assert {"rp2040", "esp32", "microbit"} <= set(rows)
    assert "armv6m" in rows["rp2040"] and "xtensawin" in rows["esp32"]


def test_test_command_passes_and_writes_junit(run_cli, tmp_path):
    junit = tmp_path / "j.xml"
    p = run_cli(["test", "--port", "vboard:rp2040", "mptest", "--junit", str(junit)])
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "PASS eq_and_raises" in p.stdout and "vboard:rp2040: 5 passed, 0 failed" in p.stdout
    root = ET.parse(junit).getroot()
    assert len(root.findall(".//testcase")) == 5 and not root.findall(".//failure")


def test_failing_suite_exits_1_with_traceback(run_cli, tmp_path):
    junit = tmp_path / "j.xml"
    p = run_cli(["test", "--port", "vboard:rp2040", str(FAULTS / "fault_fail.py"), "--junit", str(junit)])
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "FAIL mixed.fails_with_log: AssertionError: one vs two: 1 != 2" in p.stdout
    assert "SKIP skipped_on_purpose: not today" in p.stdout
    fail = ET.parse(junit).getroot().find(".//failure")
    assert "before the failure" in fail.text


def test_deploy_then_unchanged(run_cli, tmp_path):
    p = run_cli(["deploy", "--port", "vboard:esp32", "--mpy"])
    assert p.returncode == 0, p.stderr
    assert "files copied" in p.stdout and "[fs]" in p.stdout


def test_unknown_port_scheme(run_cli):
    assert "bogus" in error_line(run_cli(["test", "--port", "bogus:thing"]))


def test_unknown_board(run_cli):
    assert "nosuch" in error_line(run_cli(["test", "--port", "vboard:nosuch"]))


def test_missing_device(run_cli):
    assert "/dev/ttyNOSUCH7" in error_line(run_cli(["test", "--port", "/dev/ttyNOSUCH7", "--board", "rp2040"]))


def test_unknown_suite(run_cli):
    assert "no device suite 'nosuch'" in error_line(run_cli(["test", "nosuch"]))


def test_board_that_never_answers(run_cli, fake_board):
    fb = fake_board("silent")
    t0 = time.monotonic()
    line = error_line(run_cli(["test", "--port", fb.device, "--board", "rp2040"], timeout=60))
    assert time.monotonic() - t0 < 30
    assert fb.device in line and "no answer within" in line


def test_board_sending_garbage(run_cli, fake_board):
    fb = fake_board("garbage")
    line = error_line(run_cli(["deploy", "--port", fb.device, "--board", "rp2040"], timeout=60))
    assert fb.device in line


def test_busy_port(run_cli, fake_board):
    fb = fake_board("silent")
    holder = serial.Serial(fb.device, exclusive=True)
    try:
        line = error_line(run_cli(["test", "--port", fb.device, "--board", "rp2040"]))
    finally:
        holder.close()
    assert "busy" in line


def test_endless_test_fails_within_its_deadline(run_cli):
    t0 = time.monotonic()
    p = run_cli(["test", "--port", "vboard:rp2040", str(FAULTS / "fault_loop.py"), str(FAULTS / "fault_ok.py"),
                 "--timeout", "2"])
    assert time.monotonic() - t0 < 40
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "vboard:rp2040: test loop.spins_forever timed out after 2 s" in p.stdout
    assert "PASS adds" in p.stdout  # the next suite ran
    assert "Traceback" not in p.stderr


def test_ctrl_c_stops_everything(tmp_path):
    tag = "cli-ctrlc-%d" % os.getpid()
    env = dict(os.environ, MPALLOC_TEST_TAG=tag)
    proc = subprocess.Popen([str(MPALLOC), "test", "--port", "vboard:rp2040", str(FAULTS / "fault_sleep.py")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
    try:
        out = ""
        deadline = time.monotonic() + 60
        while "== sleepy" not in out and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out += line
        assert "== sleepy" in out, out
        assert tagged_processes(tag), "no board process seen"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=15)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 130, (rc, err)
    assert "Traceback" not in err and "interrupted" in err
    time.sleep(0.3)
    assert not tagged_processes(tag)


def test_demo_end_to_end_on_the_virtual_rp2040(run_cli, tmp_path):
    # what `make demo` runs: the workload, its summary, the picture and the snapshot.
    # With the Pico's own heap (heaps.py) the core + stats + demo modules and the
    # workload run out (a 592-byte allocation in 275,968 bytes): make demo gives the
    # vboard half as much again (DEMO_HEAP_FACTOR; with a quarter more the demo runs
    # in its small-heap mode) until the lean core makes it fit.
    p = run_cli(["demo", "--port", "vboard:rp2040", "--out", str(tmp_path)], timeout=120,
                env={"MPALLOC_HEAP_FACTOR": "vboard:1.5"})
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr
    out = p.stdout
    assert "mpalloc demo on rp2040 (vboard:rp2040) finished" in out
    assert "aligned to 1024 bytes (all aligned: yes)" in out
    assert "took and returned 400 packet buffers from the pool_cache(9) 'pktbuf'" in out
    for f in ("memmap.png", "memmap.svg", "snapshot.json"):
        assert (tmp_path / f).stat().st_size > 0, f
    import json

    recs = json.loads((tmp_path / "snapshot.json").read_text())["records"]
    assert {"vmem", "pool", "pool_cache", "kmem", "extent"} <= set(recs)
    caches = recs["pool_cache"]
    assert any(c["name"] == "pktbuf" for c in caches)


def test_demo_out_of_heap_is_one_clear_line(run_cli, tmp_path):
    # the ESP32's heap, on a 64-bit port, with mpalloc loaded from the filesystem:
    # today the workload does not fit there beside the modules (README, "Seeing the memory")
    line = error_line(run_cli(["demo", "--port", "vboard:esp32", "--out", str(tmp_path)], timeout=120))
    # (where it runs out depends on the heap's layout: the set-up's extent maps
    # refuse with ENOMEM when their descriptors find no heap, the rest raise MemoryError)
    assert ("the demo ran out of MicroPython heap (MemoryError" in line
            or "the demo ran out of MicroPython heap (OSError: [Errno 12] ENOMEM" in line), line
    assert "docs/FLASHING.md" in line


def test_missing_python_package_says_make_setup(monkeypatch, capsys):
    """A .venv older than requirements.txt (a pinned package added since): one
    line naming the package and `make setup`, exit 2, no traceback."""
    from mpalloc_host import cli, cmd_boards

    def needs_littlefs(args):
        import littlefs_not_installed_here  # noqa: F401

    monkeypatch.setattr(cmd_boards, "run", needs_littlefs)
    assert cli.main(["boards"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "'littlefs_not_installed_here' is not installed" in err[0] and "make setup" in err[0], err
