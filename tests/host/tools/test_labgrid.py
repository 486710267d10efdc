"""Board farms with real components, all on 127.0.0.1: labgrid's coordinator and an
exporter (labgrid 26.0.1, started here), Debian's ser2net exporting two virtual
boards' ptys (one over RFC 2217, one as raw TCP), places created with labgrid's own
client commands; then

* a device suite through ``mpalloc test --port labgrid:<place>``;
* two boards in parallel: ``pytest -n 2 --port labgrid:farm=ci`` (each worker
  acquires a place), one JUnit file naming the board of every test, checked
  against what the board itself says it is;
* Ctrl-C in the middle of a run releases the place;
* faults, each a clear one-line error and the place left free: a place locked by
  someone else (acquired by labgrid's client code as another user), a ser2net port
  that refuses, an unknown place, no coordinator, an exporter that went away.

Everything is started and stopped by the module fixture, nothing is left running
(checked in /proc). Without labgrid or ser2net the module skips, except in CI
(CI=true) where that is a failure.
"""
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
SER2NET = shutil.which("ser2net") or ("/usr/sbin/ser2net" if os.path.exists("/usr/sbin/ser2net") else None)
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

pytestmark = pytest.mark.timeout(120)


def _need():
    missing = []
    try:
        import labgrid.remote.client  # noqa: F401
    except ImportError:
        missing.append("labgrid (pip, requirements.txt)")
    if not SER2NET:
        missing.append("ser2net (Debian package)")
    for exe in ("labgrid-coordinator", "labgrid-exporter", "labgrid-client", "mpalloc"):
        if not (VENV_BIN / exe).exists():
            missing.append(str(VENV_BIN / exe))
    if missing:
        msg = "board farm test needs " + ", ".join(missing) + ": run make setup"
        if CI:
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A daemon started for the test, in its own process group, output to a file."""

    def __init__(self, argv, cwd, ready=None, timeout=20.0, env=None):
        self.argv = [str(a) for a in argv]
        self.logpath = Path(cwd) / ("%s-%d.log" % (Path(self.argv[0]).name, time.monotonic_ns()))
        self.log = open(self.logpath, "w+b")
        self.p = subprocess.Popen(self.argv, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        end = time.monotonic() + timeout
        while ready and ready not in self.output():
            if self.p.poll() is not None or time.monotonic() > end:
                out = self.output()
                self.stop()
                raise RuntimeError("%s did not start: %s" % (self.argv[0], out[-1000:]))
            time.sleep(0.05)

    def output(self):
        self.log.flush()
        return self.logpath.read_bytes().decode("utf-8", "replace")

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.p.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.p.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.log.close()


FARM_SUITE = """\
# The board says which profile it runs (board.json is deployed with the firmware).
import json
from mptest import Suite, eq

s = Suite("%(name)s")


@s.test
def board_identity():
    with open("/board.json") as f:
        name = json.load(f)["name"]
    s.metric("board_identity", "device_board", name)
    eq(type(name), str, "board name")


s.run()
"""

SLOW_SUITE = """\
import time
from mptest import Suite

s = Suite("farm_slow")


@s.test
def sleeps():
    print("sleeping")
    time.sleep(60)


