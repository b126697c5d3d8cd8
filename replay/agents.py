"""Turn a command-line agent spec into something with `act(obs)`: a checkpoint (via `learn.load_policy`) or the
built-in autopilot baseline ("autopilot", "autopilot:noisy", ...). Rollout code only needs `act` (and `reset` if
the agent has one), so policies and drivers are interchangeable."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .trace import ReplayError

AUTOPILOT = "autopilot"


class Agent(Protocol):
    def act(self, obs: dict) -> np.ndarray: ...


@dataclass
class AgentSpec:
    """A parsed spec. `make(track)` builds a fresh agent so every run starts from the same internal state."""
    text: str
    label: str
    name: str                  # filesystem-friendly, for default output folder names
    track: str | None          # the track a checkpoint was trained on; None = any (autopilot)
    _policy: Any = None
    _skill: str | None = None
    _seed: int = 0

    @property
    def is_autopilot(self) -> bool:
        return self._policy is None

    def make(self, track) -> Agent:
        if self._policy is not None:
            return self._policy
        from teleop.autopilot import Autopilot
        return Autopilot(track, skill=self._skill, seed=self._seed)

    def check_env(self, env) -> None:
        if self._policy is not None and hasattr(self._policy, "check_env"):
            try:
                self._policy.check_env(env)
            except ValueError as e:
                raise ReplayError(f"{self.text}: {e}") from None


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def checkpoint_name(path: Path) -> str:
    """runs/X/checkpoints/best.pt -> "X-best"; other paths -> file stem."""
    if path.parent.name == "checkpoints" and path.parent.parent.name:
        return slug(f"{path.parent.parent.name}-{path.stem}")
    return slug(path.stem)


def short_source(text: str) -> str:
    """A short name for an agent spec: the checkpoint's run and file ("X-best") or the autopilot spec."""
    if text == AUTOPILOT or text.startswith(AUTOPILOT + ":"):
        return text
    return checkpoint_name(Path(text))


def resolve(text: str, seed: int = 0) -> AgentSpec:
    """'autopilot[:skill]' or a checkpoint path. Raises ReplayError (one line) for a missing or unreadable file."""
    if text == AUTOPILOT or text.startswith(AUTOPILOT + ":"):
        skill = text.partition(":")[2] or "expert"
        from teleop.autopilot import SKILLS
        if skill not in SKILLS:
            raise ReplayError(f"{text}: unknown autopilot skill {skill!r}; expected one of {', '.join(SKILLS)}")
        return AgentSpec(text, f"autopilot ({skill})", slug(f"autopilot-{skill}"), None, _skill=skill, _seed=seed)
    path = Path(text)
    if not path.exists():
        raise ReplayError(f"checkpoint {path} does not exist (expected a .pt file such as "
                          f"runs/NAME/checkpoints/best.pt, or 'autopilot')")
    if not path.is_file():
        raise ReplayError(f"checkpoint {path} is not a file (expected a .pt file)")
    from learn import load_policy  # imported here: torch loads only when a checkpoint is asked for
    try:
        policy = load_policy(path)
    except Exception as e:  # noqa: BLE001 - any failure to read a user's file becomes one clear line
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if str(path) not in msg:
            msg = f"cannot load checkpoint {path}: {msg}"
        raise ReplayError(msg) from None
    # algorithm and run, e.g. "td3bc (s_expert_td3bc_s0-best)": panels and plots must say which run they show
    name = short_source(text)
    label = f"{getattr(policy, 'label', None) or 'policy'} ({name})"
    track = getattr(policy, "track", None)
    return AgentSpec(text, label, name, None if track is None else str(track), _policy=policy)
