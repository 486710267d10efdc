"""Runs on-device suites (tests/device/test_*.py) on a Board and collects results.

A suite is a plain MicroPython script using firmware/mptest.py, which prints one
``@@mpt`` line per event (see its header). The runner sends the suite to the board,
parses the lines as they stream in (strict regexes: board output is data), and
gives per-test results (pass / fail with traceback / skip with reason, duration,
heap), the suite summary, and JUnit XML.

Faults are reported, not raised, wherever the run can go on:
  * a test that runs past its deadline is failed ("timed out after N s on BOARD"),
    the board is interrupted (Ctrl-C) and the run continues with the next suite;
  * a board that resets mid-test fails that test and the run continues;
  * a board that dies (emulator killed, port gone) or stops answering fails the
    running test; every later suite is reported as an error naming the board.
    A device path or URL that vanishes (USB re-enumeration after a hard reset,
    a cable pulled) is waited for ``reconnect_timeout`` seconds (default
    RECONNECT_S; env MPALLOC_RECONNECT_TIMEOUT): if it comes back the run goes
    on with the next suite, after a soft reset.

Deadlines (docs/FAULTS.md has the whole table): ``test_timeout`` per test (and
between tests), ``suite_timeout`` per suite, 30 s (or the test timeout if
longer) to prepare a suite, 6 s for the board to answer Ctrl-C.

Before a suite runs, the board is soft-reset where it can be (fresh heap) and
``mptest.CAPS`` is set from the target's caps and profile. Needs the host can
judge (``heap:<bytes>`` against the measured heap, ``threads``, ``hard_irq``,
``fs``) are checked before anything is sent, so a suite too big for the board is
skipped with the reason instead of failing to compile.
"""
import os
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from . import DEVICE_TESTS_DIR
from .board import BoardNoSpace, LineSplitter, flat_name, flat_source, module_closure, strip_docstrings
from .transport import BoardError, BoardExecError, BoardGone, BoardReset, BoardTimeout, OutputTooLarge, shorten

_W = r"([A-Za-z_][\w.:-]*)"
_RE = {
    "suite": re.compile(r"^@@mpt suite %s needs=(\S*)$" % _W),
    "start": re.compile(r"^@@mpt start %s %s$" % (_W, _W)),
    "pass": re.compile(r"^@@mpt pass %s %s ms=(-?\d+) heap=(-?\d+)$" % (_W, _W)),
    "fail": re.compile(r"^@@mpt fail %s %s ms=(-?\d+) heap=(-?\d+)$" % (_W, _W)),
    "tbend": re.compile(r"^@@mpt tbend %s %s$" % (_W, _W)),
    "skip": re.compile(r"^@@mpt skip %s %s reason=(.*)$" % (_W, _W)),
    "metric": re.compile(r"^@@mpt metric %s %s ([\w.-]+)=(.*)$" % (_W, _W)),
    "summary": re.compile(r"^@@mpt summary %s passed=(\d+) failed=(\d+) skipped=(\d+) ms=(-?\d+)$" % _W),
}
_LOG_LINES = 400  # device log lines kept per test
RECONNECT_S = 10.0  # seconds a vanished port has to come back (MPALLOC_RECONNECT_TIMEOUT)


class TestResult:
    def __init__(self, suite, name):
        self.suite = suite
        self.name = name
        self.status = "running"  # passed / failed / skipped / error
        self.ms = None
        self.heap = None
        self.message = ""
        self.traceback = []
        self.log = []
        self.metrics = {}

    @property
    def id(self):
        return "%s.%s" % (self.suite, self.name)

    def __repr__(self):
        return "<TestResult %s %s>" % (self.id, self.status)


class SuiteResult:
    def __init__(self, name, path):
        self.name = name
        self.path = Path(path)
        self.tests = []
        self.summary = None
        self.error = None  # suite-level problem (crash, protocol, board gone)
        self.log = []
        self.seconds = 0.0

    def get(self, name):
        for t in self.tests:
            if t.name == name:
                return t
        return None

    def count(self, status):
        return sum(1 for t in self.tests if t.status == status)

    @property
    def ok(self):
        return self.error is None and all(t.status in ("passed", "skipped") for t in self.tests)


