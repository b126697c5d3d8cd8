"""The four learners, each one `update(batch, pretrain)` step in plain PyTorch (CORL-style single-function updates).

  BC      actor regresses the data action (MSE).
  TD3+BC  Fujimoto & Gu 2021: twin critics with target policy smoothing; the actor maximises lambda * Q - MSE to
          the data action, lambda = alpha / mean|Q|, updated every `policy_freq` critic steps.
  CQL     Kumar et al. 2020, SAC-based (as CORL's cql.py without the Lagrange variant): twin critics with the
          conservative logsumexp penalty over random, current-policy and next-policy actions, auto-tuned entropy.
  IQL     Kostrikov et al. 2021: expectile value regression, advantage-weighted regression actor.

`pretrain=True` (the --bc-steps phase) trains the actor by behaviour cloning only, while the critics already learn
the value of that cloned policy; when the RL phase starts the critic is no longer random, so the first policy
improvement steps follow a meaningful Q instead of noise (the crash-prone phase d3rlpy's TD3+BC passes through).

Speed (CPU): all transitions live in one tensor (learn.data), the twin critics are one ensemble module, CQL
evaluates every sampled action with one critic pass and samples current and next actions with one actor pass.
"""
from __future__ import annotations

import copy
import math

import torch
from torch.nn import functional as F

from .config import AlgoConfig, CQLConfig, IQLConfig, TD3BCConfig
from .data import Batch
from .encoding import FEATURE_NAMES
from .nets import Actor, EnsembleCritic, GaussianActor, ValueNet

ACT_DIM = 2


def _adam(params, lr: float) -> torch.optim.Adam:
    try:  # fused Adam is one kernel per step; fall back where the build lacks it
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


def actor_step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """Step the actor on `loss`, differentiating w.r.t. the actor's parameters only: loss.backward() would also
    compute (and then discard) weight gradients of the critic the loss passes through, a third of its backward."""
    params = [p for g in opt.param_groups for p in g["params"]]
    for p, g in zip(params, torch.autograd.grad(loss, params)):
        p.grad = g
    opt.step()


@torch.no_grad()
def soft_update(target: torch.nn.Module, source: torch.nn.Module, tau: float) -> None:
    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


STEER_FEATURE = FEATURE_NAMES.index("steer_angle")


def hide_steer(obs: torch.Tensor, p: float) -> torch.Tensor:
    """The actor's training input with the measured steering angle replaced by its data mean (0 once standardized)
    in a random fraction p of the rows (ChauffeurNet's past-motion dropout, Bansal et al. 2018). Held keys make the
    wheel's current angle predict the next action almost exactly; a clone that learns to copy it ("copycat", Wen et
    al. 2020) keeps steering as it was and runs wide. Hidden in some rows, the angle stays an input the actor may
    use, but the road ahead has to explain the action too."""
    if p <= 0:
        return obs
    hide = torch.rand(obs.shape[0], device=obs.device) < p
    out = obs.clone()
    out[:, STEER_FEATURE] = obs[:, STEER_FEATURE].masked_fill(hide, 0.0)
    return out


class BC:
    def __init__(self, cfg: AlgoConfig, obs_dim: int, device: str = "cpu"):
        self.cfg = cfg
        self.actor = Actor(obs_dim, ACT_DIM, cfg.hidden).to(device)
        self.actor_opt = _adam(self.actor.parameters(), cfg.actor_lr)

    def update(self, b: Batch, pretrain: bool = False) -> dict[str, torch.Tensor]:
        loss = F.mse_loss(self.actor(hide_steer(b.obs, self.cfg.steer_dropout)), b.action)
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_opt.step()
        return {"loss/actor": loss.detach(), "loss/bc": loss.detach()}

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "actor_opt": self.actor_opt.state_dict()}

    def load_state_dict(self, d: dict) -> None:
        self.actor.load_state_dict(d["actor"])
        self.actor_opt.load_state_dict(d["actor_opt"])


