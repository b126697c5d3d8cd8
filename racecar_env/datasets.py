"""Demonstration datasets: local Minari (0.5.4, HDF5) datasets that never lose a finished episode.

Where a dataset lives (Minari's own layout, so `minari.load_dataset(dataset_id(name))` and `minari show ID`
read it with no download):

    $MINARI_DATASETS_PATH (if set, else Minari's default ~/.minari/datasets)/
        racecar/namespace_metadata.json
        racecar/<name>-v0/data/metadata.json     dataset metadata (JSON, Minari keys + racecar_* keys)
        racecar/<name>-v0/data/main_data.hdf5    all episodes, group `episode_<i>` each
        racecar/<name>-v0/.lock                  flock held by the one process writing the dataset

One episode `episode_<i>` (T steps) holds, exactly as Minari's HDF5 storage lays it out:
    observations/{observation (T+1, OBS_DIM) f32, achieved_goal (T+1, 2) f32, desired_goal (T+1, 2) f32}
    actions (T, 2) f32 (what the env received), rewards (T,) f64, terminations / truncations (T,) bool (the env's),
    infos/{is_success, collision, progress, distance_to_goal} (T+1,): row 0 is the reset info, row t+1 step t's.

Where provenance is stored (what Minari supports natively):
    per episode: the HDF5 attributes of `episode_<i>`, which Minari returns as episode metadata
        (`dataset.storage.get_episode_metadata([i])`): Minari's `id`, `seed` (the env reset seed), `total_steps`,
        plus driver, skill, noise, track, success, collision, outcome, steps, return (scalars, None left out),
        and the complete `Episode.meta` as JSON under `racecar_meta` (what `load_dataset` reads back).
    per dataset: metadata.json keys `racecar_obs_layout_id` (spec.OBS_LAYOUT_ID at recording time, checked on
        load), `racecar_track` (shipped track name or track file path), `racecar_track_name`, and
        `racecar_format` (this module's layout version); env_spec is RaceCar-v0 with kwargs {"track": ...}.

Durability (why not Minari's own writer): Minari's HDF5 storage appends in place to one file per dataset and
rewrites metadata.json in place, so a kill in the middle of either can corrupt every episode. Here each
`DatasetWriter.add` is a copy-on-write commit:
    1. copy main_data.hdf5 to a temp file in the same folder and append the episode there,
    2. fsync it and os.replace() it over main_data.hdf5, fsync the folder   <- the episode is durable here,
    3. atomically rewrite metadata.json (temp + fsync + replace) with the new episode/step counts.
A kill before 2 leaves the old file untouched (the temp file is swept on the next open); a kill between 2 and 3
leaves metadata counts one episode behind the HDF5 file, which `load_dataset` tolerates (it counts the episodes
in the HDF5 file) and the next `DatasetWriter` repairs. `delete_last` (the recorder window's confirmed delete)
uses the same commit with metadata written first, so its crash window leaves that same readable state.
A new dataset is built in a hidden temp folder and renamed into place, so a failed create leaves nothing
half-written under the dataset's id. The copy costs
O(dataset size) per episode; measured here a commit (copy + 3 fsyncs) takes 25-40 ms at 1 to 500 episodes
(20 MB), i.e. ~10% of an autopilot episode's time, and buys "every finished episode survives".

The learner's view: `load_dataset(name).transitions()` flattens all episodes into aligned numpy arrays
(see `Transitions`), so nobody re-implements the T+1-observation bookkeeping.
"""
from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from . import files, spec
from .episode import INFO_KEYS, OBS_KEYS, OUTCOMES, Episode, EpisodeError, EpisodeRecorder, Transitions, flatten_episodes  # noqa: F401
from .tracks import TRACKS_DIR, TrackError, load_track

NAMESPACE = "racecar"
FORMAT_VERSION = 1
DATA_FILE = "main_data.hdf5"
METADATA_FILE = "metadata.json"
LOCK_FILE = ".lock"
_TMP_PREFIX = ".tmp-"

