"""Tracks as learn's commands name them (--eval-track, learn.evaluate --track, the sweep's eval_track and --tracks, the
quickstart's --track), in the env's grammar (racecar_env.tracks.source): one rule for what is a random spec, checked
at once, and track files named by their absolute path, because a Ray trial or a quickstart step reads them from
another working directory."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from racecar_env.tracks import Track
from racecar_env.tracks.source import TrackSource, is_random_spec, track_source


def check_source(spec: str) -> TrackSource:
    """The env's TrackSource for `spec`, checked now: a track is loaded (a file read), a random spec must be
    random[:train|test[:DIFFICULTY]] and draws one road (a bad difficulty preset only shows when a road is made).
    TrackError (one line) otherwise."""
    source = track_source(spec)
    if source.is_random:
        source.draw(np.random.default_rng(0))
    return source


def evaluation_track(spec: str) -> "str | Track":
    """What evaluations run on and a checkpoint keeps: a random spec as its text (a new road per episode), anything
    else the Track it names, whose content the checkpoint embeds (a file edited or moved later changes nothing)."""
    source = check_source(spec)
    return spec if source.is_random else source.fixed


def absolute_track(spec: str) -> str:
    """`spec` with a track file named by its absolute path; a shipped name, gen:SEED and a random spec as given."""
    if is_random_spec(spec) or spec.startswith("gen:"):
        return spec
    path = Path(spec)
    try:
        if path.suffix == ".json" or path.is_file():   # load_track's test for a path (else a shipped track's name)
            return os.path.abspath(path)
    except OSError:   # a name too long for a path, say: load_track then says what is wrong with it
        pass
    return spec
