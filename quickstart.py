"""The whole app end to end, headless: autopilot demos -> BC -> TD3+BC -> evaluation -> MP4s and a trajectory plot.

    python quickstart.py            # reuses what a previous run with the same settings left (dataset, training)
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
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SETTINGS = "quickstart.json"   # the settings the run in --out was made with (a rerun with others is refused)
OWN = ("td3bc", "videos", SETTINGS)   # what quickstart writes into its --out folder (all that --fresh deletes)
# the training settings the quickstart passes to learn (the rest are learn's defaults)
LEARN_SETTINGS = ("bc_steps", "steps", "eval_every", "stop_at_success", "eval_after_pretrain")


@dataclass(frozen=True)
class QuickstartConfig:
    out: Path = Path("runs/quickstart")   # relative: in the project folder (main() makes a given --out absolute)
    dataset: str | None = None    # None: quickstart_ + teleop's default name, quickstart_s_expert on s_curve
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


def dataset_demos(name: str) -> list[dict]:
    """Each episode's stored metadata (driver, skill, seed_base, track_id, ...); [] if the dataset does not exist."""
    from racecar_env.storage import DatasetError, dataset_path, load_dataset
    try:
        ds = load_dataset(name)
    except DatasetError:
        if dataset_path(name).exists():
            raise   # there but unreadable: one line, and nothing to reuse or delete
        return []
    return [ds.episode_metadata(i) for i in range(len(ds))]


def not_quickstart_demos(demos: list[dict], track_id: str | None) -> str:
    """The episodes the quickstart does not record (it records expert autopilot demos on its track; any track for
    a random one), e.g. "4 keyboard-pilot (keyboard-sloppy) on s_curve"; "" if there are none."""
    def who(m: dict) -> str:
        return f"{m.get('driver')} ({m['skill']})" if m.get("skill") else str(m.get("driver"))
    other = Counter(f"{who(m)} on {m.get('track_name')}" for m in demos
                    if (m.get("driver"), m.get("skill")) != ("autopilot", "expert")
                    or track_id is not None and m.get("track_id") != track_id)
    return ", ".join(f"{n} {what}" for what, n in other.most_common())


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
    from learn.tracks import absolute_track
    from racecar_env import cli
    from teleop.record import base_seed
    d = QuickstartConfig()
    learn_default = {"bc_steps": default_of(TD3BCConfig, "bc_steps"), "steps": default_of(TD3BCConfig, "steps"),
                     "eval_every": default_of(RunConfig, "eval_every"),
                     "stop_patience": default_of(RunConfig, "stop_patience")}
    ap = cli.ArgumentParser(prog="python quickstart.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None, help=f"run folder (default {d.out} in the project folder)")
    ap.add_argument("--dataset", default=d.dataset,
                    help="dataset name (default quickstart_<track>_expert: quickstart_s_expert on s_curve)")
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
    ap.add_argument("--seed", type=base_seed, default=d.seed,   # teleop's range: it records the demos with it
                    help=f"seed for demos, training and evaluation, 0..2**32-1 (default {d.seed})")
    ap.add_argument("--fresh", action="store_true",
                    help="delete the run folder and the dataset first and start over (a dataset holding anything but "
                         "expert autopilot demos on --track is never deleted)")
    ap.add_argument("--quiet", action="store_true", help="no progress output from the steps (their results still)")
    a = ap.parse_args(argv)
    # paths from where the command was typed: the steps run in the project folder (cwd=ROOT), and quickstart.json
    # records the track file that was checked
    a.out = Path(os.path.abspath(a.out)) if a.out is not None else d.out
    a.track = absolute_track(a.track)
    cfg = QuickstartConfig(**vars(a))
    try:
        return _main(cfg)
    except (ValueError, StepFailed) as e:   # TrackError, DatasetError: a bad --track / --dataset, one line
        print(f"python quickstart.py: error: {e}", file=sys.stderr)
        return e.code if isinstance(e, StepFailed) else 2


def _learn_settings(cfg: QuickstartConfig) -> dict:
    """The training settings the quickstart sets (None: learn's default)."""
    return {k: getattr(cfg, k) for k in LEARN_SETTINGS if getattr(cfg, k) is not None}


def _settings(cfg: QuickstartConfig, track_id: str | None) -> dict:
    """What decides a run's results, kept in --out/quickstart.json. Not --videos: they are rendered on every run."""
    from learn.config import TrainConfig
    learn = TrainConfig.build(algo="td3bc", **_learn_settings(cfg)).to_dict()   # None resolved to learn's default
    return {"dataset": cfg.dataset, "track": cfg.track, "track_id": track_id, "demos": cfg.demos, "seed": cfg.seed,
            "eval_episodes": cfg.eval_episodes, **{k: learn[k] for k in LEARN_SETTINGS}}


def _check_reuse(out: Path, settings: dict) -> None:
    """A quickstart run already in --out may be reused (or resumed) only if it was made with these settings."""
    made = [name for name in OWN if (out / name).exists()]
    if not made:
        return
    try:
        old = json.loads((out / SETTINGS).read_text())
    except (OSError, ValueError):
        raise ValueError(f"{out} holds a quickstart run ({', '.join(made)}) without a readable record of its "
                         f"settings ({SETTINGS}): add --fresh to start over, or pick another --out") from None
    changed = [f"{'track file content' if k == 'track_id' else '--' + k.replace('_', '-')} {old.get(k)} -> {v}"
               for k, v in settings.items()
               if old.get(k) != v and not (k == "track_id" and old.get("track") != settings["track"])]
    if changed:
        raise ValueError(f"{out} holds a quickstart run made with other settings ({', '.join(changed)}): add --fresh "
                         f"to start over, or pick another --out")


def _main(cfg: QuickstartConfig) -> int:
    from racecar_env.files import write_json
    from racecar_env.storage import dataset_id, dataset_path
    from learn.tracks import check_source
    source = check_source(cfg.track)   # a bad track, name, setting or --out fails here, before any step runs
    if os.environ.get("MINARI_DATASETS_PATH"):   # the steps' datasets are the ones read here, whatever their cwd
        os.environ["MINARI_DATASETS_PATH"] = os.path.abspath(os.environ["MINARI_DATASETS_PATH"])
    if cfg.dataset is None:   # each track its own dataset: another --track never mixes into this one
        from teleop.record import default_dataset_name
        cfg = replace(cfg, dataset="quickstart_" + default_dataset_name(cfg.track, "autopilot", "expert"))
    dataset_id(cfg.dataset)
    track_id = None if source.is_random else source.fixed.track_id
    settings = _settings(cfg, track_id)   # learn's own range checks (ConfigError: one line)
    out = cfg.out if cfg.out.is_absolute() else ROOT / cfg.out
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {cfg.out} is a file, expected a folder")
    quiet = ["--quiet"] if cfg.quiet else []
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("MPLBACKEND", "Agg")
    py = sys.executable
    t0 = time.perf_counter()
    train_dir, video_dir = out / "td3bc", out / "videos"

    demos = dataset_demos(cfg.dataset)
    foreign = not_quickstart_demos(demos, track_id)
    wanted = f"expert autopilot demos on {source.describe()}"
    if cfg.fresh:
        others = sorted(p.name for p in out.iterdir() if p.name not in OWN) if out.is_dir() else []
        if others:   # --fresh --out ~ must never delete a home folder
            raise ValueError(f"--fresh would delete {out}, which holds more than a quickstart run "
                             f"({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}); pick another --out")
        if foreign:   # nor someone's own recordings: only what the quickstart records again in seconds
            raise ValueError(f"--fresh would delete dataset {cfg.dataset}, which holds more than the quickstart's "
                             f"{wanted} ({foreign}): pick another --dataset, or delete it yourself")
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(dataset_path(cfg.dataset), ignore_errors=True)
        demos = []
    else:
        _check_reuse(out, settings)
        if foreign:
            raise ValueError(f"dataset {cfg.dataset} holds episodes the quickstart does not record ({foreign}; it "
                             f"records {wanted}): pick another --dataset")
        seeds = sorted({m.get("seed_base") for m in demos} - {cfg.seed}, key=str)
        if seeds or len(demos) > cfg.demos:   # training would read other demos than this run asks for
            raise ValueError(f"dataset {cfg.dataset} holds {len(demos)} demos recorded with --seed "
                             f"{', '.join(map(str, seeds or [cfg.seed]))}, this run asks for {cfg.demos} with "
                             f"--seed {cfg.seed}: add --fresh to record them again, or pick another --dataset")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SETTINGS, settings)

    have = len(demos)
    reused = []   # what an earlier call already did: "done in" then counts only this call's work, and says so
    if have == cfg.demos:
        reused.append("demonstrations")
        print(f"\n== 1/3 demonstrations: reusing dataset '{cfg.dataset}' ({have} episodes; --fresh to re-record)")
    else:
        run([py, "-m", "teleop", "record", "--driver", "autopilot", "--skill", "expert", "--episodes",
             str(cfg.demos - have), "--dataset", cfg.dataset, "--track", cfg.track, "--seed", str(cfg.seed), *quiet],
            f"1/3 demonstrations: {cfg.demos - have} expert autopilot episodes")

    result_file = train_dir / "eval.json"
    if result_file.exists() and json.loads(result_file.read_text()).get("final"):
        reused.append("training")
        print(f"\n== 2/3 training: reusing the finished run in {train_dir} (--fresh to retrain)")
    else:
        if (train_dir / "checkpoints" / "last.pt").exists():
            extra = ["--resume"]  # a killed run continues where its last checkpoint left it
            reused.append("the interrupted training's checkpoint")
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
    earlier = f" (this call; reused from an earlier one: {', '.join(reused)})" if reused else ""
    print(f"\nRaceCar quickstart done in {time.perf_counter() - t0:.0f} s{earlier}.")
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
