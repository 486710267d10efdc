"""emu:rp2040: the RP2040's own MicroPython in rp2040js (emu_rp2040.py / .mjs).

Firmware lookup and its errors; the runner's fixes to rp2040js (flash writes that
persist across a soft reset and a restart, the USB CDC idle fix measured in
emulated cycles, the UART TX interrupt); the unmodified mpremote driving it
(exec, cp, ls, soft-reset) and Ctrl-C over pyserial. Figures are emulated
cycles (time.ticks_us() * 125 at 125 MHz), never wall time.
In CI a missing firmware, node or rp2040js is a failure (need_target).
"""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from board_doubles import in_ci
from mpalloc_host import emu_rp2040 as E
from mpalloc_host.flash import uf2

MPREMOTE = str(Path(sys.executable).with_name("mpremote"))


def _board(**kw):
    try:
        return E.EmuRp2040(**kw).start(60)
    except E.VBoardError as e:
        if in_ci():
            pytest.fail("emu:rp2040 unavailable: %s" % e, pytrace=False)
        pytest.skip("emu:rp2040 unavailable: %s" % e)


def _mpremote(dev, *args, timeout=120):
    r = subprocess.run([MPREMOTE, "connect", dev, *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, "mpremote %s: rc %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr)
    return r.stdout


@pytest.fixture(scope="module")
def board():
    b = _board(keep=False)       # a fresh filesystem, nothing written to the user cache
    yield b
    b.close()


# ---- lookup and bad images (no emulator) -------------------------------------------------
def test_missing_firmware_names_every_place(tmp_path, monkeypatch):
    monkeypatch.delenv("MPALLOC_RP2040_FIRMWARE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(E, "shared_dirs", lambda: [tmp_path / "shared"])
    with pytest.raises(E.EmuError) as ei:
        E.find_firmware()
    msg = str(ei.value)
    assert "\n" not in msg
    assert str(tmp_path / "cache" / "mpalloc" / "firmware" / E.FIRMWARE_NAME) in msg
    assert str(tmp_path / "shared" / E.FIRMWARE_NAME) in msg
    assert "https://micropython.org/download/RPI_PICO/" in msg


def test_explicit_firmware_that_does_not_exist(tmp_path, monkeypatch):
    monkeypatch.setenv("MPALLOC_RP2040_FIRMWARE", str(tmp_path / "nope.uf2"))
    with pytest.raises(E.EmuError, match=r"nope\.uf2 \(\$MPALLOC_RP2040_FIRMWARE\) does not exist"):
        E.find_firmware()


@pytest.mark.parametrize("what,data,pattern", [
    ("rp2350", uf2.make(b"\x00" * 600, 0x10000000, 0xE48BFF59), r"RP2350_ARM_S .* is for another chip"),
    ("esp32s3", uf2.make(b"\x00" * 600, 0x0, 0xC47E5767), r"ESP32S3 .* is for another chip"),
    ("truncated", uf2.make(b"\x00" * 1200, 0x10000000, 0xE48BFF56)[:1024], r"2 of 5 blocks present: the file is truncated"),
    ("corrupt", b"\x00" * 1024, r"bad UF2 magic"),
    ("microbit", b":020000040000FA\n:00000001FF\n", r"not a whole number of 512-byte UF2 blocks"),
    ("outside", uf2.make(b"\x00" * 600, 0x20000000, 0xE48BFF56), r"outside the Pico's 2 MiB flash"),
])
def test_bad_firmware_is_one_line(tmp_path, what, data, pattern):
    p = tmp_path / ("%s.uf2" % what)
    p.write_bytes(data)
    with pytest.raises(E.EmuError, match=pattern) as ei:
        E.find_firmware(p)
    assert "\n" not in str(ei.value)


def test_sha256sums_mismatch(tmp_path):
    p = tmp_path / E.FIRMWARE_NAME
    p.write_bytes(uf2.make(b"\x01" * 600, 0x10000000, 0xE48BFF56))
    (tmp_path / "SHA256SUMS").write_text("%s  %s\n" % ("0" * 64, E.FIRMWARE_NAME))
    with pytest.raises(E.EmuError, match="does not match .*damaged copy"):
        E.find_firmware(p)


# ---- the emulated board ------------------------------------------------------------------------
def test_boots_rp2_firmware_and_mpremote_drives_it(board, tmp_path):
    out = _mpremote(board.device, "exec", "import sys;print(sys.platform, sys.implementation._build)")
    assert out.split()[-2:] == ["rp2", "RPI_PICO"]
    src = tmp_path / "hello.py"
    src.write_text("X = 6 * 7\n")
    out = _mpremote(board.device, "fs", "cp", str(src), ":hello.py", "+", "fs", "ls", "+",
                    "soft-reset", "+", "exec", "import hello;print('X', hello.X)")
    assert re.search(r"\d+ hello\.py", out), out
    assert "X 42" in out


def test_flash_writes_persist_across_soft_reset(board):
    _mpremote(board.device, "exec", "f=open('/p.txt','w');f.write('kept');f.close()")
    out = _mpremote(board.device, "soft-reset", "+", "exec", "print(open('/p.txt').read())")
    assert "kept" in out
    out = _mpremote(board.device, "exec", "import os;print(os.statvfs('/')[2])")
    assert int(out.split()[-1]) == 352          # littlefs formatted: 352 blocks of 4096 B


def test_flash_image_survives_a_restart(tmp_path):
    img = tmp_path / "flash.bin"
    b = _board(flash_image=img)
    try:
        _mpremote(b.device, "exec", "f=open('/r.txt','w');f.write('again');f.close()")
    finally:
        b.close()
    assert img.stat().st_size == E.FLASH_BYTES
    b = _board(flash_image=img)
    try:
        assert "again" in _mpremote(b.device, "exec", "print(open('/r.txt').read())")
    finally:
        b.close()


def test_usb_idle_fix_in_emulated_cycles(board):
    # With the built-in CDC host's OUT completions every 10 us (~34,000 USB
    # interrupts per emulated second) this loop costs ~1,200 cycles an iteration;
    # held until input, ~410.
    code = ("import time\ndef f(n):\n t=time.ticks_us();i=0\n while i<n: i+=1\n"
            " return time.ticks_diff(time.ticks_us(),t)\nprint('us', f(20000))")
    out = _mpremote(board.device, "exec", code)
    us = int(re.search(r"us (\d+)", out).group(1))
    cycles = us * 125 / 20000
    print("emu:rp2040 while-loop iteration: %.0f emulated cycles" % cycles)
    assert cycles < 700, "%.0f cycles an iteration: the USB idle storm is back" % cycles


def test_uart_tx_interrupt_clears(board):
    # rp2040js re-sets UART TXINTR on every check: the UART IRQ handler never returned.
    out = _mpremote(board.device, "exec", "import machine;u=machine.UART(0,115200);"
                    "print('n', u.write(b'hello uart'));print('after')", timeout=60)
    assert "n 10" in out and "after" in out


def test_ctrl_c_breaks_a_running_loop(board):
    import serial

    with serial.Serial(board.device, 115200, timeout=0.2) as s:
        s.write(b"\x03\x03")
        time.sleep(0.5)
        s.reset_input_buffer()
        s.write(b"while True: pass\r\r\r")
        time.sleep(1.0)
        s.write(b"\x03")
        buf = b""
        end = time.monotonic() + 20
        while b"KeyboardInterrupt" not in buf and time.monotonic() < end:
            buf += s.read(256)
        assert b"KeyboardInterrupt" in buf, buf[-300:]


def test_one_core_has_no_threads_and_no_process_is_left(tmp_path, monkeypatch):
    from mpalloc_host.targets import open_target

    monkeypatch.delenv("MPALLOC_EMU_CORES", raising=False)     # the default: rp2040js's one core alone

    t = open_target("emu:rp2040")
    pid = t.backend.child.pid
    try:
        assert "threads" not in t.caps and {"hard_irq", "fs", "word32", "raw_paste"} <= t.caps
        assert "MPALLOC_EMU_CORES=2" in t.why["threads"]
    finally:
        t.close()
    assert not Path("/proc/%d" % pid).exists() or "zombie" in Path("/proc/%d/status" % pid).read_text()


@pytest.mark.parametrize("value", ["3", "0", "two", "1 2"])
def test_bad_core_count_is_refused_before_the_emulator_starts(monkeypatch, value):
    from mpalloc_host.errors import TargetError
    from mpalloc_host.targets import open_target

    monkeypatch.setenv("MPALLOC_EMU_CORES", value)
    with pytest.raises(TargetError) as ei:
        open_target("emu:rp2040")
    msg = str(ei.value)
    assert "MPALLOC_EMU_CORES=%r" % value in msg and "1 or 2" in msg and "\n" not in msg, msg


def test_runner_refuses_a_bad_core_count(monkeypatch):
    # the runner reads the variable too (EmuRp2040 used without the target layer)
    try:
        node = E.node_exe()
        E.rp2040js_dir()
        bootrom, fw = E.find_bootrom(), E.find_firmware()
    except E.VBoardError as e:
        if in_ci():
            pytest.fail("emu:rp2040 unavailable: %s" % e, pytrace=False)
        pytest.skip("emu:rp2040 unavailable: %s" % e)
    env = dict(os.environ, MPALLOC_EMU_CORES="4")
    r = subprocess.run([node, str(E.MJS), str(bootrom), str(fw), "/nonexistent/flash.bin"], env=env,
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and r.stderr.strip() == 'emu_rp2040: MPALLOC_EMU_CORES="4": 1 or 2 cores (default 1)', r.stderr


def test_mpalloc_flash_boots_and_verifies(tmp_path):
    try:
        fw = E.find_firmware()
    except E.EmuError as e:
        if in_ci():
            pytest.fail(str(e), pytrace=False)
        pytest.skip(str(e))
    mpalloc = str(Path(sys.executable).with_name("mpalloc"))
    r = subprocess.run([mpalloc, "flash", "--port", "emu:rp2040", "--board", "rp2040", str(fw)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verified: micropython 1.28.0" in r.stdout and "Raspberry Pi Pico with RP2040" in r.stdout
    bad = tmp_path / "rp2350.uf2"
    bad.write_bytes(uf2.make(b"\x00" * 600, 0x10000000, 0xE48BFF59))
    r = subprocess.run([mpalloc, "flash", "--port", "emu:rp2040", "--board", "rp2040", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "is for another chip" in r.stderr
