// emu:rp2040 board: the RP2040's own MicroPython firmware in rp2040js, on stdin/stdout.
//
// node emu_rp2040.mjs BOOTROM_BIN FIRMWARE_UF2 FLASH_IMAGE [FLASH_BYTES]
//
// Bytes on stdin go to the emulated USB CDC (the REPL of a Pico, as on
// /dev/ttyACM0); what the firmware sends over USB CDC goes to stdout unchanged.
// emu_rp2040.py puts this behind a pty (vboard.PtyBridge) for mpremote.
//
// rp2040js 1.4.1 (npm, pinned in package.json) is used as it is; what it lacks
// is added here, by patching instances (no fork):
//  * QSPI flash program/erase (QspiFlash): the chip select follows IO_QSPI's
//    GPIO_QSPI_SS_CTRL.OUTOVER (2 drives it low, 3 high), SSI DR0 gets an RX
//    FIFO, and a W25Q16-like flash answers behind it (0x02 page program ANDs
//    into the array, 0x20/0x52/0xd8/0xc7/0x60 erase, 0x03/0x0b read, 0x05/0x35
//    status: always ready, 0x9f JEDEC id, 0x4b unique id). Without it littlefs
//    cannot format. The first FLASH_BYTES of flash are saved to FLASH_IMAGE
//    (write to a temporary file, then rename) once writes have paused for
//    SAVE_MS of wall time and at exit: killed at any instant, the file holds
//    the flash as it was at some earlier instant between two instructions,
//    which littlefs survives as it survives a power cut.
//  * the USB CDC OUT transfer is held until there is input (the built-in host
//    answers every one with 0 bytes after 10 us: ~34,000 interrupts per emulated
//    second while idle, a third of the chip's time);
//  * UART TXINTR is set by a write to UARTDR and cleared by UARTICR (rp2040js
//    sets it again on every interrupt check, so a UART IRQ handler never returns).
//  * core 1 (core1.mjs: second core, SIO FIFOs, CPUID, per-core NVIC/SysTick, PSM
//    launch), stepped in lock-step slices with core 0, created when the firmware
//    first starts it (lazy: until then core 0 runs as fast as alone). On with
//    MPALLOC_EMU_CORES=2; unset or 1 is rp2040js's one core alone (_thread would hang
//    the chip); any other value is refused (exit 2).
// Logging of the emulator goes to stderr; stdout carries only the board's bytes.
// Exit status: 0 when stdin closes, 2 on bad arguments or images, 3 on an
// emulator error, 4 on a watchdog reset of the chip (machine.reset()): boot again.

import fs from "node:fs";
import { Simulator, USBCDC } from "rp2040js";
import { installCore1 } from "./core1.mjs";

const [bootromPath, uf2Path, imagePath, flashArg] = process.argv.slice(2);
const FLASH_BYTES = parseInt(flashArg || "2097152", 10);
const SAVE_MS = 300;
const DEBUG = !!process.env.MPALLOC_EMU_DEBUG;   // one stderr line per batch of instructions
const UF2_MAGIC0 = 0x0a324655, UF2_MAGIC1 = 0x9e5d5157, UF2_MAGIC_END = 0x0ab16f30;
const UF2_FLAG_FAMILY = 0x2000, UF2_FLAG_NOFLASH = 0x1;
const RP2040_FAMILY = 0xe48bff56;
const FLASH_BASE = 0x10000000;

function fail(code, msg) {
  process.stderr.write("emu_rp2040: " + msg + "\n");
  process.exit(code);
}

if (!bootromPath || !uf2Path || !imagePath) fail(2, "usage: emu_rp2040.mjs BOOTROM FIRMWARE.uf2 FLASH_IMAGE [FLASH_BYTES]");

// ---- images --------------------------------------------------------------------
function readFile(p, what) {
  try {
    return fs.readFileSync(p);
  } catch (e) {
    fail(2, "cannot read the " + what + " " + p + ": " + e.message);
  }
}

