"""Checkpoints: one file holds everything needed to act (actor weights, encoder statistics, observation layout, the
tracks it was trained on, its evaluation track) plus the full training state for --resume. Written atomically
(temp file + fsync + os.replace), so a kill during a save leaves the previous checkpoint intact. Each carries a
sha256 of its contents (`contents_digest`): a file damaged after the save (a bit flip on disk, a bad copy) that
still unzips is refused on load instead of driving, or resuming, with corrupted weights.

The tracks travel inside the checkpoint as data (their JSON content, keyed by content hash): moving or editing a
track file later changes nothing about what a checkpoint says it was trained on.
"""
from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import numpy as np
import torch

from racecar_env import spec
from racecar_env.files import write_bytes
from racecar_env.tracks import Track, TrackError, load_track

from .encoding import FEATURE_DIM, Encoder

FORMAT = "racecar-learn-checkpoint-v2"
ACT_CHUNK = 8   # see Policy.act


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


def contents_digest(value) -> str:
    """sha256 over a checkpoint's contents: every tensor's name, dtype, shape and bytes and every other value's repr,
    in key order (lists and tuples alike: what torch.load gives back hashes as what torch.save was given)."""
    h = hashlib.sha256()

    def walk(v, name: str) -> None:
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu().contiguous()
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(v, dict):
            for k in sorted(v, key=str):
                walk(v[k], f"{name}/{k}")
        elif isinstance(v, (list, tuple)):
            h.update(f"{name}|seq{len(v)}|".encode())
            for i, x in enumerate(v):
                walk(x, f"{name}/{i}")
        else:
            h.update(f"{name}|{v!r}|".encode())
    walk(value, "")
    return h.hexdigest()


def save_checkpoint(path: Path, payload: dict) -> None:
    content = {"format": FORMAT, **payload}
    buf = io.BytesIO()
    torch.save({**content, "sha256": contents_digest(content)}, buf)
    write_bytes(path, buf.getvalue())  # atomic + fsync'd: a kill mid-save keeps the previous checkpoint


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _load_failure(e: BaseException) -> str:
    """What torch.load found wrong, without its advice to retry with weights_only=False: a checkpoint of ours never
    needs it, and unpickling an untrusted file that way can run code."""
    text = _first_line(e)
    if "zip archive" in text or "central directory" in text:
        return "truncated or damaged: not a complete archive as torch.save writes (an interrupted copy?)"
    if isinstance(e, (KeyError, EOFError)):
        return "not a file torch.save wrote"
    if "weights_only" in text:
        found = re.search(r"(Unsupported operand|invalid load key|unpickling stopped|could not find|"
                          r"Unsupported global)[^.\n]*", str(e))
        return found.group(0).strip() if found else "not a file torch.save wrote with tensors and plain values"
    return text


def load_checkpoint(path: "str | Path") -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file (expected a .pt checkpoint such as runs/NAME/checkpoints/best.pt)")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes; a full disk or an interrupted copy?), not a checkpoint")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for truncated/foreign files
        raise CheckpointError(f"{path}: not a readable checkpoint ({_load_failure(e)})") from None
    if not isinstance(ck, dict) or not str(ck.get("format", "")).startswith("racecar-learn-checkpoint"):
        raise CheckpointError(f"{path}: not a racecar learn checkpoint")
    if ck.get("obs_layout_id") != spec.OBS_LAYOUT_ID or ck.get("format") != FORMAT:
        raise CheckpointError(f"{path}: trained on observation layout {ck.get('obs_layout_id')}, this environment "
                              f"uses {spec.OBS_LAYOUT_ID}; retrain it on data recorded with the current env "
                              f"(python -m teleop --driver autopilot ..., then python -m learn ...)")
    saved = ck.pop("sha256", None)   # checkpoints from before checksums have none
    if saved is not None and saved != contents_digest(ck):
        raise CheckpointError(f"{path}: damaged: its contents do not match the checksum saved with it (a bit flip "
                              f"on disk or a bad copy?); use another checkpoint or retrain")
    return ck


