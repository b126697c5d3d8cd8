"""trajectories.png: every episode's path on the track map, coloured by outcome, start and goal marked.
One panel per run (a comparison gets one panel per agent, side by side, in one image)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Circle, Polygon  # noqa: E402

from racecar_env.files import atomic_path  # noqa: E402
from racecar_env.tracks import Track  # noqa: E402

from .trace import Trace  # noqa: E402

OUTCOME_COLORS = {"goal": "#2ca02c", "crash": "#d62728", "timeout": "#ff9f1a", "aborted": "#8c8c8c"}


def _draw_track(ax, track: Track) -> None:
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
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")


def _draw_run(ax, track: Track, traces: Sequence[Trace], title: str) -> None:
    _draw_track(ax, track)
    goals = {tuple(map(float, tr.goals[0])) for tr in traces} or {(track.goal.x, track.goal.y)}
    for gx, gy in goals:
        ax.add_patch(Circle((gx, gy), track.goal.radius, fc="#2ca02c33", ec="#2ca02c", lw=1.2, zorder=2))
        ax.plot(gx, gy, marker="*", ms=12, color="#2ca02c", zorder=5)
    for tr in traces:
        xy = tr.xy()
        c = OUTCOME_COLORS[tr.outcome]
        ax.plot(xy[:, 0], xy[:, 1], color=c, lw=1.4, alpha=0.85, zorder=3)
        ax.plot(xy[0, 0], xy[0, 1], marker="o", ms=4, color="#1f3b73", zorder=4)
        if tr.outcome == "crash":
            ax.plot(xy[-1, 0], xy[-1, 1], marker="x", ms=8, mew=2, color=c, zorder=4)
    counts = {k: sum(t.outcome == k for t in traces) for k in OUTCOME_COLORS}
    handles = [plt.Line2D([], [], color=c, lw=2, label=f"{k} ({counts[k]})") for k, c in OUTCOME_COLORS.items()
               if counts[k] or k != "aborted"]
    handles += [plt.Line2D([], [], color="#1f3b73", marker="o", ls="", label="start"),
                plt.Line2D([], [], color="#2ca02c", marker="*", ms=10, ls="", label="goal")]
    # below the map, never over a path (tracks differ in where their empty corners are)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=len(handles), fontsize=8,
              frameon=False, handlelength=1.5, columnspacing=1.2)
    ax.set_title(f"{title}: {counts['goal']}/{len(traces)} reached the goal", fontsize=10)


def plot_trajectories(path: Path, track: Track, runs: Sequence[tuple[str, Sequence[Trace]]]) -> Path:
    """runs: (title, traces) per panel. Written atomically."""
    n = len(runs)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    xmin, ymin, xmax, ymax = track.bounds
    w = 7.0
    h = w * (ymax - ymin + 0.6) / (xmax - xmin + 0.6) + 1.3  # + title, axis labels and legend
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False)
    for ax, (title, traces) in zip(axes.flat, runs):
        _draw_run(ax, track, traces, title)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(f"track {track.name}", fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)