// The UF2's payloads as [flash offset, bytes]; every block must be an RP2040 block inside flash.
function uf2Blocks(buf) {
  if (buf.length === 0 || buf.length % 512) fail(2, uf2Path + ": not a UF2 image (" + buf.length + " bytes, not a multiple of 512)");
  const out = [];
  for (let off = 0; off < buf.length; off += 512) {
    const w = (i) => buf.readUInt32LE(off + 4 * i);
    if (w(0) !== UF2_MAGIC0 || w(1) !== UF2_MAGIC1 || buf.readUInt32LE(off + 508) !== UF2_MAGIC_END)
      fail(2, uf2Path + ": block " + off / 512 + " is not a UF2 block (bad magic)");
    const flags = w(2), addr = w(3), size = w(4);
    if (flags & UF2_FLAG_NOFLASH) continue;
    if (!(flags & UF2_FLAG_FAMILY) || w(7) !== RP2040_FAMILY)
      fail(2, uf2Path + ": block " + off / 512 + " is not for the RP2040 (family 0x" + (w(7) >>> 0).toString(16) + ")");
    if (size > 476 || addr < FLASH_BASE || addr + size > FLASH_BASE + FLASH_BYTES)
      fail(2, uf2Path + ": block " + off / 512 + " lies outside flash (0x" + addr.toString(16) + ", " + size + " bytes)");
    out.push([addr - FLASH_BASE, buf.subarray(off + 32, off + 32 + size)]);
  }
  if (!out.length) fail(2, uf2Path + ": no payload for flash");
  return out;
}

const bootrom = readFile(bootromPath, "bootrom");
if (bootrom.length !== 16384) fail(2, bootromPath + ": a B1 bootrom is 16384 bytes, this is " + bootrom.length);
const blocks = uf2Blocks(readFile(uf2Path, "firmware"));

// ---- the chip -------------------------------------------------------------------
const sim = new Simulator();
const mcu = sim.rp2040;
const quiet = (name, msg) => {};
mcu.logger = {
  debug: quiet, info: quiet, warn: quiet,
  error: (name, msg) => process.stderr.write("emu_rp2040: [" + name + "] " + msg + "\n"),
};
mcu.loadBootrom(new Uint32Array(bootrom.buffer, bootrom.byteOffset, bootrom.length / 4));  // resets: flash to 0xff

// The saved flash first (a filesystem written before), then the firmware over it.
let image = null;
try {
  image = fs.readFileSync(imagePath);
} catch (e) {
  if (e.code !== "ENOENT") fail(2, "cannot read the flash image " + imagePath + ": " + e.message);
}
if (image && image.length === FLASH_BYTES) mcu.flash.set(image, 0);
for (const [off, data] of blocks) mcu.flash.set(data, off);

// ---- QSPI flash ----------------------------------------------------------------------
const SSI_SSIENR = 0x08, SSI_TXFLR = 0x20, SSI_RXFLR = 0x24, SSI_SR = 0x28, SSI_DR0 = 0x60;
const SR_TFNF = 0x2, SR_TFE = 0x4, SR_RFNE = 0x8;
const QSPI_SS_CTRL = 0x0c;
const RX_CAP = 64;

class QspiFlash {
  constructor(flash, size) {
    this.flash = flash;
    this.size = size;
    this.cs = false;          // chip select asserted (low)
    this.cmd = [];            // bytes of the current transaction
    this.dirty = false;
    this.writes = 0;          // program/erase commands done
  }
  select(low) {
    if (low === this.cs) return;
    this.cs = low;
    this.cmd = [];
  }
  addr() {
    return ((this.cmd[1] << 16) | (this.cmd[2] << 8) | this.cmd[3]) % this.size;
  }
  // One byte out, one byte back (standard SPI).
  exchange(b) {
    if (!this.cs) return 0;
    const c = this.cmd;
    c.push(b);
    const n = c.length - 1;   // index of this byte
    switch (c[0]) {
      case 0x03:                                  // read
        return n >= 4 ? this.flash[(this.addr() + n - 4) % this.size] : 0;
      case 0x0b:                                  // fast read (one dummy byte)
        return n >= 5 ? this.flash[(this.addr() + n - 5) % this.size] : 0;
      case 0x02:                                  // page program: AND, wraps in the page
        if (n >= 4) {
          const a = this.addr();
          const p = (a & ~0xff) | ((a + n - 4) & 0xff);
          this.flash[p] &= b;
          this.dirty = true;
          if (n === 4) this.writes++;
        }
        return 0;
      case 0x20: this.erase(n, 4096); return 0;
      case 0x52: this.erase(n, 32768); return 0;
      case 0xd8: this.erase(n, 65536); return 0;
      case 0xc7: case 0x60:
        if (n === 0) { this.flash.fill(0xff, 0, this.size); this.dirty = true; this.writes++; }
        return 0;
      case 0x05: return 0;                        // status 1: never busy, WEL ignored
      case 0x35: return 0x02;                     // status 2: QE set
      case 0x9f: return [0, 0xef, 0x40, 0x15][n] || 0;   // W25Q16JV
      case 0x4b: return n >= 5 ? [0xe6, 0x60, 0x58, 0x38, 0x83, 0x39, 0x2b, 0x21][(n - 5) % 8] : 0;
      default: return 0;
    }
  }
  erase(n, len) {
    if (n !== 3) return;
    const a = this.addr() & ~(len - 1);
    this.flash.fill(0xff, a, Math.min(a + len, this.size));
    this.dirty = true;
    this.writes++;
  }
}

