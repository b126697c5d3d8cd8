"""Where an env gets the track of each episode: one fixed track, or a freshly generated one per reset.

    track_source("s_curve")          a shipped track (or a path, a dict of track JSON, a Track, "gen:SEED")
    track_source("random")           a generated track per reset, from the training seed range
    track_source("random:test")      ... from the test seed range (never used for recording training data)
    track_source("random:test:hard") ... with a generator difficulty preset

A random source draws the generator seed from the env's seeded RNG, so `reset(seed=s)` gives the same track on every
machine (gymnasium's CarRacing does the same), and the two seed ranges keep training and test tracks apart.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .model import Track, TrackError, load_track

RANDOM = "random"
POOLS = ("train", "test")


@dataclass(frozen=True)
class TrackSource:
    fixed: Track | None = None
    pool: str | None = None                      # "train" | "test" for a random source
    generator: dict = field(default_factory=dict)  # generator overrides (e.g. a difficulty preset)

    @property
    def is_random(self) -> bool:
        return self.fixed is None

    def describe(self) -> str:
        if self.fixed is not None:
            return self.fixed.name
        extra = "".join(f":{v}" for v in self.generator.values())
        return f"{RANDOM}:{self.pool}{extra}"

    def draw(self, rng: np.random.Generator) -> Track:
        """The track of the next episode (a fixed source always gives its track)."""
        if self.fixed is not None:
            return self.fixed
        from .generate import TEST_SEEDS, TRAIN_SEEDS, generate
        seeds = TRAIN_SEEDS if self.pool == "train" else TEST_SEEDS
        return generate(int(seeds.start + rng.integers(len(seeds))), **self.generator)


def is_random_spec(track) -> bool:
    """random, random:POOL[:DIFFICULTY]: a road drawn per episode, not a track to load (track_source's rule).
    Anything but such a string (a Track, a path) is not."""
    return isinstance(track, str) and (track == RANDOM or track.startswith(RANDOM + ":"))


def track_source(track: "str | dict | Track | TrackSource") -> TrackSource:
    """Parse an env's `track` argument (see module doc). Raises TrackError with a one-line message."""
    if isinstance(track, TrackSource):
        return track
    if is_random_spec(track):
        parts = track.split(":")[1:]
        pool = parts[0] if parts else "train"
        # an empty part ("random:", "random:test:") is a typo, not a request for the default: refused too
        if len(parts) > 2 or "" in parts or pool not in POOLS:
            raise TrackError(f"track {track!r}: expected random, random:train or random:test[:DIFFICULTY]")
        generator = {"difficulty": parts[1]} if len(parts) > 1 else {}
        return TrackSource(pool=pool, generator=generator)
    return TrackSource(fixed=load_track(track))
