"""The robustness column: every finished trial's best.pt, tested again from a wider start distribution.

    python -m learn.sweep --robustness runs/sweeps/NAME [--start-jitter 0.3,0.3] [--robust-episodes 20]

The data were recorded from starts within the env's default jitter (0.1 m, 0.1 rad); here the same agents start up
to --start-jitter away (uniform in position and heading, redrawn if the car would touch a wall), on the same track
their final test used and the same test seeds (20000+i). Each trial gets <trial>/robustness.json (the evaluation
result plus the jitter); trials that already have one for the same jitter and episode count are skipped, so the
command is resumable. A call with another jitter or episode count makes its result the current one and keeps the
replaced ones under "earlier" (a later call back to one of them reuses it). The summary then carries a
robust-success column of the current results (mean over seeds, 95% bootstrap CI).
"""
from __future__ import annotations

from pathlib import Path

from racecar_env.evaluation import TEST_SEED, evaluate
from racecar_env.files import write_json

from .grid import TRIALS, read_json

ROBUST_FILE = "robustness.json"
DEFAULT_JITTER = (0.3, 0.3)    # m, rad: three times the recording jitter
DEFAULT_EPISODES = 20


def finished_trials(sweep_dir: Path) -> list[Path]:
    """Trial folders with a final test and a best.pt."""
    root = Path(sweep_dir) / TRIALS
    return [cfg.parent for cfg in sorted(root.rglob("config.json"))
            if (cfg.parent / "checkpoints" / "best.pt").is_file()
            and isinstance((read_json(cfg.parent / "eval.json") or {}).get("final"), dict)]


def _results(folder: Path) -> list[dict]:
    """Every result in a trial's robustness.json: the current one first, then the earlier ones."""
    have = read_json(folder / ROBUST_FILE)
    if have is None:
        return []
    earlier = have.pop("earlier", None)
    return [have, *(r for r in earlier if isinstance(r, dict))] if isinstance(earlier, list) else [have]


def _matches(result: dict, jitter: tuple[float, float], episodes: int) -> bool:
    return result.get("start_jitter") == list(jitter) and result.get("episodes") == episodes


def is_current(folder: Path, jitter: tuple[float, float], episodes: int) -> bool:
    results = _results(folder)
    return bool(results) and _matches(results[0], jitter, episodes)


def evaluate_trials(sweep_dir: Path, jitter: tuple[float, float] = DEFAULT_JITTER,
                    episodes: int = DEFAULT_EPISODES, emit=print) -> int:
    """Make every finished trial's current robustness result the one for (jitter, episodes), testing the trials
    that never had it; returns how many were tested. Replaced results are kept under "earlier", never dropped."""
    from ..checkpoint import load_policy

    todo = [f for f in finished_trials(sweep_dir) if not is_current(f, jitter, episodes)]
    tested = 0
    for k, folder in enumerate(todo, 1):
        results = _results(folder)
        result = next((r for r in results if _matches(r, jitter, episodes)), None)
        reused = result is not None
        if not reused:
            tested += 1
            policy = load_policy(folder / "checkpoints" / "best.pt")
            track = policy.track or "s_curve"     # what the trial's final test ran on (random:test for many tracks)
            res = evaluate(policy, track, episodes, TEST_SEED, env_kwargs={"start_jitter": tuple(jitter)},
                           workers="auto")   # same episodes as serial, on every core
            result = {"start_jitter": list(jitter), "seed0": TEST_SEED,
                      "track": track if isinstance(track, str) else track.name, **res.to_dict()}
        earlier = [r for r in results if r is not result]
        write_json(folder / ROBUST_FILE, {**result, **({"earlier": earlier} if earlier else {})})
        emit(f"[{k}/{len(todo)}] {folder.relative_to(Path(sweep_dir) / TRIALS)}: success "
             f"{result['success_rate']:.0%} from starts up to {jitter[0]:g} m / {jitter[1]:g} rad off"
             + (" (kept from an earlier call)" if reused else ""))
    return tested
