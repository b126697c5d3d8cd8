"""The training loop: dataset -> replay buffer -> updates, periodic seeded evaluation, checkpoints, TensorBoard.

runs/NAME/
  config.json               every setting of the run (learn/config.py, flat)
  tb/                       TensorBoard: losses, Q values, BC term, lambda, CQL penalty, updates/s, eval metrics and
                            a picture of an evaluation episode
  checkpoints/last.pt       full training state (for --resume): at every evaluation, every save_every_s, at the end
  checkpoints/best.pt       the checkpoint with the best periodic evaluation (success, then return) on selection seeds
  eval.json                 final test of best.pt on other seeds + the periodic history + time to the first >= 90%
  videos/best.mp4           the first test episode of best.pt
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from racecar_env import spec
from racecar_env.evaluation import SELECTION_SEED, TEST_SEED, EvalResult, evaluate
from racecar_env.files import unwritable, write_json
from racecar_env.progress import Progress
from racecar_env.rollout import EnvPool, available_cpus, resolve_workers
from racecar_env.tracks import Track, TrackError

from . import checkpoint as ckpt
from .algos import compile_critics, make_agent
from .config import ConfigError, TrainConfig
from .data import ReplayBuffer, TrainingData, effective_drives, load_training_data
from .encoding import FEATURE_DIM
from .threads import ThreadTuner
from .tracks import evaluation_track


@dataclass
class TrainResult:
    out: Path
    best: dict | None           # periodic eval summary of best.pt
    final: dict | None          # final evaluation of best.pt on test seeds
    steps: int
    wall_s: float


_ALLOCATOR_TUNED = False


def tune_allocator() -> None:
    """Keep freed tensor memory in the process (glibc): by default buffers above a (dynamic, <= 32 MB) threshold are
    mmap'ed and returned on free, so every CQL update (a 7936-row critic pass, ~100 MB of activations) page-faulted
    its buffers in anew, ~6000 faults and a third of its time. Process-wide and idempotent; a no-op off glibc."""
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return
    _ALLOCATOR_TUNED = True
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)   # M_MMAP_THRESHOLD: allocations up to 1 GB come from the heap
        libc.mallopt(-1, 2 << 30)   # M_TRIM_THRESHOLD: keep up to 2 GB of freed heap instead of unmapping it
    except (OSError, AttributeError):
        pass


class Updater:
    """One training update as the loop runs it: a batch sampled on the device, `agent.update` under the run's
    precision, the metrics summed on the device (read back only every log_every updates). Each metric is averaged
    over the updates that reported it: TD3+BC's actor metrics come from every policy_freq-th update only."""

    def __init__(self, agent, buffer: ReplayBuffer, cfg: TrainConfig, generator: torch.Generator):
        tune_allocator()
        self.agent, self.buffer, self.generator = agent, buffer, generator
        self.batch_size = cfg.algo.batch_size
        self.device, self.bf16 = cfg.device, cfg.bf16
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.bad_loss = ""   # the first loss that was NaN/inf in a logged mean (check_finite reports it)

    def __call__(self, pretrain: bool) -> None:
        with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16):
            metrics = self.agent.update(self.buffer.sample(self.batch_size, self.generator), pretrain)
        sums, counts = self.sums, self.counts
        for k, v in metrics.items():
            sums[k] = sums[k] + v.float() if k in sums else v.float()
            counts[k] = counts.get(k, 0) + 1

    def pop_means(self) -> dict[str, float]:
        """Mean of every metric since the last call."""
        out = {k: float(v) / self.counts[k] for k, v in self.sums.items()}
        self.sums, self.counts = {}, {}
        self.bad_loss = self.bad_loss or next((k for k, v in out.items() if k.startswith("loss/")
                                               and not math.isfinite(v)), "")
        return out

    def nonfinite_loss(self) -> str:
        """The first loss that was NaN/inf since training started ('' if none); reads the sums back (a sync), so
        called only at checkpoints."""
        return self.bad_loss or next((k for k, v in self.sums.items() if k.startswith("loss/")
                                      and not torch.isfinite(v).all()), "")


