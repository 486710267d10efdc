"""A picture of a board's memory from a Snapshot (matplotlib, Agg backend; PNG or SVG).

Three panels, top to bottom:

1. SRAM: the board's SRAM regions with their banks, what MicroPython holds there
   (.data/.bss, the gc heap, the stack: the profile's "reserved" entries) and the
   window mpalloc manages. To scale within each address range; the gaps between
   ranges are shortened. Aliases (a second window onto the same RAM, profile
   ``alias_of``) are named in the panel's title, never drawn as more RAM.
2. the managed window (to scale): one row per vmem arena, segments coloured by
   owner kind (kmem(9) one colour, each other pool, DMA buffers, imported
   spans), free holes hatched; one row of pool pages whose solid part is the
   items in use; one row breaking kmem down by size class (cells labelled with
   the class and its bytes, not to scale).
3. every extent map (peripheral registers, SRAM claims), each once: claimed
   regions in address order with owner, block name and address (NOT to scale:
   registers sit far apart); the stretches between claims as narrow cells, grey
   when only "(unmapped)" holes (claimed so nobody allocates where no device is).

Labels go inside a box when they fit there, else above it with a leader line
(SRAM panel) or are left to the legend. SVG text stays text (searchable).

`draw(snapshot, path)` writes the file and returns a summary of what it drew
(panels, rows, owners), which the tests and the CLI use.
"""
from __future__ import annotations

from pathlib import Path

FREE = "free"
UNMAPPED = "(unmapped)"  # mpalloc.board's owner of address-map holes
FREE_COLOR = "#f4f4f4"
FREE_HATCH = "////"
EDGE = "#555555"
C_SRAM = "#d7e8ef"
C_MICROPYTHON = "#a9b8c9"
C_GC_HEAP = "#c3d0dd"
C_MPALLOC = "#f4a261"
C_UNMAPPED = "#dddddd"
C_ALLOC = "#a1887f"
C_KMEM = "#2f6fae"  # every kmem(9) size class: one colour, the breakdown row tells them apart
C_BANK = "#3d5a66"  # dashed bank boundaries
POOL_COLORS = ("#2ca02c", "#17becf", "#bcbd22", "#8c564b", "#7f7f7f", "#98df8a")
DRIVER_COLORS = ("#d62728", "#9467bd", "#e377c2", "#ff7f0e", "#1f77b4", "#8c564b")
ARENA_COLORS = ("#6a3d9a", "#cab2d6", "#b15928")


def _int(v):
    if isinstance(v, str):
        return int(v, 0)
    return int(v)


def _regions(lst):
    """[{name, base, size, ...}] or [[name, base, size]] -> [dict(name, base, size, ...)]."""
    out = []
    for r in lst or []:
        if isinstance(r, dict):
            d = dict(r)
            d["name"] = r.get("name", "?")
            d["base"], d["size"] = _int(r["base"]), _int(r["size"])
        else:
            d = {"name": str(r[0]), "base": _int(r[1]), "size": _int(r[2])}
        out.append(d)
    return out


def _hex(a):
    return f"0x{a:08x}"


def _size(n):
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    if n >= 10240:
        return f"{n / 1024:.1f} KiB"
    return f"{n} B"


# -- the model: what goes where ------------------------------------------------------

def _extent_maps(snap):
    """{name: [(start, end_incl, owner)]}: the extent records, then memmap's extents
    that are not the same map again (board.memory_map() repeats them)."""
    maps = {}
    for ex in snap.extents:
        maps[ex.get("name") or f"extent{len(maps)}"] = [(_int(r[0]), _int(r[1]), r[2] if len(r) > 2 else None)
                                                        for r in ex.get("regions") or []]
    seen = [sorted(v) for v in maps.values()]
    mm = snap.memmap or {}
    for name, regs in (mm.get("extents") or {}).items():
        regs = [(_int(r[0]), _int(r[1]), r[2] if len(r) > 2 else None) for r in regs]
        if name in maps or sorted(regs) in seen:
            continue
        maps[name] = regs
        seen.append(sorted(regs))
    return maps


def _extent_bounds(snap):
    """{name: (start, end_incl)} where the extent records say."""
    return {ex.get("name"): (_int(ex["start"]), _int(ex["end"])) for ex in snap.extents
            if ex.get("start") is not None and ex.get("end") is not None}


def managed_window(snap):
    """(base, size) of what mpalloc manages: memmap's, else the span of the arenas."""
    mm = snap.memmap or {}
    m = mm.get("managed")
    if m:
        return _int(m["base"]), _int(m["size"])
    lo, hi = None, None
    for s in snap.of("segs"):
        for a, n, *_ in s.get("spans") or s.get("segs") or []:
            lo = a if lo is None else min(lo, a)
            hi = a + n if hi is None else max(hi, a + n)
    if lo is None:
        return None
    return lo, hi - lo


def _window_real(snap):
    m = (snap.memmap or {}).get("managed") or {}
    for k in ("real", "real_address"):
        if k in m:
            return bool(m[k])
    return None