class Policy:
    """A trained policy: act(obs) maps one env observation (Dict) to one float32 (2,) action, or a batch (Dict of
    stacked arrays) to (B, 2). `batched = True` tells the episode runner it may pass batches."""
    batched = True

    def __init__(self, actor: torch.nn.Module, encoder: Encoder, label: str, *, tracks: dict[str, Track] | None = None,
                 eval_track: "str | Track | None" = None, path: str = "", step: int = 0):
        self.actor = actor.eval()
        self.encoder = encoder
        self.label = label
        self.tracks = dict(tracks or {})     # track_id -> Track it was trained on
        self.eval_track = eval_track         # what it is evaluated on by default
        self.path = path
        self.step = step
        self._device = next(actor.parameters()).device

    @torch.no_grad()
    def act(self, obs: dict) -> np.ndarray:
        x = self.encoder.tensor(obs).to(self._device)
        single = x.dim() == 1
        x = x.unsqueeze(0) if single else x
        # BLAS picks its kernel by batch size, and kernels round differently: padded to a fixed chunk, an
        # observation's action never depends on how many others share its batch (so an evaluation on N worker
        # processes reproduces the serial one bitwise).
        n = x.shape[0]
        pad = (-n) % ACT_CHUNK
        if pad:
            x = torch.cat([x, x.new_zeros(pad, x.shape[1])])
        a = torch.cat([self.actor.act(chunk) for chunk in x.split(ACT_CHUNK)])[:n]
        a = a[0] if single else a
        return a.float().cpu().numpy()

    @property
    def device(self) -> torch.device:
        """Where the actor runs; the episode runner keeps a policy off the CPU in the main process (one batched call
        per step) instead of copying it into every env worker."""
        return self._device

    @property
    def track(self) -> "str | Track | None":
        """Default evaluation track: the one training track, or the generated test range for many."""
        return self.eval_track

    def describe_tracks(self) -> str:
        names = sorted({t.name for t in self.tracks.values()})
        if len(names) <= 3:
            return ", ".join(names) or "?"
        return f"{len(names)} tracks"

    def note_for(self, track: Track) -> str | None:
        """A one-line note when `track` is not one the policy was trained on (evaluation still runs)."""
        if not self.tracks or track.track_id in self.tracks:
            return None
        return f"note: {self.label} was trained on {self.describe_tracks()}; evaluating on {track.name}, a track " \
               f"it never saw"

    def __repr__(self) -> str:
        return f"Policy({self.label!r}, trained on {self.describe_tracks()}, step={self.step}, path={self.path!r})"


def nonfinite(net: torch.nn.Module) -> str:
    """'' if every parameter of `net` is finite, else the first offending parameter's name (a NaN weight makes NaN
    actions, which the env refuses deep inside an episode)."""
    for name, p in net.named_parameters():
        if not torch.isfinite(p).all():
            return name
    return ""


def nonfinite_state(state, name: str = "") -> str:
    """'' if every float tensor in a (nested) state dict is finite, else the first offending one's dotted name: the
    networks' weights, the optimizers' moments and the learned scalars (temperature, penalty weight) alike. An inf
    in Adam's second moment stops a network learning without making its weights non-finite."""
    if isinstance(state, torch.Tensor):
        return name if state.is_floating_point() and not torch.isfinite(state).all() else ""
    items = state.items() if isinstance(state, dict) else enumerate(state) if isinstance(state, (list, tuple)) else ()
    for k, v in items:
        bad = nonfinite_state(v, f"{name}.{k}" if name else str(k))
        if bad:
            return bad
    return ""


def embed_tracks(tracks: dict[str, Track]) -> dict[str, dict]:
    return {tid: t.to_dict() for tid, t in tracks.items()}


def _tracks_from(ck: dict, path: str) -> tuple[dict[str, Track], "str | Track | None"]:
    tracks, ev = ck.get("tracks") or {}, ck.get("eval_track")
    if not isinstance(tracks, dict) or not all(isinstance(d, dict) for d in tracks.values()):
        raise CheckpointError(f"{path}: tracks must map track ids to track data, got {_short(tracks)}")
    if ev is not None and not isinstance(ev, (str, dict)):
        raise CheckpointError(f"{path}: eval_track must be a track spec or track data, got {_short(ev)}")
    try:
        tracks = {tid: load_track(d) for tid, d in tracks.items()}
        eval_track = load_track(ev) if isinstance(ev, dict) else ev
    except TrackError as e:
        raise CheckpointError(f"{path}: embedded track is damaged ({e})") from None
    return tracks, eval_track


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def saved_step(ck: dict, path: str) -> int:
    """The update count a checkpoint was saved at."""
    step = ck.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"{path}: step must be a whole number >= 0, got {_short(step)}")
    return step


