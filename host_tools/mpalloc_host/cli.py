"""The `mpalloc` command: the subcommands are listed in COMMANDS, one cmd_<name>.py each.

Each cmd_<name>.py defines ``register(subparsers)``, which adds its subparser and sets
``func`` (callable(args) -> exit code). Commands that talk to a board call
``add_board_options(parser)`` for the common ``--port`` / ``--board`` and use
``open_board(args)``. Adding a command: docs/DEVELOPING.md.

Expected errors (errors.MpallocError: bad port, board not answering, broken
profile, ...) end with one line on stderr and exit status 2, never a Python
traceback; Ctrl-C (or SIGTERM)
exits 130 after every target started for the command has been stopped.
"""
import argparse
import contextlib
import importlib
import os
import signal
import sys

from . import __version__
from .errors import MpallocError, one_line

DEFAULT_PORT = "vboard:rp2040"

# name -> module (cmd_<module>.py); each module's register(subparsers) adds its parser
COMMANDS = {
    "boards": "cmd_boards",
    "deploy": "cmd_deploy",
    "test": "cmd_test",
    "stats": "cmd_stats",
    "map": "cmd_map",
    "bench": "cmd_bench",
    "demo": "cmd_demo",
    "footprint": "cmd_footprint",
    "flash": "cmd_flash",
    "vboard": "cmd_vboard",
}


def port_help():
    from .targets import port_help

    return port_help("$MPALLOC_PORT or %s" % DEFAULT_PORT)


def add_board_options(p):
    """--port and --board for a subcommand that talks to a board."""
    p.add_argument("--port", "-p", default=os.environ.get("MPALLOC_PORT") or DEFAULT_PORT, help=port_help())
    p.add_argument("--board", "-b", default=os.environ.get("MPALLOC_BOARD") or None,
                   help="board profile when the port does not imply it: a name (boards/<name>.json, "
                        "see mpalloc boards) or a FILE.json")


@contextlib.contextmanager
def open_board(args, **kw):
    """A connected Board for args.port / args.board; target and link closed after."""
    from .board import Board

    with Board.open(args.port, board=args.board, **kw) as b:
        yield b


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr naming what was wrong, exit status 2
    (the usage is in --help)."""

    def error(self, message):
        self.exit(2, "mpalloc: error: %s (see %s --help)\n" % (message, self.prog))


def build_parser():
    parser = _Parser(
        prog="mpalloc",
        description="NetBSD's kernel memory allocators on MicroPython boards: deploy, test, inspect.")
    parser.add_argument("--version", action="version", version="mpalloc " + __version__)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name, module in COMMANDS.items():
        importlib.import_module("%s.%s" % (__package__, module)).register(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C so every target is cleaned up."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("mpalloc: interrupted", file=sys.stderr)
        return 130
    except MpallocError as e:
        print("mpalloc: error: %s" % one_line(e), file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if (e.name or "").startswith("mpalloc"):
            raise  # our own module missing: a bug, keep the traceback
        print("mpalloc: error: the Python package '%s' is not installed in %s: run `make setup` "
              "(it installs the pinned requirements.txt)" % (e.name, sys.prefix), file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 1
    except OSError as e:  # files named on the command line (--junit, ...)
        print("mpalloc: error: %s" % one_line(e), file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, old)
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
