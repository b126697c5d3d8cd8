"""A track is data: walls, start pose, goal and a centre-line (the JSON format in the README).

`load_track("s_curve")` reads a shipped track from `assets/tracks/`; a path reads a JSON file; a dict is parsed as
the JSON content itself. Malformed input raises `TrackError` naming the source and the field.

A track's identity is its content: `Track.track_id` is a hash of the canonical JSON (`Track.to_dict()`), so datasets
and checkpoints that store the track itself can refer to it by that id, whatever file it once came from.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TRACKS_DIR = Path(__file__).resolve().parent.parent.parent / "assets" / "tracks"


class TrackError(ValueError):
    """A track name or file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Pose:
    x: float
    y: float
    yaw: float


@dataclass(frozen=True)
class Goal:
    x: float
    y: float
    radius: float


@dataclass(frozen=True)
class Track:
    name: str
    walls: np.ndarray          # (W, 4) x1, y1, x2, y2 in metres
    wall_thickness: float
    wall_height: float
    start: Pose
    goal: Goal
    centerline: np.ndarray     # (K, 2) polyline from start to goal
    source: str                # where it was read from ("<dict>", a path, "generated"): for messages only
    extra: dict = field(default_factory=dict, compare=False)   # other JSON keys (description, generator, ...)

    def to_dict(self) -> dict:
        """The track as its JSON content (what a track file holds); `parse_track(t.to_dict())` gives it back."""
        return {"name": self.name, **self.extra,
                "walls": self.walls.tolist(), "wall_thickness": self.wall_thickness,
                "wall_height": self.wall_height,
                "start": {"x": self.start.x, "y": self.start.y, "yaw": self.start.yaw},
                "goal": {"x": self.goal.x, "y": self.goal.y, "radius": self.goal.radius},
                "centerline": self.centerline.tolist()}

    @property
    def track_id(self) -> str:
        """Content hash: equal for equal content, whatever the file name or location."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return "trk-" + hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the walls including their thickness."""
        pts = self.walls.reshape(-1, 2)
        h = self.wall_thickness / 2
        return (pts[:, 0].min() - h, pts[:, 1].min() - h, pts[:, 0].max() + h, pts[:, 1].max() + h)


class Centerline:
    """Projection of points onto the centre-line polyline: arc length s and the point/tangent there."""

    def __init__(self, points: np.ndarray):
        self.points = np.asarray(points, dtype=np.float64)
        self.a = self.points[:-1]
        self.d = np.diff(self.points, axis=0)
        self.seg_len = np.hypot(self.d[:, 0], self.d[:, 1])
        self.cum = np.concatenate([[0.0], np.cumsum(self.seg_len)])
        self.length = float(self.cum[-1])
        self._len2 = self.seg_len ** 2

    def project(self, x: float, y: float) -> float:
        """Arc length (m) of the closest centre-line point to (x, y)."""
        px = x - self.a[:, 0]
        py = y - self.a[:, 1]
        t = np.clip((px * self.d[:, 0] + py * self.d[:, 1]) / self._len2, 0.0, 1.0)
        ex = px - t * self.d[:, 0]
        ey = py - t * self.d[:, 1]
        i = int(np.argmin(ex * ex + ey * ey))
        return float(self.cum[i] + t[i] * self.seg_len[i])

    def points_at(self, s: np.ndarray) -> np.ndarray:
        """(len(s), 2) points at arc lengths `s` (each clipped to the line): the route ahead for many s at once."""
        s = np.clip(np.asarray(s, dtype=np.float64), 0.0, self.length)
        i = np.clip(np.searchsorted(self.cum, s, side="right") - 1, 0, len(self.seg_len) - 1)
        t = (s - self.cum[i]) / self.seg_len[i]
        return self.a[i] + t[:, None] * self.d[i]

    def point_at(self, s: float) -> tuple[float, float, float]:
        """(x, y, tangent heading) at arc length s (clipped to the line)."""
        s = min(max(s, 0.0), self.length)
        i = int(np.clip(np.searchsorted(self.cum, s, side="right") - 1, 0, len(self.seg_len) - 1))
        t = (s - self.cum[i]) / self.seg_len[i]
        x, y = self.a[i] + t * self.d[i]
        return float(x), float(y), math.atan2(self.d[i, 1], self.d[i, 0])


