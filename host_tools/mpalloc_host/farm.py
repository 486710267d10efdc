"""Several boards in one pytest run: pytest-xdist workers, one board each.

A pytest plugin (entry point pytest11 ``mpalloc_farm``) next to mpalloc's own:

    pytest tests/device -n 2 --mpalloc-port vboard:rp2040,vboard:esp32 --junitxml out/junit.xml
    pytest tests/device -n 3 --mpalloc-port labgrid:board=rp2040     # any 3 free places with that tag
    pytest tests/device -n 2 --mpalloc-port labgrid:pico-1,labgrid:esp32-1

* ``--mpalloc-port`` may list boards separated by commas: worker gwN takes the N-th
  (``-n`` must not exceed the list; ``-n auto`` means one worker per board);
  without ``-n`` a list is an error (say ``-n``), a single port works as always.
* A labgrid tag selection (``labgrid:<key>=<value>``) is a pool: every worker
  acquires its own free place carrying the tags (labgrid_target.py).
* Device suites are handed out whole (xdist ``loadfile``): a suite runs once, on
  one board, however its tests are spread.
* Every test that used a board carries a ``board`` property (the board it ran
  on, e.g. ``labgrid:pico-1`` or ``vboard:esp32``) in the JUnit XML that xdist
  merges from all workers.

Only the ``--mpalloc-port`` option of mpalloc's pytest plugin is read and, in a worker,
replaced by that worker's board before the plugin opens it.
"""
import pytest


def split_ports(port):
    """'a,b' -> ['a', 'b']; None -> []."""
    if not port:
        return []
    return [p.strip() for p in port.split(",") if p.strip()]


def is_pool(port):
    """A port that every worker may share because each gets its own board from it."""
    return port.startswith("labgrid:") and "=" in port


def _ports(config):
    try:
        return split_ports(config.getoption("mpalloc_port"))
    except ValueError:  # mpalloc's plugin not loaded
        return []


def _farm(config):
    """True when this run spreads device tests over several boards."""
    ports = _ports(config)
    return len(ports) > 1 or (len(ports) == 1 and is_pool(ports[0]))


def _workers(config):
    n = config.getoption("numprocesses", None)
    return n if isinstance(n, int) else 0


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    ports = _ports(config)
    if len(ports) > 1:
        return len(ports)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    ports = _ports(config)
    winput = getattr(config, "workerinput", None)
    if winput is not None:  # an xdist worker: take this worker's board
        if len(ports) > 1:
            i = int(str(winput["workerid"]).lstrip("gw") or 0)
            config.option.mpalloc_port = ports[i % len(ports)]
        return
    if len(ports) <= 1:
        return
    n = _workers(config)
    dist = config.getoption("dist", "no")
    if not n or dist == "no":
        raise pytest.UsageError("--mpalloc-port lists %d boards (%s): run them in parallel, one board per worker, "
                                "with -n %d (pytest-xdist)" % (len(ports), ", ".join(ports), len(ports)))
    if n > len(ports):
        raise pytest.UsageError("-n %d but --mpalloc-port lists only %d boards (%s): one board per worker, use -n %d"
                                % (n, len(ports), ", ".join(ports), len(ports)))


def pytest_sessionfinish(session):
    """In an xdist worker, give the board back now: once the worker reports that it
    finished, the controller may end the process before pytest_unconfigure (where
    mpalloc's plugin closes the board) gets to release a labgrid place."""
    config = session.config
    if getattr(config, "workerinput", None) is None:
        return
    s = getattr(config, "_mpalloc", None)
    if s is not None and callable(getattr(s, "close", None)):
        s.close()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if not _farm(config) or config.getoption("dist", "load") != "load":
        return None  # the user chose a distribution mode: keep it
    from xdist.scheduler import LoadFileScheduling

    return LoadFileScheduling(config, log)


def board_name(config):
    """The board this process's tests run on: the opened board's name (the place
    actually acquired for a labgrid tag) or else the --mpalloc-port value."""
    s = getattr(config, "_mpalloc", None)
    b = getattr(s, "_board", None)
    name = getattr(b, "name", None)
    if name:
        return name
    return getattr(s, "port", None) or config.getoption("mpalloc_port", None)


def _uses_board(item):
    if "board" in getattr(item, "fixturenames", ()):
        return True
    try:
        from .pytest_plugin import DeviceTest
    except ImportError:
        return False
    return isinstance(item, DeviceTest)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    if _uses_board(item):
        name = board_name(item.config)
        if name:
            props = [p for p in item.user_properties if p[0] != "board"]
            props.append(("board", str(name)))
            item.user_properties[:] = props
    yield
