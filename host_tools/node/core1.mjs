// Core 1 of the RP2040 for rp2040js (which emulates core 0 only), added at run time.
//
// installCore1(mcu) -> Dual; Dual.batch(maxCycles, stopped) runs both cores.
//
// Representation:
//  * core 1 is a second CortexM0Core (rp2040js's own class, from mcu.core's
//    constructor) on a view of the chip: view1 = Object.create(mcu) with its own
//    `core`, `ppb` and `sio`. The RP2040's bus methods run with `this` = view1, so
//    memory, flash and peripherals are the same objects for both cores, while the
//    PPB (NVIC, SysTick, VTOR, ICSR) and the SIO port are core 1's.
//  * SIO: spinlocks and GPIO stay in rp2040js's RPSIO (shared); CPUID, the two
//    inter-core FIFOs (8 words each way, FIFO_ST VLD/RDY/WOF/ROE, FIFO_WR,
//    FIFO_RD; WOF/ROE cleared by writing 1s to FIFO_ST) are added here; core 0
//    keeps rp2040js's divider and interpolators, core 1 has its own RPSIO for them.
//  * NVIC state lives in each core object (pending/enabled/priorities, PRIMASK):
//    a peripheral IRQ line (mcu.setInterrupt) is latched by both NVICs and taken
//    by the core that enabled it; SIO_IRQ_PROC0 (15) goes to core 0 only,
//    SIO_IRQ_PROC1 (16) to core 1 only, asserted while that core's FIFO has data
//    (VLD) or a sticky WOF/ROE flag.
//  * SEV (rp2040js only logs it: the hook is the logger's 'SEV' line) wakes a
//    core waiting in WFE, else sets its event register; it does so for both cores.
//  * PSM FRCE_OFF.proc1 (bit 16) holds core 1 in reset; clearing it starts a
//    fresh core 1 at the bootrom's reset vector, whose core-1 path waits on the
//    FIFO for the launch sequence (0, 0, 1, vector table, sp, entry, each echoed),
//    as multicore_launch_core1 expects. At power-on core 1 starts there too, or,
//    with installCore1(mcu, {lazy: true}) (the runner), only when the firmware
//    first resets it through the PSM or writes a word to its FIFO: until then there
//    is no second core object, so rp2040js's core and bus code see one receiver
//    and V8 keeps them monomorphic (core 1 having run costs core 0 ~8-11 % of its
//    speed: see docs/DEVELOPING.md). The bootrom's core-1 path drains its FIFO and
//    answers 0, which the SDK's launch sequence accepts from a core 1 anywhere in
//    its boot code.
// Invariants: a core in reset never executes; each FIFO holds at most 8 words;
//  the clock advances by the longer of the two cores' runs in each slice.
// Scheduling (batch): lock-step slices of SLICE cycles, core 0 then core 1, on one
//  thread. Core 0 ticks the shared clock as it runs; core 1 runs the same slice
//  without ticking and the clock is topped up if core 1 ran longer. A core in
//  WFE/WFI is skipped; when both wait, the clock jumps to the next alarm.
//  Cross-core latency (a FIFO word, a SEV, an IRQ) is at most one slice.
// Locking: none (one JavaScript thread). Install after setting mcu.logger: the SEV
//  hook wraps the logger in place at install time.
// Costs: one extra check per slice while core 1 sleeps; a core 1 that has run
//  makes core 0 ~8-11 % slower (polymorphic inline caches, see above; none while
//  a lazy core 1 is not started); both cores busy halve the emulated cycles per
//  CPU second (core1_check.mjs speed1 / speedlazy / speed).

export const SLICE = 256;                  // cycles per core per slice
const CYCLE_NANOS = 8;                     // 125 MHz
const FIFO_DEPTH = 8;
const SIO_CPUID = 0x000, SIO_FIFO_ST = 0x050, SIO_FIFO_WR = 0x054, SIO_FIFO_RD = 0x058;
const SIO_SPINLOCK_ST = 0x05c;
const SIO_PRIVATE_LO = 0x060, SIO_PRIVATE_HI = 0x100;      // divider + interpolators
const ST_VLD = 1, ST_RDY = 2, ST_WOF = 4, ST_ROE = 8;
const IRQ_SIO_PROC0 = 15, IRQ_SIO_PROC1 = 16;
const PSM_FRCE_OFF = 0x04, PSM_PROC1 = 1 << 16;
const OP_WFE = 0xbf20;