_NAME_RE = re.compile(r"^[A-Za-z0-9_][-\w]*$")
_FULL_ID_RE = re.compile(r"^(?:[-\w][-\w/]*[-\w]/)?[-\w]+?-v\d+$")
_SCALAR_TYPES = (str, bool, int, float)
_LIBVER = ("v110", "latest")  # HDF5 >= 1.10 object headers carry checksums: damaged metadata is detected too


class DatasetError(ValueError):
    """A dataset that cannot be used; the one-line message names the dataset and the problem."""


# --- names and places ---------------------------------------------------------------------------------------------
def datasets_root() -> Path:
    """$MINARI_DATASETS_PATH if set, else Minari's default ~/.minari/datasets (Minari resolves it the same way)."""
    env = os.environ.get("MINARI_DATASETS_PATH")
    return Path(env) if env else Path.home() / ".minari" / "datasets"


def dataset_id(name: str) -> str:
    """"s_expert" -> "racecar/s_expert-v0"; a full Minari id ("ns/name-v3", "name-v1") passes through unchanged.

    Anything else (a path, spaces, dots) is refused, so a name can never point outside datasets_root()."""
    name = str(name).strip()
    if _FULL_ID_RE.match(name):
        return name
    if not _NAME_RE.match(name):
        raise DatasetError(f"dataset name {name!r} is not valid: use letters, digits, '-' and '_' (e.g. s_expert), "
                           f"or a full Minari id like {NAMESPACE}/s_expert-v0")
    return f"{NAMESPACE}/{name}-v0"


def dataset_path(name: str) -> Path:
    """The dataset's folder (the one holding `data/`)."""
    return datasets_root() / dataset_id(name)


def normalize_track(track: str) -> str:
    """The string stored for a track: a shipped track's name, or the absolute path of a user's track file."""
    t = load_track(track)  # raises TrackError with a readable message
    src = Path(t.source).resolve()
    if src.parent == TRACKS_DIR.resolve():
        return src.stem
    return str(src)


# --- small file helpers ---------------------------------------------------------------------------------------------
def _atomic_write_json(path: Path, obj: Any) -> None:
    files.write_json(path, obj, durable=True, prefix=_TMP_PREFIX, default=_json_default)


def _json_default(obj: Any):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _read_metadata(did: str, data_dir: Path) -> dict:
    path = data_dir / METADATA_FILE
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"dataset {did}: {path} is missing (incomplete or not a Minari dataset)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"dataset {did}: {path} is truncated or corrupt ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"dataset {did}: {path} is corrupt (not a JSON object)")
    return meta


def _check_layout(did: str, meta: dict) -> None:
    layout = meta.get("racecar_obs_layout_id")
    if layout is None:
        raise DatasetError(f"dataset {did}: not a RaceCar dataset (no racecar_obs_layout_id in its metadata)")
    if layout != spec.OBS_LAYOUT_ID:
        raise DatasetError(f"dataset {did}: recorded with observation layout {layout}, but this code uses "
                           f"{spec.OBS_LAYOUT_ID} (racecar_env/spec.py changed); re-record it")


def _h5py():
    import h5py  # only dataset code pays for the import
    return h5py


def _episode_names(did: str, f) -> list[str]:
    """episode_0..episode_{n-1}, checked to be contiguous."""
    names = [k for k in f.keys() if k.startswith("episode_")]
    try:
        idx = sorted(int(k[len("episode_"):]) for k in names)
    except ValueError:
        raise DatasetError(f"dataset {did}: {DATA_FILE} holds a malformed episode group name") from None
    if idx != list(range(len(idx))):
        raise DatasetError(f"dataset {did}: {DATA_FILE} episodes are not numbered 0..{len(idx) - 1}")
    return [f"episode_{i}" for i in idx]


