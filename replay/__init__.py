"""Viewer: roll out policies (or the autopilot) and play back demonstrations as MP4s, a trajectory plot, a preview
image and eval_info.json; grids over several tracks, comparison videos, a live pygame player.
Entry point: `python -m replay --help`.

Built on the shared pieces: episodes are `racecar_env.episode.Episode`s (each with its own track), rollouts go through
`racecar_env.rollout.run_episodes`, numbers are `racecar_env.evaluation.EvalResult`s, frames come from
`racecar_env.render.EpisodeRenderer`.

    cli.py      command line, output folder rule, writing the files
    session.py  what to show: runs of episodes (rollouts, dataset demos) and clips (episodes, grids)
    agents.py   agent specs: a checkpoint or the autopilot
    grid.py     labelled panels side by side
    plot.py     trajectories.png
    live.py     --live pygame player
"""
from .errors import ReplayError

# the rest loads on first use: `python -m replay` starts at once, and a Ctrl-C while it loads ends it quietly
_LAZY = {"Grid": ".grid", "Clip": ".session", "Run": ".session", "load_demos": ".session",
         "policy_runs": ".session", "read_dataset": ".session"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'replay' has no attribute {name!r}")


__all__ = ["ReplayError", "Grid", "Clip", "Run", "load_demos", "policy_runs", "read_dataset"]