def saved_encoder(ck: dict, path: str) -> Encoder:
    """The checkpoint's observation statistics, checked (Encoder.from_state_dict): one line naming the field."""
    try:
        return Encoder.from_state_dict(ck.get("encoder"), source=path)
    except ValueError as e:
        raise CheckpointError(str(e)) from None


def training_state(ck: dict, path: str) -> tuple[int, float, list[dict], dict | None]:
    """What --resume continues from besides the networks: step, wall-clock, evaluation history and best record,
    checked here so a damaged field is one line naming it, not a traceback at the end of the resumed run."""
    step, wall, history, best = saved_step(ck, path), ck.get("wall_s"), ck.get("history"), ck.get("best")
    if isinstance(wall, bool) or not isinstance(wall, (int, float)) or not 0 <= wall < float("inf"):
        raise CheckpointError(f"{path}: wall_s must be a number >= 0, got {_short(wall)}")
    record = ("step", "success_rate", "mean_return")   # what best.pt's selection and eval.json read

    def is_record(r) -> bool:
        return isinstance(r, dict) and all(k in r for k in record)
    if not isinstance(history, list) or not all(map(is_record, history)):
        raise CheckpointError(f"{path}: history must be a list of evaluation records ({', '.join(record)}), got "
                              f"{_short(history)}")
    if best is not None and not is_record(best):
        raise CheckpointError(f"{path}: best must be an evaluation record ({', '.join(record)}) or None, got "
                              f"{_short(best)}")
    rng = ck.get("rng")
    if not (isinstance(rng, dict) and all(isinstance(rng.get(k), torch.Tensor) for k in ("torch", "sampler"))):
        raise CheckpointError(f"{path}: rng must hold the torch and sampler generator states")
    trained_on = ck.get("trained_on")
    if trained_on is not None and not (isinstance(trained_on, dict) and
                                       all(k in trained_on for k in ("episodes", "transitions", "tracks"))):
        raise CheckpointError(f"{path}: trained_on must record episodes, transitions and tracks, got "
                              f"{_short(trained_on)}")
    return step, float(wall), list(history), best


def saved_eval_track(ck: dict, path: str = "") -> "str | Track | None":
    """The track a run's evaluations ran on, as its checkpoint stores it (a Track, or a spec such as random:test)."""
    return _tracks_from(ck, path)[1]


def policy_from_checkpoint(ck: dict, path: str = "") -> Policy:
    from .algos import ACTOR_KINDS
    from .config import ConfigError, TrainConfig
    try:
        cfg = TrainConfig.from_saved(ck.get("config"), source=path)
        encoder = saved_encoder(ck, path)
        step = saved_step(ck, path)
        actor = ACTOR_KINDS[cfg.run.algo](FEATURE_DIM, spec.ACTION_DIM, cfg.algo.hidden)
        actor.load_state_dict(ck["agent"]["actor"])
    except (CheckpointError, ConfigError):
        raise
    except Exception as e:  # noqa: BLE001 - a damaged file becomes one line
        raise CheckpointError(f"{path}: checkpoint content is damaged or from another version ({_first_line(e)})"
                              ) from None
    bad = nonfinite(actor)
    if bad:
        raise CheckpointError(f"{path}: the actor's weights are not finite ({bad}): the run diverged or the file was "
                              f"damaged; use an earlier checkpoint or retrain with lower learning rates")
    tracks, eval_track = _tracks_from(ck, path)
    return Policy(actor, encoder, cfg.run.algo, tracks=tracks, eval_track=eval_track, path=path, step=step)


def load_policy(path: "str | Path") -> Policy:
    """Load runs/NAME/checkpoints/best.pt (or any learn checkpoint) as a Policy; one-line CheckpointError if not."""
    return policy_from_checkpoint(load_checkpoint(path), str(path))
