"""learn end to end on a real (tiny) autopilot dataset: CLI run folder, checkpoint round trip, resume, clear errors,
and a trained BC -> TD3+BC policy that drives further than an untrained one."""
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import autopilot_datasets
import torch

from learn import CheckpointError, load_policy
from learn.__main__ import main
from learn.checkpoint import Policy, load_checkpoint
from learn.config import ALGO_CONFIGS
from learn.data import load_training_data
from learn.encoding import FEATURE_DIM
from learn.nets import Actor
from racecar_env import RaceCarEnv
from racecar_env.evaluation import evaluate
from racecar_env.tracks import TRACKS_DIR

# Trained-vs-untrained comparisons end episodes at 20 s (the expert drives the S in ~10 s): an untrained actor that
# stalls would otherwise run the full 60-s limit, which was most of these tests' time and shows nothing more
SHORT_EPISODES = {"max_episode_steps": 400}


def progress_test(policy, track, episodes):
    return evaluate(policy, track, episodes=episodes, seed0=30_000, env_kwargs=SHORT_EPISODES)


STEPS = ["--bc-steps", "1000", "--steps", "400", "--eval-every", "200", "--eval-episodes", "2",
         "--final-eval-episodes", "3", "--seed", "0"]


@pytest.fixture(scope="module")
def datasets_root(tmp_path_factory):
    from teleop.record import RecordConfig
    cfg = RecordConfig(dataset="tiny_expert", episodes=8, skill="expert", seed=0, progress=False)
    with autopilot_datasets(tmp_path_factory.mktemp("datasets"), cfg) as root:
        yield root


