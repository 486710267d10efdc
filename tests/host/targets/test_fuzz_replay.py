"""The fuzzing workloads replayed on device targets, and the device suites in
debug mode.

* tests/device/test_replay.py on the unix port (64-bit) and on the 32-bit
  webassembly port (Node.js): every target's workload from seeds 1 and 2 must
  pass its model's checks there and give the same digest as on CPython (the same
  workload: a board's failure reproduces on the host from its seed and step).
* every tests/device/test_*.py with mpalloc.debug.on() run first (the preamble a
  runner sends before a suite); all must pass. The short pass (make test) leaves
  out the slow ones: test_vmem (a minute in debug mode, a known bug) on unix, and
  test_vmem and test_replay on wasm32; make fuzz (MPALLOC_FUZZ=long) runs all but
  test_vmem on wasm32 (several minutes there).
qemu:microbit is not a replay target: mpfuzz plus the allocators it drives do not
fit its ~9.5 KB heap.
"""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FW = ROOT / "firmware"
MP = ROOT / ".venv" / "bin" / "micropython"
WASM_MJS = ROOT / "host_tools" / "node" / "node_modules" / "@micropython" / "micropython-webassembly-pyscript" / "micropython.mjs"
SUITES = sorted(p.name for p in (ROOT / "tests" / "device").glob("test_*.py"))
DEBUG_ON = "import mpalloc.debug\nmpalloc.debug.on()\n"
# test_replay and test_hostile take their 32 KB window (mpfuzz.reserve) before debug.on() compiles
# every allocator from source and leaves the heap in pieces
RESERVE = "import mpfuzz\nmpfuzz.reserve()\n"


def _debug_preamble(suite):
    return (RESERVE if suite in ("test_replay.py", "test_hostile.py") else "") + DEBUG_ON
CI = os.environ.get("CI") == "true"
LONG = os.environ.get("MPALLOC_FUZZ") == "long"


pytestmark = pytest.mark.fuzz

# Bugs reported and not fixed yet (their owners are still at work): the suite
# must fail in debug mode for this reason until it is fixed (strict xfail).
DEBUG_KNOWN = {}

# Loads MicroPython's webassembly port, copies firmware/ into its filesystem,
# runs a preamble and then a script; board.json goes to / when given.
RUN_MJS = r"""
import fs from "fs";
import path from "path";
const [mjs, fw, script, preamble, boardjson] = process.argv.slice(2);
const { loadMicroPython } = await import(mjs);
const mp = await loadMicroPython({ heapsize: 1024 * 1024, linebuffer: false,
  stdout: (d) => process.stdout.write(d), stderr: (d) => process.stderr.write(d) });
function copy(dir, to) {
  for (const f of fs.readdirSync(dir)) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isDirectory()) {
      if (f === "__pycache__") continue;
      try { mp.FS.mkdir(to + "/" + f); } catch (e) {}
      copy(p, to + "/" + f);
    } else if (f.endsWith(".py")) {
      mp.FS.writeFile(to + "/" + f, fs.readFileSync(p));
    }
  }
}
try { mp.FS.mkdir("/fw"); } catch (e) {}
copy(fw, "/fw");
if (boardjson) mp.FS.writeFile("/board.json", fs.readFileSync(boardjson));
mp.runPython("import sys\nsys.path.insert(0, '/fw')\n" + preamble);
try {
  mp.runPython(fs.readFileSync(script, "utf8"));
} catch (e) {
  process.stdout.write("\n@@wasm error " + e + "\n");
  process.exit(2);
}
"""


@pytest.fixture(scope="module")
def board_json(tmp_path_factory):
    from mpalloc_host import profiles as P

    d = tmp_path_factory.mktemp("board")
    (d / "board.json").write_text(json.dumps(P.load("rp2040")))
    return d


def _unix(suite, cwd, preamble=""):
    code = preamble + "exec(open(%r).read())\n" % str(ROOT / "tests" / "device" / suite)
    r = subprocess.run([str(MP), "-X", "heapsize=512K", "-c", code], cwd=cwd, capture_output=True, text=True,
                       timeout=300, env={"MICROPYPATH": str(FW), "PATH": os.environ.get("PATH", ""),
                                         # stress suites short here: the full figures are test_device_suites'
                                         "MPALLOC_SHORT": "1"})
    return r.stdout + r.stderr


def _node():
    node = shutil.which("node")
    if node is None or not WASM_MJS.is_file():
        if CI:
            pytest.fail("wasm32 runtime missing (node or %s)" % WASM_MJS)
        pytest.skip("wasm32 runtime missing (node or the webassembly port)")
    return node


def _wasm(suite, cwd, preamble=""):
    node = _node()
    js = Path(cwd) / "run_wasm.mjs"
    js.write_text(RUN_MJS)
    r = subprocess.run([node, str(js), str(WASM_MJS), str(FW), str(ROOT / "tests" / "device" / suite), preamble,
                        str(Path(cwd) / "board.json")], cwd=cwd, capture_output=True, text=True, timeout=600)
    return r.stdout + r.stderr


