"""`mpalloc flash`: MicroPython firmware (with mpalloc frozen or embedded) onto a board,
and proof that the board is what was flashed.

One module per job: uf2 / esp / microbit_hex know the image formats, drives the
boot drives, identity what a board says it is, run the three board paths.
Every failure is a FlashError whose message says what went wrong.
"""
import re

from .. import FIRMWARE_DIR
from .errors import FlashError

__all__ = ["FlashError", "firmware_version"]


def firmware_version():
    """mpalloc's version as the device package says (firmware/mpalloc/__init__.py)."""
    text = (FIRMWARE_DIR / "mpalloc" / "__init__.py").read_text()
    m = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
    if not m:
        raise FlashError("firmware/mpalloc/__init__.py has no __version__")
    return m.group(1)
