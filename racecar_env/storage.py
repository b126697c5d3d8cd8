"""Where demonstration datasets live and how they are written and read: local Minari datasets (0.5.4, Arrow
storage) that hold episodes from any number of tracks and never lose a finished episode.

Layout (Minari's own, so `minari.load_dataset(dataset_id(name))` and `minari show ID` read it with no download):

    $MINARI_DATASETS_PATH (if set, else Minari's default ~/.minari/datasets)/
        racecar/namespace_metadata.json
        racecar/<name>-v0/.lock                      flock held by the one process writing the dataset
        racecar/<name>-v0/data/metadata.json         dataset metadata (Minari keys + racecar_* keys)
        racecar/<name>-v0/data/tracks/<track_id>.json   the track table: each track's JSON content, once
        racecar/<name>-v0/data/<i>/part-0.arrow      episode i: one Arrow IPC record batch, as Minari writes it
        racecar/<name>-v0/data/<i>/metadata.json     episode i's metadata: provenance, track_id, checksums

Episode i (T steps) in part-0.arrow, exactly as Minari's ArrowStorage lays it out (T+1 rows; actions, rewards,
terminations and truncations padded with one zero row, which Minari and we drop on read):
    observations: struct{observation (OBS_DIM,) f32, achieved_goal (2,) f32, desired_goal (2,) f32}
    actions (2,) f32 (what the env received), rewards f64, terminations / truncations bool (the env's),
    infos: struct{is_success, collision, progress, distance_to_goal}: row 0 is the reset info, row t+1 step t's.

Episode metadata (Minari returns it from `dataset.storage.get_episode_metadata([i])`): Minari's `id`, `total_steps`
and `seed` (the env reset seed); the scalar provenance of `Episode.meta` (driver, skill, noise, seed_base, ...)
plus outcome, success, steps and return computed from the arrays; `track_id` and `track_name`; the complete
`Episode.meta` under `racecar_meta` (what `load_dataset` gives back); and integrity: `racecar_sha256`/`racecar_bytes`
of part-0.arrow (Arrow IPC has no checksums of its own) and `racecar_checksum`, a sha256 of the metadata itself.
A track-table file is named by its content hash (`Track.track_id`), which is verified on read.

Dataset metadata: `racecar_format` (this layout's version), `racecar_obs_layout_id` (spec.OBS_LAYOUT_ID at
recording time; another one is refused with the command that re-records the dataset), `racecar_tracks` (how many
tracks its episodes use), `racecar_physics` (spec.PHYSICS_REVISION at recording; a dataset of an older revision is
refused only if that revision changed its episodes); env_spec is RaceCar-v0 with kwargs {"track": <the track's
JSON content>} when the episodes use one track, {"track": "random"} otherwise. Spaces come from `spec`: no physics
world is ever built.

Durability. `DatasetWriter.add` costs the same at episode 10 and 10,000 (nothing existing is rewritten):
    1. if the episode's track is new to the dataset: write data/tracks/<track_id>.json (temp + fsync + rename +
       fsync tracks/); a kill leaves at most an unreferenced track file, removed by the next writer,
    2. write the episode folder as data/.tmp-<pid>-<i>/ (both files fsync'd, then the folder), os.rename it to
       data/<i>, fsync data/                                       <- the episode is durable here,
    3. atomically rewrite data/metadata.json (temp + fsync + replace + fsync data/) with the new counts.
A kill before the rename in 2 leaves a hidden temp folder (ignored by readers, swept by the next writer); a kill
between 2 and 3 leaves metadata one episode behind the folders, which `load_dataset` tolerates (it counts the
folders; Minari reads the episodes the metadata names) and the next writer repairs. Metadata is never ahead of the
folders. `delete_last` (the recorder window's confirmed delete) writes the metadata first, then renames the folder
to a hidden name and removes it, so every crash window leaves that same readable state (episode gone, or there
and named by the metadata again after the next writer's repair). A new dataset is built in a hidden temp folder
and renamed into place; a writer that created a dataset and closes with no episode in it removes it again
(renamed to a hidden name under the lock, then deleted): a session that saved nothing leaves nothing behind.

Damage. A flipped or truncated byte in an episode's files is caught by the checksums; that episode reads as one
line naming the dataset and the episode, the others stay readable; `check()` lists every problem, and a writer
refuses to append to a damaged dataset.
"""
from __future__ import annotations

import difflib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from . import files, spec
from .episode import OBS_KEYS, Episode, EpisodeError, Transitions, flatten_episodes
from .tracks import Track, TrackError, parse_track

NAMESPACE = "racecar"
FORMAT_VERSION = 2
DATA_FORMAT = "arrow"
METADATA_FILE = "metadata.json"
EPISODE_FILE = "part-0.arrow"   # the name Minari's own Arrow writer gives an episode's file
TRACKS_DIR = "tracks"
LOCK_FILE = ".lock"
_TMP_PREFIX = ".tmp-"
_DEL_PREFIX = ".del-"
_CHECKSUM_KEY = "racecar_checksum"
_SCALAR_TYPES = (str, bool, int, float)

_NAME_RE = re.compile(r"^[A-Za-z0-9_][-\w]*$")
_FULL_ID_RE = re.compile(r"^(?:[-\w][-\w/]*[-\w]/)?[-\w]+?-v\d+$")
_TRACK_ID_RE = re.compile(r"^trk-[0-9a-f]{16}$")
MAX_NAME_BYTES = 100   # the name becomes folder names (+ ~20 bytes for temp names); file systems allow 255


class DatasetError(ValueError):
    """A dataset that cannot be used; the one-line message names the dataset and the problem."""


