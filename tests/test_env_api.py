"""The gymnasium API as a researcher extending the project uses it: walls that exist, seeds gymnasium code passes,
resets that fail cleanly, one-line errors instead of tracebacks from numpy / pybullet / gymnasium internals."""
import copy
import math
import pickle
import time

import numpy as np
import pytest

from racecar_env import RaceCarEnv, load_track
from racecar_env.evaluation import evaluate
from racecar_env.rollout import EnvError, EnvPool, resolve_workers, run_episode, run_episodes

MANY_WALLS = "gen:1837575:hard"   # 26 walls; its back cap is wall row 24


class Drive:
    def __init__(self, action):
        self.action = action

    def act(self, obs):
        return self.action


def test_every_wall_of_a_long_track_collides_and_is_seen():
    """pybullet keeps only 16 shapes of a collision array: every wall after the 16th was a ghost the car drove
    through and the lidar never saw (80% of generated tracks have more than 16)."""
    track = load_track(MANY_WALLS)
    assert len(track.walls) > 16
    env = RaceCarEnv(track)
    # reversing from the start hits the back cap (row 24) instead of leaving the track through it
    env.reset(seed=0, options={"start_jitter": (0, 0)})
    for _ in range(100):
        obs, _, terminated, truncated, info = env.step([0.0, -1.0])
        assert env.observation_space.contains(obs)
        if terminated or truncated:
            break
    assert terminated and info["collision"]
    assert obs["achieved_goal"][0] < track.bounds[2]
    p = env.sim.p
    for row, (x1, y1, x2, y2) in enumerate(track.walls):   # a ray down onto each wall's middle hits a wall
        hit = p.rayTest([(x1 + x2) / 2, (y1 + y2) / 2, 1.0], [(x1 + x2) / 2, (y1 + y2) / 2, 0.01])[0]
        assert hit[0] >= 0 and hit[0] not in (env.sim.ground, env.sim.car), f"wall row {row} has no collision shape"
    env.close()


def test_a_failed_reset_leaves_no_episode_to_step():
    env = RaceCarEnv()
    env.reset(seed=0)
    env.step([0.0, 0.5])
    with pytest.raises(ValueError, match="jitter"):
        env.reset(seed=0, options={"start_jitter": (100.0, 0.0)})   # moved the car around, then gave up
    with pytest.raises(RuntimeError, match="reset"):
        env.step([0.0, 0.5])
    env.reset(seed=0)
    env.step([0.0, 0.5])
    env.close()


def test_seeds_numpy_integers_bad_seeds_and_bad_options():
    env = RaceCarEnv()
    a = env.reset(seed=5)[0]["observation"]
    b = env.reset(seed=np.int64(5))[0]["observation"]    # e.g. from np.arange: the same episode as int 5
    np.testing.assert_array_equal(a, b)
    assert env.observation_space.contains(env.reset(seed=2**63 - 1)[0])
    for bad in (-1, 1.5, "3", True, np.random.default_rng(0)):
        with pytest.raises(ValueError, match="seed must be an integer >= 0"):
            env.reset(seed=bad)
    for bad in ("x", 5, ["start"]):   # dict(...)'s own errors were "dictionary update sequence element #0 ..."
        with pytest.raises(ValueError, match="reset options must be a dict"):
            env.reset(seed=0, options=bad)
    with pytest.raises(EnvError, match="seed must be"):   # run_episode's one-line error for the CLIs
        run_episode(env, Drive([0.0, 0.5]), seed=-1)
    env.close()


def test_closed_env_refuses_render_too():
    env = RaceCarEnv(render_mode="rgb_array")
    env.reset(seed=0)
    env.close()
    env.close()
    for call in (env.render, env.render_frame, lambda: env.step([0, 0]), env.reset):
        with pytest.raises(RuntimeError, match="closed"):
            call()


def test_start_jitter_too_large_to_draw_is_a_value_error():
    with pytest.raises(ValueError, match="start_jitter"):
        RaceCarEnv(start_jitter=(1e308, 0.0))
    env = RaceCarEnv()
    with pytest.raises(ValueError, match="start_jitter"):
        env.reset(seed=0, options={"start_jitter": (0.0, 1e308)})
    env.close()


@pytest.mark.parametrize("options, match", [
    ({"start": {"x": 1e9, "y": 1e9}}, "outside the walls"),
    ({"start": {"x": 14.5, "y": 0.45}}, "outside the corridor"),   # inside the walls' extent, beyond a wall
    ({"goal": {"x": 1e300, "y": 1.0}}, "off the ground"),
])
def test_start_and_goal_options_off_the_track_are_refused(options, match):
    env = RaceCarEnv()
    with pytest.raises(ValueError, match=match):
        env.reset(seed=0, options=options)
    obs, _ = env.reset(seed=0, options={"start": {"x": 9.0, "y": 5.0, "yaw": math.pi / 2}})   # in the corridor
    assert env.observation_space.contains(obs)
    env.close()


