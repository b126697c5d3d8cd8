"""How success falls with track difficulty: agents on unseen generated tracks, by turn sharpness x corridor width.

    python benchmarks/difficulty.py CKPT [CKPT ...] [--autopilot expert] [--tracks 20] [--out runs/difficulty]

Each cell runs N episodes, one per generated track from the held-out test seed range (the same tracks for every
agent), with turn magnitudes and corridor free width drawn from the cell's ranges. The grid reaches past what the
generator's defaults produce (turns up to 120 deg, corridors down to 1.7 m) on purpose: the last row and column are
roads no training set of defaults contains. Checkpoints of the same algorithm trained on the same dataset (say a
sweep's five seeds: runs/sweeps/NAME/trials/multi_expert/td3bc/s*/checkpoints/best.pt) are seeds of one agent: each
cell then gives the mean over them with a 95% bootstrap CI (rliable, as the sweep summary). Writes difficulty.md,
difficulty.json and difficulty.png (one heat map per agent); the last line says where.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from racecar_env import cli  # noqa: E402
from racecar_env.evaluation import TEST_SEED, EvalResult  # noqa: E402
from racecar_env.rollout import run_episodes  # noqa: E402
from racecar_env.tracks import TEST_SEEDS, generate  # noqa: E402

TURNS = [(30, 60), (60, 90), (90, 120), (120, 135)]                  # degrees, both directions
WIDTHS = [(2.2, 2.4), (1.9, 2.1), (1.7, 1.8), (1.45, 1.6)]           # free width between the walls, m


def cell_tracks(turns, widths, n: int, first_seed: int) -> list:
    return [generate(first_seed + k, min_turn_deg=turns[0], max_turn_deg=turns[1], free_width=widths)
            for k in range(n)]


def agent_for(text: str):
    if text.startswith("autopilot"):
        from teleop.autopilot import SKILLS, Autopilot
        skill = text.partition(":")[2] or "expert"
        if skill not in SKILLS:   # checked now: Autopilot() would refuse it only in the first episode
            raise ValueError(f"{text}: unknown autopilot skill {skill!r}; expected one of {', '.join(SKILLS)}")
        return text, (lambda i: Autopilot("s_curve", skill=skill, seed=i))
    from learn import load_policy
    policy = load_policy(text)
    run = Path(text).parent.parent
    try:
        dataset = json.loads((run / "config.json").read_text())["dataset"]
    except (OSError, ValueError, KeyError):
        dataset = run.name
    return f"{policy.label} on {dataset}", policy


def main(argv=None) -> int:
    ap = cli.ArgumentParser(description=__doc__.split("\n\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("agents", nargs="+", help="checkpoints (.pt) or autopilot[:skill]")
    ap.add_argument("--tracks", type=cli.count, default=20, help="tracks (= episodes) per cell (default 20)")
    ap.add_argument("--workers", type=cli.workers, default="auto", help="env processes (default auto)")
    ap.add_argument("--out", type=Path, default=Path("runs/difficulty"), help="output folder")
    a = ap.parse_args(argv)
    if a.out.exists() and not a.out.is_dir():
        ap.error(f"--out {a.out} is a file; expected a folder")
    try:   # every agent up front: a typo in the last one must not cost the first ones' runs
        loaded = [agent_for(text) for text in a.agents]
    except (ValueError, OSError) as e:   # CheckpointError, an unknown skill: one line
        ap.error(str(e))
    first_seed = TEST_SEEDS.start + 500_000   # held-out tracks, away from the ones `random:test` draws most
    per_seed: dict[str, list] = {}
    for label, agent in loaded:
        grid = np.zeros((len(TURNS), len(WIDTHS)))
        for i, turns in enumerate(TURNS):
            for j, widths in enumerate(WIDTHS):
                tracks = cell_tracks(turns, widths, a.tracks, first_seed + 1000 * (i * len(WIDTHS) + j))
                eps = run_episodes({"track": tracks[0]}, agent, [TEST_SEED + k for k in range(a.tracks)],
                                   options=[{"track": t} for t in tracks], workers=a.workers)
                grid[i, j] = EvalResult.of(eps).success_rate
                print(f"{label}: turns {turns[0]}-{turns[1]} deg, width {widths[0]}-{widths[1]} m: "
                      f"{grid[i, j]:.0%}", flush=True)
        per_seed.setdefault(label, []).append(grid)
    results = {label: aggregate(grids) for label, grids in per_seed.items()}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "difficulty.json").write_text(json.dumps({"turns_deg": TURNS, "free_width_m": WIDTHS,
                                                       "tracks_per_cell": a.tracks, "agents": results}, indent=2))
    lines = []
    for label, r in results.items():
        lines += [f"**{label}** (success on {a.tracks} unseen tracks per cell"
                  + (f"; mean over {r['seeds']} seeds, 95% bootstrap CI" if r["seeds"] > 1 else "") + ")", "",
                  "| turns \\ free width | " + " | ".join(f"{w[0]}-{w[1]} m" for w in WIDTHS) + " |",
                  "|---|" + "---|" * len(WIDTHS)]
        lines += [f"| {t[0]}-{t[1]} deg | " + " | ".join(_cell(r, i, j) for j in range(len(WIDTHS))) + " |"
                  for i, t in enumerate(TURNS)]
        lines.append("")
    (a.out / "difficulty.md").write_text("\n".join(lines))
    _plot(a.out / "difficulty.png", results)
    print(f"wrote difficulty.md, difficulty.json, difficulty.png to {a.out}")
    return 0


def aggregate(grids: list) -> dict:
    """Seeds of one agent: the mean success per cell, with a 95% bootstrap CI over seeds when there are several."""
    g = np.asarray(grids)                                          # (seeds, turns, widths)
    out = {"seeds": len(g), "mean": g.mean(0).tolist(), "per_seed": g.tolist(), "ci_low": None, "ci_high": None}
    if len(g) > 1:
        from learn.sweep.summary import bootstrap_interval
        lo, hi = np.zeros(g.shape[1:]), np.zeros(g.shape[1:])
        for idx in np.ndindex(*g.shape[1:]):
            _, ci = bootstrap_interval(g[(slice(None), *idx)])
            lo[idx], hi[idx] = ci[0, 0], ci[1, 0]
        out.update(ci_low=lo.tolist(), ci_high=hi.tolist())
    return out


def _cell(r: dict, i: int, j: int) -> str:
    text = f"{r['mean'][i][j]:.0%}"
    if r["ci_low"] is not None and r["ci_low"][i][j] != r["ci_high"][i][j]:
        text += f" [{100 * r['ci_low'][i][j]:.0f}, {100 * r['ci_high'][i][j]:.0f}]"
    return text


def _plot(path: Path, results: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.8), squeeze=False)
    for ax, (label, r) in zip(axes[0], results.items()):
        g = np.asarray(r["mean"])
        ax.imshow(g, vmin=0, vmax=1, cmap="RdYlGn")
        for i in range(g.shape[0]):
            for j in range(g.shape[1]):
                ax.text(j, i, _cell(r, i, j).replace(" [", "\n["), ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(WIDTHS)), [f"{w[0]}-{w[1]}" for w in WIDTHS], fontsize=8)
        ax.set_yticks(range(len(TURNS)), [f"{t[0]}-{t[1]}" for t in TURNS], fontsize=8)
        ax.set_xlabel("corridor free width (m)")
        ax.set_ylabel("turns (deg)")
        ax.set_title(label + (f" ({r['seeds']} seeds)" if r["seeds"] > 1 else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
