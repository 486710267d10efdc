"""The host's expected errors, in one place.

Every layer raises a subclass of MpallocError for what the user must be told
(a port that does not open, a board that stops answering, a broken profile, a
bad image); the boundary (cli.main, the pytest plugin) catches MpallocError once
and prints one line. Anything else is a bug and keeps its traceback.

    MpallocError(what, where=None)
        .what   what went wrong (and what to do), one line
        .where  the board, port or file it concerns, or None
        str()   "where: what" (or just what)

A layer that adds context to an error it caught uses e.what, never a split of
str(e). Older call sites pass one preformatted message: then .where is None and
.what is that whole message.

    MpallocError
      TargetError        a port/target could not be opened (targets)
        EmulatorError    an emulated board could not start or died (vboard, wasm32, qemu, emu)
        LabgridError     a labgrid place could not be used
      BoardError         talking to a connected board failed (transport, board, runner)
        BoardTimeout, BoardGone, BoardReset, OutputTooLarge, BoardExecError, BoardNoSpace
      ProfileError       a board profile is missing or broken (also a ValueError)
      FlashError         flashing or verifying an image failed
      BenchError         a benchmark could not run
"""


class MpallocError(Exception):
    """An expected failure: str() is one line, "where: what"."""

    def __init__(self, what="", where=None):
        self.what = str(what)
        self.where = where
        super().__init__(self.what if where is None else "%s: %s" % (where, self.what))

    def __str__(self):
        return self.what if self.where is None else "%s: %s" % (self.where, self.what)


class TargetError(MpallocError):
    """A target could not be opened; names the spec (--port value)."""


class EmulatorError(TargetError):
    """An emulated board (virtual board, webassembly port, QEMU, rp2040js) could not start or died."""


class LabgridError(TargetError):
    """A labgrid place could not be used; names the place."""


class BoardError(MpallocError):
    """Something went wrong talking to a board; names the board."""


class BoardTimeout(BoardError):
    """The board did not answer within the deadline."""


class BoardGone(BoardError):
    """The port vanished or the emulator / virtual board process exited."""


class BoardReset(BoardError):
    """The board reset itself while a command was running."""


class OutputTooLarge(BoardError):
    """A command printed more than the transport's max_output bytes."""


class BoardNoSpace(BoardError):
    """The board's filesystem is full."""


class BoardExecError(BoardError):
    """Code run on the board raised an exception.

    .output is what it printed before (str), .error the device traceback (str).
    """

    def __init__(self, name, output, error):
        self.output = output
        self.error = error
        from .transport import shorten   # escapes what the board printed

        last = error.strip().splitlines()[-1] if error.strip() else "unknown error"
        super().__init__(shorten(last, 200), where=name)


class ProfileError(MpallocError, ValueError):
    """A profile is missing or broken; the message names the file and field."""


class FlashError(MpallocError):
    """Flashing or verifying failed; nothing half-done is reported as success."""


class BenchError(MpallocError):
    """A benchmark script could not run; names the script and target."""


def one_line(e):
    """The first line of an error's message (for the boundary's one-line report)."""
    s = str(e).strip() or type(e).__name__
    return s.split("\n")[0] + (" ..." if "\n" in s else "")
