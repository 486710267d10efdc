# The figures a board's user asks for, on the board as board.init() sets it up
# (its mode, its hit pair, its managed window sized from its free heap):
#
#   pool_cache get+put hit (the pair this board binds), pool_get+pool_put,
#   kmem_alloc+kmem_free of 64 B, vmem_alloc+vmem_free on kernel_map,
#   vmem_alloc+vmem_free through a quantum cache, bytearray(64) for comparison.
#
#   mpalloc bench --port emu:rp2040     (the host sends benchcore + this script)
#   MICROPYPATH=firmware:tests/bench .venv/bin/micropython tests/bench/bench_board.py [quick=1] [mhz=125]
#
# Each figure is "@@bench board.<what>.cu" (median over the batches, benchcore's
# method) and, with mhz=N (the host passes the emulated clock of an emulated
# board), "board.<what>.cycles": cu x the run's median call time x N, cycles of
# the board's clock per operation. Nothing here is sized for a larger heap than
# the board has: the pools take their pages from the window board.init() sized
# from the free heap, the quantum-cache arena manages addresses, not bytes.
from benchcore import *  # noqa: F401,F403

A = bench_args(globals())
QUICK = A.get("quick", 0)
MHZ = A.get("mhz", 0)
REPS = 5 if QUICK else 9
TARGET = A.get("batch_us", 20000)  # a batch's length in the board's (emulated) us

emit_env()
gc.collect()
emit("board.free_at_start", gc.mem_free())

from mpalloc import board, intr, pool, vmem, uvm_km, kmem  # noqa: E402
from mpalloc import pool_cache as PC  # noqa: E402

board.init()
gc.collect()
emit("board.window_bytes", board.window[1])
emit("board.free_after_init", gc.mem_free())
emit("board.mode", ("up", "sio", "thread")[intr.mode] if intr.mode < 3 else intr.mode)
emit("board.hit_path", PC.native_path() if hasattr(PC, "native_path") else "bytecode")
emit("board.vmem_path", vmem.native_path() if hasattr(vmem, "native_path") else "bytecode")
G = pool.PR_NOWAIT


def l_pc(pc, n):
    g = PC.pool_cache_get
    p = PC.pool_cache_put
    for _ in range(n):
        p(pc, g(pc, G))


def l_pool(pp, n):
    g = pool.pool_get
    p = pool.pool_put
    for _ in range(n):
        p(pp, g(pp, G))


def l_kmem(z, n):
    al = kmem.kmem_alloc
    fr = kmem.kmem_free
    for _ in range(n):
        fr(al(z, 2), z)


def l_kmem_base(z, n):
    for _ in range(n):
        z


class VA:
    def __init__(self, vm, size):
        self.vm = vm
        self.size = size


def l_vmem(s, n):
    al = vmem.vmem_alloc
    fr = vmem.vmem_free
    vm = s.vm
    z = s.size
    f = vmem.VM_NOSLEEP | vmem.VM_INSTANTFIT
    for _ in range(n):
        fr(vm, al(vm, z, f), z)


def l_vmem_base(s, n):
    vm = s.vm
    z = s.size
    for _ in range(n):
        vm
        z


def l_ba64(arg, n):
    for _ in range(n):
        bytearray(64)


def measure(key, f, arg, per, base=None):
    f(arg, 3)  # warm: pages, magazines, the class's cache in place
    n = pick_n(f, arg, TARGET, lo=5, hi=5000)
    k = len(CU_NS)
    xs = costs(f, arg, n, per, REPS, base)
    cu = emit_costs("board.%s" % key, xs)
    if MHZ and cu is not None and len(CU_NS) > k:
        emit("board.%s.cycles" % key, cu * median(CU_NS[k:]) / 1000 * MHZ)


pc = PC.pool_cache_init(32, 8, 0, 0, "bench-pc", None, pool.IPL_VM, None, None, None)
measure("pool_cache_hit", l_pc, pc, 2)
b, _ = heap_bytes(l_pc, pc, 50)
if b is not None:
    emit("board.pool_cache_hit.heap_bytes_per_op", b / 100)
    emit("board.pool_cache_hit.heap_locked_ok", heap_locked_ok(l_pc, pc, 50))
PC.pool_cache_destroy(pc)

pp = pool.pool_init(32, 8, 0, 0, "bench-pool", None, pool.IPL_VM)
measure("pool_get_put", l_pool, pp, 2)
pool.pool_destroy(pp)

measure("kmem64", l_kmem, 64, 2, l_kmem_base)

measure("vmem", l_vmem, VA(uvm_km.kernel_map, 256), 2, l_vmem_base)

Q = 16
qa = vmem.vmem_create("bench-qc", 0x10000, 64 * Q, Q, 8 * Q, vmem.VM_NOSLEEP)
measure("qcache", l_vmem, VA(qa, 2 * Q), 2, l_vmem_base)
vmem.vmem_destroy(qa)

measure("bytearray64", l_ba64, None, 1)
gc.collect()
emit("board.free_at_end", gc.mem_free())
emit_calibration()
