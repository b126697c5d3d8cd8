"""python -m learn: train an offline agent (BC, TD3+BC or CQL) from a recorded dataset.

Examples:
  python -m learn --dataset s_expert --algo bc
  python -m learn --dataset s_expert --algo td3bc --bc-steps 5000 --steps 4000
  python -m learn --dataset s_expert --algo cql --bc-steps 1000 --steps 3000
  python -m learn --out runs/s_expert_td3bc_s0 --resume --steps 20000     # continue a run, step count continues
Results land in the run folder (default runs/<dataset>_<algo>_s<seed>): config.json, tb/ (TensorBoard),
checkpoints/{last,best}.pt, eval.json, videos/best.mp4. Use a checkpoint with learn.load_policy(path) or
`python -m replay --policy runs/.../checkpoints/best.pt`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import ALGOS, ConfigError, TrainConfig

# small budgets that make a good agent on a 50-episode dataset in about a minute (TD3+BC) on a laptop CPU
# TD3+BC: a long BC phase is cheap and lets the critics converge on the cloned policy before the actor follows them;
# with 2k it passed through a crash-prone phase (0% for ~4k updates on 5 demos), with 5k it did not.
DEFAULT_STEPS = {"bc": 3_000, "td3bc": 4_000, "cql": 2_000}
DEFAULT_BC_STEPS = {"bc": 0, "td3bc": 5_000, "cql": 1_000}
DEFAULT_EVAL_EVERY = {"bc": 1_000, "td3bc": 1_000, "cql": 500}  # success swings: evaluate often, pick the best


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m learn", description=__doc__.split("\n\n")[0],
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", help="dataset name (e.g. s_expert) or full Minari id (default s_expert)")
    p.add_argument("--algo", choices=ALGOS, help="learner (default td3bc)")
    p.add_argument("--steps", type=int, help="RL (or BC) updates after pretraining "
                   f"(default {', '.join(f'{k} {v}' for k, v in DEFAULT_STEPS.items())})")
    p.add_argument("--bc-steps", type=int, help="actor BC pretraining updates before td3bc/cql, 0 = off "
                   f"(default {', '.join(f'{k} {v}' for k, v in DEFAULT_BC_STEPS.items() if k != 'bc')})")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--out", help="run folder (default runs/<dataset>_<algo>_s<seed>)")
    p.add_argument("--eval-every", type=int, help="updates between evaluations, 0 = only at the end "
                   f"(default {', '.join(f'{k} {v}' for k, v in DEFAULT_EVAL_EVERY.items())})")
    p.add_argument("--eval-episodes", type=int, help="episodes per periodic evaluation (default 10)")
    p.add_argument("--final-eval-episodes", type=int, help="test episodes for best.pt at the end (default 50)")
    p.add_argument("--alpha", type=float, help="TD3+BC: weight of Q against BC, lambda = alpha / mean|Q| "
                   "(default 0.2; the paper's 2.5 crashes on this task's expert data; lower = closer to the data)")
    p.add_argument("--n-critics", type=int, help="TD3+BC critic ensemble size; > 2 uses the pessimistic min "
                   "over the ensemble for the actor (default 2)")
    p.add_argument("--cql-weight", type=float, help="CQL: conservative penalty weight (default 5)")
    p.add_argument("--batch-size", type=int, help="batch size (default 256)")
    p.add_argument("--threads", type=int, help="torch threads (default 1)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), help="bf16 autocasts hidden layers (outputs "
                   "stay fp32); auto = bf16 where the CPU supports it natively (default auto)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoints/last.pt")
    return p


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    given = {k: v for k, v in vars(a).items() if v is not None and k != "resume"}
    if a.resume:
        if not a.out:
            raise ConfigError("--resume needs --out <run folder> (the folder holding checkpoints/last.pt)")
        cfg_path = Path(a.out) / "config.json"
        if not cfg_path.is_file():
            raise ConfigError(f"--resume: {cfg_path} not found; is {a.out} a run folder?")
        d = TrainConfig.load(cfg_path).to_dict()
        changed = [k for k in given if k not in TrainConfig.RUN_CONTROL and k != "out" and given[k] != d.get(k)]
        if changed:
            raise ConfigError(f"--resume keeps the run's settings; cannot change {', '.join(changed)} "
                              f"(only {', '.join(TrainConfig.RUN_CONTROL)})")
        d.update(given)
        return TrainConfig.from_dict(d, source=str(cfg_path))
    algo = given.get("algo", "td3bc")
    given.setdefault("steps", DEFAULT_STEPS[algo])
    given.setdefault("bc_steps", DEFAULT_BC_STEPS[algo])
    given.setdefault("eval_every", DEFAULT_EVAL_EVERY[algo])
    return TrainConfig(**given)


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError
    a = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(a)
        from .train import train
        res = train(cfg, resume=a.resume)
    except (ConfigError, CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if res.final:
        f = res.final
        ttg = f["mean_time_to_goal_s"]
        print(f"best.pt (step {f['step']}): success {f['success_rate']:.0%} on {f['episodes']} test episodes, "
              f"crash {f['crash_rate']:.0%}, time-to-goal {'-' if ttg is None else f'{ttg:.2f} s'}")
    print(f"done in {res.wall_s / 60:.1f} min: results in {res.out}/ (eval.json, checkpoints/best.pt, "
          f"tb/ -> tensorboard --logdir {res.out}/tb)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
