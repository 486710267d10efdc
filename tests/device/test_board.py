# mpalloc.board on the device: profile, extent maps, claims, DMA buffers.
# Runs on every target; on the virtual board the profile's memory map is
# emulated (board.json written by the host), peripheral registers are not.
import sys

from mptest import Suite, raises, check_msg, eq, skip

from mpalloc import board

s = Suite("board", needs=("heap:65536",))


def free_uart():
    # UART0 unless MicroPython itself uses it for the REPL (esp32, micro:bit)
    for p in board.memory_map()["peripherals"]:
        if p["name"] in ("UART0", "UART1") and p["owner"] is None:
            return p["name"]
    raise AssertionError("no free UART in the profile")


@s.test
def init_is_idempotent():
    p = board.init()
    eq(board.init() is p, True, "second init returns the same profile")
    eq(board.booted(), True, "booted")
    b, n, _ = board.window
    from mpalloc import uvm_km

    eq(uvm_km.kernel_map is not None, True, "kernel_map set up")


@s.test
def window_and_micropython_claimed_in_sram():
    from mpalloc.extent import extent_regions

    b, n, _ = board.window
    regs = extent_regions(board.sram_map)
    eq((b, b + n - 1, "mpalloc") in regs, True, "window claimed by mpalloc")
    eq(any(r[2] == "micropython" for r in regs), True, "micropython's own SRAM claimed")
    # nobody else can claim inside the window or MicroPython's SRAM
    e = raises(OSError, board.claim, "intruder", b + 16, 16)
    check_msg(e, "claim" if False else "extent_alloc_region", "mpalloc")
    for rs, re, o in regs:
        if o == "micropython":
            e = raises(OSError, board.claim, "intruder", rs, 4)
            check_msg(e, "claimed by 'micropython'")
            break


@s.test
def uart0_twice_names_the_first_owner():
    u = free_uart()
    b, n = board.claim("uart-console", u)
    try:
        e = raises(OSError, board.claim, "uart-logger", b, 4)
        eq(e.args[0], 11, "errno EAGAIN")
        check_msg(e, "extent_alloc_region", "claimed by 'uart-console'", "%x" % b)
        e = raises(OSError, board.claim, "uart-logger", u)
        check_msg(e, "claimed by 'uart-console'")
        # only the owner may release
        e = raises(ValueError, board.release, "uart-logger", b, n)
        check_msg(e, "extent_free", "claimed by 'uart-console', not 'uart-logger'")
    finally:
        board.release("uart-console", b, n)
    board.claim("uart-logger", u)  # free again
    board.release("uart-logger", u)


@s.test
def micropythons_own_peripherals_are_claimed():
    own = [p for p in board.memory_map()["peripherals"] if p["owner"] == "micropython"]
    if not own:
        skip("the profile marks no peripheral as used by MicroPython")
    e = raises(OSError, board.claim, "driver", own[0]["name"])
    check_msg(e, "claimed by 'micropython'")


@s.test
def rp2040_uart0_window_from_the_datasheet():
    if board.name != "rp2040":
        skip("RP2040 addresses")
    b, n = board.claim("t", "UART0")
    board.release("t", b, n)
    eq((b, n), (0x40034000, 0x4000), "UART0 window")


@s.test
def bad_claims_are_clear():
    e = raises(ValueError, board.claim, "x", "NO_SUCH_BLOCK")
    check_msg(e, "claim", "NO_SUCH_BLOCK")
    e = raises(ValueError, board.claim, "x", 0x20, 0)
    check_msg(e, "claim", "positive size")
    e = raises(ValueError, board.claim, "", "UART0")
    check_msg(e, "claim", "owner name")


@s.test
def alias_is_not_counted_twice():
    al = None
    for r in board.profile.get("memory") or ():
        if isinstance(r, dict) and r.get("alias_of") and r.get("kind") == "sram":
            al = r
            break
    if al is None:
        skip("no SRAM alias on this board")
    e = raises(ValueError, board.claim, "x", al["base"], 16)
    check_msg(e, "claim", "alias of", al["alias_of"])


@s.test
def mem32_refused_on_the_unix_port():
    if sys.platform != "linux":
        skip("unix port only")
    e = raises(OSError, board.mem32)
    check_msg(e, "board.mem32", "refused", "/dev/mem")
    # nothing imported machine; on the virtual board sys.modules has its machine
    # without mem8/16/32 from boot (vboard_fs.py), the real one is unreachable
    m = sys.modules.get("machine")
    eq(m is None or not hasattr(m, "mem32"), True, "machine.mem32 unreachable")


@s.test
def dma_ring_buffer_aligned_to_its_size():
    d = board.profile.get("dma") or {}
    if not d.get("ring"):
        skip("no DMA ring mode on this board")
    got = []
    try:
        for size in (64, 256, 1024, 4096):
            a = board.dma_alloc(size, ring=True, owner="ring")
            eq(a is not None, True, "ring %d allocated" % size)
            eq(a % size, 0, "ring of %d aligned to its size" % size)
            got.append((a, size))
        e = raises(ValueError, board.dma_alloc, 100, 0, None, True)
        check_msg(e, "dma_alloc", "power of two")
    finally:
        for a, n in got:
            board.dma_free(a, n)


@s.test
def dma_buffer_respects_nocross_and_window():
    b, n, _ = board.window
    got = []
    try:
        for size in (100, 1000, 3000):
            a = board.dma_alloc(size, 0, "drv", False, 4096)
            eq(a is not None, True, "allocated")
            eq(b <= a and a + size <= b + n, True, "inside the window")
            eq(a // 4096, (a + size - 1) // 4096, "does not cross a 4 KiB line")
            eq(a % 4, 0, "word aligned")
            got.append((a, size))
        mm = board.memory_map()
        eq(len(mm["dma"]), 3, "memory_map lists the buffers")
        e = raises(ValueError, board.dma_free, got[0][0], 99999)
        check_msg(e, "dma_free")
    finally:
        for a, n in got:
            board.dma_free(a, n)
    e = raises(ValueError, board.dma_free, b, 4)
    check_msg(e, "dma_free", "not a DMA buffer")


@s.test
def memory_map_for_stats():
    mm = board.memory_map()
    for k in ("board", "sram", "flash", "managed", "peripherals", "extents"):
        eq(k in mm, True, "memory_map has " + k)
    eq(mm["board"], board.name, "board name")
    eq(mm["managed"]["size"], board.window[1], "window size")
    u = free_uart()
    b, n = board.claim("mapper", u)
    try:
        owners = [p["owner"] for p in board.memory_map()["peripherals"] if p["name"] == u]
        eq(owners, ["mapper"], "UART0 owner shown")
    finally:
        board.release("mapper", b, n)


s.run()
