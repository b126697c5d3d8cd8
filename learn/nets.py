"""Networks: deterministic actor (BC, TD3+BC, IQL), tanh-Gaussian actor (CQL), state value (IQL), and twin critics as
ONE ensemble module.

Every network is an MLP (ReLU hidden layers, a linear output layer) and runs through `mlp_apply`: one autograd node
per network call with a hand-written backward, instead of a node per op. Under bf16 autocast the hidden layers run
in bf16 (weights cast once per call) and the output layer in fp32 (Q targets and actions need the digits: bf16 keeps
~3 significant digits, about one step's reward at Q ~ 30). On CPU each hidden layer is one oneDNN matmul with bias
and ReLU fused (`mkldnn._linear_pointwise`); elsewhere addmm + relu_. Ensemble members (the twin critics) share
their input and run as separate 2-D matmuls: on CPU the activations of a 7936-row CQL pass are as costly to read and
write as the matmuls, so the code avoids every extra pass over them (baddbmm's bias copy, a separate ReLU, a
(n, B, hidden) float32 copy before the output layer and its cast back in the backward).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def trunk(sizes: list[int]) -> nn.Sequential:
    net = mlp(sizes)
    net.append(nn.ReLU())
    return net


def _fused_ok(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and torch.backends.mkldnn.is_available()


def _linear_relu(x: torch.Tensor, w_oi: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """relu(x @ w_oi.T + b), w_oi (out, in): one matmul with fused bias and ReLU on CPU."""
    if _fused_ok(x):
        return torch.ops.mkldnn._linear_pointwise(x, w_oi, b, "relu", [], "")
    return torch.addmm(b, x, w_oi.t()).relu_()


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    dev = x.device.type
    if torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    return x.dtype


#: rows from which an ensemble runs member by member with fused matmul+bias+ReLU kernels (CQL's critic pass over
#: all sampled actions, 7936 rows at batch 256); below it one batched matmul for all members costs fewer kernel calls
MEMBERWISE_ROWS = 2048


def _members_forward(x, params, n, ensemble, dtype, keep):
    """Member by member, 2-D: hidden layers via _linear_relu, output layer in fp32. Returns (n, B, out)."""
    xc = x.to(dtype).contiguous()
    outs, saved = [], []
    n_layers = len(params) // 2
    for i in range(n):
        a, acts, ws = xc, [], []
        for k in range(n_layers):
            w, b = params[2 * k], params[2 * k + 1]
            if ensemble:                       # stored (n, in, out), (n, 1, out): nn.Linear orientation
                w, b = w[i].t(), b[i, 0]
            if k < n_layers - 1:
                w = w.to(dtype).contiguous()
                a = _linear_relu(a, w, b.to(dtype))
                acts.append(a)
                ws.append(w)
            else:
                w_out, af = w.float(), a.float()
                outs.append(torch.addmm(b.float(), af, w_out.t()))
        if keep:
            saved.append((acts, ws, w_out, af))
    return torch.stack(outs), (xc, saved)


def _members_backward(ctx, g_out, need_x, need_p):
    """Backward of _members_forward: per member and layer a ReLU mask, weight- and input-gradient matmuls and a bias
    sum, all in the compute dtype; weight gradients only where asked for."""
    xc, saved = ctx.saved_state
    n, ensemble = ctx.n, ctx.ensemble
    grads: list = [None] * len(need_p)
    if ensemble:
        for k, (shape, dt) in enumerate(ctx.shapes):
            if need_p[k]:
                grads[k] = torch.zeros(shape, dtype=dt, device=g_out.device)

    def put(k: int, g: torch.Tensor, i: int) -> None:   # g in nn.Linear orientation: (out, in) or (out,)
        if not ensemble:
            grads[k] = g.to(torch.float32)
        elif g.dim() == 2:
            grads[k][i].copy_(g.t())
        else:
            grads[k][i, 0].copy_(g)

    gx = None
    last = len(need_p) // 2 - 1
    for i in range(n):
        acts, ws, w_out, af = saved[i]
        g, a = g_out[i], acts[-1]                         # (B, out) fp32, (B, hidden)
        if need_p[2 * last]:
            put(2 * last, g.t().mm(af), i)
        if need_p[2 * last + 1]:
            put(2 * last + 1, g.sum(0), i)
        gc, wc = g.to(a.dtype), w_out.to(a.dtype)
        ga = gc * wc if wc.shape[0] == 1 else gc.mm(wc)  # (B, hidden): an outer product for one output
        for k in range(last - 1, -1, -1):
            gz = torch.ops.aten.threshold_backward(ga, acts[k], 0)
            if need_p[2 * k]:
                put(2 * k, gz.t().mm(acts[k - 1] if k > 0 else xc), i)
            if need_p[2 * k + 1]:
                put(2 * k + 1, gz.sum(0), i)
            if k > 0 or need_x:
                ga = gz.mm(ws[k])
        if need_x:
            gx = ga if gx is None else gx + ga
    return gx, grads


def _batched_forward(x, params, n, dtype, keep):
    """All ensemble members at once: (n, B, .) activations, one baddbmm per layer. Returns (n, B, out)."""
    xc = x.to(dtype)
    a = xc.unsqueeze(0).expand(n, *xc.shape)
    acts, ws = [], []
    n_layers = len(params) // 2
    for k in range(n_layers - 1):
        w, b = params[2 * k][:n].to(dtype), params[2 * k + 1][:n].to(dtype)
        a = torch.baddbmm(b, a, w).relu_()
        acts.append(a)
        ws.append(w)
    af = a.float()
    w_out = params[-2][:n].float()
    out = torch.baddbmm(params[-1][:n].float(), af, w_out)
    return out, ((xc, acts, ws, af, w_out) if keep else None)


def _batched_backward(ctx, g_out, need_x, need_p):
    xc, acts, ws, af, w_out = ctx.saved_state
    n = ctx.n
    grads: list = [None] * len(need_p)

    def put(k: int, g: torch.Tensor) -> None:           # g (n, ., .) in the stored orientation
        shape, dt = ctx.shapes[k]
        if shape[0] == n:
            grads[k] = g.to(dt)
        else:
            grads[k] = torch.zeros(shape, dtype=dt, device=g.device)
            grads[k][:n].copy_(g)

    last = len(need_p) // 2 - 1
    if need_p[2 * last]:
        put(2 * last, torch.bmm(af.transpose(1, 2), g_out))
    if need_p[2 * last + 1]:
        put(2 * last + 1, g_out.sum(1, keepdim=True))
    dtype = acts[-1].dtype
    if w_out.shape[-1] == 1:                             # an outer product, in the compute dtype
        ga = g_out.to(dtype) * w_out.transpose(1, 2).to(dtype)
    else:
        ga = torch.bmm(g_out.to(dtype), w_out.transpose(1, 2).to(dtype))
    gx = None
    for k in range(last - 1, -1, -1):
        gz = torch.ops.aten.threshold_backward(ga, acts[k], 0)
        if need_p[2 * k]:
            prev = acts[k - 1] if k > 0 else xc.unsqueeze(0).expand(n, *xc.shape)
            put(2 * k, torch.bmm(prev.transpose(1, 2), gz))
        if need_p[2 * k + 1]:
            put(2 * k + 1, gz.sum(1, keepdim=True))
        if k > 0 or need_x:
            ga = torch.bmm(gz, ws[k].transpose(1, 2))
    if need_x:
        gx = ga.sum(0)
    return gx, grads


class _MLP(torch.autograd.Function):
    """An MLP call as one autograd node with its backward written out (see the module doc)."""

    @staticmethod
    def forward(ctx, x, n, ensemble, dtype, batched, *params):
        with torch.autocast(x.device.type, enabled=False):
            if batched:
                out, ctx.saved_state = _batched_forward(x, params, n, dtype, keep=True)
            else:
                out, ctx.saved_state = _members_forward(x, params, n, ensemble, dtype, keep=True)
        ctx.n, ctx.ensemble, ctx.batched, ctx.x_dtype = n, ensemble, batched, x.dtype
        ctx.shapes = [(p.shape, p.dtype) for p in params]
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_out):
        need = ctx.needs_input_grad
        need_x, need_p = need[0], need[5:]
        g_out = g_out.contiguous()
        with torch.autocast(g_out.device.type, enabled=False):   # a backward inside autocast would recast
            if ctx.batched:
                gx, grads = _batched_backward(ctx, g_out, need_x, need_p)
            else:
                gx, grads = _members_backward(ctx, g_out, need_x, need_p)
        ctx.saved_state = None
        return (None if gx is None else gx.to(ctx.x_dtype), None, None, None, None, *grads)


def mlp_apply(x: torch.Tensor, params: list[torch.Tensor], n: int = 1, ensemble: bool = False) -> torch.Tensor:
    """An MLP (ReLU between layers, none after the last) given its flat [weight, bias, ...] parameters.

    ensemble=False: nn.Linear weights (out, in), bias (out,); returns (B, out).
    ensemble=True: weights (n_all, in, out), bias (n_all, 1, out), the first `n` members run on the same x;
    returns (n, B, out). Hidden layers run in the autocast dtype if autocast is on, the output layer in fp32."""
    dtype = _compute_dtype(x)
    if not ensemble:
        n = 1
    batched = ensemble and x.shape[0] < MEMBERWISE_ROWS
    if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
        out = _MLP.apply(x, n, ensemble, dtype, batched, *params)
    else:
        with torch.autocast(x.device.type, enabled=False):
            out = (_batched_forward(x, params, n, dtype, False) if batched else
                   _members_forward(x, params, n, ensemble, dtype, False))[0]
    return out if ensemble else out[0]


def _params(trunk_: nn.Sequential, head: nn.Linear) -> list[torch.Tensor]:
    return [t for m in (*trunk_, head) if isinstance(m, nn.Linear) for t in (m.weight, m.bias)]


class Actor(nn.Module):
    """Deterministic policy: features -> tanh action in [-1, 1]^2."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.trunk = trunk([obs_dim, *hidden])
        self.head = nn.Linear(hidden[-1], act_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(mlp_apply(obs, _params(self.trunk, self.head)))

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        return self(obs)


class GaussianActor(nn.Module):
    """Tanh-squashed Gaussian policy (SAC/CQL). act() is the deterministic mean action."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.trunk = trunk([obs_dim, *hidden])
        self.head = nn.Linear(hidden[-1], 2 * act_dim)

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = mlp_apply(obs, _params(self.trunk, self.head)).chunk(2, dim=-1)
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

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dist_params(obs)[0])

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        return self(obs)


class EnsembleLinear(nn.Module):
    """n members' weights of one layer: weight (n, in, out), bias (n, 1, out)."""

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


class EnsembleCritic(nn.Module):
    """n Q-networks evaluated together: q(obs, action) -> (n, B), one fused MLP call (see `mlp_apply`)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], n: int = 2):
        super().__init__()
        self.n = n
        sizes = [obs_dim + act_dim, *hidden, 1]
        self.layers = nn.ModuleList(EnsembleLinear(n, sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1))

    def forward(self, obs: torch.Tensor, action: torch.Tensor, members: int | None = None) -> torch.Tensor:
        """Q of every member (or of the first `members`), shape (n, B)."""
        x = torch.cat([obs, action], dim=-1)
        params = [t for layer in self.layers for t in (layer.weight, layer.bias)]
        return mlp_apply(x, params, members or self.n, ensemble=True).squeeze(-1)


class ValueNet(nn.Module):
    """State value V(obs) -> (B,), for IQL's expectile regression."""

    def __init__(self, obs_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.trunk = trunk([obs_dim, *hidden])
        self.head = nn.Linear(hidden[-1], 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return mlp_apply(obs, _params(self.trunk, self.head)).squeeze(-1)
