# uvm_km(9) and kmem(9) on the board: kernel_map over a window of this suite,
# size/type checks, demand-zero pages, kmem classes, debug reports, and zero
# heap allocation of kmem_intr_alloc/free (<= 1 KB) under heap_lock and from an
# emulated hard interrupt.
# Run directly: MICROPYPATH=firmware .venv/bin/micropython -X heapsize=192K tests/device/test_kmem.py
import gc
import sys

# The window first (a contiguous block is hard to find once the modules have
# compiled), as large as leaves room to compile them: 12 KB down to 6 KB.
gc.collect()
_SIZE = 12288
_WIN = None
while _WIN is None:
    try:
        _WIN = bytearray(_SIZE)
    except MemoryError:
        _SIZE -= 1024
        if _SIZE < 6144:
            raise

from mptest import Suite, raises, heap_locked, check_msg, eq  # noqa: E402

from mpalloc import mem, intr  # noqa: E402
from mpalloc import uvm_km, kmem  # noqa: E402

s = Suite("kmem", needs=("heap:60000",))

_BASE = 0x20010000
_PS = 256


def _boot():
    intr.setup(1)
    kmem.kmem_reset()
    mem.attach(_BASE, _WIN)
    uvm_km.uvm_km_bootstrap(_BASE, _SIZE, _PS)
    return uvm_km, kmem


@s.test
def uvm_km_types_and_misuse():
    uk, _ = _boot()
    km = uk.kernel_map
    a = uk.uvm_km_alloc(km, 600, 0, uk.UVM_KMF_WIRED | uk.UVM_KMF_ZERO)
    eq(a % _PS, 0, "page aligned")
    eq(bytes(uk.uvm_km_buf(a, 600)), bytes(600), "zeroed")
    p = uk.uvm_km_alloc(km, 256, 1024, uk.UVM_KMF_PAGEABLE)
    eq(p % 1024, 0, "aligned")
    mem.buf(p, 1)[0] = 9
    eq(uk.uvm_km_buf(p, 1)[0], 0, "demand-zero on first access")
    mem.buf(p, 1)[0] = 9
    eq(uk.uvm_km_buf(p, 1)[0], 9, "zeroed only once")
    check_msg(raises(ValueError, uk.uvm_km_free, km, a, 600, uk.UVM_KMF_PAGEABLE), "uvm_km_free", "type")
    check_msg(raises(ValueError, uk.uvm_km_free, km, a, 1024, uk.UVM_KMF_WIRED), "uvm_km_free", "bytes")
    check_msg(raises(ValueError, uk.uvm_km_free, km, a + _PS, 256, uk.UVM_KMF_WIRED), "uvm_km_free", "never")
    check_msg(raises(ValueError, uk.uvm_km_alloc, km, 256, 0, uk.UVM_KMF_VAONLY | uk.UVM_KMF_ZERO), "ZERO")
    check_msg(raises(ValueError, uk.uvm_km_alloc, km, 256, 0, uk.UVM_KMF_WIRED | uk.UVM_KMF_EXEC), "EXEC")
    uk.uvm_km_free(km, a, 600, uk.UVM_KMF_WIRED)
    uk.uvm_km_free(km, p, 256, uk.UVM_KMF_PAGEABLE)
    sm, lo, hi = uk.uvm_km_suballoc(km, 1024, uk.VM_MAP_TOPDOWN, False, 0, "sm")
    eq(uk.uvm_km_alloc(sm, 256, 0, uk.UVM_KMF_VAONLY), hi - 256, "top-down")
    eq(uk.uvm_km_alloc(km, _SIZE, 0, uk.UVM_KMF_WIRED | uk.UVM_KMF_NOWAIT), 0, "exhausted -> 0")


_sizes = (1, 8, 13, 64, 100, 200, 333, 512, 1024)
_ptrs = [0] * len(_sizes)


def _kmem_round(k):
    for i in range(len(_sizes)):
        _ptrs[i] = k.kmem_intr_alloc(_sizes[i], 2)
    for i in range(len(_sizes)):
        k.kmem_intr_free(_ptrs[i], _sizes[i])
    return 0


