"""The whole app end to end, headless: autopilot demos -> BC -> TD3+BC -> evaluation -> MP4s and a trajectory plot.

    python quickstart.py            # reuses what a previous run left (dataset, finished training)
    python quickstart.py --fresh    # starts over

Each stage is the same command a user would type (printed before it runs), so this file doubles as a tour of the
CLIs: `python -m teleop` records, `python -m learn` trains and evaluates, `python -m replay` renders.
Everything lands in one run folder (default runs/quickstart/); the last line says where.
"""
from __future__ import annotations

if __name__ == "__main__":   # a Ctrl-C while the program loads ends it quietly; racecar_env.cli.entry takes over
    import signal
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_DFL)

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
OWN = ("td3bc", "videos")   # what quickstart writes into its --out folder (all that --fresh deletes)


@dataclass(frozen=True)
class QuickstartConfig:
    out: Path = Path("runs/quickstart")
    dataset: str = "quickstart_s_expert"
    track: str = "s_curve"
    demos: int = 30               # expert autopilot episodes
    bc_steps: int | None = None   # BC pretraining updates (None: learn's default)
    steps: int | None = None      # TD3+BC updates after pretraining at most (None: learn's default)
    eval_every: int | None = 250  # updates between periodic evaluations (None: learn's default, 500)
    # The evaluation of the BC clone before TD3+BC starts can never be best.pt; a demo skips its ~1.5 s.
    eval_after_pretrain: bool = False
    # A demo need not spend the whole budget once the agent drives: stop after two perfect selection evaluations.
    stop_at_success: float = 1.0
    eval_episodes: int = 50       # seeded evaluation episodes (default start jitter)
    videos: int = 3               # evaluation episodes rendered to MP4
    seed: int = 0
    fresh: bool = False
    quiet: bool = False


class StepFailed(Exception):
    def __init__(self, what: str, code: int):
        super().__init__(f"step '{what}' failed (exit code {code}); the command is shown above")
        self.code = code


def run(cmd: list[str], what: str) -> None:
    shown = " ".join(shlex.quote(c) for c in ["python", *cmd[1:]])
    print(f"\n== {what}\n$ {shown}", flush=True)
    result = subprocess.run(cmd, cwd=ROOT)
    if result.returncode != 0:
        raise StepFailed(what, result.returncode)


def dataset_episodes(name: str) -> int:
    """Episodes already in the dataset (0 if it does not exist)."""
    from racecar_env.storage import DatasetError, load_dataset
    try:
        return len(load_dataset(name))
    except DatasetError:
        return 0


def _updates(text: str) -> int:
    import argparse
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return n


