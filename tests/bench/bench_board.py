# The figures a board's user asks for, on the board as board.init() sets it up
# (its mode, its hit pair, its managed window sized from its free heap):
#
#   pool_cache get+put hit (the pair this board binds), pool_get+pool_put,
#   kmem_alloc+kmem_free of 64 B, vmem_alloc+vmem_free on kernel_map,
#   vmem_alloc+vmem_free through a quantum cache, bytearray(64) for comparison:
#   on a fresh heap (just after the soft reset, before mpalloc's code, window
#   and the bench's data: "bytearray64_fresh") and on the bench heap (at the end).
#   Where a layer runs native code (mpalloc.native.paths()), each figure that
#   runs through it again on the bytecode path (native.off(): "<what>.bytecode"). On a board with two
#   cores running Python (rp2, MODE_SIO: emu:rp2040, a Pico) the pool_cache hit
#   per core in the board's clock cycles: core 0 alone (core 1 idle), core 1
#   alone (core 0 asleep in time.sleep_ms), both at once ("pool_cache_hit.core0",
#   ".core1", ".both_core0", ".both_core1").
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
REPS_NOW = [REPS]  # batches per figure (fewer for the bytecode round)
TARGET = A.get("batch_us", 20000)  # a batch's length in the board's (emulated) us

T0 = ticks_us()  # the bench's own length, in the board's (emulated) time
emit_env()
gc.collect()
emit("board.free_at_start", gc.mem_free())


def l_ba64(arg, n):
    for _ in range(n):
        bytearray(64)


def measure(key, f, arg, per, base=None):
    f(arg, 3)  # warm: pages, magazines, the class's cache in place
    n = pick_n(f, arg, TARGET, lo=5, hi=5000)
    k = len(CU_NS)
    xs = costs(f, arg, n, per, REPS_NOW[0], base)
    cu = emit_costs("board.%s" % key, xs)
    if MHZ and cu is not None and len(CU_NS) > k:
        emit("board.%s.cycles" % key, cu * median(CU_NS[k:]) / 1000 * MHZ)


# MicroPython's allocator before anything of mpalloc or the bench is in its heap
measure("bytearray64_fresh", l_ba64, None, 1)
gc.collect()

from mpalloc import board, intr, pool, vmem, uvm_km, kmem  # noqa: E402
from mpalloc import pool_cache as PC  # noqa: E402

board.init()
gc.collect()
emit("board.window_bytes", board.window[1])
emit("board.free_after_init", gc.mem_free())
emit("board.mode", ("up", "sio", "thread")[intr.mode] if intr.mode < 3 else intr.mode)
emit("board.hit_path", PC.native_path() if hasattr(PC, "native_path") else "bytecode")
emit("board.vmem_path", vmem.native_path() if hasattr(vmem, "native_path") else "bytecode")
try:
    from mpalloc import native
except ImportError:
    native = None
PATHS = native.paths() if native is not None else {}
emit("board.native_paths", ",".join("%s=%s" % (k, PATHS[k]) for k in sorted(PATHS)) or "none")
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


# the layers each figure runs through: its bytecode round is measured where one of
# them has native code
USES = (
    ("pool_cache_hit", ("pool_cache",)),
    ("pool_get_put", ("pool",)),
    ("kmem64", ("kmem", "pool_cache", "pool")),
    ("vmem", ("vmem",)),
    ("qcache", ("vmem", "pool_cache")),
)


def run_all(sfx, layers=None):
    # each allocator's figure under keys "<what><sfx>"; layers: only the figures
    # that run through one of these (None: all)
    todo = [k for k, u in USES if layers is None or [x for x in u if x in layers]]
    if "pool_cache_hit" in todo:
        pc = PC.pool_cache_init(32, 8, 0, 0, "bench-pc", None, pool.IPL_VM, None, None, None)
        measure("pool_cache_hit" + sfx, l_pc, pc, 2)
        b, _ = heap_bytes(l_pc, pc, 50)
        if b is not None:
            emit("board.pool_cache_hit%s.heap_bytes_per_op" % sfx, b / 100)
            emit("board.pool_cache_hit%s.heap_locked_ok" % sfx, heap_locked_ok(l_pc, pc, 50))
        PC.pool_cache_destroy(pc)
    if "pool_get_put" in todo:
        pp = pool.pool_init(32, 8, 0, 0, "bench-pool", None, pool.IPL_VM)
        measure("pool_get_put" + sfx, l_pool, pp, 2)
        pool.pool_destroy(pp)
    if "kmem64" in todo:
        measure("kmem64" + sfx, l_kmem, 64, 2, l_kmem_base)
    if "vmem" in todo:
        measure("vmem" + sfx, l_vmem, VA(uvm_km.kernel_map, 256), 2, l_vmem_base)
    if "qcache" in todo:
        Q = 16
        qa = vmem.vmem_create("bench-qc", 0x10000, 64 * Q, Q, 8 * Q, vmem.VM_NOSLEEP)
        measure("qcache" + sfx, l_vmem, VA(qa, 2 * Q), 2, l_vmem_base)
        vmem.vmem_destroy(qa)


