"""Autopilot: pure pursuit on the track's centre-line with speed planning for corners. Works on any track file and
on generated tracks (corners of any angle, left and right, corridors of different widths).

How it drives:
  steering  pure pursuit from the rear axle towards the centre-line point `lookahead + lookahead_per_speed * v`
            ahead (the goal itself once it is within reach);
  speed     the fastest speed that can still brake (at `decel`) to every corner ahead. A corner's speed is
            `v_corner` for a 90-degree turn in a corridor `ref_width` wide, scaled by sqrt(90 deg / turn) and
            sqrt(width / ref_width): a corner's feasible radius grows with the corridor width and shrinks with the
            turn, and the lateral-grip speed goes with the square root of the radius. The corridor's free width is
            measured once per track from its walls, so the shipped 1.7 m tracks drive exactly as before.

Skill levels make data of different quality, like the D4RL families:
  expert  clean, fast lines
  noisy   action noise plus a wandering lateral offset from the line (scaled with the corridor width): sloppy
          driving, some crashes (about half on s_curve and on generated tracks)
  mixed   each episode is expert or noisy with equal probability (the episode records which)
  keyboard-careful, keyboard-sloppy
          the same planning driven through held keys by a simulated person (teleop.keyboard_pilot): human-style
          keyboard data; `make_driver` builds the right driver for any skill
"""
from __future__ import annotations

if __name__ == "__main__":   # a Ctrl-C while the program loads ends it quietly; racecar_env.cli.entry takes over
    import signal
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_DFL)

import math
from dataclasses import dataclass

import numpy as np

from racecar_env import spec
from racecar_env.physics import CENTER_OFFSET
from racecar_env.tracks import Centerline, Track, load_track

WHEELBASE = 0.325          # m, racecar.urdf rear to front axle
TOP_SPEED = 2.5            # m/s at throttle 1 (50 rad/s wheel speed)
AUTOPILOT_SKILLS = ("expert", "noisy", "mixed")
#: every headless driver's skill; keyboard-* are teleop.keyboard_pilot's simulated keyboard drivers (make_driver)
SKILLS = AUTOPILOT_SKILLS + ("keyboard-careful", "keyboard-sloppy")


@dataclass(frozen=True)
class AutopilotConfig:
    lookahead: float = 0.7          # m, pure-pursuit look-ahead at standstill
    lookahead_per_speed: float = 0.25   # s: look further when faster
    v_max: float = 2.5              # m/s on straights
    v_corner: float = 1.3           # m/s through a 90-degree corner of a ref_width corridor
    ref_width: float = 1.7          # m, corridor free width v_corner and wander are given for (the shipped tracks')
    decel: float = 2.5              # m/s^2 planned braking
    corner_exit: float = 0.6        # m past a corner's vertex before speeding up again (more for sharp corners)
    steer_noise: float = 0.0        # std of Gaussian noise added to steer
    throttle_noise: float = 0.0     # std of Gaussian noise added to throttle
    wander: float = 0.0             # m at ref_width, amplitude of a slowly varying lateral offset from the line


SKILL_CONFIGS = {
    "expert": AutopilotConfig(),
    "noisy": AutopilotConfig(steer_noise=0.35, throttle_noise=0.2, wander=0.45, v_corner=1.6),
}


def free_width(track: Track, step: float = 0.25) -> float:
    """The corridor's free width (m between wall faces): twice the median distance from the centre-line to the
    nearest wall face, rounded to 1 mm (so a 1.7 m corridor measures exactly 1.7)."""
    line = Centerline(track.centerline)
    s = np.linspace(0.0, line.length, max(int(line.length / step), 2) + 1)
    pts = np.array([line.point_at(v)[:2] for v in s])
    a, b = track.walls[None, :, :2], track.walls[None, :, 2:]
    v = b - a
    t = np.clip(((pts[:, None] - a) * v).sum(-1) / np.maximum((v * v).sum(-1), 1e-12), 0.0, 1.0)
    d = np.hypot(*(pts[:, None] - a - t[..., None] * v).transpose(2, 0, 1)).min(axis=1)
    return round(2 * (float(np.median(d)) - track.wall_thickness / 2), 3)


