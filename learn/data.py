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

from racecar_env.episode import flatten_episodes

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
        """Build from Episode objects (racecar_env.episode.Episode or anything with the same fields).
        Fits the encoder on the dataset's observations unless one is given."""
        flat = flatten_episodes(list(episodes))
        obs = features(flat.observations["observation"])
        next_obs = features(flat.next_observations["observation"])
        if encoder is None:
            encoder = Encoder.fit(obs)
        return cls(encoder.normalize(obs), np.clip(np.asarray(flat.actions, np.float32), -1, 1),
                   np.asarray(flat.rewards, np.float32), encoder.normalize(next_obs),
                   flat.terminals.astype(np.float32), encoder)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        idx = torch.randint(len(self), (batch_size,), generator=generator)
        rows = self.data[idx]  # one gather for all fields
        so, sa, sr, sn, sd = self._sl
        return Batch(rows[:, so], rows[:, sa], rows[:, sr], rows[:, sn], rows[:, sd])


def load_dataset_episodes(name: str):
    """(episodes, track, dataset label) of a recorded dataset. `load_dataset` already refuses a dataset recorded
    with another observation layout, in one line; a damaged episode fails here in one line too.
    track: what the evaluation env runs (see `dataset_track`)."""
    from racecar_env.storage import load_dataset
    ds = load_dataset(name)
    episodes = ds.episodes
    return episodes, dataset_track(episodes), ds.id


def dataset_track(episodes) -> "str | dict":
    """The track argument for RaceCarEnv that matches the episodes: a shipped track's name when they all ran on
    one track whose content equals that shipped file's, else that one track's JSON content, or "random" when they
    ran on several tracks."""
    from racecar_env.tracks import load_track, shipped_tracks
    tracks = {e.track.track_id: e.track for e in episodes if e.track is not None}
    if len(tracks) != 1:
        return "random"
    (track,) = tracks.values()
    if track.name in shipped_tracks() and load_track(track.name).track_id == track.track_id:
        return track.name
    return track.to_dict()
