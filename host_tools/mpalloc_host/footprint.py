"""mpalloc's own heap on a board: what its code, its set-up and its managed
window take, beside the heap the program keeps.

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

Two more measures, same rules:

    layers(board)   gc.mem_free() after the soft reset, then after importing each
                    layer in turn (LAYERS, each import its own command), then
                    after board.init(): [(label, free bytes)]
    objects(board)  tests/bench/bench_footprint.py (per-module and per-object
                    deltas: an arena, a pool, a pool_cache, a kmem class) run
                    there in one command: {"fp.<key>": bytes}

Errors: FootprintError (one line naming the board and what failed).
"""
import ast

from .errors import BoardError

CORE_IMPORTS = ("vmem", "uvm_km", "pool", "pool_cache", "kmem", "intr", "mem", "board")

# Four steps, each its own REPL command: the webassembly port collects garbage
# only between commands (its gc_collect() is a no-op while Python runs: wasm
# locals cannot be scanned), so one command would count the imports' garbage.
_STEPS = (
    "import gc\ngc.collect()\n_fp = {'total': gc.mem_free() + gc.mem_alloc(), 'base': gc.mem_alloc()}\n",
    "import %s\n",
    "gc.collect()\n_fp['code'] = gc.mem_alloc() - _fp['base']\n_fp['free'] = gc.mem_free()\n"
    "print('@@fp', repr(_fp))\nimport mpalloc.board as _b\n_b.init()\n",
    "gc.collect()\n_fp['window'] = _b.window[1]\n"
    "_fp['setup'] = gc.mem_alloc() - _fp['base'] - _fp['code'] - _fp['window']\n_fp['free'] = gc.mem_free()\n"
    "_fp['platform'] = __import__('sys').platform\nprint('@@fp', repr(_fp))\n",
)


class FootprintError(BoardError):
    """The footprint could not be measured on a board."""


def steps(modules=CORE_IMPORTS):
    """The device code measuring `modules` (names inside the mpalloc package), one command each."""
    return [_STEPS[0], _STEPS[1] % ", ".join("mpalloc." + m for m in modules), _STEPS[2], _STEPS[3]]


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
    out = ""
    try:
        for step in steps(modules):
            out += board.exec(board.delivery.adapt(step), timeout=timeout)
    except BoardError as e:
        got = out + (getattr(e, "output", "") or "")
        if "@@fp" in got:
            d = parse(got, board.name)
            d["error"] = str(e).splitlines()[-1]
            return d
        raise FootprintError("%s: measuring mpalloc's footprint failed: %s" % (board.name, str(e).splitlines()[-1]))
    return parse(out, board.name)


LAYERS = ("intr", "mem", "vmem", "uvm_km", "pool", "pool_cache", "kmem", "extent", "board")

_LAYER_START = "import gc\ngc.collect()\n_fl = [('after a soft reset', gc.mem_free())]\n"
_LAYER_STEP = "import mpalloc.%s\ngc.collect()\n_fl.append(('+ mpalloc.%s', gc.mem_free()))\n"
_LAYER_INIT = ("import mpalloc.board as _b\n_b.init()\ngc.collect()\n"
               "_fl.append(('+ board.init() (window %d B)' % _b.window[1], gc.mem_free()))\n")
_LAYER_END = "print('@@fl', repr(_fl))\n"


def layers(board, modules=LAYERS, timeout=120):
    """[(label, gc.mem_free())] after a soft reset, each layer's import and
    board.init(); the modules must be importable on the board. Where a step
    fails, what was measured so far and ("stopped: ...", None) last."""
    if "soft_reset" in board.caps:
        board.soft_reset()
    steps = [_LAYER_START] + [_LAYER_STEP % (m, m) for m in modules] + [_LAYER_INIT]
    stopped = None
    for step in steps:
        try:
            board.exec(board.delivery.adapt(step), timeout=timeout)
        except BoardError as e:
            stopped = str(e).splitlines()[-1]
            break
    try:
        out = board.exec(board.delivery.adapt(_LAYER_END), timeout=timeout)
    except BoardError as e:
        raise FootprintError("%s: measuring mpalloc's layers failed: %s" % (board.name, str(e).splitlines()[-1]))
    for line in reversed(out.splitlines()):
        if line.startswith("@@fl "):
            try:
                rows = ast.literal_eval(line[5:].strip())
            except (ValueError, SyntaxError):
                break
            return rows + ([("stopped: %s" % stopped, None)] if stopped else [])
    raise FootprintError("%s: no layer figures in its output: %r" % (board.name, out[-200:]))


def objects(board, mpy=False, timeout=300):
    """{key: value} of tests/bench/bench_footprint.py on `board` (firmware deployed
    first, source or .mpy; a fresh interpreter state)."""
    from .bench.runner import parse as bench_parse, script_text

    board.deploy(mpy=mpy)
    board.soft_reset()
    return bench_parse(board.exec(script_text("bench_footprint.py", ()), timeout=timeout))
