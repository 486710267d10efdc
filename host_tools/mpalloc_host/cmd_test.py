"""`mpalloc test`: run on-device suites (tests/device/test_*.py) on a board.

    mpalloc test                                   every suite on the virtual RP2040
    mpalloc test --port /dev/ttyACM0 --board rp2040 vmem pool --junit out/junit.xml
    mpalloc test --port qemu:microbit              the suites that fit the micro:bit

Results stream as they come. Exit status 0 only if every test passed (skips
allowed), 1 if a test failed or a suite broke, 2 if the board could not be used.
"""
import sys

from .argcheck import seconds
from .cli import add_board_options, open_board
from .output import Output
from .runner import Runner, discover, write_junit


def register(subparsers):
    p = subparsers.add_parser("test", help="run on-device test suites on a board",
                              description=__doc__.split("\n\n", 1)[0])
    add_board_options(p)
    p.add_argument("suites", nargs="*", metavar="SUITE", help="suite names (vmem, test_vmem, or a path); default all")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML (device log of failing tests included)")
    p.add_argument("--test", metavar="NAME", help="run only this test of each suite")
    p.add_argument("--mpy", action="store_true", help="deploy the firmware compiled with mpy-cross first")
    p.add_argument("--no-deploy", action="store_true", help="use the firmware already on the board")
    p.add_argument("--timeout", type=seconds, default=60.0, metavar="S", help="deadline per test (default 60 s)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the device log as it streams")
    p.set_defaults(func=run)
    return p


def run(args):
    paths = discover(args.suites)
    out = Output(quiet=args.quiet)
    with open_board(args) as board:
        if not args.no_deploy:
            with out.progress("deploy to %s" % board.name) as bar:
                r = board.deploy(mpy=args.mpy or None, progress=bar)
            out.note("deployed %d files (%d bytes), %d unchanged [%s]"
                     % (len(r["copied"]), r["bytes"], len(r["skipped"]), r["mode"]))
        runner = Runner(board, test_timeout=args.timeout, on_event=out.test_event(verbose=args.verbose))
        report = None
        try:
            with out.status("running %d suites on %s" % (len(paths), board.name)):
                report = runner.run(paths, only=args.test)
        finally:
            if report is not None and args.junit:
                write_junit(report, args.junit)
    out.summary(report)
    if args.junit:
        out.note("JUnit XML: %s" % args.junit)
    return 0 if report.ok else 1
