"""Runs on-device suites (tests/device/test_*.py) on a Board and collects results.

A suite is a plain MicroPython script using firmware/mptest.py, which prints one
``@@mpt`` line per event (see its header). The runner sends the suite to the board,
parses the lines as they stream in (strict regexes: board output is data), and
gives per-test results (pass / fail with traceback / skip with reason, duration,
heap), the suite summary, and JUnit XML.

Faults are reported, not raised, wherever the run can go on; each fault counts
once (the test it happened in fails; a suite error only where no test was
running), and no test is lost: a test of the suite the host knows of (SuiteInfo)
that did not run is reported skipped, ``not_run`` set, with the reason
("BOARD: not run: test S.T timed out after 2 s"), in the counts and in JUnit:
  * a test that runs past its deadline is failed ("timed out after N s on BOARD"),
    the board is interrupted (Ctrl-C) and the run continues with the next suite;
  * a board that resets mid-test (sys.exit() in a test) fails that test and the
    run continues with the next suite;
  * a board that dies (emulator killed, port gone) or stops answering fails the
    running test; the tests of every later suite are reported not run, naming
    the board and why.
    A device path or URL that vanishes (USB re-enumeration after a hard reset,
    a cable pulled) is waited for ``reconnect_timeout`` seconds (default
    RECONNECT_S; env MPALLOC_RECONNECT_TIMEOUT): if it comes back the run goes
    on with the next suite, after a soft reset.
Device tracebacks name the suite's file (relative to the current directory
when below it) and its own line numbers, not the raw REPL's ``<stdin>``.

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
from .argcheck import env_seconds
from .board import BoardNoSpace, LineSplitter
from .delivery.sources import flat_name  # noqa: F401 (re-exported)
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
_STDIN_LINE = re.compile(r'File "<stdin>", line (\d+)')
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
        self.not_run = False  # skipped because an earlier fault stopped the suite

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
        not_run = sum(1 for t in self.tests() if t.not_run)
        return "%s: %d passed, %d failed, %d skipped%s%s in %d suites (%.1f s)" % (
            self.board, self.count("passed"), self.count("failed") + self.count("error"), self.count("skipped"),
            (" (%d not run)" % not_run) if not_run else "",
            (", %d suite errors" % errs) if errs else "", len(self.suites), self.seconds)


def board_caps(board):
    """The capabilities mptest.CAPS gets: the target's, plus hard_irq on a real
    board whose profile has it (the virtual boards only emulate it)."""
    caps = set(board.caps)
    mp = (board.profile or {}).get("micropython") or {}
    if mp.get("hard_irq") and board.target.is_physical:
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
        return None if board.delivery.dirs else need
    if need in ("threads", "hard_irq"):
        caps = board_caps(board)
        if caps and need not in caps:
            return need
    return None


def suite_file(path):
    """How a traceback names a suite file: relative to the current directory when below it."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


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


class _Said(str):
    """A message "<board>: <what>" that keeps its what, for a reason quoted again
    under another message (a test not run because of it)."""

    def __new__(cls, where, what):
        s = str.__new__(cls, "%s: %s" % (where, what))
        s.what = what
        return s

    def __reduce__(self):
        return str, (str(self),)


def _names(only):
    """The test names `only` selects (one name or several)."""
    return (only,) if isinstance(only, str) else tuple(only)


