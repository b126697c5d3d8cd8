"""--eval-track as learn reads it: a random spec is recognised exactly (random[:train|test[:DIFFICULTY]]) and checked
before the run folder is written; anything else is a track, loaded and embedded in the checkpoint, even a file whose
name starts with "random". Real dataset, real training, pybullet DIRECT."""
import json
import shutil

import pytest
from conftest import autopilot_datasets

from learn.__main__ import main
from learn.checkpoint import load_checkpoint
from learn.evaluate import main as eval_main
from racecar_env.tracks import TRACKS_DIR

HAIRPIN = json.loads((TRACKS_DIR / "hairpin.json").read_text())["name"]
# the smallest run that still ends in a best.pt and a final test
TINY = ["--dataset", "tiny_specs", "--algo", "bc", "--steps", "20", "--eval-every", "0", "--eval-episodes", "1",
        "--final-eval-episodes", "1", "--threads", "1", "--eval-workers", "1", "--quiet"]


@pytest.fixture(scope="module")
def datasets_root(tmp_path_factory):
    from teleop.record import RecordConfig
    cfg = RecordConfig(dataset="tiny_specs", episodes=2, skill="expert", seed=0, max_episode_steps=60, workers=1,
                       progress=False)
    with autopilot_datasets(tmp_path_factory.mktemp("datasets"), cfg) as root:
        yield root


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_an_eval_track_file_named_random_is_embedded_and_resume_ignores_later_edits(datasets_root, tmp_path,
                                                                                     monkeypatch, capsys):
    """random_road.json is a track file like any other: the checkpoint holds its content, so an edited file (or a
    resume from another directory, where the relative path names nothing) changes nothing about the evaluations."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(TRACKS_DIR / "hairpin.json", "random_road.json")
    out = tmp_path / "run"
    assert main([*TINY, "--eval-track", "random_road.json", "--out", str(out)]) == 0
    saved = load_checkpoint(out / "checkpoints" / "last.pt")["eval_track"]
    assert isinstance(saved, dict) and saved["name"] == HAIRPIN
    shutil.copy(TRACKS_DIR / "s_curve.json", "random_road.json")      # the same path, another track
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["--out", str(out), "--resume", "--steps", "40", "--final-eval-episodes", "1", "--quiet"]) == 0
    assert load_checkpoint(out / "checkpoints" / "last.pt")["eval_track"]["name"] == HAIRPIN
    assert json.loads((out / "eval.json").read_text())["eval_track"] == HAIRPIN
    # learn.evaluate's default is the checkpoint's track too
    assert eval_main([str(out / "checkpoints" / "best.pt"), "--episodes", "1", "--workers", "1", "--quiet",
                      "--json", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["track"] == HAIRPIN
    capsys.readouterr()
    # --track of learn.evaluate follows the same rule: a typo in a random spec is one line, not an episode error
    assert eval_main([str(out / "checkpoints" / "best.pt"), "--track", "random:validation", "--quiet"]) == 2
    err = one_line_error(capsys)
    assert err.startswith("python -m learn.evaluate: error:") and "random:validation" in err


@pytest.mark.parametrize("typo, says", [
    ("randomly", "unknown track 'randomly'"),
    ("random:validation", "expected random, random:train or random:test"),
    ("random:", "expected random, random:train or random:test"),        # a dangling colon is not the default pool
    ("random:test:", "expected random, random:train or random:test"),
    ("random:test:nightmare", "unknown difficulty 'nightmare'"),
])
def test_a_mistyped_random_eval_track_fails_before_the_run_folder_is_written(typo, says, datasets_root, tmp_path,
                                                                            capsys):
    out = tmp_path / "run"
    assert main([*TINY, "--eval-track", typo, "--out", str(out)]) == 2
    err = one_line_error(capsys)
    assert err.startswith("python -m learn: error: --eval-track: ") and says in err, err
    assert not out.exists()            # no config.json, no tb/: the corrected command may use the same --out
