"""Bad input a user really produces: each gives one clear line (exit 2, naming the file or flag and what was
expected) or correct behaviour; never a traceback, never exit 0 with a wrong result, never a changed existing file.
(The random side of the same promise is tests/test_fuzz.py.)"""
from __future__ import annotations

import hashlib
import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import python_with_ctrl_c

from racecar_env import RaceCarEnv
from racecar_env.tracks import DIFFICULTIES, TEST_SEEDS, TRACKS_DIR, TrackError, generate, load_track, parse_track
from racecar_env.tracks.model import check_geometry

REPO = Path(__file__).resolve().parent.parent

# a straight corridor: ~40-step autopilot episodes keep the module fast
SHORT = {"name": "short", "walls": [[0, 0, 2, 0], [0, 0, 0, 5], [2, 0, 2, 5], [0, 5, 2, 5]],
         "start": {"x": 1.0, "y": 0.5, "yaw": 1.5707963}, "goal": {"x": 1.0, "y": 4.0, "radius": 0.8},
         "centerline": [[1, 0.5], [1, 4]]}

# a corridor 0.44 m wide for the 0.30 m car: clear at the exact start, but the env's start jitter (+-0.1 m) would
# put the car in a wall at almost every draw
NARROW = {"walls": [[0.7, 0, 0.7, 5], [1.3, 0, 1.3, 5], [0.7, 0, 1.3, 0], [0.7, 5, 1.3, 5]], "wall_thickness": 0.16,
          "start": {"x": 1.0, "y": 0.5, "yaw": 1.5707963}, "goal": {"x": 1.0, "y": 4.0, "radius": 0.2},
          "centerline": [[1, 0.5], [1, 4]]}


def s_curve() -> dict:
    return json.loads((TRACKS_DIR / "s_curve.json").read_text())


def write_track(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def tree_digest(*paths: Path) -> str:
    """One hash of every file under `paths` (names and bytes): equal means nothing was changed, added or lost."""
    h = hashlib.sha256()
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            h.update(str(f).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def run(*args, env=None, timeout=300, **kw) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "MPLBACKEND": "Agg", **(env or {})}
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=timeout, **kw)


MAINS = {"teleop": "teleop.__main__", "teleop.autopilot": "teleop.autopilot", "learn": "learn.__main__",
         "learn.evaluate": "learn.evaluate", "replay": "replay.cli",
         "racecar_env.tracks": "racecar_env.tracks.__main__"}