# --- names and places ---------------------------------------------------------------------------------------------
def datasets_root() -> Path:
    """$MINARI_DATASETS_PATH if set, else Minari's default ~/.minari/datasets (Minari resolves it the same way)."""
    env = os.environ.get("MINARI_DATASETS_PATH")
    return Path(env) if env else Path.home() / ".minari" / "datasets"


def _root_error(why: str) -> DatasetError:
    root = datasets_root()
    where = (f"MINARI_DATASETS_PATH={root}" if os.environ.get("MINARI_DATASETS_PATH")
             else f"the datasets folder {root} (Minari's default; MINARI_DATASETS_PATH chooses another)")
    return DatasetError(f"{where}: {why}")


def check_datasets_root() -> Path:
    """datasets_root(), if it is a folder or can be made one (nothing is created); else a one-line DatasetError
    naming it (and MINARI_DATASETS_PATH) and what is wrong: a file on its path, a path the OS refuses. Every reader
    and writer starts here (and _ensure_namespace, the one place that creates it), so no OSError traceback."""
    root = datasets_root()
    try:
        for p in (root, *root.parents):
            if p.exists():
                if not p.is_dir():
                    raise _root_error(f"{'it' if p == root else p} is a file, expected a folder for the datasets")
                break
    except OSError as e:   # a name too long, say
        raise _root_error(f"not a usable folder path ({e.strerror or e})") from None
    return root


def dataset_id(name: str) -> str:
    """"s_expert" -> "racecar/s_expert-v0"; a full Minari id ("ns/name-v3", "name-v1") passes through unchanged.

    Anything else (a path, spaces, dots) is refused, so a name can never point outside datasets_root()."""
    name = str(name).strip()
    if len(name.encode()) > MAX_NAME_BYTES:
        raise DatasetError(f"dataset name {name[:20] + '...'!r} is too long ({len(name)} characters): at most "
                           f"{MAX_NAME_BYTES} are allowed (a letter outside ASCII counts as 2-4)")
    if _FULL_ID_RE.match(name):
        return name
    if not _NAME_RE.match(name):
        raise DatasetError(f"dataset name {name!r} is not valid: use letters, digits, '-' and '_' (e.g. s_expert), "
                           f"or a full Minari id like {NAMESPACE}/s_expert-v0")
    return f"{NAMESPACE}/{name}-v0"


def dataset_path(name: str) -> Path:
    """The dataset's folder (the one holding `data/`); a datasets folder that cannot be one is a DatasetError."""
    return check_datasets_root() / dataset_id(name)


def record_hint(name: str) -> str:
    """The command that records the dataset headless (what every 'not found' / 're-record' message suggests)."""
    return f"python -m teleop --driver autopilot --dataset {_short_name(str(name))}"


# --- small helpers ------------------------------------------------------------------------------------------------
def _json_default(obj: Any):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()


