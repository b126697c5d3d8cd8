"""How many intra-op threads the updates use: the faster of one and all, re-measured while training runs.

Why not simply all: on an idle 2-core machine two threads run a batch-256 update ~1.4x faster than one, but when
any other busy process shares the cores, each of an update's many small parallel regions waits at its barrier for
the thread the OS has descheduled. Measured on 2 cores with one other busy process: TD3+BC 3.2 updates/s at two
threads against 165 at one (x50 slower); OMP_WAIT_POLICY=PASSIVE avoids that but halves the idle speed (92 against
191 updates/s). So `--threads 0` (the default) times short probes of both settings and keeps all threads unless
one is clearly faster, probing the other again often enough to notice when the load comes or goes, rarely enough
that probing a collapsed setting costs at most ~`overhead` of the run's update time. On the machines tested, the
updates' results are bitwise the same at any thread count (tests/test_threads.py checks it), so the choice changes
speed only.
"""
from __future__ import annotations

import torch


class ThreadTuner:
    """Feed it the duration of every update (`record`); it sets torch's thread count between updates.

    Phases: `warmup` untimed updates at one thread (allocator, compiled kernels), then a probe of `probe` updates at
    each candidate (cut short once it is slower than another's whole probe: a collapsed setting costs one update),
    then a block at all threads, or at one if one was `margin` x faster, sized so that the next probe of the other
    costs ~`overhead` of it; a block ends early if its updates become `slowdown` x slower than measured (load came)."""

    def __init__(self, most: int, *, probe: int = 16, warmup: int = 20, min_block: int = 200,
                 overhead: float = 0.05, slowdown: float = 2.0, margin: float = 1.25):
        self.candidates = (1, most) if most > 1 else (1,)
        self.probe, self.min_block = probe, min_block
        self.overhead, self.slowdown, self.margin = overhead, slowdown, margin
        self.per_update: dict[int, float] = {}   # seconds per update, last measured, per thread count
        self.switches = 0
        self._queue: list[int] = []               # thread counts still to probe
        self._set(1)   # the warm-up runs at the setting that never collapses
        self._phase, self._left, self._n, self._spent = "warmup", warmup, 0, 0.0

    @property
    def threads(self) -> int:
        return self._threads

    def _set(self, n: int) -> None:
        self._threads = n
        torch.set_num_threads(n)

    def restart(self) -> None:
        """Probe every candidate again (the update changed its cost, e.g. the BC warm-up ended)."""
        if len(self.candidates) > 1 and self._phase != "warmup":
            self._start_probes(list(self.candidates))

    def _start_probes(self, which: list[int]) -> None:
        self._queue = which
        self._begin("probe", self._queue.pop(0), self.probe)

    def _begin(self, phase: str, threads: int, length: int) -> None:
        if threads != self._threads:
            self._set(threads)
            self.switches += 1
        self._phase, self._left, self._n, self._spent = phase, length, 0, 0.0

    def _choose(self) -> int:
        """All threads unless one measured clearly faster: idle, all win by ~x1.4 but a short probe is noisy
        (+-15% here); loaded, one thread wins by x3-x50."""
        most, t = self.candidates[-1], self.per_update
        return 1 if t[1] * self.margin < t[most] else most

    def _block_length(self) -> int:
        best = self.per_update[self._threads]
        other = max((t for c, t in self.per_update.items() if c != self._threads), default=best)
        # a probe of the other costs its whole length, or (cut short) what one here would plus one slow update
        probe_cost = min(self.probe * other, self.probe * best + other)
        return max(self.min_block, round(probe_cost / (self.overhead * best)))

    def record(self, seconds: float) -> None:
        """One update took `seconds`; may change the thread count for the next."""
        if len(self.candidates) == 1:
            return
        self._n += 1
        self._spent += seconds
        self._left -= 1
        if self._phase == "warmup":
            if self._left <= 0:
                self._start_probes(list(self.candidates))
            return
        mean = self._spent / self._n
        if self._phase == "block":
            expected = self.per_update[self._threads]
            if self._n >= self.probe and mean > self.slowdown * expected:   # load arrived: measure both again
                self.per_update[self._threads] = mean
                self._start_probes([c for c in self.candidates if c != self._threads] + [self._threads])
                return
            if self._left > 0:
                return
            self.per_update[self._threads] = mean
            self._start_probes([c for c in self.candidates if c != self._threads])
            return
        others = [t for c, t in self.per_update.items() if c != self._threads]
        if self._left > 0 and not (others and self._spent > self.probe * min(others)):
            return   # probing; a probe that has already spent what another setting's whole probe took cannot win
        self.per_update[self._threads] = mean
        if self._queue:
            self._begin("probe", self._queue.pop(0), self.probe)
            return
        self._begin("block", self._choose(), 0)
        self._left = self._block_length()
