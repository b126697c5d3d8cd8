"""The one table of what the environment observes and accepts, and every constant that gives those numbers meaning.

The env builds its observation through this table (`assemble`), the learner picks its inputs from it by group
(`POLICY_FIELDS`), the viewer reads fields by name (`field(obs, "x")`): nobody indexes by magic numbers. The layout
id hashes the table AND the constants behind it (control period, steering and wheel-speed scale, lidar angles,
range and height, route distances, goal range, drive-train), so a dataset or checkpoint made under any other
setting is refused with a clear message instead of being silently misread.

Groups of the `observation` vector, in order:
    pose    world-frame pose: for drawing and analysis, never a policy input (a policy that sees absolute
            positions memorises one road)
    motion  car-frame velocities, yaw rate, measured steering angle
    lidar   a forward fan of wall distances
    route   centre-line points at fixed arc-length distances ahead, in the car frame (where the road goes next,
            as a navigation system would tell a driver)
    goal    the goal in the car frame (direction exact, distance capped at GOAL_RANGE)
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

# --- physics / control (measured; see README "Design decisions") -----------------------------------------------
PHYSICS_DT = 1.0 / 240.0          # s, pybullet step
SUBSTEPS = 12                     # physics steps per action -> 20 Hz control
CONTROL_DT = PHYSICS_DT * SUBSTEPS  # 0.05 s
MAX_STEER_RAD = 0.5               # hinge angle at |steer| = 1
MAX_WHEEL_SPEED = 50.0            # rad/s at |throttle| = 1 (~2.5 m/s with the 0.05 m wheels)
DRIVE = {"driven_wheels": "rear", "wheel_force": 20.0, "steer_force": 50.0}  # N*m, N: motor limits
CAR_CENTER_OFFSET = 0.16          # m from the URDF base (rear axle) forward to the car centre reported as x, y
DEFAULT_MAX_STEPS = 1200          # time limit: 60 s at 20 Hz, room for a slow, careful human
START_JITTER = (0.1, 0.1)         # m, rad: the env's default uniform jitter of the start pose at reset
# The car's collision footprint around its centre (x, y), car frame: rear, front, half width (m). pybullet's AABBs of
# racecar.urdf's collision shapes at rest span x -0.219..0.247, y -0.147..0.147; rounded outwards. A track's start
# is checked against it when the track is loaded (racecar_env.tracks.model), so a bad start never reaches the env.
CAR_FOOTPRINT = (-0.22, 0.25, 0.15)
# Revisions of the simulation that change what a recording holds without changing the observation layout. Stored in
# every dataset as racecar_physics (none = 1). 2: every wall collides and is seen by the lidar (before, pybullet kept
# only the first PHYSICS_1_WALLS walls of a track: the car drove through the rest; tracks with fewer are unchanged).
PHYSICS_REVISION = 2
PHYSICS_1_WALLS = 16

# --- sensors ----------------------------------------------------------------------------------------------------
LIDAR_RAYS = 17
LIDAR_FOV_RAD = np.deg2rad(240.0)  # fan from -120 deg (right) to +120 deg (left) of the heading
LIDAR_RANGE = 5.0                  # m; a ray that hits nothing reads LIDAR_RANGE
LIDAR_HEIGHT = 0.2                 # m above ground: above the wheels, below the 0.5 m walls
LIDAR_ANGLES = np.linspace(-LIDAR_FOV_RAD / 2, LIDAR_FOV_RAD / 2, LIDAR_RAYS)  # rad, car frame, + = left
ROUTE_DISTANCES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0)  # m of centre-line ahead of the car's projection
GOAL_RANGE = 10.0                  # m; a farther goal reads as this far, in its true direction


@dataclass(frozen=True)
class ObsField:
    name: str
    unit: str
    low: float
    high: float
    doc: str
    group: str = ""


def _fields(group: str, rows) -> tuple[ObsField, ...]:
    return tuple(ObsField(*row, group=group) for row in rows)


_ROUTE_REACH = ROUTE_DISTANCES[-1] + 1.5   # a route point lies within its arc length (+ the car's offset) of the car

GROUPS: dict[str, tuple[ObsField, ...]] = {
    "pose": _fields("pose", [
        ("x", "m", -np.inf, np.inf, "car centre x, world frame (not a policy input)"),
        ("y", "m", -np.inf, np.inf, "car centre y, world frame (not a policy input)"),
        ("sin_yaw", "1", -1.0, 1.0, "sin of heading, world frame (yaw 0 = +x, counter-clockwise; not a policy input)"),
        ("cos_yaw", "1", -1.0, 1.0, "cos of heading, world frame (not a policy input)"),
    ]),
    "motion": _fields("motion", [
        ("v_forward", "m/s", -10.0, 10.0, "velocity along the car's heading (car frame)"),
        ("v_left", "m/s", -10.0, 10.0, "sideways velocity, + = to the car's left (car frame)"),
        ("yaw_rate", "rad/s", -30.0, 30.0, "heading rate, + = turning left"),
        ("steer_angle", "rad", -1.0, 1.0, "mean front hinge angle, + = wheels point left"),
    ]),
    "lidar": _fields("lidar", [
        (f"lidar_{i:02d}", "m", 0.0, LIDAR_RANGE,
         f"wall distance along {np.rad2deg(a):+.0f} deg from the heading (+ = left), capped at {LIDAR_RANGE:g} m")
        for i, a in enumerate(LIDAR_ANGLES)
    ]),
    "route": _fields("route", [
        row for i, d in enumerate(ROUTE_DISTANCES) for row in (
            (f"route_{i}_fwd", "m", -_ROUTE_REACH, _ROUTE_REACH,
             f"centre-line point {d:g} m ahead of the car's projection: distance ahead of the car (car frame)"),
            (f"route_{i}_left", "m", -_ROUTE_REACH, _ROUTE_REACH,
             f"centre-line point {d:g} m ahead: distance to the car's left (car frame)"))
    ]),
    "goal": _fields("goal", [
        ("goal_fwd", "m", -GOAL_RANGE, GOAL_RANGE, f"goal centre ahead of the car (car frame; distance capped at "
                                                   f"{GOAL_RANGE:g} m)"),
        ("goal_left", "m", -GOAL_RANGE, GOAL_RANGE, "goal centre to the car's left (car frame, capped likewise)"),
        ("goal_dist", "m", 0.0, GOAL_RANGE, f"distance to the goal centre, capped at {GOAL_RANGE:g} m"),
    ]),
}
POLICY_GROUPS = ("motion", "lidar", "route", "goal")

#: The `observation` vector of the Dict observation, in order.
OBS_FIELDS: tuple[ObsField, ...] = tuple(f for fields in GROUPS.values() for f in fields)
OBS_DIM = len(OBS_FIELDS)
OBS_INDEX: dict[str, int] = {f.name: i for i, f in enumerate(OBS_FIELDS)}
GROUP_SLICES: dict[str, slice] = {}
_start = 0
for _name, _group in GROUPS.items():
    GROUP_SLICES[_name] = slice(_start, _start + len(_group))
    _start += len(_group)
LIDAR_SLICE = GROUP_SLICES["lidar"]
OBS_LOW = np.array([f.low for f in OBS_FIELDS], dtype=np.float32)
OBS_HIGH = np.array([f.high for f in OBS_FIELDS], dtype=np.float32)
#: What a policy sees: every field outside the world-frame pose group, in table order.
POLICY_FIELDS: tuple[str, ...] = tuple(f.name for g in POLICY_GROUPS for f in GROUPS[g])

#: `achieved_goal` is the car centre (x, y) in metres, `desired_goal` the goal centre (x, y) in metres, world frame.
GOAL_FIELDS = ("x", "y")

#: Action vector, in order. Both in [-1, 1].
ACTION_FIELDS = (
    ObsField("steer", "1", -1.0, 1.0,
             f"+1 = full left (counter-clockwise), hinge angle = steer * {MAX_STEER_RAD} rad"),
    ObsField("throttle", "1", -1.0, 1.0,
             f"target rear-wheel speed = throttle * {MAX_WHEEL_SPEED} rad/s; 0 brakes, < 0 reverses"),
)
ACTION_DIM = len(ACTION_FIELDS)


def assemble(**groups) -> np.ndarray:
    """The `observation` vector from one array-like per group (keyword = group name), checked against the table."""
    if set(groups) != set(GROUPS):
        raise ValueError(f"observation needs groups {list(GROUPS)}, got {sorted(groups)}")
    obs = np.empty(OBS_DIM, dtype=np.float32)
    for name, sl in GROUP_SLICES.items():
        values = np.asarray(groups[name], dtype=np.float32).reshape(-1)
        if values.shape[0] != sl.stop - sl.start:
            raise ValueError(f"observation group {name!r} has {values.shape[0]} values, the table says "
                             f"{sl.stop - sl.start}")
        obs[sl] = values
    return obs


def field(obs: np.ndarray, name: str) -> np.ndarray:
    """Column `name` of an `observation` array of shape (..., OBS_DIM)."""
    return obs[..., OBS_INDEX[name]]


def group(obs: np.ndarray, name: str) -> np.ndarray:
    """The columns of group `name` of an `observation` array of shape (..., OBS_DIM)."""
    return obs[..., GROUP_SLICES[name]]


def observation_space():
    """The env's observation space, from this table alone (datasets describe their spaces without a physics world)."""
    from gymnasium import spaces
    plane = spaces.Box(-np.inf, np.inf, (len(GOAL_FIELDS),), np.float32)
    return spaces.Dict({"observation": spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32),
                        "achieved_goal": plane, "desired_goal": plane})


