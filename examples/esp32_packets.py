# esp32_packets.py: the receive path of pico_packets.py on an ESP32, whose timers are
# soft: the callback runs between two bytecodes of the main program, so it goes
# through softint (held off while the main program is inside an allocator's lock).
import sys
from mpalloc import board, intr, mem, uvm_km, vmem, pool, pool_cache, softint

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
pool.pool_prime(pool_cache.pool_cache_pool(pc), 48)

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


sih = softint.softint_establish(rx_interrupt, pc)  # once (allocates); sih is the callback


def start_timer():
    # esp32: machine.Timer. The virtual boards have none: main() schedules sih itself.
    if sys.platform == "esp32":
        from machine import Timer

        t = Timer(0)
        t.init(mode=Timer.PERIODIC, period=1, callback=sih)
        return t
    return None


def main():
    timer = start_timer()
    check = 0
    while count[1] + count[2] < NPKT:
        if timer is None:
            softint.softint_schedule(sih)  # no timer: play it (micropython.schedule)
        s = intr.splhigh()  # the handler waits while we take the ring's head
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
    softint.softint_disestablish(sih)
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
