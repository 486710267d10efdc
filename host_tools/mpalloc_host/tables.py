"""vmstat-style tables of a Snapshot (rich).

Columns follow NetBSD's `vmstat -m` (pools) and `vmstat -C` (pool caches) where
they exist, and DragonFly's `vmstat -m` for malloc types; vmem arenas, kmem size
classes and extent maps get tables of their own (NetBSD prints none for them).
Sizes on a microcontroller are small, so every size is in bytes (NetBSD prints K).

Each table has a `*_rows(snapshot)` function returning the plain rows (what the
tests check) and is drawn by `render(snapshot, console)`.
"""
from __future__ import annotations

import os

from rich import box
from rich.console import Console
from rich.table import Table

UINT_MAX = 0xFFFFFFFF

POOL_COLUMNS = ("Name", "Size", "Requests", "Fail", "Releases", "Pgreq", "Pgrel", "Npage",
                "Hiwat", "Minpg", "Maxpg", "Idle")
POOL_WIDE = ("InUse", "Avail", "PageSz", "Util")
CACHE_COLUMNS = ("Name", "Spin", "GrpSz", "Full", "Emty", "PoolLayer", "CacheLayer", "Hit%", "CpuLayer", "Hit%")
CPU_COLUMNS = ("Name", "CPU", "Hits", "Misses", "Gets", "Puts", "Hit%")
VMEM_COLUMNS = ("Name", "Quantum", "Spans", "Size", "InUse", "Free", "Largest", "Allocs", "Frees",
                "Imports", "Releases", "Fail", "FreeSeg", "BusySeg", "MaxSteps")
KMEM_COLUMNS = ("Size", "Cache", "InUse", "Allocs", "Frees")
EXTENT_COLUMNS = ("Extent", "Start", "End", "Bytes", "Owner")
MTYPE_COLUMNS = ("Type", "MemUse", "HighUse", "Limit", "Requests", "TypeLimit")


def _maxpg(v):
    if v is None or v >= UINT_MAX or v >= 2**31 - 1:
        return "inf"
    return v


def _pct(num, den):
    return "---" if not den else f"{100.0 * num / den:.1f}"


def _pagesz(snap, p):
    if p.get("pagesz"):
        return p["pagesz"]
    pages = snap.pages(p.get("name"))
    if pages:
        return pages[0][1]
    km = snap.uvm_km or {}
    return km.get("page_size") or 0


# -- vmstat -m ---------------------------------------------------------------------

def pool_rows(snap, verbose=False, wide=False):
    """Rows of vmstat -m, in name order; pools never asked for an item are left out
    unless verbose (as NetBSD does). Returns (rows, totals, summary)."""
    rows = []
    tot = dict(nget=0, nfail=0, nput=0, nout=0, nitems=0, npagealloc=0, npagefree=0, npages=0)
    inuse = total = 0
    for p in sorted(snap.pools, key=lambda d: d.get("name", "")):
        if p.get("nget", 0) == 0 and not verbose:
            continue
        pg = _pagesz(snap, p)
        row = [p.get("name"), p.get("size"), p.get("nget"), p.get("nfail"), p.get("nput"),
               p.get("npagealloc"), p.get("npagefree"), p.get("npages"), p.get("hiwat"),
               p.get("minpages"), _maxpg(p.get("maxpages")), p.get("nidle")]
        this_inuse = (p.get("nout") or 0) * (p.get("size") or 0)
        this_total = (p.get("npages") or 0) * pg
        if wide:
            row += [p.get("nout"), p.get("nitems"), pg, _pct(this_inuse, this_total)]
        rows.append(row)
        for k in tot:
            tot[k] += p.get(k) or 0
        inuse += this_inuse
        total += this_total
    summary = {"inuse": inuse, "total": total, "util": (100.0 * inuse / total) if total else 0.0}
    return rows, tot, summary


# -- vmstat -C ---------------------------------------------------------------------

