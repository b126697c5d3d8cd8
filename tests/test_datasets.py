"""Dataset storage: round trip, Minari compatibility, tracks as data, append, durability, damage, clear errors."""
from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import minari
import numpy as np
import pytest

from racecar_env import RaceCarEnv, spec
from racecar_env.episode import INFO_KEYS, OBS_KEYS, Episode, EpisodeRecorder
from racecar_env.rollout import run_episode
from racecar_env.storage import (DatasetError, DatasetWriter, dataset_id, datasets_root, list_datasets,
                                 load_dataset)
from racecar_env.tracks import TRACKS_DIR, load_track
from teleop.autopilot import Autopilot
from teleop.summary import format_summary, summarize

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    return tmp_path / "datasets"


_CACHE: dict = {}


def copy(e: Episode) -> Episode:
    return Episode({k: v.copy() for k, v in e.observations.items()}, e.actions.copy(), e.rewards.copy(),
                   e.terminations.copy(), e.truncations.copy(), {k: v.copy() for k, v in e.infos.items()},
                   dict(e.meta), e.track)


def episodes(track="s_curve", skill="noisy", seeds=(0, 1, 2), max_steps=None) -> list[Episode]:
    """Real autopilot episodes (cached: the env is deterministic, so recomputing would give the same arrays)."""
    key = (str(track), skill, tuple(seeds), max_steps)
    if key not in _CACHE:
        env = RaceCarEnv(track, **({} if max_steps is None else {"max_episode_steps": max_steps}))
        try:
            _CACHE[key] = [run_episode(env, Autopilot(env.track, skill=skill, seed=s), s) for s in seeds]
        finally:
            env.close()
    return [copy(e) for e in _CACHE[key]]


def synthetic(n: int, steps: int = 20, track="s_curve", seed: int = 0) -> list[Episode]:
    """Episodes built with EpisodeRecorder from random numbers: storage tests that need no physics."""
    rng = np.random.default_rng(seed)
    t = load_track(track)
    out = []
    for i in range(n):
        def obs():
            return {"observation": rng.normal(size=spec.OBS_DIM).astype(np.float32),
                    "achieved_goal": rng.normal(size=2).astype(np.float32),
                    "desired_goal": np.array([1, 2], np.float32)}
        info = {"is_success": False, "collision": False, "progress": 0.0, "distance_to_goal": 3.0}
        rec = EpisodeRecorder(obs(), info)
        for k in range(steps):
            rec.step(rng.uniform(-1, 1, 2), obs(), float(rng.normal()), k == steps - 1, False,
                     {**info, "progress": k / steps, "collision": k == steps - 1})
        out.append(rec.finish({"driver": "synthetic", "seed": seed * 1000 + i, "note": [1, "two"]}, track=t))
    return out


