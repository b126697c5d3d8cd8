"""replay: real rollouts (pybullet), real MP4s decoded with imageio, real datasets, real pygame (dummy driver)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from conftest import autopilot_datasets
from PIL import Image

from racecar_env import RaceCarEnv, load_track
from replay.cli import main
from replay.frames import FPS, LABEL_BG, LABEL_FG, LABEL_HEIGHT, Grid, TraceRenderer
from replay.trace import from_dataset_episode

ROOT = Path(__file__).resolve().parent.parent
HOLD = int(round(1.0 * FPS))


def decode(path: Path) -> list[np.ndarray]:
    reader = imageio.get_reader(path)
    try:
        return [np.asarray(f) for f in reader]
    finally:
        reader.close()


def run_cli(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def datasets_root(tmp_path_factory):
    """A real 3-episode mixed-skill autopilot dataset, recorded once for the module."""
    from teleop.record import RecordConfig
    cfg = RecordConfig(dataset="demo_mix", episodes=3, skill="mixed", seed=3, progress=False)
    with autopilot_datasets(tmp_path_factory.mktemp("datasets"), cfg) as root:
        yield root


@pytest.fixture(scope="module")
def checkpoint(datasets_root, tmp_path_factory):
    """A real (tiny) BC checkpoint trained by learn on the module's dataset."""
    from learn.config import TrainConfig
    from learn.train import train
    out = tmp_path_factory.mktemp("run") / "bc_tiny"
    train(TrainConfig.build(dataset="demo_mix", algo="bc", steps=100, eval_every=0, eval_episodes=1,
                            final_eval_episodes=1, out=str(out)), progress=False, log=lambda *a, **k: None)
    return out / "checkpoints" / "best.pt"


@pytest.fixture(scope="module")
def policy_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("policy")
    assert run_cli("--policy", "autopilot", "--episodes", 2, "--seed", 7, "--out", out) == 0
    return out


