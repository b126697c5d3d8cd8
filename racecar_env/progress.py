"""Progress for long work that reads well on a terminal and in a log file.

On a terminal: a tqdm bar (rate, ETA). In a log (stderr is not a terminal, e.g. `python -m learn ... > run.log
2>&1` or CI): tqdm would join every refresh with '\r' into one enormous line, so instead one plain line is printed
every `log_every` seconds and when the work ends. Nested work (frames of a video inside a replay) passes
`nested=True`: shown as a transient bar on a terminal, silent in a log. `quiet=True` (the CLIs' --quiet) turns
everything off.
"""
from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def is_terminal(stream=None) -> bool:
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """A counter with a description: `update(n)`, `set_postfix(text)`, `close()`; also a context manager."""

    def __init__(self, total: int | None = None, desc: str = "", unit: str = "it", *, initial: int = 0,
                 quiet: bool = False, nested: bool = False, log_every: float = 30.0, stream=None):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.stream = stream or sys.stderr
        self._bar = None
        self._plain = False
        self._postfix = ""
        self._t0 = self._last = time.perf_counter()
        self._n0 = initial
        self._log_every = log_every
        if quiet:
            return
        if is_terminal(self.stream):
            from tqdm import tqdm
            self._bar = tqdm(total=total, desc=desc, unit=unit, initial=initial, leave=not nested,
                             dynamic_ncols=True, smoothing=0.05, file=self.stream)
        elif not nested:
            self._plain = True

    @property
    def rate(self) -> float:
        """Items per second since the start."""
        dt = time.perf_counter() - self._t0
        return (self.n - self._n0) / dt if dt > 0 else 0.0

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._plain and time.perf_counter() - self._last >= self._log_every:
            self._print()

    def set_postfix(self, text: str) -> None:
        self._postfix = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def write(self, line: str) -> None:
        """A line of text that does not break the bar."""
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def _print(self) -> None:
        self._last = time.perf_counter()
        rate = self.rate
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        eta = ""
        if self.total and rate > 0 and self.n < self.total:
            eta = f", ETA {_clock((self.total - self.n) / rate)}"
        post = f" | {self._postfix}" if self._postfix else ""
        print(f"{self.desc}: {done} {self.unit} ({rate:.3g} {self.unit}/s{eta}){post}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._plain:
            self._print()
            self._plain = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:   # the work failed or was interrupted: its error line is the last word, not a count
            self._plain = False
        self.close()


def track(items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it", **kw) -> Iterator[T]:
    """Iterate with progress (see Progress for the keyword arguments)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, desc, unit, **kw) as p:
        for item in items:
            yield item
            p.update()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"
