"""A raw-REPL link to one board: mpremote's SerialTransport plus what a test harness needs.

mpremote does the raw REPL and raw-paste protocol (enter_raw_repl, exec_raw_no_follow,
raw_paste_write, the fs_* helpers); this module adds:

* an overall deadline on every wait (mpremote's waits are inter-character only, and
  its ``serial.read(2)`` calls block forever with no timeout): every byte read goes
  through ``_Line``, which raises BoardTimeout when the current deadline passes;
* detection of a dead target (``alive()`` of the emulator/virtual board process, EIO
  on a vanished port) -> BoardGone, and of a board that resets mid-command
  (``soft reboot`` + raw-REPL banner inside the output) -> BoardReset;
* recovery after a timeout or Ctrl-C: interrupt the running code and get back to a
  raw REPL prompt (``recover()``);
* bounded output (``max_output`` bytes per command) and tolerance of undecodable bytes;
* live streaming of output through a callback.

Board output is data: it is decoded with errors="replace" and never evaluated here.
Every error is a BoardError whose message is one line naming the board.
"""
import contextlib
import io
import re
import time

import serial
from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from .errors import (BoardError, BoardExecError, BoardGone, BoardReset,  # noqa: F401 (re-exported)
                     BoardTimeout, OutputTooLarge)

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
RAW_PROMPT = RAW_BANNER + b">"
_FRIENDLY_BANNER = b'Type "help()" for more information.'
# a traceback of code that did not compile (so did not run): one <stdin> frame, no "in"
_COMPILE_ERROR = re.compile(rb'^Traceback \(most recent call last\):\n  File "<stdin>", line \d+\n\w*Error:')
# The receiver used where there is no raw-paste (micro:bit): reads n bytes from the
# UART acknowledging each block of _RX_BLOCK with '#', checks their checksum. The
# bytes go to a file on the flash first (a list of blocks would not fit the heap).
_RX_BLOCK = 16
_RX_CODE = (b"import gc\n"
            b"from microbit import uart\n"
            b"def _mpa_rx(n, c, p='_mpa_rx.py'):\n"
            b" gc.collect()\n"
            b" f = open(p, 'wb')\n"
            b" x = 0\n"
            b" while n > 0:\n"
            b"  k = n if n < 16 else 16\n"
            b"  b = b''\n"
            b"  while len(b) < k:\n"
            b"   s = uart.read(k - len(b))\n"
            b"   if s:\n"
            b"    b += s\n"
            b"  for v in b:\n"
            b"   x = (x * 31 + v) & 0xFFFFFF\n"
            b"  f.write(b)\n"
            b"  n -= k\n"
            b"  uart.write('#')\n"
            b" f.close()\n"
            b" if x != c:\n"
            b"  raise ValueError('_mpa_rx')\n"
            b" if p != '_mpa_rx.py':\n"
            b"  return\n"
            b" gc.collect()\n"
            b" f = open(p)\n"
            b" s = f.read()\n"
            b" f.close()\n"
            b" return s\n")
_POLL_S = 0.05  # pyserial read timeout: how often deadlines and alive() are checked
_ALIVE_EVERY_S = 0.2


def shorten(data, limit=120):
    """bytes/str -> a printable one-line excerpt (the end of it) for error messages:
    anything but printable ASCII is escaped, so board output cannot drive the terminal."""
    if isinstance(data, (bytes, bytearray)):
        data = bytes(data).decode("latin-1")
    out = []
    for c in data:
        o = ord(c)
        if c == "\r":
            out.append("\\r")
        elif c == "\n":
            out.append("\\n")
        elif 32 <= o < 127:
            out.append(c)
        else:
            out.append("\\x%02x" % o if o < 256 else "?")
    data = "".join(out)
    if len(data) > limit:
        data = "..." + data[-limit:]
    return data


def checksum24(data):
    """24-bit rolling checksum (int); the same formula runs on the board."""
    c = 0
    for x in data:
        c = (c * 31 + x) & 0xFFFFFF
    return c


