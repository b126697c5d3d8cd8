"""Names the teleop CLIs make up or print: default dataset names (never mixing tracks silently, never blaming the
user for a name they did not give), base seeds the episode-seed derivation tells apart, and the tracks
`python -m teleop.autopilot` reports as failed."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from racecar_env.storage import load_dataset
from racecar_env.tracks import TRACKS_DIR, generate
from teleop.__main__ import main
from teleop.autopilot import main as autopilot_main
from teleop.record import MAX_BASE_SEED, RecordConfig, episode_seed, record_autopilot

from test_record_cli import escape_when_window_opens

QUICK = ["--driver", "autopilot", "--episodes", "1", "--workers", "1", "--quiet"]


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    return tmp_path / "datasets"


def track_file(folder: Path, name: str, shipped: str = "hairpin", **changes) -> str:
    """A copy of a shipped track's file under another name (with `changes` to its JSON keys)."""
    data = json.loads((TRACKS_DIR / f"{shipped}.json").read_text())
    path = folder / name
    path.write_text(json.dumps({**data, **changes}), encoding="utf-8")
    return str(path)


def refused(capsys, args) -> str:
    """The one stderr line of a record command that exits 2."""
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_default_name_never_mixes_another_track_in(root, tmp_path, capsys):
    assert main(QUICK) == 0   # s_expert on s_curve
    one_turn = track_file(tmp_path, "s_oneturn.json")   # hairpin's content, a file name whose default is s_expert
    err = refused(capsys, QUICK + ["--track", one_turn])
    assert err.startswith("python -m teleop: error: dataset racecar/s_expert-v0 "), err
    assert "holds episodes on track s_curve, not on hairpin" in err and "pass --dataset NAME" in err, err
    assert len(load_dataset("s_expert")) == 1   # nothing written
    # the user's own --dataset may mix tracks (the README: "appends if the dataset exists (tracks may mix)")
    assert main(QUICK + ["--track", one_turn, "--dataset", "s_expert"]) == 0
    assert len(load_dataset("s_expert").tracks) == 2
    # ... after which the default name refuses it for either track: it no longer holds only that one
    err = refused(capsys, QUICK)
    assert "holds episodes on 2 tracks (s_curve, hairpin), not only on s_curve" in err, err
    # the keyboard recorder too, before its window opens (the default s_human would be on s_curve)
    assert main(QUICK + ["--track", "hairpin", "--dataset", "s_human"]) == 0
    with escape_when_window_opens():
        err = refused(capsys, ["--driver", "keyboard"])
    assert "dataset racecar/s_human-v0" in err and "not on s_curve" in err, err


def test_tracks_are_compared_by_content_as_the_dataset_stores_them(root, tmp_path, capsys):
    assert main(QUICK + ["--track", track_file(tmp_path, "oval_a.json", "s_curve")]) == 0
    # the same content from another file is the same track: appended
    assert main(QUICK + ["--track", track_file(tmp_path, "oval_b.json", "s_curve")]) == 0
    assert len(load_dataset("oval_expert")) == 2
    # an edited description is another track id, so another track to the dataset (and to learn): refused, and the
    # two same-named tracks are told apart by their ids
    edited = track_file(tmp_path, "oval_c.json", "s_curve", description="my edit")
    err = refused(capsys, QUICK + ["--track", edited])
    ids = sorted(load_dataset("oval_expert").tracks)
    assert f"track s_curve [{ids[0]}], not on s_curve [trk-" in err and "--dataset oval_expert" in err, err
    assert len(load_dataset("oval_expert").tracks) == 1