def action_space():
    from gymnasium import spaces
    return spaces.Box(np.array([f.low for f in ACTION_FIELDS], np.float32),
                      np.array([f.high for f in ACTION_FIELDS], np.float32), dtype=np.float32)


def _layout_id() -> str:
    described = {
        "observation": [[f.name, f.unit, f.low, f.high, f.group] for f in OBS_FIELDS],
        "goal_fields": list(GOAL_FIELDS),
        "action": [[f.name, f.unit, f.low, f.high] for f in ACTION_FIELDS],
        "constants": {"physics_dt": PHYSICS_DT, "substeps": SUBSTEPS, "max_steer_rad": MAX_STEER_RAD,
                      "max_wheel_speed": MAX_WHEEL_SPEED, "drive": DRIVE, "car_center_offset": CAR_CENTER_OFFSET,
                      "lidar_angles": np.round(LIDAR_ANGLES, 9).tolist(), "lidar_range": LIDAR_RANGE,
                      "lidar_height": LIDAR_HEIGHT, "route_distances": list(ROUTE_DISTANCES),
                      "goal_range": GOAL_RANGE},
    }
    text = json.dumps(described, sort_keys=True, allow_nan=True)
    return "obs-" + hashlib.sha1(text.encode()).hexdigest()[:10]


#: Stored in every dataset and checkpoint; a mismatch means "recorded with a different observation layout".
OBS_LAYOUT_ID = _layout_id()


def describe() -> str:
    """The observation and action tables as text (`python -m racecar_env.spec`, the README)."""
    rows = [f"{'index':>5}  {'group':<7}{'name':<14} {'unit':<6} {'range':<16} meaning"]
    for i, f in enumerate(OBS_FIELDS):
        rows.append(f"{i:>5}  {f.group:<7}{f.name:<14} {f.unit:<6} {f'[{f.low:g}, {f.high:g}]':<16} {f.doc}")
    rows.append("action:")
    rows += [f"{i:>5}  {'':<7}{f.name:<14} {f.unit:<6} {f'[{f.low:g}, {f.high:g}]':<16} {f.doc}"
             for i, f in enumerate(ACTION_FIELDS)]
    rows.append(f"layout id {OBS_LAYOUT_ID}")
    return "\n".join(rows)

