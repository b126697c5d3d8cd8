"""Tracks: the data model (walls, start, goal, centre-line; identity = content hash) and where tracks come from
(shipped JSON files, user files, dicts)."""
from .model import (TRACKS_DIR, Centerline, Goal, Pose, Track, TrackError, load_track, parse_track,
                    shipped_tracks)

__all__ = ["TRACKS_DIR", "Centerline", "Goal", "Pose", "Track", "TrackError", "load_track", "parse_track",
           "shipped_tracks"]