@s.test
def kmem_intr_heap_locked_up_to_1k():
    _, k = _boot()
    for r in range(3):
        _kmem_round(k)
    heap_locked(_kmem_round, k)
    for i in range(len(_sizes)):
        if _ptrs[i] is None:
            raise AssertionError("kmem_intr_alloc(%d) failed" % _sizes[i])
    st = k.kmem_stats()
    n = 0
    for c in st["classes"]:
        n += c["inuse"]
    eq(n, 0, "in use after the rounds")
    # heap_lock hides a call frame the VM takes from the heap when a
    # function's state exceeds 11 words (it falls back to the C stack);
    # micropython.mem_total() counts it: none on these paths either.
    try:
        import micropython

        mt = micropython.mem_total
    except (ImportError, AttributeError):
        return
    for f in (k.kmem_alloc, k.kmem_zalloc):
        _kmem_ops(f, k, 1)
        m0 = mt()
        _kmem_ops(f, k, 1)
        m1 = mt()
        _kmem_ops(f, k, 2)
        m2 = mt()
        # one round more in the second call: the call's own cost cancels out
        eq((m2 - m1) - (m1 - m0), 0, "heap bytes of a kmem_alloc/zalloc/free round")


def _kmem_ops(f, k, n):
    # n rounds of f(size, KM_NOSLEEP) + kmem_free per size
    for r in range(n):
        for i in range(len(_sizes)):
            _ptrs[i] = f(_sizes[i], 2)
        for i in range(len(_sizes)):
            k.kmem_free(_ptrs[i], _sizes[i])


@s.test
def kmem_intr_from_emulated_irq():
    _, k = _boot()
    _kmem_round(k)
    intr.run_hard(_kmem_round, k, 0)
    e = raises(ValueError, intr.run_hard, lambda x: k.kmem_alloc(8, 2), None, 0)
    check_msg(e, "kmem_alloc", "interrupt")


@s.test
def kmem_classes_large_and_wrong_size():
    _, k = _boot()
    eq(k.kmem_class(20), 24, "class of 20")
    eq(k.kmem_class(513), 768, "class of 513")
    p = k.kmem_zalloc(2000, k.KM_SLEEP)
    eq(bytes(mem.buf(p, 2000)), bytes(2000), "zalloc large")
    q = k.kmem_alloc(40, k.KM_NOSLEEP)
    check_msg(raises(ValueError, k.kmem_free, q, 100), "kmem_free", "kmem-00112")
    check_msg(raises(ValueError, k.kmem_free, p, 5000), "kmem_free", "bytes")
    k.kmem_free(q, 40)
    k.kmem_free(p, 2000)
    eq(k.kmem_stats()["large"]["inuse_bytes"], 0, "large in use")


@s.test
def kmem_debug_reports():
    _, k = _boot()
    k.kmem_debug(True)
    p = k.kmem_alloc(20, k.KM_SLEEP)
    mem.buf(p, 21)[20] = 0
    check_msg(raises(ValueError, k.kmem_free, p, 20), "redzone", "kmem-00032", "0x%x" % (p + 20))
    p = k.kmem_alloc(100, k.KM_SLEEP)
    check_msg(raises(ValueError, k.kmem_free, p, 101), "size check", "kmem-00112", "0x%x" % p)
    k.kmem_free(p, 100)
    check_msg(raises(ValueError, k.kmem_free, p, 100), "double free", "kmem-00112", "0x%x" % p)
    mem.buf(p, 1)[0] = 1
    check_msg(raises(ValueError, k.kmem_alloc, 100, k.KM_SLEEP), "use after free", "kmem-00112", "0x%x" % p)
    k.kmem_debug(False)


# -- issue 20: the native (viper) hot path beside the bytecode one -----------
# sys.platform -> the path kmem binds there (native where the firmware compiles
# viper code), unless the runner switched native code off (MPALLOC_NATIVE=off)
_EXPECT = {"linux": "native", "darwin": "native", "rp2": "native", "esp32": "native",
           "webassembly": "bytecode", "microbit": "bytecode"}


def _native():
    from mpalloc import native

    return native, native.switch[0]


