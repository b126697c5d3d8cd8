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
from racecar_env.tracks.model import Centerline

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
                 done: np.ndarray, encoder: Encoder, device: str = "cpu", mc_return: np.ndarray | None = None,
                 weights: np.ndarray | None = None):
        self.encoder = encoder
        # sampling: uniform over transitions, or in proportion to `weights` (one per transition) by inverting
        # their cumulative sum, which draws from the same generator as the uniform case
        self._cumulative = None
        if weights is not None:
            w = np.asarray(weights, np.float64)
            if w.shape != reward.shape or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise ValueError(f"sampling weights: expected {len(reward)} finite non-negative numbers with a "
                                 f"positive sum, got shape {w.shape}")
            cumulative = np.cumsum(w / w.sum())
            self._cumulative = torch.from_numpy(cumulative).to(device=device, dtype=torch.float64)
        mc_return = np.zeros_like(reward) if mc_return is None else mc_return
        cols = [obs, action, reward[:, None], next_obs, done[:, None], mc_return[:, None]]
        self.data = torch.from_numpy(np.concatenate(cols, axis=1).astype(np.float32)).to(device)
        f = FEATURE_DIM
        self._sl = (slice(0, f), slice(f, f + 2), f + 2, slice(f + 3, 2 * f + 3), 2 * f + 3, 2 * f + 4)

    def __len__(self) -> int:
        return self.data.shape[0]

    @classmethod
    def from_episodes(cls, episodes, encoder: Encoder | None = None, device: str = "cpu",
                      gamma: float | None = None, return_weighting: float = 0.0) -> "ReplayBuffer":
        """Build from Episodes. Fits the encoder on the dataset's observations unless one is given. gamma: discount
        of the reward-to-go column (mc_return; zeros without it). return_weighting > 0: sample drives by their
        return (return_weights); 0: every transition alike."""
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
                   flat.terminals.astype(np.float32), encoder, device, mc,
                   return_weights(episodes, return_weighting) if return_weighting > 0 else None)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        if self._cumulative is None:
            idx = torch.randint(len(self), (batch_size,), generator=generator, device=self.data.device)
        else:
            u = torch.rand(batch_size, generator=generator, device=self.data.device, dtype=torch.float64)
            idx = torch.searchsorted(self._cumulative, u, right=True).clamp_(max=len(self) - 1)
        return self._batch(self.data[idx])  # one gather for all fields

    def all(self) -> Batch:
        """Every transition, in recorded order."""
        return self._batch(self.data)

    def _batch(self, rows: torch.Tensor) -> Batch:
        return Batch(*(rows[:, sl] for sl in self._sl))


def return_weights(episodes, temperature: float) -> np.ndarray:
    """One sampling weight per transition: exp((A_i - A_best) / (temperature * max_j |G_j|)) for every step of drive
    i, where A_i = G_i - b(L_i) is its return G_i above what a drive that reaches the goal returns on a road of its
    length L_i (a straight line fitted to the finished drives' (L, G); on one track a constant, which cancels).

    This is return-weighted sampling (Hong et al., "Harnessing mixed offline RL datasets via trajectory weighting",
    ICLR 2023; their temperature 0.1 is on returns normalised to the best drive's). The baseline is for data over
    many roads: the progress reward pays per metre, so raw returns would rank a long road's drives above a short
    road's, however they went. Every learner then sees the good drives' actions more often; the others are drawn
    rarely (at 0.1, a crash on the S track about 1e-5 times as often as a finished drive) but none is dropped. The
    scale is the largest return's size, so the temperature does not depend on the reward's units, and drives that
    differ by little (an expert data set) stay near equal weight."""
    per_drive = drive_weights(episodes, temperature)
    return np.concatenate([np.full(len(e.rewards), w) for e, w in zip(episodes, per_drive)])


def drive_weights(episodes, temperature: float) -> np.ndarray:
    """Each drive's weight per step in return_weights (1 for every drive when all returns are 0)."""
    returns = np.array([float(np.sum(e.rewards, dtype=np.float64)) for e in episodes])
    magnitude = np.abs(returns).max()
    if magnitude == 0:
        return np.ones(len(episodes))
    road_length = {}   # one centre-line per track, however many drives share it
    for e in episodes:
        if e.track is not None and e.track.track_id not in road_length:
            road_length[e.track.track_id] = Centerline(e.track.centerline).length
    lengths = np.array([road_length[e.track.track_id] if e.track is not None else 0.0 for e in episodes])
    finished = np.array([e.outcome == "success" for e in episodes])
    ref = finished if finished.sum() >= 2 else np.ones_like(finished)   # too few finished drives: all of them
    baseline = np.zeros_like(returns)
    if np.ptp(lengths[ref]) > 1e-6 * max(lengths.max(), 1.0):
        slope, intercept = np.polyfit(lengths[ref], returns[ref], 1)
        baseline = slope * lengths + intercept
    above = returns - baseline
    return np.exp((above - above.max()) / (temperature * magnitude))


def effective_drives(episodes, temperature: float) -> float:
    """How many drives the return weighting leaves in effect (Kish's effective sample size over drives, each
    drive's weight summed over its steps); len(episodes) when the drives weigh alike."""
    if temperature <= 0:
        return float(len(episodes))
    per_drive = drive_weights(episodes, temperature) * np.array([len(e.rewards) for e in episodes])
    return float(per_drive.sum() ** 2 / (per_drive ** 2).sum())


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
