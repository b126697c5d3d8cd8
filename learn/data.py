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
    mc_return: torch.Tensor | None = None   # (B,) discounted reward-to-go of the recorded drive (Cal-QL's bound)


class ReplayBuffer:
    """All transitions of a dataset as one (N, 2F+5) float32 tensor: [obs | action | reward | next_obs | done |
    mc_return]."""

    def __init__(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
                 done: np.ndarray, encoder: Encoder, device: str = "cpu", mc_return: np.ndarray | None = None):
        self.encoder = encoder
        mc_return = np.zeros_like(reward) if mc_return is None else mc_return
        cols = [obs, action, reward[:, None], next_obs, done[:, None], mc_return[:, None]]
        self.data = torch.from_numpy(np.concatenate(cols, axis=1).astype(np.float32)).to(device)
        f = FEATURE_DIM
        self._sl = (slice(0, f), slice(f, f + 2), f + 2, slice(f + 3, 2 * f + 3), 2 * f + 3, 2 * f + 4)

    def __len__(self) -> int:
        return self.data.shape[0]

    @classmethod
    def from_episodes(cls, episodes, encoder: Encoder | None = None, device: str = "cpu",
                      gamma: float | None = None) -> "ReplayBuffer":
        """Build from Episodes. Fits the encoder on the dataset's observations unless one is given. gamma: discount
        of the reward-to-go column (mc_return; zeros without it)."""
        episodes = list(episodes)
        flat = flatten_episodes(episodes)
        obs = features(flat.observations["observation"])
        next_obs = features(flat.next_observations["observation"])
        if encoder is None:
            encoder = Encoder.fit(obs)
        mc = None if gamma is None else np.concatenate([reward_to_go(e.rewards, gamma) for e in episodes])
        if mc is not None and len(mc) != len(flat.rewards):   # flatten_episodes keeps every step, in order
            raise ValueError(f"reward-to-go of {len(mc)} steps for {len(flat.rewards)} transitions")
        return cls(encoder.normalize(obs), np.clip(np.asarray(flat.actions, np.float32), -1, 1),
                   np.asarray(flat.rewards, np.float32), encoder.normalize(next_obs),
                   flat.terminals.astype(np.float32), encoder, device, mc)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        idx = torch.randint(len(self), (batch_size,), generator=generator, device=self.data.device)
        return self._batch(self.data[idx])  # one gather for all fields

    def all(self) -> Batch:
        """Every transition, in recorded order."""
        return self._batch(self.data)

    def _batch(self, rows: torch.Tensor) -> Batch:
        return Batch(*(rows[:, sl] for sl in self._sl))


def reward_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """G[t] = r[t] + gamma * G[t+1] within one drive, 0 after its last step (a drive cut by the time limit counts
    as ended: for a lower bound on its value that only makes the bound looser)."""
    g, out = 0.0, np.zeros(len(rewards), np.float64)
    for t in range(len(rewards) - 1, -1, -1):
        g = float(rewards[t]) + gamma * g
        out[t] = g
    return out


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