def _check_same_data(resumed: dict, now: dict, label: str, last_path: Path) -> None:
    """A resumed run continues on the data it started on: episodes appended (or tracks changed) since would mix two
    datasets in one run and its evaluation history."""
    then = resumed.get("trained_on")   # absent in checkpoints of earlier versions: nothing to compare
    if then is not None and then != now:
        def text(d: dict) -> str:
            return f"{d['episodes']} episodes, {d['transitions']} transitions on {len(d['tracks'])} track(s)"
        raise ConfigError(f"--resume: dataset {label} changed since {last_path} was trained on it ({text(then)} "
                          f"then, {text(now)} now); train on the new data with a new --out")


class TrainingDiverged(ValueError):
    """A loss, weight, optimizer moment or learned scalar became NaN/inf (learning rates or reward scale far too
    high): one line for the CLI, not a traceback."""


def _eval_key(summary: dict) -> tuple[float, float]:
    return (summary["success_rate"], summary["mean_return"])


#: files a run writes into its folder besides checkpoints/ and tb/ (a new run never replaces anyone else's)
RUN_FILES = ("eval.json", "videos/best.mp4")


def _prepare_out(out: Path, resume: bool, cfg: TrainConfig) -> Path:
    try:
        return _check_out(out, resume, cfg)
    except OSError as e:   # a name too long, a folder without access: the OS's reason, naming the path
        raise ConfigError(f"cannot write --out {out}: {e.strerror or e}") from None


def _check_out(out: Path, resume: bool, cfg: TrainConfig) -> Path:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, expected a run folder")
    why = unwritable(out)
    if why:
        raise ConfigError(f"--out {out}: {why}")
    last = out / "checkpoints" / "last.pt"
    if resume and not last.is_file():
        raise ConfigError(f"--resume: {last} not found; is {out} a run folder?")
    if not resume and last.exists():
        raise ConfigError(f"{out} already holds a run (checkpoints/last.pt); continue it with --resume or pick "
                          f"another --out")
    if not resume and out.is_dir():
        # a folder without last.pt: a run killed before its first save may be started again with the same settings;
        # anything else in it that a run would overwrite is someone else's
        taken = [name for name in RUN_FILES if (out / name).exists()]
        cfg_file = out / "config.json"
        if cfg_file.exists():
            try:
                same = TrainConfig.load(cfg_file).to_dict() == cfg.to_dict()
            except ConfigError:
                same = False
            if not same:
                taken.insert(0, "config.json")
        if taken:
            raise ConfigError(f"--out {out} already holds {', '.join(taken)} (and no checkpoints/last.pt to resume "
                              f"from): pick a new folder")
    return last


class _NewFiles:
    """What a new run puts in --out before its first checkpoint: the folders it makes, config.json, its TensorBoard
    files. A run that fails before that checkpoint removes exactly these, so the corrected command can run into the
    same --out; anything else there (a user's files, the config.json a sweep writes before its trial) stays."""
    OWN = ("config.json", "eval.json", "tb", "checkpoints", "videos")

    def __init__(self, out: Path):
        self.out = out
        self.folders = [p for p in (out, *out.parents) if not p.exists()]   # what mkdir(parents=True) makes
        self.before = self._ours()

    def _ours(self) -> set[Path]:
        found = set()
        for p in (self.out / name for name in self.OWN):
            if p.exists():
                found.add(p)
                if p.is_dir():
                    found.update(p.rglob("*"))
        return found

    def remove(self) -> None:
        for p in sorted(self._ours() - self.before, reverse=True):   # a folder's files before the folder
            try:
                p.rmdir() if p.is_dir() and not p.is_symlink() else p.unlink()
            except OSError:
                pass
        for folder in self.folders:   # deepest first, each only if empty
            try:
                folder.rmdir()
            except OSError:
                break


