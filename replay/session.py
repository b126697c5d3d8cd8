"""What to show: the command line's choice (a policy, a dataset, or a comparison) as runs of Episodes, and runs as
clips (one clip = frames drawn on demand: one episode, or a grid of panels).

Every episode is drawn on its own track (`Episode.track`): a rollout on "random:test" draws episode i on the track
its seed draws, a dataset's demo on the track stored with it. Rollouts go through `racecar_env.rollout.run_episodes`
with the env's defaults and seeds S, S+1, ..., exactly like `racecar_env.evaluation.evaluate`, so eval_info.json
holds the same numbers the learner reports for the same seeds.
"""
from __future__ import annotations

import importlib.util
import inspect
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Sequence

import numpy as np

from racecar_env import RaceCarEnv
from racecar_env.episode import Episode
from racecar_env.evaluation import EvalResult
from racecar_env.progress import Progress
from racecar_env.render import EpisodeRenderer
from racecar_env.rollout import run_episodes
from racecar_env.tracks import Track, TrackError, load_track
from racecar_env.tracks.source import track_source

from . import agents
from .errors import ReplayError
from .grid import Grid

DEFAULT_EPISODES = 5
DEFAULT_TRACK = "s_curve"
GRID_PANEL = (480, 360)     # top-down panel size when panels show different tracks (every track fitted in it)
GRID_PAGE = 12              # panels per grid video (4x3); more episodes -> grid_1.mp4, grid_2.mp4, ...
MAX_EPISODES = 1000         # rollouts per run: every episode is kept (and drawn); 1e11 filled the RAM before one ran


def read_dataset(name: str):
    """The one place replay reads a dataset: indexable Episodes, each with its own `.track`."""
    from racecar_env.storage import load_dataset
    return load_dataset(name)


@dataclass
class Run:
    """One agent's (or one dataset's) episodes."""
    label: str                   # panel label / plot title
    source: str                  # checkpoint path, "autopilot:skill" or "dataset NAME"
    episodes: list[Episode]
    numbers: list[int]           # episode numbers shown (0..N-1 for rollouts, dataset indices for demos)
    info: dict = field(default_factory=dict)   # for eval_info.json: track source, seeds, env settings

    @cached_property
    def result(self) -> EvalResult:
        return EvalResult.of(self.episodes)

    def block(self) -> dict:
        """This run in eval_info.json: `EvalResult.to_dict()` (the names every stage uses), each episode row with
        its episode number added."""
        d = self.result.to_dict()
        d["per_episode"] = [{"episode": n, **row} for n, row in zip(self.numbers, d["per_episode"])]
        return {"label": self.label, "source": self.source, **self.info, **d}

    def track_ids(self) -> set[str]:
        return {e.track.track_id for e in self.episodes}


@dataclass
class Clip:
    """Frames to show: `n` frames drawn on demand by `frame(f)`."""
    title: str
    n: int
    frame: Callable[[int], np.ndarray]


# --- inputs -------------------------------------------------------------------------------------------------------
def parse_count(text: str | None) -> int:
    if text is None:
        return DEFAULT_EPISODES
    try:
        n = int(text)
    except ValueError:
        raise ReplayError(f"--episodes {text!r}: expected a number of episodes >= 1 (indices like 0,3,7 are for "
                          f"--dataset)") from None
    if not 1 <= n <= MAX_EPISODES:
        raise ReplayError(f"--episodes {text!r}: expected a number of episodes from 1 to {MAX_EPISODES}")
    return n


def parse_indices(text: str | None, available: int, name: str) -> list[int]:
    """'0,3,7' or '2-5' or '4' -> dataset episode indices; None -> the first DEFAULT_EPISODES. Repeats refused."""
    if text is None:
        return list(range(min(DEFAULT_EPISODES, available)))
    spans: list[tuple[int, int]] = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.strip().partition("-")
            spans.append((int(lo), int(hi) if sep else int(lo)))
    except ValueError:
        raise ReplayError(f"--episodes {text!r}: expected dataset episode indices >= 0 like 0,3,7 or 2-5") from None
    # bounds before expanding: "0-99999999999" was a MemoryError traceback
    bad = sorted({i for lo, hi in spans if lo <= hi for i in (lo, hi) if not 0 <= i < available})
    if bad:
        raise ReplayError(f"dataset {name} has {available} episodes (0-{available - 1}); "
                          f"--episodes asks for {', '.join(map(str, bad))}")
    out = [i for lo, hi in spans for i in range(lo, hi + 1)]
    if not out:
        raise ReplayError(f"--episodes {text!r}: selects no episodes (a range is low-high, e.g. 2-5)")
    repeated = sorted(i for i, k in Counter(out).items() if k > 1)
    if repeated:
        raise ReplayError(f"--episodes {text!r}: episode {', '.join(map(str, repeated))} listed more than once")
    return out


