"""replay: real rollouts (pybullet), real MP4s decoded with imageio, real datasets and checkpoints, real pygame (dummy
video driver). Several tracks without the generator: shipped tracks and mirrored copies passed per episode."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from conftest import autopilot_datasets
from PIL import Image

from racecar_env import load_track
from racecar_env.episode import OUTCOMES
from racecar_env.evaluation import TEST_SEED, EpisodeOutcome, evaluate
from racecar_env.media import FPS
from racecar_env.render import EpisodeRenderer
from replay import agents
from replay.cli import Plan, ReplayConfig, main, plan_videos, write_outputs
from replay.grid import LABEL_BG, LABEL_FG, LABEL_HEIGHT, Grid
from replay.session import GRID_PANEL, policy_runs, read_dataset

ROOT = Path(__file__).resolve().parent.parent
HOLD = int(round(1.0 * FPS))
HAS_GENERATOR = importlib.util.find_spec("racecar_env.tracks.generate") is not None
needs_generator = pytest.mark.skipif(not HAS_GENERATOR, reason="racecar_env.tracks.generate is not merged yet")


def decode(path: Path) -> list[np.ndarray]:
    reader = imageio.get_reader(path)
    try:
        return [np.asarray(f) for f in reader]
    finally:
        reader.close()


def run_cli(*args) -> int:
    return main([str(a) for a in args] + ["--quiet"])


# A short L (north, right turn, east to the goal): ~60-step episodes keep the module fast.
SHORT_L = {"name": "short_l", "walls": [[0, 0, 2, 0], [0, 0, 0, 4], [2, 0, 2, 2], [0, 4, 5, 4], [2, 2, 5, 2],
                                        [5, 2, 5, 4]],
           "start": {"x": 1.0, "y": 0.5, "yaw": 1.5707963}, "goal": {"x": 4.0, "y": 3.0, "radius": 0.8},
           "centerline": [[1, 0.5], [1, 3], [4, 3]]}
SHORT_I = {"name": "short_i", "walls": [[0, 0, 2, 0], [0, 0, 0, 5], [2, 0, 2, 5], [0, 5, 2, 5]],
           "start": {"x": 1.0, "y": 0.5, "yaw": 1.5707963}, "goal": {"x": 1.0, "y": 4.0, "radius": 0.8},
           "centerline": [[1, 0.5], [1, 4]]}


def mirrored(track):
    """A track mirrored in y: a different track (other id, other turns) the autopilot can drive."""
    d = load_track(track).to_dict()
    d["name"] = f"{d['name']}_mirror"
    d["walls"] = [[x1, -y1, x2, -y2] for x1, y1, x2, y2 in d["walls"]]
    d["centerline"] = [[x, -y] for x, y in d["centerline"]]
    d["start"] = {**d["start"], "y": -d["start"]["y"], "yaw": -d["start"]["yaw"]}
    d["goal"] = {**d["goal"], "y": -d["goal"]["y"]}
    return load_track(d)


def label_text_pixels(frame: np.ndarray, grid: Grid, i: int) -> int:
    x0, y0, x1, _ = grid.panel_box(i)
    strip = frame[y0:y0 + LABEL_HEIGHT, x0:x1].astype(int)
    return int((strip.min(axis=2) > 180).sum())  # white label text on the dark strip (tolerant of H.264 blur)


@pytest.fixture(scope="module")
def tracks(tmp_path_factory) -> dict[str, Path]:
    """Track files: short_l, its mirror (a left turn), short_i (a straight)."""
    root = tmp_path_factory.mktemp("tracks")
    out = {}
    for t in (load_track(SHORT_L), mirrored(SHORT_L), load_track(SHORT_I)):
        out[t.name] = root / f"{t.name}.json"
        out[t.name].write_text(json.dumps(t.to_dict()))
    return out


@pytest.fixture(scope="module")
def datasets_root(tracks, tmp_path_factory):
    """A real 3-episode mixed-skill autopilot dataset on short_l, recorded once for the module."""
    from teleop.record import RecordConfig
    cfg = RecordConfig(dataset="demo_mix", episodes=3, skill="mixed", seed=3, track=str(tracks["short_l"]),
                       progress=False)
    with autopilot_datasets(tmp_path_factory.mktemp("datasets"), cfg) as root:
        yield root


@pytest.fixture(scope="module")
def checkpoint(datasets_root, tmp_path_factory):
    """A real (tiny) BC checkpoint trained by learn on the module's dataset (short_l)."""
    from learn.config import TrainConfig
    from learn.train import train
    out = tmp_path_factory.mktemp("run") / "bc_tiny"
    train(TrainConfig.build(dataset="demo_mix", algo="bc", steps=100, eval_every=0, eval_episodes=1,
                            final_eval_episodes=1, out=str(out)), progress=False, log=lambda *a, **k: None)
    return out / "checkpoints" / "best.pt"


