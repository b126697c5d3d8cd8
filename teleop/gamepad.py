"""Gamepad driving (pygame joystick): analog stick steering, triggers for throttle and brake/reverse.

Axis values are taken from JOYAXISMOTION events rather than polled, for the same reasons as the keyboard: tests can
post events, and SDL reports triggers as 0 (= half pressed, on a -1..1 trigger) until they first move - an axis
counts only once an event has been seen for it. Pads with fewer than 6 axes drive throttle with the left stick's
vertical axis instead of the triggers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pygame

from .keyboard import forward_speed, is_focus_loss


@dataclass(frozen=True)
class GamepadConfig:
    """Axis numbers follow SDL's common layout of Xbox-style pads on Linux (0 LX, 1 LY, 2 LT, 3 RX, 4 RY, 5 RT)."""
    steer_axis: int = 0              # left stick x: right is +, and steer + is left, so it is negated
    throttle_axis: int = 5           # right trigger, rest -1 .. full +1
    brake_axis: int = 2              # left trigger: brake, then reverse at standstill
    stick_throttle_axis: int = 1     # left stick y (up is -), used when the pad has no triggers
    deadzone: float = 0.08
    reverse_throttle: float = 0.5
    stop_speed: float = 0.15         # m/s, as the keyboard: below this, brake becomes reverse
    pause_button: int = 7            # Start
    restart_button: int = 6          # Back / Select


def _dead(v: float, deadzone: float) -> float:
    """Deadzone with rescaling so the output still spans 0..1 outside it."""
    if abs(v) <= deadzone:
        return 0.0
    return float(np.sign(v) * (abs(v) - deadzone) / (1.0 - deadzone))


def gamepad_action(axes: dict[int, float], speed: float, use_triggers: bool,
                   config: GamepadConfig = GamepadConfig()) -> np.ndarray:
    """(steer, throttle) from the last seen axis values. Pure; missing axes read as at rest."""
    c = config
    steer = -_dead(axes.get(c.steer_axis, 0.0), c.deadzone)
    if use_triggers:
        gas = _dead((axes.get(c.throttle_axis, -1.0) + 1.0) / 2.0, c.deadzone)
        brake = _dead((axes.get(c.brake_axis, -1.0) + 1.0) / 2.0, c.deadzone)
    else:
        v = -_dead(axes.get(c.stick_throttle_axis, 0.0), c.deadzone)
        gas, brake = max(v, 0.0), max(-v, 0.0)
    if brake > gas:
        # brake (throttle 0 holds the wheels) while rolling forward, reverse once stopped
        throttle = 0.0 if speed > c.stop_speed else -brake * c.reverse_throttle
    else:
        throttle = gas
    return np.array([np.clip(steer, -1, 1), np.clip(throttle, -1, 1)], dtype=np.float32)


class NoGamepadError(RuntimeError):
    pass


@dataclass
class GamepadDriver:
    """A human with a gamepad, as a Driver. Open with `GamepadDriver.open()` once pygame is initialised."""
    use_triggers: bool = True
    config: GamepadConfig = field(default_factory=GamepadConfig)
    name: str = "human"
    device: str = "gamepad"
    axes: dict[int, float] = field(default_factory=dict)
    buttons: set[int] = field(default_factory=set)
    _joystick: object = None

    @classmethod
    def open(cls, config: GamepadConfig | None = None) -> "GamepadDriver":
        pygame.joystick.init()
        if pygame.joystick.get_count() == 0:
            raise NoGamepadError("no gamepad found (pygame sees 0 joysticks): plug one in, or use --driver keyboard")
        js = pygame.joystick.Joystick(0)
        config = config or GamepadConfig()
        return cls(use_triggers=js.get_numaxes() > max(config.throttle_axis, config.brake_axis),
                   config=config, device=js.get_name(), _joystick=js)

    def handle_event(self, event: pygame.event.Event) -> bool:
        if event.type == pygame.JOYAXISMOTION:
            self.axes[event.axis] = float(event.value)
            return True
        if event.type == pygame.JOYBUTTONDOWN:
            self.buttons.add(event.button)
            return True
        if event.type == pygame.JOYBUTTONUP:
            self.buttons.discard(event.button)
            return True
        if event.type == pygame.JOYDEVICEREMOVED or is_focus_loss(event):
            self.release_all()  # a pad unplugged mid-drive must not leave the throttle stuck open
            return True
        return False

    def release_all(self) -> None:
        self.axes.clear()
        self.buttons.clear()

    def has_input(self) -> bool:
        return bool(np.any(gamepad_action(self.axes, 0.0, self.use_triggers, self.config) != 0))

    def reset(self, obs: dict, info: dict) -> None:
        pass  # analog: nothing to ramp, the stick position is the action

    def act(self, obs: dict) -> np.ndarray:
        return gamepad_action(self.axes, forward_speed(obs), self.use_triggers, self.config)

    def provenance(self) -> dict:
        return {"driver": self.name, "skill": "human", "noise": 0.0, "input": f"gamepad: {self.device}"}