def _size_text(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def memory_needed(cfg: TrainConfig) -> tuple[int, int]:
    """Lower bounds, in bytes, of what the run's networks take (float32 weights, gradients and Adam's two moments of
    the actor and the critics) and what one update's batch takes (the sampled indices and rows, and the actor's
    hidden activations), from the sizes alone."""
    algo = cfg.algo
    hidden = list(algo.hidden)

    def params(sizes: list[int]) -> int:
        return sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    n = params([FEATURE_DIM, *hidden, 2])
    if cfg.run.algo != "bc":
        n += getattr(algo, "n_critics", 2) * params([FEATURE_DIM + 2, *hidden, 1])
    row = 8 + 4 * (2 * FEATURE_DIM + 5 + sum(hidden))
    return 16 * n, algo.batch_size * row


def machine_memory(device: str) -> int | None:
    """Bytes of memory on the run's device (None where unknown)."""
    try:
        if device == "cuda":   # no CUDA device: unknown here; _train names the problem in one line
            return int(torch.cuda.get_device_properties(0).total_memory) if torch.cuda.is_available() else None
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError, RuntimeError):
        return None


def _check_memory(cfg: TrainConfig) -> None:
    """Sizes that cannot fit are refused before anything is loaded or written, naming the setting (torch would fail
    at its first allocation with a traceback, or the OS kill the process)."""
    have = machine_memory(cfg.device)
    nets, batch = memory_needed(cfg)
    if have is None or nets + batch <= have:
        return
    hidden = f"--hidden {','.join(map(str, cfg.algo.hidden))}"
    what = hidden if nets > have else f"--batch-size {cfg.algo.batch_size}" if batch > have else \
        f"{hidden} with --batch-size {cfg.algo.batch_size}"
    raise ConfigError(f"{what} needs at least {_size_text(nets + batch)} of memory (networks {_size_text(nets)}, a "
                      f"batch {_size_text(batch)}); this machine has {_size_text(have)}")


def _out_of_memory(e: BaseException) -> bool:
    return isinstance(e, (MemoryError, torch.OutOfMemoryError)) or \
        (isinstance(e, RuntimeError) and "can't allocate memory" in str(e))


def _weighting_text(episodes: list, temperature: float) -> str:
    """How much return-weighted sampling narrows the data, for the run's first log line ('' when it is off)."""
    if temperature <= 0:
        return ""
    drives = effective_drives(episodes, temperature)
    return f"; return-weighted sampling at {temperature:g}: {drives:.1f} drives in effect"


def _eval_track(track: "str | Track | None") -> "str | Track | None":
    """--eval-track (or a checkpoint's saved track) as the evaluations run on it: a random spec checked, anything
    else loaded (learn.tracks); None or "" for the dataset's default."""
    if not isinstance(track, str) or not track:
        return track or None
    try:
        return evaluation_track(track)
    except TrackError as e:
        raise ConfigError(f"--eval-track: {e}") from None


def train(cfg: TrainConfig, *, resume: bool = False, data: TrainingData | None = None, progress: bool = True,
          log=print) -> TrainResult:
    """Train per `cfg`. `data` gives in-memory episodes instead of loading cfg.run.dataset (tests, benchmarks).
    A new run that fails before its first checkpoint leaves --out as it found it."""
    out = Path(cfg.run.out)
    last_path = _prepare_out(out, resume, cfg)
    _check_memory(cfg)
    made = None if resume else _NewFiles(out)
    try:
        try:
            out.mkdir(parents=True, exist_ok=True)   # here, so an --out the OS refuses fails before the data loads
        except OSError as e:
            raise ConfigError(f"cannot write --out {out}: {e.strerror or e}") from None
        return _train(cfg, out, last_path, resume=resume, data=data, progress=progress, log=log)
    except BaseException as e:
        if made is not None and not last_path.exists():
            made.remove()
        if _out_of_memory(e):
            raise ConfigError(f"out of memory ({ckpt._first_line(e)}); lower --batch-size (now "
                              f"{cfg.algo.batch_size}) or --hidden (now {','.join(map(str, cfg.algo.hidden))})"
                              ) from None
        if isinstance(e, OSError) and e.filename and _inside(e.filename, out):
            raise ConfigError(f"cannot write {e.filename}: {e.strerror or e}") from None
        raise


