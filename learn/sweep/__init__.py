"""learn.sweep: many `learn` runs (datasets x algorithms x settings x seeds) scheduled on Ray Tune, aggregated with
rliable into summary.{md,csv,json,png}. The command line is `python -m learn.sweep --help` (folder layout and
cluster use are described there).

    from learn.sweep import build_plan, summarize
    plan = build_plan("runs/sweeps/x", ["s_expert"], ["bc", "td3bc"], [0, 1, 2], ["steps=2000"])
    [t.rel for t in plan.trials]            # trials/s_expert/bc/s0, ...
    rows = summarize("runs/sweeps/x")       # rebuilds the summary files from the trial folders alone

Modules: grid (trial list, validation, folder state, sweep.json), run (Ray Tune), summary (rliable aggregates).
"""
from .grid import Plan, SweepError, Trial, build_plan, trial_status
from .summary import aggregate, collect, summarize

__all__ = ["Plan", "Trial", "SweepError", "build_plan", "trial_status", "summarize", "collect", "aggregate"]
