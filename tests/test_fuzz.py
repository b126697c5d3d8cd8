"""A bounded fuzz test of the track loader and the command lines (fixed seed, fixed case counts, ~1 min on one core).

Tracks: shipped and generated tracks mutated (fields removed, wrong types, NaN/inf, huge and negative numbers,
start/goal swapped or moved, walls emptied, rows duplicated, the file truncated, binary garbage, deep nesting) and
loaded from a file. Each must load (and then run at its first reset) or raise one TrackError line naming the file;
a mutation that keeps the geometry (a shift, a mirror, reordered walls, extra keys) must still load.

CLIs: random and malformed argument lists for `python -m teleop`, `learn`, `learn.evaluate`, `replay` and
`racecar_env.tracks`, run in-process through `main(argv)`; the expensive part of each (training, rollouts,
recording) is replaced by a stub placed right where the work would start, after every check of the input has run,
so an accepted case costs little. Each case must: raise nothing (no traceback), exit 2 with exactly one line when
any argument was drawn from the bad pool, exit 0 (or reach the stub) only with good input (the stub checks what it
was handed), and leave every existing file (datasets, checkpoints, the run folder, the shipped tracks, a user's
own files) byte-identical. A few bad cases also run as real subprocesses.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from racecar_env.tracks import TRACKS_DIR, Track, TrackError, generate, load_track

REPO = Path(__file__).resolve().parent.parent
SEED = 20_261_122
TRACK_CASES = 1000
CLI_CASES = 300
SUBPROCESS_CASES = 5
ENV_CHECKS = 8          # accepted mutated tracks that are also run (first reset and a few steps)

SHORT = {"name": "short", "walls": [[0, 0, 2, 0], [0, 0, 0, 5], [2, 0, 2, 5], [0, 5, 2, 5]],
         "start": {"x": 1.0, "y": 0.5, "yaw": 1.5707963}, "goal": {"x": 1.0, "y": 4.0, "radius": 0.8},
         "centerline": [[1, 0.5], [1, 4]]}
REQUIRED = ("walls", "start", "goal", "centerline")
POISON = [float("nan"), float("inf"), -float("inf"), 1e308, -1e9, 0, -1, 10 ** 400, True, "1", None, [], {}]


def digest(*roots: Path) -> dict[str, str]:
    out = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


# --- tracks ---------------------------------------------------------------------------------------------------------
def _leaves(d, path=()):
    """Paths of every number in a track dict."""
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _leaves(v, path + (i,))
    elif isinstance(d, (int, float)) and not isinstance(d, bool):
        yield path


def _set(d, path, value):
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value


def _mutate(rng: random.Random, d: dict) -> tuple[dict, str]:
    """One mutation; returns the track and what it must give: 'valid', 'invalid' or 'any'."""
    kind = rng.choice(["drop", "type", "poison", "poison", "swap", "empty", "shift", "mirror", "reverse", "dup",
                       "move_start", "radius", "extra", "shuffle", "scale_walls"])
    if kind == "drop":
        key = rng.choice(list(d))
        d.pop(key)
        return d, "invalid" if key in REQUIRED else "any"
    if kind == "type":
        key = rng.choice(REQUIRED + ("wall_thickness", "name"))
        d[key] = rng.choice(["x", None, True, [], {}, 3, [[1, 2]], {"x": 1}, [[1, 2, 3, 4, 5]]])
        return d, "invalid" if key in REQUIRED else "any"
    if kind == "poison":
        path = rng.choice(list(_leaves({k: d[k] for k in REQUIRED if k in d})))
        value = rng.choice(POISON)
        _set(d, path, value)
        bad = not (isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= 1e4)
        return d, "invalid" if bad else "any"
    if kind == "swap":
        d["start"], d["goal"] = ({"x": d["goal"]["x"], "y": d["goal"]["y"], "yaw": 0.0},
                                 {"x": d["start"]["x"], "y": d["start"]["y"], "radius": 1.0})
        return d, "invalid"   # the centre-line now begins at the goal
    if kind == "empty":
        d[rng.choice(["walls", "centerline"])] = []
        return d, "invalid"
    if kind == "shift":   # the same track elsewhere: must still load
        dx, dy = rng.uniform(-50, 50), rng.uniform(-50, 50)
        d["walls"] = [[x1 + dx, y1 + dy, x2 + dx, y2 + dy] for x1, y1, x2, y2 in d["walls"]]
        d["centerline"] = [[x + dx, y + dy] for x, y in d["centerline"]]
        d["start"] = {**d["start"], "x": d["start"]["x"] + dx, "y": d["start"]["y"] + dy}
        d["goal"] = {**d["goal"], "x": d["goal"]["x"] + dx, "y": d["goal"]["y"] + dy}
        return d, "valid"
    if kind == "mirror":
        d["walls"] = [[x1, -y1, x2, -y2] for x1, y1, x2, y2 in d["walls"]]
        d["centerline"] = [[x, -y] for x, y in d["centerline"]]
        d["start"] = {**d["start"], "y": -d["start"]["y"], "yaw": -d["start"]["yaw"]}
        d["goal"] = {**d["goal"], "y": -d["goal"]["y"]}
        return d, "valid"
    if kind == "reverse":
        d["centerline"] = d["centerline"][::-1]
        return d, "invalid"
    if kind == "dup":
        i = rng.randrange(len(d["centerline"]))
        d["centerline"].insert(i, list(d["centerline"][i]))
        return d, "invalid"
    if kind == "move_start":
        r = rng.choice([0.05, 0.3, 1.0, 3.0])
        d["start"] = {**d["start"], "x": d["start"]["x"] + rng.uniform(-r, r),
                      "y": d["start"]["y"] + rng.uniform(-r, r), "yaw": d["start"]["yaw"] + rng.uniform(-r, r)}
        return d, "any"
    if kind == "radius":
        d["goal"] = {**d["goal"], "radius": d["goal"]["radius"] * rng.choice([0.01, 0.5, 2.0, 50.0, -1.0])}
        return d, "any"
    if kind == "extra":
        d[rng.choice(["author", "notes", "version"])] = rng.choice(["me", 3, [1, 2], {"a": None}])
        return d, "valid"
    if kind == "shuffle":
        rng.shuffle(d["walls"])
        return d, "valid"
    # scale_walls: thickness and height anywhere from paper-thin to absurd
    d["wall_thickness"] = rng.choice([1e-6, 0.05, 0.3, 0.6, 2.0, 50.0])
    d["wall_height"] = rng.choice([1e-6, 0.5, 3.0, 50.0])
    return d, "any"


def _encode(rng: random.Random, d, expect: str) -> tuple[bytes, str]:
    text = json.dumps(d).encode()
    r = rng.random()
    if r < 0.06:
        return text[: rng.randrange(len(text))], "any"         # truncated (most no longer parse)
    if r < 0.09:
        return os.urandom(rng.randrange(1, 400)), "invalid"   # binary garbage
    if r < 0.10:
        return b"", "invalid"
    if r < 0.11:
        return b"[" * 50_000, "invalid"
    if r < 0.12:
        return b"\xef\xbb\xbf" + text, expect                 # a UTF-8 byte-order mark (Windows editors)
    if r < 0.13:
        return json.dumps([d]).encode(), "invalid"
    if r < 0.15:
        i = rng.randrange(len(text))
        return text[:i] + bytes([rng.randrange(256)]) + text[i + 1:], "any"   # one byte changed
    return text, expect


def test_track_loader_fuzz(tmp_path):
    rng = random.Random(SEED)
    bases = [json.loads((TRACKS_DIR / f"{n}.json").read_text()) for n in ("s_curve", "hairpin")]
    bases += [generate(s, difficulty=dif).to_dict() for s, dif in ((3, None), (11, "hard"), (1_000_007, "easy"))]
    bases.append(json.loads(json.dumps(SHORT)))
    counts = {"loaded": 0, "refused": 0}
    accepted: dict[str, Track] = {}
    failures = []
    t0 = time.perf_counter()
    for case in range(TRACK_CASES):
        d = json.loads(json.dumps(rng.choice(bases)))
        verdicts = []
        for _ in range(rng.choice([1, 1, 2, 3])):
            try:
                d, e = _mutate(rng, d)
            except (KeyError, TypeError, IndexError, ValueError, OverflowError):   # an earlier mutation broke its input
                e = "any"
            verdicts.append(e)
        # one mutation has a known verdict; several may undo each other (reversed twice), so only all-valid is known
        expect = verdicts[0] if len(verdicts) == 1 else ("valid" if set(verdicts) == {"valid"} else "any")
        data, expect = _encode(rng, d, expect)
        path = tmp_path / f"case{case:03d}.json"
        path.write_bytes(data)
        try:
            track = load_track(path)
        except TrackError as err:
            msg = str(err)
            counts["refused"] += 1
            if expect == "valid" or "\n" in msg or str(path) not in msg or len(msg) > 400:
                failures.append((case, expect, "refused: " + msg[:300]))
        except BaseException as err:  # noqa: BLE001 - anything else is a traceback for the user
            failures.append((case, expect, f"{type(err).__name__}: {str(err)[:300]}"))
        else:
            counts["loaded"] += 1
            if expect == "invalid":
                failures.append((case, expect, "loaded"))
            accepted.setdefault(track.track_id, track)
    assert not failures, failures[:10]
    assert counts["loaded"] > 40 and counts["refused"] > 100, counts
    # accepted tracks really run: the first reset places the car clear of the walls, and steps work
    from racecar_env import RaceCarEnv
    env = RaceCarEnv("s_curve")
    try:
        for k, track in enumerate(list(accepted.values())[:ENV_CHECKS]):
            env.reset(seed=k, options={"track": track})
            assert not env.sim.touches_wall(0.02), track.source
            for _ in range(5):
                env.step([rng.uniform(-1, 1), 1.0])
    finally:
        env.close()
    print(f"track fuzz: {TRACK_CASES} cases ({counts}), {time.perf_counter() - t0:.1f} s")


# --- CLIs -----------------------------------------------------------------------------------------------------------
class Reached(BaseException):
    """Raised by a stub where the expensive work would begin: every check of the input has passed."""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Datasets (a good one, a damaged copy), a run folder with checkpoints, damaged checkpoints, a user's files."""
    from conftest import autopilot_datasets
    from learn.config import TrainConfig
    from learn.train import train
    from racecar_env.storage import load_dataset
    from teleop.record import RecordConfig
    base = tmp_path_factory.mktemp("fuzz")
    short = base / "short.json"
    short.write_text(json.dumps(SHORT))
    wall = json.loads(json.dumps(SHORT))
    wall["start"]["y"] = 0.1
    (base / "wall.json").write_text(json.dumps(wall))
    (base / "bin.json").write_bytes(bytes(range(256)))
    root = base / "datasets"
    with autopilot_datasets(root, RecordConfig("fz", episodes=2, track=str(short), workers=1, progress=False)):
        cfg = TrainConfig.build(dataset="fz", algo="bc", steps=1, eval_every=0, eval_episodes=1,
                                final_eval_episodes=0, eval_workers="1", out=str(base / "run"), hidden="16,16")
        train(cfg, progress=False, log=lambda *a: None)
        demo = load_dataset("fz")[0]
    shutil.copytree(root / "racecar" / "fz-v0", root / "racecar" / "fzdmg-v0")
    arrow = root / "racecar" / "fzdmg-v0" / "data" / "1" / "part-0.arrow"
    arrow.write_bytes(arrow.read_bytes()[:500])
    ck = base / "run" / "checkpoints" / "best.pt"
    good = ck.read_bytes()
    bad = base / "bad"
    bad.mkdir()
    (bad / "empty.pt").write_bytes(b"")
    (bad / "folder.pt").mkdir()
    (bad / "cut.pt").write_bytes(good[: len(good) // 2])
    flipped = bytearray(good)
    for i in range(0, len(flipped), len(flipped) // 7):
        flipped[i] ^= 0xFF
    (bad / "flipped.pt").write_bytes(bytes(flipped))
    (base / "notes.txt").write_text("a user's own file\n")
    (base / "mine.json").write_text((TRACKS_DIR / "hairpin.json").read_text())
    replay_out = base / "replay_out"
    replay_out.mkdir()
    (replay_out / "eval_info.json").write_text("{}")
    return {"base": base, "root": root, "short": short, "ck": ck, "run": base / "run", "bad": bad, "demo": demo,
            "replay_out": replay_out}


def _pick(rng, good, bad, p_bad=0.25):
    """(value, is_bad): a value from the bad pool with probability p_bad."""
    if bad and rng.random() < p_bad:
        return rng.choice(bad), True
    return rng.choice(good), False


class Case:
    def __init__(self, rng):
        self.rng, self.argv, self.bad = rng, [], False

    def flag(self, name, good, bad=(), p=0.5, p_bad=0.25):
        if self.rng.random() < p:
            value, is_bad = _pick(self.rng, good, bad, p_bad)
            self.argv += [name] if value is None else [name, str(value)]
            self.bad |= is_bad

    def junk(self, p=0.04):
        if self.rng.random() < p:
            self.argv.insert(self.rng.randrange(len(self.argv) + 1),
                             self.rng.choice(["--bogus", "-x", "--episodes=", "%s", "\x00", "é"]))
            self.bad = True


def _teleop_case(rng, w, scratch) -> Case:
    c = Case(rng)
    s = str(w["short"])
    b = str(w["base"])
    r = rng.random()
    if r < 0.12:
        name, bad = _pick(rng, ["fz"], ["nope", "../x", "a b", ""])
        c.argv, c.bad = ["info", name], bad
        return c
    if r < 0.15:
        c.argv = ["list"]
        return c
    if rng.random() < 0.7:
        c.argv.append("record")
    c.flag("--driver", ["autopilot"], ["car", ""], p=0.9)
    c.flag("--episodes", [1, 3, "12"], [0, -1, "x", "1.5", ""])
    c.flag("--skill", ["expert", "noisy", "mixed"], ["pro", ""])
    c.flag("--dataset", ["fz", f"new{rng.randrange(1000)}"], ["../x", "a b", "", "racecar/../x-v0"])
    c.flag("--track", [s, "s_curve", "hairpin", "gen:3", "gen:5:hard", "random", "random:test:easy"],
           ["nope", f"{b}/bin.json", f"{b}/wall.json", "gen:x", "random:foo", "", f"{b}/missing.json", b], p=0.7)
    c.flag("--seed", [0, 5, "123456789"], [-1, "x", "1e3"])
    c.flag("--max-episode-steps", [1, 50], [0, -5, "x"], p=0.3)
    c.flag("--workers", ["auto", 1, 2], [0, "x", "-1"], p=0.3)
    c.flag("--quiet", [None], p=0.5)
    c.junk()
    return c


def _learn_case(rng, w, scratch) -> Case:
    from learn.config import ALGO_CONFIGS
    c = Case(rng)
    b = str(w["base"])
    resume = rng.random() < 0.15
    if resume:
        c.argv += ["--resume", "--out", str(w["run"])]
        c.flag("--steps", [5, 100], [0, -1, "x"], p=0.6)
        c.flag("--eval-every", [0, 10], [-1], p=0.3)
        if rng.random() < 0.2:
            c.argv += ["--algo", "td3bc"]   # a learning setting: refused on --resume
            c.bad = True
        c.junk()
        return c
    algo, bad_algo = _pick(rng, list(ALGO_CONFIGS), ["ppo", ""], 0.08)
    c.argv += ["--algo", algo]
    c.bad |= bad_algo
    c.flag("--dataset", ["fz"], ["nope", "a/b", "", "fzdmg"], p=0.8)
    out, bad_out = _pick(rng, [f"{scratch}/run{rng.randrange(10 ** 6)}"],
                         [str(w["run"]), f"{b}/notes.txt", f"{b}/notes.txt/sub", str(w["root"])], 0.3)
    c.argv += ["--out", out]
    c.bad |= bad_out
    c.flag("--seed", [0, 7], ["x", "1.5"], p=0.3)
    c.flag("--steps", [0, 10], [-1, "x", "nan"], p=0.4)
    c.flag("--batch-size", [16, 64], [0, -3, "1.5"], p=0.3)
    c.flag("--hidden", ["16,16", "32"], ["0", "a", "", "16,,16", "-4"], p=0.3)
    if algo != "bc":   # BC has no critic: --gamma there is another algorithm's setting (below)
        c.flag("--gamma", [0.9, 1], [1.5, -0.1, "nan"], p=0.2)
    c.flag("--actor-lr", [1e-3], [0, "inf", "-1"], p=0.2)
    c.flag("--eval-every", [0, 100], [-1, "x"], p=0.3)
    c.flag("--eval-track", [str(w["short"]), "s_curve", "random:test"],
           ["nope", f"{b}/wall.json", f"{b}/bin.json"], p=0.3)
    c.flag("--device", ["cpu", "auto"], ["tpu", "cuda" if not _has_cuda() else "tpu"], p=0.2)
    c.flag("--precision", ["fp32", "bf16", "auto"], ["fp8"], p=0.2)
    c.flag("--save-every-s", [1, 60], [0, "nan"], p=0.2)
    c.flag("--threads", [0, 1], [-1, "x"], p=0.1)
    c.flag("--eval-workers", [1, "auto"], [0, "x"], p=0.2)
    own = {"td3bc": [("--alpha", [0.1, 2.5], [float("nan"), "inf", -1, "x"]), ("--policy-freq", [1, 3], [0])],
           "cql": [("--cql-weight", [1.0], ["nan", -1])], "iql": [("--expectile", [0.7, 0.9], [0.2, 2, "nan"])],
           "bc": []}
    for name, good, bad in own.get(algo, []):
        c.flag(name, good, bad, p=0.4)
    if rng.random() < 0.08:   # another algorithm's setting
        c.argv += ["--alpha", "0.5"] if algo != "td3bc" else ["--expectile", "0.8"]
        c.argv += ["--gamma", "0.9"] if algo == "bc" else []
        c.bad = True
    c.junk()
    return c


def _has_cuda() -> bool:
    import torch
    return torch.cuda.is_available()


def _evaluate_case(rng, w, scratch) -> Case:
    c = Case(rng)
    bad = w["bad"]
    b = str(w["base"])
    ck, is_bad = _pick(rng, [str(w["ck"])],
                       [str(bad / n) for n in ("empty.pt", "folder.pt", "cut.pt", "flipped.pt")]
                       + [f"{b}/missing.pt", str(w["root"]), str(w["short"])], 0.3)
    c.argv.append(ck)
    c.bad |= is_bad
    c.flag("--episodes", [1, 2], [0, -1, "x"])
    c.flag("--seed", [0, 20000], [-1, "x"], p=0.3)
    c.flag("--track", [str(w["short"]), "s_curve", "random:test", "gen:4"],
           ["nope", f"{b}/bin.json", f"{b}/wall.json"], p=0.4)
    c.flag("--start-jitter", ["0.1,0.1", "0,0", "2,3"], ["nan,0", "-1,0", "5,5", "x", "1"], p=0.3)
    c.flag("--workers", [1, "auto", 2], [0, "x"], p=0.3)
    c.flag("--video", [f"{scratch}/v{rng.randrange(100)}.mp4"], [str(w["ck"]), scratch, f"{scratch}/v.gif"], p=0.1)
    c.flag("--json", [f"{scratch}/r{rng.randrange(100)}.json"], [str(w["ck"]), str(w["root"]), f"{b}/notes.txt"],
           p=0.3)
    c.flag("--quiet", [None], p=0.5)
    c.junk()
    return c


def _replay_case(rng, w, scratch) -> Case:
    c = Case(rng)
    bad = w["bad"]
    b = str(w["base"])
    what = rng.random()
    if what < 0.45:
        c.flag("--policy", [str(w["ck"]), "autopilot", "autopilot:noisy"],
               [str(bad / "empty.pt"), str(bad / "cut.pt"), f"{b}/missing.pt", "autopilot:wild"], p=1.0)
        c.flag("--episodes", [1, 2], [0, -1, "0,0", "x"], p=0.6)
        c.flag("--track", [str(w["short"])], ["nope", f"{b}/wall.json", f"{b}/bin.json"], p=0.8, p_bad=0.15)
    elif what < 0.8:
        c.flag("--dataset", ["fz", "fzdmg"], ["nope", "../x"], p=1.0)   # fzdmg: episode 0 reads, 1 is damaged
        c.flag("--episodes", ["0", "1", "0,1", "0-1"], ["0,0", "5", "-1", "x", "1-0"], p=0.7)
    else:
        c.argv += ["--compare", str(w["ck"]), "autopilot"]
        if rng.random() < 0.5:
            c.argv += ["--dataset", "fz", "--episodes", "0"]
        else:
            c.argv += ["--track", str(w["short"]), "--episodes", "1"]
    if rng.random() < 0.05:
        c.argv = [a for a in c.argv if not a.startswith("--policy") and a != str(w["ck"])]  # nothing to show
    c.flag("--seed", [0, 20000], [-1, "x"], p=0.2)
    out, is_bad = _pick(rng, [f"{scratch}/rp{rng.randrange(10 ** 6)}"],
                        [f"{b}/notes.txt", f"{b}/notes.txt/sub", str(w["replay_out"])], 0.2)
    c.argv += ["--out", out]
    c.bad |= is_bad
    c.flag("--view", ["topdown"], ["side", ""], p=0.2)
    c.flag("--workers", [1], [0, "x"], p=0.5)
    c.flag("--quiet", [None], p=0.7)
    c.flag("--lidar", [None], p=0.1)
    c.junk()
    return c


def _tracks_case(rng, w, scratch) -> Case:
    c = Case(rng)
    b = str(w["base"])
    if rng.random() < 0.5:
        c.flag("--seed", [1, 5, 1_000_000], [-1, "x"], p=1.0)
        out, is_bad = _pick(rng, [f"{scratch}/t{rng.randrange(20)}.json"],
                            [f"{b}/mine.json", str(TRACKS_DIR / "s_curve.json"), scratch, f"{scratch}/t.png",
                             f"{b}/notes.txt/t.json"], 0.3)
    else:
        c.flag("--gallery", [1, 2], [0, 401, -1, "x"], p=1.0)
        c.flag("--first-seed", [0, 40], [-1], p=0.3)
        c.flag("--cols", [1, 2], [0], p=0.2)
        out, is_bad = _pick(rng, [f"{scratch}/g{rng.randrange(20)}.png"],
                            [f"{b}/notes.txt", f"{scratch}/g.json", scratch], 0.3)
    c.argv += ["--out", out]
    c.bad |= is_bad
    c.flag("--difficulty", ["easy", "hard"], ["insane", ""], p=0.3)
    c.flag("--min-turn-deg", [30, 45.5], ["nan", 5, 170, "x"], p=0.15)
    c.flag("--max-turn-deg", [100, 120], ["inf", 200], p=0.15)
    c.flag("--free-width", ["2,2.2", "2"], ["a,b", "1,5", "nan,2", "3,2"], p=0.15)
    c.flag("--corners", ["3,5", "4"], ["0,3", "5,3", "x", "1,99"], p=0.15)
    c.flag("--quiet", [None], p=0.5)
    c.junk()
    return c


def _stubs(monkeypatch, w):
    """Stubs where the work would start; each checks what the CLI handed it (only good input gets this far)."""
    import learn.evaluate as le
    import learn.train as lt
    import replay.session as rs
    import teleop.record as tr
    from racecar_env.evaluation import EvalResult
    from racecar_env.tracks.source import track_source

    def record(cfg):
        assert cfg.episodes >= 1 and cfg.seed >= 0 and (cfg.workers == "auto" or int(cfg.workers) >= 1)
        assert cfg.max_episode_steps is None or cfg.max_episode_steps >= 1
        track_source(cfg.track)
        raise Reached

    def make_agent(algo, *a, **k):   # train() has checked the folder, the checkpoint, the data, the eval track
        for name, v in vars(algo).items():
            assert not isinstance(v, float) or math.isfinite(v), (name, v)
        raise Reached

    def evaluate(policy, track, episodes, seed0, **kw):
        assert episodes >= 1 and seed0 >= 0
        assert isinstance(track, Track) or track.startswith("random")
        jitter = kw.get("env_kwargs", {}).get("start_jitter", (0.1, 0.1))
        assert all(math.isfinite(v) and v >= 0 for v in jitter)
        if episodes > 2:
            raise Reached
        return EvalResult.of([w["demo"]] * episodes)

    def run_episodes(env_kwargs, agent, seeds, **kw):
        assert all(s is None or s >= 0 for s in seeds)
        if len(seeds) > 2:
            raise Reached
        on = kw.get("on_episode")
        eps = []
        for i, s in enumerate(seeds):
            eps.append(dataclasses.replace(w["demo"], meta={**w["demo"].meta, "seed": s}))
            if on:
                on(i, eps[-1])
        return eps

    def reached(*a, **k):
        raise Reached

    import replay.cli as rc
    real_plan_videos, rendered = rc.plan_videos, []

    def plan_videos(cfg, plan):   # videos are drawn for real a few times; later accepted cases stop here
        if len(rendered) >= 3:
            raise Reached
        rendered.append(cfg)
        return real_plan_videos(cfg, plan)

    monkeypatch.setattr(tr, "record_autopilot", record)
    monkeypatch.setattr(lt, "make_agent", make_agent)
    monkeypatch.setattr(le, "evaluate", evaluate)
    monkeypatch.setattr(rs, "run_episodes", run_episodes)
    monkeypatch.setattr(rc, "plan_videos", plan_videos)
    import replay.live
    import teleop.window
    monkeypatch.setattr(teleop.window, "run_window_session", reached)
    monkeypatch.setattr(replay.live, "play", reached)


def _run_in_process(main, argv) -> tuple[object, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result = main(argv)
        except SystemExit as e:
            result = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        except Reached:
            result = "reached"
        except BaseException as e:  # noqa: BLE001 - the user would see a traceback
            import traceback
            result = f"EXCEPTION {type(e).__name__}: {e} | {traceback.format_exc()[-600:]}"
    return result, out.getvalue(), err.getvalue()


def test_cli_fuzz(world, tmp_path, monkeypatch):
    from learn.__main__ import main as learn_main
    from learn.evaluate import main as evaluate_main
    from racecar_env.tracks.__main__ import main as tracks_main
    from replay.cli import main as replay_main
    from teleop.__main__ import main as teleop_main
    w = world
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(w["root"]))
    monkeypatch.chdir(tmp_path)
    _stubs(monkeypatch, w)
    clis = [("teleop", teleop_main, _teleop_case), ("learn", learn_main, _learn_case),
            ("learn.evaluate", evaluate_main, _evaluate_case), ("replay", replay_main, _replay_case),
            ("racecar_env.tracks", tracks_main, _tracks_case)]
    watched = [w["root"], w["run"], w["bad"], w["base"] / "notes.txt", w["base"] / "mine.json", w["short"],
               w["replay_out"], TRACKS_DIR]
    before = digest(*watched)
    rng = random.Random(SEED + 1)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    stats: dict[str, dict[str, int]] = {name: {} for name, _, _ in clis}
    failures, bad_cases = [], []
    t0 = time.perf_counter()
    for case in range(CLI_CASES):
        name, main, make = clis[case % len(clis)]
        c = make(rng, w, str(scratch))
        result, out, err = _run_in_process(main, list(c.argv))
        lines = [ln for ln in err.splitlines() if ln.strip()]
        key = str(result)[:9]
        stats[name][key] = stats[name].get(key, 0) + 1
        where = (case, name, c.argv)
        if isinstance(result, str) and result.startswith("EXCEPTION"):
            failures.append((*where, result))
        elif result == 2:
            if len(lines) != 1 or "error" not in lines[0] or "Traceback" in err:
                failures.append((*where, "exit 2 without exactly one error line", err[-800:]))
            if c.bad:
                bad_cases.append((name, c.argv))
        elif c.bad:
            failures.append((*where, f"bad input accepted ({result})", err[-300:], out[-300:]))
        elif result not in (0, "reached") and not (result == 1 and c.argv[:1] in (["info"], ["list"])):
            failures.append((*where, f"exit {result}", err[-500:]))
        now = digest(*watched)
        if now != before:
            changed = sorted(k for k in set(now) | set(before) if now.get(k) != before.get(k))
            failures.append((*where, "changed existing files", changed[:5]))
            before = now
    elapsed = time.perf_counter() - t0
    print(f"CLI fuzz: {CLI_CASES} cases in {elapsed:.1f} s: {stats}")
    assert not failures, "\n".join(map(repr, failures[:8]))

    # a few of the refused cases again as real programs: the same one line, exit 2, no traceback
    env = {**os.environ, "MINARI_DATASETS_PATH": str(w["root"]), "SDL_VIDEODRIVER": "dummy"}
    module = {"teleop": "teleop", "learn": "learn", "learn.evaluate": "learn.evaluate", "replay": "replay",
              "racecar_env.tracks": "racecar_env.tracks"}
    picks = random.Random(SEED + 2).sample(bad_cases, min(SUBPROCESS_CASES, len(bad_cases)))
    for name, argv in picks:
        p = subprocess.run([sys.executable, "-m", module[name], *argv], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in p.stderr, (name, argv, p.stderr[-1500:])
    assert digest(*watched) == before
