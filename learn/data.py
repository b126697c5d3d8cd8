"""Episodes -> one tensor of transitions on the training device, sampled by index on-tensor (no per-step numpy ->
torch copies, no host round trip on a GPU).

Episode semantics (d3rlpy/Minari): each episode has T actions and T+1 observations. Transition t is
(obs[t], action[t], reward[t], obs[t+1], done[t]) with done = terminations[t] only: a termination (goal or crash)
ends the return, so the target does not bootstrap; a truncation (time limit) is not part of the task, so the
target bootstraps from obs[t+1] as usual. The pairing itself lives in racecar_env.episode.flatten_episodes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from racecar_env.episode import flatten_episodes
from racecar_env.tracks import Track

from .encoding import FEATURE_DIM, Encoder, features


@dataclass
class Batch:
    obs: torch.Tensor        # (B, F) standardized features
    action: torch.Tensor     # (B, 2)
    reward: torch.Tensor     # (B,)
    next_obs: torch.Tensor   # (B, F)
    done: torch.Tensor       # (B,) 1.0 where the episode terminated (no bootstrap), else 0.0


class ReplayBuffer:
    """All transitions of a dataset as one (N, 2F+4) float32 tensor: [obs | action | reward | next_obs | done]."""

    def __init__(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
                 done: np.ndarray, encoder: Encoder, device: str = "cpu"):
        self.encoder = encoder
        cols = [obs, action, reward[:, None], next_obs, done[:, None]]
        self.data = torch.from_numpy(np.concatenate(cols, axis=1).astype(np.float32)).to(device)
        f = FEATURE_DIM
        self._sl = (slice(0, f), slice(f, f + 2), f + 2, slice(f + 3, 2 * f + 3), 2 * f + 3)

    def __len__(self) -> int:
        return self.data.shape[0]

    @classmethod
    def from_episodes(cls, episodes, encoder: Encoder | None = None, device: str = "cpu") -> "ReplayBuffer":
        """Build from Episodes. Fits the encoder on the dataset's observations unless one is given."""
        flat = flatten_episodes(list(episodes))
        obs = features(flat.observations["observation"])
        next_obs = features(flat.next_observations["observation"])
        if encoder is None:
            encoder = Encoder.fit(obs)
        return cls(encoder.normalize(obs), np.clip(np.asarray(flat.actions, np.float32), -1, 1),
                   np.asarray(flat.rewards, np.float32), encoder.normalize(next_obs),
                   flat.terminals.astype(np.float32), encoder, device)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        idx = torch.randint(len(self), (batch_size,), generator=generator, device=self.data.device)
        return self._batch(self.data[idx])  # one gather for all fields

    def all(self) -> Batch:
        """Every transition, in recorded order."""
        return self._batch(self.data)

    def _batch(self, rows: torch.Tensor) -> Batch:
        so, sa, sr, sn, sd = self._sl
        return Batch(rows[:, so], rows[:, sa], rows[:, sr], rows[:, sn], rows[:, sd])


@dataclass
class TrainingData:
    """What a run trains on: the episodes, the tracks they ran on (id -> Track) and a label for logs."""
    episodes: list
    tracks: dict[str, Track]
    label: str

    def default_eval_track(self) -> "str | Track":
        """The one training track, or unseen generated test tracks when the data spans many tracks."""
        if len(self.tracks) == 1:
            return next(iter(self.tracks.values()))
        return "random:test"


def load_training_data(name: str) -> TrainingData:
    """A recorded dataset (storage refuses one of another observation layout, in one line)."""
    from racecar_env.storage import load_dataset
    ds = load_dataset(name)
    return training_data(list(ds.episodes), ds.id)


def training_data(episodes: list, label: str) -> TrainingData:
    """In-memory episodes (each carrying its track) as TrainingData."""
    tracks = {}
    for e in episodes:
        if e.track is None:
            raise ValueError(f"{label}: an episode carries no track; record it again with this version")
        tracks.setdefault(e.track.track_id, e.track)
    return TrainingData(list(episodes), tracks, label)
