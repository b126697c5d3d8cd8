"""Writing results: H.264 MP4 (yuv420p, real-time fps) and eval_info.json, each atomically (a partial file is
renamed into place only when complete, so a killed run never leaves a truncated video that looks finished)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from racecar_env import files

from .frames import FPS
from .trace import Trace


def write_mp4(path: Path, frames: Iterable[np.ndarray], *, total: int | None = None, desc: str = "render",
              fps: int = FPS) -> Path:
    from racecar_env.media import write_mp4 as _write
    return _write(path, frames, fps=fps, total=total, desc=desc)


def write_json(path: Path, data: dict) -> Path:
    return files.write_json(path, data)


def write_png(path: Path, frame: np.ndarray) -> Path:
    with files.atomic_path(path) as tmp:
        Image.fromarray(frame).save(tmp)
    return Path(path)


def totals(traces: Sequence[Trace]) -> dict:
    n = len(traces)
    ttg = [t.time_to_goal for t in traces if t.success]
    rets = [t.episode_return for t in traces]
    prog = [t.progress for t in traces if t.progress is not None]
    return {"episodes": n,
            "success_rate": round(100.0 * sum(t.success for t in traces) / n, 4) if n else None,
            "crash_rate": round(100.0 * sum(t.crash for t in traces) / n, 4) if n else None,
            "timeout_rate": round(100.0 * sum(t.outcome == "timeout" for t in traces) / n, 4) if n else None,
            **({"aborted_rate": round(100.0 * sum(t.outcome == "aborted" for t in traces) / n, 4)}
               if any(t.aborted for t in traces) else {}),
            "mean_return": round(float(np.mean(rets)), 6) if n else None,
            "mean_steps": round(float(np.mean([t.steps for t in traces])), 4) if n else None,
            "mean_time_to_goal": round(float(np.mean(ttg)), 4) if ttg else None,
            "mean_progress": round(float(np.mean(prog)), 6) if prog else None}


def run_info(label: str, source: str, traces: Sequence[Trace], **extra) -> dict:
    """One run's block of eval_info.json: per-episode records and totals (rates in %)."""
    return {"label": label, "source": source, **extra, "episodes": [t.summary() for t in traces],
            "totals": totals(traces)}