def hit_us(pc, n, out, i):
    # n hit pairs on the calling core, in the board's us, its loop's own time
    # removed -> out[i] (a list made before: no allocation, no new global while
    # the other core runs Python)
    g = PC.pool_cache_get
    p = PC.pool_cache_put
    p(pc, g(pc, G))
    t = ticks_us()
    for _ in range(n):
        p(pc, g(pc, G))
    d = ticks_diff(ticks_us(), t)
    t = ticks_us()
    for _ in range(n):
        pass
    out[i] = d - ticks_diff(ticks_us(), t)


def per_core():
    # The hit per core (MODE_SIO: CPU id from the SIO CPUID), in cycles of the
    # board's clock per call (a pair's time / 2, as measure()): core 0 alone,
    # core 1 alone, both at once; the median of three runs of n pairs each, and
    # in cu of this run's calibration.
    import _thread
    import time

    pc = PC.pool_cache_init(32, 8, 0, 0, "bench-cores", None, pool.IPL_VM, None, None, None)
    n = 300 if QUICK else 600
    reps = 3
    box = [0, 0, 0]  # core 1: go, done, runs left
    res = [0, 0]
    runs = {"core0": [], "core1": [], "both_core0": [], "both_core1": []}

    def core1():
        while box[2]:
            while not box[0] and box[2]:
                pass
            if not box[2]:
                break
            box[0] = 0
            hit_us(pc, n, res, 1)
            box[1] = 1

    def wait1():
        t = time.ticks_ms()
        while not box[1]:
            if time.ticks_diff(time.ticks_ms(), t) > 60000:
                raise RuntimeError("bench: core 1 did not finish its run")
            time.sleep_ms(1)  # core 0 asleep (WFE) while core 1 runs
        box[1] = 0

    box[2] = 1
    _thread.start_new_thread(core1, ())
    try:
        for r in range(reps):
            hit_us(pc, n, res, 0)
            runs["core0"].append(res[0])
            box[0] = 1
            wait1()
            runs["core1"].append(res[1])
            box[0] = 1
            hit_us(pc, n, res, 0)
            wait1()
            runs["both_core0"].append(res[0])
            runs["both_core1"].append(res[1])
    finally:
        box[2] = 0
    st = PC.pool_cache_stats(pc)
    emit("board.pool_cache_hit.cpus", st["ncpu"])
    emit("board.pool_cache_hit.per_core_pairs", n)
    for c in range(2):
        a = st["cpus"][c]
        emit("board.pool_cache_hit.cpu%d_hits" % c, a["hits"])
        emit("board.pool_cache_hit.cpu%d_misses" % c, a["misses"])
    cu_ns = median(CU_NS)
    for k in sorted(runs):
        cyc = median(runs[k]) * MHZ / n / 2  # per call (get or put), as measure()'s figures
        emit("board.pool_cache_hit.%s.runs_us" % k, ",".join("%d" % u for u in runs[k]))
        emit("board.pool_cache_hit.%s.cycles" % k, cyc)
        if cu_ns:
            emit("board.pool_cache_hit.%s.cu" % k, cyc / (cu_ns * MHZ / 1000))
    time.sleep_ms(5)
    PC.pool_cache_destroy(pc)


run_all("")
if MHZ and intr.mode == intr.MODE_SIO and intr.ncpu > 1:
    try:
        per_core()
    except (ImportError, RuntimeError, OSError) as e:
        emit("board.per_core.crashed", str(e).replace(" ", "_")[:80])
NATIVE = [k for k in PATHS if PATHS[k] == "native"]
if NATIVE:
    native.off()
    emit("board.bytecode_paths", ",".join("%s=%s" % (k, v) for k, v in sorted(native.paths().items())))
    REPS_NOW[0] = 5
    run_all(".bytecode", NATIVE)
    REPS_NOW[0] = REPS
    native.on()

measure("bytearray64", l_ba64, None, 1)
gc.collect()
emit("board.free_at_end", gc.mem_free())
emit_calibration()
emit("board.bench_ms", ticks_diff(ticks_us(), T0) // 1000)
