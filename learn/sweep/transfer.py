"""The transfer columns: every finished trial's best.pt tested on tracks other than the one its final test used.

    python -m learn.sweep --transfer runs/sweeps/NAME --tracks s_curve,hairpin,random:test:hard [--transfer-episodes 50]

A track is anything the env takes: a shipped name, a track JSON path, gen:SEED, or random:test[:DIFFICULTY] (a fresh
held-out generated road per episode, e.g. random:test:hard). The episodes use the final test's seeds (20000+i).
Each trial gets <trial>/transfer.json ({"seed0": 20000, "tracks": {track: result}}, a track file under its absolute
path, each result with its episode count and per-episode track ids). A later call adds its tracks to the file and
keeps the others; a track the trial already has at the same episode count (and, for a fixed track, the same
content: an edited track file is tested again and replaces its old result) is skipped, so the command is
resumable. The summary then carries one success column per track (mean over seeds, 95% bootstrap CI) and its
time-to-goal.
"""
from __future__ import annotations

from pathlib import Path

from racecar_env.evaluation import TEST_SEED, evaluate
from racecar_env.files import write_json

from ..tracks import absolute_track
from .grid import SweepError, check_track, read_json
from .robustness import finished_trials

TRANSFER_FILE = "transfer.json"
DEFAULT_EPISODES = 50


def parse_tracks(text: str) -> dict:
    """'s_curve,hairpin,random:test:hard' -> {track: its TrackSource}, each one checked (a file is read now), so a
    typo is a one-line error before any evaluation runs. A track file is keyed by its absolute path: however it is
    spelled, it is one track and one column."""
    tracks = list(dict.fromkeys(absolute_track(t.strip()) for t in (text or "").split(",") if t.strip()))
    if not tracks:
        raise SweepError("--tracks: expected one or more tracks, e.g. s_curve,hairpin,random:test:hard")
    return {t: check_track(t, "--tracks") for t in tracks}


def tested_tracks(folder: Path) -> dict:
    """{track: result} of a trial's transfer.json (empty if none)."""
    tracks = (read_json(folder / TRANSFER_FILE) or {}).get("tracks")
    return tracks if isinstance(tracks, dict) else {}


def _stale(result, episodes: int, source) -> str | None:
    """Why a stored result does not stand for `episodes` episodes on `source` (None: it does)."""
    if not isinstance(result, dict):
        return "new"
    if result.get("episodes") != episodes:
        return f"was {result.get('episodes')} episodes"
    # a fixed track is identified by its content (track_id), which each stored episode records
    if source.fixed is not None and any(e.get("track_id") != source.fixed.track_id
                                        for e in result.get("per_episode") or [{}]):
        return "the track's content changed"
    return None


def _rekeyed(folder: Path, tracks: dict) -> dict:
    """A trial's results, a track file stored under a relative path (transfer.json from before files were keyed by
    absolute path) moved to its absolute key when that is a requested track (the file is rewritten): one column,
    not tested again. The relative path is read from this directory; _stale still checks the content."""
    done = tested_tracks(folder)
    moved: dict[str, str] = {}
    for old in done:
        new = absolute_track(old)
        if new != old and new in tracks and new not in done and new not in moved.values():
            moved[old] = new
    if moved:
        done = {moved.get(t, t): result for t, result in done.items()}
        write_json(folder / TRANSFER_FILE, {"seed0": TEST_SEED, "tracks": done})
    return done


def evaluate_transfer(sweep_dir: Path, tracks: dict, episodes: int = DEFAULT_EPISODES, emit=print) -> int:
    """Test every finished trial's best.pt on each of `tracks` ({track: TrackSource}, from parse_tracks) it lacks
    (at this episode count and content); returns how many (trial, track) evaluations ran. transfer.json keeps every
    other track and is rewritten after each evaluation, so an interruption loses at most one."""
    from ..checkpoint import load_policy

    todo = []
    for folder in finished_trials(sweep_dir):
        done = _rekeyed(folder, tracks)
        why = {t: _stale(done.get(t), episodes, s) for t, s in tracks.items()}
        missing = {t: w for t, w in why.items() if w is not None}
        if missing:
            todo.append((folder, done, missing))
    total, k = sum(len(m) for _, _, m in todo), 0
    for folder, done, missing in todo:
        policy = load_policy(folder / "checkpoints" / "best.pt")
        for track, why in missing.items():
            source = tracks[track]   # the Track read by parse_tracks: what was checked is what is tested
            res = evaluate(policy, source.fixed or track, episodes, TEST_SEED, workers="auto")  # same as serial
            done[track] = res.to_dict()
            write_json(folder / TRANSFER_FILE, {"seed0": TEST_SEED, "tracks": done})
            k += 1
            ttg = res.summary()["mean_time_to_goal_s"]
            emit(f"[{k}/{total}] {folder.relative_to(Path(sweep_dir))}: {track}: success {res.success_rate:.0%}"
                 + (f", time-to-goal {ttg:.2f} s" if ttg is not None else "")
                 + ("" if why == "new" else f" (replaces the old result: {why})"))
    return total
