"""A picture of a board's memory from a Snapshot (matplotlib, Agg backend; PNG or SVG).

Three panels, top to bottom:

1. the board's SRAM regions/banks (to scale) with the window mpalloc manages;
2. the managed window (to scale): one row per vmem arena, segments coloured by
   owner (the pool whose page it is, the arena that imported it, the extent owner
   that claimed it, or plain "allocated"), free holes hatched grey; one row of
   pool pages coloured by pool;
3. every extent map (peripheral registers, SRAM claims): claimed regions in
   address order with owner and addresses (NOT to scale: registers sit far apart).

`draw(snapshot, path)` writes the file and returns a summary of what it drew
(rows and owners), which the tests and the CLI use.
"""
from __future__ import annotations

from pathlib import Path

FREE = "free"
FREE_COLOR = "#e8e8e8"


def _int(v):
    if isinstance(v, str):
        return int(v, 0)
    return int(v)


def _regions(lst):
    """[{name, base, size}] or [[name, base, size]] -> [(name, base, size)]."""
    out = []
    for r in lst or []:
        if isinstance(r, dict):
            out.append((r.get("name", "?"), _int(r["base"]), _int(r["size"])))
        else:
            out.append((str(r[0]), _int(r[1]), _int(r[2])))
    return out


def _hex(a):
    return f"0x{a:08x}"


def _size(n):
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    if n >= 10240:
        return f"{n / 1024:.1f} KiB"
    return f"{n} B"


# -- the model: what goes where ------------------------------------------------------

def _extent_maps(snap):
    """{name: [(start, end_incl, owner)]} from extent records, else from memmap."""
    maps = {}
    for ex in snap.extents:
        maps[ex.get("name") or f"extent{len(maps)}"] = [(r[0], r[1], r[2] if len(r) > 2 else None)
                                                        for r in ex.get("regions") or []]
    mm = snap.memmap or {}
    for name, regs in (mm.get("extents") or {}).items():
        if name not in maps:
            maps[name] = [(_int(r[0]), _int(r[1]), r[2] if len(r) > 2 else None) for r in regs]
    return maps


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


def owners_of_segments(snap):
    """{arena: [(addr, size, owner)]}, owner FREE for holes."""
    page_owner = []  # (addr, end, pool)
    for d in snap.of("pages"):
        for pg in d.get("pages") or []:
            page_owner.append((pg[0], pg[0] + pg[1], d.get("pool")))
    span_owner = []  # every arena's spans: a parent segment holding one is that arena's
    for d in snap.of("segs"):
        for sp in d.get("spans") or []:
            span_owner.append((sp[0], sp[0] + sp[1], "arena " + str(d.get("arena"))))
    ext_owner = []
    for name, regs in _extent_maps(snap).items():
        for s, e, o in regs:
            if o:
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
                o = find(ext_owner, a, a + n)
            segs.append((a, n, o or "allocated"))
        out[arena] = segs
    return out


def _colors(owners):
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    named = sorted(o for o in owners if o != FREE)
    col = {o: cmap((i * 2) % 20 if i < 10 else (i * 2 + 1) % 20) for i, o in enumerate(named)}
    col[FREE] = FREE_COLOR
    return col


# -- drawing ---------------------------------------------------------------------------

def _bar(ax, y, x0, w, color, label=None, hatch=None, text_min=0.06, xspan=1.0, fontsize=7):
    ax.broken_barh([(x0, w)], (y - 0.38, 0.76), facecolors=color, edgecolors="#444444", linewidth=0.4,
                   hatch=hatch)
    if label and w / xspan >= text_min:
        ax.text(x0 + w / 2, y, label, ha="center", va="center", fontsize=fontsize, clip_on=True)


def _pow2_ticks(ax, lo, hi, n=8):
    """x ticks at multiples of a power of two (addresses read as round numbers)."""
    step = 1
    while (hi - lo) / step > n:
        step *= 2
    first = (lo + step - 1) // step * step
    ax.set_xticks(list(range(first, hi + 1, step)))