def test_generated_tracks_keep_their_default_names(root, capsys):
    # random: many roads in one dataset by design
    for _ in range(2):
        assert main(QUICK + ["--track", "random"]) == 0
    assert len(load_dataset("multi_expert").tracks) == 2
    # ... but test roads (or another preset) are not drawn into the training roads' dataset
    err = refused(capsys, QUICK + ["--track", "random:test"])
    assert "dataset racecar/multi_expert-v0" in err and "2 tracks (gen-" in err and "not from random:test" in err
    assert len(load_dataset("multi_expert")) == 2
    # gen:SEED is one track with a name of its own
    for _ in range(2):
        assert main(QUICK + ["--track", "gen:3"]) == 0
    assert len(load_dataset("gen3_expert")) == 2


@pytest.mark.parametrize("name", ["ünï cødé näme.json", "-x.json", "ー長.json"])
def test_an_invalid_default_name_says_it_came_from_the_track_file(root, tmp_path, capsys, name):
    path = track_file(tmp_path, name)
    err = refused(capsys, QUICK + ["--track", path])
    assert "the default dataset name" in err and f"made from the --track file's name, {name!r}" in err, err
    assert err.rstrip().endswith("pass --dataset NAME"), err
    assert not root.exists()   # refused before anything was written
    assert main(QUICK + ["--track", path, "--dataset", "mine"]) == 0


@pytest.mark.parametrize("seed", ["4294967296", "9223372036854775807", "-1"])
def test_record_refuses_seeds_the_derivation_cannot_tell_apart(root, capsys, seed):
    with pytest.raises(SystemExit) as e:
        main(QUICK + ["--seed", seed])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1, err
    assert "argument --seed: expected a seed, a whole number from 0 to 2**32 - 1 (4294967295" in err, err
    assert f"got '{seed}'" in err and not root.exists()


def test_base_seeds_keep_their_episodes_and_larger_ones_are_refused(root):
    # the mapping recorded datasets depend on (these are what the 0..2**32-1 seeds always gave)
    seeds = [episode_seed(0, 0), episode_seed(5, 1), episode_seed(MAX_BASE_SEED, 3)]
    assert seeds == [1484405855, 1898245334, 408509264]
    with pytest.raises(ValueError, match="base seed"):
        episode_seed(2 ** 32, 0)   # was silently seed 0's episode
    with pytest.raises(ValueError, match="--seed"):
        record_autopilot(RecordConfig(dataset="big", episodes=1, seed=2 ** 32, workers=1, progress=False))
    assert not (root / "racecar" / "big-v0").exists()
    assert main(QUICK + ["--seed", str(MAX_BASE_SEED), "--dataset", "top"]) == 0
    assert load_dataset("top")[0].meta["seed"] == episode_seed(MAX_BASE_SEED, 0)


def failed_line(capsys, args) -> str:
    assert autopilot_main(args + ["--skill", "noisy", "--quiet"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "failed" in ln]
    assert len(lines) == 1, lines
    return lines[0]


def test_autopilot_names_the_tracks_it_drove(tmp_path, capsys):
    # one generated track every episode: its episodes, by env seed (they were listed as gen:0, gen:1)
    line = failed_line(capsys, ["--track", "gen:5:hard", "--episodes", "2"])
    assert line == ("  failed episodes on gen:5:hard (width 1.86), by env seed: 0 (crash, near -111 deg), "
                    "1 (crash, near -111 deg)"), line
    # a generated track per episode: gen:SEED:DIFFICULTY, as --track takes it (the difficulty was left off)
    line = failed_line(capsys, ["--track", "gen", "--difficulty", "hard", "--first-seed", "2", "--episodes", "2"])
    assert line.startswith("  failed tracks: gen:3:hard (crash, width 1.75, ") and "gen:2:hard (crash" in line, line
    # a track file (a generated track saved): the file, not the env seed dressed up as a generator seed
    path = tmp_path / "saved.json"
    path.write_text(json.dumps(generate(5, difficulty="hard").to_dict()))
    line = failed_line(capsys, ["--track", str(path), "--episodes", "2"])
    assert line.startswith(f"  failed episodes on {path} (width 1.86), by env seed: 0 (crash"), line
    assert "gen:" not in line
