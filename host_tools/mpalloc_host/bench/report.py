"""BENCHMARKS.md, the terminal tables and the cost-vs-free-segments plot, all made
from the result document alone (so they can be regenerated from a saved JSON)."""

MP = "micropython"
CP = "cpython"

METHOD = """\
## Method

- **cu**: the time of one call of an empty two-argument Python function on the same
  interpreter, measured in the same run. Every batch is bracketed by two calibrations
  (empty loop and call loop) so drift of a shared machine hits numerator and denominator
  alike; a figure is the median of the batch means. The workload loop's own bookkeeping
  (ring index, stores) is timed separately without the allocator calls and subtracted.
  The fixed-size churn (workload 1, pool and pool_cache) runs in three processes and each
  figure is the median of theirs (all three are in the goal's detail): one process's
  figure moves by about 0.3 cu with where its heap lands and what the machine does.
- **heap bytes asked per op**: `micropython.mem_total()` deltas (bytes ever allocated),
  minus an empty loop's. This also counts call frames the VM takes from the heap and frees
  at once: a function whose arguments + locals + stack exceed 11 machine words gets its
  frame from the heap on every call (`VM_MAX_STATE_ON_STACK` in py/objfun.c), falling back
  to the C stack when the heap is locked. Such a frame leaves no garbage but can start a
  collection on a full heap. **garbage per op** = `gc.mem_alloc()` delta with collection
  disabled (what is left for the collector). **heap_lock**: the same loop run under
  `micropython.heap_lock()`.
- **depot accesses per op**: pool_cache depot exchanges + misses that looked in the
  depot, per get or put, against the bound 1/M (M = magazine size).
- **boundary-tag steps**: vmem's own counters (`vmem_stats`: steps, maxsteps); for first
  fit, free blocks looked at.
- **Workload 1, fixed-size churn**: 32-byte items; get+put pairs (magazine hits), two gets
  then two puts, bursts of k gets then k puts (k = 1, 2, M-1, M, M+1, 2M, 4M); kmem_alloc
  + kmem_free of 16, 64, 256, 1024 bytes.
- **Workload 2, flatness**: an arena with quantum 8; first 2H one-quantum blocks are
  allocated and every other one freed (H isolated free segments), then a steady live set
  of 32 allocations turns over: each op frees the oldest and allocates the next size of a
  fixed sequence (seed 1): 70 % 2-8, 25 % 9-32, 5 % 33-64 quanta. One op = one free + one
  alloc (a pair). The same sequence runs on the textbook first fit (address-ordered free
  list with coalescing, `tests/bench/benchcore.py`) and on the CPython peers.
- **Quantum cache**: sizes 1-8 quanta (uniform, seed 2) on an arena with qcache_max = 8
  quanta against one without; the share of small allocations that reached the segment
  list = (quantum-cache fills + drains) / small allocations.
- **Tail**: batches of 1,000 pairs with collection disabled (H = 256): median, p99 and worst
  batch mean; the worst case itself is bounded by the step counters, not by wall time.
- **Workload 3, fragmentation**: the mixed trace (seed 7): each step allocates one block
  of 70 % 8-64, 25 % 65-512, 5 % 513-4,096 bytes, then with probability 3/4 frees one live
  block chosen uniformly. Run until the first request that cannot be met; utilisation =
  live requested bytes / arena bytes (64 KB). MicroPython's gc heap runs the same trace
  with `bytearray(size)` in a fresh interpreter whose free heap is padded down to 64 KB.
- **Pool metadata (G9)**: five pools of 8, 16, 32, 64 and 128-byte items, each primed
  with the same 48 pages of 256 bytes and all kept alive, live heap (`gc.mem_alloc()`
  after a collection) before and after priming. The same page table serves 32 down to 2
  items a page, so the slope of heap over items is the per-item metadata; the rest, per
  page, is the page table's share. Not measured where `gc.collect()` frees nothing while
  a script runs (the webassembly port).
- **kmem waste (G10)**: 100 batches of 40 live kmem_alloc requests, sizes uniform in
  1..1024 (seed 1024); waste = 1 - requested bytes / (items in use x class size), from
  kmem_stats() before and after each batch.
"""


