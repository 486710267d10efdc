"""wasm32 keeps its filesystem between commands of a session ($MPALLOC_WASM32_FS):
what one command writes (or removes) on the board is there in the next, so deploy
copies only what changed. Unset: every command gets a fresh board."""
from runtimes import open_or_fail
from mpalloc_host import wasm
from mpalloc_host.board import Board


def session(monkeypatch, keep):
    monkeypatch.setenv("MPALLOC_WASM32_FS", str(keep))
    t = open_or_fail("wasm32:rp2040")
    return t, Board(t)


def test_files_survive_commands_and_removals_follow(tmp_path, monkeypatch):
    keep = tmp_path / "keep"
    t, b = session(monkeypatch, keep)
    with t:
        try:
            assert b.deploy_file("hello.py", b"X = 42\n") is True
            b.exec("import os\nos.mkdir('sub')\nopen('sub/data.bin', 'wb').write(b'abc')")
        finally:
            b.close()
    assert (keep / "rp2040" / "hello.py").read_bytes() == b"X = 42\n"
    assert (keep / "rp2040" / "sub" / "data.bin").read_bytes() == b"abc"
    t, b = session(monkeypatch, keep)      # the next command: a new node process
    with t:
        try:
            assert b.deploy_file("hello.py", b"X = 42\n") is False   # unchanged: not copied again
            assert b.eval("__import__('hello').X") == 42
            b.exec("import os\nos.remove('sub/data.bin')")
        finally:
            b.close()
    assert not (keep / "rp2040" / "sub" / "data.bin").exists()
    assert not (keep / "rp2040" / "board.json").exists()        # the profile's, written fresh each time


def test_unset_means_a_fresh_board(monkeypatch):
    monkeypatch.delenv("MPALLOC_WASM32_FS", raising=False)
    w = wasm.WasmBoard("rp2040")
    try:
        assert w.keep_dir is None
    finally:
        w.close()
