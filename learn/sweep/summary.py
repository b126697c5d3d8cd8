"""Aggregate a sweep folder's trials into summary.{md,csv,json,png}, from the trial folders alone.

A trial is any folder under <sweep>/trials/ holding config.json; its group is (dataset, algo, setting) where the
setting is the folder path between the algorithm and s<seed> (e.g. "alpha=0.1"). The per-seed score is the final
test success rate of the trial's best.pt (eval.json `final`, test seeds 20000+i). Per group:

  seeds             finished trials (eval.json with a final test); unfinished ones are counted apart
  success_mean      mean over seeds, with a 95% bootstrap CI
  success_iqm       interquartile mean over seeds (rliable.metrics.aggregate_iqm), with a 95% bootstrap CI
                    (rliable.library.get_interval_estimates: stratified bootstrap over seeds, percentile method,
                    a fixed random state so a rebuild gives the same numbers)
  time_to_goal_s    mean over the successful test episodes of all seeds (None if none succeeded)
  crash_rate        mean over seeds of the test crash rate
  wall_s            mean wall-clock of a trial (training + evaluations, summed over resumes)
  first90_s         median wall-clock to the trial's first periodic evaluation at >= 90% success that could become
                    best.pt (eval.json first_eval_ge_90pct), over the seeds that had one; first90_seeds counts them
  robust_mean       mean over seeds of the success from a wider start distribution (robustness.json, written by
                    python -m learn.sweep --robustness DIR), with a 95% bootstrap CI; None where no trial has one
  transfer          {track: {seeds, success_mean, success_mean_ci, time_to_goal_s}} on other tracks (transfer.json,
                    written by python -m learn.sweep --transfer DIR --tracks ...); {} where no trial has one
"""
from __future__ import annotations

import csv
import io
import re
import warnings
from pathlib import Path

import numpy as np

from racecar_env.files import atomic_path, write_json

from ..config import ALGOS
from .grid import TRIALS, read_json
from .robustness import ROBUST_FILE
from .transfer import tested_tracks

BOOTSTRAP_REPS = 2000      # ~0.6 s per group here; the CI endpoints move by < 0.01 against 50,000 reps
CI = 0.95
FILES = ("summary.md", "summary.csv", "summary.json", "summary.png")

CSV_COLUMNS = ("dataset", "algo", "setting", "seeds", "success_mean", "success_mean_ci_low", "success_mean_ci_high",
               "success_iqm", "success_iqm_ci_low", "success_iqm_ci_high", "time_to_goal_s", "crash_rate",
               "wall_s", "first90_s", "first90_seeds", "test_episodes", "unfinished", "robust_seeds", "robust_mean",
               "robust_mean_ci_low", "robust_mean_ci_high", "robust_jitter")


class SummaryError(ValueError):
    pass


def collect(sweep_dir: "str | Path") -> list[dict]:
    """One record per trial folder under sweep_dir/trials: dataset, algo, setting, seed, the final test result
    (None if the trial has not finished) and its wall-clock."""
    root = Path(sweep_dir) / TRIALS
    if not root.is_dir():
        raise SummaryError(f"{sweep_dir}: no {TRIALS}/ folder; is it a sweep folder (python -m learn.sweep --out)?")
    out = []
    for cfg_path in sorted(root.rglob("config.json")):
        folder = cfg_path.parent
        cfg = read_json(cfg_path)
        parts = folder.relative_to(root).parts
        if cfg is None or len(parts) < 3 or not re.fullmatch(r"s\d+", parts[-1]):
            continue
        report = read_json(folder / "eval.json")
        # a report that exists but does not read counts as unfinished; the table says so instead of a quiet n-1
        problem = (f"{folder.relative_to(root.parent)}/eval.json is not readable JSON"
                   if report is None and (folder / "eval.json").exists() else None)
        report = report or {}
        final = report.get("final")
        out.append({"folder": str(folder), "problem": problem, "dataset": str(cfg.get("dataset", parts[0])),
                    "algo": str(cfg.get("algo", parts[1])), "setting": "/".join(parts[2:-1]),
                    "seed": int(cfg.get("seed", parts[-1][1:])), "final": final if isinstance(final, dict) else None,
                    "wall_s": report.get("wall_s"), "first90": report.get("first_eval_ge_90pct"),
                    "robust": read_json(folder / ROBUST_FILE), "transfer": tested_tracks(folder)})
    return out


def _setting_key(setting: str):
    """Natural order: steps=500 before steps=2000."""
    return [(0, float(t), "") if re.fullmatch(r"[-+]?[\d.]+(e[-+]?\d+)?", t) else (1, 0.0, t)
            for t in re.split(r"([-+]?\d[\d.]*(?:e[-+]?\d+)?)", setting) if t]


