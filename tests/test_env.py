"""RaceCarEnv behaviour users rely on: spaces, determinism, isolation, rewards/terminations, no tunnelling, errors."""
import json
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import racecar_env
from racecar_env import RaceCarEnv, TrackError, spec


def rollout(env, actions, seed):
    obs, _ = env.reset(seed=seed)
    out = [obs["observation"].tobytes()]
    rewards = []
    for a in actions:
        obs, r, te, tr, _ = env.step(a)
        out.append(obs["observation"].tobytes())
        rewards.append(r)
        if te or tr:
            break
    return out, rewards


@pytest.fixture
def env():
    e = RaceCarEnv()
    yield e
    e.close()


def test_spaces_and_check_env():
    env = gym.make("RaceCar-v0")
    assert env.action_space == gym.spaces.Box(-1, 1, (2,), np.float32)
    assert set(env.observation_space.spaces) == {"observation", "achieved_goal", "desired_goal"}
    assert env.observation_space["observation"].shape == (spec.OBS_DIM,)
    assert env.spec.max_episode_steps >= 1200
    check_env(env.unwrapped)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert set(info) >= {"is_success", "collision", "progress"}
    env.close()


def test_obs_table_matches_vector(env):
    obs, _ = env.reset(seed=3)
    o = obs["observation"]
    assert len(spec.OBS_FIELDS) == o.shape[0]
    np.testing.assert_allclose([spec.field(o, "x"), spec.field(o, "y")], obs["achieved_goal"])
    yaw = math.atan2(spec.field(o, "sin_yaw"), spec.field(o, "cos_yaw"))
    assert abs(yaw - env.track.start.yaw) <= 0.1 + 1e-6   # default jitter
    lidar = o[spec.LIDAR_SLICE]
    assert lidar.shape == (spec.LIDAR_RAYS,) and (lidar > 0).all() and (lidar <= spec.LIDAR_RANGE).all()
    # heading north in a 1.7 m corridor: the side rays see the walls ~0.85 m away
    right = spec.OBS_INDEX[f"lidar_{np.argmin(abs(spec.LIDAR_ANGLES + math.pi / 2)):02d}"]
    assert 0.6 < o[right] < 1.1


def test_same_seed_same_actions_bitwise_identical():
    actions = np.random.default_rng(0).uniform(-1, 1, (150, 2)).astype(np.float32)
    actions[:, 1] = np.abs(actions[:, 1]) * 0.6
    a, b = RaceCarEnv(), RaceCarEnv()
    obs_a, rew_a = rollout(a, actions, seed=7)
    rollout(a, actions[::-1], seed=8)             # an unrelated episode in between must not leak
    obs_a2, rew_a2 = rollout(a, actions, seed=7)
    obs_b, rew_b = rollout(b, actions, seed=7)
    assert obs_a == obs_b == obs_a2 and rew_a == rew_b == rew_a2
    a.close(), b.close()


def test_track_swaps_per_reset_match_a_fresh_env():
    """reset(options={"track": ...}) swaps the walls; the episode is bitwise what a fresh env on that track gives,
    however many swaps came before (and swapping back and forth works at all)."""
    actions = np.tile(np.array([[0.05, 0.7]], np.float32), (60, 1))
    fresh, _ = rollout(RaceCarEnv("hairpin"), actions, seed=5)
    env = RaceCarEnv()
    for _ in range(2):
        rollout(env, actions, seed=1)
        swapped = [env.reset(seed=5, options={"track": "hairpin"})[0]["observation"].tobytes()]
        swapped += [env.step(a)[0]["observation"].tobytes() for a in actions[:len(fresh) - 1]]
        assert env.track.name == "hairpin" and swapped == fresh
        env.reset(seed=1, options={"track": "s_curve"})
    env.close()