def sram_layout(snap):
    """(regions, aliases): the SRAM regions to draw ({name, base, size, banks, striped,
    bank_bytes}) and the aliases not drawn ({name, base, size, alias_of})."""
    mm = snap.memmap or {}
    regs, aliases = [], []
    for r in _regions(mm.get("sram")):
        (aliases if r.get("alias_of") else regs).append(r)
    prof = _profile(snap)
    if not regs and prof:  # no memmap record: the profile's SRAM
        for r in prof.get("memory") or []:
            if r.get("kind") == "sram":
                d = {"name": r["name"], "base": _int(r["base"]), "size": _int(r["size"])}
                if r.get("alias_of"):
                    d["alias_of"] = r["alias_of"]
                    aliases.append(d)
                else:
                    regs.append(d)
    # bank details from the profile where the stream gives only a count
    pbanks = {r["name"]: r.get("banks") for r in (prof or {}).get("memory") or [] if r.get("banks")}
    for r in regs:
        b = pbanks.get(r["name"]) or {}
        if "banks" not in r and b:
            r["banks"] = b.get("count")
            r["striped"] = b.get("striped", False)
        if isinstance(r.get("banks"), dict):
            b, r["banks"] = r["banks"], r["banks"].get("count")
            r["striped"] = b.get("striped", False)
        if b.get("bytes") is not None:
            r["bank_bytes"] = _int(b["bytes"])
        elif r.get("banks"):
            r["bank_bytes"] = r["size"] // int(r["banks"])
    regs.sort(key=lambda r: r["base"])
    return regs, aliases


def micropython_regions(snap):
    """What MicroPython holds in SRAM: memmap's "reserved" if the board sends it, else
    the profile's (named: .data/.bss, gc heap, stack), else the SRAM extent map's
    non-mpalloc claims. [(name, base, size)]"""
    mm = snap.memmap or {}
    res = _regions(mm.get("reserved"))
    if not res:
        res = _regions((_profile(snap) or {}).get("reserved"))
    if res:
        return [(r["name"], r["base"], r["size"]) for r in res]
    out = []
    w = managed_window(snap)
    for name, regs in _extent_maps(snap).items():
        if "sram" not in name.lower():
            continue
        for s, e, o in regs:
            if w and w[0] <= s and e < w[0] + w[1]:
                continue  # a claim inside mpalloc's window is not MicroPython's
            if o and o not in ("mpalloc", UNMAPPED):
                out.append((str(o), s, e - s + 1))
    return out


_PROFILE_CACHE = {}


def _profile(snap):
    """The board's profile from boards/ (for what the stream leaves out), or None."""
    name = snap.board
    if name not in _PROFILE_CACHE:
        try:
            from . import profiles

            _PROFILE_CACHE[name] = profiles.load(name)
        except Exception:  # unknown board or a broken profile: draw without it
            _PROFILE_CACHE[name] = None
    return _PROFILE_CACHE[name]


def owners_of_segments(snap):
    """{arena: [(addr, size, owner)]}, owner FREE for holes. An allocated segment
    belongs to the pool whose page it is ("pool NAME"), else to the arena that
    imported it ("arena NAME"), else to the driver whose DMA buffer it is
    ("DMA OWNER", board.memory_map()'s dma list), else to an extent claim lying in
    the window, else it is "allocated"."""
    window = managed_window(snap)
    page_owner = []  # (addr, end, pool)
    for d in snap.of("pages"):
        for pg in d.get("pages") or []:
            page_owner.append((pg[0], pg[0] + pg[1], d.get("pool")))
    span_owner = []  # every arena's spans: a parent segment holding one is that arena's
    for d in snap.of("segs"):
        for sp in d.get("spans") or []:
            span_owner.append((sp[0], sp[0] + sp[1], "arena " + str(d.get("arena"))))
    dma_owner = [(_int(a), _int(a) + _int(n), "DMA " + str(o))
                 for a, n, o in ((snap.memmap or {}).get("dma") or [])]
    ext_owner = []
    for name, regs in _extent_maps(snap).items():
        for s, e, o in regs:
            if not o or o == UNMAPPED:
                continue
            if window and s <= window[0] and window[0] + window[1] <= e + 1:
                continue  # the claim on the whole window (mpalloc's) says nothing
            ext_owner.append((s, e + 1, str(o)))

    def find(table, a, end):  # overlapping
        for s, e, o in table:
            if s < end and a < e:
                return o
        return None

    def inside(table, a, end):  # lying within [a, end)
        for s, e, o in table:
            if a <= s and e <= end:
                return o
        return None

    out = {}
    for d in snap.of("segs"):
        arena = d.get("arena")
        segs = []
        for a, n, state in d.get("segs") or []:
            if state == "free":
                segs.append((a, n, FREE))
                continue
            o = inside(page_owner, a, a + n)
            if o is not None:
                o = "pool " + str(o)
            else:
                o = inside([t for t in span_owner if t[2] != "arena " + str(arena)], a, a + n)
            if o is None:
                o = find(dma_owner, a, a + n)
            if o is None:
                o = find(ext_owner, a, a + n)
            segs.append((a, n, o or "allocated"))
        out[arena] = segs
    return out


def _kmem_size(owner):
    digits = "".join(ch for ch in owner.rsplit("-", 1)[-1] if ch.isdigit())
    return int(digits) if digits else 0


def owner_kind(owner):
    """The legend group of a window owner: "free", "kmem", "dma", "pool", "arena", "other"."""
    if owner == FREE:
        return "free"
    if owner.startswith("pool kmem-"):
        return "kmem"
    if owner.startswith("DMA "):
        return "dma"
    if owner.startswith("pool "):
        return "pool"
    if owner.startswith("arena "):
        return "arena"
    return "other"