class Runner:
    """Runs suites on one Board. on_event(kind, suite, test_result_or_None, text)
    is called as results stream: kinds "suite", "start", "pass", "fail", "skip",
    "error", "log", "summary"."""

    def __init__(self, board, test_timeout=60.0, suite_timeout=600.0, on_event=None, reset=True,
                 reconnect_timeout=None):
        self.board = board
        if reconnect_timeout is None:
            try:
                reconnect_timeout = env_seconds("MPALLOC_RECONNECT_TIMEOUT", RECONNECT_S)
            except ValueError as e:
                raise BoardError(str(e)) from None
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
    # only: None (every test), a test name, or a tuple of names (pytest's selection)

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
        self._stopped = None
        try:
            self._run_suite(info, res, only)
        finally:
            self._not_run(res, info, only)
            res.seconds = time.monotonic() - t0
        return res

    def _not_run(self, res, info, only):
        """Report the suite's tests that never ran, skipped with the reason."""
        why = self._stopped or res.error
        if why is None:
            failed = [t for t in res.tests if t.status in ("failed", "running")]
            why = failed[-1].message if failed else _Said(self.board.name, "the suite ended before it")
        why = getattr(why, "what", why)
        if not why.startswith("not run"):
            why = "not run: " + why
        for name in info.tests:
            if (only and name != only) or res.get(name) is not None:
                continue
            t = TestResult(res.name, name)
            t.status, t.message, t.not_run = "skipped", _Said(self.board.name, why), True
            res.tests.append(t)
            self.on_event("skip", res.name, t, t.message)

    def _run_suite(self, info, res, only):
        if self.dead:
            self._stopped = self.dead   # counted where it happened; here its tests are not run
            return
        missing = self.host_missing(info)
        if missing:
            self._skip_all(res, info, only, "board lacks " + missing)
            return
        board = self.board
        tr = board.transport
        if board.delivery.run_frozen(self, info, res):
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
                           % e.what)
            try:
                board.delivery.cleanup_after_no_room(board)
            except BoardError:
                pass
            return
        except BoardError as e:
            self._board_fault(res, None, e)
            return
        state = _StreamState(self, res)
        state.names = info.tests
        at = code.find(info.source.encode())
        if board.delivery.sends_source and at >= 0:
            state.origin = (suite_file(info.path), code.count(b"\n", 0, at))
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
                # a MemoryError with no room left for its traceback prints only its line
                framing = "Traceback (most recent call last)" not in text and not text.lstrip().startswith("MemoryError")
                if text.lstrip().startswith("MemoryError") and "Traceback" not in text:
                    last = "MemoryError: the heap is exhausted (no room for a traceback)"
                if framing:
                    # MicroPython prints a traceback for every uncaught exception: this
                    # is output that a \x04 the board never sent (garbled or injected
                    # bytes) cut off as the "error" section; resynchronise with Ctrl-C
                    last = "the raw REPL's framing was lost (garbled serial line?)"
                    for ln in text.splitlines():
                        if ln.startswith("@@mpt "):
                            state.line(ln)
                text = state.where(text)
                cur = state.current
                if cur is not None:
                    cur.status, cur.message = "failed", _Said(board.name, "test %s: the suite crashed in it: %s" % (cur.id, last))
                    cur.traceback = text.splitlines()
                    self.on_event("fail", res.name, cur, cur.message)
                else:
                    res.error = _Said(board.name, "suite %s crashed: %s" % (res.name, last))
                    res.log.extend(text.splitlines())
                    self.on_event("error", res.name, None, res.error)
                if framing and not board.interrupt():
                    self.dead = _Said(board.name, "not run, the board stopped answering after suite %s" % (res.name,))
                state.current = None
                return   # counted once, above
        except BoardError as e:
            lines.flush()
            self._board_fault(res, state.current, e)
            return
        self._check_end(res, state)

    def run_frozen_suite(self, info, res, run):
        """A suite that is in the board's firmware: run(timeout) runs it there and
        returns its output lines (delivery.frozen). Always True (it was handled)."""
        state = _StreamState(self, res)
        state.names = info.tests
        try:
            with self.board.transport.deadline(self.suite_timeout, "running frozen suite %s" % res.name):
                out = run(self.suite_timeout)
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
            if state.lost and all(getattr(res.get(i.split(".", 1)[1]), "status", "") == "failed" for i in state.lost):
                pass   # each lost line already failed its test: counted there
            elif state.lost:
                res.error = _Said(board.name, "suite %s: lines of test %s were lost or garbled on the serial line" % (res.name, state.lost[0]))
            elif state.current is not None:   # a test's fault: counted as its failure
                cur = state.current
                cur.status = "failed"
                cur.message = _Said(board.name, "test %s never finished: the suite's code ended in it (sys.exit()? a reset?)" % (cur.id,))
                self.on_event("fail", res.name, cur, cur.message)
                return
            elif res.summary is None:
                res.error = _Said(board.name, "suite %s printed no summary (is s.run() called?)" % (res.name,))
            elif (res.summary["passed"], res.summary["failed"], res.summary["skipped"]) != (
                    res.count("passed"), res.count("failed"), res.count("skipped")):
                res.error = _Said(board.name, "suite %s summary does not match its test lines" % (res.name,))
            if res.error:
                self.on_event("error", res.name, None, res.error)

    def code_too_big(self, info):
        """The reason a suite cannot load on this board at all (its delivery says), else None."""
        return self.board.delivery.too_big(self.board, info)

    def _skip_all(self, res, info, only, why):
        for name in info.tests:
            if only and name not in _names(only):
                continue
            t = TestResult(res.name, name)
            t.status, t.message = "skipped", why
            res.tests.append(t)
            self.on_event("skip", res.name, t, why)

    def _prepare(self, info, only):
        """Fresh board state, mptest configured; returns the code to send."""
        board = self.board
        caps = tuple(sorted(self.caps()))
        if only and not board.info.get("modules"):  # see _StreamState.line
            only = tuple("_t%d" % info.tests.index(n) if n in info.tests else n for n in _names(only))
        if isinstance(only, (list, tuple)):
            only = tuple(only)
        setup = "import mptest\nmptest.CAPS = %r\nmptest.ONLY = %r\n" % (caps, only)
        why = getattr(board.target, "why", None)
        if why:
            setup += "mptest.WHY = %r\n" % (why,)
        if os.environ.get("MPALLOC_NATIVE") == "off":  # the bytecode hit paths where native ones exist
            setup += "import mpalloc.native\nmpalloc.native.off()\n"
        return board.delivery.suite_code(self, info, setup)

    def fresh_state(self):
        """A soft reset where the board has one (and the runner resets), else the
        mpalloc modules dropped from sys.modules and a collection."""
        board = self.board
        if self.reset and "soft_reset" in board.caps:
            board.soft_reset()
        else:
            board.exec("import sys, gc\nfor _k in [k for k in sys.modules if k == 'mptest' or k.startswith('mpalloc')]:\n"
                       " del sys.modules[_k]\ngc.collect()" if board.info.get("modules") else "import gc\ngc.collect()")

    def _board_fault(self, res, cur, e):
        board = self.board
        where = ("test %s" % cur.id) if cur is not None else ("suite %s" % res.name)
        if isinstance(e, BoardTimeout):
            secs = self.test_timeout if cur is not None else None
            msg = _Said(board.name, "%s timed out%s%s" % (where, (" after %g s" % secs) if secs else "",
                                                          " (%s)" % e.what if cur is None else ""))
        elif isinstance(e, BoardReset):
            msg = _Said(board.name, "the board reset itself during %s" % (where,))
        elif isinstance(e, BoardGone):
            msg = _Said(board.name, "the board went away during %s (%s)" % (where, e.what))
        elif isinstance(e, OutputTooLarge):
            msg = _Said(board.name, "%s printed more than %d bytes" % (where, board.transport.max_output))
        elif isinstance(e, BoardExecError):
            msg = _Said(board.name, "%s: %s" % (where, e.what))
        else:
            msg = _Said(board.name, "%s: %s" % (where, e.what))
        if cur is not None:   # the fault counts once: as this test's failure
            cur.status, cur.message = "failed", msg
            self.on_event("fail", res.name, cur, msg)
        else:
            res.error = msg
            self.on_event("error", res.name, None, msg)
        self._stopped = msg
        if isinstance(e, BoardGone):
            back = None
            if getattr(board, "can_reconnect", False) and self.reconnect_timeout > 0:
                back = board.reconnect(self.reconnect_timeout)
            if back is None:
                waited = ("; it did not come back within %g s" % self.reconnect_timeout
                          if getattr(board, "can_reconnect", False) and self.reconnect_timeout > 0 else "")
                self.dead = _Said(board.name, "not run, the board went away earlier (%s%s)" % (msg.what, waited))
            else:
                note = _Said(board.name, "the port came back after %.1f s; the run goes on" % (back,))
                res.log.append(note)
                self.on_event("log", res.name, None, note)
        elif not isinstance(e, BoardExecError):
            if not board.interrupt():
                self.dead = _Said(board.name, "not run, the board stopped answering after %s" % (where,))


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
        self.origin = None  # (suite file, lines of code sent before the suite's first line)

    def where(self, text):
        """`text` with the suite's own file and line numbers in place of the raw REPL's."""
        if self.origin is None or '"<stdin>"' not in text:
            return text
        path, offset = self.origin

        def fix(m):
            n = int(m.group(1)) - offset
            return 'File "%s", line %d' % (path, n) if n > 0 else m.group(0)

        return _STDIN_LINE.sub(fix, text)

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
            line = self.where(line)
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
