"""emu:rp2040: the RP2040's own MicroPython (RPI_PICO v1.28.0) in the npm emulator
rp2040js, behind a pty (mpalloc_host/emu_rp2040.py, host_tools/node/emu_rp2040.mjs).
32-bit, armv6m native code, real hard Timer interrupts, littlefs on flash, one
core (rp2040js's). MPALLOC_EMU_CORES=2 adds core 1 (host_tools/node/core1.mjs):
_thread starts it there and the target reports threads; off by default while a
two-core hang of vmem's race is open (docs/DEVELOPING.md). Time there is emulated:
ticks_us() counts 125 cycles per us of a 125 MHz chip."""
import os

from ..errors import TargetError
from .base import EmulatedTarget, TargetKind, implied_board, launch, load_profile


class EmuTarget(EmulatedTarget):
    kind = "emu"
    deadline = 30.0
    why = {"threads": "no threads (one core: MPALLOC_EMU_CORES=2 adds core 1)"}


CORES_ENV = "MPALLOC_EMU_CORES"


def two_cores():
    """Core 1 on: MPALLOC_EMU_CORES=2 (the runner reads it too); unset or 1 is one core.
    => anything else is refused (TargetError naming the variable)."""
    v = os.environ.get(CORES_ENV, "1").strip() or "1"
    if v not in ("1", "2"):
        raise TargetError("%s=%r: the emulated RP2040 has 1 or 2 cores running (default 1)" % (CORES_ENV, v),
                          where="emu:rp2040")
    return v == "2"


def open_emu(spec, rest, board, timeout, firmware=None):
    from ..emu_rp2040 import EmuRp2040

    if rest != "rp2040":
        raise TargetError("the emulator runs only the RP2040: use emu:rp2040", where=spec)
    name = implied_board(spec, "rp2040", board)
    profile = load_profile(spec, name)
    caps = {"soft_reset", "fs", "raw_paste", "hard_irq", "word32", "slow"}
    if two_cores():
        caps.add("threads")
    return launch(EmuTarget, spec, name, profile, lambda: EmuRp2040(name, firmware=firmware), caps, timeout)


KIND = TargetKind("emu", "emu:rp2040", "the RP2040's own MicroPython (v1.28.0) in the rp2040js emulator: 32-bit, "
                  "real hard IRQs, one core (MPALLOC_EMU_CORES=2: both, with threads), emulated time",
                  EmuTarget.deadline, open_emu, scheme="emu")
