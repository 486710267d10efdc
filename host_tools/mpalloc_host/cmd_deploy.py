"""`mpalloc deploy`: copy the firmware (the mpalloc package and board.json) to a board.

    mpalloc deploy --port /dev/ttyACM0 --board rp2040 [--mpy] [--tests]
    mpalloc deploy --romfs --port emu:rp2040 --firmware RPI_PICO_ROMFS-v1.28.0.uf2

Only mpalloc's runtime modules (the core and its extras, as mip installs them) go
to the board; --tests adds the on-device test helpers (mptest.py, ...), which
`mpalloc test` deploys itself anyway.
Unchanged files are skipped (sha256 computed on the board). With --mpy the modules
are compiled with mpy-cross first, for the arch the board's MicroPython loads
(the profile's micropython.march on a real board). A board without a filesystem
gets nothing here: `mpalloc test` sends the modules it needs with each suite.
With --romfs the runtime modules go as .mpy into the firmware's ROMFS partition
and run in place from flash (delivery/romfs.py); the firmware must have one.
"""
from .cli import add_board_options, open_board
from .dist import runtime_modules
from .output import Output


def register(subparsers):
    p = subparsers.add_parser("deploy", help="copy the firmware to a board (skips unchanged files)",
                              description=__doc__.split("\n\n", 1)[0])
    add_board_options(p)
    p.add_argument("--mpy", action="store_true", help="compile with mpy-cross first (-march from the board)")
    p.add_argument("--tests", action="store_true",
                   help="also the on-device test helpers (mptest, ...); default: only mpalloc's runtime modules")
    p.add_argument("--romfs", action="store_true",
                   help="write the runtime modules (.mpy) as a ROMFS image into the firmware's ROMFS partition: "
                        "code runs in place from flash")
    p.add_argument("--firmware", metavar="FILE.uf2",
                   help="emu:rp2040 only: the firmware it boots (default $MPALLOC_RP2040_FIRMWARE or RPI_PICO)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run)
    return p


def run(args):
    out = Output(quiet=args.quiet)
    with open_board(args, firmware=args.firmware) as board:
        if args.romfs:
            return _romfs(board, args, out)
        with out.progress("deploy to %s" % board.name) as bar:
            # flat filesystems (micro:bit) keep deploy's own choice: the package does not fit
            only = None if args.tests or not board.delivery.dirs else runtime_modules()
            r = board.deploy(mpy=args.mpy or None, progress=bar, only=only)
    if r["mode"] == "ram":
        out.note("%s has no filesystem: nothing copied; `mpalloc test` sends modules with each suite" % board.name)
        return 0
    for path in r["copied"]:
        out.note("  copied  %s" % path)
    for path in r["removed"]:
        out.note("  removed %s" % path)
    out.note("%s: %d files copied (%d bytes), %d unchanged, %d removed [%s]"
             % (board.name, len(r["copied"]), r["bytes"], len(r["skipped"]), len(r["removed"]), r["mode"]))
    return 0


def _romfs(board, args, out):
    from .delivery.romfs import RomfsDelivery

    if args.tests:
        out.note("--tests: the test helpers stay off the ROMFS image (`mpalloc test` deploys them)")
    with out.progress("ROMFS image to %s" % board.name) as bar:
        r = RomfsDelivery().deploy(board, progress=bar)
    for path in r["removed"]:
        out.note("  removed %s (it would shadow /rom/mpalloc)" % path)
    out.note("%s: ROMFS image of %d files, %d bytes of the %d-byte partition, %s; mpalloc imports from /rom"
             % (board.name, len(r["files"]), r["image_bytes"], r["partition_bytes"],
                "written" if "romfs" in r["copied"] else "unchanged"))
    return 0
