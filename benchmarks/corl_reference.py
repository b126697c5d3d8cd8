"""CORL-style single-file learners (tinkoff-ai/CORL, algorithms/offline/{td3_bc,cql,iql}.py), the reference
`learner_speed.py` measures against.

Kept as CORL writes them: a ReplayBuffer of per-field torch tensors indexed with numpy random indices, one
nn.Sequential per network, separate critics (each with its own Adam where CORL has it), default torch.optim.Adam
(on CPU: the per-parameter loop), `target.data.copy_((1 - tau) * target + tau * source)` soft updates, `.item()`
logging every update, and for CQL the actor re-run on repeated observations and one critic call per action set.
Network sizes come from our config (CORL's own CQL uses 3 hidden layers; here both sides use ours) and CORL's
max_action is 1. Only the learning step is reproduced (no env, no wandb).
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn
from torch.distributions import Normal, TanhTransform, TransformedDistribution
from torch.nn import functional as F
from torch.optim.lr_scheduler import CosineAnnealingLR


def soft_update(target: nn.Module, source: nn.Module, tau: float):
    for target_param, source_param in zip(target.parameters(), source.parameters()):
        target_param.data.copy_((1 - tau) * target_param.data + tau * source_param.data)


class ReplayBuffer:
    def __init__(self, obs, act, rew, next_obs, done, device: str = "cpu"):
        t = lambda x: torch.tensor(x, dtype=torch.float32, device=device)  # noqa: E731
        self._states, self._actions = t(obs), t(act)
        self._rewards, self._next_states, self._dones = t(rew[..., None]), t(next_obs), t(done[..., None])
        self._size = len(obs)

    def sample(self, batch_size: int):
        indices = np.random.randint(0, self._size, size=batch_size)
        return [self._states[indices], self._actions[indices], self._rewards[indices], self._next_states[indices],
                self._dones[indices]]


def mlp(dims, output_activation=None, squeeze=False) -> nn.Sequential:
    layers = []
    for i in range(len(dims) - 2):
        layers += [nn.Linear(dims[i], dims[i + 1]), nn.ReLU()]
    layers.append(nn.Linear(dims[-2], dims[-1]))
    if output_activation is not None:
        layers.append(output_activation())
    if squeeze:
        layers.append(Squeeze())
    return nn.Sequential(*layers)


class Squeeze(nn.Module):
    def forward(self, x):
        return x.squeeze(dim=-1)


# --- td3_bc.py ------------------------------------------------------------------------------------------------------
class TD3Actor(nn.Module):
    def __init__(self, state_dim, action_dim, hidden):
        super().__init__()
        self.net = mlp([state_dim, *hidden, action_dim], nn.Tanh)
        self.max_action = 1.0

    def forward(self, state):
        return self.max_action * self.net(state)


class TD3Critic(nn.Module):
    def __init__(self, state_dim, action_dim, hidden):
        super().__init__()
        self.net = mlp([state_dim + action_dim, *hidden, 1])

    def forward(self, state, action):
        return self.net(torch.cat([state, action], 1))


class TD3BC:
    def __init__(self, c, state_dim: int, action_dim: int = 2):
        self.actor = TD3Actor(state_dim, action_dim, c.hidden)
        self.actor_target = copy.deepcopy(self.actor)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=c.actor_lr)
        self.critic_1, self.critic_2 = TD3Critic(state_dim, action_dim, c.hidden), TD3Critic(state_dim, action_dim,
                                                                                            c.hidden)
        self.critic_1_target, self.critic_2_target = copy.deepcopy(self.critic_1), copy.deepcopy(self.critic_2)
        self.critic_1_optimizer = torch.optim.Adam(self.critic_1.parameters(), lr=c.critic_lr)
        self.critic_2_optimizer = torch.optim.Adam(self.critic_2.parameters(), lr=c.critic_lr)
        self.max_action, self.discount, self.tau = 1.0, c.gamma, c.tau
        self.policy_noise, self.noise_clip, self.policy_freq, self.alpha = c.policy_noise, c.noise_clip, \
            c.policy_freq, c.alpha
        self.total_it = 0

    def train(self, batch):
        log_dict = {}
        self.total_it += 1
        state, action, reward, next_state, done = batch
        not_done = 1 - done
        with torch.no_grad():
            noise = (torch.randn_like(action) * self.policy_noise).clamp(-self.noise_clip, self.noise_clip)
            next_action = (self.actor_target(next_state) + noise).clamp(-self.max_action, self.max_action)
            target_q1 = self.critic_1_target(next_state, next_action)
            target_q2 = self.critic_2_target(next_state, next_action)
            target_q = torch.min(target_q1, target_q2)
            target_q = reward + not_done * self.discount * target_q
        current_q1 = self.critic_1(state, action)
        current_q2 = self.critic_2(state, action)
        critic_loss = F.mse_loss(current_q1, target_q) + F.mse_loss(current_q2, target_q)
        log_dict["critic_loss"] = critic_loss.item()
        self.critic_1_optimizer.zero_grad()
        self.critic_2_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_1_optimizer.step()
        self.critic_2_optimizer.step()
        if self.total_it % self.policy_freq == 0:
            pi = self.actor(state)
            q = self.critic_1(state, pi)
            lmbda = self.alpha / q.abs().mean().detach()
            actor_loss = -lmbda * q.mean() + F.mse_loss(pi, action)
            log_dict["actor_loss"] = actor_loss.item()
            self.actor_optimizer.zero_grad()
            actor_loss.backward()
            self.actor_optimizer.step()
            soft_update(self.critic_1_target, self.critic_1, self.tau)
            soft_update(self.critic_2_target, self.critic_2, self.tau)
            soft_update(self.actor_target, self.actor, self.tau)
        return log_dict


# --- cql.py ---------------------------------------------------------------------------------------------------------
def extend_and_repeat(tensor: torch.Tensor, dim: int, repeat: int) -> torch.Tensor:
    return tensor.unsqueeze(dim).repeat_interleave(repeat, dim=dim)


class ReparameterizedTanhGaussian(nn.Module):
    def __init__(self, log_std_min: float = -20.0, log_std_max: float = 2.0):
        super().__init__()
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, mean, log_std, deterministic: bool = False):
        log_std = torch.clamp(log_std, self.log_std_min, self.log_std_max)
        std = torch.exp(log_std)
        action_distribution = TransformedDistribution(Normal(mean, std), TanhTransform(cache_size=1))
        action_sample = torch.tanh(mean) if deterministic else action_distribution.rsample()
        log_prob = torch.sum(action_distribution.log_prob(action_sample), dim=-1)
        return action_sample, log_prob


class Scalar(nn.Module):
    def __init__(self, init_value: float):
        super().__init__()
        self.constant = nn.Parameter(torch.tensor(init_value, dtype=torch.float32))

    def forward(self):
        return self.constant


class TanhGaussianPolicy(nn.Module):
    def __init__(self, state_dim, action_dim, hidden):
        super().__init__()
        self.action_dim, self.max_action = action_dim, 1.0
        self.base_network = mlp([state_dim, *hidden, 2 * action_dim])
        nn.init.xavier_uniform_(self.base_network[-1].weight, gain=1e-2)
        nn.init.constant_(self.base_network[-1].bias, 0.0)
        self.log_std_multiplier, self.log_std_offset = Scalar(1.0), Scalar(-1.0)
        self.tanh_gaussian = ReparameterizedTanhGaussian()

    def forward(self, observations, deterministic: bool = False, repeat=None):
        if repeat is not None:
            observations = extend_and_repeat(observations, 1, repeat)
        base_network_output = self.base_network(observations)
        mean, log_std = torch.split(base_network_output, self.action_dim, dim=-1)
        log_std = self.log_std_multiplier() * log_std + self.log_std_offset()
        actions, log_probs = self.tanh_gaussian(mean, log_std, deterministic)
        return self.max_action * actions, log_probs


class FullyConnectedQFunction(nn.Module):
    def __init__(self, observation_dim, action_dim, hidden):
        super().__init__()
        self.network = mlp([observation_dim + action_dim, *hidden, 1])
        for m in self.network[:-1]:     # CORL's orthogonal_init=True
            if isinstance(m, nn.Linear):
                nn.init.orthogonal_(m.weight, gain=np.sqrt(2))
                nn.init.constant_(m.bias, 0.0)
        nn.init.orthogonal_(self.network[-1].weight, gain=1e-2)
        nn.init.constant_(self.network[-1].bias, 0.0)

    def forward(self, observations, actions):
        multiple_actions = False
        batch_size = observations.shape[0]
        if actions.ndim == 3 and observations.ndim == 2:
            multiple_actions = True
            observations = extend_and_repeat(observations, 1, actions.shape[1]).reshape(-1, observations.shape[-1])
            actions = actions.reshape(-1, actions.shape[-1])
        input_tensor = torch.cat([observations, actions], dim=-1)
        q_values = torch.squeeze(self.network(input_tensor), dim=-1)
        if multiple_actions:
            q_values = q_values.reshape(batch_size, -1)
        return q_values


class ContinuousCQL:
    """CORL defaults: automatic entropy tuning, importance sampling, no Lagrange, no max-target backup, no backup
    entropy, cql_temp 1, unclipped differences; target update every step."""

    def __init__(self, c, state_dim: int, action_dim: int = 2):
        self.critic_1 = FullyConnectedQFunction(state_dim, action_dim, c.hidden)
        self.critic_2 = FullyConnectedQFunction(state_dim, action_dim, c.hidden)
        self.target_critic_1, self.target_critic_2 = copy.deepcopy(self.critic_1), copy.deepcopy(self.critic_2)
        self.actor = TanhGaussianPolicy(state_dim, action_dim, c.hidden)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=c.actor_lr)
        self.critic_1_optimizer = torch.optim.Adam(self.critic_1.parameters(), lr=c.critic_lr)
        self.critic_2_optimizer = torch.optim.Adam(self.critic_2.parameters(), lr=c.critic_lr)
        self.log_alpha = Scalar(0.0)
        self.alpha_optimizer = torch.optim.Adam(self.log_alpha.parameters(), lr=c.actor_lr)
        self.target_entropy = -float(action_dim)
        self.discount, self.soft_target_update_rate = c.gamma, c.tau
        self.cql_n_actions, self.cql_alpha, self.cql_temp = c.cql_n_actions, c.cql_weight, 1.0
        self.cql_clip_diff_min, self.cql_clip_diff_max = -np.inf, np.inf
        self.total_it = 0

    def update_target_network(self, soft_target_update_rate: float):
        soft_update(self.target_critic_1, self.critic_1, soft_target_update_rate)
        soft_update(self.target_critic_2, self.critic_2, soft_target_update_rate)

    def _alpha_and_alpha_loss(self, observations, log_pi):
        alpha_loss = -(self.log_alpha() * (log_pi + self.target_entropy).detach()).mean()
        alpha = self.log_alpha().exp() * 1.0
        return alpha, alpha_loss

    def _policy_loss(self, observations, actions, new_actions, alpha, log_pi):
        q_new_actions = torch.min(self.critic_1(observations, new_actions), self.critic_2(observations, new_actions))
        return (alpha * log_pi - q_new_actions).mean()

    def _q_loss(self, observations, actions, next_observations, rewards, dones, alpha, log_dict):
        q1_predicted = self.critic_1(observations, actions)
        q2_predicted = self.critic_2(observations, actions)
        new_next_actions, next_log_pi = self.actor(next_observations)
        target_q_values = torch.min(self.target_critic_1(next_observations, new_next_actions),
                                    self.target_critic_2(next_observations, new_next_actions))
        target_q_values = target_q_values.unsqueeze(-1)
        td_target = rewards + (1.0 - dones) * self.discount * target_q_values.detach()
        td_target = td_target.squeeze(-1)
        qf1_loss = F.mse_loss(q1_predicted, td_target.detach())
        qf2_loss = F.mse_loss(q2_predicted, td_target.detach())

        batch_size, action_dim = actions.shape[0], actions.shape[-1]
        cql_random_actions = actions.new_empty((batch_size, self.cql_n_actions, action_dim),
                                               requires_grad=False).uniform_(-1, 1)
        cql_current_actions, cql_current_log_pis = self.actor(observations, repeat=self.cql_n_actions)
        cql_next_actions, cql_next_log_pis = self.actor(next_observations, repeat=self.cql_n_actions)
        cql_current_actions, cql_current_log_pis = cql_current_actions.detach(), cql_current_log_pis.detach()
        cql_next_actions, cql_next_log_pis = cql_next_actions.detach(), cql_next_log_pis.detach()

        cql_q1_rand = self.critic_1(observations, cql_random_actions)
        cql_q2_rand = self.critic_2(observations, cql_random_actions)
        cql_q1_current_actions = self.critic_1(observations, cql_current_actions)
        cql_q2_current_actions = self.critic_2(observations, cql_current_actions)
        cql_q1_next_actions = self.critic_1(observations, cql_next_actions)
        cql_q2_next_actions = self.critic_2(observations, cql_next_actions)

        cql_cat_q1 = torch.cat([cql_q1_rand, torch.unsqueeze(q1_predicted, 1), cql_q1_next_actions,
                                cql_q1_current_actions], dim=1)
        cql_cat_q2 = torch.cat([cql_q2_rand, torch.unsqueeze(q2_predicted, 1), cql_q2_next_actions,
                                cql_q2_current_actions], dim=1)
        cql_std_q1 = torch.std(cql_cat_q1, dim=1)
        cql_std_q2 = torch.std(cql_cat_q2, dim=1)

        random_density = np.log(0.5 ** action_dim)
        cql_cat_q1 = torch.cat([cql_q1_rand - random_density, cql_q1_next_actions - cql_next_log_pis.detach(),
                                cql_q1_current_actions - cql_current_log_pis.detach()], dim=1)
        cql_cat_q2 = torch.cat([cql_q2_rand - random_density, cql_q2_next_actions - cql_next_log_pis.detach(),
                                cql_q2_current_actions - cql_current_log_pis.detach()], dim=1)
        cql_qf1_ood = torch.logsumexp(cql_cat_q1 / self.cql_temp, dim=1) * self.cql_temp
        cql_qf2_ood = torch.logsumexp(cql_cat_q2 / self.cql_temp, dim=1) * self.cql_temp
        cql_qf1_diff = torch.clamp(cql_qf1_ood - q1_predicted, self.cql_clip_diff_min, self.cql_clip_diff_max).mean()
        cql_qf2_diff = torch.clamp(cql_qf2_ood - q2_predicted, self.cql_clip_diff_min, self.cql_clip_diff_max).mean()
        cql_min_qf1_loss = cql_qf1_diff * self.cql_alpha
        cql_min_qf2_loss = cql_qf2_diff * self.cql_alpha
        alpha_prime_loss = observations.new_tensor(0.0)
        alpha_prime = observations.new_tensor(0.0)
        qf_loss = qf1_loss + qf2_loss + cql_min_qf1_loss + cql_min_qf2_loss

        log_dict.update(dict(qf1_loss=qf1_loss.item(), qf2_loss=qf2_loss.item(), alpha=alpha.item(),
                             average_qf1=q1_predicted.mean().item(), average_qf2=q2_predicted.mean().item(),
                             average_target_q=target_q_values.mean().item()))
        log_dict.update(dict(
            cql_std_q1=cql_std_q1.mean().item(), cql_std_q2=cql_std_q2.mean().item(),
            cql_q1_rand=cql_q1_rand.mean().item(), cql_q2_rand=cql_q2_rand.mean().item(),
            cql_min_qf1_loss=cql_min_qf1_loss.mean().item(), cql_min_qf2_loss=cql_min_qf2_loss.mean().item(),
            cql_qf1_diff=cql_qf1_diff.mean().item(), cql_qf2_diff=cql_qf2_diff.mean().item(),
            cql_q1_current_actions=cql_q1_current_actions.mean().item(),
            cql_q2_current_actions=cql_q2_current_actions.mean().item(),
            cql_q1_next_actions=cql_q1_next_actions.mean().item(),
            cql_q2_next_actions=cql_q2_next_actions.mean().item(),
            alpha_prime_loss=alpha_prime_loss.item(), alpha_prime=alpha_prime.item()))
        return qf_loss, alpha_prime, alpha_prime_loss

    def train(self, batch):
        observations, actions, rewards, next_observations, dones = batch
        self.total_it += 1
        new_actions, log_pi = self.actor(observations)
        alpha, alpha_loss = self._alpha_and_alpha_loss(observations, log_pi)
        policy_loss = self._policy_loss(observations, actions, new_actions, alpha, log_pi)
        log_dict = dict(log_pi=log_pi.mean().item(), policy_loss=policy_loss.item(), alpha_loss=alpha_loss.item(),
                        alpha=alpha.item())
        qf_loss, alpha_prime, alpha_prime_loss = self._q_loss(observations, actions, next_observations, rewards,
                                                              dones, alpha, log_dict)
        self.alpha_optimizer.zero_grad()
        alpha_loss.backward()
        self.alpha_optimizer.step()
        self.actor_optimizer.zero_grad()
        policy_loss.backward()
        self.actor_optimizer.step()
        self.critic_1_optimizer.zero_grad()
        self.critic_2_optimizer.zero_grad()
        qf_loss.backward(retain_graph=True)
        self.critic_1_optimizer.step()
        self.critic_2_optimizer.step()
        self.update_target_network(self.soft_target_update_rate)
        return log_dict


# --- iql.py (iql_deterministic=True: our IQL actor is deterministic) ---------------------------------------------
EXP_ADV_MAX = 100.0


def asymmetric_l2_loss(u: torch.Tensor, tau: float) -> torch.Tensor:
    return torch.mean(torch.abs(tau - (u < 0).float()) * u ** 2)


class DeterministicPolicy(nn.Module):
    def __init__(self, state_dim, act_dim, hidden):
        super().__init__()
        self.net = mlp([state_dim, *hidden, act_dim], nn.Tanh)

    def forward(self, obs):
        return self.net(obs)


class TwinQ(nn.Module):
    def __init__(self, state_dim, action_dim, hidden):
        super().__init__()
        self.q1 = mlp([state_dim + action_dim, *hidden, 1], squeeze=True)
        self.q2 = mlp([state_dim + action_dim, *hidden, 1], squeeze=True)

    def both(self, state, action):
        sa = torch.cat([state, action], 1)
        return self.q1(sa), self.q2(sa)

    def forward(self, state, action):
        return torch.min(*self.both(state, action))


class ImplicitQLearning:
    def __init__(self, c, state_dim: int, action_dim: int = 2, max_steps: int = 1_000_000):
        self.qf = TwinQ(state_dim, action_dim, c.hidden)
        self.q_target = copy.deepcopy(self.qf).requires_grad_(False)
        self.vf = mlp([state_dim, *c.hidden, 1], squeeze=True)
        self.actor = DeterministicPolicy(state_dim, action_dim, c.hidden)
        self.v_optimizer = torch.optim.Adam(self.vf.parameters(), lr=c.critic_lr)
        self.q_optimizer = torch.optim.Adam(self.qf.parameters(), lr=c.critic_lr)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=c.actor_lr)
        self.actor_lr_schedule = CosineAnnealingLR(self.actor_optimizer, max_steps)
        self.iql_tau, self.beta, self.discount, self.tau = c.expectile, c.beta, c.gamma, c.tau
        self.total_it = 0

    def _update_v(self, observations, actions, log_dict):
        with torch.no_grad():
            target_q = self.q_target(observations, actions)
        v = self.vf(observations)
        adv = target_q - v
        v_loss = asymmetric_l2_loss(adv, self.iql_tau)
        log_dict["value_loss"] = v_loss.item()
        self.v_optimizer.zero_grad()
        v_loss.backward()
        self.v_optimizer.step()
        return adv

    def _update_q(self, next_v, observations, actions, rewards, terminals, log_dict):
        targets = rewards + (1.0 - terminals.float()) * self.discount * next_v.detach()
        qs = self.qf.both(observations, actions)
        q_loss = sum(F.mse_loss(q, targets) for q in qs) / len(qs)
        log_dict["q_loss"] = q_loss.item()
        self.q_optimizer.zero_grad()
        q_loss.backward()
        self.q_optimizer.step()
        soft_update(self.q_target, self.qf, self.tau)

    def _update_policy(self, adv, observations, actions, log_dict):
        exp_adv = torch.exp(self.beta * adv.detach()).clamp(max=EXP_ADV_MAX)
        policy_out = self.actor(observations)
        bc_losses = torch.sum((policy_out - actions) ** 2, dim=1)
        policy_loss = torch.mean(exp_adv * bc_losses)
        log_dict["actor_loss"] = policy_loss.item()
        self.actor_optimizer.zero_grad()
        policy_loss.backward()
        self.actor_optimizer.step()
        self.actor_lr_schedule.step()

    def train(self, batch):
        self.total_it += 1
        observations, actions, rewards, next_observations, dones = batch
        log_dict = {}
        with torch.no_grad():
            next_v = self.vf(next_observations)
        adv = self._update_v(observations, actions, log_dict)
        rewards = rewards.squeeze(dim=-1)
        dones = dones.squeeze(dim=-1)
        self._update_q(next_v, observations, actions, rewards, dones, log_dict)
        self._update_policy(adv, observations, actions, log_dict)
        return log_dict


LEARNERS = {"td3bc": TD3BC, "cql": ContinuousCQL, "iql": ImplicitQLearning}


def make(algo: str, cfg, state_dim: int):
    return LEARNERS[algo](cfg, state_dim)


__all__ = ["LEARNERS", "ReplayBuffer", "make", "math"]