class Report:
    def __init__(self, board_name):
        self.board = board_name
        self.suites = []
        self.seconds = 0.0

    def tests(self):
        return [t for s in self.suites for t in s.tests]

    def count(self, status):
        return sum(s.count(status) for s in self.suites)

    @property
    def ok(self):
        return bool(self.suites) and all(s.ok for s in self.suites)

    def summary_line(self):
        errs = sum(1 for s in self.suites if s.error)
        return "%s: %d passed, %d failed, %d skipped%s in %d suites (%.1f s)" % (
            self.board, self.count("passed"), self.count("failed") + self.count("error"), self.count("skipped"),
            (", %d suite errors" % errs) if errs else "", len(self.suites), self.seconds)


def board_caps(board):
    """The capabilities mptest.CAPS gets: the target's, plus hard_irq on a real
    board whose profile has it (the virtual boards only emulate it)."""
    caps = set(board.caps)
    mp = (board.profile or {}).get("micropython") or {}
    if mp.get("hard_irq") and getattr(board.target, "kind", "serial") in ("serial", "url"):
        caps.add("hard_irq")
    if os.environ.get("MPALLOC_LONG"):
        caps.add("long")        # full figures where the board cannot read the environment (rp2)
    return caps


def lacks(board, need):
    """None if the host sees nothing against `need` on this board, else the reason.
    (The device checks again: mptest.has().)"""
    if need.startswith("heap:"):
        try:
            want = int(need[5:])
        except ValueError:
            return need + " (not a number of bytes)"
        # heap:<bytes> counts bytes of a 32-bit board; a 64-bit port needs twice
        # the bytes for the same objects (the virtual board gets twice the heap)
        have = board.info.get("heap_total") or 0
        have32 = have * 32 // (board.info.get("word_bits") or 32)
        if have and have32 < want:
            return "%s (its heap is %d bytes, %d in 32-bit terms)" % (need, have, have32) \
                if have32 != have else "%s (its heap is %d bytes)" % (need, have)
        return None
    if need == "fs":
        return None if board.mode == "fs" else need
    if need in ("threads", "hard_irq"):
        caps = board_caps(board)
        if caps and need not in caps:
            return need
    return None


class SuiteInfo:
    """What the host can tell about a suite without running it."""

    def __init__(self, path):
        self.path = Path(path)
        text = self.path.read_text()
        self.source = text
        m = re.search(r"""\bSuite\(\s*["']([\w.-]+)["']\s*(?:,\s*needs\s*=\s*[\(\[]([^)\]]*)[\)\]])?""", text)
        self.name = m.group(1) if m else self.path.stem[5:] if self.path.stem.startswith("test_") else self.path.stem
        self.needs = re.findall(r"""["']([^"']+)["']""", m.group(2) or "") if m else []
        self.tests = re.findall(r"^@\w+\.test\s*\n\s*def\s+(\w+)\s*\(", text, re.M)


def discover(names=(), root=DEVICE_TESTS_DIR):
    """Suite paths: all tests/device/test_*.py, or those named (name, test_name,
    test_name.py, or a path)."""
    if not names:
        return sorted(Path(root).glob("test_*.py"))
    out = []
    for n in names:
        p = Path(n)
        cands = [p, Path(root) / n, Path(root) / (n + ".py"), Path(root) / ("test_" + n + ".py")]
        for c in cands:
            if c.is_file():
                out.append(c)
                break
        else:
            known = ", ".join(q.stem[5:] for q in sorted(Path(root).glob("test_*.py")))
            raise BoardError("no device suite %r in %s (known: %s)" % (n, root, known or "none"))
    return out


_RAM_PRELUDE = r"""
import sys
def _mod(name, src):
    d = {'__name__': name}
    exec(src, d)
    m = type(name.replace('.', '_'), (), {})
    for k in d:
        try:
            setattr(m, k, d[k])
        except Exception:
            pass
    sys.modules[name] = m
    if '.' in name:
        p, c = name.rsplit('.', 1)
        if p not in sys.modules:
            sys.modules[p] = type(p, (), {})
        setattr(sys.modules[p], c, m)
"""


