"""The one table of what the environment observes and accepts.

Every stage (env, dataset layer, learner, viewer) indexes observations through this module, never by magic
numbers. Changing the layout changes `OBS_LAYOUT_ID`, which datasets and checkpoints store, so stale files are
refused with a clear message instead of being silently misread.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

# --- physics / control constants (measured; see README "Design decisions") -------------------------------------
PHYSICS_DT = 1.0 / 240.0          # s, pybullet step
SUBSTEPS = 12                     # physics steps per action -> 20 Hz control
CONTROL_DT = PHYSICS_DT * SUBSTEPS  # 0.05 s
MAX_STEER_RAD = 0.5               # hinge angle at |steer| = 1
MAX_WHEEL_SPEED = 50.0            # rad/s at |throttle| = 1 (~2.5 m/s with the 0.05 m wheels)

# --- lidar: a forward fan of wall distances ---------------------------------------------------------------------
LIDAR_RAYS = 17
LIDAR_FOV_RAD = np.deg2rad(240.0)  # fan from -120 deg (right) to +120 deg (left) of the heading
LIDAR_RANGE = 5.0                  # m; a ray that hits nothing reads LIDAR_RANGE
LIDAR_ANGLES = np.linspace(-LIDAR_FOV_RAD / 2, LIDAR_FOV_RAD / 2, LIDAR_RAYS)  # rad, car frame, + = left


@dataclass(frozen=True)
class ObsField:
    name: str
    unit: str
    low: float
    high: float
    doc: str


_CAR_FIELDS = (
    ObsField("x", "m", -np.inf, np.inf, "car centre x, world frame (env bounds it by the track)"),
    ObsField("y", "m", -np.inf, np.inf, "car centre y, world frame"),
    ObsField("sin_yaw", "1", -1.0, 1.0, "sin of heading (yaw 0 = +x, counter-clockwise positive)"),
    ObsField("cos_yaw", "1", -1.0, 1.0, "cos of heading"),
    ObsField("v_forward", "m/s", -10.0, 10.0, "velocity along the car's heading (car frame)"),
    ObsField("v_left", "m/s", -10.0, 10.0, "sideways velocity, + = to the car's left (car frame)"),
    ObsField("yaw_rate", "rad/s", -30.0, 30.0, "heading rate, + = turning left"),
    ObsField("steer_angle", "rad", -1.0, 1.0, "mean front hinge angle, + = wheels point left"),
)
_LIDAR_FIELDS = tuple(
    ObsField(f"lidar_{i:02d}", "m", 0.0, LIDAR_RANGE,
             f"wall distance along {np.rad2deg(a):+.0f} deg from the heading (+ = left), capped at {LIDAR_RANGE} m")
    for i, a in enumerate(LIDAR_ANGLES)
)

#: The `observation` vector of the Dict observation, in order.
OBS_FIELDS: tuple[ObsField, ...] = _CAR_FIELDS + _LIDAR_FIELDS
OBS_DIM = len(OBS_FIELDS)
OBS_INDEX: dict[str, int] = {f.name: i for i, f in enumerate(OBS_FIELDS)}
LIDAR_SLICE = slice(OBS_INDEX["lidar_00"], OBS_INDEX["lidar_00"] + LIDAR_RAYS)
OBS_LOW = np.array([f.low for f in OBS_FIELDS], dtype=np.float32)
OBS_HIGH = np.array([f.high for f in OBS_FIELDS], dtype=np.float32)

#: `achieved_goal` is the car centre (x, y) in metres, `desired_goal` the goal centre (x, y) in metres.
GOAL_FIELDS = ("x", "y")

#: Action vector, in order. Both in [-1, 1].
ACTION_FIELDS = (
    ObsField("steer", "1", -1.0, 1.0,
             f"+1 = full left (counter-clockwise), hinge angle = steer * {MAX_STEER_RAD} rad"),
    ObsField("throttle", "1", -1.0, 1.0,
             f"target rear-wheel speed = throttle * {MAX_WHEEL_SPEED} rad/s; 0 brakes, < 0 reverses"),
)


def _layout_id() -> str:
    text = "|".join(f"{f.name}:{f.unit}" for f in OBS_FIELDS) + f"|goal:{GOAL_FIELDS}|dt:{CONTROL_DT:.6f}"
    return "obs-" + hashlib.sha1(text.encode()).hexdigest()[:10]


#: Stored in every dataset and checkpoint; a mismatch means "recorded with a different observation layout".
OBS_LAYOUT_ID = _layout_id()


def field(obs: np.ndarray, name: str) -> np.ndarray:
    """Column `name` of an `observation` array of shape (..., OBS_DIM)."""
    return obs[..., OBS_INDEX[name]]


def describe() -> str:
    """The observation table as text (used by `--help` output and the README)."""
    rows = [f"{'index':>5}  {'name':<12} {'unit':<6} {'range':<16} meaning"]
    for i, f in enumerate(OBS_FIELDS):
        rng = f"[{f.low:g}, {f.high:g}]"
        rows.append(f"{i:>5}  {f.name:<12} {f.unit:<6} {rng:<16} {f.doc}")
    rows.append("action:")
    rows += [f"{i:>5}  {f.name:<12} {f.unit:<6} [{f.low:g}, {f.high:g}]{'':<8} {f.doc}" for i, f in enumerate(ACTION_FIELDS)]
    return "\n".join(rows)
