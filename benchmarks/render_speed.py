"""How much faster than real time `python -m replay` turns a policy into MP4s (rollout + draw + encode).

    python benchmarks/render_speed.py [--episodes 3] [--view topdown|chase|both] [--track s_curve] [--policy CKPT]

Uses the autopilot as the policy by default (no checkpoint needed) and replay's own code path (rollouts through
`run_episodes`, frames from `EpisodeRenderer`, H.264 through `racecar_env.media.write_mp4`); prints the breakdown,
the drawing cost per frame (wall and CPU: on a busy machine the CPU figure is the stable one) and one final line
"render speed: N.Nx real time". Quality bar: >= 5x for the top-down view.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from racecar_env import cli  # noqa: E402
from racecar_env.evaluation import TEST_SEED  # noqa: E402
from racecar_env.media import FPS, write_mp4  # noqa: E402
from racecar_env.render import VIEWS, EpisodeRenderer  # noqa: E402
from replay import ReplayError, agents  # noqa: E402
from replay.session import episode_clips, policy_runs, track_arg  # noqa: E402


def main() -> None:
    ap = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=cli.count, default=3)
    ap.add_argument("--view", choices=VIEWS, default="topdown")
    ap.add_argument("--seed", type=cli.seed, default=TEST_SEED)
    ap.add_argument("--track", default="s_curve", help="track for the rollouts (default s_curve)")
    ap.add_argument("--policy", default="autopilot", help="agent to roll out: 'autopilot[:skill]' or a checkpoint")
    ap.add_argument("--workers", type=cli.workers, default=1, help="env processes for the rollouts (default 1)")
    a = ap.parse_args()
    try:   # a bad --policy or --track: replay's one line, not a traceback
        spec = agents.resolve(a.policy)
        track = track_arg(a.track)
    except ReplayError as e:
        ap.error(str(e))
    t0 = time.perf_counter()
    run = policy_runs([spec], track, [a.seed + i for i in range(a.episodes)], workers=a.workers, quiet=True)[0]
    t_roll = time.perf_counter() - t0
    renderer = EpisodeRenderer(a.view)
    clips = episode_clips(renderer, run)
    frames = sum(c.n for c in clips)
    clips[0].frame(0)   # first frame builds the background (and the chase camera's physics world)
    t1, c1 = time.perf_counter(), time.process_time()
    for f in range(clips[0].n):  # drawing alone, on one episode
        clips[0].frame(f)
    t_draw = (time.perf_counter() - t1) / clips[0].n
    c_draw = (time.process_time() - c1) / clips[0].n
    with tempfile.TemporaryDirectory() as tmp:
        t2 = time.perf_counter()
        for i, c in enumerate(clips):
            write_mp4(Path(tmp) / f"ep{i}.mp4", (c.frame(f) for f in range(c.n)), total=c.n, quiet=True)
        t_video = time.perf_counter() - t2
    size = renderer.size(run.episodes[0].track)
    renderer.close()
    total = t_roll + t_video
    video_s = frames / FPS
    print(f"{a.episodes} episodes on {run.info['track']}, {frames} frames ({video_s:.1f} s of video at {FPS} fps), "
          f"view {a.view}, frame {size[0]}x{size[1]}")
    print(f"rollout {t_roll:.2f} s | draw {t_draw * 1000:.1f} ms/frame ({c_draw * 1000:.1f} ms CPU) | "
          f"draw+encode {t_video:.2f} s ({t_video / frames * 1000:.1f} ms/frame)")
    print(f"render speed: {video_s / total:.1f}x real time (rollout+draw+encode {total:.2f} s)")


if __name__ == "__main__":
    main()