def _inside(path, folder: Path) -> bool:
    try:
        return Path(os.fsdecode(path)).resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError, TypeError):
        return False


def _train(cfg: TrainConfig, out: Path, last_path: Path, *, resume: bool, data: TrainingData | None, progress: bool,
           log) -> TrainResult:
    from torch.utils.tensorboard import SummaryWriter

    run, algo = cfg.run, cfg.algo
    best_path = out / "checkpoints" / "best.pt"
    if run.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: torch finds no CUDA device on this machine; use --device cpu (or auto)")
    # --threads 0: the tuner picks one thread or all while the updates run (all collapse beside another busy process)
    tuner = ThreadTuner(available_cpus()) if not run.threads and cfg.device == "cpu" else None   # sets its own
    if tuner is None:
        torch.set_num_threads(run.threads or available_cpus())
    resumed = ckpt.load_checkpoint(last_path) if resume else None
    step, wall0, history, best = 0, 0.0, [], None
    if resumed is not None:
        cfg = _merge_resume(cfg, resumed, last_path)
        run, algo = cfg.run, cfg.algo
        step, wall0, history, best = ckpt.training_state(resumed, str(last_path))
        if best is not None and not best_path.is_file():
            # the record of a best.pt that is gone is void: the resumed run's evaluations pick a new one
            if step >= cfg.total_steps:
                raise ConfigError(f"--resume: {best_path} is missing and the run has no updates left to pick a new "
                                  f"one (at update {step} of {cfg.total_steps}); put it back, or give --steps > "
                                  f"{step - algo.bc_steps}")
            log(f"note: {best_path} is missing; the evaluations from update {step} on pick a new best.pt")
            best = None
    # the track its evaluations (and best.pt's selection) ran on, as saved: an edited or deleted --eval-track file
    # must not change what a resumed run is judged on; a new run's --eval-track is checked before anything is written
    saved = ckpt.saved_eval_track(resumed, str(last_path)) if resumed is not None else None
    eval_track = _eval_track(saved) or _eval_track(run.eval_track)
    device = cfg.device
    data = data or load_training_data(run.dataset)
    encoder = ckpt.saved_encoder(resumed, str(last_path)) if resumed else None
    buffer = ReplayBuffer.from_episodes(data.episodes, encoder, device, gamma=getattr(algo, "gamma", None),
                                        return_weighting=algo.return_weighting)
    encoder = buffer.encoder
    trained_on = {"episodes": len(data.episodes), "transitions": len(buffer), "tracks": sorted(data.tracks)}
    if resumed is not None:
        _check_same_data(resumed, trained_on, data.label, last_path)
    eval_track = eval_track or data.default_eval_track()

    torch.manual_seed(run.seed)
    gen = torch.Generator(device=device).manual_seed(run.seed)
    agent = make_agent(algo, FEATURE_DIM, device)
    if resumed is not None:
        try:
            agent.load_state_dict(resumed.get("agent"))
            torch.set_rng_state(resumed["rng"]["torch"])
            gen.set_state(resumed["rng"]["sampler"])
        except Exception as e:  # noqa: BLE001 - missing or mis-shaped networks, a foreign generator state
            raise ckpt.CheckpointError(f"{last_path}: training state is damaged or from another version "
                                       f"({ckpt._first_line(e)})") from None
    compiled = compile_critics(agent, dynamic_threads=tuner is not None) if run.compile else []
    cfg.save(out / "config.json")
    track_text = eval_track if isinstance(eval_track, str) else eval_track.name
    log(f"{run.algo} on {data.label} ({len(data.episodes)} episodes on {len(data.tracks)} track(s), {len(buffer)} "
        f"transitions; evaluated on {track_text}; {device}, {'bf16' if cfg.bf16 else 'fp32'}"
        f"{', compiled ' + '+'.join(compiled) if compiled else ''}"
        f"{_weighting_text(data.episodes, algo.return_weighting)}); "
        f"{'resuming at' if resumed else 'starting at'} step {step}/{cfg.total_steps}; run folder {out}")

    writer = SummaryWriter(str(out / "tb"), purge_step=step if resumed else None)
    workers = resolve_workers(run.eval_workers, max(run.eval_episodes, run.final_eval_episodes, 1))
    env_kwargs = {"track": eval_track}
    pool = EnvPool(env_kwargs, workers) if workers > 1 else None
    t_start = last_save = time.perf_counter()

    def wall() -> float:
        return wall0 + time.perf_counter() - t_start

    def payload() -> dict:
        return {"config": cfg.to_dict(), "obs_layout_id": spec.OBS_LAYOUT_ID,
                "tracks": ckpt.embed_tracks(data.tracks),
                "eval_track": eval_track if isinstance(eval_track, str) else eval_track.to_dict(),
                "dataset": data.label, "trained_on": trained_on, "encoder": encoder.state_dict(), "agent": agent.state_dict(), "step": step,
                "wall_s": wall(), "history": history, "best": best,
                "rng": {"torch": torch.get_rng_state(), "sampler": gen.get_state()}}

    def run_eval(episodes: int, seed0: int, policy) -> EvalResult:
        return evaluate(policy, eval_track, episodes, seed0, workers=1 if pool is None else workers, pool=pool)

    def check_finite() -> None:
        # a NaN weight would reach the env as a NaN action deep inside an episode, and an inf loss or Adam moment
        # silently stops a network learning; stop with what to change instead (before anything is saved: last.pt and
        # best.pt keep the last finite state). Weights first: they name the network that went.
        bad = ckpt.nonfinite_state(agent.state_dict()) or updater.nonfinite_loss()
        if bad:
            rates = f"actor {algo.actor_lr:g}" + ("" if run.algo == "bc" else f", critic {algo.critic_lr:g}")
            if getattr(algo, "cql_lagrange", False):
                rates += f", cql weight {algo.cql_weight_lr:g}"
            scale = "" if run.algo == "bc" else f", or --reward-scale (now {algo.reward_scale:g})"
            gap = f", or --cql-target-gap (now {algo.cql_target_gap:g})" if getattr(algo, "cql_lagrange", False) \
                else ""
            kept = f"{last_path} holds the last finite state" if last_path.exists() else f"nothing was saved in {out}"
            raise TrainingDiverged(f"training diverged at update {step}: {bad} is not finite; lower the learning "
                                   f"rates (now {rates}){scale}{gap} and train again with a new --out ({kept})")

    def periodic_eval() -> EvalResult:
        nonlocal best
        check_finite()
        policy = ckpt.Policy(agent.actor, encoder, run.algo)
        res = run_eval(run.eval_episodes, SELECTION_SEED, policy)
        agent.actor.train()
        s = res.summary()
        history.append({"step": step, "wall_s": round(wall(), 2), **s})
        for k in ("success_rate", "crash_rate", "mean_return", "mean_progress"):
            writer.add_scalar(f"eval/{k}", s[k], step)
        if s["mean_time_to_goal_s"] is not None:
            writer.add_scalar("eval/time_to_goal_s", s["mean_time_to_goal_s"], step)
        writer.add_image("eval/episode0", _picture(res), step, dataformats="HWC")
        improved = _candidate(cfg, step) and (best is None or _eval_key(s) > _eval_key(best))
        if improved:
            best = {"step": step, **s}
        save(best_too=improved)
        return res

    def save(best_too: bool = False) -> None:
        nonlocal last_save
        check_finite()
        p = payload()
        ckpt.save_checkpoint(last_path, p)
        if best_too:
            ckpt.save_checkpoint(best_path, p)
        last_save = time.perf_counter()

    bar = Progress(cfg.total_steps, f"{run.algo}", "upd", initial=step, quiet=not progress)
    updater = Updater(agent, buffer, cfg, gen)
    t_rate, step_rate = time.perf_counter(), step
    stopped_early = None
    try:
        while step < cfg.total_steps:
            pretrain = step < algo.bc_steps
            t_update = time.perf_counter()
            updater(pretrain)
            step += 1
            if tuner is not None:
                tuner.record(time.perf_counter() - t_update)
                if step == algo.bc_steps:   # the RL updates cost more than the warm-up's: time both settings again
                    tuner.restart()
            if step % run.log_every == 0:
                for k, v in updater.pop_means().items():
                    writer.add_scalar(k, v, step)
                now = time.perf_counter()
                writer.add_scalar("train/updates_per_s", (step - step_rate) / max(now - t_rate, 1e-9), step)
                writer.add_scalar("train/threads", torch.get_num_threads(), step)
                t_rate, step_rate = now, step
            if step % 50 == 0 or step == cfg.total_steps:
                bar.update(step - bar.n)
            if _eval_due(cfg, step):
                res = periodic_eval()
                best_txt = f"best {best['success_rate']:.0%}@{best['step']}" if best else "best: after BC phase"
                phase = "bc" if pretrain or run.algo == "bc" else "rl"
                bar.set_postfix(f"{phase} | eval@{step}: {res.success_rate:.0%} success, "
                                f"return {res.mean_return:.1f} | {best_txt}")
                writer.flush()
                if _stop_early(cfg, history):
                    stopped_early = step
                    break
            elif time.perf_counter() - last_save > run.save_every_s:
                save()
    except KeyboardInterrupt:
        bar.close()
        save()
        log(f"interrupted at step {step}; saved {last_path} (continue with --resume --out {out})")
        if pool is not None:
            pool.close()
        raise
    bar.close()
    if stopped_early is not None:
        log(f"stopped early at step {step}/{cfg.total_steps}: {run.stop_patience} evaluations in a row reached "
            f"{run.stop_at_success:.0%} success (--stop-at-success)")
    if not last_path.exists():   # nothing to train (--steps 0): the state at step 0, so --resume can continue
        save()

    final = None
    try:
        if best is not None and run.final_eval_episodes:
            policy = ckpt.load_policy(best_path)
            log(f"final evaluation of best.pt (step {best['step']}) on {run.final_eval_episodes} test episodes ...")
            res = run_eval(run.final_eval_episodes, TEST_SEED, policy)
            final = {"checkpoint": str(best_path), "step": best["step"], "seed0": TEST_SEED, **res.to_dict()}
            _video(out / "videos" / "best.mp4", res)
            log(f"best.pt: {res.line()}")
        elif best is None:
            log("no best.pt: no evaluation ran after the pretraining phase (raise --steps); last.pt holds the state")
    finally:
        if pool is not None:
            pool.close()
    if final is None and best is not None:
        final = _earlier_final(out / "eval.json", best["step"])
    first90 = next((h for h in history if h["success_rate"] >= 0.9 and _candidate(cfg, h["step"])), None)
    report = {"run": str(out), "algo": run.algo, "dataset": data.label, "eval_track": track_text, "steps": step,
              "wall_s": round(wall(), 2), "stopped_early_at": stopped_early, "first_eval_ge_90pct": first90,
              "best_periodic": best, "final": final,
              "history": history}
    write_json(out / "eval.json", report, durable=True)
    writer.close()
    return TrainResult(out, best, final, step, wall())