def _v(runs, key, target=MP, fmt="%.3g", dash="-"):
    v = runs.get(target, {}).get(key)
    if v is None:
        return dash
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, (int, float)):
        return fmt % v
    return str(v)


def _met(r):
    if r["met"] is None:
        return "not measured"
    if r["met"]:
        return "met" + (" (stretch too)" if r.get("stretch_met") else "")
    return "NOT met"


def _holes(runs, target, prefix):
    hs = set()
    for k in runs.get(target, {}):
        if k.startswith(prefix + ".H"):
            try:
                hs.add(int(k[len(prefix) + 2:].split(".", 1)[0]))
            except ValueError:
                pass
    return sorted(hs)


def _table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(x) for x in r) + " |")
    return "\n".join(out)


def goal_rows(doc):
    return [[r["id"], r["goal"], r["owner"], r["shown"], r["must"], r["stretch"] or "-", _met(r), r.get("detail") or ""]
            for r in doc.get("goals", [])]


def fixed_rows(doc):
    runs = doc["runs"]
    rows = []
    mp = runs.get(MP, {})
    pats = [("pool_cache_hit", "pool_cache get+put (magazine hit)"),
            ("pool_cache_2get2put", "pool_cache 2 gets, 2 puts"),
            ("pool_get_put", "pool_get + pool_put")]
    for p, label in pats:
        rows.append([label, _v(runs, "up.%s.cu" % p), _v(runs, "thread.%s.cu" % p),
                     _v(runs, "up.%s.heap_bytes_per_op" % p), _v(runs, "up.%s.garbage_bytes_per_op" % p),
                     _v(runs, "up.%s.heap_locked_ok" % p), _v(runs, "up.%s.depot_per_op" % p, fmt="%.4g")])
    # the path the rows above ran, the other path, and MicroPython's own allocator
    rows[0][0] += " [%s / %s]" % (mp.get("up.pool_cache_path", "bytecode"), mp.get("thread.pool_cache_path", "bytecode"))
    if "up.pool_cache_hit_bytecode.cu" in mp:
        rows.append(["pool_cache get+put, bytecode path", _v(runs, "up.pool_cache_hit_bytecode.cu"),
                     _v(runs, "thread.pool_cache_hit_bytecode.cu"), "-", "-", "-", "-"])
    if "up.bytearray64.cu" in mp:
        rows.append(["bytearray(64) (MicroPython's gc heap)", _v(runs, "up.bytearray64.cu"),
                     _v(runs, "thread.bytearray64.cu"), "-", "-", "-", "-"])
    M = mp.get("up.magsize")
    ks = sorted({int(k.split(".")[1][7:]) for k in mp if k.startswith("up.burst_k") and k.endswith(".depot_per_op")})
    for k in ks:
        rows.append(["burst k=%d (M=%s)" % (k, M), _v(runs, "up.burst_k%d.cu" % k), "-",
                     _v(runs, "up.burst_k%d.heap_bytes_per_op" % k), _v(runs, "up.burst_k%d.garbage_bytes_per_op" % k),
                     _v(runs, "up.burst_k%d.heap_locked_ok" % k),
                     "%s / %s" % (_v(runs, "up.burst_k%d.depot_per_op" % k, fmt="%.4g"),
                                  _v(runs, "thread.burst_k%d.depot_per_op" % k, fmt="%.4g"))])
    for z in (16, 64, 256, 1024):
        if "kmem.s%d.cu" % z in mp:
            rows.append(["kmem_alloc + kmem_free %d B" % z, _v(runs, "kmem.s%d.cu" % z), "-",
                         _v(runs, "kmem.s%d.heap_bytes_per_op" % z), _v(runs, "kmem.s%d.garbage_bytes_per_op" % z),
                         _v(runs, "kmem.s%d.heap_locked_ok" % z), "-"])
    if "kmem.error" in mp:
        rows.append(["kmem", "not measured: %s" % mp["kmem.error"], "", "", "", "", ""])
    return rows