def shipped_tracks() -> list[str]:
    return sorted(p.stem for p in TRACKS_DIR.glob("*.json"))


def _number(src: str, data: dict, key: str, path: str, positive: bool = False) -> float:
    if key not in data:
        raise TrackError(f"track {src}: missing field '{path}{key}'")
    v = data[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise TrackError(f"track {src}: field '{path}{key}' must be a finite number, got {v!r}")
    if positive and v <= 0:
        raise TrackError(f"track {src}: field '{path}{key}' must be > 0, got {v!r}")
    return float(v)


def _points(src: str, data: dict, key: str, width: int, min_rows: int) -> np.ndarray:
    if key not in data:
        raise TrackError(f"track {src}: missing field '{key}'")
    try:
        arr = np.asarray(data[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise TrackError(f"track {src}: field '{key}' must be a list of [{width} numbers] rows") from None
    if arr.ndim != 2 or arr.shape[1] != width or len(arr) < min_rows or not np.isfinite(arr).all():
        raise TrackError(f"track {src}: field '{key}' must be a list of at least {min_rows} rows of "
                         f"{width} finite numbers, got shape {arr.shape}")
    return arr


_CORE_KEYS = ("name", "walls", "wall_thickness", "wall_height", "start", "goal", "centerline")


def parse_track(data: dict, source: str = "<dict>") -> Track:
    """Validate a decoded track JSON object and build a `Track`."""
    src = source
    if not isinstance(data, dict):
        raise TrackError(f"track {src}: top level must be a JSON object")
    walls = _points(src, data, "walls", 4, 1)
    centerline = _points(src, data, "centerline", 2, 2)
    if np.any(np.hypot(*np.diff(centerline, axis=0).T) == 0):
        raise TrackError(f"track {src}: field 'centerline' has repeated consecutive points")
    for key in ("start", "goal"):
        if not isinstance(data.get(key), dict):
            raise TrackError(f"track {src}: missing field '{key}' (an object)")
    start = Pose(_number(src, data["start"], "x", "start."), _number(src, data["start"], "y", "start."),
                 _number(src, data["start"], "yaw", "start."))
    goal = Goal(_number(src, data["goal"], "x", "goal."), _number(src, data["goal"], "y", "goal."),
                _number(src, data["goal"], "radius", "goal.", positive=True))
    return Track(
        name=str(data.get("name", Path(source).stem)),
        walls=walls,
        wall_thickness=_number(src, data, "wall_thickness", "", positive=True) if "wall_thickness" in data else 0.3,
        wall_height=_number(src, data, "wall_height", "", positive=True) if "wall_height" in data else 0.5,
        start=start, goal=goal, centerline=centerline, source=source,
        extra={k: v for k, v in data.items() if k not in _CORE_KEYS},
    )


def _generated(text: str) -> Track:
    from .generate import generate  # lazy: generate imports this module
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[1].isdigit():
        raise TrackError(f"generated track '{text}': expected gen:SEED or gen:SEED:DIFFICULTY with SEED an "
                         f"integer >= 0")
    return generate(int(parts[1]), difficulty=parts[2] if len(parts) == 3 else None)


def load_track(track: "str | Path | dict | Track" = "s_curve") -> Track:
    """A shipped track by name (see `shipped_tracks()`), a path to a track JSON file, the JSON content (dict), or
    a generated track: "gen:SEED" or "gen:SEED:DIFFICULTY" is `generate(SEED[, difficulty=DIFFICULTY])`."""
    if isinstance(track, Track):
        return track
    if isinstance(track, dict):
        return parse_track(track, "<dict>")
    text = str(track)
    if isinstance(track, str) and text.startswith("gen:"):
        return _generated(text)
    path = Path(text)
    if not (path.suffix == ".json" or path.is_file()):
        path = TRACKS_DIR / f"{text}.json"
        if not path.exists():
            raise TrackError(f"unknown track '{text}': shipped tracks are {', '.join(shipped_tracks())}, "
                             f"or pass a path to a track .json file, or gen:SEED for a generated track")
    if not path.is_file():
        raise TrackError(f"track file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise TrackError(f"track {path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    return parse_track(data, str(path))
