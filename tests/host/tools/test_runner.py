"""runner: @@mpt parsing, static suite listing, JUnit, and fault handling on a real
MicroPython (virtual board): a test that never ends, one that floods, a board that
resets or dies mid-test. Each ends as a clear result naming board and test."""
import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from board_doubles import FAULTS, need_target, process_tag, tagged_processes
from mpalloc_host.board import Board, flat_source, module_closure, strip_docstrings
from mpalloc_host.runner import Runner, SuiteInfo, SuiteResult, _StreamState, discover, write_junit
from mpalloc_host.transport import BoardError


class _StubRunner:
    test_timeout = 5

    def __init__(self):
        self.events = []

    def on_event(self, *a):
        self.events.append(a)


def parse(lines, names=()):
    r = _StubRunner()
    res = SuiteResult("s", "x.py")
    st = _StreamState(r, res)
    st.names = list(names)
    for ln in lines:
        st.line(ln)
    return res, st, r


def test_parser_results_tracebacks_logs():
    res, st, r = parse([
        "@@mpt suite s needs=threads",
        "@@mpt start s a",
        "hello from a",
        "@@mpt pass s a ms=3 heap=-16",
        "@@mpt start s b",
        "log of b",
        "@@mpt fail s b ms=1 heap=0",
        "Traceback (most recent call last):",
        '  File "x.py", line 3, in b',
        "AssertionError: one: 1 != 2",
        "@@mpt tbend s b",
        "@@mpt skip s c reason=board lacks threads, sorry",
        "@@mpt metric s a ops=42",
        "@@mpt summary s passed=1 failed=1 skipped=1 ms=9",
    ])
    a, b, c = res.tests
    assert (a.name, a.status, a.ms, a.heap, a.log, a.metrics) == ("a", "passed", 3, -16, ["hello from a"], {"ops": "42"})
    assert (b.status, b.message, b.log) == ("failed", "AssertionError: one: 1 != 2", ["log of b"])
    assert b.traceback[0].startswith("Traceback")
    assert (c.status, c.message) == ("skipped", "board lacks threads, sorry")
    assert res.summary == {"passed": 1, "failed": 1, "skipped": 1, "ms": 9}
    assert st.current is None
    assert [e[0] for e in r.events if e[0] != "log"] == ["start", "pass", "start", "fail", "skip", "summary"]


def test_parser_ignores_garbage_and_foreign_lines():
    res, st, _ = parse([
        "\ufffd\ufffd\x1b[2J junk",
        "@@mpt pass s a ms=notanumber heap=0",
        "@@mpt start other x",
        "xx@@mpt start s a",
        "@@mpt start s a",
        "@@mpt pass s a ms=1 heap=0",
    ])
    assert [t.name for t in res.tests] == ["a"]
    assert res.tests[0].status == "passed"
    assert any("unparsed" in ln for ln in res.log) and any("other" in ln for ln in res.log)


def test_parser_maps_unnamed_tests_of_micropython_1_9():
    res, _, _ = parse(["@@mpt start s _t1", "@@mpt pass s _t1 ms=0 heap=0"], names=["first", "second"])
    assert res.tests[0].name == "second"


def test_suite_info_lists_tests_and_needs(tmp_path):
    p = tmp_path / "test_x.py"
    p.write_text('from mptest import Suite\ns = Suite("xs", needs=("threads", "heap:65536"))\n\n'
                 '@s.test\ndef one():\n    pass\n\n\n@s.test\ndef two():\n    pass\n\ns.run()\n')
    info = SuiteInfo(p)
    assert (info.name, info.needs, info.tests) == ("xs", ["threads", "heap:65536"], ["one", "two"])


def test_discover_finds_device_suites_and_rejects_unknown():
    every = discover()
    assert every and all(p.name.startswith("test_") for p in every)
    assert discover(["mptest"])[0].name == "test_mptest.py"
    with pytest.raises(BoardError) as ei:
        discover(["nosuchsuite"])
    assert "no device suite 'nosuchsuite'" in str(ei.value)


