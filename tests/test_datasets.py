"""Dataset layer: round trip, Minari compatibility, append, durability bookkeeping, clear errors."""
from __future__ import annotations

import json
import os

import minari
import numpy as np
import pytest

from racecar_env import RaceCarEnv, spec
from racecar_env.datasets import (INFO_KEYS, OBS_KEYS, DatasetError, DatasetWriter, Episode, EpisodeRecorder,
                                  dataset_id, datasets_root, list_datasets, load_dataset, summarize)
from teleop.autopilot import Autopilot
from racecar_env.rollout import run_episode


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    return tmp_path / "datasets"


_CACHE: dict = {}


def episodes(track="s_curve", skill="noisy", seeds=(0, 1, 2)) -> list[Episode]:
    """Real autopilot episodes (cached: the env is deterministic, so recomputing would give the same arrays)."""
    key = (track, skill, tuple(seeds))
    if key not in _CACHE:
        env = RaceCarEnv(track)
        try:
            _CACHE[key] = [run_episode(env, Autopilot(env.track, skill=skill, seed=s), s) for s in seeds]
        finally:
            env.close()
    # hand out copies: DatasetWriter.add fills meta["track"]
    return [Episode({k: v.copy() for k, v in e.observations.items()}, e.actions.copy(), e.rewards.copy(),
                    e.terminations.copy(), e.truncations.copy(), {k: v.copy() for k, v in e.infos.items()},
                    dict(e.meta)) for e in _CACHE[key]]


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
    assert a.meta == b.meta


def write(name, eps, track="s_curve", **kw):
    with DatasetWriter(name, track=track, **kw) as w:
        return [w.add(e) for e in eps]


def test_round_trip_identical_arrays(root):
    eps = episodes()
    assert write("rt", eps) == [0, 1, 2]
    ds = load_dataset("rt")
    assert (ds.id, ds.track, ds.layout_id, len(ds)) == ("racecar/rt-v0", "s_curve", spec.OBS_LAYOUT_ID, 3)
    assert ds.path == root / "racecar" / "rt-v0"
    for a, b in zip(eps, ds.episodes):
        assert_same(a, b)
        T = b.steps
        assert b.observations["observation"].shape == (T + 1, spec.OBS_DIM)
        assert b.meta["driver"] == "autopilot" and b.meta["skill"] == "noisy" and b.meta["track"] == "s_curve"
        assert b.meta["steps"] == T and b.meta["success"] == b.success
        assert b.meta["return"] == pytest.approx(float(b.rewards.sum()))
    # the recorder captured exactly what the env emitted: episode ends exactly where the env said so
    e = ds.episodes[0]
    assert e.terminations[-1] or e.truncations[-1]
    assert not (e.terminations[:-1].any() or e.truncations[:-1].any())


def test_minari_reads_our_dataset_without_download(root):
    eps = episodes()
    write("mn", eps)
    m = minari.load_dataset(dataset_id("mn"))
    assert m.total_episodes == 3 and m.total_steps == sum(e.steps for e in eps)
    for i, (ours, theirs) in enumerate(zip(eps, m.iterate_episodes())):
        for k in OBS_KEYS:
            np.testing.assert_array_equal(theirs.observations[k], ours.observations[k])
        np.testing.assert_array_equal(theirs.actions, ours.actions)
        np.testing.assert_array_equal(theirs.rewards, ours.rewards)
        np.testing.assert_array_equal(theirs.terminations, ours.terminations)
        np.testing.assert_array_equal(theirs.truncations, ours.truncations)
        np.testing.assert_array_equal(theirs.infos["is_success"], ours.infos["is_success"])
    meta = list(m.storage.get_episode_metadata([0]))[0]
    assert meta["seed"] == 0 and meta["driver"] == "autopilot" and meta["skill"] == "noisy"
    assert json.loads(meta["racecar_meta"])["seed"] == 0
    assert m.storage.metadata["racecar_obs_layout_id"] == spec.OBS_LAYOUT_ID
    assert m.storage.metadata["racecar_track"] == "s_curve"
    assert m.observation_space["observation"].shape == (spec.OBS_DIM,)
    assert "racecar/mn-v0" in minari.list_local_datasets()


