"""mpalloc's own heap on a board: what its code, its set-up and its managed
window take, beside the heap the program keeps (issue #19).

One job: run the measuring code on a board that has the modules and parse its
one line. Every figure is a gc.mem_alloc() delta after gc.collect() (what a
program loses), on a board soft-reset first so nothing else is loaded:

    base     gc.mem_alloc() before any mpalloc module is imported
    code     the core modules imported (CORE_IMPORTS: bytecode, strings, module
             dicts; from .py this includes nothing of the compiler, which is gone)
    setup    board.init() beyond the window: intr, kernel_map, extent maps, profile
    window   the managed window (bytes; a bytearray in the heap on a board)
    total    heap_total: gc.mem_free() + gc.mem_alloc() at the start
    free     gc.mem_free() after board.init(): what the program still has

Errors: FootprintError (one line naming the board and what failed).
"""
import ast

from .errors import BoardError

CORE_IMPORTS = ("vmem", "uvm_km", "pool", "pool_cache", "kmem", "intr", "mem", "board")

_CODE = r"""
import gc
gc.collect()
_t = gc.mem_free() + gc.mem_alloc()
_a0 = gc.mem_alloc()
import %s
gc.collect()
_a1 = gc.mem_alloc()
print('@@fp', repr({'base': _a0, 'code': _a1 - _a0, 'total': _t, 'free': gc.mem_free()}))
import mpalloc.board as _b
_b.init()
gc.collect()
_a2 = gc.mem_alloc()
print('@@fp', repr({'base': _a0, 'code': _a1 - _a0, 'setup': _a2 - _a1 - _b.window[1], 'window': _b.window[1],
                    'total': _t, 'free': gc.mem_free(), 'platform': __import__('sys').platform}))
"""


class FootprintError(BoardError):
    """The footprint could not be measured on a board."""


def code(modules=CORE_IMPORTS):
    """The device code measuring `modules` (names inside the mpalloc package)."""
    return _CODE % ", ".join("mpalloc." + m for m in modules)


def parse(out, where="board"):
    """The figures dict from the board's output (the last one printed: after the
    imports, then after board.init())."""
    for line in reversed(out.splitlines()):
        if line.startswith("@@fp "):
            try:
                d = ast.literal_eval(line[5:].strip())
            except (ValueError, SyntaxError):
                break
            if isinstance(d, dict):
                return d
    raise FootprintError("%s: no footprint figures in its output: %r" % (where, out[-200:]))


def measure(board, modules=CORE_IMPORTS, timeout=120):
    """Soft-reset `board` (where it can), import `modules`, run board.init();
    returns the figures (module docstring). The modules must be on the board."""
    if "soft_reset" in board.caps:
        board.soft_reset()
    try:
        out = board.exec(board.delivery.adapt(code(modules)), timeout=timeout)
    except BoardError as e:
        got = getattr(e, "output", "") or ""
        if "@@fp" in got:
            d = parse(got, board.name)
            d["error"] = str(e).splitlines()[-1]
            return d
        raise FootprintError("%s: measuring mpalloc's footprint failed: %s" % (board.name, str(e).splitlines()[-1]))
    return parse(out, board.name)