def _short(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _write_json_durable(path: Path, obj: Any) -> None:
    files.write_json(path, obj, durable=True, prefix=_TMP_PREFIX, default=_json_default)


def _write_new_file(path: Path, data: bytes) -> None:
    """Create `path` (must not exist) with `data`, flushed to disk before returning."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_bytes())


def _read_dataset_metadata(did: str, data_dir: Path) -> dict:
    path = data_dir / METADATA_FILE
    try:
        meta = _read_json(path)
    except FileNotFoundError:
        raise DatasetError(f"dataset {did}: {path} is missing (incomplete or not a Minari dataset)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"dataset {did}: {path} is truncated or corrupt ({_short(e)})") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"dataset {did}: {path} is corrupt (not a JSON object)")
    return meta


def _check_usable(did: str, name: str, path: Path, meta: dict) -> None:
    """Refuse another observation layout or an older storage format, with the command that re-records it."""
    layout = meta.get("racecar_obs_layout_id")
    if layout is None:
        raise DatasetError(f"dataset {did}: not a RaceCar dataset (no racecar_obs_layout_id in its metadata)")
    old_format = meta.get("racecar_format") != FORMAT_VERSION or meta.get("data_format") != DATA_FORMAT
    if layout == spec.OBS_LAYOUT_ID and not old_format:
        return
    track = meta.get("racecar_track")  # format 1 named its one track
    track_arg = f" --track {track}" if isinstance(track, str) and track and " " not in track else ""
    if old_format:
        what = (f"an older storage format ({meta.get('data_format', '?')}, racecar_format "
                f"{meta.get('racecar_format', '?')}; observation layout {layout}), this code reads "
                f"{DATA_FORMAT} format {FORMAT_VERSION} with observation layout {spec.OBS_LAYOUT_ID}")
    else:
        what = (f"observation layout {layout}, this code uses {spec.OBS_LAYOUT_ID} (racecar_env/spec.py "
                f"changed)")
    raise DatasetError(f"dataset {did}: recorded with {what}; re-record it: {record_hint(name)}{track_arg} "
                       f"--episodes N (after moving {path} away)")


def _check_physics(did: str, name: str, path: Path, meta: dict) -> None:
    """Refuse a dataset recorded by an older simulation where that changed its episodes: before physics revision 2
    walls 17+ of a track had no collision and no lidar, so only tracks with more walls than that are affected."""
    if meta.get("racecar_physics", 1) >= spec.PHYSICS_REVISION:
        return
    tracks = sorted((path / "data" / TRACKS_DIR).glob("*.json"))
    affected = 0
    for f in tracks:
        try:
            affected += len(_read_json(f)["walls"]) > spec.PHYSICS_1_WALLS
        except (OSError, ValueError, KeyError, TypeError):
            continue   # a damaged track file is reported by check() when its episodes are read
    if affected:
        raise DatasetError(f"dataset {did}: recorded before every wall collided (physics revision "
                           f"{meta.get('racecar_physics', 1)}, this code {spec.PHYSICS_REVISION}): {affected} of its "
                           f"{len(tracks)} tracks have more than {spec.PHYSICS_1_WALLS} walls, and walls "
                           f"{spec.PHYSICS_1_WALLS + 1} and later of those neither stopped the car nor showed in its "
                           f"lidar; re-record it: {record_hint(name)} --track random --episodes N (after moving "
                           f"{path} away)")


def _scan_episode_folders(data_dir: Path) -> list[int]:
    """Indices of the committed episode folders (data/<i>/), sorted; hidden temp folders are not episodes."""
    out = []
    with os.scandir(data_dir) as it:
        for entry in it:
            if entry.name.isdigit() and entry.is_dir(follow_symlinks=False):
                out.append(int(entry.name))
    return sorted(out)


def _env_spec_json(track: "Track | None") -> str:
    import dataclasses as dc

    import gymnasium as gym

    from . import ENV_ID  # registered by the package: gym.spec needs no env instance
    kwargs = {"track": track.to_dict() if track is not None else "random"}
    return dc.replace(gym.spec(ENV_ID), kwargs=kwargs).to_json()


def _new_dataset_metadata(did: str) -> dict:
    import minari
    from minari.serialization import serialize_space

    return {
        "dataset_id": did,
        "total_episodes": 0,
        "total_steps": 0,
        "data_format": DATA_FORMAT,
        "jpeg_encoding": False,
        "observation_space": serialize_space(spec.observation_space()),
        "action_space": serialize_space(spec.action_space()),
        "env_spec": _env_spec_json(None),
        "minari_version": minari.__version__,
        "algorithm_name": "teleop recording (human or autopilot; see per-episode metadata)",
        "author": ["racecar teleop"],
        "description": "RaceCar demonstrations. Each episode's metadata names its track (track_id; the track itself "
                       "is in data/tracks/) and its provenance (driver, skill, noise, seed, outcome); observation "
                       f"layout {spec.OBS_LAYOUT_ID} (racecar_env/spec.py).",
        "dataset_size": 0.0,
        "racecar_format": FORMAT_VERSION,
        "racecar_obs_layout_id": spec.OBS_LAYOUT_ID,
        "racecar_tracks": 0,
        "racecar_physics": spec.PHYSICS_REVISION,
    }


# --- one episode <-> its files --------------------------------------------------------------------------------------
def _pyarrow():
    """pyarrow, with pandas (if installed) imported first. pyarrow imports pandas lazily, inside its first conversion
    to or from numpy, and loses any exception raised during that import: a Ctrl-C landing in it (about a second)
    was dropped and the program went on to the end. Imported here, a KeyboardInterrupt propagates as anywhere."""
    try:
        import pandas  # noqa: F401
        import pyarrow.pandas_compat  # noqa: F401
        import pyarrow.vendored.version  # noqa: F401
    except ImportError:
        pass
    import pyarrow
    return pyarrow


def _encode_episode(ep: Episode) -> bytes:
    """The episode as one Arrow IPC file with one record batch, column for column what Minari's ArrowStorage
    writes (and reads back with `minari.load_dataset`)."""
    pa = _pyarrow()

    def fixed(a: np.ndarray) -> "pa.Array":
        a = np.ascontiguousarray(a)
        return pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1)), a.shape[1])

    def pad(a: np.ndarray) -> np.ndarray:  # T rows -> T+1: Minari stores every column with T+1 rows
        return np.concatenate([a, np.zeros((1,) + a.shape[1:], a.dtype)])

    cols = {
        "observations": pa.StructArray.from_arrays([fixed(ep.observations[k]) for k in OBS_KEYS],
                                                   names=list(OBS_KEYS)),
        "actions": fixed(pad(np.asarray(ep.actions, np.float32))),
        "rewards": pa.array(pad(np.asarray(ep.rewards, np.float64))),
        "terminations": pa.array(pad(np.asarray(ep.terminations, bool))),
        "truncations": pa.array(pad(np.asarray(ep.truncations, bool))),
    }
    if ep.infos:
        arrays = []
        for k, v in ep.infos.items():
            v = np.asarray(v)
            if v.ndim != 1:
                raise EpisodeError(f"infos/{k} has shape {v.shape}: only one value per step can be stored")
            arrays.append(pa.array(v))
        cols["infos"] = pa.StructArray.from_arrays(arrays, names=list(ep.infos))
    batch = pa.RecordBatch.from_arrays(list(cols.values()), names=list(cols))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, batch.schema) as w:
        w.write_batch(batch)
    return sink.getvalue().to_pybytes()


def _decode_episode(data: bytes) -> dict:
    """Arrays of an episode file (T rows for actions etc., T+1 for observations and infos)."""
    pa = _pyarrow()

    reader = pa.ipc.open_file(pa.py_buffer(data))
    if reader.num_record_batches != 1:
        raise ValueError(f"{reader.num_record_batches} record batches, expected 1")
    b = reader.get_batch(0)

    def col(name: str):
        i = b.schema.get_field_index(name)
        if i < 0:
            raise ValueError(f"column {name!r} missing")
        return b.column(i)

    def fixed(arr, dtype) -> np.ndarray:
        if not pa.types.is_fixed_size_list(arr.type):
            raise ValueError(f"unexpected column type {arr.type}")
        w = arr.type.list_size
        return np.array(arr.flatten().to_numpy(zero_copy_only=False), dtype=dtype).reshape(-1, w)

    def plain(arr, dtype) -> np.ndarray:
        return np.array(arr.to_numpy(zero_copy_only=False), dtype=dtype)

    obs = col("observations")
    out = {
        "observations": {k: fixed(obs.field(k), np.float32) for k in OBS_KEYS},
        "actions": fixed(col("actions"), np.float32)[:-1],
        "rewards": plain(col("rewards"), np.float64)[:-1],
        "terminations": plain(col("terminations"), bool)[:-1],
        "truncations": plain(col("truncations"), bool)[:-1],
        "infos": {},
    }
    if b.schema.get_field_index("infos") >= 0:
        infos = col("infos")
        for i, f in enumerate(infos.type):
            out["infos"][f.name] = np.array(infos.field(i).to_numpy(zero_copy_only=False))
    return out


def _episode_metadata(index: int, ep: Episode, track: Track, data: bytes) -> dict:
    """Episode i's metadata.json content (see the module doc), JSON-normalized and sealed with its checksum."""
    try:
        meta = json.loads(json.dumps(ep.meta, default=_json_default))
    except (TypeError, ValueError) as e:
        raise EpisodeError(f"episode meta is not JSON-serializable ({_short(e)})") from None
    if not isinstance(meta, dict):
        raise EpisodeError("episode meta is not a dict")
    out: dict[str, Any] = {"id": index, "total_steps": ep.steps}
    if meta.get("seed") is not None:
        out["seed"] = int(meta["seed"])  # Minari's own per-episode key
    for k, v in meta.items():
        if k not in out and isinstance(v, _SCALAR_TYPES) and not k.startswith("racecar_") and k not in (
                "track_id", "track_name"):
            out[k] = v  # visible as Minari episode metadata
    outcome = ep.outcome
    out.update({"outcome": outcome, "success": outcome == "success", "steps": ep.steps,
                "return": ep.episode_return, "track_id": track.track_id, "track_name": track.name,
                "racecar_meta": meta, "racecar_file": EPISODE_FILE, "racecar_bytes": len(data),
                "racecar_sha256": hashlib.sha256(data).hexdigest()})
    out[_CHECKSUM_KEY] = _digest(out)
    return out


# --- reading ------------------------------------------------------------------------------------------------------
class RaceCarDataset:
    """A dataset opened for reading. Episodes are read (and checked) one at a time, when asked for:

        ds = load_dataset("s_expert")
        len(ds), ds[0], ds[-1], list(ds[2:5])    # Episode objects, each with .track (its Track) and .meta
        ds.tracks                                # {track_id: Track}: the dataset's track table
        ds.transitions()                         # flat arrays for offline RL (see racecar_env.episode.Transitions)
        ds.check()                               # every problem, one line each ([] = healthy)

    A damaged episode raises a one-line DatasetError naming the dataset and the episode when it is read; every
    other episode stays readable. Iteration stops at the first damaged one; `episodes` and `transitions()` (the
    whole dataset, what a learner trains on) refuse a damaged dataset with the first problem `check()` finds, and
    an empty one. The episode count is fixed when the dataset is opened (a writer may keep appending meanwhile).
    """

    def __init__(self, name: str, did: str, path: Path, metadata: dict, folders: list[int]):
        self.name = name
        self.id = did
        self.path = path
        self.data_dir = path / "data"
        self.metadata = metadata
        self.layout_id = str(metadata.get("racecar_obs_layout_id"))
        self._n = folders[-1] + 1 if folders else 0
        self._present = set(folders)
        self._episode_meta: dict[int, dict] = {}
        self._episodes: dict[int, Episode] = {}
        self._tracks: dict[str, Track] = {}

    # --- sequence of episodes ---
    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.episode(j) for j in range(*i.indices(self._n))]
        return self.episode(i)

    def __iter__(self) -> Iterator[Episode]:
        for i in range(self._n):
            yield self.episode(i)

    def __repr__(self) -> str:
        return f"RaceCarDataset({self.id!r}, episodes={self._n}, path={str(self.path)!r})"

    @property
    def episodes(self) -> list[Episode]:
        """All episodes (read once, then kept). A damaged or empty dataset raises a one-line DatasetError: reading
        alone would miss some damage (an episode folder missing at the end), so `check()` runs too."""
        refusing = "refusing to use it"
        try:
            eps = list(self)
        except DatasetError:
            self.require_healthy(refusing)   # the whole diagnosis, as `python -m teleop info` gives it
            raise   # damage check() does not look for (arrays that do not decode): that episode's own line
        self.require_healthy(refusing)
        if not eps:
            raise DatasetError(f"dataset {self.id}: has no episodes (nothing was saved into it); record some: "
                               f"{record_hint(self.id)} --episodes N")
        return eps

    @property
    def total_steps(self) -> int:
        return sum(int(self.episode_metadata(i)["total_steps"]) for i in range(self._n))

    def _index(self, i: int) -> int:
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"episode index must be an int, got {type(i).__name__}")
        j = int(i) + self._n if i < 0 else int(i)
        if not 0 <= j < self._n:
            raise IndexError(f"dataset {self.id}: episode {i} out of range (it has {self._n} episodes)")
        return j

    def _damaged(self, i: int, why: str) -> DatasetError:
        return DatasetError(f"dataset {self.id}: episode {i} is damaged ({why})")

    def episode_metadata(self, i: int) -> dict:
        """Episode i's stored metadata (provenance, track_id, outcome, ...), checked against its checksum."""
        i = self._index(i)
        if i in self._episode_meta:
            return self._episode_meta[i]
        folder = self.data_dir / str(i)
        if i not in self._present:
            raise self._damaged(i, f"its folder {folder} is missing")
        try:
            meta = _read_json(folder / METADATA_FILE)
        except FileNotFoundError:
            raise self._damaged(i, f"{METADATA_FILE} is missing") from None
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise self._damaged(i, f"{METADATA_FILE} is truncated or corrupt: {_short(e)}") from None
        if not isinstance(meta, dict) or meta.get(_CHECKSUM_KEY) != _digest(
                {k: v for k, v in meta.items() if k != _CHECKSUM_KEY}):
            raise self._damaged(i, f"{METADATA_FILE} does not match its checksum")
        if meta.get("id") != i:
            raise self._damaged(i, f"{METADATA_FILE} is episode {meta.get('id')!r}'s")
        missing = [k for k in ("total_steps", "track_id", "racecar_meta", "racecar_sha256", "racecar_bytes")
                   if k not in meta]
        if missing:
            raise self._damaged(i, f"{METADATA_FILE} lacks {', '.join(missing)}")
        self._episode_meta[i] = meta
        return meta

    def _episode_bytes(self, i: int, meta: dict) -> bytes:
        path = self.data_dir / str(i) / str(meta.get("racecar_file", EPISODE_FILE))
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise self._damaged(i, f"{path.name} is missing") from None
        except OSError as e:
            raise self._damaged(i, f"{path.name} is unreadable: {_short(e)}") from None
        if len(data) != meta["racecar_bytes"]:
            raise self._damaged(i, f"{path.name} has {len(data)} bytes, expected {meta['racecar_bytes']} "
                                   f"(truncated)")
        if hashlib.sha256(data).hexdigest() != meta["racecar_sha256"]:
            raise self._damaged(i, f"{path.name} does not match its checksum")
        return data

    def episode(self, i: int) -> Episode:
        """Episode i (negative counts from the end), checked: metadata and data checksums, its track, shapes."""
        i = self._index(i)
        if i in self._episodes:
            return self._episodes[i]
        meta = self.episode_metadata(i)
        data = self._episode_bytes(i, meta)
        try:
            track = self.track(meta["track_id"])
        except DatasetError as e:
            raise self._damaged(i, f"its track: {str(e).split(': ', 1)[-1]}") from None
        try:
            arrays = _decode_episode(data)
        except Exception as e:  # noqa: BLE001 - checksum matched but not decodable: not ours / another version
            raise self._damaged(i, f"{EPISODE_FILE} is not a readable episode: {_short(e)}") from None
        ep = Episode(meta=dict(meta["racecar_meta"]), track=track, **arrays)
        try:
            ep.validate(f"dataset {self.id}: episode {i}")
        except EpisodeError as e:
            raise DatasetError(str(e)) from None
        if ep.steps != meta["total_steps"]:
            raise self._damaged(i, f"{ep.steps} steps stored, metadata says {meta['total_steps']}")
        self._episodes[i] = ep
        return ep

    # --- tracks ---
    def track(self, track_id: str) -> Track:
        """A track of the track table, checked against its id (the hash of its content)."""
        if track_id in self._tracks:
            return self._tracks[track_id]
        if not isinstance(track_id, str) or not _TRACK_ID_RE.match(track_id):
            raise DatasetError(f"dataset {self.id}: {track_id!r} is not a track id")
        path = self.data_dir / TRACKS_DIR / f"{track_id}.json"
        try:
            t = parse_track(_read_json(path), f"{self.id}:{TRACKS_DIR}/{track_id}")
        except FileNotFoundError:
            raise DatasetError(f"dataset {self.id}: track {track_id} is missing from {path.parent}") from None
        except (OSError, ValueError, TrackError) as e:  # JSONDecodeError and TrackError are ValueErrors
            raise DatasetError(f"dataset {self.id}: track file {path.name} is damaged ({_short(e)})") from None
        if t.track_id != track_id:
            raise DatasetError(f"dataset {self.id}: track file {path.name} does not match its content hash "
                               f"(damaged)")
        self._tracks[track_id] = t
        return t

    def track_ids(self) -> list[str]:
        """Ids of the tracks in the track table, sorted."""
        folder = self.data_dir / TRACKS_DIR
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("trk-*.json"))

    @property
    def tracks(self) -> dict[str, Track]:
        """The track table: {track_id: Track} (each track once, however many episodes ran on it)."""
        return {tid: self.track(tid) for tid in self.track_ids()}

    # --- for learners and inspection ---
    def transitions(self, episodes: "list[int] | None" = None) -> Transitions:
        """Flat arrays over the chosen episodes (default all); see `Transitions` for the episode semantics."""
        idx = [self._index(i) for i in episodes] if episodes is not None else list(range(self._n))
        eps = self.episodes if episodes is None else [self.episode(i) for i in idx]
        try:
            return flatten_episodes(eps, idx, where=f"dataset {self.id}")
        except EpisodeError as e:
            raise DatasetError(str(e)) from None

    def check(self) -> list[str]:
        """Every problem of the dataset, one line each (without the dataset id); [] when it is healthy. Verifies
        each episode's metadata and data checksums and its track, without decoding the arrays."""
        return self.health()[0]

    def health(self) -> tuple[list[str], set[int]]:
        """check()'s problems, and the indices of the episodes they make unreadable."""
        problems, damaged = [], set()
        prefix = f"dataset {self.id}: "
        recorded = self.metadata.get("total_episodes")
        if isinstance(recorded, int) and recorded > self._n:
            problems.append(f"metadata lists {recorded} episodes but only {self._n} episode folders exist")
        for i in range(self._n):
            try:
                meta = self.episode_metadata(i)
                if i not in self._episodes:
                    self._episode_bytes(i, meta)
                    try:
                        self.track(meta["track_id"])
                    except DatasetError as e:
                        raise self._damaged(i, f"its track: {str(e).split(': ', 1)[-1]}") from None
            except DatasetError as e:
                problems.append(str(e).removeprefix(prefix))
                damaged.add(i)
        for tid in self.track_ids():
            try:
                self.track(tid)
            except DatasetError as e:
                msg = str(e).removeprefix(prefix)
                if msg not in problems and not any(tid in p for p in problems):
                    problems.append(msg)
        return problems, damaged

    def require_healthy(self, refusing: str, advice: str = "") -> None:
        """Raise the one-line DatasetError for a damaged dataset (the first problem of `check()`, what `python -m
        teleop info` lists); `refusing` says what is refused, `advice` is appended to the pointer to info."""
        problems = self.check()
        if problems:
            more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
            raise DatasetError(f"dataset {self.id}: is damaged: {problems[0]}{more}; {refusing} "
                               f"(`python -m teleop info {self.name}` lists the damage{advice})")


