"""Does a trained critic know which of the recorded actions lead to a crash? The advantage of each recorded action
over the agent's own choice, averaged by the drive's outcome and by steps before the crash.

    python benchmarks/critic_ranking.py CKPT [CKPT ...] [--dataset NAME]

Advantage: Q(s, a_data) - Q(s, pi(s)) for TD3+BC and CQL (min over the twin critics; pi = the evaluated actor's
action), Q(s, a_data) - V(s) for IQL. A critic that has learned the task gives the crashing drives' actions in the
last 10-40 steps before the crash a negative advantage, and the drives that reach the goal a positive one; a critic
whose ranking is about "is this a data action" gives both ~the same. The dataset is the checkpoint's own unless
--dataset names another one recorded on the same observation layout.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from learn.algos import make_agent  # noqa: E402
from learn.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from learn.config import TrainConfig  # noqa: E402
from learn.data import ReplayBuffer, load_training_data  # noqa: E402
from learn.encoding import FEATURE_DIM, Encoder  # noqa: E402
from racecar_env import cli  # noqa: E402
from racecar_env.storage import DatasetError  # noqa: E402

BEFORE_CRASH = [(1, 10), (10, 20), (20, 40), (40, 80), (80, None)]   # steps before the episode's last step


def advantages(ckpt: str, dataset: str | None):
    """label, and per transition of the dataset: its drive's outcome, steps left in the drive, Q(s, a_data) and the
    baseline it is compared with (Q at the agent's action, or IQL's V(s))."""
    ck = load_checkpoint(ckpt)
    cfg = TrainConfig.from_saved(ck["config"], ckpt)
    if cfg.algo.name == "bc":
        raise CheckpointError(f"{ckpt}: a BC run has no critic to rank actions with")
    agent = make_agent(cfg.algo, FEATURE_DIM)
    agent.load_state_dict(ck["agent"])
    data = load_training_data(dataset or cfg.run.dataset)
    b = ReplayBuffer.from_episodes(data.episodes, Encoder.from_state_dict(ck["encoder"], ckpt)).all()
    with torch.no_grad():   # the whole dataset in one pass (a few thousand to ~50k rows)
        q_data = agent.critic(b.obs, b.action).min(0).values
        base = agent.value(b.obs) if hasattr(agent, "value") else \
            agent.critic(b.obs, agent.actor.act(b.obs)).min(0).values
    outcome = np.concatenate([[e.outcome] * e.steps for e in data.episodes])
    left = np.concatenate([np.arange(e.steps, 0, -1) for e in data.episodes])
    label = f"{cfg.algo.name} on {data.label} ({Path(ckpt).name}, step {ck['step']})"
    return label, outcome, left, q_data.numpy(), base.numpy()


def report(label: str, outcome: np.ndarray, left: np.ndarray, q: np.ndarray, base: np.ndarray) -> list[str]:
    adv = q - base

    def row(name, m):
        if not m.any():
            return f"| {name} | 0 | - | - | - |"
        return f"| {name} | {m.sum()} | {q[m].mean():.2f} | {adv[m].mean():+.2f} | {(adv[m] > 0).mean():.0%} |"

    lines = [f"**{label}**", "", "| transitions | n | Q(s, a_data) | advantage | share > 0 |", "|---|---:|---:|---:|---:|"]
    lines += [row(f"drives that end in {o}", outcome == o) for o in ("success", "crash", "timeout") if (outcome == o).any()]
    for lo, hi in BEFORE_CRASH:
        m = (outcome == "crash") & (left >= lo) & (left < (hi or np.inf))
        lines.append(row(f"crash, {lo}-{hi - 1} steps before it" if hi else f"crash, {lo}+ steps before it", m))
    return lines + [""]


def main(argv=None) -> int:
    ap = cli.ArgumentParser(description=__doc__.split("\n\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("checkpoints", nargs="+", help="best.pt / last.pt of TD3+BC, CQL or IQL runs")
    ap.add_argument("--dataset", help="dataset to rank (default: each checkpoint's own)")
    a = ap.parse_args(argv)
    try:
        for ckpt in a.checkpoints:
            print("\n".join(report(*advantages(ckpt, a.dataset))), flush=True)
    except (CheckpointError, DatasetError) as e:
        print(f"critic_ranking: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli.entry(main))