@pytest.fixture(scope="module")
def run(datasets_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny_td3bc"
    assert main(["--dataset", "tiny_expert", "--algo", "td3bc", *STEPS, "--out", str(out)]) == 0
    return out


def test_run_folder_has_config_logs_checkpoints_eval_and_video(run, capsys):
    for rel in ("config.json", "eval.json", "checkpoints/best.pt", "checkpoints/last.pt", "videos/best.mp4"):
        assert (run / rel).is_file(), rel
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["algo"] == "td3bc" and cfg["bc_steps"] == 1000 and cfg["alpha"] == 0.2
    assert "cql_weight" not in cfg and "expectile" not in cfg        # only the chosen algorithm's settings
    report = json.loads((run / "eval.json").read_text())
    # no evaluations inside BC pretraining except its last step (what the cloned policy does)
    assert [h["step"] for h in report["history"]] == [1000, 1200, 1400]
    assert report["best_periodic"]["step"] > 1000         # BC-phase checkpoints are never best.pt of a td3bc run
    assert report["final"]["episodes"] == 3 and report["final"]["seed0"] == 20_000


def test_checkpoint_round_trip_gives_identical_actions_and_results(run):
    p1, p2 = load_policy(run / "checkpoints" / "last.pt"), load_policy(run / "checkpoints" / "last.pt")
    assert p1.label == "td3bc" and p1.track.name == "s_curve" and p1.step == 1400
    assert [t.name for t in p1.tracks.values()] == ["s_curve"]
    env = RaceCarEnv("s_curve")
    obs, _ = env.reset(seed=3)
    batch = {k: np.stack([obs[k]] * 3) for k in obs}
    np.testing.assert_array_equal(p1.act(obs), p2.act(obs))
    np.testing.assert_allclose(p1.act(batch)[0], p1.act(obs), atol=1e-6)
    assert p1.act(obs).dtype == np.float32 and p1.act(obs).shape == (2,)
    # the eval logged during training (in-memory actor) equals an eval of the saved file on the same seeds
    report = json.loads((run / "eval.json").read_text())
    last = report["history"][-1]
    res = evaluate(p1, "s_curve", episodes=2, seed0=10_000)
    assert res.mean_return == pytest.approx(last["mean_return"], abs=1e-9)
    assert res.success_rate == last["success_rate"]


def test_resume_continues_the_step_count(run, tmp_path):
    copy = tmp_path / "resumed"
    shutil.copytree(run, copy)
    assert main(["--out", str(copy), "--resume", "--steps", "600", "--final-eval-episodes", "1"]) == 0
    ck = load_checkpoint(copy / "checkpoints" / "last.pt")
    assert ck["step"] == 1600
    assert [h["step"] for h in ck["history"]] == [1000, 1200, 1400, 1600]
    assert json.loads((copy / "config.json").read_text())["steps"] == 600


def test_existing_run_folder_needs_resume(run, capsys):
    assert main(["--dataset", "tiny_expert", "--algo", "td3bc", "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already holds a run" in err and "--resume" in err


def test_resume_refuses_to_change_learning_settings(run, tmp_path, capsys):
    copy = tmp_path / "resumed"
    shutil.copytree(run, copy)
    assert main(["--out", str(copy), "--resume", "--algo", "cql"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot change --algo" in err
    assert main(["--out", str(copy), "--resume", "--steps", "10"]) == 2     # below the updates already done
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already at update 1400" in err
    assert json.loads((copy / "config.json").read_text())["steps"] == 400   # untouched


def test_resume_refuses_a_dataset_that_grew_and_keeps_the_saved_eval_track(datasets_root, tmp_path, capsys):
    """Episodes appended since the run started would mix two datasets in one run; an edited or deleted --eval-track
    file must not change what the resumed run is evaluated on (the checkpoint holds the track)."""
    from teleop.record import RecordConfig, record_autopilot
    record_autopilot(RecordConfig(dataset="grow", episodes=2, skill="expert", seed=5, progress=False))
    track = json.loads((TRACKS_DIR / "s_curve.json").read_text())
    track_file = tmp_path / "eval_s.json"
    track_file.write_text(json.dumps(track))
    out = tmp_path / "grow_bc"
    assert main(["--dataset", "grow", "--eval-track", str(track_file), "--algo", "bc", "--steps", "40", "--eval-every",
                 "20", "--eval-episodes", "1", "--final-eval-episodes", "1", "--quiet", "--out", str(out)]) == 0
    track_file.unlink()        # the eval track's file is gone: the run still resumes, on the saved track
    assert main(["--out", str(out), "--resume", "--steps", "60", "--final-eval-episodes", "1", "--quiet"]) == 0
    assert load_checkpoint(out / "checkpoints" / "last.pt")["eval_track"]["name"] == track["name"]
    record_autopilot(RecordConfig(dataset="grow", episodes=1, skill="expert", seed=9, progress=False))   # appends
    capsys.readouterr()
    assert main(["--out", str(out), "--resume", "--steps", "80", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "changed since" in err and "2 episodes" in err and "3 episodes" in err
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 60      # nothing trained on the mix


def test_diverged_training_stops_in_one_line_and_nan_checkpoints_are_refused(run, tmp_path, capsys):
    out = tmp_path / "diverged"
    assert main(["--dataset", "tiny_expert", "--algo", "bc", "--steps", "40", "--eval-every", "20",
                 "--eval-episodes", "1", "--actor-lr", "1e30", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "training diverged at update 20" in err and "1e+30" in err
    assert not (out / "checkpoints").exists()          # nothing non-finite was saved
    ck = load_checkpoint(run / "checkpoints" / "best.pt")
    next(iter(ck["agent"]["actor"].values())).view(-1)[0] = float("nan")
    bad = tmp_path / "nan.pt"
    torch.save(ck, bad)
    with pytest.raises(CheckpointError, match="nan.pt: the actor's weights are not finite") as e:
        load_policy(bad)
    assert "\n" not in str(e.value)


def test_missing_corrupt_and_foreign_checkpoints_are_one_line_errors(run, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_policy(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt: not a readable checkpoint"):
        load_policy(bad)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt: empty file"):
        load_policy(empty)
    with pytest.raises(CheckpointError, match="not a file"):
        load_policy(tmp_path)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((run / "checkpoints" / "best.pt").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_policy(truncated)
    ck = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    ck["obs_layout_id"] = "obs-0000000000"
    torch.save(ck, tmp_path / "old_layout.pt")
    with pytest.raises(CheckpointError, match="observation layout obs-0000000000"):
        load_policy(tmp_path / "old_layout.pt")
    del ck["agent"]["actor"]
    ck["obs_layout_id"] = load_checkpoint(run / "checkpoints" / "best.pt")["obs_layout_id"]
    torch.save(ck, tmp_path / "damaged.pt")
    with pytest.raises(CheckpointError, match="damaged"):
        load_policy(tmp_path / "damaged.pt")


def test_policy_runs_on_another_track_with_a_note(run, capsys):
    from learn.evaluate import main as eval_main
    policy = load_policy(run / "checkpoints" / "best.pt")
    assert policy.note_for(RaceCarEnv("s_curve").track) is None
    assert "never saw" in policy.note_for(RaceCarEnv("hairpin").track)
    assert eval_main([str(run / "checkpoints" / "best.pt"), "--track", "hairpin", "--episodes", "1", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "never saw" in captured.err and "hairpin" in captured.out


def test_evaluate_cli_reports_and_errors(run, tmp_path, capsys):
    from learn.evaluate import main as eval_main
    out = tmp_path / "e.json"
    assert eval_main([str(run / "checkpoints" / "best.pt"), "--episodes", "1", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["episodes"] == 1
    assert eval_main([str(tmp_path / "missing.pt")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        eval_main([str(run / "checkpoints" / "best.pt"), "--episodes", "0"])
    assert e.value.code == 2 and "whole number >= 1" in capsys.readouterr().err


def test_trained_policy_drives_further_than_an_untrained_one(run):
    trained = load_policy(run / "checkpoints" / "best.pt")
    torch.manual_seed(0)
    untrained = Policy(Actor(FEATURE_DIM, 2, (256, 256)), trained.encoder, "untrained")
    a = progress_test(trained, "s_curve", 3)
    b = progress_test(untrained, "s_curve", 3)
    # 8 demos and 400 TD3+BC updates do not make a finisher (few-demo TD3+BC tends to crash in the first corners);
    # the claim here is only that learning from real data moves the car along the track
    assert a.mean_progress > b.mean_progress + 0.1, (a.line(), b.line())


@pytest.mark.parametrize("algo, extra", [
    ("cql", ["--bc-steps", "300", "--steps", "300"]),
    ("iql", ["--steps", "600"]),
    ("cql", ["--bc-steps", "300", "--steps", "300", "--return-weighting", "0"]),   # the paper's uniform batches
])
def test_ci_sized_cql_and_iql_drive_further_than_an_untrained_policy(datasets_root, tmp_path, algo, extra):
    """A CI-sized run of each value-based learner with its default settings (only smaller networks and budget)
    clearly beats an untrained policy of the same kind on mean progress."""
    from learn.algos import ACTOR_KINDS
    out = tmp_path / algo
    assert main(["--dataset", "tiny_expert", "--algo", algo, *extra, "--hidden", "64,64", "--eval-every", "300",
                 "--eval-episodes", "2", "--final-eval-episodes", "0", "--eval-workers", "1", "--seed", "0",
                 "--out", str(out), "--quiet"]) == 0
    weighting = (float(extra[extra.index("--return-weighting") + 1]) if "--return-weighting" in extra
                 else ALGO_CONFIGS[algo]().return_weighting)   # CQL draws batches by return by default
    assert json.loads((out / "config.json").read_text())["return_weighting"] == weighting
    trained = load_policy(out / "checkpoints" / "best.pt")
    torch.manual_seed(0)
    untrained = Policy(ACTOR_KINDS[algo](FEATURE_DIM, 2, (64, 64)), trained.encoder, "untrained")
    a = progress_test(trained, "s_curve", 3)
    b = progress_test(untrained, "s_curve", 3)
    assert a.mean_progress > b.mean_progress + 0.2, (a.line(), b.line())


def test_multi_track_agent_drives_roads_it_never_saw(tmp_path):
    """Demos on 16 generated training roads -> a CI-sized BC agent -> unseen test roads (random:test): it clearly
    beats an untrained policy there, and its checkpoint carries every training road."""
    from teleop.record import RecordConfig
    cfg = RecordConfig(dataset="tiny_multi", episodes=16, track="random", skill="expert", seed=3, workers=1,
                       progress=False)
    with autopilot_datasets(tmp_path / "datasets", cfg):
        out = tmp_path / "multi_bc"
        assert main(["--dataset", "tiny_multi", "--algo", "bc", "--steps", "1500", "--hidden", "64,64",
                     "--eval-every", "0", "--final-eval-episodes", "0", "--eval-workers", "1", "--seed", "0",
                     "--out", str(out), "--quiet"]) == 0
    trained = load_policy(out / "checkpoints" / "best.pt")
    assert len(trained.tracks) == 16 and trained.track == "random:test"
    torch.manual_seed(0)
    untrained = Policy(Actor(FEATURE_DIM, 2, (64, 64)), trained.encoder, "untrained")
    a = progress_test(trained, "random:test", 4)
    b = progress_test(untrained, "random:test", 4)
    assert a.n == 4 and len({e.track_id for e in a.episodes}) == 4            # four roads, none from training
    assert not {e.track_id for e in a.episodes} & set(trained.tracks)
    assert a.mean_progress > b.mean_progress + 0.2, (a.line(), b.line())


@pytest.mark.parametrize("after_pretrain", [True, False])
def test_evaluation_schedule_skips_pretraining_except_its_end_if_asked(after_pretrain):
    from learn.config import TrainConfig
    from learn.train import _eval_due
    cfg = TrainConfig.build(algo="td3bc", bc_steps=1000, steps=500, eval_every=200,
                            eval_after_pretrain=after_pretrain)
    due = [s for s in range(1, cfg.total_steps + 1) if _eval_due(cfg, s)]
    assert due == ([1000] if after_pretrain else []) + [1200, 1400, 1500]


def test_critic_ranking_covers_every_transition_of_the_runs_dataset(run, tmp_path, capsys):
    """benchmarks/critic_ranking.py: one row per outcome whose counts add up to the dataset; BC is refused in one line."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "critic_ranking.py"
    spec = importlib.util.spec_from_file_location("critic_ranking", path)
    ranking = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ranking)
    assert ranking.main([str(run / "checkpoints" / "best.pt")]) == 0
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("| drives that end")]
    transitions = sum(e.steps for e in load_training_data("tiny_expert").episodes)
    assert sum(int(r[2]) for r in rows) == transitions and rows[0][1].strip() == "drives that end in success"
    bc = tmp_path / "bc"
    assert main(["--dataset", "tiny_expert", "--algo", "bc", "--steps", "10", "--eval-every", "0",
                 "--final-eval-episodes", "0", "--out", str(bc), "--quiet"]) == 0
    capsys.readouterr()
    assert ranking.main([str(bc / "checkpoints" / "last.pt")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "BC run has no critic" in err


def test_critic_ranking_grid_counts_the_states_in_the_window_and_refuses_an_empty_one(run, capsys):
    """--progress: Q over a steering and a throttle grid at the recorded states of that stretch of track."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "critic_ranking.py"
    spec = importlib.util.spec_from_file_location("critic_ranking", path)
    ranking = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ranking)
    episodes = load_training_data("tiny_expert").episodes
    expected = sum(int(((e.infos["progress"][:-1] > 0.05) & (e.infos["progress"][:-1] < 0.3)).sum()) for e in episodes)
    assert ranking.main([str(run / "checkpoints" / "best.pt"), "--progress", "0.05,0.3"]) == 0
    out = capsys.readouterr().out
    assert f"{expected} recorded states at progress 0.05-0.3" in out
    grid = [line.split("|")[2:-1] for line in out.splitlines() if line.startswith(("| steer |", "| throttle |"))]
    assert len(grid) == 2 and all(len(r) == len(ranking.GRID) for r in grid)
    assert all(np.isfinite(float(v)) for r in grid for v in r)
    assert ranking.main([str(run / "checkpoints" / "best.pt"), "--progress", "0.999,1"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "no recorded state has progress in 0.999-1" in err


def test_a_resume_without_a_final_test_keeps_the_earlier_test_of_the_same_best_pt(datasets_root, tmp_path):
    """`--resume --final-eval-episodes 0` must not replace the test result of an unchanged best.pt with null."""
    from teleop.record import RecordConfig, record_autopilot
    record_autopilot(RecordConfig(dataset="keepfinal", episodes=1, skill="expert", seed=3, progress=False))
    out = tmp_path / "run"
    assert main(["--dataset", "keepfinal", "--algo", "bc", "--steps", "20", "--eval-every", "20", "--eval-episodes",
                 "1", "--final-eval-episodes", "1", "--eval-workers", "1", "--quiet", "--out", str(out)]) == 0
    before = json.loads((out / "eval.json").read_text())["final"]
    assert before is not None and before["step"] == 20
    assert main(["--out", str(out), "--resume", "--steps", "20", "--final-eval-episodes", "0", "--quiet"]) == 0
    assert json.loads((out / "eval.json").read_text())["final"] == before
