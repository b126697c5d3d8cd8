"""Procedural tracks: determinism, geometric validity checked independently of the generator's own checks, a clear
start, the expert autopilot finishing them, the CLI and load_track("gen:SEED"). Real pybullet (DIRECT), no mocks."""
import itertools
import json
import math

import numpy as np
import pytest
from PIL import Image

from racecar_env.physics import CarSim
from racecar_env.rollout import run_episode
from racecar_env.tracks import (DIFFICULTIES, TEST_SEEDS, TRAIN_SEEDS, GeneratorConfig, TrackError, generate,
                                load_track, parse_track)
from racecar_env.tracks.__main__ import main as tracks_cli

SAMPLE = list(range(0, 24)) + [999_999, 1_000_000, 1_234_567]


# --- independent geometry (plain numpy, nothing shared with the generator) -----------------------------------------
def point_seg_dist(p, segs):
    """Distances from points p (N, 2) to segments (M, 4): (N, M)."""
    a, b = segs[None, :, :2], segs[None, :, 2:]
    v = b - a
    t = np.clip(((p[:, None] - a) * v).sum(-1) / np.maximum((v * v).sum(-1), 1e-12), 0, 1)
    e = p[:, None] - (a + t[..., None] * v)
    return np.hypot(e[..., 0], e[..., 1])


def segments_intersect(s, q):
    def orient(a, b, c):
        return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))
    a, b, c, d = s[:2], s[2:], q[:2], q[2:]
    return orient(a, b, c) * orient(a, b, d) < 0 and orient(c, d, a) * orient(c, d, b) < 0


def wall_loop(walls):
    """The walls as one closed loop of points, or an AssertionError if they are not exactly one closed loop
    (every endpoint shared by exactly two walls): a gap anywhere would let the car out."""
    ends = {}
    for k, w in enumerate(walls):
        for p in (tuple(w[:2]), tuple(w[2:])):
            ends.setdefault(p, []).append(k)
    assert all(len(v) == 2 for v in ends.values()), "a wall endpoint is not shared by exactly two walls"
    loop, k, p = [], 0, tuple(walls[0][:2])
    for _ in range(len(walls)):
        loop.append(p)
        w = walls[k]
        p = tuple(w[2:]) if tuple(w[:2]) == p else tuple(w[:2])
        k = next(j for j in ends[p] if j != k)
    assert p == loop[0] and k == 0, "the walls form more than one loop"
    return np.array(loop)


def inside(poly, pts):
    """Even-odd point-in-polygon for points (N, 2)."""
    x, y = pts[:, 0][:, None], pts[:, 1][:, None]
    x1, y1 = poly[:, 0][None], poly[:, 1][None]
    x2, y2 = np.roll(poly[:, 0], -1)[None], np.roll(poly[:, 1], -1)[None]
    crosses = ((y1 > y) != (y2 > y)) & (x < x1 + (y - y1) * (x2 - x1) / np.where(y2 == y1, 1e-12, y2 - y1))
    return crosses.sum(1) % 2 == 1


def sample_line(cl, step=0.1):
    seg = np.hypot(*np.diff(cl, axis=0).T)
    cum = np.concatenate([[0], np.cumsum(seg)])
    s = np.arange(0, cum[-1], step)
    return np.stack([np.interp(s, cum, cl[:, 0]), np.interp(s, cum, cl[:, 1])], 1), s, cum[-1]


# --- determinism ------------------------------------------------------------------------------------------------------
def test_same_seed_same_track_different_seeds_differ():
    a, b = generate(3), generate(3)
    assert a.to_dict() == b.to_dict() and a.track_id == b.track_id
    ids = {generate(s).track_id for s in range(12)}
    assert len(ids) == 12
    assert generate(3).track_id != generate(3, difficulty="hard").track_id
    # the JSON round trip keeps the identity (coordinates are rounded, so text and hash are platform-independent)
    d = json.loads(json.dumps(a.to_dict()))
    assert parse_track(d).track_id == a.track_id
    assert all(round(v, 4) == v for v in np.asarray(d["walls"]).ravel())


def test_generated_track_is_pinned():
    """A regression guard: changing what a seed makes must bump GENERATOR_VERSION and this id together."""
    t = generate(0)
    assert t.name == "gen-0" and t.extra["generator"]["version"] == 1
    assert t.track_id == "trk-5a5d882ccc0b6af1"


