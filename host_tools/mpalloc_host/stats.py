"""The host side of mpalloc's statistics stream: parse `@@mps` lines into a Snapshot.

The board prints (firmware/mpalloc/stats.py):

    @@mps 1 <kind> <json object>

On a flat small board (micro:bit) no allocator fits: the stream there is begin,
`heap` (gc free/alloc/total after a collect, platform, version) and end, and the
host adds a `fit` record (stats_flat).

A Snapshot groups the records by kind and can be saved and loaded as JSON so
tables and pictures can be made off-line (`stats --json` prints the same):

    {"format": 2, "mps": 1, "records": {"begin": [{...}], "vmem": [{...}, ...], ...}}

records is keyed by kind, each a list of that kind's records in stream order (one
for begin, end, uvm_km, kmem, memmap; jq: .records.pool[] | select(.name=="x")).
format 1 (records a list of [kind, dict] pairs in stream order) is still read. `collect(board)` asks a connected board for one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

TAG = "@@mps"
VERSION = 1
FILE_FORMAT = 2  # the saved snapshot's layout (stats --json, --save); see the module docstring

# The Python the host sends to take a snapshot. The allocators the board runs are
# already imported (by its start-up or the workload); stats reads only those.
DUMP_CODE = "import mpalloc.stats as _mps\n_mps.dump(%s)\n"


from .transport import BoardError


class StreamError(BoardError, ValueError):
    """The stream is malformed, or of a version this host does not read, or a saved
    snapshot is unreadable (a BoardError, so the CLI reports it in one line)."""


@dataclass
class Snapshot:
    records: list = field(default_factory=list)  # [(kind, dict)] in stream order
    log: list = field(default_factory=list)  # non-@@mps lines (device log)

    # -- grouped views ---------------------------------------------------------
    def of(self, kind):
        return [d for k, d in self.records if k == kind]

    def one(self, kind):
        lst = self.of(kind)
        return lst[-1] if lst else None

    @property
    def begin(self):
        return self.one("begin") or {}

    @property
    def end(self):
        return self.one("end") or {}

    @property
    def complete(self):
        return self.one("end") is not None

    @property
    def board(self):
        b = self.begin.get("board")
        if b:
            return b
        mm = self.memmap or {}
        return mm.get("board") or self.begin.get("platform") or "?"

    @property
    def vmem(self):
        return self.of("vmem")

    @property
    def pools(self):
        return self.of("pool")

    @property
    def pool_caches(self):
        return self.of("pool_cache")

    @property
    def kmem(self):
        return self.one("kmem")

    @property
    def uvm_km(self):
        return self.one("uvm_km")

    @property
    def extents(self):
        return self.of("extent")

    @property
    def memmap(self):
        return self.one("memmap")

    @property
    def malloc_types(self):
        return self.of("kmalloc")

    @property
    def heap(self):
        return self.one("heap")

    @property
    def fit(self):
        return self.one("fit")

    @property
    def errors(self):
        return self.of("error")

    def segments(self, arena):
        """{"arena", "spans", "segs"} for the named arena, or None."""
        for d in self.of("segs"):
            if d.get("arena") == arena:
                return d
        return None

    def pages(self, pool):
        for d in self.of("pages"):
            if d.get("pool") == pool:
                return d.get("pages", [])
        return None

    def pool(self, name):
        for d in self.pools:
            if d.get("name") == name:
                return d
        return None

    def pool_cache(self, name):
        for d in self.pool_caches:
            if d.get("name") == name:
                return d
        return None

    def arena(self, name):
        for d in self.vmem:
            if d.get("name") == name:
                return d
        return None

    # -- files -------------------------------------------------------------------
    def to_json(self):
        by_kind = {}
        for k, d in self.records:
            by_kind.setdefault(k, []).append(d)
        return {"format": FILE_FORMAT, "mps": VERSION, "records": by_kind}

    def save(self, path):
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def from_json(cls, data):
        if not isinstance(data, dict) or "records" not in data:
            raise StreamError("snapshot: not an mpalloc snapshot (no 'records' key)")
        v = data.get("mps")
        if v != VERSION:
            raise StreamError(f"snapshot: version {v!r}; this host reads version {VERSION}")
        fmt = data.get("format", 1)
        recs = []
        if fmt == 1 and isinstance(data["records"], list):
            for i, r in enumerate(data["records"]):
                if not (isinstance(r, list) and len(r) == 2 and isinstance(r[0], str) and isinstance(r[1], dict)):
                    raise StreamError(f"snapshot: record {i} is not [kind, object]: {r!r:.80}")
                recs.append((r[0], r[1]))
        elif fmt == FILE_FORMAT and isinstance(data["records"], dict):
            for kind, lst in data["records"].items():
                if not (isinstance(lst, list) and all(isinstance(d, dict) for d in lst)):
                    raise StreamError(f"snapshot: records of kind {kind!r} are not a list of objects: {lst!r:.80}")
                recs.extend((kind, d) for d in lst)
            # begin first and end last, as in a stream (the tables and checks expect them there)
            recs.sort(key=lambda r: (r[0] == "end") - (r[0] == "begin"))
        else:
            raise StreamError(f"snapshot: format {fmt!r} with records of type {type(data['records']).__name__}; "
                              f"this host reads format 1 (a list) and {FILE_FORMAT} (keyed by kind)")
        return cls(records=recs)

    @classmethod
    def load(cls, path):
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            raise StreamError(f"snapshot: {p}: no such file") from None
        except json.JSONDecodeError as e:
            raise StreamError(f"snapshot: {p}: not valid JSON: {e}") from None
        return cls.from_json(data)


def parse(text, strict=True):
    """Parse device output into a Snapshot. strict: the stream must end with `end`."""
    snap = Snapshot()
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        i = line.find(TAG + " ")
        if i < 0:
            if line.strip():
                snap.log.append(line)
            continue
        parts = line[i + len(TAG) + 1:].split(" ", 2)
        if len(parts) != 3:
            raise StreamError(f"stats stream line {n}: expected '@@mps <version> <kind> <json>': {line!r:.100}")
        ver, kind, body = parts
        if ver != str(VERSION):
            raise StreamError(f"stats stream line {n}: version {ver}; this host reads version {VERSION} "
                              "(deploy matching firmware: mpalloc deploy)")
        try:
            d = json.loads(body)
        except json.JSONDecodeError as e:
            raise StreamError(f"stats stream line {n} ({kind}): bad JSON: {e}") from None
        if not isinstance(d, dict):
            raise StreamError(f"stats stream line {n} ({kind}): expected a JSON object")
        snap.records.append((kind, d))
    if strict:
        if not snap.records:
            tail = "\n".join(snap.log[-5:])
            raise StreamError("stats stream: no @@mps lines in the board's output" + (f":\n{tail}" if tail else ""))
        if not snap.complete:
            raise StreamError("stats stream: cut short (no 'end' record)")
    return snap


# -- a live board ------------------------------------------------------------------------
#
# Every command works on a fresh board: the firmware is deployed first where the board
# has a filesystem (unchanged files are skipped), copied module by module on a flat one
# (micro:bit), or sent through RAM where there is none; then mpalloc's start-up runs
# (the board profile, kernel_map over the managed window) so the first snapshot shows a
# board that has started, not an empty one.


def adapt(board, code):
    """Code written for the package layout, as this board imports it (its delivery says)."""
    return board.delivery.adapt(code)


# What stats/map/demo put on a board with a filesystem: the core and the stats extra
# (the demo is in it); no test helpers, no DragonFly family unless already there.
STATS_EXTRAS = ("stats",)


def prepare(board, modules=("mpalloc.stats", "mpalloc.board"), progress=None, deploy=True):
    """Make sure `modules` (and what they import) can be imported on the board, as
    its delivery strategy does it. deploy=False copies nothing: the board must
    have them (checked, StreamError). Returns {"mode", "copied", "sent"}."""
    if deploy:
        return board.delivery.stats_prepare(board, modules, progress=progress)
    if not board.delivery.dirs:
        raise StreamError("%s: --no-deploy is only possible on a board with a filesystem (this one takes "
                          "the modules stats needs through its %s delivery)" % (board.name, board.delivery.name))
    check = ("def _mpx(m):\n try:\n  __import__(m)\n  return 1\n except ImportError:\n  return 0\n"
             "print('@@miss', [m for m in %r if not _mpx(m)])\ndel _mpx\n" % (list(modules),))
    out = board.exec(adapt(board, check), timeout=60)
    for line in out.splitlines():
        if line.startswith("@@miss ") and line[7:].strip() != "[]":
            raise StreamError("%s: --no-deploy, but the board cannot import %s (deploy mpalloc first: "
                              "mpalloc deploy, or mpremote mip install)" % (board.name, line[7:].strip()))
    return {"mode": board.delivery.name, "copied": [], "sent": []}


def startup(board, profile=None):
    """Run mpalloc's start-up on the board (the board profile, kernel_map over the
    managed window: delivery.base.STARTUP_CODE) if it has not run yet."""
    return board.delivery.stats_startup(board, profile)


def take(board, segs=True):
    """One snapshot from a prepared board."""
    return board.delivery.stats_take(board, DUMP_CODE % ("True" if segs else "False"))
