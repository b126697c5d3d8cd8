"""`python -m replay`: watch agents and demonstrations as MP4s, trajectory plots and eval_info.json."""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from . import agents
from .frames import FPS, VIEWS, TraceRenderer
from .output import run_info, write_json, write_mp4, write_png
from .plot import plot_trajectories
from .rollout import episode_seeds, start_options
from .session import (Clip, Run, grid_clips, load_demos, parse_count, policy_runs, resolve_track, single_clips,
                      unique_labels)
from .trace import ReplayError

DEFAULT_OUT_ROOT = Path("runs") / "replay"
DEFAULT_SEED = 20_000  # = learn.evaluate.DEFAULT_EVAL_SEED (the test seeds learn reports final results on)

EPILOG = f"""\
agents (--policy / --compare):
  a checkpoint file (runs/NAME/checkpoints/best.pt), or the built-in baseline 'autopilot' ('autopilot:noisy',
  'autopilot:expert', ...), the pure-pursuit driver that records demos - handy to compare agents against.

outputs (in --out, default {DEFAULT_OUT_ROOT}/<name>-<YYYYmmdd-HHMMSS> under the current directory, where <name> is
  the checkpoint's run and file (NAME-best), 'autopilot-<skill>', 'dataset-<NAME>' or 'compare-<...>'):
  ep00_seed<S>.mp4 ...  one H.264 video per episode (demo<I>.mp4 for a dataset; episodes.mp4 with --concat;
                        compare.mp4 for --compare), {FPS} fps = real time, outcome banner held 1 s at the end
  eval_info.json        per episode: seed, success, crash, steps, time_to_goal, return; totals: success %, mean return
  trajectories.png      every episode's path on the track, coloured by outcome (one panel per run)
  preview.png           one frame from the middle of the first episode

episodes: rollouts use env defaults (start jitter etc.) and seeds S, S+1, ... (--seed S, --episodes N), like
  learn's evaluation. For a dataset, --episodes picks episode indices (0,3,7 or 2-5; default the first 5), and
  --compare with --dataset starts every agent exactly where each demo started.

--live keys: space play/pause, right/. step one frame, up/+ faster, down/- slower, n next episode, q/esc quit.

examples:
  python -m replay --policy runs/td3bc/checkpoints/best.pt --episodes 5 --seed 100
  python -m replay --policy autopilot:noisy --view both
  python -m replay --dataset s_expert --episodes 0,3,7
  python -m replay --compare runs/bc/checkpoints/best.pt runs/td3bc/checkpoints/best.pt autopilot --dataset s_expert
"""


@dataclass
class ReplayConfig:
    policy: str | None
    dataset: str | None
    compare: list[str] | None
    episodes: str | None
    seed: int
    track: str | None
    out: Path | None
    view: str
    concat: bool
    live: bool
    lidar: bool


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m replay", formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Roll out trained policies (or the autopilot) and play back recorded "
                                            "demonstrations as MP4 videos, a trajectory plot and eval_info.json.",
                                epilog=EPILOG)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--policy", metavar="CKPT", help="checkpoint .pt file, or 'autopilot[:skill]'")
    what.add_argument("--compare", nargs="+", metavar="CKPT",
                      help="several agents side by side in one video (same seeds/starts); with --dataset the demo "
                           "is the first panel")
    p.add_argument("--dataset", metavar="NAME", help="dataset name (e.g. s_expert) or Minari id: play back its demos")
    p.add_argument("--episodes", metavar="N|I,J,..",
                   help="rollouts: number of episodes (default 5); dataset: indices 0,3,7 or 2-5 (default 0-4)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"seed of the first rollout episode (default {DEFAULT_SEED}: learn's test seeds, so the numbers "
                        f"match `python -m learn.evaluate`)")
    p.add_argument("--track", help="track name or .json for the autopilot (default: the checkpoint's / dataset's "
                                   "track, else s_curve)")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: see below)")
    p.add_argument("--view", choices=VIEWS, default="topdown",
                   help="top-down map (default, fast), pybullet chase camera (~40 ms/frame), or both stacked")
    p.add_argument("--concat", action="store_true", help="one episodes.mp4 instead of one video per episode")
    p.add_argument("--live", action="store_true", help="play in a pygame window instead of writing files")
    p.add_argument("--lidar", action="store_true", help="draw the lidar rays in the top-down view")
    return p


def parse_args(argv=None) -> ReplayConfig:
    parser = build_parser()
    a = parser.parse_args(argv)
    if not (a.policy or a.dataset or a.compare):
        parser.error("choose what to show: --policy CKPT, --dataset NAME or --compare CKPT CKPT ...")
    if a.policy and a.dataset:
        parser.error("--policy and --dataset show different things: use --compare CKPT --dataset NAME to put a "
                     "policy next to the demos")
    if a.compare and len(a.compare) < 2 and not a.dataset:
        parser.error("--compare needs two or more agents (or one agent with --dataset NAME to set it beside the demos)")
    return ReplayConfig(a.policy, a.dataset, a.compare, a.episodes, a.seed, a.track, a.out, a.view, a.concat,
                        a.live, a.lidar)


