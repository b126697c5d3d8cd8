"""The recorder window driven headless: real pygame (dummy video driver), real env, real dataset files.

Key events go through pygame's real event queue (posted, then read by the session's own pygame.event.get); the
session runs unpaced (no sleeping), one env step per tick at most.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pygame
import pytest

from racecar_env import RaceCarEnv, TopDown
from racecar_env.storage import DatasetWriter, load_dataset
from teleop.keyboard import KeyboardDriver, RampConfig
from teleop.record import episode_seed
from teleop.window import Phase, RecorderSession, SessionConfig, TickClock, open_window

REPO = Path(__file__).resolve().parent.parent
CFG = SessionConfig(countdown_s=0.1, banner_s=0.1)  # 2-tick countdown and banner: fast tests


class LoggingEnv(RaceCarEnv):
    """The real env, remembering every action it received (to compare with what was recorded)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.received: list[np.ndarray] = []

    def reset(self, **kw):
        self.received = []
        return super().reset(**kw)

    def step(self, action):
        self.received.append(np.array(action, dtype=np.float32))
        return super().step(action)


def press(k):
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k, mod=0, unicode="", scancode=0))


def release(k):
    pygame.event.post(pygame.event.Event(pygame.KEYUP, key=k, mod=0, unicode="", scancode=0))


def ticks(session, n):
    for _ in range(n):
        if not session.tick():
            return False
    return True


def until(session, phase, limit=400):
    for _ in range(limit):
        if session.phase is phase:
            return
        assert session.tick(), f"session ended while waiting for {phase}"
    raise AssertionError(f"no {phase} within {limit} ticks (now {session.phase})")


@pytest.fixture
def datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    return tmp_path / "datasets"


@pytest.fixture
def recorder(datasets):
    """A session on a real window (dummy driver) writing a real dataset."""
    env = LoggingEnv()
    screen = open_window(TopDown(env.track).size, 1.0, "test")
    pygame.event.clear()
    writer = DatasetWriter("human_test")
    sessions = []

    def make(config=CFG, driver=None):
        s = RecorderSession(env, driver or KeyboardDriver(), writer, config, screen=screen)
        sessions.append(s)
        return s

    yield make
    writer.close()
    env.close()
    pygame.quit()


def test_record_two_discard_one_quit_and_load_back(recorder):
    s = recorder()
    env = s.env
    start_obs = s.obs["observation"].copy()
    assert s.phase is Phase.COUNTDOWN and s.hud().banner == "1"
    until(s, Phase.READY)
    assert s.hud().banner == "GO"
    ticks(s, 10)  # nobody touches the keys: the car waits, the env is not stepped, nothing is recorded
    assert s.phase is Phase.READY and env.elapsed_steps == 0

    # episode 1: up + left together, then straight on into the wall
    press(pygame.K_UP)
    press(pygame.K_a)
    ticks(s, 1)
    assert s.phase is Phase.DRIVING and env.elapsed_steps == 1
    assert "REC" in s.hud().lines[0] and s.hud().banner is None
    r = RampConfig()
    assert env.received[0] == pytest.approx([r.steer_rate * 0.05, r.throttle_rate * 0.05])
    ticks(s, 5)
    release(pygame.K_a)
    until(s, Phase.OVER)
    first_actions = np.stack(env.received)
    assert s.summary.saved == [0] and s.summary.outcomes == ["crash"]
    assert s.hud().banner == "CRASH  saved #0" and "saved 1   goal 0   crash 1" in s.hud().lines[2]
    assert first_actions[-1][0] < first_actions[5][0]  # steering self-centred after release
    release(pygame.K_UP)

    # episode 2: drive a little, then discard it with R
    until(s, Phase.READY)
    press(pygame.K_w)
    ticks(s, 8)
    assert s.phase is Phase.DRIVING
    release(pygame.K_w)
    press(pygame.K_r)
    ticks(s, 1)
    assert s.summary.discarded == 1 and s.phase is Phase.COUNTDOWN and env.elapsed_steps == 0

    # episode 3: hold up (arrow) until the crash
    until(s, Phase.READY)
    press(pygame.K_UP)
    until(s, Phase.OVER)
    third_actions = np.stack(env.received)
    release(pygame.K_UP)
    press(pygame.K_ESCAPE)
    assert not s.tick()  # quit
    assert s.summary.saved == [0, 1]

    ds = load_dataset("human_test")
    assert len(ds) == 2
    for ep, sent in zip(ds.episodes, (first_actions, third_actions)):
        np.testing.assert_array_equal(ep.actions, sent)  # exactly what env.step received, tick for tick
        assert ep.meta["driver"] == "human" and ep.meta["outcome"] == "crash"
        assert ep.track.track_id == env.track.track_id  # the session's track travels with every episode
    np.testing.assert_array_equal(ds.episodes[0].observations["observation"][0], start_obs)  # idle not recorded
    assert [ep.meta["seed"] for ep in ds.episodes] == [episode_seed(0, 0), episode_seed(0, 1)]


