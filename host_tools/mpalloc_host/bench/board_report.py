"""The board-sized bench (tests/bench/bench_board.py) as a table and as a
BENCHMARKS.md section of its own.

A board run is a result document whose meta.kind is "board": the figures a
board's user asks for, measured on the board as board.init() sets it up, in cu
and (where the board's clock is known) in cycles of that clock per operation.
Its Markdown goes between two markers in BENCHMARKS.md, one section per port, so
`mpalloc bench --port emu:rp2040 --markdown BENCHMARKS.md` replaces only its own
section and `make bench` (the full suite, which rewrites the file) keeps it.
"""
import re

MP = "micropython"

ROWS = (
    ("pool_cache_hit", "pool_cache_get + pool_cache_put, magazine hit (the pair this board binds)"),
    ("pool_get_put", "pool_get + pool_put (PR_NOWAIT, 32-byte items)"),
    ("kmem64", "kmem_alloc + kmem_free, 64 B"),
    ("vmem", "vmem_alloc + vmem_free, 256 B on kernel_map (instant fit)"),
    ("qcache", "vmem_alloc + vmem_free, 32 B through a quantum cache (qcache_max 8 quanta)"),
    ("bytearray64", "bytearray(64) on the bench heap: MicroPython's own gc heap (one allocation, freed by collection)"),
    ("bytearray64_fresh", "bytearray(64) on a fresh heap (just after the soft reset, before mpalloc and the bench)"),
)
# the allocators whose cost is compared with bytearray(64)'s
ALLOCATORS = ("pool_cache_hit", "pool_get_put", "kmem64", "vmem", "qcache")
CORES = (
    ("core0", "core 0 alone (core 1 idle)"),
    ("core1", "core 1 alone (core 0 asleep in time.sleep_ms)"),
    ("both_core0", "core 0, both cores churning"),
    ("both_core1", "core 1, both cores churning"),
)


def is_board(doc):
    return (doc.get("meta") or {}).get("kind") == "board"


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _f(v, fmt):
    return fmt % v if _num(v) else "-"


def _cyc(v):
    return "{:,.0f}".format(v) if _num(v) else "-"


def _ratio(a, b):
    return "%.2fx" % (a / b) if _num(a) and _num(b) and b > 0 else "-"


def has_bytecode(doc):
    mp = doc["runs"].get(MP, {})
    return any(k.endswith(".bytecode.cu") for k in mp)


def head(doc):
    h = ["operation (per call: a get+put pair's time / 2)", "cu", "cu p25-p75", "cycles / op",
         "x bytearray(64), bench heap", "x bytearray(64), fresh heap"]
    if has_bytecode(doc):
        h += ["bytecode path: cu", "bytecode: cycles / op", "bytecode: x bytearray(64) fresh"]
    return h


def rows(doc):
    mp = doc["runs"].get(MP, {})
    bc = has_bytecode(doc)
    ba, fresh = mp.get("board.bytearray64.cu"), mp.get("board.bytearray64_fresh.cu")
    out = []
    for key, label in ROWS:
        k = "board.%s" % key
        cu = mp.get(k + ".cu")
        alloc = key in ALLOCATORS
        r = [label, _f(cu, "%.3g"),
             "%s-%s" % (_f(mp.get(k + ".cu_p25"), "%.3g"), _f(mp.get(k + ".cu_p75"), "%.3g"))
             if _num(mp.get(k + ".cu_p25")) else "-",
             _cyc(mp.get(k + ".cycles")),
             _ratio(cu, ba) if alloc else "-", _ratio(cu, fresh) if alloc else "-"]
        if bc:
            b = mp.get(k + ".bytecode.cu")
            r += [_f(b, "%.3g"), _cyc(mp.get(k + ".bytecode.cycles")), _ratio(b, fresh) if alloc else "-"]
        out.append(r)
    return out


CORE_HEAD = ["pool_cache hit, per core (per call: a pair's time / 2)", "cycles / op", "cu",
             "x bytearray(64), fresh heap"]


def core_rows(doc):
    """The per-core hit table ([] where the board ran no second core)."""
    mp = doc["runs"].get(MP, {})
    if not any(_num(mp.get("board.pool_cache_hit.%s.cycles" % k)) for k, _ in CORES):
        return []
    fresh = mp.get("board.bytearray64_fresh.cycles")
    return [[label, _cyc(mp.get("board.pool_cache_hit.%s.cycles" % k)),
             _f(mp.get("board.pool_cache_hit.%s.cu" % k), "%.3g"),
             _ratio(mp.get("board.pool_cache_hit.%s.cycles" % k), fresh)] for k, label in CORES]


def crashed(doc):
    mp = doc["runs"].get(MP, {})
    return ["%s: %s" % (k, v) for k, v in sorted(mp.items()) if k.endswith(".crashed")]


