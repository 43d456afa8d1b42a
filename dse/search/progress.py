"""A one-line progress bar on stderr: trials done, feasible ones, size of the current front."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TextIO


@dataclass
class Counts:
    """What the bar shows: finished trials (of ``total``), feasible ones, failed ones, front size."""

    done: int = 0
    feasible: int = 0
    failed: int = 0
    front: int = 0


class ProgressBar:
    """Redraws one line in place on a terminal; elsewhere (logs, pipes) prints a line now and then.

    Parameters
    ----------
    total : trials the study is asked for
    stream : where to draw (stderr)
    enabled : ``False`` draws nothing
    every_s : on a non-terminal, seconds between printed lines
    """

    def __init__(self, total: int, *, stream: TextIO | None = None, enabled: bool = True, every_s: float = 5.0):
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every_s = every_s
        self.started = time.monotonic()
        self.first_done: int | None = None
        self.last_print = 0.0
        self.width = 0

    def line(self, counts: Counts) -> str:
        if self.first_done is None:
            # the rate counts from the first update: not the warm-up, not an earlier run's trials
            self.first_done = counts.done
            self.started = time.monotonic()
        fraction = min(counts.done / self.total, 1.0) if self.total else 1.0
        filled = int(round(24 * fraction))
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = (counts.done - self.first_done) / elapsed
        failed = f" · {counts.failed} failed" if counts.failed else ""
        return (f"[{'#' * filled}{'.' * (24 - filled)}] {counts.done}/{self.total} trials · "
                f"{counts.feasible} feasible{failed} · front {counts.front} · {rate:.1f} trials/s")

    def update(self, counts: Counts, *, final: bool = False) -> None:
        if not self.enabled:
            return
        text = self.line(counts)
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + text.ljust(self.width) + ("\n" if final else ""))
            self.width = len(text)
            self.stream.flush()
        elif final or now - self.last_print >= self.every_s:
            self.stream.write(text + "\n")
            self.stream.flush()
            self.last_print = now

    def message(self, text: str) -> None:
        """A line above the bar (the bar is redrawn on the next update)."""
        if not self.enabled:
            return
        if self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.width = 0
        self.stream.write(text + "\n")
        self.stream.flush()