def _digest(k):
    # a seeded mix of kmem_alloc/free of 1..1100 bytes (small classes, a large
    # one, misuse refused along the way): a digest of the addresses and counts
    _boot()
    held = []
    x = 4321
    h = 0
    for i in range(400):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        if (x >> 8) % 3 and len(held) < 24 or not held:
            z = 1 + (x >> 12) % 1100
            p = k.kmem_alloc(z, k.KM_NOSLEEP)
            if p is None:
                h = (h * 31 + 7) & 0xFFFFFF
                continue
            held.append((p, z))
            h = (h * 31 + p + z) & 0xFFFFFF
        else:
            p, z = held.pop((x >> 12) % len(held))
            k.kmem_free(p, z)
            if 8 < z <= 1024 and i % 7 == 0:  # a double free (class 16 and up), refused on both paths
                e = raises(ValueError, k.kmem_free, p, z)
                h = (h * 31 + len(str(e))) & 0xFFFFFF
            h = (h * 31 + 3) & 0xFFFFFF
    for p, z in held:
        k.kmem_free(p, z)
    st = k.kmem_stats()
    for c in st["classes"]:
        h = (h * 31 + c["nalloc"] * 3 + c["inuse"]) & 0xFFFFFF
    return h, st["large"]["nalloc"], st["large"]["inuse_bytes"]


@s.test
def kmem_binds_expected_path():
    native, sw = _native()
    path = kmem.native_path()
    s.metric("kmem_binds_expected_path", "path", path)
    want = _EXPECT.get(sys.platform, path)
    eq(path, want if sw else "bytecode", "kmem path on %s (switch %d)" % (sys.platform, sw))
    eq(native.paths()["kmem"], path, "native.paths()")
    native.off()
    try:
        eq(kmem.native_path(), "bytecode", "after native.off()")
        _boot()  # intr.setup and kmem_reset keep the switch
        eq(kmem.native_path(), "bytecode", "after set-up with native off")
    finally:
        native.on() if sw else native.off()
    eq(kmem.native_path(), path, "switched back")


@s.test
def kmem_same_digest_both_paths():
    native, sw = _native()
    a = _digest(kmem)
    native.off()
    try:
        b = _digest(kmem)
    finally:
        native.on() if sw else native.off()
    s.metric("kmem_same_digest_both_paths", "digest", a[0])
    eq(a, b, "native vs bytecode")


def _misuse(k):
    p = k.kmem_alloc(40, k.KM_NOSLEEP)
    check_msg(raises(ValueError, k.kmem_free, p, 100), "kmem_free", "kmem-00112")  # another class
    check_msg(raises(ValueError, k.kmem_free, p + 8, 40), "kmem_free", "inside")
    check_msg(raises(ValueError, k.kmem_free, None, 40), "kmem_free")
    check_msg(raises(ValueError, k.kmem_free, p + (1 << 64), 40), "kmem_free")  # never truncated to p
    check_msg(raises(ValueError, k.kmem_alloc, 8, 3), "kmem_alloc", "KM_SLEEP")
    check_msg(raises(ValueError, k.kmem_alloc, (1 << 64) + 8, 2), "kmem_alloc", "size")
    check_msg(raises(ValueError, k.kmem_alloc, 0, 2), "kmem_alloc", "size")
    check_msg(raises(ValueError, intr.run_hard, lambda z: k.kmem_alloc(z, 2), 8, 0), "kmem_alloc", "interrupt")
    check_msg(raises(ValueError, intr.run_hard, lambda q: k.kmem_free(q, 40), p, 0), "kmem_free", "interrupt")
    k.kmem_free(p, 40)
    check_msg(raises(ValueError, k.kmem_free, p, 40), "kmem_free", "double free")  # still in a magazine
    raises(TypeError, k.kmem_alloc, 8.5, 2)  # the interpreter's TypeError, nothing taken
    q = k.kmem_alloc(40, k.KM_NOSLEEP)
    eq(q, p, "the magazine gave the same item back")
    k.kmem_free(q, 40)


@s.test
def kmem_misuse_and_heap_locked_both_paths():
    native, sw = _native()
    try:
        for off in (0, 1):
            if off:
                native.off()
            _, k = _boot()
            _misuse(k)
            for r in range(3):
                _kmem_round(k)
            heap_locked(_kmem_round, k)
            intr.run_hard(_kmem_round, k, 0)
    finally:
        native.on() if sw else native.off()


s.run()
