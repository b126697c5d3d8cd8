"""replay / learn.evaluate / rendering inputs at their edges: odd tracks, huge counts, odd benchmark flags."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from racecar_env import load_track
from racecar_env.render import Hud, TopDown

ROOT = Path(__file__).resolve().parent.parent

# 192 m long, 0.9 m wide: the longest corridor a track may be (walls within +-98 m)
CORRIDOR = {"name": "corridor", "walls": [[0, -96, 0.9, -96], [0, -96, 0, 96], [0.9, -96, 0.9, 96], [0, 96, 0.9, 96]],
            "start": {"x": 0.45, "y": -95.5, "yaw": 1.5707963}, "goal": {"x": 0.45, "y": 94.0, "radius": 0.4},
            "centerline": [[0.45, -95.5], [0.45, 94.0]]}
TINY = {"name": "tiny", "walls": [[0, 0, 0.9, 0], [0, 0, 0, 1.5], [0.9, 0, 0.9, 1.5], [0, 1.5, 0.9, 1.5]],
        "start": {"x": 0.45, "y": 0.45, "yaw": 1.5707963}, "goal": {"x": 0.45, "y": 1.2, "radius": 0.3},
        "centerline": [[0.45, 0.45], [0.45, 1.2]]}


def east_west(d: dict) -> dict:
    d = json.loads(json.dumps(d))
    d["walls"] = [[y1, x1, y2, x2] for x1, y1, x2, y2 in d["walls"]]
    d["centerline"] = [[y, x] for x, y in d["centerline"]]
    s, g = d["start"], d["goal"]
    d["start"], d["goal"] = {"x": s["y"], "y": s["x"], "yaw": 0.0}, {**g, "x": g["y"], "y": g["x"]}
    return d


@pytest.mark.parametrize("track", [CORRIDOR, east_west(CORRIDOR), TINY], ids=["tall", "wide", "tiny"])
def test_topdown_of_a_thin_or_tiny_track_has_room_for_the_hud(track):
    """A 192 m x 0.9 m corridor drew a 10 x 960 px strip (HUD and banner clipped to 10 px); a tiny track 80 x 104."""
    td = TopDown(load_track(track))
    w, h = td.size
    assert w >= 360 and h >= 240 and max(w / h, h / w) <= 3.01 and w % 2 == h % 2 == 0, (w, h)
    xmin, ymin, xmax, ymax = td.track.bounds   # the whole track inside the canvas, centred
    (x0, x1), (y0, y1) = (np.asarray(v) for v in td.to_px([xmin, xmax], [ymax, ymin]))   # north up
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    assert abs((x0 + x1) / 2 - w / 2) < 2 and abs((y0 + y1) / 2 - h / 2) < 2
    hud = Hud(lines=["autopilot (expert)  ep 12  seed 20012  corridor", "t 12.35 s   v 2.13 m/s   return  27.37"],
              bars=[("steer", 0.5), ("throttle", 1.0)], banner="GOAL  12.35 s")
    frame = td.draw(track["start"]["x"], track["start"]["y"], 0.0, hud=hud)
    assert frame.shape == (h, w, 3)
    # the HUD's dark panel (in whichever corner hides the least of the track) ends inside the frame: there is map
    # beside it in its rows and below or above it in its columns
    panel = (frame == np.array([12, 14, 18], np.uint8)).all(-1)
    rows, cols = np.flatnonzero(panel.any(1)), np.flatnonzero(panel.any(0))
    assert len(rows) and len(cols) and cols[-1] - cols[0] < w - 20 and rows[-1] - rows[0] < h - 20, (rows, cols)


def test_shipped_tracks_keep_their_natural_scale():
    for name in ("s_curve", "hairpin"):
        assert TopDown(load_track(name)).px_per_m == 40.0


def test_fixed_size_is_exact():
    td = TopDown(load_track(CORRIDOR), size=(480, 360))
    assert td.size == (480, 360)


def run(*args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("argv", [
    ["-m", "replay", "--policy", "autopilot", "--episodes", "99999999999", "--quiet"],
    ["-m", "learn.evaluate", "no.pt", "--episodes", "99999999999", "--quiet"],
])
def test_a_huge_episode_count_is_refused_not_a_memory_blowup(argv, tmp_path):
    """Both built a list of 1e11 seeds first: >5 GB of RAM within 15 s, before one episode ran."""
    r = run(*argv, timeout=30)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(err) == 1 and "--episodes" in err[0] and "99999999999" in err[0], r.stderr


def test_a_huge_dataset_index_range_is_refused_at_once():
    """'0-99999999999' expanded the range first: a MemoryError traceback (a smaller one, minutes of list.count)."""
    from replay import ReplayError
    from replay.session import parse_indices
    for text in ("0-99999999999", "1,0-300000000"):
        with pytest.raises(ReplayError, match=r"dataset e3 has 3 episodes \(0-2\); --episodes asks for"):
            parse_indices(text, 3, "e3")
    assert parse_indices("2,0-1", 3, "e3") == [2, 0, 1]
    with pytest.raises(ReplayError, match="listed more than once"):
        parse_indices("0-2,1", 3, "e3")


def test_an_empty_out_is_refused_not_the_current_folder(capsys):
    """--out "" (an unset $OUT) was Path(""), i.e. ".": the MP4s, plot and eval_info.json landed in the cwd."""
    from replay.cli import parse_args
    with pytest.raises(SystemExit) as e:
        parse_args(["--policy", "autopilot", "--out", ""])
    assert e.value.code == 2 and "argument --out: expected a folder name" in capsys.readouterr().err


@pytest.mark.parametrize("argv, needle", [
    (["benchmarks/render_speed.py", "--track", "nowhere"], "--track: unknown track 'nowhere'"),
    (["benchmarks/render_speed.py", "--policy", "autopilot:wild"], "unknown autopilot skill 'wild'"),
    (["benchmarks/render_speed.py", "--episodes", "0"], "argument --episodes"),
    (["benchmarks/render_speed.py", "--workers", "x"], "argument --workers"),
    (["benchmarks/env_speed.py", "--steps", "0"], "argument --steps"),
    (["benchmarks/eval_speed.py", "--episodes", "0"], "argument --episodes"),
    (["benchmarks/difficulty.py", "autopilot", "--tracks", "0"], "argument --tracks"),
    (["benchmarks/dataset_append.py", "--episodes", "0"], "argument --episodes"),
    (["benchmarks/eval_speed.py", "--policy", "{tmp}/no.pt"], "no.pt: checkpoint not found"),
    (["benchmarks/difficulty.py", "autopilot", "{tmp}/no.pt", "--out", "{tmp}/d"], "no.pt: checkpoint not found"),
    (["benchmarks/difficulty.py", "autopilot:zzz"], "unknown autopilot skill 'zzz'"),
    (["benchmarks/learner_speed.py", "--algos", "bc"], "expected --algos among td3bc,cql,iql"),
    (["benchmarks/learner_speed.py", "--runs", "{tmp}/eval.json"], "--runs {tmp}/eval.json: no such eval.json"),
    (["benchmarks/learning_curves.py", "{tmp}/c.png", "a={tmp}/no_run"], "expected LABEL=RUN_DIR"),
    (["benchmarks/learning_curves.py", "{tmp}/c.png", "{tmp}"], "expected LABEL=RUN_DIR"),
])
def test_benchmark_bad_flags_are_one_line(argv, needle, tmp_path):
    """Each was a traceback (ZeroDivisionError, IndexError, ReplayError, CheckpointError, KeyError, DatasetError,
    tensorboard's DirectoryDeletedError; difficulty.py's after the first agent's whole run, learner_speed.py's --runs
    after the whole benchmark) or, for a folder that is no run, an empty plot."""
    r = run(*(a.replace("{tmp}", str(tmp_path)) for a in argv))
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(err) == 1 and needle.replace("{tmp}", str(tmp_path)) in err[0], r.stderr
    assert not (tmp_path / "c.png").exists() and not (tmp_path / "d").exists()


@pytest.mark.parametrize("argv, needle", [
    (["--dataset", "e3", "--seed", "5"], "--seed does not apply to --dataset"),
    (["--compare", "autopilot", "--dataset", "e3", "--seed", "5"], "--seed does not apply to --dataset"),
    (["--policy", "autopilot", "--view", "chase", "--lidar"], "--lidar draws the rays on the top-down map"),
])
def test_a_flag_that_would_be_ignored_is_refused(argv, needle, capsys):
    """--seed with --dataset (the demos, and rollouts beside them, use their recorded seeds) and --lidar with the
    chase view (rays are drawn on the map only) were silently ignored."""
    from replay.cli import parse_args
    with pytest.raises(SystemExit) as e:
        parse_args(argv)
    assert e.value.code == 2 and needle in capsys.readouterr().err
    assert parse_args(["--policy", "autopilot"]).seed == 20000


@pytest.mark.parametrize("argv", [["--dataset", "gone"], ["--compare", "autopilot", "--dataset", "gone"]])
def test_a_dataset_with_no_episodes_is_one_line(argv, monkeypatch, tmp_path, capsys):
    """A dataset whose episodes were all deleted (teleop's Del): --compare with it was an IndexError traceback."""
    import replay.session
    from replay.cli import main
    monkeypatch.setattr(replay.session, "read_dataset", lambda name: [])
    assert main([*argv, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["replay: error: dataset gone holds no episodes: nothing to show"]
    assert not (tmp_path / "o").exists()


def test_the_hud_sits_in_the_corner_that_hides_the_least_of_the_track():
    """On the hairpin the goal and the last straight are top-left, where the HUD panel used to hide the car's
    finish; the S track keeps it top-left."""
    assert TopDown(load_track("s_curve")).hud_corner == "tl"
    td = TopDown(load_track("hairpin"))
    assert td.hud_corner != "tl"
    g = td.track.goal
    hud = Hud(lines=["autopilot  ep 0  seed 20000  hairpin", "t 8.70 s   v 2.49 m/s   return  27.27"],
              bars=[("steer", 0.0), ("throttle", 1.0)])
    frame = td.draw(g.x, g.y, 0.0, goal=g, hud=hud)
    gx, gy = (int(v) for v in td.to_px(g.x, g.y))
    assert not (frame[gy, gx] == np.array([12, 14, 18], np.uint8)).all()   # the goal (and the car on it) is seen
