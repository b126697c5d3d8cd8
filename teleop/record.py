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

DRIVERS = ("keyboard", "gamepad", "autopilot")


@dataclass(frozen=True)
class RecordConfig:
    """A headless (autopilot) recording."""
    dataset: str
    episodes: int = 10
    skill: str = "expert"
    track: str = "s_curve"                # a track name/path/gen:SEED, or "random" for a new generated track each episode
    seed: int = 0
    max_episode_steps: int | None = None  # None: the env's default
    workers: "int | str" = "auto"         # env processes; episodes are the same for any number
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


def dataset_state(dataset_id: str, path: Path, episodes: int) -> str:
    """How a session's last line ends: where the dataset is, or that none was made (a new dataset that got no
    episode is removed by its writer)."""
    if not path.exists():
        return f"no dataset written ({dataset_id} was not created: nothing was saved)"
    return f"dataset {dataset_id} now holds {episodes} episodes at {path}"


def episode_seed(base_seed: int, index: int) -> int:
    """A well-mixed 31-bit seed for episode `index` of a recording with base seed `base_seed`."""
    return int(np.random.SeedSequence([int(base_seed) & 0xFFFFFFFF, int(index)]).generate_state(1)[0] >> 1)


def record_autopilot(cfg: RecordConfig) -> RecordResult:
    """Record cfg.episodes autopilot episodes into cfg.dataset (created or appended), on every core.

    Episodes run in parallel but are committed in order: episode k is written (durable) as soon as it and every
    earlier one have finished, so the dataset is the same for any number of workers, and a kill loses only the
    episodes still running or waiting for an earlier one (at most one per worker)."""
    from racecar_env.progress import Progress
    from racecar_env.rollout import make_env, reset_env, run_episodes
    from teleop.autopilot import AutopilotFactory

    if cfg.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {cfg.episodes}")
    env_kwargs = {"track": cfg.track}
    if cfg.max_episode_steps is not None:
        env_kwargs["max_episode_steps"] = cfg.max_episode_steps
    env = make_env(env_kwargs)  # a bad track fails here, before any dataset is created
    first_track = env.track
    try:
        reset_env(env, 0, None)   # ... and so does a start the env cannot place the car at (every episode resets anew)
    except BaseException:
        env.close()
        raise
    successes = added = 0
    interrupted = False
    t0 = time.perf_counter()
    try:
        with DatasetWriter(cfg.dataset) as writer:
            start = writer.episodes
            seeds = [episode_seed(cfg.seed, start + i) for i in range(cfg.episodes)]
            finished: dict[int, object] = {}
            bar = Progress(cfg.episodes, f"recording {writer.id}", "ep", quiet=not cfg.progress)

            def commit(i, episode) -> None:
                nonlocal added, successes
                finished[i] = episode
                while added in finished:   # in order: the dataset does not depend on which worker finished first
                    ep = finished.pop(added)
                    writer.add(ep)   # durable before the next one is written; stores ep.track with it
                    added += 1
                    successes += ep.success
                    bar.set_postfix(f"successes {successes}/{added} ({successes / added:.0%})")
                    bar.update(1)

            # the autopilot of episode i is seeded with that episode's seed (replayable from it alone) and plans on
            # the episode's own track, which the reset info hands it
            try:
                with bar:   # closed with its count when the work ends; after a failure the error line is the last
                    run_episodes(env_kwargs, AutopilotFactory(first_track, cfg.skill, seeds), seeds,
                                 meta={"seed_base": int(cfg.seed)}, workers=cfg.workers, on_episode=commit, env=env)
            except KeyboardInterrupt:
                interrupted = True
            total = writer.episodes
    finally:
        env.close()
    return RecordResult(writer.id, writer.path, added, successes, total, time.perf_counter() - t0, interrupted)