class Runner:
    """Runs suites on one Board. on_event(kind, suite, test_result_or_None, text)
    is called as results stream: kinds "suite", "start", "pass", "fail", "skip",
    "error", "log", "summary"."""

    def __init__(self, board, test_timeout=60.0, suite_timeout=600.0, on_event=None, reset=True,
                 reconnect_timeout=None):
        self.board = board
        if reconnect_timeout is None:
            reconnect_timeout = float(os.environ.get("MPALLOC_RECONNECT_TIMEOUT") or RECONNECT_S)
        self.reconnect_timeout = reconnect_timeout
        self.test_timeout = test_timeout
        self.suite_timeout = suite_timeout
        self.on_event = on_event or (lambda *a: None)
        self.reset = reset
        self.dead = None  # message once the board cannot go on

    # -- needs -------------------------------------------------------------------

    def caps(self):
        return board_caps(self.board)

    def host_missing(self, info):
        """First need of the suite the host knows the board lacks (with why), or None."""
        for need in info.needs:
            why = lacks(self.board, need)
            if why:
                return why
        return None

    # -- running -----------------------------------------------------------------

    def run(self, paths, only=None):
        report = Report(self.board.name)
        t0 = time.monotonic()
        for p in paths:
            report.suites.append(self.run_suite(p, only=only))
        report.seconds = time.monotonic() - t0
        return report

    def run_suite(self, path, only=None):
        info = SuiteInfo(path)
        res = SuiteResult(info.name, path)
        t0 = time.monotonic()
        self.on_event("suite", info.name, None, str(path))
        try:
            self._run_suite(info, res, only)
        finally:
            res.seconds = time.monotonic() - t0
        return res

    def _run_suite(self, info, res, only):
        if self.dead:
            res.error = self.dead
            self.on_event("error", res.name, None, res.error)
            return
        missing = self.host_missing(info)
        if missing:
            self._skip_all(res, info, only, "board lacks " + missing)
            return
        board = self.board
        tr = board.transport
        if "frozen" in board.caps and self._run_frozen(info, res):
            return
        too_big = self.code_too_big(info)
        if too_big:
            self._skip_all(res, info, only, too_big)
            return
        try:
            with tr.deadline(max(30.0, self.test_timeout), "preparing suite %s" % res.name):
                code = self._prepare(info, only)
        except BoardNoSpace as e:
            # the flat filesystem of a small board (micro:bit) cannot hold the modules
            self._skip_all(res, info, only, "the modules it needs do not fit the board's flash (%s)"
                           % str(e).split(": ", 1)[-1])
            try:
                board.remove_flat_modules(keep=["mptest"])
            except BoardError:
                pass
            return
        except BoardError as e:
            self._board_fault(res, None, e)
            return
        state = _StreamState(self, res)
        state.names = info.tests
        lines = LineSplitter(state.line)
        try:
            with tr.deadline(self.suite_timeout, "running suite %s" % res.name):
                tr.set_deadline(self.test_timeout, "running suite %s (before its first test)" % res.name)
                state.transport = tr
                out, err = tr.exec_raw(code, timeout=self.suite_timeout, data_consumer=lines.feed)
            lines.flush()
            if err:
                text = err.decode("utf-8", "replace").replace("\r\n", "\n")
                last = shorten(text.strip().splitlines()[-1] if text.strip() else "error", 200)
                framing = "Traceback (most recent call last)" not in text
                if framing:
                    # MicroPython prints a traceback for every uncaught exception: this
                    # is output that a \x04 the board never sent (garbled or injected
                    # bytes) cut off as the "error" section; resynchronise with Ctrl-C
                    last = "the raw REPL's framing was lost (garbled serial line?)"
                    for ln in text.splitlines():
                        if ln.startswith("@@mpt "):
                            state.line(ln)
                cur = state.current
                if cur is not None:
                    cur.status, cur.message = "failed", "%s: test %s: the suite crashed in it: %s" % (
                        board.name, cur.id, last)
                    cur.traceback = text.splitlines()
                    self.on_event("fail", res.name, cur, cur.message)
                res.error = "%s: suite %s crashed: %s" % (board.name, res.name, last)
                res.log.extend(text.splitlines())
                self.on_event("error", res.name, None, res.error)
                if framing and not board.interrupt():
                    self.dead = "%s: not run, the board stopped answering after suite %s" % (board.name, res.name)
        except BoardError as e:
            lines.flush()
            self._board_fault(res, state.current, e)
            return
        self._check_end(res, state)

    def _run_frozen(self, info, res):
        # qemu:microbit-frozen: a suite frozen into the firmware runs from the
        # REPL (flash/microbit_frozen.run_suite). False: not frozen there.
        from .flash import microbit_frozen

        if info.path.name not in microbit_frozen.FROZEN_SUITES:
            return False
        state = _StreamState(self, res)
        state.names = info.tests
        try:
            with self.board.transport.deadline(self.suite_timeout, "running frozen suite %s" % res.name):
                out = microbit_frozen.run_suite(self.board, info.path.name, timeout=self.suite_timeout)
        except BoardError as e:
            self._board_fault(res, None, e)
            return True
        for ln in out:
            state.line(ln)
        self._check_end(res, state)
        return True

    def _check_end(self, res, state):
        board = self.board
        if res.error is None:
            if state.lost:
                res.error = "%s: suite %s: lines of test %s were lost or garbled on the serial line" % (
                    board.name, res.name, state.lost[0])
            elif state.current is not None:
                res.error = "%s: test %s never finished" % (board.name, state.current.id)
            elif res.summary is None:
                res.error = "%s: suite %s printed no summary (is s.run() called?)" % (board.name, res.name)
            elif (res.summary["passed"], res.summary["failed"], res.summary["skipped"]) != (
                    res.count("passed"), res.count("failed"), res.count("skipped")):
                res.error = "%s: suite %s summary does not match its test lines" % (board.name, res.name)
            if res.error:
                self.on_event("error", res.name, None, res.error)

    def code_too_big(self, info):
        """On a flat-filesystem board (micro:bit, MicroPython 1.9.2: code compiled
        from source and kept in RAM) the reason a suite cannot fit, else None. The
        measure: the minified source of the code the suite reaches (shrink.closure:
        dead code removed); the heap cost of code was measured at 1.1 to 1.9 bytes
        per source byte, so code larger than the whole heap cannot load."""
        board = self.board
        heap = board.info.get("heap_total") or 0
        if board.mode != "flat" or not heap:
            return None
        from . import shrink

        try:
            mods = shrink.closure(info.source)
        except (SyntaxError, OSError):
            return None
        sizes = [(name.split(".")[-1], len(flat_source(text))) for name, text in mods]
        total = sum(n for _, n in sizes)
        if total <= heap:
            return None
        return ("its code does not fit the board's %d-byte heap: %d bytes of source after dead-code "
                "elimination (%s), compiled code is kept in RAM on this firmware"
                % (heap, total, ", ".join("%s %d" % x for x in sizes)))

    def _skip_all(self, res, info, only, why):
        for name in info.tests:
            if only and name != only:
                continue
            t = TestResult(res.name, name)
            t.status, t.message = "skipped", why
            res.tests.append(t)
            self.on_event("skip", res.name, t, why)

    def _prepare(self, info, only):
        """Fresh board state, mptest configured; returns the code to send."""
        board = self.board
        source = info.source
        pre = ""
        post = ""
        caps = tuple(sorted(self.caps()))
        if only and not board.info.get("modules") and only in info.tests:
            only = "_t%d" % info.tests.index(only)  # see _StreamState.line
        setup = "import mptest\nmptest.CAPS = %r\nmptest.ONLY = %r\n" % (caps, only)
        if board.mode == "flat":
            # Pasted code is compiled from RAM in one piece: on a 10 KB heap only a
            # file on the board's flash (compiled as it is read) fits. Written before
            # the reset, so the heap the suite gets is not fragmented by the writes.
            # The suite's closing `s.run()` is called from the REPL, not inside the
            # import: the micro:bit's C stack holds only a few Python calls.
            need = [name for name, _ in module_closure(source)] + ["mptest"]
            if "soft_reset" in board.caps:
                board.soft_reset()  # the last suite's garbage out of the way
            board.remove_flat_modules(keep=need)
            board.deploy(only=need)
            flat = strip_docstrings(flat_source(source, origin=str(info.path)))
            m = re.search(r"^(\w+)\.run\(\)\s*\Z", flat, re.M)
            if m:
                flat = flat[:m.start()]
            board.deploy_file("mpt_suite.py", flat.encode())
            # mptest is imported from the REPL first (importing it from inside the
            # suite's import does not fit the heap), each line sent on its own
            # (short commands go without the receiver, whose code costs heap)
            flat_setup = setup.splitlines()
            setup, source = "", ""
            post = "import mpt_suite\n" + ("mpt_suite.%s.run()\n" % m.group(1) if m else "")
        else:
            flat_setup = []
        if self.reset and "soft_reset" in board.caps:
            board.soft_reset()
        else:
            board.exec("import sys, gc\nfor _k in [k for k in sys.modules if k == 'mptest' or k.startswith('mpalloc')]:\n"
                       " del sys.modules[_k]\ngc.collect()" if board.info.get("modules") else "import gc\ngc.collect()")
        for line in flat_setup:
            board.exec(line)
        if board.mode == "ram":
            pre = _RAM_PRELUDE
            for name, path in module_closure(source):
                pre += "_mod(%r, %r)\n" % (name, path.read_text())
            pre += "del _mod\n"
        return (pre + setup + source + post).encode()

    def _board_fault(self, res, cur, e):
        board = self.board
        where = ("test %s" % cur.id) if cur is not None else ("suite %s" % res.name)
        if isinstance(e, BoardTimeout):
            secs = self.test_timeout if cur is not None else None
            msg = "%s: %s timed out%s" % (board.name, where, (" after %g s" % secs) if secs else "")
            msg += " (%s)" % str(e).split(": ", 1)[-1] if cur is None else ""
        elif isinstance(e, BoardReset):
            msg = "%s: the board reset itself during %s" % (board.name, where)
        elif isinstance(e, BoardGone):
            msg = "%s: the board went away during %s (%s)" % (board.name, where, str(e).split(": ", 1)[-1])
        elif isinstance(e, OutputTooLarge):
            msg = "%s: %s printed more than %d bytes" % (board.name, where, board.transport.max_output)
        elif isinstance(e, BoardExecError):
            msg = "%s: %s: %s" % (board.name, where, str(e).split(": ", 1)[-1])
        else:
            msg = "%s: %s: %s" % (board.name, where, str(e).split(": ", 1)[-1])
        if cur is not None:
            cur.status, cur.message = "failed", msg
            self.on_event("fail", res.name, cur, msg)
        res.error = msg
        self.on_event("error", res.name, None, msg)
        if isinstance(e, BoardGone):
            back = None
            if getattr(board, "can_reconnect", False) and self.reconnect_timeout > 0:
                back = board.reconnect(self.reconnect_timeout)
            if back is None:
                waited = ("; it did not come back within %g s" % self.reconnect_timeout
                          if getattr(board, "can_reconnect", False) and self.reconnect_timeout > 0 else "")
                self.dead = "%s: not run, the board went away earlier (%s%s)" % (
                    board.name, msg.split(": ", 1)[-1], waited)
            else:
                note = "%s: the port came back after %.1f s; the run goes on" % (board.name, back)
                res.log.append(note)
                self.on_event("log", res.name, None, note)
        elif not isinstance(e, BoardExecError):
            if not board.interrupt():
                self.dead = "%s: not run, the board stopped answering after %s" % (board.name, where)