class _Line:
    """Wraps the pyserial port: read(n) waits for n bytes but never past the
    transport's deadline, checks the target is alive, and keeps a push-back buffer
    (so read_until can read in chunks without eating bytes past its ending)."""

    def __init__(self, port, owner):
        self.port = port
        self.owner = owner
        self.pending = bytearray()

    def _recv(self, n):
        try:
            data = self.port.read(n)
        except (serial.SerialException, OSError) as e:
            raise BoardGone("the serial line failed (%s)" % (self.owner.why_gone(e),), where=self.owner.name) from None
        if data:
            self.owner.note_rx(data)
        return data

    def read(self, n=1):
        out = bytearray()
        if self.pending:
            out += self.pending[:n]
            del self.pending[:n]
        while len(out) < n:
            self.owner.check()
            out += self._recv(n - len(out))
        return bytes(out)

    def read_some(self, limit=4096):
        """Whatever is available now (at least one byte), within the deadline."""
        if self.pending:
            out = bytes(self.pending[:limit])
            del self.pending[:limit]
            return out
        while True:
            self.owner.check()
            try:
                n = self.port.in_waiting
            except (serial.SerialException, OSError) as e:
                raise BoardGone("the serial line failed (%s)" % (self.owner.why_gone(e),), where=self.owner.name) from None
            data = self._recv(min(max(n, 1), limit))
            if data:
                return data

    def unread(self, data):
        self.pending[:0] = data

    def inWaiting(self):  # noqa: N802 (pyserial's name, used by mpremote)
        try:
            return len(self.pending) + self.port.in_waiting
        except (serial.SerialException, OSError) as e:
            raise BoardGone("the serial line failed (%s)" % (self.owner.why_gone(e),), where=self.owner.name) from None

    @property
    def in_waiting(self):
        return self.inWaiting()

    def write(self, data):
        self.owner.check()
        try:
            return self.port.write(data)
        except serial.SerialTimeoutException:
            raise BoardTimeout("the board does not take input (write timed out)", where=self.owner.name) from None
        except (serial.SerialException, OSError) as e:
            raise BoardGone("the serial line failed (%s)" % (self.owner.why_gone(e),), where=self.owner.name) from None

    def flush(self):
        pass

    def __getattr__(self, name):
        return getattr(self.port, name)


