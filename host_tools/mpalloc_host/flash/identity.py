"""Who is on the port: read a board's identity, derive what an image should give, compare.

A board's identity is what it says about itself: sys.platform,
sys.implementation, sys.version / os.uname() (which carry the firmware's
"MicroPython <tag> on <date>" build line), the machine string (board and MCU),
and mpalloc's version: `mpalloc.__version__` where the package is importable
(frozen or on the filesystem), else, on the micro:bit, the MPALLOC_VERSION line
of the start-up script read back from flash at 0x3E000 (machine.mem8; only
when sys.platform is 'microbit': on the unix port mem8 maps the host's memory).

What an image should give: the build line found in the image's bytes, the
profile's platform and MCU, and mpalloc's version if the image carries mpalloc
(frozen module names, or the micro:bit start-up script).
"""
import ast
import re

from .errors import FlashError

# Run on the board: MicroPython 1.9 (micro:bit) and later, and the unix port.
# Kept small (one-space indents, two commands): on the micro:bit every byte of
# code sent costs heap while it compiles (the 10 KB heap, 2 KB of it taken by
# the start-up script's window), and long input is where QEMU's UART loses bytes.
# _PROBE prints one repr()'d tuple; _SCRIPT_VERSION (micro:bit only, when no
# mpalloc package answered) reads MPALLOC_VERSION of the start-up script from
# flash at 0x3E000 (machine.mem8: never on the unix port, where it maps the
# host's memory). Nothing is left behind.
_PROBE = """\
import sys
try:
 import os
 _u = os.uname()
 _u = (_u.release, _u.version, _u.machine)
except Exception:
 _u = None
_i = sys.implementation
try:
 import mpalloc
 _v = mpalloc.__version__
except Exception:
 _v = None
print(repr((sys.platform, _i.name, tuple(_i.version), sys.version, _u, getattr(_i, '_machine', None), _v)))
del _u, _i, _v
"""

_SCRIPT_VERSION = """\
import machine
_m = machine.mem8
_v = None
if _m[0x3e000] == 77 and _m[0x3e001] == 80:
 _b = bytearray(min(_m[0x3e002] | _m[0x3e003] << 8, 1024))
 for _k in range(len(_b)):
  _b[_k] = _m[0x3e004 + _k]
 _b = bytes(_b)
 _k = _b.find(b'MPALLOC_VERSION = "') + 19
 if _k >= 19:
  _v = str(_b[_k:_b.find(b'"', _k)], 'ascii')
 del _b, _k
print(repr(_v))
del _m, _v
"""

_BUILD_RE = re.compile(rb"MicroPython (v?[0-9A-Za-z][0-9A-Za-z.+\-]*) on (\d{4}-\d{2}-\d{2})")


class Identity:
    """What a board says it is."""

    def __init__(self, platform, impl, version, sys_version, uname, machine, mpalloc):
        self.platform = platform
        self.impl = impl
        self.version = tuple(version)
        self.sys_version = sys_version
        self.uname = uname                  # (release, version, machine) or None (unix port)
        self.machine = machine or (uname[2] if uname else None)
        mp_from_script = isinstance(mpalloc, str) and mpalloc.startswith("script:")
        self.mpalloc = mpalloc[7:] if mp_from_script else mpalloc
        self.mpalloc_from = "start-up script" if mp_from_script else ("package" if mpalloc else None)

    def build_text(self):
        """The texts that carry the firmware's build line."""
        return " ".join(t for t in (self.sys_version, self.uname[1] if self.uname else "") if t)

    def build(self):
        m = _BUILD_RE.search(self.build_text().encode())
        return m.group(0).decode() if m else None

    def describe(self):
        parts = ["%s %s" % (self.impl, ".".join(str(x) for x in self.version[:3]))]
        if self.build():
            parts.append("(%s)" % self.build())
        parts.append("on %s" % self.platform)
        if self.machine:
            parts.append("[%s]" % self.machine)
        parts.append("mpalloc %s" % self.mpalloc if self.mpalloc else "no mpalloc")
        return " ".join(parts)


