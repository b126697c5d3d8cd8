"""Updates/s of learn's TD3+BC and CQL against a straightforward CORL-style reference, same data, same run.

The reference is what a single-file implementation typically does: two separate critic networks, a numpy replay
buffer with a numpy -> torch copy of every batch, default (for-loop) Adam, a Python loop for the soft update, and
for CQL separate critic calls per action set with the actor re-run on repeated observations. Both sides use the
same network sizes (hidden 256x256), batch 256, feature width and synthetic transitions. Our side runs with the
precision training uses (auto: bf16 autocast for hidden layers on CPUs with native bf16, else fp32); --fp32 forces
float32 to show the structural gain alone.

    python benchmarks/learner_speed.py [--rounds 3] [--threads 1] [--fp32] [--runs runs/*/eval.json]
Last line: `ratio td3bc=X cql=Y` (ours / reference updates per second).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from learn.algos import make_agent  # noqa: E402
from learn.config import TrainConfig  # noqa: E402
from learn.data import Transitions  # noqa: E402
from learn.encoding import FEATURE_DIM, Encoder  # noqa: E402

N_TRANSITIONS = 12_000  # ~ a 50-episode S-track dataset


# --- reference (CORL-style) ----------------------------------------------------------------------------------------
def _mlp(i, o, h):
    return nn.Sequential(nn.Linear(i, h[0]), nn.ReLU(), nn.Linear(h[0], h[1]), nn.ReLU(), nn.Linear(h[1], o))


class RefBuffer:
    def __init__(self, obs, act, rew, next_obs, done):
        self.obs, self.act, self.rew, self.next_obs, self.done = obs, act, rew, next_obs, done

    def sample(self, b):
        i = np.random.randint(0, len(self.obs), size=b)
        return [torch.tensor(x[i], dtype=torch.float32) for x in
                (self.obs, self.act, self.rew[:, None], self.next_obs, self.done[:, None])]


def _soft(target, source, tau):
    for tp, sp in zip(target.parameters(), source.parameters()):
        tp.data.copy_(tau * sp.data + (1 - tau) * tp.data)


class RefTD3BC:
    def __init__(self, c: TrainConfig, d):
        self.c = c
        self.actor = _mlp(d, 2, c.hidden)
        self.q1, self.q2 = _mlp(d + 2, 1, c.hidden), _mlp(d + 2, 1, c.hidden)
        self.actor_t, self.q1_t, self.q2_t = (copy.deepcopy(m) for m in (self.actor, self.q1, self.q2))
        self.a_opt = torch.optim.Adam(self.actor.parameters(), lr=c.actor_lr, foreach=False)
        self.c_opt = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=c.critic_lr, foreach=False)
        self.it = 0

    def update(self, buf: RefBuffer):
        c = self.c
        self.it += 1
        s, a, r, s2, d = buf.sample(c.batch_size)
        with torch.no_grad():
            noise = (torch.randn_like(a) * c.policy_noise).clamp(-c.noise_clip, c.noise_clip)
            a2 = (torch.tanh(self.actor_t(s2)) + noise).clamp(-1, 1)
            sa2 = torch.cat([s2, a2], 1)
            tq = r + (1 - d) * c.gamma * torch.min(self.q1_t(sa2), self.q2_t(sa2))
        sa = torch.cat([s, a], 1)
        loss = F.mse_loss(self.q1(sa), tq) + F.mse_loss(self.q2(sa), tq)
        self.c_opt.zero_grad()
        loss.backward()
        self.c_opt.step()
        if self.it % c.policy_freq == 0:
            pi = torch.tanh(self.actor(s))
            q = self.q1(torch.cat([s, pi], 1))
            lmbda = c.alpha / q.abs().mean().detach()
            aloss = -lmbda * q.mean() + F.mse_loss(pi, a)
            self.a_opt.zero_grad()
            aloss.backward()
            self.a_opt.step()
            for t, m in ((self.actor_t, self.actor), (self.q1_t, self.q1), (self.q2_t, self.q2)):
                _soft(t, m, c.tau)


class RefTanhActor(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.net = _mlp(d, 4, h)

    def forward(self, s, repeat=None):
        if repeat:
            s = s.unsqueeze(1).repeat(1, repeat, 1).view(-1, s.shape[-1])
        mean, log_std = self.net(s).chunk(2, -1)
        std = log_std.clamp(-5, 2).exp()
        dist = torch.distributions.TransformedDistribution(
            torch.distributions.Normal(mean, std), torch.distributions.TanhTransform(cache_size=1))
        a = dist.rsample()
        return a, dist.log_prob(a).sum(-1)


class RefCQL:
    def __init__(self, c: TrainConfig, d):
        self.c = c
        self.actor = RefTanhActor(d, c.hidden)
        self.q1, self.q2 = _mlp(d + 2, 1, c.hidden), _mlp(d + 2, 1, c.hidden)
        self.q1_t, self.q2_t = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        self.log_alpha = torch.zeros((), requires_grad=True)
        self.a_opt = torch.optim.Adam(self.actor.parameters(), lr=c.cql_actor_lr, foreach=False)
        self.c_opt = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=c.critic_lr, foreach=False)
        self.al_opt = torch.optim.Adam([self.log_alpha], lr=c.temperature_lr, foreach=False)

    def _q(self, q, s, a):  # s (B, d), a (B, n, 2) or (B, 2)
        if a.dim() == 3:
            n = a.shape[1]
            s = s.unsqueeze(1).repeat(1, n, 1).view(-1, s.shape[-1])
            return q(torch.cat([s, a.reshape(-1, 2)], 1)).view(-1, n)
        return q(torch.cat([s, a], 1)).squeeze(-1)

    def update(self, buf: RefBuffer):
        c, n = self.c, self.c.cql_n_actions
        s, a, r, s2, d = buf.sample(c.batch_size)
        r, d = r.squeeze(-1), d.squeeze(-1)
        B = s.shape[0]
        new_a, logp = self.actor(s)
        alpha_loss = -(self.log_alpha * (logp + -2.0).detach()).mean()
        alpha = self.log_alpha.exp()
        q_new = torch.min(self._q(self.q1, s, new_a), self._q(self.q2, s, new_a))
        actor_loss = (alpha.detach() * logp - q_new).mean()
        q1p, q2p = self._q(self.q1, s, a), self._q(self.q2, s, a)
        with torch.no_grad():
            a2, _ = self.actor(s2)
            tq = r + (1 - d) * c.gamma * torch.min(self._q(self.q1_t, s2, a2), self._q(self.q2_t, s2, a2))
        td = F.mse_loss(q1p, tq) + F.mse_loss(q2p, tq)
        rand_a = torch.empty(B, n, 2).uniform_(-1, 1)
        cur_a, cur_lp = self.actor(s, repeat=n)
        nxt_a, nxt_lp = self.actor(s2, repeat=n)
        cur_a, cur_lp = cur_a.detach().view(B, n, 2), cur_lp.detach().view(B, n)
        nxt_a, nxt_lp = nxt_a.detach().view(B, n, 2), nxt_lp.detach().view(B, n)
        pen = 0
        for q, qp in ((self.q1, q1p), (self.q2, q2p)):
            cat = torch.cat([self._q(q, s, rand_a) - math.log(0.5 ** 2), self._q(q, s, cur_a) - cur_lp,
                             self._q(q, s, nxt_a) - nxt_lp], 1)
            pen = pen + (torch.logsumexp(cat, 1) - qp).mean()
        closs = td + c.cql_weight * pen
        self.al_opt.zero_grad(); alpha_loss.backward(); self.al_opt.step()
        self.a_opt.zero_grad(); actor_loss.backward(); self.a_opt.step()
        self.c_opt.zero_grad(); closs.backward(); self.c_opt.step()
        _soft(self.q1_t, self.q1, c.tau)
        _soft(self.q2_t, self.q2, c.tau)


# --- timing --------------------------------------------------------------------------------------------------------
def synthetic(seed: int = 0):
    rng = np.random.default_rng(seed)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    obs, nxt = f(N_TRANSITIONS, FEATURE_DIM), f(N_TRANSITIONS, FEATURE_DIM)
    act = np.tanh(f(N_TRANSITIONS, 2))
    rew = f(N_TRANSITIONS) * 0.1
    done = (rng.random(N_TRANSITIONS) < 0.004).astype(np.float32)
    return obs, act, rew, nxt, done


def time_updates(fn, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t


def bench(algo: str, n: int, rounds: int, bf16: bool) -> tuple[float, float]:
    cfg = TrainConfig(algo=algo, out="-")
    arrays = synthetic()
    ours_data = Transitions(*arrays, encoder=Encoder(np.zeros(FEATURE_DIM), np.ones(FEATURE_DIM)))
    ours = make_agent(cfg, FEATURE_DIM)
    ref = (RefTD3BC if algo == "td3bc" else RefCQL)(cfg, FEATURE_DIM)
    buf = RefBuffer(*arrays)
    gen = torch.Generator().manual_seed(0)

    def ours_step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            ours.update(ours_data.sample(cfg.batch_size, gen))

    t_ours = t_ref = 0.0
    time_updates(ours_step, max(2, n // 10))  # warm-up (allocator, oneDNN kernels)
    time_updates(lambda: ref.update(buf), max(2, n // 10))
    for _ in range(rounds):  # interleaved, so load from other processes hits both sides alike
        t_ours += time_updates(ours_step, n)
        t_ref += time_updates(lambda: ref.update(buf), n)
    return rounds * n / t_ours, rounds * n / t_ref


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--td3bc-updates", type=int, default=300, help="updates per round and side")
    p.add_argument("--cql-updates", type=int, default=20, help="updates per round and side")
    p.add_argument("--fp32", action="store_true", help="run our side in float32 (default: what training uses, "
                   "precision=auto: bf16 autocast on CPUs with native bf16)")
    p.add_argument("--runs", nargs="*", default=[], help="eval.json files of training runs: print wall-clock to "
                   "the first periodic eval with >= 90%% success")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    bf16 = TrainConfig(out="-", precision="fp32" if a.fp32 else "auto").bf16
    torch.manual_seed(0)
    np.random.seed(0)
    print(f"threads {a.threads}, batch 256, hidden 256x256, {N_TRANSITIONS} synthetic transitions, "
          f"{FEATURE_DIM} features, {a.rounds} interleaved rounds, ours in {'bf16' if bf16 else 'fp32'}")
    ratios = {}
    for algo, n in (("td3bc", a.td3bc_updates), ("cql", a.cql_updates)):
        ours, ref = bench(algo, n, a.rounds, bf16)
        ratios[algo] = ours / ref
        print(f"{algo:6s} ours {ours:8.1f} upd/s   reference {ref:8.1f} upd/s   x{ours / ref:.2f}")
    for path in a.runs:
        r = json.loads(Path(path).read_text())
        cfg = json.loads((Path(path).parent / "config.json").read_text())
        # the algorithm's own evals only (BC-pretraining evals of a td3bc/cql run do not count)
        f = next((h for h in r["history"] if h["success_rate"] >= 0.9
                  and (cfg["algo"] == "bc" or h["step"] > cfg["bc_steps"])), None)
        print(f"{r['run']} ({cfg['algo']}): " + (
            f"first periodic eval >= 90% success at update {f['step']}, {f['wall_s']:.0f} s wall-clock "
            f"(training + evals so far)" if f else "no periodic eval reached 90% success"))
    print(f"ratio td3bc={ratios['td3bc']:.2f} cql={ratios['cql']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