const qflash = new QspiFlash(mcu.flash, FLASH_BYTES);
const ssi = mcu.peripherals[0x18000];
const rx = [];
const ssiRead = ssi.readUint32.bind(ssi), ssiWrite = ssi.writeUint32.bind(ssi);
ssi.readUint32 = (offset) => {
  switch (offset) {
    case SSI_DR0: return rx.length ? rx.shift() : 0;
    case SSI_RXFLR: return rx.length;
    case SSI_TXFLR: return 0;
    case SSI_SR: return SR_TFE | SR_TFNF | (rx.length ? SR_RFNE : 0);
  }
  return ssiRead(offset);
};
ssi.writeUint32 = (offset, value) => {
  if (offset === SSI_DR0) {
    // not selected by IO_QSPI: the boot2 stage's own commands (status reads): answer 0
    rx.push(qflash.cs ? qflash.exchange(value & 0xff) : 0);
    if (rx.length > RX_CAP) rx.shift();
    return;
  }
  if (offset === SSI_SSIENR && !(value & 1)) rx.length = 0;   // disabling the SSI empties its FIFOs
  ssiWrite(offset, value);
};

// IO_QSPI (unimplemented in rp2040js): registers kept; SS_CTRL.OUTOVER drives chip select.
const ioQspi = mcu.peripherals[0x40018];
const qspiRegs = new Map();
ioQspi.readUint32 = (offset) => qspiRegs.get(offset) || 0;
ioQspi.writeUint32 = (offset, value) => {
  qspiRegs.set(offset, value >>> 0);
  if (offset === QSPI_SS_CTRL) {
    const over = (value >>> 8) & 3;
    qflash.select(over === 2);
  }
};

// ---- saving the flash image ------------------------------------------------------------
let saveTimer = null;
function saveNow() {
  saveTimer = null;
  if (!qflash.dirty) return;
  qflash.dirty = false;
  const tmp = imagePath + ".tmp" + process.pid;
  try {
    fs.writeFileSync(tmp, mcu.flash.subarray(0, FLASH_BYTES));
    fs.renameSync(tmp, imagePath);
  } catch (e) {
    process.stderr.write("emu_rp2040: cannot save the flash image " + imagePath + ": " + e.message + "\n");
  }
}
setInterval(() => {
  if (qflash.dirty && saveTimer === null) saveTimer = setTimeout(saveNow, SAVE_MS);
}, 100).unref();

// ---- UART TX interrupt ----------------------------------------------------------------
const UARTDR = 0x0, UARTTXINTR = 1 << 5;
for (const uart of mcu.uart) {
  uart.checkInterrupts = function () {
    this.rp2040.setInterrupt(this.irq, !!(this.interruptStatus & this.interruptMask));
  };
  const write = uart.writeUint32.bind(uart);
  uart.writeUint32 = function (offset, value) {
    write(offset, value);
    if (offset === UARTDR) {                // the byte went out at once: TX holding register empty
      this.interruptStatus |= UARTTXINTR;
      this.checkInterrupts();
    }
  };
  uart.onByte = () => {};
}

