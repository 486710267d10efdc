"""vmem(9) figures of issue #3 on the MicroPython unix port and the 32-bit
webassembly port: runs tests/bench/vmem_figures.py there and prints each figure
next to its goal.

    .venv/bin/python -m mpalloc_host.bench.vmem_bench [--quick] [--no-wasm] [--runs N]

Figures are ratios to one empty Python call (cu) measured in the same run, so
they transfer between machines better than ns; on a loaded machine the script
takes the minimum over many short batches, and --runs N repeats the whole run
and keeps, per figure, the run-median. Memory figures are exact (gc.mem_alloc).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SCRIPT = os.path.join(ROOT, "tests", "bench", "vmem_figures.py")
MPY = os.path.join(ROOT, ".venv", "bin", "micropython")
WASM_MJS = os.path.join(ROOT, "host_tools", "node", "node_modules", "@micropython", "micropython-webassembly-pyscript", "micropython.mjs")

# figure -> (goal text, check(value, word_bits) -> True/False/None)
GOALS = {
    "pair_cu.H16": ("<= 80 (goal 50)", lambda v, w: v <= 80),
    "pair_cu.H4096": ("<= 80 (goal 50)", lambda v, w: v <= 80),
    "flat": ("<= 1.25 (goal 1.1)", lambda v, w: v <= 1.25),
    "maxsteps.H16": ("same for every H", None),
    "maxsteps.H4096": ("same for every H", None),
    "qc_ratio": (">= 3", lambda v, w: v >= 3),
    "trace_qc_ratio": (">= 3", lambda v, w: v >= 3),
    "qc_seg_per_1000": ("<= 1", lambda v, w: v <= 1),
    "pair_heap_bytes": ("0", lambda v, w: v == 0),
    "qc_heap_bytes": ("0", lambda v, w: v == 0),
    "tag_words": ("<= 6 (goal 4)", lambda v, w: v <= 6),
    "tag_bytes_layout": ("<= 6 words (goal 4)", lambda v, w: v <= 6 * w // 8),
    "arena_fixed_bytes": ("<= 1024 on 32-bit", lambda v, w: v <= 1024 if w == 32 else None),
}

WASM_RUNNER = r"""
import { loadMicroPython } from %(mjs)s;
import fs from "fs";
import path from "path";
const mp = await loadMicroPython({ heapsize: 8 * 1024 * 1024, stdout: (l) => process.stdout.write(l + "\n"),
  stderr: (l) => process.stderr.write(l + "\n"), linebuffer: true });
function copy(dir, dst) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const s = path.join(dir, e.name), d = dst + "/" + e.name;
    if (e.isDirectory()) { if (e.name !== "__pycache__") { mp.FS.mkdir(d); copy(s, d); } }
    else if (e.name.endsWith(".py")) mp.FS.writeFile(d, fs.readFileSync(s));
  }
}
mp.FS.mkdir("/fw"); copy(%(fw)s, "/fw");
mp.runPython("import sys; sys.path.insert(0, '/fw'); BENCH_QUICK = %(quick)s");
mp.runPython(fs.readFileSync(%(script)s, "utf8"));
"""


def parse(text):
    out = {}
    for m in re.finditer(r"^@@bench vmem\.(\S+) (\S+)$", text, re.M):
        k, v = m.groups()
        try:
            v = float(v)
        except ValueError:
            pass
        out[k] = v
    return out


def run_unix(quick):
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "firmware"))
    args = [MPY, "-X", "heapsize=4M", SCRIPT] + (["quick"] if quick else [])
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    if r.returncode:
        raise RuntimeError("unix port run failed:\n" + r.stdout + r.stderr)
    return parse(r.stdout)


def run_wasm(quick):
    import json

    js = WASM_RUNNER % {
        "mjs": json.dumps(WASM_MJS),
        "fw": json.dumps(os.path.join(ROOT, "firmware")),
        "script": json.dumps(SCRIPT),
        "quick": "True" if quick else "False",
    }
    r = subprocess.run(["node", "--input-type=module", "-e", js], capture_output=True, text=True, timeout=1800)
    if r.returncode:
        err = [ln for ln in (r.stdout + r.stderr).splitlines() if len(ln) < 300]
        raise RuntimeError("wasm32 run failed:\n" + "\n".join(err[-30:]))
    return parse(r.stdout)


def merge(runs):
    keys = runs[0].keys()
    out = {}
    for k in keys:
        vals = [r[k] for r in runs if k in r]
        if vals and isinstance(vals[0], float):
            out[k] = statistics.median(vals)
        else:
            out[k] = vals[0]
    return out


def table(name, figs):
    w = int(figs.get("word_bits", 64))
    print("\n%s (%s, %d-bit)" % (name, figs.get("impl"), w))
    print("  %-20s %12s  %-22s %s" % ("figure", "value", "goal", "met"))
    for k, v in figs.items():
        if k in ("impl", "word_bits"):
            continue
        goal, check = GOALS.get(k, ("", None))
        met = check(v, w) if check and isinstance(v, float) else None
        vs = ("%.4g" % v) if isinstance(v, float) else str(v)
        print("  %-20s %12s  %-22s %s" % (k, vs, goal, "" if met is None else ("yes" if met else "NO")))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-wasm", action="store_true")
    ap.add_argument("--runs", type=int, default=1)
    a = ap.parse_args(argv)
    table("unix port", merge([run_unix(a.quick) for _ in range(a.runs)]))
    if not a.no_wasm:
        table("webassembly port", merge([run_wasm(a.quick) for _ in range(a.runs)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
