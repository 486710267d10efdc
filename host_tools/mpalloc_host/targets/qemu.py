"""qemu:microbit: the micro:bit's own MicroPython 1.9.2 (Debian's firmware) in QEMU
(mpalloc_host/qemu.py); qemu:microbit-frozen: the same rebuilt with mpalloc
frozen in flash (flash/microbit_frozen.py). No filesystem mpremote can use, no
raw-paste; input is paced (PACE)."""
from ..errors import FlashError, TargetError
from .base import EmulatedTarget, TargetKind, implied_board, launch, load_profile

# bytes per write, seconds between writes: unpaced, a loaded host loses bytes on QEMU's UART (qemu.py)
PACE = (4, 0.0005)


class QemuTarget(EmulatedTarget):
    kind = "qemu"
    deadline = 20.0


def open_qemu(spec, rest, board, timeout):
    from ..qemu import QemuMicrobit

    if rest not in ("microbit", "microbit-frozen"):
        raise TargetError("QEMU emulates only the micro:bit here: use qemu:microbit (or qemu:microbit-frozen)",
                          where=spec)
    name = implied_board(spec, "microbit", board)
    profile = load_profile(spec, name)
    firmware = None
    if rest == "microbit-frozen":
        from ..flash.microbit_frozen import build

        try:
            firmware = build()
        except FlashError as e:
            raise TargetError(str(e).splitlines()[0], where=spec) from None
    caps = {"soft_reset", "word32"} | ({"frozen"} if firmware is not None else set())
    return launch(QemuTarget, spec, name, profile, lambda: QemuMicrobit(firmware, pace=PACE), caps, timeout)


KIND = TargetKind("qemu", "qemu:microbit, qemu:microbit-frozen", "Debian's real micro:bit firmware (MicroPython 1.9.2) in qemu-system-arm; -frozen: rebuilt "
                  "with mpalloc frozen in flash",
                  QemuTarget.deadline, open_qemu, scheme="qemu")