class _StreamState:
    """Parses streamed lines of one suite into its SuiteResult."""

    def __init__(self, runner, res):
        self.runner = runner
        self.res = res
        self.current = None  # TestResult that started and has not ended
        self.in_tb = None  # TestResult whose traceback is being read
        self.transport = None
        self.names = []  # the suite's test names in source order (SuiteInfo.tests)
        self.lost = []  # ids of tests with a protocol line missing (garbled serial line)

    def _test(self, name):
        t = self.res.get(name)
        if t is None:
            t = TestResult(self.res.name, name)
            self.res.tests.append(t)
        return t

    def _between(self):
        if self.transport is not None:
            self.transport.set_deadline(self.runner.test_timeout, "running suite %s (between tests)" % self.res.name)

    def line(self, line):
        ev = self.runner.on_event
        if not line.startswith("@@mpt "):
            target = self.in_tb.traceback if self.in_tb else (self.current.log if self.current else self.res.log)
            if len(target) < _LOG_LINES:
                target.append(line)
            ev("log", self.res.name, self.current, line)
            return
        for kind, rx in _RE.items():
            m = rx.match(line)
            if m:
                break
        else:
            self.res.log.append("protocol: unparsed line: " + shorten(line, 200))
            return
        g = m.groups()
        if g[0] != self.res.name:
            self.res.log.append("protocol: line for suite %r inside suite %r" % (g[0], self.res.name))
            return
        if kind == "suite":
            return
        if kind == "summary":
            self.res.summary = {"passed": int(g[1]), "failed": int(g[2]), "skipped": int(g[3]), "ms": int(g[4])}
            ev("summary", self.res.name, None, line)
            return
        name = g[1]
        m = re.match(r"_t(\d+)$", name)  # mptest on MicroPython 1.9 cannot name functions
        if m and int(m.group(1)) < len(self.names):
            name = self.names[int(m.group(1))]
        t = self._test(name)
        prev = self.current
        if kind in ("start", "pass", "fail") and prev is not None and prev is not t:
            # its end line never came: lost or garbled on the serial line
            prev.status = "failed"
            prev.message = "%s: the result line of test %s was lost or garbled on the serial line" % (
                self.runner.board.name, prev.id)
            self.lost.append(prev.id)
            self.current = None
            ev("fail", self.res.name, prev, prev.message)
        if kind == "start":
            self.current = t
            t.status = "running"
            if self.transport is not None:
                self.transport.set_deadline(self.runner.test_timeout, "running test %s" % t.id)
            ev("start", self.res.name, t, "")
        elif kind in ("pass", "fail"):
            if self.current is not t:
                self.lost.append(t.id)   # its start line was lost or garbled
            t.ms, t.heap = int(g[2]), int(g[3])
            t.status = "passed" if kind == "pass" else "failed"
            self.current = None
            if kind == "fail":
                self.in_tb = t
            else:
                ev("pass", self.res.name, t, "")
            self._between()
        elif kind == "tbend":
            if self.in_tb is t:
                t.message = t.traceback[-1].strip() if t.traceback else "failed"
                self.in_tb = None
                ev("fail", self.res.name, t, t.message)
        elif kind == "skip":
            t.status, t.message = "skipped", g[2]
            if self.current is t:
                self.current = None
            ev("skip", self.res.name, t, g[2])
            self._between()
        elif kind == "metric":
            t.metrics[g[2]] = g[3]