def _driver(owner):
    """The driver a claim or DMA buffer belongs to: 'uart0-dma' and 'DMA uart0' -> 'uart0'."""
    o = owner[4:] if owner.startswith("DMA ") else owner
    return o.split("-", 1)[0].split(":")[-1]


class _Palette:
    """Colours by owner kind: every kmem size class one blue (a breakdown row tells
    them apart: 16 shades cannot be), each other pool its own green/teal, drivers
    (claims and their DMA buffers) a strong hue each, MicroPython slate, mpalloc
    sand, unmapped grey, free white-hatched."""

    def __init__(self, window_owners, claim_owners):
        kmem = sorted({o for o in window_owners if owner_kind(o) == "kmem"}, key=_kmem_size)
        self.col = {}
        for o in kmem:
            self.col[o] = C_KMEM
        self.kmem = kmem
        for i, o in enumerate(sorted(o for o in window_owners if owner_kind(o) == "pool")):
            self.col[o] = POOL_COLORS[i % len(POOL_COLORS)]
        for i, o in enumerate(sorted(o for o in window_owners if owner_kind(o) == "arena")):
            self.col[o] = ARENA_COLORS[i % len(ARENA_COLORS)]
        drivers = sorted({_driver(o) for o in claim_owners if o not in ("micropython", "mpalloc", UNMAPPED)}
                         | {_driver(o) for o in window_owners if owner_kind(o) in ("dma", "other")
                            and o != "allocated"})
        self.driver = {d: DRIVER_COLORS[i % len(DRIVER_COLORS)] for i, d in enumerate(drivers)}

    def __call__(self, owner):
        if owner in self.col:
            return self.col[owner]
        if owner == FREE:
            return FREE_COLOR
        if owner == UNMAPPED:
            return C_UNMAPPED
        if owner == "micropython":
            return C_MICROPYTHON
        if owner == "mpalloc":
            return C_MPALLOC
        if owner == "allocated":
            return C_ALLOC
        d = self.driver.get(_driver(owner))
        if d is None:
            return C_ALLOC
        if owner.startswith("DMA ") or _driver(owner) == owner:
            return d
        return _lighter(d)  # a driver's second claim (uart0-dma): its hue, lighter


def _lighter(color, f=0.45):
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return (r + (1 - r) * f, g + (1 - g) * f, b + (1 - b) * f)


def _ink(color):
    """Black or white text on a fill."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"


class _Scale:
    """Address -> x: linear within each run of adjacent ranges, the gaps between runs
    shortened to `gap` of the drawn bytes."""

    def __init__(self, ranges, gap=0.05):
        runs = []
        for lo, hi in sorted(ranges):
            if runs and lo <= runs[-1][1]:
                runs[-1][1] = max(runs[-1][1], hi)
            else:
                runs.append([lo, hi])
        total = sum(hi - lo for lo, hi in runs) or 1
        self.gap = total * gap
        self.pieces = []  # (lo, hi, x0)
        x = 0
        for lo, hi in runs:
            self.pieces.append((lo, hi, x))
            x += hi - lo + self.gap
        self.width = max(x - self.gap, 1)

    def x(self, a):
        prev = None
        for lo, hi, x0 in self.pieces:
            if a < lo:
                return x0 - self.gap / 2 if prev is not None else x0
            if a <= hi:
                return x0 + (a - lo)
            prev = (hi, x0 + hi - lo)
        return prev[1] if prev else 0

    def gaps(self):
        """x of the middle of each shortened gap."""
        return [x0 - self.gap / 2 for _, _, x0 in self.pieces[1:]]


# -- labels ----------------------------------------------------------------------------

class _Labels:
    """Labels placed after the layout is fixed: inside a box if a variant fits (at the
    given font size or one smaller), else (if allowed) one line above the box with a
    leader line, else nothing (the legend names the colour)."""

    def __init__(self):
        self.req = []

    def add(self, ax, x0, x1, y, h, variants, color, fontsize=7, outside=None, weight="normal", lane=0.22):
        if outside and len(variants) > 1:  # a bare name inside is worth less than the full line outside
            variants = variants[:-1]
        self.req.append((ax, x0, x1, y, h, variants, color, fontsize, outside, weight, lane))

    def place(self, fig):
        renderer = fig.canvas.get_renderer()
        lanes = {}  # (ax, lane y) -> (ax, [[box centre px, text width px, box x, box top, text, size]])
        for ax, x0, x1, y, h, variants, color, fs, outside, weight, lane in self.req:
            (px0, py0), (px1, py1) = ax.transData.transform([(x0, y - h / 2), (x1, y + h / 2)])
            bw, bh = abs(px1 - px0) - 6, abs(py1 - py0) - 2
            placed = False
            for v in variants:
                for f in (fs, fs - 1):
                    t = ax.text((x0 + x1) / 2, y, v, ha="center", va="center", fontsize=f, color=_ink(color),
                                fontweight=weight, linespacing=1.1)
                    bb = t.get_window_extent(renderer)
                    if bb.width <= bw and bb.height <= bh:
                        placed = True
                        break
                    t.remove()
                if placed:
                    break
            if placed or not outside:
                continue
            lane_y = y - h / 2 - lane
            t = ax.text(0, lane_y, outside, ha="left", va="center", fontsize=fs)
            tw = t.get_window_extent(renderer).width + 16
            t.remove()
            lanes.setdefault((id(ax), lane_y), (ax, []))[1].append([(px0 + px1) / 2, tw, (x0 + x1) / 2, y - h / 2,
                                                                     outside, fs])
        # one line above the boxes, in x order, pushed apart, kept inside the axes;
        # a leader line from each to the top of its box
        for (_, lane_y), (ax, items) in lanes.items():
            items.sort()
            axl, axr = ax.transAxes.transform([(0, 0), (1, 0)])[:, 0]
            pos = []
            edge = axl
            for cx, tw, *_ in items:
                left = max(cx - tw / 2, edge)
                pos.append(left)
                edge = left + tw
            over = edge - axr
            if over > 0:
                pos = [p - over for p in pos]
                for i in range(len(pos) - 2, -1, -1):
                    pos[i] = min(pos[i], pos[i + 1] - items[i][1])
            inv = ax.transData.inverted()
            for left, (cx, tw, bx, by, text, fs) in zip(pos, items):
                tx = inv.transform((left + tw / 2, 0))[0]
                ax.annotate(text, xy=(bx, by), xytext=(tx, lane_y), ha="center", va="center", fontsize=fs,
                            annotation_clip=False,
                            arrowprops={"arrowstyle": "-", "color": "#333333", "lw": 0.6, "shrinkA": 2,
                                        "shrinkB": 0})


# -- drawing ---------------------------------------------------------------------------

def _box(ax, x0, w, y, h, color, hatch=None, edge=EDGE, lw=0.4):
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((x0, y - h / 2), w, h, facecolor=color, edgecolor=edge, linewidth=lw, hatch=hatch))


def outside_arenas(snap):
    """Arenas whose spans lie outside the managed window (an exec arena in IRAM, ...):
    [(arena, [(addr, size)], inuse bytes)]; drawn in the SRAM panel's mpalloc row."""
    window = managed_window(snap)
    out = []
    for d in snap.of("segs"):
        spans = [(sp[0], sp[1]) for sp in d.get("spans") or []]
        if window and spans and all(a + n <= window[0] or a >= window[0] + window[1] for a, n in spans):
            inuse = sum(n for _, n, st in d.get("segs") or [] if st != "free")
            out.append((d.get("arena"), spans, inuse))
    return out