def test_generator_key_records_how_it_was_made():
    t = generate(5, max_turn_deg=60, free_width=(2.2, 2.4))
    g = t.extra["generator"]
    assert g["seed"] == 5 and g["params"]["max_turn_deg"] == 60 and g["params"]["free_width"] == [2.2, 2.4]
    assert set(g["params"]) == {f for f in GeneratorConfig.__dataclass_fields__}
    assert 2.2 <= g["drawn"]["free_width"] <= 2.4 and all(30 <= abs(a) <= 60 for a in g["drawn"]["turns_deg"])
    # the recorded parameters regenerate the same track
    p = {k: tuple(v) if isinstance(v, list) else v for k, v in g["params"].items()}
    assert generate(5, GeneratorConfig(**p)).track_id == t.track_id


def test_seed_ranges_and_bad_parameters():
    assert TRAIN_SEEDS == range(0, 1_000_000) and TEST_SEEDS == range(1_000_000, 2_000_000)
    for kwargs, words in [({"wobble": 1}, "unknown parameter 'wobble'"), ({"difficulty": "insane"}, "easy"),
                          ({"free_width": (2.4, 1.8)}, "low <= high"), ({"max_turn_deg": 170}, "135"),
                          ({"min_corners": 0}, "min_corners")]:
        with pytest.raises(TrackError, match=words):
            generate(1, **kwargs)
    with pytest.raises(TrackError, match="seed"):
        generate(-1)


# --- validity ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("difficulty", [None, "easy", "hard"])
def test_tracks_are_valid_corridors(difficulty):
    cfg = GeneratorConfig()
    lo_turn, hi_turn = cfg.min_turn_deg, cfg.max_turn_deg
    lo_w, hi_w = cfg.free_width
    if difficulty:
        p = DIFFICULTIES[difficulty]
        lo_turn, hi_turn, (lo_w, hi_w) = p["min_turn_deg"], p["max_turn_deg"], p["free_width"]
    for seed in SAMPLE:
        t = generate(seed, difficulty=difficulty)
        k = t.extra["generator"]["drawn"]
        cl, walls, th = t.centerline, t.walls, t.wall_thickness
        # corner count and the turn angles measured from the centre-line itself
        head = np.arctan2(*np.diff(cl, axis=0).T[::-1])
        turns = np.degrees((np.diff(head) + np.pi) % (2 * np.pi) - np.pi)
        assert cfg.min_corners <= len(turns) == k["corners"] <= cfg.max_corners
        assert np.all(np.abs(turns) >= lo_turn - 0.01) and np.all(np.abs(turns) <= hi_turn + 0.01), seed
        # the free width measured from the walls: the median centre-line-to-wall-face distance, doubled
        pts, s, length = sample_line(cl)
        d = point_seg_dist(pts, walls).min(1)
        width = 2 * (np.median(d) - th / 2)
        assert lo_w - 0.01 <= width <= hi_w + 0.01 and abs(width - k["free_width"]) < 0.01, seed
        # no wall inside the corridor anywhere along the centre-line (the ends are closed by the caps)
        mid = (s > 1.5) & (s < length - 1.5)
        assert d[mid].min() >= width / 2 + th / 2 - 1e-3, seed
        assert d.min() >= 0.8 - 1e-3, seed
        # the walls are one closed, simple loop with the whole centre-line and the goal inside it
        loop = wall_loop(walls)
        edges = np.concatenate([loop, np.roll(loop, -1, axis=0)], axis=1)
        n = len(edges)
        for i, j in itertools.combinations(range(n), 2):
            if min(j - i, n - (j - i)) >= 2:
                assert not segments_intersect(edges[i], edges[j]), (seed, i, j)
        assert inside(loop, pts).all() and inside(loop, np.array([[t.goal.x, t.goal.y]])).all(), seed
        # no self-intersection: parts of the centre-line far apart along it are far apart in the plane
        need = width + 2 * th
        far = np.abs(s[:, None] - s[None]) > 3 * need
        dist = np.hypot(*(pts[:, None] - pts[None]).transpose(2, 0, 1))
        assert dist[far].min() >= need, seed
        # the goal is the centre-line's end, its disc spans the corridor
        assert (t.goal.x, t.goal.y) == tuple(cl[-1]) and t.goal.radius >= max(1.0, width / 2 - 0.01)


def test_start_pose_with_any_jitter_is_clear_of_walls():
    for seed in (0, 1, 2, 1_000_000):
        for difficulty in (None, "hard"):
            t = generate(seed, difficulty=difficulty)
            assert (t.start.x, t.start.y) == tuple(t.centerline[0])
            sim = CarSim(t)
            try:
                for dx, dy, dyaw in itertools.product((-0.1, 0.1), (-0.1, 0.1), (-0.1, 0.1)):
                    sim.place(t.start.x + dx, t.start.y + dy, t.start.yaw + dyaw)
                    assert not sim.touches_wall(0.05), (seed, difficulty, dx, dy, dyaw)
            finally:
                sim.close()


