"""Looking at datasets without writing code: `python -m teleop info NAME` and `python -m teleop list`.

Summaries come from the episodes' stored metadata (outcome, steps, return, driver, skill, track), so they need no
array decoding; health comes from `RaceCarDataset.check()` (every episode's checksums and track).
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

from racecar_env.storage import DatasetError, RaceCarDataset, load_dataset

TRACKS_LISTED = 6   # `info` lists episodes per track when the dataset holds at most this many tracks


def _stats(values: list[float]) -> dict:
    if not values:
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()), "max": float(a.max())}


def summarize(name: "str | RaceCarDataset") -> dict:
    """episodes, steps, success/crash/timeout/aborted counts, return & length stats, drivers/skills and tracks
    present, and health (the problems of `check()`; the other numbers cover the readable episodes)."""
    ds = name if isinstance(name, RaceCarDataset) else load_dataset(name)
    problems, damaged = ds.health()
    metas = []
    for i in range(len(ds)):
        if i in damaged:
            continue   # listed in problems; its metadata may read, but its data does not
        try:
            metas.append(ds.episode_metadata(i))
        except DatasetError:
            pass  # listed in problems
    outcomes = Counter(str(m.get("outcome", "?")) for m in metas)
    per_track = Counter(str(m["track_id"]) for m in metas)
    names = {str(m["track_id"]): str(m.get("track_name", "?")) for m in metas}
    n = len(metas)
    return {
        "id": ds.id,
        "path": str(ds.path),
        "layout_id": ds.layout_id,
        "episodes": len(ds),
        "readable": n,
        "steps": sum(int(m["total_steps"]) for m in metas),
        "successes": outcomes.get("success", 0),
        "crashes": outcomes.get("crash", 0),
        "timeouts": outcomes.get("timeout", 0),
        "aborted": outcomes.get("aborted", 0),
        "success_rate": outcomes.get("success", 0) / n if n else 0.0,
        "return": _stats([float(m["return"]) for m in metas if "return" in m]),
        "length": _stats([float(m["total_steps"]) for m in metas]),
        "drivers": dict(Counter(str(m.get("driver", "?")) for m in metas)),
        "skills": dict(Counter(str(m.get("skill", "?")) for m in metas)),
        "tracks": {tid: {"name": names[tid], "episodes": k} for tid, k in sorted(per_track.items())},
        "problems": problems,
    }


def format_summary(s: dict) -> str:
    """The summary as the text `python -m teleop info` prints."""
    def st(d, fmt):
        return " ".join(f"{k} {format(v, fmt)}" for k, v in d.items())
    counts = lambda d: ", ".join(f"{k} x{v}" for k, v in sorted(d.items())) or "-"  # noqa: E731
    tracks = s["tracks"]
    lines = [
        f"dataset   {s['id']}",
        f"path      {s['path']}",
        "health    " + ("ok (every episode's checksums verified)" if not s["problems"] else
                         f"DAMAGED: {len(s['problems'])} problem(s); the numbers below cover the "
                         f"{s['readable']} readable episodes"),
        *[f"  ! {p}" for p in s["problems"][:20]],
        *([f"  ! ... and {len(s['problems']) - 20} more"] if len(s["problems"]) > 20 else []),
        f"episodes  {s['episodes']}" + (f" ({s['readable']} readable)" if s["readable"] != s["episodes"] else "") +
        f"   steps {s['steps']}   (observation layout {s['layout_id']})",
        f"tracks    {len(tracks)}" + ("" if len(tracks) > TRACKS_LISTED else "".join(
            f"\n  {t['name']:<14} {tid}  {t['episodes']} episodes" for tid, t in tracks.items())),
        f"outcomes  success {s['successes']}  crash {s['crashes']}  timeout {s['timeouts']}  "
        f"aborted {s['aborted']}   (success rate {s['success_rate']:.0%})",
        f"return    {st(s['return'], '.2f')}",
        f"length    {st(s['length'], '.1f')}  (steps)",
        f"drivers   {counts(s['drivers'])}",
        f"skills    {counts(s['skills'])}",
    ]
    return "\n".join(lines)


def format_list(rows: list[dict]) -> str:
    """The `python -m teleop list` table: id, episodes, steps, tracks, health (and the first problem)."""
    if not rows:
        return ""
    width = max(len(r["id"]) for r in rows)
    num = lambda v: "-" if v is None else str(v)  # noqa: E731
    out = [f"{'dataset':<{width}}  {'episodes':>8}  {'steps':>8}  {'tracks':>6}  health"]
    for r in rows:
        health = r["health"]
        if r.get("problem"):
            extra = f" (+{len(r['problems']) - 1} more)" if len(r.get("problems", [])) > 1 else ""
            health += f": {r['problem']}{extra}"
        out.append(f"{r['id']:<{width}}  {num(r['episodes']):>8}  {num(r['steps']):>8}  {num(r['tracks']):>6}  "
                   f"{health}")
    return "\n".join(out)
