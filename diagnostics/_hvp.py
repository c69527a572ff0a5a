"""Hessian-vector products of a scalar function of a flat vector, the backend chosen on first use.

The engine behind :class:`~diagnostics.HessianOperator`: forward-over-reverse (``jvp`` of
``grad``), reverse-over-reverse (``vjp`` of ``grad``, the gradient's graph built once and
kept) or a plain ``torch.autograd`` double backward, vmapped or looped over a block of vectors.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

__all__ = ["BACKENDS", "HVPEngine"]

BACKENDS = ("auto", "forward-over-reverse", "reverse-over-reverse", "autograd")


@dataclass
class _Backend:
    name: str
    vmap: bool = True
    fallback_reason: list[str] = field(default_factory=list)


class HVPEngine:
    """Products ``rows (k, P) -> rows of H v`` of ``loss_of`` at ``theta``.

    Args:
        loss_of: ``theta (P,) -> scalar``, differentiable by :mod:`torch.func`.
        theta: the point, ``(P,)``.
        backend: one of :data:`BACKENDS`.
    """

    def __init__(self, loss_of: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor,
                 backend: str = "auto") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self._loss_of = loss_of
        self._theta = theta
        self._backend = _Backend(backend)
        self.resolved = False
        self._vjp_fn = None  # cached reverse-mode linearisation of the gradient

    @property
    def name(self) -> str:
        """The backend in use (resolved after the first product when ``"auto"``)."""
        return self._backend.name

    @property
    def vmap(self) -> bool:
        """Whether blocks of vectors are vmapped (else looped one vector at a time)."""
        return self._backend.vmap

    def __call__(self, vs: torch.Tensor) -> torch.Tensor:
        """Products of a block of row vectors ``(k, P)``."""
        if self.resolved:
            return self._apply(vs, self._backend)
        return self._resolve(vs)

    def _single(self, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
        theta = self._theta
        if name == "forward-over-reverse":
            grad_fn = torch.func.grad(self._loss_of)

            def hvp(v):
                return torch.func.jvp(grad_fn, (theta,), (v,))[1]

            return hvp
        if name == "reverse-over-reverse":
            # the graph of the gradient is built once and kept: each product is then one
            # backward pass through it (no new forward), like a retained double-backward graph
            if self._vjp_fn is None:
                _, self._vjp_fn = torch.func.vjp(torch.func.grad(self._loss_of), theta)
            vjp_fn = self._vjp_fn

            def hvp(v):
                return vjp_fn(v)[0]

            return hvp

        def hvp(v):  # plain autograd double backward
            with torch.enable_grad():
                th = theta.detach().requires_grad_(True)
                (g,) = torch.autograd.grad(self._loss_of(th), th, create_graph=True)
                (hv,) = torch.autograd.grad(g, th, grad_outputs=v)
            return hv.detach()

        return hvp

    def _apply(self, vs: torch.Tensor, backend: _Backend) -> torch.Tensor:
        hvp = self._single(backend.name)
        if backend.vmap and backend.name != "autograd" and vs.shape[0] > 1:
            return torch.func.vmap(hvp)(vs)
        return torch.stack([hvp(v) for v in vs])  # one vector: vmap only adds overhead

    def _resolve(self, vs: torch.Tensor) -> torch.Tensor:
        """First product: pick the backend.

        ``"auto"`` times forward-over-reverse (vmapped) and reverse-over-reverse (vmapped and
        looped over the cached gradient graph) on this first block and keeps the fastest
        (their results agree to round-off); if none works, it falls back, with a warning, to
        plain autograd.
        """
        errors: list[str] = []

        def attempt(cand: _Backend):
            try:
                start = time.perf_counter()
                out = self._apply(vs, cand)
                return time.perf_counter() - start, out
            except (RuntimeError, NotImplementedError, TypeError) as exc:
                errors.append(f"{cand.name} (vmap={cand.vmap}): {exc}".splitlines()[0])
                return None

        if self._backend.name == "auto":
            # the cached reverse-mode graph is often fastest looped, not vmapped: time both
            fast = [_Backend("forward-over-reverse"), _Backend("reverse-over-reverse"),
                    _Backend("reverse-over-reverse", False)]
            if vs.shape[0] == 1:  # a single vector is never vmapped
                fast = fast[:2]
            slow = [_Backend("forward-over-reverse", False), _Backend("autograd", False)]
        else:
            fast = [_Backend(self._backend.name, self._backend.name != "autograd")]
            slow = [_Backend(self._backend.name, False)] if fast[0].vmap else []
        timed = [(r[0], i, c, r[1]) for i, c in enumerate(fast) if (r := attempt(c))]
        if len(timed) > 1 and timed[0][0] > min(t[0] for t in timed[1:]):
            # the first candidate also paid the warm-up: time it once more before deciding
            again = attempt(timed[0][2])
            if again is not None:
                timed[0] = (again[0], *timed[0][1:])
        if timed:
            _, _, cand, out = min(timed, key=lambda item: item[:2])
            self._backend, self.resolved = cand, True
            return out
        for cand in slow:
            result = attempt(cand)
            if result is None:
                continue
            warnings.warn(
                "HessianOperator fell back to the slower HVP backend "
                f"{cand.name!r} (one vector at a time) because: " + "; ".join(errors),
                RuntimeWarning,
                stacklevel=4,
            )
            cand.fallback_reason = list(errors)
            self._backend, self.resolved = cand, True
            return result[1]
        raise RuntimeError("no Hessian-vector product backend works: " + "; ".join(errors))