def test_policy_videos_decode_to_expected_frames_and_move(policy_out):
    info = json.loads((policy_out / "eval_info.json").read_text())
    assert [e["seed"] for e in info["episodes"]] == [7, 8]
    for ep in info["episodes"]:
        frames = decode(policy_out / f"ep{ep['episode']:02d}_seed{ep['seed']}.mp4")
        assert len(frames) == ep["steps"] + 1 + HOLD  # one frame per state + the held ending
        h, w, _ = frames[0].shape
        assert h % 2 == 0 and w % 2 == 0
        diff = np.abs(frames[0].astype(int) - frames[len(frames) // 2].astype(int)).mean()
        assert diff > 0.5, "the car should have moved between the first and the middle frame"
    meta = imageio.get_reader(policy_out / "ep00_seed7.mp4").get_meta_data()
    assert meta["codec"] == "h264" and meta["fps"] == FPS and "yuv420p" in meta.get("pix_fmt", "yuv420p")


def test_eval_info_agrees_with_independent_rollout(policy_out):
    """Same agent, same seeds, written straight against the env API (not replay's rollout code)."""
    from teleop.autopilot import Autopilot
    info = json.loads((policy_out / "eval_info.json").read_text())
    env = RaceCarEnv("s_curve")
    driver = Autopilot("s_curve", skill="expert", seed=7)
    expected = []
    for seed in (7, 8):
        obs, i = env.reset(seed=seed)
        driver.reset(obs, i)
        ret, steps, done = 0.0, 0, False
        while not done:
            obs, r, term, trunc, i = env.step(driver.act(obs))
            ret, steps, done = ret + r, steps + 1, term or trunc
        expected.append((seed, i["is_success"], i["collision"], steps, ret))
    env.close()
    got = [(e["seed"], e["success"], e["crash"], e["steps"], e["return"]) for e in info["episodes"]]
    for (s1, ok1, c1, n1, r1), (s2, ok2, c2, n2, r2) in zip(got, expected):
        assert (s1, ok1, c1, n1) == (s2, ok2, c2, n2)
        assert r1 == pytest.approx(r2, abs=1e-5)
    tot = info["totals"]
    assert tot["episodes"] == 2
    assert tot["success_rate"] == pytest.approx(100.0 * sum(e[1] for e in expected) / 2)
    assert tot["mean_return"] == pytest.approx(np.mean([e[4] for e in expected]), abs=1e-5)
    for e in info["episodes"]:
        assert e["time_to_goal"] == (pytest.approx(e["steps"] * 0.05) if e["success"] else None)


def test_checkpoint_eval_info_agrees_with_learn_evaluate(checkpoint, tmp_path):
    """The learner's own evaluation of the same checkpoint on the same seeds gives the same per-episode numbers."""
    from learn import evaluate, load_policy
    assert run_cli("--policy", checkpoint, "--episodes", 2, "--seed", 20_000, "--out", tmp_path) == 0
    info = json.loads((tmp_path / "eval_info.json").read_text())
    assert info["label"] == "bc (bc_tiny-best)" and info["source"] == str(checkpoint)
    policy = load_policy(checkpoint)
    ref = evaluate(policy, policy.track, episodes=2, seed0=20_000)
    for mine, theirs in zip(info["episodes"], ref.episodes):
        assert (mine["seed"], mine["success"], mine["crash"], mine["steps"]) == \
            (theirs.seed, theirs.success, theirs.crash, theirs.steps)
        assert mine["return"] == pytest.approx(theirs.ret, abs=1e-5)
        assert mine["progress"] == pytest.approx(theirs.progress, abs=1e-5)
    assert info["totals"]["success_rate"] == pytest.approx(100 * ref.success_rate)
    assert info["totals"]["mean_return"] == pytest.approx(ref.mean_return, abs=1e-5)
    assert len(list(tmp_path.glob("ep*_seed*.mp4"))) == 2


def test_default_seed_is_learns_test_seed():
    from learn.evaluate import DEFAULT_EVAL_SEED
    from replay.cli import DEFAULT_SEED
    assert DEFAULT_SEED == DEFAULT_EVAL_SEED


def test_trajectory_png_is_drawn(policy_out):
    img = np.asarray(Image.open(policy_out / "trajectories.png").convert("RGB")).astype(int)
    assert img.shape[0] > 200 and img.shape[1] > 300
    assert img.std() > 20
    green = (np.abs(img - np.array([0x2c, 0xa0, 0x2c])).sum(axis=2) < 40).sum()  # the "goal" outcome colour
    assert green > 200, "successful paths should be drawn in the goal colour"


def test_dataset_playback_is_exact_and_concatenated(datasets_root, tmp_path):
    from racecar_env.storage import load_dataset
    ds = load_dataset("demo_mix")
    assert run_cli("--dataset", "demo_mix", "--episodes", "0,2", "--concat", "--out", tmp_path) == 0
    info = json.loads((tmp_path / "eval_info.json").read_text())
    assert [e["episode"] for e in info["episodes"]] == [0, 2]
    for e in info["episodes"]:
        ep = ds.episodes[e["episode"]]
        assert (e["steps"], e["success"], e["seed"]) == (ep.steps, ep.success, ep.meta["seed"])
        assert e["return"] == pytest.approx(ep.episode_return)
        assert e["driver"] == "autopilot"
    frames = decode(tmp_path / "episodes.mp4")
    assert len(frames) == sum(e["steps"] + 1 + HOLD for e in info["episodes"])
    # exact playback: the drawn states are the stored observations, not a new simulation
    tr = from_dataset_episode(ds.episodes[2], 2)
    assert np.array_equal(tr.observations, ds.episodes[2].observations["observation"])
    renderer = TraceRenderer(load_track("s_curve"))
    assert renderer._chase is None  # top-down playback never creates a physics world
    assert renderer.frame(tr, 0).shape == frames[0].shape


def test_compare_video_has_one_labelled_panel_per_run(datasets_root, checkpoint, tmp_path):
    assert run_cli("--compare", checkpoint, "autopilot:noisy", "--dataset", "demo_mix", "--episodes", "1",
                   "--out", tmp_path) == 0
    info = json.loads((tmp_path / "eval_info.json").read_text())
    labels = [r["label"] for r in info["runs"]]
    assert labels == ["demo (demo_mix)", "bc (bc_tiny-best)", "autopilot (noisy)"]
    # every agent started where the demo started (same seed recorded, same first position)
    assert len({r["episodes"][0]["seed"] for r in info["runs"]}) == 1
    frames = decode(tmp_path / "compare.mp4")
    longest = max(r["episodes"][0]["steps"] for r in info["runs"])
    assert len(frames) == longest + 1 + HOLD
    panel_w, panel_h = TraceRenderer(load_track("s_curve")).size
    grid = Grid(labels, (panel_w, panel_h))
    assert (grid.cols, grid.rows) == (3, 1)
    first = frames[0]
    assert first.shape == (panel_h + LABEL_HEIGHT, 3 * panel_w, 3)
    strips = []
    for i in range(3):
        x0, y0, x1, _ = grid.panel_box(i)
        strip = first[y0:y0 + LABEL_HEIGHT, x0:x1].astype(int)
        text = (strip.min(axis=2) > 180).sum()  # white label text on the dark strip (tolerant of H.264 blur)
        assert text > 15, f"panel {i} has no label text"
        assert (strip[:, :20].min(axis=2) > 180).sum() == 0  # centred text: the strip edges are background
        strips.append(strip)
    assert np.abs(strips[1] - strips[2]).mean() > 1, "different runs need different labels"
    # and the label strip itself is exactly what the grid composes (before encoding)
    assert tuple(grid._strips[0][0, 0]) == LABEL_BG and (grid._strips[0] == LABEL_FG).all(axis=2).any()
    traj = np.asarray(Image.open(tmp_path / "trajectories.png").convert("RGB"))
    assert traj.std() > 20


def test_grid_layout():
    assert (Grid(["a", "b", "c", "d"], (10, 8)).cols, Grid(["a", "b", "c", "d"], (10, 8)).rows) == (2, 2)
    g = Grid(["a", "b"], (10, 8))
    assert g.size == (20, 8 + LABEL_HEIGHT)
    out = g.compose([np.full((8, 10, 3), 7, np.uint8), np.full((8, 10, 3), 9, np.uint8)])
    assert out[LABEL_HEIGHT, 0, 0] == 7 and out[LABEL_HEIGHT, 10, 0] == 9


def test_both_view_stacks_topdown_over_chase(datasets_root):
    from racecar_env.storage import load_dataset
    tr = from_dataset_episode(load_dataset("demo_mix").episodes[0], 0)
    renderer = TraceRenderer(load_track("s_curve"), view="both")
    try:
        w, h = renderer.size
        f = renderer.frame(tr, 10)
        assert f.shape == (h, w, 3) and h % 2 == 0 and w % 2 == 0
        top_h = renderer.topdown.size[1]
        chase = f[top_h:]
        assert chase.std() > 10, "the chase camera should show a scene, not a flat colour"
        last = renderer.frame(tr, renderer.frame_count(tr) - 1)  # held ending: banner on the top-down part
        assert not np.array_equal(last[:top_h], renderer.frame(tr, tr.steps - 1)[:top_h])
    finally:
        renderer.close()


def test_missing_checkpoint_is_one_line_exit_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "replay", "--policy", str(tmp_path / "nope.pt"), "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and "pybullet build time" not in ln]
    assert lines == [f"replay: error: checkpoint {tmp_path / 'nope.pt'} does not exist (expected a .pt file such "
                     f"as runs/NAME/checkpoints/best.pt, or 'autopilot')"]


@pytest.mark.parametrize("args, needle", [
    (["--policy", "{tmp}/corrupt.pt"], "corrupt.pt"),
    (["--dataset", "no_such_dataset"], "no_such_dataset"),
    (["--dataset", "demo_mix", "--episodes", "0,9"], "--episodes asks for 9"),
    (["--dataset", "demo_mix", "--episodes", "x"], "--episodes 'x'"),
    (["--policy", "autopilot:wild"], "unknown autopilot skill 'wild'"),
    (["--policy", "autopilot", "--episodes", "0"], "--episodes '0'"),
    (["--policy", "autopilot", "--track", "nowhere"], "unknown track 'nowhere'"),
])
def test_bad_inputs_give_one_clear_line(args, needle, datasets_root, tmp_path, capsys):
    (tmp_path / "corrupt.pt").write_bytes(b"this is not a checkpoint")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert run_cli(*args, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("replay: error: ") and needle in err[0], err
    assert not (tmp_path / "out").exists()


def test_live_player_keys_and_loop(datasets_root):
    import pygame

    from replay.live import PlayerState, advance, handle_key, play
    from replay.session import Run, single_clips
    from racecar_env.storage import load_dataset
    ds = load_dataset("demo_mix")
    renderer = TraceRenderer(load_track("s_curve"))
    clips = single_clips(renderer, Run("demo", "dataset", [from_dataset_episode(e, i) for i, e in
                                                          enumerate(ds.episodes[:2])]))
    s = PlayerState()
    advance(s, 0.5, clips)                       # half a second of real time = 10 frames
    assert (s.clip, s.frame) == (0, 10)
    handle_key(s, pygame.K_UP, clips)            # faster: x2
    advance(s, 0.5, clips)
    assert s.frame == 30
    handle_key(s, pygame.K_SPACE, clips)         # pause: time passes, frame stays
    advance(s, 1.0, clips)
    assert s.frame == 30 and not s.playing
    handle_key(s, pygame.K_RIGHT, clips)         # single step
    assert s.frame == 31
    handle_key(s, pygame.K_n, clips)             # next episode
    assert (s.clip, s.frame) == (1, 0)
    handle_key(s, pygame.K_n, clips)             # past the last: stays on its final frame
    assert (s.clip, s.frame) == (1, clips[1].n - 1)

    # the real window loop consumes posted key events: next episode, then quit
    pygame.display.init()
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_n))
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q))
    final = play(clips, max_ticks=50)
    assert final.quit and final.clip == 1


def test_live_without_display_is_a_clear_error(datasets_root, monkeypatch):
    from racecar_env.storage import load_dataset
    from replay.live import play
    from replay.session import Run, single_clips
    from replay.trace import ReplayError
    tr = from_dataset_episode(load_dataset("demo_mix").episodes[0], 0)
    clips = single_clips(TraceRenderer(load_track("s_curve")), Run("demo", "dataset", [tr]))
    monkeypatch.setenv("SDL_VIDEODRIVER", "no_such_driver")
    with pytest.raises(ReplayError, match="--live needs a display"):
        play(clips, max_ticks=1)