def _open(name: str) -> RaceCarDataset:
    did = dataset_id(name)
    root = check_datasets_root()
    path = root / did
    data_dir = path / "data"
    if not data_dir.is_dir():
        if path.is_dir():   # a folder of that name without the dataset in it: recording there would not fix it
            raise DatasetError(f"dataset {did}: the folder {path} holds no dataset (no data/ folder inside: an empty "
                               f"leftover?); remove it to record under this name, or pick another name")
        raise DatasetError(f"dataset {did}: not found under {root} ({_did_you_mean(did, root)}record one with "
                           f"`{record_hint(name)}`, or set MINARI_DATASETS_PATH)")
    meta = _read_dataset_metadata(did, data_dir)
    _check_usable(did, name, path, meta)
    _check_physics(did, name, path, meta)
    return RaceCarDataset(name, did, path, meta, _scan_episode_folders(data_dir))


def _short_name(did: str) -> str:
    """"racecar/s_expert-v0" -> "s_expert" (what users type); other ids as they are."""
    m = re.match(rf"^{NAMESPACE}/(.+)-v0$", did)
    return m.group(1) if m else did


def _did_you_mean(did: str, root: Path) -> str:
    """"did you mean s_kbsloppy? " for a near-miss of an existing dataset's name, else ""."""
    names = [_short_name(d) for d in _dataset_ids(root)]
    close = difflib.get_close_matches(_short_name(did), names, n=3, cutoff=0.75)
    return f"did you mean {' or '.join(close)}? " if close else ""


