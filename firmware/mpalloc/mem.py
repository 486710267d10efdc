# mem: the bytes behind the addresses mpalloc hands out.
#
# Allocators deal in integer addresses. The memory they manage is one window
# [base, base + size) of the board's address space, backed by `ram`:
#
#   real board     ram is a bytearray from the gc heap; base = its real address
#                  (uctypes.addressof), so a DMA engine sees the same address.
#   virtual board  ram is a bytearray; base is an emulated address inside the
#   / wasm32       profile's SRAM (board.py chooses it), never a host address.
#
# Invariant: base <= a < base + size for every address given out, and
# ram[a - base] is its first byte.
# Locking: none; the window is set once (attach, at board.init) and only
# read after that, so any context may use buf/off/fill and ram.
#
# buf(a, n) makes a memoryview (allocates: not for interrupt handlers). From a
# handler, index ram directly: ram[a - base + i] (small ints only: no allocation).
ram = None
base = 0
size = 0
_mv = None


def attach(b, backing):
    """Make `backing` (a bytearray) the bytes at addresses [b, b + len(backing))."""
    # => thread context (allocates), at start-up (board.init); backing a bytearray, b an int.
    global ram, base, size, _mv
    ram = backing
    base = b
    size = len(backing)
    _mv = memoryview(backing)


def alloc_backing(n, align=4096):
    """A bytearray of n bytes and its real address, aligned to `align` where the
    real address is known (boards). Returns (real_address_or_None, bytearray).
    """
    # => thread context (allocates); n > 0, align a power of two. No heap: MemoryError.
    try:
        import uctypes
    except ImportError:
        return None, bytearray(n)
    raw = bytearray(n + align)
    a = uctypes.addressof(raw)
    skip = (-a) % align
    if skip == 0:
        return a, raw
    # Keep `raw` alive through the memoryview; hand out the aligned part.
    return a + skip, memoryview(raw)[skip:skip + n]


def off(a):
    """Offset of address a in ram; ValueError if a is outside the window."""
    # => any context; a inside the window (else ValueError).
    o = a - base
    if o < 0 or o >= size:
        raise ValueError("mem: address 0x%x outside the managed window 0x%x-0x%x" % (a, base, base + size))
    return o


def buf(a, n):
    """A memoryview of the n bytes at address a."""
    # => thread context (allocates) (a memoryview); [a, a+n) inside the window (else ValueError).
    o = a - base
    if n < 0 or o < 0 or o + n > size:
        raise ValueError("mem.buf: 0x%x+%d outside the managed window 0x%x-0x%x" % (a, n, base, base + size))
    return _mv[o:o + n]


def fill(a, n, byte):
    """Set n bytes at address a to `byte` (no allocation on the hot path)."""
    # => any context; [a, a+n) inside the window (not checked), 0 <= byte <= 255.
    r = ram
    o = a - base
    for i in range(o, o + n):
        r[i] = byte