FIXED_HEAD = ["pattern", "cu/op, 1 CPU", "cu/op, 2 CPUs", "heap B asked/op", "garbage B/op", "heap_lock", "depot/op"]


def flat_rows(doc):
    runs = doc["runs"]
    hs = sorted(set(_holes(runs, MP, "vmem.instant")) | set(_holes(runs, MP, "firstfit")))
    rows = []
    for h in hs:
        rows.append([h, _v(runs, "vmem.instant.H%d.freesegs" % h, fmt="%d"), _v(runs, "vmem.instant.H%d.cu" % h),
                     _v(runs, "vmem.instant.H%d.steps_per_op" % h), _v(runs, "vmem.instant.H%d.maxsteps" % h, fmt="%d"),
                     _v(runs, "vmem.instant.H%d.heap_bytes_per_op" % h), _v(runs, "vmem.instant.H%d.garbage_bytes_per_op" % h),
                     _v(runs, "firstfit.H%d.cu" % h), _v(runs, "firstfit.H%d.steps_per_op" % h),
                     _v(runs, "firstfit.H%d.maxsteps" % h, fmt="%d")])
    return rows


FLAT_HEAD = ["H (holes)", "free segs", "vmem cu/pair", "vmem steps/op", "vmem max steps", "vmem heap B asked/pair",
             "vmem garbage B/pair", "first fit cu/pair", "first fit steps/op", "first fit max steps"]


def cpython_rows(doc):
    runs = doc["runs"]
    hs = sorted(set(_holes(runs, CP, "vmem.instant")) | set(_holes(runs, CP, "peer.tlsf")) |
                set(_holes(runs, CP, "firstfit")))
    rows = []
    for h in hs:
        va = _v(runs, "peer.virtual_allocator.H%d.cu" % h, CP)
        if va == "-" and runs.get(CP, {}).get("peer.virtual_allocator.H%d.skipped" % h):
            va = "skipped (see notes)"
        rows.append([h, _v(runs, "vmem.instant.H%d.cu" % h, CP), _v(runs, "firstfit.H%d.cu" % h, CP),
                     _v(runs, "peer.tlsf.H%d.cu" % h, CP), va])
    return rows


CPY_HEAD = ["H (holes)", "mpalloc vmem (instant fit)", "first fit (benchcore)", "tlsfallocator (native)",
            "virtual-allocator"]


def frag_rows(doc):
    runs = doc["runs"]
    rows = []
    for tgt in (MP, CP):
        for name, label in (("instant", "mpalloc vmem, instant fit"), ("best", "mpalloc vmem, best fit"),
                            ("firstfit", "first fit (benchcore)"), ("gcheap", "MicroPython gc heap (bytearray)"),
                            ("tlsf", "tlsfallocator"), ("virtual_allocator", "virtual-allocator (first fit)")):
            k = "frag.%s.utilisation" % name
            if k in runs.get(tgt, {}):
                rows.append([label, tgt, _v(runs, k, tgt), _v(runs, "frag.%s.live_bytes" % name, tgt, "%d"),
                             _v(runs, "frag.%s.arena_bytes" % name, tgt, "%d"), _v(runs, "frag.%s.steps" % name, tgt, "%d"),
                             _v(runs, "frag.%s.failed" % name, tgt)])
            elif "frag.%s.error" % name in runs.get(tgt, {}):
                rows.append([label, tgt, "not measured: " + str(runs[tgt]["frag.%s.error" % name]), "", "", "", ""])
    return rows


FRAG_HEAD = ["allocator", "interpreter", "utilisation at first failure", "live bytes", "arena bytes", "steps",
             "failed"]