def test_append_keeps_old_episodes(root):
    eps = episodes()
    write("ap", eps[:2])
    assert write("ap", eps[2:]) == [2]
    ds = load_dataset("ap")
    assert len(ds) == 3
    for a, b in zip(eps, ds.episodes):
        assert_same(a, b)
    assert minari.load_dataset("racecar/ap-v0").total_episodes == 3


def test_append_false_refuses_and_other_track_refused(root):
    write("ex", episodes()[:1])
    with pytest.raises(DatasetError, match="racecar/ex-v0: already exists"):
        DatasetWriter("ex", track="s_curve", append=False)
    with pytest.raises(DatasetError, match="track 's_curve', refusing to append episodes on track 'hairpin'"):
        DatasetWriter("ex", track="hairpin")
    assert len(load_dataset("ex")) == 1


def test_one_writer_at_a_time(root):
    with DatasetWriter("lk", track="s_curve"):
        with pytest.raises(DatasetError, match="another process is recording into it"):
            DatasetWriter("lk", track="s_curve")
    DatasetWriter("lk", track="s_curve").close()  # released on close


def test_kill_between_commit_and_metadata_is_tolerated_and_repaired(root):
    """The crash window between the data-file commit and the metadata update (see module doc)."""
    write("lag", episodes())
    meta_path = root / "racecar" / "lag-v0" / "data" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["total_episodes"], meta["total_steps"] = 2, 1
    meta_path.write_text(json.dumps(meta))
    (meta_path.parent / ".tmp-main_data.hdf5.12345").write_bytes(b"half-written copy of a killed writer")
    assert len(load_dataset("lag")) == 3  # all committed episodes, even though metadata lags
    with DatasetWriter("lag", track="s_curve") as w:
        assert w.episodes == 3
    repaired = json.loads(meta_path.read_text())
    assert repaired["total_episodes"] == 3 and repaired["total_steps"] == sum(e.steps for e in episodes())
    assert not list(meta_path.parent.glob(".tmp-*"))
    assert minari.load_dataset("racecar/lag-v0").total_episodes == 3


def test_missing_dataset_error(root):
    with pytest.raises(DatasetError) as e:
        load_dataset("nothing_here")
    msg = str(e.value)
    assert "racecar/nothing_here-v0" in msg and "not found" in msg and "\n" not in msg