def write_junit(reports, path):
    """JUnit XML for one or more Reports (one <testsuite> per board and suite)."""
    if not isinstance(reports, (list, tuple)):
        reports = [reports]
    root = ET.Element("testsuites")
    for rep in reports:
        for s in rep.suites:
            ts = ET.SubElement(root, "testsuite", name="%s.%s" % (rep.board, s.name),
                               tests=str(len(s.tests)), failures=str(s.count("failed")),
                               errors=str(s.count("error") + (1 if s.error else 0)),
                               skipped=str(s.count("skipped")), time="%.3f" % s.seconds)
            ET.SubElement(ET.SubElement(ts, "properties"), "property", name="board", value=rep.board)
            for t in s.tests:
                tc = ET.SubElement(ts, "testcase", classname="%s.%s" % (rep.board, s.name), name=t.name,
                                   time="%.3f" % ((t.ms or 0) / 1000.0))
                if t.metrics:  # one <properties> per testcase, first (as pytest writes them)
                    props = ET.SubElement(tc, "properties")
                    for k, v in t.metrics.items():
                        ET.SubElement(props, "property", name=k, value=_xml_safe(v))
                if t.status == "failed":
                    f = ET.SubElement(tc, "failure", message=_xml_safe(t.message or "failed"))
                    f.text = _xml_safe("\n".join(t.traceback + (["--- device log ---"] + t.log if t.log else [])))
                elif t.status == "skipped":
                    ET.SubElement(tc, "skipped", message=_xml_safe(t.message))
                elif t.status not in ("passed",):
                    ET.SubElement(tc, "error", message=_xml_safe(t.message or t.status))
                if t.log and t.status != "failed":
                    ET.SubElement(tc, "system-out").text = _xml_safe("\n".join(t.log))
            if s.error:
                tc = ET.SubElement(ts, "testcase", classname="%s.%s" % (rep.board, s.name), name="(suite)")
                e = ET.SubElement(tc, "error", message=_xml_safe(s.error))
                e.text = _xml_safe("\n".join(s.log))
    tree = ET.ElementTree(root)
    ET.indent(tree)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tree.write(path, encoding="utf-8", xml_declaration=True)


_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_safe(s):
    return _BAD_XML.sub("?", str(s))


__all__ = ["Runner", "Report", "SuiteResult", "TestResult", "SuiteInfo", "discover", "write_junit", "flat_name"]
