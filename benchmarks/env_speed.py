"""Env step cost against bare physics of the same scene, measured in the same run.

    python benchmarks/env_speed.py [--steps 3000]

Baseline: the same motion on the env's own world (car, walls, ground): per action, the four motor commands and
SUBSTEPS x stepSimulation, with the car re-placed wherever the env run reset, so both runs simulate the same
contacts. Env: the
full `env.step` (action checks, motors, per-substep wall-contact checks, state, lidar, reward, progress). The last
line is `ratio R` = env step time / baseline time; the target is R <= 1.15. Trials alternate to spread machine noise.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from racecar_env import RaceCarEnv, cli, spec  # noqa: E402


def time_env(env: RaceCarEnv, actions: np.ndarray) -> tuple[float, set[int]]:
    """Seconds for all env steps, and the step indices after which the episode ended (and the env was reset)."""
    env.reset(seed=0)
    ends = set()
    t0 = time.perf_counter()
    for i, a in enumerate(actions):
        _, _, te, tr, _ = env.step(a)
        if te or tr:
            env.reset(seed=0)  # counted in, as a user pays it too
            ends.add(i)
    return time.perf_counter() - t0, ends


def time_bare(env: RaceCarEnv, actions: np.ndarray, ends: set[int]) -> float:
    import pybullet as pb

    from racecar_env.physics import DRIVE_WHEELS, STEER_HINGES
    env.reset(seed=0)
    sim, start = env.sim, env.sim.car_state()[:3]
    p, car = sim.p, sim.car
    t0 = time.perf_counter()
    for i, (steer, throttle) in enumerate(actions):
        for j in STEER_HINGES:
            p.setJointMotorControl2(car, j, pb.POSITION_CONTROL, targetPosition=steer * spec.MAX_STEER_RAD, force=50)
        for j in DRIVE_WHEELS:
            p.setJointMotorControl2(car, j, pb.VELOCITY_CONTROL, targetVelocity=throttle * spec.MAX_WHEEL_SPEED,
                                    force=20)
        for _ in range(spec.SUBSTEPS):
            p.stepSimulation()
        if i in ends:
            sim.place(*start)
    return time.perf_counter() - t0


def main() -> None:
    ap = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=cli.count, default=3000, help="env steps per trial (default 3000)")
    ap.add_argument("--trials", type=cli.count, default=5, help="alternating trials; the best of each is kept")
    args = ap.parse_args()
    env = RaceCarEnv()
    rng = np.random.default_rng(0)
    actions = np.stack([rng.uniform(-0.15, 0.15, args.steps), rng.uniform(0.2, 0.5, args.steps)], 1).astype(np.float32)
    env_t, bare_t = [], []
    for _ in range(args.trials):
        seconds, ends = time_env(env, actions)
        env_t.append(seconds)
        bare_t.append(time_bare(env, actions, ends))
    env_best, bare_best = min(env_t), min(bare_t)
    print(f"raw stepSimulation: {args.steps * spec.SUBSTEPS / bare_best:,.0f} physics steps/s "
          f"= {args.steps / bare_best:,.0f} bare actions/s ({bare_best / args.steps * 1e3:.3f} ms per {spec.SUBSTEPS} substeps)")
    print(f"env.step:           {args.steps / env_best:,.0f} env steps/s ({env_best / args.steps * 1e3:.3f} ms each, "
          f"{spec.LIDAR_RAYS} lidar rays, contact check every substep)")
    print(f"ratio {env_best / bare_best:.3f}")


if __name__ == "__main__":
    main()
