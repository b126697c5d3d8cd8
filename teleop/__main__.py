"""Command line: record demonstrations, look at datasets.

    python -m teleop [record] --driver autopilot --episodes 20 --skill expert --dataset s_expert [--track hairpin]
    python -m teleop info s_expert
    python -m teleop list
"""
from __future__ import annotations

if __name__ == "__main__":   # a Ctrl-C while the program loads ends it quietly; racecar_env.cli.entry takes over
    import signal
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_DFL)

import argparse
import sys

from racecar_env import cli
from racecar_env.storage import DatasetError, datasets_root

SUBCOMMANDS = ("record", "info", "list")


def _add_record_args(p: argparse.ArgumentParser) -> None:
    from teleop.record import DRIVERS, base_seed

    p.add_argument("--driver", choices=DRIVERS, default="keyboard",
                   help="who drives: keyboard / gamepad open a window; autopilot runs headless (default: keyboard)")
    p.add_argument("--episodes", type=cli.count, default=None,
                   help="episodes to save (default: 10 for the autopilot; keyboard/gamepad record until you quit)")
    from teleop.autopilot import SKILLS
    p.add_argument("--skill", choices=SKILLS, default=None,
                   help="autopilot skill: expert = clean fast lines, noisy = sloppy with crashes, mixed = each "
                        "episode expert or noisy; keyboard-careful / keyboard-sloppy = a simulated person at the "
                        "keyboard (reaction delay, held keys through the keyboard ramps: human-style data; careful "
                        "nearly always finishes, sloppy about a third) (default: expert; --driver autopilot only)")
    p.add_argument("--dataset", metavar="NAME",
                   help="dataset name (stored as Minari id racecar/NAME-v0) or a full Minari id; appended to if it "
                        "exists; episodes of different tracks may share a dataset (default: <track>_<skill> for "
                        "the autopilot, <track>_human otherwise, <track> = the first word of the track name: "
                        "s_expert for --track s_curve --skill expert; a default name refuses a dataset that holds "
                        "other tracks: tracks mix only under a --dataset you give)")
    p.add_argument("--track", default="s_curve",
                   help="shipped track name (s_curve, hairpin), a track .json file, gen:SEED (one generated track), "
                        "or random: a new generated track every episode, from the training seed range "
                        "(default: s_curve)")
    p.add_argument("--seed", type=base_seed, default=0,
                   help="base seed, 0..2**32-1; episode i of the dataset uses a seed derived from (seed, i), "
                        "recorded per episode (default: 0)")
    p.add_argument("--max-episode-steps", type=cli.count, default=None,
                   help="time limit per episode in 20 Hz steps (default: the env's, 1200 = 60 s)")
    p.add_argument("--workers", type=cli.workers, default="auto",
                   help="autopilot: env processes, auto = one per CPU (the episodes are the same for any number; "
                        "default: auto)")
    p.add_argument("--no-progress", "--quiet", dest="no_progress", action="store_true", help="no progress output")


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog="python -m teleop",
        description="Drive the RaceCar (keyboard, gamepad or autopilot) and record demonstrations into local\n"
                    "Minari datasets, or inspect them. `record` is the default subcommand\n"
                    "(`python -m teleop record --help` lists its options).\n"
                    "Datasets live under $MINARI_DATASETS_PATH if set, else ~/.minari/datasets\n"
                    f"(now: {datasets_root()}).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  python -m teleop                                   # drive with the keyboard, record s_human\n"
               "  python -m teleop --driver autopilot --episodes 50  # headless expert demos into s_expert\n"
               "  python -m teleop --driver autopilot --episodes 50 --skill noisy --dataset s_noisy\n"
               "  python -m teleop --driver autopilot --track random --episodes 300 --dataset multi  # 300 new tracks\n"
               "  python -m teleop --track random                    # drive a new generated track every episode\n"
               "  python -m teleop info s_noisy                      # what a dataset holds\n"
               "  python -m teleop list                              # all RaceCar datasets\n"
               "  minari show racecar/s_noisy-v0                     # Minari's own view")
    sub = parser.add_subparsers(dest="command", metavar="{record,info,list}")
    rec = sub.add_parser("record", help="record episodes into a dataset (default)",
                         description="Record episodes into a dataset (created, or appended to). Every finished "
                                     "episode is on disk before the next starts; a crash loses at most the "
                                     "episode in progress.")
    _add_record_args(rec)
    info = sub.add_parser("info", help="summary of one dataset",
                          description="Health (every episode's checksums), episodes, steps, tracks (episodes per "
                                      "track when few), success/crash/timeout counts, return and length "
                                      "statistics, drivers and skills of a dataset. Exit code 1 if it is damaged.")
    info.add_argument("name", help="dataset name or full Minari id")
    sub.add_parser("list", help="all RaceCar datasets under the datasets folder: episodes, steps, tracks, health",
                   description="Every RaceCar dataset under the datasets folder with its episodes, steps, tracks "
                               "and health (every episode's checksums are verified). Exit code 1 if any is "
                               "damaged or unusable.")
    return parser


