"""Adaptive leaky integrate-and-fire (ALIF) spiking neurons with surrogate gradients."""

from __future__ import annotations

import math

import torch
from torch import nn

from recurrent_params.cells._base import RecurrentCell, all_finite, normal
from recurrent_params.cells.surrogates import Surrogate, make_surrogate

__all__ = ["ALIF"]

#: default membrane decay: a time constant of 20 steps.
_ALPHA = math.exp(-1 / 20)
#: default adaptation decay: a time constant of 200 steps.
_RHO = math.exp(-1 / 200)


def _per_neuron(name: str, value, n: int, low: float, high: float | None,
                closed_low: bool) -> torch.Tensor:
    """A float or a length-``n`` tensor as a float64 ``(n,)`` tensor, checked against its range."""
    t = torch.as_tensor(value, dtype=torch.float64).detach().clone()
    if t.ndim == 0:
        t = t.expand(n).clone()
    if t.shape != (n,):
        raise ValueError(f"ALIF: {name} must be a number or a tensor of shape ({n},), got shape "
                         f"{tuple(t.shape)}")
    ok = torch.isfinite(t) & ((t >= low) if closed_low else (t > low))
    if high is not None:
        ok &= t < high
    if not bool(ok.all()):
        bad = t[~ok][0].item()
        rng = f"[{low:g}, inf)" if high is None else f"({low:g}, {high:g})"
        raise ValueError(f"ALIF: every {name} must lie in {rng}, got {bad!r}")
    return t


