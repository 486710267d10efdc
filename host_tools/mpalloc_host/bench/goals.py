"""The goals of issue #8, and issue #4's memory goals (G9, G10), checked against a
run's figures (never a test: a goal not met is a figure in the report, with who
owns it and by how much it misses)."""

MP = "micropython"


def _get(runs, key, target=MP):
    v = runs.get(target, {}).get(key)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _spread(runs, key):
    a = _get(runs, key + "_p25")
    b = _get(runs, key + "_p75")
    out = "batches p25-p75: %.3g-%.3g" % (a, b) if a is not None and b is not None else ""
    each = runs.get(MP, {}).get(key + "_runs")
    if isinstance(each, list) and len(each) > 1:
        out = "median of %d processes (%s); %s (medians over the processes)" % (
            len(each), ", ".join("%.3g" % x for x in each), out)
    return out


def _row(gid, text, owner, value, must, stretch=None, higher=False, fmt="%.3g", detail=""):
    """must/stretch are bounds: value <= bound (or >= with higher=True)."""
    if value is None:
        met = None
    else:
        met = value >= must if higher else value <= must
    smet = None
    if value is not None and stretch is not None:
        smet = value >= stretch if higher else value <= stretch
    miss = None
    if met is False:
        miss = (value / must) if must else None
    cmp = ">=" if higher else "<="
    return {"id": gid, "goal": text, "owner": owner, "value": value,
            "shown": "not measured" if value is None else fmt % value,
            "must": "%s %s" % (cmp, fmt % must), "stretch": None if stretch is None else "%s %s" % (cmp, fmt % stretch),
            "met": met, "stretch_met": smet, "miss_factor": miss, "detail": detail}


