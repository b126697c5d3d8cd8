"""A track is data: walls, start pose, goal and a centre-line (the JSON format in the README).

`load_track("s_curve")` reads a shipped track from `assets/tracks/`; a path reads a JSON file; a dict is parsed as
the JSON content itself. Malformed input raises `TrackError` naming the source and the field, in one line.

Every track is also checked as geometry when it is parsed (`check_geometry`), shipped, user-made or generated alike,
so a track the env cannot run never gets as far as a dataset: the car's footprint at the start pose (with the env's
start jitter) clears the wall boxes, the centre-line runs from the start to inside the goal without crossing a wall,
and start and goal lie within the walls.

A track's identity is its content: `Track.track_id` is a hash of the canonical JSON (`Track.to_dict()`), so datasets
and checkpoints that store the track itself can refer to it by that id, whatever file it once came from.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import spec

TRACKS_DIR = Path(__file__).resolve().parent.parent.parent / "assets" / "tracks"
MAX_FILE_BYTES = 50_000_000  # a track file larger than this is not a track
MAX_COORD = 10_000.0       # m: every coordinate and length of a track lies within +-this
MAX_WALLS = 2_000          # wall rows a track may have
MAX_CENTERLINE = 10_000    # centre-line points a track may have
MAX_WALL_SIZE = 10.0       # m: wall_thickness and wall_height at most this
#: m: the walls must lie within +-this in x and y. The ground (pybullet's plane.urdf, which the recorded dynamics
#: were measured on) is a 200 x 200 m slab centred on the origin: a car driven past its edge falls off, which the env
#: would report as a crash. The margin keeps the whole car on the slab.
GROUND_HALF_EXTENT = 98.0
START_ON_LINE = 0.5        # m: the centre-line's first point lies within this of the start
START_MARGIN = 0.05        # m the car keeps from every wall at a start pose (the env's own check uses the same)
START_CLEAR_SHARE = 0.15   # of the jittered start poses must clear the walls (the env draws up to 100: 0.85^100 ~ 1e-7)
#: m: walls at least this high. The lidar's rays run level at spec.LIDAR_HEIGHT: a lower wall still stops the car but
#: is invisible to it (every ray reads its full range). The margin covers the car's pitch and bounce.
MIN_WALL_HEIGHT = spec.LIDAR_HEIGHT + 0.05
ROUTE_AHEAD = 1.0          # m along the centre-line: the start yaw must face (within 90 deg) the point this far ahead


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


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _finite(v) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer too large for a float
        return False


def _number(src: str, data: dict, key: str, path: str, positive: bool = False, limit: float = MAX_COORD) -> float:
    if key not in data:
        raise TrackError(f"track {src}: missing field '{path}{key}'")
    v = data[key]
    if not _is_number(v) or not _finite(v):
        raise TrackError(f"track {src}: field '{path}{key}' must be a finite number, got {_short(v)}")
    if positive and v <= 0:
        raise TrackError(f"track {src}: field '{path}{key}' must be > 0, got {_short(v)}")
    if abs(v) > limit:
        raise TrackError(f"track {src}: field '{path}{key}' must be within +-{limit:g}, got {_short(v)}")
    return float(v)


def _points(src: str, data: dict, key: str, width: int, min_rows: int, max_rows: int) -> np.ndarray:
    """A list of rows of `width` finite numbers; a bad row is named by its index."""
    if key not in data:
        raise TrackError(f"track {src}: missing field '{key}'")
    rows = data[key]
    what = f"a list of rows of {width} numbers"
    if isinstance(rows, np.ndarray):
        rows = rows.tolist()
    if not isinstance(rows, (list, tuple)):
        raise TrackError(f"track {src}: field '{key}' must be {what}, got {_short(rows)}")
    if not min_rows <= len(rows) <= max_rows:
        raise TrackError(f"track {src}: field '{key}' must have {min_rows} to {max_rows} rows, got {len(rows)}")
    for i, row in enumerate(rows):
        if isinstance(row, np.ndarray):
            row = row.tolist()
        if not (isinstance(row, (list, tuple)) and len(row) == width and all(map(_is_number, row))):
            raise TrackError(f"track {src}: field '{key}' row {i} must be {width} numbers, got {_short(row)}")
        if not all(map(_finite, row)):
            raise TrackError(f"track {src}: field '{key}' row {i} must be {width} finite numbers, got {_short(row)}")
        if any(abs(v) > MAX_COORD for v in row):
            raise TrackError(f"track {src}: field '{key}' row {i} has a coordinate beyond +-{MAX_COORD:g} m, "
                             f"got {_short(row)}")
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), width)


_CORE_KEYS = ("name", "walls", "wall_thickness", "wall_height", "start", "goal", "centerline")


def parse_track(data: dict, source: str = "<dict>") -> Track:
    """Validate a decoded track JSON object (fields, then geometry: `check_geometry`) and build a `Track`."""
    src = source
    if not isinstance(data, dict):
        raise TrackError(f"track {src}: top level must be a JSON object, got {type(data).__name__}")
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not name.strip() or len(name) > 200 or not name.isprintable():
        raise TrackError(f"track {src}: field 'name' must be a printable text of 1 to 200 characters, got "
                         f"{_short(name)}")
    # other keys are kept (description, generator, ...), but a near-miss of a field is a misspelling, not one of them
    for key in [k for k in data if k not in _CORE_KEYS]:
        near = difflib.get_close_matches(str(key), _CORE_KEYS, n=1, cutoff=0.8)
        if near:
            raise TrackError(f"track {src}: unknown field '{str(key)[:60]}' (did you mean '{near[0]}'?)")
    walls = _points(src, data, "walls", 4, 1, MAX_WALLS)
    centerline = _points(src, data, "centerline", 2, 2, MAX_CENTERLINE)
    repeated = np.flatnonzero(np.hypot(*np.diff(centerline, axis=0).T) == 0)
    if len(repeated):
        raise TrackError(f"track {src}: field 'centerline' rows {repeated[0]} and {repeated[0] + 1} are the same "
                         f"point (repeated consecutive points)")
    crossing = _self_crossing(centerline)
    if crossing is not None:
        i, j = crossing
        raise TrackError(f"track {src}: field 'centerline' crosses itself (rows {i}-{i + 1} and {j}-{j + 1}): "
                         f"progress is measured along it, so a car could cut across and skip the route between")
    zero = np.flatnonzero((walls[:, 0] == walls[:, 2]) & (walls[:, 1] == walls[:, 3]))
    if len(zero):
        raise TrackError(f"track {src}: field 'walls' row {zero[0]} has zero length (both ends at "
                         f"{_xy(*walls[zero[0], :2])})")
    for key, fields in (("start", ("x", "y", "yaw")), ("goal", ("x", "y", "radius"))):
        if not isinstance(data.get(key), dict):
            raise TrackError(f"track {src}: missing field '{key}' (an object)" if key not in data else
                             f"track {src}: field '{key}' must be an object, got {_short(data[key])}")
        unknown = [k for k in data[key] if k not in fields]
        if unknown:
            raise TrackError(f"track {src}: unknown field '{key}.{str(unknown[0])[:60]}' ({key} has "
                             f"{', '.join(fields)})")
    start = Pose(_number(src, data["start"], "x", "start."), _number(src, data["start"], "y", "start."),
                 _number(src, data["start"], "yaw", "start."))
    if abs(start.yaw) > math.tau + 1e-9:   # a heading in degrees (90, 180) is the usual mistake
        raise TrackError(f"track {src}: field 'start.yaw' must be within +-{math.tau:.4f}, got {start.yaw:g}: yaw is "
                         f"in radians, counter-clockwise from +x ({start.yaw:g} degrees would be "
                         f"{math.radians(start.yaw):.4f})")
    goal = Goal(_number(src, data["goal"], "x", "goal."), _number(src, data["goal"], "y", "goal."),
                _number(src, data["goal"], "radius", "goal.", positive=True))
    track = Track(
        name=name,
        walls=walls,
        wall_thickness=_number(src, data, "wall_thickness", "", positive=True, limit=MAX_WALL_SIZE)
        if "wall_thickness" in data else 0.3,
        wall_height=_number(src, data, "wall_height", "", positive=True, limit=MAX_WALL_SIZE)
        if "wall_height" in data else 0.5,
        start=start, goal=goal, centerline=centerline, source=source,
        extra={k: v for k, v in data.items() if k not in _CORE_KEYS},
    )
    if track.wall_height < MIN_WALL_HEIGHT:
        raise TrackError(f"track {src}: field 'wall_height' must be at least {MIN_WALL_HEIGHT:g} m, got "
                         f"{track.wall_height:g}: the lidar scans at {spec.LIDAR_HEIGHT:g} m and would not see a "
                         f"lower wall")
    check_geometry(track)
    return track


# --- geometry ---------------------------------------------------------------------------------------------------
def _self_crossing(line: np.ndarray, block: int = 1 << 20) -> "tuple[int, int] | None":
    """The first pair (i, j), j >= i + 2, of centre-line segments i..i+1 and j..j+1 that meet, or None. A sweep
    along x: segments sorted by their left end, each compared only with those that start before it ends and
    overlap it in y (10k points in well under a second)."""
    segs = np.concatenate([line[:-1], line[1:]], axis=1)
    lo, hi = np.minimum(segs[:, :2], segs[:, 2:]), np.maximum(segs[:, :2], segs[:, 2:])
    order = np.argsort(lo[:, 0], kind="stable")
    lo, hi = lo[order], hi[order]
    n = len(segs)
    ends = np.searchsorted(lo[:, 0], hi[:, 0], side="right")   # sorted k overlaps k+1 .. ends[k]-1 in x
    counts = np.maximum(ends - np.arange(n) - 1, 0)
    found = []
    k0 = 0
    while k0 < n:   # blocks of sorted segments with at most ~`block` candidate pairs
        k1 = max(k0 + 1, int(np.searchsorted(np.cumsum(counts[k0:]), block, side="right")) + k0)
        c = counts[k0:k1]
        k = np.repeat(np.arange(k0, k1), c)
        m = k + 1 + (np.arange(c.sum()) - np.repeat(np.cumsum(c) - c, c))
        keep = (lo[m, 1] <= hi[k, 1]) & (hi[m, 1] >= lo[k, 1])
        i, j = order[k[keep]], order[m[keep]]
        i, j = np.minimum(i, j), np.maximum(i, j)
        far = j >= i + 2
        i, j = i[far], j[far]
        meet = seg_dist(segs[i], segs[j]) == 0
        found += list(zip(i[meet].tolist(), j[meet].tolist()))
        k0 = k1
    return min(found) if found else None


def seg_dist(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Minimum distance between segments [x1, y1, x2, y2]: p (..., 4) against q (..., 4), broadcast
    (e.g. p[:, None] against q[None] for every pair)."""
    a1, a2, b1, b2 = p[..., :2], p[..., 2:], q[..., :2], q[..., 2:]

    def pt_seg(x, s1, s2):
        v = s2 - s1
        ll = np.maximum((v * v).sum(-1), 1e-18)
        tt = np.clip(((x - s1) * v).sum(-1) / ll, 0.0, 1.0)
        e = x - (s1 + tt[..., None] * v)
        return np.hypot(e[..., 0], e[..., 1])

    def orient(a, b, c):
        return (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])

    d = np.minimum.reduce([pt_seg(a1, b1, b2), pt_seg(a2, b1, b2), pt_seg(b1, a1, a2), pt_seg(b2, a1, a2)])
    crossing = (orient(a1, a2, b1) * orient(a1, a2, b2) < 0) & (orient(b1, b2, a1) * orient(b1, b2, a2) < 0)
    return np.where(crossing, 0.0, d)