class ALIF(RecurrentCell):
    r"""A recurrent layer of adaptive leaky integrate-and-fire neurons (Bellec et al.).

    State $s_t = [v_t, a_t]$ (membrane potential and threshold adaptation, each of size $N$;
    with a refractory period also the refractory counter $r_t$: $s_t = [v_t, a_t, r_t]$).
    The spikes are a function of the state,

    $$ z_t = H(u_t)\,[r_t = 0], \qquad u_t = \frac{v_t - A_t}{\vartheta}, \qquad
       A_t = \vartheta + \beta a_t, $$

    exactly 0 or 1 in the forward pass ($H(u) = [u > 0]$), and one step reads

    $$ v_t = \alpha \odot v_{t-1} + (1 - \alpha) \odot (B x_t + A_{rec} z_{t-1})
             - \vartheta z_{t-1}, \qquad
       a_t = \rho \odot a_{t-1} + (1 - \rho) \odot z_{t-1}, $$

    i.e. leaky integration of the input current with membrane decay $\alpha$, reset by
    subtraction of the baseline threshold $\vartheta$ after a spike, and a threshold that rises
    by $\beta (1-\rho)$ per spike and relaxes with the adaptation decay $\rho$ (the LSNN form of
    Bellec et al. 2018, the neuron the LSC paper pre-trains; $\beta = 0$ gives a plain LIF
    neuron). With a
    refractory period of $n_{ref} \ge 1$ steps, $r_t = n_{ref}$ after a spike and
    $r_t = \max(r_{t-1} - 1, 0)$ otherwise, so a neuron stays silent for $n_{ref}$ steps after
    each spike. The output is $y_t = z_t$ (``d_output = d_hidden``). The recurrent kernel is
    called ``A`` and the input kernel ``B``, as in :class:`DenseRNN` (they are what LSC
    pre-training rescales).

    Gradients: $\partial z/\partial u$ is replaced by the surrogate $\psi(u)$ of
    ``surrogate`` (:mod:`recurrent_params.cells.surrogates`: ``"triangular"``
    $\gamma\max(0, 1 - k|u|)$ or ``"fast_sigmoid"`` $\gamma/(1+k|u|)^2$, with sharpness $k$ and
    dampening $\gamma$), masked during the refractory period. The reset and the adaptation
    keep their gradient (no detached reset). The refractory counter is never differentiated.

    Sequence mode loops over time with autograd (the recurrence is nonlinear: there is no
    scan), running exactly the arithmetic of ``step``, so both modes give bit-identical
    spikes and states; $O(B L N (N + d_{in}))$.

    Initialisation: $B \sim N(0, g_{in}^2/d_{in})$, $A_{rec} \sim N(0, g_{rec}^2/N)$
    (``input_gain``, ``recurrent_gain``); $\alpha$, $\rho$, $\beta$ are buffers (per neuron,
    fixed, moved with the module), not trained.

    Args:
        d_input: input features.
        d_hidden: neurons $N$.
        alpha: membrane decay $\alpha = e^{-\Delta t/\tau_m}$ in (0, 1), a number or ``(N,)``
            (default $e^{-1/20}$: $\tau_m$ = 20 steps).
        rho: adaptation decay $\rho = e^{-\Delta t/\tau_a}$ in (0, 1), a number or ``(N,)``
            (default $e^{-1/200}$).
        beta: adaptation strength $\beta \ge 0$, a number or ``(N,)`` (default 1.8, Bellec
            et al.'s sequential-MNIST value).
        threshold: baseline threshold $\vartheta > 0$ (default 0.01, the value of Bellec et
            al.'s sequential-MNIST LSNN for this $(1-\alpha)$-normalised membrane: $v$ is a
            running mean of the input current, and the surrogate's slope $\psi/\vartheta$
            with $(1-\alpha)\gamma/\vartheta \approx 1.5$ lets activity and gradients cross
            layers; with $\vartheta = 1$ and unit-scale weights, stacks on sparse spike inputs
            were measured silent from the second layer on).
        refractory: refractory period $n_{ref}$ in steps, an int $\ge 0$ (default 0: none).
        surrogate: ``"triangular"`` (default), ``"fast_sigmoid"`` or a
            :class:`~recurrent_params.cells.surrogates.Surrogate`.
        sharpness: $k$ of a surrogate given by name (default 1).
        dampening: $\gamma$ of a surrogate given by name (default 0.3).
        input_gain: $g_{in}$ of the input kernel's initialisation (default 1).
        recurrent_gain: $g_{rec}$ of the recurrent kernel's initialisation (default 1).

    Raises:
        ValueError: for decays outside (0, 1), a negative $\beta$, a non-positive threshold,
            a negative or non-integer refractory period, or non-positive sizes.

    References:
        Bellec et al., "Long short-term memory and learning-to-learn in networks of spiking
        neurons", arXiv 1803.09574 (https://arxiv.org/abs/1803.09574).
        Bellec et al., "A solution to the learning dilemma for recurrent networks of spiking
        neurons" (e-prop), arXiv 1901.09049 (https://arxiv.org/abs/1901.09049).
        Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
        arXiv 2308.12075 (https://arxiv.org/abs/2308.12075).

    Examples:
        >>> import torch
        >>> from recurrent_params import assign_
        >>> cell = ALIF(1, 1, alpha=0.5, rho=0.5, beta=3.0, threshold=1.0)
        >>> assign_(cell, "B", torch.tensor([[4.0]]))
        >>> assign_(cell, "A", torch.tensor([[0.0]]))
        >>> z, s = cell(torch.ones(1, 4, 1))
        >>> # v: 2 > 1 spikes; 1 + 2 - 1 = 2 < 1 + 3 * 0.5; 1 + 2 = 3 > 1 + 3 * 0.25; ...
        >>> z[0, :, 0]
        tensor([1., 0., 1., 0.], grad_fn=<SelectBackward0>)
        >>> s[0]  # [v, a] after the last step
        tensor([2.5000, 0.6250], grad_fn=<SelectBackward0>)
    """

    def __init__(self, d_input: int, d_hidden: int, *, alpha: float | torch.Tensor = _ALPHA,
                 rho: float | torch.Tensor = _RHO, beta: float | torch.Tensor = 1.8,
                 threshold: float = 0.01,
                 refractory: int = 0, surrogate: str | Surrogate = "triangular",
                 sharpness: float = 1.0, dampening: float = 0.3, input_gain: float = 1.0,
                 recurrent_gain: float = 1.0):
        super().__init__()
        for name, v in (("d_input", d_input), ("d_hidden", d_hidden)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"ALIF: expected {name} a positive int, got {v!r}")
        if not isinstance(threshold, int | float) or not math.isfinite(threshold) or \
                threshold <= 0:
            raise ValueError(f"ALIF: threshold must be a finite number > 0, got {threshold!r}")
        if not isinstance(refractory, int) or isinstance(refractory, bool) or refractory < 0:
            raise ValueError(f"ALIF: refractory must be an int >= 0 (steps), got {refractory!r}")
        for name, g in (("input_gain", input_gain), ("recurrent_gain", recurrent_gain)):
            if not isinstance(g, int | float) or not math.isfinite(g) or g < 0:
                raise ValueError(f"ALIF: {name} must be a finite number >= 0, got {g!r}")
        self.d_input, self.d_hidden = d_input, d_hidden
        self.d_output = d_hidden
        self.d_state = (3 if refractory else 2) * d_hidden
        self.is_complex = False
        self.threshold = float(threshold)
        self.refractory = refractory
        self.surrogate = make_surrogate(surrogate, sharpness, dampening)
        dtype = torch.get_default_dtype()
        self.register_buffer("alpha", _per_neuron("alpha", alpha, d_hidden, 0, 1, False).to(dtype))
        self.register_buffer("rho", _per_neuron("rho", rho, d_hidden, 0, 1, False).to(dtype))
        self.register_buffer("beta", _per_neuron("beta", beta, d_hidden, 0, None, True).to(dtype))
        self.A = nn.Parameter(normal(d_hidden, d_hidden, std=recurrent_gain / math.sqrt(d_hidden)))
        self.B = nn.Parameter(normal(d_hidden, d_input, std=input_gain / math.sqrt(d_input)))

    def _reference(self) -> torch.Tensor:
        return self.B

    # -- the state ------------------------------------------------------------------------------

    def split_state(self, state: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(v, a, r)`` views of a state ``(..., d_state)``; ``r`` is ``None`` without a
        refractory period."""
        n = self.d_hidden
        v, a = state[..., :n], state[..., n:2 * n]
        return v, a, (state[..., 2 * n:] if self.refractory else None)

    def scaled_distance(self, state: torch.Tensor) -> torch.Tensor:
        r"""$u = (v - \vartheta - \beta a)/\vartheta$ ``(..., N)``: the argument of the spike."""
        v, a, _ = self.split_state(state)
        return (v - self.threshold - self.beta * a) / self.threshold

    def spikes(self, state: torch.Tensor) -> torch.Tensor:
        r"""The spikes $z = H(u)\,[r = 0]$ ``(..., N)`` of a state, exactly 0/1, with the
        surrogate derivative in the backward pass."""
        z = self.surrogate(self.scaled_distance(state))
        r = self.split_state(state)[2]
        if r is not None:
            z = z * (r.detach() == 0).to(z.dtype)
        return z

    def _readout(self, x_t, state):
        # the layer's output at a state is its spikes (x_t is not used)
        return self.spikes(state)

    # -- the recurrence -----------------------------------------------------------------------

    def _check_finite(self, x: torch.Tensor, what: str) -> None:
        if not all_finite(x):  # skipped inside torch.func.vmap, where it cannot run
            raise ValueError(f"ALIF: {what} contains NaN or inf")

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run a whole sequence.

        Args:
            x: ``(batch, length, d_input)`` inputs.
            state: ``(batch, d_state)`` state ``[v, a]`` (``[v, a, r]`` with a refractory
                period) before the first step; zeros if ``None``.

        Returns:
            ``(z, last_state)``: spikes ``(batch, length, d_hidden)`` and the state after the
            last step ``(batch, d_state)``.

        Raises:
            ValueError: for a wrong shape, a NaN/inf input or state, or an empty sequence.
            TypeError: for a wrong dtype.
        """
        if isinstance(x, torch.Tensor):
            self._check_finite(x, "the input")
        if isinstance(state, torch.Tensor):
            self._check_finite(state, "the state")
        return super().forward(x, state)

    def step(self, x_t: torch.Tensor, state: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance one time step.

        Args:
            x_t: ``(batch, d_input)`` input at this step.
            state: ``(batch, d_state)`` previous state; zeros if ``None``.

        Returns:
            ``(z_t, new_state)``: spikes ``(batch, d_hidden)`` and the new state.
        """
        if isinstance(x_t, torch.Tensor):
            self._check_finite(x_t, "the input")
        if isinstance(state, torch.Tensor):
            self._check_finite(state, "the state")
        return super().step(x_t, state)

    def _update(self, x_t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        v, a, r = self.split_state(state)  # (B, N) each
        z = self.spikes(state)  # previous spikes z_{t-1}: (B, N)
        current = x_t @ self.B.T + z @ self.A.T  # (B, N)
        alpha, rho = self.alpha, self.rho
        v_new = alpha * v + (1 - alpha) * current - self.threshold * z
        a_new = rho * a + (1 - rho) * z
        parts = [v_new, a_new]
        if r is not None:  # detached: no_grad alone would not stop forward-mode tangents
            r, fired = r.detach(), z.detach() > 0
            parts.append(torch.where(fired, torch.full_like(r, float(self.refractory)),
                                     torch.clamp(r - 1, min=0)))
        return torch.cat(parts, dim=-1)  # (B, d_state)

    def _step(self, x_t, state):
        new = self._update(x_t, state)
        return self._readout(x_t, new), new

    def _sequence(self, x, state, mode):
        s = self.initial_state(x.shape[0]) if state is None else state  # (B, d_state)
        zs = []
        for x_t in x.unbind(1):
            z, s = self._step(x_t, s)
            zs.append(z)
        return torch.stack(zs, 1), s  # (B, L, N), (B, d_state)

    def extra_repr(self) -> str:
        def short(t):
            return f"{t[0].item():.4g}" if bool((t == t[0]).all()) else "per-neuron"

        return (f"d_input={self.d_input}, d_hidden={self.d_hidden}, alpha={short(self.alpha)}, "
                f"rho={short(self.rho)}, beta={short(self.beta)}, threshold={self.threshold:g}, "
                f"refractory={self.refractory}, surrogate={self.surrogate!r}")