// The SIO as one core sees it: CPUID and the FIFOs here, the rest shared or private.
class SioPort {
  constructor(id, shared, own, dual) {
    this.id = id;
    this.shared = shared;       // rp2040js's RPSIO: GPIO, spinlocks
    this.own = own;             // divider + interpolators of this core
    this.dual = dual;
    this.sharedRead = shared.readUint32.bind(shared);
    this.sharedWrite = shared.writeUint32.bind(shared);
    this.ownRead = own.readUint32.bind(own);
    this.ownWrite = own.writeUint32.bind(own);
  }
  readUint32(offset) {
    switch (offset) {
      case SIO_CPUID: return this.id;
      case SIO_FIFO_ST: return this.dual.fifoStatus(this.id);
      case SIO_FIFO_RD: return this.dual.fifoPop(this.id);
    }
    if (offset >= SIO_PRIVATE_LO && offset < SIO_PRIVATE_HI) return this.ownRead(offset);
    return this.sharedRead(offset);
  }
  writeUint32(offset, value) {
    switch (offset) {
      case SIO_FIFO_ST: this.dual.fifoClear(this.id, value); return;
      case SIO_FIFO_WR: this.dual.fifoPush(this.id, value >>> 0); return;
      case SIO_CPUID: case SIO_FIFO_RD: case SIO_SPINLOCK_ST: return;     // read-only
    }
    if (offset >= SIO_PRIVATE_LO && offset < SIO_PRIVATE_HI) this.ownWrite(offset, value);
    else this.sharedWrite(offset, value);
  }
}

export class Dual {
  constructor(mcu, lazy = false) {
    this.mcu = mcu;
    this.clock = mcu.clock;
    this.Core = mcu.core.constructor;
    this.core0 = mcu.core;
    this.rx = [[], []];             // rx[n]: words waiting for core n
    this.sticky = [0, 0];           // WOF/ROE of core n
    this.held = false;              // core 1 held in reset by the PSM
    this.launches = 0;              // times core 1 left reset
    this.sevs = [0, 0];
    this.busy = [0, 0];             // cycles each core ran (batch)
    const view1 = Object.create(mcu);
    this.view1 = view1;
    view1.ppb = new mcu.ppb.constructor(view1, "PPB1");
    mcu.addClockListener((f) => { view1.ppb.systickTimer.frequency = f; });
    const shared = mcu.sio;
    view1.sio = new SioPort(1, shared, new shared.constructor(view1), this);
    // core 0's port: rp2040js's RPSIO instance patched in place (gpio pins read its fields)
    const port0 = new SioPort(0, shared, shared, this);
    shared.readUint32 = port0.readUint32.bind(port0);
    shared.writeUint32 = port0.writeUint32.bind(port0);
    this.port0 = port0;
    // IRQ lines to both NVICs; the SIO's own to its core.
    mcu.setInterrupt = (irq, value) => {
      if (irq !== IRQ_SIO_PROC1) this.core0.setInterrupt(irq, value);
      if (irq !== IRQ_SIO_PROC0 && this.core1) this.core1.setInterrupt(irq, value);
    };
    // SEV: rp2040js logs it through the chip's logger (core 0: mcu.logger, core 1: view1.logger).
    const base = mcu.logger;
    const hook = (id) => ({
      debug: (n, m) => base.debug(n, m),
      info: (n, m) => { if (m === "SEV") this.sev(id); else base.info(n, m); },
      warn: (n, m) => base.warn(n, m),
      error: (n, m) => base.error(n, m),
    });
    mcu.logger = hook(0);
    view1.logger = hook(1);
    // PSM: proc1 forced off = core 1 in reset.
    const psm = mcu.peripherals[0x40010];
    const psmWrite = psm.writeUint32.bind(psm);
    psm.writeUint32 = (offset, value) => {
      psmWrite(offset, value);
      if (offset === PSM_FRCE_OFF) {
        const off = !!(psm.frceOff & PSM_PROC1);
        if (off && !this.held) this.held = true;
        else if (!off && this.held) this.resetCore1();
      }
    };
    this.core1 = null;              // lazy: no core 1 until the firmware starts it
    if (!lazy) this.resetCore1();
  }

