"""The training loop: dataset -> transitions -> updates, periodic seeded evaluation, checkpoints, TensorBoard.

runs/NAME/
  config.json               the TrainConfig of the run
  tb/                       TensorBoard: losses, Q values, BC term, lambda, CQL penalty, eval metrics + trajectory
  checkpoints/last.pt       full training state (for --resume), written at every evaluation and at the end
  checkpoints/best.pt       the checkpoint with the best periodic eval success (tie-break: return)
  eval.json                 final evaluation of best.pt on test seeds + the periodic eval history
  videos/best.mp4           episode 0 of the final evaluation
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from racecar_env import spec
from racecar_env.files import write_json

from . import checkpoint as ckpt
from .algos import make_agent
from .config import ConfigError, TrainConfig
from .data import Transitions, load_dataset_episodes
from .encoding import FEATURE_DIM, Encoder
from .evaluate import EvalResult, evaluate


@dataclass
class TrainResult:
    out: Path
    best: dict | None           # periodic eval summary of best.pt
    final: dict | None          # final evaluation of best.pt on test seeds
    steps: int
    wall_s: float


def _eval_key(summary: dict) -> tuple[float, float]:
    return (summary["success_rate"], summary["mean_return"])


def train(cfg: TrainConfig, *, resume: bool = False, episodes=None, track: str | None = None,
          progress: bool = True, log=print) -> TrainResult:
    """Train per `cfg`. `episodes`/`track` give in-memory data instead of loading cfg.dataset (tests, benchmarks)."""
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    out = Path(cfg.out)
    last_path, best_path = out / "checkpoints" / "last.pt", out / "checkpoints" / "best.pt"
    torch.set_num_threads(cfg.threads)
    if not resume and last_path.exists():
        raise ConfigError(f"{out} already holds a run (checkpoints/last.pt); continue it with --resume or pick "
                          f"another --out")
    resumed = ckpt.load_checkpoint(last_path) if resume else None
    if resumed is not None:
        cfg = _merge_resume(cfg, resumed, last_path)

    if episodes is None:
        episodes, track, data_label = load_dataset_episodes(cfg.dataset)
    else:
        data_label = cfg.dataset
        track = track or "s_curve"
    encoder = Encoder.from_state_dict(resumed["encoder"], str(last_path)) if resumed else None
    data = Transitions.from_episodes(episodes, encoder)
    encoder = data.encoder

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    agent = make_agent(cfg, FEATURE_DIM)
    step, wall0, history, best = 0, 0.0, [], None
    if resumed is not None:
        agent.load_state_dict(resumed["agent"])
        step, wall0 = int(resumed["step"]), float(resumed["wall_s"])
        history, best = list(resumed["history"]), resumed["best"]
        torch.set_rng_state(resumed["rng"]["torch"])
        gen.set_state(resumed["rng"]["sampler"])
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.json")
    log(f"{cfg.algo} on {data_label} ({len(episodes)} episodes, {len(data)} transitions, track {track}, "
        f"{'bf16' if cfg.bf16 else 'fp32'}); "
        f"{'resuming at' if resumed else 'starting at'} step {step}/{cfg.total_steps}; run folder {out}")

    writer = SummaryWriter(str(out / "tb"), purge_step=step if resumed else None)
    from racecar_env.env import RaceCarEnv
    eval_env = RaceCarEnv(track, render_mode="rgb_array")
    t_start = time.perf_counter()

    def wall() -> float:
        return wall0 + time.perf_counter() - t_start

    def payload() -> dict:
        return {"config": cfg.to_dict(), "obs_layout_id": spec.OBS_LAYOUT_ID, "track": track,
                "dataset": data_label, "encoder": encoder.state_dict(), "agent": agent.state_dict(), "step": step,
                "wall_s": wall(), "history": history, "best": best,
                "rng": {"torch": torch.get_rng_state(), "sampler": gen.get_state()}}

    def run_eval() -> EvalResult:
        nonlocal best
        policy = ckpt.Policy(agent.actor, encoder, track, cfg.algo)
        res = evaluate(policy, track, cfg.eval_episodes, cfg.eval_seed, picture=True, env=eval_env)
        agent.actor.train()
        s = res.summary()
        history.append({"step": step, "wall_s": round(wall(), 2), **s})
        for k in ("success_rate", "crash_rate", "mean_return", "mean_progress"):
            writer.add_scalar(f"eval/{k}", s[k], step)
        if s["mean_time_to_goal_s"] is not None:
            writer.add_scalar("eval/time_to_goal_s", s["mean_time_to_goal_s"], step)
        if res.frame is not None:
            writer.add_image("eval/trajectory_episode0", res.frame, step, dataformats="HWC")
        improved = _candidate(cfg, step) and (best is None or _eval_key(s) > _eval_key(best))
        if improved:
            best = {"step": step, **s}
        p = payload()
        ckpt.save_checkpoint(last_path, p)
        if improved:
            ckpt.save_checkpoint(best_path, p)
        return res

    bar = tqdm(total=cfg.total_steps, initial=step, unit="upd", disable=not progress, dynamic_ncols=True,
               smoothing=0.05)
    sums: dict[str, torch.Tensor] = {}
    n_sum = 0
    bf16 = cfg.bf16
    try:
        while step < cfg.total_steps:
            pretrain = step < cfg.bc_steps
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                metrics = agent.update(data.sample(cfg.batch_size, gen), pretrain)
            step += 1
            for k, v in metrics.items():
                sums[k] = sums[k] + v.float() if k in sums else v.float()
            n_sum += 1
            if step % cfg.log_every == 0:
                for k, v in sums.items():
                    writer.add_scalar(k, float(v) / n_sum, step)
                writer.add_scalar("train/updates_per_s", bar.format_dict["rate"] or 0.0, step)
                sums, n_sum = {}, 0
            if step % 50 == 0 or step == cfg.total_steps:
                bar.update(step - bar.n)
            if (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.total_steps:
                res = run_eval()
                best_txt = f"best {best['success_rate']:.0%}@{best['step']}" if best else "best: after BC phase"
                phase = "bc" if pretrain or cfg.algo == "bc" else "rl"
                bar.set_postfix_str(f"{phase} | eval@{step}: {res.success_rate:.0%} success, "
                                    f"return {res.mean_return:.1f} | {best_txt}")
                writer.flush()
    except KeyboardInterrupt:
        bar.close()
        ckpt.save_checkpoint(last_path, payload())
        log(f"interrupted at step {step}; saved {last_path} (continue with --resume)")
        raise
    finally:
        bar.close()
        eval_env.close()

    final = None
    if best is not None and cfg.final_eval_episodes:
        policy = ckpt.load_policy(best_path)
        log(f"final evaluation of best.pt (step {best['step']}) on {cfg.final_eval_episodes} test episodes ...")
        res = evaluate(policy, track, cfg.final_eval_episodes, cfg.test_seed, video_path=out / "videos" / "best.mp4",
                       progress_bar=progress)
        final = {"checkpoint": str(best_path), "step": best["step"], "seed0": cfg.test_seed, **res.to_dict()}
        log(f"best.pt: {res.line()}")
    first90 = next((h for h in history if h["success_rate"] >= 0.9 and _candidate(cfg, h["step"])), None)
    report = {"run": str(out), "algo": cfg.algo, "dataset": data_label, "track": track, "steps": step,
              "wall_s": round(wall(), 2), "first_eval_ge_90pct": first90, "best_periodic": best, "final": final,
              "history": history}
    write_json(out / "eval.json", report, durable=True)
    writer.close()
    return TrainResult(out, best, final, step, wall())


def _candidate(cfg: TrainConfig, step: int) -> bool:
    """Checkpoints from BC pretraining are not the algorithm's own: never best.pt of a td3bc/cql run."""
    return cfg.algo == "bc" or step > cfg.bc_steps


def _merge_resume(cfg: TrainConfig, resumed: dict, path: Path) -> TrainConfig:
    """The resumed run keeps its learning settings; only run-control fields (steps, eval cadence) may change."""
    saved = TrainConfig.from_dict(resumed["config"], source=str(path))
    merged = saved.to_dict()
    for k in TrainConfig.RUN_CONTROL:
        merged[k] = getattr(cfg, k)
    return TrainConfig.from_dict(merged, source=str(path))
