"""Turn a command-line agent spec into an agent for `racecar_env.rollout`: a checkpoint (`learn.load_policy`, one
batched Policy for every episode) or the built-in autopilot baseline ("autopilot", "autopilot:noisy", ...), built per
episode for that episode's track and seeded with the episode's seed (as `python -m teleop` records it)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from racecar_env.rollout import Agent
from racecar_env.tracks import Track, load_track
from racecar_env.tracks.source import track_source

from .errors import ReplayError

AUTOPILOT = "autopilot"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def checkpoint_name(path: Path) -> str:
    """runs/X/checkpoints/best.pt -> "X-best"; other paths -> file stem."""
    if path.parent.name == "checkpoints" and path.parent.parent.name:
        return slug(f"{path.parent.parent.name}-{path.stem}")
    return slug(path.stem)


def short_source(text: str) -> str:
    """A short name for an agent spec: the checkpoint's run and file ("X-best") or the autopilot spec."""
    if text == AUTOPILOT or text.startswith(AUTOPILOT + ":"):
        return text
    return checkpoint_name(Path(text))


def episode_tracks(env_kwargs: dict, seeds: Sequence[int | None], options: Sequence[dict | None]) -> list[Track]:
    """The track each episode will run on, known before it runs: the reset option's track, the env's fixed track,
    or (for "random...") what a reset with that seed draws, asked of an env built like the rollout's."""
    src = track_source(env_kwargs["track"])
    tracks: list[Track | None] = []
    for opt in options:
        if opt and "track" in opt and not track_source(opt["track"]).is_random:
            tracks.append(load_track(opt["track"]))
        elif opt and "track" in opt or src.is_random:
            tracks.append(None)
        else:
            tracks.append(src.fixed)
    if any(t is None for t in tracks):
        from racecar_env import RaceCarEnv
        env = RaceCarEnv(**env_kwargs)
        try:
            for i, t in enumerate(tracks):
                if t is None:
                    env.reset(seed=seeds[i], options=options[i])
                    tracks[i] = env.track
        finally:
            env.close()
    return tracks  # type: ignore[return-value]


@dataclass
class AgentSpec:
    text: str                  # as given: a checkpoint path or "autopilot[:skill]"
    label: str                 # panel label / plot title, e.g. "bc (run-best)", "autopilot (expert)"
    name: str                  # filesystem-friendly, for default output folder names
    policy: Any = None         # a learn Policy, or None for the autopilot
    skill: str | None = None

    @property
    def default_track(self) -> "Track | str | None":
        """A checkpoint's own evaluation track (a Track, or "random:test"); None = no preference (autopilot)."""
        return None if self.policy is None else self.policy.track

    def agent_for(self, env_kwargs: dict, seeds: Sequence[int | None],
                  options: Sequence[dict | None]) -> "Agent | Callable[[int], Agent]":
        """What `run_episodes` takes: the policy itself, or a factory building episode i's autopilot."""
        if self.policy is not None:
            return self.policy
        from teleop.autopilot import AutopilotFactory
        return AutopilotFactory(list(episode_tracks(env_kwargs, seeds, options)), self.skill or "expert", seeds)

    def note(self, tracks: Sequence[Track]) -> str | None:
        """The policy's own note when it runs on tracks it was not trained on (it runs anyway)."""
        if self.policy is None:
            return None
        notes = [n for n in (self.policy.note_for(t) for t in {t.track_id: t for t in tracks}.values()) if n]
        if not notes:
            return None
        return notes[0] + (f" (and {len(notes) - 1} more unseen tracks)" if len(notes) > 1 else "")


def resolve(text: str) -> AgentSpec:
    """'autopilot[:skill]' or a checkpoint path. Raises ReplayError (the loader's one line) for a bad file."""
    if text == AUTOPILOT or text.startswith(AUTOPILOT + ":"):
        skill = text.partition(":")[2] if text != AUTOPILOT else "expert"
        from teleop.autopilot import SKILLS
        if skill not in SKILLS:   # "autopilot:" (nothing after the colon) included: a typo, not the default
            raise ReplayError(f"{text}: unknown autopilot skill {skill!r}; expected one of {', '.join(SKILLS)}")
        return AgentSpec(text, f"autopilot ({skill})", slug(f"autopilot-{skill}"), skill=skill)
    from learn.checkpoint import load_policy  # imported here: torch loads only when a checkpoint is asked for
    try:
        policy = load_policy(text)
    except ValueError as e:  # CheckpointError / ConfigError: already one line naming the file
        raise ReplayError(str(e)) from None
    name = short_source(text)
    # algorithm and run, e.g. "td3bc (s_expert_td3bc_s0-best)": panels and plots must say which run they show
    return AgentSpec(text, f"{policy.label or 'policy'} ({name})", name, policy=policy)