def _check_generator(text: str, who: str) -> None:
    if importlib.util.find_spec("racecar_env.tracks.generate") is None:
        raise ReplayError(f"{who} {text!r}: generated tracks need racecar_env.tracks.generate, which this "
                          f"installation does not have")


def track_arg(value: "str | Track", who: str = "--track") -> "str | Track":
    """A track argument checked up front: a Track (shipped name, .json path, gen:SEED) or a random source string."""
    if isinstance(value, Track):
        return value
    text = str(value)
    try:
        if text == "random" or text.startswith("random:"):
            track_source(text)   # syntax
            _check_generator(text, who)
            return text
        if text.startswith("gen:"):
            _check_generator(text, who)
        return load_track(text)
    except TrackError as e:
        raise ReplayError(f"{who}: {e}") from None


def describe(track: "str | Track") -> str:
    return track.name if isinstance(track, Track) else str(track)


def env_defaults() -> dict:
    """The env settings every rollout uses (RaceCarEnv's defaults), recorded in eval_info.json."""
    p = inspect.signature(RaceCarEnv.__init__).parameters
    return {k: (list(p[k].default) if isinstance(p[k].default, tuple) else p[k].default)
            for k in ("start_jitter", "goal_mode", "max_episode_steps")}


def load_demos(name: str, indices_text: str | None) -> Run:
    """The chosen dataset episodes, played back from their stored observations on their stored tracks."""
    def one_line(e: Exception) -> ReplayError:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return ReplayError(msg if name in msg else f"dataset {name}: {msg}")
    try:
        ds = read_dataset(name)
    except (ValueError, OSError) as e:  # DatasetError or a damaged file: one line either way
        raise one_line(e) from None
    if len(ds) == 0:   # --compare with it was an IndexError traceback
        raise ReplayError(f"dataset {name} holds no episodes: nothing to show")
    indices = parse_indices(indices_text, len(ds), name)
    try:
        episodes = [ds[i] for i in indices]   # a dataset may read (and check) episodes only when asked
    except (ValueError, OSError) as e:
        raise one_line(e) from None
    for i, e in zip(indices, episodes):
        if e.track is None:
            raise ReplayError(f"dataset {name}: episode {i} has no track stored with it")
    return Run(f"dataset {name}", f"dataset {name}", episodes, indices,
               {"dataset": name, "seeds": [e.meta.get("seed") for e in episodes]})


def start_options(ep: Episode) -> dict:
    """Reset options that put a rollout on a recorded episode's track at exactly its start pose and goal."""
    from racecar_env import spec
    o = ep.observations["observation"][0]
    yaw = float(np.arctan2(spec.field(o, "sin_yaw"), spec.field(o, "cos_yaw")))
    gx, gy = (float(v) for v in ep.observations["desired_goal"][0])
    return {"track": ep.track, "start": {"x": float(spec.field(o, "x")), "y": float(spec.field(o, "y")), "yaw": yaw},
            "goal": {"x": gx, "y": gy}}


