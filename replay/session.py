"""What to show: turn the command line's choice (a policy, a dataset, or a comparison) into runs of traces on one
track, and runs into clips (a clip = one episode's frames: a single view, or a grid of panels for a comparison)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from racecar_env import load_track
from racecar_env.tracks import Track, TrackError

from . import agents
from .frames import Grid, TraceRenderer
from .rollout import make_env, rollout
from .trace import ReplayError, Trace, from_dataset_episode

DEFAULT_EPISODES = 5


@dataclass
class Run:
    label: str                   # panel label / plot title
    source: str                  # checkpoint path, "autopilot:skill" or "dataset NAME"
    traces: list[Trace]
    extra: dict = field(default_factory=dict)   # stored in eval_info.json (seeds, env settings, ...)


@dataclass
class Clip:
    """One episode to show: `n` frames drawn on demand by `frame(f)`."""
    title: str
    n: int
    frame: Callable[[int], np.ndarray]


# --- inputs -------------------------------------------------------------------------------------------------------
def parse_indices(text: str | None, available: int, name: str) -> list[int]:
    """'0,3,7' or '2-5' or '4' -> dataset episode indices; None -> the first DEFAULT_EPISODES."""
    if text is None:
        return list(range(min(DEFAULT_EPISODES, available)))
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.strip().partition("-")
            out.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    except ValueError:
        raise ReplayError(f"--episodes {text!r}: expected dataset episode indices like 0,3,7 or 2-5") from None
    bad = [i for i in out if not 0 <= i < available]
    if bad:
        raise ReplayError(f"dataset {name} has {available} episodes (0-{available - 1}); "
                          f"--episodes asks for {', '.join(map(str, bad))}")
    return out


def parse_count(text: str | None) -> int:
    if text is None:
        return DEFAULT_EPISODES
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ReplayError(f"--episodes {text!r}: expected a number of episodes >= 1 when rolling out a policy")
    return n


def load_demos(name: str, indices_text: str | None) -> tuple[Track, list[Trace]]:
    """(track, traces) of the chosen dataset episodes, played back from the stored observations."""
    from racecar_env.storage import load_dataset
    try:
        ds = load_dataset(name)
        indices = parse_indices(indices_text, len(ds), name)
        episodes = [ds[i] for i in indices]
    except ReplayError:
        raise
    except Exception as e:  # noqa: BLE001 - DatasetError or a corrupt file: one line either way
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ReplayError(msg if name in msg else f"dataset {name}: {msg}") from None
    tracks = {ep.track.track_id: ep.track for ep in episodes}
    if len(tracks) > 1:
        raise ReplayError(f"dataset {name}: the chosen episodes ran on {len(tracks)} different tracks "
                          f"({', '.join(sorted(t.name for t in tracks.values()))}); pick episodes of one track")
    traces = []
    for i, ep in zip(indices, episodes):
        tr = from_dataset_episode(ep, i)
        tr.meta["recorded"] = True
        traces.append(tr)
    return next(iter(tracks.values())), traces


def resolve_track(wanted: Sequence[tuple[str, "str | Track | None"]], fallback: str | None) -> Track:
    """The one track every input agrees on. wanted: (who, track or None)."""
    named = [(who, t) for who, t in wanted if t is not None]
    chosen = fallback if fallback is not None else (named[0][1] if named else "s_curve")
    try:
        track = load_track(chosen)
    except TrackError as e:
        raise ReplayError(str(e)) from None
    for who, t in named:
        try:
            other = load_track(t)
        except TrackError:
            other = None
        if other is None or other.name != track.name:
            raise ReplayError(f"{who} is for track {t.name if isinstance(t, Track) else t!r}, but this replay runs "
                              f"on track {track.name!r}"
                              + (" (--track)" if fallback is not None else ""))
    return track


# --- runs ---------------------------------------------------------------------------------------------------------
def _env_extra(env, seeds) -> dict:
    return {"track": env.track.name, "seeds": list(seeds),
            "env": {"start_jitter": list(env.start_jitter), "max_episode_steps": env.max_episode_steps,
                    "dense_reward": env.reward_config.dense, "goal_mode": env.goal_mode}}


def policy_runs(specs: Sequence[agents.AgentSpec], track: Track, seeds: Sequence[int | None],
                options: Sequence[dict | None] | None = None, episode_ids: Sequence[int] | None = None) -> list[Run]:
    """Roll every agent out on the same seeds (and the same reset options, e.g. demo starts)."""
    runs = []
    env = make_env(track)
    try:
        total = len(specs) * len(seeds)
        with tqdm(total=total, desc="rollout", unit="ep", leave=False, dynamic_ncols=True) as bar:
            for spec in specs:
                spec.check_env(env)
                agent = spec.make(track)
                traces = []
                for tr in rollout(env, agent, seeds, label=spec.label, options=options, episode_ids=episode_ids,
                                  meta={"agent": spec.text}):
                    traces.append(tr)
                    bar.update()
                runs.append(Run(spec.label, spec.text, traces, _env_extra(env, seeds)))
    finally:
        env.close()
    return runs


def unique_labels(runs: Sequence[Run]) -> None:
    """Comparison panels need distinct labels: add the source to repeated ones (two BC runs, say)."""
    for run in runs:
        if sum(r.label == run.label for r in runs) > 1:
            run.label = f"{run.label} [{agents.short_source(run.source)}]"
            for tr in run.traces:
                tr.label = run.label


# --- clips --------------------------------------------------------------------------------------------------------
def single_clips(renderer: TraceRenderer, run: Run) -> list[Clip]:
    return [Clip(f"{run.label} episode {tr.episode}", renderer.frame_count(tr),
                 lambda f, tr=tr: renderer.frame(tr, f)) for tr in run.traces]


def grid_clips(renderer: TraceRenderer, runs: Sequence[Run]) -> tuple[Grid, list[Clip]]:
    """One clip per episode index: all runs' episode i side by side, each held on its banner until the longest
    ends."""
    grid = Grid([r.label for r in runs], renderer.size)
    clips = []
    for i in range(len(runs[0].traces)):
        traces = [r.traces[i] for r in runs]
        n = max(renderer.frame_count(tr) for tr in traces)
        clips.append(Clip(f"episode {i}", n, lambda f, traces=traces: grid.compose(
            [renderer.frame(tr, min(f, renderer.frame_count(tr) - 1)) for tr in traces])))
    return grid, clips
