"""The main job end to end at a reduced size: demos -> BC -> TD3+BC -> evaluation -> MP4s, then a rerun reuses it;
what a rerun may reuse, and what --fresh may delete."""
import json
import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest

ROOT = Path(__file__).resolve().parent.parent
# the smallest run that still goes through every stage (it does not learn to drive)
TINY = ("--demos", "2", "--bc-steps", "20", "--steps", "20", "--eval-every", "0", "--eval-episodes", "1",
        "--videos", "1", "--quiet")


def env_for(tmp_path) -> dict:
    return {**os.environ, "MINARI_DATASETS_PATH": str(tmp_path / "datasets"), "SDL_VIDEODRIVER": "dummy"}


def quickstart(tmp_path, *args, out="run") -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "quickstart.py"), "--out", str(tmp_path / out), *args]
    return subprocess.run(cmd, env=env_for(tmp_path), capture_output=True, text=True, timeout=600)


def run_quickstart(tmp_path, *extra):
    res = quickstart(tmp_path, "--demos", "6", "--bc-steps", "1000", "--steps", "300", "--eval-episodes", "4",
                     "--videos", "1", *extra)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout


def refused(res: subprocess.CompletedProcess) -> str:
    """The one error line of a refused run (pybullet's C library prints its build time on import: not ours)."""
    lines = [ln for ln in res.stderr.strip().splitlines() if not ln.startswith("pybullet build time")]
    assert res.returncode == 2 and len(lines) == 1, res.stdout[-2000:] + res.stderr[-2000:]
    assert lines[0].startswith("python quickstart.py: error: ")
    return lines[0]


