"""The env worker pool gives bitwise the episodes a serial run gives: whole episodes in the workers (picklable
agents: a learn Policy, the autopilot factory) and the lockstep path (agents that cannot be pickled).

Not asserted: a batched Policy driven in lockstep (one call for several envs) drifts from serial on long episodes
(found with a 1200-step untrained actor, with the code before this change too); whole-episode workers match."""
import numpy as np
import torch

from learn.checkpoint import Policy
from learn.encoding import FEATURE_DIM, Encoder
from learn.nets import Actor
from racecar_env.rollout import EnvPool, run_episodes
from teleop.autopilot import AutopilotFactory


def same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for k in x.observations:
            np.testing.assert_array_equal(x.observations[k], y.observations[k])
        np.testing.assert_array_equal(x.actions, y.actions)
        np.testing.assert_array_equal(x.rewards, y.rewards)
        assert x.outcome == y.outcome and x.meta == y.meta and x.track.track_id == y.track.track_id


def test_pool_runs_the_serial_episodes_bitwise_whole_and_lockstep():
    torch.manual_seed(0)
    enc = Encoder(np.zeros(FEATURE_DIM), np.full(FEATURE_DIM, 5.0))
    policy = Policy(Actor(FEATURE_DIM, 2, (64, 64)), enc, "untrained")
    seeds = [20_000 + i for i in range(4)]
    autopilot = AutopilotFactory("s_curve", "noisy", seeds[:2])
    serial_p = run_episodes({"track": "s_curve"}, policy, seeds, workers=1)
    serial_a = run_episodes({"track": "s_curve"}, autopilot, seeds[:2], workers=1, meta={"m": 1})
    with EnvPool({"track": "s_curve"}, 2) as pool:
        same(pool.run(policy, seeds), serial_p)                                  # workers hold policy copies
        same(pool.run(autopilot, seeds[:2], meta={"m": 1}), serial_a)           # per-episode factory travels
        same(pool.run(lambda i: autopilot(i), seeds[:2], meta={"m": 1}), serial_a)
        same(pool.run(policy, seeds[:3]), serial_p[:3])                          # the pool is reusable
    assert sum(e.steps for e in serial_a) > 100