# --- writing ----------------------------------------------------------------------------------------------------------
def _episode_attrs(index: int, ep: Episode) -> dict:
    attrs: dict[str, Any] = {"id": index, "total_steps": ep.steps}
    seed = ep.meta.get("seed")
    if seed is not None:
        attrs["seed"] = int(seed)  # Minari's own per-episode key
    try:
        attrs["racecar_meta"] = json.dumps(ep.meta, default=_json_default, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise DatasetError(f"episode meta is not JSON-serializable: {e}") from None
    for k, v in ep.meta.items():
        if isinstance(v, np.generic):
            v = v.item()
        if k not in attrs and isinstance(v, _SCALAR_TYPES) and "/" not in k:
            attrs[k] = v  # visible as Minari episode metadata
    return attrs


def _write_episode(f, index: int, ep: Episode) -> None:
    # fletcher32: a checksum per array, so a damaged file fails loudly on read instead of returning wrong numbers
    def put(group, key, data):
        group.create_dataset(key, data=data, fletcher32=True)

    g = f.create_group(f"episode_{index}")
    g.attrs.update(_episode_attrs(index, ep))
    obs = g.create_group("observations")
    for k in OBS_KEYS:
        put(obs, k, ep.observations[k])
    for k in ("actions", "rewards", "terminations", "truncations"):
        put(g, k, getattr(ep, k))
    infos = g.create_group("infos")
    for k, v in ep.infos.items():
        put(infos, k, v)


def _new_dataset_metadata(did: str, track: str) -> dict:
    import dataclasses as dc

    import gymnasium as gym
    import minari
    from minari.serialization import serialize_space

    from .env import RaceCarEnv

    env = RaceCarEnv(track)  # the spaces (observation bounds depend on the track) come from the env itself
    try:
        obs_space, act_space = env.observation_space, env.action_space
        track_name = env.track.name
    finally:
        env.close()
    env_spec = dc.replace(gym.spec("RaceCar-v0"), kwargs={"track": track})
    return {
        "dataset_id": did,
        "total_episodes": 0,
        "total_steps": 0,
        "data_format": "hdf5",
        "jpeg_encoding": False,
        "observation_space": serialize_space(obs_space),
        "action_space": serialize_space(act_space),
        "env_spec": env_spec.to_json(),
        "minari_version": minari.__version__,
        "algorithm_name": "teleop recording (human or autopilot; see per-episode metadata)",
        "author": ["racecar teleop"],
        "description": f"RaceCar demonstrations on track {track_name}. Per-episode provenance (driver, skill, "
                       f"noise, seed, outcome) is in the episode metadata; observation layout "
                       f"{spec.OBS_LAYOUT_ID} (racecar_env/spec.py).",
        "dataset_size": 0.0,
        "racecar_format": FORMAT_VERSION,
        "racecar_obs_layout_id": spec.OBS_LAYOUT_ID,
        "racecar_track": track,
        "racecar_track_name": track_name,
    }


def _ensure_namespace(root: Path, did: str) -> None:
    """Minari lists namespaces by their namespace_metadata.json; write one per missing level."""
    parts = did.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        ns_dir = root.joinpath(*parts[:i])
        ns_dir.mkdir(parents=True, exist_ok=True)
        meta = ns_dir / "namespace_metadata.json"
        if not meta.exists():
            desc = {"description": "RaceCar demonstrations (python -m teleop)"} if parts[:i] == [NAMESPACE] else {}
            _atomic_write_json(meta, desc)


def _create_dataset(did: str, track: str) -> None:
    """Build the dataset in a hidden temp folder and rename it into place: never a half-written dataset."""
    h5py = _h5py()
    root = datasets_root()
    final = root / did
    _ensure_namespace(root, did)
    for stale in final.parent.glob(f".{final.name}{_TMP_PREFIX}*"):  # creations killed long ago
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{final.name}{_TMP_PREFIX}", dir=final.parent))
    try:
        data = tmp_dir / "data"
        data.mkdir()
        with h5py.File(data / DATA_FILE, "w", libver=_LIBVER):
            pass
        files.fsync(data / DATA_FILE)
        _atomic_write_json(data / METADATA_FILE, _new_dataset_metadata(did, track))
        files.fsync(tmp_dir)
        try:
            os.rename(tmp_dir, final)
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            # another process created it first: use theirs
        else:
            files.fsync(final.parent)
            return
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)


