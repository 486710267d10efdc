"""farm.py without boards: how --port lists and labgrid tag pools are shared out over
xdist workers, the checks on -n, the scheduler, the board named on every report, and
labgrid_target's spec parsing. (test_labgrid.py runs the real thing.)"""
import types

import pytest

from mpalloc_host import farm
from mpalloc_host.labgrid_target import LabgridError, parse_spec


class FakeConfig:
    def __init__(self, port, numprocesses=None, dist="no", workerid=None):
        self.option = types.SimpleNamespace(mpalloc_port=port, numprocesses=numprocesses, dist=dist)
        if workerid is not None:
            self.workerinput = {"workerid": workerid, "workercount": 2}

    def getoption(self, name, default=None):
        return getattr(self.option, name, default)


def test_split_ports():
    assert farm.split_ports("vboard:rp2040, vboard:esp32,") == ["vboard:rp2040", "vboard:esp32"]
    assert farm.split_ports(None) == []
    assert farm.is_pool("labgrid:board=rp2040") and not farm.is_pool("labgrid:pico-1")


@pytest.mark.parametrize("wid,port", [("gw0", "vboard:rp2040"), ("gw1", "vboard:esp32")])
def test_each_worker_takes_its_board(wid, port):
    c = FakeConfig("vboard:rp2040,vboard:esp32", workerid=wid)
    farm.pytest_configure(c)
    assert c.option.mpalloc_port == port


def test_tag_pool_is_shared_by_every_worker():
    c = FakeConfig("labgrid:board=rp2040", workerid="gw3")
    farm.pytest_configure(c)
    assert c.option.mpalloc_port == "labgrid:board=rp2040"


def test_a_list_needs_workers():
    with pytest.raises(pytest.UsageError, match="with -n 2"):
        farm.pytest_configure(FakeConfig("vboard:rp2040,vboard:esp32"))
    with pytest.raises(pytest.UsageError, match="-n 3 but --mpalloc-port lists only 2 boards"):
        farm.pytest_configure(FakeConfig("vboard:rp2040,vboard:esp32", numprocesses=3, dist="load"))
    farm.pytest_configure(FakeConfig("vboard:rp2040,vboard:esp32", numprocesses=2, dist="load"))
    farm.pytest_configure(FakeConfig("vboard:rp2040"))  # one board: nothing to say


def test_auto_workers_is_one_per_board():
    assert farm.pytest_xdist_auto_num_workers(FakeConfig("a,b,c")) == 3
    assert farm.pytest_xdist_auto_num_workers(FakeConfig("vboard:rp2040")) is None


def test_suites_go_whole_to_one_worker(monkeypatch):
    import xdist.scheduler

    class Chosen:
        def __init__(self, config, log):
            self.config = config

    monkeypatch.setattr(xdist.scheduler, "LoadFileScheduling", Chosen)
    c = FakeConfig("labgrid:farm=ci", numprocesses=2, dist="load")
    assert isinstance(farm.pytest_xdist_make_scheduler(c, None), Chosen)
    assert isinstance(farm.pytest_xdist_make_scheduler(FakeConfig("a,b", 2, "load"), None), Chosen)
    # a distribution mode the user chose is kept; host tests without a farm are left alone
    assert farm.pytest_xdist_make_scheduler(FakeConfig("labgrid:farm=ci", 2, "loadgroup"), None) is None
    assert farm.pytest_xdist_make_scheduler(FakeConfig("vboard:rp2040", 2, "load"), None) is None


def test_board_named_on_the_report():
    c = FakeConfig("labgrid:farm=ci")
    c._mpalloc = types.SimpleNamespace(_board=types.SimpleNamespace(name="labgrid:pico-1 (rp2040)"),
                                       port="labgrid:farm=ci")
    item = types.SimpleNamespace(config=c, fixturenames=("board",), user_properties=[("board", "old")])
    gen = farm.pytest_runtest_makereport(item, None)
    next(gen)
    assert item.user_properties == [("board", "labgrid:pico-1 (rp2040)")]
    other = types.SimpleNamespace(config=c, fixturenames=("tmp_path",), user_properties=[])
    gen = farm.pytest_runtest_makereport(other, None)
    next(gen)
    assert other.user_properties == []  # a host test without a board says nothing


def test_labgrid_specs():
    assert parse_spec("labgrid:pico-1") == {"place": "pico-1", "resource": None, "tags": None}
    assert parse_spec("labgrid:pico-1/console") == {"place": "pico-1", "resource": "console", "tags": None}
    assert parse_spec("labgrid:board=rp2040:farm=ci")["tags"] == {"board": "rp2040", "farm": "ci"}
    for bad in ("labgrid:", "labgrid:board=", "labgrid:board=rp2040:x"):
        with pytest.raises(LabgridError) as e:
            parse_spec(bad)
        assert str(e.value).startswith("labgrid:")
