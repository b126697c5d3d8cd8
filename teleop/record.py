"""Headless recording: run a Driver in the env for N episodes and append each finished episode to a dataset.

Episode seeds are derived from (base seed, the episode's index in the dataset), so recording 10 + 10 episodes
into one dataset gives the same episodes as recording 20 at once, and every stored episode can be replayed from
its recorded `seed` alone (env reset seed and autopilot noise seed).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from racecar_env.storage import DatasetWriter
from racecar_env.rollout import run_episode

DRIVERS = ("keyboard", "gamepad", "autopilot")


@dataclass(frozen=True)
class RecordConfig:
    dataset: str
    driver: str = "autopilot"
    episodes: int = 10
    skill: str = "expert"
    track: str = "s_curve"
    seed: int = 0
    max_episode_steps: int | None = None  # None: the env's default
    progress: bool = True


@dataclass(frozen=True)
class RecordResult:
    dataset_id: str
    path: Path
    added: int
    successes: int
    total_episodes: int
    seconds: float
    interrupted: bool = False  # Ctrl-C: the episode in progress was dropped, every finished one is saved


def track_short_name(track: str) -> str:
    """The track part of a default dataset name: the first word of the track's name ("s_curve" -> "s",
    "hairpin" -> "hairpin", "tracks/my_oval.json" -> "my"); "multi" for a track per episode ("random...")."""
    text = str(track)
    if text == "random" or text.startswith("random:"):
        return "multi"
    if text.startswith("gen:"):
        return "gen" + re.sub(r"\W", "", text[4:])
    stem = Path(text).stem
    word = stem.split("_")[0] or stem
    return re.sub(r"[^-\w]", "_", word) or "track"


def default_dataset_name(track: str, driver: str, skill: str) -> str:
    """<track short name>_<skill> for the autopilot, <track short name>_human for keyboard/gamepad: "s_expert"
    (the dataset `python -m learn` trains on by default), "hairpin_noisy", "s_human", "multi_expert"."""
    who = skill if driver == "autopilot" else "human"
    return f"{track_short_name(track)}_{who}"


def episode_seed(base_seed: int, index: int) -> int:
    """A well-mixed 31-bit seed for episode `index` of a recording with base seed `base_seed`."""
    return int(np.random.SeedSequence([int(base_seed) & 0xFFFFFFFF, int(index)]).generate_state(1)[0] >> 1)


def record_autopilot(cfg: RecordConfig) -> RecordResult:
    """Record cfg.episodes autopilot episodes into cfg.dataset (created or appended); each is durable when saved."""
    from tqdm import tqdm

    from racecar_env import RaceCarEnv
    from teleop.autopilot import Autopilot

    if cfg.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {cfg.episodes}")
    env_kwargs = {} if cfg.max_episode_steps is None else {"max_episode_steps": cfg.max_episode_steps}
    successes = added = 0
    interrupted = False
    t0 = time.perf_counter()
    env = RaceCarEnv(cfg.track, **env_kwargs)  # a bad track fails here, before any dataset is created
    try:
        with DatasetWriter(cfg.dataset) as writer:
            bar = tqdm(total=cfg.episodes, unit="ep", desc=f"recording {writer.id}", disable=not cfg.progress,
                       dynamic_ncols=True)
            try:
                for _ in range(cfg.episodes):
                    seed = episode_seed(cfg.seed, writer.episodes)
                    driver = Autopilot(env.track, skill=cfg.skill, seed=seed)  # per-episode: replayable from `seed`
                    episode = run_episode(env, driver, seed, meta={"seed_base": int(cfg.seed)})
                    writer.add(episode)  # durable before the next episode starts; stores episode.track with it
                    added += 1
                    successes += episode.success
                    bar.set_postfix_str(f"successes {successes}/{added} ({successes / added:.0%})", refresh=False)
                    bar.update(1)
            except KeyboardInterrupt:
                interrupted = True
            finally:
                bar.close()
            total = writer.episodes
    finally:
        env.close()
    return RecordResult(writer.id, writer.path, added, successes, total, time.perf_counter() - t0, interrupted)