def _clock(mp):
    # ports whose ticks_us moves in coarse steps (webassembly: 1 ms)
    c = mp.get("calib.clock_us")
    if isinstance(c, (int, float)) and c > 1:
        return "; its clock moves in %s us steps, so every timed loop lasted at least 50 of them" % c
    return ""


def _noise(runs):
    lo = runs.get(MP, {}).get("calib.cu_ns_min")
    hi = runs.get(MP, {}).get("calib.cu_ns_max")
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo > 0 and hi / lo > 2:
        return ["", "**This run's calibrations varied %.0fx: the machine was shared and busy, so the cu figures "
                "are noisy (goal details give the p25-p75 spread of the batches; the JSON has every figure's). "
                "The counts (heap bytes, steps, depot accesses, utilisation) are exact and do not depend on the "
                "load.**" % (hi / lo)]
    return []


def problems(doc):
    """Errors and crashes the scripts reported (keys ending .error / .crashed / .skipped)."""
    out = []
    for tgt, figs in doc.get("runs", {}).items():
        for k, v in sorted(figs.items()):
            if k.endswith((".error", ".crashed", ".skipped")):
                out.append("%s: %s: %s" % (tgt, k, str(v).replace("_", " ")))
    return out


def markdown(doc, plot_path="docs/bench-cost.png"):
    m = doc["meta"]
    runs = doc["runs"]
    mp = runs.get(MP, {})
    cp = runs.get(CP, {})
    mach = m.get("machine", {})
    L = ["# Benchmarks", "",
         "Generated by `make bench` (`mpalloc bench --port %s`) from `%s`; do not edit by hand."
         % (m.get("port"), m.get("json", "the JSON result")), "",
         "- Date: %s" % m.get("date"),
         "- Machine: %s, %s cores, %s (%s)" % (mach.get("cpu"), mach.get("cores"), mach.get("system"), mach.get("arch")),
         "- MicroPython: %s %s on %s, %s-bit, heap counter %s; cu = %s ns (calibrations ranged %s-%s ns)"
         % (mp.get("env.impl", "-"), mp.get("env.version", "-"), m.get("port"), mp.get("env.word_bits", "-"),
            mp.get("env.heap_counter", "-"), _v(runs, "calib.cu_ns"), _v(runs, "calib.cu_ns_min"),
            _v(runs, "calib.cu_ns_max")) + _clock(mp),
         "- CPython: %s; cu = %s ns" % (cp.get("env.version", m.get("host_python")), _v(runs, "calib.cu_ns", CP)),
         "- Mode: %s; the whole run took %s s" % ("quick (fewer batches)" if m.get("quick") else "full", m.get("seconds")),
         ] + _noise(runs) + [
         "", "Per-operation costs are in cu (one empty Python call on the same interpreter, same run): ratios that "
         "carry between machines; counts (heap bytes, depot accesses, steps) are exact.", "",
         "## Goals", "", _table(["#", "goal", "owner", "figure", "must", "stretch", "status", "detail"], goal_rows(doc)),
         "", "## Fixed-size churn (MicroPython)", "", _table(FIXED_HEAP_HEAD, fixed_rows(doc)),
         "", "depot/op for bursts: 1 CPU / 2 CPUs; the bound is 1/M = %s." % _v(runs, "up.depot_bound", fmt="%.4g"),
         "", "## Native hot paths: code size", "",
         _table(["module", "bytecode .mpy"] + ["%s .mpy" % a for a in ("armv6m", "xtensawin", "x64")],
                [[k, v.get("bytecode", "-"), v.get("armv6m", "-"), v.get("xtensawin", "-"), v.get("x64", "-")]
                 for k, v in sorted(doc.get("native_size", {}).items())]),
         "", "## vmem against free-segment count (MicroPython)", "", _table(FLAT_HEAD, flat_rows(doc)), "",
         "![cost against free segments](%s)" % plot_path, "",
         "Best fit at H = 16: %s cu/pair, %s steps/op. Tail at H = 256 (batches of 1,000 pairs, gc disabled): "
         "median %s, p99 %s, worst %s cu/pair."
         % (_v(runs, "vmem.best.H16.cu"), _v(runs, "vmem.best.H16.steps_per_op"), _v(runs, "vmem.instant.H256.tail_p50"),
            _v(runs, "vmem.instant.H256.tail_p99"), _v(runs, "vmem.instant.H256.tail_max")), "",
         "## Quantum cache (MicroPython)", "",
         _table(["arena", "cu/pair", "heap B asked/pair", "garbage B/pair", "segment-list share"],
                [["qcache_max = 8 quanta", _v(runs, "vmem.small.qcache.cu"), _v(runs, "vmem.small.qcache.heap_bytes_per_op"),
                  _v(runs, "vmem.small.qcache.garbage_bytes_per_op"), _v(runs, "vmem.small.qcache.seglist_share", fmt="%.3g")],
                 ["no quantum cache", _v(runs, "vmem.small.segment.cu"), _v(runs, "vmem.small.segment.heap_bytes_per_op"),
                  _v(runs, "vmem.small.segment.garbage_bytes_per_op"), "1"]]), "",
         "## Side by side on CPython", "",
         "Neither peer runs on MicroPython: tlsfallocator is a native CPython extension (pybind11), virtual-allocator "
         "needs dataclasses, enum and typing. So they run beside mpalloc's vmem on CPython, same sequences, "
         "cu/pair:", "", _table(CPY_HEAD, cpython_rows(doc)), "",
         "## Fragmentation: utilisation at first failure", "", _table(FRAG_HEAD, frag_rows(doc)), ""]
    probs = problems(doc)
    notes = list(doc.get("notes", []))
    if probs or notes:
        L += ["## Notes", ""] + ["- " + n for n in notes] + ["- " + p for p in probs] + [""]
    L += [METHOD]
    return "\n".join(L)


