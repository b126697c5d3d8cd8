"""Tracks: the data model (walls, start, goal, centre-line; identity = content hash) and where tracks come from
(shipped JSON files, user files, dicts, the procedural generator: `generate(seed)` or `load_track("gen:SEED")`)."""
from .generate import (DIFFICULTIES, GENERATOR_VERSION, TEST_SEEDS, TRAIN_SEEDS, GeneratorConfig, generate,
                       track_kind)
from .model import (TRACKS_DIR, Centerline, Goal, Pose, Track, TrackError, load_track, parse_track,
                    shipped_tracks)

__all__ = ["DIFFICULTIES", "GENERATOR_VERSION", "TEST_SEEDS", "TRAIN_SEEDS", "GeneratorConfig", "generate",
           "track_kind", "TRACKS_DIR", "Centerline", "Goal", "Pose", "Track", "TrackError", "load_track",
           "parse_track", "shipped_tracks"]