def assert_same(a: Episode, b: Episode):
    for k in OBS_KEYS:
        np.testing.assert_array_equal(a.observations[k], b.observations[k])
        assert a.observations[k].dtype == b.observations[k].dtype == np.float32
    for k in ("actions", "rewards", "terminations", "truncations"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
        assert getattr(a, k).dtype == getattr(b, k).dtype
    assert set(a.infos) == set(b.infos) == set(INFO_KEYS)
    for k in INFO_KEYS:
        np.testing.assert_array_equal(a.infos[k], b.infos[k])
        assert a.infos[k].dtype == b.infos[k].dtype
    assert a.meta == b.meta
    assert a.track.track_id == b.track.track_id and a.track.to_dict() == b.track.to_dict()


def write(name, eps, **kw):
    with DatasetWriter(name, **kw) as w:
        return [w.add(e) for e in eps]


def data_dir(root, name) -> Path:
    return root / "racecar" / f"{name}-v0" / "data"


def test_round_trip_identical_arrays(root):
    eps = episodes()
    assert write("rt", eps) == [0, 1, 2]
    ds = load_dataset("rt")
    assert (ds.id, ds.layout_id, len(ds)) == ("racecar/rt-v0", spec.OBS_LAYOUT_ID, 3)
    assert ds.path == root / "racecar" / "rt-v0"
    for a, b in zip(eps, ds.episodes):
        assert_same(a, b)
        T = b.steps
        assert b.observations["observation"].shape == (T + 1, spec.OBS_DIM)
        assert b.meta["driver"] == "autopilot" and b.meta["skill"] == "noisy" and b.track.name == "s_curve"
        assert b.meta["steps"] == T and b.meta["success"] == b.success
        assert b.meta["return"] == pytest.approx(float(b.rewards.sum()))
    assert_same(ds[-1], eps[2]) and [e.meta["seed"] for e in ds[1:]] == [1, 2]
    assert list(ds.tracks) == [load_track("s_curve").track_id] and ds.total_steps == sum(e.steps for e in eps)
    # the recorder captured exactly what the env emitted: episode ends exactly where the env said so
    e = ds.episodes[0]
    assert e.terminations[-1] or e.truncations[-1]
    assert not (e.terminations[:-1].any() or e.truncations[:-1].any())


def test_minari_reads_our_episodes_identically(root):
    eps = episodes()
    write("mn", eps)
    m = minari.load_dataset(dataset_id("mn"))
    assert m.total_episodes == 3 and m.total_steps == sum(e.steps for e in eps)
    theirs_all = list(m.iterate_episodes())
    assert len(theirs_all) == 3
    for ours, theirs in zip(eps, theirs_all):
        for k in OBS_KEYS:
            np.testing.assert_array_equal(theirs.observations[k], ours.observations[k])
            assert theirs.observations[k].shape == (ours.steps + 1, ours.observations[k].shape[1])
            assert theirs.observations[k].dtype == np.float32
        for k in ("actions", "rewards", "terminations", "truncations"):
            np.testing.assert_array_equal(getattr(theirs, k), getattr(ours, k))
            assert getattr(theirs, k).dtype == getattr(ours, k).dtype and len(getattr(theirs, k)) == ours.steps
        assert set(theirs.infos) == set(INFO_KEYS)
        for k in INFO_KEYS:
            np.testing.assert_array_equal(theirs.infos[k], ours.infos[k])
            assert theirs.infos[k].dtype == ours.infos[k].dtype and len(theirs.infos[k]) == ours.steps + 1
    meta = list(m.storage.get_episode_metadata([0]))[0]
    assert meta["id"] == 0 and meta["seed"] == 0 and meta["total_steps"] == eps[0].steps
    assert meta["driver"] == "autopilot" and meta["skill"] == "noisy" and meta["outcome"] == eps[0].outcome
    assert meta["track_id"] == load_track("s_curve").track_id and meta["racecar_meta"] == eps[0].meta
    md = m.storage.metadata
    assert md["data_format"] == "arrow" and md["racecar_obs_layout_id"] == spec.OBS_LAYOUT_ID
    assert m.observation_space == spec.observation_space() and m.action_space == spec.action_space()
    assert m.env_spec.id == "RaceCar-v0" and m.env_spec.kwargs == {"track": load_track("s_curve").to_dict()}
    assert "racecar/mn-v0" in minari.list_local_datasets()
    env = m.recover_environment()  # the env the dataset names, rebuilt from the track content it stores
    try:
        assert env.unwrapped.track.track_id == load_track("s_curve").track_id
    finally:
        env.close()


def test_multi_track_round_trip(root, tmp_path):
    """Episodes on three different tracks in one dataset: each comes back with its own Track."""
    mine = load_track("s_curve").to_dict() | {"name": "s_wide", "description": "a user's variant"}
    mine["goal"] = {**mine["goal"], "radius": 1.4}
    user_file = tmp_path / "s_wide.json"
    user_file.write_text(json.dumps(mine))
    eps = []
    for track in ("s_curve", "hairpin", str(user_file)):
        eps += episodes(track, "expert", seeds=(0, 1), max_steps=40)
    order = [0, 2, 4, 1, 3, 5]  # interleaved: s_curve, hairpin, s_wide, s_curve, ...
    eps = [eps[i] for i in order]
    write("multi", eps[:3])
    write("multi", eps[3:])
    ds = load_dataset("multi")
    ids = {load_track(t).track_id for t in ("s_curve", "hairpin", str(user_file))}
    assert len(ids) == 3 and set(ds.tracks) == ids
    assert {t.name for t in ds.tracks.values()} == {"s_curve", "hairpin", "s_wide"}
    for a, b in zip(eps, ds):
        assert_same(a, b)
    assert [e.track.name for e in ds] == ["s_curve", "hairpin", "s_wide"] * 2
    assert sorted(p.name for p in (data_dir(root, "multi") / "tracks").iterdir()) == sorted(f"{i}.json" for i in ids)
    m = minari.load_dataset("racecar/multi-v0")
    assert m.total_episodes == 6 and m.env_spec.kwargs == {"track": "random"}
    assert m.storage.metadata["racecar_tracks"] == 3
    s = summarize("multi")
    assert len(s["tracks"]) == 3 and all(t["episodes"] == 2 for t in s["tracks"].values())
    assert "tracks    3" in format_summary(s) and "s_wide" in format_summary(s)
    assert list_datasets()[0]["tracks"] == 3


def test_moved_or_edited_track_file_changes_nothing(root, tmp_path):
    track_file = tmp_path / "tracks" / "mine.json"
    track_file.parent.mkdir()
    shutil.copy(TRACKS_DIR / "hairpin.json", track_file)
    original = load_track(str(track_file))
    eps = episodes(str(track_file), "expert", seeds=(5,), max_steps=30)
    write("moved", eps)
    before = load_dataset("moved")[0]
    # edit the file (walls and goal), then move it somewhere else
    d = json.loads(track_file.read_text())
    d["walls"][0] = [9.0, 9.0, 9.5, 9.5]
    d["goal"]["x"] += 3.0
    track_file.write_text(json.dumps(d))
    track_file.rename(tmp_path / "elsewhere.json")
    ds = load_dataset("moved")
    ep = ds[0]
    assert ep.track.track_id == original.track_id == before.track.track_id
    assert ep.track.to_dict() == original.to_dict()
    np.testing.assert_array_equal(ep.track.walls, original.walls)
    assert list(ds.tracks) == [original.track_id] and ds.check() == []
    assert minari.load_dataset("racecar/moved-v0").env_spec.kwargs == {"track": original.to_dict()}


def test_append_keeps_old_episodes_untouched(root):
    eps = episodes()
    write("ap", eps[:2])
    first = data_dir(root, "ap") / "0"
    stamp = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in first.iterdir()}
    assert write("ap", eps[2:]) == [2]
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in first.iterdir()} == stamp  # never rewritten
    ds = load_dataset("ap")
    assert len(ds) == 3
    for a, b in zip(eps, ds.episodes):
        assert_same(a, b)
    assert minari.load_dataset("racecar/ap-v0").total_episodes == 3


