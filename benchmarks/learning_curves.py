"""Side-by-side learning curves of two training runs (e.g. before/after a speed change, same seed and data):
periodic eval success and the critic loss over updates, from each run's eval.json / history and TensorBoard logs.

    python benchmarks/learning_curves.py OUT.png LABEL=RUN_DIR LABEL=RUN_DIR ... [--title T]
A run still in progress is drawn as far as its TensorBoard log goes.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from racecar_env import cli  # noqa: E402


def scalars(run: Path, tag: str) -> tuple[list[int], list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    if not (run / "tb").is_dir():   # e.g. a run started without TensorBoard: its eval.json alone
        return [], []
    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    if tag not in acc.Tags().get("scalars", []):
        return [], []
    ev = acc.Scalars(tag)
    return [e.step for e in ev], [e.value for e in ev]


def main(argv=None) -> int:
    p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("runs", nargs="+", help="LABEL=RUN_DIR")
    p.add_argument("--title", default="")
    a = p.parse_args(argv)
    for item in a.runs:   # tensorboard's reader raises deep inside on a missing folder
        label, sep, path = item.partition("=")
        run = Path(path)
        if not sep or not label or not ((run / "eval.json").is_file() or (run / "tb").is_dir()):
            p.error(f"{item!r}: expected LABEL=RUN_DIR with RUN_DIR a learn run folder")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for item in a.runs:
        label, _, path = item.partition("=")
        run = Path(path)
        s, v = scalars(run, "eval/success_rate")
        if (run / "eval.json").exists():
            hist = json.loads((run / "eval.json").read_text())["history"]
            s, v = [h["step"] for h in hist], [h["success_rate"] for h in hist]
        ax1.plot(s, v, marker="o", label=label)
        s, v = scalars(run, "loss/critic")
        ax2.plot(s, v, label=label)
    ax1.set(xlabel="update", ylabel="periodic eval success (10 episodes)", ylim=(-0.05, 1.05))
    ax2.set(xlabel="update", ylabel="critic loss (mean over 250 updates)", yscale="log")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(a.title)
    fig.tight_layout()
    fig.savefig(a.out, dpi=90)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
