"""Checkpoints: one file holds everything needed to act (actor weights, encoder statistics, observation layout,
track) plus the full training state for --resume. Written atomically (temp file + os.replace), so a kill during a
save leaves the previous checkpoint intact.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from racecar_env import spec
from racecar_env.files import write_bytes
from racecar_env.tracks import TrackError, load_track

from .encoding import FEATURE_DIM, Encoder

FORMAT = "racecar-learn-checkpoint-v1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


def save_checkpoint(path: Path, payload: dict) -> None:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buf)
    write_bytes(path, buf.getvalue())  # atomic + fsync'd: a kill mid-save keeps the previous checkpoint


def load_checkpoint(path: "str | Path") -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for truncated/foreign files
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
                              ) from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a racecar learn checkpoint (expected format {FORMAT!r})")
    if ck.get("obs_layout_id") != spec.OBS_LAYOUT_ID:
        raise CheckpointError(f"{path}: trained on observation layout {ck.get('obs_layout_id')}, this environment "
                              f"uses {spec.OBS_LAYOUT_ID}; retrain on data recorded with the current env")
    return ck


class Policy:
    """A trained policy: act(obs) maps one env observation (Dict) to one float32 (2,) action."""

    def __init__(self, actor: torch.nn.Module, encoder: Encoder, track: str, label: str, path: str = "",
                 step: int = 0):
        self.actor = actor.eval()
        self.encoder = encoder
        self.track = track
        self.label = label
        self.path = path
        self.step = step

    @torch.no_grad()
    def act(self, obs: dict) -> np.ndarray:
        x = self.encoder.tensor(obs)
        single = x.dim() == 1
        a = self.actor.act(x.unsqueeze(0) if single else x)
        a = a[0] if single else a
        return a.numpy().astype(np.float32, copy=False)

    def check_env(self, env) -> None:
        """Raise CheckpointError unless `env` is a RaceCarEnv on the track this policy was trained on."""
        base = getattr(env, "unwrapped", env)
        track = getattr(base, "track", None)
        if track is None:
            raise CheckpointError(f"{self.path or self.label}: {type(base).__name__} is not a RaceCarEnv")
        if track.name != _track_name(self.track):
            raise CheckpointError(f"{self.path or self.label}: trained on track {self.track!r}, env runs track "
                                  f"{track.name!r}")
        shape = base.observation_space["observation"].shape
        if shape != (spec.OBS_DIM,):
            raise CheckpointError(f"{self.path or self.label}: env observation shape {shape}, policy expects "
                                  f"({spec.OBS_DIM},)")

    def __repr__(self) -> str:
        return f"Policy({self.label!r}, track={self.track!r}, step={self.step}, path={self.path!r})"


def _track_name(track: str) -> str:
    try:
        return load_track(track).name
    except TrackError:
        return Path(track).stem


def policy_from_checkpoint(ck: dict, path: str = "") -> Policy:
    from .algos import ACTOR_KINDS
    from .config import TrainConfig
    try:
        cfg = TrainConfig.from_dict(ck["config"], source=path)
        encoder = Encoder.from_state_dict(ck["encoder"], source=path)
        actor = ACTOR_KINDS[cfg.algo](FEATURE_DIM, 2, cfg.hidden)
        actor.load_state_dict(ck["agent"]["actor"])
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"{path}: checkpoint content is damaged or from another version "
                              f"({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    return Policy(actor, encoder, track=ck["track"], label=cfg.algo, path=path, step=int(ck.get("step", 0)))


def load_policy(path: "str | Path") -> Policy:
    """Load runs/NAME/checkpoints/best.pt (or any learn checkpoint) as a Policy; one-line CheckpointError if not."""
    return policy_from_checkpoint(load_checkpoint(path), str(path))