// ---- USB CDC -----------------------------------------------------------------------------
const cdc = new USBCDC(mcu.usbCtrl);
const pendingIn = [];       // host bytes not yet in the CDC FIFO
let heldRead = null;        // an OUT transfer waiting for input: [endpoint, size]
const onRead = mcu.usbCtrl.onEndpointRead;
mcu.usbCtrl.onEndpointRead = (endpoint, size) => {
  if (endpoint === cdc.outEndpoint) {
    refill();
    if (cdc.txFIFO.empty) {
      heldRead = [endpoint, size];
      return;
    }
  }
  onRead(endpoint, size);
};
function refill() {
  while (pendingIn.length && !cdc.txFIFO.full) cdc.txFIFO.push(pendingIn.shift());
}
function release() {
  refill();
  if (heldRead && !cdc.txFIFO.empty) {
    const [endpoint, size] = heldRead;
    heldRead = null;
    onRead(endpoint, size);
  }
}
cdc.onDeviceConnected = () => release();
cdc.onSerialData = (buffer) => process.stdout.write(Buffer.from(buffer));

process.stdin.on("data", (chunk) => {
  for (const c of chunk) pendingIn.push(c);
  release();
  wake();
});
function finish(code) {
  sim.stop();
  if (saveTimer) clearTimeout(saveTimer);
  saveNow();
  process.exit(code);
}
process.stdin.on("end", () => finish(0));
// A watchdog reset (machine.reset(), machine.WDT running out) resets the whole chip,
// both cores and every peripheral, which rp2040js cannot do in place: the flash is
// saved and the process exits with REBOOT; emu_rp2040.py boots a fresh chip from
// that flash behind the same pty (as the Pico's USB port comes back after a reset).
const REBOOT = 4;
const watchdog = mcu.peripherals[0x40058];
watchdog.onWatchdogTrigger = () => finish(REBOOT);
// booted again after one: WATCHDOG REASON (1 timer, 2 force) as the reset left it
// (machine.reset_cause() reads WDT_RESET on a Pico after machine.reset())
watchdog.reason = parseInt(process.env.MPALLOC_EMU_WATCHDOG_REASON || "0", 10) & 3;
process.on("SIGTERM", () => finish(0));

// ---- run ------------------------------------------------------------------------------------
// Simulator.execute's loop, paced: a batch in which the chip mostly slept (WFE/WFI skip
// to the next alarm) is followed by a wall-time pause as long as the emulated time it
// slept (at most IDLE_MAX_MS), so an idle REPL costs no host CPU; busy batches follow
// one another at once.
const IDLE_MAX_MS = 20;
const CYCLE_NANOS = 8;      // 125 MHz
const clock = sim.clock;
const core = mcu.core;
const CORES = (process.env.MPALLOC_EMU_CORES || "1").trim() || "1";
if (CORES !== "1" && CORES !== "2") fail(2, "MPALLOC_EMU_CORES=" + JSON.stringify(CORES) + ": 1 or 2 cores (default 1)");
const dual = CORES === "2" ? installCore1(mcu, { lazy: true }) : null;
let stopped = false;
let next = null;            // the pending setTimeout of run()
sim.stop = () => { stopped = true; };
function wake() {           // input arrived: run now rather than after a pause
  if (next !== null) {
    clearTimeout(next);
    next = null;
    setImmediate(run);
  }
}
function run() {
  next = null;
  let slept = 0, ran = 0, halted = false;
  try {
    if (dual) ({ ran, slept, halted } = dual.batch(1000000, () => stopped));
    else for (let i = 0; i < 1000000 && !stopped; i++) {
      if (core.waiting) {
        const n = clock.nanosToNextAlarm;
        if (n <= 0) {       // asleep with no alarm: only input (an interrupt) wakes it
          halted = true;
          break;
        }
        clock.tick(n);
        slept += n;
        i += n / CYCLE_NANOS;
      } else {
        const c = core.executeInstruction();
        clock.tick(c * CYCLE_NANOS);
        ran += c;
      }
    }
  } catch (e) {
    saveNow();
    fail(3, "emulator error: " + (e && e.stack || e));
  }
  if (stopped) return;
  const sleptMs = slept / 1e6;
  if (DEBUG) process.stderr.write(`batch cycles=${ran} slept_ns=${slept} pc=${core.PC.toString(16)} ipsr=${core.IPSR} pm=${core.PM} pend=${core.pendingInterrupts.toString(16)} en=${core.enabledInterrupts.toString(16)} lr=${(core.LR>>>0).toString(16)} flash_writes=${qflash.writes}${dual ? " busy=" + dual.busy : ""}\n`);
  const pause = halted ? IDLE_MAX_MS : ran * CYCLE_NANOS < slept ? Math.min(IDLE_MAX_MS, sleptMs) : 0;
  next = setTimeout(run, pause);
}
core.PC = FLASH_BASE;
run();
