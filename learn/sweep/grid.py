"""The trial list of a sweep: datasets x algorithms x settings x seeds, each trial a validated TrainConfig and a
run folder; what state each folder is in (done / resume / new); and the sweep.json manifest.

Everything here runs on the driver before Ray starts, so a typo fails in one line and nothing is scheduled.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import re
import shlex
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from racecar_env.cli import MAX_SEED
from racecar_env.files import write_json

from ..config import ALGO_CONFIGS, ALGOS, ConfigError, RunConfig, TrainConfig, _check

TRIALS = "trials"
MANIFEST = "sweep.json"
DATA_FILE = "dataset.json"      # in each trial folder: which version of the dataset it trained on

#: set by the sweep itself, one per trial: not --set keys
AXES = {"dataset": "--datasets", "algo": "--algos", "seed": "--seeds", "out": "--out (of the sweep)"}
#: settings that steer how a trial runs, not what it learns: a rerun may change them without a conflict
HARDWARE = ("out", "eval_workers", "threads", "compile", "log_every", "save_every_s")
#: a grid beyond these is a typo (--seeds 0-99999999 for 0-9), refused before building it rather than hanging
MAX_SEEDS = 1_000
MAX_TRIALS = 10_000
#: the longest file name most file systems take: a longer trial folder name fails only when its trial runs
NAME_MAX = 255


class SweepError(ConfigError):
    """A sweep that cannot start; the one-line message names the flag or the trial."""


@dataclass(frozen=True)
class Trial:
    dataset: str
    algo: str
    seed: int
    setting: str            # "" or the varied values of this trial, e.g. "alpha=0.1" or "alpha=0.1,steps=500"
    values: dict = field(hash=False, compare=False)  # flat TrainConfig values, `out` not included

    @property
    def rel(self) -> str:
        """The run folder relative to the sweep folder."""
        parts = [TRIALS, self.dataset.replace("/", "_"), self.algo, *([self.setting] if self.setting else []),
                 f"s{self.seed}"]
        return "/".join(parts)

    @property
    def label(self) -> str:
        return " ".join(p for p in (self.dataset, self.algo, self.setting, f"s{self.seed}") if p)

    def config(self, sweep_dir: Path) -> TrainConfig:
        return TrainConfig.build(**self.values, out=str(Path(sweep_dir).resolve() / self.rel))


def check_track(spec: str, what: str):
    """The env's TrackSource for `spec` (a name, a track JSON, gen:SEED, random[:test[:DIFFICULTY]]), checked now
    as learn checks --eval-track (learn.tracks.check_source); SweepError otherwise."""
    from ..tracks import check_source
    try:
        return check_source(spec)
    except ValueError as e:   # TrackError
        raise SweepError(f"{what}: {e}") from None


# --- command-line values --------------------------------------------------------------------------------------------
def parse_list(text: str, flag: str) -> list[str]:
    items = [s.strip() for s in str(text).split(",")]
    if not all(items):
        raise SweepError(f"{flag}: expected comma-separated names, got {text!r}")
    return list(dict.fromkeys(items))


def parse_seeds(text: str) -> list[int]:
    """"0-4" -> [0..4]; "0,3,7" and "0-2,10" too; checked by check_seeds."""
    seeds: list[int] = []
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part, re.ASCII)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise SweepError(f"--seeds: expected e.g. 0-4 or 0,1,7 (non-negative), got {text!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        check_seeds([lo, hi], hi - lo + 1)     # before the range is built: 0-99999999 would hang
        seeds.extend(range(lo, hi + 1))
    return check_seeds(list(dict.fromkeys(seeds)))


def check_seeds(seeds: list[int], count: "int | None" = None) -> list[int]:
    """`seeds` if each is a seed training accepts (0..2**63-1, as learn --seed) and there are at most MAX_SEEDS
    (`count` of them if given); SweepError otherwise."""
    bad = next((s for s in seeds if not 0 <= s <= MAX_SEED), None)
    if bad is not None:
        raise SweepError(f"--seeds: seed {bad} is out of range: seeds are 0..2**63-1 ({MAX_SEED})")
    n = len(seeds) if count is None else count
    if n > MAX_SEEDS:
        raise SweepError(f"--seeds: {n:,} seeds; a sweep takes at most {MAX_SEEDS:,} (e.g. --seeds 0-9)")
    return seeds


def _owner(key: str, algos: list[str]) -> list[str]:
    """The chosen algorithms a (bare) setting applies to."""
    if key in {f.name for f in fields(RunConfig)}:
        return list(algos)
    return [a for a in algos if key in {f.name for f in fields(ALGO_CONFIGS[a])}]


def _field_class(key: str, algo: str):
    return RunConfig if key in {f.name for f in fields(RunConfig)} else ALGO_CONFIGS[algo]


def _is_tuple(key: str, algo: str) -> bool:
    import typing
    return typing.get_type_hints(_field_class(key, algo))[key] not in (int, float, str, bool)


def fmt(value) -> str:
    """A setting value as it appears in folder names and tables. A float is written as "g" writes it (0.0003, 1e-05,
    0.99: the names existing sweep folders have) unless that loses digits; then its shortest exact form (repr), so
    two values never share a folder (0.9999999 is not 1)."""
    if isinstance(value, (tuple, list)):
        return "x".join(map(str, value))
    if isinstance(value, float):
        short = format(value, "g")
        return short if float(short) == value else repr(value)
    return str(value)


def _differ(then, now) -> tuple[str, str]:
    """Two different values as text that differs (fmt, else repr: the int 1 and the string "1", say)."""
    shown = fmt(then), fmt(now)
    return shown if shown[0] != shown[1] else (repr(then), repr(now))


def parse_sets(items: list[str], algos: list[str]) -> dict[str, dict[str, list]]:
    """--set KEY=V1,V2,... (or ALGO.KEY=...) -> {algo: {key: [coerced values]}} for every chosen algorithm.

    A bare key applies to each chosen algorithm that has it and must fit at least one; ALGO.KEY only to ALGO.
    Tuple settings (hidden) take their alternatives separated by '/', e.g. hidden=256,256/64,64."""
    per_algo: dict[str, dict[str, list]] = {a: {} for a in algos}
    seen: set[str] = set()
    # bare keys first, so ALGO.KEY overrides KEY for ALGO whatever the order on the command line
    for item in sorted(items, key=lambda i: "." in i.partition("=")[0]):
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not raw.strip():
            raise SweepError(f"--set {item!r}: expected KEY=VALUE or KEY=V1,V2,... (e.g. --set alpha=0.1,0.2)")
        scope, dot, bare = key.rpartition(".")
        if dot:
            if scope not in ALGO_CONFIGS:
                raise SweepError(f"--set {key}: {scope!r} is not an algorithm ({', '.join(ALGOS)})")
            if scope not in algos:
                raise SweepError(f"--set {key}: {scope} is not in --algos {','.join(algos)}")
        if bare in AXES:
            raise SweepError(f"--set {bare}: the sweep sets it per trial; use {AXES[bare]}")
        if key in seen:
            raise SweepError(f"--set {key} given twice; give all its values at once: --set {key}=V1,V2")
        seen.add(key)
        targets = [scope] if dot else _owner(bare, algos)
        if dot and not _owner(bare, [scope]):
            targets = []
        if not targets:
            owners = [a for a in ALGOS if bare in {f.name for f in fields(ALGO_CONFIGS[a])}]
            if owners:
                raise SweepError(f"--set {key}: a setting of {', '.join(owners)}, not of "
                                 f"{', '.join([scope] if dot else algos)}")
            import difflib
            known = {f.name for f in fields(RunConfig)} | {f.name for c in ALGO_CONFIGS.values() for f in fields(c)}
            close = difflib.get_close_matches(bare, sorted(known), n=1)
            raise SweepError(f"--set {key}: no such learn setting{f' (did you mean {close[0]}?)' if close else ''}; "
                             f"see python -m learn --help")
        for algo in targets:
            alts = raw.split("/") if _is_tuple(bare, algo) else raw.split(",")
            try:
                values = [_check(_field_class(bare, algo), bare, v.strip(), "--set") for v in alts]
            except ConfigError as e:
                raise SweepError(str(e)) from None
            values = list(dict.fromkeys(values))
            if bare == "final_eval_episodes" and 0 in values:
                raise SweepError("--set final_eval_episodes=0: the sweep scores each trial by its final test "
                                 "episodes; give >= 1")
            per_algo[algo][bare] = values
    return per_algo


# --- the grid -------------------------------------------------------------------------------------------------------
@dataclass
class Plan:
    out: Path
    datasets: list[str]
    algos: list[str]
    seeds: list[int]
    sets: list[str]                 # the raw --set items, as given
    cpus_per_trial: int
    trials: list[Trial]
    command: str

    def grid(self) -> dict:
        return {"datasets": self.datasets, "algos": self.algos, "seeds": self.seeds, "set": self.sets}


def build_plan(out: "str | Path", datasets: list[str], algos: list[str], seeds: list[int], sets: list[str],
               cpus_per_trial: int = 1, command: str = "") -> Plan:
    """Every trial of the grid as a validated config (raises SweepError naming the problem)."""
    bad = [a for a in algos if a not in ALGO_CONFIGS]
    if bad:
        raise SweepError(f"--algos: {', '.join(bad)} not one of {', '.join(ALGOS)}")
    if not datasets:
        raise SweepError("--datasets: give at least one dataset")
    if cpus_per_trial < 1:
        raise SweepError(f"--cpus-per-trial must be >= 1, got {cpus_per_trial}")
    check_seeds(seeds)
    out = Path(out)
    try:
        for p in (out, *out.parents):     # the nearest existing one must be a folder (not, say, a track file)
            if p.exists():
                if not p.is_dir():
                    raise SweepError(f"--out {out}{'' if p == out else f': {p}'} is a file, expected a sweep folder")
                break
    except OSError as e:   # a name too long, say: the OS refuses the path itself
        raise SweepError(f"--out {out}: not a usable folder path ({e.strerror or e})") from None
    from ..tracks import absolute_track
    per_algo = parse_sets(sets, algos)
    combos = sum(math.prod(map(len, per_algo[a].values())) for a in algos)
    n = len(datasets) * combos * len(seeds)
    if n > MAX_TRIALS:   # before they are built: a grid of millions would hang here
        raise SweepError(f"--seeds/--set: the grid has {n:,} trials ({len(datasets)} dataset(s) x {combos:,} "
                         f"algorithm/setting combination(s) x {len(seeds)} seed(s)); a sweep takes at most "
                         f"{MAX_TRIALS:,}")
    # the trials' evaluation track, loaded as train() will: a typo fails here, not in every trial on Ray
    for spec in dict.fromkeys(v for values in per_algo.values() for v in values.get("eval_track", []) if v):
        check_track(spec, f"--set eval_track={spec}")
    trials = []
    folders: dict[str, Trial] = {}   # each trial its own folder, as the file system sees the name
    for dataset in datasets:
        for algo in algos:
            values = per_algo[algo]
            varied = [k for k, v in values.items() if len(v) > 1]
            fixed = {k: v[0] for k, v in values.items() if len(v) == 1}
            hw = {"eval_workers": str(cpus_per_trial), "threads": 1}   # one core per trial unless --set
            for combo in itertools.product(*(values[k] for k in varied)):
                setting = ",".join(f"{k}={fmt(v)}" for k, v in zip(varied, combo))
                for seed in seeds:
                    flat = {**hw, **fixed, **dict(zip(varied, combo)), "dataset": dataset, "algo": algo,
                            "seed": seed}
                    flat = {k: list(v) if isinstance(v, tuple) else v for k, v in flat.items()}
                    if flat.get("eval_track"):   # a file by its absolute path: trials run in Ray's working dirs
                        flat["eval_track"] = absolute_track(flat["eval_track"])
                    t = Trial(dataset, algo, seed, setting, flat)
                    try:
                        t.config(Path(out))
                    except ConfigError as e:
                        msg = str(e).removeprefix("config: ")
                        hint = (" (to set it for some algorithms only: --set ALGO.KEY=...)"
                                if len(algos) > 1 else "")
                        raise SweepError(f"--set, trial {t.label}: {msg}{hint}") from None
                    key = os.path.normpath(t.rel)
                    if key in folders:   # one would "resume" the other's run, and never train its own values
                        raise SweepError(f"--datasets/--set: trials {folders[key].label} and {t.label} would share "
                                         f"the folder {t.rel}; give values (or dataset names) that differ there")
                    long = next((part for part in key.split(os.sep) if len(part.encode()) > NAME_MAX), None)
                    if long is not None:
                        raise SweepError(f"--set: trial {t.label}: its folder name {long[:40]}... is longer than "
                                         f"{NAME_MAX} bytes; vary fewer settings at once or use shorter values")
                    folders[key] = t
                    trials.append(t)
    return Plan(out, datasets, algos, seeds, list(sets), cpus_per_trial, trials, command)


# --- what is already in the sweep folder ----------------------------------------------------------------------------
DONE, RESUME, NEW = "done", "resume", "new"


def read_json(path: Path) -> dict | None:
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return d if isinstance(d, dict) else None


def trial_status(plan: Plan, trial: Trial) -> str:
    """done: eval.json written at the end of the full budget; resume: a checkpoints/last.pt to continue; new.
    A folder that already holds this trial with other learning settings is a SweepError (never overwritten)."""
    folder = plan.out / trial.rel
    saved = read_json(folder / "config.json")
    if saved is not None:
        wanted = trial.config(plan.out).to_dict()
        try:   # a setting added since that run is missing from its file: from_saved gives the behaviour it had
            saved = TrainConfig.from_saved(saved, str(folder / "config.json")).to_dict()
        except ConfigError:
            pass   # a setting since removed or renamed: compared as written, so the difference is named
        diff = [k for k in sorted(set(saved) | set(wanted)) if k not in HARDWARE and saved.get(k) != wanted.get(k)]
        if diff:
            what = ", ".join("{}={} (now {})".format(k, *_differ(saved.get(k), wanted.get(k))) for k in diff[:3])
            what += f" and {len(diff) - 3} more" if len(diff) > 3 else ""
            raise SweepError(f"{folder} was run with {what}; a sweep folder keeps each trial's settings: use "
                             f"another --out, vary the setting with --set so trials get their own folders, or move "
                             f"or delete that trial folder")
    report = read_json(folder / "eval.json")
    if report is not None and saved is not None and int(report.get("steps", -1)) >= trial.config(plan.out).total_steps:
        return DONE
    if (folder / "checkpoints" / "last.pt").is_file():
        return RESUME
    return NEW


def dataset_record(name: str) -> dict:
    """Which version of dataset `name` a trial trains on: its id, episode and step counts, and a hash of its
    episodes' checksums (so a dataset recorded again with the same counts differs too). Reads only the episodes'
    metadata; a missing or damaged dataset is a one-line DatasetError."""
    import hashlib

    from racecar_env.storage import load_dataset
    ds = load_dataset(name)
    metas = [ds.episode_metadata(i) for i in range(len(ds))]
    digest = hashlib.sha256("\n".join(m["racecar_sha256"] for m in metas).encode()).hexdigest()[:16]
    return {"dataset": ds.id, "episodes": len(metas), "steps": sum(int(m["total_steps"]) for m in metas),
            "sha256": digest}


def check_data(out: Path, records: dict[str, dict]) -> None:
    """Refuse (SweepError) when a trial in `out` that trained (has a last.pt) recorded another version of its
    dataset than `records` ({name: dataset_record(name)}): its results and new ones would be pooled as one cell,
    and resuming it would continue on other data. A trial from before these records has none and is not checked."""
    for name, now in records.items():
        for path in sorted((Path(out) / TRIALS / name.replace("/", "_")).rglob(DATA_FILE)):
            then = read_json(path) or {}
            if then.get("sha256") != now["sha256"] and (path.parent / "checkpoints" / "last.pt").is_file():
                counts = [(r.get("episodes"), r.get("steps")) for r in (then, now)]
                what = (f"{counts[0][0]} episodes, {counts[0][1]} steps then; {counts[1][0]} episodes, "
                        f"{counts[1][1]} steps now" if counts[0] != counts[1] else "same counts, other episodes")
                raise SweepError(f"dataset {now['dataset']} changed since {path.parent.relative_to(out)} trained on "
                                 f"it ({what}): a sweep folder keeps one version of each dataset so its seeds "
                                 f"compare; use another --out for the new data")


def write_manifest(plan: Plan) -> Path:
    """sweep.json: every grid run into this folder (the command and the grid); a new grid is added, never replaces."""
    path = plan.out / MANIFEST
    old = read_json(path) or {}
    grids = [g for g in old.get("grids", []) if isinstance(g, dict)]
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    entry = {**plan.grid(), "cpus_per_trial": plan.cpus_per_trial, "command": plan.command,
             "trials": [t.rel for t in plan.trials]}
    same = next((g for g in grids if {k: g.get(k) for k in plan.grid()} == plan.grid()), None)
    if same is not None:
        same.update(entry, last_run=now)
    else:
        grids.append({**entry, "first_run": now, "last_run": now})
    write_json(path, {"sweep": str(plan.out.resolve()), "grids": grids}, durable=True)
    return path


def command_line(argv: list[str]) -> str:
    return "python -m learn.sweep " + shlex.join(argv)
