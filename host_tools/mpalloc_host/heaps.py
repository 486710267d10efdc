"""The gc heap each kind of emulated target gets for a board profile.

One job: turn a profile's ``micropython.heap_bytes`` (the board's gc pool:
gc.mem_free() + gc.mem_alloc() on the board) into the pool a target runs with,
so that a program has the free heap it would have on the board.

The runtimes do not hold mpalloc's code as compactly as the boards' firmware:
the same core (.mpy: vmem, uvm_km, pool, pool_cache, kmem, intr, mem, board
imported, then board.init()) takes more heap on the webassembly port (qstrs the
rp2 firmware has in ROM, bigger objects) and on the 64-bit unix port (every
object in 8-byte words; bytecode and strings do not double). Each target gets
the board's heap plus that difference, measured with footprint.py against the
RP2040's own firmware (emu:rp2040, the reference); docs/DEVELOPING.md "Heap
sizes" has the figures and how to measure them again. So the free heap after
set-up is the board's on every target, where doubling the heap for 64-bit
words (as before) gave the vboard about twice the headroom, and the webassembly
port's growable heap (134 MB) hid everything.

A 64-bit profile (unix) is the host itself: its heap is taken as it is.

$MPALLOC_HEAP_FACTOR (a number, default 1) multiplies every target's heap. The
device suites use SUITES_FACTOR: a suite brings mptest and its own code on top
of mpalloc's core, and today's core leaves a board too little for that (13 of
the suites on vboard:rp2040, vboard:esp32 and wasm32:rp2040 run out at factor 1,
see docs/DEVELOPING.md "Heap sizes"); until a leaner core shrinks
it they run with twice the board's heap, as the vboard gave before. On wasm32
they run with the port's growable heap ("wasm32:grow"): the webassembly port
collects garbage only between REPL commands (its gc_collect() is a no-op while
Python runs, since wasm locals cannot be scanned), and a suite is one command:
vmem's and replay's run out of even 17 MB of heap. So a capped wasm32 heap is
honest for what stays live between commands, not for the garbage of one long
command: a program that makes much garbage in one command runs out there first.
"""
import os

# base + code + setup bytes (gc.mem_alloc deltas, .mpy core, footprint.py) of
# each runtime minus the reference's: emu:rp2040 113664, wasm32 111168, vboard 156480
EXTRA = {"wasm32": 0, "vboard": 156480 - 113664}    # wasm32: 111168, 2.2 % below the reference: none
REFERENCE = "emu:rp2040"
SUITES_FACTOR = "vboard:2,wasm32:grow"   # $MPALLOC_HEAP_FACTOR for the device suites
SUITES_VBOARD = 2                      # the same for tests running suites on the unix port


def grows(kind):
    """True when $MPALLOC_HEAP_FACTOR says "kind:grow": the webassembly port's
    heap then grows on demand as the port does by itself (no cap)."""
    return any(p.strip() == "%s:grow" % kind for p in (os.environ.get("MPALLOC_HEAP_FACTOR") or "").split(","))


def factor(kind=None):
    """$MPALLOC_HEAP_FACTOR for target `kind`: a number for every target, or
    "kind:number,..." (kinds not named: 1; "wasm32:grow": no cap, see grows()).
    A bad value is a ValueError naming it."""
    v = os.environ.get("MPALLOC_HEAP_FACTOR") or "1"
    f = 1.0
    try:
        for part in v.split(","):
            k, sep, n = part.strip().rpartition(":")
            if n == "grow" and k == "wasm32":
                continue
            if not sep or k == kind:
                f = float(n)
    except ValueError:
        f = 0
    if not 0.25 <= f <= 64:
        raise ValueError("MPALLOC_HEAP_FACTOR=%r: must be a number from 0.25 to 64, or kind:number,..." % v)
    return f


def board_heap(profile):
    """The board's gc pool in bytes (profile micropython.heap_bytes)."""
    return int((profile.get("micropython") or {}).get("heap_bytes") or 196608)


def target_heap(kind, profile, scale=None):
    """The gc pool (bytes) target `kind` ("wasm32", "vboard", ...) runs with for
    `profile`, times `scale` (default factor())."""
    heap = board_heap(profile)
    if int(profile.get("word_bits") or 32) != 64:
        heap += EXTRA.get(kind, 0)
    return int(heap * (factor(kind) if scale is None else scale)) // 16 * 16
