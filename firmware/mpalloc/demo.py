# demo: a short, representative mpalloc workload (what `mpalloc demo` runs).
#
#   import mpalloc.demo; mpalloc.demo.run()
#
# 1. a UART driver claims its register window (and the DMA block's) through the
#    board's peripheral extent map (board.claim, extent(9) underneath);
# 2. it takes DMA buffers from vmem with alignment (board.dma_alloc where the
#    board module has it, else vmem_xalloc on kernel_map);
# 3. packet buffers come from a pool_cache "pktbuf"; an interrupt handler takes
#    one and returns the previous one on every tick: a hard machine.Timer on rp2,
#    a thread playing the interrupt source through intr.run_hard on the virtual
#    board, intr.run_hard from the main loop elsewhere (one CPU, no IRQs);
#    meanwhile the main thread takes and returns packets of its own;
# 4. kmem churn: allocations and frees of mixed sizes, some left live.
#
# It prints one `@@mps 1 demo {...}` record with its figures and leaves its
# allocations in place, so a snapshot taken afterwards shows them (stats.dump).
# Sizes shrink on small boards (micro:bit: about 2 KB managed, 10 KB heap).
import sys
import gc

from mpalloc import intr

from mpalloc.compat import ticks_ms, ticks_diff

try:
    from time import sleep_ms
except ImportError:  # CPython
    import time

    def sleep_ms(n):
        time.sleep(n / 1000)


# Register windows the UART driver claims when the profile names none (datasheet
# address maps: RP2040 UART0 / DMA, nRF51 UART0 / PPI, ESP32 UART0 / DMA-free I2S0).
_FALLBACK = {
    "rp2040": (("UART0", 0x40034000, 0x4000), ("DMA", 0x50000000, 0x1000)),
    "microbit": (("UART0", 0x40002000, 0x1000), ("PPI", 0x4001F000, 0x1000)),
    "esp32": (("UART1", 0x3FF50000, 0x1000), ("UHCI0", 0x3FF54000, 0x1000)),
}

# The serial ports a driver may take, in order, and the block that moves its data.
_UARTS = ("UART0", "UART1", "UART2", "SPI0 / TWI0")
_PARTNER = {"rp2040": "DMA", "esp32": "UHCI0", "microbit": "PPI"}

_keep = []  # what the workload leaves allocated (for the snapshot)


def _periphs(board, want):
    """[(name, base, size)] of the peripherals named in `want`, from the board."""
    found = []
    mm = board.memory_map() if hasattr(board, "memory_map") else {}
    lst = mm.get("peripherals") or []
    for w in want:
        for p in lst:
            n = p["name"] if isinstance(p, dict) else p[0]
            if n.upper() == w:
                b = p["base"] if isinstance(p, dict) else p[1]
                s = p["size"] if isinstance(p, dict) else p[2]
                found.append((n, int(b, 16) if isinstance(b, str) else b, int(s, 16) if isinstance(s, str) else s))
                break
    return found


def _board_name(board):
    p = getattr(board, "profile", None)
    if isinstance(p, dict):
        return p.get("name")
    return None


class _Irq:
    """The packet interrupt: each tick returns the buffer it holds and takes a new one."""

    def __init__(self, pc, pcmod, flag):
        self.pc = pc
        self.get = pcmod.pool_cache_get
        self.put = pcmod.pool_cache_put
        self.flag = flag
        self.held = 0
        self.n = 0
        self.nfail = 0
        self.handler = self.tick  # bound once: a hard IRQ may not make one

    def tick(self, arg):
        h = self.held
        if h:
            self.put(self.pc, h)
        o = self.get(self.pc, self.flag)
        if o is None:
            self.nfail += 1
            o = 0
        self.held = o
        self.n += 1
        return 0