# --- runs ---------------------------------------------------------------------------------------------------------
def policy_runs(specs: Sequence[agents.AgentSpec], track: "str | Track", seeds: Sequence[int | None], *,
                options: Sequence[dict | None] | None = None, numbers: Sequence[int] | None = None,
                workers: "int | str" = "auto", quiet: bool = False, note: Callable[[str], None] | None = None,
                track_info: str | None = None) -> list[Run]:
    """Roll every agent out on the same seeds (hence, on "random...", the same tracks) and reset options.
    `note(text)` receives a policy's note when it runs on tracks it was not trained on."""
    env_kwargs = {"track": track}
    opts = list(options) if options is not None else [None] * len(seeds)
    env = env_defaults()
    if opts and all(o and "start" in o for o in opts):   # an explicit start pose is never jittered
        env["start_jitter"] = [0.0, 0.0]
    nums = list(numbers) if numbers is not None else list(range(len(seeds)))
    runs = []
    with Progress(len(specs) * len(seeds), "rollout", "ep", quiet=quiet) as bar:
        for spec in specs:
            try:
                eps = run_episodes(env_kwargs, spec.agent_for(env_kwargs, seeds, opts), list(seeds), options=opts,
                                   meta={"agent": spec.text}, workers=workers, on_episode=lambda i, e: bar.update())
            except TrackError as e:
                raise ReplayError(str(e)) from None
            runs.append(Run(spec.label, spec.text, eps, nums,
                            {"track": track_info or describe(track), "seeds": list(seeds), "env": env}))
            text = spec.note([e.track for e in eps])
            if text and note is not None:
                note(text)
    return runs


def unique_labels(runs: Sequence[Run]) -> None:
    """Comparison panels need distinct labels: repeated ones (the same checkpoint twice, two runs of one name; the
    label already names the run and file) are numbered in order: "bc (x-best) #1", "bc (x-best) #2"."""
    counts, seen = Counter(r.label for r in runs), Counter()
    for run in runs:
        if counts[run.label] > 1:
            seen[run.label] += 1
            run.label = f"{run.label} #{seen[run.label]}"


def several_tracks(runs: Sequence[Run]) -> bool:
    return len(set().union(*(r.track_ids() for r in runs))) > 1


# --- clips --------------------------------------------------------------------------------------------------------
def episode_clips(renderer: EpisodeRenderer, run: Run, label: str | None = None) -> list[Clip]:
    """One clip per episode, each at its track's size (or the renderer's fixed size)."""
    label = run.label if label is None else label
    return [Clip(f"{run.label} episode {n}", renderer.frame_count(ep),
                 lambda f, ep=ep, n=n: renderer.frame(ep, f, label, n))
            for ep, n in zip(run.episodes, run.numbers)]


def grid_clip(renderer: EpisodeRenderer, panels: Sequence[tuple[str, Episode, int]], title: str) -> Clip:
    """panels: (label, episode, number). All side by side; an episode that ended holds its banner frame until the
    longest one ends."""
    sizes = {renderer.size(ep.track) for _, ep, _ in panels}
    if len(sizes) != 1:
        raise ValueError(f"grid panels differ in size {sorted(sizes)}: use EpisodeRenderer(size=...)")
    grid = Grid([label for label, _, _ in panels], sizes.pop())
    counts = [renderer.frame_count(ep) for _, ep, _ in panels]
    return Clip(title, max(counts), lambda f: grid.compose(
        [renderer.frame(ep, min(f, c - 1), "", n) for (_, ep, n), c in zip(panels, counts)]))


def panel_label(prefix: str, ep: Episode) -> str:
    return f"{prefix} | {ep.track.name} | {ep.outcome}"


def run_grid_clips(renderer: EpisodeRenderer, run: Run, word: str = "ep") -> list[Clip]:
    """A run's episodes as grids of up to GRID_PAGE panels, each labelled with its track and outcome."""
    items = [(panel_label(f"{word} {n}", ep), ep, n) for ep, n in zip(run.episodes, run.numbers)]
    pages = [items[i:i + GRID_PAGE] for i in range(0, len(items), GRID_PAGE)]
    return [grid_clip(renderer, page, f"{run.label} episodes {page[0][2]}-{page[-1][2]}") for page in pages]


def compare_clips(renderer: EpisodeRenderer, runs: Sequence[Run]) -> list[Clip]:
    """One grid per episode index: every run's episode i (same seed, same track) side by side."""
    clips = []
    for i, n in enumerate(runs[0].numbers):
        panels = [(f"{r.label} | {r.episodes[i].outcome}", r.episodes[i], n) for r in runs]
        clips.append(grid_clip(renderer, panels, f"episode {n} ({runs[0].episodes[i].track.name})"))
    return clips
