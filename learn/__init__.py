"""Offline RL for RaceCar: BC, TD3+BC, CQL and IQL trained from recorded datasets (`python -m learn --help`).

    policy = learn.load_policy("runs/s_expert_td3bc_s0/checkpoints/best.pt")
    action = policy.act(obs)
    learn.evaluate(policy, "hairpin", episodes=20)       # racecar_env.evaluation.evaluate
"""
from racecar_env.evaluation import EvalResult, evaluate

from .checkpoint import CheckpointError, Policy, load_policy
from .config import ConfigError, TrainConfig
from .encoding import FEATURE_NAMES, Encoder

__all__ = ["load_policy", "Policy", "CheckpointError", "TrainConfig", "ConfigError", "Encoder", "FEATURE_NAMES",
           "evaluate", "EvalResult"]