def startup():
    """The demo's own start-up (`mpalloc demo` calls it; nothing if mpalloc has
    started): board.init() with half the default window, i.e. an eighth of the
    free heap, but at least 64 pages (the full workload keeps about 24 KB of it),
    so that the program keeps at least half of a Pico's heap where mpalloc's code
    is in flash (ROMFS, frozen). A board whose default window is smaller than
    that gets its default."""
    from mpalloc import board as _board

    if _board.booted():
        return
    p = _board.detect()
    ps = p.get("page_size", 256)
    gc.collect()
    try:
        free = gc.mem_free()
    except AttributeError:  # CPython
        free = None
    d = _board.window_size(_board._n(p["managed"]["bytes"]), ps, free)
    w = d // 2 // ps * ps
    if w < 64 * ps:
        w = d
    while True:  # a fragmented heap: half as much, as board.init() does by default
        try:
            _board.init(window=w)
            return
        except ValueError:
            if w // 2 < 4 * ps:
                raise
            w = w // 2 // ps * ps


def run(packets=None, seed=12345, kmem_ops=None):
    from mpalloc import board as _board
    from mpalloc import vmem, uvm_km, pool, pool_cache, kmem

    t0 = ticks_ms()
    km = uvm_km.kernel_map
    if km is None:
        raise ValueError("demo.run: mpalloc has not started on this board (no kernel_map)")
    st = vmem.vmem_stats(km)
    # small: a tiny managed window (micro:bit) or little heap left for the
    # workload's own structures (ESP32: under 64 KB free in 32-bit-board bytes)
    gc.collect()
    free32 = gc.mem_free() // (2 if getattr(sys, "maxsize", 0) > 0x7FFFFFFF else 1)
    small = st["size"] < 16384 or free32 < 65536
    # kmem sizes up to a 128th of the window: fewer size classes (each a
    # pool_cache and a pool in the heap) on a smaller window
    kmax = 96 if small else max(96, min(300, st["size"] // 128))
    if packets is None:
        packets = 64 if small else 400
    if kmem_ops is None:
        kmem_ops = 40 if small else 200
    name = _board_name(_board) or sys.platform
    figs = {"board": name}

    # 1. the driver claims its registers: the first UART MicroPython leaves free
    #    (its REPL holds UART0 on the ESP32 and the micro:bit), then its DMA partner
    claims = []
    uart = None
    for pname, base, size in _periphs(_board, _UARTS) or list(_FALLBACK.get(name, ())[:1]):
        try:
            _board.claim(pname.split()[0].lower(), base, size)
        except OSError:  # EBUSY: someone (MicroPython) holds it
            continue
        uart = pname.split()[0].lower()
        claims.append("%s %s at 0x%08x" % (uart, pname, base))
        break
    if uart is not None:
        partner = _PARTNER.get(name, "DMA")
        regs = _periphs(_board, (partner,)) or list(_FALLBACK.get(name, ())[1:])
        for pname, base, size in regs:
            owner = uart + "-" + pname.lower()
            try:
                _board.claim(owner, base, size)
            except OSError:
                continue
            claims.append("%s %s at 0x%08x" % (owner, pname, base))
    figs["claims"] = claims

    # 2. DMA buffers: aligned to their size (RP2040 ring mode), from vmem
    dsize = 128 if small else 1024
    ndma = 2 if small else 4
    bufs = []
    dma_alloc = getattr(_board, "dma_alloc", None)
    for i in range(ndma):
        if dma_alloc is not None:
            a = dma_alloc(dsize, dsize, uart or "uart0")
        else:
            a = vmem.vmem_xalloc(km, dsize, dsize, 0, 0, vmem.VMEM_ADDR_MIN, vmem.VMEM_ADDR_MAX, vmem.VM_NOSLEEP | vmem.VM_BESTFIT)
        bufs.append(a)
    _keep.append(("dma", bufs))
    figs["dma_buffers"] = len(bufs)
    figs["dma_align"] = dsize
    figs["dma_aligned"] = all([a and a % dsize == 0 for a in bufs])

    # 3. packet buffers from a pool_cache, an interrupt handler taking and returning them
    psize = 64 if small else 256
    pc = pool_cache.pool_cache_init(psize, 4, 0, 0, "pktbuf", None, pool.IPL_VM, None, None, None)
    pool_cache.pool_cache_prime(pc, 4)  # pages in place before the handler runs
    irq = _Irq(pc, pool_cache, pool.PR_NOWAIT)
    mode = _run_irq(irq, packets, pc, pool_cache, pool)
    figs["irq_mode"] = mode
    figs["packets"] = irq.n
    figs["irq_fail"] = irq.nfail
    figs["cache"] = "pktbuf"
    _keep.append(("pkt", irq))

    # 4. kmem churn: a fixed pseudo-random sequence, a quarter left live
    x = seed
    live = []
    nalloc = nfree = 0
    for i in range(kmem_ops):
        x = (x * 1103515245 + 12345) & 0x3FFFFFFF
        if live and (x >> 7) % 3 == 0:
            a, n = live.pop((x >> 9) % len(live))
            kmem.kmem_free(a, n)
            nfree += 1
        else:
            n = 8 + (x >> 11) % kmax
            a = kmem.kmem_alloc(n, kmem.KM_NOSLEEP)
            if a:
                live.append((a, n))
                nalloc += 1
    _keep.append(("kmem", live))
    figs["kmem_allocs"] = nalloc
    figs["kmem_frees"] = nfree
    figs["kmem_live"] = len(live)
    figs["ms"] = ticks_diff(ticks_ms(), t0)
    from mpalloc import stats

    gc.collect()  # what the program still has, everything of the demo's kept alive
    try:
        figs["heap_free"] = gc.mem_free()
        figs["heap_total"] = gc.mem_free() + gc.mem_alloc()
    except AttributeError:  # CPython
        pass

    stats.emit([("demo", figs)])
    return figs


def _run_irq(irq, packets, pc, pcm, pool):
    """Deliver `packets` interrupts while the main thread uses the cache too."""
    h = irq.handler
    mine = []
    if intr.mode == intr.MODE_THREAD:
        import _thread

        done = [0]
        cpu = 1 if intr.ncpu > 1 else 0

        def source():
            intr.cpu_attach(cpu)
            for i in range(packets):
                intr.run_hard(h, 0, cpu)
            done[0] = 1

        _thread.start_new_thread(source, ())
        i = 0
        while not done[0]:
            o = pcm.pool_cache_get(pc, pool.PR_NOWAIT)
            if o:
                mine.append(o)
            if len(mine) > 3 or i % 5 == 4:
                while mine:
                    pcm.pool_cache_put(pc, mine.pop())
            i += 1
            sleep_ms(0)
        while mine:
            pcm.pool_cache_put(pc, mine.pop())
        return "emulated hard IRQ on CPU %d (thread + intr.run_hard)" % cpu
    if sys.platform == "rp2":
        try:
            import machine

            done = [0]

            def cb(t):
                if irq.n >= packets:
                    t.deinit()
                    done[0] = 1
                    return
                h(0)

            tm = machine.Timer(mode=machine.Timer.PERIODIC, period=1, hard=True, callback=cb)
            t0 = ticks_ms()
            while not done[0] and ticks_diff(ticks_ms(), t0) < 10000:
                s = intr.splhigh()
                o = pcm.pool_cache_get(pc, pool.PR_NOWAIT)
                intr.splx(s)
                if o:
                    s = intr.splhigh()
                    pcm.pool_cache_put(pc, o)
                    intr.splx(s)
                sleep_ms(1)
            tm.deinit()
            return "hard machine.Timer, 1 kHz"
        except (ImportError, TypeError, ValueError):
            pass
    for i in range(packets):
        intr.run_hard(h, 0, 0)
        if i % 4 == 0:
            o = pcm.pool_cache_get(pc, pool.PR_NOWAIT)
            if o:
                pcm.pool_cache_put(pc, o)
    return "intr.run_hard from the main loop (no timer IRQ here)"