def facts(doc):
    m = doc["meta"]
    mp = doc["runs"].get(MP, {})
    return [
        "- Run: `mpalloc bench --port %s%s` on %s (%s, %s cores); %s s of wall time%s%s"
        % (m.get("port"), " --quick" if m.get("quick") else "", m.get("date"),
           (m.get("machine") or {}).get("cpu"), (m.get("machine") or {}).get("cores"), m.get("seconds"),
           "; the bench script ran %s ms of the board's clock" % _cyc(mp.get("board.bench_ms"))
           if _num(mp.get("board.bench_ms")) else "",
           ", commit %s" % m["commit"] if m.get("commit") else ""),
        "- MicroPython %s on %s, %s-bit; board.init() bound mode %s, hit pair %s; managed window %s B "
        "(from %s B free before mpalloc, %s B free after board.init())"
        % (mp.get("env.version", "-"), mp.get("env.platform", "-"), mp.get("env.word_bits", "-"),
           mp.get("board.mode", "-"), mp.get("board.hit_path", "-"), _f(mp.get("board.window_bytes"), "%d"),
           _f(mp.get("board.free_at_start"), "%d"), _f(mp.get("board.free_after_init"), "%d")),
        "- cu = %s ns of the board's clock (one empty Python call, same run); cycles / op = cu x that x %s MHz%s"
        % (_f(mp.get("calib.cu_ns"), "%.4g"), _f(m.get("mhz"), "%g"),
           " (emulated: time.ticks_us() counts 125 cycles per us of the emulated 125 MHz chip)"
           if str(m.get("port", "")).startswith("emu:") else ""),
        "- pool_cache hit: %s B of MicroPython heap asked per operation, runs with the heap locked: %s%s"
        % (_f(mp.get("board.pool_cache_hit.heap_bytes_per_op"), "%.3g"), mp.get("board.pool_cache_hit.heap_locked_ok", "-"),
           "; bytecode path: %s B, heap locked: %s" % (
               _f(mp.get("board.pool_cache_hit.bytecode.heap_bytes_per_op"), "%.3g"),
               mp.get("board.pool_cache_hit.bytecode.heap_locked_ok", "-")) if has_bytecode(doc) else ""),
        "- Hot paths (mpalloc.native.paths()): %s%s"
        % (mp.get("board.native_paths", "-"), "; the bytecode columns ran after native.off(): %s"
           % mp.get("board.bytecode_paths") if has_bytecode(doc) else " (no native path: one column)"),
    ] + footprint_facts(mp)


def footprint_facts(mp):
    """mpalloc's own heap (footprint.measure after the bench, a soft reset first)."""
    if not _num(mp.get("footprint.code")):
        return []
    return ["- mpalloc's own heap (`mpalloc footprint`'s measure, after a soft reset): code %s B (the core "
            "modules imported), set-up %s B (board.init() beyond the window: intr, kernel_map, maps), managed "
            "window %s B; %s B of %s B left free to the program"
            % tuple(_cyc(mp.get("footprint." + k)) for k in ("code", "setup", "window", "free", "total"))]


def markdown(doc):
    """The section (with its markers) for this board run."""
    port = doc["meta"].get("port")
    L = [begin(port), "## Board-sized bench on %s" % port, "",
         "Generated by `mpalloc bench --port %s --markdown BENCHMARKS.md` (tests/bench/bench_board.py: sized "
         "from the board's free heap, every allocator on the window `board.init()` made); do not edit by hand."
         % port, ""] + facts(doc) + ["", _table(head(doc), rows(doc)), ""]
    cr = core_rows(doc)
    if cr:
        L += ["Per core (MODE_SIO, CPU id from the SIO CPUID; each figure the median of three runs of %s "
              "get+put pairs timed with time.ticks_us() on that core, its loop's own time removed; hits per "
              "CPU: %s / %s, misses %s / %s):" % tuple(
                  _f(doc["runs"].get(MP, {}).get("board.pool_cache_hit.%s" % k), "%d")
                  for k in ("per_core_pairs", "cpu0_hits", "cpu1_hits", "cpu0_misses", "cpu1_misses")), "",
              _table(CORE_HEAD, cr), ""]
    bad = crashed(doc)
    if bad:
        L += ["Did not run to the end: " + "; ".join(bad), ""]
    L.append(END)
    return "\n".join(L) + "\n"


END = "<!-- /board-bench -->"


def begin(port):
    return "<!-- board-bench %s -->" % port


def _table(head, rows_):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows_:
        out.append("| " + " | ".join(str(x) for x in r) + " |")
    return "\n".join(out)


_SECTION = re.compile(r"<!-- board-bench (\S+) -->\n.*?<!-- /board-bench -->\n?", re.S)


def sections(text):
    """{port: section text} of the board sections in a BENCHMARKS.md text."""
    return {m.group(1): m.group(0) for m in _SECTION.finditer(text or "")}


def splice(text, section, port):
    """`text` with the section of `port` replaced by `section` (appended if absent)."""
    old = sections(text).get(port)
    if old is not None:
        return text.replace(old, section)
    return (text.rstrip("\n") + "\n\n" if text and text.strip() else "") + section


# A hand-written part of BENCHMARKS.md (measurements no bench script makes, e.g.
# emu:rp2040's memory table): between these marks it survives `make bench`.
_HAND = re.compile(r"<!-- hand (\S+) -->\n.*?<!-- /hand -->\n?", re.S)


def keep_sections(old_text, new_text):
    """The full suite's new report with the old file's hand-written sections
    (<!-- hand NAME --> ... <!-- /hand -->) and board sections appended."""
    out = new_text
    new_hand = {m.group(1) for m in _HAND.finditer(new_text or "")}
    for m in _HAND.finditer(old_text or ""):
        if m.group(1) not in new_hand:
            out = out.rstrip("\n") + "\n\n" + m.group(0)
    for port, sec in sections(old_text).items():
        out = splice(out, sec, port)
    return out


def render(doc, console):
    from rich.table import Table

    t = Table(title="Board-sized bench on %s" % doc["meta"].get("port"), title_justify="left")
    for h in head(doc):
        t.add_column(h)
    for r in rows(doc):
        t.add_row(*[str(x) for x in r])
    console.print(t)
    cr = core_rows(doc)
    if cr:
        t = Table(title="pool_cache hit per core", title_justify="left")
        for h in CORE_HEAD:
            t.add_column(h)
        for r in cr:
            t.add_row(*[str(x) for x in r])
        console.print(t)
    for line in facts(doc):
        console.print(line, markup=False)
    for line in crashed(doc):
        console.print("note: " + line, markup=False)