def load_dataset(name: str) -> RaceCarDataset:
    """Open a dataset for reading (episodes are read when asked for). Missing, unreadable metadata, another
    observation layout or storage format all raise a one-line DatasetError naming the dataset and the problem;
    a damaged episode raises one when it is read."""
    return _open(name)


# --- writing ------------------------------------------------------------------------------------------------------
def _ensure_namespace(root: Path, did: str) -> None:
    """Minari lists namespaces by their namespace_metadata.json; write one per missing level. The one place that
    creates the datasets folder: a path the OS refuses is a one-line DatasetError naming it."""
    parts = did.split("/")[:-1]
    try:
        root.mkdir(parents=True, exist_ok=True)
        for i in range(1, len(parts) + 1):
            ns_dir = root.joinpath(*parts[:i])
            ns_dir.mkdir(exist_ok=True)
            meta = ns_dir / "namespace_metadata.json"
            if not meta.exists():
                desc = {"description": "RaceCar demonstrations (python -m teleop)"} if parts[:i] == [NAMESPACE] else {}
                _write_json_durable(meta, desc)
    except OSError as e:   # /proc/nonexist, a read-only disk, a file where a namespace folder goes
        raise _root_error(f"cannot create {e.filename or root} ({e.strerror or e})") from None


def _create_dataset(did: str) -> bool:
    """Build the empty dataset in a hidden temp folder and rename it into place: never a half-written dataset.
    False if another process created it first."""
    root = datasets_root()
    final = root / did
    _ensure_namespace(root, did)
    for prefix in (_TMP_PREFIX, _DEL_PREFIX):   # creations and removals killed long ago
        for stale in final.parent.glob(f".{final.name}{prefix}*"):
            if time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale, ignore_errors=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{final.name}{_TMP_PREFIX}", dir=final.parent))
    try:
        data = tmp_dir / "data"
        (data / TRACKS_DIR).mkdir(parents=True)
        files.fsync(data / TRACKS_DIR)
        _write_json_durable(data / METADATA_FILE, _new_dataset_metadata(did))
        files.fsync(tmp_dir)
        try:
            os.rename(tmp_dir, final)
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            return False   # another process created it first: use theirs
        files.fsync(final.parent)
        return True
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)


