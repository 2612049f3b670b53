"""Progress of long operations (placement, simulation, deploy) in a terminal or a notebook.

The bar is rich's everywhere. In a terminal rich draws it live; in a notebook rich would
need ipywidgets, so instead the same bar is rendered to HTML and a display handle is
updated in place — that works in every frontend, and the finished bar stays in the saved
notebook. Elsewhere (pipes, CI logs) nothing is drawn.

:func:`run` runs the work in a worker thread and keeps the display in the calling thread,
so a spinner and the elapsed time advance even when the work reports nothing (a CP-SAT
search); :func:`task` is for work that runs in the calling thread (``await deploy(...)``)
and reports as it goes.
"""

from __future__ import annotations

import io
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO, TypeVar

__all__ = ["Reporter", "run", "task", "in_notebook", "ProgressLines", "DeployProgress"]

T = TypeVar("T")
_TICK = 0.2  # seconds between two redraws


def in_notebook() -> bool:
    """Whether output goes to a Jupyter kernel (which renders HTML, not terminal codes)."""
    from rich.console import Console

    return Console().is_jupyter


class Reporter:
    """What the work reports: how far it is (``update``) and what it is doing
    (``message``). Thread-safe; the display reads it on its own schedule."""

    def __init__(self, total: float | None = None) -> None:
        self._lock = threading.Lock()
        self.completed: float = 0.0
        self.total: float | None = total
        self.status: str = ""
        self.cancelled = False  # the user interrupted: the next report stops the work

    def update(self, completed: float, total: float | None = None) -> None:
        if self.cancelled:
            raise KeyboardInterrupt
        with self._lock:
            self.completed = completed
            if total is not None:
                self.total = total

    def message(self, text: str) -> None:
        from rich.markup import escape

        with self._lock:
            self.status = escape(text)

    def snapshot(self) -> tuple[float, float | None, str]:
        with self._lock:
            return self.completed, self.total, self.status


