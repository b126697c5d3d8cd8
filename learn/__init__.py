"""Offline RL for RaceCar: BC, TD3+BC and CQL trained from recorded datasets (`python -m learn --help`).

    policy = learn.load_policy("runs/s_expert_td3bc_s0/checkpoints/best.pt")
    policy.check_env(env); action = policy.act(obs)
"""
from .checkpoint import CheckpointError, Policy, load_policy
from .config import ConfigError, TrainConfig
from .encoding import FEATURE_NAMES, Encoder
from .evaluate import EvalResult, evaluate

__all__ = ["load_policy", "Policy", "CheckpointError", "TrainConfig", "ConfigError", "Encoder", "FEATURE_NAMES",
           "evaluate", "EvalResult"]