class Autopilot:
    """A Driver (see teleop.drivers) that needs no human and no screen."""
    name = "autopilot"

    def __init__(self, track: "str | Track" = "s_curve", skill: str = "expert", seed: int | None = 0):
        if skill not in AUTOPILOT_SKILLS:
            raise ValueError(f"skill must be one of {', '.join(AUTOPILOT_SKILLS)}, got {skill!r}")
        self.skill = skill
        self.set_track(load_track(track))
        self.rng = np.random.default_rng(seed)
        self.episode_skill = skill if skill != "mixed" else "expert"
        self.cfg = SKILL_CONFIGS[self.episode_skill]
        self._wander_phase = 0.0

    def set_track(self, track: Track) -> None:
        """Plan on `track` (called at reset with the episode's track when the env draws one per episode)."""
        self.track = track
        self.line = Centerline(track.centerline)
        self.width = free_width(track)
        self._corners = self._corner_table()

    def _corner_table(self) -> list[tuple[float, float]]:
        """(arc length, |turn angle| in rad) of every interior centre-line vertex."""
        pts, out = self.line.points, []
        for i in range(1, len(pts) - 1):
            a = math.atan2(*(pts[i] - pts[i - 1])[::-1])
            b = math.atan2(*(pts[i + 1] - pts[i])[::-1])
            turn = abs((b - a + math.pi) % (2 * math.pi) - math.pi)
            out.append((float(self.line.cum[i]), turn))
        return out

    def reset(self, obs: dict, info: dict, seed: int | None = None) -> None:
        track = info.get("track")
        if track is not None and track.track_id != self.track.track_id:
            self.set_track(track)
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.episode_skill = self.skill if self.skill != "mixed" else str(self.rng.choice(["expert", "noisy"]))
        self.cfg = SKILL_CONFIGS[self.episode_skill]
        self._wander_phase = float(self.rng.uniform(0, 2 * math.pi))

    @property
    def width_scale(self) -> float:
        """This track's corridor width relative to the config's reference width."""
        return self.width / self.cfg.ref_width

    def provenance(self) -> dict:
        c = self.cfg
        return {"driver": self.name, "skill": self.episode_skill, "noise": float(c.steer_noise),
                "wander": float(c.wander * self.width_scale)}

    def corner_speed(self, turn: float) -> float:
        """Speed (m/s) through a corner turning `turn` rad (any sign) in this track's corridor."""
        c = self.cfg
        if abs(turn) <= 0.05:
            return c.v_max
        return c.v_corner * math.sqrt(math.pi / 2 / abs(turn)) * math.sqrt(self.width_scale)

    def corner_zone(self, turn: float) -> float:
        """Half-length (m of centre-line) of the stretch around a corner's vertex driven at the corner speed:
        `corner_exit` up to 90 degrees, growing with tan(turn/2) beyond (a sharper turn takes longer to finish)."""
        return self.cfg.corner_exit * max(1.0, math.tan(abs(turn) / 2))

    def target_speed(self, s: float) -> float:
        """Fastest speed at arc length s that can still brake to each corner's speed ahead. A corner's speed holds
        from (zone - corner_exit) before its vertex (0 for turns up to 90 degrees) to `zone` after it."""
        c = self.cfg
        v = c.v_max
        for s_corner, turn in self._corners:
            zone = self.corner_zone(turn)
            d = s_corner - s
            if d < -zone:   # corner behind us (with a margin to finish the turn)
                continue
            brake_to = d - (zone - c.corner_exit)
            v = min(v, math.sqrt(self.corner_speed(turn) ** 2 + 2 * c.decel * max(brake_to, 0.0)))
        return min(v, c.v_max)

    def act(self, obs: dict) -> np.ndarray:
        steer, speed = self.intent(obs)
        throttle = speed / TOP_SPEED
        c = self.cfg
        if c.steer_noise or c.throttle_noise:
            steer += self.rng.normal(0, c.steer_noise)
            throttle += self.rng.normal(0, c.throttle_noise)
        return np.clip(np.array([steer, throttle], dtype=np.float32), -1.0, 1.0)

    def intent(self, obs: dict) -> tuple[float, float]:
        """What the driver wants from `obs`, before noise: (steer in units of full lock, unclipped; target speed
        in m/s). The keyboard pilot (teleop.keyboard_pilot) turns the same intent into held keys."""
        o = obs["observation"]
        x, y = float(spec.field(o, "x")), float(spec.field(o, "y"))
        yaw = math.atan2(float(spec.field(o, "sin_yaw")), float(spec.field(o, "cos_yaw")))
        speed = float(spec.field(o, "v_forward"))
        gx, gy = (float(v) for v in obs["desired_goal"])
        c = self.cfg

        s = self.line.project(x, y)
        look = c.lookahead + c.lookahead_per_speed * max(speed, 0.0)
        tx, ty, heading = self.line.point_at(s + look)
        if c.wander:
            off = c.wander * self.width_scale * math.sin(0.6 * s + self._wander_phase)
            tx, ty = tx - off * math.sin(heading), ty + off * math.cos(heading)
        s_goal = self.line.project(gx, gy)
        if s + look >= s_goal or math.hypot(gx - x, gy - y) < look:
            tx, ty = gx, gy  # the goal is within reach: aim straight at it
        # pure pursuit from the rear axle: curvature = 2 sin(alpha) / distance
        rx, ry = x - CENTER_OFFSET * math.cos(yaw), y - CENTER_OFFSET * math.sin(yaw)
        alpha = math.atan2(ty - ry, tx - rx) - yaw
        dist = max(math.hypot(tx - rx, ty - ry), 1e-3)
        steer_angle = math.atan(2 * WHEELBASE * math.sin(alpha) / dist)
        return steer_angle / spec.MAX_STEER_RAD, self.target_speed(s)