def gather(cfg: ReplayConfig):
    """(track, runs, default output name, video naming) for the chosen mode."""
    if cfg.policy:
        spec = agents.resolve(cfg.policy, cfg.seed)
        track = resolve_track([(cfg.policy, spec.track)], cfg.track)
        seeds = episode_seeds(cfg.seed, parse_count(cfg.episodes))
        return track, policy_runs([spec], track, seeds), spec.name, "seed"
    if not cfg.compare:  # dataset playback
        track_name, demos = load_demos(cfg.dataset, cfg.episodes)
        track = resolve_track([(f"dataset {cfg.dataset}", track_name)], cfg.track)
        return track, [Run(f"dataset {cfg.dataset}", f"dataset {cfg.dataset}", demos,
                           {"track": track.name})], f"dataset-{agents.slug(cfg.dataset)}", "demo"
    specs = [agents.resolve(text, cfg.seed) for text in cfg.compare]
    wanted = [(s.text, s.track) for s in specs]
    name = "compare-" + "-vs-".join(s.name for s in specs)[:80]
    if cfg.dataset:
        track_name, demos = load_demos(cfg.dataset, cfg.episodes)
        track = resolve_track([(f"dataset {cfg.dataset}", track_name)] + wanted, cfg.track)
        seeds = [tr.seed for tr in demos]
        demo_run = Run(f"demo ({cfg.dataset})", f"dataset {cfg.dataset}", demos,
                       {"track": track.name})
        runs = [demo_run] + policy_runs(specs, track, seeds, [start_options(tr) for tr in demos],
                                        [tr.episode for tr in demos])
    else:
        track = resolve_track(wanted, cfg.track)
        runs = policy_runs(specs, track, episode_seeds(cfg.seed, parse_count(cfg.episodes)))
    unique_labels(runs)
    return track, runs, name, "compare"


def default_out(name: str) -> Path:
    out = DEFAULT_OUT_ROOT / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    k = 1
    while out.exists():  # two runs in the same second must not mix their files
        k += 1
        out = DEFAULT_OUT_ROOT / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{k}"
    return out


def video_names(kind: str, runs: list[Run], concat: bool) -> list[str]:
    if kind == "compare":
        return ["compare.mp4"]
    if concat:
        return ["episodes.mp4"]
    if kind == "demo":
        return [f"demo{tr.episode:03d}.mp4" for tr in runs[0].traces]
    return [f"ep{i:02d}_seed{tr.seed}.mp4" for i, tr in enumerate(runs[0].traces)]


def write_outputs(out: Path, track, runs: list[Run], clips: list[Clip], names: list[str]) -> list[Path]:
    """Numbers and plot first (fast, and useful even if video encoding is interrupted), then the videos."""
    blocks = [run_info(r.label, r.source, r.traces, **r.extra) for r in runs]
    # a single run keeps its block at the top level (episodes, totals) for easy reading
    write_json(out / "eval_info.json", {"track": track.name, **blocks[0]} if len(runs) == 1
               else {"track": track.name, "runs": blocks})
    plot_trajectories(out / "trajectories.png", track, [(r.label, r.traces) for r in runs])
    first = clips[0]
    write_png(out / "preview.png", first.frame(first.n // 2))
    chains = [clips] if len(names) == 1 else [[c] for c in clips]
    videos = []
    for name, chain in tqdm(list(zip(names, chains)), desc="videos", unit="mp4", disable=len(names) < 2,
                            dynamic_ncols=True):
        frames = (clip.frame(f) for clip in chain for f in range(clip.n))
        videos.append(write_mp4(out / name, frames, total=sum(c.n for c in chain), desc=name))
    return videos


def run(cfg: ReplayConfig) -> int:
    track, runs, name, kind = gather(cfg)
    if not runs or not runs[0].traces:
        raise ReplayError("nothing to show: no episodes selected")
    renderer = TraceRenderer(track, view=cfg.view, lidar=cfg.lidar)
    try:
        if kind == "compare":
            _, clips = grid_clips(renderer, runs)
        else:
            clips = single_clips(renderer, runs[0])
        for r in runs:
            t = r.traces
            rate = 100.0 * sum(x.success for x in t) / len(t)
            mean_ret = sum(x.episode_return for x in t) / len(t)
            print(f"{r.label}: {sum(x.success for x in t)}/{len(t)} reached the goal ({rate:.0f}%), "
                  f"{sum(x.crash for x in t)} crashed, mean return {mean_ret:.2f}")
        if cfg.live:
            from .live import play
            play(clips, title=f"replay - {name}")
            print("replay: live session closed (no files written)")
            return 0
        out = cfg.out or default_out(name)
        videos = write_outputs(out, track, runs, clips, video_names(kind, runs, cfg.concat))
    finally:
        renderer.close()
    print(f"replay: wrote {len(videos)} video(s), eval_info.json, trajectories.png, preview.png to {out}")
    return 0


def main(argv=None) -> int:
    cfg = parse_args(argv)
    try:
        return run(cfg)
    except ReplayError as e:
        print(f"replay: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("replay: interrupted (finished files are kept; the partial video was removed)", file=sys.stderr)
        return 130
