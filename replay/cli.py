"""`python -m replay`: watch agents and demonstrations as MP4s, trajectory plots and eval_info.json."""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from racecar_env import cli
from racecar_env.evaluation import TEST_SEED
from racecar_env.files import unwritable
from racecar_env.media import FPS, write_mp4, write_png
from racecar_env.progress import Progress
from racecar_env.render import VIEWS, EpisodeRenderer
from racecar_env.tracks import load_track

from . import agents
from .errors import ReplayError
from .plot import plot_trajectories
from .session import (DEFAULT_TRACK, GRID_PAGE, GRID_PANEL, MAX_EPISODES, Clip, Run, compare_clips, describe,
                      episode_clips, load_demos, parse_count, policy_runs, run_grid_clips, several_tracks,
                      start_options, track_arg, unique_labels)

DEFAULT_OUT_ROOT = Path("runs") / "replay"
# what replay writes into --out: a folder holding any of these already holds replay output
OUTPUT_FILES = ("eval_info.json", "trajectories.png", "preview.png")
VIDEO_PATTERNS = ("ep*_seed*.mp4", "demo*.mp4", "episodes.mp4", "grid.mp4", "grid_*.mp4", "compare.mp4")

EPILOG = f"""\
agents (--policy / --compare):
  a checkpoint file (runs/NAME/checkpoints/best.pt), or the built-in baseline 'autopilot' ('autopilot:noisy',
  'autopilot:expert', ...), the pure-pursuit driver that records demos - handy to compare agents against.

tracks: every episode is drawn on its own track. --track takes a shipped name (s_curve, hairpin), a track .json,
  gen:SEED, or random / random:test (a generated track per episode, drawn from the episode's seed: the same seeds
  give every agent the same tracks). Default: the checkpoint's own evaluation track, else {DEFAULT_TRACK}. A
  checkpoint shown on a track it was not trained on prints a note and runs anyway. Demos (--dataset) are drawn on
  the track stored with each.

outputs (in --out, default {DEFAULT_OUT_ROOT}/<name>-<YYYYmmdd-HHMMSS>, <name> = the checkpoint's run and file
  (NAME-best), 'autopilot-<skill>', 'dataset-<NAME>' or 'compare-<...>'):
  ep00_seed<S>.mp4 ...  one H.264 video per episode when all episodes share one track (demo<I>.mp4 for a dataset)
  grid.mp4              one video of all episodes side by side, each panel labelled with its track and outcome:
                        the default when the episodes are on different tracks (--grid forces it, --each adds the
                        per-episode videos; over {GRID_PAGE} episodes: grid_1.mp4, grid_2.mp4, ...)
  episodes.mp4          with --concat: every episode one after the other
  compare.mp4           with --compare: one labelled panel per agent, episode after episode
                        (videos: {FPS} fps = real time, the outcome banner held 1 s at the end of each episode)
  eval_info.json        racecar_env.evaluation's result: rates (fractions 0..1) of success/crash/timeout/aborted,
                        mean return/time-to-goal/progress, and per episode: seed, track, outcome, steps, return ...
  trajectories.png      every path, coloured by outcome: one map per run, or one small map per track
  preview.png           the middle frame of the first video
  An --out folder that already holds replay output is refused (nothing is overwritten); --overwrite replaces
  those files (and only those).

episodes: rollouts use the env defaults (start jitter etc.) and seeds S, S+1, ... (--seed S, default {TEST_SEED}, the
  test seeds learn reports; --episodes N), exactly like `python -m learn.evaluate`, so the numbers agree. For a
  dataset, --episodes picks episode indices (0,3,7 or 2-5; default the first 5), and --compare with --dataset starts
  every agent exactly where each demo started, on its track.

--live keys: space play/pause, right/. step one frame, up/+ faster, down/- slower, n next episode, q/esc quit.

examples:
  python -m replay --policy runs/td3bc/checkpoints/best.pt --episodes 5
  python -m replay --policy runs/gen/checkpoints/best.pt --track random:test --episodes 6   # grid.mp4, 6 tracks
  python -m replay --policy autopilot:noisy --view both
  python -m replay --dataset s_expert --episodes 0,3,7
  python -m replay --compare runs/bc/checkpoints/best.pt runs/td3bc/checkpoints/best.pt autopilot --dataset s_expert
"""


