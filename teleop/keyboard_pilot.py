"""A simulated person at the keyboard: headless demonstrations with the shape of human keyboard data.

What it wants comes from the autopilot's planning (pure pursuit steering, corner speed planning: `Autopilot.intent`);
how it gets there is a person's: it decides from what it saw a reaction time ago (a delay buffer of observations),
turns the decision into held keys (left/right, up/down, Shift) with hysteresis - a key is pressed when the wanted
steering or throttle is clearly away from the current one and held until it is reached, so keys are held and released
in taps, not toggled every tick - and feeds the keys through `teleop.keyboard.next_action` with the default
`RampConfig`, exactly as a real keyboard's keys are. The recorded actions therefore have the ramps, plateaus and
self-centring of human keyboard data, not the autopilot's smooth continuous values.

Skills:
  keyboard-careful  short reaction time, slower corners with Shift held (throttle capped at the gentle 0.4), early
                    braking, the key held at full lock through a tight corner: (almost) every episode reaches the goal
                    (73% on hard generated roads), slower than the autopilot
  keyboard-sloppy   long reaction time, faster corners, late braking, lapses of attention during which the keys stay
                    as they were, no Shift, taps through tight corners: about a third of the episodes reach the goal

Each episode records its provenance: driver "keyboard-pilot", skill, input "keyboard (simulated)", reaction delay, the
lapse rate and the planner's corner speed and braking.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, replace

import numpy as np

from racecar_env import spec
from racecar_env.tracks import Track, load_track

from .autopilot import SKILL_CONFIGS, TOP_SPEED, Autopilot
from .keyboard import Controls, RampConfig, forward_speed, next_action


@dataclass(frozen=True)
class KeyboardPilotConfig:
    reaction_s: tuple[float, float] = (0.1, 0.2)   # s: decisions use the observation of this long ago (drawn per
                                                   # episode, uniform in this range, rounded to whole ticks)
    v_corner: tuple[float, float] = (0.95, 1.05)   # m/s through a 90-degree corner (the planner's, see
                                                   # AutopilotConfig), drawn per episode: a person's pace varies
    v_max: float = 2.5              # m/s on straights
    decel: float = 1.5              # m/s^2 the planner brakes at (high = brakes late)
    lookahead: float = 0.8          # m, the planner's pure-pursuit look-ahead at standstill
    steer_on: float = 0.2           # press left/right when the wanted steer is this far beyond the current one
    steer_off: float = 0.05         # ... and release it once within this of the wanted steer (hysteresis)
    throttle_on: float = 0.1        # press up when the wanted throttle is this far above the current one
    brake_margin: float = 0.4       # m/s: press down when this much faster than wanted
    gentle_below: float = 0.0       # hold Shift (gentle throttle cap) while the wanted speed is below this (m/s)
    min_hold_s: float = 0.1         # a pressed key stays down at least this long (a person's shortest tap)
    lapse_rate: float = 0.0         # lapses of attention per second (keys stay as they were)
    lapse_s: tuple[float, float] = (0.3, 0.8)   # duration of a lapse, uniform in this range
    hold_at_lock: bool = True       # keep the key down while full lock is wanted (False: let go once the wheel is
                                    # there and press again as it self-centres: tapping through a tight corner)


KEYBOARD_SKILLS: dict[str, KeyboardPilotConfig] = {
    "keyboard-careful": KeyboardPilotConfig(gentle_below=1.35),
    "keyboard-sloppy": KeyboardPilotConfig(reaction_s=(0.15, 0.3), v_corner=(1.05, 1.4), decel=3.0, lookahead=0.7,
                                           steer_on=0.3, steer_off=0.1, throttle_on=0.2, brake_margin=0.8,
                                           min_hold_s=0.15, lapse_rate=0.1, lapse_s=(0.2, 0.5), hold_at_lock=False),
}


class KeyboardPilot:
    """A Driver (see teleop.drivers) that drives like a person at the keyboard; needs no human and no screen."""
    name = "keyboard-pilot"

    def __init__(self, track: "str | Track" = "s_curve", skill: str = "keyboard-careful", seed: int | None = 0,
                 config: KeyboardPilotConfig | None = None, ramps: RampConfig = RampConfig(),
                 dt: float = spec.CONTROL_DT):
        if config is None and skill not in KEYBOARD_SKILLS:
            raise ValueError(f"skill must be one of {', '.join(KEYBOARD_SKILLS)}, got {skill!r}")
        self.skill = skill
        self.cfg = config or KEYBOARD_SKILLS[skill]
        self.ramps, self.dt = ramps, dt
        self.planner = Autopilot(load_track(track), "expert", seed=None)
        self.min_hold = max(1, round(self.cfg.min_hold_s / dt))
        self.rng = np.random.default_rng(seed)
        self._start(None)

    def _start(self, obs: dict | None) -> None:
        """A new episode: draw this episode's reaction time and pace, forget keys, action and what was seen."""
        c = self.cfg
        self.delay = max(0, round(float(self.rng.uniform(*c.reaction_s)) / self.dt))
        self.v_corner = float(self.rng.uniform(*c.v_corner))
        self.planner.cfg = replace(SKILL_CONFIGS["expert"], v_corner=self.v_corner, v_max=c.v_max, decel=c.decel,
                                   lookahead=c.lookahead)
        self.action = np.zeros(2, np.float32)
        self.controls = Controls()
        self._seen: collections.deque = collections.deque(maxlen=self.delay + 1)
        if obs is not None:
            self._seen.extend([obs] * (self.delay + 1))   # before the start it saw the start
        self._held_for = {"steer": 0, "pedal": 0}
        self._lapse_left = 0

    def reset(self, obs: dict, info: dict, seed: int | None = None) -> None:
        track = info.get("track")
        if track is not None and track.track_id != self.planner.track.track_id:
            self.planner.set_track(track)
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._start(obs)

    def provenance(self) -> dict:
        c = self.cfg
        return {"driver": self.name, "skill": self.skill, "input": "keyboard (simulated)", "noise": 0.0,
                "reaction_delay_s": round(self.delay * self.dt, 3), "lapse_rate_per_s": float(c.lapse_rate),
                "v_corner": round(self.v_corner, 3), "decel": float(c.decel), "uses_shift": bool(c.gentle_below > 0)}

    # --- one tick ---------------------------------------------------------------------------------------------
    def act(self, obs: dict) -> np.ndarray:
        if not self._seen:
            self._seen.extend([obs] * (self.delay + 1))
        self._seen.append(obs)
        seen = self._seen[0]   # what it saw a reaction time ago
        if self._lapse_left > 0:
            self._lapse_left -= 1
        elif self.cfg.lapse_rate and self.rng.random() < self.cfg.lapse_rate * self.dt:
            lo, hi = self.cfg.lapse_s
            self._lapse_left = max(1, round(self.rng.uniform(lo, hi) / self.dt)) - 1
        else:
            self.controls = self.decide(seen)
        # the keys move the action as a real keyboard's do; the ramp's speed term is the car's speed now (the
        # recorder's next_action call sees the live speed too)
        self.action = next_action(self.controls, self.action, self.dt, forward_speed(obs), self.ramps)
        return self.action.copy()

    def decide(self, seen: dict) -> Controls:
        """The keys to hold, from an observation (the delayed one) and the current keys and action (a person
        knows what their fingers are doing: only the world is seen late)."""
        c = self.cfg
        want_steer, want_speed = self.planner.intent(seen)
        want_steer = float(np.clip(want_steer, -1.0, 1.0))
        speed = forward_speed(seen)
        steer_now, throttle_now = float(self.action[0]), float(self.action[1])
        prev = self.controls

        # steering: press toward the wanted steer when clearly short of it, hold until (nearly) there
        err = want_steer - steer_now
        if prev.steer != 0 and self._held_for["steer"] < self.min_hold:
            steer = prev.steer
        elif prev.steer != 0 and (prev.steer * err > c.steer_off
                                  or (c.hold_at_lock and prev.steer * want_steer >= 1.0 - c.steer_off)):
            steer = prev.steer                                    # keep holding: not there yet, or full lock wanted
        elif abs(err) > c.steer_on:
            steer = 1 if err > 0 else -1                          # press (or swap to the other side)
        else:
            steer = 0                                             # release: the wheel self-centres

        # speed: brake when clearly too fast; otherwise up until the wanted throttle is reached
        want_throttle = want_speed / TOP_SPEED
        gentle = want_speed < c.gentle_below
        if speed > want_speed + c.brake_margin:
            pedal = -1
        elif prev.pedal > 0 and self._held_for["pedal"] < self.min_hold:
            pedal = 1
        elif prev.pedal > 0 and throttle_now <= want_throttle + 1e-6:
            pedal = 1                                             # keep holding: not there yet, or at the cap
        elif want_throttle - throttle_now > c.throttle_on or (gentle and throttle_now <= self.ramps.gentle_throttle):
            pedal = 1
        else:
            pedal = 0
        if pedal < 0 and speed <= self.ramps.stop_speed:
            pedal = 0                                             # a person brakes; never backs up here
        for name, new, old in (("steer", steer, prev.steer), ("pedal", pedal, prev.pedal)):
            self._held_for[name] = self._held_for[name] + 1 if new == old and new != 0 else (1 if new else 0)
        return Controls(steer=steer, pedal=pedal, gentle=gentle and pedal > 0)
