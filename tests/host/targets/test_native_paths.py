"""Issue 20: the bytecode path where native code is bound by default.

The unix port (the virtual boards' runtime) binds pool_cache's native hit
pair, so the other host and device tests run that path there; these run the
same device suites on the same port with mpalloc.native.off() first (the
preamble a runner sends when MPALLOC_NATIVE=off), so the bytecode pair is
tested on a target that has native code too:
* the replay digests, on the bytecode path, equal CPython's;
* every device suite that drives pool_cache (directly or through kmem, the
  interrupt and soft-interrupt suites, the hostile and heap-lock ones) passes.
On webassembly and the micro:bit the bytecode pair is all there is (their
device runs in test_device_suites.py); test_native.py's binds_expected_path
proves which path each target binds.
"""
import json

import pytest

from test_fuzz_replay import _check_replay, _summary, _unix, RESERVE

OFF = "import mpalloc.native\nmpalloc.native.off()\n"
SUITES = ["test_pool.py", "test_pool_hot.py", "test_pool_heaplock.py", "test_isr.py", "test_softint.py",
          "test_kmem.py", "test_hostile.py", "test_native.py", "test_dragonfly.py", "test_vmem.py",
          "test_pool_native.py"]


@pytest.fixture(scope="module")
def board_json(tmp_path_factory):
    from mpalloc_host import profiles as P

    d = tmp_path_factory.mktemp("board")
    (d / "board.json").write_text(json.dumps(P.load("rp2040")))
    return d


def test_preamble_binds_bytecode(board_json):
    out = _unix("test_native.py", board_json,
                OFF + "from mpalloc import pool_cache, pool\nprint('@@path', pool_cache.native_path(), pool.native_path())\n")
    assert "@@path bytecode bytecode" in out, out[-2000:]


def test_replay_bytecode_path_on_unix_port(board_json):
    _check_replay(_unix("test_replay.py", board_json, OFF))


@pytest.mark.parametrize("suite", SUITES, ids=[s[5:-3] for s in SUITES])
def test_device_suite_bytecode_path_on_unix(suite, board_json):
    pre = (RESERVE if suite == "test_hostile.py" else "") + OFF
    out = _unix(suite, board_json, pre)
    passed, failed, skipped = _summary(out)
    assert failed == 0, out[-4000:]
    assert passed > 0, out[-2000:]