def main(argv: list[str] | None = None) -> int:
    import argparse

    from learn.config import RunConfig, TD3BCConfig, default_of
    from racecar_env import cli
    d = QuickstartConfig()
    learn_default = {"bc_steps": default_of(TD3BCConfig, "bc_steps"), "steps": default_of(TD3BCConfig, "steps"),
                     "eval_every": default_of(RunConfig, "eval_every"),
                     "stop_patience": default_of(RunConfig, "stop_patience")}
    ap = cli.ArgumentParser(prog="python quickstart.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=d.out, help=f"run folder (default {d.out})")
    ap.add_argument("--dataset", default=d.dataset, help=f"dataset name (default {d.dataset})")
    ap.add_argument("--track", default=d.track, help=f"track name or .json path (default {d.track})")
    ap.add_argument("--demos", type=cli.count, default=d.demos, help=f"autopilot demos to record (default {d.demos})")
    ap.add_argument("--bc-steps", type=_updates, default=d.bc_steps,
                    help=f"BC pretraining updates (default: learn's, {learn_default['bc_steps']})")
    ap.add_argument("--steps", type=_updates, default=d.steps,
                    help=f"TD3+BC updates at most (default: learn's, {learn_default['steps']})")
    ap.add_argument("--stop-at-success", type=float, default=d.stop_at_success, metavar="RATE",
                    help=f"stop training once {learn_default['stop_patience']} periodic evaluations in a row reach "
                         f"this success rate; 0 = train the whole budget (default {d.stop_at_success})")
    ap.add_argument("--eval-every", type=_updates, default=d.eval_every,
                    help=f"updates between periodic evaluations, which pick best.pt and decide the early stop (default "
                         f"{d.eval_every}; learn's is {learn_default['eval_every']})")
    ap.add_argument("--eval-after-pretrain", action="store_true", default=d.eval_after_pretrain,
                    help="also evaluate the BC clone at the end of pretraining, as learn does by default (logged, "
                         "never best.pt; the quickstart skips it to reach a driving agent sooner)")
    ap.add_argument("--eval-episodes", type=cli.count, default=d.eval_episodes,
                    help=f"seeded evaluation episodes (default {d.eval_episodes})")
    ap.add_argument("--videos", type=cli.count, default=d.videos,
                    help=f"episodes rendered to MP4 (default {d.videos})")
    ap.add_argument("--seed", type=cli.seed, default=d.seed,
                    help=f"seed for demos, training and evaluation (default {d.seed})")
    ap.add_argument("--fresh", action="store_true", help="delete the dataset and run folder first and start over")
    ap.add_argument("--quiet", action="store_true", help="no progress output from the steps (their results still)")
    cfg = QuickstartConfig(**{k: v for k, v in vars(ap.parse_args(argv)).items()})
    try:
        return _main(cfg)
    except (ValueError, StepFailed) as e:   # TrackError, DatasetError: a bad --track / --dataset, one line
        print(f"python quickstart.py: error: {e}", file=sys.stderr)
        return e.code if isinstance(e, StepFailed) else 2


def _learn_settings(cfg: QuickstartConfig) -> dict:
    """The training settings the quickstart sets (the rest are learn's defaults)."""
    given = {"bc_steps": cfg.bc_steps, "steps": cfg.steps, "eval_every": cfg.eval_every,
             "stop_at_success": cfg.stop_at_success, "eval_after_pretrain": cfg.eval_after_pretrain}
    return {k: v for k, v in given.items() if v is not None}


def _main(cfg: QuickstartConfig) -> int:
    from learn.config import TrainConfig
    from racecar_env.storage import dataset_id
    from racecar_env.tracks.source import track_source
    dataset_id(cfg.dataset)         # a bad name, track, setting or --out fails here, before any step runs
    track_source(cfg.track)
    TrainConfig.build(algo="td3bc", **_learn_settings(cfg))   # learn's own range checks (ConfigError: one line)
    out = cfg.out if cfg.out.is_absolute() else ROOT / cfg.out
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {cfg.out} is a file, expected a folder")
    quiet = ["--quiet"] if cfg.quiet else []
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("MPLBACKEND", "Agg")
    py = sys.executable
    t0 = time.perf_counter()
    train_dir, video_dir = out / "td3bc", out / "videos"

    if cfg.fresh:
        from racecar_env.storage import dataset_path
        others = sorted(p.name for p in out.iterdir() if p.name not in OWN) if out.is_dir() else []
        if others:   # --fresh --out ~ must never delete a home folder
            raise ValueError(f"--fresh would delete {out}, which holds more than a quickstart run "
                             f"({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}); pick another --out")
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(dataset_path(cfg.dataset), ignore_errors=True)

    have = dataset_episodes(cfg.dataset)
    if have >= cfg.demos:
        print(f"\n== 1/3 demonstrations: reusing dataset '{cfg.dataset}' ({have} episodes; --fresh to re-record)")
    else:
        run([py, "-m", "teleop", "record", "--driver", "autopilot", "--skill", "expert", "--episodes",
             str(cfg.demos - have), "--dataset", cfg.dataset, "--track", cfg.track, "--seed", str(cfg.seed), *quiet],
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
        for name, value in _learn_settings(cfg).items():
            flag = name.replace('_', '-')
            extra += [f"--{'' if value else 'no-'}{flag}"] if isinstance(value, bool) else [f"--{flag}", str(value)]
        run([py, "-m", "learn", "--dataset", cfg.dataset, "--algo", "td3bc", "--seed", str(cfg.seed),
             "--final-eval-episodes", str(cfg.eval_episodes), "--out", str(train_dir), *extra, *quiet],
            "2/3 training: BC pretraining, then TD3+BC, with periodic evaluation")
    best = train_dir / "checkpoints" / "best.pt"

    run([py, "-m", "replay", "--policy", str(best), "--episodes", str(cfg.videos), "--out", str(video_dir),
         "--overwrite", *quiet], f"3/3 videos: {cfg.videos} evaluation episodes of the best checkpoint")

    report = json.loads(result_file.read_text())
    final, first90 = report["final"], report.get("first_eval_ge_90pct")
    ttg = final["mean_time_to_goal_s"]
    print(f"\nRaceCar quickstart done in {time.perf_counter() - t0:.0f} s.")
    stopped = " (stopped early: --stop-at-success)" if report.get("stopped_early_at") else ""
    reached = "never" if first90 is None else f"after {first90['wall_s']:.0f} s (step {first90['step']})"
    print(f"  training:     {report['steps']} updates, {report['wall_s']:.0f} s with evaluations{stopped}; "
          f"first TD3+BC evaluation >= 90% success {reached}")
    print(f"  agent (best.pt from step {final['step']}, {final['episodes']} seeded test episodes): "
          f"success {final['success_rate']:.0%}, crash {final['crash_rate']:.0%}, "
          f"mean time-to-goal {'-' if ttg is None else f'{ttg:.2f} s'}")
    print(f"  dataset:      python -m teleop info {cfg.dataset}")
    print(f"  run folder:   {train_dir}  (tensorboard --logdir {train_dir / 'tb'})")
    print(f"  checkpoint:   {best}")
    print(f"  videos:       {video_dir}  (*.mp4, trajectories.png, eval_info.json)")
    print(f"Results are in {out}")
    return 0


if __name__ == "__main__":
    from racecar_env.cli import entry
    sys.exit(entry(main, "python quickstart.py"))