def bootstrap_interval(scores: np.ndarray, reps: int = BOOTSTRAP_REPS) -> tuple[np.ndarray, np.ndarray]:
    """(mean, IQM) point estimates and their CIs, shape (2,) and (2, 2) [low/high x mean/iqm]."""
    from rliable import library, metrics

    def both(x):
        return np.array([metrics.aggregate_mean(x), metrics.aggregate_iqm(x)])

    # the arch version rliable calls ignores the random_state it is passed and draws from numpy's global generator
    # (a rebuild gave CIs a few points apart): seed that for the call and give the caller's state back
    saved = np.random.get_state()
    np.random.seed(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)   # arch: random_state -> generator (rliable passes it)
            point, ci = library.get_interval_estimates({"g": scores.reshape(-1, 1)}, both, reps=reps,
                                                       confidence_interval_size=CI,
                                                       random_state=np.random.RandomState(0))
    finally:
        np.random.set_state(saved)
    return point["g"], ci["g"]


def aggregate(records: list[dict], reps: int = BOOTSTRAP_REPS) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["dataset"], r["algo"], r["setting"]), []).append(r)
    algo_rank = {a: i for i, a in enumerate(ALGOS)}
    rows = []
    for (dataset, algo, setting) in sorted(groups, key=lambda g: (g[0], algo_rank.get(g[1], 99), g[1],
                                                                  _setting_key(g[2]))):
        members = sorted(groups[(dataset, algo, setting)], key=lambda r: r["seed"])
        done = [r for r in members if r["final"] is not None]
        row = {"dataset": dataset, "algo": algo, "setting": setting, "seeds": len(done),
               "seed_list": [r["seed"] for r in done], "unfinished": len(members) - len(done),
               "problems": [r["problem"] for r in members if r.get("problem")],
               "success_per_seed": [float(r["final"]["success_rate"]) for r in done]}
        if done:
            scores = np.array(row["success_per_seed"], dtype=float)
            point, ci = bootstrap_interval(scores, reps)
            ttg = _mean_time_to_goal([r["final"] for r in done])
            walls = [float(r["wall_s"]) for r in done if r["wall_s"] is not None]
            first90 = [float(r["first90"]["wall_s"]) for r in done if isinstance(r.get("first90"), dict)]
            row.update(success_mean=float(point[0]), success_mean_ci=[float(ci[0, 0]), float(ci[1, 0])],
                       success_iqm=float(point[1]), success_iqm_ci=[float(ci[0, 1]), float(ci[1, 1])],
                       time_to_goal_s=ttg,
                       crash_rate=float(np.mean([r["final"]["crash_rate"] for r in done])),
                       wall_s=float(np.mean(walls)) if walls else None,
                       first90_s=float(np.median(first90)) if first90 else None, first90_seeds=len(first90),
                       test_episodes=int(done[0]["final"].get("episodes", 0)))
        else:
            row.update(success_mean=None, success_mean_ci=None, success_iqm=None, success_iqm_ci=None,
                       time_to_goal_s=None, crash_rate=None, wall_s=None, first90_s=None, first90_seeds=0,
                       test_episodes=0)
        robust = [r["robust"] for r in done if isinstance(r.get("robust"), dict)]
        jitters = {tuple(x.get("start_jitter") or ()) for x in robust}
        row.update(robust_seeds=len(robust), robust_mean=None, robust_mean_ci=None,
                   robust_jitter=list(next(iter(jitters))) if len(jitters) == 1 else None)
        if robust and len(jitters) == 1:   # mixed jitters are not one number
            row["robust_mean"], row["robust_mean_ci"] = _success_mean(robust, reps)
        row["transfer"] = _transfer(done, reps)
        rows.append(row)
    return rows


def _transfer(done: list[dict], reps: int) -> dict:
    """Per track tested by any finished seed: success mean over those seeds with its CI, and time-to-goal."""
    out = {}
    for track in dict.fromkeys(t for r in done for t in r.get("transfer") or {}):
        results = [r["transfer"][track] for r in done if track in (r.get("transfer") or {})]
        mean, ci = _success_mean(results, reps)
        out[track] = {"seeds": len(results), "success_mean": mean, "success_mean_ci": ci,
                      "time_to_goal_s": _mean_time_to_goal(results)}
    return out