class TD3BC:
    def __init__(self, cfg: TD3BCConfig, obs_dim: int, device: str = "cpu"):
        self.cfg = cfg
        self.actor = Actor(obs_dim, ACT_DIM, cfg.hidden).to(device)
        self.critic = EnsembleCritic(obs_dim, ACT_DIM, cfg.hidden, n=cfg.n_critics,
                                     layernorm=cfg.critic_layernorm).to(device)
        self.actor_target, self.critic_target = copy.deepcopy(self.actor), copy.deepcopy(self.critic)
        for p in [*self.actor_target.parameters(), *self.critic_target.parameters()]:
            p.requires_grad_(False)
        self.actor_opt = _adam(self.actor.parameters(), cfg.actor_lr)
        self.critic_opt = _adam(self.critic.parameters(), cfg.critic_lr)
        self.it = 0

    def update(self, b: Batch, pretrain: bool = False) -> dict[str, torch.Tensor]:
        c = self.cfg
        self.it += 1
        with torch.no_grad():
            noise = (torch.randn_like(b.action) * c.policy_noise).clamp(-c.noise_clip, c.noise_clip)
            next_a = (self.actor_target(b.next_obs) + noise).clamp(-1.0, 1.0)
            target_q = self.critic_target(b.next_obs, next_a).min(0).values
            target = c.reward_scale * b.reward + c.gamma * (1.0 - b.done) * target_q   # none past a termination
        q = self.critic(b.obs, b.action)                                # (N, B): all critics in one pass
        critic_loss = (q - target).pow(2).mean(1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        out = {"loss/critic": critic_loss.detach(), "q/data": q.detach().mean(), "q/target": target.mean()}

        if pretrain or self.it % c.policy_freq == 0:
            pi = self.actor(hide_steer(b.obs, c.steer_dropout_at(self.it)))
            bc = F.mse_loss(pi, b.action)
            if pretrain:
                actor_loss = bc
            else:
                # the paper's Q1 for twin critics (only member 0 is run); a larger ensemble acts on its minimum
                q_pi = self.critic(b.obs, pi, members=1)[0] if c.n_critics == 2 else \
                    self.critic(b.obs, pi).min(0).values
                lmbda = q_scale(c.alpha, q_pi)
                actor_loss = -lmbda * q_pi.mean() + bc
                out.update({"q/policy": q_pi.detach().mean(), "lambda": lmbda})
            actor_step(self.actor_opt, actor_loss)
            soft_update(self.actor_target, self.actor, c.tau)
            soft_update(self.critic_target, self.critic, c.tau)
            out.update({"loss/actor": actor_loss.detach(), "loss/bc": bc.detach()})
        return out

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "actor_target": self.actor_target.state_dict(), "critic_target": self.critic_target.state_dict(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(), "it": self.it}

    def load_state_dict(self, d: dict) -> None:
        for k in ("actor", "critic", "actor_target", "critic_target", "actor_opt", "critic_opt"):
            getattr(self, k).load_state_dict(d[k])
        self.it = int(d["it"])


DATA_JITTER_SAMPLES = 4   # jittered copies of each data action on the push-up side with cql_data_noise


def cql_penalty(q_sampled: torch.Tensor, log_density: torch.Tensor, q_data: torch.Tensor,
                temperature: float = 1.0, data_weight: torch.Tensor | None = None) -> torch.Tensor:
    """CQL(H)'s conservative gap per critic: the soft maximum of Q over actions minus Q at the data's action,

        gap = mean over states of [ T * log mean_i exp((Q(s, a_i) - log mu(a_i|s)) / T) - Q(s, a_data) ],

    an importance-sampled estimate of T * log integral exp(Q(s, a) / T) da from actions a_i drawn from proposals mu
    (uniform and policy samples, their log densities given). Minimising it pushes Q down where the sampled actions
    are and up at the data's action. Shapes: q_sampled and log_density (n_critics, B, K) (log_density may broadcast),
    q_data (n_critics, B); returns (n_critics,). The log K of the mean makes a Q flat over the action box give a gap
    of T * log(volume) (log 4 for [-1, 1]^2), whatever K is: the gap a Lagrange target is set against."""
    k = q_sampled.shape[-1]
    lse = temperature * (torch.logsumexp((q_sampled - log_density) / temperature, dim=-1) - math.log(k))
    if data_weight is not None:   # (B,), mean 1: the data actions are pushed up in these proportions
        q_data = data_weight * q_data
    return (lse - q_data).mean(-1)


def calibrated(q_all: torch.Tensor, bound: torch.Tensor, first_policy: int) -> torch.Tensor:
    """Cal-QL's calibration (Nakamoto et al. 2023): Q at the policy's sampled actions (columns first_policy: of
    q_all, (n_critics, B, K)) enters the penalty no lower than bound (B,), the recorded drive's discounted
    reward-to-go. Where Q is below it the penalty no longer pushes it down (no gradient there), so conservatism
    cannot sink Q under the value the data itself earned; the data and uniform columns are unchanged."""
    lifted = torch.maximum(q_all[..., first_policy:], bound[None, :, None])
    return torch.cat([q_all[..., :first_policy], lifted], dim=-1)


def without_sampled(q_all: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """q_all (n_critics, B, K) with the sampled actions (columns 1:) where `drop` (broadcastable to (n_critics, B,
    K - 1)) is true set to -inf: they leave the penalty's soft maximum and get no gradient from it. Column 0, the
    data action's, always stays, so the soft maximum is never empty."""
    return torch.cat([q_all[..., :1], q_all[..., 1:].masked_fill(drop, float("-inf"))], dim=-1)


def floored(q_all: torch.Tensor, q_data: torch.Tensor, floor: float) -> torch.Tensor:
    """Sampled actions' Q (columns 1: of q_all, (n_critics, B, K); column 0 is the data action's) that lie more
    than `floor` below Q(s, a_data) leave the soft maximum (-inf): the penalty stops pushing an action down once it is
    that far below the data's. Plain CQL sinks the actions the data rarely took without end (10-60 below the data's
    at the S track's first corner on keyboard-sloppy data), and the actor cannot leave the data's commonest action.
    Dropped rather than held at the bound: held there, they kept a share of the soft maximum that nothing pushed
    down, which lifted Q at every data action like a bonus per step alive (measured: a seed that stalled)."""
    return without_sampled(q_all, q_all[..., 1:] < (q_data.detach() - floor)[..., None])


def near_data_excluded(q_all: torch.Tensor, actions: torch.Tensor, radius: float) -> torch.Tensor:
    """Sampled actions (columns 1: of q_all, (n_critics, B, K), taken at actions (B, K, A); column 0 is the data
    action's) that lie within `radius` (Euclidean, in the action box) of the row's data action leave the soft
    maximum (-inf): near the data the penalty neither pushes Q down nor counts it, so there Q is shaped by the TD
    loss alone and ranks the data's actions by their Bellman targets, as an unpenalised critic does. Everywhere
    else CQL pushes down as usual. Why: the soft maximum's push-down does not scale with how often the data took an
    action while the push-up and the TD loss do, so plain CQL's fixed point ranks a state's data actions by
    log-density + (2 / weight) x target (learn/README.md); exempting the neighbourhood of each data action removes
    the density term there (Q = target there at the fixed point) and keeps the push-down away from the data."""
    return without_sampled(q_all, (actions[:, 1:] - actions[:, :1]).norm(dim=-1) < radius)   # mask (B, K - 1)


def lagrange_loss(log_weight: torch.Tensor, gap: torch.Tensor, target_gap: float) -> torch.Tensor:
    """Loss of the conservative weight w = exp(log_weight) of CQL's Lagrange variant: -w * (gap - target).
    Gradient descent on it raises w while the (detached) gap is above the target and lowers it below, so the
    penalty is as strong as it has to be to hold the gap at the target, whatever the scale of Q."""
    return -(log_weight.exp() * (gap.detach() - target_gap)).mean()


def poor_action_weights(adv: torch.Tensor, beta: float, max_weight: float = 100.0) -> torch.Tensor:
    """ReDS's reweighting of the data toward its poor actions: exp(-beta * A / std A) over the batch, capped and
    normalised to mean 1. Advantages are read in units of their own spread, so beta means the same whatever the
    scale of Q (CQL's Q here is ~10x smaller than IQL's)."""
    w = advantage_weights(-(adv - adv.mean()) / (adv.std() + 1e-6), beta, max_weight)
    return w / w.mean()


def q_scale(weight: float, q: torch.Tensor) -> torch.Tensor:
    """TD3+BC's lambda = weight / mean|Q| (detached): the Q term of a DDPG+BC actor loss keeps the same size
    against the BC term whatever the scale of Q."""
    return weight / q.abs().mean().detach()


class CQL:
    """CQL (Kumar et al. 2020), SAC-based as CORL's cql.py: twin critics learn r + gamma * min Q'(s', a' ~ pi) plus the
    conservative gap (cql_penalty) over uniform, current-policy and next-policy actions (cql_proposal=uniform: uniform
    ones only); the tanh-Gaussian actor maximises min Q - alpha * log pi (alpha tuned as SAC's at temperature_lr, or
    held at init_temperature with temperature_lr 0). With cql_lagrange the penalty's weight is a Lagrange multiplier
    tuned to hold the gap at cql_target_gap (the paper's CQL-Lagrange); with cql_max_target_backup the TD target takes
    the best of the n policy samples at s' (the paper's max-backup). The BC warm-up is the authors': the actor minimises
    alpha * log pi - log pi(a_data | s) while the critics learn. With policy_bc the actor is extracted as TD3+BC's
    (DDPG+BC: Q scaled by q_scale against a squared pull to the data action, plus the entropy term) and the TD target
    bootstraps from its mean action.
    With actor_average, `actor` (the policy evaluations and checkpoints use) is a Polyak average of `actor_live` (the
    one the updates train): on imperfect data the live actor hops between the peaks the penalty raises at data
    actions every few hundred updates, and its average hops less. With cql_reds (Singh et al. 2023) a second
    tanh-Gaussian `rho` clones the data weighted toward its poor actions (poor_action_weights of the data's own
    advantage, _update_reds) and its samples join the pushed-down set: plain CQL raises Q at every data action, the
    crashing drives' included; rho's samples are meant to cancel that where the data's actions were poor
    (cql_reds_form push_up: the data actions are raised in proportion to their advantage instead). Neither fixed
    keyboard-sloppy data here (learn/README.md). With cql_floor sampled actions far below the data action's Q leave
    the soft maximum (floored), so rare actions stop sinking; with cql_support_radius sampled actions near the data
    action leave it (near_data_excluded), so the data's actions rank by their targets, not their density; with
    cql_data_noise Q is pushed up at jittered copies of the data action instead of at the point."""

    def __init__(self, cfg: CQLConfig, obs_dim: int, device: str = "cpu"):
        self.cfg = cfg
        self.actor = GaussianActor(obs_dim, ACT_DIM, cfg.hidden).to(device)
        self.critic = EnsembleCritic(obs_dim, ACT_DIM, cfg.hidden, n=2, layernorm=cfg.critic_layernorm).to(device)
        self.critic_target = copy.deepcopy(self.critic)
        for p in self.critic_target.parameters():
            p.requires_grad_(False)
        self.actor_live = self.actor
        if cfg.actor_average:   # `actor` (what is evaluated and saved as the policy) becomes the running average
            self.actor = copy.deepcopy(self.actor_live)
            for p in self.actor.parameters():
                p.requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(cfg.init_temperature), device=device, requires_grad=True)
        self.log_cql_weight = torch.tensor(math.log(cfg.cql_weight), device=device, requires_grad=True)
        self.actor_opt = _adam(self.actor_live.parameters(), cfg.actor_lr)
        self.critic_opt = _adam(self.critic.parameters(), cfg.critic_lr)
        self.reds_parts: tuple[str, ...] = ()   # what cql_reds adds to the agent (and to its checkpoints)
        if cfg.cql_reds:   # the data's value, and (form rho) the policy of its poor actions
            self.data_value = ValueNet(obs_dim, cfg.hidden).to(device)
            nets = ("data_value",)
            if cfg.cql_reds_form == "rho":
                self.rho = GaussianActor(obs_dim, ACT_DIM, cfg.hidden).to(device)
                nets += ("rho",)
            self.reds_opt = _adam([p for k in nets for p in getattr(self, k).parameters()], cfg.critic_lr)
            self.reds_parts = (*nets, "reds_opt")
        self.alpha_opt = _adam([self.log_alpha], cfg.temperature_lr)
        self.cql_weight_opt = _adam([self.log_cql_weight], cfg.cql_weight_lr)
        self.target_entropy = -float(ACT_DIM)
        self.log_uniform_density = ACT_DIM * math.log(0.5)   # uniform on [-1, 1]^A

    def update(self, b: Batch, pretrain: bool = False) -> dict[str, torch.Tensor]:
        c = self.cfg
        B, n = b.obs.shape[0], c.cql_n_actions
        # one actor pass for current and next states, n samples each (the actor trains on the current half)
        actor_obs = hide_steer(b.obs, c.steer_dropout)
        acts, logp = self.actor_live.sample(torch.cat([actor_obs, b.next_obs]), n)
        cur_a, cur_logp, next_a, next_logp = acts[:B], logp[:B], acts[B:], logp[B:]
        pi, pi_logp = cur_a[:, 0], cur_logp[:, 0]
        alpha = self.log_alpha.exp().detach()

        if pretrain:  # the authors' BC warm-up: maximum likelihood of the data action, entropy-regularised
            actor_loss = (alpha * pi_logp - self.actor_live.log_prob(actor_obs, b.action)).mean()
        else:
            q_pi = self.critic(b.obs, pi).min(0).values
            if c.policy_bc:   # DDPG+BC extraction: Q's action-gradient, scaled to Q's size, against a pull to the data
                actor_loss = (alpha * pi_logp - q_scale(c.policy_bc, q_pi) * q_pi).mean() + F.mse_loss(pi, b.action)
            else:
                actor_loss = (alpha * pi_logp - q_pi).mean()
        alpha_loss = -(self.log_alpha * (pi_logp.detach() + self.target_entropy)).mean()

        reward = c.reward_scale * b.reward
        with torch.no_grad():
            if c.cql_max_target_backup:   # (B, n) samples at s' -> the best one per state
                target_q = self.critic_target(b.next_obs, next_a).min(0).values.max(-1).values
            elif c.policy_bc:   # the DDPG+BC policy is its mean action: the critic evaluates that one, as TD3+BC's
                target_q = self.critic_target(b.next_obs, self.actor_live(b.next_obs)).min(0).values
            else:
                target_q = self.critic_target(b.next_obs, next_a[:, 0]).min(0).values
            target = reward + c.gamma * (1.0 - b.done) * target_q   # no bootstrap past a termination
        # one critic pass over [data action | n random | n current-policy | n next-policy] actions per state
        # (proposal "uniform": [data action | 3n random], the same pass size)
        mixed = c.cql_proposal == "mixed"
        rand_a = torch.rand(B, n if mixed else 3 * n, ACT_DIM, device=b.obs.device) * 2 - 1
        sampled = [rand_a, cur_a.detach(), next_a.detach()] if mixed else [rand_a]
        rho = c.cql_reds and c.cql_reds_form == "rho"
        if rho:   # rho's poor actions, n per state, pushed down with the rest
            with torch.no_grad():
                rho_a, rho_logp = self.rho.sample(b.obs, n)
            sampled.append(rho_a)
        jitter = DATA_JITTER_SAMPLES if c.cql_data_noise else 0
        if jitter:   # cql_data_noise: the push-up side is the data action jittered (a kernel estimate of the
            noise = c.cql_data_noise * torch.randn(B, jitter, ACT_DIM, device=b.obs.device)   # behaviour policy)
            sampled.append((b.action.unsqueeze(1) + noise).clamp(-1, 1))
        all_a = torch.cat([b.action.unsqueeze(1), *sampled], dim=1)
        q_all = self.critic(b.obs, all_a)   # (2, B, 1 + 3n [+ n] [+ jitter])
        q_data = q_all[:, :, 0]
        td_loss = (q_data - target).pow(2).mean(1).sum()
        q_up = q_data   # where the penalty pushes Q up
        if jitter:
            q_up, q_all = q_all[:, :, -jitter:].mean(-1), q_all[:, :, :-jitter]
        q_pen = calibrated(q_all, c.reward_scale * b.mc_return, n + 1) if c.cql_calibrated else q_all
        if c.cql_floor:
            q_pen = floored(q_pen, q_data, c.cql_floor)
        if c.cql_support_radius:
            q_pen = near_data_excluded(q_pen, all_a[:, :q_pen.shape[-1]], c.cql_support_radius)
        log_density = torch.full((B, rand_a.shape[1]), self.log_uniform_density, device=b.obs.device)
        if mixed:   # the three proposals
            log_density = torch.cat([log_density, cur_logp.detach(), next_logp.detach()], dim=1)
        if rho:
            log_density = torch.cat([log_density, rho_logp], dim=1)
        data_weight, out = None, {}
        if c.cql_reds:
            adv, out = self._update_reds(b, c.reward_scale * b.mc_return)
            if not rho:   # form push_up: the data's actions raised in proportion to exp(beta * A / std A)
                data_weight = poor_action_weights(-adv, c.cql_reds)
        if c.cql_importance_sample:
            gap = cql_penalty(q_pen[:, :, 1:], log_density, q_up, c.cql_temperature, data_weight)   # (2,)
        else:   # every sampled action (and the data's) weighs alike: the policy's own actions are pushed down,
            gap = cql_penalty(q_pen, q_all.new_zeros(()), q_up, c.cql_temperature, data_weight)   # however narrow
        lagrange = c.cql_lagrange
        weight = self.log_cql_weight.exp().detach() if lagrange else torch.tensor(c.cql_weight)
        critic_loss = td_loss + weight * gap.sum()

        actor_step(self.actor_opt, actor_loss)
        if c.actor_average:
            soft_update(self.actor, self.actor_live, c.actor_average)
        if not pretrain:   # a clone of the data has the data's entropy: tuning alpha to the target then only
            self.alpha_opt.zero_grad(set_to_none=True)   # drives it toward 0 for the RL phase to start from
            alpha_loss.backward()
            self.alpha_opt.step()
        if lagrange:
            self.cql_weight_opt.zero_grad(set_to_none=True)
            lagrange_loss(self.log_cql_weight, gap, c.cql_target_gap).backward()
            self.cql_weight_opt.step()
            with torch.no_grad():   # keep the multiplier in a sane range (CORL clamps it to [0, 1e6])
                self.log_cql_weight.clamp_(math.log(1e-3), math.log(1e3))
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        soft_update(self.critic_target, self.critic, c.tau)
        if rho:
            out["q/rho"] = q_all[:, :, 3 * n + 1:].detach().mean()
        with torch.no_grad():
            q_rand = q_all[:, :, 1:rand_a.shape[1] + 1].mean()
            if mixed:   # Q at the policy's samples, from the penalty's pass
                q_cur = q_all[:, :, n + 1:2 * n + 1].mean()
            else:   # none in the pass: Q at the policy's action, the actor loss's (the warm-up has none: a pass here)
                q_cur = (q_pi.detach() if not pretrain else self.critic(b.obs, pi.detach()).min(0).values).mean()
        return {"loss/actor": actor_loss.detach(), "loss/critic": critic_loss.detach(), "loss/td": td_loss.detach(),
                "cql/penalty": gap.detach().mean(), "cql/weight": weight, "q/data": q_data.detach().mean(),
                "q/policy": q_cur, "q/random": q_rand, "q/target": target.mean(), "alpha": alpha,
                "entropy": -pi_logp.detach().mean(), **out}

    def _update_reds(self, b: Batch, mc_return: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The data action's advantage, the drive's own discounted reward-to-go over the data's value (regressed on
        it here), and (form rho) ReDS's rho: the data's actions weighted toward the poor ones. Not the critic's
        advantage over the policy's samples: that is ~0 wherever the actor sits on the data action's peak, which is
        everywhere here (a pilot with it: learn/README.md)."""
        v = self.data_value(b.obs)
        loss = F.mse_loss(v, mc_return)
        adv = (mc_return - v).detach()
        out = {"loss/data_value": loss.detach()}
        if self.cfg.cql_reds_form == "rho":
            rho_loss = -(poor_action_weights(adv, self.cfg.cql_reds) * self.rho.log_prob(b.obs, b.action)).mean()
            loss = loss + rho_loss
            out["loss/rho"] = rho_loss.detach()
        self.reds_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.reds_opt.step()
        return adv, out

    def state_dict(self) -> dict:
        live = {"actor_live": self.actor_live.state_dict()} if self.cfg.actor_average else {}
        live.update({k: getattr(self, k).state_dict() for k in self.reds_parts})
        return {"actor": self.actor.state_dict(), **live, "critic": self.critic.state_dict(),
                "critic_target": self.critic_target.state_dict(), "log_alpha": self.log_alpha.detach().clone(),
                "log_cql_weight": self.log_cql_weight.detach().clone(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "alpha_opt": self.alpha_opt.state_dict(), "cql_weight_opt": self.cql_weight_opt.state_dict()}

    def load_state_dict(self, d: dict) -> None:
        for k in ("actor", "critic", "critic_target", "actor_opt", "critic_opt", "alpha_opt", "cql_weight_opt"):
            getattr(self, k).load_state_dict(d[k])
        if self.cfg.actor_average:
            self.actor_live.load_state_dict(d["actor_live"])
        for k in self.reds_parts:
            getattr(self, k).load_state_dict(d[k])
        with torch.no_grad():
            self.log_alpha.copy_(d["log_alpha"])
            self.log_cql_weight.copy_(d["log_cql_weight"])


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """Asymmetric L2: |tau - 1(diff < 0)| * diff^2, diff = target - prediction. tau > 0.5 weighs under-estimates
    more, so V approaches an upper expectile of Q over the data's actions (IQL's implicit max)."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return (weight * diff.pow(2)).mean()


