"""Running the pending trials of a sweep on Ray Tune (local Ray by default, or an existing cluster).

Each trial is a Tune trial with `cpus_per_trial` CPUs; Tune runs as many at once as the cluster's CPUs allow and
reuses worker processes between trials (the imports are paid once per worker). The trial function calls the
ordinary `learn.train.train` with the dataset fetched from Ray's object store (put once by the driver), so workers
never read a dataset path. Trial output goes straight to the trial's run folder in the sweep folder; Tune's own
bookkeeping (params, result.json of each Tune trial) and Ray's driver-side log records (driver.log: Tune's
tracebacks of failed trials, warnings) go to <sweep>/ray/tune-<time>/; the logs of Ray's processes and workers stay
in Ray's temp dir (/tmp/ray/session_*/logs). Nothing of Ray's reaches the terminal; each trial's own log lines go
to train.log in its run folder.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .grid import DATA_FILE, SweepError, Trial

# before ray.tune is imported: no automatic CSV/TensorBoardX result loggers per Tune trial (each run has its own
# TensorBoard; run_trials adds the JSON one back), and the legacy reporter, which verbose=0 silences completely
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@dataclass
class Outcome:
    finished: int = 0
    failed: int = 0
    interrupted: bool = False
    failures: list[str] | None = None
    stuck: list[str] | None = None     # the folders of failed trials a rerun cannot fix (rerun_cannot_fix)


def trial_entry(trial: Trial, sweep_dir: Path, record: dict | None = None) -> dict:
    """What a Tune trial gets in its config: plain JSON (Tune stores it as the trial's params). record: the
    dataset's grid.dataset_record, written to the trial's dataset.json."""
    return {"label": trial.label, "rel": trial.rel, "dataset": trial.dataset, "values": trial.values,
            "out": str(Path(sweep_dir).resolve() / trial.rel), "data": record}


def run_trial(config: dict, datasets: dict) -> None:
    """The Tune trainable: one ordinary `learn` run in the trial's folder (resumed from last.pt if it has one)."""
    import socket
    import traceback

    import ray
    from ray import tune

    from racecar_env.files import write_json

    from ..config import TrainConfig
    from ..train import train

    t = config["trial"]
    out = Path(t["out"])
    out.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig.build(**t["values"], out=str(out))
    resume = (out / "checkpoints" / "last.pt").is_file()
    if not (out / "config.json").is_file():
        cfg.save(out / "config.json")    # train() writes it too; here first so a trial that fails early is listed
    # the version of the dataset it trains on; a resumed trial keeps its record (the driver checked it matches)
    if t.get("data") and not (resume and (out / DATA_FILE).is_file()):
        write_json(out / DATA_FILE, t["data"])
    with open(out / "train.log", "a") as f:
        def log(line: str) -> None:
            print(f"{time.strftime('%H:%M:%S')} {line}", file=f, flush=True)

        log(f"sweep trial {t['label']} on {socket.gethostname()} (pid {os.getpid()}): "
            f"{'resuming from last.pt' if resume else 'starting'}")
        try:
            data = ray.get(datasets[t["dataset"]])
            res = train(cfg, resume=resume, data=data, progress=False, log=log)
        except BaseException:
            f.write(traceback.format_exc())
            raise
    final = res.final or {}
    tune.report({"label": t["label"], "success_rate": final.get("success_rate"),
                 "crash_rate": final.get("crash_rate"), "test_episodes": final.get("episodes"),
                 "time_to_goal_s": final.get("mean_time_to_goal_s"), "run_wall_s": res.wall_s, "steps": res.steps,
                 "resumed": resume})


def _n(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def rerun_cannot_fix(error: BaseException) -> bool:
    """Whether a trial's exception (as Ray returns it) fails the same way on every rerun: a damaged checkpoint, or
    settings that conflict with what the trial's folder holds. Its folder must be moved or deleted first."""
    from ..checkpoint import CheckpointError
    from ..config import ConfigError
    return isinstance(getattr(error, "cause", None) or error, (CheckpointError, ConfigError))


#: modules whose exceptions carry a one-line message naming the file and the problem: shown without their class
_OWN = ("learn.", "racecar_env.", "teleop.")


def _message(text: str) -> str:
    """A traceback's last line without the exception's module path: "learn.checkpoint.CheckpointError: X" -> "X"
    (the project's messages say it all), "torch.OutOfMemoryError: X" -> "OutOfMemoryError: X"."""
    m = re.match(r"((?:[A-Za-z_]\w*\.)+)([A-Za-z_]\w*): ", text)
    if not m:
        return text
    return text[m.end():] if m.group(1).startswith(_OWN) else text[len(m.group(1)):]


def _error_line(trial, log: Path) -> str:
    """The exception of a failed trial in one line: the cause Ray wrapped, else the last line of train.log."""
    try:
        e = trial.get_pickled_error()
        e = getattr(e, "cause", None) or e
        if isinstance(e, BaseException) and type(e).__name__ not in ("RayTaskError", "TuneError"):
            return _message(f"{type(e).__module__}.{type(e).__name__}: {e}".strip())
    except Exception:   # noqa: BLE001 -- only for the message
        pass
    try:
        lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
        return _message(lines[-1].strip()) if lines else "no message"
    except OSError:
        return "no message"


class _StopSignalNotice(logging.Handler):
    """Says at once that a Ctrl-C was seen: Tune's own SIGINT handler only logs it (to driver.log, below) and then
    waits for the running trials to stop, ~15 s here, in which the terminal would show nothing."""

    def __init__(self, say):
        super().__init__(logging.WARNING)
        self.say = say

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Stop signal received"):
            self.say("stopping: the running trials are being stopped (up to ~15 s; they continue from their last.pt "
                     "next time); Ctrl-C again to quit at once")


@contextlib.contextmanager
def ray_logs_to(path: Path, on_stop=None):
    """Ray's driver-side log records (Tune's trial-failure tracebacks, warnings) go to `path`, not the terminal.
    on_stop(line): called when Tune reports a Ctrl-C."""
    root = logging.getLogger("ray")
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    streams = [h for h in root.handlers if isinstance(h, logging.StreamHandler)
               and not isinstance(h, logging.FileHandler)]
    level = root.level
    for h in streams:
        root.removeHandler(h)
    added = [handler] + ([_StopSignalNotice(on_stop)] if on_stop else [])
    for h in added:
        root.addHandler(h)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        for h in added:
            root.removeHandler(h)
        handler.close()
        for h in streams:
            root.addHandler(h)
        root.setLevel(level)


def _reporter(total: int, done_before: int, pending: int, emit, quiet: bool, outcome: Outcome):
    from ray import tune

    class Report(tune.Callback):
        """One line per finished (or failed) trial: done/total, its test success, ETA of the rest."""

        def __init__(self):
            self.t0 = time.perf_counter()
            self.results: dict[str, dict] = {}

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.results[trial.trial_id] = result

        def _eta(self) -> str:
            n = outcome.finished + outcome.failed
            left = pending - n
            if not left:
                return "all done"
            return f"{left} left, ETA {_clock((time.perf_counter() - self.t0) / n * left)}"

        def on_trial_complete(self, iteration, trials, trial, **info):
            outcome.finished += 1
            r = self.results.get(trial.trial_id, {})
            label = trial.config["trial"]["label"]
            if r.get("success_rate") is None:
                what = "no final test (no best.pt)"
            else:
                ttg = r.get("time_to_goal_s")
                what = (f"success {r['success_rate']:.0%} of {r['test_episodes']} test episodes, crash "
                        f"{r['crash_rate']:.0%}, time-to-goal {'-' if ttg is None else f'{ttg:.2f} s'}")
            wall = r.get("run_wall_s")
            if not quiet:
                emit(f"[{done_before + outcome.finished}/{total}] {label}: {what}"
                     f"{'' if wall is None else f', {wall / 60:.1f} min'}{' (resumed)' if r.get('resumed') else ''}"
                     f" | {self._eta()}")

        def on_trial_error(self, iteration, trials, trial, **info):
            outcome.failed += 1
            t = trial.config["trial"]
            err = _error_line(trial, Path(t["out"]) / "train.log")
            emit(f"[{done_before + outcome.finished}/{total}] {t['label']}: FAILED ({err[:200]}); traceback in "
                 f"{t['out']}/train.log | {self._eta()}")

    return Report()


def check_reachable(address: str) -> None:
    """Ray retries an unreachable cluster address for minutes (and ignores SIGTERM meanwhile): fail at once."""
    import socket
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise SweepError(f"--address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as e:
        raise SweepError(f"--address {address}: cannot reach Ray there ({e.strerror or e}); is `ray start --head` "
                         f"running on {host}?") from None


def connect(address: str | None, cpus: int | None) -> bool:
    """Start local Ray (address None) or join a cluster; True if this call started Ray (so it shuts it down)."""
    import ray
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if address and address != "auto":
        check_reachable(address)
    if address:
        try:
            if address.startswith("ray://"):
                # Ray Client: Tune's controller then runs on the head node; its progress lines reach this
                # terminal only through the job's log stream
                ray.init(address=address, logging_level=logging.ERROR, log_to_driver=True,
                         runtime_env={"env_vars": {"RAY_LOGGER_LEVEL": "error"}})
            else:
                ray.init(address=address, **{k: v for k, v in quiet.items() if k != "include_dashboard"})
        except (ConnectionError, RuntimeError) as e:
            cause = e.__cause__ if e.__cause__ is not None else e
            first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
            raise SweepError(f"--address {address}: cannot join the Ray cluster: {first}") from None
    else:
        # Ray starts its workers at nice 15 by default: a trial would then get a few percent of a core whenever
        # anything else runs (measured: 3% beside three other jobs). A trial is the real work, so it competes
        # at normal priority, as the same run started by hand would.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(num_cpus=cpus or os.cpu_count() or 1, **quiet)
    return True


def run_trials(trials: list[Trial], sweep_dir: Path, datasets: dict, *, cpus_per_trial: int, total: int,
               done_before: int, address: str | None = None, cpus: int | None = None, quiet: bool = False,
               emit=print, records: dict | None = None) -> Outcome:
    """Run `trials` (none of them finished) as one Tune experiment; blocks until all end or Ctrl-C. datasets:
    {name: TrainingData}; records: {name: grid.dataset_record} of the same data, kept in each trial folder."""
    import ray
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback   # result.json per Tune trial: Tune reads results back from it

    outcome = Outcome(failures=[])
    started = connect(address, cpus)
    try:
        have = ray.cluster_resources().get("CPU", 0)
        if have < cpus_per_trial:
            raise SweepError(f"--cpus-per-trial {cpus_per_trial}: the Ray cluster has {have:g} CPUs")
        where = f"Ray at {address}" if address else "local Ray"
        if not quiet:
            emit(f"{_n(len(trials), 'trial')} to run on {where}: {have:g} CPUs, {cpus_per_trial} per trial -> up "
                 f"to {int(have // cpus_per_trial)} at a time")
        tune_dir = (Path(sweep_dir) / "ray" / time.strftime("tune-%Y%m%d-%H%M%S")).resolve()
        refs = {name: ray.put(data) for name, data in datasets.items()}   # by content, once
        trainable = tune.with_resources(tune.with_parameters(run_trial, datasets=refs), {"cpu": cpus_per_trial})
        entries = [trial_entry(t, sweep_dir, (records or {}).get(t.dataset)) for t in trials]
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search(entries)},
            tune_config=tune.TuneConfig(reuse_actors=True,
                                        trial_name_creator=lambda tr: tr.config["trial"]["label"].replace(" ", "_"),
                                        trial_dirname_creator=lambda tr: tr.config["trial"]["rel"].replace("/", "__")),
            run_config=tune.RunConfig(name=tune_dir.name, storage_path=str(tune_dir.parent), verbose=0,
                                      callbacks=[_reporter(total, done_before, len(trials), emit, quiet, outcome),
                                                 JsonLoggerCallback()]),
        )
        try:
            with ray_logs_to(tune_dir / "driver.log", on_stop=emit):
                grid = tuner.fit()
        except KeyboardInterrupt:   # a second Ctrl-C while Tune was stopping
            outcome.interrupted = True
            return outcome
        # the result grid is the truth (with Ray Client the callback ran on the head node, not here)
        done = [r for r in grid if r.error is None and "success_rate" in (r.metrics or {})]
        errors = [r for r in grid if r.error is not None]
        outcome.finished, outcome.failed = len(done), len(errors)
        outcome.failures = [f"{r.config['trial']['label']}: see {r.config['trial']['out']}/train.log"
                            for r in errors]
        outcome.stuck = [r.config["trial"]["out"] for r in errors if rerun_cannot_fix(r.error)]
        # Tune's own Ctrl-C handling stops the running trials and returns: some never finished
        outcome.interrupted = outcome.finished + outcome.failed < len(trials)
    finally:
        if started:
            ray.shutdown()
    return outcome