def _panel_sram(ax, snap, labels, legend):
    regs, aliases = sram_layout(snap)
    window = managed_window(snap)
    mp = micropython_regions(snap)
    others = outside_arenas(snap)
    ranges = [(r["base"], r["base"] + r["size"]) for r in regs]
    if window:
        ranges.append((window[0], window[0] + window[1]))
    ranges += [(a, a + n) for _, spans, _ in others for a, n in spans]
    ranges += [(b, b + n) for _, b, n in mp]
    sc = _Scale(ranges)
    H = 0.56
    rows = []
    y = 0
    # SRAM regions with their banks
    if regs:
        for r in regs:
            x0, x1 = sc.x(r["base"]), sc.x(r["base"] + r["size"])
            _box(ax, x0, x1 - x0, y, H, C_SRAM)
            nb, bb = int(r.get("banks") or 1), r.get("bank_bytes")
            bank = ""
            if nb > 1 and r.get("striped"):
                bank = f"{nb} banks x {_size(bb or r['size'] // nb)}, word-striped"
            elif nb > 1:
                bank = f"{nb} banks x {_size(bb or r['size'] // nb)}"
                for i in range(1, nb):  # bank boundaries (not striped: banks are address ranges)
                    bx = sc.x(r["base"] + i * (bb or r["size"] // nb))
                    ax.plot([bx, bx], [y - H / 2, y + H / 2], color="#3d5a66", lw=1.0, ls=(0, (3, 2)))
            full = f"{r['name']}  {_size(r['size'])}\n{_hex(r['base'])}-{_hex(r['base'] + r['size'] - 1)}"
            labels.add(ax, x0, x1, y, H, [full + ("\n" + bank if bank else ""), full,
                                          f"{r['name']} {_size(r['size'])}", r["name"]], C_SRAM,
                       outside=f"{r['name']} {_hex(r['base'])} {_size(r['size'])}", weight="normal")
        for a in bank_boundaries(regs):  # where one region's banks end and the next region's begin
            bx = sc.x(a)
            ax.plot([bx, bx], [y - H / 2 - 0.08, y + H / 2 + 0.08], color=C_BANK, lw=1.2, ls=(0, (3, 2)))
        rows.append("SRAM")
        striped = [r["name"] for r in regs if int(r.get("banks") or 1) > 1 and r.get("striped")]
        legend.append(("bank", C_SRAM, None, "SRAM region; dashed line: bank boundary" +
                       (f" ({', '.join(striped)} word-striped over its banks: no boundary inside)" if striped else "")))
        y += 1
    if mp:
        gc = None
        for name, b, s in mp:
            x0, x1 = sc.x(b), sc.x(b + s)
            c = C_GC_HEAP if "gc heap" in name.lower() else C_MICROPYTHON
            _box(ax, x0, x1 - x0, y, H, c)
            if "gc heap" in name.lower():
                gc = (x0, x1)
            lx0, lx1 = x0, x1
            if window and "gc heap" in name.lower():  # the label beside the window drawn inside the heap
                wx0, wx1 = sc.x(window[0]), sc.x(window[0] + window[1])
                if wx0 < x1 and wx1 > x0:
                    lx0, lx1 = max((x0, wx0), (wx1, x1), key=lambda p: p[1] - p[0])
            labels.add(ax, lx0, lx1, y, H, [f"{name}  {_size(s)}\n{_hex(b)}-{_hex(b + s - 1)}", f"{name}  {_size(s)}",
                                            name], c, outside=f"{name} {_hex(b)} {_size(s)}")
        rows.append("MicroPython")
        legend.append(("patch", C_MICROPYTHON, None, "MicroPython (.data/.bss, stack; lighter: its gc heap)"))
        if window:  # where mpalloc's window sits in MicroPython's memory
            x0, x1 = sc.x(window[0]), sc.x(window[0] + window[1])
            _box(ax, x0, x1 - x0, y, H, "none", edge="#c0621c", lw=1.0)
            ax.patches[-1].set_linestyle((0, (3, 2)))
            inside = gc is not None and gc[0] <= x0 and x1 <= gc[1]
            where = "in the gc heap" if inside else "in MicroPython's RAM"
            labels.add(ax, x0, x1, y, H, [f"mpalloc's window: a bytearray\n{where}", "mpalloc's window\n" + where,
                                          "mpalloc's window"], C_GC_HEAP)
        b = snap.begin
        if gc and (b.get("heap_alloc") or -1) >= 0 and (b.get("heap_free") or -1) >= 0:
            used, free = int(b["heap_alloc"]), int(b["heap_free"])
            who = "the virtual board's (host) heap" if (snap.memmap or {}).get("virtual") else "gc heap"
            of = (snap.one("heap") or {}).get("total")  # flat small boards: gc total after a collect
            ax.text(gc[1], y + H / 2 + 0.03, f"{who} as the board reports it now: {_size(used)} used, "
                    f"{_size(free)} free" + (f" of {_size(of)}" if of else ""), ha="right", va="top",
                    fontsize=6.5, color="#333333")
        y += 1
    if window:
        real = _window_real(snap)
        x0, x1 = sc.x(window[0]), sc.x(window[0] + window[1])
        _box(ax, x0, x1 - x0, y, H, C_MPALLOC)
        how = "" if real is None else (" (real address)" if real else " (emulated address)")
        labels.add(ax, x0, x1, y, H, [f"managed by mpalloc  {_size(window[1])}\n{_hex(window[0])}-"
                                      f"{_hex(window[0] + window[1] - 1)}{how}",
                                      f"mpalloc {_size(window[1])}\n{_hex(window[0])}", "mpalloc"], C_MPALLOC,
                   outside=f"mpalloc {_hex(window[0])} {_size(window[1])}{how}")
        for arena, spans, inuse in others:  # arenas of mpalloc elsewhere (exec RAM, ...)
            for a, n in spans:
                x0, x1 = sc.x(a), sc.x(a + n)
                c = _lighter(C_MPALLOC, 0.4)
                _box(ax, x0, x1 - x0, y, H, c)
                labels.add(ax, x0, x1, y, H, [f"arena {arena}  {_size(n)}\n{_hex(a)}, {_size(inuse)} in use",
                                              f"arena {arena}\n{_size(n)}", f"{arena}"], c,
                           outside=f"arena {arena} {_hex(a)} {_size(n)}, {_size(inuse)} in use")
        rows.append("mpalloc")
        legend.append(("patch", C_MPALLOC, None, "managed by mpalloc: a bytearray inside MicroPython's gc heap "
                       "(dashed above: where it sits)"))
        if others:
            legend.append(("patch", _lighter(C_MPALLOC, 0.4), None,
                           "an mpalloc arena outside the window (" + ", ".join(o[0] for o in others) + ")"))
        y += 1
    ax.set_ylim(y - 0.5 + 0.1, -1.0)
    ax.set_xlim(0, sc.width)
    ax.set_yticks(range(len(rows)), rows)
    # address ticks: where each run and region starts and ends (thinned where crowded)
    ticks = sorted({sc.x(a): a for lo, hi, _ in sc.pieces for a in (lo, hi)}.items())
    extra = [(sc.x(a), a) for r in regs for a in (r["base"], r["base"] + r["size"])]
    keep = []
    for x, a in sorted(ticks + extra):
        if all(abs(x - k[0]) > 0.09 * sc.width for k in keep):
            keep.append((x, a))
    ax.set_xticks([k[0] for k in keep], [_hex(k[1]) for k in keep])
    for gx in sc.gaps():
        ax.text(gx, 0.0, "\u2248", transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=12,
                color="#555555")
    total = sum(r["size"] for r in regs)
    title = (f"SRAM: {_size(total)} in {len(regs)} region{'s' if len(regs) != 1 else ''}, with what uses it "
             if regs else "mpalloc's window and MicroPython's claims (the snapshot names no SRAM regions) ") + \
        "(to scale" + ("; \u2248 = gap between address ranges shortened)" if sc.gaps() else ")")
    if aliases:
        title += "\naliases, the same RAM again (not drawn, not counted): " + "; ".join(
            f"{a['name']} at {_hex(a['base'])} = {a['alias_of']}" for a in aliases)
    ax.set_title(title, fontsize=8.5, loc="left")
    return rows, aliases


def _panel_window(ax, snap, segs, pages, pal, labels, legend):
    base, size = managed_window(snap)
    H = 0.7
    rows = []
    totals = {}  # owner -> bytes
    for arena, lst in segs.items():
        y = len(rows)
        for a, n, o in lst:
            _box(ax, a, n, y, H, pal(o), hatch=FREE_HATCH if o == FREE else None, lw=0.3)
            totals[o] = totals.get(o, 0) + n
        # label runs of one kind (kmem classes together): the biggest that fit
        runs = []
        for a, n, o in lst:
            k = owner_kind(o)
            key = "kmem" if k == "kmem" else o
            if runs and runs[-1][2] == key and runs[-1][0] + runs[-1][1] == a:
                runs[-1][1] += n
                runs[-1][3].append(o)
            else:
                runs.append([a, n, key, [o]])
        for a, n, key, owners in sorted(runs, key=lambda r: -r[1])[:12]:
            o = owners[0]
            name = "kmem" if key == "kmem" else ("free" if o == FREE else o)
            cnt = f"{len(owners)} x {_size(owners and n // len(owners))}" if key.startswith("DMA ") else ""
            labels.add(ax, a, a + n, y, H, [f"{name}\n{_size(n)} at {_hex(a)}", f"{name} {_size(n)}" +
                                            (f" ({cnt})" if cnt else ""), f"{name}\n{_size(n)}", name],
                       "#ffffff" if o == FREE else pal(o), fontsize=7)
        rows.append(f"arena {arena}")
    if pages:
        y = len(rows)
        ipp = {p.get("name"): p.get("itemsperpage") for p in snap.pools}
        for pool, pg in pages:
            c = pal("pool " + str(pool))
            for a, n, used in pg:
                _box(ax, a, n, y, H, _lighter(c, 0.7), lw=0.3)
                k = ipp.get(pool) or 0
                if k:
                    f = min(max(used / k, 0), 1)
                    if f:
                        from matplotlib.patches import Rectangle

                        ax.add_patch(Rectangle((a, y + H / 2 - H * f), n, H * f, facecolor=c, linewidth=0))
        rows.append("pool pages")
    kmem_bytes = _kmem_breakdown(snap, segs, pal)
    if kmem_bytes:
        y = len(rows)
        n = len(kmem_bytes)
        w = size / n
        for i, (o, b) in enumerate(kmem_bytes):
            x0 = base + i * w
            _box(ax, x0, w, y, H * 0.8, C_KMEM if b else _lighter(C_KMEM, 0.8), lw=0.5, edge="#ffffff")
            cls = o.rsplit("-", 1)[-1].lstrip("0") or "0"
            labels.add(ax, x0, x0 + w, y, H * 0.8, [f"{cls} B\n{_size(b)}", f"{cls}\n{_size(b)}", cls],
                       C_KMEM if b else _lighter(C_KMEM, 0.8), fontsize=6.5)
        rows.append("kmem by class")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(base, base + size)
    step = 1
    while size / step > 8:
        step *= 2
    first = (base + step - 1) // step * step
    ax.set_xticks(list(range(first, base + size + 1, step)), [_hex(t) for t in range(first, base + size + 1, step)])
    ax.set_title(f"managed window {_hex(base)}-{_hex(base + size - 1)} ({_size(size)}): "
                 "arena segments by owner, free holes hatched (to scale)", fontsize=8.5, loc="left")
    # legend: owner kinds with their bytes
    kmem = [o for o in pal.kmem if o in totals or any(o == "pool " + str(p) for p, _ in pages)]
    if kmem:
        kb = sum(totals.get(o, 0) for o in kmem)
        names = kmem[0] if len(kmem) == 1 else f"{kmem[0]} .. {kmem[-1]}"
        legend.append(("patch", C_KMEM, None,
                       f"kmem(9): {len(kmem)} size class{'es' if len(kmem) > 1 else ''} ({names}), {_size(kb)}; "
                       "'kmem by class': bytes of each class (not to scale)"))
    for kind, what in (("pool", "pool"), ("dma", "DMA buffers"), ("arena", "imported by"), ("other", "")):
        for o in sorted(x for x in totals if owner_kind(x) == kind):
            if kind == "pool":
                text = f"{o}, {_size(totals[o])}"
            elif kind == "dma":
                text = f"DMA buffers of {o[4:]}, {_size(totals[o])}"
            elif kind == "arena":
                text = f"span imported by {o}, {_size(totals[o])}"
            else:
                text = f"{o}, {_size(totals[o])}"
            legend.append(("patch", pal(o), None, text))
    if pages:
        legend.append(("pages", None, None, "pool page: solid part = share of its items in use"))
    free = totals.get(FREE, 0)
    legend.append(("patch", FREE_COLOR, FREE_HATCH, "free hole (hatched): nobody holds it" +
                   ("" if len(segs) > 1 else f", {_size(free)} in the window" if free
                    else " (none left in the window)")))
    return rows, totals


def _kmem_breakdown(snap, segs, pal):
    """[(owner, bytes in the window)] for each kmem size class, smallest first."""
    b = {}
    for lst in segs.values():
        for _, n, o in lst:
            if owner_kind(o) == "kmem":
                b[o] = b.get(o, 0) + n
    return [(o, b.get(o, 0)) for o in pal.kmem if o in b]


def _periph_names(snap, s, e, owner):
    names = [p["name"] for p in _regions((snap.memmap or {}).get("peripherals"))
             if p["base"] <= e and s <= p["base"] + p["size"] - 1]
    names = [n for n in names if n.split()[0].lower() != str(owner).split("-")[-1].lower()
             or str(owner).lower() == n.lower()]
    if not names:
        return ""
    return names[0].split()[0] if len(names) == 1 else f"{names[0].split()[0]} +{len(names) - 1}"


def _panel_extents(ax, snap, maps, pal, labels, legend, per_row=11):
    bounds = _extent_bounds(snap)
    H = 0.8
    GAP = 0.3
    rows = []
    y = 0
    width = 0
    kinds = set()
    claim_owners = []
    for name, regs in maps.items():
        regs = sorted(regs)
        claims = [r for r in regs if r[2] != UNMAPPED]
        holes = [r for r in regs if r[2] == UNMAPPED]
        lo, hi = bounds.get(name, (regs[0][0] if regs else 0, regs[-1][1] if regs else 0))
        # cells: claims, and between them the stretch they leave (unmapped/free)
        cells = []
        pos = lo
        for s, e, o in claims:
            if s > pos:
                cells.append(("gap", pos, s - 1, None))
            cells.append(("claim", s, e, o))
            pos = e + 1
        if pos <= hi:
            cells.append(("gap", pos, hi, None))
        chunks, cur, n = [], [], 0
        for c in cells:
            if c[0] == "claim" and n == per_row:
                chunks.append(cur)
                cur, n = [], 0
            cur.append(c)
            n += c[0] == "claim"
        chunks.append(cur)
        for i, chunk in enumerate(chunks):
            x = 0
            for kind, s, e, o in chunk:
                if kind == "gap":
                    unm = sum(min(e, he) - max(s, hs) + 1 for hs, he, _ in holes if hs <= e and s <= he)
                    free = (e - s + 1) - unm
                    if free > 0 and unm > 0:  # some of each: grey above, hatched below
                        _box(ax, x, GAP, y - H / 4, H / 2, C_UNMAPPED, lw=0.3)
                        _box(ax, x, GAP, y + H / 4, H / 2, FREE_COLOR, hatch=FREE_HATCH, lw=0.3)
                        kinds.update(("free", "unmapped"))
                    elif free > 0:
                        _box(ax, x, GAP, y, H, FREE_COLOR, hatch=FREE_HATCH, lw=0.3)
                        kinds.add("free")
                    else:
                        _box(ax, x, GAP, y, H, C_UNMAPPED, lw=0.3)
                        kinds.add("unmapped")
                    x += GAP
                    continue
                o = str(o) if o else "(unnamed)"
                claim_owners.append(o)
                c = pal(o)
                _box(ax, x + 0.03, 0.94, y, H, c)
                pn = _periph_names(snap, s, e, o)
                sz = _size(e - s + 1)
                head = f"{o}" + (f" ({pn})" if pn else "")
                labels.add(ax, x + 0.03, x + 0.97, y, H,
                           [f"{o}\n{pn}\n{_hex(s)}\n-{_hex(e)}" if pn else f"{o}\n{_hex(s)}\n-{_hex(e)}",
                            f"{o}\n{pn}\n{_hex(s)}\n{sz}" if pn else f"{o}\n{_hex(s)}\n{sz}",
                            f"{o}\n{_hex(s)}\n{sz}", f"{head}\n{_hex(s)}", f"{o}\n{_hex(s)}", o],
                           c, fontsize=7)
                x += 1
            width = max(width, x)
            rows.append(f"extent {name}" if i == 0 else f"extent {name} ({i + 1})")
            y += 1
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(-0.02, max(width, 8) + 0.02)  # few claims: cells keep their width
    ax.set_xticks([])
    ax.set_title("extent maps: claims in address order with owner, block and address (not to scale); "
                 "narrow cells: the space between them", fontsize=8.5, loc="left")
    for o in sorted(set(claim_owners), key=lambda o: (o != "micropython", o != "mpalloc", o)):
        what = {"micropython": "MicroPython's own (REPL UART, clocks, timers, ...)",
                "mpalloc": "mpalloc's managed window"}.get(o, "")
        legend.append(("patch", pal(o), None, f"claimed by {o}" + (f": {what}" if what else "")))
    if "unmapped" in kinds:
        legend.append(("patch", C_UNMAPPED, None, "between claims, grey: unmapped, no device there "
                                                  "(claimed so nobody allocates it)"))
    if "free" in kinds:
        legend.append(("patch", FREE_COLOR, FREE_HATCH, "between claims, hatched: unclaimed, free to claim "
                                                        "(half and half: some of each)"))
    return rows, claim_owners


def _legend(fig, legend, y0, height):
    from matplotlib.legend_handler import HandlerTuple
    from matplotlib.patches import Patch, Rectangle

    handles, texts = [], []
    seen = set()
    for kind, color, hatch, text in legend:
        if text in seen:
            continue
        seen.add(text)
        if kind == "kmem":
            pick = color if len(color) <= 5 else [color[int(i * (len(color) - 1) / 4)] for i in range(5)]
            handles.append(tuple(Patch(facecolor=c, edgecolor=EDGE, linewidth=0.4) for c in pick))
        elif kind == "bank":
            from matplotlib.lines import Line2D

            handles.append((Patch(facecolor=color, edgecolor=EDGE, linewidth=0.4),
                            Line2D([0], [0], color=C_BANK, lw=1.2, ls=(0, (3, 2)))))
        elif kind == "pages":
            handles.append((Patch(facecolor=_lighter(POOL_COLORS[0], 0.7), edgecolor=EDGE, linewidth=0.4),
                            Rectangle((0, 0), 1, 0.5, facecolor=POOL_COLORS[0])))
        else:
            handles.append(Patch(facecolor=color, edgecolor=EDGE, hatch=hatch, linewidth=0.4))
        texts.append(text)
    ncol = 2
    fig.legend(handles, texts, loc="upper left", bbox_to_anchor=(0.02, y0), ncol=ncol, fontsize=7.5,
               frameon=False, handler_map={tuple: HandlerTuple(ndivide=None, pad=0)}, handlelength=3.2,
               columnspacing=2.0, title="legend", title_fontsize=8, alignment="left")
    return texts


def overlapping_texts(fig):
    """[(text, text)] of labels in one panel whose boxes overlap (should be none)."""
    from matplotlib.text import Text

    renderer = fig.canvas.get_renderer()
    out = []
    for ax in fig.axes:
        # Text's own extent: an annotation's would include its leader line
        tx = [(t.get_text(), Text.get_window_extent(t, renderer).padded(-1)) for t in ax.texts
              if t.get_visible() and t.get_text().strip()]
        for i in range(len(tx)):
            for j in range(i + 1, len(tx)):
                if tx[i][1].overlaps(tx[j][1]):
                    out.append((tx[i][0], tx[j][0]))
    return out


def bank_boundaries(regs):
    """Addresses where one SRAM region ends and the next begins (drawn dashed)."""
    return sorted({r["base"] for r in regs} & {r["base"] + r["size"] for r in regs})


def draw(snap, path, title=None):
    """Draw the picture of `snap` into path (.png or .svg). Returns a summary dict."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # keep text as text in SVG
    matplotlib.rcParams["hatch.linewidth"] = 0.5
    import matplotlib.pyplot as plt

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise ValueError(f"mpalloc map: output must end in .png or .svg, not {path.name!r}")
    regs, _ = sram_layout(snap)
    window = managed_window(snap)
    segs = owners_of_segments(snap)
    outside = {o[0] for o in outside_arenas(snap)}
    segs = {k: v for k, v in segs.items() if k not in outside}
    maps = {k: v for k, v in _extent_maps(snap).items() if v}
    pages = [(d.get("pool"), d.get("pages") or []) for d in snap.of("pages")]
    pages = [(p, pg) for p, pg in pages if pg]

    win_owners = {o for lst in segs.values() for _, _, o in lst} | {"pool " + str(p) for p, _ in pages}
    claim_owners = {str(o) if o else "(unnamed)" for regs_ in maps.values() for _, _, o in regs_}
    pal = _Palette(win_owners, claim_owners)

    panels = []
    if regs or window:
        panels.append("sram")
    if window and (segs or pages):
        panels.append("window")
    if maps:
        panels.append("extent")
    if not panels:
        raise ValueError("mpalloc map: the snapshot has no memory map, arena or extent to draw "
                         "(was anything set up on the board?)")
    # layout in inches: panel = title + rows + x tick labels
    nrows = {"sram": (bool(regs) + bool(micropython_regions(snap)) + bool(window)) * 0.7 + 0.45,
             "window": (len(segs) + bool(pages) + bool(_kmem_breakdown(snap, segs, pal))) * 0.5,
             "extent": sum(max(1, -(-sum(1 for r in v if r[2] != UNMAPPED) // 11)) for v in maps.values()) * 0.62}
    title_in = {"sram": 0.55, "window": 0.35, "extent": 0.35}
    below_in = {"sram": 0.35, "window": 0.35, "extent": 0.15}
    W = 14.0
    top, left, right = 0.55, 2.0, 0.5
    legend = []
    # legend rows are known only after drawing: estimate, then size the figure
    n_leg = 6 + len({o for o in win_owners if owner_kind(o) not in ("kmem",)}) + len(claim_owners)
    leg_in = 0.35 + 0.19 * ((n_leg + 1) // 2)
    Hh = top + sum(title_in[p] + nrows[p] + below_in[p] for p in panels) + leg_in + 0.2
    fig = plt.figure(figsize=(W, Hh))
    board = snap.board
    fig.suptitle(title or f"mpalloc memory map: {board}", fontsize=13, fontweight="bold", x=0.01, y=1 - 0.12 / Hh,
                 ha="left", va="top")
    labels = _Labels()
    summary = {"path": str(path), "panels": panels, "rows": [], "owners": [], "aliases": [], "extents": list(maps)}
    ytop = Hh - top
    for panel in panels:
        h = nrows[panel]
        ytop -= title_in[panel]
        ax = fig.add_axes([left / W, (ytop - h) / Hh, 1 - (left + right) / W, h / Hh])
        ytop -= h + below_in[panel]
        ax.spines[["top", "right", "left"]].set_visible(False)
        ax.tick_params(axis="x", labelsize=7)
        ax.tick_params(axis="y", labelsize=8, length=0)
        if panel == "sram":
            rows, aliases = _panel_sram(ax, snap, labels, legend)
            summary["aliases"] = [a["name"] for a in aliases]
        elif panel == "window":
            rows, _ = _panel_window(ax, snap, segs, pages, pal, labels, legend)
        else:
            rows, _ = _panel_extents(ax, snap, maps, pal, labels, legend)
        summary["rows"] += rows
    summary["owners"] = sorted((win_owners | claim_owners) - {FREE, UNMAPPED})
    summary["legend"] = _legend(fig, legend, (ytop + 0.1) / Hh, leg_in)
    labels.place(fig)
    summary["overlaps"] = overlapping_texts(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"Title": f"mpalloc memory map: {board}"}
    if fmt == "png":
        meta["Description"] = "owners: " + ", ".join(summary["owners"])
    fig.savefig(path, format=fmt, dpi=120, metadata=meta)
    plt.close(fig)
    return summary
