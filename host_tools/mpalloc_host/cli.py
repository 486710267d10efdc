"""The `mpalloc` command: subcommands are the modules named cmd_*.py in this package.

Each cmd_<name>.py defines ``register(subparsers)``, which adds its subparser and sets
``func`` (callable(args) -> exit code). Commands that talk to a board call
``add_board_options(parser)`` for the common ``--port`` / ``--board`` and use
``open_board(args)``.

Expected errors (bad port, board not answering, broken profile, ...) end with one
line on stderr and exit status 2, never a Python traceback; Ctrl-C (or SIGTERM)
exits 130 after every target started for the command has been stopped.
"""
import argparse
import contextlib
import importlib
import os
import pkgutil
import signal
import sys

from . import __version__

DEFAULT_PORT = "vboard:rp2040"
PORT_HELP = ("where the board is: a serial device (/dev/ttyACM0), vboard:<board> (virtual board), "
             "wasm32:<board> (32-bit MicroPython under Node.js), qemu:microbit, or a pyserial URL "
             "(rfc2217://host:port, socket://host:port), or labgrid:<place> / labgrid:<tag>=<value> (a board farm); "
             "default $MPALLOC_PORT or %s" % DEFAULT_PORT)


def add_board_options(p):
    """--port and --board for a subcommand that talks to a board."""
    p.add_argument("--port", "-p", default=os.environ.get("MPALLOC_PORT") or DEFAULT_PORT, help=PORT_HELP)
    p.add_argument("--board", "-b", default=os.environ.get("MPALLOC_BOARD") or None,
                   help="board profile (boards/<name>.json) when the port does not imply it")


@contextlib.contextmanager
def open_board(args, **kw):
    """A connected Board for args.port / args.board; target and link closed after."""
    from .board import Board

    with Board.open(args.port, board=args.board, **kw) as b:
        yield b


def expected_errors():
    """Exception classes that mean 'tell the user in one line', not 'bug'."""
    errs = []
    for mod, names in (("transport", ("BoardError",)), ("profiles", ("ProfileError",)),
                       ("targets", ("TargetError",)), ("vboard", ("VBoardError",)),
                       ("flash", ("FlashError",))):
        try:
            m = importlib.import_module("." + mod, __package__)
        except Exception:  # a module being written by someone else must not break the CLI
            continue
        errs.extend(getattr(m, n) for n in names if isinstance(getattr(m, n, None), type))
    return tuple(errs)


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
    pkg = importlib.import_module(__package__)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if not info.name.startswith("cmd_"):
            continue
        try:
            mod = importlib.import_module("%s.%s" % (__package__, info.name))
        except Exception as e:  # one broken command must not take the others down
            print("mpalloc: warning: command module %s does not load: %s" % (info.name, str(e).splitlines()[0]),
                  file=sys.stderr)
            continue
        reg = getattr(mod, "register", None)
        if callable(reg):
            reg(sub)
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
    errs = expected_errors()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("mpalloc: interrupted", file=sys.stderr)
        return 130
    except errs as e:
        print("mpalloc: error: %s" % _one_line(e), file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 1
    except OSError as e:  # files named on the command line (--junit, ...)
        print("mpalloc: error: %s" % _one_line(e), file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, old)
        sys.stdout.flush()


def _one_line(e):
    s = str(e).strip() or type(e).__name__
    return " ".join(s.split("\n")[0:1]) + (" ..." if "\n" in s else "")


if __name__ == "__main__":
    sys.exit(main())
