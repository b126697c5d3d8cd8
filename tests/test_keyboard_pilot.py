"""The simulated keyboard driver: its actions are what held keys make through the keyboard ramps, its reaction delay
is real, careful finishes s_curve, and its provenance lands in recorded datasets."""
import itertools
import math

import numpy as np
import pytest

from racecar_env import RaceCarEnv, spec
from racecar_env.rollout import run_episode
from teleop.autopilot import SKILLS, make_driver
from teleop.keyboard import Controls, RampConfig, next_action
from teleop.keyboard_pilot import KEYBOARD_SKILLS, KeyboardPilot

DT = spec.CONTROL_DT
ALL_CONTROLS = [Controls(s, p, g) for s, p, g in itertools.product((-1, 0, 1), (-1, 0, 1), (False, True))]


@pytest.fixture(scope="module")
def env():
    e = RaceCarEnv("s_curve")
    yield e
    e.close()


@pytest.fixture(scope="module")
def careful_episodes(env):
    return [run_episode(env, KeyboardPilot(env.track, "keyboard-careful", seed=s), s) for s in range(3)]


def test_keyboard_skills_are_recorder_skills():
    assert set(KEYBOARD_SKILLS) <= set(SKILLS)
    assert isinstance(make_driver("s_curve", "keyboard-sloppy", 0), KeyboardPilot)


def test_careful_reaches_the_goal_on_s_curve(careful_episodes):
    assert [e.outcome for e in careful_episodes] == ["success"] * 3


def test_every_action_is_what_some_held_keys_make_through_the_ramps(careful_episodes):
    """Replaying the recorded actions: each one equals next_action(keys, previous action) for some set of held keys,
    so the data have a keyboard's shape (bounded ramps, plateaus, self-centring), not a controller's."""
    ramps = RampConfig()
    for ep in careful_episodes:
        prev = np.zeros(2, np.float32)
        speeds = spec.field(ep.observations["observation"], "v_forward")
        for t, a in enumerate(ep.actions):
            assert any(np.array_equal(next_action(c, prev, DT, float(speeds[t]), ramps), a) for c in ALL_CONTROLS), t
            prev = a
        d = np.abs(np.diff(ep.actions, axis=0))
        assert d[:, 0].max() <= ramps.steer_return_rate * DT + 1e-6     # steering moves at most one ramp step
        assert d[:, 1].max() <= ramps.brake_rate * DT + 1e-6
        steady = (d == 0).mean(axis=0)                                 # plateaus: keys held at a cap, or none
        assert steady[0] > 0.3 and steady[1] > 0.3, steady
        assert (ep.actions[:, 1] == 1.0).sum() >= 10                    # up held through a straight
        assert np.isclose(ep.actions[:, 1], ramps.gentle_throttle).any()   # careful uses Shift in corners


def _pose_obs(env, yaw_offset):
    s = env.track.start
    obs, _ = env.reset(seed=0, options={"start": {"x": s.x, "y": s.y, "yaw": s.yaw + yaw_offset}})
    return obs


def test_reaction_delay_is_real(env):
    """A step change in what it sees (the car suddenly points 0.5 rad right of the road) shows up in its keys
    exactly `delay` ticks later, not before."""
    straight, turned = _pose_obs(env, 0.0), _pose_obs(env, -0.5)
    pilot = KeyboardPilot(env.track, "keyboard-careful", seed=0)
    pilot.reset(straight, {"track": env.track})
    assert pilot.delay >= 2
    keys = []
    for t in range(12):
        pilot.act(straight if t < 4 else turned)
        keys.append(pilot.controls.steer)
    assert keys[:4 + pilot.delay] == [0] * (4 + pilot.delay)
    assert keys[4 + pilot.delay] == 1          # then it steers left, toward the road


def test_sloppy_lapses_keep_the_keys(env):
    obs = _pose_obs(env, 0.0)
    pilot = KeyboardPilot(env.track, "keyboard-sloppy", seed=1)
    pilot.reset(obs, {"track": env.track})
    pilot.cfg = type(pilot.cfg)(**{**pilot.cfg.__dict__, "lapse_rate": 1 / DT})   # a lapse at once
    pilot.controls = Controls(steer=-1, pedal=0)
    pilot.act(obs)
    assert pilot.controls == Controls(steer=-1, pedal=0)    # what it saw says "straight, accelerate": ignored


def test_recorded_episodes_carry_the_provenance(tmp_path, monkeypatch):
    from racecar_env.storage import load_dataset
    from teleop.__main__ import main
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    assert main(["--driver", "autopilot", "--skill", "keyboard-sloppy", "--episodes", "1", "--workers", "1",
                 "--no-progress"]) == 0
    ep = load_dataset("s_keyboard-sloppy").episodes[0]
    m = ep.meta
    assert m["driver"] == "keyboard-pilot" and m["skill"] == "keyboard-sloppy" and m["input"] == "keyboard (simulated)"
    lo, hi = KEYBOARD_SKILLS["keyboard-sloppy"].reaction_s
    assert lo - DT / 2 <= m["reaction_delay_s"] <= hi + DT / 2 and m["lapse_rate_per_s"] > 0
    assert math.isfinite(m["v_corner"])


def _drive_logging_wanted_steer(track, skill):
    """One episode of `skill` on `track`: the actions and, each tick, the steer the pilot wanted from what it saw."""
    env = RaceCarEnv(track)
    pilot = KeyboardPilot(env.track, skill, seed=0)
    obs, info = env.reset(seed=0)
    pilot.reset(obs, info, seed=0)
    actions, wanted = [], []
    while True:   # until the goal, a crash or the env's time limit
        actions.append(pilot.act(obs))
        wanted.append(pilot.planner.intent(pilot._seen[0])[0])
        obs, _, terminated, truncated, _ = env.step(actions[-1])
        if terminated or truncated:
            break
    env.close()
    return np.array(actions), np.array(wanted)


def test_careful_holds_full_lock_through_a_corner_that_needs_it():
    """On a sharp corner of a hard generated road the wanted steer goes past full lock. A careful driver keeps the
    key down there; letting go (the wheel self-centres 0.3 a tick) and pressing again made it run wide and crash on
    half the hard roads. The sloppy driver taps through such corners by design (hold_at_lock=False)."""
    from racecar_env.tracks import generate
    track = generate(1_000_030, difficulty="hard")
    for skill, holds in (("keyboard-careful", True), ("keyboard-sloppy", False)):
        actions, wanted = _drive_logging_wanted_steer(track, skill)
        at_lock = np.abs(actions[:-1, 0]) == 1.0
        still_wanted = np.sign(actions[:-1, 0]) * wanted[1:] >= 1.0     # the next tick still wants lock that side
        ticks = np.flatnonzero(at_lock & still_wanted)
        assert len(ticks) >= (10 if holds else 1), (skill, len(ticks))
        kept = np.abs(actions[ticks + 1, 0]) == 1.0
        assert kept.all() if holds else not kept.all(), (skill, kept.mean())
