"""`Trace`: one episode as the viewer needs it, whether rolled out live or read from a dataset.

Everything drawn (pose, speed, steering, trail, goal) comes from the stored observations, so a dataset episode
plays back exactly, without physics, through the same code path as a fresh rollout.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from racecar_env import spec


class ReplayError(ValueError):
    """A bad input to the viewer (missing file, unknown name, mismatched track). One line, shown without traceback."""


@dataclass
class Trace:
    label: str                      # who drove: panel label / legend entry, e.g. "td3bc", "autopilot (expert)"
    episode: int                    # episode number within its run (dataset index for demos)
    seed: int | None                # env reset seed (None if unknown, e.g. an old dataset)
    observations: np.ndarray        # (T+1, OBS_DIM) float32 `observation` rows, row 0 = after reset
    goals: np.ndarray               # (T+1, 2) `desired_goal` rows
    actions: np.ndarray             # (T, 2) action applied at each step
    rewards: np.ndarray             # (T,)
    success: bool
    crash: bool
    aborted: bool = False           # a recorded episode the driver stopped before the env ended it
    progress: float | None = None   # final info["progress"] (fraction of the centre-line to the goal)
    meta: dict = field(default_factory=dict)   # provenance (driver, skill, source file, ...)

    def __post_init__(self):
        t = len(self.actions)
        if self.observations.shape[0] != t + 1 or self.goals.shape[0] != t + 1 or len(self.rewards) != t:
            raise ReplayError(f"episode {self.episode} of {self.label}: expected T+1 observations for T={t} actions, "
                              f"got {self.observations.shape[0]} observations and {len(self.rewards)} rewards")

    @property
    def steps(self) -> int:
        return len(self.actions)

    @property
    def outcome(self) -> str:
        """'goal', 'crash', 'timeout' or 'aborted'."""
        return "goal" if self.success else "crash" if self.crash else "aborted" if self.aborted else "timeout"

    @property
    def episode_return(self) -> float:
        return float(np.sum(self.rewards, dtype=np.float64))

    @property
    def time_to_goal(self) -> float | None:
        return self.steps * spec.CONTROL_DT if self.success else None

    def xy(self) -> np.ndarray:
        """(T+1, 2) car centre positions."""
        o = self.observations
        return np.stack([spec.field(o, "x"), spec.field(o, "y")], axis=1)

    def pose(self, t: int) -> tuple[float, float, float]:
        o = self.observations[t]
        return (float(spec.field(o, "x")), float(spec.field(o, "y")),
                math.atan2(float(spec.field(o, "sin_yaw")), float(spec.field(o, "cos_yaw"))))

    def summary(self) -> dict:
        """The per-episode record of eval_info.json."""
        ttg = self.time_to_goal
        return {"episode": self.episode, "seed": self.seed, "success": bool(self.success), "crash": bool(self.crash),
                "outcome": self.outcome, "steps": self.steps,
                "time_to_goal": None if ttg is None else round(ttg, 4), "return": round(self.episode_return, 6),
                "progress": None if self.progress is None else round(self.progress, 6),
                **({"driver": self.meta["driver"]} if "driver" in self.meta else {})}


def from_dataset_episode(ep, index: int, label: str | None = None) -> Trace:
    """A `racecar_env.episode.Episode` as a Trace (stored observations, no physics)."""
    meta = dict(getattr(ep, "meta", {}) or {})
    outcome = ep.outcome  # from the stored terminations/truncations/infos: "success", "crash", "timeout", "aborted"
    driver = str(meta.get("driver", "demo"))
    skill = meta.get("skill")
    seed = meta.get("seed")
    return Trace(label=label or (f"{driver} ({skill})" if skill else driver), episode=index,
                 seed=None if seed is None else int(seed),
                 observations=np.asarray(ep.observations["observation"], np.float32),
                 goals=np.asarray(ep.observations["desired_goal"], np.float32),
                 actions=np.asarray(ep.actions, np.float32), rewards=np.asarray(ep.rewards, np.float64),
                 success=outcome == "success", crash=outcome == "crash", aborted=outcome == "aborted",
                 progress=float(np.asarray(ep.infos["progress"])[-1]), meta=meta)
