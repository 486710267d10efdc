"""A remote board behind a pyserial URL: rfc2217://host:port (ser2net), socket://host:port.

Opening checks that something takes TCP connections there; other pyserial
schemes (loop://, spy://, ...) are passed through unchecked.
"""
import socket
from urllib.parse import urlsplit

from ..errors import TargetError
from .base import Target, TargetKind, load_profile, profile_caps

URL_SCHEMES = ("rfc2217", "socket", "loop", "spy", "hwgrep", "alt", "cp2110")
DEADLINE = 5.0


class UrlTarget(Target):
    kind = "url"
    is_physical = True
    reconnects = True
    deadline = DEADLINE


def open_url(spec, rest, board, timeout):
    u = urlsplit(spec)
    if u.scheme not in URL_SCHEMES:
        raise TargetError("unknown URL scheme %r (known: rfc2217://, socket://)" % u.scheme, where=spec)
    wait = timeout or DEADLINE
    if u.scheme in ("rfc2217", "socket"):
        if not u.hostname or not u.port:
            raise TargetError("a %s URL needs host and port (%s://host:port)" % (u.scheme, u.scheme), where=spec)
        try:
            with socket.create_connection((u.hostname, u.port), timeout=wait):
                pass
        except socket.timeout:
            raise TargetError("no answer from %s:%s within %g s" % (u.hostname, u.port, wait), where=spec) from None
        except OSError as e:
            raise TargetError("cannot connect to %s:%s: %s" % (u.hostname, u.port, e.strerror or e),
                              where=spec) from None
    profile = load_profile(spec, board) if board else None
    return UrlTarget(spec, spec, board or None, profile, profile_caps(profile))


KIND = TargetKind("url", "rfc2217://host:port, socket://host:port",
                  "a remote board through pyserial (e.g. ser2net)",
                  DEADLINE, open_url, physical=True)