def cache_rows(snap, verbose=False):
    """Rows of vmstat -C. PoolLayer = depot misses (gets that reached the pool),
    CacheLayer = depot hits + misses, CpuLayer = per-CPU hits + misses."""
    rows = []
    for pc in sorted(snap.pool_caches, key=lambda d: d.get("name", "")):
        cpus = pc.get("cpus") or []
        dep = pc.get("depot") or {}
        cpuhit = sum(c.get("hits", 0) for c in cpus)
        cpumiss = sum(c.get("misses", 0) for c in cpus)
        if "misses" in dep:
            pmiss = dep["misses"]
            dhit = dep.get("hits", max(cpumiss - pmiss, 0))
        else:  # older firmware: what reached the pool is the pool's own nget
            pool = snap.pool(pc.get("pool")) or {}
            pmiss = pool.get("nget", 0)
            dhit = max(cpumiss - pmiss, 0)
        if pmiss == 0 and not verbose:
            continue
        ctot = dhit + pmiss
        utot = cpuhit + cpumiss
        rows.append([pc.get("name"), dep.get("contention", 0), pc.get("magsize"), dep.get("full", 0),
                     dep.get("empty", 0), pmiss, ctot, _pct(dhit, ctot), utot, _pct(cpuhit, utot)])
    return rows


def cpu_rows(snap, verbose=False):
    """Per-CPU hits/misses of every cache; CPUs that never used a cache only with verbose."""
    rows = []
    for pc in sorted(snap.pool_caches, key=lambda d: d.get("name", "")):
        for i, c in enumerate(pc.get("cpus") or []):
            h, m = c.get("hits", 0), c.get("misses", 0)
            if not verbose and not (h or m or c.get("nget") or c.get("nput")):
                continue
            rows.append([pc.get("name"), i, h, m, c.get("nget", 0), c.get("nput", 0), _pct(h, h + m)])
    return rows


# -- the rest ----------------------------------------------------------------------

def vmem_rows(snap):
    return [[v.get("name"), v.get("quantum"), v.get("spans"), v.get("size"), v.get("inuse"), v.get("free"),
             v.get("largest_free"), v.get("nalloc"), v.get("nfree"), v.get("nimport"), v.get("nrelease"),
             v.get("nfail"), v.get("nfreesegs"), v.get("nbusysegs"), v.get("maxsteps")] for v in snap.vmem]


def kmem_rows(snap, verbose=False):
    """Size classes ever used (all with verbose), then the large allocations."""
    k = snap.kmem
    if not k:
        return []
    rows = [[c.get("size"), c.get("cache"), c.get("inuse"), c.get("nalloc"), c.get("nfree")]
            for c in k.get("classes") or [] if verbose or c.get("nalloc")]
    lg = k.get("large")
    if lg:
        rows.append(["large", "(vmem)", lg.get("inuse_bytes"), lg.get("nalloc"), lg.get("nfree")])
    return rows


UNMAPPED = "(unmapped)"  # mpalloc.board's owner of the address map's holes


def extent_rows(snap, verbose=False):
    """Regions with owners; the "(unmapped)" holes (claimed only so nobody allocates
    where no device is) only with verbose. Returns rows; hidden_rows(snap) counts the rest."""
    rows = []
    for ex in snap.extents:
        name = ex.get("name") or "?"
        for r in ex.get("regions") or []:
            s, e, owner = r[0], r[1], (r[2] if len(r) > 2 else None)
            if owner == UNMAPPED and not verbose:
                continue
            rows.append([name, f"0x{s:08x}", f"0x{e:08x}", e - s + 1, owner if owner is not None else "-"])
    return rows


def _bytes(n):
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f} {unit}"
    return f"{n} B"


def hidden_unmapped(snap):
    """(holes, bytes) of the "(unmapped)" regions extent_rows leaves out without verbose."""
    n = b = 0
    for ex in snap.extents:
        for r in ex.get("regions") or []:
            if len(r) > 2 and r[2] == UNMAPPED:
                n += 1
                b += r[1] - r[0] + 1
    return n, b


def mtype_rows(snap):
    """DragonFly vmstat -m: types never asked for memory are skipped."""
    rows = []
    for t in snap.malloc_types:
        if not t.get("nreq"):
            continue
        rows.append([t.get("desc") or t.get("name"), t.get("inuse"), t.get("hiwat"),
                     t.get("limit") if t.get("limit") else "inf", t.get("nreq"), t.get("nfail", 0)])
    return rows


