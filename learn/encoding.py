"""The one observation encoder, used for training and for acting.

A policy sees the env's policy fields (`racecar_env.spec.POLICY_FIELDS`: motion, lidar, the route ahead and the goal,
all in the car frame) and never the world-frame pose: what the car senses and where the road goes carry over to
roads it never saw; absolute coordinates would only let it memorise one track.

Features are standardized with the mean/std of the training data; the statistics travel inside the checkpoint.
A feature that barely varies in the data (a lidar ray that always reads its maximum on a wide track, say) keeps
scale 1: dividing by its tiny std would turn any change at test time into a huge input.
"""
from __future__ import annotations

import numpy as np
import torch

from racecar_env import spec

FEATURE_NAMES: tuple[str, ...] = spec.POLICY_FIELDS
FEATURE_DIM = len(FEATURE_NAMES)
_FEATURE_IDX = np.array([spec.OBS_INDEX[n] for n in FEATURE_NAMES])
CONSTANT_STD = 1e-2  # below this std (in the feature's own unit: m, m/s, rad) a feature counts as constant: only centred


def features(observation: np.ndarray) -> np.ndarray:
    """Raw (unstandardized) policy features, float32 (..., FEATURE_DIM), of one `observation` row or a batch."""
    o = np.asarray(observation, dtype=np.float32)
    if o.shape[-1] != spec.OBS_DIM:
        raise ValueError(f"observation must have last dim {spec.OBS_DIM} (layout {spec.OBS_LAYOUT_ID}), "
                         f"got shape {o.shape}")
    return o[..., _FEATURE_IDX]


class Encoder:
    """features() followed by standardization; holds the training-data statistics."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(FEATURE_DIM)
        std = np.asarray(std, dtype=np.float32).reshape(FEATURE_DIM)
        self.std = np.where(std < CONSTANT_STD, np.float32(1.0), std)

    @classmethod
    def fit(cls, raw_features: np.ndarray) -> "Encoder":
        f = np.asarray(raw_features, dtype=np.float64)
        return cls(f.mean(axis=0), f.std(axis=0))

    def normalize(self, raw_features: np.ndarray) -> np.ndarray:
        return ((raw_features - self.mean) / self.std).astype(np.float32, copy=False)

    def __call__(self, obs: dict) -> np.ndarray:
        """Dict observation (single or batched) -> standardized float32 features."""
        if not isinstance(obs, dict) or "observation" not in obs:
            raise ValueError(f"a policy acts on the env's observation dict (keys observation, achieved_goal, "
                             f"desired_goal, as reset() and step() return it), got {type(obs).__name__}")
        raw = features(obs["observation"])
        if not np.isfinite(raw).all():   # the env never sends one; a caller's NaN would drive as a NaN action
            bad = np.flatnonzero(~np.isfinite(raw.reshape(-1, FEATURE_DIM)).all(0))[0]
            raise ValueError(f"observation field {FEATURE_NAMES[bad]} is not finite")
        return self.normalize(raw)

    def tensor(self, obs: dict) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self(obs)))

    def state_dict(self) -> dict:
        return {"feature_names": list(FEATURE_NAMES), "mean": torch.from_numpy(self.mean.copy()),
                "std": torch.from_numpy(self.std.copy())}

    @classmethod
    def from_state_dict(cls, d: dict, source: str = "checkpoint") -> "Encoder":
        """The saved statistics, checked: a NaN mean, or a std that is 0 or inf, would standardize every observation
        to NaN or 0, and the policy would drive blind (or the env refuse its NaN action deep inside an episode)."""
        if not isinstance(d, dict):
            raise ValueError(f"{source}: encoder must hold the feature statistics, got {type(d).__name__}")
        if list(d.get("feature_names", [])) != list(FEATURE_NAMES):
            raise ValueError(f"{source}: the policy was trained on other input features than this version's "
                             f"observation layout {spec.OBS_LAYOUT_ID}; retrain it on re-recorded data")
        stats = []
        for key in ("mean", "std"):
            value = d.get(key)
            try:
                with np.errstate(over="ignore"):   # a value beyond float32 becomes inf, refused below
                    a = np.asarray(value.numpy() if isinstance(value, torch.Tensor) else value, dtype=np.float32)
            except (TypeError, ValueError, RuntimeError):
                a = None
            if a is None or a.shape != (FEATURE_DIM,):
                shape = "missing" if value is None else f"shape {getattr(a, 'shape', '?')}"
                raise ValueError(f"{source}: encoder.{key} must be {FEATURE_DIM} numbers, got {shape}")
            if not np.isfinite(a).all():
                raise ValueError(f"{source}: encoder.{key} is not finite ({_first(a, ~np.isfinite(a))}): the file "
                                 f"is damaged; use another checkpoint or retrain")
            stats.append(a)
        if (stats[1] <= 0).any():
            raise ValueError(f"{source}: encoder.std must be > 0 ({_first(stats[1], stats[1] <= 0)}): the file is "
                             f"damaged; use another checkpoint or retrain")
        return cls(*stats)


def _first(a: np.ndarray, bad: np.ndarray) -> str:
    """The first bad statistic, by feature name."""
    i = int(np.flatnonzero(bad)[0])
    return f"{FEATURE_NAMES[i]} = {a[i]}"