def record(tmp_path, dataset, *args):
    """Real demos recorded by teleop: short episodes (20 steps) keep it quick."""
    cmd = [sys.executable, "-m", "teleop", "--driver", "autopilot", "--dataset", dataset, "--max-episode-steps", "20",
           "--workers", "1", "--quiet", *args]
    res = subprocess.run(cmd, cwd=ROOT, env=env_for(tmp_path), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr


def stored(tmp_path, dataset) -> list[dict]:
    """Each episode's stored metadata, read back from disk."""
    meta = sorted((tmp_path / "datasets" / "racecar" / f"{dataset}-v0" / "data").glob("[0-9]*/metadata.json"))
    return [json.loads(p.read_text()) for p in meta]


@pytest.mark.slow
def test_quickstart_end_to_end_and_rerun_reuses(tmp_path):
    out = run_quickstart(tmp_path)
    run = tmp_path / "run"
    assert out.strip().splitlines()[-1] == f"Results are in {run}"
    final = json.loads((run / "td3bc" / "eval.json").read_text())["final"]
    # 6 demos and 1k BC updates already drive most of the S: an agent that does not learn (wrong inputs, wrong
    # pairing of observations and actions) makes ~0 progress from the start
    assert final["episodes"] == 4 and final["mean_progress"] > 0.5, final
    assert (run / "td3bc" / "checkpoints" / "best.pt").is_file()
    videos = sorted((run / "videos").glob("*.mp4"))
    assert len(videos) == 1 and sum(1 for _ in iio.imiter(videos[0])) > 20  # decodes, and is a real episode
    assert (run / "videos" / "trajectories.png").stat().st_size > 10_000
    info = json.loads((run / "videos" / "eval_info.json").read_text())
    assert info["episodes"] == 1 and len(info["per_episode"]) == 1

    again = run_quickstart(tmp_path)
    assert "reusing dataset" in again and "reusing the finished run" in again
    assert "s.\n" in out and "reused" not in out   # a first call's time is the whole job's ...
    assert "(this call; reused from an earlier one: demonstrations, training)." in again   # ... a rerun's is not


def test_a_dataset_the_quickstart_did_not_record_is_never_deleted_nor_used(tmp_path):
    """--fresh deletes only expert autopilot demos on the quickstart's track; other data is refused, kept as it was."""
    record(tmp_path, "mine", "--skill", "keyboard-sloppy", "--episodes", "2")       # human-style, on s_curve
    record(tmp_path, "hairpin_demos", "--track", "hairpin", "--episodes", "1")      # expert, on another track
    before = {name: stored(tmp_path, name) for name in ("mine", "hairpin_demos")}
    assert [m["driver"] for m in before["mine"]] == ["keyboard-pilot"] * 2
    for name, what in (("mine", "2 keyboard-pilot (keyboard-sloppy) on s_curve"),
                       ("hairpin_demos", "1 autopilot (expert) on hairpin")):
        line = refused(quickstart(tmp_path, "--fresh", "--dataset", name, *TINY))
        assert f"would delete dataset {name}" in line and what in line and "another --dataset" in line, line
        line = refused(quickstart(tmp_path, "--dataset", name, *TINY))   # nor recorded into, nor trained on
        assert f"dataset {name} holds episodes the quickstart does not record ({what}" in line, line
    assert {name: stored(tmp_path, name) for name in before} == before
    assert not (tmp_path / "run").exists()   # refused before any step


def test_expert_demos_of_another_seed_or_count_are_not_silently_used(tmp_path):
    record(tmp_path, "qs", "--episodes", "2", "--seed", "5")
    for args, what in ((("--seed", "0"), "holds 2 demos recorded with --seed 5, this run asks for 2 with --seed 0"),
                       (("--seed", "5", "--demos", "1"), "holds 2 demos recorded with --seed 5, this run asks for 1")):
        line = refused(quickstart(tmp_path, "--dataset", "qs", *TINY, *args))   # later flags win
        assert what in line and "--fresh" in line, line
    assert len(stored(tmp_path, "qs")) == 2


@pytest.mark.slow
def test_rerun_with_other_settings_is_not_served_from_the_old_run(tmp_path):
    res = quickstart(tmp_path, *TINY)
    assert res.returncode == 0, res.stderr[-3000:]
    result = tmp_path / "run" / "td3bc" / "eval.json"
    first = result.read_text()
    for args, what in ((("--eval-episodes", "2"), "--eval-episodes 1 -> 2"),
                       (("--track", "hairpin"), "--track s_curve -> hairpin"),
                       (("--demos", "3"), "--demos 2 -> 3")):
        line = refused(quickstart(tmp_path, *TINY, *args))
        assert "holds a quickstart run made with other settings" in line and what in line and "--fresh" in line, line
    assert result.read_text() == first
    assert [p.name for p in (tmp_path / "datasets" / "racecar").glob("*-v0")] == ["quickstart_s_expert-v0"]

    # --fresh starts over with the new settings, its own dataset (expert demos on s_curve) deleted and re-recorded
    res = quickstart(tmp_path, "--fresh", *TINY, "--eval-episodes", "2", "--seed", "1")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "2 seeded test episodes" in res.stdout
    assert json.loads(result.read_text())["final"]["episodes"] == 2
    assert [m["seed_base"] for m in stored(tmp_path, "quickstart_s_expert")] == [1, 1]


@pytest.mark.slow
def test_relative_paths_mean_the_folder_the_command_was_typed_in(tmp_path):
    """The steps run in the project folder: a relative --track, --out and MINARI_DATASETS_PATH still name what they
    name where the user typed the command, and quickstart.json records the track file by its absolute path."""
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "oneturn.json").write_text((ROOT / "assets" / "tracks" / "hairpin.json").read_text())
    cmd = [sys.executable, str(ROOT / "quickstart.py"), "--track", "t/oneturn.json", "--out", "qs", *TINY]
    res = subprocess.run(cmd, cwd=tmp_path, env={**env_for(tmp_path), "MINARI_DATASETS_PATH": "datasets"},
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    run = tmp_path / "qs"
    assert res.stdout.strip().splitlines()[-1] == f"Results are in {run}"
    assert json.loads((run / "quickstart.json").read_text())["track"] == str(tmp_path / "t" / "oneturn.json")
    assert json.loads((run / "td3bc" / "eval.json").read_text())["final"]["episodes"] == 1
    assert len(stored(tmp_path, "quickstart_oneturn_expert")) == 2
