"""Evaluate a policy on seeded episodes: success rate, return, time-to-goal, crash rate, progress.

Episode i uses env seed `seed0 + i` with the env's default start jitter, so two policies (or two checkpoints) face
the same starts and their numbers compare directly. Any object with act(obs) works (a learn.Policy, the
Autopilot); a `reset(obs, info)` method, if present, is called at each episode start.

    python -m learn.evaluate runs/NAME/checkpoints/best.pt --episodes 50 [--video best.mp4] [--json out.json]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from racecar_env import spec
from racecar_env.env import RaceCarEnv
from racecar_env.files import write_json, write_mp4
from racecar_env.rollout import run_episode

DEFAULT_EVAL_SEED = 20_000  # = TrainConfig.test_seed: the seeds final results are reported on


@dataclass
class EpisodeResult:
    seed: int
    success: bool
    crash: bool
    steps: int
    ret: float
    progress: float


@dataclass
class EvalResult:
    episodes: list[EpisodeResult]
    frame: np.ndarray | None = field(default=None, repr=False)  # last top-down frame of episode 0 (with trail)

    @property
    def n(self) -> int:
        return len(self.episodes)

    @property
    def success_rate(self) -> float:
        return float(np.mean([e.success for e in self.episodes]))

    @property
    def crash_rate(self) -> float:
        return float(np.mean([e.crash for e in self.episodes]))

    @property
    def mean_return(self) -> float:
        return float(np.mean([e.ret for e in self.episodes]))

    @property
    def mean_progress(self) -> float:
        return float(np.mean([e.progress for e in self.episodes]))

    @property
    def mean_time_to_goal(self) -> float | None:
        """Seconds, over successful episodes only (None if none succeeded)."""
        t = [e.steps * spec.CONTROL_DT for e in self.episodes if e.success]
        return float(np.mean(t)) if t else None

    def summary(self) -> dict:
        return {"episodes": self.n, "success_rate": self.success_rate, "crash_rate": self.crash_rate,
                "timeout_rate": 1.0 - self.success_rate - self.crash_rate, "mean_return": self.mean_return,
                "mean_time_to_goal_s": self.mean_time_to_goal, "mean_progress": self.mean_progress}

    def to_dict(self) -> dict:
        return {**self.summary(), "per_episode": [asdict(e) for e in self.episodes]}

    def line(self) -> str:
        ttg = self.mean_time_to_goal
        return (f"success {self.success_rate:.0%}  crash {self.crash_rate:.0%}  return {self.mean_return:.2f}  "
                f"time-to-goal {'-' if ttg is None else f'{ttg:.2f} s'}  progress {self.mean_progress:.0%}  "
                f"({self.n} episodes)")


def evaluate(policy, track: str = "s_curve", episodes: int = 50, seed0: int = DEFAULT_EVAL_SEED, *,
             video_path: "str | Path | None" = None, picture: bool = False, env: RaceCarEnv | None = None,
             progress_bar: bool = False) -> EvalResult:
    """Run `episodes` episodes; optionally write episode 0 as an MP4 and/or keep its last frame."""
    own_env = env is None
    if env is None:
        env = RaceCarEnv(track, render_mode="rgb_array" if (video_path or picture) else None)
    if hasattr(policy, "check_env"):
        policy.check_env(env)
    frames: list[np.ndarray] = []
    results, last_frame = [], None
    it = range(episodes)
    if progress_bar:
        from tqdm import tqdm
        it = tqdm(it, desc="eval", unit="ep", leave=False)
    grab = (lambda e: frames.append(e.render_frame("topdown"))) if video_path else None
    try:
        for i in it:
            ep = run_episode(env, policy, seed0 + i, on_step=grab if i == 0 else None)
            if i == 0 and (video_path or picture):
                last_frame = frames[-1] if frames else env.render_frame("topdown")
            results.append(EpisodeResult(seed0 + i, ep.success, ep.outcome == "crash", ep.steps,
                                         ep.episode_return, float(ep.infos["progress"][-1])))
    finally:
        if own_env:
            env.close()
    if video_path and frames:
        write_mp4(video_path, frames, fps=int(round(1 / spec.CONTROL_DT)), desc="eval video", progress=False)
    return EvalResult(results, last_frame)


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError, load_policy
    p = argparse.ArgumentParser(prog="python -m learn.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a learn checkpoint, e.g. runs/NAME/checkpoints/best.pt")
    p.add_argument("--episodes", type=int, default=50, help="seeded episodes (default 50)")
    p.add_argument("--seed", type=int, default=DEFAULT_EVAL_SEED, help="seed of episode 0 (default %(default)s)")
    p.add_argument("--track", default=None, help="track to run (default: the policy's training track)")
    p.add_argument("--video", default=None, help="write episode 0 as this MP4")
    p.add_argument("--json", default=None, help="write the results (summary + per episode) to this JSON file")
    a = p.parse_args(argv)
    try:
        policy = load_policy(a.checkpoint)
        res = evaluate(policy, a.track or policy.track, a.episodes, a.seed, video_path=a.video, progress_bar=True)
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{policy.label} {a.checkpoint}: {res.line()}")
    if a.json:
        write_json(a.json, res.to_dict())
        print(f"results written to {a.json}" + (f", video to {a.video}" if a.video else ""))
    elif a.video:
        print(f"video written to {a.video}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
