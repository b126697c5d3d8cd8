"""Networks: deterministic actor (BC, TD3+BC, IQL), tanh-Gaussian actor (CQL), state value (IQL), and twin critics as
ONE ensemble module.

The ensemble keeps both critics' weights in (E, in, out) tensors and runs them with one batched matmul (baddbmm),
so a twin-critic pass costs one kernel per layer instead of two separate networks' worth of small kernels.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
EDGE = 0.999   # |action| at which a data action on the box's edge is scored by GaussianActor.log_prob


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def fp32(layer, x: torch.Tensor) -> torch.Tensor:
    """Run an output layer in float32 even under bf16 autocast: Q targets and actions need the precision
    (bf16 keeps ~3 significant digits, about the size of one step's reward at Q ~ 30)."""
    with torch.autocast(x.device.type, enabled=False):
        return layer(x.float())


def trunk(sizes: list[int]) -> nn.Sequential:
    net = mlp(sizes)
    net.append(nn.ReLU())
    return net


class Actor(nn.Module):
    """Deterministic policy: features -> tanh action in [-1, 1]^2."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.trunk = trunk([obs_dim, *hidden])
        self.head = nn.Linear(hidden[-1], act_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(fp32(self.head, self.trunk(obs)))

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        return self(obs)


class GaussianActor(nn.Module):
    """Tanh-squashed Gaussian policy (SAC/CQL). act() is the deterministic mean action E[tanh(u)]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.trunk = trunk([obs_dim, *hidden])
        self.head = nn.Linear(hidden[-1], 2 * act_dim)

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = fp32(self.head, self.trunk(obs)).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n reparameterized actions per state: actions (B, n, A) and log-probs (B, n)."""
        mean, log_std = self.dist_params(obs)
        std = log_std.exp()
        eps = torch.randn(obs.shape[0], n, mean.shape[-1], dtype=mean.dtype, device=mean.device)
        u = mean.unsqueeze(1) + std.unsqueeze(1) * eps
        a = torch.tanh(u)
        # log N(u) - log|d tanh/du|, the latter written stably as 2(log2 - u - softplus(-2u))
        logp = (-0.5 * eps.pow(2) - log_std.unsqueeze(1) - 0.5 * math.log(2 * math.pi)).sum(-1)
        logp = logp - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
        return a, logp

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(action | obs) of given actions (B, A) -> (B,); actions on the box's edge (a keyboard's full lock,
        a clipped noisy action) are read as +-EDGE, where the squashed density is finite."""
        mean, log_std = self.dist_params(obs)
        a = action.clamp(-EDGE, EDGE)
        u = torch.atanh(a)
        logp = (-0.5 * ((u - mean) / log_std.exp()).pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        return logp - torch.log1p(-a.pow(2)).sum(-1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """The policy's mean action E[tanh(u)], u ~ N(mean, std): deterministic (Gauss-Hermite quadrature), and the
        action the data's average points to. Not tanh(mean): where the data sit on the box's edge (full lock, full
        throttle, clipped noise) the fitted std in u is wide and tanh(mean) lands far from what the policy does."""
        mean, log_std = self.dist_params(obs)
        x, w = _gauss_hermite(mean.device)
        u = mean.unsqueeze(-1) + log_std.exp().unsqueeze(-1) * x      # (..., A, nodes)
        return (torch.tanh(u) * w).sum(-1)

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        return self(obs)


_GH_NODES = 8


def _gauss_hermite(device) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights of E[f(z)], z ~ N(0, 1), exact for polynomials up to degree 15."""
    import numpy as np
    x, w = np.polynomial.hermite.hermgauss(_GH_NODES)
    return (torch.tensor(x * math.sqrt(2), dtype=torch.float32, device=device),
            torch.tensor(w / w.sum(), dtype=torch.float32, device=device))


class EnsembleLinear(nn.Module):
    def __init__(self, n: int, in_dim: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(n, 1, out_dim))
        bound = 1 / math.sqrt(in_dim)  # nn.Linear's default init, per member
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, n: int | None = None) -> torch.Tensor:  # x: (n, B, in), first n members
        if n is None or n == self.weight.shape[0]:
            return torch.baddbmm(self.bias, x, self.weight)
        return torch.baddbmm(self.bias[:n], x, self.weight[:n])


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over the features of each member, with each member's own gain and bias."""

    def __init__(self, n: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n, 1, dim))
        self.bias = nn.Parameter(torch.zeros(n, 1, dim))

    def forward(self, x: torch.Tensor, n: int | None = None) -> torch.Tensor:  # x: (n, B, dim), first n members
        w, b = (self.weight, self.bias) if n is None or n == self.weight.shape[0] else (self.weight[:n], self.bias[:n])
        return torch.addcmul(b, F.layer_norm(x, x.shape[-1:]), w)


class EnsembleCritic(nn.Module):
    """n Q-networks evaluated together: q(obs, action) -> (n, B). With layernorm, every hidden layer is normalised
    before its ReLU (as ReBRAC's and RLPD's critics): Q can then only grow through the output layer's weights, which
    bounds how far it extrapolates away from the data (Ball et al. 2023)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], n: int = 2, layernorm: bool = False):
        super().__init__()
        self.n = n
        sizes = [obs_dim + act_dim, *hidden, 1]
        self.layers = nn.ModuleList(EnsembleLinear(n, sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1))
        self.norms = nn.ModuleList(EnsembleLayerNorm(n, h) for h in hidden) if layernorm else None

    def forward(self, obs: torch.Tensor, action: torch.Tensor, members: int | None = None) -> torch.Tensor:
        """Q of every member (or of the first `members`): action (B, A) -> (n, B), or K actions per state
        (B, K, A) -> (n, B, K). (Computing the first layer's observation part once per state instead of K times
        measured slower: that layer is bound by writing its (n, B*K, hidden) output, not by its FLOPs.)"""
        n = members or self.n
        lead = action.shape[:-1]
        if action.dim() == 3:
            obs = obs.unsqueeze(1).expand(*lead, obs.shape[-1])
        x = torch.cat([obs, action], dim=-1).reshape(-1, obs.shape[-1] + action.shape[-1])
        x = x.unsqueeze(0).expand(n, *x.shape)
        for i, layer in enumerate(self.layers[:-1]):
            x = layer(x, n)
            if self.norms is not None:
                x = self.norms[i](x, n)
            x = F.relu_(x)   # in place: one less (n, B, hidden) buffer per layer
        return fp32(lambda h: self.layers[-1](h, n), x).view(n, *lead)


class ValueNet(nn.Module):
    """State value V(obs) -> (B,), for IQL's expectile regression."""

    def __init__(self, obs_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.trunk = trunk([obs_dim, *hidden])
        self.head = nn.Linear(hidden[-1], 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return fp32(self.head, self.trunk(obs)).squeeze(-1)
