# pico_packets.py: a driver's receive path on a Raspberry Pi Pico, with mpalloc.
# A hard timer interrupt takes a 256-byte packet buffer from a pool_cache, writes a
# packet into it and queues it; the main loop reads the packet and returns the buffer.
# The buffers' pages come from a vmem arena of the driver's own.
import sys
from mpalloc import board, intr, mem, uvm_km, vmem, pool, pool_cache

PKT = 256  # bytes per packet buffer
PAGE = 1024  # the pool's page: 4 buffers
NPKT = 500  # packets to receive
RING = 16  # queue between the handler and the main loop

board.init()  # first: the board's profile, its CPUs, the managed window, kernel_map

# The driver's arena: 16 KB of the managed window, handed out a page at a time.
base = uvm_km.uvm_km_alloc(uvm_km.kernel_map, 16384, PAGE, uvm_km.UVM_KMF_WIRED)  # aligned: the arena's quantum
arena = vmem.vmem_create("rx", base, 16384, PAGE, 0, vmem.M_WAITOK)  # M_WAITOK or M_NOWAIT


def page_alloc(pp, flags):
    return vmem.vmem_alloc(arena, PAGE, vmem.M_NOWAIT if flags & pool.PR_NOWAIT else vmem.M_WAITOK)


def page_free(pp, addr):
    vmem.vmem_free(arena, addr, PAGE)


pc = pool_cache.pool_cache_init(PKT, 4, 0, 0, "rxbuf", pool.pool_allocator(page_alloc, page_free, PAGE),
                                pool.IPL_VM, None, None, None)
pool.pool_prime(pool_cache.pool_cache_pool(pc), 48)  # pages now: the handler must not grow the pool

# Shared with the handler, made before it runs: a hard handler allocates nothing.
ring = [0] * RING
count = [0, 0, 0]  # received, consumed, dropped


def rx_interrupt(pc):
    n = count[0]
    if n - count[1] >= RING:
        count[2] += 1  # queue full: the packet is lost
        return
    a = pool_cache.pool_cache_get(pc, pool.PR_NOWAIT)
    if a is None:
        count[2] += 1
        return
    i = a - mem.base  # in a handler, write mem.ram directly (mem.buf allocates)
    mem.ram[i] = n & 0xFF
    mem.ram[i + PKT - 1] = 0xA5
    ring[n % RING] = a
    count[0] = n + 1


def start_timer():
    # rp2: a hard machine.Timer. The virtual board (unix port) has no Timer: a thread
    # plays it; the webassembly port has neither: main() calls the handler itself.
    if sys.platform == "rp2":
        from machine import Timer

        return Timer(mode=Timer.PERIODIC, period=1, hard=True, callback=lambda t: intr.run_hard(rx_interrupt, pc))
    if intr.mode == intr.MODE_THREAD:
        intr.irq_source(rx_interrupt, pc, count=NPKT, maxgap=20000)
    return None


def main():
    timer = start_timer()
    check = 0
    while count[1] + count[2] < NPKT:
        if timer is None and intr.mode != intr.MODE_THREAD:
            intr.run_hard(rx_interrupt, pc)  # no timer, no thread: play the interrupt here
        s = intr.splhigh()  # the handler stays out while we take the ring's head
        a = ring[count[1] % RING] if count[1] < count[0] else None
        intr.splx(s)
        if a is None:
            continue
        b = mem.buf(a, PKT)  # the buffer's bytes (a memoryview)
        check += b[0] + b[PKT - 1]
        count[1] += 1
        pool_cache.pool_cache_put(pc, a)
    if timer is not None:
        timer.deinit()
    print("packets %d received, %d dropped, checksum %d" % (count[1], count[2], check))
    for c, st in enumerate(pool_cache.pool_cache_stats(pc)["cpus"]):  # the statistics, per CPU
        print("pool_cache rxbuf cpu%d: %d gets, %d puts, %d hits, %d misses" % (
            c, st["nget"], st["nput"], st["hits"], st["misses"]))
    st = vmem.vmem_stats(arena)
    print("arena rx: %d of %d bytes in use" % (st["inuse"], st["size"]))
    pool_cache.pool_cache_destroy(pc)
    vmem.vmem_destroy(arena)
    uvm_km.uvm_km_free(uvm_km.kernel_map, base, 16384, uvm_km.UVM_KMF_WIRED)


main()
