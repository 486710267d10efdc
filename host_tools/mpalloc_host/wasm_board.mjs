// wasm32 board: the 32-bit MicroPython webassembly port as a board on stdin/stdout.
//
// node wasm_board.mjs MICROPYTHON_MJS HEAP_BYTES BOARD_JSON_PATH cap|grow [KEEP_DIR]
//
// Bytes on stdin go one by one to MicroPython's event-driven REPL
// (replInit/replProcessChar: friendly REPL, raw REPL); its output goes to
// stdout unchanged (wasm.py cooks it and renames the banner).
// What this adds to make it look like a board to mpremote:
//  * raw-paste (\x05A\x01) is refused with "R\x00": the port's raw-paste reads
//    stdin synchronously and would spin forever. mpremote then uses classic raw mode.
//  * soft reset (replProcessChar returns PYEXEC_FORCED_EXIT on Ctrl-D): print
//    "MPY: soft reboot", load a fresh MicroPython instance (new heap), copy the
//    in-memory filesystem over (a board keeps its files), re-enter the raw REPL
//    if that is where the reset came from.
//  * the filesystem root "/" holds board.json (the profile) and lib/; cwd is "/".
//  * the gc heap is the board's: this port grows its gc heap on demand (split
//    heap, more areas malloc'd as needed), so after loading, capHeap() takes
//    every free byte of the C heap (malloc until it fails, WebAssembly memory
//    growth refused) and gives back a small reserve for the port's own small
//    mallocs, smaller than any area the gc could add (at least the current
//    heap's size). gc.mem_free() + gc.mem_alloc() is then HEAP_BYTES, and an
//    allocation that does not fit is a MemoryError, as on the board. "grow"
//    instead of "cap": the port's own growable heap. The port collects garbage
//    only between REPL commands (gc_collect() is a no-op while Python runs),
//    so under a cap one long command's garbage counts against the heap too.
//    The port's gc.mem_free() adds what it could still add (its 128 MiB
//    max_new_split): sys.modules["gc"] is a stand-in whose mem_free() leaves
//    that out, so programs (and board.init) see the board's free heap.
//  * KEEP_DIR (optional): the filesystem is kept there between runs: loaded at
//    start, written back (changed files written, removed ones deleted) after
//    every raw-REPL execution, before its end marker goes out (so the host never
//    kills node with a write not kept). board.json is not kept (the profile's).
// Code runs synchronously inside replProcessChar: a Ctrl-C cannot interrupt it
// (stdin is not read meanwhile); the host kills and restarts on its deadline.
// Its output is written as it comes (collect), so the host sees it live.

const [mjsPath, heapArg, boardJsonPath, capArg, keepDir] = process.argv.slice(2);
const { loadMicroPython } = await import(mjsPath);
const fs = await import("node:fs");

const HEAP = parseInt(heapArg, 10) || 1048576;
const RAW_BANNER = "raw REPL; CTRL-B to exit\r\n";
const PYEXEC_FORCED_EXIT = 0x100;
const SKIP = new Set(["/dev", "/proc", "/tmp", "/home"]);

let mp = null;
let capped = false;     // WebAssembly memory may not grow (capHeap)
let out = [];           // output bytes of the current batch
let tail = "";          // last output, to follow friendly/raw mode
let raw = false;
let pend = [];          // bytes held while recognising \x05A\x01
const queue = [];       // input bytes not processed yet
let busy = false;

let live = false;       // while input is pumped: output goes out as it comes
let ranCode = false;    // a raw-REPL execution ended in this batch (KEEP_DIR sync due)
const kept = new Map(); // KEEP_DIR: path -> bytes last written there

function collect(b) {
  for (const c of b) out.push(c);
  // Stream while code runs (Node's event loop is blocked meanwhile, but a write
  // to stdout is synchronous on Linux), so the host sees each test start and
  // end and can keep per-test deadlines. The port prints a character at a
  // time: whole lines go out (so fixErrno sees "OSError: NN" lines entire),
  // and the raw REPL's "OK" at once (the host waits for it before the code's
  // first line); the rest of a line waits for its end or the end of the input.
  if (live && b.length) {
    const last = b[b.length - 1];
    if (last === 10) {
      flush();
    } else if (last === 0x4b && out.length >= 2 && out[out.length - 2] === 0x4f &&
               (out.length === 2 || out[out.length - 3] === 10 || out[out.length - 3] === 0x3e)) {
      flush();                          // "OK" at the start of a line or after the ">" prompt
    }
  }
}