def _record(args) -> int:
    from racecar_env.storage import check_datasets_root, dataset_id
    from racecar_env.tracks.source import track_source
    from teleop.record import (RecordConfig, check_default_dataset, dataset_state, default_dataset_name,
                               record_autopilot)

    # a bad --track, --dataset or datasets folder fails here, before a window opens or a dataset is made
    source = track_source(args.track)
    check_datasets_root()
    if args.dataset is None:
        args.dataset = default_dataset_name(args.track, args.driver, args.skill)
        # a name the user never gave: it must be valid, and must not mix this track into another track's dataset
        check_default_dataset(args.dataset, args.track, source)
    dataset_id(args.dataset)
    if args.driver in ("keyboard", "gamepad"):
        from teleop.window import run_window_session  # pygame window: only imported when a human drives
        return int(run_window_session(args) or 0)
    cfg = RecordConfig(dataset=args.dataset, episodes=args.episodes or 10, skill=args.skill, track=args.track,
                       seed=args.seed, max_episode_steps=args.max_episode_steps, workers=args.workers,
                       progress=not args.no_progress)
    res = record_autopilot(cfg)
    rate = f"{res.successes / res.added:.0%}" if res.added else "-"
    eps_per_s = res.added / res.seconds if res.seconds > 0 else 0.0
    if res.interrupted:
        print("interrupted: episodes still running were dropped; every finished one is saved", file=sys.stderr)
    print(f"recorded {res.added} episodes ({res.successes} successes, {rate}) in {res.seconds:.1f} s "
          f"({eps_per_s:.2f} episodes/s); {dataset_state(res.dataset_id, res.path, res.total_episodes)}")
    return 130 if res.interrupted else 0


def _info(args) -> int:
    from teleop.summary import format_summary, summarize

    s = summarize(args.name)
    print(format_summary(s))
    return 1 if s["problems"] else 0


def _list(args) -> int:
    from racecar_env.storage import list_datasets
    from teleop.summary import format_list

    rows = list_datasets()
    root = datasets_root()
    if not rows:
        print(f"no RaceCar datasets under {root}")
        return 0
    print(format_list(rows))
    bad = sum(r["health"] != "ok" for r in rows)
    print(f"{len(rows)} datasets under {root}" + (f"; {bad} damaged or unusable" if bad else ""))
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "record")  # `record` is the default subcommand
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "record":
        if args.skill is not None and args.driver != "autopilot":   # a person drives: a skill would be ignored
            parser.error(f"--skill is for --driver autopilot (it picks the autopilot's driving style); "
                         f"--driver {args.driver} records you")
        args.skill = args.skill or "expert"
    from racecar_env.rollout import EnvError
    from racecar_env.tracks import TrackError

    try:
        return {"record": _record, "info": _info, "list": _list}[args.command](args)
    except (DatasetError, TrackError, EnvError) as e:
        print(f"python -m teleop: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(cli.entry(main, "python -m teleop"))
