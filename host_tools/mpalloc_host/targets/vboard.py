"""vboard:<board>: the MicroPython unix port configured from a board profile,
behind a pty (mpalloc_host/vboard.py). 64-bit; threads; hard interrupts are
emulated through intr.run_hard."""
from .base import EmulatedTarget, TargetKind, implied_board, launch, load_profile, profile_caps


class VBoardTarget(EmulatedTarget):
    kind = "vboard"
    deadline = 15.0


def open_vboard(spec, rest, board, timeout):
    from ..vboard import VirtualBoard

    name = implied_board(spec, rest or board or "unix", board)
    profile = load_profile(spec, name)
    caps = profile_caps(profile, "word64") | {"fs", "raw_paste", "threads"}
    return launch(VBoardTarget, spec, name, profile, lambda: VirtualBoard(name), caps, timeout)


KIND = TargetKind("vboard", "vboard:<board>", "virtual board: the MicroPython unix port (64-bit, threads without a GIL) behind a pty, "
                  "configured from the profile, started for the command and stopped after; its filesystem is a "
                  "littlefs image mounted at / (.. and host paths cannot leave it; machine.mem* refused), but its "
                  "code runs as the host user: not a security boundary (docs/FARM.md)",
                  VBoardTarget.deadline, open_vboard, scheme="vboard")