def cli(*args, env=None) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS` run in-process through its main(argv) (fast; a real program where that matters)."""
    import contextlib
    import importlib
    import io
    assert args[0] == "-m"
    main = importlib.import_module(MAINS[args[1]]).main
    old = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args[2:]])
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 2
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return subprocess.CompletedProcess(args, code or 0, out.getvalue(), err.getvalue())


def one_line_error(p: subprocess.CompletedProcess, *needles: str) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout[-2000:], p.stderr[-3000:])
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    return tmp_path / "datasets"


# --- tracks ---------------------------------------------------------------------------------------------------------
def test_binary_empty_and_folder_track_files_are_one_line(tmp_path):
    binary = tmp_path / "bin.json"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(TrackError, match="not a text file") as e:
        load_track(binary)
    assert str(binary) in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(TrackError, match="empty file"):
        load_track(tmp_path / "empty.json")
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(TrackError, match="not a file"):
        load_track(tmp_path / "dir.json")
    (tmp_path / "deep.json").write_text("[" * 100_000)
    with pytest.raises(TrackError, match="deep.json"):
        load_track(tmp_path / "deep.json")
    (tmp_path / "bigint.json").write_text('{"walls": ' + "9" * 5000 + "}")
    with pytest.raises(TrackError, match="bigint.json"):
        load_track(tmp_path / "bigint.json")


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d["walls"].__setitem__(8, [8, float("nan"), 15, 8]), ["'walls' row 8", "finite"]),
    (lambda d: d["walls"].__setitem__(3, [0, 4, 8]), ["'walls' row 3", "4 numbers"]),
    (lambda d: d["walls"].__setitem__(0, [0, 0, 1e300, 0]), ["'walls' row 0", "10000"]),
    (lambda d: d["centerline"].__setitem__(1, ["a", 3]), ["'centerline' row 1"]),
    (lambda d: d["start"].__setitem__("x", 10 ** 400), ["'start.x'", "finite"]),
    (lambda d: d.__setitem__("walls", []), ["'walls'", "1 to"]),
    (lambda d: d.__setitem__("name", {"x": 1}), ["'name'"]),
    (lambda d: d.__setitem__("start", [1, 2, 3]), ["'start' must be an object"]),
    # geometry: each refused naming the field, so the env never meets it
    (lambda d: d.__setitem__("start", {"x": 1.0, "y": 0.1, "yaw": 1.57}), ["'start'", "wall row 0"]),
    (lambda d: d.__setitem__("start", {"x": 1.0, "y": 0.3, "yaw": 1.57}), ["'start'", "overlaps wall row 0"]),
    (lambda d: d.update(NARROW), ["'start'", "too close to wall row", "jitter"]),
    (lambda d: d.__setitem__("start", {"x": -5.0, "y": -5.0, "yaw": 1.57}), ["'start'", "outside the walls"]),
    (lambda d: d.__setitem__("goal", {"x": 30.0, "y": 30.0, "radius": 1.0}), ["'goal'", "outside the walls"]),
    (lambda d: d.__setitem__("goal", {"x": 5.0, "y": 3.0, "radius": 1.0}), ["'goal'", "centre-line's last point"]),
    (lambda d: d.__setitem__("start", {"x": 5.0, "y": 3.0, "yaw": 0.0}), ["'start'", "centre-line's first point"]),
    (lambda d: d["goal"].__setitem__("radius", 100.0), ["'goal'", "already holds the start"]),
    (lambda d: d["centerline"].insert(2, [5, 5]), ["'centerline'", "wall row"]),
    (lambda d: d.update(start={"x": 14.5, "y": 7.0, "yaw": 0.0}, goal={"x": 1.0, "y": 0.5, "radius": 1.0}),
     ["'start'"]),   # start and goal swapped: the centre-line no longer begins at the start
    # a route that crosses itself lets a car skip the loop between and still earn its progress
    (lambda d: d["centerline"].__setitem__(slice(1, 1), [[3, 3], [3, 0.5], [2, 2]]),
     ["'centerline' crosses itself", "rows 0-1 and 2-3"]),
    (lambda d: d["walls"].append([4, 4, 4, 4]), ["'walls' row 10", "zero length"]),
    # misspelt fields are not taken for the extra keys a track may carry (description, generator)
    (lambda d: d.__setitem__("wall_thicknes", 0.1), ["unknown field 'wall_thicknes'", "'wall_thickness'"]),
    (lambda d: d.__setitem__("centreline", d["centerline"]), ["unknown field 'centreline'", "'centerline'"]),
    (lambda d: d["goal"].__setitem__("radis", 5), ["unknown field 'goal.radis'", "x, y, radius"]),
])
def test_malformed_or_impossible_track_is_one_line_naming_the_field(tmp_path, mutate, words):
    d = s_curve()
    mutate(d)
    path = write_track(tmp_path / "bad.json", d)
    with pytest.raises(TrackError) as e:
        load_track(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and not msg.startswith("dataset"), msg
    for w in words:
        assert w in msg, (w, msg)


def test_shipped_and_generated_tracks_pass_the_same_validation():
    for name in ("s_curve", "hairpin"):
        check_geometry(load_track(name))
    seeds = list(range(0, 12)) + [TEST_SEEDS.start + s for s in range(4)]
    for difficulty in (None, *DIFFICULTIES):
        for seed in seeds:
            t = generate(seed, difficulty=difficulty)   # generate() itself parses (and so validates) what it builds
            check_geometry(t)
            assert parse_track(t.to_dict()).track_id == t.track_id
    # a generator setting that would build an impossible start is refused by the same check, in one line
    with pytest.raises(TrackError, match="'start'"):
        generate(3, start_clearance=0.05)


def test_a_valid_track_runs_at_its_first_reset_and_big_jitter_never_starts_outside(tmp_path):
    env = RaceCarEnv(write_track(tmp_path / "short.json", SHORT), start_jitter=(2.0, 3.0))
    try:
        for seed in range(15):   # a 2 m jitter in a 1.7 m corridor: every start is inside it, none in a wall
            env.reset(seed=seed)
            x, y = env.sim.car_state()[:2]
            assert 0.15 < x < 1.85 and 0.15 < y < 4.85 and not env.sim.touches_wall(0.02)
    finally:
        env.close()


def test_track_errors_name_no_dataset_in_any_cli(trained, tmp_path):
    """The same bad track through every CLI that takes one: one line, exit 2, never called a dataset problem, and
    nothing created (no dataset, no run folder, no output folder)."""
    d = s_curve()
    d["start"] = {"x": 1.0, "y": 0.1, "yaw": 1.57}
    bad = write_track(tmp_path / "wall.json", d)
    binary = tmp_path / "bin.json"
    binary.write_bytes(os.urandom(300))
    root = trained / "datasets"
    env = {"MINARI_DATASETS_PATH": str(root)}
    before = tree_digest(root, trained / "run")
    ck = trained / "run" / "checkpoints" / "best.pt"
    for track, needle in ((bad, "'start'"), (binary, "not a text file"), ("nope", "unknown track 'nope'")):
        for args in (["-m", "teleop", "--driver", "autopilot", "--episodes", "1", "--track", track, "--quiet"],
                     ["-m", "teleop.autopilot", "--track", track, "--episodes", "1", "--quiet"],
                     ["-m", "learn", "--dataset", "tiny", "--eval-track", track, "--out", tmp_path / "r"],
                     ["-m", "learn.evaluate", ck, "--track", track, "--quiet"],
                     ["-m", "replay", "--policy", "autopilot", "--track", track, "--out", tmp_path / "o"]):
            line = one_line_error(cli(*args, env=env), needle)
            assert "dataset" not in line.split(": error: ", 1)[1].replace(str(tmp_path), ""), line
    assert tree_digest(root, trained / "run") == before, "a bad track must not leave a dataset behind"
    assert not (tmp_path / "r").exists() and not (tmp_path / "o").exists()


# --- env ------------------------------------------------------------------------------------------------------------
def test_reset_options_partial_start_unknown_keys_and_use_after_close():
    env = RaceCarEnv("s_curve")
    s = env.track.start
    env.reset(seed=0, options={"start": {"x": s.x + 0.2}})   # y and yaw from the track's start, no jitter
    x, y, yaw = env.sim.car_state()[:3]
    assert abs(x - (s.x + 0.2)) < 1e-3 and abs(y - s.y) < 1e-3 and abs(yaw - s.yaw) < 1e-3
    with pytest.raises(ValueError, match="not known"):
        env.reset(options={"begin": {}})
    with pytest.raises(ValueError, match="unknown keys"):
        env.reset(options={"start": {"x": 1.0, "z": 0.0}})
    with pytest.raises(ValueError, match="start_jitter"):
        env.reset(options={"start_jitter": (float("nan"), 0.1)})
    with pytest.raises(ValueError, match="max_episode_steps"):
        RaceCarEnv("s_curve", max_episode_steps=0)
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.step([0.0, 0.0])
    with pytest.raises(RuntimeError, match="closed"):
        env.reset()


# --- checkpoints, learn, evaluate, replay ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny dataset (2 autopilot demos on SHORT) and a 1-update BC run on it."""
    from conftest import autopilot_datasets
    from learn.config import TrainConfig
    from learn.train import train
    from teleop.record import RecordConfig
    base = tmp_path_factory.mktemp("trained")
    track = write_track(base / "short.json", SHORT)
    with autopilot_datasets(base / "datasets", RecordConfig("tiny", episodes=2, track=str(track), workers=1,
                                                            progress=False)):
        cfg = TrainConfig.build(dataset="tiny", algo="bc", steps=1, eval_every=0, eval_episodes=1,
                                final_eval_episodes=0, eval_workers="1", out=str(base / "run"))
        train(cfg, progress=False, log=lambda *a: None)
    return base


def test_damaged_checkpoints_are_one_line_in_every_cli(trained, tmp_path):
    good = (trained / "run" / "checkpoints" / "best.pt").read_bytes()
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "folder.pt").mkdir()
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 3])
    (tmp_path / "text.pt").write_text("hello\n")
    import torch   # a weight changed after the save, in a file that still unzips (a bit flip on disk)
    raw = torch.load(trained / "run" / "checkpoints" / "best.pt", weights_only=True)
    name = next(iter(raw["agent"]["actor"]))
    raw["agent"]["actor"][name].view(-1)[0] += 1e-3
    torch.save(raw, tmp_path / "flipped.pt")
    env = {"MINARI_DATASETS_PATH": str(trained / "datasets")}
    for name, needle in (("empty.pt", "empty file (0 bytes"), ("folder.pt", "not a file"),
                         ("cut.pt", "truncated or damaged"), ("text.pt", "not a file torch.save wrote"),
                         ("flipped.pt", "do not match the checksum")):
        ck = tmp_path / name
        line = one_line_error(cli("-m", "learn.evaluate", ck, "--episodes", "1", "--quiet", env=env), str(ck), needle)
        assert len(line) < 300, line   # a sentence, not torch's internal error text
        one_line_error(cli("-m", "replay", "--policy", ck, "--out", tmp_path / "o", "--quiet", env=env), needle)
    assert not (tmp_path / "o").exists()
    # --resume of a run whose last.pt is damaged: one line, nothing changed
    run_dir = tmp_path / "run"
    import shutil
    shutil.copytree(trained / "run", run_dir)
    (run_dir / "checkpoints" / "last.pt").write_bytes(good[:1000])
    before = tree_digest(run_dir)
    one_line_error(cli("-m", "learn", "--out", run_dir, "--resume", "--quiet", env=env), "last.pt", "not a readable")
    assert tree_digest(run_dir) == before


def test_learn_flags_are_checked_at_once_and_nothing_is_touched(trained, tmp_path):
    env = {"MINARI_DATASETS_PATH": str(trained / "datasets")}
    for flags, needle in ((["--algo", "td3bc", "--alpha", "nan"], "alpha must be a finite number"),
                          (["--algo", "td3bc", "--alpha", "inf"], "alpha must be a finite number"),
                          (["--algo", "iql", "--expectile", "2"], "expectile must be <= 1"),
                          (["--algo", "bc", "--batch-size", "0"], "batch_size must be >= 1"),
                          (["--algo", "bc", "--save-every-s", "nan"], "save_every_s"),
                          (["--algo", "bc", "--alpha", "1"], "alpha (a setting of td3bc, not bc)")):
        one_line_error(cli("-m", "learn", "--dataset", "tiny", "--out", tmp_path / "r", *flags, env=env), needle)
        assert not (tmp_path / "r").exists()
    f = tmp_path / "file"
    f.write_text("mine")
    one_line_error(cli("-m", "learn", "--dataset", "tiny", "--out", f, env=env), "is a file")
    one_line_error(cli("-m", "learn", "--dataset", "tiny", "--out", f / "sub", env=env), "is a file")
    assert f.read_text() == "mine"
    # a folder with someone else's files is not a run folder
    other = tmp_path / "other"
    other.mkdir()
    (other / "eval.json").write_text("{}")
    one_line_error(cli("-m", "learn", "--dataset", "tiny", "--out", other, "--algo", "bc", env=env), "eval.json")
    assert (other / "eval.json").read_text() == "{}" and sorted(p.name for p in other.iterdir()) == ["eval.json"]
    # --resume below the run's step count: refused, config.json untouched
    run_dir = trained / "run"
    before = tree_digest(run_dir)
    one_line_error(cli("-m", "learn", "--out", run_dir, "--resume", "--steps", "0", env=env), "already at update 1")
    assert tree_digest(run_dir) == before


def test_steps_0_claims_no_best_pt_and_leaves_a_resumable_run(trained, tmp_path):
    env = {"MINARI_DATASETS_PATH": str(trained / "datasets")}
    out = tmp_path / "zero"
    p = cli("-m", "learn", "--dataset", "tiny", "--algo", "bc", "--steps", "0", "--eval-episodes", "1",
            "--final-eval-episodes", "1", "--eval-workers", "1", "--out", out, "--quiet", env=env)
    assert p.returncode == 0, p.stderr
    assert not (out / "checkpoints" / "best.pt").exists() and (out / "checkpoints" / "last.pt").is_file()
    assert "checkpoints/best.pt" not in p.stdout and "no best.pt" in p.stdout
    p = cli("-m", "learn", "--out", out, "--resume", "--steps", "2", "--eval-every", "0", "--quiet", env=env)
    assert p.returncode == 0, p.stderr
    assert (out / "checkpoints" / "best.pt").is_file() and json.loads((out / "eval.json").read_text())["steps"] == 2


def test_a_kill_with_eval_every_0_keeps_last_pt_and_resume_continues(trained, tmp_path):
    """A real SIGKILL of `python -m learn --eval-every 0 --save-every-s 1`: last.pt was saved on the clock, and
    --resume continues from its step (not from 0)."""
    env = {**os.environ, "MINARI_DATASETS_PATH": str(trained / "datasets"), "SDL_VIDEODRIVER": "dummy"}
    out = tmp_path / "killed"
    last = out / "checkpoints" / "last.pt"
    proc = subprocess.Popen([sys.executable, "-m", "learn", "--dataset", "tiny", "--algo", "bc", "--steps",
                             "1000000", "--eval-every", "0", "--save-every-s", "1", "--batch-size", "16",
                             "--hidden", "16,16", "--eval-workers", "1", "--out", str(out), "--quiet"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while not last.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        time.sleep(1.5)   # at least one more save on the clock
    finally:
        proc.kill()
        proc.wait()
    assert last.is_file(), proc.stderr.read().decode()[-2000:]
    import torch
    step = int(torch.load(last, map_location="cpu", weights_only=True)["step"])
    assert step > 0
    p = run("-m", "learn", "--out", out, "--resume", "--steps", str(step + 20), "--eval-episodes", "1",
            "--final-eval-episodes", "0", env={"MINARI_DATASETS_PATH": str(trained / "datasets")})
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"resuming at step {step}/" in p.stdout
    assert json.loads((out / "eval.json").read_text())["steps"] == step + 20


def test_evaluate_and_replay_flags(trained, tmp_path):
    env = {"MINARI_DATASETS_PATH": str(trained / "datasets")}
    ck = trained / "run" / "checkpoints" / "best.pt"
    before = tree_digest(trained / "run", trained / "datasets")
    one_line_error(cli("-m", "learn.evaluate", ck, "--episodes", "0", env=env), "--episodes", "whole number >= 1")
    one_line_error(cli("-m", "learn.evaluate", ck, "--seed", "-1", env=env), "--seed")
    one_line_error(cli("-m", "learn.evaluate", ck, "--workers", "abc", env=env), "--workers")
    one_line_error(cli("-m", "learn.evaluate", ck, "--start-jitter", "nan,0", env=env), "--start-jitter")
    one_line_error(cli("-m", "learn.evaluate", ck, "--json", ck, env=env), "--json", ".json file")
    one_line_error(cli("-m", "learn.evaluate", ck, "--json", tmp_path, env=env), "--json")
    one_line_error(cli("-m", "learn.evaluate", ck, "--video", tmp_path / "v.gif", env=env), "--video", ".mp4")
    # an error once the progress display has started is still the one line (no final count after it)
    one_line_error(cli("-m", "learn.evaluate", ck, "--track", "random:nowhere", "--workers", "1", env=env),
                   "random:nowhere")
    one_line_error(cli("-m", "racecar_env.tracks", "--gallery", "2", "--max-turn-deg", "inf", "--out",
                       tmp_path / "g.png"), "max_turn_deg")
    # no runpy RuntimeWarning (learn.evaluate imported twice): -W error turns any warning into a failure
    p = run("-W", "error", "-m", "learn.evaluate", tmp_path / "missing.pt", env=env)
    one_line_error(p, "checkpoint not found")
    p = run("-W", "error", "-m", "learn.evaluate", ck, "--episodes", "1", "--workers", "1", "--quiet", env=env)
    assert p.returncode == 0 and "Warning" not in p.stderr, p.stderr[-2000:]
    # replay: --out rules and --episodes
    one_line_error(cli("-m", "replay", "--dataset", "tiny", "--episodes", "0,0", "--out", tmp_path / "o", env=env),
                   "listed more than once")
    one_line_error(cli("-m", "replay", "--policy", "autopilot", "--seed", "-3", env=env), "--seed")
    f = tmp_path / "f.txt"
    f.write_text("mine")
    one_line_error(cli("-m", "replay", "--dataset", "tiny", "--out", f, env=env), "is a file")
    assert f.read_text() == "mine" and not (tmp_path / "o").exists()
    assert tree_digest(trained / "run", trained / "datasets") == before


def test_autopilot_cli(tmp_path):
    one_line_error(cli("-m", "teleop.autopilot", "--episodes", "0"), "--episodes", ">= 1")
    one_line_error(cli("-m", "teleop.autopilot", "--track", "nope", "--episodes", "1"), "unknown track 'nope'")
    one_line_error(cli("-m", "teleop.autopilot", "--track", "gen:x", "--episodes", "1"), "gen:SEED")
    p = cli("-m", "teleop.autopilot", "--track", write_track(tmp_path / "short.json", SHORT), "--episodes", "1",
            "--quiet")
    assert p.returncode == 0 and "success 100.0%" in p.stdout and p.stderr == "", (p.stdout, p.stderr)


def test_teleop_record_flags_create_nothing(root, tmp_path):
    env = {"MINARI_DATASETS_PATH": str(root)}
    for flags, needle in ((["--episodes", "0"], "--episodes"), (["--workers", "0"], "--workers"),
                          (["--workers", "many"], "--workers"), (["--max-episode-steps", "0"], "--max-episode-steps"),
                          (["--seed", "-1"], "--seed"), (["--dataset", "../up"], "dataset name '../up'"),
                          (["--track", "random:nowhere"], "random")):
        one_line_error(cli("-m", "teleop", "--driver", "autopilot", *flags, "--quiet", env=env), needle)
    assert not root.exists() or not any(root.rglob("*-v0"))


# --- every CLI: progress in a log, --quiet, a closed pipe, Ctrl-C ----------------------------------------------------
def test_progress_in_a_log_is_plain_short_lines_and_quiet_is_silent(trained, tmp_path):
    env = {"MINARI_DATASETS_PATH": str(trained / "datasets")}
    short = write_track(tmp_path / "short.json", SHORT)
    ck = trained / "run" / "checkpoints" / "best.pt"
    commands = [   # each twice: logged, then with --quiet (which must print nothing to stderr)
        lambda k: ["-m", "teleop", "--driver", "autopilot", "--episodes", "1", "--track", short, "--dataset",
                   f"log{k}", "--workers", "1"],
        lambda k: ["-m", "teleop.autopilot", "--track", short, "--episodes", "2"],
        lambda k: ["-m", "racecar_env.tracks", "--gallery", "2", "--out", tmp_path / f"g{k}.png"],
        lambda k: ["-m", "learn.evaluate", ck, "--episodes", "1", "--workers", "1", "--track", short],
        lambda k: ["-m", "replay", "--policy", "autopilot", "--track", short, "--episodes", "1", "--workers", "1",
                   "--out", tmp_path / f"rp{k}"],
    ]
    for make in commands:
        log = tmp_path / "log.txt"
        cmd = make(0)
        with open(log, "w") as f:
            p = subprocess.run([sys.executable, *map(str, cmd)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=f,
                               env={**os.environ, **env, "SDL_VIDEODRIVER": "dummy"}, timeout=300)
        text = log.read_text()
        assert p.returncode == 0, (cmd, text[-2000:])
        assert "\r" not in text and text.strip(), (cmd, text)
        assert all(len(line) < 200 for line in text.splitlines()), (cmd, text)
        p = cli(*make(1), "--quiet", env=env)
        assert p.returncode == 0 and p.stderr == "", (cmd, p.stderr[-1000:])


def _closed_pipe_run(*args, env=None):
    """Run with stdout a pipe whose reader is already gone: every write fails with EPIPE."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, stdout=w, stderr=subprocess.PIPE,
                              text=True, timeout=120, env={**os.environ, **(env or {})})
    finally:
        os.close(w)


def test_a_closed_pipe_ends_every_cli_quietly(trained, tmp_path):
    env = {"MINARI_DATASETS_PATH": str(trained / "datasets")}
    for args in (["-m", "teleop", "info", "tiny"], ["-m", "teleop", "list"],
                 ["-m", "racecar_env.tracks", "--seed", "1", "--out", tmp_path / "t.json"],
                 ["-m", "teleop.autopilot", "--track", write_track(tmp_path / "s.json", SHORT), "--episodes", "1",
                  "--quiet"]):
        p = _closed_pipe_run(*args, env=env)
        assert p.returncode == 141 and p.stderr == "", (args, p.returncode, p.stderr[-2000:])


@pytest.mark.parametrize("delay", [0.3, 4.0])
def test_ctrl_c_is_never_a_traceback(trained, tmp_path, delay):
    """SIGINT to the whole process group (what Ctrl-C does), while loading (0.3 s) and while working (4 s): no
    traceback from the CLI or its worker processes; exit 130 (or killed by SIGINT while loading: the shell's 130)."""
    env = {**os.environ, "MINARI_DATASETS_PATH": str(trained / "datasets"), "SDL_VIDEODRIVER": "dummy"}
    ck = trained / "run" / "checkpoints" / "best.pt"
    # (command, seconds its work lasts at least on a fast machine): the signal must land before the work is done
    # (400 episodes: an idle 2-core machine records 40 autopilot drives in under 3 s, before the 4 s signal)
    for cmd, lasts in ((["-m", "learn.evaluate", ck, "--episodes", "400", "--workers", "2", "--quiet"], 20),
                       (["-m", "teleop", "--driver", "autopilot", "--episodes", "400", "--workers", "2", "--dataset",
                         f"ki{int(delay)}", "--quiet"], 20),
                       (["-m", "racecar_env.tracks", "--gallery", "400", "--out", tmp_path / "g.png", "--quiet"], 2)):
        p = subprocess.Popen(python_with_ctrl_c(*cmd), cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        time.sleep(min(delay, lasts / 2))
        os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=120)
        assert p.returncode in (130, -signal.SIGINT), (cmd, p.returncode, err[-2000:])
        assert "Traceback" not in err and len(err.splitlines()) <= 2, (cmd, err[-2000:])


def test_ctrl_c_during_an_import_inside_main_ends_at_the_default_action(tmp_path):
    """torch is imported lazily inside main(); a KeyboardInterrupt raised inside its C++ initialisation aborts the
    process ("terminate called ...", exit -6). So a Ctrl-C while any module imports ends the program as while it
    loads (killed by SIGINT, no traceback), and once the import is done Ctrl-C is the CLI's clean ending again."""
    (tmp_path / "slow_module.py").write_text(
        "import os, signal\nos.kill(os.getpid(), signal.SIGINT)\nIMPORTED = sum(range(100000))\n")
    program = ("import os, signal, sys\nfrom racecar_env import cli\n"
               "def main():\n"
               "    import slow_module\n"
               "    print('imported', slow_module.IMPORTED, flush=True)\n"
               "sys.exit(cli.entry(main, 'prog'))\n")
    def run(program):   # as a CLI entry module starts: SIGINT at its default action until cli.entry
        return subprocess.run([sys.executable, "-c", "import signal, sys; signal.signal(signal.SIGINT, "
                               "signal.SIG_DFL); exec(sys.argv[1])", program], cwd=REPO, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"})
    p = run(program)
    assert p.returncode == -signal.SIGINT and "imported" not in p.stdout and p.stderr == "", (p.returncode, p.stderr)
    # after the import, the same signal is KeyboardInterrupt: one line, exit 130
    program = program.replace("    import slow_module\n",
                              "    import slow_module\n    os.kill(os.getpid(), signal.SIGINT)\n")
    (tmp_path / "slow_module.py").write_text("IMPORTED = 1\n")
    p = run(program)
    assert p.returncode == 130 and p.stderr == "prog: interrupted\n", (p.returncode, p.stderr)


def test_sigterm_saves_a_training_run_that_resume_continues(trained, tmp_path):
    """`kill`, `timeout` or a scheduler stop a run with SIGTERM: it ends as Ctrl-C does (last.pt saved, one line,
    exit 143), so the same --out resumes instead of being refused as a folder without a checkpoint."""
    env = {**os.environ, "MINARI_DATASETS_PATH": str(trained / "datasets")}
    out = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "learn", "--dataset", "tiny", "--algo", "bc", "--steps", "1000000",
                          "--eval-every", "0", "--final-eval-episodes", "0", "--threads", "1", "--out", out,
                          "--quiet"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "config.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)   # into the update loop
    p.send_signal(signal.SIGTERM)
    stdout, err = p.communicate(timeout=120)
    assert p.returncode == 143, (p.returncode, err[-2000:])
    assert "Traceback" not in err and (out / "checkpoints" / "last.pt").is_file(), err[-2000:]
    step = int(re.search(r"interrupted at step (\d+)", stdout + err).group(1))
    resumed = cli("-m", "learn", "--out", out, "--resume", "--steps", step + 5, "--quiet", env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]


# --- tracks the env could load but never run as meant: name length, gen: digits, heading, wall height, length -------
import math  # noqa: E402

LONG_NAME = "a" * 300 + ".json"   # longer than any file name the OS allows (255 bytes)

# a corridor 0.9 m free, 192 m north to south: longer than the car can drive in the default 60 s
CORRIDOR = {"name": "corridor", "walls": [[-0.6, -96, -0.6, 96], [0.6, -96, 0.6, 96], [-0.6, -96, 0.6, -96],
                                          [-0.6, 96, 0.6, 96]],
            "start": {"x": 0.0, "y": -95.0, "yaw": 1.5707963}, "goal": {"x": 0.0, "y": 94.5, "radius": 0.45},
            "centerline": [[0, -95], [0, 94.5]]}


def test_a_file_name_too_long_is_one_line_in_every_cli(trained, tmp_path):
    for text in (LONG_NAME, "a" * 300):
        with pytest.raises(TrackError, match="cannot read it.*too long") as e:
            load_track(text)
        assert text in str(e.value) and "\n" not in str(e.value)
    env = {"MINARI_DATASETS_PATH": str(trained / "datasets")}
    ck = trained / "run" / "checkpoints" / "best.pt"
    for args in (["-m", "teleop", "--driver", "autopilot", "--episodes", "1", "--track", LONG_NAME, "--quiet"],
                 ["-m", "teleop.autopilot", "--track", LONG_NAME, "--episodes", "1", "--quiet"],
                 ["-m", "learn", "--dataset", "tiny", "--eval-track", LONG_NAME, "--out", tmp_path / "r"],
                 ["-m", "learn.evaluate", ck, "--track", LONG_NAME, "--quiet"],
                 ["-m", "replay", "--policy", "autopilot", "--track", LONG_NAME, "--out", tmp_path / "o"]):
        one_line_error(cli(*args, env=env), LONG_NAME, "too long")


@pytest.mark.parametrize("spec_text", ["gen:²", "gen:٣", "gen:٣:hard", "gen:３", "gen:+3", "gen: 3"])
def test_gen_seed_takes_ascii_digits_only(spec_text):
    with pytest.raises(TrackError, match="gen:SEED") as e:
        load_track(spec_text)
    assert "\n" not in str(e.value)
    assert load_track("gen:3:hard").track_id == generate(3, difficulty="hard").track_id


@pytest.mark.parametrize("name, yaw, words", [
    ("hairpin", 90.0, ["'start.yaw'", "radians", "1.5708"]),          # degrees for "north": beyond 2 pi
    ("s_curve", -180.0, ["'start.yaw'", "radians"]),
    ("hairpin", math.pi, ["'start.yaw'", "180.0 deg away", "radians"]),   # facing backwards
    ("s_curve", 1.5707963 + math.pi, ["'start.yaw'", "180.0 deg away", "radians"]),
    ("s_curve", 1.5707963 - 1.7, ["'start.yaw'", "97.4 deg away"]),      # just past 90 deg
])
def test_a_start_facing_away_from_the_route_is_one_line(tmp_path, name, yaw, words):
    d = json.loads((TRACKS_DIR / f"{name}.json").read_text())
    d["start"]["yaw"] = yaw
    path = write_track(tmp_path / "yaw.json", d)
    with pytest.raises(TrackError) as e:
        load_track(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg, msg
    for w in words:
        assert w in msg, (w, msg)


def test_a_start_within_90_deg_of_the_route_is_accepted():
    """Shipped and generated tracks (every difficulty) pass; so does a start turned well off the route or placed
    beside the centre-line's first point, as long as it faces the route."""
    for name in ("s_curve", "hairpin"):
        d = json.loads((TRACKS_DIR / f"{name}.json").read_text())
        load_track(d)
        d["start"]["yaw"] += 1.2
        load_track(d)
    for difficulty in (None, *DIFFICULTIES):
        for seed in range(60):
            generate(seed, difficulty=difficulty)   # parse_track runs the heading check on every one
    d = json.loads(json.dumps(SHORT))
    d["start"] = {"x": 1.3, "y": 0.7, "yaw": 1.0}   # 0.36 m off the line's first point, facing up the corridor
    load_track(d)


@pytest.mark.parametrize("height", [0.15, 0.05, 1e-9])
def test_walls_lower_than_the_lidar_are_one_line(tmp_path, height):
    d = s_curve()
    d["wall_height"] = height
    path = write_track(tmp_path / "low.json", d)
    with pytest.raises(TrackError, match="'wall_height'.*lidar") as e:
        load_track(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_the_lowest_allowed_wall_is_seen_by_the_lidar():
    from racecar_env import spec
    from racecar_env.tracks.model import MIN_WALL_HEIGHT
    assert MIN_WALL_HEIGHT > spec.LIDAR_HEIGHT
    d = s_curve()
    d["wall_height"] = MIN_WALL_HEIGHT
    env = RaceCarEnv(d, start_jitter=(0, 0))
    try:
        obs, _ = env.reset(seed=0)
        for _ in range(20):   # driving: pitch and bounce must not lift the rays over it
            lidar = spec.group(obs["observation"], "lidar")
            assert lidar.min() < 1.0 and (lidar < spec.LIDAR_RANGE - 0.01).sum() >= 10, lidar
            obs, *_ = env.step([0.0, 1.0])
    finally:
        env.close()


def test_a_track_too_long_for_the_time_limit_is_one_line(tmp_path):
    from racecar_env.env import TOP_SPEED
    path = write_track(tmp_path / "corridor.json", CORRIDOR)
    load_track(path)   # a valid track ...
    with pytest.raises(TrackError) as e:   # ... that no car can finish in 60 s
        RaceCarEnv(str(path))
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg, msg
    for w in ("189.5 m", "1200 steps (60 s)", f"{TOP_SPEED:g} m/s", "max_episode_steps", "--max-episode-steps"):
        assert w in msg, (w, msg)
    with pytest.raises(TrackError, match="time limit is 1300 steps"):
        RaceCarEnv(str(path), max_episode_steps=1300)
    with pytest.raises(TrackError, match="189.5 m"):   # a short limit is no way round it
        RaceCarEnv(str(path), max_episode_steps=600)
    with pytest.raises(TrackError, match="189.5 m"):   # nor a per-reset track
        env = RaceCarEnv("s_curve")
        try:
            env.reset(seed=0, options={"track": CORRIDOR})
        finally:
            env.close()
    RaceCarEnv(str(path), max_episode_steps=1400).close()   # raising the limit makes it drivable
    p = cli("-m", "teleop.autopilot", "--track", path, "--episodes", "1", "--quiet")
    one_line_error(p, str(path), "189.5 m", "--max-episode-steps")
    # shipped and generated tracks are far from the limit; short limits for quick episodes stay allowed
    from racecar_env.tracks import Centerline
    reach = TOP_SPEED * 1200 * 0.05
    for t in [load_track("s_curve"), load_track("hairpin")] + [generate(s, difficulty=d) for s in range(40)
                                                                 for d in (None, *DIFFICULTIES)]:
        assert Centerline(t.centerline).length < reach / 2, t.name
    RaceCarEnv("s_curve", max_episode_steps=5).close()


def test_top_speed_bounds_what_the_car_drives():
    """TOP_SPEED (from spec.MAX_WHEEL_SPEED and the wheel radius) is a true bound: full throttle down a long straight
    never goes faster, so a track refused as too long really cannot be finished."""
    from racecar_env import spec
    from racecar_env.env import TOP_SPEED
    straight = {"name": "straight", "walls": [[0, 0, 90, 0], [0, 3, 90, 3], [0, 0, 0, 3], [90, 0, 90, 3]],
                "start": {"x": 1, "y": 1.5, "yaw": 0}, "goal": {"x": 88, "y": 1.5, "radius": 0.5},
                "centerline": [[1, 1.5], [88, 1.5]]}
    env = RaceCarEnv(straight, start_jitter=(0, 0))
    try:
        obs, _ = env.reset(seed=0)
        speeds = []
        for _ in range(200):
            obs, _, te, tr, _ = env.step([0.0, 1.0])
            speeds.append(float(spec.field(obs["observation"], "v_forward")))
            if te or tr:
                break
        assert len(speeds) > 120 and 0.9 * spec.MAX_WHEEL_SPEED * 0.05 < max(speeds) <= TOP_SPEED, max(speeds)
    finally:
        env.close()


def test_trajectory_plot_of_a_long_narrow_track_has_a_sane_size(tmp_path):
    from PIL import Image

    from racecar_env.rollout import run_episode
    from replay.plot import plot_trajectories

    class Swerve:   # straight into the wall: a short episode on the 192 m track
        def act(self, obs):
            return [1.0, 1.0]

    env = RaceCarEnv(CORRIDOR, max_episode_steps=1400)
    try:
        ep = run_episode(env, Swerve(), seed=0)
    finally:
        env.close()
    assert ep.outcome == "crash"
    out = plot_trajectories(tmp_path / "trajectories.png", [("swerve", [ep])])
    with Image.open(out) as img:
        w, h = img.size
    assert w <= 2000 and h <= 3000 and h / w <= 3.5, (w, h)
    d = json.loads(json.dumps(CORRIDOR))   # the same track lying east-west: wide, not tall
    d["walls"] = [[y1, x1, y2, x2] for x1, y1, x2, y2 in d["walls"]]
    d["centerline"] = [[y, x] for x, y in d["centerline"]]
    d["start"], d["goal"] = {"x": -95.0, "y": 0.0, "yaw": 0.0}, {**d["goal"], "x": 94.5, "y": 0.0}
    env = RaceCarEnv(d, max_episode_steps=1400)
    try:
        ep = run_episode(env, Swerve(), seed=0)
    finally:
        env.close()
    out = plot_trajectories(tmp_path / "wide.png", [("swerve", [ep])])
    with Image.open(out) as img:
        w, h = img.size
    assert w <= 2000 and h >= 200 and w / h <= 3.5, (w, h)


def test_an_unwritable_output_is_refused_before_any_episode_runs(trained):
    """learn.evaluate --json and replay --out found a folder they could not write only after all their episodes."""
    if os.access("/proc/sys", os.W_OK):
        pytest.skip("needs a folder this process cannot write to (/proc/sys is writable here)")
    env = {"MINARI_DATASETS_PATH": str(trained / "datasets")}
    ck = trained / "run" / "checkpoints" / "best.pt"
    one_line_error(cli("-m", "learn.evaluate", ck, "--episodes", "1", "--json", "/proc/sys/x.json", env=env),
                   "/proc/sys/x.json", "/proc/sys is not writable")
    one_line_error(cli("-m", "replay", "--policy", ck, "--episodes", "1", "--out", "/proc/sys/out", env=env),
                   "/proc/sys/out", "/proc/sys is not writable")
