"""`--live`: play clips in a pygame window. Keys: space play/pause, right/. step one frame (pauses), up/+ faster,
down/- slower, n next episode, q/esc quit. State changes are pure functions of (state, key) and (state, dt) so
tests drive them directly; the window loop only feeds events and blits frames."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

from racecar_env.media import FPS

from .errors import ReplayError
from .session import Clip

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
NO_DISPLAY = ("--live needs a display and none was found ({reason}): drop --live to write MP4s instead, or run under "
              "a virtual display (xvfb-run)")


def check_display() -> None:
    """Refuse --live in one line up front (before any rollout) when there is no screen (teleop's rule)."""
    from teleop.window import missing_display   # imported here: it loads pygame, which only --live needs
    reason = missing_display()
    if reason:
        raise ReplayError(NO_DISPLAY.format(reason=reason))


def unattended() -> bool:
    """SDL_VIDEODRIVER=dummy/offscreen asks for no window on purpose (tests): nobody sees it or presses q in it, so
    the player closes after the last episode instead of waiting."""
    from teleop.window import HEADLESS_DRIVERS
    return os.environ.get("SDL_VIDEODRIVER", "") in HEADLESS_DRIVERS


@dataclass
class PlayerState:
    clip: int = 0
    frame: int = 0
    playing: bool = True
    speed_index: int = SPEEDS.index(1.0)
    quit: bool = False
    _acc: float = 0.0   # fractional frames carried between ticks

    @property
    def speed(self) -> float:
        return SPEEDS[self.speed_index]


def _next_clip(state: PlayerState, clips: Sequence[Clip]) -> None:
    if state.clip + 1 < len(clips):
        state.clip, state.frame, state._acc = state.clip + 1, 0, 0.0
    else:  # the last episode stays on its final (banner) frame
        state.frame, state.playing = clips[state.clip].n - 1, False


def handle_key(state: PlayerState, key: int, clips: Sequence[Clip]) -> None:
    import pygame
    if key in (pygame.K_q, pygame.K_ESCAPE):
        state.quit = True
    elif key == pygame.K_SPACE:
        state.playing = not state.playing
    elif key in (pygame.K_RIGHT, pygame.K_PERIOD):
        state.playing = False
        if state.frame + 1 < clips[state.clip].n:
            state.frame += 1
        else:
            _next_clip(state, clips)
    elif key in (pygame.K_UP, pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS):
        state.speed_index = min(state.speed_index + 1, len(SPEEDS) - 1)
    elif key in (pygame.K_DOWN, pygame.K_MINUS, pygame.K_KP_MINUS):
        state.speed_index = max(state.speed_index - 1, 0)
    elif key == pygame.K_n:
        _next_clip(state, clips)


def advance(state: PlayerState, dt: float, clips: Sequence[Clip]) -> None:
    """Move on by dt seconds of wall time at the current speed (real time = FPS frames per second)."""
    if not state.playing:
        return
    state._acc += dt * state.speed * FPS
    step = int(state._acc)
    state._acc -= step
    state.frame += step
    if state.frame >= clips[state.clip].n:
        _next_clip(state, clips)


def play(clips: Sequence[Clip], title: str = "replay", max_ticks: int | None = None) -> PlayerState:
    """Run the window until quit (or max_ticks loop iterations, for tests). Returns the final state."""
    import pygame
    first = clips[0].frame(0)
    try:
        pygame.display.init()
        # a DISPLAY that leads nowhere: SDL falls back to drawing nowhere, and the window would wait forever unseen
        from teleop.window import HEADLESS_DRIVERS
        if pygame.display.get_driver() in HEADLESS_DRIVERS and not unattended():
            raise pygame.error(f"no screen, it fell back to its {pygame.display.get_driver()} driver")
        screen = pygame.display.set_mode((first.shape[1], first.shape[0]))
    except pygame.error as e:
        pygame.display.quit()
        raise ReplayError(NO_DISPLAY.format(reason=f"SDL: {e}")) from None
    try:
        clock = pygame.time.Clock()
        state, shown, ticks = PlayerState(), None, 0
        close_at_end = unattended()
        while not state.quit and (max_ticks is None or ticks < max_ticks):
            ticks += 1
            for event in pygame.event.get():  # handle every event of this tick before drawing
                if event.type == pygame.QUIT:
                    state.quit = True
                elif event.type == pygame.KEYDOWN:
                    handle_key(state, event.key, clips)
            advance(state, clock.tick(FPS * 2) / 1000.0, clips)
            key = (state.clip, state.frame)
            if key != shown:  # draw only when the frame changed (paused costs nothing)
                frame = clips[state.clip].frame(state.frame)
                screen.blit(pygame.surfarray.make_surface(frame.swapaxes(0, 1)), (0, 0))
                pygame.display.flip()
                shown = key
            caption = (f"{title} | {clips[state.clip].title} ({state.clip + 1}/{len(clips)}) | frame "
                       f"{state.frame + 1}/{clips[state.clip].n} | x{state.speed:g}"
                       f"{'' if state.playing else ' | paused'}")
            if caption != pygame.display.get_caption()[0]:
                pygame.display.set_caption(caption)
            if close_at_end and state.clip == len(clips) - 1 and not state.playing and \
                    state.frame == clips[-1].n - 1:   # the last episode has played to its end
                break
        return state
    finally:
        pygame.display.quit()