class DatasetWriter:
    """Appends episodes to a dataset; each `add` returns only once the episode is durable on disk.

        with DatasetWriter("s_expert") as w:
            index = w.add(episode)          # episode.track (a Track) is required: it is stored with the episode

    Creates the dataset if missing, and removes it again on close if it still holds no episode then (a session
    that saved nothing leaves nothing behind; an existing dataset is never removed); append=False refuses to touch
    an existing one. Episodes of any tracks may be mixed. Refuses a dataset of another observation layout or
    storage format, and a damaged one. No episode is deleted except by `delete_last()` (the recorder window's
    confirmed "delete last saved episode"). One writer per dataset at a time (an flock on <dataset>/.lock); a
    second one gets a DatasetError.
    """

    def __init__(self, name: str, *, append: bool = True):
        self.id = dataset_id(name)
        self.name = name
        self.path = check_datasets_root() / self.id
        self.data_dir = self.path / "data"
        self._lock_fd: int | None = None
        self._created = False
        if self.path.exists():
            if not append:
                raise DatasetError(f"dataset {self.id}: already exists at {self.path}; choose another name or "
                                   f"append to it")
        else:
            self._created = _create_dataset(self.id)
        self._lock()
        try:
            self._open_existing()
        except BaseException:
            self._created = False   # its content is unknown: never remove it
            self.close()
            raise

    def _lock(self) -> None:
        try:
            fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:   # a writer that created it removed it, empty, since we looked
            raise DatasetError(f"dataset {self.id}: was removed while opening it; try again") from None
        except OSError as e:   # a folder or unwritable file where the lock file goes
            raise DatasetError(f"dataset {self.id}: cannot open its lock file {self.path / LOCK_FILE} "
                               f"({e.strerror or e})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DatasetError(f"dataset {self.id}: another process is recording into it right now") from None
        self._lock_fd = fd

    def _sweep(self) -> None:
        """Remove what a killed writer left (we hold the lock: nobody else is writing)."""
        for folder in (self.data_dir, self.data_dir / TRACKS_DIR):
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                if p.name.startswith((_TMP_PREFIX, _DEL_PREFIX)):
                    if p.is_dir() and not p.is_symlink():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)

    def _open_existing(self) -> None:
        """Check the dataset (layout, format, every episode's checksums), sweep a killed writer's leftovers,
        drop unreferenced track files, repair lagging metadata counts."""
        self._sweep()
        ds = _open(self.name)
        ds.require_healthy("refusing to append to it", "; record into another dataset name")
        (self.data_dir / TRACKS_DIR).mkdir(exist_ok=True)
        metas = [ds.episode_metadata(i) for i in range(len(ds))]
        self._steps = [int(m["total_steps"]) for m in metas]
        self._track_of = [str(m["track_id"]) for m in metas]
        self._bytes = [int(m["racecar_bytes"]) for m in metas]
        self._total_bytes = sum(self._bytes)
        self._track_counts = Counter(self._track_of)
        self._tracks: dict[str, Track] = {}
        for tid in ds.track_ids():
            if tid in self._track_counts:
                self._tracks[tid] = ds.track(tid)
            else:  # written by an add that was killed before its episode was committed
                (self.data_dir / TRACKS_DIR / f"{tid}.json").unlink(missing_ok=True)
        self._meta = dict(ds.metadata)
        self._env_key: Any = None
        self.episodes = len(metas)
        self.steps = sum(self._steps)
        if (self._meta.get("total_episodes") != self.episodes or self._meta.get("total_steps") != self.steps
                or self._meta.get("racecar_tracks") != len(self._track_counts)
                or self._meta.get("racecar_physics") != spec.PHYSICS_REVISION):
            self._write_metadata()  # a kill between an episode's commit and the metadata update

    @property
    def tracks(self) -> dict[str, Track]:
        """The tracks the dataset's episodes use, by track_id."""
        return dict(self._tracks)

    def _write_metadata(self) -> None:
        ids = sorted(self._track_counts)
        env_key = ids[0] if len(ids) == 1 else "random"
        if env_key != self._env_key or "env_spec" not in self._meta:
            self._meta["env_spec"] = _env_spec_json(self._tracks[env_key] if len(ids) == 1 else None)
            self._env_key = env_key
        size = self._total_bytes + 1000 * (self.episodes + len(ids))  # + ~1 kB of JSON per episode and track
        # racecar_physics: an older dataset that passed _check_physics holds no episode the revision changed
        self._meta.update(total_episodes=self.episodes, total_steps=self.steps, racecar_tracks=len(ids),
                          dataset_size=round(size / 1e6, 1), racecar_physics=spec.PHYSICS_REVISION)
        _write_json_durable(self.data_dir / METADATA_FILE, self._meta)

    def _check_open(self) -> None:
        if self._lock_fd is None:
            raise DatasetError(f"dataset {self.id}: writer is closed")

    def add(self, episode: Episode) -> int:
        """Append `episode` and return its index. When this returns the episode is on disk (fsync'd) and
        visible to `load_dataset` and `minari.load_dataset`; a crash at any point keeps all earlier ones."""
        self._check_open()
        where = f"dataset {self.id}: new episode"
        track = getattr(episode, "track", None)
        if not isinstance(track, Track):
            raise DatasetError(f"{where}: has no track (episode.track is {track!r}); episodes from "
                               f"racecar_env.rollout.run_episode carry theirs, EpisodeRecorder.finish takes track=")
        index = self.episodes
        try:
            episode.validate(where)
            data = _encode_episode(episode)
            meta = _episode_metadata(index, episode, track, data)
        except EpisodeError as e:
            msg = str(e)
            raise DatasetError(msg if msg.startswith(where) else f"{where}: {msg}") from None
        tid = track.track_id
        if tid not in self._tracks:
            path = self.data_dir / TRACKS_DIR / f"{tid}.json"
            if not path.exists():  # write-once: a content-addressed file never changes
                _write_json_durable(path, track.to_dict())
            self._tracks[tid] = track
        self._commit_episode(index, data, meta)
        self.episodes += 1
        self.steps += episode.steps
        self._steps.append(episode.steps)
        self._track_of.append(tid)
        self._bytes.append(len(data))
        self._total_bytes += len(data)
        self._track_counts[tid] += 1
        self._write_metadata()
        return index

    def _commit_episode(self, index: int, data: bytes, meta: dict) -> None:
        final = self.data_dir / str(index)
        if final.exists():
            raise DatasetError(f"dataset {self.id}: {final} already exists (was the dataset changed by hand?)")
        tmp = self.data_dir / f"{_TMP_PREFIX}{os.getpid()}-{index}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            _write_new_file(tmp / EPISODE_FILE, data)
            _write_new_file(tmp / METADATA_FILE, json.dumps(meta, default=_json_default).encode())
            files.fsync(tmp)
            os.rename(tmp, final)  # the commit point
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        files.fsync(self.data_dir)  # the rename is durable before metadata may name the episode

    def delete_last(self) -> int:
        """Remove the newest episode (a human's botched run, after they confirmed); returns its index.
        A kill at any point leaves a readable dataset with the episode either gone or still there."""
        self._check_open()
        if self.episodes == 0:
            raise DatasetError(f"dataset {self.id}: has no episodes to delete")
        index = self.episodes - 1
        steps, tid, nbytes = self._steps[index], self._track_of[index], self._bytes[index]

        def forget() -> None:
            self.episodes -= 1
            self.steps -= steps
            del self._steps[-1], self._track_of[-1], self._bytes[-1]
            self._total_bytes -= nbytes
            self._track_counts[tid] -= 1
            if not self._track_counts[tid]:
                del self._track_counts[tid]

        def restore() -> None:
            self.episodes += 1
            self.steps += steps
            self._steps.append(steps)
            self._track_of.append(tid)
            self._bytes.append(nbytes)
            self._total_bytes += nbytes
            self._track_counts[tid] += 1

        # Metadata first: a kill before the folder is gone leaves metadata one episode behind the folders, the
        # state `add` can also leave (Minari and load_dataset read it fine; the episode survives). The other
        # order would leave metadata naming an episode whose folder is gone, which Minari fails on.
        forget()
        try:
            self._write_metadata()
            gone = self.data_dir / f"{_DEL_PREFIX}{os.getpid()}-{index}"
            os.rename(self.data_dir / str(index), gone)
            files.fsync(self.data_dir)
        except BaseException:
            restore()
            self._write_metadata()
            raise
        shutil.rmtree(gone, ignore_errors=True)  # hidden already: a kill here leaves it for the next sweep
        if tid not in self._track_counts:  # no episode uses the track any more
            self._tracks.pop(tid, None)
            (self.data_dir / TRACKS_DIR / f"{tid}.json").unlink(missing_ok=True)
        return index

    def close(self) -> None:
        if self._lock_fd is None:
            return
        try:
            # the folders on disk, not just our count: an add that failed after its commit still saved an episode
            if self._created and self.episodes == 0 and not _scan_episode_folders(self.data_dir):
                self._remove()
        finally:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def _remove(self) -> None:
        """Remove the empty dataset this writer created: renamed away first (under the lock), so a reader or a
        kill never meets half of it; a kill before the rmtree leaves a hidden folder the next creation sweeps."""
        gone = self.path.parent / f".{self.path.name}{_DEL_PREFIX}{os.getpid()}"
        os.rename(self.path, gone)
        files.fsync(self.path.parent)
        shutil.rmtree(gone, ignore_errors=True)

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- every dataset ------------------------------------------------------------------------------------------------
def _dataset_ids(root: Path) -> list[str]:
    """Ids of every Minari dataset under root (a folder holding data/), without walking into datasets."""
    out: list[str] = []

    def walk(folder: Path, prefix: str) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if e.name.startswith(".") or not e.is_dir(follow_symlinks=False):
                continue
            did = f"{prefix}{e.name}"
            if os.path.isdir(os.path.join(e.path, "data")):
                out.append(did)
            else:
                walk(Path(e.path), did + "/")

    if root.is_dir():
        walk(root, "")
    return out


