"""Small float64 models with hand-written reference losses for the Hessian tests."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from recurrent_params import RealImag

DT = torch.float64


def mse(out, target):
    return 0.5 * ((out - target) ** 2).mean()


class TinyComplexRNN(nn.Module):
    """``h_t = lam * h_{t-1} + B x_t``, ``y_t = Re(sum C h_t)`` with a plain complex ``lam``."""

    def __init__(self, n: int = 3, *, parametrized_c: bool = False):
        super().__init__()
        mag = torch.linspace(0.5, 0.9, n, dtype=DT)
        phase = torch.linspace(0.3, 1.2, n, dtype=DT)
        self.lam = nn.Parameter(torch.polar(mag, phase))  # complex128
        self.B = nn.Parameter(torch.randn(n, dtype=DT))
        self.C = nn.Parameter(torch.randn(n, dtype=torch.complex128))
        if parametrized_c:
            parametrize.register_parametrization(self, "C", RealImag())

    def forward(self, x):  # x (batch, length)
        h = torch.zeros(x.shape[0], self.lam.shape[0], dtype=self.lam.dtype)  # (B, n)
        ys = []
        for xt in x.unbind(1):
            h = self.lam * h + self.B * xt[:, None]
            ys.append((self.C * h).real.sum(-1))
        return torch.stack(ys, 1)  # (B, L)


def complex_rnn_reference(model: TinyComplexRNN, x, y):
    """The same loss written in real arithmetic over the flat vector of the operator's order.

    Order: lam (n, 2) [re, im interleaved], B (n,), C as (n, 2) interleaved or, when C is
    parametrized by RealImag, original0 (re, n) then original1 (im, n).
    """
    n = model.lam.shape[0]
    parametrized = parametrize.is_parametrized(model, "C")

    def f(theta):
        lam = theta[: 2 * n].reshape(n, 2)
        b = theta[2 * n : 3 * n]
        if parametrized:
            c_re, c_im = theta[3 * n : 4 * n], theta[4 * n : 5 * n]
        else:
            c = theta[3 * n : 5 * n].reshape(n, 2)
            c_re, c_im = c[:, 0], c[:, 1]
        hr = torch.zeros(x.shape[0], n, dtype=DT)
        hi = torch.zeros(x.shape[0], n, dtype=DT)
        outs = []
        for xt in x.unbind(1):
            hr, hi = lam[:, 0] * hr - lam[:, 1] * hi + b * xt[:, None], \
                lam[:, 0] * hi + lam[:, 1] * hr
            outs.append((c_re * hr - c_im * hi).sum(-1))
        return mse(torch.stack(outs, 1), y)

    return f


def mlp():
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(DT)


class Quadratic(nn.Module):
    """``forward() = theta``; with ``loss = 0.5 theta^T A theta`` the Hessian is exactly A."""

    def __init__(self, a: torch.Tensor):
        super().__init__()
        self.theta = nn.Parameter(torch.randn(a.shape[0], dtype=a.dtype))
        self.register_buffer("A", a)

    def forward(self, dummy):
        return self.theta

    def loss(self, out, target):
        return 0.5 * out @ self.A @ out


def quadratic(a: torch.Tensor):
    """``(model, loss_fn, batch)`` whose Hessian is ``a``."""
    model = Quadratic(a)
    return model, model.loss, (torch.zeros((), dtype=a.dtype), None)


def spd_with_spectrum(values: torch.Tensor, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(values), len(values), dtype=DT, generator=g))
    return (q * values) @ q.T
