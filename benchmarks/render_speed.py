"""How much faster than real time `python -m replay` turns a policy into top-down MP4s (rollout + draw + encode).

    python benchmarks/render_speed.py [--episodes 3] [--view topdown]

Uses the autopilot as the policy by default (no checkpoint needed; --policy CKPT for a trained one) and replay's own code path; prints the breakdown and one
final line "render speed: N.Nx real time". Quality bar: >= 5x for the top-down view.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TQDM_DISABLE", "1")  # keep the output to the figures

from racecar_env import load_track  # noqa: E402
from replay import agents  # noqa: E402
from replay.frames import FPS, VIEWS, TraceRenderer  # noqa: E402
from replay.output import write_mp4  # noqa: E402
from replay.session import policy_runs, single_clips  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--view", choices=VIEWS, default="topdown")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--policy", default="autopilot", help="agent to roll out: 'autopilot[:skill]' or a checkpoint")
    a = ap.parse_args()
    spec = agents.resolve(a.policy, a.seed)
    track = load_track(spec.track or "s_curve")
    t0 = time.perf_counter()
    runs = policy_runs([spec], track, list(range(a.seed, a.seed + a.episodes)))
    t_roll = time.perf_counter() - t0
    renderer = TraceRenderer(track, view=a.view)
    clips = single_clips(renderer, runs[0])
    frames = sum(c.n for c in clips)
    t1 = time.perf_counter()
    for c in clips[:1]:  # drawing alone, on one episode
        for f in range(c.n):
            c.frame(f)
    t_draw = (time.perf_counter() - t1) / clips[0].n
    with tempfile.TemporaryDirectory() as tmp:
        t2 = time.perf_counter()
        for i, c in enumerate(clips):
            write_mp4(Path(tmp) / f"ep{i}.mp4", (c.frame(f) for f in range(c.n)), total=c.n, desc=f"ep{i}")
        t_video = time.perf_counter() - t2
    renderer.close()
    total = t_roll + t_video
    video_s = frames / FPS
    print(f"{a.episodes} episodes, {frames} frames ({video_s:.1f} s of video at {FPS} fps), view {a.view}, "
          f"frame {renderer.size[0]}x{renderer.size[1]}")
    print(f"rollout {t_roll:.2f} s | draw {t_draw * 1000:.2f} ms/frame | draw+encode {t_video:.2f} s "
          f"({t_video / frames * 1000:.2f} ms/frame)")
    print(f"render speed: {video_s / total:.1f}x real time (rollout+draw+encode {total:.2f} s)")


if __name__ == "__main__":
    main()
