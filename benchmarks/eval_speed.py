"""Episodes/s of seeded evaluation and recording: serial (one process) against the env worker pool, same episodes.

    python benchmarks/eval_speed.py [--episodes 8] [--rounds 3] [--workers auto] [--policy CKPT]

Agents: the expert autopilot (what `python -m teleop` records with; a picklable per-episode factory) and a learn
Policy (a checkpoint, or by default a freshly initialised actor: its episodes are short crashes, so it shows the
policy-call and message overhead rather than driving). Modes, alternated every round so machine load hits them alike:
  serial    run_episodes(workers=1) in this process
  pool      a running EnvPool (as a training run keeps one): workers run whole episodes with their own agent copy
  lockstep  the same pool driving every step from this process (the old way; now only for agents that cannot be
            pickled or policies on an accelerator)
Pool start-up (process spawn + env build) is reported apart; a training run pays it once.
Last line: `ratio autopilot=X policy=Y` (pool / serial episodes per second, median over rounds).
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from racecar_env import cli  # noqa: E402
from racecar_env.evaluation import TEST_SEED  # noqa: E402
from racecar_env.rollout import EnvPool, resolve_workers, run_episodes  # noqa: E402


def agents(policy_path: str | None, seeds: list[int]):
    from teleop.autopilot import AutopilotFactory
    out = {"autopilot": AutopilotFactory("s_curve", "expert", seeds)}
    import torch

    from learn.checkpoint import Policy, load_policy
    from learn.encoding import FEATURE_DIM, Encoder
    from learn.nets import Actor
    if policy_path:
        out["policy"] = load_policy(policy_path)
    else:
        import numpy as np
        torch.manual_seed(0)
        out["policy"] = Policy(Actor(FEATURE_DIM, 2, (256, 256)), Encoder(np.zeros(FEATURE_DIM), np.ones(FEATURE_DIM)),
                               "untrained")
    return out


def main(argv=None) -> int:
    p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=cli.count, default=8)
    p.add_argument("--rounds", type=cli.count, default=3)
    p.add_argument("--workers", type=cli.workers, default="auto")
    p.add_argument("--policy", default=None, help="a learn checkpoint (default: an untrained actor)")
    p.add_argument("--no-lockstep", action="store_true", help="skip the lockstep mode")
    a = p.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    seeds = [TEST_SEED + i for i in range(a.episodes)]
    env_kwargs = {"track": "s_curve"}
    try:   # a bad --policy: one line, before the worker pool starts
        chosen = agents(a.policy, seeds)
    except ValueError as e:   # CheckpointError
        p.error(str(e))
    workers = resolve_workers(a.workers, a.episodes)
    t0 = time.perf_counter()
    pool = EnvPool(env_kwargs, workers)
    startup = time.perf_counter() - t0
    print(f"{a.episodes} episodes per mode and round, {workers} workers (pool start-up {startup:.2f} s), "
          f"{a.rounds} interleaved rounds, s_curve, seeds {TEST_SEED}+i")
    ratios: dict[str, float] = {}
    try:
        for name, agent in chosen.items():
            modes = {"serial": lambda: run_episodes(env_kwargs, agent, seeds, workers=1),
                     "pool": lambda: pool.run(agent, seeds)}
            if not a.no_lockstep:
                make = agent if (callable(agent) and not hasattr(agent, "act")) else None
                modes["lockstep"] = lambda: pool.run((lambda i: make(i)) if make else (lambda i: agent), seeds)
            eps_per_s: dict[str, list[float]] = {m: [] for m in modes}
            ref = None
            pool.run(agent, seeds[:workers])            # warm-up: imports and agent copies in the workers
            steps = 0
            for r in range(a.rounds):
                order = list(modes) if r % 2 == 0 else list(modes)[::-1]
                for m in order:
                    t = time.perf_counter()
                    eps = modes[m]()
                    eps_per_s[m].append(len(eps) / (time.perf_counter() - t))
                    key = [(e.outcome, e.steps, float(e.episode_return)) for e in eps]
                    ref = ref or key
                    if key != ref:
                        raise SystemExit(f"{name}: {m} gave other episodes than serial")
                    steps = sum(e.steps for e in eps)
            per_round = [pp / s for pp, s in zip(eps_per_s["pool"], eps_per_s["serial"])]
            ratios[name] = statistics.median(per_round)
            line = "  ".join(f"{m} {statistics.median(v):6.2f} ep/s" for m, v in eps_per_s.items())
            extra = ""
            if "lockstep" in eps_per_s:
                extra = f"; lockstep/serial x{statistics.median(eps_per_s['lockstep']) / statistics.median(eps_per_s['serial']):.2f}"
            print(f"{name:9s} ({steps / a.episodes:.0f} steps/episode)  {line}  pool/serial x{ratios[name]:.2f} "
                  f"(rounds {min(per_round):.2f}-{max(per_round):.2f}){extra}; same episodes in every mode",
                  flush=True)
    finally:
        pool.close()
    print("ratio " + " ".join(f"{k}={v:.2f}" for k, v in ratios.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
