"""Updates/s of learn's --threads settings on an idle machine and beside other busy processes, in the same run.

Settings: `all` (one intra-op thread per CPU: learn's default before --threads auto), `1`, and `auto` (learn.threads:
the faster of the two, re-measured while the updates run, as `python -m learn` does with --threads 0). Conditions:
idle, then beside --busy processes that spin a core each (what a second job, a browser or another user on a shared
machine does). Each setting runs the same updates on the same synthetic data (learn.train.Updater, as the learner
benchmark) for --updates updates or --cap seconds, whichever comes first (a collapsed setting would otherwise take
minutes), starting at its own warm-up.

    python benchmarks/threads_speed.py [--algo td3bc] [--updates 1500] [--busy 1] [--cap 20]
Last line: `ratio idle=X loaded=Y` (auto's updates/s over the best fixed setting's in each condition; 1.0 = auto
is as fast as knowing the right setting in advance).
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.learner_speed import Sides  # noqa: E402
from learn.config import TrainConfig  # noqa: E402
from learn.threads import ThreadTuner  # noqa: E402
from racecar_env import cli  # noqa: E402
from racecar_env.rollout import available_cpus  # noqa: E402

BUSY = "while True: pass"


def rate(algo: str, setting: str, updates: int, cap_s: float) -> tuple[float, str]:
    """Updates/s of one setting (after 20 warm-up updates at that setting, which auto times as it goes)."""
    most = available_cpus()
    threads = {"all": most, "1": 1, "auto": 1}[setting]
    torch.set_num_threads(threads)
    sides = Sides(algo, TrainConfig.build(algo=algo, out="-", precision="auto", device="cpu", threads=threads))
    tuner = ThreadTuner(most) if setting == "auto" else None
    if tuner is None:
        for _ in range(20):
            sides.ours()
    done, t0 = 0, time.perf_counter()
    while done < updates and time.perf_counter() - t0 < cap_s:
        t = time.perf_counter()
        sides.ours()
        if tuner is not None:
            tuner.record(time.perf_counter() - t)
        done += 1
    r = done / (time.perf_counter() - t0)
    note = ""
    if tuner is not None:
        note = (f"  (now {tuner.threads} thread(s); ms/update measured: "
                + ", ".join(f"{k} thr {v * 1e3:.1f}" for k, v in sorted(tuner.per_update.items())) + ")")
    return r, note


def main(argv=None) -> int:
    p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--algo", default="td3bc", choices=("td3bc", "cql", "iql"))
    p.add_argument("--updates", type=cli.count, default=1500, help="updates per setting and condition (default 1500)")
    p.add_argument("--busy", type=int, default=1, help="busy processes beside the loaded condition (default 1)")
    p.add_argument("--cap", type=float, default=20.0, help="seconds at most per setting and condition (default 20)")
    a = p.parse_args(argv)
    if available_cpus() < 2:
        p.error("this machine gives the process one CPU: there is no thread count to choose")
    print(f"{a.algo}, {available_cpus()} CPUs, {a.updates} updates or {a.cap:.0f} s per setting; torch "
          f"{torch.__version__}")
    ratios = {}
    for condition, busy in (("idle", 0), ("loaded", a.busy)):
        procs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(busy)]
        try:
            rates = {}
            for setting in ("all", "1", "auto"):
                rates[setting], note = rate(a.algo, setting, a.updates, a.cap)
                print(f"{condition:6s} ({busy} busy) threads={setting:4s} {rates[setting]:7.1f} upd/s{note}",
                      flush=True)
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
        ratios[condition] = rates["auto"] / max(rates["all"], rates["1"])
        print(f"{condition:6s}: auto at {ratios[condition]:.2f} of the best fixed setting; all threads at "
              f"{rates['all'] / rates['1']:.2f}x one thread")
    print("ratio " + " ".join(f"{k}={v:.2f}" for k, v in ratios.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
