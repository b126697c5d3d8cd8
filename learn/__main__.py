"""python -m learn: train an offline agent (BC, TD3+BC, CQL or IQL) from a recorded dataset.

Examples:
  python -m learn --dataset s_expert --algo bc
  python -m learn --dataset s_noisy --algo iql --seed 3
  python -m learn --dataset multi_expert --algo td3bc                    # many tracks: evaluated on unseen tracks
  python -m learn --out runs/s_expert_td3bc_s0 --resume --steps 8000     # continue a run, step count continues
Results land in the run folder (default runs/<dataset>_<algo>_s<seed>): config.json, tb/ (TensorBoard),
checkpoints/{last,best}.pt, eval.json, videos/best.mp4. Use a checkpoint with learn.load_policy(path),
`python -m learn.evaluate CKPT` or `python -m replay --policy CKPT`.

Every flag above is a field of learn/config.py (defaults live there only); algorithm flags apply to their
algorithm, and giving one to another algorithm is an error.
"""
from __future__ import annotations

if __name__ == "__main__":   # a Ctrl-C while the program loads ends it quietly; racecar_env.cli.entry takes over
    import signal
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_DFL)

import argparse
import sys
import typing
from dataclasses import MISSING, fields
from pathlib import Path

from racecar_env import cli

from .config import (ALGO_CONFIGS, CRITIC_SETTINGS, RUN_CONTROL, AlgoConfig, ConfigError, CriticConfig, RunConfig,
                     TrainConfig, same_value)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_fields(group, cls, skip: set[str], defaults_note) -> None:
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name in skip:
            continue
        kind = hints[f.name]
        meta = f.metadata
        argtype = {int: int, float: float}.get(kind, str)
        metavar = None if meta.get("choices") else {int: "N", float: "X", str: "TEXT"}.get(kind, "N,N")
        note = defaults_note(f)
        if kind is bool:   # --flag / --no-flag
            group.add_argument(_flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                               help=meta.get("help", "") + (f" ({note})" if note else ""))
            continue
        group.add_argument(_flag(f.name), dest=f.name, type=argtype, default=None, metavar=metavar,
                           choices=meta.get("choices"), help=meta.get("help", "") + (f" ({note})" if note else ""))


def _default_text(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def build_parser() -> argparse.ArgumentParser:
    doc = __doc__.split("\n\n")
    p = cli.ArgumentParser(prog="python -m learn", description=doc[0], epilog="\n\n".join(doc[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_fields(p.add_argument_group("run"), RunConfig, set(),
                lambda f: f"default {_default_text(f.default)}" if f.default != "" else "")
    shared = {f.name for f in fields(AlgoConfig)}

    def per_algo(f):
        values = {a: c.__dataclass_fields__[f.name].default for a, c in ALGO_CONFIGS.items()
                  if f.name in c.__dataclass_fields__}
        if len(set(map(str, values.values()))) == 1:
            return f"default {_default_text(next(iter(values.values())))}"
        return "default " + ", ".join(f"{a} {_default_text(v)}" for a, v in values.items())

    _add_fields(p.add_argument_group("every algorithm"), AlgoConfig, set(), per_algo)
    with_critics = [a for a, c in ALGO_CONFIGS.items() if issubclass(c, CriticConfig)]
    _add_fields(p.add_argument_group(", ".join(with_critics), CriticConfig.__doc__.strip()), CriticConfig, shared,
                per_algo)
    for name, cls in ALGO_CONFIGS.items():
        skip = shared | (CRITIC_SETTINGS if issubclass(cls, CriticConfig) else set())
        if {f.name for f in fields(cls)} - skip:
            _add_fields(p.add_argument_group(f"{name} only", cls.__doc__.strip()), cls, skip,
                        lambda f: f"default {_default_text(f.default if f.default is not MISSING else '')}")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoints/last.pt, "
                   "with the settings it trained with (a config.json that disagrees with them is refused)")
    p.add_argument("--quiet", action="store_true", help="no progress output, only the final lines")
    return p


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    given = {k: v for k, v in vars(a).items() if v is not None and k not in ("resume", "quiet")}
    if not a.resume:
        return TrainConfig.build(**given)
    if not a.out:
        raise ConfigError("--resume needs --out <run folder> (the folder holding checkpoints/last.pt)")
    cfg_path = Path(a.out) / "config.json"
    if not cfg_path.is_file():
        raise ConfigError(f"--resume: {cfg_path} not found; is {a.out} a run folder?")
    saved = TrainConfig.load(cfg_path).to_dict()
    steer = (*RUN_CONTROL, "out")
    # a flag repeating the run's value is fine however it is spelt (--hidden 256,256, --dataset racecar/NAME-v0)
    changed = [k for k in given if k not in steer and not same_value(k, given[k], saved.get(k))]
    if changed:
        raise ConfigError(f"--resume keeps the run's settings; cannot change {', '.join(map(_flag, changed))} "
                          f"(only {', '.join(map(_flag, RUN_CONTROL))})")
    # learning settings as config.json has them: train() refuses a config.json that disagrees with last.pt
    return TrainConfig.from_dict({**saved, **{k: v for k, v in given.items() if k in steer}}, source=str(cfg_path))


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError
    a = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(a)
        from .train import train
        res = train(cfg, resume=a.resume, progress=not a.quiet)
    except (ConfigError, CheckpointError, ValueError) as e:
        print(f"python -m learn: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if res.final:
        f = res.final
        ttg = f["mean_time_to_goal_s"]
        print(f"best.pt (step {f['step']}): success {f['success_rate']:.0%} on {f['episodes']} test episodes, "
              f"crash {f['crash_rate']:.0%}, time-to-goal {'-' if ttg is None else f'{ttg:.2f} s'}")
    best = "checkpoints/best.pt" if (Path(res.out) / "checkpoints" / "best.pt").is_file() else \
        "checkpoints/last.pt; no best.pt"
    print(f"done in {res.wall_s / 60:.1f} min: results in {res.out}/ (eval.json, {best}, "
          f"tb/ -> tensorboard --logdir {res.out}/tb)")
    return 0


if __name__ == "__main__":
    sys.exit(cli.entry(main, "python -m learn"))
