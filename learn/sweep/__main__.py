"""python -m learn.sweep: many learn runs (datasets x algorithms x settings x seeds) on Ray Tune, then one table.

Examples:
  python -m learn.sweep --datasets s_expert,s_noisy --algos bc,td3bc,cql,iql --seeds 0-4
  python -m learn.sweep --datasets s_expert --algos td3bc --seeds 0-4 --set alpha=0.1,0.2,0.5 --set steps=2000
  python -m learn.sweep ... --dry-run                # list the trials and what is already done, start nothing
  python -m learn.sweep --summarize runs/sweeps/NAME # rebuild summary.* from the trial folders alone
  python -m learn.sweep --robustness runs/sweeps/NAME # test every best.pt from wider starts, add that column
  python -m learn.sweep --transfer runs/sweeps/NAME --tracks hairpin,random:test:hard
                                                     # test every best.pt on other tracks, a column per track

--set KEY=VALUE fixes any `python -m learn` setting for every trial; KEY=V1,V2,... makes it an axis of the grid
(each value its own trial folder). A bare KEY applies to every chosen algorithm that has it; ALGO.KEY=... to one
(e.g. --set td3bc.bc_steps=2000); alternatives of hidden are separated by '/' (hidden=256,256/64,64). Every trial's
config is validated before anything starts: a typo or another algorithm's setting is a one-line error (exit 2).

Sweep folder (--out, default runs/sweeps/<datasets>_<algos>):
  sweep.json                  the grids run into this folder, with their commands
  trials/<dataset>/<algo>[/<setting>]/s<seed>/
                              an ordinary learn run folder (config.json, tb/, checkpoints/{last,best}.pt,
                              eval.json, videos/best.mp4) plus train.log and dataset.json (the version of the dataset
                              it trained on: episodes, steps, a hash): python -m learn.evaluate, python -m replay
                              --policy and learn.load_policy read it as any run
  summary.md/.csv/.json/.png  per (dataset, algo, setting): seeds, test success mean and IQM with 95% stratified
                              bootstrap CIs over seeds (rliable), time-to-goal, crash rate, wall-clock per trial
  ray/tune-<time>/            Ray Tune's bookkeeping of each invocation and driver.log (Ray's log records; the
                              logs of Ray's processes stay in /tmp/ray/session_*/logs)
Rerunning the same command skips finished trials, resumes killed ones from their last.pt and starts missing ones;
Ctrl-C keeps every finished trial (and the last.pt of running ones). Another grid into the same folder adds trials;
a trial folder keeps its settings, so a rerun that changes a fixed one (say steps) for existing trials is refused:
make it an axis (--set steps=2000,4000) or use another --out. Likewise a dataset changed since trials trained on it
(episodes appended, say) is refused, so no cell pools seeds trained on different data: use another --out.

Local by default: Ray starts in this process with --cpus CPUs (default: all), one trial per --cpus-per-trial CPUs
(default 1; a trial then evaluates serially, eval_workers = cpus-per-trial, threads 1, unless --set). Datasets are
loaded here once and reach the trials through Ray's object store, never as a path.

On a cluster (every machine with the same Python environment and this project installed, `pip install -e .`):
  head$   ray start --head --port 6379                # one machine
  other$  ray start --address HEAD:6379               # every other machine
  head$   python -m learn.sweep ... --address auto --out /shared/sweeps/NAME      (or --address HEAD:6379)
  laptop$ python -m learn.sweep ... --address ray://HEAD:10001 --out /shared/...  (Ray Client: Tune then runs on
          the head node and its per-trial lines arrive prefixed with "(TunerInternal pid=...)")
Trials write their run folders to --out directly from whichever node runs them, so on more than one machine --out
must be storage every node and the machine running the sweep see at the same path (an NFS mount, say); the driver
reads that folder to skip finished trials and to build the summary. Recent Ray starts clusters with token
authentication: the sweep's machine then needs the cluster's token (RAY_AUTH_MODE=token and the token, see Ray's
token-auth docs), or start the cluster with RAY_AUTH_MODE=disabled on a trusted network. The tests cover local Ray;
--address HOST:PORT and ray:// were tried by hand against a one-machine `ray start --head`.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from racecar_env import cli

from ..config import ALGOS, ConfigError


def build_parser() -> argparse.ArgumentParser:
    doc = __doc__.split("\n\n")
    p = cli.ArgumentParser(prog="python -m learn.sweep", description=doc[0],
                                epilog="\n\n".join(doc[1:]), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", metavar="A,B", help="datasets (names as for python -m learn --dataset)")
    p.add_argument("--algos", metavar="A,B", default=",".join(ALGOS), help=f"default {','.join(ALGOS)}")
    p.add_argument("--seeds", metavar="0-4", default="0-4",
                   help="seeds: a range 0-4 and/or a list 0,3,7, each 0..2**63-1, at most 1000 (default 0-4); a "
                        "sweep runs at most 10000 trials")
    p.add_argument("--set", dest="sets", metavar="KEY=V[,V...]", action="append", default=[],
                   help="a learn setting for all trials, or an axis of the grid with several values (repeatable)")
    p.add_argument("--out", metavar="DIR", help="sweep folder (default runs/sweeps/<datasets>_<algos>)")
    p.add_argument("--address", metavar="ADDR", help="join a Ray cluster: auto, HOST:6379 or ray://HOST:10001 "
                                                      "(default: start Ray here)")
    p.add_argument("--cpus", type=int, metavar="N", help="CPUs of the local Ray (default: all of this machine)")
    p.add_argument("--cpus-per-trial", type=int, default=1, metavar="N", help="CPUs reserved per trial (default 1)")
    p.add_argument("--dry-run", action="store_true", help="list the trials and their state, start nothing")
    p.add_argument("--summarize", metavar="DIR", help="only rebuild DIR/summary.* from DIR's trial folders")
    p.add_argument("--robustness", metavar="DIR", help="test every finished trial's best.pt in DIR again from a wider "
                   "start distribution (resumable), then rebuild DIR/summary.* with that column")
    p.add_argument("--start-jitter", type=_jitter, default=None, metavar="M,RAD",
                   help="with --robustness: how far off the recorded start (default 0.3,0.3; the data: 0.1,0.1)")
    p.add_argument("--robust-episodes", type=cli.count, default=None, metavar="N",
                   help="with --robustness: test episodes per trial (default 20)")
    p.add_argument("--transfer", metavar="DIR", help="test every finished trial's best.pt in DIR on --tracks "
                   "(resumable; a later call may add tracks), then rebuild DIR/summary.* with a column per track")
    p.add_argument("--tracks", metavar="A,B", default=None,
                   help="with --transfer: tracks, each a shipped name, a track JSON, gen:SEED or "
                        "random:test[:easy|medium|hard] (held-out generated roads)")
    p.add_argument("--transfer-episodes", type=cli.count, default=None, metavar="N",
                   help="with --transfer: test episodes per trial and track (default 50)")
    p.add_argument("--reps", type=int, default=None, metavar="N",
                   help="bootstrap resamples of the CIs (default 2000)")
    p.add_argument("--quiet", action="store_true", help="no per-trial lines, only the final ones")
    return p


def _jitter(text: str) -> tuple[float, float]:
    from ..evaluate import _jitter as parse
    return parse(text)


def default_out(datasets: list[str], algos: list[str]) -> Path:
    return Path("runs/sweeps") / f"{'+'.join(d.replace('/', '_') for d in datasets)}_{'+'.join(algos)}"


def _print_table(rows, emit) -> None:
    from .summary import _ci, _pct
    w = max(len(f"{r['dataset']} {r['algo']} {r['setting']}") for r in rows)
    for r in rows:
        name = f"{r['dataset']} {r['algo']} {r['setting']}".strip()
        ttg = r["time_to_goal_s"]
        emit(f"  {name:<{w}}  n={r['seeds']}  success mean {_pct(r['success_mean'])}{_ci(r['success_mean_ci'])}  "
             f"IQM {_pct(r['success_iqm'])}{_ci(r['success_iqm_ci'])}  crash {_pct(r['crash_rate'])}  "
             f"time-to-goal {'-' if ttg is None else f'{ttg:.2f} s'}"
             + (f"  wider starts {_pct(r['robust_mean'])}{_ci(r['robust_mean_ci'])}" if r.get("robust_mean") is not None
                else "")
             + "".join(f"  {t} {_pct(x['success_mean'])}{_ci(x['success_mean_ci'])}"
                       for t, x in (r.get("transfer") or {}).items())
             + (f"  ({r['unfinished']} unfinished)" if r["unfinished"] else ""))
    for problem in (p for r in rows for p in r.get("problems", [])):
        emit(f"  warning: {problem}; counted as unfinished (rerunning the sweep command tests that trial again)")


def _failed(n: int, stuck: list[str]) -> str:
    """The end of the last line when `n` trials failed; `stuck`: the folders of those a rerun cannot fix."""
    if not stuck:
        return f"; {n} trial(s) failed (rerun the command to retry them)"
    # a rerun would fail them again: the user has to clear their folders first
    folders = ", ".join(stuck[:3]) + (f" and {len(stuck) - 3} more" if len(stuck) > 3 else "")
    retry = n - len(stuck)
    which = f": {retry} may pass on a rerun, {len(stuck)} cannot" if retry else " in a way a rerun cannot fix"
    return (f"; {n} trial(s) failed{which} (a damaged checkpoint, or settings that conflict with the trial's "
            f"folder; see its train.log): move or delete {folders}, then rerun the command")


def main(argv: list[str] | None = None) -> int:
    from racecar_env.storage import DatasetError

    from . import grid as g
    from .summary import BOOTSTRAP_REPS, FILES, SummaryError, summarize

    argv = list(sys.argv[1:] if argv is None else argv)
    a = build_parser().parse_args(argv)
    emit = print
    reps = a.reps or BOOTSTRAP_REPS
    try:
        if a.reps is not None and a.reps < 1:
            raise g.SweepError(f"--reps must be >= 1, got {a.reps}")
        if (a.start_jitter is not None or a.robust_episodes is not None) and not a.robustness:
            raise g.SweepError("--start-jitter and --robust-episodes go with --robustness DIR")
        if (a.tracks is not None or a.transfer_episodes is not None) and not a.transfer:
            raise g.SweepError("--tracks and --transfer-episodes go with --transfer DIR")
        if a.transfer:
            from .transfer import DEFAULT_EPISODES as TRANSFER_EPISODES, evaluate_transfer, parse_tracks
            if a.tracks is None:
                raise g.SweepError("--transfer needs --tracks, e.g. --tracks hairpin,random:test:hard")
            tracks = parse_tracks(a.tracks)
            summarize(a.transfer, reps)              # checks the folder is a sweep before any work
            n = evaluate_transfer(Path(a.transfer), tracks, a.transfer_episodes or TRANSFER_EPISODES,
                                  emit=(lambda _: None) if a.quiet else emit)
            a.summarize = a.transfer
            emit(f"{n} evaluation(s) of trials on other tracks")
        if a.robustness:
            from .robustness import DEFAULT_EPISODES, DEFAULT_JITTER, evaluate_trials
            episodes = DEFAULT_EPISODES if a.robust_episodes is None else a.robust_episodes
            summarize(a.robustness, reps)            # checks the folder is a sweep before any work
            n = evaluate_trials(Path(a.robustness), a.start_jitter or DEFAULT_JITTER, episodes,
                                emit=(lambda _: None) if a.quiet else emit)
            a.summarize = a.robustness
            emit(f"{n} trial(s) tested from wider starts")
        if a.summarize:
            rows = summarize(a.summarize, reps)
            if not a.quiet:
                _print_table(rows, emit)
            emit(f"summary of {sum(r['seeds'] for r in rows)} finished trial(s) in {a.summarize}/ "
                 f"({', '.join(FILES)})")
            return 0
        if not a.datasets:
            raise g.SweepError("--datasets is required (or --summarize DIR)")
        datasets, algos = g.parse_list(a.datasets, "--datasets"), g.parse_list(a.algos, "--algos")
        out = Path(a.out) if a.out else default_out(datasets, algos)
        plan = g.build_plan(out, datasets, algos, g.parse_seeds(a.seeds), a.sets, a.cpus_per_trial,
                            g.command_line(argv))
        if a.cpus is not None and a.cpus < 1:
            raise g.SweepError(f"--cpus must be >= 1, got {a.cpus}")
        if a.address and a.cpus is not None:
            raise g.SweepError("--cpus sizes the local Ray; a cluster (--address) brings its own CPUs")
        local_cpus = a.cpus or os.cpu_count() or 1
        if not a.address and a.cpus_per_trial > local_cpus:
            raise g.SweepError(f"--cpus-per-trial {a.cpus_per_trial}: the local Ray has {local_cpus} CPUs (--cpus)")
        if a.address and a.address != "auto" and not a.dry_run:
            from .run import check_reachable
            check_reachable(a.address)       # before sweep.json is written: a typo leaves no folder behind
        records = {name: g.dataset_record(name) for name in plan.datasets}   # each exists and is readable
        g.check_data(plan.out, records)      # trials that trained on another version of a dataset: refused
        status = {t.rel: g.trial_status(plan, t) for t in plan.trials}
        pending = [t for t in plan.trials if status[t.rel] != g.DONE]
        counts = {s: sum(v == s for v in status.values()) for s in (g.DONE, g.RESUME, g.NEW)}
        n = len(plan.trials)
        head = (f"sweep {plan.out}: {n} trial{'' if n == 1 else 's'} ({counts[g.DONE]} done, {counts[g.RESUME]} to "
                f"resume, {counts[g.NEW]} new)")
        if a.dry_run:
            emit(head)
            for t in plan.trials:
                emit(f"  {status[t.rel]:<6} {t.rel}")
            emit(f"dry run: nothing started; a run would write to {plan.out}/ (trials/, summary.*)")
            return 0
        data = {}
        for name in dict.fromkeys(t.dataset for t in pending):
            from ..data import load_training_data
            data[name] = load_training_data(name)          # here, once: trials get it from Ray's object store
            if len(data[name].episodes) != records[name]["episodes"]:   # appended to meanwhile
                raise g.SweepError(f"dataset {records[name]['dataset']} changed while the sweep was reading it "
                                   f"(now {len(data[name].episodes)} episodes); run the command again")
        try:   # creates the sweep folder: a path the OS refuses is one line here, not a traceback
            g.write_manifest(plan)
        except OSError as e:
            raise g.SweepError(f"--out {plan.out}: cannot write the sweep folder there ({e.strerror or e})") from None
    except (g.SweepError, ConfigError, DatasetError, SummaryError, ValueError) as e:
        print(f"python -m learn.sweep: error: {e}", file=sys.stderr)
        return 2

    if not a.quiet:
        emit(head)
    code = 0
    if pending:
        from .run import run_trials
        try:
            res = run_trials(pending, plan.out, data, cpus_per_trial=a.cpus_per_trial, total=len(plan.trials),
                             done_before=counts[g.DONE], address=a.address, cpus=a.cpus, quiet=a.quiet, emit=emit,
                             records=records)
        except g.SweepError as e:
            print(f"python -m learn.sweep: error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            from .run import Outcome
            res = Outcome(interrupted=True, failures=[])
        if res.interrupted:
            emit(f"interrupted: every finished trial is kept (running ones continue from their last.pt); "
                 f"continue with the same command:\n  {plan.command}")
            emit(f"results so far in {plan.out}/trials/ (a table of them: python -m learn.sweep --summarize "
                 f"{plan.out})")
            return 130
        for line in res.failures or []:
            emit(f"failed: {line}")
        code = 1 if res.failed else 0
    elif not a.quiet:
        emit("every trial is already done")
    try:
        rows = summarize(plan.out, reps)
    except SummaryError as e:
        print(f"python -m learn.sweep: error: {e}", file=sys.stderr)
        return 1
    if not a.quiet:
        _print_table(rows, emit)
    failed = _failed(res.failed, res.stuck or []) if pending and res.failed else ""
    emit(f"results in {plan.out}/: summary.md, summary.csv, summary.json, summary.png; trials in "
         f"{plan.out}/trials/{failed}")
    return code


if __name__ == "__main__":   # a closed pipe (| head) quietly, a Ctrl-C before Ray started in one line
    sys.exit(cli.entry(main, "python -m learn.sweep"))