def test_flat_source_rewrites_package_imports():
    src = ("from mpalloc import intr, mem as m\nfrom . import vmem\nfrom .pool import pool_get\n"
           "from mpalloc.kmem import *\nimport mpalloc.extent as ex\nimport gc\n")
    assert flat_source(src) == ("import mpalloc_intr as intr; import mpalloc_mem as m\n"
                                "import mpalloc_vmem as vmem\nfrom mpalloc_pool import pool_get\n"
                                "from mpalloc_kmem import *\nimport mpalloc_extent as ex\nimport gc\n")
    with pytest.raises(BoardError):
        flat_source("import mpalloc.vmem\n", origin="f.py")
    assert strip_docstrings('def f():\n    """doc"""\n    return 1\n') == "def f():\n    return 1\n"


def test_module_closure_follows_imports():
    names = [n for n, _ in module_closure("from mptest import Suite\nfrom mpalloc import intr\n")]
    assert names[-1] in ("mptest", "mpalloc.intr") and set(names) >= {"mptest", "mpalloc.intr"}


def test_junit_has_failures_with_device_log(tmp_path):
    from mpalloc_host.runner import Report

    res, _, _ = parse(["@@mpt start s a", "the log", "@@mpt fail s a ms=2 heap=0", "Traceback:", "E: x\x01",
                       "@@mpt tbend s a", "@@mpt start s b", "@@mpt metric s b ops=5", "@@mpt metric s b rate=0.9",
                       "@@mpt pass s b ms=1 heap=0",
                       "@@mpt skip s c reason=no"])
    res.error = "board: suite s crashed: boom"
    rep = Report("vboard:rp2040")
    rep.suites.append(res)
    out = tmp_path / "j.xml"
    write_junit(rep, out)
    root = ET.parse(out).getroot()
    ts = root.find("testsuite")
    assert ts.get("name") == "vboard:rp2040.s" and ts.get("failures") == "1" and ts.get("skipped") == "1"
    fail = root.find(".//testcase[@name='a']/failure")
    assert fail.get("message") == "E: x?" and "the log" in fail.text and "device log" in fail.text
    assert root.find(".//testcase[@name='(suite)']/error").get("message") == "board: suite s crashed: boom"
    b = root.find(".//testcase[@name='b']")
    assert len(b.findall("properties")) == 1 and b[0].tag == "properties"  # one block, first (JUnit schema)
    assert [(p.get("name"), p.get("value")) for p in b.find("properties")] == [("ops", "5"), ("rate", "0.9")]


# -- on a virtual board ---------------------------------------------------------------

@pytest.fixture
def vboard():
    # one board per test: a fault test may leave its board unusable on purpose
    with need_target("vboard:rp2040") as target:
        with_board = Board(target)
        with_board.deploy()
        yield with_board
        with_board.close()


def run(board, *names, timeout=4.0):
    events = []
    r = Runner(board, test_timeout=timeout, on_event=lambda *a: events.append(a))
    rep = r.run([FAULTS / ("fault_%s.py" % n) for n in names])
    return rep, events, r


def test_mixed_results_and_streaming(vboard):
    rep, events, _ = run(vboard, "fail", "ok")
    mixed, ok = rep.suites
    f, sk, g = mixed.tests
    assert (f.name, f.status) == ("fails_with_log", "failed")
    assert "one vs two: 1 != 2" in f.message and f.log == ["before the failure"]
    assert (sk.status, sk.message) == ("skipped", "not today")
    assert g.status == "passed" and g.metrics == {"ops": "42"}
    assert any("unparsed" in ln for ln in mixed.log)
    assert ok.ok and [t.status for t in ok.tests] == ["passed", "passed"]
    assert not rep.ok
    kinds = [e[0] for e in events]
    assert kinds.index("fail") < kinds.index("summary")  # streamed, not at the end


def test_endless_test_is_interrupted_and_the_run_goes_on(vboard, tmp_path):
    t0 = time.monotonic()
    rep, _, r = run(vboard, "loop", "ok", timeout=2.0)
    loop, ok = rep.suites
    assert time.monotonic() - t0 < 15
    t = loop.get("spins_forever")
    assert t.status == "failed"
    assert t.message == "vboard:rp2040: test loop.spins_forever timed out after 2 s"
    # the test after it is reported not run, with the reason; the event counts once
    n = loop.get("never_reached")
    assert (n.status, n.not_run) == ("skipped", True)
    assert n.message == "vboard:rp2040: not run: test loop.spins_forever timed out after 2 s"
    assert loop.error is None and (loop.count("failed"), loop.count("skipped")) == (1, 1)
    assert r.dead is None, r.dead
    assert ok.ok, (ok.error, [(x.name, x.status, x.message) for x in ok.tests])
    assert rep.summary_line().startswith("vboard:rp2040: 2 passed, 1 failed, 1 skipped (1 not run) in 2 suites")
    junit = tmp_path / "j.xml"
    write_junit(rep, junit)
    ts = ET.parse(junit).getroot().find("testsuite[@name='vboard:rp2040.loop']")
    assert (ts.get("tests"), ts.get("failures"), ts.get("errors"), ts.get("skipped")) == ("2", "1", "0", "1")
    cases = {tc.get("name"): tc for tc in ts.findall("testcase")}
    assert set(cases) == {"spins_forever", "never_reached"}
    assert cases["never_reached"].find("skipped").get("message") == n.message