def test_append_false_refuses_and_tracks_may_mix(root):
    write("ex", synthetic(1))
    with pytest.raises(DatasetError, match="racecar/ex-v0: already exists"):
        DatasetWriter("ex", append=False)
    assert write("ex", synthetic(1, track="hairpin")) == [1]  # no "this dataset is for track X" any more
    assert len(load_dataset("ex")) == 2


def test_episode_without_track_or_with_bad_rows_is_refused(root):
    """Minari silently accepts T observation rows and corrupts the data; we refuse before writing."""
    ep = synthetic(1)[0]
    ep.observations["observation"] = ep.observations["observation"][:-1]
    no_track = synthetic(1)[0]
    no_track.track = None
    with DatasetWriter("rows") as w:
        with pytest.raises(DatasetError, match="observations/observation has shape"):
            w.add(ep)
        with pytest.raises(DatasetError, match=r"racecar/rows-v0: new episode: has no track \(episode.track is"):
            w.add(no_track)
        assert w.episodes == 0
    assert list((root / "racecar").iterdir()) == [root / "racecar" / "namespace_metadata.json"]  # nothing saved


def test_one_writer_at_a_time(root):
    with DatasetWriter("lk"):
        with pytest.raises(DatasetError, match="another process is recording into it"):
            DatasetWriter("lk")
    DatasetWriter("lk").close()  # released on close


def test_kill_leftovers_are_tolerated_swept_and_repaired(root):
    """What a writer killed inside `add` can leave: a half-written hidden episode folder, a track file no episode
    uses yet, metadata one episode behind the committed folders (see the storage module doc)."""
    eps = synthetic(3)
    write("lag", eps)
    d = data_dir(root, "lag")
    meta_path = d / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["total_episodes"], meta["total_steps"] = 2, eps[0].steps + eps[1].steps
    meta_path.write_text(json.dumps(meta))
    half = d / ".tmp-12345-3"
    half.mkdir()
    (half / "part-0.arrow").write_bytes(b"ARROW1 half-written")
    (d / ".tmp-12345-metadata.json").write_text('{"total_')
    (d / "tracks" / ".tmp-12345-trk-0123456789abcdef.json").write_text("{")
    orphan = load_track("hairpin")
    (d / "tracks" / f"{orphan.track_id}.json").write_text(json.dumps(orphan.to_dict()))
    ds = load_dataset("lag")
    assert len(ds) == 3 and ds.check() == []  # all committed episodes, even though metadata lags
    assert minari.load_dataset("racecar/lag-v0").total_episodes == 2  # Minari reads what the metadata names
    with DatasetWriter("lag") as w:
        assert w.episodes == 3 and list(w.tracks) == [load_track("s_curve").track_id]
    repaired = json.loads(meta_path.read_text())
    assert repaired["total_episodes"] == 3 and repaired["total_steps"] == sum(e.steps for e in eps)
    assert sorted(p.name for p in d.iterdir()) == ["0", "1", "2", "metadata.json", "tracks"]
    assert [p.name for p in (d / "tracks").iterdir()] == [f"{load_track('s_curve').track_id}.json"]
    assert minari.load_dataset("racecar/lag-v0").total_episodes == 3


