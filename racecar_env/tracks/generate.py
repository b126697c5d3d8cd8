"""Procedural tracks: a walled corridor of straights joined by corners, a pure function of (seed, parameters).

    from racecar_env.tracks import generate
    track = generate(5)                                   # default ranges
    track = generate(5, difficulty="hard")                # a named preset (turn-angle and width ranges)
    track = generate(5, max_turn_deg=60, free_width=(2.2, 2.4))   # any GeneratorConfig field as an override
    load_track("gen:5"), load_track("gen:5:hard")         # the same, through the track loader

How a track is made (all draws from `np.random.default_rng(seed)`, in this order):
  1. the kind: number of corners n, the corridor's free width (one value for the whole track), the start heading
     (uniform: absolute heading carries no information);
  2. the shape, corner by corner: the first straight's clear length, then for each corner a side (left/right,
     even odds), a turn magnitude and the clear length of the straight after it. The centre-line segment between two corners is that clear length plus each corner's
     zone, (D/2)·tan(|turn|/2) with D the wall centre-line spacing: exactly what the inner wall loses at a mitred
     corner, so the inner wall keeps the clear length and never collapses however sharp the corners;
  3. validity: non-adjacent parts of the corridor keep a clear gap (centre-line segments at least
     free_width + 2·wall_thickness + min_gap apart) and no wall comes closer than D/2 to any part of the
     centre-line. A corner that makes the corridor so far overlap itself is redrawn (20 tries, then the shape
     starts over; so does a finished shape that fails), all from the same RNG stream: the kind's distribution is
     exactly as configured and the result is still a pure function of the seed.
Walls are the two sides as offset polylines with mitred joins (an outer mitre longer than `mitre_limit`·D/2 is
clipped there), plus a cap behind the start and one beyond the goal. Consecutive wall segments share endpoints and
the physics extends each wall box by half its thickness at both ends, so a joint is closed at any angle.

Coordinates are rounded to 1e-4 m and angles to 1e-6 rad (the centre-line is rounded before the walls are built
from it), so the JSON and `Track.track_id` are the same on every machine whatever its libm.

Seed ranges keep roles apart: training tracks come from TRAIN_SEEDS = [0, 1_000_000), held-out test tracks from
TEST_SEEDS = [1_000_000, 2_000_000). Nothing stops other seeds; these are the project's convention.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from .model import (GROUND_HALF_EXTENT, Track, TrackError, parse_track,  # noqa: F401 (seg_dist: public here too)
                    seg_dist)

GENERATOR_VERSION = 1
TRAIN_SEEDS = range(0, 1_000_000)          # seeds of training tracks
TEST_SEEDS = range(1_000_000, 2_000_000)   # seeds of held-out test tracks
CORNER_TRIES = 20                          # draws of one corner before the shape starts over
MAX_RESTARTS = 200                         # shape restarts before giving up (measured: default ranges need < 5)


@dataclass(frozen=True)
class GeneratorConfig:
    """What a generated track may look like. Ranges are (low, high), drawn uniformly; lengths in metres.

    The difficulty axes are the turn magnitudes (min_turn_deg..max_turn_deg) and the corridor width (free_width).
    """
    min_corners: int = 3                          # 1..12; default 3..8 corners
    max_corners: int = 8
    min_turn_deg: float = 30.0                    # turn magnitude, both left and right turns; 10..135
    max_turn_deg: float = 120.0
    free_width: tuple[float, float] = (1.7, 2.4)  # corridor between wall faces, one draw per track; 1.2..4.0
    straight: tuple[float, float] = (1.0, 4.0)    # clear straight between corner zones (the inner wall's length)
    wall_thickness: float = 0.3
    wall_height: float = 0.5
    start_clearance: float = 0.8                  # start point to the back cap's centre-line
    goal_run_out: float = 1.0                     # goal point to the end cap's centre-line
    goal_radius: float = 1.0                      # at least this; max(goal_radius, free/2) so it spans the corridor
    min_gap: float = 0.5                          # clear gap between the walls of non-adjacent corridor parts
    mitre_limit: float = 1.5                      # outer mitre longer than this x D/2 is clipped

    def __post_init__(self):
        # canonical types, so generate(5, max_turn_deg=60) and (..., max_turn_deg=60.0) record the same parameters
        # and make the same track_id; values that don't convert are left for check() to name
        for f in fields(self):
            v = getattr(self, f.name)
            try:
                if f.name in ("free_width", "straight") and isinstance(v, (tuple, list)):
                    v = tuple(float(x) for x in v)
                elif f.name in ("min_corners", "max_corners") and not isinstance(v, bool) and float(v) == int(v):
                    v = int(v)
                elif f.name not in ("free_width", "straight", "min_corners", "max_corners") \
                        and not isinstance(v, bool):
                    v = float(v)
            except (TypeError, ValueError):
                continue
            object.__setattr__(self, f.name, v)

    def check(self) -> "GeneratorConfig":
        """Raise TrackError naming the field if a value is out of its documented range; return self."""
        def bad(name, why):
            raise TrackError(f"generator: {name} {why}, got {getattr(self, name)!r}")
        for name in ("free_width", "straight"):
            v = getattr(self, name)
            if not (isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, float) and math.isfinite(x) for x in v)):
                bad(name, "must be a (low, high) pair of numbers")
            if not v[0] <= v[1]:
                bad(name, "must have low <= high")
        if not (isinstance(self.min_corners, int) and isinstance(self.max_corners, int)
                and 1 <= self.min_corners <= self.max_corners <= 12):
            bad("max_corners", f"and min_corners must be integers with 1 <= min <= max <= 12 (min {self.min_corners})")
        for name in ("min_turn_deg", "max_turn_deg", "wall_thickness", "wall_height", "start_clearance",
                     "goal_run_out", "goal_radius", "min_gap", "mitre_limit"):
            if not (isinstance(getattr(self, name), float) and math.isfinite(getattr(self, name))):
                bad(name, "must be a finite number")
        if not 10.0 <= self.min_turn_deg <= self.max_turn_deg <= 135.0:
            bad("max_turn_deg", f"and min_turn_deg must satisfy 10 <= min <= max <= 135 (min {self.min_turn_deg})")
        if not (1.2 <= self.free_width[0] and self.free_width[1] <= 4.0):
            bad("free_width", "must lie within 1.2..4.0 m")
        if not (0.5 <= self.straight[0] and self.straight[1] <= 20.0):
            bad("straight", "must lie within 0.5..20 m")
        for name in ("wall_thickness", "wall_height", "start_clearance", "goal_run_out", "goal_radius", "min_gap"):
            if not getattr(self, name) > 0:
                bad(name, "must be > 0")
        if not self.mitre_limit >= 1.0:
            bad("mitre_limit", "must be >= 1")
        return self


#: Named presets: the two difficulty axes (turn magnitude, corridor width); everything else as the default.
DIFFICULTIES: dict[str, dict] = {
    "easy": {"min_turn_deg": 30.0, "max_turn_deg": 60.0, "free_width": (2.1, 2.4)},
    "medium": {"min_turn_deg": 45.0, "max_turn_deg": 90.0, "free_width": (1.9, 2.2)},
    "hard": {"min_turn_deg": 75.0, "max_turn_deg": 120.0, "free_width": (1.7, 1.9)},
}


def make_config(config: GeneratorConfig | None = None, difficulty: str | None = None, **overrides) -> GeneratorConfig:
    """The config a call uses: `config` (or the default), then the preset's ranges, then keyword overrides."""
    cfg = config or GeneratorConfig()
    if difficulty is not None:
        if difficulty not in DIFFICULTIES:
            raise TrackError(f"generator: unknown difficulty {difficulty!r}; choose {', '.join(DIFFICULTIES)}")
        cfg = replace(cfg, **DIFFICULTIES[difficulty])
    names = {f.name for f in fields(GeneratorConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TrackError(f"generator: unknown parameter {unknown[0]!r}; parameters are {', '.join(sorted(names))}")
    cfg = replace(cfg, **{k: (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items()})
    return cfg.check()


def generate(seed: int, config: GeneratorConfig | None = None, *, difficulty: str | None = None,
             **overrides) -> Track:
    """The track of `seed` under `config` (default GeneratorConfig()), a preset and/or field overrides.
    Same inputs, same track (same `track_id`) on every machine."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TrackError(f"generator: seed must be an integer >= 0, got {seed!r}")
    seed = int(seed)
    cfg = make_config(config, difficulty, **overrides)
    rng = np.random.default_rng(seed)
    t = cfg.wall_thickness

    # 1. the kind
    n = int(rng.integers(cfg.min_corners, cfg.max_corners + 1))
    free = _r(rng.uniform(*cfg.free_width))
    heading = float(rng.uniform(-math.pi, math.pi))
    half = (free + t) / 2  # wall centre-line offset D/2

    # 2.+3. the shape, corner by corner: a corner (side, turn, following straight) that makes the corridor so far
    # overlap itself is redrawn; after CORNER_TRIES failed draws, or if the finished track fails the full check,
    # the shape starts over. Every draw comes from the one RNG stream, so the result is a function of the seed.
    need = free + 2 * t + cfg.min_gap  # centre-line distance between non-adjacent corridor parts
    lo, hi = math.radians(cfg.min_turn_deg), math.radians(cfg.max_turn_deg)
    draws = 0
    for restart in range(MAX_RESTARTS):
        turns, clear = [], [float(rng.uniform(*cfg.straight))]
        for _ in range(n):
            for _ in range(CORNER_TRIES):
                draws += 1
                turn = round((1.0 if rng.random() < 0.5 else -1.0) * float(rng.uniform(lo, hi)), 6)
                straight = float(rng.uniform(*cfg.straight))
                center = _centerline(heading, turns + [turn], clear + [straight], half)
                if _apart(_spine(center, None, cfg), need):
                    turns.append(turn)
                    clear.append(straight)
                    break
            else:
                break
        if len(turns) < n:
            continue
        center = _centerline(heading, turns, clear, half)
        walls, spine = _walls(center, half, cfg)
        if _valid(spine, walls, need, half):
            break
    else:
        raise TrackError(f"generator: no valid track for seed {seed} after {draws} corner draws; widen the ranges "
                         f"(fewer corners, longer straights, gentler turns, a narrower corridor)")
    turns = np.array(turns)
    # the road starts at the origin, so "shift the track" (the ground check's advice for a track file) cannot apply:
    # name the settings that make it reach that far
    reach = float(np.abs(walls).max()) + t / 2
    if reach > GROUND_HALF_EXTENT:
        raise TrackError(f"generator: the track of seed {seed} ({n} corners, {float(np.sum(clear)):.0f} m of "
                         f"straights) reaches {reach:.0f} m from the origin, past the ground's +-"
                         f"{GROUND_HALF_EXTENT:g} m: use fewer corners (max_corners, --corners) or shorter straights "
                         f"(straight, --straight)")

    d0 = center[1] - center[0]
    goal_radius = _r(max(cfg.goal_radius, free / 2))
    data = {
        "name": f"gen-{seed}" if difficulty is None else f"gen-{seed}-{difficulty}",
        "description": f"Generated: {n} corners, turns {_turn_text(turns)} deg, free width {free:.2f} m.",
        "generator": {
            "version": GENERATOR_VERSION, "seed": seed, "difficulty": difficulty,
            "params": _jsonable(asdict(cfg)),
            "drawn": {"corners": n, "free_width": free, "turns_deg": [_r(math.degrees(a), 2) for a in turns],
                      "straights": [_r(x) for x in clear], "corner_draws": draws, "restarts": restart},
        },
        "walls": walls.tolist(),
        "wall_thickness": float(t),
        "wall_height": float(cfg.wall_height),
        "start": {"x": float(center[0, 0]), "y": float(center[0, 1]), "yaw": _r(math.atan2(d0[1], d0[0]), 6)},
        "goal": {"x": float(center[-1, 0]), "y": float(center[-1, 1]), "radius": goal_radius},
        "centerline": center.tolist(),
    }
    return parse_track(data, source="generated")


def track_kind(track: Track) -> dict | None:
    """The drawn kind of a generated track (corners, free_width, turns_deg, ...), or None for other tracks."""
    gen = track.extra.get("generator")
    return gen.get("drawn") if isinstance(gen, dict) else None


# --- geometry -------------------------------------------------------------------------------------------------------
def _r(x: float, nd: int = 4) -> float:
    return float(round(float(x), nd)) + 0.0  # + 0.0: no "-0.0" in the JSON


def _round(a: np.ndarray) -> np.ndarray:
    return np.round(a, 4) + 0.0


def _turn_text(turns: np.ndarray) -> str:
    return " ".join(f"{'L' if a > 0 else 'R'}{abs(math.degrees(a)):.0f}" for a in turns)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return [_jsonable(v) for v in obj]
    return obj


def _side_polyline(pts: np.ndarray, side: float, half: float, mitre_limit: float) -> list[np.ndarray]:
    """Offset of polyline `pts` by `half` to the left (side=+1) or right (-1), mitred; long outer mitres clipped."""
    d = np.diff(pts, axis=0)
    d = d / np.hypot(d[:, 0], d[:, 1])[:, None]
    nrm = np.stack([-d[:, 1], d[:, 0]], axis=1) * side  # unit normal towards this side
    out = [pts[0] + half * nrm[0]]
    for i in range(1, len(pts) - 1):
        na, nb, da, db = nrm[i - 1], nrm[i], d[i - 1], d[i]
        cos_turn = float(np.clip(da @ db, -1.0, 1.0))
        c = math.sqrt((1 + cos_turn) / 2)  # cos(turn/2)
        cross = da[0] * db[1] - da[1] * db[0]  # > 0: left turn
        outer = cross * side < 0
        if outer and 1.0 / c > mitre_limit:
            s = math.sqrt(max(1 - c * c, 0.0))  # sin(turn/2)
            x = (mitre_limit - c) / s  # clip line at mitre_limit*half from the vertex, across the bisector
            out.append(pts[i] + half * na + half * x * da)
            out.append(pts[i] + half * nb - half * x * db)
        else:
            out.append(pts[i] + half * (na + nb) / (1 + cos_turn))
    out.append(pts[-1] + half * nrm[-1])
    return out


def _centerline(heading: float, turns: list[float], clear: list[float], half: float) -> np.ndarray:
    """Centre-line points (rounded) from the start heading, the corner turns and the clear straights: each segment
    is its clear straight plus the corner zones (half * tan(|turn| / 2)) at its ends."""
    turns_a = np.array(turns, dtype=np.float64)
    zone = half * np.tan(np.abs(turns_a) / 2)
    lengths = np.array(clear) + np.concatenate([[0.0], zone]) + np.concatenate([zone, [0.0]])
    headings = heading + np.concatenate([[0.0], np.cumsum(turns_a)])
    steps = np.stack([np.cos(headings), np.sin(headings)], axis=1) * lengths[:, None]
    return _round(np.concatenate([[[0.0, 0.0]], np.cumsum(steps, axis=0)]))


def _spine(center: np.ndarray, end: bool | None, cfg: GeneratorConfig) -> np.ndarray:
    """The centre-line extended back to the start cap and (if `end`) on to the goal's end cap."""
    d0 = center[1] - center[0]
    pts = [[center[0] - cfg.start_clearance * d0 / np.hypot(*d0)], center]
    if end:
        d1 = center[-1] - center[-2]
        pts.append([center[-1] + cfg.goal_run_out * d1 / np.hypot(*d1)])
    return _round(np.concatenate(pts))


def _walls(center: np.ndarray, half: float, cfg: GeneratorConfig) -> tuple[np.ndarray, np.ndarray]:
    """(W, 4) wall segments (left side, right side, back cap, end cap) and the spine they were built around."""
    spine = _spine(center, True, cfg)
    left = _round(np.array(_side_polyline(spine, +1.0, half, cfg.mitre_limit)))
    right = _round(np.array(_side_polyline(spine, -1.0, half, cfg.mitre_limit)))
    segs = [np.concatenate([left[:-1], left[1:]], axis=1), np.concatenate([right[:-1], right[1:]], axis=1),
            np.array([[*left[0], *right[0]], [*left[-1], *right[-1]]])]
    return np.concatenate(segs), spine


def _apart(spine: np.ndarray, need: float) -> bool:
    """Non-adjacent parts of the corridor keep `need` between their centre-lines. Of two non-adjacent segments,
    the parts closer than `need` to each other *along the centre-line* are neighbours, not separate parts (two
    gentle corners a short straight apart): they are trimmed off here and covered by the wall check."""
    segs = np.concatenate([spine[:-1], spine[1:]], axis=1)
    seg_len = np.hypot(segs[:, 2] - segs[:, 0], segs[:, 3] - segs[:, 1])
    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    i, j = np.triu_indices(len(segs), 2)  # non-adjacent pairs i < j - 1
    cut = np.maximum(need - (cum[j] - cum[i + 1]), 0.0)
    keep = (cut < seg_len[i]) & (cut < seg_len[j])
    i, j, cut = i[keep], j[keep], cut[keep]
    di = (segs[i, 2:] - segs[i, :2]) / seg_len[i, None]
    dj = (segs[j, 2:] - segs[j, :2]) / seg_len[j, None]
    pi = np.concatenate([segs[i, :2], segs[i, 2:] - cut[:, None] * di], axis=1)
    pj = np.concatenate([segs[j, :2] + cut[:, None] * dj, segs[j, 2:]], axis=1)
    return not np.any(seg_dist(pi, pj) < need)


def _valid(spine: np.ndarray, walls: np.ndarray, need: float, half: float) -> bool:
    """The finished track: parts apart, and no wall (centre-line) nearer than `half` to any part of the spine."""
    if not _apart(spine, need):
        return False
    segs = np.concatenate([spine[:-1], spine[1:]], axis=1)
    side_walls, caps = walls[:-2], walls[-2:]
    if np.any(seg_dist(side_walls[:, None], segs[None]) < half - 1e-3):
        return False
    # a cap closes its own end; it must keep clear of every other part of the corridor
    cap_d = seg_dist(caps[:, None], segs[None])
    return bool(np.all(cap_d[0, 2:] >= half - 1e-3) and np.all(cap_d[1, :-2] >= half - 1e-3))
