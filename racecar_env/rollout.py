"""The one episode loop every stage uses: recording demos, evaluating agents, rendering rollouts.

Anything with `act(obs) -> action` drives (a learn Policy, the Autopilot, a keyboard driver); a `reset(obs, info)`
method, if present, is called at the episode start. The result is a full `episode.Episode` (T+1 observations,
the env's terminations/truncations, infos, the track it ran on), so a rollout can be saved, evaluated or drawn without re-running it.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .episode import Episode, EpisodeRecorder
from .env import RaceCarEnv


def run_episode(env: RaceCarEnv, agent, seed: int | None = None, *, options: dict | None = None,
                meta: dict | None = None, on_step: Callable[[RaceCarEnv], None] | None = None) -> Episode:
    """One episode from env.reset(seed, options) until the env ends it. `on_step(env)` runs after the reset and
    after every step (e.g. to grab a frame). Episode.meta = agent.provenance() (if any) + seed + `meta`."""
    obs, info = env.reset(seed=seed, options=options)
    if hasattr(agent, "reset"):
        agent.reset(obs, info)
    rec = EpisodeRecorder(obs, info)
    if on_step is not None:
        on_step(env)
    while not rec.done:
        action = np.asarray(agent.act(obs), dtype=np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        rec.step(action, obs, reward, terminated, truncated, info)
        if on_step is not None:
            on_step(env)
    provenance = agent.provenance() if hasattr(agent, "provenance") else {}
    return rec.finish({**provenance, "seed": None if seed is None else int(seed), **(meta or {})}, track=env.track)
