"""The one episode loop every stage uses (recording demos, evaluating agents, rendering rollouts), serial or on
every core.

Anything with `act(obs) -> action` drives (a learn Policy, the Autopilot, a keyboard driver); `reset(obs, info)` and
`provenance()`, if present, are called at the episode start and end. The result is a full `Episode` (T+1
observations, the env's terminations/truncations, infos, the track it ran on), so a rollout can be saved, evaluated
or drawn without re-running it.

`run_episodes` runs many seeded episodes, in worker processes when asked. Each worker owns one env and a copy of the
agent (sent once per call, pickled) and runs WHOLE episodes: one message out and one back per episode, so the cores
step their envs and their policies independently. (The first version stepped every worker in lockstep from the main
process, one batched policy call per step: two pipe round trips per step left the main process waiting in read()
and measured slower than serial on 2 cores.) Agents that cannot be pickled (a lambda factory, a keyboard driver)
and batched agents on an accelerator (one batched GPU call per step beats a CPU copy per worker) still run that way.
Episode i always uses seed `seeds[i]` on a freshly reset env, and a learn Policy's actions do not depend on how many
observations share a call (it pads to a fixed chunk), so the episodes are the same whatever the number of workers and
either way (a test checks it bitwise). Why not gymnasium's vector envs: they reset a finished sub-env from its own RNG
stream, so "episode i uses seed s0 + i" cannot be kept.
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
from multiprocessing import resource_tracker
import os
import pickle
import signal
import sys
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from .episode import OBS_KEYS, Episode, EpisodeRecorder
from .env import RaceCarEnv
from .tracks import Track


class EnvError(ValueError):
    """The env refused its arguments or a reset (a track it cannot start on, a start jitter that finds no clear
    pose, a bad reset option), in this process or in a worker: one line, for the CLIs to show as it is."""


def make_env(env_kwargs: dict) -> RaceCarEnv:
    try:
        return RaceCarEnv(**env_kwargs)
    except ValueError as e:   # TrackError included
        raise EnvError(str(e)) from None


def reset_env(env: RaceCarEnv, seed: int | None, options: dict | None):
    try:
        return env.reset(seed=seed, options=options)
    except ValueError as e:
        raise EnvError(str(e)) from None


@runtime_checkable
class Agent(Protocol):
    """What drives the car. Optional: `reset(obs, info)` at an episode start, `provenance() -> dict` stored with
    the episode, and `batched = True` if `act` accepts a batch (a Dict of stacked observations)."""

    def act(self, obs: dict) -> np.ndarray: ...


def run_episode(env: RaceCarEnv, agent, seed: int | None = None, *, options: dict | None = None,
                meta: dict | None = None, on_step: Callable[[RaceCarEnv], None] | None = None) -> Episode:
    """One episode from env.reset(seed, options) until the env ends it. `on_step(env)` runs after the reset and
    after every step (e.g. to grab a frame). Episode.meta = agent.provenance() (if any) + seed + `meta`."""
    obs, info = reset_env(env, seed, options)
    if hasattr(agent, "reset"):
        agent.reset(obs, info)
    rec = EpisodeRecorder(obs, info)
    if on_step is not None:
        on_step(env)
    while not rec.done:
        action = _as_action(agent.act(obs))
        obs, reward, terminated, truncated, info = env.step(action)
        rec.step(action, obs, reward, terminated, truncated, info)
        if on_step is not None:
            on_step(env)
    return rec.finish(_meta(agent, seed, meta), track=env.track)


def _as_action(action) -> np.ndarray:
    try:
        return np.asarray(action, dtype=np.float32)
    except (TypeError, ValueError):   # numpy's own message names neither the agent nor what was expected
        raise ValueError(f"agent.act returned {action!r}: expected 2 numbers (steer, throttle)") from None


def _meta(agent, seed, meta) -> dict:
    provenance = agent.provenance() if hasattr(agent, "provenance") else {}
    return {**provenance, "seed": None if seed is None else int(seed), **(meta or {})}


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_workers(workers: "int | str | None", episodes: int) -> int:
    """"auto"/None = one worker per available CPU, never more than episodes; 1 = serial in this process."""
    try:
        n = available_cpus() if workers in (None, "auto") else int(workers)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise ValueError(f"workers must be >= 1 or 'auto', got {workers!r}")
    return max(1, min(n, episodes))


def run_episodes(env_kwargs: dict, agent, seeds: Sequence[int | None], *, options: Sequence[dict | None] | None = None,
                 meta: dict | None = None, workers: "int | str | None" = 1,
                 on_episode: Callable[[int, Episode], None] | None = None, env: RaceCarEnv | None = None
                 ) -> list[Episode]:
    """Episode i = run_episode(RaceCarEnv(**env_kwargs), agent, seeds[i], options=options[i]), in order.

    agent: an Agent (shared by all episodes), or a callable `i -> Agent` for per-episode agents (e.g. an autopilot
        seeded per episode). `on_episode(i, episode)` runs as each finishes (in finishing order when parallel).
    workers: 1 runs here (on `env` if given); more runs that many env processes, "auto" one per CPU.
    """
    seeds = list(seeds)   # np.arange(n) too: `if seeds` below is ambiguous for an array
    opts = _options(options, seeds)
    make_agent = agent_factory(agent)
    n = resolve_workers(workers, len(seeds)) if seeds else 1
    if n == 1:
        own = env is None
        env = env or make_env(env_kwargs)
        try:
            out = []
            with one_torch_thread():
                for i, seed in enumerate(seeds):
                    out.append(run_episode(env, make_agent(i), seed, options=opts[i], meta=meta))
                    if on_episode is not None:
                        on_episode(i, out[-1])
            return out
        finally:
            if own:
                env.close()
    with EnvPool(env_kwargs, n) as pool:
        return pool.run(agent, list(seeds), opts, meta, on_episode)


def _options(options, seeds: list) -> list:
    opts = list(options) if options is not None else [None] * len(seeds)
    if len(opts) != len(seeds):
        raise ValueError(f"options has {len(opts)} entries for {len(seeds)} seeds")
    return opts


def agent_factory(agent) -> Callable[[int], "Agent"]:
    """`i -> the agent of episode i`: the agent itself for every episode, or a factory (a callable without `act`)."""
    return agent if (callable(agent) and not hasattr(agent, "act")) else (lambda i: agent)


@contextlib.contextmanager
def one_torch_thread():
    """Policies act on a few observations at a time: on 2 idle cores one intra-op thread is about as fast as two
    (0.21 against 0.17 ms per action), but beside one busy process two threads wait at every barrier for the one
    the OS descheduled (1.0 ms per action, and a 20-episode serial evaluation took 24-27 s instead of 8-11 s). The
    caller's thread count (e.g. a training run's, learn.threads) comes back afterwards. No-op without torch."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@dataclass