def advantage_weights(adv: torch.Tensor, beta: float, max_weight: float) -> torch.Tensor:
    """exp(beta * A), capped: how much the actor imitates each data action."""
    return torch.exp(beta * adv).clamp(max=max_weight)


class IQL:
    """IQL (Kostrikov et al. 2021), as CORL's iql.py: V regresses an upper expectile of the target critics' Q on data
    actions; Q regresses r + gamma * V(s'); the actor does advantage-weighted regression onto the data actions. It
    never queries Q at actions outside the data, so there is nothing to extrapolate."""

    def __init__(self, cfg: IQLConfig, obs_dim: int, device: str = "cpu"):
        self.cfg = cfg
        self.actor = Actor(obs_dim, ACT_DIM, cfg.hidden).to(device)
        self.value = ValueNet(obs_dim, cfg.hidden).to(device)
        self.critic = EnsembleCritic(obs_dim, ACT_DIM, cfg.hidden, n=2, layernorm=cfg.critic_layernorm).to(device)
        self.critic_target = copy.deepcopy(self.critic)
        for p in self.critic_target.parameters():
            p.requires_grad_(False)
        self.actor_opt = _adam(self.actor.parameters(), cfg.actor_lr)
        self.value_opt = _adam(self.value.parameters(), cfg.critic_lr)
        self.critic_opt = _adam(self.critic.parameters(), cfg.critic_lr)
        self.it = 0

    def update(self, b: Batch, pretrain: bool = False) -> dict[str, torch.Tensor]:
        c = self.cfg
        self.it += 1
        if c.actor_cosine:   # CORL's IQL anneals the actor's rate to 0: late checkpoints stop swinging
            lr = c.actor_lr * 0.5 * (1.0 + math.cos(math.pi * min(self.it, c.total_steps) / max(c.total_steps, 1)))
            for g in self.actor_opt.param_groups:
                g["lr"] = lr
        with torch.no_grad():
            target_q = self.critic_target(b.obs, b.action).min(0).values
        v = self.value(b.obs)
        adv = target_q - v
        value_loss = expectile_loss(adv, c.expectile)
        self.value_opt.zero_grad(set_to_none=True)
        value_loss.backward()
        self.value_opt.step()

        with torch.no_grad():
            # no bootstrap past a termination
            target = c.reward_scale * b.reward + c.gamma * (1.0 - b.done) * self.value(b.next_obs)
        q = self.critic(b.obs, b.action)
        critic_loss = (q - target).pow(2).mean(1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        soft_update(self.critic_target, self.critic, c.tau)

        weights = torch.ones_like(adv) if pretrain else advantage_weights(adv.detach(), c.beta, c.max_weight)
        per_sample = (self.actor(hide_steer(b.obs, c.steer_dropout)) - b.action).pow(2).sum(-1)
        actor_loss = (weights * per_sample).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        return {"loss/actor": actor_loss.detach(), "loss/value": value_loss.detach(),
                "loss/critic": critic_loss.detach(), "q/data": q.detach().mean(), "q/target": target.mean(),
                "v/mean": v.detach().mean(), "adv/mean": adv.detach().mean(), "adv/weight_mean": weights.mean()}

    def state_dict(self) -> dict:
        return {"it": self.it, **{k: getattr(self, k).state_dict() for k in
                                  ("actor", "value", "critic", "critic_target", "actor_opt", "value_opt",
                                   "critic_opt")}}

    def load_state_dict(self, d: dict) -> None:
        for k, v in d.items():
            if k == "it":
                self.it = int(v)
            else:
                getattr(self, k).load_state_dict(v)


def compile_critics(agent, dynamic_threads: bool = False) -> list[str]:
    """torch.compile the networks an update runs but evaluation never does (critics, their targets, IQL's value):
    inductor fuses their bias, ReLU and bf16 casts around the matmuls. Actors stay eager: evaluation calls them with
    every batch size, and each new shape would compile again. Only `forward` is replaced, so state_dicts and
    checkpoints are unchanged. Where compiling fails (no C++ compiler) dynamo falls back to eager. dynamic_threads:
    the kernels use torch's thread count at each call instead of the one at compile time (learn.threads changes it)."""
    import torch._dynamo
    import torch._inductor.config
    torch._dynamo.config.suppress_errors = True
    torch._inductor.config.cpp.dynamic_threads = dynamic_threads
    done = []
    for name in ("critic", "critic_target", "value"):
        net = getattr(agent, name, None)
        if net is not None:
            net.forward = torch.compile(net.forward)
            done.append(name)
    return done


AGENTS = {"bc": BC, "td3bc": TD3BC, "cql": CQL, "iql": IQL}
ACTOR_KINDS = {"bc": Actor, "td3bc": Actor, "cql": GaussianActor, "iql": Actor}


def make_agent(cfg: AlgoConfig, obs_dim: int, device: str = "cpu"):
    return AGENTS[cfg.name](cfg, obs_dim, device)
