"""Wall-clock of a 4-trial `python -m learn.sweep` against the same 4 runs one after another, in one script run.

Both sides train the same configs (default: TD3+BC, 1,000 BC-pretraining + 1,000 TD3+BC updates, seeds 0-3, one
periodic evaluation at the end of each phase, 5 test episodes, evaluation serial and 1 torch thread per run) on the
same small autopilot dataset, recorded first into a temp folder:

  sequential   plain `learn.train.train` calls in this process, one after another (imports already paid)
  sweep        `learn.sweep` main() in this process: Ray import and start-up, trials on Ray Tune (one per CPU,
               the dataset through Ray's object store), summary, Ray shut down: everything a user waits for

    python benchmarks/sweep_speed.py [--algo td3bc] [--updates 2000] [--cpus 2] [--episodes 10] [--keep]
Last line: `ratio sweep/sequential = X` (< 1 = the sweep is faster; 0.5 is the ideal on 2 cores).
The machine's other load moves both numbers: run it twice and compare.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("MPLBACKEND", "Agg")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--algo", default="td3bc", choices=("bc", "td3bc", "cql", "iql"))
    p.add_argument("--updates", type=int, default=2000, help="updates per run (td3bc/cql/iql: half of them BC "
                                                             "pretraining)")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the sweep's local Ray")
    p.add_argument("--episodes", type=int, default=10, help="autopilot episodes in the dataset")
    p.add_argument("--test-episodes", type=int, default=5)
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

    half = a.updates // 2 if a.algo != "bc" else 0
    settings = {"steps": a.updates - half, "eval_every": half or a.updates, "eval_episodes": 3,
                "final_eval_episodes": a.test_episodes, "eval_workers": "1", "threads": 1}
    if a.algo != "bc":
        settings["bc_steps"] = half
    seeds = list(range(a.seeds))
    print(f"{len(seeds)} x {a.algo} ({a.updates} updates, {settings}) on a {a.episodes}-episode autopilot "
          f"dataset; {os.cpu_count()} CPUs here, load average {os.getloadavg()[0]:.1f}", flush=True)

    # --- sequential: plain train() calls in this process ---
    from learn.config import TrainConfig
    from learn.data import load_training_data
    from learn.train import train
    t0 = time.perf_counter()
    data = load_training_data("bench_expert")
    seq_walls = []
    for seed in seeds:
        cfg = TrainConfig.build(dataset="bench_expert", algo=a.algo, seed=seed, out=str(work / f"seq/s{seed}"),
                                **settings)
        res = train(cfg, data=data, progress=False, log=lambda line: None)
        seq_walls.append(res.wall_s)
        print(f"  sequential s{seed}: {res.wall_s:.1f} s, success {res.final['success_rate']:.0%}", flush=True)
    seq = time.perf_counter() - t0
    print(f"sequential: {seq:.1f} s", flush=True)

    # --- the sweep: learn.sweep's main() ---
    from learn.sweep.__main__ import main as sweep_main
    argv = ["--datasets", "bench_expert", "--algos", a.algo, "--seeds", f"0-{len(seeds) - 1}", "--cpus",
            str(a.cpus), "--out", str(work / "sweep"), "--quiet"]
    for k, v in settings.items():
        if k not in ("eval_workers", "threads"):      # the sweep's own per-trial defaults are 1 and 1
            argv += ["--set", f"{k}={v}"]
    t0 = time.perf_counter()
    code = sweep_main(argv)
    swp = time.perf_counter() - t0
    if code != 0:
        print(f"the sweep failed (exit {code})")
        return 1
    print(f"sweep ({a.cpus} CPUs, 1 per trial): {swp:.1f} s  (load average now {os.getloadavg()[0]:.1f})")
    import json
    walls = [json.loads(p.read_text())["wall_s"] for p in sorted((work / "sweep" / "trials").rglob("eval.json"))]
    makespan = sum(walls) / a.cpus
    print(f"  one run: {sum(seq_walls) / len(seq_walls):.1f} s alone, {sum(walls) / len(walls):.1f} s as a sweep "
          f"trial beside others (CPU contention); sweep overhead beyond its trials (Ray start-up, workers, "
          f"imports, summary) ~ {swp - makespan:.0f} s")
    print(f"ratio sweep/sequential = {swp / seq:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
