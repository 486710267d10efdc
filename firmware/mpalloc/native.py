# native: which implementation of the hot paths runs.
#
#   native.off()   bytecode hot paths from now on (before board.init(), or
#                  any time: the imported layers rebind at once, the others
#                  bind bytecode when they are imported)
#   native.on()    the native ones again where the runtime has them (default)
#   native.paths() {layer: "native" | "bytecode"} for each imported layer
#                  that has native code
#
# A layer with native code keeps it in <layer>_native.py, loads it when it
# binds, and keeps its bytecode path where the runtime cannot compile viper
# code (CPython, webassembly, micro:bit). Its interface: native_path() and
# _bind(). The recipe is in docs/DEVELOPING.md.
# Representation: switch[0], shared by every layer (each <layer>_native.py
# imports it; the bytecode layers never read it).
import sys

switch = [1]

LAYERS = ("pool_cache", "pool", "kmem", "vmem")


def _imported():
    for n in LAYERS:
        m = sys.modules.get("mpalloc." + n)
        if m is not None and hasattr(m, "native_path"):
            yield n, m


def off():
    """Bytecode hot paths from now on."""
    # => thread context; no allocator call under way (the layers rebind).
    _set(0)


def on():
    """Native hot paths where the runtime compiles them."""
    # => thread context; no allocator call under way (the layers rebind).
    _set(1)


def _set(v):
    switch[0] = v
    for _, m in _imported():
        m._bind()


def paths():
    """{layer: 'native' | 'bytecode'}: the implementation each imported layer's
    hot path runs now."""
    # => any context but a hard interrupt (builds a dict).
    return {n: m.native_path() for n, m in _imported()}