_CTRL_C_IN_LAZY_IMPORTS = """
import sys
from racecar_env.storage import load_dataset


class CtrlCOnImport:   # a Ctrl-C landing while the K-th module is imported (K = 0: never; prints the count)
    count = 0

    def find_spec(self, name, path=None, target=None):
        CtrlCOnImport.count += 1
        if CtrlCOnImport.count == K:
            raise KeyboardInterrupt
        return None


ds = load_dataset("lazy")
K = int(sys.argv[1])
sys.meta_path.insert(0, CtrlCOnImport())
try:
    ds.episodes
except KeyboardInterrupt:
    print("interrupted")
else:
    print("loaded", CtrlCOnImport.count)
"""


def test_ctrl_c_while_episodes_decode_is_never_swallowed(root):
    """pyarrow imports pandas on its first conversion and drops any exception raised inside that import: a Ctrl-C
    landing there was lost (the program trained to the end). Every import made while decoding must let it through."""
    write("lazy", synthetic(2, steps=5))
    run = [sys.executable, "-c", _CTRL_C_IN_LAZY_IMPORTS]
    imports = int(subprocess.run([*run, "0"], capture_output=True, text=True, cwd=REPO, check=True,
                                 timeout=120).stdout.split()[-1])
    for k in sorted({1, 2, 5, *np.linspace(1, imports, 12).astype(int).tolist()}):
        p = subprocess.run([*run, str(k)], capture_output=True, text=True, cwd=REPO, timeout=120)
        assert p.stdout.strip() == "interrupted", (k, imports, p.stdout, p.stderr[-1500:])


_APPENDER = """
import sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_datasets import synthetic
from racecar_env.storage import DatasetWriter
pool = synthetic(8, steps=60) + synthetic(4, steps=60, track="hairpin", seed=1)
with DatasetWriter("hammer") as w:
    i = w.episodes
    while True:
        w.add(pool[i % len(pool)])
        i += 1
"""


def test_sigkill_during_appends_never_damages_the_dataset(root):
    """A process appending as fast as it can (so most kills land inside `add`: encoding, writing the temp folder,
    renaming, rewriting metadata), killed with SIGKILL at random moments: after every kill the dataset is healthy,
    every episode saved before is still there byte for byte, Minari reads it, and the next writer continues."""
    env = {**os.environ, "MINARI_DATASETS_PATH": str(root), "PYTHONPATH": str(REPO)}
    script = _APPENDER.format(tests=str(Path(__file__).parent))
    rng = np.random.default_rng(0)
    seen: dict[int, bytes] = {}
    meta_of = lambda i: (data_dir(root, "hammer") / str(i) / "metadata.json").read_bytes()  # noqa: E731
    for _ in range(8):
        n0 = len(load_dataset("hammer")) if (root / "racecar" / "hammer-v0").exists() else 0
        proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while not (data_dir(root, "hammer") / str(n0)).exists():
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline
                time.sleep(0.002)
            time.sleep(float(rng.uniform(0, 0.15)))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        ds = load_dataset("hammer")
        assert len(ds) > n0 and ds.check() == [], ds.check()
        for i, raw in seen.items():
            assert meta_of(i) == raw  # a committed episode never changes
        seen.update({i: meta_of(i) for i in range(len(ds))})
        ds[len(ds) - 1]  # the newest decodes too
        m = minari.load_dataset("racecar/hammer-v0")
        assert len(ds) - 1 <= m.total_episodes <= len(ds)
        assert len(list(m.iterate_episodes())) == m.total_episodes
    with DatasetWriter("hammer") as w:
        assert w.episodes == len(ds)
    assert not [p for p in data_dir(root, "hammer").iterdir() if p.name.startswith(".")]
    assert set(load_dataset("hammer").tracks) == {load_track("s_curve").track_id, load_track("hairpin").track_id}


def test_missing_dataset_error(root):
    with pytest.raises(DatasetError) as e:
        load_dataset("nothing_here")
    msg = str(e.value)
    assert "racecar/nothing_here-v0" in msg and "not found" in msg and "\n" not in msg
    assert "python -m teleop --driver autopilot --dataset nothing_here" in msg  # headless: no window needed