class DatasetWriter:
    """Appends episodes to a dataset; each `add` returns only once the episode is durable on disk.

        with DatasetWriter("s_expert", track="s_curve") as w:
            index = w.add(episode)

    Creates the dataset if missing. append=False refuses to touch an existing dataset. Nothing is deleted
    except by `delete_last()` (the recorder window's confirmed "delete last saved episode").
    Appending checks that the dataset was recorded on the same track and observation layout. One writer per
    dataset at a time (an flock on <dataset>/.lock); a second one gets a DatasetError.
    """

    def __init__(self, name: str, *, track: str, append: bool = True):
        self.id = dataset_id(name)
        self.name = name
        try:
            self.track = normalize_track(track)
        except TrackError as e:
            raise DatasetError(f"dataset {self.id}: {e}") from None
        self.path = datasets_root() / self.id
        self.data_dir = self.path / "data"
        self._lock_fd: int | None = None
        if self.path.exists():
            if not append:
                raise DatasetError(f"dataset {self.id}: already exists at {self.path}; choose another name or "
                                   f"append to it")
        else:
            _create_dataset(self.id, self.track)
        self._lock()
        try:
            self._open_existing()
        except BaseException:
            self.close()
            raise

    def _lock(self) -> None:
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DatasetError(f"dataset {self.id}: another process is recording into it right now") from None
        self._lock_fd = fd

    def _open_existing(self) -> None:
        """Check compatibility, sweep temp files of a killed writer, repair metadata counts."""
        h5py = _h5py()
        for stale in self.data_dir.glob(_TMP_PREFIX + "*"):
            stale.unlink(missing_ok=True)
        meta = _read_metadata(self.id, self.data_dir)
        _check_layout(self.id, meta)
        if meta.get("racecar_track") != self.track:
            raise DatasetError(f"dataset {self.id}: holds episodes on track {meta.get('racecar_track')!r}, "
                               f"refusing to append episodes on track {self.track!r} (use another dataset name)")
        try:
            with h5py.File(self.data_dir / DATA_FILE, "r") as f:
                names = _episode_names(self.id, f)
                steps = sum(int(f[n].attrs["total_steps"]) for n in names)
        except DatasetError:
            raise
        except Exception as e:  # see _read_episode
            raise DatasetError(f"dataset {self.id}: {self.data_dir / DATA_FILE} is truncated or corrupt "
                               f"({_short(e)}); move it away to record into a fresh dataset") from None
        self.episodes = len(names)
        self.steps = steps
        self._meta = meta
        if meta.get("total_episodes") != self.episodes or meta.get("total_steps") != self.steps:
            self._write_metadata()  # a kill between the data commit and the metadata update

    def _write_metadata(self) -> None:
        self._meta.update(total_episodes=self.episodes, total_steps=self.steps,
                          dataset_size=round(os.path.getsize(self.data_dir / DATA_FILE) / 1e6, 1))
        _atomic_write_json(self.data_dir / METADATA_FILE, self._meta)

    def add(self, episode: Episode) -> int:
        """Append `episode` (its meta gets "track" if missing) and return its index. When this returns the episode
        is on disk (fsync'd) and visible to minari.load_dataset; a crash at any point keeps all earlier ones."""
        if self._lock_fd is None:
            raise DatasetError(f"dataset {self.id}: writer is closed")
        try:
            episode.validate(f"dataset {self.id}: new episode")
        except EpisodeError as e:
            raise DatasetError(str(e)) from None
        episode.meta.setdefault("track", self.track)
        index = self.episodes
        self._commit(lambda f: _write_episode(f, index, episode))
        self.episodes += 1
        self.steps += episode.steps
        self._write_metadata()
        return index

    def delete_last(self) -> int:
        """Remove the newest episode (a human's botched run, after they confirmed); returns its index.
        A kill at any point leaves a readable dataset with the episode either gone or still there."""
        if self._lock_fd is None:
            raise DatasetError(f"dataset {self.id}: writer is closed")
        if self.episodes == 0:
            raise DatasetError(f"dataset {self.id}: has no episodes to delete")
        index = self.episodes - 1
        with _h5py().File(self.data_dir / DATA_FILE, "r") as f:
            steps = int(f[f"episode_{index}"].attrs["total_steps"])
        # Metadata first: a kill between the two commits then leaves metadata one episode behind the data file,
        # the state `add` can also leave, which Minari and load_dataset read fine (and the episode survives).
        # The other order would leave metadata naming an episode that no longer exists: Minari fails on it.
        self.episodes, self.steps = self.episodes - 1, self.steps - steps
        self._write_metadata()
        try:
            self._commit(lambda f: f.__delitem__(f"episode_{index}"))
        except BaseException:
            self.episodes, self.steps = self.episodes + 1, self.steps + steps
            self._write_metadata()
            raise
        return index

    def _commit(self, change) -> None:
        """Apply `change(h5py.File)` to a copy of the data file, fsync it, and atomically replace the original."""
        h5py = _h5py()
        main = self.data_dir / DATA_FILE
        with files.atomic_path(main, durable=True, prefix=_TMP_PREFIX) as tmp:  # replaced only when complete
            shutil.copyfile(main, tmp)
            with h5py.File(tmp, "a", libver=_LIBVER) as f:
                change(f)

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _short(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


@dataclass
class RaceCarDataset:
    name: str
    id: str
    path: Path
    track: str
    layout_id: str
    metadata: dict
    episodes: list[Episode]

    def __len__(self) -> int:
        return len(self.episodes)

    def __iter__(self) -> Iterator[Episode]:
        return iter(self.episodes)

    def __getitem__(self, i: int) -> Episode:
        return self.episodes[i]

    @property
    def total_steps(self) -> int:
        return sum(e.steps for e in self.episodes)

    def transitions(self, episodes: "list[int] | None" = None) -> Transitions:
        """Flat arrays over the chosen episodes (default all); see `Transitions` for the episode semantics."""
        idx = list(episodes) if episodes is not None else list(range(len(self.episodes)))
        return flatten_episodes([self.episodes[i] for i in idx], idx, where=f"dataset {self.id}")


def _read_episode(did: str, g, index: int) -> Episode:
    try:
        meta = json.loads(g.attrs["racecar_meta"])  # required: a missing one means a damaged header
        if not isinstance(meta, dict):
            raise ValueError("racecar_meta is not a JSON object")
        ep = Episode(
            observations={k: g["observations"][k][()] for k in OBS_KEYS},
            actions=g["actions"][()],
            rewards=g["rewards"][()],
            terminations=g["terminations"][()].astype(bool),
            truncations=g["truncations"][()].astype(bool),
            infos={k: g["infos"][k][()] for k in INFO_KEYS},
            meta=meta,
        )
    except Exception as e:  # h5py reports damage as OSError, KeyError, RuntimeError, ... depending on where
        raise DatasetError(f"dataset {did}: episode {index} is unreadable or incomplete ({_short(e)})") from None
    try:
        ep.validate(f"dataset {did}: episode {index}")
    except EpisodeError as e:
        raise DatasetError(str(e)) from None
    return ep


def load_dataset(name: str) -> RaceCarDataset:
    """Read a whole dataset into memory, checking it: missing, truncated/corrupt, or recorded with another
    observation layout all raise a one-line DatasetError naming the dataset and the problem."""
    h5py = _h5py()
    did = dataset_id(name)
    root = datasets_root()
    path = root / did
    data_dir = path / "data"
    if not path.exists():
        raise DatasetError(f"dataset {did}: not found under {root} (record one with "
                           f"`python -m teleop --dataset {name}`, or set MINARI_DATASETS_PATH)")
    meta = _read_metadata(did, data_dir)
    _check_layout(did, meta)
    data_file = data_dir / DATA_FILE
    if not data_file.exists():
        raise DatasetError(f"dataset {did}: {data_file} is missing")
    try:
        with h5py.File(data_file, "r") as f:
            names = _episode_names(did, f)
            episodes = [_read_episode(did, f[n], i) for i, n in enumerate(names)]
    except DatasetError:
        raise
    except Exception as e:  # see _read_episode
        raise DatasetError(f"dataset {did}: {data_file} is truncated or corrupt ({_short(e)})") from None
    # metadata may lag the data file by one episode after a kill (see module doc); more is corruption.
    if int(meta.get("total_episodes", 0)) > len(episodes):
        raise DatasetError(f"dataset {did}: metadata lists {meta.get('total_episodes')} episodes but "
                           f"{data_file} holds {len(episodes)} (truncated or replaced data file)")
    track_obj = load_track(str(meta.get("racecar_track", "s_curve")))  # interim: until tracks are stored as data
    for e in episodes:
        e.track = track_obj
    return RaceCarDataset(name=name, id=did, path=path, track=str(meta.get("racecar_track", "")),
                          layout_id=str(meta["racecar_obs_layout_id"]), metadata=meta, episodes=episodes)


# --- looking at datasets without writing code ------------------------------------------------------------------------
def _stats(values: list[float]) -> dict:
    if not values:
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()), "max": float(a.max())}


