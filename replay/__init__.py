"""Viewer: roll out policies (or the autopilot) and play back demonstrations as MP4s, trajectory plots and
eval_info.json; comparison grids; a live pygame player. Entry point: `python -m replay --help`."""
from .frames import FPS, Grid, TraceRenderer
from .rollout import episode_seeds, make_env, rollout, rollout_episode
from .trace import ReplayError, Trace, from_dataset_episode

__all__ = ["FPS", "Grid", "TraceRenderer", "ReplayError", "Trace", "from_dataset_episode", "episode_seeds",
           "make_env", "rollout", "rollout_episode"]