def _flip(path: Path, pos: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[pos] ^= 0x5A
    path.write_bytes(bytes(raw))


DAMAGES = {
    "flip_arrow_byte": lambda d: _flip(d / "2" / "part-0.arrow", 600),
    "truncate_arrow": lambda d: (d / "2" / "part-0.arrow").write_bytes((d / "2" / "part-0.arrow").read_bytes()[:900]),
    "delete_arrow": lambda d: (d / "2" / "part-0.arrow").unlink(),
    "truncate_episode_metadata": lambda d: (d / "2" / "metadata.json").write_text(
        (d / "2" / "metadata.json").read_text()[:80]),
    "edit_episode_metadata": lambda d: (d / "2" / "metadata.json").write_text(
        (d / "2" / "metadata.json").read_text().replace('"seed": 2', '"seed": 7', 1)),
    "delete_episode_folder": lambda d: shutil.rmtree(d / "2"),
    "damage_track_file": lambda d: [_flip(p, 40) for p in (d / "tracks").glob("trk-*.json")
                                    if json.loads((d / "2" / "metadata.json").read_text())["track_id"] == p.stem],
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_episode_is_detected_and_the_others_stay_readable(root, damage, capsys):
    eps = synthetic(2) + synthetic(1, track="hairpin", seed=0)[:1] + synthetic(2, seed=3)
    eps[2].meta["seed"] = 2
    write("dmg", eps)
    DAMAGES[damage](data_dir(root, "dmg"))
    ds = load_dataset("dmg")
    assert len(ds) == 5
    for i in (0, 1, 3, 4):  # reading around the damage works
        assert_same(ds[i], eps[i])
    with pytest.raises(DatasetError) as e:
        ds[2]
    msg = str(e.value)
    assert msg.startswith("dataset racecar/dmg-v0: episode 2 is damaged (") and "\n" not in msg, msg
    with pytest.raises(DatasetError, match=r"^dataset racecar/dmg-v0: episode 2 is damaged \("):
        list(ds)
    for everything in (lambda: ds.episodes, lambda: ds.transitions()):   # the whole dataset: what learn reads
        with pytest.raises(DatasetError, match=r"^dataset racecar/dmg-v0: is damaged: episode 2 is damaged \(.*; "
                                               r"refusing to use it \(`python -m teleop info dmg` lists"):
            everything()
    assert len(ds.transitions([0, 1, 3])) == sum(eps[i].steps for i in (0, 1, 3))
    problems = ds.check()
    assert len(problems) == 1 and problems[0].startswith("episode 2 is damaged"), problems
    row = list_datasets()[0]
    assert row["health"] == "damaged" and row["problem"].startswith("episode 2 is damaged")
    s = summarize("dmg")
    # whatever the damage, the numbers cover the four episodes that read (a damaged episode's metadata may read,
    # but it is not counted as readable)
    assert s["problems"] == problems and s["episodes"] == 5 and s["readable"] == 4
    assert s["steps"] == sum(eps[i].steps for i in (0, 1, 3, 4))
    assert "DAMAGED" in format_summary(s) and "episodes  5 (4 readable)" in format_summary(s)
    with pytest.raises(DatasetError) as e:
        DatasetWriter("dmg")
    msg = str(e.value)
    assert msg.startswith("dataset racecar/dmg-v0: is damaged: episode 2 is damaged") and "refusing to append" in msg
    assert "\n" not in msg


def test_random_damage_is_detected_never_silent(root):
    """Flip random bytes anywhere in an episode's files: every read either fails with a one-line DatasetError
    naming the episode or returns exactly the data written (the checksums make this hold)."""
    eps = synthetic(2, steps=30)
    write("fz", eps)
    d = data_dir(root, "fz") / "1"
    originals = {p: p.read_bytes() for p in d.iterdir()}
    rng = np.random.default_rng(0)
    errors = 0
    for trial in range(60):
        path = list(originals)[trial % len(originals)]
        raw = bytearray(originals[path])
        pos, n = int(rng.integers(len(raw))), int(rng.choice([1, 8, 64]))
        for i in range(pos, min(pos + n, len(raw))):
            raw[i] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(raw))
        ds = load_dataset("fz")
        assert_same(ds[0], eps[0])
        try:
            got = ds[1]
        except DatasetError as e:
            assert str(e).startswith("dataset racecar/fz-v0: episode 1 is damaged") and "\n" not in str(e)
            errors += 1
        else:
            assert_same(got, eps[1])
        path.write_bytes(originals[path])
    assert errors >= 58  # JSON whitespace is the only slack


def test_old_layout_or_hdf5_dataset_refused_with_rerecord_hint(root):
    write("old", synthetic(1))
    meta_path = data_dir(root, "old") / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["racecar_obs_layout_id"] = "obs-0000000000"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=r"^dataset racecar/old-v0: recorded with observation layout "
                                           r"obs-0000000000, this code uses obs-.*; re-record it: python -m "
                                           r"teleop --driver autopilot --dataset old"):
        load_dataset("old")
    with pytest.raises(DatasetError, match="re-record it"):
        DatasetWriter("old")
    # a dataset of the previous storage (Minari HDF5, one track per dataset), as it was written
    h5 = root / "racecar" / "s_expert-v0" / "data"
    h5.mkdir(parents=True)
    (h5 / "main_data.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    (h5 / "metadata.json").write_text(json.dumps({
        "dataset_id": "racecar/s_expert-v0", "total_episodes": 50, "total_steps": 9000, "data_format": "hdf5",
        "minari_version": "0.5.4", "racecar_format": 1, "racecar_obs_layout_id": "obs-4f0c2a9e1b",
        "racecar_track": "s_curve", "racecar_track_name": "s_curve"}))
    with pytest.raises(DatasetError) as e:
        load_dataset("s_expert")
    msg = str(e.value)
    assert "\n" not in msg and "older storage format (hdf5" in msg
    assert "re-record it: python -m teleop --driver autopilot --dataset s_expert --track s_curve" in msg
    with pytest.raises(DatasetError, match="older storage format"):
        DatasetWriter("s_expert")
    rows = {r["id"]: r for r in list_datasets()}
    assert rows["racecar/s_expert-v0"]["health"] == "unusable" and "re-record" in rows["racecar/s_expert-v0"]["problem"]
    assert rows["racecar/old-v0"]["health"] == "unusable"