s.run()
"""


class Farm:
    """coordinator + exporter + ser2net + two virtual boards, places pico-1 (rp2040,
    RFC 2217), esp32-1 (esp32, raw TCP) tagged farm=ci, and dead-1 (nothing listens)."""

    def __init__(self, tmp):
        from mpalloc_host import vboard

        self.tmp = tmp
        self.procs = []
        self.vboards = []
        self.addr = "127.0.0.1:%d" % free_port()
        self.env = dict(os.environ, LG_COORDINATOR=self.addr, PYTHONUNBUFFERED="1")
        self.env.pop("MPALLOC_PORT", None)
        self.env.pop("LG_PLACE", None)
        self.procs.append(Proc([VENV_BIN / "labgrid-coordinator", "--listen", self.addr], tmp,
                               ready="listening on"))
        self.coordinator = self.procs[-1]
        # The ESP32 comes with mpalloc's firmware already on its filesystem (as a farm
        # board would): deploy then only checks hashes over the link, which keeps this
        # module fast. The RP2040 starts empty: the first run deploys everything
        # through ser2net (RFC 2217).
        from mpalloc_host.board import firmware_files

        self.vboards = [vboard.start("rp2040"),
                        vboard.start("esp32", files={dest: Path(src).read_bytes() for dest, src in firmware_files()})]
        self.ports = {"pico": free_port(), "esp32": free_port(), "dead": free_port()}
        (tmp / "ser2net.yaml").write_text(
            "%%YAML 1.1\n---\n"
            "connection: &pico\n"
            "  accepter: telnet(rfc2217),tcp,127.0.0.1,%d\n"
            "  connector: serialdev(nouucplock=true),%s,115200n81,local\n"
            "  options:\n    mdns: false\n"
            "connection: &esp32\n"
            "  accepter: tcp,127.0.0.1,%d\n"
            "  connector: serialdev(nouucplock=true),%s,115200n81,local\n"
            "  options:\n    mdns: false\n"
            % (self.ports["pico"], self.vboards[0].device, self.ports["esp32"], self.vboards[1].device))
        self.procs.append(Proc([SER2NET, "-n", "-d", "-c", tmp / "ser2net.yaml", "-P", tmp / "ser2net.pid"], tmp))
        self.ser2net = self.procs[-1]
        (tmp / "exporter.yaml").write_text(
            "pico-1:\n  NetworkSerialPort:\n    host: 127.0.0.1\n    port: %d\n    speed: 115200\n"
            "    protocol: rfc2217\n"
            "esp32-1:\n  NetworkSerialPort:\n    host: 127.0.0.1\n    port: %d\n    speed: 115200\n"
            "    protocol: raw\n"
            "dead-1:\n  NetworkSerialPort:\n    host: 127.0.0.1\n    port: %d\n"
            % (self.ports["pico"], self.ports["esp32"], self.ports["dead"]))
        self.procs.append(Proc([VENV_BIN / "labgrid-exporter", "-c", self.addr, "--name", "rack1",
                                tmp / "exporter.yaml"], tmp))
        self.exporter = self.procs[-1]
        self._setup_places()

    def session(self):
        from mpalloc_host.labgrid_target import _Session

        return _Session(self.addr, "test")

    def client(self, s, *argv):
        """A labgrid-client command run in this process (labgrid's own parser and code)."""
        from labgrid.remote import client

        args = client.get_parser().parse_args(["-x", self.addr] + list(argv))
        s.s.args = args
        r = args.func(s.s)
        if asyncio.iscoroutine(r):
            s.loop.run_until_complete(asyncio.wait_for(r, 10))

    def _setup_places(self):
        s = self.session()
        try:
            end = time.monotonic() + 20
            while len(s.s.resources.get("rack1", {})) < 3:
                assert self.exporter.alive(), self.exporter.output()[-1000:]
                assert time.monotonic() < end, "exporter resources did not appear: " + self.exporter.output()[-1000:]
                s.loop.run_until_complete(asyncio.sleep(0.1))
            for place, tags in (("pico-1", ("board=rp2040", "farm=ci")), ("esp32-1", ("board=esp32", "farm=ci")),
                                ("dead-1", ("board=rp2040",))):
                self.client(s, "-p", place, "create")
                self.client(s, "-p", place, "add-match", "rack1/%s/NetworkSerialPort" % place)
                self.client(s, "-p", place, "set-tags", *tags)
        finally:
            s.close()

    def acquired(self):
        """place -> who holds it (None when free), as the coordinator sees it now."""
        s = self.session()
        try:
            return {name: p.acquired for name, p in s.s.places.items()}
        finally:
            s.close()

    def run(self, argv, timeout=60, **kw):
        return subprocess.run([str(a) for a in argv], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=timeout, **kw)

    def close(self):
        for p in reversed(self.procs):
            p.stop()
        for vb in self.vboards:
            vb.close()


def _leftovers(marks):
    """Processes (other than this one) whose command line mentions one of marks."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if any(m in cmd for m in marks):
            found.append("%s: %s" % (d.name, cmd[:160]))
    return found


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    _need()
    tmp = tmp_path_factory.mktemp("farm")
    f = Farm(tmp)
    try:
        yield f
    finally:
        f.close()
        marks = [f.addr, str(tmp)]
        end = time.monotonic() + 5
        while _leftovers(marks) and time.monotonic() < end:
            time.sleep(0.1)
        assert not _leftovers(marks), "left running: %s" % _leftovers(marks)


@pytest.fixture(scope="module")
def suites(tmp_path_factory):
    d = tmp_path_factory.mktemp("farm_suites") / "device"
    d.mkdir()
    for name in ("farm_a", "farm_b"):
        (d / ("test_%s.py" % name)).write_text(FARM_SUITE % {"name": name})
    (d / "test_farm_slow.py").write_text(SLOW_SUITE)
    return d


def _free(farm):
    return {k: v for k, v in farm.acquired().items() if v}


def test_device_suite_through_a_labgrid_place(farm, tmp_path):
    junit = tmp_path / "junit.xml"
    r = farm.run([VENV_BIN / "mpalloc", "test", "--port", "labgrid:pico-1", "mptest", "--junit", junit, "-q"])
    assert r.returncode == 0, r.stdout + r.stderr
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert len(cases) >= 4, r.stdout
    assert not any(c.find("failure") is not None or c.find("error") is not None for c in cases)
    assert _free(farm) == {}, "place not released after the run"


def test_two_boards_in_parallel_one_junit(farm, suites, tmp_path):
    junit = tmp_path / "junit.xml"
    r = farm.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:labgrid",
                  "--rootdir", suites.parent, "-n", "2", "--mpalloc-port", "labgrid:farm=ci", "--junitxml", junit,
                  suites / "test_farm_a.py", suites / "test_farm_b.py"], timeout=90)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    seen = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert "board" in props, "test %s has no board property" % case.get("name")
        seen[case.get("classname")] = props
    assert len(seen) == 2, seen
    # the board's name is the place acquired, with the profile when the name does not say it
    places = {p["board"].split()[0]: p for p in seen.values()}
    assert set(places) == {"labgrid:pico-1", "labgrid:esp32-1"}, "both boards used, one per worker: %s" % seen
    want = {"labgrid:pico-1": "rp2040", "labgrid:esp32-1": "esp32"}
    for place, props in places.items():
        assert props["device_board"] == want[place], props  # the board itself agrees
    assert _free(farm) == {}


def test_board_list_needs_n(farm, suites):
    r = farm.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:labgrid",
                  "--rootdir", suites.parent, "--mpalloc-port", "labgrid:pico-1,labgrid:esp32-1", suites / "test_farm_a.py"])
    assert r.returncode != 0
    assert "-n 2" in r.stderr + r.stdout, r.stderr


def test_ctrl_c_releases_the_place(farm, suites):
    p = subprocess.Popen([str(VENV_BIN / "mpalloc"), "test", "--port", "labgrid:pico-1", "--timeout", "90",
                          str(suites / "test_farm_slow.py")], cwd=ROOT, env=farm.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 40
        while farm.acquired().get("pico-1") is None:
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < end, "the place was never acquired"
            time.sleep(0.2)
        time.sleep(2.5)  # deploy + suite started
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, out + err
    assert "interrupted" in err
    assert farm.acquired().get("pico-1") is None, "Ctrl-C left the place acquired"


def _open_error(farm, spec):
    from mpalloc_host.labgrid_target import LabgridError, open_labgrid

    with pytest.raises(LabgridError) as ei:
        with open_labgrid(spec, address=farm.addr):
            pass
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(spec), msg
    return msg


def _as_alice(farm, monkeypatch, command):
    """labgrid-client -p pico-1 <command>, as user alice on host bench7 (labgrid's
    own client code; LG_USERNAME/LG_HOSTNAME are how labgrid names a client)."""
    with monkeypatch.context() as m:
        m.setenv("LG_USERNAME", "alice")
        m.setenv("LG_HOSTNAME", "bench7")
        s = farm.session()
        try:
            farm.client(s, "-p", "pico-1", command)
        finally:
            s.close()


def test_place_locked_by_someone_else(farm, monkeypatch):
    _as_alice(farm, monkeypatch, "acquire")
    try:
        assert farm.acquired()["pico-1"] == "bench7/alice"
        msg = _open_error(farm, "labgrid:pico-1")
        assert "locked by bench7/alice" in msg
        # a tag pool skips it and takes the free one
        from mpalloc_host.labgrid_target import open_labgrid

        with open_labgrid("labgrid:farm=ci", address=farm.addr) as t:
            assert t.place == "esp32-1" and t.device.startswith("socket://127.0.0.1:")
            assert farm.acquired()["esp32-1"] not in (None, "bench7/alice")
        # through the CLI: exit status 2, one line on stderr
        r = farm.run([VENV_BIN / "mpalloc", "test", "--port", "labgrid:pico-1", "mptest"])
        assert r.returncode == 2, r.stdout + r.stderr
        assert "locked by bench7/alice" in r.stderr and "Traceback" not in r.stderr, r.stderr
    finally:
        _as_alice(farm, monkeypatch, "release")
    assert farm.acquired() == {"pico-1": None, "esp32-1": None, "dead-1": None}


def test_ser2net_port_that_refuses(farm):
    msg = _open_error(farm, "labgrid:dead-1")
    assert "127.0.0.1:%d" % farm.ports["dead"] in msg and "refused" in msg.lower(), msg
    assert farm.acquired()["dead-1"] is None, "place kept after the error"
    # a tag pool passes over it (dead-1 sorts first) and takes a board that answers
    from mpalloc_host.labgrid_target import open_labgrid

    with open_labgrid("labgrid:board=rp2040", address=farm.addr) as t:
        assert t.place == "pico-1" and farm.acquired()["dead-1"] is None
    assert farm.acquired()["pico-1"] is None


def test_unknown_place_and_no_coordinator(farm):
    msg = _open_error(farm, "labgrid:nosuch")
    assert "nosuch" in msg and "pico-1" in msg  # names the places there are
    from mpalloc_host.labgrid_target import LabgridError, open_labgrid

    nobody = "127.0.0.1:%d" % free_port()
    with pytest.raises(LabgridError, match="cannot reach the labgrid coordinator at 127.0.0.1"):
        with open_labgrid("labgrid:pico-1", address=nobody):
            pass


def test_exporter_gone(farm):
    # last: stops the exporter for good
    farm.exporter.stop()
    end = time.monotonic() + 15
    while True:
        from mpalloc_host.labgrid_target import LabgridError, open_labgrid

        try:
            with open_labgrid("labgrid:pico-1", address=farm.addr):
                pass
        except LabgridError as e:
            msg = str(e)
            break
        assert time.monotonic() < end, "the coordinator still offers the gone exporter's port"
        time.sleep(0.3)
    assert "no exporter offers rack1/pico-1/NetworkSerialPort" in msg, msg
    assert farm.acquired()["pico-1"] is None
