"""Dataset append cost vs dataset size: does saving episode 1,000 cost what saving episode 10 did?

    python benchmarks/dataset_append.py                  # 1,000 episodes of 250 steps into a fresh temp dataset
    python benchmarks/dataset_append.py --episodes 300 --steps 100

Appends synthetic episodes (built with EpisodeRecorder exactly as a recording does, observation width
spec.OBS_DIM, no physics) one `DatasetWriter.add` at a time, as `python -m teleop` does, and prints the median
save cost per episode around episodes 10, 100 and 1,000 and the ratio of the last to the first (target <= 2x).
Each save includes everything `add` does: Arrow encoding, checksums, the episode folder's fsyncs and rename, and
the atomic metadata rewrite. The dataset goes to a temp folder (MINARI_DATASETS_PATH is set for this process only).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from racecar_env import cli, spec  # noqa: E402
from racecar_env.episode import EpisodeRecorder  # noqa: E402
from racecar_env.tracks import load_track  # noqa: E402


def synthetic_episode(rng: np.random.Generator, steps: int, track):
    def obs():
        return {"observation": rng.uniform(-1, 1, spec.OBS_DIM).astype(np.float32),
                "achieved_goal": rng.uniform(0, 10, 2).astype(np.float32),
                "desired_goal": np.array([14.5, 7.5], np.float32)}

    def info(t):
        return {"is_success": t == steps, "collision": False, "progress": t / steps, "distance_to_goal": 10 - t / 25}

    rec = EpisodeRecorder(obs(), info(0))
    for t in range(1, steps + 1):
        rec.step(rng.uniform(-1, 1, 2), obs(), float(rng.normal()), t == steps, False, info(t))
    return rec.finish({"driver": "benchmark", "skill": "synthetic", "seed": int(rng.integers(2**31))}, track=track)


def main(argv=None) -> int:
    ap = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=cli.count, default=1000)
    ap.add_argument("--steps", type=cli.count, default=250, help="steps per episode (default 250)")
    ap.add_argument("--window", type=int, default=10, help="episodes each side of a checkpoint in its median")
    ap.add_argument("--keep", action="store_true", help="keep the temp dataset folder")
    a = ap.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="racecar-append-bench-"))
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    from racecar_env.storage import DatasetWriter, load_dataset

    track = load_track("s_curve")
    rng = np.random.default_rng(0)
    pool = [synthetic_episode(rng, a.steps, track) for _ in range(20)]  # building episodes is not what we time
    costs = []
    t_all = time.perf_counter()
    try:
        with DatasetWriter("bench_append") as w:
            for i in range(a.episodes):
                ep = pool[i % len(pool)]
                t = time.perf_counter()
                w.add(ep)
                costs.append(time.perf_counter() - t)
        total = time.perf_counter() - t_all
        ds = load_dataset("bench_append")
        assert len(ds) == a.episodes
        t = time.perf_counter()
        ds[a.episodes - 1]
        read_last = time.perf_counter() - t
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        checkpoints = [c for c in (10, 100, 1000) if c <= a.episodes]
        medians = {}
        print(f"{a.episodes} episodes x {a.steps} steps (observation width {spec.OBS_DIM}), {size / 1e6:.1f} MB, "
              f"appended in {total:.1f} s")
        for c in checkpoints:
            lo, hi = max(0, c - 1 - a.window), min(a.episodes, c + a.window)
            medians[c] = statistics.median(costs[lo:hi])
            print(f"  save cost around episode {c:>5}: median {medians[c] * 1e3:6.2f} ms "
                  f"(episodes {lo + 1}-{hi})")
        if len(checkpoints) > 1:
            first, last = checkpoints[0], checkpoints[-1]
            ratio = medians[last] / medians[first]
            print(f"  ratio episode {last} / episode {first}: {ratio:.2f}x (target <= 2x)")
        print(f"  reading episode {a.episodes - 1} back (checksum + decode): {read_last * 1e3:.2f} ms")
    finally:
        if a.keep:
            print(f"dataset kept at {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
