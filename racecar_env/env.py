"""RaceCarEnv: drive a pybullet racecar from the start pose to the goal of a walled track.

Observation (gymnasium-robotics goal convention; every field in the one table, `racecar_env.spec`):
    observation    float32 (OBS_DIM,)  pose | motion | lidar | route ahead | goal in the car frame (spec.describe())
    achieved_goal  float32 (2,)        car centre x, y (m, world frame)
    desired_goal   float32 (2,)        goal centre x, y (m, world frame)
Action: float32 (2,) = (steer, throttle) in [-1, 1]; steer +1 = full left, throttle < 0 reverses.
Reward per step (RewardConfig): progress_weight * metres gained along the centre-line (if dense) - step_cost;
    + goal_bonus and terminated on reaching the goal; - crash_penalty and terminated on wall contact or a flip.
    Running out of time is `truncated`, never `terminated`.
Tracks: one fixed track, or a generated one per reset (`track="random"`), see racecar_env.tracks.source.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

import gymnasium as gym
import numpy as np

from . import spec
from .physics import FLIP_LIMIT, CarSim
from .render import Hud, TopDown
from .tracks import Centerline, Goal, Track, TrackError
from .tracks.model import GROUND_HALF_EXTENT, line_blocked, wall_boxes
from .tracks.source import TrackSource, track_source

DEFAULT_MAX_STEPS = spec.DEFAULT_MAX_STEPS
WHEEL_RADIUS = 0.05   # m, racecar.urdf's wheel cylinders
#: m/s no car drives faster: full wheel speed x wheel radius (2.5 m/s), plus 10% as the car measurably peaks at
#: ~2.64 m/s (pybullet's collision margin rolls the wheels a little larger). A bound, never a typical speed.
TOP_SPEED = 1.1 * spec.MAX_WHEEL_SPEED * WHEEL_RADIUS
RESET_OPTIONS = ("start", "start_jitter", "goal", "track")
_MAX_FRAME_SIDE = 8192   # px: a render_size side beyond is a typo (a 8192 x 8192 frame is already 200 MB)
_MAX_JITTER = np.finfo(np.float64).max / 2   # uniform(-j, j) overflows (OverflowError from numpy) beyond this


@dataclass(frozen=True)
class RewardConfig:
    dense: bool = True             # progress reward along the centre-line; False = sparse (bonus/penalty/step cost)
    progress_weight: float = 1.0   # reward per metre of centre-line progress
    step_cost: float = 0.01        # paid every step: finishing sooner is better
    goal_bonus: float = 10.0
    crash_penalty: float = 10.0


class RaceCarEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": int(round(1 / spec.CONTROL_DT))}

    def __init__(self, track: "str | dict | Track | TrackSource" = "s_curve", render_mode: str | None = None, *,
                 reward: RewardConfig | None = None, dense_reward: bool | None = None,
                 start_jitter: tuple[float, float] = spec.START_JITTER, goal_mode: str = "fixed",
                 max_episode_steps: int | None = DEFAULT_MAX_STEPS, view: str = "topdown", trail_length: int = 400,
                 render_size: tuple[int, int] | None = None):
        """
        track: a shipped track name (racecar_env.shipped_tracks()), a path to a track JSON file, the JSON content
            (dict), a Track, "gen:SEED" (one generated track), or "random" / "random:test" (a generated track per
            reset from the training / test seed range, drawn from the reset seed).
        render_mode: None, "rgb_array" (returns frames) or "human" (pygame window).
        reward / dense_reward: reward settings; dense_reward=False switches off the progress term.
        start_jitter: (metres, radians) uniform jitter of the start pose at reset; (0, 0) for an exact start.
        goal_mode: "fixed" (the track's goal) or "sampled" (a goal drawn along the centre-line at each reset).
        max_episode_steps: steps before `truncated`; None = no limit of the env's own. `gym.make` registers None
            and enforces its own `max_episode_steps` (default 1200) with a TimeLimit wrapper, so
            `gym.make("RaceCar-v0", max_episode_steps=1500)` really allows 1500 steps.
        view: "topdown", "chase" (pybullet camera behind the car) or "both" (stacked) for rgb_array frames.
        render_size: (w, h) of top-down frames, every track fitted in it (a window that shows a new track each
            episode); default: each track at 40 px/m.
        """
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if goal_mode not in ("fixed", "sampled"):
            raise ValueError(f"goal_mode must be 'fixed' or 'sampled', got {goal_mode!r}")
        if view not in ("topdown", "chase", "both"):
            raise ValueError(f"view must be 'topdown', 'chase' or 'both', got {view!r}")
        try:
            jitter = np.asarray(start_jitter, dtype=np.float64)
        except (TypeError, ValueError):
            jitter = np.full(1, np.nan)
        if jitter.shape != (2,) or not np.all((jitter >= 0) & (jitter <= _MAX_JITTER)):
            raise ValueError(f"start_jitter must be (metres, radians) >= 0, got {start_jitter!r}")
        if render_size is not None and not (
                isinstance(render_size, (tuple, list)) and len(render_size) == 2
                and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 2 <= v <= _MAX_FRAME_SIDE
                        for v in render_size)):
            # (1, 1) rounded to an empty frame (NaN scale deep in the drawing), (1e5, 1e5) asked for a 30 GB frame
            raise ValueError(f"render_size must be (width, height) in pixels, integers 2..{_MAX_FRAME_SIDE}, "
                             f"got {render_size!r}")
        if max_episode_steps is not None and (isinstance(max_episode_steps, bool) or not isinstance(
                max_episode_steps, (int, np.integer)) or max_episode_steps < 1):
            raise ValueError(f"max_episode_steps must be an integer >= 1 or None, got {max_episode_steps!r}")
        # checked here, before the physics world exists: a bad reward failed at the first step, dense_reward="no"
        # turned the progress reward on, a bad trail_length left a built world behind
        if reward is not None and not isinstance(reward, RewardConfig):
            raise ValueError(f"reward must be a RewardConfig, got {reward!r}")
        if dense_reward is not None and not isinstance(dense_reward, (bool, np.bool_)):
            raise ValueError(f"dense_reward must be True, False or None, got {dense_reward!r}")
        if isinstance(trail_length, bool) or not isinstance(trail_length, (int, np.integer)) or trail_length < 0:
            raise ValueError(f"trail_length must be an integer >= 0, got {trail_length!r}")
        self.track_source = track_source(track)
        self.reward_config = reward or RewardConfig()
        if dense_reward is not None:
            self.reward_config = replace(self.reward_config, dense=bool(dense_reward))
        self.start_jitter = (float(jitter[0]), float(jitter[1]))
        self.goal_mode = goal_mode
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        self.render_mode = render_mode
        self.view = view
        self.render_size = None if render_size is None else (int(render_size[0]) // 2 * 2, int(render_size[1]) // 2 * 2)
        self.observation_space = spec.observation_space()
        self.action_space = spec.action_space()

        first = self.track_source.draw(np.random.default_rng(0))   # drawable before reset()
        self._centerline_of = None   # the track_id whose centre-line and wall boxes are built (_set_route)
        self._set_route(first)   # checked before the physics world exists: nothing to clean up
        self.sim = CarSim(first)
        self._set_track(first)
        self._steps = 0
        self._done = True
        self._closed = False
        self._topdown: TopDown | None = None
        self._window = None
        self._trail: deque[tuple[float, float]] = deque(maxlen=int(trail_length))  # recent positions, drawn
        self._episode_return = 0.0
        self._s = 0.0
        self.sim.place(first.start.x, first.start.y, first.start.yaw)

    # --- gymnasium API --------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Returns (obs, info); the reset info also carries "track", the Track this episode runs on.

        options (all optional): {"track": any `track` argument} runs this episode on that track; {"start": {"x",
        "y", "yaw"}} an explicit start pose without jitter (missing keys keep the track's start); {"start_jitter":
        (m, rad)} overrides the jitter for this reset; {"goal": {"x", "y"[, "radius"]}} an explicit goal."""
        self._check_open()
        self._done = True   # a reset that fails below leaves no episode to step on (its car, goal, track half-set)
        if seed is not None:
            # numpy integers are seeds too (np.arange(...) of seeds); gymnasium refuses them, and negative ones, deep
            # in its seeding code with an error that is not a ValueError
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
                raise ValueError(f"reset seed must be an integer >= 0 or None, got {seed!r}")
            seed = int(seed)
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"reset options must be a dict (keys {', '.join(RESET_OPTIONS)}) or None, got {options!r}")
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(f"reset options {unknown} are not known; valid keys: {', '.join(RESET_OPTIONS)}")
        if "track" in options:
            track = track_source(options["track"]).draw(self.np_random)
        else:
            track = self.track_source.draw(self.np_random)
        self._set_track(track)
        self.goal = self._choose_goal(options)
        self._goal_s = max(self.centerline.project(self.goal.x, self.goal.y), 1e-6)
        x, y, yaw = self._choose_start(options)
        self.sim.place(x, y, yaw)
        self._steps = 0
        self._done = False
        self._episode_return = 0.0
        state = self.sim.car_state()
        self._s = self.centerline.project(state[0], state[1])
        self._trail.clear()
        self._trail.append((state[0], state[1]))
        obs, info = self._observe(state), self._info(state, False, False)
        info["track"] = self.track   # the episode's track, for drivers that plan on it (the autopilot)
        if self.render_mode == "human":
            self.render()
        return obs, info

    def step(self, action):
        self._check_open()
        if self._done:
            raise RuntimeError("step() called on a finished episode: call reset() first")
        steer, throttle = self._check_action(action)
        collided = self.sim.step(steer, throttle)
        self._steps += 1
        state = self.sim.car_state()
        x, y = state[0], state[1]
        crashed = collided or abs(state[7]) > FLIP_LIMIT or abs(state[8]) > FLIP_LIMIT
        dist = math.hypot(x - self.goal.x, y - self.goal.y)
        success = (not crashed) and dist < self.goal.radius

        cfg = self.reward_config
        s = self.centerline.project(x, y)
        reward = -cfg.step_cost
        if cfg.dense:
            reward += cfg.progress_weight * (s - self._s)
        self._s = s
        if success:
            reward += cfg.goal_bonus
        if crashed:
            reward -= cfg.crash_penalty
        terminated = success or crashed
        truncated = (not terminated) and self.max_episode_steps is not None and self._steps >= self.max_episode_steps
        self._done = terminated or truncated
        self._episode_return += reward
        self._trail.append((x, y))
        obs, info = self._observe(state), self._info(state, success, crashed)
        if self.render_mode == "human":
            self.render()
        return obs, float(reward), terminated, truncated, info

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or 'human'")
            return None
        frame = self.render_frame(self.view if self.render_mode == "rgb_array" else "topdown")
        if self.render_mode == "human":
            self._show(frame)
            return None
        return frame

    def close(self):
        if self._window is not None:
            import pygame
            pygame.display.quit()
            self._window = None
        self.sim.close()
        self._closed = True

    def __getstate__(self):
        # a copy would share this env's pybullet client (and close it when collected): refuse instead
        raise TypeError("a RaceCarEnv cannot be pickled or copied (it owns a pybullet client): build another with the "
                        "same arguments (vector envs and EnvPool take the arguments or a factory)")

    # --- helpers --------------------------------------------------------------------------------------------------
    @property
    def elapsed_steps(self) -> int:
        """Env steps taken in this episode (the recorder's tests use it to prove pause stops physics)."""
        return self._steps

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this RaceCarEnv is closed: make a new one")

    def _set_route(self, track: Track) -> None:
        """The centre-line and wall boxes of `track`, built (and checked against the time limit) once per track."""
        if self._centerline_of == track.track_id:
            return
        centerline = Centerline(track.centerline)
        self._check_time_limit(track, centerline.length)
        self.centerline, self._centerline_of, self._wall_boxes = centerline, track.track_id, wall_boxes(track)

    def _check_time_limit(self, track: Track, length: float) -> None:
        """Raise TrackError (one line) if `track`'s centre-line (`length` m) is longer than the car can drive at
        TOP_SPEED within the time limit: every episode would time out. A limit set below the default is taken as
        deliberate (short truncated episodes for tests, quick demos): then the track need only fit the default limit.
        With no limit of the env's own (None: gym.make's TimeLimit wrapper holds it, unseen here) there is nothing
        to check."""
        need = math.ceil(length / TOP_SPEED / spec.CONTROL_DT)
        if self.max_episode_steps is not None and need > max(self.max_episode_steps, DEFAULT_MAX_STEPS):
            where = track.source if track.source not in ("<dict>", "generated") else track.name
            limit = self.max_episode_steps
            raise TrackError(f"track {where}: its centre-line is {length:.1f} m long, which takes at least {need} "
                             f"steps ({need * spec.CONTROL_DT:.0f} s) even at the top speed {TOP_SPEED:g} m/s, but "
                             f"the time limit is {limit} steps ({limit * spec.CONTROL_DT:g} s): shorten the track or "
                             f"raise the time limit (max_episode_steps, e.g. teleop's --max-episode-steps)")

    def _set_track(self, track: Track) -> None:
        """Make `track` the current one (walls swapped only when it changes)."""
        self._set_route(track)   # first: a track that fails its check leaves the current one in place
        self.track = track
        self.sim.set_track(track)
        self.goal = track.goal
        self._goal_s = max(self.centerline.project(self.goal.x, self.goal.y), 1e-6)

    def _check_action(self, action) -> tuple[float, float]:
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"action must be 2 numbers (steer, throttle), got {action!r}") from None
        if a.shape != (2,):
            raise ValueError(f"action must have shape (2,) = (steer, throttle), got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"action must be finite, got {a.tolist()}")
        a = np.clip(a, -1.0, 1.0)  # the documented Box; out-of-range values saturate like a real actuator
        return float(a[0]), float(a[1])

    def _choose_goal(self, options: dict) -> Goal:
        if "goal" in options:
            g = _pose_option(options["goal"], "goal", ("x", "y", "radius"), {"radius": self.track.goal.radius})
            if g["radius"] <= 0:
                raise ValueError(f"reset option goal: radius must be > 0, got {g['radius']}")
            if max(abs(g["x"]), abs(g["y"])) > GROUND_HALF_EXTENT:   # unreachable, and 1e300 overflowed the projection
                raise ValueError(f"reset option goal ({g['x']:g}, {g['y']:g}) lies off the ground: x and y must be "
                                 f"within +-{GROUND_HALF_EXTENT:g} m")
            return Goal(g["x"], g["y"], g["radius"])
        if self.goal_mode == "sampled":
            s = self.np_random.uniform(0.3, 1.0) * self.centerline.length
            gx, gy, _ = self.centerline.point_at(s)
            return Goal(gx, gy, self.track.goal.radius)
        return self.track.goal

    def _choose_start(self, options: dict) -> tuple[float, float, float]:
        if "start" in options:
            s = self.track.start
            st = _pose_option(options["start"], "start", ("x", "y", "yaw"), {"x": s.x, "y": s.y, "yaw": s.yaw})
            x, y, yaw = st["x"], st["y"], st["yaw"]
            self._check_inside(x, y)
            self.sim.place(x, y, yaw)
            if self.sim.touches_wall(0.02):
                raise ValueError(f"reset option start=({x:.2f}, {y:.2f}, {yaw:.2f}) puts the car in a wall")
            px, py, _ = self.centerline.point_at(self.centerline.project(x, y))
            if line_blocked(self._wall_boxes, x, y, px, py):   # beyond a wall: the route would be out of reach
                raise ValueError(f"reset option start ({x:g}, {y:g}) lies outside the corridor of track "
                                 f"{self.track.name}: a wall separates it from the centre-line")
            return x, y, yaw
        try:
            dpos, dyaw = (float(v) for v in options.get("start_jitter", self.start_jitter))
        except (TypeError, ValueError):
            raise ValueError(f"reset option start_jitter must be (metres, radians), got "
                             f"{options['start_jitter']!r}") from None
        if not (0 <= dpos <= _MAX_JITTER and 0 <= dyaw <= _MAX_JITTER):
            raise ValueError(f"reset option start_jitter must be (metres, radians) >= 0, got ({dpos}, {dyaw})")
        s = self.track.start
        for _ in range(100):  # never spawn touching a wall, nor beyond one (outside the corridor): redraw the jitter
            x = s.x + self.np_random.uniform(-dpos, dpos)
            y = s.y + self.np_random.uniform(-dpos, dpos)
            yaw = s.yaw + self.np_random.uniform(-dyaw, dyaw)
            self.sim.place(x, y, yaw)
            if not self.sim.touches_wall(0.05) and not line_blocked(self._wall_boxes, s.x, s.y, x, y):
                return x, y, yaw
        raise ValueError(f"track {self.track.name}: no start pose within jitter {dpos} m clears the walls")

    def _check_inside(self, x: float, y: float) -> None:
        """Refuse a start option outside the walls' extent, as a track file's start is refused when it loads: off the
        track the car falls off the ground or the route is out of reach, and observations leave their space."""
        xmin, ymin, xmax, ymax = self.track.bounds
        if not (xmin <= x <= xmax and ymin <= y <= ymax):
            raise ValueError(f"reset option start ({x:g}, {y:g}) lies outside the walls of track {self.track.name} "
                             f"(they span x {xmin:g}..{xmax:g}, y {ymin:g}..{ymax:g})")

    def _observe(self, state) -> dict:
        x, y, yaw, vf, vl, wz, steer, _, _ = state
        c, s = math.cos(yaw), math.sin(yaw)
        route = self.centerline.points_at(self._s + _ROUTE_DISTANCES) - (x, y)
        gx, gy = self.goal.x - x, self.goal.y - y
        dist = math.hypot(gx, gy)
        cap = min(1.0, spec.GOAL_RANGE / dist) if dist > 0 else 1.0
        obs = spec.assemble(
            pose=(x, y, s, c),
            motion=(vf, vl, wz, steer),
            lidar=self.sim.lidar(x, y, yaw),
            route=np.stack([c * route[:, 0] + s * route[:, 1], -s * route[:, 0] + c * route[:, 1]], axis=1),
            goal=(cap * (c * gx + s * gy), cap * (-s * gx + c * gy), cap * dist),
        )
        return {"observation": obs, "achieved_goal": np.array([x, y], np.float32),
                "desired_goal": np.array([self.goal.x, self.goal.y], np.float32)}

    def _info(self, state, success: bool, collision: bool) -> dict:
        x, y = state[0], state[1]
        progress = 1.0 if success else min(max(self._s / self._goal_s, 0.0), 1.0)
        return {"is_success": bool(success), "collision": bool(collision), "progress": float(progress),
                "distance_to_goal": float(math.hypot(x - self.goal.x, y - self.goal.y))}

    def topdown(self) -> TopDown:
        """The top-down renderer of the current track (rebuilt when the track changes)."""
        if self._topdown is None or self._topdown.track.track_id != self.track.track_id:
            self._topdown = TopDown(self.track, size=self.render_size)
        return self._topdown

    def render_frame(self, view: str = "topdown", hud: Hud | None = None) -> np.ndarray:
        """A frame of the current state. The env's own HUD shows time, speed and progress unless `hud` is given."""
        self._check_open()
        x, y, yaw, vf, _, _, steer, _, _ = self.sim.car_state()
        frames = []
        if view in ("topdown", "both"):
            if hud is None:
                progress = min(max(self._s / self._goal_s, 0.0), 1.0)
                hud = Hud(lines=[f"t {self._steps * spec.CONTROL_DT:5.2f} s   v {vf:4.2f} m/s   "
                                 f"progress {progress:4.0%}   return {self._episode_return:6.2f}"])
            frames.append(self.topdown().draw(x, y, yaw, steer_angle=steer, goal=self.goal,
                                             trail=np.asarray(self._trail), hud=hud))
        if view in ("chase", "both"):
            width = frames[0].shape[1] if frames else 320
            height = (width * 3 // 4) // 2 * 2
            frames.append(self.sim.chase_image(x, y, yaw, width, height))
        return frames[0] if len(frames) == 1 else np.concatenate(frames, axis=0)

    def _show(self, frame: np.ndarray) -> None:
        import pygame
        if self._window is None:
            pygame.display.init()
            self._window = pygame.display.set_mode((frame.shape[1], frame.shape[0]))
            pygame.display.set_caption(f"RaceCar - {self.track.name}")
        pygame.event.pump()
        self._window.blit(pygame.surfarray.make_surface(frame.swapaxes(0, 1)), (0, 0))
        pygame.display.flip()


_ROUTE_DISTANCES = np.asarray(spec.ROUTE_DISTANCES, dtype=np.float64)


def _pose_option(value, name: str, keys: tuple[str, ...], defaults: dict) -> dict:
    """A reset option like {"x": 1.0, "y": 0.5}: known keys only, finite numbers, missing keys from `defaults`."""
    if not isinstance(value, dict):
        raise ValueError(f"reset option {name} must be a dict with keys {', '.join(keys)}, got {value!r}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise ValueError(f"reset option {name}: unknown keys {unknown}; valid keys: {', '.join(keys)}")
    out = {**defaults, **value}
    for k in keys:
        try:
            out[k] = float(out[k])
        except (TypeError, ValueError):
            raise ValueError(f"reset option {name}.{k} must be a number, got {out[k]!r}") from None
        if not math.isfinite(out[k]):
            raise ValueError(f"reset option {name}.{k} must be finite, got {out[k]!r}")
    return out