def test_env_cannot_be_pickled_or_copied_and_survives_the_attempt():
    """A copy shared the pybullet client and disconnected it when collected: the original then failed in pybullet."""
    env = RaceCarEnv()
    env.reset(seed=0)
    for attempt in (pickle.dumps, copy.deepcopy, copy.copy):
        with pytest.raises(TypeError, match="cannot be pickled or copied"):
            attempt(env)
    env.step([0.0, 0.5])
    env.close()


def test_bad_agent_actions_and_arguments_are_one_line_value_errors():
    env = RaceCarEnv(max_episode_steps=5)
    with pytest.raises(ValueError, match="agent.act returned 'x'"):
        run_episode(env, Drive("x"), seed=0)
    env.close()
    with pytest.raises(ValueError, match="workers must be"):
        resolve_workers("two", 4)
    for bad in (0, 2.5, "abc"):
        with pytest.raises(ValueError, match="episodes must be an integer >= 1"):
            evaluate(Drive([0.0, 0.5]), episodes=bad)


class FailOn:
    """Agent factory (travels to the workers): episode `bad` raises at its first action, the others drive slowly."""

    def __init__(self, bad):
        self.bad = bad

    def __call__(self, i):
        return Drive(None) if i == self.bad else SlowDrive([0.3, 0.5])


class SlowDrive(Drive):
    def act(self, obs):
        time.sleep(0.002)   # the other worker is still mid-episode when the bad one fails
        return self.action


def test_a_pool_reused_after_a_failed_run_returns_its_own_episodes():
    """A failed run left the busy workers' answers in the pipes: the next run returned a stale episode of the failed
    one (seed 0 for seed 5). A closed pool returned a list of None."""
    kwargs = {"track": "s_curve", "max_episode_steps": 40}
    serial = run_episodes(kwargs, Drive([0.3, 0.5]), [5, 6, 7])
    with EnvPool(kwargs, 2) as pool:
        with pytest.raises(RuntimeError, match="action"):        # whole episodes in the workers
            pool.run(FailOn(1), [0, 1, 2, 3])
        got = pool.run(Drive([0.3, 0.5]), [5, 6, 7])
        assert [e.meta["seed"] for e in got] == [5, 6, 7]
        assert [e.observations["observation"].tobytes() for e in got] == \
            [e.observations["observation"].tobytes() for e in serial]
        with pytest.raises(RuntimeError, match="action"):        # lockstep (a lambda cannot travel)
            pool.run(lambda i: Drive([0.0]) if i == 0 else SlowDrive([0.3, 0.5]), [0, 1, 2])
        got = pool.run(lambda i: Drive([0.3, 0.5]), [5, 6, 7])
        assert [e.observations["observation"].tobytes() for e in got] == \
            [e.observations["observation"].tobytes() for e in serial]
    with pytest.raises(RuntimeError, match="closed"):
        pool.run(Drive([0.3, 0.5]), [5])


@pytest.mark.parametrize("kwargs, match", [
    ({"render_size": (1, 1)}, "render_size"),          # rounded to an empty frame: NaN deep in the drawing
    ({"render_size": (100_000, 100_000)}, "render_size"),   # a 30 GB frame
    ({"render_size": 640}, "render_size"),
    ({"reward": {"dense": False}}, "reward must be a RewardConfig"),   # failed only at the first step
    ({"dense_reward": "no"}, "dense_reward"),            # was truthy: the progress reward stayed on
    ({"trail_length": -1}, "trail_length"),
    ({"start_jitter": "ab"}, "start_jitter"),
])
def test_bad_constructor_arguments_are_one_line_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RaceCarEnv(render_mode="rgb_array", **kwargs).render()


def test_run_episodes_takes_numpy_seeds_and_checks_pool_arguments():
    kwargs = {"track": "s_curve", "max_episode_steps": 5}
    eps = run_episodes(kwargs, Drive([0.0, 0.5]), np.arange(3))     # `if seeds` was ambiguous for an array
    assert [e.meta["seed"] for e in eps] == [0, 1, 2]
    for workers in (0, -1):                                          # was a pool of no workers, "closed" at run
        with pytest.raises(ValueError, match="workers must be an integer >= 1"):
            EnvPool(kwargs, workers)
    with EnvPool(kwargs, 1) as pool:                                 # was an IndexError
        with pytest.raises(ValueError, match="options has 1 entries for 2 seeds"):
            pool.run(Drive([0.0, 0.5]), [1, 2], options=[None])
        assert [e.meta["seed"] for e in pool.run(Drive([0.0, 0.5]), np.arange(2))] == [0, 1]


def test_python_m_racecar_env_prints_the_observation_table_without_warnings():
    import subprocess
    import sys
    from pathlib import Path
    from racecar_env import spec
    p = subprocess.run([sys.executable, "-m", "racecar_env"], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).resolve().parent.parent)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert f"layout id {spec.OBS_LAYOUT_ID}" in p.stdout and "steer_angle" in p.stdout