// Emscripten's errno numbers print as "OSError: 44"; a board prints
// "OSError: [Errno 2] ENOENT", and mpremote's fs commands look for those names.
const ERRNO = { 2: [13, "EACCES"], 8: [9, "EBADF"], 20: [17, "EEXIST"], 28: [22, "EINVAL"],
  31: [21, "EISDIR"], 44: [2, "ENOENT"], 51: [28, "ENOSPC"], 54: [20, "ENOTDIR"],
  55: [39, "ENOTEMPTY"], 63: [1, "EPERM"] };

function fixErrno(s) {
  return s.replace(/OSError: (\d+)(?=\r?\n)/g, (m, n) =>
    ERRNO[n] ? "OSError: [Errno " + ERRNO[n][0] + "] " + ERRNO[n][1] : m);
}

function flush() {
  if (!out.length) return;
  let buf = Buffer.from(out);
  out = [];
  if (buf.includes("OSError: ")) buf = Buffer.from(fixErrno(buf.toString("latin1")), "latin1");
  const t = tail + buf.toString("latin1");
  const r = t.lastIndexOf(RAW_BANNER);
  const f = Math.max(t.lastIndexOf(">>> "), t.lastIndexOf("for more information.\r\n"));
  if (r >= 0 || f >= 0) raw = r > f;
  tail = t.slice(-48);
  process.stdout.write(buf);
}

function snapshot(FS, dir, files) {
  for (const name of FS.readdir(dir)) {
    if (name === "." || name === "..") continue;
    const p = dir === "/" ? "/" + name : dir + "/" + name;
    if (SKIP.has(p)) continue;
    const st = FS.stat(p);
    if (FS.isDir(st.mode)) {
      files.push([p, null]);
      snapshot(FS, p, files);
    } else if (FS.isFile(st.mode)) {
      files.push([p, FS.readFile(p)]);
    }
  }
  return files;
}

function keepLoad(dir, rel, files) {
  for (const name of fs.readdirSync(dir)) {
    const p = rel + "/" + name;
    const st = fs.statSync(dir + "/" + name);
    if (st.isDirectory()) {
      files.push([p, null]);
      keepLoad(dir + "/" + name, p, files);
    } else if (st.isFile() && p !== "/board.json") {
      const data = fs.readFileSync(dir + "/" + name);
      kept.set(p, data);
      files.push([p, data]);
    }
  }
  return files;
}

function keepSync() {
  const now = new Set();
  for (const [p, data] of snapshot(mp.FS, "/", [])) {
    if (p === "/board.json") continue;
    now.add(p);
    if (data === null) {
      fs.mkdirSync(keepDir + p, { recursive: true });
    } else {
      const old = kept.get(p);
      if (!old || Buffer.compare(Buffer.from(old), Buffer.from(data)) !== 0) {
        fs.writeFileSync(keepDir + p, data);
        kept.set(p, Buffer.from(data));
      }
    }
  }
  for (const p of [...kept.keys()]) {
    if (!now.has(p)) {
      try { fs.unlinkSync(keepDir + p); } catch (e) { /* gone */ }
      kept.delete(p);
    }
  }
}

const wasmGrow = WebAssembly.Memory.prototype.grow;
WebAssembly.Memory.prototype.grow = function (pages) {
  if (capped) throw new RangeError("wasm_board: the gc heap is capped at the board's");
  return wasmGrow.call(this, pages);
};
const consoleError = console.error;
console.error = (...a) => {             // emscripten's growMemory complains when refused
  if (capped && typeof a[0] === "string" && /^(growMemory:|Failed to grow the heap)/.test(a[0])) return;
  consoleError(...a);
};

