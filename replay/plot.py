"""trajectories.png: every episode's path on its track, coloured by outcome, start and goal marked.

One track: one map per run (a comparison gets one panel per agent). Several tracks (random tracks, a multi-track
dataset): one small map per track (per run and track for a comparison), each titled with the track's name."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Circle, Polygon  # noqa: E402

from racecar_env import spec  # noqa: E402
from racecar_env.episode import OUTCOMES, Episode  # noqa: E402
from racecar_env.files import atomic_path  # noqa: E402
from racecar_env.render import MAX_ASPECT  # noqa: E402  (the videos' cap: a long narrow track still gives a sane map)
from racecar_env.tracks import Track  # noqa: E402

OUTCOME_COLORS = dict(zip(OUTCOMES, ("#2ca02c", "#d62728", "#ff9f1a", "#8c8c8c")))
START, GOAL = "#1f3b73", "#2ca02c"
MAX_COLS = 6


def _draw_track(ax, track: Track, labels: bool) -> None:
    t = track.wall_thickness
    for x1, y1, x2, y2 in track.walls:
        ang = math.atan2(y2 - y1, x2 - x1)
        ux, uy = math.cos(ang) * t / 2, math.sin(ang) * t / 2
        ax.add_patch(Polygon([(x1 - ux - uy, y1 - uy + ux), (x2 + ux - uy, y2 + uy + ux),
                              (x2 + ux + uy, y2 + uy - ux), (x1 - ux + uy, y1 - uy - ux)],
                             closed=True, color="#555a63", lw=0))
    cl = track.centerline
    ax.plot(cl[:, 0], cl[:, 1], ls="--", lw=0.8, color="#aab0ba", zorder=1)
    xmin, ymin, xmax, ymax = track.bounds
    ax.set_xlim(xmin - 0.3, xmax + 0.3)
    ax.set_ylim(ymin - 0.3, ymax + 0.3)
    ax.set_aspect("equal")
    if labels:
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
    else:
        ax.set_xticks([])
        ax.set_yticks([])


def _draw_paths(ax, track: Track, episodes: Sequence[Episode], small: bool) -> None:
    goals = {tuple(map(float, e.observations["desired_goal"][0])) for e in episodes} or {(track.goal.x, track.goal.y)}
    for gx, gy in goals:
        ax.add_patch(Circle((gx, gy), track.goal.radius, fc="#2ca02c33", ec=GOAL, lw=1.2, zorder=2))
        ax.plot(gx, gy, marker="*", ms=8 if small else 12, color=GOAL, zorder=5)
    for e in episodes:
        o = e.observations["observation"]
        x, y = spec.field(o, "x"), spec.field(o, "y")
        c = OUTCOME_COLORS[e.outcome]
        ax.plot(x, y, color=c, lw=1.4, alpha=0.85, zorder=3)
        ax.plot(x[0], y[0], marker="o", ms=3 if small else 4, color=START, zorder=4)
        if e.outcome == "crash":
            ax.plot(x[-1], y[-1], marker="x", ms=6 if small else 8, mew=2, color=c, zorder=4)


def _counts(episodes: Sequence[Episode]) -> dict[str, int]:
    return {k: sum(e.outcome == k for e in episodes) for k in OUTCOMES}


def _legend_handles(counts: dict[str, int] | None) -> list:
    handles = [plt.Line2D([], [], color=c, lw=2, label=k if counts is None else f"{k} ({counts[k]})")
               for k, c in OUTCOME_COLORS.items() if k != "aborted" or (counts and counts[k])]
    return handles + [plt.Line2D([], [], color=START, marker="o", ls="", label="start"),
                      plt.Line2D([], [], color=GOAL, marker="*", ms=10, ls="", label="goal")]


def plot_trajectories(path: Path, runs: Sequence[tuple[str, Sequence[Episode]]]) -> Path:
    """runs: (title, episodes). Written atomically."""
    tracks: dict[str, Track] = {}
    for _, eps in runs:
        for e in eps:
            tracks.setdefault(e.track.track_id, e.track)
    if len(tracks) == 1:
        fig = _one_track(next(iter(tracks.values())), runs)
    else:
        fig = _many_tracks(tracks, runs)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)


def _one_track(track: Track, runs) -> plt.Figure:
    n = len(runs)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    xmin, ymin, xmax, ymax = track.bounds
    w = 7.0
    aspect = min(max((ymax - ymin + 0.6) / (xmax - xmin + 0.6), 1 / MAX_ASPECT), MAX_ASPECT)
    h = w * aspect + 1.3  # + title, axis labels and legend
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False)
    for ax, (title, eps) in zip(axes.flat, runs):
        _draw_track(ax, track, labels=True)
        _draw_paths(ax, track, eps, small=False)
        handles = _legend_handles(_counts(eps))
        # below the map, never over a path (tracks differ in where their empty corners are)
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=len(handles), fontsize=8,
                  frameon=False, handlelength=1.5, columnspacing=1.2)
        ax.set_title(f"{title}: {_counts(eps)['success']}/{len(eps)} reached the goal", fontsize=10)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(f"track {track.name}", fontsize=11)
    fig.tight_layout()
    return fig


def _many_tracks(tracks: dict[str, Track], runs) -> plt.Figure:
    panels = []   # (title, track, episodes)
    for title, eps in runs:
        for tid, track in tracks.items():
            mine = [e for e in eps if e.track.track_id == tid]
            if mine:
                c = _counts(mine)
                what = ", ".join(f"{c[k]} {k}" for k in OUTCOMES if c[k]) if len(mine) > 1 else mine[0].outcome
                head = f"{title}\n" if len(runs) > 1 else ""
                panels.append((f"{head}{track.name}: {what}", track, mine))
    n = len(panels)
    cols = len(tracks) if len(runs) > 1 and len(tracks) <= MAX_COLS else min(math.ceil(math.sqrt(n)), MAX_COLS)
    rows = math.ceil(n / cols)
    cell = 3.2
    spans = [((b[3] - b[1]) / (b[2] - b[0])) for b in (t.bounds for t in tracks.values())]
    aspect = min(max(max(spans), 0.45), 1.4)   # map height / width: cells as tall as the tallest map needs
    title_h = 0.3 * (1 + (len(runs) > 1))
    fig, axes = plt.subplots(rows, cols, figsize=(cell * cols, (cell * aspect + title_h) * rows + 0.8),
                             squeeze=False)
    for ax, (title, track, eps) in zip(axes.flat, panels):
        _draw_track(ax, track, labels=False)
        _draw_paths(ax, track, eps, small=True)
        ax.set_title(title, fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    every = [e for _, eps in runs for e in eps]
    handles = _legend_handles(_counts(every) if len(runs) == 1 else None)
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    total = _counts(every)["success"]
    what = runs[0][0] if len(runs) == 1 else f"{len(runs)} runs"
    fig.suptitle(f"{what}: {total}/{len(every)} reached the goal on {len(tracks)} tracks", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig
