"""Wall-clock of a 4-trial `python -m learn.sweep` against the same 4 runs one after another, in one script run.

Both sides train the same configs (default: the algorithm's own default budget, e.g. TD3+BC 5,000 BC-pretraining +
4,000 TD3+BC updates, evaluated every 1,000 updates as the README's results sweep does; seeds 0-3; evaluation serial
and one torch thread per run, the sweep's per-trial defaults) on the same autopilot dataset, recorded first into a
temp folder:

  sequential   what the sweep replaces: a shell loop of `python -m learn ... --seed S` runs, one after another
               (each pays its own start-up); --baseline in-process instead calls `learn.train.train` 4 times in
               this process with the imports already paid (the strictest comparison)
  sweep        `learn.sweep` main() in this process: Ray import and start-up, trials on Ray Tune (one per CPU,
               the dataset through Ray's object store), summary, Ray shut down: everything a user waits for

    python benchmarks/sweep_speed.py [--algo td3bc] [--updates N] [--cpus 2] [--baseline cli|in-process] [--keep]
Last line: `ratio sweep/sequential = X` (< 1 = the sweep is faster; 0.5 is the ideal on 2 cores). The sweep pays a
fixed ~15 s here (Ray start-up and shut-down, worker start, summary), so short trials (--updates 2000: ~20 s each)
show a worse ratio than real ones. The machine's other load moves both numbers: run it twice and compare.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("MPLBACKEND", "Agg")

from racecar_env import cli  # noqa: E402


def main() -> int:
    p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--algo", default="td3bc", choices=("bc", "td3bc", "cql", "iql"))
    p.add_argument("--updates", type=cli.count, default=None, help="updates per run, half of them BC pretraining for "
                   "td3bc/cql/iql (default: the algorithm's own budget)")
    p.add_argument("--eval-every", type=int, default=1000, help="updates between periodic evaluations (default 1000)")
    p.add_argument("--baseline", choices=("cli", "in-process"), default="cli",
                   help="the sequential side: `python -m learn` runs (default) or train() calls in this process")
    p.add_argument("--seeds", type=cli.count, default=4)
    p.add_argument("--cpus", type=cli.count, default=2, help="CPUs of the sweep's local Ray")
    p.add_argument("--episodes", type=cli.count, default=20, help="autopilot episodes in the dataset")
    p.add_argument("--test-episodes", type=int, default=None,
                   help="final test episodes per run (default: the learn default)")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (dataset, runs, sweep) at the end")
    a = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sweep_speed_"))
    try:
        return measure(a, work)
    finally:
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def measure(a: argparse.Namespace, work: Path) -> int:
    os.environ["MINARI_DATASETS_PATH"] = str(work / "datasets")
    from teleop.record import RecordConfig, record_autopilot
    record_autopilot(RecordConfig(dataset="bench_expert", episodes=a.episodes, skill="expert", seed=0,
                                  progress=False))

    settings: dict = {"eval_every": a.eval_every}
    if a.updates is not None:
        half = a.updates // 2 if a.algo != "bc" else 0
        settings["steps"] = a.updates - half
        if a.algo != "bc":
            settings["bc_steps"] = half
    if a.test_episodes is not None:
        settings["final_eval_episodes"] = a.test_episodes
    seeds = list(range(a.seeds))
    print(f"{len(seeds)} x {a.algo} ({settings or 'default budget'}, evaluation serial, 1 torch thread) on a "
          f"{a.episodes}-episode autopilot dataset; {os.cpu_count()} CPUs here, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)

    # --- sequential: what the sweep replaces ---
    t0 = time.perf_counter()
    seq_walls = []
    if a.baseline == "cli":
        for seed in seeds:
            out = work / f"seq/s{seed}"
            argv = [sys.executable, "-m", "learn", "--dataset", "bench_expert", "--algo", a.algo, "--seed", str(seed),
                    "--out", str(out), "--eval-workers", "1", "--threads", "1", "--quiet"]
            for k, v in settings.items():
                argv += [f"--{k.replace('_', '-')}", str(v)]
            t1 = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
            ev = json.loads((out / "eval.json").read_text())
            seq_walls.append(ev["wall_s"])
            print(f"  sequential s{seed}: {time.perf_counter() - t1:.1f} s (training {ev['wall_s']:.1f} s), success "
                  f"{ev['final']['success_rate']:.0%}", flush=True)
    else:
        from learn.config import TrainConfig
        from learn.data import load_training_data
        from learn.train import train
        data = load_training_data("bench_expert")
        for seed in seeds:
            cfg = TrainConfig.build(dataset="bench_expert", algo=a.algo, seed=seed, out=str(work / f"seq/s{seed}"),
                                    eval_workers="1", threads=1, **settings)
            res = train(cfg, data=data, progress=False, log=lambda line: None)
            seq_walls.append(res.wall_s)
            print(f"  sequential s{seed}: {res.wall_s:.1f} s, success {res.final['success_rate']:.0%}", flush=True)
    seq = time.perf_counter() - t0
    print(f"sequential ({a.baseline}): {seq:.1f} s", flush=True)

    # --- the sweep: learn.sweep's main() ---
    from learn.sweep.__main__ import main as sweep_main
    argv = ["--datasets", "bench_expert", "--algos", a.algo, "--seeds", f"0-{len(seeds) - 1}", "--cpus",
            str(a.cpus), "--out", str(work / "sweep"), "--quiet"]
    for k, v in settings.items():
        argv += ["--set", f"{k}={v}"]      # eval_workers 1 and threads 1 are the sweep's per-trial defaults
    t0 = time.perf_counter()
    code = sweep_main(argv)
    swp = time.perf_counter() - t0
    if code != 0:
        print(f"the sweep failed (exit {code})")
        return 1
    print(f"sweep ({a.cpus} CPUs, 1 per trial): {swp:.1f} s  (load average now {os.getloadavg()[0]:.1f})")
    walls = [json.loads(p.read_text())["wall_s"] for p in sorted((work / "sweep" / "trials").rglob("eval.json"))]
    makespan = sum(walls) / a.cpus
    print(f"  one run: {sum(seq_walls) / len(seq_walls):.1f} s alone, {sum(walls) / len(walls):.1f} s as a sweep "
          f"trial beside others (CPU contention); sweep overhead beyond its trials (Ray start-up, workers, "
          f"imports, summary) ~ {swp - makespan:.0f} s")
    print(f"ratio sweep/sequential = {swp / seq:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
