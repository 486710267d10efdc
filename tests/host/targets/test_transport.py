"""transport: deadlines on every wait, recovery, clear one-line errors, bounded output.

Broken boards are ptys served by a script (conftest.FakeBoard); the rest runs on
a virtual board (the MicroPython unix port behind a pty).
"""
import os
import time

import pytest
import serial

from board_doubles import fake_board, need_target, process_tag, tagged_processes  # noqa: F401 (fixture)
from mpalloc_host.transport import (BoardError, BoardExecError, BoardGone, BoardTimeout, OutputTooLarge, Transport,
                                    shorten)


def one_line(e):
    s = str(e)
    assert "\n" not in s, s
    return s


def test_silent_board_times_out_with_clear_error(fake_board):
    fb = fake_board("silent")
    t = Transport(fb.device, name="silent-board")
    t0 = time.monotonic()
    with pytest.raises(BoardTimeout) as ei:
        t.enter_raw_repl(soft_reset=True, timeout_overall=1.0)
    took = time.monotonic() - t0
    t.close()
    msg = one_line(ei.value)
    assert msg.startswith("silent-board: no answer within")
    assert "nothing received" in msg
    assert took < 4.0


def test_garbage_board_is_tolerated_and_named(fake_board):
    fb = fake_board("garbage")
    t = Transport(fb.device, name="noisy")
    t0 = time.monotonic()
    with pytest.raises(BoardError) as ei:
        t.enter_raw_repl(soft_reset=False, timeout_overall=1.0)
    assert time.monotonic() - t0 < 4.0
    t.close()
    msg = one_line(ei.value)
    assert msg.startswith("noisy: ")
    assert "\\xff" in msg or "\\x1b" in msg  # the bytes received are quoted, escaped
    assert all(32 <= ord(c) < 127 for c in msg), msg
    assert fb.received.startswith(b"\r\x03")  # it was asked politely (Ctrl-C, then Ctrl-A)


def test_flooding_board_is_bounded(fake_board):
    fb = fake_board("flood")
    t = Transport(fb.device, name="flood", max_output=64 << 10)
    t0 = time.monotonic()
    with pytest.raises(BoardError) as ei:
        t.enter_raw_repl(soft_reset=False, timeout_overall=1.5)
    assert time.monotonic() - t0 < 5.0
    assert len(t.tail) <= 256
    t.close()
    one_line(ei.value)


def test_missing_port():
    with pytest.raises(BoardError) as ei:
        Transport("/dev/ttyNOSUCH9", name="/dev/ttyNOSUCH9")
    assert one_line(ei.value) == "/dev/ttyNOSUCH9: cannot open /dev/ttyNOSUCH9: no such port"


def test_busy_port(fake_board):
    fb = fake_board("silent")
    holder = serial.Serial(fb.device, exclusive=True)
    try:
        with pytest.raises(BoardError) as ei:
            Transport(fb.device, name="busy")
        assert "busy" in one_line(ei.value)
    finally:
        holder.close()


def test_shorten_escapes():
    assert shorten(b"\x00\xffab\r\n\x1b[2J") == "\\x00\\xffab\\r\\n\\x1b[2J"
    assert shorten("x" * 500, 10) == "..." + "x" * 10


# -- on a virtual board -------------------------------------------------------------

@pytest.fixture(scope="module")
def vb():
    with need_target("vboard:unix") as target:
        t = Transport(target.device, name=target.spec, alive=target.alive)
        t.enter_raw_repl(soft_reset=True)
        yield t
        t.close()


def test_exec_eval_and_errors(vb):
    assert vb.exec("print(6 * 7)").strip() == b"42"
    assert vb.eval("[1, 'a', (2, None)]") == [1, "a", (2, None)]
    with pytest.raises(BoardExecError) as ei:
        vb.exec("1/0")
    assert one_line(ei.value) == "vboard:unix: ZeroDivisionError: divide by zero"
    assert "Traceback" in ei.value.error


def test_undecodable_output_is_data(vb):
    # every byte but \x04, which ends the output section in the raw REPL protocol
    out = vb.exec("import sys\nsys.stdout.buffer.write(bytes(b for b in range(256) if b != 4))\nprint()")
    assert bytes(range(32, 127)) in out and b"\xff" in out
    assert vb.exec("print('still fine')").strip() == b"still fine"


def test_exec_error_message_is_escaped(vb):
    with pytest.raises(BoardExecError) as ei:
        vb.exec("raise ValueError('\\x1b[2J\\x07bell')")
    msg = one_line(ei.value)
    assert all(32 <= ord(c) < 127 for c in msg), msg
    assert "ValueError" in msg


def test_streaming_delivers_before_the_end(vb):
    seen = []
    t0 = time.monotonic()
    vb.exec("import time\nprint('first')\ntime.sleep(1.5)\nprint('second')",
            data_consumer=lambda b: seen.append((time.monotonic() - t0, b)), timeout=10)
    acc, when = b"", {}
    for t, b in seen:
        acc += b
        for word in (b"first", b"second"):
            if word in acc and word not in when:
                when[word] = t
    first, second = [when.get(b"first")], [when.get(b"second")]
    assert None not in first + second, seen
    assert second[0] - first[0] > 1.0, seen  # "first" came while the board still slept


def test_timeout_then_recovery(vb):
    t0 = time.monotonic()
    with pytest.raises(BoardTimeout) as ei:
        vb.exec("while True:\n pass", timeout=1.0)
    assert time.monotonic() - t0 < 3.0
    assert "while running code" in one_line(ei.value)
    assert vb.interrupt(), "Ctrl-C did not get the board back (virtual board must turn \\x03 into SIGINT)"
    assert vb.exec("print('back')").strip() == b"back"


def test_output_bound_then_recovery(vb):
    vb.max_output = 50000
    try:
        with pytest.raises(OutputTooLarge) as ei:
            vb.exec("while True:\n print('y' * 100)", timeout=20)
        assert "more than 50000 bytes" in one_line(ei.value)
    finally:
        vb.max_output = 4 << 20
    assert vb.interrupt()
    assert vb.exec("print(1)").strip() == b"1"


def test_board_process_killed_mid_command():
    with process_tag("transport-kill") as tag, need_target("vboard:unix") as target:
        t = Transport(target.device, name=target.spec, alive=target.alive)
        t.enter_raw_repl(soft_reset=False)
        t.exec_raw_no_follow(b"import time\ntime.sleep(30)")
        pids = [p for p in tagged_processes(tag)]
        assert pids
        for p in pids:
            os.kill(p, 9)
        t0 = time.monotonic()
        with pytest.raises(BoardError) as ei:
            t.follow(20)
        assert time.monotonic() - t0 < 5
        assert isinstance(ei.value, (BoardGone, BoardTimeout)), ei.value
        assert one_line(ei.value).startswith("vboard:unix: ")
        t.close()
