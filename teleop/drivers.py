"""What the recorder talks to: anything that turns observations (and, for people, input events) into actions.

Keyboard, gamepad and autopilot drivers are interchangeable: the recording session calls `reset` at the start of
each episode and `act` once per control tick, and stores `provenance()` with the episode.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Driver(Protocol):
    name: str  # provenance of the episodes this driver makes: "human", "autopilot", ...

    def reset(self, obs: dict, info: dict) -> None:
        """A new episode starts from `obs`."""

    def act(self, obs: dict) -> np.ndarray:
        """The float32 (steer, throttle) action for this tick."""

    def provenance(self) -> dict:
        """Stored with each episode, e.g. {"driver": "autopilot", "skill": "expert", "noise": 0.0}."""