def test_pause_stops_physics(recorder):
    s = recorder()
    until(s, Phase.READY)
    press(pygame.K_UP)
    ticks(s, 5)
    steps, pose = s.env.elapsed_steps, s.env.sim.car_state()[:3]
    press(pygame.K_p)
    ticks(s, 15)
    assert s.paused and s.env.elapsed_steps == steps
    np.testing.assert_array_equal(s.env.sim.car_state()[:3], pose)
    press(pygame.K_p)
    ticks(s, 3)
    assert not s.paused and s.env.elapsed_steps == steps + 3


def test_focus_loss_pauses_and_releases_keys(recorder):
    s = recorder()
    until(s, Phase.READY)
    press(pygame.K_UP)
    ticks(s, 3)
    pygame.event.post(pygame.event.Event(pygame.WINDOWFOCUSLOST))
    ticks(s, 5)
    assert s.paused and not s.driver.has_input() and s.env.elapsed_steps == 3


def test_all_events_of_a_frame_are_handled(recorder):
    """A quit in the same frame as key presses must not drop them (and vice versa)."""
    s = recorder()
    until(s, Phase.READY)
    press(pygame.K_UP)
    press(pygame.K_p)
    press(pygame.K_LEFT)
    ticks(s, 1)
    assert s.paused and s.driver.keys.controls().steer == 1 and s.driver.keys.controls().pedal == 1


def test_delete_last_saved_asks_first(recorder):
    s = recorder()
    until(s, Phase.READY)
    press(pygame.K_UP)
    until(s, Phase.OVER)
    release(pygame.K_UP)
    until(s, Phase.READY)
    press(pygame.K_DELETE)
    ticks(s, 1)
    assert s.confirm_delete
    press(pygame.K_n)  # no: keep it
    ticks(s, 1)
    assert not s.confirm_delete and s.summary.saved == [0]
    press(pygame.K_x)
    press(pygame.K_y)
    ticks(s, 1)
    assert s.summary.saved == [] and s.summary.deleted == 1
    press(pygame.K_UP)  # the next one takes the freed slot
    until(s, Phase.OVER)
    press(pygame.K_q)
    ticks(s, 1)
    assert s.summary.saved == [0] and len(load_dataset("human_test")) == 1
    import minari
    assert minari.load_dataset("racecar/human_test-v0").total_episodes == 1  # Minari reads it after the delete


def test_episode_limit_and_autopilot_is_interchangeable(recorder):
    """Any Driver runs in the window; one without input handling starts when the countdown ends."""
    from teleop.autopilot import Autopilot

    s = recorder(SessionConfig(countdown_s=0.1, banner_s=0.1, max_episodes=1),
                 driver=Autopilot(RaceCarEnv().track, skill="expert", seed=0))
    s.run()
    assert s.summary.saved == [0] and s.summary.outcomes == ["success"]
    ep = load_dataset("human_test").episodes[0]
    assert ep.meta["driver"] == "autopilot"


