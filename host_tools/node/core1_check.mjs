// Test hooks for core1.mjs: small hand-assembled Thumb programs on a bare RP2040.
//
// node core1_check.mjs BOOTROM_BIN SCENARIO  -> one JSON line on stdout
//
// No firmware: the B1 bootrom is loaded (core 1 runs its real wait-for-vector
// path), programs are assembled here into SRAM, and both cores run through
// Dual.batch as in the runner. Scenarios:
//   launch    the SDK's launch sequence (0, 0, 1, vector table, sp, entry) pushed
//             from core 0's side of the FIFO, each echoed by the bootrom on core 1;
//             core 1 then runs the entry: CPUID read on each core, a word back
//             through the FIFO; a PSM proc1 reset puts core 1 back in the bootrom,
//             and a second launch works.
//   irq       a peripheral IRQ line enabled in core 1's NVIC only is taken by core 1;
//             enabled in core 0's only, by core 0; SIO_IRQ_PROC1 fires on core 1
//             when core 0 writes its FIFO (the handler pops the word).
//   spinlock  both cores add 1 to one word N times each under SIO spinlock 5, then
//             without the lock (the control: updates are lost).
//   fifo      FIFO_ST bits: RDY/VLD, WOF on the ninth write, ROE on an empty read,
//             both cleared by writing 1s to FIFO_ST (0s leave them); per-core hardware divider.
//   speed     emulated cycles per CPU second of this process with core 1 installed: idle in the
//             bootrom, then busy beside core 0;
//   speed1    the same busy loop on rp2040js alone (the runner's one-core loop);
//   speedlazy the same with the runner's lazy core 1, not started.
//   lazy      the runner's core 1 (installCore1 lazy): none at power-on, created by
//             the first FIFO word of the launch sequence, which then completes.
// Exit 0 with the JSON; 2 on bad arguments.

import fs from "node:fs";
import { Simulator } from "rp2040js";
import { installCore1, SLICE } from "./core1.mjs";

const [bootromPath, scenario] = process.argv.slice(2);
if (!bootromPath || !scenario) {
  process.stderr.write("usage: core1_check.mjs BOOTROM SCENARIO\n");
  process.exit(2);
}

// ---- a tiny Thumb assembler (the few T1 encodings these programs need) -------------------
class Asm {
  constructor(base) { this.base = base; this.code = []; this.labels = {}; this.fix = []; this.lits = []; }
  get here() { return this.base + 2 * this.code.length; }
  label(n) { this.labels[n] = this.here; return this; }
  h(v) { this.code.push(v & 0xffff); return this; }
  ldrLit(rt, value) { this.fix.push(["lit", this.code.length, rt, value >>> 0]); return this.h(0); }
  ldr(rt, rn, off = 0) { return this.h(0x6800 | ((off >> 2) << 6) | (rn << 3) | rt); }
  str(rt, rn, off = 0) { return this.h(0x6000 | ((off >> 2) << 6) | (rn << 3) | rt); }
  movs(rd, imm) { return this.h(0x2000 | (rd << 8) | imm); }
  adds(rd, imm) { return this.h(0x3000 | (rd << 8) | imm); }
  subs(rd, imm) { return this.h(0x3800 | (rd << 8) | imm); }
  cmp(rn, imm) { return this.h(0x2800 | (rn << 8) | imm); }
  b(l) { this.fix.push(["b", this.code.length, l]); return this.h(0); }
  beq(l) { this.fix.push(["bc", this.code.length, l, 0]); return this.h(0); }
  bne(l) { this.fix.push(["bc", this.code.length, l, 1]); return this.h(0); }
  sev() { return this.h(0xbf40); }
  wfe() { return this.h(0xbf20); }
  cpsie() { return this.h(0xb662); }
  bxlr() { return this.h(0x4770); }
  // -> {addr, bytes}
  build() {
    if (this.code.length & 1) this.h(0xbf00);          // literal pool word-aligned
    const pool = this.here;
    const lits = [];
    for (const f of this.fix) {
      const at = this.base + 2 * f[1];
      if (f[0] === "lit") {
        let k = lits.indexOf(f[3]);
        if (k < 0) { k = lits.length; lits.push(f[3]); }
        const pc = (at + 4) & ~3;
        this.code[f[1]] = 0x4800 | (f[2] << 8) | ((pool + 4 * k - pc) >> 2);
      } else {
        const d = (this.labels[f[2]] - (at + 4)) >> 1;
        if (this.labels[f[2]] === undefined) throw new Error("no label " + f[2]);
        this.code[f[1]] = f[0] === "b" ? 0xe000 | (d & 0x7ff) : 0xd000 | (f[3] << 8) | (d & 0xff);
      }
    }
    const bytes = Buffer.alloc(2 * this.code.length + 4 * lits.length);
    this.code.forEach((v, i) => bytes.writeUInt16LE(v, 2 * i));
    lits.forEach((v, i) => bytes.writeUInt32LE(v, 2 * this.code.length + 4 * i));
    return { addr: this.base, bytes };
  }
}

