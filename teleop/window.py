"""The recorder window: drive the car with keyboard or gamepad and save each finished episode to a dataset.

Lockstep, not real time: every control tick (20 Hz) the recorder reads input, asks the driver for one action, steps
the env exactly once with it and records exactly that action. If the machine cannot keep 20 Hz the game runs slower
(the HUD says so) but the recorded data are the same as on a fast machine. The env is not stepped before the first
input of an episode, so idle time at the start is neither simulated nor saved.

`RecorderSession.tick()` does one tick; it takes its events and pacing from outside so tests drive the real session
headless with posted pygame events and no sleeping.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Sequence

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import numpy as np  # noqa: E402
import pygame  # noqa: E402

from racecar_env import RaceCarEnv, spec  # noqa: E402
from racecar_env.episode import EpisodeRecorder  # noqa: E402
from racecar_env.storage import DatasetWriter  # noqa: E402
from racecar_env.render import Hud, control_bars  # noqa: E402
from racecar_env.tracks.source import is_random_spec  # noqa: E402

from .gamepad import GamepadConfig, GamepadDriver, NoGamepadError  # noqa: E402
from .keyboard import KeyboardDriver, forward_speed, is_focus_loss  # noqa: E402
from .record import dataset_state, episode_seed  # noqa: E402

CONTROL_HZ = 1.0 / spec.CONTROL_DT

# Session commands and the keys / gamepad buttons that give them.
COMMAND_KEYS: dict[int, str] = {
    pygame.K_ESCAPE: "quit", pygame.K_q: "quit",
    pygame.K_p: "pause", pygame.K_PAUSE: "pause",
    pygame.K_r: "restart", pygame.K_BACKSPACE: "restart",
    pygame.K_DELETE: "delete", pygame.K_x: "delete",
    pygame.K_y: "yes", pygame.K_RETURN: "yes", pygame.K_n: "no",
}
COMMAND_BUTTONS: dict[int, str] = {GamepadConfig.pause_button: "pause", GamepadConfig.restart_button: "restart"}

HELP_LINES = (
    "Arrows / WASD: steer and throttle   Shift: gentle throttle   Down / S: brake, then reverse",
    "P: pause   R / Backspace: discard & restart episode   Del / X: delete last saved   Esc / Q: quit",
)
GAMEPAD_HELP = ("Gamepad: left stick steers   RT throttle   LT brake, then reverse   Start: pause   "
                "Back: discard & restart")

NO_DISPLAY = ("teleop: no display for the driving window ({reason}). Record without a screen with "
              "`python -m teleop --driver autopilot`, or run under a virtual display: `xvfb-run python -m teleop ...`")


class Phase(Enum):
    COUNTDOWN = "get ready"
    READY = "waiting for first input"
    DRIVING = "recording"
    OVER = "episode over"
    DONE = "done"


@dataclass(frozen=True)
class SessionConfig:
    seed: int = 0                     # base seed: dataset episode i resets with teleop.record.episode_seed(seed, i)
    max_episodes: int | None = None   # stop after this many saved episodes; None = until quit
    countdown_s: float = 1.5
    banner_s: float = 1.5             # how long GOAL / CRASH / TIME UP stays up before the next episode
    hz: float = CONTROL_HZ


@dataclass
class SessionSummary:
    saved: list[int] = field(default_factory=list)     # dataset indices saved (and not deleted) this session
    outcomes: list[str] = field(default_factory=list)  # "success" | "crash" | "timeout", parallel to saved
    discarded: int = 0
    deleted: int = 0
    ticks: int = 0
    env_steps: int = 0

    def count(self, outcome: str) -> int:
        return self.outcomes.count(outcome)


class TickClock:
    """Paces the loop to `hz` when realtime (no catch-up bursts after a stall: the sim is lockstep) and measures
    the real tick rate either way."""

    def __init__(self, hz: float = CONTROL_HZ, realtime: bool = True):
        self.period, self.realtime = 1.0 / hz, realtime
        self._next: float | None = None
        self._last: float | None = None
        self._mean_dt: float | None = None
        self.ticks = 0

    def wait(self) -> None:
        now = time.perf_counter()
        if self.realtime:
            self._next = (now if self._next is None else self._next) + self.period
            delay = self._next - now
            if delay > 0:
                time.sleep(delay)
                now = time.perf_counter()
            elif delay < -self.period:
                self._next = now
        if self._last is not None:
            dt = max(now - self._last, 1e-6)
            self._mean_dt = dt if self._mean_dt is None else 0.9 * self._mean_dt + 0.1 * dt
        self._last = now
        self.ticks += 1

    @property
    def fps(self) -> float:
        return 0.0 if self._mean_dt is None else 1.0 / self._mean_dt

    @property
    def slow(self) -> bool:
        """Measurably below the control rate (after a short warm-up)."""
        return self.realtime and self.ticks > 10 and self.fps < 0.95 / self.period


class RecorderSession:
    """One recording session: episodes of env + driver saved to `writer` (a DatasetWriter), shown on `screen`."""

    def __init__(self, env: RaceCarEnv, driver, writer, config: SessionConfig, *,
                 screen: pygame.Surface | None = None, events: Callable[[], Sequence] = pygame.event.get,
                 clock: TickClock | None = None):
        self.env, self.driver, self.writer, self.config = env, driver, writer, config
        self.screen, self.events = screen, events
        self.clock = clock or TickClock(config.hz, realtime=False)
        self.summary = SessionSummary()
        self.paused = False
        self.pause_reason = ""
        self.confirm_delete = False
        self.quit_requested = False
        self.flash: tuple[str, int] = ("", 0)
        self.last_action = np.zeros(2, np.float32)
        self._help: list[pygame.Surface] | None = None
        self._start_episode()

    # --- episode flow ---------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.phase is not Phase.DONE

    def _ticks(self, seconds: float) -> int:
        return max(1, round(seconds * self.config.hz))

    def _start_episode(self) -> None:
        # the seed of the dataset slot being filled: a restart replays the same start, as headless recording would
        self.index = int(self.writer.episodes)
        self.seed = episode_seed(self.config.seed, self.index)
        self.obs, info = self.env.reset(seed=self.seed)
        self.driver.reset(self.obs, info)
        self.recorder = EpisodeRecorder(self.obs, info)
        self.episode_steps = 0
        self.last_action = np.zeros(2, np.float32)
        self.phase, self.phase_ticks = Phase.COUNTDOWN, self._ticks(self.config.countdown_s)
        self.outcome = ""

    def _driver_has_input(self) -> bool:
        has_input = getattr(self.driver, "has_input", None)
        return True if has_input is None else bool(has_input())  # an autopilot starts when the countdown ends

    def _drive_one_tick(self) -> None:
        action = np.asarray(self.driver.act(self.obs), dtype=np.float32)
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.recorder.step(action, obs, reward, terminated, truncated, info)  # exactly what env.step received
        self.obs, self.last_action = obs, action
        self.episode_steps += 1
        self.summary.env_steps += 1
        if terminated or truncated:
            self._save_episode()

    def _save_episode(self) -> None:
        # finish() adds outcome, success, collision, steps and return; the track travels with the episode
        episode = self.recorder.finish({**self.driver.provenance(), "seed": self.seed,
                                        "seed_base": int(self.config.seed)}, track=self.env.track)
        index = self.writer.add(episode)  # durable on disk before the next episode starts
        self.outcome = episode.outcome
        self.summary.saved.append(index)
        self.summary.outcomes.append(self.outcome)
        self.phase, self.phase_ticks = Phase.OVER, self._ticks(self.config.banner_s)

    def _advance(self) -> None:
        """Move the episode on by one tick (not called while paused or confirming)."""
        if self.phase is Phase.COUNTDOWN:
            self.phase_ticks -= 1
            if self.phase_ticks <= 0:
                self.phase = Phase.READY
        if self.phase is Phase.READY and self._driver_has_input():
            self.phase = Phase.DRIVING
        if self.phase is Phase.DRIVING:
            self._drive_one_tick()
        elif self.phase is Phase.OVER:
            self.phase_ticks -= 1
            if self.phase_ticks <= 0:
                self._next_or_done()

    def _next_or_done(self) -> None:
        limit = self.config.max_episodes
        if limit is not None and len(self.summary.saved) >= limit:
            self.phase = Phase.DONE
        else:
            self._start_episode()

    # --- input ----------------------------------------------------------------------------------------------------
    def _command(self, event) -> str | None:
        if event.type == pygame.QUIT:
            return "quit"
        if event.type == pygame.KEYDOWN:
            return COMMAND_KEYS.get(event.key)
        if event.type == pygame.JOYBUTTONDOWN:
            return COMMAND_BUTTONS.get(event.button)
        return None

    def _handle(self, event) -> None:
        handle = getattr(self.driver, "handle_event", None)
        if handle is not None:
            handle(event)
        if is_focus_loss(event) and self.phase is Phase.DRIVING and not self.paused:
            self.paused, self.pause_reason = True, "window lost focus"
        command = self._command(event)
        if command is None or self.phase is Phase.DONE:
            return
        if self.confirm_delete:  # only yes / no while the question is up; Esc / Q cancel it, closing the window quits
            if command == "yes":
                self._delete_last()
            self.confirm_delete = command not in ("yes", "no", "quit")
            if event.type == pygame.QUIT:
                self.quit_requested = True
            return
        if command == "quit":
            self.quit_requested = True
        elif command == "pause" and self.phase is not Phase.OVER:
            self.paused, self.pause_reason = not self.paused, ""
        elif command == "restart":
            self.paused = False
            if self.phase is Phase.OVER:  # already saved: just skip the banner
                self._next_or_done()
                return
            if self.phase is Phase.DRIVING:
                self.summary.discarded += 1
                self._say("episode discarded")
            self._start_episode()
        elif command == "delete":
            if self.summary.saved:
                self.confirm_delete = True
            else:
                self._say("nothing saved in this session to delete")

    def _delete_last(self) -> None:
        index = self.writer.delete_last()  # only ever this session's newest episode: saved is non-empty here
        self.summary.saved.pop()
        self.summary.outcomes.pop()
        self.summary.deleted += 1
        self._say(f"deleted episode #{index}")
        if self.phase is Phase.OVER:  # the banner was about the episode just deleted
            self._next_or_done()

    def _say(self, text: str, seconds: float = 2.0) -> None:
        self.flash = (text, self._ticks(seconds))

    # --- the loop -------------------------------------------------------------------------------------------------
    def tick(self) -> bool:
        """One control tick: all of this frame's events, at most one env step, one frame drawn.
        Returns False when the session is over."""
        for event in self.events():  # never leave this loop early: the frame's other events would be lost
            self._handle(event)
        if self.quit_requested:
            self.phase = Phase.DONE  # finished episodes are already on disk; the one in progress is dropped
        elif not (self.paused or self.confirm_delete):
            self._advance()
        if self.flash[1] > 0:
            self.flash = (self.flash[0], self.flash[1] - 1)
        self.summary.ticks += 1
        if self.screen is not None:
            self.draw()
        return self.running

    def run(self) -> SessionSummary:
        while self.tick():
            self.clock.wait()
        return self.summary

    # --- drawing --------------------------------------------------------------------------------------------------
    def hud(self) -> Hud:
        s, c = self.summary, self.config
        t = self.episode_steps * spec.CONTROL_DT
        limit = self.env.max_episode_steps * spec.CONTROL_DT
        if self.paused:
            state = "PAUSED" + (f" ({self.pause_reason})" if self.pause_reason else "") + " - P to resume"
        elif self.phase is Phase.DRIVING:
            state = "REC"
        elif self.phase is Phase.READY:
            state = "ready - drive to start recording"
        else:
            state = self.phase.value
        target = "" if c.max_episodes is None else f"/{c.max_episodes}"
        rate = f"{self.clock.fps:4.1f} Hz" if self.clock.fps else "-- Hz"
        if self.clock.slow:
            rate += f"  SLOW: below {c.hz:.0f} Hz, the game runs slower (recorded data unaffected)"
        lines = [f"episode {len(s.saved) + (self.phase is not Phase.OVER)}{target} (dataset #{self.index})   {state}",
                 f"t {t:5.1f}/{limit:.0f} s   v {forward_speed(self.obs):5.2f} m/s",
                 f"saved {len(s.saved)}{target}   goal {s.count('success')}   crash {s.count('crash')}   "
                 f"timeout {s.count('timeout')}",
                 rate]
        if self.flash[1] > 0:
            lines.append(self.flash[0])
        banner, color = None, (90, 230, 130)
        if self.confirm_delete:
            banner, color = f"DELETE #{s.saved[-1]}?  Y / N", (255, 200, 80)
        elif self.paused:
            banner, color = "PAUSED", (235, 235, 235)
        elif self.phase is Phase.COUNTDOWN:
            banner, color = str(math.ceil(self.phase_ticks / c.hz)), (235, 235, 235)
        elif self.phase is Phase.READY:
            banner = "GO"
        elif self.phase is Phase.OVER:
            banner, color = {"success": ("GOAL!", (90, 230, 130)), "crash": ("CRASH", (255, 90, 70)),
                             "timeout": ("TIME UP", (255, 200, 80))}.get(self.outcome, ("END", (235, 235, 235)))
            banner += f"  saved #{s.saved[-1]}"
        return Hud(lines=lines, bars=control_bars(self.last_action), banner=banner, banner_color=color)

    def draw(self) -> None:
        frame = self.env.render_frame("topdown", hud=self.hud())
        surface = pygame.surfarray.make_surface(frame.swapaxes(0, 1))
        w, h = self.screen.get_size()
        help_h = help_height()
        if surface.get_size() != (w, h - help_h):
            surface = pygame.transform.scale(surface, (w, h - help_h))
        self.screen.fill((20, 22, 26))
        self.screen.blit(surface, (0, 0))
        if self._help is None:  # rendered once: text rendering is the slow part of pygame drawing
            font = pygame.font.Font(None, HELP_FONT_PX)
            lines = (GAMEPAD_HELP,) + HELP_LINES[1:] if isinstance(self.driver, GamepadDriver) else HELP_LINES
            self._help = [font.render(line, True, (200, 200, 200)) for line in lines]
        for i, text in enumerate(self._help):
            self.screen.blit(text, (8, h - help_h + 4 + i * HELP_FONT_PX))
        pygame.display.flip()


HELP_FONT_PX = 20
RANDOM_TRACK_FRAME = (960, 720)


def help_height() -> int:
    return 8 + HELP_FONT_PX * len(HELP_LINES)


# --- the app ------------------------------------------------------------------------------------------------------
HEADLESS_DRIVERS = ("dummy", "offscreen")   # SDL video drivers that draw nowhere: headless on purpose (tests)


def missing_display() -> str | None:
    """Why no window could be seen here (e.g. "DISPLAY and WAYLAND_DISPLAY are not set"), or None. The one rule for
    every window of the project (teleop's, replay --live's); each caller words its own way out."""
    driver = os.environ.get("SDL_VIDEODRIVER", "")
    if driver in HEADLESS_DRIVERS:
        return None
    if sys.platform.startswith("linux") and not driver and not (os.environ.get("DISPLAY")
                                                                or os.environ.get("WAYLAND_DISPLAY")):
        return "DISPLAY and WAYLAND_DISPLAY are not set"
    return None


def check_display() -> None:
    """Exit with one clear line when there is no screen to open a window on (instead of an SDL traceback)."""
    reason = missing_display()
    if reason:
        raise SystemExit(NO_DISPLAY.format(reason=reason))


def open_window(frame_size: tuple[int, int], scale: float | None, title: str) -> pygame.Surface:
    """A window showing the track frame zoomed by `scale` (None: ~1000 px wide, within 85% of the desktop)."""
    try:
        pygame.display.init()
        if scale is None:
            desk_w, desk_h = (pygame.display.get_desktop_sizes() or [(1280, 800)])[0]
            scale = min(1000 / frame_size[0], 0.85 * desk_w / frame_size[0],
                        (0.85 * desk_h - help_height()) / frame_size[1])
        scale = max(scale, 0.5)
        size = (int(frame_size[0] * scale) // 2 * 2, int(frame_size[1] * scale) // 2 * 2 + help_height())
        screen = pygame.display.set_mode(size)
    except pygame.error as e:
        raise SystemExit(NO_DISPLAY.format(reason=f"SDL: {e}")) from None
    pygame.display.set_caption(title)
    pygame.font.init()
    return screen


def make_driver(kind: str):
    if kind == "keyboard":
        return KeyboardDriver()
    if kind == "gamepad":
        try:
            return GamepadDriver.open()
        except NoGamepadError as e:
            raise SystemExit(f"teleop: {e}") from None
    raise SystemExit(f"teleop: the driving window takes --driver keyboard or gamepad, got {kind!r}")


def run_window_session(args) -> int:
    """Open the window and record episodes until quit or `args.episodes` are saved; returns the exit code.
    args: .track, .dataset (name; appended to), .episodes (None = until quit), .seed, .driver ("keyboard"|"gamepad"),
    optional .max_episode_steps (None = the env's) and .scale (window zoom; default: fit ~1000 px)."""
    check_display()  # before any file is touched
    driver = make_driver(args.driver)
    max_steps = getattr(args, "max_episode_steps", None)
    # a new track every episode (--track random): one fixed frame size, each track fitted in it
    env = RaceCarEnv(track=args.track, render_size=RANDOM_TRACK_FRAME if is_random_spec(args.track) else None,
                     **({} if max_steps is None else {"max_episode_steps": max_steps}))
    try:
        screen = open_window(env.topdown().size, getattr(args, "scale", None),
                             f"RaceCar teleop - {env.track_source.describe()} -> {args.dataset}")
        config = SessionConfig(seed=int(args.seed or 0), max_episodes=args.episodes)
        with DatasetWriter(args.dataset, append=True) as writer:
            session = RecorderSession(env, driver, writer, config, screen=screen,
                                      clock=TickClock(config.hz, realtime=True))
            try:
                s = session.run()
            except KeyboardInterrupt:  # Ctrl-C in the terminal: like quit, finished episodes are already saved
                s, code = session.summary, 130
            else:
                code = 0
    finally:
        env.close()
        pygame.quit()
    print(f"teleop: saved {len(s.saved)} episodes ({s.count('success')} goal, {s.count('crash')} crash, "
          f"{s.count('timeout')} timeout; {s.discarded} discarded, {s.deleted} deleted); "
          f"{dataset_state(writer.id, writer.path, writer.episodes)}")
    return code