def test_recorder_matches_env_and_stops_at_end(root):
    env = RaceCarEnv("s_curve", max_episode_steps=5)
    obs, info = env.reset(seed=3)
    rec = EpisodeRecorder(obs, info)
    while not rec.done:
        a = np.array([0.0, 0.2], np.float32)
        obs, r, te, tr, info = env.step(a)
        rec.step(a, obs, r, te, tr, info)
    env.close()
    with pytest.raises(RuntimeError, match="after the episode ended"):
        rec.step(a, obs, r, te, tr, info)
    ep = rec.finish({"driver": "test"}, track=env.track)
    assert ep.steps == 5 and ep.truncations[-1] and not ep.terminations.any()
    assert ep.outcome == "timeout" and ep.meta["outcome"] == "timeout" and ep.meta["driver"] == "test"
    np.testing.assert_array_equal(ep.observations["observation"][-1], obs["observation"])
    write("rec", [ep])
    assert_same(load_dataset("rec")[0], ep)


def test_transitions_flatten_with_episode_semantics(root):
    eps = episodes()
    write("tr", eps)
    t = load_dataset("tr").transitions()
    n = sum(e.steps for e in eps)
    assert len(t) == n and t.actions.shape == (n, 2) and t.observations["observation"].shape == (n, spec.OBS_DIM)
    assert t.episode_ends.sum() == 3 and (t.terminals | t.timeouts).sum() == 3
    within = ~t.episode_ends[:-1]  # inside an episode, next obs of step i is the obs of step i+1
    for k in OBS_KEYS:
        np.testing.assert_array_equal(t.next_observations[k][:-1][within], t.observations[k][1:][within])
    start = 0
    for i, e in enumerate(eps):
        sl = slice(start, start + e.steps)
        np.testing.assert_array_equal(t.next_observations["observation"][sl], e.observations["observation"][1:])
        np.testing.assert_array_equal(t.terminals[sl], e.terminations)
        assert (t.episode_index[sl] == i).all() and t.step_index[sl][0] == 0
        start += e.steps


def test_summarize_and_list(root):
    eps = episodes()
    write("sm", eps)
    s = summarize("sm")
    assert s["episodes"] == 3 and s["steps"] == sum(e.steps for e in eps) and s["problems"] == []
    assert s["successes"] + s["crashes"] + s["timeouts"] + s["aborted"] == 3
    assert s["successes"] == sum(e.success for e in eps)
    assert s["drivers"] == {"autopilot": 3} and s["skills"] == {"noisy": 3}
    assert s["length"]["max"] == max(e.steps for e in eps)
    assert s["tracks"] == {load_track("s_curve").track_id: {"name": "s_curve", "episodes": 3}}
    rows = list_datasets()
    assert [r["id"] for r in rows] == ["racecar/sm-v0"]
    assert (rows[0]["episodes"], rows[0]["steps"], rows[0]["tracks"], rows[0]["health"]) == (3, s["steps"], 1, "ok")