// ---- the chip -------------------------------------------------------------------------
const SIO = 0xd0000000, FIFO_ST = SIO + 0x50, FIFO_WR = SIO + 0x54, FIFO_RD = SIO + 0x58;
const SPINLOCK5 = SIO + 0x114;
const NVIC_ISER = 0xe000e100, NVIC_ICER = 0xe000e180;
const PSM_FRCE_OFF = 0x40010004;
const DATA = 0x20030000;          // results
const sim = new Simulator();
const mcu = sim.rp2040;
const noop = () => {};
mcu.logger = { debug: noop, info: noop, warn: noop, error: (n, m) => process.stderr.write(n + ": " + m + "\n") };
const rom = fs.readFileSync(bootromPath);
mcu.loadBootrom(new Uint32Array(rom.buffer, rom.byteOffset, rom.length / 4));
const dual = scenario === "speed1" ? null : installCore1(mcu, { lazy: scenario === "lazy" || scenario === "speedlazy" });
const core0 = mcu.core;
const never = () => false;
const rd = (a) => mcu.readUint32(a) >>> 0;            // core 0's side of the bus
const wr = (a, v) => mcu.writeUint32(a, v);

function load(asm) {
  const { addr, bytes } = asm.build();
  mcu.sram.set(bytes, addr - 0x20000000);
  return addr;
}
function park0(at) {      // core 0 sits in a WFE loop in SRAM (its part is played from here)
  const a = load(new Asm(at).label("l").wfe().b("l"));
  core0.PC = a;
  core0.waiting = false;
}
function run(cycles) { return dual.batch(cycles, never); }
function until(pred, cycles = 2000000) {
  for (let n = 0; n < cycles; n += 5000) {
    if (pred()) return true;
    run(5000);
  }
  return pred();
}
function sev0() { dual.sev(0); }
// CPU seconds of this process (user + system): a speed that a loaded host does not halve
function cpuSeconds() { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; }

// multicore_launch_core1_raw, played from core 0's side of the FIFO: -> echoes seen
function launch(vt, sp, entry) {
  const seq = [0, 0, 1, vt, sp, entry];
  const echoes = [];
  let i = 0, tries = 0;
  while (i < seq.length) {
    if (++tries > 100) throw new Error("launch: no progress after " + echoes.join(","));
    const cmd = seq[i];
    if (!cmd) { while (rd(FIFO_ST) & 1) rd(FIFO_RD); sev0(); }
    if (!until(() => rd(FIFO_ST) & 2)) throw new Error("launch: core 1 never drained its FIFO");
    wr(FIFO_WR, cmd);
    sev0();
    if (!until(() => rd(FIFO_ST) & 1)) throw new Error("launch: no echo of " + cmd);
    const r = rd(FIFO_RD);
    echoes.push(r);
    i = r === cmd ? i + 1 : 0;
  }
  return echoes;
}

// core 1's entry: CPUID to DATA+0, pushed to core 0's FIFO, SEV, then idle in WFE
function cpuidProgram(at, slot) {
  return load(new Asm(at)
    .ldrLit(1, SIO).ldr(0, 1, 0).ldrLit(2, DATA).str(0, 2, slot)
    .str(0, 1, 0x54).sev()
    .label("idle").wfe().b("idle"));
}