@pytest.fixture(scope="module")
def policy_out(tracks, tmp_path_factory):
    out = tmp_path_factory.mktemp("policy")
    assert run_cli("--policy", "autopilot", "--track", tracks["short_l"], "--episodes", 2, "--seed", 7,
                   "--workers", 1, "--out", out) == 0
    return out


# --- policy rollouts ------------------------------------------------------------------------------------------------
def test_policy_videos_decode_to_expected_frames_and_move(policy_out):
    info = json.loads((policy_out / "eval_info.json").read_text())
    eps = info["per_episode"]
    assert [e["seed"] for e in eps] == [7, 8] and info["videos"] == ["ep00_seed7.mp4", "ep01_seed8.mp4"]
    for ep in eps:
        frames = decode(policy_out / f"ep{ep['episode']:02d}_seed{ep['seed']}.mp4")
        assert len(frames) == ep["steps"] + 1 + HOLD  # one frame per state + the held ending
        h, w, _ = frames[0].shape
        assert h % 2 == 0 and w % 2 == 0
        diff = np.abs(frames[0].astype(int) - frames[len(frames) // 2].astype(int)).mean()
        assert diff > 0.5, "the car should have moved between the first and the middle frame"
    meta = imageio.get_reader(policy_out / "ep00_seed7.mp4").get_meta_data()
    assert meta["codec"] == "h264" and meta["fps"] == FPS and "yuv420p" in meta.get("pix_fmt", "yuv420p")
    preview = np.asarray(Image.open(policy_out / "preview.png").convert("RGB"))
    assert preview.shape == frames[0].shape and preview.std() > 10


def test_trajectory_png_is_drawn(policy_out):
    img = np.asarray(Image.open(policy_out / "trajectories.png").convert("RGB")).astype(int)
    assert img.shape[0] > 200 and img.shape[1] > 300 and img.std() > 20
    green = (np.abs(img - np.array([0x2c, 0xa0, 0x2c])).sum(axis=2) < 40).sum()  # the "success" colour
    assert green > 200, "successful paths should be drawn in the success colour"


def test_eval_info_is_evaluate_on_the_same_seeds(checkpoint, tmp_path, capsys):
    """Same checkpoint, same seeds: eval_info.json holds exactly `evaluate`'s result (names and numbers), here with
    two env processes against evaluate's serial run."""
    from learn.checkpoint import load_policy
    assert run_cli("--policy", checkpoint, "--episodes", 2, "--workers", 2, "--out", tmp_path) == 0
    info = json.loads((tmp_path / "eval_info.json").read_text())
    assert info["label"] == "bc (bc_tiny-best)" and info["source"] == str(checkpoint)
    policy = load_policy(checkpoint)
    ref = json.loads(json.dumps(evaluate(policy, policy.track, episodes=2, seed0=TEST_SEED).to_dict()))
    rows = info.pop("per_episode")
    assert [r.pop("episode") for r in rows] == [0, 1]
    assert rows == ref.pop("per_episode")
    assert {k: info[k] for k in ref} == ref
    assert set(ref) >= {f"{o}_rate" for o in OUTCOMES}
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == [f"ep0{i}_seed{TEST_SEED + i}.mp4" for i in (0, 1)]
    assert capsys.readouterr().err == ""  # --quiet, and the checkpoint's own track: nothing on stderr


def test_checkpoint_on_a_track_it_never_saw_prints_its_note_and_runs(checkpoint, tracks, tmp_path, capsys):
    assert run_cli("--policy", checkpoint, "--track", tracks["short_l_mirror"], "--episodes", 1, "--workers", 1,
                   "--out", tmp_path) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["note: bc was trained on short_l; evaluating on short_l_mirror, a track it never saw"]
    info = json.loads((tmp_path / "eval_info.json").read_text())
    assert info["track"] == "short_l_mirror" and info["per_episode"][0]["track"] == "short_l_mirror"


# --- several tracks -------------------------------------------------------------------------------------------------
def test_grid_over_several_tracks_has_one_labelled_panel_per_episode(tracks, tmp_path):
    """Episodes on three different tracks (per-episode reset options): one grid video, every panel one size,
    labelled with its episode, track and outcome; one small map per track; per-episode videos only with --each."""
    names = ["short_l", "short_i", "short_l_mirror"]
    spec = agents.resolve("autopilot")
    runs = policy_runs([spec], load_track(tracks["short_l"]), [TEST_SEED + i for i in range(3)],
                       options=[{"track": load_track(tracks[n])} for n in names], workers=1, quiet=True)
    assert [e.track.name for e in runs[0].episodes] == names
    assert [e.outcome for e in runs[0].episodes] == ["success"] * 3, "the autopilot drives every track"
    plan = Plan("policy", runs, "grid", "three tracks")
    cfg = ReplayConfig(policy="autopilot", each=True, quiet=True)
    planned, renderers = plan_videos(cfg, plan)
    try:
        write_outputs(cfg, tmp_path, plan, planned)
    finally:
        for r in renderers:
            r.close()
    videos = sorted(p.name for p in tmp_path.glob("*.mp4"))
    assert videos == ["ep00_seed20000.mp4", "ep01_seed20001.mp4", "ep02_seed20002.mp4", "grid.mp4"]
    info = json.loads((tmp_path / "eval_info.json").read_text())
    assert [e["track"] for e in info["per_episode"]] == names
    assert info["tracks"] == 3 and info["videos"][0] == "grid.mp4"
    frames = decode(tmp_path / "grid.mp4")
    assert len(frames) == max(e["steps"] for e in info["per_episode"]) + 1 + HOLD
    labels = [f"ep {i} | {e['track']} | {e['outcome']}" for i, e in enumerate(info["per_episode"])]
    grid = Grid(labels, GRID_PANEL)
    assert frames[0].shape == (grid.size[1], grid.size[0], 3) and (grid.cols, grid.rows) == (3, 1)
    assert all(label_text_pixels(frames[0], grid, i) > 15 for i in range(3)), "every panel needs its label"
    assert tuple(grid._strips[0][0, 0]) == LABEL_BG and (grid._strips[0] == LABEL_FG).all(axis=2).any()
    # the per-episode videos keep each track's own scale: the straight's frame is not the L's
    assert decode(tmp_path / "ep00_seed20000.mp4")[0].shape != decode(tmp_path / "ep01_seed20001.mp4")[0].shape
    traj = np.asarray(Image.open(tmp_path / "trajectories.png").convert("RGB"))
    assert traj.std() > 20


@needs_generator
def test_random_tracks_make_one_grid_video(checkpoint, tmp_path, capsys):
    assert run_cli("--policy", checkpoint, "--track", "random", "--episodes", 3, "--workers", 1,
                   "--out", tmp_path) == 0
    err = capsys.readouterr().err
    assert "note: bc was trained on short_l" in err and "never saw" in err
    info = json.loads((tmp_path / "eval_info.json").read_text())
    assert info["track"] == "random" and info["tracks"] == 3
    assert len({e["track_id"] for e in info["per_episode"]}) == 3
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == ["grid.mp4"]
    frames = decode(tmp_path / "grid.mp4")
    grid = Grid(["a", "b", "c"], GRID_PANEL)
    assert frames[0].shape == (grid.size[1], grid.size[0], 3)
    assert all(label_text_pixels(frames[0], grid, i) > 15 for i in range(3))


@needs_generator
def test_compare_on_random_tracks_gives_every_agent_the_same_tracks(checkpoint, tmp_path):
    """Same seeds, same tracks; the autopilot is built for the track its episode's seed draws (and so finishes)."""
    assert run_cli("--compare", checkpoint, "autopilot", "--track", "random:test", "--episodes", 1,
                   "--workers", 1, "--out", tmp_path) == 0
    info = json.loads((tmp_path / "eval_info.json").read_text())
    a, b = ([e["track_id"] for e in r["per_episode"]] for r in info["runs"])
    assert a == b and info["track"] == "random:test"
    assert info["runs"][1]["success_rate"] == 1.0, "the autopilot drives the generated track it was built for"


# --- datasets -------------------------------------------------------------------------------------------------------
def test_dataset_playback_is_exact_and_concatenated(datasets_root, tmp_path):
    ds = read_dataset("demo_mix")
    assert run_cli("--dataset", "demo_mix", "--episodes", "0,2", "--concat", "--out", tmp_path) == 0
    info = json.loads((tmp_path / "eval_info.json").read_text())
    assert [e.pop("episode") for e in info["per_episode"]] == [0, 2]
    assert info["per_episode"] == [json.loads(json.dumps(asdict(EpisodeOutcome.of(ds[i])))) for i in (0, 2)]
    frames = decode(tmp_path / "episodes.mp4")
    assert len(frames) == sum(ds[i].steps + 1 + HOLD for i in (0, 2))
    # exact playback: each decoded frame is closest to the frame drawn from the stored observation of that step
    # (not one a few steps off), on the stored track: the video shows the recording, not a new simulation
    renderer = EpisodeRenderer()
    ep = ds[0]
    for f in (10, ep.steps // 2):
        diffs = {g: np.abs(frames[f].astype(int) - renderer.frame(ep, g, "dataset demo_mix", 0).astype(int)).mean()
                 for g in (f - 6, f, f + 6)}
        assert diffs[f] < 0.85 * min(diffs[f - 6], diffs[f + 6]), diffs


def test_compare_video_has_one_labelled_panel_per_run(datasets_root, checkpoint, tmp_path):
    assert run_cli("--compare", checkpoint, "autopilot:noisy", "--dataset", "demo_mix", "--episodes", "1",
                   "--out", tmp_path) == 0
    info = json.loads((tmp_path / "eval_info.json").read_text())
    labels = [r["label"] for r in info["runs"]]
    assert labels == ["demo (demo_mix)", "bc (bc_tiny-best)", "autopilot (noisy)"]
    # every agent started where the demo started: same seed, same track
    assert len({r["per_episode"][0]["seed"] for r in info["runs"]}) == 1
    assert len({r["per_episode"][0]["track_id"] for r in info["runs"]}) == 1
    # from exactly the demo's start: eval_info.json said the env's default jitter (0.1, 0.1) was used
    assert [r["env"]["start_jitter"] for r in info["runs"][1:]] == [[0.0, 0.0]] * 2
    frames = decode(tmp_path / "compare.mp4")
    assert len(frames) == max(r["per_episode"][0]["steps"] for r in info["runs"]) + 1 + HOLD
    panel = EpisodeRenderer().size(read_dataset("demo_mix")[0].track)
    grid = Grid([f"{r['label']} | {r['per_episode'][0]['outcome']}" for r in info["runs"]], panel)
    assert (grid.cols, grid.rows) == (3, 1) and frames[0].shape == (grid.size[1], grid.size[0], 3)
    strips = []
    for i in range(3):
        assert label_text_pixels(frames[0], grid, i) > 15, f"panel {i} has no label text"
        x0, y0, x1, _ = grid.panel_box(i)
        strips.append(frames[0][y0:y0 + LABEL_HEIGHT, x0:x1].astype(int))
    assert np.abs(strips[1] - strips[2]).mean() > 1, "different runs need different labels"


def test_grid_layout():
    assert (Grid(["a", "b", "c", "d"], (10, 8)).cols, Grid(["a", "b", "c", "d"], (10, 8)).rows) == (2, 2)
    assert (Grid(list("abcdef"), (10, 8)).cols, Grid(list("abcdef"), (10, 8)).rows) == (3, 2)
    g = Grid(["a", "b"], (10, 8))
    assert g.size == (20, 8 + LABEL_HEIGHT)
    out = g.compose([np.full((8, 10, 3), 7, np.uint8), np.full((8, 10, 3), 9, np.uint8)])
    assert out[LABEL_HEIGHT, 0, 0] == 7 and out[LABEL_HEIGHT, 10, 0] == 9
    with pytest.raises(ValueError, match="panel 1 is 12x8"):
        g.compose([np.zeros((8, 10, 3), np.uint8), np.zeros((8, 12, 3), np.uint8)])


def test_chase_view_shows_the_car_and_little_sky(datasets_root):
    ep = read_dataset("demo_mix")[0]
    renderer = EpisodeRenderer("both")
    try:
        w, h = renderer.size(ep.track)
        f = renderer.frame(ep, 40)
        assert f.shape == (h, w, 3)
        chase = f[renderer.topdown(ep.track).size[1]:].astype(int)
        r, g, b = chase[..., 0], chase[..., 1], chase[..., 2]
        car = (b > 150) & (r < 60) & (g < 60)          # the racecar's blue body
        assert car.sum() > 0.01 * car.size, "the car should be clearly visible"
        sky = (b > 150) & (b > r + 40) & (np.arange(chase.shape[0])[:, None] < chase.shape[0] // 2) & ~car
        assert sky.sum() < 0.35 * car.size, "the sky should not fill the frame"
    finally:
        renderer.close()


# --- bad input ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, needle", [
    (["--policy", "{tmp}/corrupt.pt"], "corrupt.pt: not a readable checkpoint"),
    (["--policy", "{tmp}/empty.pt"], "empty.pt: empty file (0 bytes"),
    (["--policy", "{tmp}/missing.pt"], "missing.pt: checkpoint not found"),
    (["--dataset", "no_such_dataset"], "no_such_dataset"),
    (["--dataset", "demo_mix", "--episodes", "0,9"], "--episodes asks for 9"),
    (["--dataset", "demo_mix", "--episodes", "0,0"], "--episodes '0,0': episode 0 listed more than once"),
    (["--dataset", "demo_mix", "--episodes", "x"], "--episodes 'x'"),
    (["--dataset", "demo_mix", "--episodes", "-1"], "--episodes '-1'"),
    (["--dataset", "demo_mix", "--track", "hairpin"], "--track does not apply to --dataset"),
    (["--policy", "autopilot:wild"], "unknown autopilot skill 'wild'"),
    (["--policy", "autopilot:"], "unknown autopilot skill ''"),         # a dangling colon is not the expert
    (["--policy", "autopilot", "--episodes", "0"], "--episodes '0'"),
    (["--policy", "autopilot", "--episodes", "-2"], "--episodes '-2'"),
    (["--policy", "autopilot", "--episodes", "0,0"], "--episodes '0,0'"),
    (["--policy", "autopilot", "--track", "nowhere"], "--track: unknown track 'nowhere'"),
])
def test_bad_inputs_give_one_clear_line(args, needle, datasets_root, tmp_path, capsys):
    (tmp_path / "corrupt.pt").write_bytes(b"this is not a checkpoint")
    (tmp_path / "empty.pt").write_bytes(b"")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert run_cli(*args, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("replay: error: ") and needle in err[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(HAS_GENERATOR, reason="only without the generator")
def test_random_track_without_the_generator_is_one_line(tmp_path, capsys):
    assert run_cli("--policy", "autopilot", "--track", "random:test", "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--track 'random:test': generated tracks need racecar_env.tracks.generate" in err[0]


def test_out_is_never_silently_overwritten(policy_out, tracks, tmp_path, capsys):
    """--out holding replay output is refused (one line, with the hint); --overwrite replaces replay's files only."""
    assert run_cli("--policy", "autopilot", "--episodes", 1, "--out", policy_out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--out {policy_out} already holds replay output" in err[0] and "--overwrite" in err[0]
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert run_cli("--policy", "autopilot", "--out", f) == 2
    assert f"--out {f} is a file" in capsys.readouterr().err
    assert run_cli("--policy", "autopilot", "--out", f / "sub") == 2
    assert f"{f} is a file, not a folder" in capsys.readouterr().err
    out = tmp_path / "again"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "ep07_seed99.mp4").write_bytes(b"stale")
    assert run_cli("--policy", "autopilot", "--episodes", 1, "--out", out) == 2
    assert run_cli("--policy", "autopilot", "--track", tracks["short_i"], "--episodes", 1, "--workers", 1,
                   "--overwrite", "--out", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["ep00_seed20000.mp4", "eval_info.json", "notes.txt",
                                                    "preview.png", "trajectories.png"]


def test_cli_subprocess_one_line_error_and_plain_progress_in_a_log(tracks, tmp_path):
    """A real `python -m replay`: a missing checkpoint is one line (no traceback, exit 2); a run logged to a file
    gets plain progress lines, not tqdm's carriage-return updates."""
    r = subprocess.run([sys.executable, "-m", "replay", "--policy", str(tmp_path / "nope.pt"), "--out",
                        str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"replay: error: {tmp_path / 'nope.pt'}: checkpoint not found"]
    r = subprocess.run([sys.executable, "-m", "replay", "--policy", "autopilot", "--track", str(tracks["short_i"]),
                        "--episodes", "1", "--workers", "1", "--out", str(tmp_path / "o")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["rollout", "render"], lines
    assert "autopilot (expert): success" in r.stdout


# --- live -----------------------------------------------------------------------------------------------------------
def _demo_clips(n: int):
    from replay.session import episode_clips, load_demos
    return episode_clips(EpisodeRenderer(), load_demos("demo_mix", f"0-{n - 1}"))


def test_live_player_keys_and_loop(datasets_root):
    import pygame

    from replay.live import PlayerState, advance, handle_key, play
    clips = _demo_clips(2)
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


def test_live_cli_with_the_dummy_driver(datasets_root, tmp_path, capsys):
    """--live through the command line: the window opens (dummy driver), a queued q ends it, no files written."""
    import pygame
    pygame.display.init()
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q))
    assert run_cli("--dataset", "demo_mix", "--episodes", "0", "--live", "--out", tmp_path / "o") == 0
    assert "live session closed" in capsys.readouterr().out and not (tmp_path / "o").exists()


def test_live_without_display_is_a_clear_error(datasets_root, monkeypatch):
    from replay.errors import ReplayError
    from replay.live import play
    clips = _demo_clips(1)
    monkeypatch.setenv("SDL_VIDEODRIVER", "no_such_driver")
    with pytest.raises(ReplayError, match="--live needs a display"):
        play(clips, max_ticks=1)


def _live_subprocess(datasets_root, **env):
    """`python -m replay --live` on demo 0 with exactly the display settings given (none by default)."""
    base = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    return subprocess.run([sys.executable, "-m", "replay", "--dataset", "demo_mix", "--episodes", "0", "--live",
                           "--quiet"], cwd=ROOT, env={**base, "MINARI_DATASETS_PATH": str(datasets_root), **env},
                          capture_output=True, text=True, timeout=60)   # a hang fails here


def test_live_without_a_screen_is_one_line_not_an_endless_invisible_window(datasets_root, tmp_path):
    # no DISPLAY: refused up front (teleop's check), before the demo is even read
    r = _live_subprocess(datasets_root)
    lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("pybullet build time")]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith("replay: error: --live needs a display") and "drop --live" in lines[0]
    assert "demo_mix" not in r.stdout
    # a DISPLAY with no server behind it: SDL falls back to drawing nowhere, which the player refuses too
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    r = _live_subprocess(datasets_root, DISPLAY=":77", XDG_RUNTIME_DIR=str(xdg))
    lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("pybullet build time")]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "--live needs a display" in lines[0] and "fell back" in lines[0]


def test_live_with_the_dummy_driver_plays_once_and_closes(datasets_root):
    """SDL_VIDEODRIVER=dummy asks for no window on purpose: nobody can press q, so the player ends by itself."""
    r = _live_subprocess(datasets_root, SDL_VIDEODRIVER="dummy")
    assert r.returncode == 0, r.stderr
    assert "live session closed" in r.stdout and "plays every episode once" in r.stderr


def test_compare_of_one_agent_twice_numbers_its_panels(tracks, tmp_path):
    assert run_cli("--compare", "autopilot", "autopilot", "--track", tracks["short_i"], "--episodes", 1,
                   "--workers", 1, "--out", tmp_path) == 0
    info = json.loads((tmp_path / "eval_info.json").read_text())
    assert [r["label"] for r in info["runs"]] == ["autopilot (expert) #1", "autopilot (expert) #2"]


def test_evaluate_json_records_the_start_jitter(checkpoint, tmp_path):
    """learn.evaluate --json did not say which start jitter it used: a wider-starts result read as a default one."""
    from learn import evaluate
    for jitter, want in ((["--start-jitter", "0.3,0.2"], [0.3, 0.2]), ([], [0.1, 0.1])):
        out = tmp_path / f"e{len(jitter)}.json"
        assert evaluate.main([str(checkpoint), "--episodes", "1", "--workers", "1", "--quiet", "--json", str(out),
                              *jitter]) == 0
        assert json.loads(out.read_text())["start_jitter"] == want