def test_flooding_test_is_bounded(vboard):
    vboard.transport.max_output = 200000
    try:
        rep, _, r = run(vboard, "flood", "ok", timeout=20)
    finally:
        vboard.transport.max_output = 4 << 20
    t = rep.suites[0].get("prints_forever")
    assert t.status == "failed" and "printed more than 200000 bytes" in t.message, t.message
    assert len(t.log) <= 400
    assert rep.suites[1].ok


def test_board_reset_mid_test_is_named(vboard):
    rep, _, r = run(vboard, "exit", "ok", timeout=5)
    resets, ok = rep.suites
    assert not resets.ok and resets.error is None
    t, n = resets.get("resets_board"), resets.get("never_reached")
    # (the unix port ends its raw-REPL command before it restarts: the test never finished)
    assert t.status == "failed" and t.message.startswith("vboard:rp2040: test resets.resets_board never finished")
    assert n.not_run and n.message.startswith("vboard:rp2040: not run: test resets.resets_board never finished")
    assert t.log == ["resetting"]
    assert ok.ok, (ok.error, [(x.name, x.status, x.message) for x in ok.tests])


def test_board_killed_mid_test():
    with process_tag("runner-kill") as tag, need_target("vboard:rp2040") as target:
        b = Board(target)
        b.deploy()

        def killer(kind, suite, t, text):
            if kind == "start":
                for p in tagged_processes(tag):
                    os.kill(p, 9)

        r = Runner(b, test_timeout=10, on_event=killer)
        t0 = time.monotonic()
        rep = r.run([FAULTS / "fault_sleep.py", FAULTS / "fault_ok.py"])
        assert time.monotonic() - t0 < 15
        sleepy, ok = rep.suites
        t = sleepy.get("sleeps")
        assert t.status == "failed"
        assert t.message.startswith("vboard:rp2040: the board went away during test sleepy.sleeps"), t.message
        assert ok.error is None and sleepy.error is None   # the event counts once, in sleepy.sleeps
        assert [(x.name, x.status, x.not_run) for x in ok.tests] == [
            ("adds", "skipped", True), ("prints_and_passes", "skipped", True)]
        assert ok.tests[0].message.startswith("vboard:rp2040: not run, the board went away earlier"), ok.tests[0]
        assert ok.count("skipped") == 2 and rep.count("failed") == 1
        assert not rep.ok
        b.close()


def test_device_traceback_names_the_suite_file_and_line(vboard):
    rep, _, _ = run(vboard, "fail")
    f = rep.suites[0].get("fails_with_log")
    tb = "\n".join(f.traceback)
    src = (FAULTS / "fault_fail.py").read_text().splitlines()
    line = src.index('    eq(1, 2, "one vs two")') + 1
    assert 'File "tests/host/device_faults/fault_fail.py", line %d, in fails_with_log' % line in tb, tb
    assert "<stdin>" not in tb


def test_sys_exit_in_a_test_loses_nothing(vboard, tmp_path):
    # sys.exit() mid-suite: the test names the reset, the rest are reported not run,
    # the next suite runs; the JUnit file has every test
    rep, _, r = run(vboard, "exit", "ok", timeout=5)
    write_junit(rep, tmp_path / "j.xml")
    root = ET.parse(tmp_path / "j.xml").getroot()
    names = [(ts.get("name"), tc.get("name")) for ts in root for tc in ts.findall("testcase")]
    assert names == [("vboard:rp2040.resets", "resets_board"), ("vboard:rp2040.resets", "never_reached"),
                     ("vboard:rp2040.ok", "adds"), ("vboard:rp2040.ok", "prints_and_passes")]
    assert sum(int(ts.get("errors")) for ts in root) == 0
    assert sum(int(ts.get("failures")) for ts in root) == 1