def _success_mean(results: list[dict], reps: int) -> tuple[float, list[float]]:
    """Mean success over seeds' evaluation results, with its 95% bootstrap CI [low, high]."""
    point, ci = bootstrap_interval(np.array([float(x["success_rate"]) for x in results]), reps)
    return float(point[0]), [float(ci[0, 0]), float(ci[1, 0])]


def _mean_time_to_goal(results: list[dict]) -> float | None:
    """Mean time-to-goal over the successful episodes of all the given evaluation results (None if none)."""
    ttg = [e["time_to_goal"] for x in results for e in x.get("per_episode", [])
           if e.get("outcome") == "success" and e.get("time_to_goal") is not None]
    return float(np.mean(ttg)) if ttg else None


# --- writers --------------------------------------------------------------------------------------------------------
def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _ci(ci) -> str:
    return "" if ci is None else f" [{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]"


def _num(x, unit: str = "", digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}{unit}"


def _minutes(seconds) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def markdown(rows: list[dict], sweep_dir: Path) -> str:
    robust = any(r["robust_mean"] is not None for r in rows)
    jit = next((r["robust_jitter"] for r in rows if r["robust_jitter"]), None)
    head = ("| dataset | algo | setting | seeds | success mean [95% CI] | success IQM [95% CI] | time-to-goal | "
            "crash | wall / trial |" + (" wider starts: success mean [95% CI] |" if robust else ""))
    lines = [f"# Sweep {sweep_dir}", "",
             "Per-seed score: final test success of the trial's best.pt (test seeds 20000+i). CIs: stratified "
             f"bootstrap over seeds (rliable, {CI:.0%}). Time-to-goal: mean over successful test episodes."
             + (f" Wider starts: the same best.pt from starts up to {jit[0]:g} m / {jit[1]:g} rad off "
                f"(python -m learn.sweep --robustness)." if robust and jit else ""), "",
             head, "|---|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if robust else "")]
    for r in rows:
        seeds = f"{r['seeds']}" + (f" (+{r['unfinished']} unfinished)" if r["unfinished"] else "")
        wall = _minutes(r["wall_s"])
        extra = (f" {_pct(r['robust_mean'])}{_ci(r['robust_mean_ci'])}"
                 + (f" (n={r['robust_seeds']})" if r["robust_seeds"] != r["seeds"] else "") + " |") if robust else ""
        lines.append(f"| {r['dataset']} | {r['algo']} | {r['setting'] or '-'} | {seeds} | "
                     f"{_pct(r['success_mean'])}{_ci(r['success_mean_ci'])} | "
                     f"{_pct(r['success_iqm'])}{_ci(r['success_iqm_ci'])} | {_num(r['time_to_goal_s'], ' s', 2)} | "
                     f"{_pct(r['crash_rate'])} | {wall} |{extra}")
    problems = [p for r in rows for p in r.get("problems", [])]
    if problems:
        lines += ["", "Counted as unfinished (rerunning the sweep command tests them again): " + "; ".join(problems)]
    return "\n".join(lines) + "\n" + pivot(rows)


def pivot(rows: list[dict]) -> str:
    """The same rows as tables people read: one row per dataset, one column per algorithm (+ setting); a cell is
    the success mean over seeds with its CI and n. Then time-to-goal / wall-clock, and wider starts if measured."""
    cols = list(dict.fromkeys((r["algo"], r["setting"]) for r in rows))
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    cell = {(r["dataset"], r["algo"], r["setting"]): r for r in rows}
    names = [f"{a} {st}".strip() for a, st in cols]

    def table(title: str, fmt) -> list[str]:
        out = ["", f"### {title}", "", "| dataset | " + " | ".join(names) + " |", "|---|" + "---|" * len(cols)]
        for d in datasets:
            out.append(f"| {d} | " + " | ".join(fmt(cell[(d, *c)]) if (d, *c) in cell else "-" for c in cols) + " |")
        return out

    def success(r, key="success_mean", n="seeds", unfinished=True):
        if r.get(key) is None:
            return "-" + (f" ({r['unfinished']} unfinished)" if unfinished and r["unfinished"] else "")
        return f"**{_pct(r[key])}**{_ci(r[key + '_ci'])} n={r[n]}"

    lines = table("Success (mean over seeds, 95% CI, n seeds)", success)
    lines += table("Time-to-goal / wall-clock per trial / to the first >= 90% evaluation (median, seeds that had one)",
                   lambda r: f"{_num(r['time_to_goal_s'], ' s', 2)} / {_minutes(r['wall_s'])} / "
                             f"{_minutes(r['first90_s'])} ({r['first90_seeds']}/{r['seeds']})")
    if any(r.get("robust_mean") is not None for r in rows):
        lines += table("Wider starts (mean over seeds, 95% CI)",
                       lambda r: success(r, "robust_mean", "robust_seeds", unfinished=False))
    for track in dict.fromkeys(t for r in rows for t in r.get("transfer") or {}):
        lines += table(f"On {track} (python -m learn.sweep --transfer; mean over seeds, 95% CI, n seeds; "
                       f"time-to-goal)", lambda r, t=track: _transfer_cell((r.get("transfer") or {}).get(t)))
    return "\n".join(lines) + "\n"


def _transfer_cell(x: dict | None) -> str:
    if x is None:
        return "-"
    return (f"**{_pct(x['success_mean'])}**{_ci(x['success_mean_ci'])} n={x['seeds']}, "
            f"{_num(x['time_to_goal_s'], ' s', 2)}")


def csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        flat = {**r, "success_mean_ci_low": (r["success_mean_ci"] or [None, None])[0],
                "success_mean_ci_high": (r["success_mean_ci"] or [None, None])[1],
                "success_iqm_ci_low": (r["success_iqm_ci"] or [None, None])[0],
                "success_iqm_ci_high": (r["success_iqm_ci"] or [None, None])[1],
                "robust_mean_ci_low": (r["robust_mean_ci"] or [None, None])[0],
                "robust_mean_ci_high": (r["robust_mean_ci"] or [None, None])[1],
                "robust_jitter": "/".join(f"{v:g}" for v in r["robust_jitter"]) if r["robust_jitter"] else None}
        w.writerow(["" if flat[c] is None else (f"{flat[c]:.6g}" if isinstance(flat[c], float) else flat[c])
                    for c in CSV_COLUMNS])
    return buf.getvalue()


def plot(rows: list[dict], path: Path) -> None:
    """Bars of success IQM with the 95% CI, seeds as dots; one panel per dataset, algorithms side by side."""
    from matplotlib.figure import Figure

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    widths = [max(2, sum(r["dataset"] == d for r in rows)) for d in datasets]
    fig = Figure(figsize=(min(4 + 1.1 * sum(widths), 30), 4.6), layout="constrained")
    axes = fig.subplots(1, len(datasets), sharey=True, squeeze=False, width_ratios=widths)[0]
    colors = {a: f"C{i}" for i, a in enumerate(dict.fromkeys([*ALGOS, *(r["algo"] for r in rows)]))}
    for ax, dataset in zip(axes, datasets):
        mine = [r for r in rows if r["dataset"] == dataset]
        x = np.arange(len(mine))
        for i, r in enumerate(mine):
            if r["success_iqm"] is None:
                ax.text(i, 0.02, "no\nresult", ha="center", va="bottom", fontsize=8, color="0.4")
                continue
            lo, hi = r["success_iqm_ci"]
            ax.bar(i, r["success_iqm"], 0.7, color=colors[r["algo"]], alpha=0.85,
                   yerr=[[r["success_iqm"] - lo], [hi - r["success_iqm"]]], capsize=4, ecolor="0.15")
            pts = r["success_per_seed"]
            ax.scatter(i + np.linspace(-0.18, 0.18, len(pts)) if len(pts) > 1 else [i], pts, s=10, color="k",
                       zorder=3, alpha=0.6)
        ax.set_xticks(x, ["\n".join([r["algo"], *filter(None, re.split(r",(?=[a-z_]+=)|/", r["setting"])),
                                      f"n={r['seeds']}"]) for r in mine], fontsize=9)
        ax.set_title(dataset)
        ax.set_ylim(0, 1.05)
        ax.set_xlim(-0.6, len(mine) - 0.4)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(f"test success (IQM over seeds, {CI:.0%} CI)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)


def summarize(sweep_dir: "str | Path", reps: int = BOOTSTRAP_REPS) -> list[dict]:
    """Rebuild summary.md/.csv/.json/.png in sweep_dir from its trial folders; returns the rows."""
    sweep_dir = Path(sweep_dir)
    records = collect(sweep_dir)
    if not records:
        raise SummaryError(f"{sweep_dir}: no trial folders (config.json) under {TRIALS}/")
    rows = aggregate(records, reps)
    with atomic_path(sweep_dir / "summary.md") as tmp:
        tmp.write_text(markdown(rows, sweep_dir))
    with atomic_path(sweep_dir / "summary.csv") as tmp:
        tmp.write_text(csv_text(rows))
    write_json(sweep_dir / "summary.json", {"sweep": str(sweep_dir), "score": "final test success rate of best.pt",
                                            "ci": CI, "bootstrap_reps": reps, "groups": rows})
    plot(rows, sweep_dir / "summary.png")
    return rows