def evaluate(doc):
    runs = doc.get("runs", {})
    rows = []
    for mode, label in (("up", "1 CPU"), ("thread", "2 CPUs, vboard threads")):
        v = _get(runs, "%s.pool_cache_hit.cu" % mode)
        det = _spread(runs, "%s.pool_cache_hit.cu" % mode)
        cl, lp = _get(runs, "thread.floor_cpu_lookup.cu"), _get(runs, "thread.floor_lock_pair.cu")
        if mode == "thread" and cl is not None and lp is not None:
            det += ("; of which the emulation's thread -> CPU lookup %.2f and lock pair %.2f cu "
                    "(stand-ins for a CPUID read and disable_irq/enable_irq)" % (cl, lp))
        rows.append(_row("G1" + mode[0], "pool_cache magazine hit, cu per get or put (%s)" % label, "pool_cache",
                         v, 4, 3, detail=det))
    # the hit against MicroPython's own bytearray(64), same run, per path
    for mode, label, stretch in (("up", "1 CPU", 0.5), ("thread", "2 CPUs, vboard threads", None)):
        hit, ba = _get(runs, "%s.pool_cache_hit.cu" % mode), _get(runs, "%s.bytearray64.cu" % mode)
        bc = _get(runs, "%s.pool_cache_hit_bytecode.cu" % mode)
        path = runs.get(MP, {}).get("%s.pool_cache_path" % mode) or "bytecode"
        det = "path bound: %s; hit %s cu, bytearray(64) %s cu; bytecode path %s cu (%s x bytearray(64))" % (
            path, "-" if hit is None else "%.3g" % hit, "-" if ba is None else "%.3g" % ba,
            "-" if bc is None else "%.3g" % bc, "-" if bc is None or not ba else "%.3g" % (bc / ba))
        rows.append(_row("G20" + mode[0], "pool_cache hit / bytearray(64), ratio (%s)" % label, "pool_cache",
                         hit / ba if hit is not None and ba else None, 1.0, stretch, detail=det))
    # zero heap bytes per op (asked of the heap, mem_total; garbage is a separate column)
    for name, keys, owner in (
            ("pool", ["up.pool_get_put"], "pool"),
            ("pool_cache", ["up.pool_cache_hit", "up.pool_cache_2get2put", "thread.pool_cache_hit"], "pool_cache"),
            ("kmem <= 1 KB", ["kmem.s16", "kmem.s64", "kmem.s256", "kmem.s1024"], "kmem"),
            ("vmem M_NOWAIT", ["vmem.instant.H16", "vmem.instant.H256", "vmem.instant.H4096"], "vmem")):
        vals = [_get(runs, k + ".heap_bytes_per_op") for k in keys]
        vals = [x for x in vals if x is not None]
        garb = [_get(runs, k + ".garbage_bytes_per_op") for k in keys]
        garb = [x for x in garb if x is not None]
        locked = [runs.get(MP, {}).get(k + ".heap_locked_ok") for k in keys]
        det = "garbage left per op: %s; runs under heap_lock: %s; asked bytes are freed at once (call frames of functions over 11 words of state)" % (
            "%.3g" % max(garb) if garb else "-", "yes" if locked and all(x is True for x in locked) else
            ("no" if any(x is False for x in locked) else "-"))
        rows.append(_row("G2", "heap bytes asked per op, %s" % name, owner, max(vals) if vals else None, 0,
                         fmt="%.4g", detail=det))
    h16 = _get(runs, "vmem.instant.H16.cu")
    rows.append(_row("G3", "vmem alloc+free pair, cu (instant fit, 16 free segments)", "vmem", h16, 80, 50,
                     detail=_spread(runs, "vmem.instant.H16.cu")))
    top = None
    for h in (4096, 1024):
        x = _get(runs, "vmem.instant.H%d.cu" % h)
        if x is not None:
            top = (h, x)
            break
    ff16 = _get(runs, "firstfit.H16.cu")
    ffr = None
    det = ""
    if top and ff16:
        ffh = _get(runs, "firstfit.H%d.cu" % top[0])
        if ffh:
            ffr = ffh / ff16
            det = "first fit: %.3gx" % ffr
    flat = top[1] / h16 if top and h16 else None
    s0 = _get(runs, "vmem.instant.H16.maxsteps")
    s1 = _get(runs, "vmem.instant.H%d.maxsteps" % top[0]) if top else None
    if s0 is not None and s1 is not None:
        det += "; worst steps per op %d at 16, %d at %d" % (s0, s1, top[0])
    rows.append(_row("G4", "flatness: cost at %s free segments / cost at 16" % (top[0] if top else 4096), "vmem",
                     flat, 1.25, 1.1, detail=det))
    rows.append(_row("G4f", "first fit grows with the free segments (same ratio)", "(peer)", ffr, 2, higher=True,
                     detail="the textbook baseline, for comparison"))
    rows.append(_row("G5", "quantum cache: segment path cost / qcache hit cost", "vmem",
                     _get(runs, "vmem.small.segment_over_qcache"), 3, 8, higher=True))
    rows.append(_row("G6", "small allocations reaching the segment list (share)", "vmem",
                     _get(runs, "vmem.small.qcache.seglist_share"), 1e-3, 1e-4))
    u = _get(runs, "frag.instant.utilisation")
    ug = _get(runs, "frag.gcheap.utilisation")
    rows.append(_row("G7", "utilisation at first failure, mixed trace (instant fit)", "vmem", u, 0.85, higher=True,
                     detail="best fit %s, first fit %s" % (
                         _fmt(_get(runs, "frag.best.utilisation")), _fmt(_get(runs, "frag.firstfit.utilisation")))))
    rows.append(_row("G7g", "utilisation points above MicroPython's gc heap", "vmem",
                     (u - ug) * 100 if u is not None and ug is not None else None, 10, higher=True, fmt="%.1f",
                     detail="gc heap %s" % _fmt(ug)))
    worst = None
    bound = None
    wkey = ""
    mpr = runs.get(MP, {})
    for k, v in mpr.items():
        if k.endswith(".depot_per_op") and isinstance(v, (int, float)):
            mode = k.split(".", 1)[0]
            b = mpr.get(mode + ".depot_bound")
            if not isinstance(b, (int, float)) or not b:
                continue
            r = v / b
            if worst is None or r > worst:
                worst, bound, wkey = r, b, k
    rows.append(_row("G8", "depot accesses per op / (1/M), worst pattern", "pool_cache", worst, 1,
                     detail=("worst: %s (1/M = %.4g)" % (wkey.rsplit(".", 1)[0], bound)) if wkey else ""))
    # issue #4's memory goals
    wb = _get(runs, "env.word_bits")
    ib, pb = _get(runs, "pool.meta.item_bytes"), _get(runs, "pool.meta.page_bytes")
    det = ""
    if pb is not None and wb:
        det = "%.3g B per item; the page table adds %.3g B (%.2g words) per %s-byte page, so %.3g words per item at 8 items a page" % (
            ib, pb, pb / (wb / 8), _fmt(_get(runs, "pool.meta.pagesz")), (ib + pb / 8) / (wb / 8))
        tot = ["%s B: %.3g" % (k.split(".")[2][1:], v) for k, v in sorted(
            ((k, v) for k, v in runs.get(MP, {}).items() if k.startswith("pool.meta.s") and k.endswith(".bytes_per_item")),
            key=lambda kv: int(kv[0].split(".")[2][1:]))]
        if tot:
            det += "; whole pool (descriptor too) per item, %s pages: %s B" % (
                _fmt(_get(runs, "pool.meta.pages")), ", ".join(tot))
    sk = runs.get(MP, {}).get("pool.meta.skipped")
    if isinstance(sk, str):
        det = sk.replace("_", " ")
    rows.append(_row("G9", "pool metadata per item, machine words (free link + out bit)", "pool",
                     ib / (wb / 8) if ib is not None and wb else None, 1, detail=det))
    rows.append(_row("G10", "kmem internal waste, uniform random sizes 1-1024 B", "kmem",
                     _get(runs, "kmem.waste_uniform_1024"), 0.13,
                     detail="%s bytes requested in batches of 40 live" % _fmt(_get(runs, "kmem.waste_requests"))))
    return rows


def _fmt(v):
    return "-" if v is None else "%.3g" % v