def test_two_envs_in_one_process_are_isolated():
    acts_a = np.tile(np.array([[0.1, 0.8]], np.float32), (30, 1))
    acts_b = np.tile(np.array([[-0.1, 0.5]], np.float32), (30, 1))
    alone_a, _ = rollout(RaceCarEnv(), acts_a, seed=1)
    alone_b, _ = rollout(RaceCarEnv("hairpin"), acts_b, seed=2)
    a, b = RaceCarEnv(), RaceCarEnv("hairpin")
    got_a, got_b = [a.reset(seed=1)[0]["observation"].tobytes()], [b.reset(seed=2)[0]["observation"].tobytes()]
    for act_a, act_b in zip(acts_a, acts_b):  # interleaved, one step each
        got_a.append(a.step(act_a)[0]["observation"].tobytes())
        got_b.append(b.step(act_b)[0]["observation"].tobytes())
    assert len(alone_a) == len(alone_b) == 31, "the reference runs should not end early"
    assert got_a == alone_a and got_b == alone_b


def test_driving_straight_into_the_wall_is_a_crash(env):
    env.reset(seed=0, options={"start": {"x": 1.0, "y": 0.6, "yaw": math.pi / 2}})
    for _ in range(200):
        obs, r, te, tr, info = env.step([0.0, 1.0])
        if te or tr:
            break
    assert te and not tr and info["collision"] and not info["is_success"]
    assert r < -5
    assert 3.0 < obs["achieved_goal"][1] < 3.9  # stopped at the wall at y = 4 (inner face 3.85), not through it


def test_reaching_the_goal_is_success(env):
    g = env.track.goal
    env.reset(seed=0, options={"start": {"x": g.x - 0.6, "y": 7.0, "yaw": 0.0}})
    obs, r, te, tr, info = env.step([0.0, 0.0])
    assert te and not tr and info["is_success"] and not info["collision"]
    assert info["progress"] == 1.0 and r > 5


def test_time_limit_truncates_not_terminates():
    env = RaceCarEnv(max_episode_steps=5)
    env.reset(seed=0)
    for i in range(5):
        _, _, te, tr, _ = env.step([0.0, 0.0])
    assert tr and not te
    with pytest.raises(RuntimeError, match="reset"):
        env.step([0.0, 0.0])
    made = gym.make("RaceCar-v0", max_episode_steps=3)
    made.reset(seed=0)
    assert [made.step([0, 0])[3] for _ in range(3)] == [False, False, True]


def test_gym_make_time_limit_is_the_one_asked_for():
    """gym.make(max_episode_steps=1500) wrapped a TimeLimit(1500) around an env that truncated at its own 1200."""
    for asked, want in ((1500, 1500), (None, 1200)):
        made = gym.make("RaceCar-v0", **({} if asked is None else {"max_episode_steps": asked}))
        made.reset(seed=0)
        steps, truncated = 0, False
        while not truncated:
            _, _, terminated, truncated, _ = made.step([0.0, 0.0])   # standing still: only the limit ends it
            assert not terminated
            steps += 1
        assert steps == want
        made.close()


def test_random_action_fuzz_no_nan_no_tunnelling():
    """20,000 random steps across resets: finite observations, car never outside the walls' bounding box."""
    env = RaceCarEnv()
    xmin, ymin, xmax, ymax = env.track.bounds
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    resets = 0
    for i in range(20_000):
        a = rng.uniform(-1, 1, 2)
        a[1] = abs(a[1]) if rng.random() < 0.8 else a[1]  # mostly forward so the car gets around
        obs, r, te, tr, info = env.step(a)
        o = obs["observation"]
        assert np.isfinite(o).all() and math.isfinite(r)
        x, y = o[0], o[1]
        assert xmin < x < xmax and ymin < y < ymax, f"car at ({x:.2f}, {y:.2f}) left the track at step {i}"
        if te or tr:
            obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
            resets += 1
    assert resets > 10


