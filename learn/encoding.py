"""The one observation encoder, used for training and for acting.

Features come from the Dict observation through `racecar_env.spec` (named fields, no magic indices):
  goal_fwd, goal_left   goal position relative to the car, rotated into the car frame (m)
  goal_dist             distance to the goal (m)
  sin_yaw, cos_yaw      heading
  v_forward, v_left, yaw_rate, steer_angle
  lidar_00..lidar_16    wall distances
Absolute x, y are dropped on purpose: with a fixed goal, (goal in car frame, heading) already pins down the pose,
and without absolute coordinates the policy keys on what the car sees and where the goal is, which carries over
to sampled goals and start jitter instead of memorising map positions.

Features are standardized with mean/std of the training data; the statistics travel inside the checkpoint.
"""
from __future__ import annotations

import numpy as np
import torch

from racecar_env import spec

_PASSTHROUGH = ("sin_yaw", "cos_yaw", "v_forward", "v_left", "yaw_rate", "steer_angle") + tuple(
    f.name for f in spec.OBS_FIELDS[spec.LIDAR_SLICE])
FEATURE_NAMES: tuple[str, ...] = ("goal_fwd", "goal_left", "goal_dist") + _PASSTHROUGH
FEATURE_DIM = len(FEATURE_NAMES)
_PASS_IDX = np.array([spec.OBS_INDEX[n] for n in _PASSTHROUGH])
MIN_STD = 1e-3  # a feature that never varies in the data (e.g. a lidar ray that always reads max) is left unscaled


def features(observation: np.ndarray, desired_goal: np.ndarray) -> np.ndarray:
    """Raw (unstandardized) features, float32 (..., FEATURE_DIM), for one observation or a batch."""
    o = np.asarray(observation, dtype=np.float32)
    g = np.asarray(desired_goal, dtype=np.float32)
    if o.shape[-1] != spec.OBS_DIM or g.shape[-1] != 2:
        raise ValueError(f"observation must have last dim {spec.OBS_DIM} and desired_goal 2, "
                         f"got {o.shape} and {g.shape}")
    s, c = spec.field(o, "sin_yaw"), spec.field(o, "cos_yaw")
    dx, dy = g[..., 0] - spec.field(o, "x"), g[..., 1] - spec.field(o, "y")
    goal = np.stack([c * dx + s * dy, -s * dx + c * dy, np.hypot(dx, dy)], axis=-1)  # rotate by -yaw
    return np.concatenate([goal, o[..., _PASS_IDX]], axis=-1).astype(np.float32, copy=False)


class Encoder:
    """features() followed by standardization; holds the training-data statistics."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(FEATURE_DIM)
        self.std = np.maximum(np.asarray(std, dtype=np.float32).reshape(FEATURE_DIM), MIN_STD)

    @classmethod
    def fit(cls, raw_features: np.ndarray) -> "Encoder":
        f = np.asarray(raw_features, dtype=np.float64)
        return cls(f.mean(axis=0), f.std(axis=0))

    def normalize(self, raw_features: np.ndarray) -> np.ndarray:
        return ((raw_features - self.mean) / self.std).astype(np.float32, copy=False)

    def __call__(self, obs: dict) -> np.ndarray:
        """Dict observation (single or batched) -> standardized float32 features."""
        return self.normalize(features(obs["observation"], obs["desired_goal"]))

    def tensor(self, obs: dict) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self(obs)))

    def state_dict(self) -> dict:
        return {"feature_names": list(FEATURE_NAMES), "mean": torch.from_numpy(self.mean.copy()),
                "std": torch.from_numpy(self.std.copy())}

    @classmethod
    def from_state_dict(cls, d: dict, source: str = "checkpoint") -> "Encoder":
        if list(d.get("feature_names", [])) != list(FEATURE_NAMES):
            raise ValueError(f"{source}: encoder features {d.get('feature_names')} differ from this version's "
                             f"{list(FEATURE_NAMES)}; retrain the policy")
        return cls(d["mean"].numpy(), d["std"].numpy())
