"""python -m learn.evaluate: test a checkpoint on seeded episodes, on its own track or any other.

    python -m learn.evaluate runs/NAME/checkpoints/best.pt --episodes 50
    python -m learn.evaluate CKPT --track hairpin               # a track it never saw: a note, not a refusal
    python -m learn.evaluate CKPT --track random:test --episodes 100   # 100 unseen generated tracks
    python -m learn.evaluate CKPT --start-jitter 0.3,0.3        # a wider start distribution than the data's

Episode i uses env seed SEED+i (default 20000+i, the test seeds `python -m learn` reports); success, crash and
timeout rates, return, time-to-goal and progress are printed, and written with every episode to --json.
"""
from __future__ import annotations

if __name__ == "__main__":   # a Ctrl-C while the program loads ends it quietly; racecar_env.cli.entry takes over
    import signal
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_DFL)

import argparse
import sys
from pathlib import Path

from racecar_env import cli, spec
from racecar_env.evaluation import TEST_SEED, evaluate
from racecar_env.files import unwritable, write_json
from racecar_env.progress import Progress
from racecar_env.tracks import TrackError

from .tracks import evaluation_track


MAX_JITTER = (2.0, 3.1416)   # m, rad: more would start the car anywhere, not near the track's start
MAX_EPISODES = 10_000        # every episode is kept until the end: 1e11 filled the RAM before the first one ran


def _episodes(text: str) -> int:
    n = cli.count(text)
    if n > MAX_EPISODES:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_EPISODES}, got {text!r}")
    return n


def _jitter(text: str) -> tuple[float, float]:
    try:
        m, rad = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected METRES,RADIANS (e.g. 0.3,0.3), got {text!r}") from None
    if not (0 <= m <= MAX_JITTER[0] and 0 <= rad <= MAX_JITTER[1]):
        raise argparse.ArgumentTypeError(f"start jitter must be 0..{MAX_JITTER[0]:g} m and 0..{MAX_JITTER[1]:g} rad, "
                                         f"got {text!r}")
    return m, rad


def _output(suffix: str):
    def parse(text: str) -> Path:
        path = Path(text)
        if path.suffix.lower() != suffix:
            raise argparse.ArgumentTypeError(f"expected a {suffix} file name, got {text!r}")
        try:   # every filesystem call: a name too long is an OSError, refused now rather than after the episodes
            if path.is_dir():
                raise argparse.ArgumentTypeError(f"{text} is a folder; expected a {suffix} file name")
        except OSError as e:
            raise argparse.ArgumentTypeError(f"cannot write {text}: {e.strerror or e}") from None
        why = unwritable(path.parent)
        if why:
            raise argparse.ArgumentTypeError(f"cannot write {text}: {why}")
        return path
    return parse


def build_parser() -> argparse.ArgumentParser:
    doc = __doc__.split("\n\n")
    p = cli.ArgumentParser(prog="python -m learn.evaluate", description=doc[0], epilog="\n\n".join(doc[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a learn checkpoint, e.g. runs/NAME/checkpoints/best.pt")
    p.add_argument("--episodes", type=_episodes, default=50,
                   help=f"seeded episodes (default 50, at most {MAX_EPISODES:,})")
    p.add_argument("--seed", type=cli.seed, default=TEST_SEED, help="seed of episode 0 (default %(default)s)")
    p.add_argument("--track", default=None, help="track: a shipped name, a .json path, gen:SEED, random (training "
                   "range) or random:test (unseen generated tracks); default: what the checkpoint was evaluated on")
    p.add_argument("--start-jitter", type=_jitter, default=None, metavar="M,RAD",
                   help="start pose jitter (default: the env's 0.1,0.1)")
    p.add_argument("--workers", type=cli.workers, default="auto",
                   help="env processes: auto (one per CPU) or a number (default auto)")
    p.add_argument("--video", type=_output(".mp4"), default=None, help="write the first episode as this .mp4 file")
    p.add_argument("--json", type=_output(".json"), default=None,
                   help="write the results (summary + every episode) to this .json file")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def main(argv: list[str] | None = None) -> int:
    from racecar_env.rollout import EnvError

    from .checkpoint import CheckpointError, load_policy
    a = build_parser().parse_args(argv)
    if a.json is not None and a.video is not None and a.json.resolve() == a.video.resolve():
        print("python -m learn.evaluate: error: --json and --video name the same file", file=sys.stderr)
        return 2
    try:
        policy = load_policy(a.checkpoint)
        track = a.track or policy.track or "s_curve"
        if isinstance(track, str):
            track = evaluation_track(track)   # a random spec checked, anything else loaded (learn.tracks)
        if not isinstance(track, str) and policy.note_for(track):
            print(policy.note_for(track), file=sys.stderr)
        env_kwargs = {} if a.start_jitter is None else {"start_jitter": a.start_jitter}
        with Progress(a.episodes, "eval", "ep", quiet=a.quiet) as bar:
            res = evaluate(policy, track, a.episodes, a.seed, env_kwargs=env_kwargs, workers=a.workers,
                           on_episode=lambda i, e: bar.update())
    except (CheckpointError, TrackError, EnvError, ValueError) as e:   # ConfigError too: all one line
        print(f"python -m learn.evaluate: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("python -m learn.evaluate: interrupted", file=sys.stderr)
        return 130
    print(f"{policy.label} {a.checkpoint}: {res.line()}")
    written = []
    try:
        if a.json:   # first: cheap, and the numbers matter most; with the jitter used (wider starts must show)
            write_json(a.json, {"checkpoint": str(a.checkpoint), "seed0": a.seed,
                                "track": track if isinstance(track, str) else track.name,
                                "start_jitter": list(a.start_jitter or spec.START_JITTER), **res.to_dict()})
            written.append(f"results {a.json}")
        if a.video:
            from racecar_env.media import write_mp4
            from racecar_env.render import EpisodeRenderer
            r = EpisodeRenderer()
            write_mp4(a.video, r.frames(res.rollouts[0], policy.label, 0), total=r.frame_count(res.rollouts[0]),
                      quiet=a.quiet)
            written.append(f"video {a.video}")
    except OSError as e:
        print(f"python -m learn.evaluate: error: cannot write {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
    finally:
        if written:
            print("wrote " + ", ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(cli.entry(main, "python -m learn.evaluate"))