def test_a_datasets_folder_the_os_refuses_is_one_line_naming_it(tmp_path, monkeypatch):
    """MINARI_DATASETS_PATH a file, under a file, a name too long, or where no folder can be made: the writer (the one
    place that creates the folder), the readers and the listing say so in one line naming MINARI_DATASETS_PATH;
    nothing is created and the file is untouched."""
    blocker = tmp_path / "f"
    blocker.write_text("hi")
    cases = [(blocker, f"MINARI_DATASETS_PATH={blocker}: it is a file, expected a folder for the datasets"),
             (blocker / "sub", f"MINARI_DATASETS_PATH={blocker / 'sub'}: {blocker} is a file, expected a folder"),
             (tmp_path / ("a" * 300), "not a usable folder path (File name too long)")]
    if Path("/proc").is_dir() and not Path("/proc/nonexistent").exists():   # takes no new folders, even from root
        cases.append((Path("/proc/nonexistent"), "MINARI_DATASETS_PATH=/proc/nonexistent: cannot create "
                                                 "/proc/nonexistent (No such file or directory)"))
    for path, says in cases:
        monkeypatch.setenv("MINARI_DATASETS_PATH", str(path))
        calls = [lambda: DatasetWriter("z"), lambda: write("z", synthetic(1))]
        if "cannot create" not in says:   # reading a folder that is not there yet is "not found", not an error
            calls += [lambda: load_dataset("z"), list_datasets]
        for call in calls:
            with pytest.raises(DatasetError) as e:
                call()
            assert says in str(e.value) and "\n" not in str(e.value), (path, str(e.value))
    assert blocker.read_text() == "hi" and sorted(p.name for p in tmp_path.iterdir()) == ["f"]
    monkeypatch.delenv("MINARI_DATASETS_PATH")
    monkeypatch.setenv("HOME", str(blocker))   # Minari's default folder, under a file: named as the default
    with pytest.raises(DatasetError, match=f"^the datasets folder {blocker}/.minari/datasets \\(Minari's default; "
                                           f"MINARI_DATASETS_PATH chooses another\\): {blocker} is a file"):
        DatasetWriter("z")


def test_names_and_root(root, monkeypatch):
    assert datasets_root() == root
    assert dataset_id("s_expert") == "racecar/s_expert-v0"
    assert dataset_id("other/ns/x-v3") == "other/ns/x-v3"
    for bad in ("../x", "a b", "", "x.y"):
        with pytest.raises(DatasetError, match="is not valid"):
            dataset_id(bad)
    assert dataset_id("a" * 100) == f"racecar/{'a' * 100}-v0"
    for long in ("a" * 101, "é" * 51, f"racecar/{'a' * 93}-v0"):   # the limit is on bytes: folder names
        with pytest.raises(DatasetError, match=r"^dataset name '.{20}\.\.\.' is too long \(\d+ characters\): at most "
                                               r"100 are allowed"):
            dataset_id(long)
    monkeypatch.delenv("MINARI_DATASETS_PATH")
    assert datasets_root() == datasets_root().home() / ".minari" / "datasets"


def test_delete_last_and_its_crash_windows(root):
    eps = synthetic(2) + synthetic(1, track="hairpin", seed=5)
    write("del", eps)
    d = data_dir(root, "del")
    hairpin = f"{load_track('hairpin').track_id}.json"
    with DatasetWriter("del") as w:
        assert w.delete_last() == 2 and w.episodes == 2
    ds = load_dataset("del")
    assert len(ds) == 2 and minari.load_dataset("racecar/del-v0").total_episodes == 2
    for a, b in zip(eps, ds.episodes):
        assert_same(a, b)
    assert not (d / "tracks" / hairpin).exists() and list(ds.tracks) == [load_track("s_curve").track_id]
    assert write("del", eps[2:]) == [2]  # the freed index is reused cleanly
    assert_same(eps[2], load_dataset("del")[2])
    # kill after delete_last's metadata update, before its rename: metadata one behind the folders (the episode
    # survives; Minari reads the two the metadata names; the next writer counts it again)
    meta_path = d / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["total_episodes"], meta["total_steps"] = 2, meta["total_steps"] - eps[2].steps
    meta_path.write_text(json.dumps(meta))
    assert minari.load_dataset("racecar/del-v0").total_episodes == 2 and len(load_dataset("del")) == 3
    with DatasetWriter("del") as w:
        assert w.episodes == 3
    # kill after the rename, before the hidden folder is removed: the episode is gone, the folder is swept
    os.rename(d / "2", d / ".del-999-2")
    meta["total_episodes"] = 2
    meta_path.write_text(json.dumps(meta))
    assert len(load_dataset("del")) == 2 and load_dataset("del").check() == []
    with DatasetWriter("del") as w:
        assert w.episodes == 2
        assert w.delete_last() == 1 and w.delete_last() == 0
        with pytest.raises(DatasetError, match="has no episodes to delete"):
            w.delete_last()
    assert len(load_dataset("del")) == 0 and sorted(p.name for p in d.iterdir()) == ["metadata.json", "tracks"]
    assert minari.load_dataset("racecar/del-v0").total_episodes == 0


