"""RaceCar: a pybullet racecar on walled tracks, as a gymnasium environment (`RaceCar-v0`)."""
from gymnasium.envs.registration import register, registry

from . import spec
from .env import DEFAULT_MAX_STEPS, RaceCarEnv, RewardConfig
from .render import Hud, TopDown
from .tracks import Centerline, Track, TrackError, load_track, shipped_tracks

ENV_ID = "RaceCar-v0"
if ENV_ID not in registry:
    register(id=ENV_ID, entry_point="racecar_env.env:RaceCarEnv", max_episode_steps=DEFAULT_MAX_STEPS)

__all__ = ["ENV_ID", "RaceCarEnv", "RewardConfig", "Hud", "TopDown", "Track", "TrackError", "Centerline",
           "load_track", "shipped_tracks", "spec", "DEFAULT_MAX_STEPS"]