def _earlier_final(path: Path, best_step: int) -> "dict | None":
    """The final test an earlier session of this run wrote, if it tested the same best.pt: a resumed run with
    --final-eval-episodes 0 (or one stopped before its test) keeps it instead of writing "final": null."""
    try:
        final = json.loads(path.read_text()).get("final")
    except (OSError, ValueError, AttributeError):
        return None
    return final if isinstance(final, dict) and final.get("step") == best_step else None


def _picture(res: EvalResult):
    from racecar_env.render import EpisodeRenderer
    r = EpisodeRenderer()
    return r.last_frame(res.rollouts[0], "episode 0")


def _video(path: Path, res: EvalResult) -> None:
    from racecar_env.media import write_mp4
    from racecar_env.render import EpisodeRenderer
    r = EpisodeRenderer()
    ep = res.rollouts[0]
    write_mp4(path, r.frames(ep, "best.pt", 0), total=r.frame_count(ep), desc="video")


def _eval_due(cfg: TrainConfig, step: int) -> bool:
    """Periodic evaluations: every eval_every updates and at the end, but not inside BC pretraining (its checkpoints
    can never be best.pt, and evaluations are a large share of a short run's wall-clock); one at the end of
    pretraining (eval_after_pretrain) tells how good the cloned policy is before the algorithm's own updates start."""
    bc = cfg.algo.bc_steps if cfg.run.algo != "bc" else 0
    if step == cfg.total_steps or (bc and step == bc and cfg.run.eval_after_pretrain):
        return True
    return bool(cfg.run.eval_every) and step % cfg.run.eval_every == 0 and step > bc