@dataclass
class ReplayConfig:
    policy: str | None = None
    dataset: str | None = None
    compare: list[str] | None = None
    episodes: str | None = None
    seed: int = TEST_SEED
    track: str | None = None
    out: Path | None = None
    overwrite: bool = False
    view: str = "topdown"
    grid: bool = False
    each: bool = False
    concat: bool = False
    live: bool = False
    lidar: bool = False
    workers: "int | str" = "auto"
    quiet: bool = False


def _folder(text: str) -> Path:
    if not text.strip():   # Path("") is ".": an empty $OUT would scatter the files into the current folder
        raise argparse.ArgumentTypeError("expected a folder name, got ''")
    return Path(text)


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(prog="python -m replay", formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Roll out trained policies (or the autopilot) and play back recorded "
                                            "demonstrations as MP4 videos, a trajectory plot, a preview image and "
                                            "eval_info.json.",
                                epilog=EPILOG)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--policy", metavar="CKPT", help="checkpoint .pt file, or 'autopilot[:skill]'")
    what.add_argument("--compare", nargs="+", metavar="CKPT",
                      help="several agents side by side in one video (same seeds, so the same starts and tracks); "
                           "with --dataset the demo is the first panel")
    p.add_argument("--dataset", metavar="NAME", help="dataset name (e.g. s_expert): play back its demos")
    p.add_argument("--episodes", metavar="N|I,J,..",
                   help=f"rollouts: number of episodes (default 5, at most {MAX_EPISODES}); dataset: indices 0,3,7 or "
                        f"2-5 (default 0-4)")
    p.add_argument("--seed", type=cli.seed, default=None,
                   help=f"seed of the first rollout episode (default {TEST_SEED}: learn's test seeds)")
    p.add_argument("--track", help="track for rollouts: a name, a .json, gen:SEED, random or random:test "
                                   "(default: the checkpoint's evaluation track, else s_curve)")
    p.add_argument("--out", type=_folder, metavar="DIR", help="output folder (default: see below)")
    p.add_argument("--overwrite", action="store_true", help="replace replay output already in --out")
    p.add_argument("--view", choices=VIEWS, default="topdown",
                   help="top-down map (default, fast), pybullet chase camera (~50 ms/frame), or both stacked")
    p.add_argument("--grid", action="store_true", help="one grid.mp4 of all episodes, even on one track")
    p.add_argument("--each", action="store_true",
                   help="one MP4 per episode, also when the episodes are on different tracks (next to grid.mp4)")
    p.add_argument("--concat", action="store_true", help="one episodes.mp4, every episode one after the other")
    p.add_argument("--live", action="store_true", help="play in a pygame window instead of writing files")
    p.add_argument("--lidar", action="store_true", help="draw the lidar rays in the top-down view")
    p.add_argument("--workers", type=cli.workers, default="auto", metavar="auto|N",
                   help="env processes for the rollouts (default auto: one per CPU); same episodes either way")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
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
    if a.compare and (a.grid or a.each or a.concat):
        parser.error("--grid, --each and --concat choose the videos of --policy or --dataset; --compare always "
                     "writes compare.mp4")
    if a.concat and (a.grid or a.each):
        parser.error("--concat writes one episodes.mp4: it does not go with --grid or --each")
    if a.lidar and a.view == "chase":   # it drew nothing: the rays are drawn on the top-down map
        parser.error("--lidar draws the rays on the top-down map: use it with --view topdown or --view both")
    if a.dataset and a.seed is not None:   # it was silently ignored: every demo (and rollout beside it) has its own
        parser.error("--seed does not apply to --dataset: each demo is shown (and, with --compare, driven) from "
                     "the seed and start it was recorded with")
    seed = TEST_SEED if a.seed is None else a.seed
    return ReplayConfig(a.policy, a.dataset, a.compare, a.episodes, seed, a.track, a.out, a.overwrite, a.view,
                        a.grid, a.each, a.concat, a.live, a.lidar, a.workers, a.quiet)


# --- what to show ---------------------------------------------------------------------------------------------------
@dataclass
class Plan:
    kind: str            # "policy", "dataset" or "compare"
    runs: list[Run]
    name: str            # default output folder name
    track: str           # the track argument, for eval_info.json


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _rollout_track(cfg: ReplayConfig, specs: list[agents.AgentSpec]):
    if cfg.track is not None:
        return track_arg(cfg.track)
    for s in specs:
        if s.default_track is not None:
            return track_arg(s.default_track, f"checkpoint {s.text}: its evaluation track")
    return load_track(DEFAULT_TRACK)