def summarize(name: "str | RaceCarDataset") -> dict:
    """episodes, steps, success/crash/timeout/aborted counts, return & length stats, drivers/skills present."""
    ds = name if isinstance(name, RaceCarDataset) else load_dataset(name)
    outcomes = Counter(e.outcome for e in ds.episodes)
    n = len(ds.episodes)
    return {
        "id": ds.id,
        "path": str(ds.path),
        "track": ds.track,
        "layout_id": ds.layout_id,
        "episodes": n,
        "steps": ds.total_steps,
        "successes": outcomes.get("success", 0),
        "crashes": outcomes.get("crash", 0),
        "timeouts": outcomes.get("timeout", 0),
        "aborted": outcomes.get("aborted", 0),
        "success_rate": outcomes.get("success", 0) / n if n else 0.0,
        "return": _stats([e.episode_return for e in ds.episodes]),
        "length": _stats([float(e.steps) for e in ds.episodes]),
        "drivers": dict(Counter(str(e.meta.get("driver", "?")) for e in ds.episodes)),
        "skills": dict(Counter(str(e.meta.get("skill", "?")) for e in ds.episodes)),
    }


def format_summary(s: dict) -> str:
    """The summary as the text `python -m teleop info` prints."""
    def st(d, fmt):
        return " ".join(f"{k} {format(v, fmt)}" for k, v in d.items())
    counts = lambda d: ", ".join(f"{k} x{v}" for k, v in sorted(d.items())) or "-"  # noqa: E731
    return "\n".join([
        f"dataset   {s['id']}",
        f"path      {s['path']}",
        f"track     {s['track']}   (observation layout {s['layout_id']})",
        f"episodes  {s['episodes']}   steps {s['steps']}",
        f"outcomes  success {s['successes']}  crash {s['crashes']}  timeout {s['timeouts']}  "
        f"aborted {s['aborted']}   (success rate {s['success_rate']:.0%})",
        f"return    {st(s['return'], '.2f')}",
        f"length    {st(s['length'], '.1f')}  (steps)",
        f"drivers   {counts(s['drivers'])}",
        f"skills    {counts(s['skills'])}",
    ])