class _Slot:
    """One worker's episode in progress."""
    index: int
    agent: object
    recorder: EpisodeRecorder | None = None   # None until the reset has answered
    obs: dict | None = None
    track: Track | None = None
    action: np.ndarray | None = None


class EnvPool:
    """Worker processes with one RaceCarEnv each (see the module doc). Reusable across calls: a training run keeps
    one for all its evaluations, so process start-up is paid once."""

    def __init__(self, env_kwargs: dict, workers: int):
        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        ctx = mp.get_context("spawn")   # no fork: the parent may hold torch threads and pybullet clients
        self._conns, self._procs = [], []
        self._tracks: dict[str, Track] = {}
        self._owed: set[int] = set()   # workers sent a command whose answer is not read yet
        # Workers ignore Ctrl-C (SIGINT goes to the whole process group): the parent handles it and closes them, so
        # an interrupted run prints no worker tracebacks. A spawned worker starts with its parent's signal mask, so
        # the parent's main thread blocks SIGINT while it starts them: a Ctrl-C during a worker's start-up waits,
        # pending, until the worker has set SIG_IGN (which discards it). The parent itself notes a Ctrl-C that lands
        # meanwhile (its BLAS threads do not block SIGINT) and acts on it once every worker has its start-up data: an
        # exception in the middle of a start leaves a worker reading half a message, which it reports as a traceback.
        # (Setting SIG_IGN here instead would lose that Ctrl-C: the run would go on to the end.)
        main_thread = threading.current_thread() is threading.main_thread()
        pressed: list[int] = []
        if main_thread:
            resource_tracker.ensure_running()   # starting it later would unblock SIGINT on its way out
            old_handler = signal.getsignal(signal.SIGINT)   # None: installed outside Python; left alone
            if old_handler is not None:
                signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
            old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            for _ in range(workers):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(child, env_kwargs), daemon=True)
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
        finally:
            if main_thread:
                if old_handler is not None:
                    signal.signal(signal.SIGINT, old_handler)
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        if pressed:   # the Ctrl-C now does what it would have done (KeyboardInterrupt, or ending a loading program)
            try:
                signal.raise_signal(signal.SIGINT)
            except BaseException:
                self.close()
                raise
        for conn in self._conns:   # wait until every env is built, so a bad env argument surfaces here
            try:
                status, payload = conn.recv()
            except EOFError:
                status, payload = "error", (False, "an env worker process died while starting")
            if status == "error":
                self.close()
                bad_input, text = payload
                raise (EnvError if bad_input else RuntimeError)(text)

    @property
    def workers(self) -> int:
        return len(self._conns)

    def run(self, agent, seeds: list, options: list | None = None, meta: dict | None = None,
            on_episode: Callable[[int, Episode], None] | None = None) -> list[Episode]:
        """Episodes of `agent` (an Agent, or a factory `i -> Agent`) on seeds[i] / options[i], as run_episodes."""
        if not self._conns:
            raise RuntimeError("this EnvPool is closed: make a new one")
        seeds = list(seeds)
        options = _options(options, seeds)
        payload = None if _steer_from_here(agent) else _pickled(agent)
        try:
            if payload is None:
                make_agent = agent_factory(agent)
                with one_torch_thread():   # the policy runs here, batched over the workers' observations
                    return self._run_lockstep(make_agent, seeds, options, meta, on_episode)
            return self._run_whole(payload, seeds, options, meta, on_episode)
        except BaseException as e:
            # a failed run leaves answers in the pipes that the next run would take for its own (a stale episode
            # of this run returned as one of the next): read them now, or close the pool if that cannot be done
            if isinstance(e, Exception):
                self._drain()
            elif self._owed:
                self.close()
            raise

    def _send(self, w: int, message) -> None:
        self._conns[w].send(message)
        self._owed.add(w)

    def _drain(self) -> None:
        try:
            for w in sorted(self._owed):
                self._conns[w].recv()
            self._owed.clear()
        except BaseException as e:   # a dead worker, or Ctrl-C while waiting: no run can trust these pipes
            self.close()
            if not isinstance(e, (EOFError, OSError)):
                raise

    def _recv(self, w: int):
        self._owed.discard(w)
        try:
            status, payload = self._conns[w].recv()
        except EOFError:
            status, payload = "error", (False, "the process died")
        if status == "error":
            bad_input, text = payload
            if bad_input:
                raise EnvError(text)
            raise RuntimeError(f"env worker {w}: {text}")
        return payload

    def _run_whole(self, agent_bytes: bytes, seeds: list, options: list, meta: dict | None,
                   on_episode: Callable[[int, Episode], None] | None) -> list[Episode]:
        """Every worker runs whole episodes with its own copy of the agent; the next episode goes to whichever
        worker finishes first."""
        from multiprocessing.connection import wait
        todo = deque(range(len(seeds)))
        results: list[Episode | None] = [None] * len(seeds)
        busy: dict[int, int] = {}    # worker -> episode index
        for conn in self._conns:
            conn.send_bytes(_AGENT_TAG + agent_bytes)

        def start(w: int) -> None:
            if todo:
                i = todo.popleft()
                busy[w] = i
                self._send(w, ("episode", (i, seeds[i], options[i], meta)))

        for w in range(self.workers):
            start(w)
        by_conn = {id(c): w for w, c in enumerate(self._conns)}
        while busy:
            for conn in wait([self._conns[w] for w in busy]):
                w = by_conn[id(conn)]
                i, episode = self._recv(w)
                del busy[w]
                results[i] = episode
                if on_episode is not None:
                    on_episode(i, episode)
                start(w)
        return results  # type: ignore[return-value]

    def _run_lockstep(self, make_agent, seeds: list, options: list, meta: dict | None = None,
                      on_episode: Callable[[int, Episode], None] | None = None) -> list[Episode]:
        """The main process keeps the agents and steps every worker's env in lockstep, one (batched) policy call per
        step: for agents that cannot travel to the workers, or batched policies on an accelerator."""
        todo = deque(range(len(seeds)))
        results: list[Episode | None] = [None] * len(seeds)
        slots: list[_Slot | None] = [None] * self.workers

        def start(w: int) -> None:
            slots[w] = None
            if todo:
                i = todo.popleft()
                slots[w] = _Slot(i, make_agent(i))
                self._send(w, ("reset", (seeds[i], options[i])))

        for w in range(self.workers):
            start(w)
        while any(slot is not None for slot in slots):
            for w, slot in enumerate(slots):       # every busy worker has exactly one answer pending
                if slot is None:
                    continue
                payload = self._recv(w)
                if slot.recorder is None:          # the reset
                    slot.obs, info, track_id, track = payload
                    if track is not None:
                        self._tracks[track_id] = track
                    slot.track = self._tracks[track_id]
                    if hasattr(slot.agent, "reset"):
                        slot.agent.reset(slot.obs, info)
                    slot.recorder = EpisodeRecorder(slot.obs, info)
                else:                              # a step
                    slot.obs, reward, terminated, truncated, info = payload
                    slot.recorder.step(slot.action, slot.obs, reward, terminated, truncated, info)
            for w, slot in enumerate(slots):       # finished episodes: keep, start the next one
                if slot is not None and slot.recorder.done:
                    results[slot.index] = slot.recorder.finish(_meta(slot.agent, seeds[slot.index], meta),
                                                               track=slot.track)
                    if on_episode is not None:
                        on_episode(slot.index, results[slot.index])
                    start(w)
            running = [w for w, slot in enumerate(slots) if slot is not None and slot.recorder is not None]
            for w, action in zip(running, _actions([slots[w] for w in running])):
                slots[w].action = action
                self._send(w, ("step", action))
        return results  # type: ignore[return-value]

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
        self._conns, self._procs = [], []
        self._owed.clear()

    def __enter__(self) -> "EnvPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_AGENT_TAG = b"AGENT:"