def _summary(out):
    m = re.search(r"@@mpt summary \S+ passed=(\d+) failed=(\d+) skipped=(\d+)", out)
    assert m, out[-3000:]
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def _host_digests(threads):
    """CPython's digests; threads=False as on a port without _thread (one CPU,
    MODE_UP: pool_cache's workload then runs on one CPU, as there)."""
    import mpfuzz
    from mpalloc import intr

    want = {}
    orig = intr._default_mode
    if not threads:
        intr._default_mode = lambda: intr.MODE_UP
    try:
        for name in mpfuzz.NAMES:
            for seed in (1, 2):
                mpfuzz.run(name, seed, 300)
                want[(name, seed)] = mpfuzz.DIGEST[0]
    finally:
        intr._default_mode = orig
        intr.setup(1)
    return want


def _check_replay(out, threads=True):
    passed, failed, skipped = _summary(out)
    assert failed == 0 and skipped == 0, out[-4000:]
    assert passed == 19, out[-4000:]
    got = {(m.group(1), int(m.group(2))): int(m.group(3))
           for m in re.finditer(r"@@mpt metric replay (\w+) digest(\d+)=(\d+)", out)}
    assert got == _host_digests(threads), "the board ran another workload than CPython from the same seeds"
    ops = sum(int(x) for x in re.findall(r"@@mpt metric replay \w+ ops=(\d+)", out))
    assert ops >= 10 * 2 * 300 * 0.8


def test_replay_on_unix_port(board_json):
    _check_replay(_unix("test_replay.py", board_json))


def test_replay_on_wasm32(board_json):
    _check_replay(_wasm("test_replay.py", board_json), threads=False)


# Suites every test of which needs both RP2040 cores running Python (sys.platform
# rp2 with threads): on the unix and webassembly ports they only skip.
RP2_CORES_ONLY = ("test_rp2_cores.py",)


def _debug_params(exclude=()):
    out = []
    for s in SUITES:
        if s in exclude or s in RP2_CORES_ONLY:
            continue
        marks = [pytest.mark.xfail(strict=True, reason=DEBUG_KNOWN[s])] if s in DEBUG_KNOWN else []
        out.append(pytest.param(s, marks=marks, id=s[:-3]))
    return out


@pytest.mark.parametrize("suite", _debug_params(exclude=() if LONG else ("test_vmem.py",)))
def test_device_suite_in_debug_mode_on_unix(suite, board_json):
    out = _unix(suite, board_json, _debug_preamble(suite))
    passed, failed, skipped = _summary(out)
    assert failed == 0, out[-4000:]
    assert passed > 0


@pytest.mark.parametrize("suite", _debug_params(exclude=("test_vmem.py",) if LONG else ("test_vmem.py", "test_replay.py")))
def test_device_suite_in_debug_mode_on_wasm32(suite, board_json):
    out = _wasm(suite, board_json, _debug_preamble(suite))
    passed, failed, skipped = _summary(out)
    assert failed == 0, out[-4000:]
    # test_isr needs threads, which the webassembly port lacks: all its tests skip
    assert passed > 0 or suite == "test_isr.py", out[-2000:]


def test_debug_preamble_switches_every_module():
    """What the preamble does, checked on the unix port: every module's switch is on,
    kmem's stays on across kmem_reset (it asks mpalloc.debug), and off() gives pool and
    pool_cache their plain functions back (no cost with debug off)."""
    flags = ("print('@@dbg', vmem._debug[0], extent._debug[0], zone._debug[0], objcache._debug[0], kmem._debug[0], "
             "uvm_km._debug[0], pool._debug[0], pool_cache._debug[0])\n")
    code = DEBUG_ON + (
        "from mpalloc import vmem, extent, zone, objcache, kmem, uvm_km, mem, pool, pool_cache\n"
        "mem.attach(0x20010000, bytearray(8192)); uvm_km.uvm_km_bootstrap(0x20010000, 8192, 256); kmem.kmem_reset()\n"
        + flags +
        "print('@@dbg', pool.pool_get is pool._dbg_get, pool_cache.pool_cache_put is pool_cache._dbg_put)\n"
        "mpalloc.debug.off()\n"
        + flags +
        "print('@@dbg', pool.pool_get is pool._pool_get, pool_cache.pool_cache_put is pool_cache._pc_put)\n"
        "kmem.kmem_reset()\n"
        "print('@@dbg', kmem._debug[0])\n")
    r = subprocess.run([str(MP), "-X", "heapsize=512K", "-c", code], capture_output=True, text=True, timeout=60,
                       env={"MICROPYPATH": str(FW)})
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("@@dbg")]
    assert lines == ["@@dbg True True True True True True True True", "@@dbg True True",
                     "@@dbg False False False False False False False False", "@@dbg True True",
                     "@@dbg False"], r.stdout + r.stderr
