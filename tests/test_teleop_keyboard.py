"""Keyboard and gamepad input: key-state tracking from real pygame events, ramps, brake-then-reverse, analog mapping."""
import numpy as np
import pygame
import pytest

from racecar_env import spec
from teleop.drivers import Driver
from teleop.gamepad import GamepadDriver, gamepad_action
from teleop.keyboard import Controls, KeyboardDriver, KeyState, RampConfig, next_action

DT = spec.CONTROL_DT


def key(kind, k):
    return pygame.event.Event(kind, key=k, mod=0, unicode="", scancode=0)


def down(k):
    return key(pygame.KEYDOWN, k)


def up(k):
    return key(pygame.KEYUP, k)


@pytest.fixture(scope="module", autouse=True)
def pygame_display():
    pygame.display.init()
    pygame.display.set_mode((64, 64))
    yield
    pygame.display.quit()


def feed_posted(state: KeyState, events):
    """Through the real pygame queue, as the window gets them."""
    pygame.event.clear()
    for e in events:
        pygame.event.post(e)
    for e in pygame.event.get():
        state.handle(e)


def test_press_release_through_the_posted_event_queue():
    s = KeyState()
    feed_posted(s, [down(pygame.K_UP)])
    assert s.controls() == Controls(steer=0, pedal=1)
    feed_posted(s, [down(pygame.K_a), up(pygame.K_UP)])
    assert s.controls() == Controls(steer=1, pedal=0)
    feed_posted(s, [up(pygame.K_a)])
    assert not s.controls().any


def test_two_keys_at_once_and_last_pressed_wins():
    s = KeyState()
    for e in (down(pygame.K_w), down(pygame.K_LEFT)):
        s.handle(e)
    assert s.controls() == Controls(steer=1, pedal=1)  # throttle and steer together
    s.handle(down(pygame.K_RIGHT))                     # roll onto right while left is still held
    assert s.controls().steer == -1
    s.handle(up(pygame.K_RIGHT))                       # release right: left is still down
    assert s.controls().steer == 1
    s.handle(down(pygame.K_s))
    assert s.controls().pedal == -1
    s.handle(up(pygame.K_s))
    assert s.controls().pedal == 1


def test_key_repeat_keeps_press_order_and_aliases_share_a_control():
    s = KeyState()
    s.handle(down(pygame.K_LEFT))
    s.handle(down(pygame.K_RIGHT))
    s.handle(down(pygame.K_LEFT))  # auto-repeat of the older key must not steal the lead
    assert s.controls().steer == -1
    s.handle(down(pygame.K_a))      # a second key bound to "left", pressed now: left wins
    assert s.controls().steer == 1
    s.handle(up(pygame.K_a))
    assert s.controls().steer == -1


@pytest.mark.parametrize("event", [
    pygame.event.Event(pygame.WINDOWFOCUSLOST),
    pygame.event.Event(pygame.ACTIVEEVENT, gain=0, state=pygame.APPINPUTFOCUS),
])
def test_focus_loss_clears_held_keys(event):
    s = KeyState()
    s.handle(down(pygame.K_UP))
    s.handle(down(pygame.K_d))
    feed_posted(s, [event])
    assert not s.controls().any and not s.held_keys


def test_other_keys_are_not_tracked():
    s = KeyState()
    assert not s.handle(down(pygame.K_p))
    assert not s.controls().any


def test_ramps_are_bounded_and_self_centre():
    cfg = RampConfig()
    a = np.zeros(2, np.float32)
    a = next_action(Controls(steer=1, pedal=1), a, DT, 0.0, cfg)
    assert a[0] == pytest.approx(cfg.steer_rate * DT) and a[1] == pytest.approx(cfg.throttle_rate * DT)
    for _ in range(40):
        a = next_action(Controls(steer=1, pedal=1), a, DT, 1.0, cfg)
    assert tuple(a) == (1.0, 1.0)
    a = next_action(Controls(), a, DT, 1.0, cfg)  # released: back toward centre / zero at the return rates
    assert a[0] == pytest.approx(1 - cfg.steer_return_rate * DT) and a[1] == pytest.approx(1 - cfg.release_rate * DT)
    for _ in range(20):
        a = next_action(Controls(), a, DT, 1.0, cfg)
    assert tuple(a) == (0.0, 0.0)
    assert a.dtype == np.float32 and a.shape == (2,)