const MAX_NEW_SPLIT = 128 * 1024 * 1024;   // gc_get_max_new_split() of the webassembly port
const HONEST_GC = `
def _honest_gc():
    import sys, gc as g
    class gc:
        collect = g.collect
        enable = g.enable
        disable = g.disable
        isenabled = g.isenabled
        threshold = g.threshold
        mem_alloc = g.mem_alloc
        def mem_free():
            f = g.mem_free()
            return f - ${MAX_NEW_SPLIT} if f >= ${MAX_NEW_SPLIT} else f
    sys.modules["gc"] = gc
    g.collect()
_honest_gc()
del _honest_gc
`;

function capHeap(M) {
  capped = true;
  const held = [];
  for (let size = 1 << 26; size >= 16;) {
    const p = M._malloc(size);
    if (p) held.push([p, size]); else size >>= 1;
  }
  const reserve = Math.min(16384, HEAP >> 1);
  let back = 0;
  while (held.length && back < reserve) {
    const [p, size] = held.pop();
    M._free(p);
    back += size;
  }
}

async function boot(files, enterRaw) {
  mp = null;
  capped = false;
  mp = await loadMicroPython({ heapsize: HEAP, linebuffer: false, stdout: collect, stderr: collect });
  if (capArg !== "grow") capHeap(mp._module);
  mp.runPython(HONEST_GC);
  const FS = mp.FS;
  for (const [p, data] of files) {
    if (data === null) {
      try { FS.mkdir(p); } catch (e) { /* exists */ }
    } else {
      FS.writeFile(p, data);
    }
  }
  FS.chdir("/");
  mp.replInit();
  if (enterRaw) {
    out = [];
    mp.replProcessChar(1);
    const s = Buffer.from(out).toString("latin1");
    const i = s.indexOf(RAW_BANNER);
    out = i >= 0 ? Array.from(Buffer.from(s.slice(i), "latin1")) : Array.from(Buffer.from(s, "latin1"));
  }
  flush();
}

function feed(c) {
  const ret = mp.replProcessChar(c);
  return (ret & PYEXEC_FORCED_EXIT) !== 0;
}

async function pump() {
  if (busy) return;
  busy = true;
  live = true;
  try {
    while (queue.length) {
      const c = queue.shift();
      let reset = false;
      if (raw && (pend.length || c === 0x05)) {
        pend.push(c);
        const want = [0x05, 0x41, 0x01];
        if (pend.every((b, i) => b === want[i])) {
          if (pend.length === 3) {      // raw-paste request: refuse it
            pend = [];
            collect([0x52, 0x00]);      // "R\x00"
          }
          continue;
        }
        const held = pend;
        pend = [];
        for (const b of held) if (feed(b)) { reset = true; break; }
      } else {
        if (c === 0x04 && raw) ranCode = true;
        reset = feed(c);
      }
      if (reset) {
        const wasRaw = raw;
        collect(Buffer.from("MPY: soft reboot\r\n", "latin1"));
        flush();
        const files = snapshot(mp.FS, "/", []);
        live = false;                   // boot() trims what comes before the raw banner
        await boot(files, wasRaw);
        live = true;
      }
    }
    if (keepDir && ranCode) keepSync();  // before the end marker (held in out) goes out
    ranCode = false;
    flush();
  } finally {
    busy = false;
    live = false;
  }
}

const initial = [["/lib", null]];
if (keepDir) {
  fs.mkdirSync(keepDir, { recursive: true });
  keepLoad(keepDir, "", initial);
}
try {
  initial.push(["/board.json", fs.readFileSync(boardJsonPath)]);
} catch (e) {
  process.stderr.write("wasm_board: cannot read " + boardJsonPath + ": " + e.message + "\n");
  process.exit(2);
}
await boot(initial, false);

process.stdin.on("data", (chunk) => {
  for (const c of chunk) queue.push(c);
  pump().catch((e) => {
    process.stderr.write("wasm_board: " + (e && e.stack || e) + "\n");
    process.exit(3);
  });
});
process.stdin.on("end", () => process.exit(0));
