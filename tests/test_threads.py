"""--threads 0 (auto): the tuner keeps whichever thread count updates faster, notices when that changes, pays little
for probing a collapsed setting, and the choice cannot change what a run learns."""
import itertools

import numpy as np
import pytest
import torch

from learn.algos import make_agent
from learn.config import TrainConfig
from learn.data import ReplayBuffer
from learn.encoding import FEATURE_DIM, Encoder
from learn.threads import ThreadTuner
from learn.train import Updater


@pytest.fixture(autouse=True)
def keep_torch_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def drive(tuner: ThreadTuner, cost: dict[int, float], updates: int) -> list[int]:
    """Feed the tuner `updates` updates whose duration depends on the thread count it set; the counts used."""
    used = []
    for _ in range(updates):
        used.append(tuner.threads)
        tuner.record(cost[tuner.threads])
    return used


def test_tuner_keeps_the_faster_setting_and_a_collapsed_probe_costs_one_update():
    tuner = ThreadTuner(2, warmup=5, probe=8)
    cost = {1: 0.005, 2: 0.3}                       # two threads beside a busy process: x60 slower
    used = drive(tuner, cost, 5000)
    assert used[:5] == [1] * 5                      # the warm-up runs at the setting that cannot collapse
    probes = [len(list(run)) for threads, run in itertools.groupby(used) if threads == 2]
    assert len(probes) >= 2 and set(probes) == {1}  # re-probed, and every probe stopped after its first update
    assert sum(cost[t] for t in used if t == 2) / sum(cost[t] for t in used) < 0.07   # ~overhead (5%)
    assert tuner.threads == 1 and torch.get_num_threads() == 1
    assert tuner.per_update == pytest.approx(cost)

    tuner = ThreadTuner(2, warmup=5, probe=8)
    used = drive(tuner, {1: 0.007, 2: 0.005}, 2000)   # idle cores: two threads x1.4 faster
    assert tuner.threads == 2 and torch.get_num_threads() == 2
    assert used.count(1) / len(used) < 0.1         # one-thread probes are a small share of the updates


def test_tuner_follows_the_load_as_it_comes_and_goes():
    tuner = ThreadTuner(2, warmup=5, probe=8, min_block=100)
    drive(tuner, {1: 0.007, 2: 0.005}, 500)
    assert tuner.threads == 2
    used = drive(tuner, {1: 0.010, 2: 0.3}, 50)      # another process starts: two threads collapse
    assert tuner.threads == 1 and used.count(2) <= 8   # noticed within one probe's length
    # the load goes: the next probe of two threads (after a block bounded by the probing overhead) finds it faster
    used = drive(tuner, {1: 0.007, 2: 0.005}, 10_000)
    assert tuner.threads == 2 and used[-1] == 2


def test_single_cpu_never_changes_the_thread_count():
    torch.set_num_threads(1)
    tuner = ThreadTuner(1)
    assert drive(tuner, {1: 0.01}, 100) == [1] * 100 and tuner.switches == 0


@pytest.mark.parametrize("algo", ["td3bc", "cql", "iql"])
def test_updates_are_bitwise_the_same_at_one_and_two_threads(algo):
    """What lets the tuner switch mid-run: the thread count changes speed, not results (checked on this machine's
    CPU; a CPU whose kernels split reductions by thread count would fail here, and auto threads would then make
    runs depend on timing)."""
    rng = np.random.default_rng(0)
    n = 2000
    arrays = (rng.standard_normal((n, FEATURE_DIM)).astype(np.float32),
              np.tanh(rng.standard_normal((n, 2))).astype(np.float32),
              (rng.standard_normal(n) * 0.1).astype(np.float32),
              rng.standard_normal((n, FEATURE_DIM)).astype(np.float32),
              (rng.random(n) < 0.01).astype(np.float32))
    weights = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        cfg = TrainConfig.build(algo=algo, out="-", precision="auto", device="cpu", threads=threads)
        buffer = ReplayBuffer(*arrays, encoder=Encoder(np.zeros(FEATURE_DIM), np.ones(FEATURE_DIM)))
        updater = Updater(make_agent(cfg.algo, FEATURE_DIM, "cpu"), buffer, cfg, torch.Generator().manual_seed(0))
        for _ in range(5):
            updater(pretrain=False)
        weights.append(torch.cat([p.detach().flatten() for p in updater.agent.actor.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_episodes_run_their_policy_on_one_thread_and_give_the_callers_count_back():
    """Policies act on a few observations at a time (one thread is faster, and idle extra threads spin beside the
    physics); a training run's tuned thread count must survive its evaluations."""
    from racecar_env.rollout import run_episodes

    class CountingAgent:
        seen: set[int] = set()

        def act(self, obs):
            self.seen.add(torch.get_num_threads())
            return np.zeros(2, dtype=np.float32)

    torch.set_num_threads(2)
    agent = CountingAgent()
    episodes = run_episodes({"track": "s_curve", "max_episode_steps": 5}, agent, [0, 1], workers=1)
    assert [len(e.actions) for e in episodes] == [5, 5]
    assert agent.seen == {1} and torch.get_num_threads() == 2
