"""`mpalloc boards`: the board profiles (boards/*.json) as a table.

"heap B" is the board's gc heap (the profile's micropython.heap_bytes);
"wasm32 B" and "vboard B" the heap those targets give the board: the board's plus
what each runtime's bigger code takes of it, so a program has the board's free
heap after mpalloc's set-up (heaps.py; docs/DEVELOPING.md "Heap sizes").

A profile that does not load is named on stderr (file, field, problem) and the
others are listed; the exit status is then 1. Any command's --board also takes a
profile file of your own: --board my_board.json."""
import json
import sys

from rich.table import Table

from . import heaps, profiles
from .output import Output


def register(subparsers):
    p = subparsers.add_parser("boards", help="list the board profiles", description=__doc__)
    p.add_argument("--json", action="store_true", help="print the profiles as JSON")
    p.set_defaults(func=run)
    return p


def _rows(bad):
    for name in profiles.names():
        try:
            pr = profiles.load(name)
        except profiles.ProfileError as e:  # listed apart; the good ones are still shown
            bad.append(str(e))
            continue
        mp = pr.get("micropython") or {}
        cpu = pr.get("cpu") or {}
        man = pr.get("managed") or {}
        yield pr, [name, pr.get("title", ""), "%s x%s" % (cpu.get("core", "?"), cpu.get("cores", "?")),
                   "%d" % (mp.get("heap_bytes") or 0),
                   "%d" % heaps.target_heap("wasm32", pr), "%d" % heaps.target_heap("vboard", pr),
                   str(mp.get("march", "")),
                   ",".join(k for k in ("threads", "hard_irq") if mp.get(k)) or "-",
                   "%s @ %s" % (man.get("bytes", "?"), man.get("virtual_base", "?")),
                   "vboard:%s" % name if name != "microbit" else "qemu:microbit"]


def run(args):
    bad = []
    rows = list(_rows(bad))
    status = 1 if bad else 0
    for msg in bad:
        print("mpalloc boards: bad profile, not listed: %s" % msg, file=sys.stderr)
    if args.json:
        print(json.dumps({r[0]["name"]: r[0] for r in rows}, indent=2))
        return status
    out = Output()
    head = ["board", "title", "cpu", "heap B", "wasm32 B", "vboard B", "march", "caps", "managed B @ base", "without hardware"]
    if out.tty:
        t = Table(*head)
        for _, r in rows:
            t.add_row(*r)
        out.console.print(t)
    else:
        w = [max(len(str(x)) for x in col) for col in zip(head, *[r for _, r in rows])]
        for r in [head] + [r for _, r in rows]:
            print("  ".join(str(x).ljust(n) for x, n in zip(r, w)).rstrip())
    return status
