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

from racecar_env import cli
from racecar_env.storage import DatasetError, DatasetWriter, dataset_id, dataset_path, load_dataset

DRIVERS = ("keyboard", "gamepad", "autopilot")
#: the largest base seed episode_seed tells apart: it keeps the low 32 bits (recorded datasets depend on that
#: mapping), so a larger --seed would silently record the episodes of a smaller one
MAX_BASE_SEED = 2 ** 32 - 1


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


def check_default_dataset(name: str, track: str, source) -> None:
    """Refuse a default dataset name (`default_dataset_name`, one the user did not give) that is not a valid name,
    or that names an existing dataset holding episodes on other tracks than `source` (the TrackSource of `track`)
    draws: appending would mix tracks silently (`python -m learn` then evaluates on random:test). An explicit
    --dataset may mix tracks. Raises a one-line DatasetError."""
    try:
        dataset_id(name)
    except DatasetError:
        made_from = (f"--track {track}" if str(track).startswith("gen:")
                     else f"the --track file's name, {Path(str(track)).name!r}")
        raise DatasetError(f"the default dataset name {name!r} (made from {made_from}) is not a valid dataset name "
                           f"(an ASCII letter, digit or '_' first, then letters, digits, '-' or '_', at most 100 "
                           f"bytes); pass --dataset NAME") from None
    if not (dataset_path(name) / "data").is_dir():
        return
    try:
        ds = load_dataset(name)
        ids = dict.fromkeys(str(ds.episode_metadata(i)["track_id"]) for i in range(len(ds)))  # first-use order
        held = [ds.track(tid) for tid in ids]
    except DatasetError:
        return   # damaged or unusable: the writer refuses it with the whole diagnosis
    drawn = [_draws(source, t) for t in held]
    if all(drawn):
        return
    this = source.fixed
    shown = held[:3] + ([this] if this is not None else [])
    ids_of = {}
    for t in shown:
        ids_of.setdefault(t.name, set()).add(t.track_id)

    def label(t) -> str:   # the same name on different content (an edited copy): the id tells them apart
        return t.name + (f" [{t.track_id}]" if len(ids_of[t.name]) > 1 else "")

    names = ", ".join(label(t) for t in held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
    holds = f"track {names}" if len(held) == 1 else f"{len(held)} tracks ({names})"
    on = f"on {label(this)}" if this is not None else f"from {source.describe()}"
    raise DatasetError(f"dataset {ds.id} (the default name for --track {track}) holds episodes on {holds}, "
                       f"{'not only' if any(drawn) else 'not'} {on} (this --track): recording would mix tracks; "
                       f"pass --dataset NAME (a new name, or --dataset {name} to mix them on purpose)")


def _draws(source, track) -> bool:
    """Whether `source` (a TrackSource) records episodes on `track`: its own track (the same content: the
    dataset's track id), or for a random source a generated track of its seed range and difficulty."""
    if source.fixed is not None:
        return track.track_id == source.fixed.track_id
    from racecar_env.tracks import TEST_SEEDS, TRAIN_SEEDS
    gen = track.extra.get("generator")
    seeds = TRAIN_SEEDS if source.pool == "train" else TEST_SEEDS
    return (isinstance(gen, dict) and isinstance(gen.get("seed"), int) and gen["seed"] in seeds
            and gen.get("difficulty") == source.generator.get("difficulty"))


def dataset_state(dataset_id: str, path: Path, episodes: int) -> str:
    """How a session's last line ends: where the dataset is, or that none was made (a new dataset that got no
    episode is removed by its writer)."""
    if not path.exists():
        return f"no dataset written ({dataset_id} was not created: nothing was saved)"
    return f"dataset {dataset_id} now holds {episodes} episodes at {path}"


#: argparse type of --seed: a whole number 0 .. MAX_BASE_SEED (the base seeds episode_seed tells apart)
base_seed = cli.seed_type(MAX_BASE_SEED, "2**32 - 1", ": episode seeds are derived from its low 32 bits")


def episode_seed(base_seed: int, index: int) -> int:
    """A well-mixed 31-bit seed for episode `index` of a recording with base seed `base_seed` (0..MAX_BASE_SEED)."""
    if not 0 <= int(base_seed) <= MAX_BASE_SEED:   # the mask below would make it another seed's episodes
        raise ValueError(f"base seed must be 0..2**32 - 1 ({MAX_BASE_SEED}), got {base_seed}")
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
    if not 0 <= int(cfg.seed) <= MAX_BASE_SEED:   # before any dataset is created
        raise ValueError(f"--seed must be 0..2**32 - 1 ({MAX_BASE_SEED}), got {cfg.seed}")
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