def list_datasets() -> list[dict]:
    """Every RaceCar dataset under datasets_root(): id, episodes, steps, track, path (unreadable ones with an error)."""
    root = datasets_root()
    out = []
    if not root.exists():
        return out
    for meta_path in sorted(root.rglob(f"data/{METADATA_FILE}")):
        ds_dir = meta_path.parent.parent
        did = ds_dir.relative_to(root).as_posix()
        if any(part.startswith(".") for part in Path(did).parts):
            continue  # temp folders of datasets being created
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as e:
            out.append({"id": did, "path": str(ds_dir), "error": f"metadata unreadable ({_short(e)})"})
            continue
        if "racecar_obs_layout_id" not in meta:
            continue  # someone else's Minari dataset
        out.append({"id": did, "path": str(ds_dir), "episodes": meta.get("total_episodes"),
                    "steps": meta.get("total_steps"), "track": meta.get("racecar_track"),
                    "error": None if meta["racecar_obs_layout_id"] == spec.OBS_LAYOUT_ID
                    else f"observation layout {meta['racecar_obs_layout_id']} != {spec.OBS_LAYOUT_ID}"})
    return out


__all__ = ["DatasetError", "Episode", "EpisodeRecorder", "DatasetWriter", "RaceCarDataset", "Transitions",
           "datasets_root", "dataset_id", "dataset_path", "load_dataset", "summarize", "format_summary",
           "list_datasets", "normalize_track", "OBS_KEYS", "INFO_KEYS", "OUTCOMES"]
