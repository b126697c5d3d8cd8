"""learn.sweep on real (in-process, local) Ray with real files: a CI-sized sweep of 2 trials, its run folders, a
rerun that does nothing, a resumed trial, --summarize against a recomputation, and one-line errors before Ray."""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import autopilot_datasets

from learn import load_policy
from learn.sweep import build_plan
from learn.sweep import run as sweep_run
from learn.sweep.__main__ import main
from learn.sweep.grid import SweepError, parse_seeds
from racecar_env import RaceCarEnv
from racecar_env.storage import load_dataset

REPO = Path(__file__).resolve().parent.parent
TRACKS = REPO / "assets" / "tracks"
SMALL = ["--datasets", "tiny_sweep", "--algos", "bc", "--seeds", "0-1", "--cpus", "2",
         "--set", "steps=200", "--set", "eval_every=0", "--set", "eval_episodes=1",
         "--set", "final_eval_episodes=2", "--set", "hidden=64,64", "--reps", "500"]


@pytest.fixture(scope="module")
def datasets_root(tmp_path_factory):
    from teleop.record import RecordConfig
    cfg = RecordConfig(dataset="tiny_sweep", episodes=4, skill="expert", seed=1, progress=False)
    with autopilot_datasets(tmp_path_factory.mktemp("datasets"), cfg) as root:
        yield root


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (started as the sweep starts it): the sweeps then join it instead of paying
    Ray's start-up twice."""
    import ray
    assert sweep_run.connect(None, 2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def sweep(datasets_root, local_ray, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweeps") / "ci"
    assert main([*SMALL, "--out", str(out), "--quiet"]) == 0
    return out


def trial_dirs(out):
    return [out / "trials" / "tiny_sweep" / "bc" / f"s{s}" for s in (0, 1)]


@pytest.fixture
def no_ray(monkeypatch):
    """Fail the test if anything would be scheduled on Ray."""
    def refuse(*a, **k):
        raise AssertionError("Ray was started")
    monkeypatch.setattr(sweep_run, "run_trials", refuse)


@pytest.mark.slow   # shares one CI-sized Ray sweep (~2-4 min)
def test_trials_are_ordinary_run_folders(sweep, capsys):
    for seed, d in enumerate(trial_dirs(sweep)):
        for rel in ("config.json", "eval.json", "checkpoints/best.pt", "checkpoints/last.pt", "train.log"):
            assert (d / rel).is_file(), rel
        assert any(p.name.startswith("events.out.tfevents") for p in (d / "tb").iterdir())
        cfg = json.loads((d / "config.json").read_text())
        assert (cfg["seed"], cfg["steps"], cfg["hidden"], cfg["eval_workers"], cfg["threads"]) == \
            (seed, 200, [64, 64], "1", 1)
        assert cfg["out"] == str(d.resolve())
        final = json.loads((d / "eval.json").read_text())["final"]
        assert final["episodes"] == 2 and final["seed0"] == 20_000
        data = json.loads((d / "dataset.json").read_text())         # the version of the data it trained on
        assert (data["dataset"], data["episodes"], data["steps"], len(data["sha256"])) == \
            ("racecar/tiny_sweep-v0", 4, load_dataset("tiny_sweep").total_steps, 16)
        policy = load_policy(d / "checkpoints" / "best.pt")        # usable as any run's checkpoint
        obs, _ = RaceCarEnv("s_curve").reset(seed=0)
        assert policy.act(obs).shape == (2,)
    manifest = json.loads((sweep / "sweep.json").read_text())
    (grid,) = manifest["grids"]
    assert grid["datasets"] == ["tiny_sweep"] and grid["seeds"] == [0, 1] and "steps=200" in grid["set"]
    assert grid["command"].startswith("python -m learn.sweep --datasets tiny_sweep")
    assert grid["trials"] == ["trials/tiny_sweep/bc/s0", "trials/tiny_sweep/bc/s1"]
    for name in ("summary.md", "summary.csv", "summary.json", "summary.png"):
        assert (sweep / name).stat().st_size > 0


@pytest.mark.slow   # shares one CI-sized Ray sweep (~2-4 min)
def test_rerun_does_nothing_new(sweep, no_ray, capsys):
    mtimes = [(d / "eval.json").stat().st_mtime_ns for d in trial_dirs(sweep)]
    assert main([*SMALL, "--out", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "2 done, 0 to resume, 0 new" in out and "already done" in out
    assert out.strip().splitlines()[-1].startswith(f"results in {sweep}/")
    assert [(d / "eval.json").stat().st_mtime_ns for d in trial_dirs(sweep)] == mtimes


@pytest.mark.slow   # shares one CI-sized Ray sweep (~2-4 min)
def test_summarize_equals_a_recomputation_from_the_trials(sweep, capsys):
    from rliable import metrics
    for name in ("summary.md", "summary.csv", "summary.json", "summary.png"):
        (sweep / name).unlink()
    assert main(["--summarize", str(sweep), "--reps", "500"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("summary of 2 finished trial(s)")
    finals = [json.loads((d / "eval.json").read_text())["final"] for d in trial_dirs(sweep)]
    scores = np.array([f["success_rate"] for f in finals])
    (row,) = json.loads((sweep / "summary.json").read_text())["groups"]
    assert (row["dataset"], row["algo"], row["setting"], row["seeds"]) == ("tiny_sweep", "bc", "", 2)
    assert row["success_per_seed"] == scores.tolist()
    assert row["success_mean"] == pytest.approx(scores.mean())
    assert row["success_iqm"] == pytest.approx(metrics.aggregate_iqm(scores[:, None]))
    for key in ("success_mean", "success_iqm"):
        lo, hi = row[f"{key}_ci"]
        assert 0 <= lo <= row[key] <= hi <= 1
    assert row["crash_rate"] == pytest.approx(np.mean([f["crash_rate"] for f in finals]))
    ttg = [e["time_to_goal"] for f in finals for e in f["per_episode"] if e["outcome"] == "success"]
    assert row["time_to_goal_s"] == (pytest.approx(np.mean(ttg)) if ttg else None)
    walls = [json.loads((d / "eval.json").read_text())["wall_s"] for d in trial_dirs(sweep)]
    assert row["wall_s"] == pytest.approx(np.mean(walls))
    (csv_row,) = list(csv.DictReader((sweep / "summary.csv").open()))
    assert float(csv_row["success_iqm"]) == pytest.approx(row["success_iqm"], rel=1e-5)
    assert "| tiny_sweep | bc | - | 2 |" in (sweep / "summary.md").read_text()
    assert (sweep / "summary.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow   # shares one CI-sized Ray sweep (~2-4 min)
def test_robustness_column_tests_every_trial_from_wider_starts_once(sweep, tmp_path, no_ray, capsys):
    out = tmp_path / "copy"
    shutil.copytree(sweep, out)
    assert main(["--robustness", str(out), "--start-jitter", "0.4,0.2", "--robust-episodes", "2", "--reps", "200"]) == 0
    files = [json.loads((d / "robustness.json").read_text()) for d in trial_dirs(out)]
    assert [f["start_jitter"] for f in files] == [[0.4, 0.2]] * 2 and all(f["episodes"] == 2 for f in files)
    assert [e["seed"] for e in files[0]["per_episode"]] == [20000, 20001]      # the test seeds, wider starts
    (row,) = json.loads((out / "summary.json").read_text())["groups"]
    assert row["robust_seeds"] == 2 and row["robust_jitter"] == [0.4, 0.2]
    assert row["robust_mean"] == pytest.approx(np.mean([f["success_rate"] for f in files]))
    assert "wider starts" in (out / "summary.md").read_text()
    stamp = [(d / "robustness.json").stat().st_mtime_ns for d in trial_dirs(out)]
    capsys.readouterr()
    assert main(["--robustness", str(out), "--start-jitter", "0.4,0.2", "--robust-episodes", "2", "--reps", "200"]) == 0
    assert "0 trial(s) tested" in capsys.readouterr().out                      # resumable: nothing new to do
    assert [(d / "robustness.json").stat().st_mtime_ns for d in trial_dirs(out)] == stamp
    # another jitter becomes the current result; the first is kept, and going back to it tests nothing again
    assert main(["--robustness", str(out), "--start-jitter", "0.1,0.1", "--robust-episodes", "1", "--reps", "200"]) == 0
    assert "2 trial(s) tested" in capsys.readouterr().out
    now = [json.loads((d / "robustness.json").read_text()) for d in trial_dirs(out)]
    assert [f["start_jitter"] for f in now] == [[0.1, 0.1]] * 2 and [f["earlier"] for f in now] == [[f] for f in files]
    assert json.loads((out / "summary.json").read_text())["groups"][0]["robust_jitter"] == [0.1, 0.1]
    assert main(["--robustness", str(out), "--start-jitter", "0.4,0.2", "--robust-episodes", "2", "--reps", "200"]) == 0
    assert "0 trial(s) tested" in capsys.readouterr().out
    back = [json.loads((d / "robustness.json").read_text()) for d in trial_dirs(out)]
    assert [{k: v for k, v in f.items() if k != "earlier"} for f in back] == files
    assert [f["earlier"][0]["start_jitter"] for f in back] == [[0.1, 0.1]] * 2


@pytest.mark.slow   # shares one CI-sized Ray sweep (~2-4 min)
def test_transfer_columns_test_every_trial_on_other_tracks_once(sweep, tmp_path, no_ray, capsys):
    out = tmp_path / "copy"
    shutil.copytree(sweep, out)
    assert main(["--transfer", str(out), "--tracks", "hairpin", "--transfer-episodes", "2", "--reps", "200"]) == 0
    assert "2 evaluation(s)" in capsys.readouterr().out
    # a later call adds a track (held-out generated roads) and leaves the tested one alone
    stamp = [json.loads((d / "transfer.json").read_text())["tracks"]["hairpin"] for d in trial_dirs(out)]
    assert main(["--transfer", str(out), "--tracks", "hairpin,random:test:easy", "--transfer-episodes", "2",
                 "--reps", "200"]) == 0
    assert "2 evaluation(s)" in capsys.readouterr().out
    files = [json.loads((d / "transfer.json").read_text()) for d in trial_dirs(out)]
    assert [f["tracks"]["hairpin"] for f in files] == stamp
    assert all(set(f["tracks"]) == {"hairpin", "random:test:easy"} for f in files)
    assert all(x["episodes"] == 2 for f in files for x in f["tracks"].values())
    assert [e["seed"] for e in files[0]["tracks"]["hairpin"]["per_episode"]] == [20000, 20001]   # test seeds
    assert len({e["track"] for e in files[0]["tracks"]["random:test:easy"]["per_episode"]}) == 2     # a road each
    (row,) = json.loads((out / "summary.json").read_text())["groups"]
    for track in ("hairpin", "random:test:easy"):
        assert row["transfer"][track]["seeds"] == 2
        assert row["transfer"][track]["success_mean"] == pytest.approx(
            np.mean([f["tracks"][track]["success_rate"] for f in files]))
    assert "### On hairpin" in (out / "summary.md").read_text()
    assert main(["--transfer", str(out), "--tracks", "hairpin", "--transfer-episodes", "2", "--reps", "200"]) == 0
    assert "0 evaluation(s)" in capsys.readouterr().out                        # resumable: nothing new to do


@pytest.mark.parametrize("bad, says", [
    (["--tracks", "hairpn"], "--tracks: "),
    (["--tracks", "random:test:brutal"], "--tracks: "),
    (["--tracks", ","], "--tracks: expected one or more tracks"),
    ([], "--transfer needs --tracks"),
])
@pytest.mark.slow   # shares one CI-sized Ray sweep (~2-4 min)
def test_bad_transfer_tracks_fail_in_one_line_before_any_evaluation(bad, says, sweep, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(sweep, out)
    assert main(["--transfer", str(out), *bad]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("python -m learn.sweep: error:") and says in err, err
    assert not any((d / "transfer.json").exists() for d in trial_dirs(out))


@pytest.mark.slow   # shares one CI-sized Ray sweep (~2-4 min)
def test_killed_trial_resumes_and_a_new_seed_is_added(sweep, tmp_path, capsys):
    """A trial without eval.json (killed during its final test) resumes from last.pt; seed 2 is new; the
    finished trial is not touched."""
    out = tmp_path / "copy"
    shutil.copytree(sweep, out)
    s0, s1 = trial_dirs(out)
    (s1 / "eval.json").unlink()
    kept = (s0 / "eval.json").stat().st_mtime_ns
    args = [*SMALL, "--out", str(out)]
    args[args.index("0-1")] = "0-2"
    assert main([*args, "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "3 trials (1 done, 1 to resume, 1 new)" in lines[0]
    assert [ln.split()[0] for ln in lines[1:4]] == ["done", "resume", "new"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "(resumed)" in text and "[3/3]" in text
    assert (s0 / "eval.json").stat().st_mtime_ns == kept
    assert json.loads((s1 / "eval.json").read_text())["steps"] == 200
    assert "resuming at step 200/200" in (s1 / "train.log").read_text()
    assert len(json.loads((out / "sweep.json").read_text())["grids"]) == 2     # the new grid is added
    (row,) = json.loads((out / "summary.json").read_text())["groups"]
    assert row["seeds"] == 3


@pytest.mark.parametrize("bad, says", [
    (["--set", "alhpa=0.1"], "--set alhpa: no such learn setting (did you mean alpha?)"),
    (["--set", "alpha=0.1"], "--set alpha: a setting of td3bc, not of bc"),
    (["--set", "cql.cql_weight=1"], "--set cql.cql_weight: cql is not in --algos bc"),
    (["--set", "batch_size=0"], "--set: batch_size must be >= 1, got 0"),
    (["--set", "seed=3"], "--set seed: the sweep sets it per trial; use --seeds"),
    (["--set", "final_eval_episodes=0"], "final_eval_episodes=0"),
    (["--set", "eval_track=nope"], "--set eval_track=nope: unknown track 'nope'"),
    (["--set", "eval_track=hairpin,random:test:brutal"], "--set eval_track=random:test:brutal: generator: unknown "
                                                         "difficulty 'brutal'"),
    (["--seeds", "3-1"], "--seeds"),
    (["--seeds", "0-1000"], "--seeds: 1,001 seeds; a sweep takes at most 1,000"),   # a typo for 0-100, say
    (["--seeds", "9" * 20], f"--seeds: seed {'9' * 20} is out of range: seeds are 0..2**63-1"),
    (["--seeds", "0-999", "--set", "steps=" + ",".join(map(str, range(1, 12)))],
     "--seeds/--set: the grid has 11,000 trials"),
    (["--algos", "bc,ppo"], "--algos: ppo"),
    (["--cpus", "1", "--cpus-per-trial", "2"], "--cpus-per-trial 2: the local Ray has 1 CPUs"),
])
def test_bad_settings_fail_in_one_line_before_ray(bad, says, tmp_path, no_ray, capsys):
    out = tmp_path / "never"
    assert main(["--datasets", "tiny_sweep", "--algos", "bc", "--out", str(out), *bad]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("python -m learn.sweep: error:") and says in err
    assert not out.exists()


@pytest.mark.slow   # shares one CI-sized Ray sweep (~2-4 min)
def test_changed_settings_into_a_used_folder_are_refused(sweep, no_ray, capsys):
    args = [*SMALL, "--out", str(sweep)]
    args[args.index("steps=200")] = "steps=300"
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "was run with steps=200 (now 300)" in err


@pytest.mark.slow   # shares one CI-sized Ray sweep (~2-4 min)
def test_transfer_keeps_earlier_tracks_and_tests_an_edited_track_file_again(sweep, tmp_path, no_ray, capsys):
    """A later --transfer adds its tracks (at its own episode count) to every trial's results and to summary.md;
    a track file whose content changed is tested again and replaces its old result under the same name."""
    from racecar_env.tracks import load_track
    out = tmp_path / "copy"
    shutil.copytree(sweep, out)
    road = tmp_path / "road.json"
    road.write_text((TRACKS / "hairpin.json").read_text())
    assert main(["--transfer", str(out), "--tracks", f"{road},gen:3", "--transfer-episodes", "1", "--reps", "200"]) == 0
    assert "4 evaluation(s)" in capsys.readouterr().out
    first = [json.loads((d / "transfer.json").read_text())["tracks"] for d in trial_dirs(out)]
    assert main(["--transfer", str(out), "--tracks", "s_curve", "--transfer-episodes", "2", "--reps", "200"]) == 0
    assert "2 evaluation(s)" in capsys.readouterr().out
    files = [json.loads((d / "transfer.json").read_text())["tracks"] for d in trial_dirs(out)]
    assert [{t: f[t] for t in (str(road), "gen:3")} for f in files] == first          # kept, untouched
    assert [[f[t]["episodes"] for t in (str(road), "gen:3", "s_curve")] for f in files] == [[1, 1, 2]] * 2
    (row,) = json.loads((out / "summary.json").read_text())["groups"]
    assert list(row["transfer"]) == [str(road), "gen:3", "s_curve"]
    md = (out / "summary.md").read_text()
    assert all(f"### On {t} " in md for t in (road, "gen:3", "s_curve"))
    road.write_text((TRACKS / "s_curve.json").read_text())             # the same path, another track
    assert main(["--transfer", str(out), "--tracks", str(road), "--transfer-episodes", "1", "--reps", "200"]) == 0
    text = capsys.readouterr().out
    assert "2 evaluation(s)" in text and "the track's content changed" in text
    files = [json.loads((d / "transfer.json").read_text())["tracks"] for d in trial_dirs(out)]
    assert all(list(f) == [str(road), "gen:3", "s_curve"] for f in files)                 # replaced, not added
    assert {e["track_id"] for f in files for e in f[str(road)]["per_episode"]} == {load_track("s_curve").track_id}
    assert main(["--transfer", str(out), "--tracks", str(road), "--transfer-episodes", "1", "--reps", "200"]) == 0
    assert "0 evaluation(s)" in capsys.readouterr().out


@pytest.mark.slow   # shares one CI-sized Ray sweep (~2-4 min)
def test_a_dataset_changed_since_the_trials_trained_is_refused(sweep, tmp_path, monkeypatch, no_ray, capsys):
    """Episodes appended to the dataset after the sweep: a rerun (even one adding only a new seed) would skip or
    pool trials trained on other data, so it is refused in one line naming the dataset and what changed."""
    from teleop.record import RecordConfig, record_autopilot
    out = tmp_path / "copy"
    shutil.copytree(sweep, out)
    root = tmp_path / "datasets"                       # a copy: the module's dataset stays as the trials saw it
    shutil.copytree(os.environ["MINARI_DATASETS_PATH"], root)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    assert main([*SMALL, "--out", str(out), "--dry-run"]) == 0              # unchanged: both trials done
    assert "2 done" in capsys.readouterr().out
    record_autopilot(RecordConfig(dataset="tiny_sweep", episodes=1, seed=9, workers=1, progress=False))
    for seeds in ("0-1", "2"):
        args = [*SMALL, "--out", str(out)]
        args[args.index("0-1")] = seeds
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("python -m learn.sweep: error: dataset racecar/tiny_sweep-v0 "
                                                        "changed since trials/tiny_sweep/bc/s0 trained on it (4 "
                                                        "episodes,"), err
        assert "; 5 episodes," in err and "use another --out" in err
    assert not (out / "trials" / "tiny_sweep" / "bc" / "s2").exists()


def test_datasets_and_out_are_checked_before_ray(tmp_path, no_ray, capsys):
    """--dry-run opens every dataset; --out must be a folder (or not exist yet), and a track file given as the
    evaluation track is read up front, its one-line error naming the file."""
    base = ["--algos", "bc", "--seeds", "0"]
    taken = tmp_path / "track.json"
    taken.write_text('{"walls": [')
    cases = [(["--datasets", "nope", "--dry-run", "--out", str(tmp_path / "n")],
              "dataset racecar/nope-v0: not found under"),
             (["--datasets", "nope", "--out", str(taken)], f"--out {taken} is a file, expected a sweep folder"),
             (["--datasets", "nope", "--out", str(taken / "sub"), "--dry-run"],
              f"--out {taken / 'sub'}: {taken} is a file, expected a sweep folder"),
             (["--datasets", "nope", "--set", f"eval_track={taken}", "--out", str(tmp_path / "n")],
              f"--set eval_track={taken}: track {taken}: not valid JSON"),
             (["--datasets", "nope", "--out", str(tmp_path / ("a" * 300)), "--dry-run"],   # the OS refuses the name
              f"--out {tmp_path / ('a' * 300)}: not a usable folder path (File name too long)"),
             # a cluster address that is no address, or where nothing listens: refused before sweep.json is written
             (["--datasets", "nope", "--address", "bad", "--out", str(tmp_path / "n")],
              "--address bad: expected auto, HOST:PORT or ray://HOST:PORT"),
             (["--datasets", "nope", "--address", "127.0.0.1:1", "--out", str(tmp_path / "n")],
              "--address 127.0.0.1:1: cannot reach Ray there")]
    for args, says in cases:
        assert main([*base, *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("python -m learn.sweep: error:") and says in err, err
    assert taken.read_text() == '{"walls": [' and not (tmp_path / "n").exists()


def test_a_good_evaluation_track_file_passes_the_dry_run(datasets_root, tmp_path, no_ray, capsys):
    track = tmp_path / "road.json"
    track.write_text((TRACKS / "hairpin.json").read_text())
    assert main(["--datasets", "tiny_sweep", "--algos", "bc", "--seeds", "0", "--set", f"eval_track={track}",
                 "--dry-run", "--out", str(tmp_path / "sw")]) == 0
    assert "1 trial (0 done, 0 to resume, 1 new)" in capsys.readouterr().out


def test_a_relative_evaluation_track_file_is_given_to_the_trials_by_its_absolute_path(tmp_path, monkeypatch):
    """Trials run in Ray's working directories, not the driver's: a relative --set eval_track names the file the
    driver checked, by its absolute path; the folder name keeps the spelling given."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t").mkdir()
    shutil.copy(TRACKS / "hairpin.json", tmp_path / "t" / "oneturn.json")
    plan = build_plan("sw", ["s_expert"], ["bc"], [0], ["eval_track=t/oneturn.json,hairpin"])
    assert [t.rel for t in plan.trials] == ["trials/s_expert/bc/eval_track=t/oneturn.json/s0",
                                            "trials/s_expert/bc/eval_track=hairpin/s0"]
    assert [t.config(plan.out).run.eval_track for t in plan.trials] == [str(tmp_path / "t" / "oneturn.json"),
                                                                         "hairpin"]


@pytest.fixture(scope="module")
def relative_track_sweep(datasets_root, local_ray, tmp_path_factory):
    """A one-trial sweep started from a folder holding t/oneturn.json (a copy of hairpin), given as a relative
    --set eval_track and a relative --out."""
    here = tmp_path_factory.mktemp("relative")
    (here / "t").mkdir()
    shutil.copy(TRACKS / "hairpin.json", here / "t" / "oneturn.json")
    args = [*SMALL, "--set", "eval_track=t/oneturn.json", "--out", "sw", "--quiet"]
    args[args.index("0-1")] = "0"
    with pytest.MonkeyPatch.context() as m:
        m.chdir(here)
        assert main(args) == 0
    return here


@pytest.mark.slow   # a one-trial Ray sweep (~1-2 min)
def test_a_relative_evaluation_track_file_reaches_every_trial(relative_track_sweep):
    here = relative_track_sweep
    trial = here / "sw" / "trials" / "tiny_sweep" / "bc" / "s0"
    assert json.loads((trial / "config.json").read_text())["eval_track"] == str(here / "t" / "oneturn.json")
    hairpin = json.loads((TRACKS / "hairpin.json").read_text())["name"]
    assert load_policy(trial / "checkpoints" / "best.pt").track.name == hairpin     # embedded, as any track file
    assert json.loads((trial / "eval.json").read_text())["final"]["episodes"] == 2


@pytest.mark.slow   # a one-trial Ray sweep (~1-2 min)
def test_transfer_keys_a_track_file_by_its_absolute_path(relative_track_sweep, tmp_path, monkeypatch, capsys):
    """t/oneturn.json and its absolute path are one track, one column; a transfer.json written when files were
    keyed as typed keeps its result under the absolute path (nothing tested twice)."""
    monkeypatch.chdir(relative_track_sweep)
    out = tmp_path / "copy"
    shutil.copytree("sw", out)
    path = str(relative_track_sweep / "t" / "oneturn.json")
    assert main(["--transfer", str(out), "--tracks", f"t/oneturn.json,{path}", "--transfer-episodes", "1",
                 "--reps", "200"]) == 0
    assert "1 evaluation(s)" in capsys.readouterr().out
    result = out / "trials" / "tiny_sweep" / "bc" / "s0" / "transfer.json"
    tested = json.loads(result.read_text())["tracks"]
    assert list(tested) == [path]
    result.write_text(json.dumps({"seed0": 20000, "tracks": {"t/oneturn.json": tested[path]}}))
    assert main(["--transfer", str(out), "--tracks", "t/oneturn.json", "--transfer-episodes", "1",
                 "--reps", "200"]) == 0
    assert "0 evaluation(s)" in capsys.readouterr().out
    assert json.loads(result.read_text())["tracks"] == {path: tested[path]}
    (row,) = json.loads((out / "summary.json").read_text())["groups"]
    assert list(row["transfer"]) == [path]


def test_grid_folders_settings_and_scoped_keys(tmp_path):
    plan = build_plan(tmp_path, ["s_expert"], ["bc", "td3bc"], [0, 1],
                      ["alpha=0.1,0.5", "steps=300", "td3bc.bc_steps=100", "hidden=64,64/32,32"])
    rels = [t.rel for t in plan.trials]
    assert rels[:4] == ["trials/s_expert/bc/hidden=64x64/s0", "trials/s_expert/bc/hidden=64x64/s1",
                        "trials/s_expert/bc/hidden=32x32/s0", "trials/s_expert/bc/hidden=32x32/s1"]
    assert "trials/s_expert/td3bc/alpha=0.5,hidden=32x32/s1" in rels and len(rels) == 4 + 8
    td3 = plan.trials[-1].config(tmp_path)
    assert (td3.algo.bc_steps, td3.algo.steps, td3.algo.alpha, td3.algo.hidden) == (100, 300, 0.5, (32, 32))
    assert plan.trials[0].config(tmp_path).algo.bc_steps == 0
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
    cql = build_plan(tmp_path, ["s_noisy"], ["cql"], [0], ["cql_lagrange=true,false"]).trials
    assert [t.config(tmp_path).algo.cql_lagrange for t in cql] == [True, False]
    with pytest.raises(SweepError, match="cql_lagrange must be true or false, got 'maybe'"):
        build_plan(tmp_path, ["s_noisy"], ["cql"], [0], ["cql_lagrange=maybe"])
    with pytest.raises(SweepError, match="given twice"):
        build_plan(tmp_path, ["s_expert"], ["bc"], [0], ["steps=1", "steps=2"])


def test_a_trial_run_before_a_setting_existed_still_counts_as_done(tmp_path):
    """A folder whose config.json predates a setting (the file lacks it) ran with its default: it is done, not a
    settings clash; a setting that really differs is still refused by name."""
    from learn.sweep.grid import DONE, trial_status
    plan = build_plan(tmp_path, ["s_noisy"], ["cql"], [0], ["steps=300"])
    (trial,) = plan.trials
    folder = tmp_path / trial.rel
    folder.mkdir(parents=True)
    saved = trial.config(tmp_path).to_dict()
    del saved["cql_max_target_backup"]
    (folder / "config.json").write_text(json.dumps(saved))
    (folder / "eval.json").write_text(json.dumps({"steps": trial.config(tmp_path).total_steps}))
    assert trial_status(plan, trial) == DONE
    (folder / "config.json").write_text(json.dumps({**saved, "cql_weight": 1.0}))
    with pytest.raises(SweepError, match="cql_weight=1"):
        trial_status(plan, trial)


def test_confidence_intervals_are_the_same_on_every_rebuild():
    """The README's tables are pasted from summary.md: the same scores must give the same CI every time, whatever
    numpy's global generator was doing, and computing them must not move that generator."""
    from learn.sweep.summary import bootstrap_interval
    scores = np.array([0.68, 0.74, 1.0, 0.44, 0.0])
    first = bootstrap_interval(scores, 500)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    again = bootstrap_interval(scores, 500)
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def trial_folders(root: Path, scores: dict) -> Path:
    """Sweep trial folders under root with these per-seed final test scores ({(dataset, algo): [score or None]};
    None = unfinished): 2 test episodes each, 10 s to the goal, a first >= 90% evaluation when the score is."""
    for (dataset, algo), per_seed in scores.items():
        for seed, score in enumerate(per_seed):
            folder = root / "trials" / dataset / algo / f"s{seed}"
            folder.mkdir(parents=True)
            (folder / "config.json").write_text(json.dumps({"dataset": dataset, "algo": algo, "seed": seed}))
            final = None if score is None else {
                "success_rate": score, "crash_rate": 1 - score, "episodes": 2,
                "per_episode": [{"outcome": "success", "time_to_goal": 10.0}] * int(2 * score)}
            first90 = {"step": 1000, "wall_s": 30.0 * (seed + 1)} if score and score >= 0.9 else None
            (folder / "eval.json").write_text(json.dumps({"final": final, "wall_s": 60.0 * (seed + 1),
                                                          "first_eval_ge_90pct": first90}))
    return root


def test_summary_pivot_is_the_results_table(tmp_path):
    """summary.md ends with the table the README shows: a row per dataset, a column per algorithm, each cell the
    mean success over the finished seeds with its CI and n; a trial without a final test is counted unfinished."""
    from learn.sweep.summary import summarize
    trial_folders(tmp_path, {("clean", "bc"): [1.0, 1.0], ("clean", "iql"): [1.0, 0.5], ("messy", "bc"): [0.0, 0.5],
                             ("messy", "iql"): [1.0, None]})
    summarize(tmp_path, reps=200)
    md = (tmp_path / "summary.md").read_text()
    table = md[md.index("### Success"):].splitlines()
    assert table[2] == "| dataset | bc | iql |"
    assert table[4].startswith("| clean | **100%** [100, 100] n=2 | **75%** [50, 100] n=2 |")
    assert table[5].startswith("| messy | **25%** [0, 50] n=2 | **100%** [100, 100] n=1 |")
    assert "| clean | 10.00 s / 1.5 min / 0.8 min (2/2) | 10.00 s / 1.5 min / 0.5 min (1/2) |" in md
    assert "| messy | iql | - | 1 (+1 unfinished) |" in md
    assert "Counted as unfinished" not in md


def test_compare_sweeps_draws_each_sweeps_bars_side_by_side(tmp_path):
    """benchmarks/compare_sweeps.py: two sweeps of the same algorithm become one picture, a bar per (sweep, label),
    the datasets in the order asked; a folder that is not a sweep is refused in one line."""
    a = trial_folders(tmp_path / "a", {("clean", "cql"): [1.0, 0.5], ("messy", "cql"): [0.0, 0.5]})
    b = trial_folders(tmp_path / "b", {("messy", "cql"): [1.0, 1.0]})
    script = REPO / "benchmarks" / "compare_sweeps.py"
    out = tmp_path / "cmp.png"
    p = subprocess.run([sys.executable, script, f"{a}:before", f"{b}:after", "--datasets", "messy,clean",
                        "--out", out], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and out.read_bytes()[:4] == b"\x89PNG", p.stderr
    assert p.stdout.strip().splitlines()[-1] == f"wrote {out}"
    p = subprocess.run([sys.executable, script, str(tmp_path / "nothing"), "--out", out], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode != 0 and "is it a sweep folder" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_a_trial_whose_report_does_not_read_is_named_not_silently_dropped(tmp_path, capsys):
    """A damaged eval.json (a disk filled mid-write, a hand edit) counts the trial as unfinished, and --summarize
    says which file it was, in the table and on the terminal, instead of showing n-1 seeds without a word."""
    for seed in (0, 1):
        folder = tmp_path / "trials" / "d" / "bc" / f"s{seed}"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"dataset": "d", "algo": "bc", "seed": seed}))
        (folder / "eval.json").write_text(json.dumps({"final": {"success_rate": 1.0, "crash_rate": 0.0,
                                                                "episodes": 1, "per_episode": []}, "wall_s": 1.0}))
    (tmp_path / "trials" / "d" / "bc" / "s1" / "eval.json").write_text('{"final": {"success_')
    assert main(["--summarize", str(tmp_path), "--reps", "200"]) == 0
    out = capsys.readouterr().out
    assert "warning: trials/d/bc/s1/eval.json is not readable JSON; counted as unfinished" in out, out
    md = (tmp_path / "summary.md").read_text()
    assert "| d | bc | - | 1 (+1 unfinished) |" in md
    assert "Counted as unfinished (rerunning the sweep command tests them again): trials/d/bc/s1/eval.json" in md


def test_every_distinct_value_gets_its_own_trial_folder(tmp_path):
    """Two values that "g" wrote alike (0.9999999 and 1) shared one folder: the second "resumed" the first's run and
    never trained. Each value now has its own folder; ordinary values keep the names existing sweeps have, so
    those still resume; values equal once parsed (1 and 1.0) are one trial."""
    from learn.sweep.grid import fmt
    plan = build_plan(tmp_path, ["s_expert"], ["td3bc"], [0],
                      ["gamma=0.9999999,1,1.0", "actor_lr=0.0003,0.00030000001"])
    rels = [t.rel for t in plan.trials]
    assert rels == ["trials/s_expert/td3bc/gamma=0.9999999,actor_lr=0.0003/s0",
                    "trials/s_expert/td3bc/gamma=0.9999999,actor_lr=0.00030000001/s0",
                    "trials/s_expert/td3bc/gamma=1,actor_lr=0.0003/s0",
                    "trials/s_expert/td3bc/gamma=1,actor_lr=0.00030000001/s0"]
    assert [(c.algo.gamma, c.algo.actor_lr) for c in (t.config(tmp_path) for t in plan.trials)] == \
        [(0.9999999, 0.0003), (0.9999999, 0.00030000001), (1.0, 0.0003), (1.0, 0.00030000001)]
    # the folder names sweeps already have (format "g")
    assert [fmt(v) for v in (0.0003, 1e-4, 3e-5, 0.99, 0.1, 1.0, 2.5, 256, (64, 64), True)] == \
        ["0.0003", "0.0001", "3e-05", "0.99", "0.1", "1", "2.5", "256", "64x64", "True"]
    assert fmt(1.2345678e-05) == "1.2345678e-05" and fmt(123456789.0) == "123456789.0"


def test_trials_that_would_share_a_folder_are_refused_before_anything_runs(tmp_path, no_ray, capsys):
    """Two datasets whose folder names coincide (a '/' of a Minari id becomes '_'): one line, nothing written."""
    with pytest.raises(SweepError, match="--datasets/--set: trials ns/a-v0 bc s0 and ns_a-v0 bc s0 would share "
                                         "the folder trials/ns_a-v0/bc/s0"):
        build_plan(tmp_path, ["ns/a-v0", "ns_a-v0"], ["bc"], [0], [])
    out = tmp_path / "never"
    assert main(["--datasets", "ns/a-v0,ns_a-v0", "--algos", "bc", "--seeds", "0", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "would share the folder trials/ns_a-v0/bc/s0" in err, err
    assert not out.exists()


def test_a_trial_folder_name_longer_than_the_file_system_takes_is_refused(tmp_path):
    """It failed only when its trial ran, with an OSError in train.log."""
    with pytest.raises(SweepError, match="--set: trial .*: its folder name hidden=64x64x.* is longer than 255 bytes"):
        build_plan(tmp_path, ["s_expert"], ["bc"], [0], ["hidden=" + ",".join(["64"] * 100) + "/32"])


def test_a_folder_run_with_another_value_names_both_values_visibly(tmp_path):
    """The folder gamma=1 of a sweep that trained 0.9999999 in it: the refusal shows the two values apart (it said
    "was run with gamma=1 (now 1)")."""
    from learn.sweep.grid import trial_status
    plan = build_plan(tmp_path, ["s_expert"], ["td3bc"], [0], ["gamma=0.99,1"])
    trial = plan.trials[1]
    assert trial.rel == "trials/s_expert/td3bc/gamma=1/s0"
    (tmp_path / trial.rel).mkdir(parents=True)
    (tmp_path / trial.rel / "config.json").write_text(json.dumps({**trial.config(tmp_path).to_dict(),
                                                                  "gamma": 0.9999999}))
    with pytest.raises(SweepError, match=r"was run with gamma=0\.9999999 \(now 1\)"):
        trial_status(plan, trial)


def test_seeds_are_bounded_before_the_grid_is_built():
    from learn.sweep.grid import MAX_SEEDS
    assert parse_seeds(f"0-{MAX_SEEDS - 1}") == list(range(MAX_SEEDS))
    assert parse_seeds(str(2 ** 63 - 1)) == [2 ** 63 - 1]
    for text, says in [("0-1000000", "--seeds: 1,000,001 seeds"), (str(2 ** 63), f"seed {2 ** 63} is out of range")]:
        with pytest.raises(SweepError, match=re.escape(says)):
            parse_seeds(text)
    with pytest.raises(SweepError, match="seed -1 is out of range"):   # the API takes seeds too
        build_plan("sw", ["s_expert"], ["bc"], [-1], [])


def test_a_sweep_folder_the_os_cannot_create_is_one_line(datasets_root, no_ray, capsys):
    out = Path("/proc/nonexistent/sw")   # /proc takes no new folders, even from root
    if not Path("/proc").is_dir() or out.parent.exists():
        pytest.skip("needs Linux /proc")
    assert main(["--datasets", "tiny_sweep", "--algos", "bc", "--seeds", "0", "--set", "steps=10", "--cpus", "1",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"python -m learn.sweep: error: --out {out}: cannot write the sweep folder there (No such file or " \
                  f"directory)", err


def test_failures_a_rerun_cannot_fix_are_told_apart():
    """A damaged checkpoint or a settings conflict fails every rerun: the last line names the folder to move or
    delete; other failures keep "rerun to retry". The per-trial line shows the message, not the module path."""
    from ray.exceptions import RayTaskError

    from learn.checkpoint import CheckpointError
    from learn.config import ConfigError
    from learn.sweep.__main__ import _failed
    damaged = CheckpointError("/s/last.pt: not a readable checkpoint (RuntimeError: bad zip)")
    for e, stuck in [(damaged, True), (ConfigError("--out /s already holds config.json"), True),
                     (RuntimeError("worker died"), False), (MemoryError(), False)]:
        wrapped = RayTaskError("run_trial", "Traceback ...", e).as_instanceof_cause()   # as Tune returns it
        assert sweep_run.rerun_cannot_fix(e) is stuck and sweep_run.rerun_cannot_fix(wrapped) is stuck, e
    assert sweep_run._message(f"learn.checkpoint.CheckpointError: {damaged}") == str(damaged)
    assert sweep_run._message("torch.OutOfMemoryError: CUDA out of memory") == "OutOfMemoryError: CUDA out of memory"
    assert sweep_run._message("ValueError: x") == "ValueError: x"
    assert sweep_run._message("12:00:01 step 5: loss 0.1") == "12:00:01 step 5: loss 0.1"
    assert _failed(2, []) == "; 2 trial(s) failed (rerun the command to retry them)"
    assert _failed(1, ["/s/trials/d/bc/s0"]).endswith("move or delete /s/trials/d/bc/s0, then rerun the command")
    assert "rerun the command to retry" not in _failed(1, ["/s/trials/d/bc/s0"])
    assert _failed(3, ["/a", "/b"]).startswith("; 3 trial(s) failed: 1 may pass on a rerun, 2 cannot (")


@pytest.mark.slow   # shares one CI-sized Ray sweep (~2-4 min)
def test_a_damaged_checkpoint_is_reported_as_a_folder_to_clear(sweep, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(sweep, out)
    s0, s1 = trial_dirs(out)
    with open(s1 / "checkpoints" / "last.pt", "r+b") as f:
        f.truncate(1000)
    (s1 / "eval.json").unlink()
    assert main([*SMALL, "--out", str(out)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    (failed,) = [ln for ln in lines if "FAILED" in ln]
    assert f"FAILED ({s1.resolve()}/checkpoints/last.pt: not a readable checkpoint" in failed, failed
    assert "learn.checkpoint" not in failed and "CheckpointError" not in failed
    assert lines[-1].endswith(f"1 trial(s) failed in a way a rerun cannot fix (a damaged checkpoint, or settings "
                              f"that conflict with the trial's folder; see its train.log): move or delete "
                              f"{s1.resolve()}, then rerun the command"), lines[-1]


@pytest.mark.slow   # a one-trial Ray sweep stopped by Ctrl-C (~30 s)
def test_ctrl_c_stops_a_sweep_says_so_at_once_and_prints_the_command_that_continues(datasets_root, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from conftest import python_with_ctrl_c
    out = tmp_path / "interrupted"
    args = ["-m", "learn.sweep", "--datasets", "tiny_sweep", "--algos", "bc", "--seeds", "0", "--cpus", "1",
            "--set", "steps=10000000", "--set", "eval_every=0", "--set", "hidden=64,64", "--out", str(out)]
    env = {**os.environ, "MINARI_DATASETS_PATH": str(datasets_root), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(python_with_ctrl_c(*args), cwd=Path(__file__).resolve().parent.parent, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = out / "trials" / "tiny_sweep" / "bc" / "s0" / "train.log"
    try:
        deadline = time.monotonic() + 120
        while not (log.is_file() and "starting at step" in log.read_text()):   # the trial is training
            assert proc.poll() is None and time.monotonic() < deadline, "the trial never started"
            time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        text, _ = proc.communicate(timeout=90)
        stopped_after = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, text
    assert "stopping: the running trials are being stopped" in text
    assert "interrupted: every finished trial is kept" in text and f"--out {out}" in text
    assert "Traceback" not in text
    assert stopped_after < 60, f"Ctrl-C took {stopped_after:.0f} s to stop the sweep"
    print(f"sweep stopped {stopped_after:.1f} s after Ctrl-C", file=sys.stderr)
