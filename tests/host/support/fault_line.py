"""FaultLine: a serial line that misbehaves on command, for fault-injection tests.

A pty pair stands between a client (the host tools) and a board's device (a
virtual board's or qemu:microbit's pty): the client opens ``line.link`` (a
symlink to the current pty, as udev gives a board a stable name) and a pump
thread copies bytes both ways. On command it

* ``corrupt(direction, n, after=b"")``: replaces the next n bytes (once the
  bytes `after` went by) with seeded random garbage (any byte value, so also
  the raw REPL's \\x04 and \\x03);
* ``drop(direction, n, after=b"")``: loses the next n bytes;
* ``vanish(seconds)``: the port disappears (pty closed, link removed: the
  client's reads fail) and comes back as a new pty under the same link after
  `seconds` (output of the board meanwhile is lost, as with a USB port gone);
* ``inject(direction, data, after=b"")``: sends bytes the other end never wrote.

direction: "down" (board -> host) or "up" (host -> board). ``counts`` holds
the faults injected per kind (bytes corrupted, bytes dropped, vanishings,
injections).
"""
import errno
import os
import pty
import random
import select
import threading
import time
import tty


class FaultLine:
    def __init__(self, upstream, link, seed=9):
        self.upstream = os.open(upstream, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.upstream)
        self.link = str(link)
        self.rng = random.Random(seed)
        self.counts = {"garbage_bytes": 0, "dropped_bytes": 0, "vanished": 0, "injected": 0}
        self.events = []          # (kind, direction, n) once a fault fired
        self._rules = {"down": [], "up": []}
        self._lock = threading.Lock()
        self._m = self._s = None
        self._back_at = None
        self._stop = threading.Event()
        self._open()
        self._t = threading.Thread(target=self._run, name="faultline", daemon=True)
        self._t.start()

    # ---- commands -------------------------------------------------------------
    def corrupt(self, direction, n, after=b""):
        with self._lock:
            self._rules[direction].append(["garbage", n, bytes(after), b""])

    def drop(self, direction, n, after=b""):
        with self._lock:
            self._rules[direction].append(["drop", n, bytes(after), b""])

    def inject(self, direction, data, after=b""):
        with self._lock:
            self._rules[direction].append(["inject", 0, bytes(after), b"", bytes(data)])

    def vanish_after(self, after, seconds):
        """vanish(seconds) once the board sent `after`."""
        with self._lock:
            self._rules["down"].append(["vanish", seconds, bytes(after), b""])

    def vanish(self, seconds):
        with self._lock:
            self._vanish(seconds)

    def _vanish(self, seconds):
        if True:
            self._close_pty()
            self._back_at = time.monotonic() + seconds
            self.counts["vanished"] += 1
            self.events.append(("vanished", "both", seconds))

    def present(self):
        return os.path.exists(self.link)

    def close(self):
        self._stop.set()
        self._t.join(3)
        with self._lock:
            self._close_pty()
        try:
            os.close(self.upstream)
        except OSError:
            pass

    # ---- internals ------------------------------------------------------------
    def _open(self):
        m, s = pty.openpty()
        tty.setraw(s)
        os.set_blocking(m, False)
        tmp = self.link + ".new"
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        os.symlink(os.ttyname(s), tmp)
        os.replace(tmp, self.link)
        self._m, self._s = m, s

    def _close_pty(self):
        try:
            os.unlink(self.link)
        except FileNotFoundError:
            pass
        for fd in (self._m, self._s):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._m = self._s = None

    def _apply(self, direction, data):
        out = bytearray()
        rules = self._rules[direction]
        while data:
            if not rules:
                out += data
                break
            rule = rules[0]
            kind, n, after, seen = rule[:4]
            if kind == "inject" and not after:
                out += rule[4]
                self.counts["injected"] += len(rule[4])
                self.events.append(("inject", direction, len(rule[4])))
                rules.pop(0)
                continue
            if after:
                # pass bytes through until `after` went by
                buf = seen + data
                i = buf.find(after)
                if i < 0:
                    keep = len(after) - 1
                    rule[3] = buf[-keep:] if keep else b""
                    out += data
                    return bytes(out)
                cut = i + len(after) - len(seen)      # bytes of `data` up to the end of `after`
                out += data[:cut]
                data = data[cut:]
                rule[2] = b""
                if kind == "vanish":
                    rules.pop(0)
                    self._vanish(n)
                    return b""
                if kind == "inject":
                    continue
                if not data:
                    return bytes(out)
            k = min(n, len(data))
            if kind == "garbage":
                out += bytes(self.rng.randrange(256) for _ in range(k))
                self.counts["garbage_bytes"] += k
            else:
                self.counts["dropped_bytes"] += k
            self.events.append((kind, direction, k))
            data = data[k:]
            rule[1] -= k
            if rule[1] <= 0:
                rules.pop(0)
        return bytes(out)

    def _run(self):
        to_client, to_board = bytearray(), bytearray()
        while not self._stop.is_set():
            with self._lock:
                if self._m is None and self._back_at is not None and time.monotonic() >= self._back_at:
                    self._open()
                    self._back_at = None
                m = self._m
            rl = [self.upstream] + ([m] if m is not None else [])
            wl = ([m] if m is not None and to_client else []) + ([self.upstream] if to_board else [])
            try:
                r, w, _ = select.select(rl, wl, [], 0.05)
            except (OSError, ValueError):
                continue        # the pty was closed under us (vanish)
            with self._lock:
                if m is not self._m:
                    continue
                if self.upstream in r:
                    try:
                        data = os.read(self.upstream, 4096)
                    except OSError as e:
                        if e.errno not in (errno.EAGAIN, errno.EIO):
                            raise
                        data = b""
                    if data and m is not None:
                        to_client += self._apply("down", data)
                        if self._m is None:
                            continue         # vanished on this data
                if m is not None and m in r:
                    try:
                        data = os.read(m, 4096)
                    except OSError:
                        data = b""
                    if data:
                        to_board += self._apply("up", data)
                if m is None:
                    to_client.clear()
                if m is not None and m in w and to_client:
                    try:
                        del to_client[:os.write(m, to_client)]
                    except OSError:
                        pass
                if self.upstream in w and to_board:
                    try:
                        del to_board[:os.write(self.upstream, to_board)]
                    except OSError:
                        pass
