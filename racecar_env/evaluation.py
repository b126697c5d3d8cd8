"""Seeded evaluation of any agent, and the one result type every stage reports (learn, replay, the sweep).

Episode i uses env seed `seed0 + i` with the env's default start jitter, so two agents (or two checkpoints) face the
same starts (and, on `track="random..."`, the same generated tracks) and their numbers compare directly. Seed ranges
keep roles apart: periodic evaluations that pick a run's best checkpoint use SELECTION_SEED + i, reported results use
TEST_SEED + i, so selection never inflates what is reported. Rates are fractions in [0, 1]; outcomes are the
episode model's names (success, crash, timeout, aborted).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from . import spec
from .episode import OUTCOMES, Episode
from .rollout import EnvPool, run_episodes

SELECTION_SEED = 10_000   # periodic evaluations (choose best.pt) use seeds SELECTION_SEED + i
TEST_SEED = 20_000        # reported results (final test, learn.evaluate, replay) use seeds TEST_SEED + i


@dataclass
class EpisodeOutcome:
    """One evaluated episode, as eval.json and eval_info.json store it."""
    seed: int | None
    track: str                 # track name (e.g. s_curve, gen-1000123)
    track_id: str              # content hash of the track it ran on
    outcome: str               # success | crash | timeout | aborted
    steps: int
    time_to_goal: float | None  # s, successes only
    ret: float
    progress: float            # 0..1 along the centre-line to the goal

    @property
    def success(self) -> bool:
        return self.outcome == "success"

    @classmethod
    def of(cls, ep: Episode) -> "EpisodeOutcome":
        seed = ep.meta.get("seed")
        return cls(seed=None if seed is None else int(seed), track=ep.track.name if ep.track else "",
                   track_id=ep.track.track_id if ep.track else "", outcome=ep.outcome, steps=ep.steps,
                   time_to_goal=round(ep.steps * spec.CONTROL_DT, 4) if ep.success else None,
                   ret=round(ep.episode_return, 6), progress=round(float(ep.infos["progress"][-1]), 6))


@dataclass
class EvalResult:
    episodes: list[EpisodeOutcome]
    rollouts: list[Episode] = field(default_factory=list, repr=False)  # the full episodes (for videos, plots)

    @classmethod
    def of(cls, episodes: list[Episode]) -> "EvalResult":
        return cls([EpisodeOutcome.of(e) for e in episodes], list(episodes))

    @property
    def n(self) -> int:
        return len(self.episodes)

    def rate(self, outcome: str) -> float:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        return sum(e.outcome == outcome for e in self.episodes) / self.n if self.n else float("nan")

    @property
    def success_rate(self) -> float:
        return self.rate("success")

    @property
    def crash_rate(self) -> float:
        return self.rate("crash")

    @property
    def mean_return(self) -> float:
        return float(np.mean([e.ret for e in self.episodes])) if self.n else float("nan")

    @property
    def mean_progress(self) -> float:
        return float(np.mean([e.progress for e in self.episodes])) if self.n else float("nan")

    @property
    def mean_time_to_goal(self) -> float | None:
        """Seconds, over successful episodes only (None if none succeeded)."""
        t = [e.time_to_goal for e in self.episodes if e.success]
        return float(np.mean(t)) if t else None

    def summary(self) -> dict:
        return {"episodes": self.n, **{f"{o}_rate": self.rate(o) for o in OUTCOMES},
                "mean_return": self.mean_return, "mean_time_to_goal_s": self.mean_time_to_goal,
                "mean_progress": self.mean_progress, "tracks": len({e.track_id for e in self.episodes})}

    def to_dict(self) -> dict:
        return {**self.summary(), "per_episode": [asdict(e) for e in self.episodes]}

    def line(self) -> str:
        ttg = self.mean_time_to_goal
        tracks = len({e.track_id for e in self.episodes})
        where = f"{tracks} tracks" if tracks > 1 else (self.episodes[0].track if self.episodes else "-")
        return (f"success {self.success_rate:.0%}  crash {self.crash_rate:.0%}  return {self.mean_return:.2f}  "
                f"time-to-goal {'-' if ttg is None else f'{ttg:.2f} s'}  progress {self.mean_progress:.0%}  "
                f"({self.n} episodes, {where})")


def evaluate(agent, track="s_curve", episodes: int = 50, seed0: int = TEST_SEED, *, env_kwargs: dict | None = None,
             workers: "int | str" = 1, pool: EnvPool | None = None, on_episode=None) -> EvalResult:
    """Run `episodes` seeded episodes of `agent` on `track` (a name, path, Track, "gen:S", "random:test", ...).

    workers: 1 = in this process, N = N env processes, "auto" = one per CPU (same episodes either way); or reuse a
    running `pool` (built with the same env arguments). env_kwargs: other RaceCarEnv arguments (e.g. start_jitter).
    """
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ValueError(f"episodes must be an integer >= 1, got {episodes!r}")
    seeds = [seed0 + i for i in range(int(episodes))]
    kwargs = {"track": track, **(env_kwargs or {})}
    if pool is not None:
        eps = pool.run(agent, seeds, on_episode=on_episode)
    else:
        eps = run_episodes(kwargs, agent, seeds, workers=workers, on_episode=on_episode)
    return EvalResult.of(eps)
