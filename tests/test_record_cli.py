"""Recording CLI: record/info/list, seeds, clear errors, and the SIGKILL durability proof (real subprocess)."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import minari
import numpy as np
import pytest

from racecar_env.storage import DatasetWriter, load_dataset
from teleop.__main__ import main
from teleop.record import default_dataset_name, episode_seed
from teleop.summary import summarize

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    return tmp_path / "datasets"


def same_arrays(a, b):
    for k in a.observations:
        np.testing.assert_array_equal(a.observations[k], b.observations[k])
    for k in ("actions", "rewards", "terminations", "truncations"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    for k in a.infos:
        np.testing.assert_array_equal(a.infos[k], b.infos[k])


def test_record_is_default_and_info_list_describe_it(root, capsys):
    assert main(["--driver", "autopilot", "--episodes", "2", "--dataset", "cli", "--no-progress"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "racecar/cli-v0 now holds 2 episodes" in last and str(root / "racecar" / "cli-v0") in last
    assert main(["record", "--driver", "autopilot", "--episodes", "1", "--dataset", "cli", "--no-progress"]) == 0
    assert "now holds 3 episodes" in capsys.readouterr().out
    assert main(["info", "cli"]) == 0
    out = capsys.readouterr().out
    assert "episodes  3" in out and "success 3" in out and "autopilot x3" in out and "expert x3" in out
    assert "tracks    1" in out and "s_curve" in out and "3 episodes" in out and "health    ok" in out
    assert main(["list"]) == 0
    row = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("racecar/cli-v0")]
    assert len(row) == 1 and row[0].split()[1:] == ["3", str(load_dataset("cli").total_steps), "1", "ok"]
    ds = load_dataset("cli")
    assert [e.meta["seed"] for e in ds] == [episode_seed(0, i) for i in range(3)]
    assert all(e.meta["seed_base"] == 0 and e.track.name == "s_curve" for e in ds)


def test_default_dataset_name_and_help(root, capsys):
    from learn.config import TrainConfig
    # one rule, <track's first word>_<skill>: what the autopilot records by default is what learn trains on
    assert default_dataset_name("s_curve", "autopilot", "expert") == TrainConfig.build().run.dataset == "s_expert"
    assert default_dataset_name("s_curve", "keyboard", "expert") == "s_human"
    assert default_dataset_name("random", "autopilot", "noisy") == "multi_noisy"
    assert default_dataset_name("/x/my oval.json", "autopilot", "mixed") == "my_oval_mixed"
    assert main(["--driver", "autopilot", "--episodes", "1", "--skill", "noisy", "--track", "hairpin",
                 "--no-progress"]) == 0
    assert "racecar/hairpin_noisy-v0" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "record" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["--driver", "autopilot", "--episodes", "0"])
    assert e.value.code == 2


def test_autopilot_expert_succeeds_on_both_tracks(root, capsys):
    for track in ("s_curve", "hairpin"):
        assert main(["--driver", "autopilot", "--episodes", "4", "--skill", "expert", "--track", track,
                     "--dataset", f"ok_{track}", "--seed", "7", "--no-progress"]) == 0
        s = summarize(f"ok_{track}")
        assert s["successes"] == 4, s


def test_seeds_make_appending_equal_to_one_run(root, capsys):
    """Episode i's seed depends on (--seed, i): 1 + 1 appended episodes == 2 recorded at once."""
    args = ["--driver", "autopilot", "--skill", "noisy", "--seed", "5", "--no-progress"]
    assert main(args + ["--episodes", "2", "--dataset", "once"]) == 0
    assert main(args + ["--episodes", "1", "--dataset", "twice"]) == 0
    assert main(args + ["--episodes", "1", "--dataset", "twice"]) == 0
    a, b = load_dataset("once"), load_dataset("twice")
    for x, y in zip(a, b):
        same_arrays(x, y)
    assert a[0].meta["seed"] != a[1].meta["seed"]