def generic_rows(records):
    """For objcache/mpipe/zone: columns are the union of scalar keys, name first."""
    keys = []
    for d in records:
        for k, v in d.items():
            if k not in keys and not isinstance(v, (dict, list)):
                keys.append(k)
    if "name" in keys:
        keys.remove("name")
        keys.insert(0, "name")
    return keys, [[d.get(k) for k in keys] for d in records]


# -- drawing -----------------------------------------------------------------------

def _table(title, columns, rows, left=1, caption=None):
    t = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", caption=caption,
              caption_justify="left", pad_edge=False)
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i < left else "right", no_wrap=True)
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    return t


def tables(snap, verbose=False, wide=False):
    """The rich Tables for a snapshot, in vmstat's order (empty sections left out)."""
    out = []
    b = snap.begin
    rows, tot, summ = pool_rows(snap, verbose, wide)
    if rows:
        cols = POOL_COLUMNS[:5] + (POOL_WIDE[:2] if wide else ()) + POOL_COLUMNS[5:8] + \
            (POOL_WIDE[2:3] if wide else ()) + POOL_COLUMNS[8:] + (POOL_WIDE[3:] if wide else ())
        if wide:  # reorder rows to the column order above
            rows = [r[:5] + r[12:14] + r[5:8] + r[14:15] + r[8:12] + r[15:] for r in rows]
        t = _table("Memory resource pool statistics (vmstat -m)", cols, rows,
                   caption=f"In use {summ['inuse']} B, total allocated {summ['total']} B; "
                   f"utilization {summ['util']:.1f}%")
        trow = ["Totals", "", tot["nget"], tot["nfail"], tot["nput"]]
        if wide:
            trow += [tot["nout"], tot["nitems"]]
        trow += [tot["npagealloc"], tot["npagefree"], tot["npages"]]
        t.add_section()
        t.add_row(*[str(v) for v in trow], style="bold")
        out.append(t)
    rows = cache_rows(snap, verbose)
    if rows:
        out.append(_table("Pool cache statistics (vmstat -C)", CACHE_COLUMNS, rows))
        crow = cpu_rows(snap, verbose)
        if crow:
            out.append(_table("Pool cache per-CPU layer", CPU_COLUMNS, crow))
    rows = vmem_rows(snap)
    if rows:
        km = snap.uvm_km
        cap = None
        if km:
            cap = (f"uvm_km: page {km.get('page_size')} B, wired {km.get('wired')} B, "
                   f"pageable {km.get('pageable')} B, va-only {km.get('vaonly')} B; "
                   f"submaps: {', '.join(km.get('submaps') or []) or '-'}")
        out.append(_table("vmem arenas (bytes)", VMEM_COLUMNS, rows, caption=cap))
    rows = kmem_rows(snap, verbose)
    if rows:
        out.append(_table("kmem size classes" + (" (debug on)" if (snap.kmem or {}).get("debug") else ""),
                          KMEM_COLUMNS, rows, left=0))
    rows = extent_rows(snap, verbose)
    if rows:
        n, nb = (0, 0) if verbose else hidden_unmapped(snap)
        cap = (f"{n} unmapped hole{'s' if n != 1 else ''} ({_bytes(nb)}, claimed so nobody allocates where no "
               f"device is) not shown; -v shows them") if n else None
        out.append(_table("extent maps (regions and owners)", EXTENT_COLUMNS, rows, caption=cap))
    rows = mtype_rows(snap)
    if rows:
        out.append(_table("Memory statistics by type (DragonFly vmstat -m, bytes)", MTYPE_COLUMNS, rows))
    for kind, title in (("objcache", "objcache(9) caches"), ("mpipe", "mpipe(9) pipelines"),
                        ("zone", "zone(9) zones")):
        recs = snap.of(kind)
        if recs:
            keys, rows = generic_rows(recs)
            out.append(_table(title, keys, rows))
    h = snap.heap
    if h:
        tot = h.get("total") or 0
        out.append(_table("MicroPython gc heap (after a collection)", ("Platform", "Version", "Total", "Used",
                                                                      "Free", "Used%"),
                          [[h.get("platform"), h.get("version"), tot, h.get("alloc"), h.get("free"),
                            _pct(h.get("alloc") or 0, tot)]], left=2))
    rows = own_heap_rows(snap)
    if rows:
        out.append(_table("mpalloc's own heap beside what it manages (bytes of the gc heap)",
                          ("Part", "Bytes", "% of heap"), rows, left=1))
    if snap.errors:
        out.append(_table("readers that failed on the board", ("Kind", "Error"),
                          [[e.get("kind"), e.get("error")] for e in snap.errors]))
    return out


