"""Pictures and videos: H.264 MP4 (yuv420p, plays everywhere) and PNG, each written atomically (a killed render
never leaves a truncated file that looks finished)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from . import spec
from .files import atomic_path
from .progress import track

FPS = int(round(1.0 / spec.CONTROL_DT))   # one frame per control step: videos play in real time


def write_mp4(path: "str | Path", frames: Iterable[np.ndarray], *, fps: int = FPS, total: int | None = None,
              desc: str = "render", quiet: bool = False) -> Path:
    """Frames must have even width and height (TopDown's do). Progress shows as a nested bar on a terminal."""
    import imageio.v2 as imageio
    with atomic_path(path) as tmp:
        # macro_block_size=2: frames are already even-sized; the default 16 would rescale them.
        # veryfast preset: ~3x cheaper encode than the default for a few % more bytes (render speed is a quality bar).
        with imageio.get_writer(tmp, fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=2,
                                ffmpeg_log_level="error", ffmpeg_params=["-preset", "veryfast", "-crf", "23"]) as w:
            for frame in track(frames, total=total, desc=desc, unit="frame", nested=True, quiet=quiet):
                w.append_data(frame)
    return Path(path)


def write_png(path: "str | Path", image: np.ndarray) -> Path:
    from PIL import Image
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp)
    return Path(path)
