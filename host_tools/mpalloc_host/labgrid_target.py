"""labgrid:<place> - a board in a labgrid farm, reached through the place's serial port.

labgrid (https://labgrid.readthedocs.io) runs the farm: a coordinator knows every
place; exporters on the machines the boards hang off publish each board's serial
port as a NetworkSerialPort served by ser2net (RFC 2217, or raw TCP). This module
only uses labgrid's client library (``labgrid.remote.client.ClientSession``, the
code behind ``labgrid-client``):

    with open_labgrid("labgrid:rp2040-1", board=None) as t:
        t.device        # "rfc2217://host:port?ign_set_control" or "socket://host:port"
        t.place         # the place acquired, released when the block ends

Spec forms (the coordinator is $LG_COORDINATOR, default 127.0.0.1:20408):

    labgrid:<place>             that place (a unique substring or alias, as labgrid-client -p)
    labgrid:<place>/<name>      that place's serial resource called <name> (places with several)
    labgrid:<key>=<value>[:...] the first free place carrying all these tags (e.g. board=rp2040)

The place is acquired like ``labgrid-client -p P acquire`` and released at the end
(also on errors, Ctrl-C and SIGTERM through the CLI), like ``... release``. The
client session is open only while acquiring and releasing; in between the board
is reached straight through ser2net. The board profile comes from --board, else
from the place's ``board`` tag. Errors are one line naming the place: locked by
someone else, exporter not connected, ser2net refusing, no serial resource.
"""
import argparse
import asyncio
import contextlib
import io
import logging
import os
import re
import socket

from .errors import LabgridError  # noqa: F401 (re-exported)
from .targets.base import Target, profile_caps

ENV_COORDINATOR = "LG_COORDINATOR"
DEFAULT_COORDINATOR = "127.0.0.1:20408"
CONNECT_S = 10.0      # to reach the coordinator and get the places
PROBE_S = 3.0         # to open a TCP connection to ser2net
SERIAL_CLASSES = ("NetworkSerialPort",)
_NO_MATCH = re.compile(r"Match (\S+) has no matching remote resource")


def parse_spec(spec):
    """'labgrid:...' -> dict(place=, resource=, tags=) (see the module docstring)."""
    if not spec.startswith("labgrid:"):
        raise LabgridError("not a labgrid port (labgrid:<place>)", where=spec)
    rest = spec[len("labgrid:"):]
    if not rest:
        raise LabgridError("labgrid: needs a place: labgrid:<place>, labgrid:<place>/<resource> "
                           "or labgrid:<tag>=<value>")
    if "=" in rest:
        tags = {}
        for pair in rest.split(":"):
            k, sep, v = pair.partition("=")
            if not sep or not k or not v:
                raise LabgridError("tags are written <key>=<value>[:<key>=<value>...] (got %r)" % (pair,), where=spec)
            tags[k] = v
        return {"place": None, "resource": None, "tags": tags}
    place, _, res = rest.partition("/")
    return {"place": place, "resource": res or None, "tags": None}


def coordinator_address():
    return os.environ.get(ENV_COORDINATOR) or DEFAULT_COORDINATOR


def _load_client():
    # gRPC's fork handlers log a line at every fork (vboards, ser2net...) once its
    # threads exist; mpalloc never uses gRPC in a forked child.
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    try:
        from labgrid.remote import client
        from labgrid.util.proxy import proxymanager
    except ImportError as e:
        raise LabgridError("labgrid: the labgrid client library is not installed (%s): run `make setup` "
                           "(pip package labgrid, pinned in requirements.txt)" % e) from None
    return client, proxymanager


_LOOP = None


def event_loop():
    """The one event loop every labgrid session of this process runs on: gRPC's
    asyncio layer binds itself to the first loop it sees, so the loop is kept (and
    never set as the thread's current loop, so nobody else's asyncio is affected)."""
    global _LOOP
    if _LOOP is None or _LOOP.is_closed():
        _LOOP = asyncio.new_event_loop()
    return _LOOP


@contextlib.contextmanager
def _quiet():
    """labgrid's client prints progress on stdout and logs connection trouble on the
    root logger; mpalloc says what went wrong itself, in one line."""
    out = io.StringIO()
    old = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(out):
            yield out
    finally:
        logging.disable(old)