FIXED_HEAP_HEAD = FIXED_HEAD


def series(doc):
    """{label: [(free segments, cu)]} for the plot."""
    runs = doc["runs"]
    out = {}
    for label, tgt, prefix in (("mpalloc vmem instant fit (MicroPython)", MP, "vmem.instant"),
                               ("first fit (MicroPython)", MP, "firstfit"),
                               ("mpalloc vmem instant fit (CPython)", CP, "vmem.instant"),
                               ("tlsfallocator (CPython, native)", CP, "peer.tlsf"),
                               ("virtual-allocator (CPython)", CP, "peer.virtual_allocator")):
        pts = []
        for h in _holes(runs, tgt, prefix):
            v = runs[tgt].get("%s.H%d.cu" % (prefix, h))
            if isinstance(v, (int, float)) and v > 0:
                pts.append((h, v))
        if pts:
            out[label] = pts
    return out


def plot(doc, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for label, pts in series(doc).items():
        style = "-o" if "MicroPython" in label else "--s"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("free segments in the arena (H)")
    ax.set_ylabel("cost of one alloc+free pair (cu)")
    ax.set_title("alloc+free pair cost against free segments (mpalloc instant fit vs first fit)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path))
    plt.close(fig)
    return path


def render(doc, console):
    """The goals and the main tables on a rich console."""
    from rich.table import Table

    def tab(title, head, rows):
        t = Table(title=title, title_justify="left")
        for h in head:
            t.add_column(h)
        for r in rows:
            t.add_row(*[str(x) for x in r])
        console.print(t)

    tab("Goals", ["#", "goal", "owner", "figure", "must", "stretch", "status", "detail"], goal_rows(doc))
    tab("Fixed-size churn (MicroPython)", FIXED_HEAD, fixed_rows(doc))
    tab("vmem vs free segments (MicroPython)", FLAT_HEAD, flat_rows(doc))
    tab("CPython side by side (cu/pair)", CPY_HEAD, cpython_rows(doc))
    tab("Utilisation at first failure", FRAG_HEAD, frag_rows(doc))
    for p in problems(doc):
        console.print("note: " + p, markup=False)
