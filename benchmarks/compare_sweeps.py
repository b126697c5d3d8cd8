"""One picture of several sweeps side by side: per dataset, a bar per (sweep, algorithm), IQM over seeds with the
95% CI and the seeds as dots, as each sweep's own summary.png draws it.

    python benchmarks/compare_sweeps.py runs/sweeps/cql_radius:radius runs/sweeps/cql_return_weighting:"return 0.3" \
        --out compare_cql.png [--datasets s_kbsloppy,s_noisy]

Each argument is SWEEP_DIR[:LABEL]; the label (default: the folder's name) follows the algorithm's name on each
bar, one colour per label. The rows are computed from the trial folders as `python -m learn.sweep --summarize` does.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from racecar_env import cli  # noqa: E402
from learn.sweep.summary import SummaryError, aggregate, collect, plot  # noqa: E402


def sweep_rows(arg: str, datasets: list[str] | None) -> list[dict]:
    folder, _, label = arg.partition(":")
    try:
        groups = aggregate(collect(folder))
    except SummaryError as e:
        raise SystemExit(f"compare_sweeps: {e}") from None
    label = label or Path(folder).name
    # the label joins the algorithm's name, so each (sweep, algorithm) gets its own colour
    return [{**g, "algo": f"{g['algo']} {label}"} for g in groups if datasets is None or g["dataset"] in datasets]


def main(argv=None) -> int:
    ap = cli.ArgumentParser(description=__doc__.split("\n\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweeps", nargs="+", metavar="SWEEP_DIR[:LABEL]")
    ap.add_argument("--out", type=Path, required=True, help="PNG to write")
    ap.add_argument("--datasets", help="only these datasets, in this order (default: all, in the sweeps' order)")
    args = ap.parse_args(argv)
    datasets = args.datasets.split(",") if args.datasets else None
    rows = [r for arg in args.sweeps for r in sweep_rows(arg, datasets)]
    if datasets:
        rows.sort(key=lambda r: datasets.index(r["dataset"]))
    if not rows:
        raise SystemExit("compare_sweeps: no rows for those datasets")
    plot(rows, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.entry(main))
