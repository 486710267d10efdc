"""mip installs the device package (README "Use mpalloc in your program"): the real
`mpremote mip install` from a local HTTP server into a fresh virtual board, from the
repository's layout (what github:<owner>/<repo> serves) and from `make dist`'s .mpy
tree; then the README's program runs from /lib.
"""
import contextlib
import json
import re
import socket
import subprocess
import sys
import time

import pytest

from runtimes import MPREMOTE, open_or_fail
from mpalloc_host import ROOT, dist


@pytest.fixture(autouse=True)
def _demo_heap(monkeypatch):
    # mip installs the sources; with the Pico's own heap (heaps.py) the example,
    # compiled on the vboard from them beside the core, does not finish in 120 s
    # (the gc thrashes near a full heap): the heap make demo gives, until
    # the lean core makes it fit
    monkeypatch.setenv("MPALLOC_HEAP_FACTOR", "vboard:1.5")


def test_committed_manifests_are_current_and_cover_every_module():
    dist.check_complete()
    assert dist.stale_manifests() == []
    core = json.loads((ROOT / "package.json").read_text())
    assert [d for d, _ in core["urls"]] == ["mpalloc/%s.py" % m for m in dist.CORE]
    for d, url in core["urls"]:
        assert (ROOT / url).is_file(), url


@contextlib.contextmanager
def http_server(directory):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = subprocess.Popen([sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", str(directory), str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > end or p.poll() is not None:
                    raise AssertionError("http.server did not start")
                time.sleep(0.05)
        yield "http://127.0.0.1:%d" % port
    finally:
        p.kill()
        p.wait()


def mpremote(device, *args, timeout=120):
    r = subprocess.run([str(MPREMOTE), "connect", device] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, "mpremote %s: %s%s" % (" ".join(args), r.stdout[-800:], r.stderr[-800:])
    return r.stdout.replace("\r\n", "\n")


def check_program(out):
    m = re.search(r"packets (\d+) received, (\d+) dropped", out)
    assert m and int(m.group(1)) + int(m.group(2)) == 500 and int(m.group(1)) >= 250, out


def test_mip_install_from_the_repository_layout():
    vb = open_or_fail("vboard:rp2040")
    with vb, http_server(ROOT) as url:
        out = mpremote(vb.device, "mip", "install", url + "/package.json")
        assert "Installing: /lib/mpalloc/vmem.py" in out, out
        out = mpremote(vb.device, "mip", "install", url + "/firmware/package-stats.json")
        assert "Installing: /lib/mpalloc/stats.py" in out, out
        lib = sorted(vb.fs.listdir("/lib/mpalloc"))
        assert lib == sorted(["%s.py" % m for m in dist.CORE + dist.EXTRAS["stats"]])
        assert not vb.fs.exists("/mpalloc")          # nothing but what mip wrote
        check_program(mpremote(vb.device, "run", str(ROOT / "examples" / "pico_packets.py")))
        out = mpremote(vb.device, "exec", "from mpalloc import stats, vmem; print(vmem.__file__)")
        assert "/lib/mpalloc/vmem.py" in out


def test_mip_install_of_the_mpy_build(tmp_path):
    dist.build(tmp_path, archs=("x64",))
    for arch_dir in ("py", "x64"):
        assert (tmp_path / arch_dir / "package.json").is_file()
    vb = open_or_fail("vboard:rp2040")   # the unix port: x64
    with vb, http_server(tmp_path) as url:
        out = mpremote(vb.device, "mip", "install", url + "/x64/package.json")
        assert "Installing: /lib/mpalloc/pool_cache.mpy" in out, out
        assert sorted(vb.fs.listdir("/lib/mpalloc")) == \
            sorted("%s.mpy" % m for m in dist.CORE)
        check_program(mpremote(vb.device, "run", str(ROOT / "examples" / "pico_packets.py")))
        assert "/lib/mpalloc/vmem.mpy" in mpremote(vb.device, "exec", "from mpalloc import vmem; print(vmem.__file__)")


def test_dist_refuses_an_unknown_architecture(tmp_path):
    with pytest.raises(dist.DistError, match="unknown architecture 'armv9'"):
        dist.build(tmp_path, archs=("armv9",))


def test_mip_install_on_the_board_itself():
    # a board with network runs mip.install(...) itself (the unix port has mip and sockets)
    vb = open_or_fail("vboard:rp2040")
    with vb, http_server(ROOT) as url:
        out = mpremote(vb.device, "exec", "import mip; mip.install(%r)" % (url + "/package.json"))
        assert "Copying: /lib/mpalloc/pool_cache.py" in out and "Done" in out, out
        assert sorted(vb.fs.listdir("/lib/mpalloc")) == \
            sorted("%s.py" % m for m in dist.CORE)
        check_program(mpremote(vb.device, "run", str(ROOT / "examples" / "pico_packets.py")))


_CLEAN = ("import os\n"
          "def _rm(d):\n"
          " try:\n"
          "  for f in os.listdir(d):\n"
          "   os.remove(d + '/' + f)\n"
          "  os.rmdir(d)\n"
          " except OSError:\n"
          "  pass\n"
          "_rm('/mpalloc')\n_rm('/lib/mpalloc')\n")


def test_mip_install_of_the_armv6m_build_on_the_picos_own_firmware(tmp_path):
    # emu:rp2040 runs MicroPython's RPI_PICO firmware: the armv6m .mpy files mip installs are
    # the ones a Pico loads (its flash persists between sessions: start and end without mpalloc)
    dist.build(tmp_path, archs=("armv6m",))
    emu = open_or_fail("emu:rp2040")
    with emu, http_server(tmp_path) as url:
        mpremote(emu.device, "exec", _CLEAN)
        try:
            out = mpremote(emu.device, "mip", "install", url + "/armv6m/package.json", timeout=300)
            assert "Installing: /lib/mpalloc/pool_cache.mpy" in out, out
            lib = mpremote(emu.device, "exec", "import os; print(sorted(os.listdir('/lib/mpalloc')))")
            assert sorted("%s.mpy" % m for m in dist.CORE) == eval(lib.strip().splitlines()[-1])
            check_program(mpremote(emu.device, "run", str(ROOT / "examples" / "pico_packets.py"), timeout=300))
            assert "/lib/mpalloc/vmem.mpy" in mpremote(emu.device, "exec",
                                                       "from mpalloc import vmem; print(vmem.__file__)")
        finally:
            mpremote(emu.device, "exec", _CLEAN)