def run_cli(args, root) -> subprocess.CompletedProcess:
    env = {**os.environ, "MINARI_DATASETS_PATH": str(root)}
    return subprocess.run([sys.executable, "-m", "teleop", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def test_errors_are_one_line_exit_2(root, capsys):
    p = run_cli(["info", "missing"], root)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    errors = [line for line in p.stderr.splitlines() if "error" in line]
    assert errors == [f"python -m teleop: error: dataset racecar/missing-v0: not found under {root} (record one "
                      f"with `python -m teleop --driver autopilot --dataset missing`, or set MINARI_DATASETS_PATH)"]
    # a damaged episode: info and list say so (exit 1), recording into it is refused in one line (exit 2)
    assert main(["--driver", "autopilot", "--episodes", "2", "--dataset", "dmg", "--no-progress"]) == 0
    # a near-miss of an existing name is pointed at it
    p = run_cli(["info", "dmgg"], root)
    assert p.returncode == 2 and "(did you mean dmg? record one with" in p.stderr, p.stderr
    arrow = root / "racecar" / "dmg-v0" / "data" / "1" / "part-0.arrow"
    arrow.write_bytes(arrow.read_bytes()[:1000])
    capsys.readouterr()
    assert main(["info", "dmg"]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED" in out and "episode 1 is damaged" in out and "episodes  2" in out
    assert main(["list"]) == 1
    assert "damaged: episode 1 is damaged" in capsys.readouterr().out
    assert main(["--driver", "autopilot", "--episodes", "1", "--dataset", "dmg", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "racecar/dmg-v0" in err and "refusing to append" in err
    # another observation layout: refused with the command that re-records it
    assert main(["--driver", "autopilot", "--episodes", "1", "--dataset", "lay", "--no-progress"]) == 0
    meta = root / "racecar" / "lay-v0" / "data" / "metadata.json"
    m = json.loads(meta.read_text())
    m["racecar_obs_layout_id"] = "obs-feedc0ffee"
    meta.write_text(json.dumps(m))
    capsys.readouterr()
    assert main(["info", "lay"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "recorded with observation layout obs-feedc0ffee" in err
    assert "re-record it: python -m teleop --driver autopilot --dataset lay" in err
    assert main(["--driver", "autopilot", "--track", "nowhere.json", "--dataset", "x", "--no-progress"]) == 2
    assert "nowhere.json" in capsys.readouterr().err
    assert not (root / "racecar" / "x-v0").exists()  # a bad track fails before any dataset is created


def _saved_episodes(root: Path, name: str) -> int:
    meta = root / "racecar" / f"{name}-v0" / "data" / "metadata.json"
    try:
        return int(json.loads(meta.read_text())["total_episodes"])  # replaced atomically: never half-read
    except FileNotFoundError:
        return 0


def test_sigkill_mid_episode_keeps_every_saved_episode(root):
    """A real recording process, killed with SIGKILL (no cleanup runs) while it drives: every episode it saved
    before loads intact, the dataset stays appendable, and Minari still reads it. Three rounds, appending to the
    same dataset, kill 0.1 s after a save (mid-episode) and 0 / 0.02 s after one (as the next episode starts).
    Kills inside a commit are covered by test_datasets.py (test_sigkill_during_appends_never_damages_the_dataset)."""
    env = {**os.environ, "MINARI_DATASETS_PATH": str(root)}
    cmd = [sys.executable, "-m", "teleop", "record", "--driver", "autopilot", "--skill", "expert",
           "--episodes", "1000", "--dataset", "kill", "--no-progress"]
    for delay in (0.1, 0.0, 0.02):
        before = _saved_episodes(root, "kill")
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 90
            while _saved_episodes(root, "kill") < before + 2:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "recorder saved no episodes within 90 s"
                time.sleep(0.005)
            snapshot = load_dataset("kill")  # read while the recorder is still writing
            time.sleep(delay)  # an expert episode takes ~0.3 s: 0.1 s after a save is mid-episode
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        after = load_dataset("kill")
        assert len(after) >= len(snapshot) >= before + 2
        for old, new in zip(snapshot.episodes, after.episodes):
            same_arrays(old, new)
            assert old.meta == new.meta
        # Minari's own reader: its episode count may lag ours by the one episode committed at the kill
        assert len(after) - 1 <= minari.load_dataset("racecar/kill-v0").total_episodes <= len(after)
        assert after.check() == []
    with DatasetWriter("kill") as w:  # the kernel released the lock; stale temp folders swept
        assert w.episodes == len(after)
    data_dir = root / "racecar" / "kill-v0" / "data"
    assert sorted(p.name for p in data_dir.iterdir()) == sorted([str(i) for i in range(len(after))]
                                                                + ["metadata.json", "tracks"])
    assert minari.load_dataset("racecar/kill-v0").total_episodes == len(after)
    final = load_dataset("kill")
    assert [e.meta["seed"] for e in final] == [episode_seed(0, i) for i in range(len(final))]
    assert all(e.success for e in final)


def test_random_tracks_record_one_track_per_episode_the_same_on_any_number_of_workers(root, capsys):
    """--track random: every episode on a new generated track (training seed range), stored with the episode;
    recording on 2 env processes gives exactly the dataset recording serially gives."""
    from racecar_env.tracks import TRAIN_SEEDS
    for name, workers in (("multi_a", "1"), ("multi_b", "2")):
        assert main(["--driver", "autopilot", "--track", "random", "--episodes", "4", "--dataset", name,
                     "--workers", workers, "--quiet"]) == 0
    a, b = load_dataset("multi_a"), load_dataset("multi_b")
    assert len(a.tracks) == 4 and len(b) == 4
    for ea, eb in zip(a, b):
        same_arrays(ea, eb)
        assert ea.track.track_id == eb.track.track_id and ea.meta["seed"] == eb.meta["seed"]
        assert ea.track.extra["generator"]["seed"] in TRAIN_SEEDS and ea.success   # the expert drives any of them
    assert main(["info", "multi_a"]) == 0
    assert "tracks    4" in capsys.readouterr().out


@contextlib.contextmanager
def escape_when_window_opens():
    """Press Esc once a recorder window is open: the session quits at once (and a test never waits for a human)."""
    import pygame
    done = threading.Event()

    def press():
        while not done.wait(0.01):
            if pygame.display.get_surface() is not None:
                pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE, mod=0, unicode="",
                                                     scancode=0))
                return

    t = threading.Thread(target=press, daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join(1)


def test_keyboard_session_that_saves_nothing_leaves_no_dataset(root, capsys):
    """Quit at once: no empty dataset left behind (learn on it used to fail without naming it)."""
    with escape_when_window_opens():
        assert main(["--driver", "keyboard", "--dataset", "kb"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "saved 0 episodes" in last and "no dataset written (racecar/kb-v0 was not created" in last, last
    assert sorted(p.name for p in (root / "racecar").iterdir()) == ["namespace_metadata.json"]


@pytest.mark.parametrize("args, message", [
    (["--driver", "keyboard", "--skill", "noisy"],
     "python -m teleop: error: --skill is for --driver autopilot (it picks the autopilot's driving style); "
     "--driver keyboard records you"),
    (["--driver", "gamepad", "--skill", "expert"], "--skill is for --driver autopilot"),
    (["--driver", "autopilot", "--dataset", "a" * 300],
     "python -m teleop: error: dataset name 'aaaaaaaaaaaaaaaaaaaa...' is too long (300 characters): at most 100 are "
     "allowed"),
    (["--driver", "autopilot", "--seed", "9" * 23],
     "argument --seed: expected a seed, a whole number from 0 to 2**32 - 1 (4294967295: episode seeds are derived "
     "from its low 32 bits), got '999"),
    (["--driver", "autopilot", "--seed", str(2 ** 32)],   # it recorded seed 0's episodes
     "argument --seed: expected a seed, a whole number from 0 to 2**32 - 1 (4294967295"),
    (["--driver", "keyboard", "--seed", str(2 ** 32)], "argument --seed: expected a seed"),
])
def test_bad_record_flags_are_one_line_before_anything_is_written(root, capsys, args, message):
    try:
        with escape_when_window_opens():   # were the flag ignored, the window session would end at once
            code = main(args + ["--no-progress"])
    except SystemExit as e:   # argparse's usage errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not root.exists()


def test_negative_comma_values_reach_the_flags_range_check(capsys):
    """argparse took `-1,0` for an unknown option ("expected one argument"); every CLI's parser is
    racecar_env.cli.ArgumentParser, so the flag's own type now names the range."""
    from learn.evaluate import main as evaluate
    for args in (["--start-jitter", "-1,0"], ["--start-jitter=-1,0"], ["--start-jitter", "-.5,0"]):
        with pytest.raises(SystemExit) as e:
            evaluate(["missing.pt", *args])
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.count("\n") == 1, err
        assert "argument --start-jitter: start jitter must be 0..2 m and 0..3.1416 rad, got '-" in err, err


@pytest.mark.parametrize("args", [["--driver", "autopilot", "--episodes", "1", "--dataset", "z"],
                                  ["--driver", "autopilot", "--episodes", "1"],   # the default dataset name
                                  ["--driver", "keyboard", "--dataset", "z"]])
def test_a_datasets_folder_that_is_a_file_is_one_line_before_a_window_opens(tmp_path, monkeypatch, capsys, args):
    """MINARI_DATASETS_PATH pointing at a file (or under one) was a NotADirectoryError traceback; the keyboard
    session failed only after its window opened."""
    import pygame
    blocker = tmp_path / "f"
    blocker.write_text("hi")
    for root in (blocker, blocker / "sub"):
        monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
        with escape_when_window_opens():   # were the check late, the session would end at once and exit 0
            assert main([*args, "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"python -m teleop: error: MINARI_DATASETS_PATH={root}: "), err
        assert f"{'it' if root == blocker else blocker} is a file, expected a folder for the datasets" in err, err
        assert pygame.display.get_surface() is None
    assert blocker.read_text() == "hi" and [p.name for p in tmp_path.iterdir()] == ["f"]
