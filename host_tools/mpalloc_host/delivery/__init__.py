"""How code reaches a board, one strategy per kind of board (base.Delivery says
what a strategy does):

    fs      a filesystem with directories (fs.py)
    flat    a flat flash filesystem, modules renamed mpalloc_<name>.py (flat.py)
    frozen  flat, with the suites' code frozen into the firmware (frozen.py)
    ram     no filesystem: sources sent through the REPL (ram.py)
    romfs   .mpy in the firmware's ROMFS partition, run in place (romfs.py;
            only when asked: `mpalloc deploy --romfs`)

choose(board) picks one from what the board said at connect (os functions)
and the target's caps; Board keeps it as board.delivery.
"""
from .base import Delivery  # noqa: F401
from .flat import FlatDelivery
from .frozen import FrozenDelivery
from .fs import FsDelivery
from .ram import RamDelivery
from .romfs import RomfsDelivery


def choose(caps, info):
    """The strategy for a board with target caps `caps` and connect-time `info`."""
    has_fs = "fs" in caps if caps else bool(info.get("os"))
    osf = info.get("os", [])
    if has_fs and "mkdir" in osf:
        return FsDelivery()
    if has_fs or ("listdir" in osf and "size" in osf):
        return FrozenDelivery() if "frozen" in caps else FlatDelivery()
    return RamDelivery()


def by_name(name):
    """A strategy by name (tests and fakes)."""
    return {"fs": FsDelivery, "flat": FlatDelivery, "frozen": FrozenDelivery, "ram": RamDelivery,
            "romfs": RomfsDelivery}[name]()