def gather(cfg: ReplayConfig) -> Plan:
    if cfg.dataset and cfg.track is not None:
        raise ReplayError("--track does not apply to --dataset: each demo is drawn (and, with --compare, driven) "
                          "on the track it was recorded on")
    common = dict(workers=cfg.workers, quiet=cfg.quiet, note=_note)
    if cfg.policy:
        n = parse_count(cfg.episodes)
        if cfg.track is not None:
            track_arg(cfg.track)  # a bad --track fails before a checkpoint is loaded
        spec = agents.resolve(cfg.policy)
        track = _rollout_track(cfg, [spec])
        runs = policy_runs([spec], track, [cfg.seed + i for i in range(n)], **common)
        return Plan("policy", runs, spec.name, describe(track))
    if not cfg.compare:
        run = load_demos(cfg.dataset, cfg.episodes)
        return Plan("dataset", [run], f"dataset-{agents.slug(cfg.dataset)}", "each demo's track")
    n = None if cfg.dataset else parse_count(cfg.episodes)
    if cfg.track is not None:
        track_arg(cfg.track)
    specs = [agents.resolve(text) for text in cfg.compare]
    name = "compare-" + "-vs-".join(s.name for s in specs)[:80]
    if cfg.dataset:
        demos = load_demos(cfg.dataset, cfg.episodes)
        demos.label = f"demo ({cfg.dataset})"
        eps = demos.episodes
        runs = [demos] + policy_runs(specs, eps[0].track, [e.meta.get("seed") for e in eps],
                                     options=[start_options(e) for e in eps], numbers=demos.numbers,
                                     track_info="each demo's track", **common)
        track = "each demo's track"
    else:
        t = _rollout_track(cfg, specs)
        runs = policy_runs(specs, t, [cfg.seed + i for i in range(n)], **common)
        track = describe(t)
    unique_labels(runs)
    return Plan("compare", runs, name, track)


# --- outputs --------------------------------------------------------------------------------------------------------
def replay_outputs(folder: Path) -> list[Path]:
    """Files in `folder` that replay writes (and only those: --overwrite never touches anything else)."""
    found = [folder / n for n in OUTPUT_FILES if (folder / n).is_file()]
    for pattern in VIDEO_PATTERNS:
        found += sorted(p for p in folder.glob(pattern) if p.is_file())
    return found


def check_out(out: Path, overwrite: bool) -> None:
    """--out must be a folder (or not exist yet) and must not hold earlier replay output unless --overwrite."""
    if out.exists() and not out.is_dir():
        raise ReplayError(f"--out {out} is a file; expected a folder (it is created if missing)")
    why = unwritable(out)   # said now, not after the episodes were run and drawn
    if why:
        raise ReplayError(f"--out {out}: {why}")
    if out.is_dir() and not overwrite:
        old = replay_outputs(out)
        if old:
            raise ReplayError(f"--out {out} already holds replay output ({', '.join(p.name for p in old[:3])}"
                              f"{', ...' if len(old) > 3 else ''}): choose a new folder, or add --overwrite to "
                              f"replace those files")


def default_out(name: str) -> Path:
    out = DEFAULT_OUT_ROOT / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    k = 1
    while out.exists():  # two runs in the same second must not mix their files
        k += 1
        out = DEFAULT_OUT_ROOT / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{k}"
    return out


@dataclass
class Video:
    name: str
    clips: list[Clip]     # drawn one after the other
    main: bool = True     # shown by --live (per-episode extras next to a grid are not)

    @property
    def frames(self) -> int:
        return sum(c.n for c in self.clips)


