"""Offline RL for RaceCar: BC, TD3+BC, CQL and IQL trained from recorded datasets (`python -m learn --help`).

    policy = learn.load_policy("runs/s_expert_td3bc_s0/checkpoints/best.pt")
    action = policy.act(obs)
    racecar_env.evaluation.evaluate(policy, "hairpin", episodes=20)

(`evaluate` is not a name here: the submodule learn.evaluate, the CLI, would replace it once imported.)

Importing the package is cheap (torch loads on first use of a name below), so `python -m learn ...` starts at once
and a Ctrl-C while it loads ends it quietly.
"""
_LAZY = {"CheckpointError": ".checkpoint", "Policy": ".checkpoint", "load_policy": ".checkpoint",
         "ConfigError": ".config", "TrainConfig": ".config",
         "FEATURE_NAMES": ".encoding", "Encoder": ".encoding"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'learn' has no attribute {name!r}")


__all__ = ["load_policy", "Policy", "CheckpointError", "TrainConfig", "ConfigError", "Encoder", "FEATURE_NAMES"]