def _stop_early(cfg: TrainConfig, history: list[dict]) -> bool:
    """Early stopping on the selection evaluations (as SB3's StopTrainingOnRewardThreshold, with patience): the last
    stop_patience evaluations of the algorithm's own checkpoints all reached stop_at_success."""
    run = cfg.run
    if not run.stop_at_success:
        return False
    own = [h for h in history if _candidate(cfg, h["step"])][-run.stop_patience:]
    return len(own) == run.stop_patience and all(h["success_rate"] >= run.stop_at_success for h in own)


def _candidate(cfg: TrainConfig, step: int) -> bool:
    """Checkpoints from BC pretraining are not the algorithm's own: never best.pt of a td3bc/cql/iql run."""
    return step > cfg.algo.bc_steps or cfg.run.algo == "bc"


def _merge_resume(cfg: TrainConfig, resumed: dict, path: Path) -> TrainConfig:
    """The checkpoint is the truth: the resumed run keeps the learning settings it trained with, and a config.json
    (the `cfg` given) that disagrees with them is refused, naming the settings. Only run-control fields (steps, eval
    cadence) may change, and the budget cannot shrink below what is already done; `out` is where the run now is."""
    from .config import RUN_CONTROL, same_value
    saved = TrainConfig.from_saved(resumed.get("config"), source=str(path)).to_dict()
    given = cfg.to_dict()
    steer = (*RUN_CONTROL, "out")
    differ = [k for k in sorted(set(saved) | set(given)) if k not in steer and not same_value(k, given.get(k),
                                                                                              saved.get(k))]
    if differ:
        differ = ["algo"] if "algo" in differ else differ   # another algorithm differs in all its own settings
        what = ", ".join(f"{k} {_text(given.get(k))} (last.pt: {_text(saved.get(k))})" for k in differ[:4])
        what += f" and {len(differ) - 4} more" if len(differ) > 4 else ""
        raise ConfigError(f"--resume: {Path(cfg.run.out) / 'config.json'} disagrees with {path} on {what}; the "
                          f"checkpoint's values are what the run trained with: put them back in config.json, or "
                          f"train the new settings with a new --out")
    new = TrainConfig.from_dict({**saved, **{k: given[k] for k in steer}}, source=str(path))
    done = ckpt.saved_step(resumed, str(path))
    if new.total_steps < done:
        raise ConfigError(f"--resume: the run is already at update {done}; --steps {new.algo.steps} would end it at "
                          f"{new.total_steps} (give --steps >= {done - new.algo.bc_steps})")
    return new


def _text(value) -> str:
    if value is None:
        return "absent"
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