def test_ramp_rate_is_per_second_not_per_tick():
    a1 = next_action(Controls(steer=-1), (0.0, 0.0), 0.1)
    a2 = next_action(Controls(steer=-1), next_action(Controls(steer=-1), (0.0, 0.0), 0.05), 0.05)
    assert a1[0] == pytest.approx(a2[0])


def test_down_brakes_while_rolling_then_reverses_when_stopped():
    cfg = RampConfig()
    a = np.array([0.0, 1.0], np.float32)
    a = next_action(Controls(pedal=-1), a, DT, speed=2.0, config=cfg)
    assert 0.0 <= a[1] < 1.0
    for _ in range(10):
        a = next_action(Controls(pedal=-1), a, DT, speed=2.0, config=cfg)
    assert a[1] == 0.0  # braking: never reverse torque while still rolling forward
    for _ in range(40):
        a = next_action(Controls(pedal=-1), a, DT, speed=0.0, config=cfg)
    assert a[1] == pytest.approx(-cfg.reverse_throttle)


def test_shift_caps_throttle():
    a = np.array([0.0, 1.0], np.float32)
    for _ in range(20):
        a = next_action(Controls(pedal=1, gentle=True), a, DT, 1.0)
    assert a[1] == pytest.approx(RampConfig().gentle_throttle)


def test_keyboard_driver_is_a_driver_and_uses_the_car_speed():
    d = KeyboardDriver()
    assert isinstance(d, Driver) and d.provenance()["driver"] == "human"
    obs = {"observation": np.zeros(spec.OBS_DIM, np.float32)}
    d.reset(obs, {})
    assert not d.has_input()
    d.handle_event(down(pygame.K_DOWN))
    assert d.has_input()
    for _ in range(30):
        a = d.act(obs)
    assert a[1] < 0  # standing still: down reverses
    d.handle_event(pygame.event.Event(pygame.WINDOWFOCUSLOST))
    assert not d.has_input()


def test_gamepad_axes_from_posted_events():
    d = GamepadDriver(use_triggers=True)
    assert isinstance(d, Driver)
    obs = {"observation": np.zeros(spec.OBS_DIM, np.float32)}
    assert not d.has_input() and tuple(d.act(obs)) == (0.0, 0.0)  # untouched triggers read as released
    pygame.event.clear()
    pygame.event.post(pygame.event.Event(pygame.JOYAXISMOTION, joy=0, instance_id=0, axis=0, value=1.0))
    pygame.event.post(pygame.event.Event(pygame.JOYAXISMOTION, joy=0, instance_id=0, axis=5, value=1.0))
    for e in pygame.event.get():
        d.handle_event(e)
    assert d.has_input()
    assert tuple(d.act(obs)) == (-1.0, 1.0)  # stick right = steer right (negative), trigger full = throttle 1
    d.handle_event(pygame.event.Event(pygame.JOYDEVICEREMOVED, instance_id=0))
    assert not d.has_input()


def test_gamepad_brake_then_reverse_and_stick_mode():
    brake = {2: 1.0}
    assert gamepad_action(brake, speed=2.0, use_triggers=True)[1] == 0.0
    assert gamepad_action(brake, speed=0.0, use_triggers=True)[1] < 0
    assert gamepad_action({1: -1.0}, speed=0.0, use_triggers=False)[1] == pytest.approx(1.0)
    assert gamepad_action({0: 0.05, 1: 0.05}, speed=0.0, use_triggers=False).tolist() == [0.0, 0.0]  # deadzone
