"""The pybullet world of one env: ground, static walls, the racecar. Owns its own physics client.

Measured facts this relies on (DESIGN.md): 1/240 s physics with 12 substeps per action (20 Hz control); walls static
(mass 0) so they never drift; contacts checked after every substep so a fast car cannot pass through a corner
between checks. Only the rear wheels are driven, as pybullet's own racecar example does: driving the steered front
wheels too makes the car scrub and understeer.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys

import numpy as np


@contextlib.contextmanager
def _silenced(stream):
    """Silence C-level output to `stream`'s file descriptor for the duration (pybullet prints from C)."""
    try:
        fd = stream.fileno()
    except (AttributeError, ValueError, OSError):  # no real file behind it (e.g. captured): nothing to silence
        yield
        return
    stream.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


with _silenced(sys.stderr):  # "pybullet build time: ..." on every import would clutter every CLI's output
    import pybullet as pb
import pybullet_data  # noqa: E402
from pybullet_utils.bullet_client import BulletClient  # noqa: E402

from . import spec  # noqa: E402
from .tracks import Track  # noqa: E402

# Joint indices of racecar/racecar.urdf, checked against getJointInfo at load time.
_JOINTS = {"left_rear_wheel_joint": 2, "right_rear_wheel_joint": 3, "left_steering_hinge_joint": 4,
           "left_front_wheel_joint": 5, "right_steering_hinge_joint": 6, "right_front_wheel_joint": 7}
DRIVE_WHEELS = (2, 3) if spec.DRIVE["driven_wheels"] == "rear" else (2, 3, 5, 7)
STEER_HINGES = (4, 6)
WHEEL_FORCE = spec.DRIVE["wheel_force"]   # N*m motor limit of each driven wheel
STEER_FORCE = spec.DRIVE["steer_force"]   # hinge position-control force limit
CENTER_OFFSET = spec.CAR_CENTER_OFFSET    # m from the URDF base (rear axle) forward to the car centre
CAR_LENGTH, CAR_WIDTH = 0.52, 0.30   # m, footprint used for drawing
FLIP_LIMIT = 0.7             # rad of roll or pitch counted as a crash
# shapes per create*ShapeArray call: pybullet keeps only the first 16 of a collision array (silently: the rest were
# walls the car drove through and the lidar never saw) and crashes above 16 visual shapes with colours
WALL_CHUNK = 16


class _Client(BulletClient):
    """BulletClient whose destructor survives a constructor cut short: a Ctrl-C during `connect` left the stock one
    without `_client`, and its `__del__` then printed an AttributeError traceback on the way out."""

    def __init__(self, **kwargs):
        self._client = -1
        super().__init__(**kwargs)


def _sky(height: int) -> np.ndarray:
    """(height, 3) uint8 colour per image row: pale at the horizon, deeper blue at the top."""
    t = np.linspace(0.0, 1.0, height)[:, None] ** 0.7
    top, horizon = np.array([70, 120, 190]), np.array([200, 220, 240])
    return (top + (horizon - top) * t).astype(np.uint8)