def _steer_from_here(agent) -> bool:
    """A batched policy on an accelerator keeps its one batched call per step in the main process."""
    device = getattr(agent, "device", None)
    return bool(getattr(agent, "batched", False)) and device is not None and str(device) != "cpu"


def _pickled(agent) -> bytes | None:
    """The agent (or agent factory) as bytes for the workers, or None if it cannot be pickled (a lambda, a live
    window): such agents run in the main process (lockstep)."""
    try:
        return pickle.dumps(agent, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return None


def _actions(slots: list[_Slot]) -> list[np.ndarray]:
    """One batched call when every running episode shares one batched agent, else one call per agent."""
    if not slots:
        return []
    first = slots[0].agent
    if getattr(first, "batched", False) and all(s.agent is first for s in slots):
        stacked = {k: np.stack([s.obs[k] for s in slots]) for k in OBS_KEYS}
        return list(_as_action(first.act(stacked)))
    return [_as_action(s.agent.act(s.obs)) for s in slots]


def _worker(conn, env_kwargs: dict) -> None:
    """A worker process: build the env, then run whole episodes ("episode", after an agent arrived) or answer
    reset/step commands (lockstep) until "close"."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent handles Ctrl-C and closes this worker
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})   # blocked by the parent while it started us
    try:
        env = RaceCarEnv(**env_kwargs)
    except Exception as e:  # noqa: BLE001 - reported to the parent as one line
        conn.send(("error", (isinstance(e, ValueError), str(e) if isinstance(e, ValueError)
                             else f"{type(e).__name__}: {e}")))
        return
    conn.send(("ready", None))
    sent: set[str] = set()   # track ids already sent to the parent (lockstep): a track crosses the pipe once
    agent, agent_error = None, None
    try:
        while True:
            raw = conn.recv_bytes()
            if raw.startswith(_AGENT_TAG):
                try:
                    agent, agent_error = pickle.loads(raw[len(_AGENT_TAG):]), None
                except Exception as e:  # noqa: BLE001 - reported with the first episode
                    agent, agent_error = None, f"cannot load the agent here ({type(e).__name__}: {e})"
                if "torch" in sys.modules:        # one intra-op thread per worker: the workers fill the cores
                    sys.modules["torch"].set_num_threads(1)
                continue
            cmd, arg = pickle.loads(raw)
            if cmd == "close":
                break
            try:
                if cmd == "episode":
                    if agent_error:
                        raise RuntimeError(agent_error)
                    i, seed, options, meta = arg
                    driver = agent_factory(agent)(i)
                    conn.send(("ok", (i, run_episode(env, driver, seed, options=options, meta=meta))))
                elif cmd == "reset":
                    obs, info = reset_env(env, arg[0], arg[1])
                    tid = env.track.track_id
                    conn.send(("ok", (obs, info, tid, None if tid in sent else env.track)))
                    sent.add(tid)
                else:
                    conn.send(("ok", env.step(arg)))
            except Exception as e:  # noqa: BLE001
                # a refused reset (bad option, no clear start pose) is bad input; anything else is a bug
                bad_input = isinstance(e, EnvError)
                conn.send(("error", (bad_input, str(e) if bad_input else f"{type(e).__name__}: {e}")))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        env.close()
