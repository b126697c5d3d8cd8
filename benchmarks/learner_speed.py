"""Updates/s of learn's TD3+BC, CQL and IQL against CORL's single-file code (benchmarks/corl_reference.py), at equal
precision, threads, network sizes, batch and data, in the same run.

Both sides run at the precision training uses (precision=auto: bf16 autocast on CPUs with native bf16, else fp32);
--fp32 runs both in float32. Ours is exactly what `python -m learn` runs per update (learn.train.Updater: sample,
update, metrics); the reference samples from CORL's ReplayBuffer and calls CORL's `train(batch)`. Rounds alternate
ours / reference / a large matmul, so machine load hits all three alike; the ratio is reported per round (median and
range) to show the noise.

GFLOP/s: the matmul FLOPs of one update of each side (counted from the operand shapes with torch's flop formulas,
forward and backward, averaged over a TD3+BC actor period) divided by its time per update, next to the practical
peak of this core at that precision (a 2048^3 matmul, best of each round).

    python benchmarks/learner_speed.py [--rounds 5] [--threads 1] [--fp32] [--compile] [--algos td3bc,cql,iql]
                                       [--runs runs/*/eval.json]
--compile runs ours as `python -m learn --compile` does (critics torch.compile'd; the reference stays CORL's eager
code) and prints the one-off compile time.
Last line: `ratio td3bc=X cql=Y iql=Z` (ours / reference updates per second, median over rounds).
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import corl_reference as corl  # noqa: E402
from learn.algos import compile_critics, make_agent  # noqa: E402
from learn.config import TrainConfig  # noqa: E402
from learn.data import ReplayBuffer  # noqa: E402
from learn.encoding import FEATURE_DIM, Encoder  # noqa: E402
from learn.train import Updater  # noqa: E402
from racecar_env import cli  # noqa: E402

N_TRANSITIONS = 12_000  # ~ a 50-episode S-track dataset
UPDATES = {"td3bc": 100, "cql": 20, "iql": 60}   # per round and side (about a second each on one core)
PEAK_N = 2048


def synthetic(seed: int = 0):
    rng = np.random.default_rng(seed)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    obs, nxt = f(N_TRANSITIONS, FEATURE_DIM), f(N_TRANSITIONS, FEATURE_DIM)
    act = np.tanh(f(N_TRANSITIONS, 2))
    rew = f(N_TRANSITIONS) * 0.1
    done = (rng.random(N_TRANSITIONS) < 0.004).astype(np.float32)
    return obs, act, rew, nxt, done


class Sides:
    """Ours and the reference, built on the same synthetic data, each with a `step()` of one update."""

    def __init__(self, algo: str, cfg: TrainConfig):
        arrays = synthetic()
        torch.manual_seed(0)
        np.random.seed(0)
        buffer = ReplayBuffer(*arrays, encoder=Encoder(np.zeros(FEATURE_DIM), np.ones(FEATURE_DIM)))
        self.updater = Updater(make_agent(cfg.algo, FEATURE_DIM, cfg.device), buffer, cfg,
                               torch.Generator().manual_seed(0))
        self.compile_s = 0.0
        if cfg.run.compile:   # compiled at the first updates: timed here so the warm-up below is steady state
            compile_critics(self.updater.agent)
            t = time.perf_counter()
            for _ in range(3):
                self.updater(pretrain=False)
            self.compile_s = time.perf_counter() - t
        self.ref = corl.make(algo, cfg.algo, FEATURE_DIM)
        self.ref_buf = corl.ReplayBuffer(*arrays)
        self.bf16 = cfg.bf16

    def ours(self) -> None:
        self.updater(pretrain=False)

    def reference(self) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            self.ref.train(self.ref_buf.sample(self.updater.batch_size))


_LINEAR_POINTWISE = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)


class _FlopCount(TorchDispatchMode):
    """Matmul FLOPs (mm, addmm, bmm, baddbmm, ...: torch's flop formulas on the operand shapes) of every op run,
    forward and backward."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        elif func._overloadpacket is _LINEAR_POINTWISE:    # oneDNN linear (+bias, ReLU): x (M, in), w (out, in)
            self.total += 2 * args[0].shape[0] * args[1].shape[1] * args[1].shape[0]
        return out


def flops_per_update(step, n: int = 2) -> float:
    with _FlopCount() as fc:
        for _ in range(n):
            step()
    return fc.total / n


def time_block(fn, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t


def peak_gflops(dtype: torch.dtype, reps: int = 3) -> float:
    a = torch.randn(PEAK_N, PEAK_N).to(dtype)
    b = torch.randn(PEAK_N, PEAK_N).to(dtype)
    torch.mm(a, b)
    best = min(time_block(lambda: torch.mm(a, b), 1) for _ in range(reps))
    return 2 * PEAK_N ** 3 / best / 1e9


def bench(algo: str, cfg: TrainConfig, n: int, rounds: int, peaks: list[float]) -> dict:
    s = Sides(algo, cfg)
    dtype = torch.bfloat16 if cfg.bf16 else torch.float32
    time_block(s.ours, max(4, n // 5))        # warm-up: allocator, oneDNN primitives
    time_block(s.reference, max(4, n // 5))
    # compiled kernels bypass the dispatcher the counter watches; the matmuls are the same as eager's
    fl_ours = flops_per_update((Sides(algo, cfg.replace(compile=False)) if cfg.run.compile else s).ours)
    fl_ref = flops_per_update(s.reference)
    t_ours, t_ref = [], []
    for r in range(rounds):                  # interleaved, the order flipped every round
        pair = [(t_ours, s.ours), (t_ref, s.reference)]
        for times, fn in (pair if r % 2 == 0 else pair[::-1]):
            times.append(time_block(fn, n) / n)
        peaks.append(peak_gflops(dtype))
    ratios = [b / a for a, b in zip(t_ours, t_ref)]
    return {"ours": 1 / statistics.median(t_ours), "ref": 1 / statistics.median(t_ref),
            "ratio": statistics.median(ratios), "lo": min(ratios), "hi": max(ratios),
            "gf_ours": fl_ours / 1e9, "gf_ref": fl_ref / 1e9,
            "gfs_ours": fl_ours / 1e9 / min(t_ours), "gfs_ref": fl_ref / 1e9 / min(t_ref),
            "compile_s": s.compile_s}


def time_to_90(paths: list[str]) -> None:
    for path in paths:
        r = json.loads(Path(path).read_text())
        f = r.get("first_eval_ge_90pct")
        print(f"{r['run']} ({r['algo']}): " + (
            f"first periodic eval >= 90% success at update {f['step']}, {f['wall_s']:.1f} s wall-clock "
            f"(training + evals so far)" if f else "no periodic eval reached 90% success"))


def main(argv=None) -> int:
    p = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=cli.count, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch threads of both sides (default 1, a sweep "
                   "trial's; a standalone run uses one per CPU)")
    p.add_argument("--fp32", action="store_true", help="both sides in float32 (default: the precision training "
                   "uses, bf16 autocast on CPUs with native bf16)")
    p.add_argument("--compile", action="store_true", help="ours with its critics torch.compile'd (learn --compile)")
    p.add_argument("--algos", default="td3bc,cql,iql")
    p.add_argument("--updates", type=float, default=1.0, help="scale the updates per round (default 1 = "
                   + ", ".join(f"{k} {v}" for k, v in UPDATES.items()) + ")")
    p.add_argument("--runs", nargs="*", default=[], help="eval.json files of training runs: print wall-clock to "
                   "the first periodic eval with >= 90%% success")
    a = p.parse_args(argv)
    algos = [x for x in a.algos.split(",") if x]
    base = {"out": "-", "precision": "fp32" if a.fp32 else "auto", "device": "cpu", "compile": a.compile}
    base["threads"] = a.threads
    missing = [r for r in a.runs if not Path(r).is_file()]
    if missing:   # checked now, not after minutes of benchmarking
        p.error(f"--runs {missing[0]}: no such eval.json file")
    if not algos or not set(algos) <= set(UPDATES) or not a.updates > 0:
        p.error(f"expected --algos among {','.join(UPDATES)} and --updates > 0, got --algos {a.algos!r} "
                f"--updates {a.updates:g}")
    cfgs = {algo: TrainConfig.build(algo=algo, **base) for algo in algos}
    first = next(iter(cfgs.values()))
    torch.set_num_threads(first.run.threads)
    prec = "bf16 autocast" if first.bf16 else "fp32"
    print(f"both sides: {prec}, {torch.get_num_threads()} thread(s), batch {first.algo.batch_size}, hidden "
          f"{'x'.join(map(str, first.algo.hidden))}, {N_TRANSITIONS} synthetic transitions x {FEATURE_DIM} features; "
          f"{a.rounds} interleaved rounds; torch {torch.__version__}"
          f"{'; ours with compiled critics' if a.compile else ''}")
    results, peaks = {}, []
    for algo, cfg in cfgs.items():
        n = max(2, round(UPDATES[algo] * a.updates))
        r = results[algo] = bench(algo, cfg, n, a.rounds, peaks)
        print(f"{algo:6s} ours {r['ours']:7.1f} upd/s  reference {r['ref']:7.1f} upd/s  x{r['ratio']:.2f} "
              f"(rounds {r['lo']:.2f}-{r['hi']:.2f})  |  GFLOP/update ours {r['gf_ours']:.3f} ref {r['gf_ref']:.3f}; "
              f"GFLOP/s ours {r['gfs_ours']:.0f} ref {r['gfs_ref']:.0f}"
              + (f"  |  compiled in {r['compile_s']:.0f} s" if a.compile else ""), flush=True)
    if peaks:
        peak = max(peaks)
        print(f"peak ({PEAK_N}^3 {'bf16' if first.bf16 else 'fp32'} matmul, same thread count): best {peak:.0f} "
              f"GFLOP/s, median {statistics.median(peaks):.0f} over {len(peaks)} rounds")
        for algo, r in results.items():
            print(f"  {algo:6s} ours at {r['gfs_ours'] / peak:4.0%} of peak, reference at {r['gfs_ref'] / peak:4.0%} "
                  f"(best round of each)")
    time_to_90(a.runs)
    print("ratio " + " ".join(f"{k}={v['ratio']:.2f}" for k, v in results.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
