"""Autopilot: pure pursuit on the track's centre-line with speed planning for corners. Works on any track file.

Skill levels make data of different quality, like the D4RL families:
  expert  clean, fast lines
  noisy   action noise plus a wandering lateral offset from the line: sloppy driving, some crashes
  mixed   each episode is expert or noisy with equal probability (the episode records which)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from racecar_env import spec
from racecar_env.physics import CENTER_OFFSET
from racecar_env.tracks import Centerline, Track, load_track

WHEELBASE = 0.325          # m, racecar.urdf rear to front axle
TOP_SPEED = 2.5            # m/s at throttle 1 (50 rad/s wheel speed)
SKILLS = ("expert", "noisy", "mixed")


@dataclass(frozen=True)
class AutopilotConfig:
    lookahead: float = 0.7          # m, pure-pursuit look-ahead at standstill
    lookahead_per_speed: float = 0.25   # s: look further when faster
    v_max: float = 2.5              # m/s on straights
    v_corner: float = 1.3           # m/s through a 90-degree corner
    decel: float = 2.5              # m/s^2 planned braking
    steer_noise: float = 0.0        # std of Gaussian noise added to steer
    throttle_noise: float = 0.0     # std of Gaussian noise added to throttle
    wander: float = 0.0             # m, amplitude of a slowly varying lateral offset from the centre-line


SKILL_CONFIGS = {
    "expert": AutopilotConfig(),
    "noisy": AutopilotConfig(steer_noise=0.35, throttle_noise=0.2, wander=0.45, v_corner=1.6),
}


class Autopilot:
    """A Driver (see teleop.drivers) that needs no human and no screen."""
    name = "autopilot"

    def __init__(self, track: "str | Track" = "s_curve", skill: str = "expert", seed: int | None = 0):
        if skill not in SKILLS:
            raise ValueError(f"skill must be one of {', '.join(SKILLS)}, got {skill!r}")
        self.track = load_track(track)
        self.skill = skill
        self.line = Centerline(self.track.centerline)
        self.rng = np.random.default_rng(seed)
        self._corners = self._corner_table()
        self.episode_skill = skill if skill != "mixed" else "expert"
        self.cfg = SKILL_CONFIGS[self.episode_skill]
        self._wander_phase = 0.0

    def _corner_table(self) -> list[tuple[float, float]]:
        """(arc length, |turn angle| in rad) of every interior centre-line vertex."""
        pts, out = self.line.points, []
        for i in range(1, len(pts) - 1):
            a = math.atan2(*(pts[i] - pts[i - 1])[::-1])
            b = math.atan2(*(pts[i + 1] - pts[i])[::-1])
            turn = abs((b - a + math.pi) % (2 * math.pi) - math.pi)
            out.append((float(self.line.cum[i]), turn))
        return out

    def reset(self, obs: dict, info: dict, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.episode_skill = self.skill if self.skill != "mixed" else str(self.rng.choice(["expert", "noisy"]))
        self.cfg = SKILL_CONFIGS[self.episode_skill]
        self._wander_phase = float(self.rng.uniform(0, 2 * math.pi))

    def provenance(self) -> dict:
        c = self.cfg
        return {"driver": self.name, "skill": self.episode_skill, "noise": float(c.steer_noise),
                "wander": float(c.wander)}

    def target_speed(self, s: float) -> float:
        """Fastest speed at arc length s that can still brake to each corner's speed ahead."""
        c = self.cfg
        v = c.v_max
        for s_corner, turn in self._corners:
            d = s_corner - s
            if d < -0.6:   # corner behind us (with a margin to finish the turn)
                continue
            v_c = c.v_corner * math.sqrt(math.pi / 2 / max(turn, 1e-3)) if turn > 0.05 else c.v_max
            v = min(v, math.sqrt(v_c ** 2 + 2 * c.decel * max(d, 0.0)))
        return min(v, c.v_max)

    def act(self, obs: dict) -> np.ndarray:
        o = obs["observation"]
        x, y = float(spec.field(o, "x")), float(spec.field(o, "y"))
        yaw = math.atan2(float(spec.field(o, "sin_yaw")), float(spec.field(o, "cos_yaw")))
        speed = float(spec.field(o, "v_forward"))
        gx, gy = (float(v) for v in obs["desired_goal"])
        c = self.cfg

        s = self.line.project(x, y)
        look = c.lookahead + c.lookahead_per_speed * max(speed, 0.0)
        tx, ty, heading = self.line.point_at(s + look)
        if c.wander:
            off = c.wander * math.sin(0.6 * s + self._wander_phase)
            tx, ty = tx - off * math.sin(heading), ty + off * math.cos(heading)
        s_goal = self.line.project(gx, gy)
        if s + look >= s_goal or math.hypot(gx - x, gy - y) < look:
            tx, ty = gx, gy  # the goal is within reach: aim straight at it
        # pure pursuit from the rear axle: curvature = 2 sin(alpha) / distance
        rx, ry = x - CENTER_OFFSET * math.cos(yaw), y - CENTER_OFFSET * math.sin(yaw)
        alpha = math.atan2(ty - ry, tx - rx) - yaw
        dist = max(math.hypot(tx - rx, ty - ry), 1e-3)
        steer_angle = math.atan(2 * WHEELBASE * math.sin(alpha) / dist)
        steer = steer_angle / spec.MAX_STEER_RAD
        throttle = self.target_speed(s) / TOP_SPEED
        if c.steer_noise or c.throttle_noise:
            steer += self.rng.normal(0, c.steer_noise)
            throttle += self.rng.normal(0, c.throttle_noise)
        return np.clip(np.array([steer, throttle], dtype=np.float32), -1.0, 1.0)


def main(argv: list[str] | None = None) -> None:
    """How well the autopilot drives a track: `python -m teleop.autopilot --track hairpin --episodes 100`."""
    import argparse

    from tqdm import tqdm

    from racecar_env import RaceCarEnv
    from racecar_env.rollout import run_episode

    ap = argparse.ArgumentParser(prog="python -m teleop.autopilot", description=main.__doc__)
    ap.add_argument("--track", default="s_curve", help="track name or .json path (default s_curve)")
    ap.add_argument("--skill", default="expert", choices=SKILLS, help="driving skill (default expert)")
    ap.add_argument("--episodes", type=int, default=100, help="episodes, env seeds 0..N-1 (default 100)")
    args = ap.parse_args(argv)
    env = RaceCarEnv(args.track)
    driver = Autopilot(env.track, args.skill, seed=0)
    episodes = [run_episode(env, driver, seed) for seed in tqdm(range(args.episodes), unit="ep", desc=args.skill)]
    wins = [e.steps * spec.CONTROL_DT for e in episodes if e.success]
    crashes = sum(e.outcome == "crash" for e in episodes)
    ttg = f"{np.mean(wins):.2f} s" if wins else "-"
    print(f"autopilot {args.skill} on {env.track.name}: success {len(wins) / len(episodes):.0%}, "
          f"crash {crashes / len(episodes):.0%}, mean time-to-goal {ttg} ({len(episodes)} episodes)")


if __name__ == "__main__":
    main()