@pytest.mark.parametrize("damage", ["truncate_data", "garbage_data", "delete_data", "truncate_metadata"])
def test_corrupt_files_give_one_line_error(root, damage):
    write("bad", episodes())
    data = root / "racecar" / "bad-v0" / "data"
    h5, meta = data / "main_data.hdf5", data / "metadata.json"
    if damage == "truncate_data":
        h5.write_bytes(h5.read_bytes()[: h5.stat().st_size // 2])
    elif damage == "garbage_data":
        raw = bytearray(h5.read_bytes())
        raw[: len(raw) // 3] = os.urandom(len(raw) // 3)
        h5.write_bytes(bytes(raw))
    elif damage == "delete_data":
        h5.unlink()
    else:
        meta.write_text(meta.read_text()[:100])
    with pytest.raises(DatasetError) as e:
        load_dataset("bad")
    msg = str(e.value)
    assert msg.startswith("dataset racecar/bad-v0: ") and "\n" not in msg
    assert any(w in msg for w in ("truncated", "corrupt", "missing")), msg
    if damage != "truncate_metadata":
        with pytest.raises(DatasetError, match="racecar/bad-v0"):
            DatasetWriter("bad", track="s_curve")


def test_layout_mismatch_error(root):
    write("old", episodes()[:1])
    meta_path = root / "racecar" / "old-v0" / "data" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["racecar_obs_layout_id"] = "obs-0000000000"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=r"racecar/old-v0: recorded with observation layout obs-0000000000, "
                                           r"but this code uses obs-"):
        load_dataset("old")
    with pytest.raises(DatasetError, match="observation layout"):
        DatasetWriter("old", track="s_curve")


def test_episode_with_T_observation_rows_is_refused(root):
    """Minari silently accepts T observation rows and corrupts the data; we refuse before writing."""
    ep = episodes()[0]
    ep.observations["observation"] = ep.observations["observation"][:-1]
    with DatasetWriter("rows", track="s_curve") as w:
        with pytest.raises(DatasetError, match="observations/observation has shape"):
            w.add(ep)
        assert w.episodes == 0
    assert len(load_dataset("rows")) == 0


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
    ep = rec.finish({"driver": "test"})
    assert ep.steps == 5 and ep.truncations[-1] and not ep.terminations.any()
    assert ep.outcome == "timeout" and ep.meta["outcome"] == "timeout" and ep.meta["driver"] == "test"
    np.testing.assert_array_equal(ep.observations["observation"][-1], obs["observation"])


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
    assert s["episodes"] == 3 and s["steps"] == sum(e.steps for e in eps)
    assert s["successes"] + s["crashes"] + s["timeouts"] + s["aborted"] == 3
    assert s["successes"] == sum(e.success for e in eps)
    assert s["drivers"] == {"autopilot": 3} and s["skills"] == {"noisy": 3}
    assert s["length"]["max"] == max(e.steps for e in eps)
    rows = list_datasets()
    assert [r["id"] for r in rows] == ["racecar/sm-v0"] and rows[0]["episodes"] == 3


def test_names_and_root(root, monkeypatch):
    assert datasets_root() == root
    assert dataset_id("s_expert") == "racecar/s_expert-v0"
    assert dataset_id("other/ns/x-v3") == "other/ns/x-v3"
    for bad in ("../x", "a b", "", "x.y"):
        with pytest.raises(DatasetError, match="is not valid"):
            dataset_id(bad)
    monkeypatch.delenv("MINARI_DATASETS_PATH")
    assert datasets_root() == datasets_root().home() / ".minari" / "datasets"


def test_random_damage_is_detected_never_silent(root):
    """Flip random bytes of the data file: every load either fails with a DatasetError or returns the exact data
    (the damage hit unused bytes). Checksums (fletcher32 arrays, v2 object headers) make this hold."""
    eps = episodes()
    write("fz", eps)
    h5 = root / "racecar" / "fz-v0" / "data" / "main_data.hdf5"
    orig = h5.read_bytes()
    rng = np.random.default_rng(0)
    errors = 0
    for _ in range(60):
        raw = bytearray(orig)
        pos, n = int(rng.integers(len(raw))), int(rng.choice([1, 8, 64]))
        for i in range(pos, min(pos + n, len(raw))):
            raw[i] ^= int(rng.integers(1, 256))
        h5.write_bytes(bytes(raw))
        try:
            ds = load_dataset("fz")
        except DatasetError as e:
            assert "racecar/fz-v0" in str(e) and "\n" not in str(e)
            errors += 1
            continue
        for a, b in zip(eps, ds.episodes):
            a.meta["track"] = "s_curve"
            assert_same(a, b)
    assert errors > 30  # most of the file is data and metadata, not slack


def test_delete_last_and_its_crash_window(root):
    eps = episodes()
    write("del", eps)
    with DatasetWriter("del", track="s_curve") as w:
        assert w.delete_last() == 2 and w.episodes == 2
    ds = load_dataset("del")
    assert len(ds) == 2 and minari.load_dataset("racecar/del-v0").total_episodes == 2
    for a, b in zip(eps, ds.episodes):
        assert_same(a, b)
    assert write("del", eps[2:]) == [2]  # the freed index is reused cleanly
    assert_same(eps[2], load_dataset("del")[2])
    # a kill between delete_last's metadata update and its data commit: metadata one behind the data file
    meta_path = root / "racecar" / "del-v0" / "data" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["total_episodes"], meta["total_steps"] = 2, meta["total_steps"] - eps[2].steps
    meta_path.write_text(json.dumps(meta))
    assert minari.load_dataset("racecar/del-v0").total_episodes == 2 and len(load_dataset("del")) == 3
    with DatasetWriter("del", track="s_curve") as w:
        assert w.episodes == 3
        assert w.delete_last() == 2
    assert len(load_dataset("del")) == 2
