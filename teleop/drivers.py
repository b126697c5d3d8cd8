"""What the recorder talks to: an `Agent` (racecar_env.rollout: anything with act(obs)) that also names itself,
starts episodes and says who drove.

Keyboard, gamepad and autopilot drivers are interchangeable: the recording session (window or headless) calls
`reset` at the start of each episode (the reset info carries the episode's track), `act` once per control tick,
and stores `provenance()` with the episode. Learned policies are Agents too, which is how replay drives them.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from racecar_env.rollout import Agent


@runtime_checkable
class Driver(Agent, Protocol):
    name: str  # provenance of the episodes this driver makes: "human", "autopilot", ...

    def reset(self, obs: dict, info: dict) -> None:
        """A new episode starts from `obs`; info["track"] is its track."""

    def provenance(self) -> dict:
        """Stored with each episode, e.g. {"driver": "autopilot", "skill": "expert", "noise": 0.0}."""