def make_driver(track: "str | Track" = "s_curve", skill: str = "expert", seed: int | None = 0):
    """The headless driver of `skill` (any of SKILLS): the autopilot, or the simulated keyboard driver."""
    if skill.startswith("keyboard-"):
        from .keyboard_pilot import KeyboardPilot
        return KeyboardPilot(track, skill, seed)
    return Autopilot(track, skill, seed)


class AutopilotFactory:
    """Episode i's headless driver, `make_driver(tracks[i], skill, seed=seeds[i])`, as a picklable object: episode
    runners copy it into their worker processes (a lambda could not travel). `tracks` is one track for all episodes
    or one per episode."""

    def __init__(self, tracks, skill: str, seeds):
        self.tracks, self.skill, self.seeds = tracks, skill, list(seeds)

    def __call__(self, i: int):
        track = self.tracks[i] if isinstance(self.tracks, (list, tuple)) else self.tracks
        seed = self.seeds[i]
        return make_driver(track, self.skill, 0 if seed is None else int(seed))


@dataclass
class EpisodeResult:
    seed: int                # env seed (and, with --track gen, the track's generator seed)
    track: str               # the track's name
    spec: str                # the track as --track names it: the given track, or gen:SEED[:DIFFICULTY] with gen
    outcome: str             # "success", "crash" or "timeout"
    time: float              # s
    width: float | None      # corridor free width of a generated track
    max_turn: float | None   # largest turn magnitude (deg) of a generated track
    at_turn: float | None    # signed turn (deg) of the corner nearest to where a failed episode ended


def _nearest_corner(track: Track, x: float, y: float) -> float | None:
    from racecar_env.tracks import track_kind
    kind = track_kind(track)
    if kind is None or not kind["turns_deg"]:
        return None
    line = Centerline(track.centerline)
    s = line.project(x, y)
    return kind["turns_deg"][int(np.argmin(np.abs(line.cum[1:-1] - s)))]


def evaluate(track: str, skill: str = "expert", episodes: int = 100, *, first_seed: int = 0,
             difficulty: str | None = None, progress: bool = True) -> list["EpisodeResult"]:
    """Run the autopilot for `episodes` episodes. `track` is a track name/path/"gen:SEED" (the same track every
    episode, env seeds 0..N-1, one driver seeded 0) or "gen": episode i on `generate(first_seed + i, difficulty=..)`
    with env seed and driver seed first_seed + i."""
    from racecar_env import RaceCarEnv
    from racecar_env.progress import track as progress_track
    from racecar_env.rollout import run_episode
    from racecar_env.tracks import generate, track_kind

    out = []
    env = driver = None
    for i in progress_track(range(episodes), desc=skill, unit="ep", quiet=not progress):
        driven = str(track)   # as --track names it
        if track == "gen":
            seed = first_seed + i
            driven = f"gen:{seed}" + (f":{difficulty}" if difficulty else "")
            if env is not None:
                env.close()
            env = RaceCarEnv(generate(seed, difficulty=difficulty))
            driver = make_driver(env.track, skill, seed=seed)
        else:
            seed = i
            if env is None:
                env = RaceCarEnv(track)
                driver = make_driver(env.track, skill, seed=0)
        ep = run_episode(env, driver, seed)
        kind = track_kind(env.track)
        x, y = (float(v) for v in ep.observations["observation"][-1][:2])
        out.append(EpisodeResult(
            seed=seed, track=env.track.name, spec=driven, outcome=ep.outcome, time=ep.steps * spec.CONTROL_DT,
            width=kind["free_width"] if kind else None,
            max_turn=max(abs(a) for a in kind["turns_deg"]) if kind else None,
            at_turn=None if ep.success else _nearest_corner(env.track, x, y)))
    env.close()
    return out


