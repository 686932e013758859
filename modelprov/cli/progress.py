"""A one-line progress display on stderr (standard library only).

:class:`Progress` draws ``12/40 done, 1 failed, 3.2/s, ETA 9s`` on one
line that it rewrites in place with ``\\r``, at most every
``min_interval`` seconds, and erases when asked, so other messages can be
printed above it. It draws only when enabled (by default: when its stream
is a terminal); otherwise every method is a no-op, so callers never check.
"""

import shutil
import sys
import time
from typing import Callable, Optional, TextIO

__all__ = ["Progress", "format_duration"]


def format_duration(seconds: float) -> str:
    """``seconds`` as ``9s``, ``3m05s`` or ``1h02m``."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class Progress:
    """Done/total, failures, rate and ETA on one updating line of ``stream``.

    :param total: how many items the run will finish.
    :param stream: where to draw (default ``sys.stderr`` at construction).
    :param enabled: draw or not; ``None`` (default) draws only when ``stream`` is a terminal.
    :param clock: a monotonic clock in seconds (injected by tests).
    :param min_interval: the shortest time between two redraws by :meth:`update`.
    :param label: a word shown first (e.g. ``"batch"``).
    """

    def __init__(
        self,
        total: int,
        *,
        stream: Optional[TextIO] = None,
        enabled: Optional[bool] = None,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = 0.1,
        label: str = "",
    ) -> None:
        self.total = max(0, int(total))
        self.stream: TextIO = stream if stream is not None else sys.stderr
        if enabled is None:
            try:
                enabled = bool(self.stream.isatty())
            except (AttributeError, ValueError, OSError):
                enabled = False
        self.enabled = enabled
        self.clock = clock
        self.min_interval = min_interval
        self.label = label
        self.done = 0
        self.failed = 0
        self._start = clock()
        self._baseline = 0  # items finished before the clock started (not counted in the rate)
        self._last_draw: Optional[float] = None
        self._shown = 0  # length of the line now on screen (0: nothing shown)

    def start(self, already_done: int = 0, already_failed: int = 0) -> None:
        """Count items finished before any work started (e.g. bad input lines) and start the clock now."""
        self.done, self.failed = already_done, already_failed
        self._baseline = already_done
        self._start = self.clock()
        self.update(force=True)

    def advance(self, ok: bool) -> None:
        """One more item finished (``ok=False``: it failed); redraws when due."""
        self.done += 1
        if not ok:
            self.failed += 1
        self.update(force=self.done >= self.total)

    def render(self) -> str:
        """The progress text (without ``\\r``), e.g. ``batch: 12/40 done, 1 failed, 3.2/s, ETA 9s``."""
        parts = [f"{self.done}/{self.total} done"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        elapsed = self.clock() - self._start
        finished = self.done - self._baseline
        if finished > 0 and elapsed > 0:
            rate = finished / elapsed
            parts.append(f"{rate:.1f}/s" if rate >= 0.1 else f"{rate * 60:.1f}/min")
            remaining = self.total - self.done
            if remaining > 0:
                parts.append(f"ETA {format_duration(remaining / rate)}")
        else:
            parts.append(f"{format_duration(elapsed)} elapsed")
        text = ", ".join(parts)
        return f"{self.label}: {text}" if self.label else text

    def update(self, force: bool = False) -> None:
        """Redraw the line if ``force`` or at least ``min_interval`` seconds passed since the last draw."""
        if not self.enabled:
            return
        now = self.clock()
        if not force and self._last_draw is not None and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
        text = self.render()[:width]
        pad = " " * max(0, self._shown - len(text))
        self._write("\r" + text + pad)
        self._shown = len(text)

    def clear(self) -> None:
        """Erase the line (before printing something else on the terminal, and at the end)."""
        if self.enabled and self._shown:
            self._write("\r" + " " * self._shown + "\r")
            self._shown = 0
            self._last_draw = None

    def _write(self, data: str) -> None:
        try:
            self.stream.write(data)
            self.stream.flush()
        except (OSError, ValueError):  # a closed terminal: stop drawing
            self.enabled = False