class Transport(SerialTransport):
    """mpremote's SerialTransport with deadlines, recovery, bounded output.

    name: how errors name the board (e.g. "vboard:rp2040"). alive: callable -> bool
    (the Target's), checked while waiting. max_output: bytes one command may print.
    """

    def __init__(self, device, name=None, alive=None, baudrate=115200, exclusive=True,
                 max_output=4 << 20, write_timeout=10.0, why_dead=None):
        self.name = name or device
        self.alive = alive
        self.why_dead = why_dead  # callable -> str or None: why alive() is False (the Target's dead_reason)
        self.max_output = max_output
        self.tail = bytearray()  # the last bytes received, for error messages
        self._deadline = None
        self._doing = "waiting"
        self._secs = 0
        self._next_alive = 0.0
        self.broken = None  # set to a message once the link is unusable
        self.resend = 3  # classic raw REPL only, see exec_raw
        # code longer than this goes through the receiver (which costs heap itself)
        self.rx_exec_over = 256
        self.rx_state = None  # acknowledging receiver installed on the board? (None: unknown)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                super().__init__(device, baudrate=baudrate, exclusive=exclusive, timeout=_POLL_S)
        except TransportError:
            raise BoardError("cannot open %s: %s" % (device, _why_not_open(device, exclusive)), where=self.name) from None
        try:
            self.serial.write_timeout = write_timeout
        except NotImplementedError:  # pyserial's rfc2217:// (ser2net, labgrid) has none; its writes are sendall()
            pass
        self.serial = _Line(self.serial, self)

    # -- deadlines and liveness ---------------------------------------------------

    @contextlib.contextmanager
    def deadline(self, seconds, doing):
        """Within the block, every wait ends by `seconds` from now (or an enclosing,
        earlier deadline) with BoardTimeout saying what was being done."""
        saved = (self._deadline, self._doing, self._secs)
        new = time.monotonic() + seconds
        if self._deadline is None or new < self._deadline:
            self._deadline, self._doing, self._secs = new, doing, seconds
        try:
            yield
        finally:
            self._deadline, self._doing, self._secs = saved

    def set_deadline(self, seconds, doing):
        """Replace the innermost deadline (e.g. per test while a suite streams);
        the enclosing deadline() block restores the old one when it ends."""
        self._deadline, self._doing, self._secs = time.monotonic() + seconds, doing, seconds

    def check(self):
        now = time.monotonic()
        if self.broken:
            raise BoardError(self.broken)
        if self._deadline is not None and now >= self._deadline:
            got = " (last bytes received: '%s')" % shorten(self.tail, 60) if self.tail else " (nothing received)"
            raise BoardTimeout("no answer within %g s while %s%s" % (self._secs, self._doing, got), where=self.name)
        if self.alive is not None and now >= self._next_alive:
            self._next_alive = now + _ALIVE_EVERY_S
            if not self.alive():
                raise BoardGone("%s while %s" % (self._dead_text(), self._doing), where=self.name)

    def _dead_text(self):
        why = None
        if self.why_dead is not None:
            try:
                why = self.why_dead()
            except Exception:
                why = None
        if not why:
            return "the board process exited"
        return shorten(why, 100) if why.startswith("the ") else "the board process exited (%s)" % shorten(why, 80)

    def why_gone(self, exc):
        if self.alive is not None and not self.alive():
            return self._dead_text()
        return shorten(str(exc), 80)

    def note_rx(self, data):
        self.tail += data
        if len(self.tail) > 256:
            del self.tail[:-256]

    # -- reading (replaces mpremote's inter-character-only waits) ------------------

    def read_until(self, min_num_bytes, ending, timeout=10, data_consumer=None, timeout_overall=None):
        """Read up to and including `ending`, within the current deadline (and
        timeout_overall if given). With data_consumer, data is passed on as it
        comes and not kept. Raises BoardTimeout instead of returning short."""
        limit = timeout_overall if timeout_overall is not None else (self._secs_left() or 10)
        with self.deadline(limit, self._doing):
            data = bytearray()
            kept = 0
            while True:
                chunk = self.serial.read_some()
                start = max(0, len(data) - len(ending) + 1)
                data += chunk
                i = data.find(ending, start)
                if i >= 0:
                    end = i + len(ending)
                    self.serial.unread(data[end:])
                    del data[end:]
                    if data_consumer:
                        data_consumer(bytes(data))
                    return bytes(data)
                kept += len(chunk)
                if kept > self.max_output:
                    raise OutputTooLarge("more than %d bytes of output while %s" % (self.max_output, self._doing), where=self.name)
                if data_consumer and len(data) >= len(ending):
                    keep = len(ending) - 1
                    data_consumer(bytes(data[: len(data) - keep]))
                    del data[: len(data) - keep]

    def _secs_left(self):
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def follow(self, timeout, data_consumer=None):
        """Wait for the end of a running command: returns (stdout, exception text).
        Streams stdout to data_consumer. Detects a board that resets mid-command."""
        out = bytearray()
        total = 0
        with self.deadline(timeout, self._doing):
            window = bytearray()
            while True:
                chunk = self.serial.read_some()
                i = chunk.find(b"\x04")
                if i >= 0:
                    self.serial.unread(chunk[i + 1:])
                    chunk = chunk[:i]
                total += len(chunk)
                window += chunk
                if (RAW_BANNER in window and b"soft reboot" in window) or _FRIENDLY_BANNER in window:
                    raise BoardReset("the board reset itself while %s" % (self._doing,), where=self.name)
                del window[:-96]
                if total > self.max_output:
                    if data_consumer:   # what came within the limit is parsed (a test's start line)
                        data_consumer(bytes(chunk[:max(0, len(chunk) - (total - self.max_output))]))
                    raise OutputTooLarge("more than %d bytes of output while %s" % (self.max_output, self._doing),
                                         where=self.name)
                if data_consumer:
                    if chunk:
                        data_consumer(bytes(chunk))
                else:
                    out += chunk
                if i >= 0:
                    break
            err = self.read_until(1, b"\x04")[:-1]
        return bytes(out), bytes(err)

    # -- commands -------------------------------------------------------------------

    def enter_raw_repl(self, soft_reset=True, timeout_overall=10):
        with self.deadline(timeout_overall * (3 if soft_reset else 1),
                           "soft-resetting the board" if soft_reset else "entering the raw REPL"):
            with contextlib.redirect_stdout(io.StringIO()):  # mpremote prints its buffer on failure
                if soft_reset and self.rx_state:
                    self.rx_state = None
                try:
                    super().enter_raw_repl(soft_reset=soft_reset, timeout_overall=timeout_overall)
                except TransportError:
                    raise BoardError("could not enter the raw REPL (got '%s')" % (shorten(self.tail, 60),), where=self.name) from None

    def exec_raw(self, command, timeout=10, data_consumer=None):
        """Send and run code; returns (stdout, exception text).

        Without raw-paste (old firmware, e.g. the micro:bit) the classic raw REPL has
        no flow control and bytes get lost when the board is busy (the micro:bit's
        UART ring holds 20 bytes). So there: the code is sent again (up to `resend`
        times) when the board did not answer "OK" or the code did not compile (in
        both cases nothing ran); and long code goes through a small
        receiver on the board that acknowledges every 16 bytes (see _RX_CODE) when
        it is longer than rx_exec_over bytes."""
        if isinstance(command, str):
            command = command.encode()
        for attempt in range(self.resend + 1):
            classic = not self.use_raw_paste
            payload = None
            if classic and len(command) > self.rx_exec_over and self._rx_ready():
                payload, command_now = command, b"exec(_mpa_rx(%d, %d))" % (len(command), checksum24(command))
            else:
                command_now = command
            send_s = (3 if classic else min(10, max(timeout, 2))) + len(command) / 1000
            try:
                with self.deadline(send_s, self._doing if self._deadline else "sending code"):
                    with contextlib.redirect_stdout(io.StringIO()):
                        try:
                            self.exec_raw_no_follow(command_now)
                        except TransportError as e:
                            raise BoardError("%s (got '%s')" % (e, shorten(self.tail, 60)), where=self.name) from None
                    if payload is not None:
                        self._send_acked(payload)
            except BoardGone:
                raise
            except BoardError:
                # (the first command learns whether raw-paste exists)
                if attempt == self.resend or self.use_raw_paste or not self.interrupt():
                    raise
                continue
            with self.deadline(timeout, self._doing if self._deadline else "running code"):
                out, err = self.follow(timeout, data_consumer)
            if not self.use_raw_paste and attempt < self.resend:
                e = err.replace(b"\r\n", b"\n")
                if _COMPILE_ERROR.match(e) or (payload is not None and e.endswith(b"ValueError: _mpa_rx\n")):
                    continue
            return out, err

    def put_file(self, path, data, timeout=30):
        """Write a file through the acknowledging receiver (boards without raw-paste
        that have one). Returns False where there is none: use fs_writefile."""
        if self.use_raw_paste or not self._rx_ready():
            return False
        for attempt in range(self.resend + 1):
            cmd = b"_mpa_rx(%d, %d, %r)" % (len(data), checksum24(data), path.encode())
            try:
                with self.deadline(3 + len(data) / 500, "writing %s" % path):
                    with contextlib.redirect_stdout(io.StringIO()):
                        try:
                            self.exec_raw_no_follow(cmd)
                        except TransportError as e:
                            raise BoardError("%s (got '%s')" % (e, shorten(self.tail, 60)), where=self.name) from None
                    self._send_acked(data)
            except BoardGone:
                raise
            except BoardError:
                if attempt == self.resend or not self.interrupt():
                    raise
                continue
            out, err = self.follow(timeout)
            if not err:
                return True
            e = err.replace(b"\r\n", b"\n")
            if attempt < self.resend and (_COMPILE_ERROR.match(e) or e.endswith(b"ValueError: _mpa_rx\n")):
                continue
            raise BoardExecError(self.name, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
        return False

    def _rx_ready(self):
        """Install the acknowledging receiver (once per soft reset); False if the
        board has no way to read its UART from Python."""
        if self.rx_state is None:
            self.rx_state = False
            try:
                out, err = self.exec_raw(_RX_CODE, timeout=5)
            except BoardTimeout:
                if not self.interrupt():
                    raise
                return False
            if err and b"ImportError" not in err:
                self.rx_state = None  # lost bytes or no memory: try again next time
                return False
            self.rx_state = not err
        return self.rx_state

    def _send_acked(self, data):
        for i in range(0, len(data), _RX_BLOCK):
            self.serial.write(data[i:i + _RX_BLOCK])
            ack = self.serial.read(1)
            if ack != b"#":
                self.serial.unread(ack)  # an error report: follow() reads it
                return

    def exec(self, command, data_consumer=None, timeout=10):
        out, err = self.exec_raw(command, timeout=timeout, data_consumer=data_consumer)
        if err:
            raise BoardExecError(self.name, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
        return out

    def interrupt(self):
        """Ctrl-C the running code and get back to a raw REPL prompt. Returns True if
        the board answered; on failure marks the link broken (later calls fail fast)."""
        self.serial.pending.clear()
        limit, self.max_output = self.max_output, 1 << 62  # the deadline bounds what we drain
        try:
            with self.deadline(6, "interrupting the running code (Ctrl-C)"):
                for _ in range(3):
                    self.serial.write(b"\x03")
                    time.sleep(0.05)
                # leaves the prompt's '>' unread: exec_raw_no_follow waits for it
                self.enter_raw_repl(soft_reset=False, timeout_overall=5)
            return True
        except BoardError as e:
            self.broken = "%s: the board stopped answering (%s)" % (self.name, e.what)
            return False
        finally:
            self.max_output = limit

    def close(self):
        port = self.serial.port if isinstance(self.serial, _Line) else self.serial
        try:
            port.write_timeout = 0.5
            if self.in_raw_repl and not self.broken:
                port.write(b"\r\x03\r\x02")
        except Exception:
            pass
        try:
            port.close()
        except Exception:
            pass


def _why_not_open(device, exclusive):
    """Open once more to learn why (mpremote only says 'failed to access')."""
    try:
        s = serial.serial_for_url(device, exclusive=exclusive, timeout=0)
        s.close()
        return "it opened on a second try (transient error)"
    except serial.SerialException as e:
        msg = str(e)
        if "lock" in msg.lower() or "busy" in msg.lower():
            return "the port is busy (another program has it open)"
        if "No such file" in msg or "could not open port" in msg and "[Errno 2]" in msg:
            return "no such port"
        if "Permission denied" in msg:
            return "permission denied (add yourself to the dialout group)"
        return shorten(msg, 100)
    except (ValueError, OSError) as e:
        return shorten(str(e), 100)
