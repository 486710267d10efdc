"""`mpalloc vboard --board rp2040|esp32|unix [--link PATH] [--wasm32]`: serve a virtual board.

Starts a virtual board (the MicroPython unix port configured from the profile,
behind a pty; with --wasm32 the 32-bit webassembly port instead), prints its
device path as the first line on stdout, and runs until SIGINT/SIGTERM; then
stops the child process and removes the --link symlink and the board's
temporary filesystem. Use it like a board:

    mpalloc vboard --board rp2040 --link /tmp/pico &
    mpremote connect /tmp/pico exec "import gc; print(gc.mem_free())"

Exit status: 0 when stopped by a signal, 1 if the board died, 2 on bad input.
"""
import os
import sys
import time

from . import profiles


def register(subparsers):
    p = subparsers.add_parser("vboard", help="run a virtual board on a pty until stopped",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--board", "-b", default="rp2040",
                   help="board profile (%s); default rp2040" % ", ".join(
                       n for n in profiles.names() if n != "microbit"))
    p.add_argument("--link", metavar="PATH", help="also make PATH a symlink to the pty")
    p.add_argument("--wasm32", action="store_true",
                   help="run the 32-bit webassembly MicroPython (node) instead of the unix port")
    p.set_defaults(func=run)
    return p


def _make_link(path, device):
    if os.path.islink(path):
        os.unlink(path)                   # a stale link from an earlier run
    elif os.path.exists(path):
        raise OSError("--link %s: exists and is not a symlink; not replacing it" % path)
    os.symlink(device, path)


def _remove_link(path, device):
    try:
        if os.path.islink(path) and os.readlink(path) == device:
            os.unlink(path)
    except OSError:
        pass


def run(args):
    from .targets import open_target

    spec = "%s:%s" % ("wasm32" if args.wasm32 else "vboard", args.board)
    target = open_target(spec)
    linked = False
    try:
        if args.link:
            _make_link(args.link, target.device)
            linked = True
        print(target.device, flush=True)
        print("mpalloc: %s on %s%s%s, started in %.2f s; Ctrl-C or SIGTERM stops it" % (
            spec, target.device, " -> " + args.link if args.link else "",
            " (filesystem image %s)" % target.backend.fs.path if getattr(target.backend, "fs", None) else "",
            target.started_s or 0),
            file=sys.stderr, flush=True)
        while target.alive():
            time.sleep(0.2)
        print("mpalloc: %s died: %s" % (spec, target.dead_reason() or "unknown reason"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:             # SIGINT, or SIGTERM through cli.Terminated
        print("mpalloc: %s stopped" % spec, file=sys.stderr)
        return 0
    finally:
        target.close()
        if linked:
            _remove_link(args.link, target.device)