def test_tick_clock_paces_to_20_hz_and_measures():
    clock = TickClock(20, realtime=True)
    t = time.perf_counter()
    for _ in range(12):
        clock.wait()
    elapsed = time.perf_counter() - t
    # pacing never runs early; a loaded machine may run late (loose upper bounds: CI shares its cores)
    assert 0.55 <= elapsed < 1.5 and 14 < clock.fps < 26, (elapsed, clock.fps)
    fast = TickClock(20, realtime=False)
    for _ in range(12):
        fast.wait()
    assert fast.fps > 200


def test_no_display_gives_one_clear_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    env["MINARI_DATASETS_PATH"] = str(tmp_path / "datasets")
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-m", "teleop", "--driver", "keyboard", "--dataset", "nodisplay"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    # pybullet's C library prints its build time on import, outside Python's control; everything else is ours
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("pybullet build time")]
    err = "\n".join(lines)
    assert "Traceback" not in err and len(lines) == 1, err
    assert "no display" in err and "--driver autopilot" in err and "xvfb-run" in err
    assert not (tmp_path / "datasets").exists()  # nothing written before the check


def test_tick_clock_reports_a_slow_machine():
    clock = TickClock(20, realtime=True)
    for _ in range(14):
        time.sleep(0.075)  # a tick's work takes longer than 50 ms
        clock.wait()
    assert clock.slow and clock.fps < 19


def test_cli_keyboard_session_end_to_end(datasets):
    """`python -m teleop --driver keyboard` in-process, paced in real time: a 'human' thread holds up once the
    window is open; the time-out ends the one episode and the session ends by itself."""
    import threading

    from teleop.__main__ import main

    def human():
        deadline = time.monotonic() + 20
        while pygame.display.get_surface() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        press(pygame.K_UP)  # posting from another thread is safe in SDL2

    t = threading.Thread(target=human, daemon=True)
    t.start()
    start = time.perf_counter()
    code = main(["--driver", "keyboard", "--episodes", "1", "--dataset", "cli_human", "--max-episode-steps", "10"])
    elapsed = time.perf_counter() - start
    t.join(1)
    assert code == 0
    ep = load_dataset("cli_human").episodes[0]
    assert ep.steps == 10 and ep.meta["outcome"] == "timeout" and ep.meta["driver"] == "human"
    assert ep.actions[-1][1] > ep.actions[0][1] > 0  # throttle ramping up, as held
    assert elapsed >= 1.5 + 0.5 + 1.5 - 0.2  # countdown + 10 steps + banner at 20 Hz: lockstep, real-time paced


def test_gamepad_driver_without_a_pad_is_a_clear_exit():
    from teleop.window import make_driver

    pygame.display.init()
    try:
        with pytest.raises(SystemExit, match="no gamepad found.*--driver keyboard"):
            make_driver("gamepad")
    finally:
        pygame.quit()


def test_gamepad_drives_the_window_session(recorder):
    """Analog input through posted joystick events: stick right + full trigger, Start pauses."""
    from teleop.gamepad import GamepadDriver

    s = recorder(SessionConfig(countdown_s=0.1, banner_s=0.1, max_episodes=1), driver=GamepadDriver())
    until(s, Phase.READY)
    ticks(s, 3)
    assert s.env.elapsed_steps == 0
    pygame.event.post(pygame.event.Event(pygame.JOYAXISMOTION, joy=0, instance_id=0, axis=5, value=0.0))
    ticks(s, 2)
    half_trigger = (0.5 - 0.08) / (1 - 0.08)  # rest -1 .. full +1, minus the 0.08 deadzone
    assert s.phase is Phase.DRIVING and s.env.received[0] == pytest.approx([0.0, half_trigger])
    pygame.event.post(pygame.event.Event(pygame.JOYBUTTONDOWN, joy=0, instance_id=0, button=7))
    ticks(s, 3)
    assert s.paused and s.env.elapsed_steps == 2
    pygame.event.post(pygame.event.Event(pygame.JOYBUTTONDOWN, joy=0, instance_id=0, button=7))
    pygame.event.post(pygame.event.Event(pygame.JOYAXISMOTION, joy=0, instance_id=0, axis=0, value=-1.0))
    s.run()
    ep = load_dataset("human_test").episodes[0]
    assert ep.meta["input"].startswith("gamepad") and ep.actions[-1][0] == 1.0  # stick left = full left
