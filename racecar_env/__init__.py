"""RaceCar: a pybullet racecar on walled tracks, as a gymnasium environment (`RaceCar-v0`).

Importing the package is cheap and never loads pybullet: the env, the renderer and the rest load on first use
(`racecar_env.RaceCarEnv`, ...), so storage and the learner's data code need no physics.
"""
import signal
import sys

if sys.argv[:1] == ["-m"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    # `python -m racecar_env.X` is loading this package (runpy sets argv[0] to "-m" until the module runs): a Ctrl-C
    # while it loads ends the program quietly; the CLI's racecar_env.cli.entry restores KeyboardInterrupt
    signal.signal(signal.SIGINT, signal.SIG_DFL)

from gymnasium.envs.registration import register, registry  # noqa: E402

from . import spec  # noqa: E402
from .tracks import Centerline, Track, TrackError, load_track, shipped_tracks  # noqa: E402

ENV_ID = "RaceCar-v0"
if ENV_ID not in registry:
    # the time limit is gym.make's TimeLimit alone (the env's own is off): with the env's 1200 as well,
    # gym.make(ENV_ID, max_episode_steps=1500) still truncated at 1200
    register(id=ENV_ID, entry_point="racecar_env.env:RaceCarEnv", max_episode_steps=spec.DEFAULT_MAX_STEPS,
             kwargs={"max_episode_steps": None})

_LAZY = {"RaceCarEnv": "env", "RewardConfig": "env", "Hud": "render", "TopDown": "render"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name == "DEFAULT_MAX_STEPS":
        return spec.DEFAULT_MAX_STEPS
    raise AttributeError(f"module 'racecar_env' has no attribute {name!r}")


__all__ = ["ENV_ID", "RaceCarEnv", "RewardConfig", "Hud", "TopDown", "Track", "TrackError", "Centerline",
           "load_track", "shipped_tracks", "spec", "DEFAULT_MAX_STEPS"]
