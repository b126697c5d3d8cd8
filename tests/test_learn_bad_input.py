"""learn with bad input a user really produces: a resumed run whose config.json disagrees with its checkpoint, output
paths the OS refuses, sizes that cannot fit, out-of-range seeds, damaged checkpoint fields, optimizer state that went
non-finite, a lost best.pt. Each is one line naming the flag, file or field (exit 2), never a traceback and never a
silently wrong run; a run that fails before its first checkpoint leaves --out as it found it."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import autopilot_datasets

from learn import CheckpointError, load_policy
from learn.__main__ import main
from learn.checkpoint import load_checkpoint
from learn.evaluate import main as eval_main

# a straight corridor: ~40-step autopilot episodes keep the module fast
SHORT = {"name": "short", "walls": [[0, 0, 2, 0], [0, 0, 0, 5], [2, 0, 2, 5], [0, 5, 2, 5]],
         "start": {"x": 1.0, "y": 0.5, "yaw": 1.5707963}, "goal": {"x": 1.0, "y": 4.0, "radius": 0.8},
         "centerline": [[1, 0.5], [1, 4]]}
QUICK = ["--hidden", "32,32", "--eval-every", "0", "--eval-episodes", "1", "--final-eval-episodes", "0",
         "--eval-workers", "1", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """2 autopilot demos on SHORT, a 6-update TD3+BC run and a 4-update BC run on them."""
    from teleop.record import RecordConfig
    base = tmp_path_factory.mktemp("learn_bad")
    track = base / "short.json"
    track.write_text(json.dumps(SHORT))
    with autopilot_datasets(base / "datasets", RecordConfig("tiny", episodes=2, track=str(track), workers=1,
                                                            progress=False)):
        assert main(["--dataset", "tiny", "--algo", "td3bc", "--bc-steps", "2", "--steps", "4", *QUICK,
                     "--out", str(base / "td3bc")]) == 0
        assert main(["--dataset", "tiny", "--algo", "bc", "--steps", "4", *QUICK, "--out", str(base / "bc")]) == 0
        yield base


def one_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


def copy_run(base, name, tmp_path):
    shutil.copytree(base / name, tmp_path / name)
    return tmp_path / name


def edit_config(run, **values):
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, **values}))
    return (run / "config.json").read_text()


def test_resume_refuses_a_config_json_that_disagrees_with_the_checkpoint(base, tmp_path, capsys):
    run = copy_run(base, "td3bc", tmp_path)
    edited = edit_config(run, alpha=0.9)
    assert main(["--out", str(run), "--resume", "--steps", "6", *QUICK]) == 2
    one_line(capsys, "config.json disagrees with", "last.pt", "alpha 0.9 (last.pt: 0.2)", "what the run trained with")
    assert (run / "config.json").read_text() == edited                         # not overwritten
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 6      # nothing trained
    edit_config(run, alpha=0.2, dataset="other")
    assert main(["--out", str(run), "--resume", "--steps", "6", *QUICK]) == 2
    one_line(capsys, "dataset other (last.pt: tiny)")
    # a TD3+BC last.pt in a BC run folder is a TD3+BC run, not one the folder's config.json describes
    bc = copy_run(base, "bc", tmp_path)
    shutil.copy(base / "td3bc" / "checkpoints" / "last.pt", bc / "checkpoints" / "last.pt")
    assert main(["--out", str(bc), "--resume", "--steps", "8", *QUICK]) == 2
    one_line(capsys, "algo bc (last.pt: td3bc)")


def test_resume_accepts_flags_that_repeat_the_runs_values_in_another_spelling(base, tmp_path, capsys):
    run = copy_run(base, "td3bc", tmp_path)
    assert main(["--out", str(run), "--resume", "--steps", "5", "--hidden", "32, 32", "--dataset", "racecar/tiny-v0",
                 "--alpha", "0.20", "--algo", "td3bc", *QUICK]) == 0
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 7
    saved = json.loads((run / "config.json").read_text())
    assert saved["dataset"] == "tiny" and saved["hidden"] == [32, 32] and saved["out"] == str(run)
    capsys.readouterr()
    assert main(["--out", str(run), "--resume", *QUICK, "--hidden", "64,64"]) == 2      # a real change still is not
    one_line(capsys, "cannot change --hidden")


def test_output_paths_the_os_refuses_are_one_line(base, tmp_path, capsys):
    long = tmp_path / ("a" * 300)
    for out in (long, "/proc/x/y"):
        assert main(["--dataset", "tiny", "--algo", "bc", "--steps", "2", *QUICK, "--out", str(out)]) == 2
        one_line(capsys, f"cannot write --out {out}: ")
    with pytest.raises(SystemExit) as e:
        eval_main([str(base / "bc" / "checkpoints" / "best.pt"), "--episodes", "1", "--video", f"{long}.mp4"])
    assert e.value.code == 2
    one_line(capsys, "--video", f"cannot write {long}.mp4: File name too long")


def test_sizes_that_cannot_fit_are_refused_up_front(base, tmp_path, capsys):
    out = tmp_path / "huge"
    for flags, needle in ((["--hidden", "3000000,3000000"], "--hidden 3000000,3000000 needs at least 432.0 TB"),
                          (["--batch-size", "1000000000000"], "--batch-size 1000000000000 needs at least")):
        assert main(["--dataset", "tiny", "--algo", "td3bc", *QUICK, *flags, "--out", str(out)]) == 2
        one_line(capsys, needle, "this machine has")
        assert not out.exists()


def test_a_run_that_fails_before_its_first_checkpoint_leaves_out_as_it_found_it(base, tmp_path, capsys):
    fresh, mine = tmp_path / "deep" / "fresh", tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    for out in (fresh, mine):
        assert main(["--dataset", "tiny", "--algo", "bc", "--steps", "5", "--actor-lr", "1e308", *QUICK,
                     "--out", str(out)]) == 2
        one_line(capsys, "training diverged at update 5", f"nothing was saved in {out}")
    assert not (tmp_path / "deep").exists()                          # the folders it made, gone
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]        # the user's file, kept; config.json, tb/ gone
    # the corrected command runs into the same folder
    assert main(["--dataset", "tiny", "--algo", "bc", "--steps", "5", *QUICK, "--out", str(mine)]) == 0
    assert (mine / "checkpoints" / "last.pt").is_file() and (mine / "notes.txt").read_text() == "mine"


def test_seed_beyond_the_generators_range_is_one_line(base, tmp_path, capsys):
    out = tmp_path / "seed"
    assert main(["--dataset", "tiny", "--algo", "bc", "--seed", "99999999999999999999", *QUICK, "--out",
                 str(out)]) == 2
    one_line(capsys, "seed must be <= 9223372036854775807, got 99999999999999999999")
    assert not out.exists()
    assert main(["--dataset", "tiny", "--algo", "bc", "--seed", str(2 ** 63 - 1), "--steps", "1", *QUICK, "--out",
                 str(out)]) == 0


def save_signed(ck: dict, path) -> None:
    """Save a hand-damaged checkpoint with a checksum that matches it: what our own save would have written had
    training produced those values (a file damaged after the save is refused by its checksum, tested elsewhere)."""
    from learn.checkpoint import contents_digest
    content = {k: v for k, v in ck.items() if k != "sha256"}
    torch.save({**content, "sha256": contents_digest(content)}, path)


@pytest.mark.parametrize("field, damage, needle", [
    ("encoder", lambda ck: ck["encoder"]["mean"].fill_(float("nan")), "encoder.mean is not finite (v_forward = nan)"),
    ("encoder", lambda ck: ck["encoder"]["std"].zero_(), "encoder.std must be > 0"),
    ("encoder", lambda ck: ck["encoder"]["std"].fill_(float("inf")), "encoder.std is not finite"),
    ("encoder", lambda ck: ck["encoder"].__setitem__("std", torch.ones(3)), "encoder.std must be"),
    ("eval_track", lambda ck: ck.__setitem__("eval_track", 123), "eval_track must be a track spec or track data"),
    ("step", lambda ck: ck.__setitem__("step", "abc"), "step must be a whole number >= 0, got 'abc'"),
    ("tracks", lambda ck: ck.__setitem__("tracks", [1]), "tracks must map track ids to track data"),
])
def test_damaged_checkpoint_fields_are_refused_naming_the_file_and_field(base, tmp_path, capsys, field, damage,
                                                                         needle):
    ck = torch.load(base / "bc" / "checkpoints" / "best.pt", weights_only=True)
    damage(ck)
    bad = tmp_path / "bad.pt"
    save_signed(ck, bad)
    with pytest.raises(CheckpointError) as e:
        load_policy(bad)
    assert str(e.value).startswith(f"{bad}: ") and needle in str(e.value) and "\n" not in str(e.value)
    assert eval_main([str(bad), "--episodes", "1", "--workers", "1", "--quiet"]) == 2
    one_line(capsys, str(bad), needle)
    # --resume reads the same fields (and the training state besides) through the same checks
    run = copy_run(base, "bc", tmp_path)
    save_signed(ck, run / "checkpoints" / "last.pt")
    assert main(["--out", str(run), "--resume", "--steps", "6", *QUICK]) == 2
    one_line(capsys, "last.pt", needle)


def test_damaged_training_state_is_refused_on_resume(base, tmp_path, capsys):
    for key, value, needle in (("history", [{"step": 1}], "history must be a list of evaluation records"),
                               ("wall_s", float("nan"), "wall_s must be a number >= 0"),
                               ("best", "x", "best must be an evaluation record"),
                               ("rng", None, "rng must hold"),
                               ("trained_on", {"episodes": 2}, "trained_on must record")):
        run = tmp_path / key
        shutil.copytree(base / "bc", run)
        ck = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
        ck[key] = value
        save_signed(ck, run / "checkpoints" / "last.pt")
        assert main(["--out", str(run), "--resume", "--steps", "6", *QUICK]) == 2
        one_line(capsys, f"{run / 'checkpoints' / 'last.pt'}: {needle}")


@pytest.mark.parametrize("flags, needle", [
    (["--algo", "td3bc", "--bc-steps", "0", "--reward-scale", "1e30"], "critic_opt.state.0.exp_avg_sq is not finite"),
    (["--algo", "cql", "--bc-steps", "0", "--cql-lagrange", "--cql-target-gap", "1e30", "--cql-weight-lr", "10"],
     "cql_weight_opt.state.0.exp_avg_sq is not finite"),
])
def test_nonfinite_optimizer_state_is_divergence(base, tmp_path, capsys, flags, needle):
    """An inf Adam moment leaves the weights finite but stops the network learning: the run stops and says so."""
    out = tmp_path / "run"
    assert main(["--dataset", "tiny", *flags, "--steps", "10", "--batch-size", "32", *QUICK, "--out", str(out)]) == 2
    one_line(capsys, "training diverged at update 10", needle, "--reward-scale")
    assert not out.exists()


def test_resume_without_best_pt_picks_a_new_one_or_says_what_to_do(base, tmp_path, capsys):
    run = copy_run(base, "bc", tmp_path)
    (run / "checkpoints" / "best.pt").unlink()
    (run / "eval.json").unlink()
    assert main(["--out", str(run), "--resume", *QUICK]) == 2                      # nothing left to pick one
    one_line(capsys, "best.pt is missing", "no updates left", "--steps > 4")
    assert main(["--out", str(run), "--resume", "--steps", "6", *QUICK, "--final-eval-episodes", "1"]) == 0
    report = json.loads((run / "eval.json").read_text())
    assert report["best_periodic"]["step"] == 6 and report["final"]["step"] == 6
    assert load_policy(run / "checkpoints" / "best.pt").step == 6


def test_help_of_every_learn_cli_prints_every_setting(capsys):
    """`--help` is how a user finds a setting: it must print (argparse formats each help text with %, so a stray
    percent sign in one setting's help would turn --help itself into a traceback) and list every setting of every
    algorithm."""
    from dataclasses import fields

    from learn.config import ALGO_CONFIGS
    from learn.sweep.__main__ import main as sweep_main
    for cli_main in (main, sweep_main, eval_main):
        with pytest.raises(SystemExit) as e:
            cli_main(["--help"])
        assert e.value.code == 0
    out = capsys.readouterr().out
    for cfg in ALGO_CONFIGS.values():
        for f in fields(cfg):
            assert f"--{f.name.replace('_', '-')}" in out, f.name