def _frames(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit direction and left normal of segments a -> b (a zero-length segment points along +x, as the physics
    builds its box)."""
    d = b - a
    length = np.hypot(d[..., 0], d[..., 1])
    u = np.where(length[..., None] > 0, d / np.where(length > 0, length, 1.0)[..., None], [1.0, 0.0])
    return u, np.stack([-u[..., 1], u[..., 0]], axis=-1)


def wall_boxes(track: Track) -> np.ndarray:
    """(W, 4, 2) corners of the wall boxes the physics builds: each wall segment extended by half the thickness at
    both ends, `wall_thickness` wide."""
    a, b = track.walls[:, :2], track.walls[:, 2:]
    u, n = _frames(a, b)
    h = track.wall_thickness / 2
    p1, p2 = a - h * u, b + h * u
    return np.stack([p1 + h * n, p2 + h * n, p2 - h * n, p1 - h * n], axis=1)


def _edges(corners: np.ndarray) -> np.ndarray:
    """(..., 4, 4) edges [x1, y1, x2, y2] of (..., 4, 2) convex quadrilaterals."""
    return np.concatenate([corners, np.roll(corners, -1, axis=-2)], axis=-1)


def _inside(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Whether points (..., 2) lie inside (or on) convex quadrilaterals (..., 4, 2) with corners in either order."""
    e = corners[..., [1, 2, 3, 0], :] - corners
    r = points[..., None, :] - corners
    cross = e[..., 0] * r[..., 1] - e[..., 1] * r[..., 0]
    return np.all(cross >= -1e-12, axis=-1) | np.all(cross <= 1e-12, axis=-1)


def _segment_box_dist(segs: np.ndarray, boxes: np.ndarray, paired: bool = False) -> np.ndarray:
    """(N, W) distance from each segment (N, 4) to each box (W, 4, 2); 0 where it touches or enters it. With
    `paired`, segment k against box k only: (N,)."""
    if not paired:
        segs, boxes = segs[:, None], boxes[None]
    d = seg_dist(segs[..., None, :], _edges(boxes)).min(axis=-1)
    inside = _inside(segs[..., :2], boxes) | _inside(segs[..., 2:], boxes)
    return np.where(inside, 0.0, d)


def _box_box_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(P, W) distance between quadrilaterals a (P, 4, 2) and b (W, 4, 2); 0 where they overlap."""
    d = seg_dist(_edges(a)[:, None, :, None, :], _edges(b)[None, :, None, :, :]).min(axis=(-1, -2))
    overlap = (_inside(a[:, None, :, :], b[None, :, None, :, :]).any(-1)
               | _inside(b[None, :, :, :], a[:, None, None, :, :]).any(-1))
    return np.where(overlap, 0.0, d)


def _near_pairs(segs: np.ndarray, boxes: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (segment, box) whose bounding boxes come within `cutoff`: every other pair is farther apart than
    that, so only these need the exact distance (a track of thousands of points and walls stays fast)."""
    slo = np.minimum(segs[:, :2], segs[:, 2:]) - cutoff
    shi = np.maximum(segs[:, :2], segs[:, 2:]) + cutoff
    blo, bhi = boxes.min(axis=1), boxes.max(axis=1)
    cand = np.flatnonzero(np.all((blo <= shi.max(axis=0)) & (bhi >= slo.min(axis=0)), axis=-1))  # near the route
    pairs = [np.zeros(0, int)], [np.zeros(0, int)]
    for k in range(0, len(segs), 512):   # in chunks: 512 x W booleans at a time
        hit = np.all((slo[k:k + 512, None] <= bhi[None, cand]) & (shi[k:k + 512, None] >= blo[None, cand]), axis=-1)
        i, j = np.nonzero(hit)
        pairs[0].append(i + k)
        pairs[1].append(cand[j])
    return np.concatenate(pairs[0]), np.concatenate(pairs[1])


def _route_clearance(segs: np.ndarray, boxes: np.ndarray, cutoff: float) -> tuple[float, int, int]:
    """(distance, segment, box) of the closest segment-box pair within `cutoff` ((inf, -1, -1) if none is)."""
    i, j = _near_pairs(segs, boxes, cutoff)
    if not len(i):
        return math.inf, -1, -1
    d = np.concatenate([_segment_box_dist(segs[i[k:k + 4096]], boxes[j[k:k + 4096]], paired=True)
                        for k in range(0, len(i), 4096)])
    m = int(np.argmin(d))
    return float(d[m]), int(i[m]), int(j[m])


def line_blocked(boxes: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> bool:
    """Whether the straight line (x0, y0) -> (x1, y1) touches a wall box (`wall_boxes(track)`)."""
    return bool(np.any(_segment_box_dist(np.array([[x0, y0, x1, y1]], dtype=np.float64), boxes) == 0))


def car_footprints(x: np.ndarray, y: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(P, 4, 2) corners of the car's footprint (spec.CAR_FOOTPRINT) at poses (P,)."""
    rear, front, half = spec.CAR_FOOTPRINT
    local = np.array([[front, half], [rear, half], [rear, -half], [front, -half]])
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    return np.stack([x[:, None] + c * local[:, 0] - s * local[:, 1],
                     y[:, None] + s * local[:, 0] + c * local[:, 1]], axis=-1)


def _xy(x: float, y: float) -> str:
    return f"({x:g}, {y:g})"


def _route_heading(track: Track) -> float:
    """Heading (rad) from the start to the centre-line point ROUTE_AHEAD beyond the start's projection: where the
    route goes from the start, also for a start a little beside or behind the centre-line's first point."""
    s = track.start
    line = Centerline(track.centerline)
    x, y, tangent = line.point_at(line.project(s.x, s.y) + ROUTE_AHEAD)
    return math.atan2(y - s.y, x - s.x) if math.hypot(x - s.x, y - s.y) > 1e-6 else tangent


def check_geometry(track: Track, start_jitter: tuple[float, float] = spec.START_JITTER) -> None:
    """Raise TrackError (one line, naming the field) unless the env can run `track`: the walls on the ground
    (GROUND_HALF_EXTENT); start and goal within the walls' extent; the start yaw within 90 deg of the route's
    direction there; the car's footprint at the start pose clears the walls by START_MARGIN, and so does at least
    START_CLEAR_SHARE of the poses the env's start jitter may draw; the centre-line begins at the start, ends
    inside the goal circle and keeps half the car's width from every wall box all the way (the goal is reachable
    along it); the start is not already inside the goal."""
    src, s, g = track.source, track.start, track.goal
    xmin, ymin, xmax, ymax = track.bounds
    if max(-xmin, -ymin, xmax, ymax) > GROUND_HALF_EXTENT:
        raise TrackError(f"track {src}: field 'walls' span x {xmin:g}..{xmax:g}, y {ymin:g}..{ymax:g} m; they must "
                         f"lie within +-{GROUND_HALF_EXTENT:g} m of the origin (the ground is a 200 x 200 m slab "
                         f"centred there): shift or shrink the track")
    for key, (x, y) in (("start", (s.x, s.y)), ("goal", (g.x, g.y))):
        if not (xmin <= x <= xmax and ymin <= y <= ymax):
            raise TrackError(f"track {src}: field '{key}' {_xy(x, y)} lies outside the walls (they span x "
                             f"{xmin:g}..{xmax:g}, y {ymin:g}..{ymax:g})")
    boxes = wall_boxes(track)
    line = track.centerline
    d0 = math.hypot(line[0, 0] - s.x, line[0, 1] - s.y)
    if d0 > START_ON_LINE:
        raise TrackError(f"track {src}: field 'start' {_xy(s.x, s.y)} is {d0:.2f} m from the centre-line's first "
                         f"point {_xy(*line[0])}; the centre-line must begin at the start (within {START_ON_LINE:g} m)")
    d1 = math.hypot(line[-1, 0] - g.x, line[-1, 1] - g.y)
    if d1 > g.radius:
        raise TrackError(f"track {src}: field 'goal' {_xy(g.x, g.y)} radius {g.radius:g} does not hold the "
                         f"centre-line's last point {_xy(*line[-1])} ({d1:.2f} m away); the centre-line must end "
                         f"inside the goal")
    ahead = _route_heading(track)
    off = abs(math.remainder(s.yaw - ahead, math.tau))
    if off > math.pi / 2:
        raise TrackError(f"track {src}: field 'start.yaw' {s.yaw:g} faces {math.degrees(off):.1f} deg away from the "
                         f"route (the centre-line leaves the start heading {ahead:.4f} rad); yaw is in radians, "
                         f"counter-clockwise from +x, and must point within 90 deg of the route")
    dpos, dyaw = start_jitter
    reach = g.radius + dpos * math.sqrt(2)
    if math.hypot(g.x - s.x, g.y - s.y) <= reach:
        raise TrackError(f"track {src}: field 'goal' {_xy(g.x, g.y)} radius {g.radius:g} already holds the start "
                         f"{_xy(s.x, s.y)} (with the start jitter): there is nothing to drive")

    # the car at the start pose, then at a grid over the jitter the env draws from
    rear, front, half = spec.CAR_FOOTPRINT
    # only walls the car could reach from the start matter (keeps this cheap: tracks are checked at every load)
    reach = math.hypot(max(-rear, front), half) + dpos * math.sqrt(2) + START_MARGIN + 0.01
    near = np.flatnonzero(_segment_box_dist(np.array([[s.x, s.y, s.x, s.y]]), boxes)[0] < reach)
    near_boxes = boxes[near]
    nominal = np.full(len(boxes), np.inf)
    nominal[near] = _box_box_dist(car_footprints(np.array([s.x]), np.array([s.y]), np.array([s.yaw])),
                                  near_boxes)[0]
    if nominal.min() < START_MARGIN:
        row = int(np.argmin(nominal))
        how = "overlaps" if nominal[row] == 0 else f"is {nominal[row]:.2f} m from"
        raise TrackError(f"track {src}: field 'start' {_xy(s.x, s.y)} yaw {s.yaw:g}: the car ({front - rear:.2f} x "
                         f"{2 * half:.2f} m) {how} wall row {row}; it needs {START_MARGIN:g} m clear")
    if dpos > 0 or dyaw > 0:
        ox, oy, oyaw = np.meshgrid(np.linspace(-dpos, dpos, 5), np.linspace(-dpos, dpos, 5),
                                   np.linspace(-dyaw, dyaw, 3), indexing="ij")
        dist = _box_box_dist(car_footprints(s.x + ox.ravel(), s.y + oy.ravel(), s.yaw + oyaw.ravel()), near_boxes)
        clear = dist.min(axis=1, initial=np.inf) >= START_MARGIN
        if clear.mean() < START_CLEAR_SHARE:
            row = int(near[np.argmin(dist.min(axis=0))])
            raise TrackError(f"track {src}: field 'start' {_xy(s.x, s.y)} yaw {s.yaw:g} is too close to wall row "
                             f"{row}: only {clear.mean():.0%} of the start poses the env's jitter (+-{dpos:g} m, "
                             f"+-{dyaw:g} rad) draws clear the walls; move the start away from it")

    # the route: start -> centre-line, then the centre-line, clear of every wall box by half the car's width
    pts = np.concatenate([[[s.x, s.y]], line]) if d0 > 0 else line
    segs = np.concatenate([pts[:-1], pts[1:]], axis=1)
    dist, k, row = _route_clearance(segs, boxes, half)
    if dist < half:
        i = k - (1 if d0 > 0 else 0)   # centre-line rows i, i + 1 (i = -1: the start's link to row 0)
        where = "from the start to its first point" if i < 0 else f"between rows {i} and {i + 1}"
        how = "crosses" if dist == 0 else f"passes {dist:.2f} m from"
        raise TrackError(f"track {src}: field 'centerline' {where} ({_xy(*segs[k, :2])} to {_xy(*segs[k, 2:])}) "
                         f"{how} wall row {row}; the car needs {half:g} m on each side, so the goal is not "
                         f"reachable along it")


def _generated(text: str) -> Track:
    from .generate import generate  # lazy: generate imports this module
    parts = text.split(":")
    # isascii: str.isdigit() also takes "²" (which int() refuses) and "٣" (which int() reads as 3)
    if len(parts) not in (2, 3) or not (parts[1].isascii() and parts[1].isdigit()):
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
    try:   # every filesystem call inside: a name too long or a folder without access is an OSError too
        if not (path.suffix == ".json" or path.is_file()):
            shipped = TRACKS_DIR / f"{text}.json"
            if not shipped.exists():
                raise TrackError(f"unknown track '{text}': shipped tracks are {', '.join(shipped_tracks())}, "
                                 f"or pass a path to a track .json file, or gen:SEED for a generated track")
            path = shipped
        if not path.exists():
            raise TrackError(f"track file {path} does not exist")
        if not path.is_file():
            raise TrackError(f"track {path}: not a file (expected a track .json file)")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise TrackError(f"track {path}: {size} bytes is too large for a track file (at most "
                             f"{MAX_FILE_BYTES // 1_000_000} MB)")
        raw = path.read_bytes()
    except OSError as e:
        raise TrackError(f"track {path}: cannot read it ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TrackError(f"track {path}: not a text file (a track is JSON text in UTF-8; this looks binary)") from None
    if not text.strip():
        raise TrackError(f"track {path}: empty file (expected a track JSON object)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise TrackError(f"track {path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except (ValueError, RecursionError) as e:  # e.g. an integer of thousands of digits, nesting too deep
        raise TrackError(f"track {path}: not a usable JSON file ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from None
    return parse_track(data, str(path))