def test_expert_autopilot_reaches_the_goal():
    from racecar_env import RaceCarEnv
    from teleop.autopilot import Autopilot
    for track in (generate(11), generate(1_000_001, difficulty="hard")):
        env = RaceCarEnv(track)
        try:
            ep = run_episode(env, Autopilot(track, "expert", seed=0), seed=0)
        finally:
            env.close()
        assert ep.outcome == "success", track.name


# --- loading and the CLI ----------------------------------------------------------------------------------------------
def test_load_track_gen_seed():
    assert load_track("gen:7").track_id == generate(7).track_id
    assert load_track("gen:7:hard").track_id == generate(7, difficulty="hard").track_id
    for bad in ("gen:x", "gen:", "gen:7:insane"):
        with pytest.raises(TrackError):
            load_track(bad)


def test_cli_writes_a_track_that_loads_back(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert tracks_cli(["--seed", "5", "--difficulty", "hard", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"wrote {out}"
    assert load_track(out).track_id == generate(5, difficulty="hard").track_id
    assert tracks_cli(["--seed", "5", "--max-turn-deg", "60", "--free-width", "2.2,2.4", "--out", str(out)]) == 0
    assert load_track(out).track_id == generate(5, max_turn_deg=60, free_width=(2.2, 2.4)).track_id


def test_cli_gallery_png(tmp_path, capsys):
    out = tmp_path / "g.png"
    assert tracks_cli(["--gallery", "3", "--first-seed", "40", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"wrote {out}"
    with Image.open(out) as img:
        img.load()
        assert img.format == "PNG" and img.width >= 2 * 300 and img.height >= 300


@pytest.mark.parametrize("args, words", [
    (["--seed", "5"], "--out"),
    (["--seed", "x", "--out", "t.json"], "invalid int"),
    (["--seed", "5", "--free-width", "a,b", "--out", "t.json"], "LOW,HIGH"),
    (["--seed", "5", "--max-turn-deg", "170", "--out", "t.json"], "135"),
    (["--gallery", "0", "--out", "g.png"], "--gallery"),
])
def test_cli_errors_are_one_line(args, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert tracks_cli(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m racecar_env.tracks: error:") and words in err[0]


def test_cli_unwritable_out_and_help(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert tracks_cli(["--seed", "1", "--out", str(blocker / "t.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write" in err[0]
    with pytest.raises(SystemExit) as e:
        tracks_cli(["--help"])
    assert e.value.code == 0 and "--gallery" in capsys.readouterr().out


def test_start_heading_is_uniform():
    """The start heading is uniform: absolute heading carries no information."""
    yaws = np.array([generate(s).start.yaw for s in range(200)])
    hist, _ = np.histogram(yaws, bins=4, range=(-math.pi, math.pi))
    assert hist.min() >= 30


def test_settings_that_reach_past_the_ground_name_the_generator_settings(tmp_path, capsys):
    """A road the ground cannot hold is refused naming what to reduce (corners, straights), not "shift the track",
    which a generated road cannot follow; the tracks that fit are unchanged (test_generated_track_is_pinned)."""
    out = tmp_path / "a.json"
    args = ["--seed", "1", "--straight", "20,20", "--corners", "12,12", "--min-turn-deg", "10", "--max-turn-deg",
            "20", "--out", str(out)]
    assert tracks_cli(args) == 2 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seed 1" in err[0] and "98 m" in err[0], err
    assert "--corners" in err[0] and "--straight" in err[0] and "shift" not in err[0], err
    with pytest.raises(TrackError, match="fewer corners.*shorter straights") as e:
        generate(1, straight=(20, 20), min_corners=12, max_corners=12, min_turn_deg=10, max_turn_deg=20)
    assert "max_corners" in str(e.value) and "\n" not in str(e.value)
    assert tracks_cli(["--seed", "1", "--straight", "10,10", "--corners", "4,4", "--out", str(out)]) == 0


def test_generated_start_faces_along_the_road():
    """The start heading is drawn uniformly, and the road leaves the start along it: the start-yaw check (within
    90 deg of the route) holds for every difficulty, with the yaw along the first segment to the rounding."""
    for difficulty in (None, *DIFFICULTIES):
        for seed in list(range(100)) + list(range(TEST_SEEDS.start, TEST_SEEDS.start + 25)):
            t = generate(seed, difficulty=difficulty)
            d = t.centerline[1] - t.centerline[0]
            off = math.remainder(t.start.yaw - math.atan2(d[1], d[0]), math.tau)
            assert abs(off) < 1e-5 and (t.start.x, t.start.y) == tuple(t.centerline[0]), (seed, difficulty, off)
