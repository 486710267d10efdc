# native: which implementation of the hot paths runs.
#
#   native.off()   bytecode hit paths from now on (before board.init(), or
#                  any time: the pairs are rebound at once)
#   native.on()    the native ones again where the runtime has them (default)
#   native.paths() {"pool_cache": "native" | "bytecode"}: what runs now
#
# The native code is in <module>_native.py; each allocator loads its own at
# import (pool_cache._native_bind) and keeps the bytecode path where the
# runtime cannot compile viper code (CPython, webassembly, micro:bit).
# Representation: the switch is pool_cache._native[0]; nothing here is state.
from mpalloc import pool_cache as _pc


def off():
    """Bytecode hit paths from now on."""
    _pc._native[0] = 0
    _pc._bind()


def on():
    """Native hit paths where the runtime compiles them."""
    _pc._native[0] = 1
    _pc._bind()


def paths():
    """{layer: 'native' | 'bytecode'}: the implementation each hot path runs now."""
    return {"pool_cache": _pc.native_path()}
