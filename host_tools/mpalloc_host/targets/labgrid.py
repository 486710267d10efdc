"""labgrid:<place>, labgrid:<place>/<resource>, labgrid:<tag>=<value>: a board in a
labgrid farm (mpalloc_host/labgrid_target.py), acquired for the command."""
from ..errors import TargetError
from .base import TargetKind


def open_labgrid(spec, rest, board, timeout):
    try:
        from ..labgrid_target import LabgridTarget
    except ImportError as e:
        raise TargetError("labgrid support is not available: %s" % e, where=spec) from None
    t = LabgridTarget(spec, board=board)
    t.open()
    return t


KIND = TargetKind("labgrid", "labgrid:<place>, labgrid:<tag>=<value>", "a board of a labgrid farm (docs/FARM.md)",
                  10.0, open_labgrid, physical=True, scheme="labgrid")
