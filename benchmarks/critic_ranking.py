"""Does a trained critic know which of the recorded actions lead to a crash? The advantage of each recorded action
over the agent's own choice, averaged by the drive's outcome and by steps before the crash.

    python benchmarks/critic_ranking.py CKPT [CKPT ...] [--dataset NAME]

Advantage: Q(s, a_data) - Q(s, pi(s)) for TD3+BC and CQL (min over the twin critics; pi = the evaluated actor's
action), Q(s, a_data) - V(s) for IQL. A critic that has learned the task gives the crashing drives' actions in the
last 10-40 steps before the crash a negative advantage, and the drives that reach the goal a positive one; a critic
whose ranking is about "is this a data action" gives both ~the same. The dataset is the checkpoint's own unless
--dataset names another one recorded on the same observation layout.

    python benchmarks/critic_ranking.py CKPT --progress 0.105,0.125

adds what the critic thinks of other actions at the recorded states within that stretch of the drives (track
progress, 0-1; 0.105-0.125 on the S track is the approach to the first corner): mean Q over those states with the
steering set to each of -1 .. 1 (the agent's own throttle kept), and the throttle likewise. The agent's and the
data's mean actions there are printed above, so a critic that ranks the data's commonest action first, whatever
the drives that did it went on to do, shows at a glance.
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


GRID = (-1.0, -0.6, -0.3, 0.0, 0.3, 0.6, 1.0)   # steering / throttle values of the --progress table


def load(ckpt: str, dataset: str | None):
    """The checkpoint's agent, the dataset's episodes, every transition encoded as the agent sees it, and a label."""
    ck = load_checkpoint(ckpt)
    cfg = TrainConfig.from_saved(ck["config"], ckpt)
    if cfg.algo.name == "bc":
        raise CheckpointError(f"{ckpt}: a BC run has no critic to rank actions with")
    agent = make_agent(cfg.algo, FEATURE_DIM)
    agent.load_state_dict(ck["agent"])
    data = load_training_data(dataset or cfg.run.dataset)
    b = ReplayBuffer.from_episodes(data.episodes, Encoder.from_state_dict(ck["encoder"], ckpt)).all()
    return agent, data, b, f"{cfg.algo.name} on {data.label} ({Path(ckpt).name}, step {ck['step']})"


def advantages(agent, data, b):
    """Per transition of the dataset: its drive's outcome, steps left in the drive, Q(s, a_data) and the baseline
    it is compared with (Q at the agent's action, or IQL's V(s)); agent, data, b as `load` returns them."""
    with torch.no_grad():   # the whole dataset in one pass (a few thousand to ~50k rows)
        q_data = agent.critic(b.obs, b.action).min(0).values
        base = agent.value(b.obs) if hasattr(agent, "value") else \
            agent.critic(b.obs, agent.actor.act(b.obs)).min(0).values
    outcome = np.concatenate([[e.outcome] * e.steps for e in data.episodes])
    left = np.concatenate([np.arange(e.steps, 0, -1) for e in data.episodes])
    return outcome, left, q_data.numpy(), base.numpy()


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


def action_grid(agent, data, b, label: str, window: tuple[float, float]) -> list[str]:
    """Mean Q (min over the critics) at the recorded states whose track progress lies in `window`, with the agent's
    action there and one of its two components replaced by each GRID value (all of them in one critic pass)."""
    progress = np.concatenate([e.infos["progress"][:-1] for e in data.episodes])   # at each transition's state
    m = torch.as_tensor((progress > window[0]) & (progress < window[1]))
    if not m.any():
        raise DatasetError(f"{data.label}: no recorded state has progress in {window[0]:g}-{window[1]:g}")
    obs, act = b.obs[m], b.action[m]
    k = len(GRID)
    with torch.no_grad():
        pi = agent.actor.act(obs)
        actions = torch.cat([act[:, None], pi[:, None], pi[:, None].repeat(1, 2 * k, 1)], dim=1)   # (B, 2 + 2k, 2)
        actions[:, 2:2 + k, 0] = torch.tensor(GRID)       # steering swept, the agent's throttle kept
        actions[:, 2 + k:, 1] = torch.tensor(GRID)        # throttle swept, the agent's steering kept
        q = agent.critic(obs, actions).min(0).values.mean(0).tolist()
    lines = [f"**{label}: {len(obs)} recorded states at progress {window[0]:g}-{window[1]:g}**", "",
             f"data's mean action steer {act[:, 0].mean():+.2f} throttle {act[:, 1].mean():+.2f} (Q {q[0]:.2f}); "
             f"agent's steer {pi[:, 0].mean():+.2f} throttle {pi[:, 1].mean():+.2f} (Q {q[1]:.2f})", "",
             "| set to | " + " | ".join(f"{v:+.1f}" for v in GRID) + " |", "|---|" + "---:|" * k]
    for i, name in enumerate(("steer", "throttle")):
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in q[2 + i * k:2 + (i + 1) * k]) + " |")
    return lines + [""]


def _window(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI track progress (e.g. 0.105,0.125), got {text!r}") from None
    if not 0 <= lo < hi <= 1:
        raise argparse.ArgumentTypeError(f"expected 0 <= LO < HI <= 1, got {text!r}")
    return lo, hi


def main(argv=None) -> int:
    ap = cli.ArgumentParser(description=__doc__.split("\n\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("checkpoints", nargs="+", help="best.pt / last.pt of TD3+BC, CQL or IQL runs")
    ap.add_argument("--dataset", help="dataset to rank (default: each checkpoint's own)")
    ap.add_argument("--progress", type=_window, metavar="LO,HI",
                    help="also print Q over a grid of steering and throttle at the recorded states in this stretch "
                         "of track progress (0-1)")
    a = ap.parse_args(argv)
    try:
        for ckpt in a.checkpoints:
            agent, data, b, label = load(ckpt, a.dataset)
            print("\n".join(report(label, *advantages(agent, data, b))), flush=True)
            if a.progress:
                print("\n".join(action_grid(agent, data, b, label, a.progress)), flush=True)
    except (CheckpointError, DatasetError) as e:
        print(f"critic_ranking: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli.entry(main))