class _Session:
    """A short-lived labgrid client session (on event_loop())."""

    def __init__(self, address, what):
        self.client, proxymanager = _load_client()
        self.address = proxymanager.get_grpc_address(address, default_port=20408)
        self.what = what
        self.loop = event_loop()
        self.s = None
        args = argparse.Namespace(place=None, allow_unmatched=False, kick=False, debug=False)
        try:
            self.s = self._run(self._start(args), CONNECT_S, "connecting to the coordinator at %s" % self.address)
        except BaseException:
            self.close()
            raise

    async def _start(self, args):
        s = self.client.ClientSession(self.address, asyncio.get_running_loop(), args=args)
        try:
            await s.start()
        except BaseException:
            await s.close()
            raise
        return s

    def _run(self, coro, timeout, doing):
        try:
            with _quiet() as out:
                return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))
        except asyncio.TimeoutError:
            raise LabgridError("no answer within %g s while %s (is labgrid-coordinator running there? "
                               "set $%s)" % (timeout, doing, ENV_COORDINATOR), where=self.what) from None
        except (self.client.Error, self.client.ErrorGroup) as e:
            said = " ".join(out.getvalue().split())
            msg = str(e).strip()
            if msg.startswith("Error: "):
                msg = msg[len("Error: "):]
            m = _NO_MATCH.search(msg)
            if m:
                msg = ("no exporter offers %s (the exporter is not connected to the coordinator, or the "
                       "place's match is wrong: see `labgrid-client resources`)" % m.group(1))
            elif "Could not connect to coordinator" in msg:
                msg = "cannot reach the labgrid coordinator at %s (is labgrid-coordinator running? set $%s)" % (
                    self.address, ENV_COORDINATOR)
            raise LabgridError("%s%s" % (msg, " (%s)" % said if said else ""), where=self.what) from None

    def call(self, method, place, timeout=CONNECT_S):
        self.s.args.place = place
        return self._run(getattr(self.s, method)(place), timeout, "%s %s" % (method.strip("_"), place))

    def close(self):
        try:
            if self.s is not None:
                with _quiet():
                    self.loop.run_until_complete(asyncio.wait_for(self._stop(), 5))
        except Exception:
            pass
        finally:
            self.s = None

    async def _stop(self):
        try:
            await self.s.stop()
        finally:
            await self.s.close()