def plan_videos(cfg: ReplayConfig, plan: Plan) -> tuple[list[Video], list[EpisodeRenderer]]:
    """The videos to write, and the renderers drawing them (to close). Panels and chained episodes on different
    tracks are drawn at one fixed size (every track fitted in it); a video of one episode at its track's own scale."""
    several = several_tracks(plan.runs)
    fixed = EpisodeRenderer(cfg.view, size=GRID_PANEL if several else None, lidar=cfg.lidar)
    renderers = [fixed]
    if plan.kind == "compare":
        return [Video("compare.mp4", compare_clips(fixed, plan.runs))], renderers
    run = plan.runs[0]
    if cfg.concat:
        return [Video("episodes.mp4", episode_clips(fixed, run))], renderers
    videos = []
    grid = several or cfg.grid
    if grid:
        pages = run_grid_clips(fixed, run, "demo" if plan.kind == "dataset" else "ep")
        names = ["grid.mp4"] if len(pages) == 1 else [f"grid_{k + 1}.mp4" for k in range(len(pages))]
        videos += [Video(n, [c]) for n, c in zip(names, pages)]
    if cfg.each or not grid:
        own = EpisodeRenderer(cfg.view, lidar=cfg.lidar) if several else fixed
        if own is not fixed:
            renderers.append(own)
        if plan.kind == "dataset":
            names = [f"demo{n:03d}.mp4" for n in run.numbers]
        else:
            names = [f"ep{n:02d}_seed{e.meta['seed']}.mp4" for n, e in zip(run.numbers, run.episodes)]
        videos += [Video(n, [c], main=not grid) for n, c in zip(names, episode_clips(own, run))]
    return videos, renderers


def eval_info(cfg: ReplayConfig, plan: Plan, videos: list[Video]) -> dict:
    names = [v.name for v in videos]
    if plan.kind == "compare":
        return {"track": plan.track, "view": cfg.view, "runs": [r.block() for r in plan.runs], "videos": names}
    return {**plan.runs[0].block(), "view": cfg.view, "videos": names}


def write_outputs(cfg: ReplayConfig, out: Path, plan: Plan, videos: list[Video]) -> None:
    """Numbers, plot and preview first (fast, and useful even if video encoding is interrupted), then the videos."""
    if cfg.overwrite and out.is_dir():
        for old in replay_outputs(out):
            old.unlink()
    out.mkdir(parents=True, exist_ok=True)
    from racecar_env.files import write_json
    write_json(out / "eval_info.json", eval_info(cfg, plan, videos))
    plot_trajectories(out / "trajectories.png", [(r.label, r.episodes) for r in plan.runs])
    first = videos[0].clips[0]
    write_png(out / "preview.png", first.frame(first.n // 2))
    with Progress(sum(v.frames for v in videos), "render", "frame", quiet=cfg.quiet) as bar:
        for v in videos:
            bar.set_postfix(v.name)

            def frames(v=v):
                for clip in v.clips:
                    for f in range(clip.n):
                        yield clip.frame(f)
                        bar.update()
            write_mp4(out / v.name, frames(), total=v.frames, desc=v.name, quiet=True)


def run(cfg: ReplayConfig) -> int:
    if cfg.live:   # before any work: no screen, or a bad --out, costs nothing
        from .live import check_display, unattended
        check_display()
        if unattended():
            _note("replay: SDL_VIDEODRIVER draws no window: --live plays every episode once, unseen, then closes")
    elif cfg.out is not None:
        check_out(cfg.out, cfg.overwrite)
    plan = gather(cfg)
    if not plan.runs or not plan.runs[0].episodes:
        raise ReplayError("nothing to show: no episodes selected")
    for r in plan.runs:
        print(f"{r.label}: {r.result.line()}", flush=True)
    videos, renderers = plan_videos(cfg, plan)
    try:
        if cfg.live:
            from .live import play
            play([c for v in videos if v.main for c in v.clips], title=f"replay - {plan.name}")
            print("replay: live session closed (no files written)")
            return 0
        out = cfg.out or default_out(plan.name)
        write_outputs(cfg, out, plan, videos)
    finally:
        for r in renderers:
            r.close()
    print(f"replay: wrote {len(videos)} video(s), eval_info.json, trajectories.png, preview.png to {out}")
    return 0


def main(argv=None) -> int:
    from racecar_env.rollout import EnvError
    cfg = parse_args(argv)
    try:
        return run(cfg)
    except (ReplayError, EnvError) as e:
        print(f"replay: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:   # a full disk, a folder it may not write to
        if isinstance(e, BrokenPipeError):
            raise
        print(f"replay: error: cannot write {e.filename or 'the output'}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("replay: interrupted (finished files are kept; the partial video was removed)", file=sys.stderr)
        return 130
