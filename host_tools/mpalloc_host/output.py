"""Terminal output for the CLI: rich progress and colours on a terminal, plain
lines when stdout is not one (CI logs, pipes)."""
import contextlib
import sys

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn


class Output:
    def __init__(self, quiet=False, file=None):
        self.file = file or sys.stdout
        self.tty = self.file.isatty()
        self.quiet = quiet
        self.console = Console(file=self.file, highlight=False, soft_wrap=True,
                               force_terminal=self.tty, no_color=not self.tty)

    def line(self, text, style=None):
        if self.tty and style:
            self.console.print(text, style=style, markup=False)
        else:
            print(text, file=self.file, flush=True)

    def note(self, text):
        if not self.quiet:
            self.line(text, "dim")

    @contextlib.contextmanager
    def progress(self, what):
        """Yields progress(done, total, item) for a bar (terminal only)."""
        if not self.tty or self.quiet:
            yield lambda *a: None
            return
        cols = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                TextColumn("{task.fields[item]}"))
        with Progress(*cols, console=self.console, transient=True) as p:
            task = p.add_task(what, total=None, item="")

            def update(done, total, item=""):
                p.update(task, completed=done, total=total or None, item=item)

            yield update

    @contextlib.contextmanager
    def status(self, what):
        if not self.tty or self.quiet:
            yield
            return
        with self.console.status(what):
            yield

    def test_event(self, verbose=False):
        """A Runner on_event callback printing results as they stream."""

        def on_event(kind, suite, t, text):
            if kind == "suite" and not self.quiet:
                self.line("== %s" % suite, "bold")
            elif kind == "pass" and not self.quiet:
                self.line("  PASS %s (%s ms, heap %+d B)" % (t.name, t.ms, t.heap or 0), "green")
            elif kind == "fail":
                self.line("  FAIL %s.%s: %s" % (suite, t.name, text), "bold red")
                for ln in t.traceback[-12:]:
                    self.line("      " + ln, "red")
            elif kind == "skip" and not self.quiet:
                self.line("  SKIP %s: %s" % (t.name, text), "yellow")
            elif kind == "error":
                self.line("  ERROR %s" % text, "bold red")
            elif kind == "log" and verbose:
                self.line("    | " + text, "dim")

        return on_event

    def summary(self, report):
        if report is None:
            return
        for s in report.suites:
            if s.error and self.quiet:
                self.line("ERROR " + s.error, "bold red")
        self.line(report.summary_line(), "bold green" if report.ok else "bold red")
