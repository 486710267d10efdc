"""One way to name a board: ``open_target(spec, board=None)``.

    with open_target("vboard:rp2040") as t:
        t.device      # what pyserial / mpremote's SerialTransport opens
        t.board, t.profile, t.kind, t.caps, t.is_physical, t.alive(), t.logs()

The kinds of target are registered in KINDS, in one place: each is a module of
this package with a KIND (base.TargetKind: how --port names it, what it is, its
deadline, its opener). The --port help (port_help()), the deadlines and the
docs' list of kinds (tests check README and DEVELOPING against kinds_table())
come from there. Adding a kind: docs/DEVELOPING.md, "Add a target kind".

``board`` (--board) names the profile where the spec does not imply it; a
conflicting one is an error. Every failure is a TargetError (errors.py) whose
message is one line naming the spec.
"""
from ..errors import EmulatorError, TargetError  # noqa: F401 (re-exported)
from . import emu, labgrid, qemu, serial, url, vboard, wasm32
from .base import CAPS, EmulatedTarget, Target, TargetKind, profile_caps  # noqa: F401

KINDS = (serial.KIND, url.KIND, vboard.KIND, wasm32.KIND, qemu.KIND, emu.KIND, labgrid.KIND)
BY_NAME = {k.name: k for k in KINDS}
BY_SCHEME = {k.scheme: k for k in KINDS if k.scheme}
DEFAULT_DEADLINE = 10.0


def deadline(kind):
    """Seconds a kind of target gets to start / answer (DEFAULT_DEADLINE for unknown kinds)."""
    k = BY_NAME.get(kind)
    return k.deadline if k else DEFAULT_DEADLINE


def kind_of(spec):
    """The TargetKind a --port value names, or None."""
    spec = spec.strip()
    if "://" in spec:
        return url.KIND
    if serial.is_serial(spec):
        return serial.KIND
    scheme, sep, _ = spec.partition(":")
    return BY_SCHEME.get(scheme) if sep else None


def port_help(default=None):
    """The --port help text (CLI and pytest plugin)."""
    text = "where the board is: " + "; ".join("%s: %s" % (k.syntax, k.help) for k in KINDS)
    return text + ("; default %s" % default if default else "")


def kinds_table():
    """The Markdown table of every kind, as README.md has it (test_targets checks)."""
    rows = ["| `--port` | what it is |", "|---|---|"]
    return rows + ["| `%s` | %s |" % ("`, `".join(k.syntax.split(", ")), k.help) for k in KINDS]


def open_target(spec, board=None, timeout=None, firmware=None):
    """Open what `spec` names (see the module docstring); returns a Target.
    firmware: the image an emulator that boots one (emu:rp2040) boots instead of its default."""
    if not spec or not isinstance(spec, str):
        raise TargetError("no port given: use " + ", ".join(k.syntax for k in KINDS))
    spec = spec.strip()
    kind = kind_of(spec)
    if kind is None:
        raise TargetError("unknown port: use " + ", ".join(k.syntax for k in KINDS), where=spec)
    if firmware is None:
        return kind.open(spec, spec.partition(":")[2], board, timeout)
    if kind is not emu.KIND:
        raise TargetError("--firmware names the image emu:rp2040 boots; a board on this port runs what is "
                          "flashed on it (mpalloc flash)", where=spec)
    return kind.open(spec, spec.partition(":")[2], board, timeout, firmware=firmware)
