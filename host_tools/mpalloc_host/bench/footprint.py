"""mpalloc's own heap on a board: tests/bench/bench_footprint.py run there.

One job: deploy the firmware (source or .mpy), run the footprint script in a
fresh interpreter state, return its figures {"fp.import_core": bytes, ...}.

    python -m mpalloc_host.bench.footprint wasm32:rp2040 [--mpy]

Figures are gc.mem_alloc() deltas after gc.collect() (see the script's header).
"""
import sys

from .runner import parse, script_text


def measure(board, mpy=False):
    """{key: value} of the footprint script on `board` (a mpalloc_host Board)."""
    board.deploy(mpy=mpy)
    board.soft_reset()
    return parse(board.exec(script_text("bench_footprint.py", ()), timeout=300))


def main(argv=None):
    import argparse

    from ..board import Board
    from ..targets import open_target

    ap = argparse.ArgumentParser(prog="python -m mpalloc_host.bench.footprint", description=__doc__.split("\n\n")[0])
    ap.add_argument("port", help="a target, e.g. wasm32:rp2040 or vboard:rp2040")
    ap.add_argument("--mpy", action="store_true", help="deploy .mpy bytecode instead of source")
    a = ap.parse_args(argv)
    target = open_target(a.port)
    try:
        board = Board(target)
        try:
            res = measure(board, mpy=a.mpy)
        finally:
            board.close()
    finally:
        target.close()
    for k in sorted(res):
        print("%-24s %s" % (k, res[k]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
