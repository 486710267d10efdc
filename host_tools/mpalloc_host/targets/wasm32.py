"""wasm32:<board>: MicroPython's 32-bit webassembly port under Node.js, behind a pty
(mpalloc_host/wasm.py). An in-memory filesystem with directories; no threads,
no raw-paste; 32-bit small ints."""
from .base import EmulatedTarget, TargetKind, implied_board, launch, load_profile


class Wasm32Target(EmulatedTarget):
    kind = "wasm32"
    deadline = 30.0


def open_wasm32(spec, rest, board, timeout):
    from ..wasm import WasmBoard

    name = implied_board(spec, rest or board or "rp2040", board)
    profile = load_profile(spec, name)
    return launch(Wasm32Target, spec, name, profile, lambda: WasmBoard(name), {"soft_reset", "fs", "word32"},
                  timeout)


KIND = TargetKind("wasm32", "wasm32:<board>", "the 32-bit MicroPython webassembly port under Node.js, with that board's profile",
                  Wasm32Target.deadline, open_wasm32, scheme="wasm32")
