"""One episode as every stage sees it, and the flat transition arrays offline RL reads.

An Episode of T steps has T actions, rewards, terminations and truncations, and T+1 observations and infos (row 0
is what reset returned). It carries the Track it ran on (the track itself, not a name or path), so storage, the
learner and the viewer never re-read a track file to learn what a recorded thing was.

Outcome names, used by every stage (datasets, evaluation, replay): success, crash, timeout, aborted.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import spec
from .tracks import Track

OBS_KEYS = ("observation", "achieved_goal", "desired_goal")
INFO_KEYS = ("is_success", "collision", "progress", "distance_to_goal")
OUTCOMES = ("success", "crash", "timeout", "aborted")


class EpisodeError(ValueError):
    """An episode whose arrays are inconsistent; the one-line message says which array and what was expected."""


@dataclass
class Episode:
    """One recorded episode of T steps. Observations and infos have T+1 rows (row 0 is what reset returned)."""
    observations: dict[str, np.ndarray]
    actions: np.ndarray          # (T, 2) float32, the actions the env received
    rewards: np.ndarray          # (T,) float64
    terminations: np.ndarray     # (T,) bool
    truncations: np.ndarray      # (T,) bool
    infos: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)  # driver, skill, noise, seed, success, collision, steps, return, outcome
    track: Track | None = None   # the track it ran on

    @property
    def steps(self) -> int:
        return int(len(self.actions))

    @property
    def outcome(self) -> str:
        """"success", "crash", "timeout" or "aborted" (ended by the user before the env ended it)."""
        return _outcome(self.infos, self.terminations, self.truncations)

    @property
    def success(self) -> bool:
        return self.outcome == "success"

    @property
    def episode_return(self) -> float:
        return float(np.sum(self.rewards, dtype=np.float64))

    def validate(self, where: str = "episode") -> None:
        """Raise EpisodeError unless shapes, dtypes and the T+1 observation rows are consistent."""
        T = len(self.actions)
        if T < 1:
            raise EpisodeError(f"{where}: has no steps")
        if self.actions.shape != (T, 2):
            raise EpisodeError(f"{where}: actions have shape {self.actions.shape}, expected ({T}, 2)")
        if set(self.observations) != set(OBS_KEYS):
            raise EpisodeError(f"{where}: observation keys {sorted(self.observations)}, expected {list(OBS_KEYS)}")
        widths = {"observation": spec.OBS_DIM, "achieved_goal": 2, "desired_goal": 2}
        for k, w in widths.items():
            if self.observations[k].shape != (T + 1, w):
                raise EpisodeError(f"{where}: observations/{k} has shape {self.observations[k].shape}, "
                                   f"expected ({T + 1}, {w}) (T+1 rows for T={T} steps)")
        for k in ("rewards", "terminations", "truncations"):
            if getattr(self, k).shape != (T,):
                raise EpisodeError(f"{where}: {k} has shape {getattr(self, k).shape}, expected ({T},)")
        for k, v in self.infos.items():
            if len(v) != T + 1:
                raise EpisodeError(f"{where}: infos/{k} has {len(v)} rows, expected {T + 1}")
        if np.any(self.terminations[:-1] | self.truncations[:-1]):
            raise EpisodeError(f"{where}: episode ends before its last step (terminated/truncated at a step < {T - 1})")


def _outcome(infos: dict, terminations: np.ndarray, truncations: np.ndarray) -> str:
    if len(terminations) and terminations[-1]:
        return "success" if bool(infos["is_success"][-1]) else "crash"
    if len(truncations) and truncations[-1]:
        return "timeout"
    return "aborted"


class EpisodeRecorder:
    """Collects one episode tick by tick, exactly as the env produced it.

        rec = EpisodeRecorder(obs, info)                      # what env.reset returned
        rec.step(action, obs, reward, terminated, truncated, info)   # after every env.step(action)
        episode = rec.finish({"driver": ..., "seed": ...})    # meta: driver provenance + seed (+ track)
    """

    def __init__(self, obs: dict, info: dict):
        self._obs = {k: [np.array(obs[k], dtype=np.float32)] for k in OBS_KEYS}
        self._infos = {k: [info[k]] for k in INFO_KEYS}
        self._actions: list[np.ndarray] = []
        self._rewards: list[float] = []
        self._term: list[bool] = []
        self._trunc: list[bool] = []

    @property
    def steps(self) -> int:
        return len(self._actions)

    @property
    def done(self) -> bool:
        return bool(self._term and (self._term[-1] or self._trunc[-1]))

    def step(self, action, obs: dict, reward: float, terminated: bool, truncated: bool, info: dict) -> None:
        if self.done:
            raise RuntimeError("EpisodeRecorder.step after the episode ended: start a new EpisodeRecorder")
        # The env clips actions to [-1, 1] (a saturating actuator): store what it actually applied.
        self._actions.append(np.clip(np.asarray(action, dtype=np.float32).reshape(2), -1.0, 1.0))
        for k in OBS_KEYS:
            self._obs[k].append(np.array(obs[k], dtype=np.float32))
        for k in INFO_KEYS:
            self._infos[k].append(info[k])
        self._rewards.append(float(reward))
        self._term.append(bool(terminated))
        self._trunc.append(bool(truncated))

    def finish(self, meta: dict | None = None, track: Track | None = None) -> Episode:
        """The episode so far (normally ended by the env; a user may also stop early: outcome "aborted")."""
        if not self._actions:
            raise EpisodeError("episode: has no steps (nothing to save)")
        ep = Episode(
            observations={k: np.stack(v) for k, v in self._obs.items()},
            actions=np.stack(self._actions),
            rewards=np.asarray(self._rewards, dtype=np.float64),
            terminations=np.asarray(self._term, dtype=bool),
            truncations=np.asarray(self._trunc, dtype=bool),
            infos={"is_success": np.asarray(self._infos["is_success"], dtype=bool),
                   "collision": np.asarray(self._infos["collision"], dtype=bool),
                   "progress": np.asarray(self._infos["progress"], dtype=np.float64),
                   "distance_to_goal": np.asarray(self._infos["distance_to_goal"], dtype=np.float64)},
            track=track,
        )
        outcome = ep.outcome
        ep.meta = {**(meta or {}), "success": outcome == "success", "collision": outcome == "crash",
                   "outcome": outcome, "steps": ep.steps, "return": ep.episode_return}
        return ep


@dataclass
class Transitions:
    """All steps of a dataset as flat, aligned arrays (N = total steps), for offline RL.

    observations[k][i], actions[i], rewards[i], next_observations[k][i] form transition i.
    terminals[i]  = the env's `terminated` (goal or crash): do NOT bootstrap from next_observations[i].
    timeouts[i]   = the env's `truncated` (time limit): bootstrap as usual, the episode just stopped.
    episode_ends[i] = the last transition of its episode (terminal, timeout, or a user abort).
    episode_index[i], step_index[i] = where it came from.
    """
    observations: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: dict[str, np.ndarray]
    terminals: np.ndarray
    timeouts: np.ndarray
    episode_ends: np.ndarray
    episode_index: np.ndarray
    step_index: np.ndarray

    def __len__(self) -> int:
        return int(len(self.actions))


def flatten_episodes(eps: "list[Episode]", index: "list[int] | None" = None, where: str = "episodes") -> Transitions:
    """Episodes (T actions, T+1 observations each) as flat `Transitions`: the one place that pairs obs[t] with
    obs[t+1], so no stage re-implements the T+1 bookkeeping."""
    idx = list(index) if index is not None else list(range(len(eps)))
    if not eps:
        raise EpisodeError(f"{where}: no episodes to make transitions from")
    for i, e in zip(idx, eps):
        rows, steps = len(e.observations["observation"]), len(e.actions)
        if rows != steps + 1:
            raise EpisodeError(f"{where}: episode {i} has {rows} observation rows for {steps} actions, expected T+1")

    def cat(arrs):
        return np.concatenate(arrs, axis=0)

    ends = []
    for e in eps:
        end = np.zeros(e.steps, bool)
        end[-1] = True
        ends.append(end)
    return Transitions(
        observations={k: cat([e.observations[k][:-1] for e in eps]) for k in OBS_KEYS},
        actions=cat([e.actions for e in eps]),
        rewards=cat([e.rewards for e in eps]),
        next_observations={k: cat([e.observations[k][1:] for e in eps]) for k in OBS_KEYS},
        terminals=cat([e.terminations for e in eps]),
        timeouts=cat([e.truncations for e in eps]),
        episode_ends=cat(ends),
        episode_index=cat([np.full(e.steps, i, np.int64) for i, e in zip(idx, eps)]),
        step_index=cat([np.arange(e.steps, dtype=np.int64) for e in eps]),
    )