class CarSim:
    """Physics of one car on one track. All pybullet calls of the project go through instances of this class."""

    def __init__(self, track: Track):
        self.track = track
        with _silenced(sys.stdout):  # pybullet prints "argv[0]=" on every connect; it would break progress bars
            self.p = _Client(connection_mode=pb.DIRECT)
        p = self.p
        p.setAdditionalSearchPath(pybullet_data.getDataPath())
        p.setPhysicsEngineParameter(deterministicOverlappingPairs=1)
        p.setGravity(0, 0, -9.81)
        p.setTimeStep(spec.PHYSICS_DT)
        self.ground = p.loadURDF("plane.urdf")
        self.car = p.loadURDF("racecar/racecar.urdf", [0, 0, 0.05])
        for name, idx in _JOINTS.items():
            actual = p.getJointInfo(self.car, idx)[1].decode()
            if actual != name:
                raise RuntimeError(f"racecar.urdf joint {idx} is '{actual}', expected '{name}'")
        for j in range(p.getNumJoints(self.car)):  # release the default velocity motors
            p.setJointMotorControl2(self.car, j, pb.VELOCITY_CONTROL, targetVelocity=0, force=0)
        for j in STEER_HINGES:  # hold the hinges straight while settling (free hinges flop to ~0.16 rad)
            p.setJointMotorControl2(self.car, j, pb.POSITION_CONTROL, targetPosition=0, force=STEER_FORCE)
        for _ in range(240):  # settle on the ground once; every reset restores this settled state
            p.stepSimulation()
        self._rest_z = p.getBasePositionAndOrientation(self.car)[0][2]
        self._settled = p.saveState()   # the car at rest, no walls: every track starts from this
        self.walls: tuple[int, ...] = ()   # static wall bodies, one per WALL_CHUNK walls
        self._saved = -1
        self.track = None
        self.set_track(track)
        self._ray_angles = spec.LIDAR_ANGLES
        self._ray_from = np.zeros((spec.LIDAR_RAYS, 3))
        self._ray_to = np.zeros((spec.LIDAR_RAYS, 3))
        self._ray_from[:, 2] = spec.LIDAR_HEIGHT
        self._ray_to[:, 2] = spec.LIDAR_HEIGHT

    def set_track(self, track: Track) -> None:
        """Swap the walls for `track`'s (~3 ms; a new world would cost ~150 ms). The world then holds exactly what a
        fresh CarSim(track) holds, from the same settled snapshot, so an episode does not depend on earlier tracks."""
        if self.track is not None and track.track_id == self.track.track_id:
            return
        p = self.p
        # remove every wall body first (a state saved with 2 bodies cannot be restored into a world of more); the
        # shapes stay: pybullet refuses removeCollisionShape for a shape a removed body used (~30 KB per swap)
        if self.walls:
            p.removeState(self._saved)
        for i in reversed(range(p.getNumBodies())):
            body = p.getBodyUniqueId(i)
            if body not in (self.ground, self.car):
                p.removeBody(body)
        p.restoreState(self._settled)
        self.walls = self._build_walls(track)
        self._saved = p.saveState()
        self.track = track

    def _build_walls(self, track: Track) -> tuple[int, ...]:
        p, t, h = self.p, track.wall_thickness, track.wall_height
        half, pos, orn = [], [], []
        for x1, y1, x2, y2 in track.walls:
            length = math.hypot(x2 - x1, y2 - y1)
            # extend each box by half the thickness at both ends so corners close without gaps
            half.append([length / 2 + t / 2, t / 2, h / 2])
            pos.append([(x1 + x2) / 2, (y1 + y2) / 2, h / 2])
            orn.append(p.getQuaternionFromEuler([0, 0, math.atan2(y2 - y1, x2 - x1)]))
        # one static body per WALL_CHUNK walls (a track of up to 16 walls is one body, as before)
        bodies = []
        for k in range(0, len(half), WALL_CHUNK):
            sl = slice(k, k + WALL_CHUNK)
            m = len(half[sl])
            col = p.createCollisionShapeArray([pb.GEOM_BOX] * m, halfExtents=half[sl], collisionFramePositions=pos[sl],
                                              collisionFrameOrientations=orn[sl])
            vis = p.createVisualShapeArray([pb.GEOM_BOX] * m, halfExtents=half[sl], visualFramePositions=pos[sl],
                                           visualFrameOrientations=orn[sl], rgbaColors=[[0.75, 0.75, 0.78, 1]] * m)
            bodies.append(p.createMultiBody(baseMass=0, baseCollisionShapeIndex=col, baseVisualShapeIndex=vis))
        return tuple(bodies)

    # --- state ----------------------------------------------------------------------------------------------------
    def place(self, x: float, y: float, yaw: float) -> None:
        """Put the car at rest with its centre at (x, y), heading yaw. Restores the settled snapshot first so no
        contact cache or motor state of an earlier episode leaks into this one (bitwise determinism)."""
        p = self.p
        p.restoreState(self._saved)
        bx, by = x - CENTER_OFFSET * math.cos(yaw), y - CENTER_OFFSET * math.sin(yaw)
        p.resetBasePositionAndOrientation(self.car, [bx, by, self._rest_z], p.getQuaternionFromEuler([0, 0, yaw]))
        p.resetBaseVelocity(self.car, [0, 0, 0], [0, 0, 0])

    def touches_wall(self, margin: float = 0.0) -> bool:
        return any(self.p.getClosestPoints(self.car, w, margin) for w in self.walls)

    def step(self, steer: float, throttle: float) -> bool:
        """Apply one action for SUBSTEPS physics steps. Returns True (and stops early) on wall contact."""
        p, car = self.p, self.car
        angle = steer * spec.MAX_STEER_RAD
        speed = throttle * spec.MAX_WHEEL_SPEED
        for j in STEER_HINGES:
            p.setJointMotorControl2(car, j, pb.POSITION_CONTROL, targetPosition=angle, force=STEER_FORCE)
        for j in DRIVE_WHEELS:
            p.setJointMotorControl2(car, j, pb.VELOCITY_CONTROL, targetVelocity=speed, force=WHEEL_FORCE)
        walls = self.walls
        for _ in range(spec.SUBSTEPS):
            p.stepSimulation()
            for w in walls:
                if p.getContactPoints(car, w):
                    return True
        return False

    def car_state(self) -> tuple[float, ...]:
        """(x, y, yaw, v_forward, v_left, yaw_rate, steer_angle, roll, pitch) of the car centre."""
        p, car = self.p, self.car
        (bx, by, _), q = p.getBasePositionAndOrientation(car)
        roll, pitch, yaw = p.getEulerFromQuaternion(q)
        (vx, vy, _), (_, _, wz) = p.getBaseVelocity(car)
        c, s = math.cos(yaw), math.sin(yaw)
        x, y = bx + CENTER_OFFSET * c, by + CENTER_OFFSET * s
        # velocity of the centre = base velocity + w x r
        vx, vy = vx - wz * CENTER_OFFSET * s, vy + wz * CENTER_OFFSET * c
        steer = 0.5 * (p.getJointState(car, STEER_HINGES[0])[0] + p.getJointState(car, STEER_HINGES[1])[0])
        return x, y, yaw, vx * c + vy * s, -vx * s + vy * c, wz, steer, roll, pitch

    def lidar(self, x: float, y: float, yaw: float) -> np.ndarray:
        """Distances (m) from the car centre to the nearest wall along each lidar ray, capped at LIDAR_RANGE."""
        ang = self._ray_angles + yaw
        self._ray_from[:, 0] = x
        self._ray_from[:, 1] = y
        self._ray_to[:, 0] = x + spec.LIDAR_RANGE * np.cos(ang)
        self._ray_to[:, 1] = y + spec.LIDAR_RANGE * np.sin(ang)
        hits = self.p.rayTestBatch(self._ray_from, self._ray_to)
        return np.fromiter((h[2] for h in hits), dtype=np.float64, count=spec.LIDAR_RAYS) * spec.LIDAR_RANGE

    def show_pose(self, x: float, y: float, yaw: float, steer_angle: float) -> None:
        """Put the car at a recorded pose with its front wheels at `steer_angle` (rad), for drawing only."""
        self.place(x, y, yaw)
        for j in STEER_HINGES:
            self.p.resetJointState(self.car, j, steer_angle)

    def chase_image(self, x: float, y: float, yaw: float, width: int, height: int, *, distance: float = 1.0,
                    height_m: float = 0.75, fov: float = 70.0, max_render_width: int = 400) -> np.ndarray:
        """RGB (height, width, 3) from a camera `distance` m behind and `height_m` m above the car, looking down past
        it at the corridor ahead: the car fills the lower middle and the next corner is in view over the walls.
        Ground further than 12 m is not drawn (sky instead): a far checkerboard only shimmers in a video.

        pybullet's tiny renderer costs ~0.4 us a pixel, so the image is rendered at most `max_render_width` wide
        (~50 ms at 400x300) and scaled up to the requested size (bilinear; the car stays sharp enough)."""
        p = self.p
        c, s = math.cos(yaw), math.sin(yaw)
        eye = [x - distance * c, y - distance * s, height_m]
        target = [x + 1.8 * c, y + 1.8 * s, -0.25]
        rw = min(width, max_render_width)
        rh = max(2, int(round(height * rw / width)))
        view = p.computeViewMatrix(eye, target, [0, 0, 1])
        proj = p.computeProjectionMatrixFOV(fov=fov, aspect=rw / rh, nearVal=0.05, farVal=12.0)
        _, _, rgba, _, seg = p.getCameraImage(rw, rh, view, proj, renderer=pb.ER_TINY_RENDERER)
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(rh, rw, 4)[:, :, :3].copy()
        sky = np.asarray(seg).reshape(rh, rw) < 0   # nothing hit: paint a sky instead of blank white
        rgb[sky] = _sky(rh)[np.nonzero(sky)[0]]
        if (rw, rh) != (width, height):
            from PIL import Image
            rgb = np.asarray(Image.fromarray(rgb).resize((width, height), Image.BILINEAR))
        return rgb

    def close(self) -> None:
        if self.p is not None:
            self.p.disconnect()
            self.p = None