def draw(snap, path, title=None):
    """Draw the picture of `snap` into path (.png or .svg). Returns a summary dict."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # keep text as text in SVG
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise ValueError(f"mpalloc map: output must end in .png or .svg, not {path.name!r}")
    mm = snap.memmap or {}
    sram = _regions(mm.get("sram"))
    window = managed_window(snap)
    segs = owners_of_segments(snap)
    maps = {k: v for k, v in _extent_maps(snap).items() if v}
    pages = [(d.get("pool"), d.get("pages") or []) for d in snap.of("pages")]
    pages = [(p, pg) for p, pg in pages if pg]

    owners = {o for lst in segs.values() for _, _, o in lst}
    owners |= {"pool " + str(p) for p, _ in pages}
    for regs in maps.values():
        owners |= {str(o) if o else "(unnamed)" for _, _, o in regs}
    colors = _colors(owners)

    panels = []
    if sram or window:
        panels.append("sram")
    if window and (segs or pages):
        panels.append("window")
    if maps:
        panels.append("extent")
    if not panels:
        raise ValueError("mpalloc map: the snapshot has no memory map, arena or extent to draw "
                         "(was anything set up on the board?)")
    heights = {"sram": 1 + 0.5 * bool(window), "window": 0.55 * (len(segs) + bool(pages)) + 0.9,
               "extent": 0.55 * len(maps) + 0.9}
    hr = [heights[p] for p in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(13, 1.2 + 1.1 * sum(hr)),
                             gridspec_kw={"height_ratios": hr})
    if len(panels) == 1:
        axes = [axes]
    board = snap.board
    fig.suptitle(title or f"mpalloc memory map: {board}", fontsize=12, fontweight="bold", x=0.01, ha="left")
    hexfmt = FuncFormatter(lambda v, _: f"0x{int(v):08x}")
    summary = {"path": str(path), "panels": panels, "rows": [], "owners": sorted(owners - {FREE})}

    for ax, panel in zip(axes, panels):
        ax.spines[["top", "right", "left"]].set_visible(False)
        if panel == "sram":
            regs = sram or [("managed window", window[0], window[1])]
            lo = min(b for _, b, _ in regs)
            hi = max(b + s for _, b, s in regs)
            if window:
                lo, hi = min(lo, window[0]), max(hi, window[0] + window[1])
            span = hi - lo
            labels = []
            y = 0
            if window:
                real = (mm.get("managed") or {}).get("real")
                lab = "managed by mpalloc" + ("" if real is None else (" (real)" if real else " (emulated)"))
                _bar(ax, y, window[0], window[1], "#f4a261",
                     f"mpalloc\n{_hex(window[0])} {_size(window[1])}", xspan=span, text_min=0.04)
                labels.append(lab)
                y += 1
            for name, b, s in regs:
                _bar(ax, y, b, s, "#a8dadc", f"{name}\n{_size(s)}", xspan=span, text_min=0.04)
            labels.append("SRAM")
            ax.set_yticks(range(len(labels)), labels)
            ax.set_xlim(lo, hi)
            _pow2_ticks(ax, lo, hi)
            ax.xaxis.set_major_formatter(hexfmt)
            ax.set_title("SRAM regions and banks (to scale)", fontsize=9, loc="left")
            summary["rows"] += labels
        elif panel == "window":
            base, size = window
            rows = []
            for arena, lst in segs.items():
                y = len(rows)
                for a, n, o in lst:
                    _bar(ax, y, a, n, colors[o], None if o == FREE else o, hatch="//" if o == FREE else None,
                         xspan=size)
                rows.append(f"arena {arena}")
            if pages:
                y = len(rows)
                for pool, pg in pages:
                    for a, n, used in pg:
                        _bar(ax, y, a, n, colors["pool " + str(pool)], None, xspan=size)
                rows.append("pool pages")
            ax.set_yticks(range(len(rows)), rows)
            ax.invert_yaxis()
            ax.set_xlim(base, base + size)
            _pow2_ticks(ax, base, base + size)
            ax.xaxis.set_major_formatter(hexfmt)
            ax.set_title(f"managed window {_hex(base)}-{_hex(base + size - 1)} ({_size(size)}): "
                         "arena segments by owner, free holes hatched (to scale)", fontsize=9, loc="left")
            summary["rows"] += rows
        else:
            rows = []
            ncol = max(len(v) for v in maps.values())
            for y, (name, regs) in enumerate(maps.items()):
                for i, (s, e, o) in enumerate(sorted(regs)):
                    o = str(o) if o else "(unnamed)"
                    _bar(ax, y, i, 0.94, colors[o], f"{o}\n{_hex(s)}\n-{_hex(e)}", xspan=ncol, text_min=0,
                         fontsize=6 if ncol > 8 else 7)
                rows.append(f"extent {name}")
            ax.set_yticks(range(len(rows)), rows)
            ax.invert_yaxis()
            ax.set_xlim(-0.05, ncol)
            ax.set_xticks([])
            ax.set_title("extent maps: claimed regions in address order, with owners (not to scale)",
                         fontsize=9, loc="left")
            summary["rows"] += rows
        ax.tick_params(axis="x", labelsize=7)
        ax.tick_params(axis="y", labelsize=8, length=0)

    handles = [Patch(facecolor=colors[o], edgecolor="#444444", label=o) for o in summary["owners"]]
    handles.append(Patch(facecolor=FREE_COLOR, edgecolor="#444444", hatch="//", label="free"))
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=8, frameon=False)
    nrow_leg = (len(handles) + 5) // 6
    fig.tight_layout(rect=(0, 0.04 + 0.03 * nrow_leg, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"Title": f"mpalloc memory map: {board}"}
    if fmt == "png":
        meta["Description"] = "owners: " + ", ".join(summary["owners"])
    fig.savefig(path, format=fmt, dpi=130, metadata=meta)
    plt.close(fig)
    return summary