const out = { scenario, slice: SLICE };
switch (scenario) {
  case "launch": {
    park0(0x20000100);
    run(200000);                                   // core 1 boots into the bootrom's wait
    out.core1_waits_in_bootrom = dual.core1.PC < 0x4000 && !dual.held;
    const entry = cpuidProgram(0x20001000, 4);
    out.echoes = launch(0x20002000, 0x20040000, entry | 1);
    out.core1_ran_entry = until(() => rd(FIFO_ST) & 1);
    out.fifo_word_from_core1 = rd(FIFO_RD);
    out.cpuid_core1 = rd(DATA + 4);
    out.core1_vtor = dual.core1.VTOR >>> 0;
    out.core1_sp = dual.core1.SPmain >>> 0;
    // core 0's own CPUID, read by a program on core 0
    core0.PC = load(new Asm(0x20000200).ldrLit(1, SIO).ldr(0, 1, 0).ldrLit(2, DATA).str(0, 2, 0)
      .ldrLit(0, 0xa5).str(0, 2, 8).label("l").wfe().b("l"));
    core0.waiting = false;
    wr(DATA, 0xffffffff);
    until(() => rd(DATA + 8) === 0xa5);
    out.cpuid_core0 = rd(DATA);
    // PSM proc1 reset: held while FRCE_OFF.proc1 is set, back in the bootrom after
    wr(PSM_FRCE_OFF | 0x2000, 1 << 16);
    const pcBefore = dual.core1.PC;
    run(20000);
    out.held_in_reset = dual.held && dual.core1.PC === pcBefore;
    wr(PSM_FRCE_OFF | 0x3000, 1 << 16);
    run(200000);
    out.after_reset_in_bootrom = !dual.held && dual.core1.PC < 0x4000;
    wr(DATA + 4, 0xffffffff);
    const entry2 = cpuidProgram(0x20001100, 12);
    out.echoes2 = launch(0x20002000, 0x20040000, entry2 | 1);
    until(() => rd(FIFO_ST) & 1);
    out.fifo_word_after_relaunch = rd(FIFO_RD);
    out.cpuid_core1_after_relaunch = rd(DATA + 12);
    out.launches = dual.launches;
    break;
  }
  case "lazy": {
    // the runner's core 1: none until the firmware's launch writes the first FIFO word
    park0(0x20000100);
    run(200000);
    out.no_core1_before = dual.core1 === null && dual.launches === 0;
    const entry = cpuidProgram(0x20001000, 4);
    out.echoes = launch(0x20002000, 0x20040000, entry | 1);
    out.core1_ran_entry = until(() => rd(FIFO_ST) & 1);
    out.fifo_word_from_core1 = rd(FIFO_RD);
    out.cpuid_core1 = rd(DATA + 4);
    out.launches = dual.launches;
    break;
  }
  case "speedlazy": {
    // a busy loop on core 0 with the runner's (lazy) core 1 never started
    const busy = load(new Asm(0x20001000).label("l").adds(0, 1).subs(1, 1).b("l"));
    core0.PC = busy;
    core0.waiting = false;
    const t = cpuSeconds();
    const n0 = mcu.clock.nanos;
    while (cpuSeconds() - t < 1.5) run(1000000);
    const cpu = cpuSeconds() - t;
    out.core1_not_started = { emulated_cycles_per_cpu_s: Math.round((mcu.clock.nanos - n0) / 8 / cpu), cpu_s: +cpu.toFixed(2) };
    break;
  }
  case "irq": {
    // vector tables at 0x20010000 (core 0) and 0x20011000 (core 1); handlers record
    // CPUID and count: DATA+0x10*core+{0,4}; line handler disables its IRQ (ICER).
    const IRQ_LINE = 25;              // RTC: a peripheral line, raised from here
    const IRQ_SIO1 = 16;
    const handler = (at, base, bit) => load(new Asm(at)
      .ldrLit(1, SIO).ldr(0, 1, 0).ldrLit(2, base).str(0, 2, 0)
      .ldr(0, 2, 4).adds(0, 1).str(0, 2, 4)
      .ldrLit(1, NVIC_ICER).ldrLit(0, bit).str(0, 1, 0).bxlr());
    const fifoHandler = (at, base) => load(new Asm(at)
      .ldrLit(1, SIO).ldr(0, 1, 0x58).ldrLit(2, base).str(0, 2, 8)
      .ldr(0, 2, 4).adds(0, 1).str(0, 2, 4).ldr(0, 1, 0).str(0, 2, 0).bxlr());
    // (the bootrom's drain leaves ROE set on core 1, as the SDK expects: an entry
    // clears FIFO_ST before it enables SIO_IRQ_PROC1, as multicore_fifo_clear_irq does)
    const h0 = handler(0x20012000, DATA + 0x00, 1 << IRQ_LINE);
    const h1 = handler(0x20012100, DATA + 0x10, 1 << IRQ_LINE);
    const f1 = fifoHandler(0x20012200, DATA + 0x20);
    for (let i = 0; i < 48; i++) { wr(0x20010000 + 4 * i, 0x20000101); wr(0x20011000 + 4 * i, 0x20000101); }
    wr(0x20010000 + 4 * (16 + IRQ_LINE), h0 | 1);
    wr(0x20011000 + 4 * (16 + IRQ_LINE), h1 | 1);
    wr(0x20011000 + 4 * (16 + IRQ_SIO1), f1 | 1);
    park0(0x20000100);
    run(200000);
    // core 1's entry: enable IRQ_LINE and SIO_PROC1 in ITS NVIC, then idle (WFE loop)
    const entry = load(new Asm(0x20001000)
      .ldrLit(1, SIO).movs(0, 0xff).str(0, 1, 0x50)
      .ldrLit(1, NVIC_ISER).ldrLit(0, (1 << IRQ_LINE) | (1 << IRQ_SIO1)).str(0, 1, 0).cpsie()
      .ldrLit(2, DATA + 0x30).movs(0, 1).str(0, 2, 0)
      .label("idle").wfe().b("idle"));
    launch(0x20011000, 0x20040000, entry | 1);
    until(() => rd(DATA + 0x30) === 1);
    out.core1_enabled = (dual.core1.enabledInterrupts >>> 0).toString(16);
    out.core0_enabled = (core0.enabledInterrupts >>> 0).toString(16);
    mcu.setInterrupt(IRQ_LINE, true);              // the peripheral raises its line
    run(20000);
    mcu.setInterrupt(IRQ_LINE, false);
    out.line_on_core1 = { cpuid: rd(DATA + 0x10), count: rd(DATA + 0x14) };
    out.line_on_core0 = { count: rd(DATA + 0x04) };
    // now core 0 enables the line (its own NVIC, from a program on core 0), core 1 does not
    core0.PC = load(new Asm(0x20000300)
      .ldrLit(1, NVIC_ISER).ldrLit(0, 1 << IRQ_LINE).str(0, 1, 0).cpsie()
      .ldrLit(2, DATA + 0x34).movs(0, 1).str(0, 2, 0).label("l").wfe().b("l"));
    core0.VTOR = 0x20010000;
    core0.waiting = false;
    until(() => rd(DATA + 0x34) === 1);
    mcu.setInterrupt(IRQ_LINE, true);
    run(20000);
    mcu.setInterrupt(IRQ_LINE, false);
    out.line_on_core0_after = { cpuid: rd(DATA + 0x00), count: rd(DATA + 0x04) };
    out.line_on_core1_after = { count: rd(DATA + 0x14) };
    // SIO_IRQ_PROC1: core 0 writes its FIFO; core 1's handler pops the word
    wr(FIFO_WR, 0x1234abcd);
    run(20000);
    out.fifo_irq_core1 = { cpuid: rd(DATA + 0x20), count: rd(DATA + 0x24), word: rd(DATA + 0x28).toString(16) };
    out.core1_fifo_empty_after = (dual.rx[1].length === 0);
    out.core0_took_sio_irq = core0.IPSR !== 0;
    break;
  }
  case "spinlock": {
    const N = 20000;
    // r4 = count, r5 = spinlock, r6 = shared counter, r7 = this core's slot (fails, done)
    const prog = (at, locked) => {
      const a = new Asm(at)
        .ldrLit(4, N).ldrLit(5, SPINLOCK5).ldrLit(6, DATA)
        .ldrLit(1, SIO).ldr(0, 1, 0).ldrLit(7, DATA + 0x10).cmp(0, 0).beq("slot").ldrLit(7, DATA + 0x20).label("slot")
        .label("loop");
      if (locked) a.label("acq").ldr(0, 5, 0).cmp(0, 0).bne("got").ldr(0, 7, 0).adds(0, 1).str(0, 7, 0).b("acq").label("got");
      a.ldr(0, 6, 0).adds(0, 1).str(0, 6, 0);
      if (locked) a.str(0, 5, 0);
      a.subs(4, 1).bne("loop").movs(0, 1).str(0, 7, 4).label("end").wfe().b("end");
      return load(a);
    };
    const result = {};
    for (const locked of [true, false]) {
      for (const a of [0, 4, 0x10, 0x14, 0x20, 0x24]) wr(DATA + a, 0);
      const p = prog(locked ? 0x20001000 : 0x20001800, locked);
      park0(0x20000100);
      run(200000);
      if (result.locked) {                      // second round: relaunch core 1 through a PSM reset
        wr(PSM_FRCE_OFF | 0x2000, 1 << 16);
        wr(PSM_FRCE_OFF | 0x3000, 1 << 16);
        run(200000);
      }
      launch(0x20002000, 0x20040000, p | 1);
      core0.PC = p;
      core0.waiting = false;
      const ok = until(() => rd(DATA + 0x14) === 1 && rd(DATA + 0x24) === 1, 20000000);
      result[locked ? "locked" : "unlocked"] = {
        finished: ok, counter: rd(DATA), expected: 2 * N,
        fails_core0: rd(DATA + 0x10), fails_core1: rd(DATA + 0x20),
        spinlock_st: rd(SIO + 0x5c),
      };
    }
    Object.assign(out, result);
    break;
  }
  case "fifo": {
    park0(0x20000100);
    wr(PSM_FRCE_OFF | 0x2000, 1 << 16);           // core 1 held in reset: nobody drains
    dual.rx[0].length = dual.rx[1].length = 0;
    out.st_empty = rd(FIFO_ST);
    for (let i = 0; i < 8; i++) wr(FIFO_WR, i);
    out.st_full = rd(FIFO_ST);
    wr(FIFO_WR, 99);
    out.st_overflow = rd(FIFO_ST);
    out.core1_rx = dual.rx[1].slice();
    out.irq_proc1_pending = !!(dual.core1.pendingInterrupts & (1 << 16));
    out.irq_proc0_pending_after_wof = !!(core0.pendingInterrupts & (1 << 15));
    wr(FIFO_ST, 0);
    out.st_after_writing_0 = rd(FIFO_ST);
    wr(FIFO_ST, 0xff);
    out.st_after_clear = rd(FIFO_ST);
    rd(FIFO_RD);
    out.st_underflow = rd(FIFO_ST);
    wr(FIFO_ST, 0xff);
    dual.rx[0].push(7);
    out.st_valid = rd(FIFO_ST);
    out.irq_proc0_pending_valid = !!(core0.pendingInterrupts & (1 << 15));
    out.pop = rd(FIFO_RD);
    out.irq_proc0_pending_after_pop = !!(core0.pendingInterrupts & (1 << 15));
    // hardware divider per core: core 0 divides here, core 1's divider keeps its own operands
    wr(SIO + 0x60, 100); wr(SIO + 0x64, 7);
    dual.view1.writeUint32(SIO + 0x60, 1000); dual.view1.writeUint32(SIO + 0x64, 10);
    out.div_core0 = [rd(SIO + 0x70), rd(SIO + 0x74)];
    out.div_core1 = [dual.view1.readUint32(SIO + 0x70) >>> 0, dual.view1.readUint32(SIO + 0x74) >>> 0];
    out.cpuid_bus = [rd(SIO), dual.view1.readUint32(SIO) >>> 0];
    break;
  }
  case "speed": {
    // a busy loop on core 0; with two cores the same loop on core 1 too
    const busy = load(new Asm(0x20001000).label("l").adds(0, 1).subs(1, 1).b("l"));
    const measure = (two) => {
      park0(0x20000100);
      run(200000);
      if (two) launch(0x20002000, 0x20040000, busy | 1);
      core0.PC = busy;
      core0.waiting = false;
      const t = cpuSeconds();
      const n0 = mcu.clock.nanos;
      while (cpuSeconds() - t < 1.5) run(1000000);
      const cpu = cpuSeconds() - t;
      return { emulated_cycles_per_cpu_s: Math.round((mcu.clock.nanos - n0) / 8 / cpu), cpu_s: +cpu.toFixed(2) };
    };
    out.core1_idle_in_bootrom = measure(false);
    out.both_busy = measure(true);
    break;
  }
  case "speed1": {
    const busy = load(new Asm(0x20001000).label("l").adds(0, 1).subs(1, 1).b("l"));
    core0.PC = busy;
    const t = cpuSeconds();
    const n0 = mcu.clock.nanos;
    while (cpuSeconds() - t < 1.5) {
      for (let i = 0; i < 1000000; i++) mcu.clock.tick(core0.executeInstruction() * 8);
    }
    const cpu = cpuSeconds() - t;
    out.one_core = { emulated_cycles_per_cpu_s: Math.round((mcu.clock.nanos - n0) / 8 / cpu), cpu_s: +cpu.toFixed(2) };
    break;
  }
  default:
    process.stderr.write("core1_check: no scenario " + scenario + "\n");
    process.exit(2);
}
process.stdout.write(JSON.stringify(out) + "\n");
