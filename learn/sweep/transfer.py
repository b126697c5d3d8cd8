"""The transfer columns: every finished trial's best.pt tested on tracks other than the one its final test used.

    python -m learn.sweep --transfer runs/sweeps/NAME --tracks s_curve,hairpin,random:test:hard [--transfer-episodes 50]

A track is anything the env takes: a shipped name, a track JSON path, gen:SEED, or random:test[:DIFFICULTY] (a fresh
held-out generated road per episode, e.g. random:test:hard). The episodes use the final test's seeds (20000+i).
Each trial gets <trial>/transfer.json ({"episodes": N, "tracks": {track: result}}); a track that a trial already has
at the same episode count is skipped, so the command is resumable and a later call can add tracks. The summary then
carries one success column per track (mean over seeds, 95% bootstrap CI) and its time-to-goal.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from racecar_env.evaluation import TEST_SEED, evaluate
from racecar_env.files import write_json
from racecar_env.tracks import TrackError
from racecar_env.tracks.source import track_source

from .grid import SweepError, read_json
from .robustness import finished_trials

TRANSFER_FILE = "transfer.json"
DEFAULT_EPISODES = 50


def parse_tracks(text: str) -> list[str]:
    """'s_curve,hairpin,random:test:hard' -> the list, each one checked (a generated one is drawn once), so a typo
    is a one-line error before any evaluation runs."""
    tracks = list(dict.fromkeys(t.strip() for t in (text or "").split(",") if t.strip()))
    if not tracks:
        raise SweepError("--tracks: expected one or more tracks, e.g. s_curve,hairpin,random:test:hard")
    for t in tracks:
        try:
            source = track_source(t)
            if source.is_random:
                source.draw(np.random.default_rng(0))   # a bad difficulty preset only shows when a road is made
        except (TrackError, ValueError) as e:
            raise SweepError(f"--tracks: {e}") from None
    return tracks


def tested_tracks(folder: Path, episodes: int | None = None) -> dict:
    """{track: result} of a trial's transfer.json (empty if none, or if it was run at another episode count)."""
    have = read_json(folder / TRANSFER_FILE) or {}
    tracks = have.get("tracks")
    if not isinstance(tracks, dict) or (episodes is not None and have.get("episodes") != episodes):
        return {}
    return tracks


def evaluate_transfer(sweep_dir: Path, tracks: list[str], episodes: int = DEFAULT_EPISODES, emit=print) -> int:
    """Test every finished trial's best.pt on each of `tracks` it lacks (at this episode count); returns how many
    (trial, track) evaluations ran. transfer.json is rewritten after each one, so an interruption loses at most one."""
    from ..checkpoint import load_policy

    todo = []
    for folder in finished_trials(sweep_dir):
        done = tested_tracks(folder, episodes)
        missing = [t for t in tracks if t not in done]
        if missing:
            todo.append((folder, done, missing))
    total, k = sum(len(m) for _, _, m in todo), 0
    for folder, done, missing in todo:
        policy = load_policy(folder / "checkpoints" / "best.pt")
        for track in missing:
            res = evaluate(policy, track, episodes, TEST_SEED, workers="auto")   # same episodes as serial
            done[track] = res.to_dict()
            write_json(folder / TRANSFER_FILE, {"episodes": episodes, "seed0": TEST_SEED, "tracks": done})
            k += 1
            ttg = res.summary()["mean_time_to_goal_s"]
            emit(f"[{k}/{total}] {folder.relative_to(Path(sweep_dir))}: {track}: success {res.success_rate:.0%}"
                 + (f", time-to-goal {ttg:.2f} s" if ttg is not None else ""))
    return total
