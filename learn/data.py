"""Episodes -> one torch tensor of transitions, sampled by index on-tensor (no per-step numpy -> torch copies).

Episode semantics (d3rlpy/Minari): each episode has T actions and T+1 observations. Transition t is
(obs[t], action[t], reward[t], obs[t+1], done[t]) with done = terminations[t] only: a termination (goal or crash)
ends the return, so the target does not bootstrap; a truncation (time limit) is not part of the task, so the
target bootstraps from obs[t+1] as usual.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from racecar_env import spec

from .encoding import FEATURE_DIM, Encoder, features


@dataclass
class Batch:
    obs: torch.Tensor        # (B, F) standardized features
    action: torch.Tensor     # (B, 2)
    reward: torch.Tensor     # (B,)
    next_obs: torch.Tensor   # (B, F)
    done: torch.Tensor       # (B,) 1.0 where the episode terminated (no bootstrap), else 0.0


class Transitions:
    """All transitions of a dataset as one (N, 2F+4) float32 tensor: [obs | action | reward | next_obs | done]."""

    def __init__(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
                 done: np.ndarray, encoder: Encoder):
        self.encoder = encoder
        cols = [obs, action, reward[:, None], next_obs, done[:, None]]
        self.data = torch.from_numpy(np.concatenate(cols, axis=1).astype(np.float32))
        f = FEATURE_DIM
        self._sl = (slice(0, f), slice(f, f + 2), f + 2, slice(f + 3, 2 * f + 3), 2 * f + 3)

    def __len__(self) -> int:
        return self.data.shape[0]

    @classmethod
    def from_episodes(cls, episodes, encoder: Encoder | None = None) -> "Transitions":
        """Build from Episode objects (racecar_env.datasets.Episode or anything with the same fields).
        Fits the encoder on the dataset's observations unless one is given."""
        if not episodes:
            raise ValueError("dataset has no episodes")
        o, no, a, r, d = [], [], [], [], []
        for i, ep in enumerate(episodes):
            feats = features(ep.observations["observation"], ep.observations["desired_goal"])
            T = len(ep.actions)
            if feats.shape[0] != T + 1:
                raise ValueError(f"episode {i}: {feats.shape[0]} observations for {T} actions (expected T+1)")
            o.append(feats[:-1]); no.append(feats[1:])
            a.append(np.asarray(ep.actions, np.float32).reshape(T, 2))
            r.append(np.asarray(ep.rewards, np.float32).reshape(T))
            d.append(np.asarray(ep.terminations, bool).reshape(T).astype(np.float32))
        obs, next_obs = np.concatenate(o), np.concatenate(no)
        if encoder is None:
            encoder = Encoder.fit(obs)
        return cls(encoder.normalize(obs), np.clip(np.concatenate(a), -1, 1), np.concatenate(r),
                   encoder.normalize(next_obs), np.concatenate(d), encoder)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        idx = torch.randint(len(self), (batch_size,), generator=generator)
        rows = self.data[idx]  # one gather for all fields
        so, sa, sr, sn, sd = self._sl
        return Batch(rows[:, so], rows[:, sa], rows[:, sr], rows[:, sn], rows[:, sd])


def load_dataset_episodes(name: str):
    """(episodes, track, dataset label) of a recorded dataset; refuses a different observation layout."""
    from racecar_env.datasets import load_dataset
    ds = load_dataset(name)
    if ds.layout_id != spec.OBS_LAYOUT_ID:
        raise ValueError(f"dataset {ds.id}: recorded with observation layout {ds.layout_id}, this code uses "
                         f"{spec.OBS_LAYOUT_ID}; re-record it")
    return ds.episodes, ds.track, ds.id
