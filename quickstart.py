"""The whole app end to end, headless: autopilot demos -> BC -> TD3+BC -> evaluation -> MP4s and a trajectory plot.

    python quickstart.py            # reuses what a previous run left (dataset, finished training)
    python quickstart.py --fresh    # starts over

Each stage is the same command a user would type (printed before it runs), so this file doubles as a tour of the
CLIs: `python -m teleop` records, `python -m learn` trains and evaluates, `python -m replay` renders.
Everything lands in one run folder (default runs/quickstart/); the last line says where.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class QuickstartConfig:
    out: Path = Path("runs/quickstart")
    dataset: str = "quickstart_s_expert"
    track: str = "s_curve"
    demos: int = 30               # expert autopilot episodes
    bc_steps: int | None = None   # BC pretraining updates (None: learn's default, 5000)
    steps: int | None = None      # TD3+BC updates after pretraining (None: learn's default, 4000)
    eval_episodes: int = 50       # seeded evaluation episodes (default start jitter)
    videos: int = 3               # evaluation episodes rendered to MP4
    seed: int = 0
    fresh: bool = False


def run(cmd: list[str], what: str) -> None:
    shown = " ".join(shlex.quote(c) for c in ["python", *cmd[1:]])
    print(f"\n== {what}\n$ {shown}", flush=True)
    result = subprocess.run(cmd, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"quickstart: step '{what}' failed (exit code {result.returncode}); the command is shown above")


def dataset_episodes(name: str) -> int:
    """Episodes already in the dataset (0 if it does not exist)."""
    from racecar_env.storage import DatasetError, load_dataset
    try:
        return len(load_dataset(name))
    except DatasetError:
        return 0


def main(argv: list[str] | None = None) -> None:
    d = QuickstartConfig()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=d.out, help=f"run folder (default {d.out})")
    ap.add_argument("--dataset", default=d.dataset, help=f"dataset name (default {d.dataset})")
    ap.add_argument("--track", default=d.track, help=f"track name or .json path (default {d.track})")
    ap.add_argument("--demos", type=int, default=d.demos, help=f"autopilot demos to record (default {d.demos})")
    ap.add_argument("--bc-steps", type=int, default=d.bc_steps, help="BC pretraining updates (default: learn's, 5000)")
    ap.add_argument("--steps", type=int, default=d.steps, help="TD3+BC updates (default: learn's, 4000)")
    ap.add_argument("--eval-episodes", type=int, default=d.eval_episodes,
                    help=f"seeded evaluation episodes (default {d.eval_episodes})")
    ap.add_argument("--videos", type=int, default=d.videos, help=f"episodes rendered to MP4 (default {d.videos})")
    ap.add_argument("--seed", type=int, default=d.seed, help=f"seed for demos, training and evaluation (default {d.seed})")
    ap.add_argument("--fresh", action="store_true", help="delete the dataset and run folder first and start over")
    cfg = QuickstartConfig(**{k: v for k, v in vars(ap.parse_args(argv)).items()})
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("MPLBACKEND", "Agg")
    py = sys.executable
    t0 = time.perf_counter()
    out = cfg.out if cfg.out.is_absolute() else ROOT / cfg.out
    train_dir, video_dir = out / "td3bc", out / "videos"

    if cfg.fresh:
        from racecar_env.storage import dataset_path
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(dataset_path(cfg.dataset), ignore_errors=True)

    have = dataset_episodes(cfg.dataset)
    if have >= cfg.demos:
        print(f"\n== 1/3 demonstrations: reusing dataset '{cfg.dataset}' ({have} episodes; --fresh to re-record)")
    else:
        run([py, "-m", "teleop", "record", "--driver", "autopilot", "--skill", "expert", "--episodes",
             str(cfg.demos - have), "--dataset", cfg.dataset, "--track", cfg.track, "--seed", str(cfg.seed)],
            f"1/3 demonstrations: {cfg.demos - have} expert autopilot episodes")

    result_file = train_dir / "eval.json"
    if result_file.exists() and json.loads(result_file.read_text()).get("final"):
        print(f"\n== 2/3 training: reusing the finished run in {train_dir} (--fresh to retrain)")
    else:
        if (train_dir / "checkpoints" / "last.pt").exists():
            extra = ["--resume"]  # a killed run continues where its last checkpoint left it
        else:
            shutil.rmtree(train_dir, ignore_errors=True)  # killed before its first checkpoint: nothing to keep
            extra = []
        for flag, value in (("--bc-steps", cfg.bc_steps), ("--steps", cfg.steps)):
            extra += [flag, str(value)] if value is not None else []
        run([py, "-m", "learn", "--dataset", cfg.dataset, "--algo", "td3bc", "--seed", str(cfg.seed),
             "--final-eval-episodes", str(cfg.eval_episodes), "--out", str(train_dir), *extra],
            "2/3 training: BC pretraining, then TD3+BC, with periodic evaluation")
    best = train_dir / "checkpoints" / "best.pt"

    run([py, "-m", "replay", "--policy", str(best), "--episodes", str(cfg.videos), "--out", str(video_dir),
         "--overwrite"], f"3/3 videos: {cfg.videos} evaluation episodes of the best checkpoint")

    final = json.loads(result_file.read_text())["final"]
    ttg = final["mean_time_to_goal_s"]
    minutes = (time.perf_counter() - t0) / 60
    print(f"\nRaceCar quickstart done in {minutes:.1f} min.")
    print(f"  agent (best.pt from step {final['step']}, {final['episodes']} seeded test episodes): "
          f"success {final['success_rate']:.0%}, crash {final['crash_rate']:.0%}, "
          f"mean time-to-goal {'-' if ttg is None else f'{ttg:.2f} s'}")
    print(f"  dataset:      python -m teleop info {cfg.dataset}")
    print(f"  training:     {train_dir}  (tensorboard --logdir {train_dir / 'tb'})")
    print(f"  checkpoint:   {best}")
    print(f"  videos:       {video_dir}  (*.mp4, trajectories.png, eval_info.json)")
    print(f"Results are in {out}")


if __name__ == "__main__":
    main()