def test_storage_needs_no_physics_world(root, monkeypatch):
    """Writing, reading, checking and Minari's reader never build an env: spaces come from racecar_env.spec."""
    tree = ast.parse((REPO / "racecar_env" / "storage.py").read_text())
    imported = {(n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not imported & {"env", "physics", "render", "rollout", "pybullet", "racecar_env.env"}, imported
    import racecar_env.physics

    def no(*a, **k):
        raise AssertionError("storage built a physics world")
    monkeypatch.setattr(racecar_env.physics.CarSim, "__init__", no)
    write("nophys", synthetic(2, track="hairpin"))
    ds = load_dataset("nophys")
    assert ds.check() == [] and len(ds.transitions()) == 40 and summarize(ds)["episodes"] == 2
    assert len(list(minari.load_dataset("racecar/nophys-v0").iterate_episodes())) == 2


def test_whole_dataset_reads_refuse_what_teleop_info_calls_damaged(root, capsys):
    """An episode folder missing at the end reads as a shorter dataset: learn trained on the rest. Now every
    whole-dataset read (learn's loader too) refuses it with the problem `teleop info` shows."""
    from learn.data import load_training_data
    write("cut", synthetic(3))
    shutil.rmtree(data_dir(root, "cut") / "2")
    ds = load_dataset("cut")
    assert len(ds) == 2 and ds[1].steps == 20   # what is there stays readable one by one
    problem = "metadata lists 3 episodes but only 2 episode folders exist"
    assert summarize("cut")["problems"] == [problem]
    expected = (f"dataset racecar/cut-v0: is damaged: {problem}; refusing to use it (`python -m teleop info cut` "
                f"lists the damage)")
    for whole in (lambda: ds.episodes, ds.transitions, lambda: load_training_data("cut")):
        with pytest.raises(DatasetError) as e:
            whole()
        assert str(e.value) == expected
    with pytest.raises(DatasetError, match=f"is damaged: {problem}; refusing to append"):
        DatasetWriter("cut")


def test_empty_dataset_is_removed_only_by_the_writer_that_created_it(root):
    from learn.data import load_training_data
    ns = root / "racecar"
    with DatasetWriter("never") as w:   # created, nothing saved: gone on close
        assert (ns / "never-v0" / "data").is_dir()
    with DatasetWriter("undone") as w:  # created, one saved and deleted again: nothing saved either
        w.add(synthetic(1)[0])
        w.delete_last()
    assert sorted(p.name for p in ns.iterdir()) == ["namespace_metadata.json"]
    write("kept", synthetic(1))
    with DatasetWriter("kept") as w:    # an existing dataset emptied by hand is never removed
        w.delete_last()
    with DatasetWriter("kept"):
        pass
    ds = load_dataset("kept")
    assert len(ds) == 0
    expected = ("dataset racecar/kept-v0: has no episodes (nothing was saved into it); record some: "
                "python -m teleop --driver autopilot --dataset kept --episodes N")
    for whole in (lambda: ds.episodes, ds.transitions, lambda: load_training_data("kept")):
        with pytest.raises(DatasetError) as e:
            whole()
        assert str(e.value) == expected


def _drop_physics_revision(root, name) -> Path:
    """Make a dataset look as if recorded before racecar_physics existed (revision 1)."""
    meta_path = data_dir(root, name) / "metadata.json"
    meta = json.loads(meta_path.read_text())
    assert meta.pop("racecar_physics") == spec.PHYSICS_REVISION
    meta_path.write_text(json.dumps(meta))
    return meta_path


def test_dataset_from_before_every_wall_collided_is_refused_only_where_it_changed(root):
    long_road = load_track("gen:1837575:hard")   # more walls than revision 1 gave collision shapes
    assert len(long_road.walls) > spec.PHYSICS_1_WALLS >= len(load_track("s_curve").walls)
    write("roads", synthetic(1, track="gen:1837575:hard") + synthetic(1))
    write("scurve", synthetic(2))
    _drop_physics_revision(root, "roads")
    meta_path = _drop_physics_revision(root, "scurve")
    for open_it in (load_dataset, DatasetWriter):
        with pytest.raises(DatasetError) as e:
            open_it("roads")
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith("dataset racecar/roads-v0: recorded before every wall collided")
        assert "1 of its 2 tracks have more than 16 walls, and walls 17 and later" in msg
        assert "re-record it: python -m teleop" in msg
    assert {r["id"]: r for r in list_datasets()}["racecar/roads-v0"]["health"] == "unusable"
    # the S track's 10 walls all collided before too: its episodes are today's, so it loads, and an append stamps it
    assert len(load_dataset("scurve")) == 2
    write("scurve", synthetic(1, seed=1))
    assert json.loads(meta_path.read_text())["racecar_physics"] == spec.PHYSICS_REVISION
    assert len(load_dataset("scurve")) == 3


def test_an_empty_folder_of_a_datasets_name_is_named_not_called_missing(root):
    """`record one with ...` was circular for a folder without a dataset in it: recording there failed the same."""
    (root / "racecar" / "junk-v0").mkdir(parents=True)
    for attempt in (lambda: load_dataset("junk"), lambda: DatasetWriter("junk")):
        with pytest.raises(DatasetError, match=r"junk-v0 holds no dataset .*remove it to record under this name"):
            attempt()
