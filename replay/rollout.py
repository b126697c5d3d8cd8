"""Roll an agent out in `RaceCarEnv` and keep what the viewer needs as `Trace`s.

Env settings are the env's defaults (start jitter, dense reward, time limit) and episode i uses seed `seed + i`,
the same as learn's evaluation, so eval_info.json agrees with the learner's numbers for the same policy and seeds.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from racecar_env import RaceCarEnv
from racecar_env.rollout import run_episode

from .agents import Agent
from .trace import Trace, from_dataset_episode


def episode_seeds(seed: int, episodes: int) -> list[int]:
    return [seed + i for i in range(episodes)]


def make_env(track) -> RaceCarEnv:
    """The evaluation env: RaceCarEnv defaults, no rendering (the viewer draws from observations)."""
    return RaceCarEnv(track=track)


def rollout_episode(env: RaceCarEnv, agent: Agent, seed: int | None, *, label: str, episode: int,
                    options: dict | None = None, meta: dict | None = None) -> Trace:
    return from_dataset_episode(run_episode(env, agent, seed, options=options, meta=meta), episode, label)


def rollout(env: RaceCarEnv, agent: Agent, seeds: Iterable[int | None], *, label: str,
            options: Iterable[dict | None] | None = None, episode_ids: Iterable[int] | None = None,
            meta: dict | None = None) -> Iterator[Trace]:
    """Lazily roll out one episode per seed, optionally with per-episode reset options (e.g. a demo's start) and
    episode numbers (e.g. the demo's dataset index, so comparison panels agree)."""
    seeds = list(seeds)
    opts = list(options) if options is not None else [None] * len(seeds)
    ids = list(episode_ids) if episode_ids is not None else range(len(seeds))
    for i, seed, opt in zip(ids, seeds, opts):
        yield rollout_episode(env, agent, seed, label=label, episode=i, options=opt, meta=meta)


def start_options(trace: Trace) -> dict:
    """Reset options that put a rollout at exactly the start pose and goal of a recorded episode."""
    x, y, yaw = trace.pose(0)
    gx, gy = (float(v) for v in trace.goals[0])
    return {"start": {"x": x, "y": y, "yaw": yaw}, "goal": {"x": gx, "y": gy}}
