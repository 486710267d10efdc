"""Deploy checks the board's free space before writing and leaves no partial file
(issue #16), on a virtual RP2040 whose filesystem image is made small."""
import pytest

from board_doubles import run_cli  # noqa: F401 (fixture)
from mpalloc_host import vboard
from mpalloc_host.board import Board, BoardNoSpace, firmware_files
from mpalloc_host.targets import open_target
from test_cli import error_line


@pytest.fixture
def small():
    """A virtual RP2040 with a 96 KiB filesystem (24 blocks): too small for the firmware."""
    vb = vboard.start("rp2040", fs_bytes=96 * 1024)
    b = Board(open_target(vb.device, board="rp2040"))
    yield vb, b
    b.close()
    vb.close()


def test_refused_before_writing_naming_the_sizes(small):
    vb, b = small
    before = vb.fs.listdir("/")
    with pytest.raises(BoardNoSpace) as ei:
        b.deploy()
    msg = str(ei.value)
    total = sum(len(open(src, "rb").read()) for _, src in firmware_files())
    assert msg.startswith(b.name + ": not enough room on the board's filesystem: ") and "\n" not in msg, msg
    assert "bytes are free; nothing was written" in msg and "in 4096-byte blocks" in msg
    free = int(msg.split("bytes (in")[1].split(", ")[1].split()[0])
    assert 0 < free < 96 * 1024 and total > free
    assert vb.fs.listdir("/") == before            # nothing written


def test_full_filesystem_leaves_no_partial_file(small, monkeypatch):
    # the free-space check fooled (a board that cannot tell): the write runs out
    # of room mid-way; the file being written is removed, the others are whole
    vb, b = small
    monkeypatch.setattr(Board, "free_space", lambda self: None)
    with pytest.raises(BoardNoSpace) as ei:
        b.deploy()
    failed = str(ei.value).split("no room for ")[1].split(" on the board")[0]
    want = {dest: open(src, "rb").read() for dest, src in firmware_files()}
    assert not vb.fs.exists(failed), failed
    written = [d for d in want if vb.fs.exists(d)]
    assert written, "nothing was written before the filesystem filled"
    for d in written:
        assert vb.fs.read_bytes(d) == want[d], d
    # the board still works, with room for small files
    assert b.eval("1 + 1") == 2


def test_cli_deploy_out_of_space(run_cli):
    vb = vboard.start("rp2040", fs_bytes=96 * 1024)
    try:
        p = run_cli(["deploy", "--port", vb.device, "--board", "rp2040"], timeout=60)
    finally:
        vb.close()
    line = error_line(p)
    assert "not enough room on the board's filesystem" in line and "nothing was written" in line, line


def test_microbit_full_filesystem_leaves_no_partial_file():
    # the micro:bit's flat filesystem cannot tell its free space: the write runs
    # into the full flash and the partial file is removed; other files are intact
    from board_doubles import need_target

    with need_target("qemu:microbit") as target:
        b = Board(target)
        try:
            keep = b"K = 1\n" * 50
            b.deploy_file("h16keep.py", keep)
            with pytest.raises(BoardNoSpace, match="no room for h16big.py"):
                b.deploy_file("h16big.py", b"#" * 60000)
            files = b.eval("__import__('os').listdir()")
            assert "h16big.py" not in files and "h16keep.py" in files, files
            assert b.deploy_file("h16keep.py", keep) is False    # unchanged: same size and checksum
            b.exec("import os\nos.remove('h16keep.py')")
        finally:
            b.close()