  // A fresh core 1 at the bootrom's reset vector, with a fresh NVIC and SysTick.
  resetCore1() {
    const c = new this.Core(this.view1);
    this.view1.core = c;
    this.core1 = c;
    this.view1.ppb.reset();
    c.reset();
    this.held = false;
    this.launches++;
  }

  // ---- FIFOs -------------------------------------------------------------------------
  fifoStatus(id) {
    return (this.rx[id].length ? ST_VLD : 0) | (this.rx[1 - id].length < FIFO_DEPTH ? ST_RDY : 0) | this.sticky[id];
  }
  fifoPush(id, value) {
    const q = this.rx[1 - id];
    if (q.length >= FIFO_DEPTH) {
      this.sticky[id] |= ST_WOF;
      this.fifoIrq(id);
      return;
    }
    q.push(value);
    if (id === 0 && !this.core1 && !this.held) this.resetCore1();   // lazy: the first word starts core 1
    this.fifoIrq(1 - id);
  }
  fifoPop(id) {
    const q = this.rx[id];
    if (!q.length) {
      this.sticky[id] |= ST_ROE;
      this.fifoIrq(id);
      return 0;
    }
    const v = q.shift();
    this.fifoIrq(id);
    return v;
  }
  fifoClear(id, bits) {             // WOF/ROE are write-1-to-clear
    this.sticky[id] &= ~bits;
    this.fifoIrq(id);
  }
  fifoIrq(id) {
    const on = !!(this.rx[id].length || this.sticky[id]);
    if (id === 0) this.core0.setInterrupt(IRQ_SIO_PROC0, on);
    else if (this.core1) this.core1.setInterrupt(IRQ_SIO_PROC1, on);
  }

  // ---- events ------------------------------------------------------------------------------
  sev(from) {
    this.sevs[from]++;
    this.event(this.core0);
    if (!this.held && this.core1) this.event(this.core1);
  }
  event(c) {
    if (c.waiting && c.readUint16((c.PC - 2) & ~1) === OP_WFE) c.waiting = false;
    else c.eventRegistered = true;
  }

  // ---- running ------------------------------------------------------------------------------
  // Runs both cores for about maxCycles of emulated time (sleep included).
  // -> {ran: cycles in which a core ran, slept: nanoseconds skipped with both asleep,
  //     halted: both asleep with no alarm to wake them}
  batch(maxCycles, stopped) {
    const clock = this.clock, c0 = this.core0;
    let ran = 0, slept = 0, halted = false;
    for (let i = 0; i < maxCycles && !stopped(); ) {
      const c1 = this.core1;
      const run0 = !c0.waiting || awake(c0);
      const run1 = c1 !== null && !this.held && (!c1.waiting || awake(c1));
      if (!run0 && !run1) {
        const n = clock.nanosToNextAlarm;
        if (n <= 0) { halted = true; break; }
        clock.tick(n);
        slept += n;
        i += n / CYCLE_NANOS;
        continue;
      }
      let a = 0, b = 0;
      if (run0) {
        while (a < SLICE && !c0.waiting) {
          const c = c0.executeInstruction();
          clock.tick(c * CYCLE_NANOS);
          a += c;
        }
      }
      if (run1) {
        while (b < SLICE && !c1.waiting && !this.held) b += c1.executeInstruction();
      }
      if (b > a) clock.tick((b - a) * CYCLE_NANOS);
      this.busy[0] += a;
      this.busy[1] += b;
      const d = a > b ? a : b;
      ran += d;
      i += d;
    }
    return { ran, slept, halted };
  }
}

// A waiting core with an interrupt to take wakes up (setInterrupt does this for IRQ
// lines; SysTick and NVIC pokes only flag interruptsUpdated).
function awake(c) {
  if (c.interruptsUpdated && c.checkForInterrupts()) c.waiting = false;
  return !c.waiting;
}

// opts.lazy: core 1 comes into being when the firmware first starts it (the runner)
export function installCore1(mcu, opts = {}) {
  return new Dual(mcu, !!opts.lazy);
}