class LabgridTarget(Target):
    """A labgrid place held for the life of this object (see the module docstring).

    A Target (targets/base.py) whose device is the place's pyserial URL; also
    .place, .resource (exporter/group/cls/name), .url_kind ("rfc2217" / "raw").
    """

    kind = "labgrid"
    is_physical = True

    def __init__(self, spec, board=None, address=None):
        super().__init__(spec, None, board)
        self.request = spec
        self.want = parse_spec(spec)
        self.address = address or coordinator_address()
        self.place = None
        self.resource = None
        self.url_kind = None
        self._tags = {}

    # -- acquire ----------------------------------------------------------------------

    def open(self):
        """Acquire the place (for tags: the first free one that works), find and
        probe its serial port; on any failure nothing stays acquired."""
        s = _Session(self.address, self.request)
        try:
            single = self.want["tags"] is None
            tried = []
            for name in self._candidates(s, tried):
                try:
                    s.call("_acquire_place", name)
                except LabgridError as e:  # a pool: taken in the meantime, exporter gone, ...
                    if single:
                        raise
                    tried.append("%s (%s)" % (name, e.what))
                    continue
                self.place, self.spec = name, "labgrid:%s" % name
                try:
                    self._tags = dict(s.s.places[name].tags)
                    self._find_port(s, s.s.places[name])
                    self._probe()
                    break
                except LabgridError as e:
                    self._release(s)
                    self.place, self.spec = None, self.request
                    if single:
                        raise
                    tried.append("%s (%s)" % (name, e.what))
                except BaseException:
                    self._release(s)
                    raise
            else:
                raise LabgridError("no free place that works among %s" % ("; ".join(tried),), where=self.request)
        finally:
            s.close()
        try:
            self._load_profile()
        except BaseException:
            self.close()
            raise
        return self

    def _candidates(self, s, tried):
        """Names of the places to try, in order; held places are noted in `tried`."""
        if self.want["tags"] is None:
            place = self._lookup(s, self.want["place"])
            self._check_free(s, place)
            return [place.name]
        tags = self.want["tags"]
        cands = sorted((p for p in s.s.places.values() if all(p.tags.get(k) == v for k, v in tags.items())),
                       key=lambda p: p.name)
        if not cands:
            raise LabgridError("no place carries the tags %s (see `labgrid-client places -v`)" % (", ".join("%s=%s" % kv for kv in sorted(tags.items())),), where=self.request)
        out = []
        for p in cands:
            if p.acquired:
                tried.append("%s (acquired by %s)" % (p.name, p.acquired))
            else:
                out.append(p.name)
        return out

    def _lookup(self, s, pattern):
        try:
            return s.s.get_place(pattern)
        except s.client.Error as e:
            known = ", ".join(sorted(s.s.places)) or "none"
            raise LabgridError("%s (places on %s: %s)" % (str(e).replace("Error: ", "", 1), s.address, known), where=self.request) from None

    def _check_free(self, s, place):
        if not place.acquired:
            return
        me = "%s/%s" % (s.s.gethostname(), s.s.getuser())
        if place.acquired == me:
            raise LabgridError("place %s is already acquired by you (%s) - another run, or one that died; "
                               "free it with `labgrid-client -p %s release`" % (place.name, me, place.name), where=self.request)
        raise LabgridError("place %s is locked by %s (ask them to release it, or wait)" % (place.name, place.acquired), where=self.request)

    def _find_port(self, s, place):
        try:
            res = s.s.get_target_resources(place)
        except s.client.Error as e:  # orphaned: exporter disconnected after the match
            raise LabgridError("%s" % (e,), where=self.spec) from None
        serial = {name: r for (name, cls), r in res.items() if cls in SERIAL_CLASSES}
        paths = {}
        for path in place.acquired_resources:
            m = place.getmatch(path)
            exporter, group, cls, rname = path
            paths[m.rename if m and m.rename else rname] = "/".join(
                (exporter, group, cls) if rname == cls else (exporter, group, cls, rname))
        if not serial:
            have = ", ".join(sorted("%s (%s)" % (n, c) for n, c in res)) or "nothing"
            raise LabgridError("the place has no serial port (NetworkSerialPort); it has %s" % (have,), where=self.spec)
        pick = self.want["resource"]
        if pick is None:
            if len(serial) > 1:
                raise LabgridError("the place has %d serial ports (%s): name one as labgrid:%s/<name>" % (len(serial), ", ".join(sorted(serial)), place.name), where=self.spec)
            pick = next(iter(serial))
        elif pick not in serial:
            raise LabgridError("no serial port named %s (it has %s)" % (pick, ", ".join(sorted(serial))), where=self.spec)
        r = serial[pick]
        self.resource = paths.get(pick, pick)
        self.device, self.url_kind, self._hostport = _url(self.spec, self.resource, r)

    def _probe(self):
        host, port = self._hostport
        try:
            with socket.create_connection((host, port), timeout=PROBE_S):
                pass
        except OSError as e:
            why = e.strerror or str(e) or type(e).__name__
            if isinstance(e, socket.timeout):
                why = "no answer within %g s" % PROBE_S
            raise LabgridError("ser2net at %s:%s (%s) does not take connections: %s - is the exporter's "
                               "ser2net running?" % (host, port, self.resource, why), where=self.spec) from None

    def _load_profile(self):
        from . import profiles

        if self.board is None:
            self.board = self._tags.get("board") or None
        if self.board:
            self.profile = profiles.load(self.board)
        self.caps = profile_caps(self.profile)   # a real board behind ser2net, as on a serial port

    # -- release ----------------------------------------------------------------------

    def _release(self, s):
        s.call("_release_place", self.place)

    def close(self):
        """Release the place (idempotent). A second Ctrl-C while releasing is
        ignored once: a place left acquired blocks everyone."""
        if self._closed or self.place is None:
            self._closed = True
            return
        self._closed = True
        for attempt in range(2):
            try:
                s = _Session(self.address, self.spec)
                try:
                    self._release(s)
                finally:
                    s.close()
                return
            except KeyboardInterrupt:
                if attempt:
                    raise
            except LabgridError as e:
                raise LabgridError("could not release the place: %s" % (e.what,), where=self.spec) \
                    from None

    def alive(self):
        return not self._closed

    def dead_reason(self):
        return None

    def logs(self):
        return "labgrid place %s, serial port %s at %s" % (self.place, self.resource, self.device)


def _url(spec, path, r):
    """A NetworkSerialPort resource -> (pyserial URL, protocol, (host, port))."""
    if not r.avail:
        raise LabgridError("the serial port %s is not available (board unplugged, or the exporter "
                           "lost it)" % (path,), where=spec)
    a, extra = r.args, r.extra
    if extra.get("proxy_required"):
        raise LabgridError("the exporter of %s runs isolated (-i, SSH proxy %s): not supported, "
                           "run it without --isolated" % (path, extra.get("proxy")), where=spec)
    host, port = a.get("host"), a.get("port")
    if not host or not port:
        raise LabgridError("the serial port %s has no network address yet (exporter still "
                           "starting ser2net?)" % (path,), where=spec)
    proto = a.get("protocol", "rfc2217")
    if proto == "rfc2217":
        # like labgrid's SerialDriver: ser2net does not answer every SET_CONTROL
        return "rfc2217://%s:%s?ign_set_control" % (host, port), proto, (host, int(port))
    if proto == "raw":
        return "socket://%s:%s" % (host, port), proto, (host, int(port))
    raise LabgridError("the serial port %s speaks %r (only rfc2217 and raw are known)" % (path, proto), where=spec)


@contextlib.contextmanager
def open_labgrid(spec, board=None, address=None):
    """Acquire the place named by `spec`; yields the LabgridTarget; releases it after."""
    t = LabgridTarget(spec, board=board, address=address)
    t.open()
    try:
        yield t
    finally:
        t.close()