def test_bad_actions_raise_clear_value_errors(env):
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step([float("nan"), 0.0])
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        env.step([0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="2 numbers"):
        env.step("fast")


def test_unknown_track_lists_shipped_tracks():
    with pytest.raises(TrackError, match="s_curve") as e:
        RaceCarEnv("nurburgring")
    assert "hairpin" in str(e.value)


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.pop("goal"), "goal"),
    (lambda d: d["goal"].pop("radius"), "goal.radius"),
    (lambda d: d.__setitem__("walls", [[0, 0, 1]]), "walls"),
    (lambda d: d["start"].__setitem__("yaw", "north"), "start.yaw"),
    (lambda d: d.__setitem__("centerline", [[0, 0]]), "centerline"),
])
def test_malformed_track_file_names_the_field(tmp_path, mutate, field):
    data = json.loads((racecar_env.tracks.TRACKS_DIR / "s_curve.json").read_text())
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TrackError, match=field.replace(".", r"\.")) as e:
        RaceCarEnv(str(path))
    assert str(path) in str(e.value)


def test_track_file_not_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{ walls: ")
    with pytest.raises(TrackError, match="not valid JSON"):
        racecar_env.load_track(path)


@pytest.mark.parametrize("track", racecar_env.shipped_tracks())
def test_shipped_tracks_load_and_first_corridor_makes_progress(track):
    env = RaceCarEnv(track)
    _, info0 = env.reset(seed=0)
    total = 0.0
    for _ in range(25):  # ~1.4 m at 0.6 throttle, well before the first corner
        _, r, te, tr, info = env.step([0.0, 0.6])
        total += r
        assert not te
    assert info["progress"] > info0["progress"] + 0.04 and total > 1.0


def test_custom_track_file_sets_start_goal_and_centerline(tmp_path):
    """Nothing about the S is hard-coded: a straight corridor from a file."""
    track = {"name": "straight", "walls": [[0, 0, 10, 0], [0, 2, 10, 2], [0, 0, 0, 2], [10, 0, 10, 2]],
             "start": {"x": 1, "y": 1, "yaw": 0}, "goal": {"x": 8, "y": 1, "radius": 0.5},
             "centerline": [[1, 1], [8, 1]]}
    path = tmp_path / "straight.json"
    path.write_text(json.dumps(track))
    env = RaceCarEnv(str(path), start_jitter=(0, 0))
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs["desired_goal"], [8, 1])
    np.testing.assert_allclose(obs["achieved_goal"], [1, 1], atol=1e-3)
    for _ in range(100):
        obs, r, te, tr, info = env.step([0.0, 1.0])
        if te:
            break
    assert info["is_success"]


def test_start_jitter_never_spawns_in_contact_and_explicit_pose_in_wall_raises():
    env = RaceCarEnv(start_jitter=(0.3, 0.4))
    for seed in range(30):
        env.reset(seed=seed)
        assert not env.sim.touches_wall(0.02)
    with pytest.raises(ValueError, match="in a wall"):
        env.reset(options={"start": {"x": 0.05, "y": 1.0, "yaw": 0.0}})


def test_sampled_goal_mode_puts_goals_on_the_centerline():
    env = RaceCarEnv(goal_mode="sampled")
    goals = {tuple(env.reset(seed=s)[0]["desired_goal"]) for s in range(5)}
    assert len(goals) == 5
    line = racecar_env.Centerline(env.track.centerline)
    for gx, gy in goals:
        s = line.project(gx, gy)
        assert np.hypot(*(np.array(line.point_at(s)[:2]) - (gx, gy))) < 1e-3 and s >= 0.3 * line.length - 1e-3


def test_rgb_array_frames_topdown_and_chase():
    env = RaceCarEnv(render_mode="rgb_array")
    env.reset(seed=0)
    f0 = env.render()
    for _ in range(10):
        env.step([0.0, 1.0])
    f1 = env.render()
    assert f0.dtype == np.uint8 and f0.ndim == 3 and f0.shape[2] == 3
    assert f0.shape[0] % 2 == 0 and f0.shape[1] % 2 == 0
    assert (f0 != f1).any() and f0.std() > 10
    chase = env.render_frame("chase")
    assert chase.shape == (240, 320, 3) and chase.std() > 5
    both = env.render_frame("both")
    assert both.shape[1] == f0.shape[1] and both.shape[0] > f0.shape[0] and both.shape[0] % 2 == 0