def own_heap_rows(snap):
    """The gc heap split into the managed window (a bytearray in the heap: the memory
    the allocators manage), the part of it handed out, and the rest of the used heap
    (mpalloc's code and metadata with the program's own objects: not told apart in a
    snapshot; `mpalloc footprint` measures them). [] without a heap or window record."""
    h = dict(snap.heap or {})
    b = snap.begin or {}
    if h.get("alloc") is None and b.get("heap_free", -1) >= 0:   # the begin record's figures
        h = {"alloc": b["heap_alloc"], "free": b["heap_free"], "total": b["heap_alloc"] + b["heap_free"]}
    mm = snap.memmap or {}
    win = (mm.get("managed") or {}).get("size")
    tot = h.get("total") or 0
    if not tot or not isinstance(win, int) or h.get("alloc") is None:
        return []
    km = [a for a in snap.vmem if a.get("name") == "kernel_map"]
    rows = [["managed window (what the allocators manage)", win, _pct(win, tot)]]
    if km:
        rows.append(["  of it handed out now (kernel_map in use)", km[0].get("inuse", 0), _pct(km[0].get("inuse", 0), tot)])
    rest = h["alloc"] - win
    rows.append(["code, metadata and the program (used - window)", rest, _pct(rest, tot)])
    rows.append(["free for the program", h.get("free"), _pct(h.get("free") or 0, tot)])
    return rows


def header(snap):
    b = snap.begin
    e = snap.end
    parts = [f"board {snap.board}", f"{b.get('impl', '?')} on {b.get('platform', '?')}"]
    if "hot_path" in b:  # which pool_cache hit pair runs (native / bytecode)
        parts.append(f"hot paths {b['hot_path'] or '- (pool_cache not imported)'}")
    if b.get("heap_free", -1) >= 0:
        parts.append(f"MicroPython heap {b['heap_alloc']} B used, {b['heap_free']} B free")
    if e.get("heap_cost", -1) >= 0:
        parts.append(f"snapshot cost {e['heap_cost']} B of heap" + (f", {e['ms']} ms" if "ms" in e else ""))
    return "; ".join(parts)


def fit_line(snap):
    """What the host's fit record says (flat small boards), or None."""
    f = snap.fit
    if not f:
        return None
    no = [a for a in f.get("allocators", []) if not a.get("fits")]
    yes = [a for a in f.get("allocators", []) if a.get("fits")]
    parts = []
    if no:
        parts.append("mpalloc allocators that do not fit here (bytes of source with what they import): %s; "
                     "each would be compiled beside mpalloc.stats (%d B) and compiled code stays in RAM, at "
                     "least 1 B of heap per byte of source, with %d B of gc heap free"
                     % (", ".join("%s %d B" % (a["module"], a["source"]) for a in no), f.get("stats_source", 0),
                        f.get("heap_free", 0)))
    if yes:
        parts.append("would fit but not loaded: %s" % ", ".join("%s %d B" % (a["module"], a["source"]) for a in yes))
    return "; ".join(parts) or None


def render(snap, console=None, verbose=False, wide=False):
    console = console or Console()
    if not console.is_terminal and "COLUMNS" not in os.environ and console.width < 160:
        console.width = 160  # piped or logged: whole columns, not rich's 80-column squeeze
    console.print(header(snap), style="dim", highlight=False)
    ts = tables(snap, verbose, wide)
    fl = fit_line(snap)
    if fl:
        console.print(fl, highlight=False)
    if not ts:
        console.print("no allocator is in use on this board yet (nothing to show)")
    for t in ts:
        console.print(t)
    return ts


def render_text(snap, width=160, verbose=False, wide=False):
    """The tables as plain text (for files, tests, and output that is not a terminal)."""
    c = Console(width=width, record=True, color_system=None, force_terminal=False, file=_Null())
    render(snap, c, verbose, wide)
    return c.export_text()


class _Null:
    def write(self, s):
        return len(s)

    def flush(self):
        pass