def read(transport):
    """Identity of the board behind an open transport (mpalloc_host.transport or
    mpremote's SerialTransport), which must be in the raw REPL."""
    text = _last_line(transport.exec(_PROBE))
    try:
        fields = list(ast.literal_eval(text))
        ident = Identity(*fields)
    except (ValueError, SyntaxError, IndexError, TypeError):
        raise FlashError("the board on the port answered the identity probe with %r: not a MicroPython board "
                         "mpalloc knows" % text[:80]) from None
    if ident.platform == "microbit" and ident.mpalloc is None:
        try:
            v = ast.literal_eval(_last_line(transport.exec(_SCRIPT_VERSION)))
        except (ValueError, SyntaxError):
            v = None
        if isinstance(v, str):
            fields[-1] = "script:" + v
            ident = Identity(*fields)
    return ident


def _last_line(out):
    text = out.decode("utf-8", "replace").strip().splitlines()
    return text[-1] if text else ""


class Expected:
    """What the board should say after flashing an image (None = not checked)."""

    def __init__(self, platform, mcu=None, build=None, mpalloc=None):
        self.platform = platform
        self.mcu = mcu
        self.build = build
        self.mpalloc = mpalloc

    def describe(self):
        bits = ["platform %s" % self.platform]
        if self.mcu:
            bits.append("MCU %s" % self.mcu)
        if self.build:
            bits.append(self.build)
        if self.mpalloc:
            bits.append("mpalloc %s" % self.mpalloc)
        return ", ".join(bits)


def build_line(image_bytes):
    """The firmware's "MicroPython <tag> on <date>" line, found in its bytes, or None."""
    m = _BUILD_RE.search(image_bytes)
    return m.group(0).decode() if m else None


def carries_mpalloc(image_bytes):
    """True if the image has mpalloc frozen in (its frozen-module names)."""
    return b"mpalloc/__init__.py" in image_bytes


def expected(profile, image_bytes, mpalloc_version=None):
    """Expected identity for `profile` after flashing `image_bytes`.
    mpalloc_version: the mpalloc the image carries (None: derive from the image,
    i.e. the host's version if mpalloc is frozen in, else unchecked)."""
    from . import firmware_version

    mp = profile.get("micropython", {})
    if mpalloc_version is None and carries_mpalloc(image_bytes):
        mpalloc_version = firmware_version()
    mcu = profile.get("mcu")
    return Expected(mp.get("platform"), None if mcu in (None, "host") else mcu,
                    build_line(image_bytes), mpalloc_version)


def compare(ident, exp):
    """List of mismatches (empty = the board is what the image makes it)."""
    bad = []
    if exp.platform and ident.platform != exp.platform:
        bad.append("sys.platform is %r, expected %r" % (ident.platform, exp.platform))
    if exp.mcu and (not ident.machine or exp.mcu.lower() not in ident.machine.lower()):
        bad.append("machine is %r, expected an %s" % (ident.machine, exp.mcu))
    if exp.build and exp.build not in ident.build_text():
        bad.append("firmware is %r, expected %r" % (ident.build() or ident.build_text()[:60], exp.build))
    if exp.mpalloc and ident.mpalloc != exp.mpalloc:
        bad.append("mpalloc is %s, expected %s" % (ident.mpalloc or "missing", exp.mpalloc))
    return bad


def check_board(ident, profile, board):
    """Before flashing: refuse a board that is not the profile's kind (wrong board on the port)."""
    mp = profile.get("micropython", {})
    if mp.get("platform") and ident.platform != mp["platform"]:
        raise FlashError("wrong board on the port: it runs %s, but --board %s expects sys.platform %r"
                         % (ident.describe(), board, mp["platform"]))