def _columns(unit: str) -> list:
    from rich.progress import (
        BarColumn,
        ProgressColumn,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class Amount(ProgressColumn):
        """``1.2/2 s``: how far, in the work's own unit (nothing while the total is unknown)."""

        def render(self, task) -> Text:
            if not unit or task.total is None:
                return Text("")
            return Text(f"{task.completed:.3g}/{task.total:.3g} {unit}")

    return [SpinnerColumn(finished_text="[green]✓"), TextColumn("{task.description}"),
            BarColumn(), TaskProgressColumn(), Amount(), TimeElapsedColumn(),
            TextColumn("{task.fields[status]}")]


class _Display:
    """One rich progress bar, drawn live in a terminal or as HTML in a notebook."""

    def __init__(self, description: str, unit: str, total: float | None) -> None:
        from rich.console import Console
        from rich.progress import Progress

        self.notebook = in_notebook()
        self._handle = None
        if self.notebook:
            self._console = Console(file=io.StringIO(), record=True, width=100,
                                    force_terminal=True, force_jupyter=False,
                                    color_system="truecolor")
            self.progress = Progress(*_columns(unit), console=self._console,
                                     auto_refresh=False)
        else:
            console = Console(stderr=True)
            self.progress = Progress(*_columns(unit), console=console,
                                     disable=not console.is_terminal)
        self.task = self.progress.add_task(description, total=total, status="")
        self._last = 0.0

    def __enter__(self) -> _Display:
        if not self.notebook:
            self.progress.start()
        self.draw(force=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.draw(force=True)
        if not self.notebook:
            self.progress.stop()

    def show(self, reporter: Reporter) -> None:
        completed, total, status = reporter.snapshot()
        self.progress.update(self.task, completed=completed, total=total, status=status)
        self.draw()

    def finish(self, ok: bool) -> None:
        t = self.progress.tasks[0]
        total = t.total if t.total is not None else max(t.completed, 1.0)
        # A finished bar keeps the last thing the work said; a failed one says so.
        self.progress.update(self.task, total=total, completed=total if ok else t.completed,
                             **({} if ok else {"status": "[red]failed"}))
        self.progress.stop_task(self.task)

    def draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < _TICK:
            return
        self._last = now
        if not self.notebook:
            return  # rich's own thread refreshes the terminal
        from IPython.display import display

        self._console.print(self.progress.get_renderable())
        markup = self._console.export_html(inline_styles=True, clear=False,
                                           code_format='<pre class="mosaico-progress" '
                                           'style="margin: 0; font-size: 85%">{code}</pre>')
        bundle = {"text/html": markup, "text/plain": self._console.export_text(clear=True)}
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)


def run(description: str, work: Callable[[Reporter], T], *, total: float | None = None,
        unit: str = "") -> T:
    """Run ``work(reporter)`` in a worker thread while showing its progress; return its
    result or raise its exception."""
    reporter = Reporter(total)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work(reporter)
        except BaseException as e:  # handed to the calling thread below
            outcome["error"] = e

    # A daemon thread: an interrupted cell must not keep the kernel from exiting.
    worker = threading.Thread(target=target, name=f"mosaico: {description}", daemon=True)
    with _Display(description, unit, total) as d:
        worker.start()
        try:
            while worker.is_alive():
                worker.join(_TICK)
                d.show(reporter)
        except KeyboardInterrupt:
            # Work that reports (a simulation) stops at its next report; work that does
            # not (a CP-SAT search) finishes in the background, its result dropped.
            reporter.cancelled = True
            d.finish(False)
            raise
        d.show(reporter)
        d.finish("error" not in outcome)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@contextmanager
def task(description: str, *, total: float | None = None, unit: str = ""
         ) -> Iterator[Reporter]:
    """Show progress of work done in this thread; redraws happen on each report::

        with task("deploying") as p:
            await deploy(targets, store, build=build, progress=p.message)
    """
    with _Display(description, unit, total) as d:
        reporter = _LiveReporter(d, total)
        ok = False
        try:
            yield reporter
            ok = True
        finally:
            d.show(reporter)
            d.finish(ok)


class _LiveReporter(Reporter):
    def __init__(self, display: _Display, total: float | None) -> None:
        super().__init__(total)
        self._display = display

    def update(self, completed: float, total: float | None = None) -> None:
        super().update(completed, total)
        self._display.show(self)

    def message(self, text: str) -> None:
        super().message(text)
        self._display.show(self)


_COUNTER = re.compile(r"(?P<subject>.*?)(?P<done>\d+)/(?P<total>\d+)(?P<rest>.*)")


class ProgressLines:
    """Progress messages of the command line (``deploy``, ``destroy``) as lines on stderr.

    A counter (``s1: 500/3009 updates``) changes often. In a terminal it is redrawn in place
    until it completes; in a log (stderr not a terminal: CI, ``2> file``) a counter prints
    when it starts, at most once per ``interval`` seconds, and when it completes — and
    the last count not yet printed is printed before any other message, so a log that
    ends in a failure still says how far each counter got. Other messages print as they
    come.
    """

    def __init__(self, stream: TextIO | None = None, *, interval: float = 5.0,
                 tty: bool | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._out = stream if stream is not None else sys.stderr
        self._tty = self._out.isatty() if tty is None else tty
        self._interval, self._clock = interval, clock
        self._last: dict[str, float] = {}  # counter subject → when it last printed
        self._pending: dict[str, str] = {}  # counter subject → newest unprinted message
        self._open_line = False  # a terminal counter line without its newline yet

    def __call__(self, message: object) -> None:
        message = str(message)  # a deploy's Tally prints as a counter
        m = _COUNTER.fullmatch(message)
        if m is None:
            self._flush()
            self._line(message)
            return
        subject = m["subject"] + m["rest"]
        complete = m["done"] == m["total"]
        if self._tty:
            self._out.write(f"\r\x1b[K  {message}")
            self._open_line = not complete
            if complete:
                self._out.write("\n")
            self._out.flush()
            return
        now = self._clock()
        last = self._last.get(subject)
        if complete or last is None or now - last >= self._interval:
            self._pending.pop(subject, None)
            self._last[subject] = now
            self._line(message)
        else:
            self._pending[subject] = message

    def close(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if self._open_line:
            self._out.write("\n")
            self._open_line = False
        for subject, message in list(self._pending.items()):
            del self._pending[subject]
            self._line(message)

    def _line(self, message: str) -> None:
        self._out.write(f"  {message}\n")
        self._out.flush()


class DeployProgress:
    """The progress of ``deploy`` and ``destroy`` on stderr: one display, however many
    switches.

    In a terminal, one rich bar: a target with many units reports a tally (``p4runtime:
    537/1000 switches``, :class:`..runtime.deployment.Tally`), which moves the bar; a
    counter (``s1: 500/3009 updates``) shows beside it; every other message prints above
    it. In a log (stderr not a terminal) it is :class:`ProgressLines`: counters and tallies
    at most every ``interval`` seconds. ``quiet``: nothing at all (errors still print).
    ``close()`` ends the live bar; a later message starts it again.
    """

    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None,
                 tty: bool | None = None, interval: float = 5.0) -> None:
        out = stream if stream is not None else sys.stderr
        self._quiet = quiet
        self._tty = out.isatty() if tty is None else tty
        self._out = out
        self._lines = None if self._tty else ProgressLines(out, interval=interval, tty=False)
        self._bar = None
        self._task = None

    def __call__(self, message: object) -> None:
        if self._quiet:
            return
        if self._lines is not None:
            self._lines(message)
            return
        from rich.markup import escape

        from ..runtime.deployment import Tally

        bar = self._start()
        if isinstance(message, Tally):
            bar.update(self._task, description=escape(message.target), total=message.total,
                       completed=message.done, status=escape(str(message)))
            return
        text = str(message)
        if _COUNTER.fullmatch(text):
            bar.update(self._task, status=escape(text))
        else:
            bar.console.print(f"  {escape(text)}", highlight=False)

    def _start(self):
        if self._bar is None:
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(*_columns(""), console=Console(file=self._out,
                                                                force_terminal=True),
                                 transient=False)
            self._task = self._bar.add_task("deploying", total=None, status="")
            self._bar.start()
        return self._bar

    def close(self) -> None:
        if self._lines is not None:
            self._lines.close()
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
