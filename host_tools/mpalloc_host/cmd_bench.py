"""`mpalloc bench`: the benchmark suite on a board and on CPython.

    mpalloc bench [--port vboard:rp2040] [--json FILE] [--markdown FILE] [--plot FILE] [--quick]
    mpalloc bench --from FILE --markdown BENCHMARKS.md     (regenerate from a saved JSON)

Figures are ratios to an empty Python call (cu) and exact counts; goals are shown as
met / not met, never as a failure of the command.

On a board with a small heap (a Pico, an ESP32, emu:rp2040) the suite is the
board-sized bench (bench/board_report.py): --markdown then replaces only that
port's section of the file, and the full suite's report keeps those sections.
"""
import sys

from .cli import add_board_options, open_board


def register(subparsers):
    p = subparsers.add_parser("bench", help="benchmarks: cost in cu, heap bytes, flatness, utilisation (BENCHMARKS.md)",
                              description=__doc__.split("\n\n", 1)[0])
    add_board_options(p)
    p.add_argument("--json", metavar="FILE", help="write the results (JSON) to FILE")
    p.add_argument("--markdown", metavar="FILE", help="write the report (BENCHMARKS.md) to FILE")
    p.add_argument("--plot", metavar="FILE", help="write the cost-vs-free-segments plot (PNG); default "
                   "docs/bench-cost.png beside the --markdown file")
    p.add_argument("--quick", action="store_true", help="fewer batches (a smoke run, figures noisier)")
    p.add_argument("--no-cpython", action="store_true", help="skip the CPython side (mpalloc and the peers)")
    p.add_argument("--from", dest="from_json", metavar="FILE", help="do not run: report a saved JSON result")
    p.add_argument("-q", "--quiet", action="store_true", help="no tables on the terminal")
    p.set_defaults(func=run)
    return p


def run(args):
    import os

    from .bench import board_report, report, suite
    from .output import Output

    out = Output(quiet=args.quiet)
    if args.from_json:
        doc = suite.load(args.from_json)
    else:
        targets = ("micropython",) if args.no_cpython else ("micropython", "cpython")
        with out.progress("benchmarks") as bar:
            def progress(i, n, what):
                bar(i, n, what)
                out.note("[%d/%d] %s" % (i + 1, n, what) if i < n else "benchmarks done")

            doc = suite.run(args.port, board=args.board, quick=args.quick, targets=targets, progress=progress,
                            open_board=lambda: open_board(args))
    if args.json:
        doc["meta"]["json"] = args.json
        suite.save(doc, args.json)
    if board_report.is_board(doc):
        if args.markdown:
            _rewrite(args.markdown, lambda old: board_report.splice(old, board_report.markdown(doc),
                                                                     doc["meta"].get("port")))
        if not args.quiet:
            board_report.render(doc, out.console)
            for w in (args.json, args.markdown):
                if w:
                    out.note("wrote %s" % w)
        sys.stdout.flush()
        return 0
    # the plot goes beside the report it belongs to (BENCHMARKS.md -> docs/bench-cost.png)
    plot = args.plot or (os.path.join(os.path.dirname(args.markdown), "docs", "bench-cost.png")
                         if args.markdown else None)
    if plot:
        d = os.path.dirname(plot)
        if d:
            os.makedirs(d, exist_ok=True)
        report.plot(doc, plot)
    if args.markdown:
        rel = os.path.relpath(plot, os.path.dirname(os.path.abspath(args.markdown)) or ".") if plot else None
        _rewrite(args.markdown, lambda old: board_report.keep_sections(
            old, report.markdown(doc, plot_path=rel or "docs/bench-cost.png")))
    if not args.quiet:
        report.render(doc, out.console)
        for w in (args.json, args.markdown, plot):
            if w:
                out.note("wrote %s" % w)
    sys.stdout.flush()
    return 0


def _rewrite(path, new_text):
    """Write new_text(old contents) to path (old: "" when there is no file yet):
    the report keeps the sections of other ports."""
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    with open(path, "w") as f:
        f.write(new_text(old))
