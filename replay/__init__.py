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
from .grid import Grid
from .session import Clip, Run, load_demos, policy_runs, read_dataset

__all__ = ["ReplayError", "Grid", "Clip", "Run", "load_demos", "policy_runs", "read_dataset"]