def summary(results: list[EpisodeResult]) -> list[str]:
    """Printable lines: success, crash, timeout, time-to-goal; for generated tracks, failure rates by kind."""
    n = len(results)
    wins = [r.time for r in results if r.outcome == "success"]
    crash = sum(r.outcome == "crash" for r in results)
    timeout = sum(r.outcome == "timeout" for r in results)
    ttg = f"{np.mean(wins):.2f} s" if wins else "-"
    lines = [f"success {len(wins) / n:.1%}, crash {crash / n:.1%}, timeout {timeout / n:.1%}, "
             f"mean time-to-goal {ttg} ({n} episodes)"]
    gen = [r for r in results if r.width is not None]
    if not gen:
        return lines
    fails = [r for r in gen if r.outcome != "success"]

    def table(title, key, edges):
        cells = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            group = [r for r in gen if lo <= key(r) < hi]
            if group:
                bad = sum(r.outcome != "success" for r in group)
                cells.append(f"{lo:g}-{hi:g}: {bad}/{len(group)} fail")
        return f"  by {title}: " + ", ".join(cells)

    lines.append(table("largest turn (deg)", lambda r: r.max_turn, [0, 60, 90, 105, 136]))
    lines.append(table("free width (m)", lambda r: r.width, [0, 1.9, 2.1, 2.3, 9]))
    at = np.array([abs(r.at_turn) for r in fails if r.at_turn is not None])
    if len(at):
        edges = [0, 60, 90, 105, 136]
        lines.append("  failures by the turn of the nearest corner (deg): " + ", ".join(
            f"{lo}-{hi}: {int(((at >= lo) & (at < hi)).sum())}" for lo, hi in zip(edges[:-1], edges[1:])))
    worst = sorted(fails, key=lambda r: (r.width, -r.max_turn))[:8]
    if worst and len({r.spec for r in results}) == 1 and n > 1:   # one track: its episodes differ by env seed
        one = worst[0]
        lines.append(f"  failed episodes on {one.spec} (width {one.width:.2f}), by env seed: " + ", ".join(
            f"{r.seed} ({r.outcome}, near {_deg(r.at_turn)})" for r in worst))
    elif worst:   # the track each failed episode drove, as --track takes it
        lines.append("  failed tracks: " + ", ".join(
            f"{r.spec} ({r.outcome}, width {r.width:.2f}, near {_deg(r.at_turn)})" for r in worst))
    return lines


def _deg(turn: float | None) -> str:
    return "-" if turn is None else f"{turn:+.0f} deg"


def main(argv: list[str] | None = None) -> int:
    """How well the autopilot drives: `python -m teleop.autopilot --track hairpin --episodes 100`, or on a different
    generated track every episode: `python -m teleop.autopilot --track gen --episodes 200 [--first-seed S]`."""
    import sys

    from racecar_env import cli
    from racecar_env.rollout import EnvError
    from racecar_env.tracks import DIFFICULTIES, TrackError

    prog = "python -m teleop.autopilot"
    ap = cli.ArgumentParser(prog=prog, description=main.__doc__)
    ap.add_argument("--track", default="s_curve",
                    help="track name, .json path or gen:SEED[:DIFFICULTY] (that track every episode, env seeds "
                         "0..N-1); or 'gen': episode i drives generated track first_seed+i (env seed first_seed+i) "
                         "(default s_curve)")
    ap.add_argument("--first-seed", type=cli.seed, default=0,
                    help="with --track gen: first generator seed (default 0; training tracks 0..999999, "
                         "test tracks 1000000..1999999)")
    ap.add_argument("--difficulty", choices=list(DIFFICULTIES),
                    help="with --track gen: generator preset (default: the full default ranges)")
    ap.add_argument("--skill", default="expert", choices=SKILLS, help="driving skill (default expert)")
    ap.add_argument("--episodes", type=cli.count, default=100, help="episodes (default 100)")
    ap.add_argument("--no-progress", "--quiet", dest="no_progress", action="store_true", help="no progress output")
    args = ap.parse_args(argv)
    if args.track != "gen" and (args.difficulty is not None or args.first_seed):
        ap.error("--difficulty and --first-seed go with --track gen (a generated track every episode)")
    try:
        if args.track != "gen":
            load_track(args.track)   # a bad --track fails before any episode runs
        results = evaluate(args.track, args.skill, args.episodes, first_seed=args.first_seed,
                           difficulty=args.difficulty, progress=not args.no_progress)
    except (TrackError, EnvError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    where = (f"generated tracks {args.first_seed}..{args.first_seed + args.episodes - 1}"
             + (f" ({args.difficulty})" if args.difficulty else "")) if args.track == "gen" else results[0].track
    lines = summary(results)
    print(f"autopilot {args.skill} on {where}: {lines[0]}")
    for line in lines[1:]:
        print(line)
    return 0


if __name__ == "__main__":
    import sys

    from racecar_env.cli import entry
    sys.exit(entry(main, "python -m teleop.autopilot"))