def list_datasets(check: bool = True) -> list[dict]:
    """Every RaceCar dataset under datasets_root(), one dict each: id, path, episodes, steps, tracks, health
    ("ok", "damaged" or "unusable") and problem (the first problem, or None). check=True verifies every episode's
    checksums (reads all data); check=False looks at metadata and folders only."""
    out = []
    for did in _dataset_ids(check_datasets_root()):
        path = datasets_root() / did
        row: dict[str, Any] = {"id": did, "path": str(path), "episodes": None, "steps": None, "tracks": None,
                               "health": "unusable", "problem": None, "problems": []}
        try:
            meta = _read_json(path / "data" / METADATA_FILE)
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            row["problem"] = f"metadata unreadable ({_short(e)})"
            out.append(row)
            continue
        if "racecar_obs_layout_id" not in meta:
            continue  # someone else's Minari dataset
        try:
            ds = _open(did)
        except DatasetError as e:
            row.update(episodes=meta.get("total_episodes"), steps=meta.get("total_steps"),
                       problem=str(e).removeprefix(f"dataset {did}: "))
            out.append(row)
            continue
        problems = ds.check() if check else []
        steps, tracks = 0, set()
        for i in range(len(ds)):
            try:
                m = ds.episode_metadata(i)
            except DatasetError as e:
                if not check:
                    problems.append(str(e).removeprefix(f"dataset {did}: "))
                continue
            steps += int(m["total_steps"])
            tracks.add(m["track_id"])
        row.update(episodes=len(ds), steps=steps, tracks=len(tracks), health="damaged" if problems else "ok",
                   problem=problems[0] if problems else None, problems=problems)
        out.append(row)
    return out


__all__ = ["DatasetError", "DatasetWriter", "RaceCarDataset", "datasets_root", "check_datasets_root", "dataset_id",
           "dataset_path", "load_dataset", "list_datasets", "record_hint", "NAMESPACE", "FORMAT_VERSION"]
