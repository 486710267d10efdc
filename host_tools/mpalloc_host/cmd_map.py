"""`mpalloc map`: a picture of the board's memory (PNG or SVG).

    mpalloc map --port vboard:rp2040 -o map.png [--save snapshot.json]
    mpalloc map --from snapshot.json -o map.svg

SRAM regions and banks, the window mpalloc manages, each vmem arena's segments
(coloured by the pool or arena that owns them, free holes hatched), pool pages,
and every extent map (peripheral registers, SRAM claims) with its owners.
"""
from pathlib import Path

from .cli import add_board_options, open_board
from .output import Output
from . import stats as st


def register(subparsers):
    p = subparsers.add_parser("map", help="draw the board's memory map (PNG/SVG), live or from a saved snapshot",
                              description=__doc__.split("\n\n", 1)[0])
    add_board_options(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="picture to write: FILE.png or FILE.svg")
    p.add_argument("--from", dest="source", metavar="FILE.json",
                   help="draw a saved snapshot (mpalloc stats --save / map --save) instead of asking a board")
    p.add_argument("--save", metavar="FILE.json", help="also save the snapshot taken from the board")
    p.add_argument("--title", help="title of the picture")
    p.add_argument("--no-deploy", action="store_true",
                   help="copy nothing: use the mpalloc already on the board (mpalloc deploy, mip install)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or notes")
    p.set_defaults(func=run)
    return p


def run(args):
    from .cmd_stats import connect_and_prepare
    from . import memmap

    out = Output(quiet=args.quiet)
    if Path(args.output).suffix.lower() not in (".png", ".svg"):
        raise st.StreamError("mpalloc map: -o must name a .png or .svg file, not %r" % args.output)
    if args.source:
        snap = st.Snapshot.load(args.source)
    else:
        with open_board(args, soft_reset=False) as board:  # the board as it is: no reset
            connect_and_prepare(board, out, deploy=not args.no_deploy)
            snap = st.take(board, segs=True)
        if args.save:
            snap.save(args.save)
            out.note("snapshot written to %s" % args.save)
    summary = memmap.draw(snap, args.output, title=args.title)
    out.line("memory map of %s written to %s (%s)" % (snap.board, args.output, ", ".join(summary["rows"])))
    return 0