def test_human_render_mode_opens_a_pygame_window():
    import pygame
    env = RaceCarEnv(render_mode="human")
    env.reset(seed=0)
    env.step([0.0, 0.5])
    assert pygame.display.get_surface() is not None
    env.close()


@pytest.mark.parametrize("yaw, goal, fwd, left", [
    (math.pi / 2, (1.0, 2.5), 2.0, 0.0),            # facing north, goal ahead
    (math.pi / 2, (0.4, 0.5), 0.0, 0.6),            # facing north, -x is on the car's left
    (0.0, (1.0, 0.2), 0.0, -0.3),                   # facing east, -y is on the right
    (math.pi / 2, (1.0, 30.5), 10.0, 0.0),          # far goal: true direction, distance capped
])
def test_goal_and_route_are_in_the_car_frame(env, yaw, goal, fwd, left):
    obs, _ = env.reset(seed=0, options={"start": {"x": 1.0, "y": 0.5, "yaw": yaw},
                                         "goal": {"x": goal[0], "y": goal[1]}})
    o = obs["observation"]
    x, y = obs["achieved_goal"]
    assert spec.field(o, "goal_fwd") == pytest.approx(fwd, abs=0.02)
    assert spec.field(o, "goal_left") == pytest.approx(left, abs=0.02)
    assert spec.field(o, "goal_dist") == pytest.approx(min(math.hypot(goal[0] - x, goal[1] - y), spec.GOAL_RANGE),
                                                        abs=1e-4)
    if yaw == math.pi / 2:   # the S track's first corridor runs north along x = 1: route points lie straight ahead
        route = spec.group(o, "route").reshape(-1, 2)
        np.testing.assert_allclose(route[:5, 1], 0.0, atol=0.02)    # 0 .. 2 m ahead: before the corner at y = 3
        np.testing.assert_allclose(np.diff(route[:5, 0]), 0.5, atol=0.02)
        assert np.all(route[6:, 1] < -0.5)   # 4 and 5 m ahead the road has turned east: to the car's right


def test_observation_is_built_through_the_table():
    assert spec.OBS_DIM == sum(len(g) for g in spec.GROUPS.values())
    with pytest.raises(ValueError, match="lidar"):
        spec.assemble(pose=[0] * 4, motion=[0] * 4, lidar=[0] * 3, route=[0] * 16, goal=[0] * 3)
    assert spec.POLICY_FIELDS and not set(spec.POLICY_FIELDS) & {"x", "y", "sin_yaw", "cos_yaw"}


def _corridor(x0: float, x1: float) -> dict:
    return {"name": "edge", "walls": [[x0, 0, x1, 0], [x0, 2, x1, 2], [x0, 0, x0, 2], [x1, 0, x1, 2]],
            "start": {"x": x0 + 1, "y": 1, "yaw": 0}, "goal": {"x": x1 - 1.5, "y": 1, "radius": 0.5},
            "centerline": [[x0 + 1, 1], [x1 - 1.5, 1]]}


def test_tracks_must_lie_on_the_ground_and_are_drivable_up_to_its_edge(tmp_path):
    """The ground is a 200 x 200 m slab: past its edge the car falls off (reported as a crash). A track reaching past
    it is refused in one line; one that reaches the allowed edge drives to its goal."""
    far = tmp_path / "far.json"
    far.write_text(json.dumps(_corridor(140, 160)))
    with pytest.raises(TrackError, match="far.json.*'walls'.*within \\+-98 m") as e:
        RaceCarEnv(str(far))
    assert "\n" not in str(e.value)
    edge = tmp_path / "edge.json"
    edge.write_text(json.dumps(_corridor(86, 97.5)))
    env = RaceCarEnv(str(edge), start_jitter=(0, 0))
    env.reset(seed=0)
    for _ in range(150):
        _, _, te, _, info = env.step([0.0, 1.0])
        if te:
            break
    assert info["is_success"]
