"""Keyboard driving: which keys are held, and how held keys become a smooth (steer, throttle) action.

Why a tracker fed by KEYDOWN/KEYUP instead of `pygame.key.get_pressed()`: with SDL_VIDEODRIVER=dummy (tests,
headless boxes) posted key events arrive through `pygame.event.get()` but `get_pressed()` never sees them, and a
window that loses focus never gets the KEYUPs of keys released elsewhere - so the tracker is cleared on focus loss.

Why ramps: a key is either up or down, but a car wants graded inputs. Like gymnasium's CarRacing keyboard play,
steering and throttle move toward the held target at a bounded rate per second of *simulated* time (dt is the
control period, so the recorded data do not depend on how fast the machine runs) and return to centre / zero when
the keys are released.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pygame

from racecar_env import spec

# Logical controls -> the keys bound to them. Arrows and WASD both work; Shift is a "gentle" modifier.
KEY_BINDINGS: dict[str, tuple[int, ...]] = {
    "left": (pygame.K_LEFT, pygame.K_a),
    "right": (pygame.K_RIGHT, pygame.K_d),
    "up": (pygame.K_UP, pygame.K_w),
    "down": (pygame.K_DOWN, pygame.K_s),
    "gentle": (pygame.K_LSHIFT, pygame.K_RSHIFT),
}


@dataclass(frozen=True)
class Controls:
    """The driver's intent from the held keys. steer: +1 left, -1 right, 0 none; pedal: +1 up, -1 down, 0 none."""
    steer: int = 0
    pedal: int = 0
    gentle: bool = False

    @property
    def any(self) -> bool:
        return self.steer != 0 or self.pedal != 0


class KeyState:
    """Held driving keys, fed by KEYDOWN/KEYUP events and cleared when the window loses focus.

    When opposing keys are both held (left + right, up + down) the one pressed last wins, and releasing it hands
    control back to the other - the way people roll from one key to the next.
    """

    def __init__(self, bindings: dict[str, tuple[int, ...]] | None = None):
        self._control_of = {key: name for name, keys in (bindings or KEY_BINDINGS).items() for key in keys}
        self._held: dict[int, int] = {}  # key -> press order (monotonic), for "last pressed wins"
        self._order = 0

    def handle(self, event: pygame.event.Event) -> bool:
        """Update from one event. Returns True if the event was a driving key or a focus loss (consumed)."""
        if event.type == pygame.KEYDOWN and event.key in self._control_of:
            if event.key not in self._held:  # key repeat re-sends KEYDOWN: keep the original press order
                self._order += 1
                self._held[event.key] = self._order
            return True
        if event.type == pygame.KEYUP and event.key in self._control_of:
            self._held.pop(event.key, None)
            return True
        if is_focus_loss(event):
            self.clear()
            return True
        return False

    def clear(self) -> None:
        self._held.clear()

    @property
    def held_keys(self) -> frozenset[int]:
        return frozenset(self._held)

    def _last(self, name: str) -> int:
        """Press order of the most recently pressed held key bound to `name`, 0 if none is held."""
        return max((order for key, order in self._held.items() if self._control_of[key] == name), default=0)

    def controls(self) -> Controls:
        left, right, up, down = (self._last(n) for n in ("left", "right", "up", "down"))
        steer = 0 if left == right == 0 else (1 if left > right else -1)
        pedal = 0 if up == down == 0 else (1 if up > down else -1)
        return Controls(steer=steer, pedal=pedal, gentle=self._last("gentle") > 0)


def is_focus_loss(event: pygame.event.Event) -> bool:
    """The window stopped receiving keyboard input (SDL2 WINDOWFOCUSLOST, or the legacy ACTIVEEVENT)."""
    if event.type == pygame.WINDOWFOCUSLOST:
        return True
    return (event.type == pygame.ACTIVEEVENT and getattr(event, "gain", 1) == 0
            and getattr(event, "state", 0) & pygame.APPINPUTFOCUS)


@dataclass(frozen=True)
class RampConfig:
    """Rates are per second of simulated time; full scale is 1."""
    steer_rate: float = 3.0          # toward a held direction: centre -> full lock in 0.33 s
    steer_return_rate: float = 6.0   # self-centring (and swinging through centre to the other side)
    throttle_rate: float = 1.5       # up held: 0 -> full throttle in 0.67 s
    release_rate: float = 3.0        # nothing held: back to 0 (throttle 0 holds the wheels, i.e. the car slows)
    brake_rate: float = 8.0          # down held while rolling forward: to 0 fast
    max_throttle: float = 1.0
    gentle_throttle: float = 0.4     # throttle cap with Shift held: corners need ~0.3-0.4
    reverse_throttle: float = 0.5    # down held at standstill: reverse at this throttle
    stop_speed: float = 0.15         # m/s: below this forward speed "down" turns from brake into reverse


def _approach(current: float, target: float, rise: float, fall: float, dt: float) -> float:
    """Move `current` toward `target` by at most rate*dt; `fall` when heading toward or through zero, else `rise`."""
    toward_zero = abs(target) < abs(current) or current * target < 0
    step = (fall if toward_zero else rise) * dt
    return current + float(np.clip(target - current, -step, step))


def next_action(controls: Controls, previous: np.ndarray | tuple[float, float], dt: float = spec.CONTROL_DT,
                speed: float = 0.0, config: RampConfig = RampConfig()) -> np.ndarray:
    """The action for this tick from the held controls, last tick's action and the car's forward speed (m/s).

    Pure: same inputs, same output. "down" brakes while the car rolls forward and reverses once it has stopped.
    """
    steer, throttle = float(previous[0]), float(previous[1])
    c = config
    steer = _approach(steer, float(controls.steer), c.steer_rate, c.steer_return_rate, dt)
    if controls.pedal > 0:
        cap = c.gentle_throttle if controls.gentle else c.max_throttle
        # from reverse (or above a just-lowered gentle cap) come down at the brake rate
        throttle = _approach(throttle, cap, c.throttle_rate, c.brake_rate, dt)
    elif controls.pedal < 0:
        if speed > c.stop_speed:
            throttle = _approach(throttle, 0.0, c.brake_rate, c.brake_rate, dt)
        else:
            throttle = _approach(throttle, -c.reverse_throttle, c.throttle_rate, c.brake_rate, dt)
    else:
        throttle = _approach(throttle, 0.0, c.release_rate, c.release_rate, dt)
    return np.array([np.clip(steer, -1, 1), np.clip(throttle, -1, 1)], dtype=np.float32)


def forward_speed(obs: dict) -> float:
    return float(spec.field(np.asarray(obs["observation"]), "v_forward"))


@dataclass
class KeyboardDriver:
    """A human at the keyboard, as a Driver: the window feeds it events, the recorder asks it for one action a tick."""
    ramps: RampConfig = field(default_factory=RampConfig)
    dt: float = spec.CONTROL_DT
    name: str = "human"
    keys: KeyState = field(default_factory=KeyState)
    action: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))

    def handle_event(self, event: pygame.event.Event) -> bool:
        return self.keys.handle(event)

    def has_input(self) -> bool:
        """A driving key is held: the recorder starts an episode's recording at the first input."""
        return self.keys.controls().any

    def reset(self, obs: dict, info: dict) -> None:
        self.action = np.zeros(2, np.float32)

    def act(self, obs: dict) -> np.ndarray:
        self.action = next_action(self.keys.controls(), self.action, self.dt, forward_speed(obs), self.ramps)
        return self.action.copy()

    def provenance(self) -> dict:
        return {"driver": self.name, "skill": "human", "noise": 0.0, "input": "keyboard"}
