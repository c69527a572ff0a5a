r"""Pre-training to the Local Stability Condition: ``LSCPretrainer(model).run()``.

The Local Stability Condition (LSC) asks that the mean radius $\bar\rho$ of every transition
derivative (see :mod:`diagnostics.radii`) equal a target $\rho_t$: 1 for feed-forward networks
and single-layer recurrent networks, 1/2 for deep recurrent networks (time and depth each get
half, so that the $\binom{\Delta t+\Delta l}{\Delta t}$ gradient paths of the depth-time grid
do not explode), or the "unbalanced" split $\rho_{depth} = L/(L+T)$, $\rho_{time} = T/(L+T)$.

One pre-training step:

1. draw a batch (user batches, a DataLoader, or Gaussian inputs of the model's input shape);
2. measure $\bar\rho$ of every transition at the states the batch reaches;
3. optionally take a gradient step on $\frac1K\sum_k(\bar\rho_k-\rho_t)^2$ with a persistent
   optimiser (AdaBelief by default);
4. multiply the tensors that drive transition $k$ by $\mathrm{clip}(\rho_t/\bar\rho_k,
   \mathrm{lo}, \mathrm{hi})$ (each driver's ``exponent`` splits it among tensors in
   series). Eigenvalues
   ``lam`` of diagonal cells are rescaled in magnitude, through their parametrization's
   ``right_inverse``; the exponential parameter $\nu$ is never multiplied;
5. optionally shuffle the entries of the driving matrices.

Data-parallel: with :mod:`torch.distributed` initialised (or a ``process_group`` given),
each rank measures the radii on its own shard of $n_r$ samples and the group uses
$\bar\rho_k = \sum_r \frac{n_r}{N}\bar\rho_{k,r}$, the radius of the concatenated batch;
the gradient of the loss is summed over the ranks, and the rescaling factors, the shuffle
decisions and permutations (drawn from a generator seeded alike on every rank) are the same
everywhere, so the parameters stay bit-identical across ranks.

It stops when every $|\bar\rho_k-\rho_t|$ is within ``tolerance`` for ``patience``
consecutive steps, or after ``max_steps`` steps (``converged=False``, with the reason), and
leaves the model with the best weights it measured.

References:
    Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
    arXiv 2308.12075.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.optim import Optimizer

from diagnostics.distributed import ShardReducer, unwrap_model

if TYPE_CHECKING:  # annotations only: matplotlib stays optional
    import matplotlib.figure

from diagnostics.radii import transition_radii
from diagnostics.transitions import (
    DEFAULT_SEQ_LEN,
    Transition,
    first_tensor,
    gaussian_inputs,
    model_transitions,
)
from optim.adabelief import AdaBelief
from optim.lookahead_optimizer import lookahead as lookahead_

__all__ = ["LSCPretrainer", "LSCResult"]


@dataclass
class LSCResult:
    r"""Outcome of :meth:`LSCPretrainer.run`.

    Attributes:
        converged: every radius stayed within tolerance for ``patience`` steps.
        steps: pre-training steps taken in total.
        radii_before: ``{transition: mean radius}`` before the first step.
        radii_after: the same, re-measured on a fresh batch with the final (best) weights.
        targets: ``{transition: target radius}``.
        history: one dict per step: ``"step"``, ``"radii"`` (measured at that step, before
            its update), ``"loss"`` ($\mathrm{mean}(\bar\rho-\rho_t)^2$), ``"max_dev"``
            (largest $|\bar\rho-\rho_t|$ of the step) and ``"window_dev"`` (the same for the
            radii averaged over the last ``patience`` steps).
        best_step: the step whose weights were kept.
        reason: why it stopped, in words.
        status: per transition, ``{"target", "reached", "floor", "why"}``: whether its mean
            radius after pre-training is within tolerance of the target, the estimated radius
            it tends to as its drivers go to zero (``None`` where there is no such floor, e.g.
            simple RNNs and FFNs), and, when not reached, why (e.g. an LSTM time radius
            floored by its forget gates, which kernels cannot scale).
        saturation_before: per transition with gates (LSTM/GRU time transitions), the fraction
            of gate pre-activations with $|z| >$ ``saturation_threshold`` before the first
            step, plus ``"all"`` over every gate.
        saturation_after: the same with the final weights.
        warnings: the warnings issued (saturation, unreachable targets).
    """

    converged: bool
    steps: int
    radii_before: dict[str, float]
    radii_after: dict[str, float]
    targets: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    best_step: int = 0
    reason: str = ""
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    saturation_before: dict[str, float] = field(default_factory=dict)
    saturation_after: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return asdict(self)

    def __repr__(self) -> str:
        def _row(k):
            st = self.status.get(k, {})
            floor = st.get("floor")
            mark = "" if st.get("reached", True) else "  NOT reached" + (
                f" (floor ~{floor:.3f})" if floor is not None else "")
            return (f"  {k:<16} {self.radii_before.get(k, float('nan')):8.4f} -> "
                    f"{self.radii_after.get(k, float('nan')):8.4f}  (target "
                    f"{self.targets[k]:.4f}){mark}")

        rows = "\n".join(_row(k) for k in self.targets)
        if "all" in self.saturation_after:
            rows += (f"\n  gate saturation {self.saturation_before.get('all', float('nan')):.3f}"
                     f" -> {self.saturation_after['all']:.3f}")
        return (f"LSCResult(converged={self.converged}, steps={self.steps}, "
                f"best_step={self.best_step}, reason={self.reason!r})\n"
                f"  {'transition':<16} {'before':>8}    {'after':>8}\n{rows}")

    def plot(self, path: str | os.PathLike | None = None) -> matplotlib.figure.Figure:
        """Radius of each transition per step, with the targets (needs matplotlib).

        Args:
            path: if given, the figure is saved there.

        Returns:
            The matplotlib figure.
        """
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        steps = [h["step"] for h in self.history]
        for name, target in self.targets.items():
            line, = ax.plot(steps, [h["radii"][name] for h in self.history], label=name)
            ax.axhline(target, color=line.get_color(), ls=":", lw=0.8)
        ax.set_xlabel("pre-training step")
        ax.set_ylabel("mean radius")
        ax.legend(fontsize="small", ncol=2)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig


def _resolve_targets(transitions: list[Transition], target, seq_len_hint: int | None):
    if isinstance(target, dict):
        missing = [t.name for t in transitions if t.name not in target]
        if missing:
            raise ValueError(f"target dict misses transitions {missing}")
        return {t.name: float(target[t.name]) for t in transitions}
    out = _global_targets(transitions, target, seq_len_hint)
    # a transition's own target (a decoder: 1, REFERENCE section 3) wins over the global one
    return {t.name: (float(t.target) if t.target is not None else out[t.name])
            for t in transitions}


def _global_targets(transitions: list[Transition], target, seq_len_hint: int | None):
    times = [t for t in transitions if t.kind == "time"]
    if target is None:
        target = 0.5 if len(times) > 1 else 1.0
    if isinstance(target, str):
        if target != "unbalanced":
            raise ValueError(f"target must be a float, 'unbalanced' or None, got {target!r}")
        depth = max(len(times), 1)
        horizon = max((t.horizon or 0 for t in times), default=0) or (seq_len_hint or 0)
        return {t.name: (horizon if t.kind == "time" else depth) / (depth + horizon)
                for t in transitions}
    target = float(target)
    if not target > 0:
        raise ValueError(f"target radius must be positive, got {target}")
    return {t.name: target for t in transitions}


class LSCPretrainer:
    r"""Pre-train a model so that every transition has the target mean radius.

    Args:
        model: ``nn.Sequential`` of ``nn.Linear`` and activations; ``nn.RNN``/``nn.GRU``/
            ``nn.LSTM`` (any ``num_layers``, ``batch_first`` or not); a stack
            (``nn.Sequential``/``nn.ModuleList``) of ``nn.RNNCell``/``GRUCell``/``LSTMCell``
            or of this package's cells (the spiking ``ALIF`` included: state ``[v, a]``,
            Jacobians through the surrogate derivative, its time radius floored by the decays
            $\alpha, \rho$), with per-step modules in between; or any model with
            an ``lsc_transitions(inputs)`` method returning :class:`diagnostics.Transition`
            objects (and an ``lsc_input_shape`` attribute to use Gaussian inputs).
        inputs: ``None`` (standard Gaussian inputs of the inferred shape: ``(B, d)`` for an
            FFN, ``(B, seq_len, d)`` for recurrent models, time first for ``batch_first=False``),
            one batch tensor, a list of batches, or any iterable such as a ``DataLoader``
            (cycled; a ``(x, y)`` item uses ``x``). Batches are in the model's own layout.
            Task batches are what the reference pre-trains on; Gaussian inputs are the
            fallback.
        data: the same as ``inputs``, by keyword (give one of the two).
        target: a radius, ``"unbalanced"``, a ``{transition: radius}`` dict, or ``None``:
            1.0 for FFNs and single-layer recurrent models, 0.5 when there is more than one
            recurrent layer.
        tolerance: allowed $|\bar\rho-\rho_t|$ of the radius averaged over the last
            ``patience`` steps; default 0.02 for FFNs, 0.05 for recurrent models.
        patience: length of that window (steps); it stops when every windowed mean is within
            ``tolerance`` and no single measurement in the window is off by more than twice
            that (the radii are noisy estimates: they are re-measured on a new batch each
            step).
        max_steps: the hard limit on steps (it never runs longer).
        batch_size: Gaussian batch size.
        seq_len: Gaussian sequence length (default ``DEFAULT_SEQ_LEN`` = 20).
        input_shape: declared per-sample shape of the Gaussian inputs (``(T, d)`` for
            recurrent models, time first; transposed for ``batch_first=False``), overriding
            the inferred one.
        clip: bounds ``(lo, hi)`` of the multiplicative factor per step.
        grad_step: also take a gradient step on $\mathrm{mean}(\bar\rho-\rho_t)^2$ (over
            the transitions that can reach their target), on all parameters, every step.
        optimizer: optimiser for the gradient step: an ``Optimizer`` over the model's
            parameters, or a callable ``params -> Optimizer``; default, as the reference,
            ``Lookahead(AdaBelief(lr=lr, weight_decay=weight_decay), k=6, alpha=0.5)``
            (torch-optimizer's Lookahead). It is built once and its state persists across
            steps (and in ``state_dict``); rescaled and shuffled kernels carry their Lookahead
            slow copy and moments along.
        lr: learning rate of the default optimiser (the reference's 7.2e-3).
        weight_decay: weight decay of the default optimiser (the reference's 1e-4).
        lookahead: ``(k, alpha)`` of the default optimiser's Lookahead (``None``: plain
            AdaBelief).
        shuffle: probability per step of permuting the entries of every multiplied 2-D
            kernel (the reference's 1/3; 0 switches it off). Biases are never shuffled.
        shuffle_every: instead of ``shuffle``, shuffle deterministically every this many
            steps (``None``: use ``shuffle``).
        gate_bias_shift: opt in to shifting the LSTM forget / GRU update gate bias by
            $\log c$ as a further time driver. Off by default: it reaches an LSTM time radius
            below the forget-gate floor only by making the cell forget at every step (measured:
            forget bias -6.7 at target 0.5, and the network then trained worse).
        saturation_threshold: $|z|$ above which a gate pre-activation counts as saturated.
        method: radius computation, ``"auto"``, ``"exact"`` or ``"matrix_free"``.
        max_exact: largest transition size computed exactly by ``"auto"``.
        krylov_dim: Arnoldi subspace size of the matrix-free radii (above ``max_exact``).
        max_restarts: Arnoldi passes at most. The default single pass of 32 vectors keeps a
            step within 10x of a forward+backward for an LSTM of width 256; its mean radii
            were within 1.5% of the exact ones there (benchmarks/lsc.py), well inside the
            tolerance. ``transition_radii`` itself restarts up to 4 times.
        max_magnitude: cap on $|\lambda|$ when eigenvalues are rescaled.
        seed: seeds the generator used for inputs, time steps, shuffles and start vectors.
        progress: show a tqdm bar.
        process_group: ``None`` (the default group when :mod:`torch.distributed` is
            initialised, else none), a ``ProcessGroup``, or ``"local"`` (no communication:
            each rank pre-trains its own model); see :func:`diagnostics.resolve_process_group`.
            With a group, every rank passes its own shard of the batches (``inputs``), or
            draws its own Gaussian inputs (from ``seed`` and its rank); the radii, floors and
            saturations are shard-size weighted means over the group, the gradient step uses
            the gradient summed over the ranks, and the shuffles and each step's measurement
            seed come from a generator seeded alike on every rank (so ``nn.RNN``'s time step
            is the same on every rank; per-sample draws, such as the time steps of stacks of
            cells, depend on the shard, so those radii match one process in distribution, not
            draw by draw). The first step broadcasts the group's first rank's weights (as DDP
            does at construction). ``run`` is then a collective call.

    ``model`` may be a ``DistributedDataParallel`` module: its ``.module`` is pre-trained
    directly (DDP's forward and gradient hooks never run; the gradient is reduced as said
    above). FSDP-sharded models are refused.

    Transitions that cannot reach their target with kernels alone (an LSTM time transition
    whose forget-gate floor lies above the target) are not pushed there: their drivers are
    left alone while the floor blocks them, they leave the loss and the convergence test, and
    :attr:`LSCResult.status` reports them. A warning is issued when that happens, and when
    pre-training raised the fraction of saturated gates.

    References:
        Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
        arXiv 2308.12075.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)
        >>> net = nn.Sequential(nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh())
        >>> result = LSCPretrainer(net, progress=False).run()
        >>> result.converged, all(abs(r - 1) < 0.02 for r in result.radii_after.values())
        (True, True)
    """

    def __init__(self, model: nn.Module, inputs: Any = None, *, data: Any = None,
                 target: float | str | dict[str, float] | None = None,
                 tolerance: float | None = None, patience: int = 5, max_steps: int = 200,
                 batch_size: int = 64, seq_len: int = DEFAULT_SEQ_LEN,
                 input_shape: tuple[int, ...] | None = None,
                 clip: tuple[float, float] = (0.85, 1.15), grad_step: bool = True,
                 optimizer: Optimizer | Callable[[Iterable], Optimizer] | None = None,
                 lr: float = 7.2e-3, weight_decay: float = 1e-4,
                 lookahead: tuple[int, float] | None = (6, 0.5), shuffle: float = 1 / 3,
                 shuffle_every: int | None = None, gate_bias_shift: bool = False,
                 saturation_threshold: float = 4.0, method: str = "auto",
                 max_exact: int = 128, krylov_dim: int = 32, max_restarts: int = 1,
                 max_magnitude: float = 1.0 - 1e-4, seed: int = 0,
                 progress: bool = True, process_group: Any = None):
        model = unwrap_model(model)
        if data is not None:
            if inputs is not None:
                raise ValueError("give the batches as `inputs` or as `data`, not both")
            inputs = data
        if not 0.0 <= shuffle <= 1.0:
            raise ValueError(f"shuffle is a probability in [0, 1], got {shuffle}")
        lo, hi = clip
        if not 0 < lo <= 1 <= hi:
            raise ValueError(f"clip must satisfy 0 < lo <= 1 <= hi, got {clip}")
        if max_steps < 1 or patience < 1 or batch_size < 1 or seq_len < 1:
            raise ValueError("max_steps, patience, batch_size and seq_len must be >= 1")
        if shuffle_every is not None and shuffle_every < 1:
            raise ValueError(f"shuffle_every must be None or >= 1, got {shuffle_every}")
        self.model = model
        self.inputs = inputs
        self.target = target
        self.tolerance = tolerance
        self.patience = patience
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.clip = (float(lo), float(hi))
        self.grad_step = grad_step
        self.shuffle = float(shuffle)
        self.shuffle_every = shuffle_every
        self.gate_bias_shift = bool(gate_bias_shift)
        self.saturation_threshold = float(saturation_threshold)
        self.method = method
        self.max_exact = max_exact
        self.krylov_dim = krylov_dim
        self.max_restarts = max_restarts
        self.max_magnitude = max_magnitude
        self.seed = seed
        self.progress = progress
        self.generator = torch.Generator().manual_seed(seed)
        self._like = first_tensor(model)
        device = self._like.device if self._like is not None else "cpu"
        self.reducer = ShardReducer(1, process_group=process_group, device=device,
                                    check=(sum(p.numel() for p in model.parameters()),))
        self._rank = (torch.distributed.get_rank(self.reducer.group)
                      if self.reducer.active else 0)
        # with a group, shuffles and the seeds of each step's measurement come from a generator
        # seeded alike and consumed alike on every rank (a shard's own draws, e.g. one time step
        # per sample, depend on its size), Gaussian inputs from one seeded by the rank; in one
        # process the single generator serves everything, as before
        self._shared_generator = (torch.Generator().manual_seed(seed)
                                   if self.reducer.active else self.generator)
        self._data_generator = (torch.Generator().manual_seed(seed + 1_000_003 * (self._rank + 1))
                                if self.reducer.active else None)
        self.optimizer: Optimizer | None = None
        if grad_step:
            params = [p for p in model.parameters() if p.requires_grad]
            if optimizer is None:
                inner = AdaBelief(params, lr=lr, weight_decay=weight_decay)
                self.optimizer = inner if lookahead is None else lookahead_(inner, *lookahead)
            elif isinstance(optimizer, Optimizer):
                self.optimizer = optimizer
            else:
                self.optimizer = optimizer(params)
        elif optimizer is not None:
            raise ValueError("an optimizer was given but grad_step=False")
        self._iter = None
        self._last_batch: torch.Tensor | None = None
        # progress state (what state_dict saves)
        self.step = 0
        self.batch_index = 0
        self.near: dict[str, int] = {}
        self.history: list[dict[str, Any]] = []
        self.best_score = math.inf
        self.best_step = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.radii_before: dict[str, float] | None = None
        self.targets: dict[str, float] | None = None
        self.converged = False
        self.floors: dict[str, float] = {}
        self.floored: dict[str, bool] = {}
        self.saturation_before: dict[str, float] | None = None

    # -- inputs -----------------------------------------------------------------------------

    def _next_batch(self, final: bool = False, gen: torch.Generator | None = None,
                    salt: int = 0) -> torch.Tensor:
        src = self.inputs
        if final and src is not None and self._last_batch is not None:
            return self._last_batch
        if src is None:
            gen = gen if final else self.generator
            if self.reducer.active:  # each rank its own Gaussian shard
                gen = self._data_generator if not final else torch.Generator().manual_seed(
                    self._final_seed(salt) + 1_000_003 * (self._rank + 1))
            x = gaussian_inputs(self.model, self.batch_size, self.seq_len, gen, like=self._like,
                                shape=self.input_shape)
        elif isinstance(src, torch.Tensor):
            x = src
        elif isinstance(src, list | tuple) and src and isinstance(src[0], torch.Tensor | list
                                                                  | tuple):
            x = src[self.batch_index % len(src)]
        else:
            if self._iter is None:
                self._iter = iter(src)
            try:
                x = next(self._iter)
            except StopIteration:
                self._iter = iter(src)
                try:
                    x = next(self._iter)
                except StopIteration:
                    raise ValueError("the inputs iterable yields no batch") from None
        if not final:
            self.batch_index += 1
        if isinstance(x, list | tuple):
            x = x[0]
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"a batch must be a tensor or an (x, ...) tuple, got "
                            f"{type(x).__name__}")
        if self._like is not None:
            x = x.to(device=self._like.device,
                     dtype=self._like.dtype if x.is_floating_point() else None)
        if not final:
            self._last_batch = x
        return x

    def _final_seed(self, salt: int = 0) -> int:
        return self.seed + 7919 * (self.step + 1) + 104729 * salt

    def _final_generator(self, salt: int = 0) -> torch.Generator:
        """Randomness of the final measurement, kept apart so that pausing changes nothing."""
        return torch.Generator().manual_seed(self._final_seed(salt))

    def _measure(self, grad: bool, final: bool = False, salt: int = 0
                 ) -> tuple[list[Transition], dict[str, torch.Tensor]]:
        if final:
            gen = self._final_generator(salt)
        elif self.reducer.active:  # a fresh generator per step, seeded alike on every rank
            gen = torch.Generator().manual_seed(
                int(torch.randint(0, 2**62, (1,), generator=self._shared_generator)))
        else:
            gen = self.generator
        self._check_weights()
        x = self._next_batch(final, gen, salt)
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            raise FloatingPointError("an input batch contains NaN or inf")
        transitions = model_transitions(self.model, x, gen,
                                        gate_bias_shift=self.gate_bias_shift)
        if self.targets is None:
            self.targets = _resolve_targets(transitions, self.target, self.seq_len)
        with torch.set_grad_enabled(grad):
            radii = transition_radii(transitions, method=self.method, max_exact=self.max_exact,
                                     krylov_dim=self.krylov_dim,
                                     max_restarts=self.max_restarts, generator=gen,
                                     as_tensors=True, process_group="local")
            if self.reducer.active:  # the group's radii, differentiable in this rank's term
                radii = self.reducer.weighted_means(
                    radii, {t.name: int(t.point.shape[0]) for t in transitions})
        return transitions, radii

    def _check_weights(self) -> None:
        """Name the first non-finite parameter (before any LAPACK call can see it)."""
        for name, p in self.model.named_parameters():
            if not bool(torch.isfinite(p.detach()).all()):
                raise FloatingPointError(f"parameter {name!r} of the model contains NaN or inf")

    @torch.no_grad()
    def _saturation(self, transitions: list[Transition]) -> dict[str, float]:
        """Fraction of gate pre-activations with |z| above the threshold, per transition."""
        out, sizes, hits, total = {}, {}, 0, 0
        for t in transitions:
            if t.gates is None:
                continue
            z = t.gates(t.point, *t.context)
            sat = z.abs() > self.saturation_threshold
            out[t.name] = float(sat.float().mean())
            sizes[t.name] = sat.numel()
            hits, total = hits + int(sat.sum()), total + sat.numel()
        if total:
            out["all"] = hits / total
            sizes["all"] = total
        if self.reducer.active and out:
            out = {k: float(v) for k, v in self.reducer.weighted_means(out, sizes).items()}
        return out

    @torch.no_grad()
    def _update_floors(self, transitions: list[Transition], values: dict[str, float],
                       tol: float) -> None:
        """Estimate each floor; mark a transition floored when the floor blocks its target."""
        local, sizes = {}, {}
        for t in transitions:
            if t.floor is not None:
                local[t.name] = float(t.floor(t.point, *t.context).mean())
                sizes[t.name] = int(t.point.shape[0])
        if self.reducer.active and local:
            local = {k: float(v) for k, v in self.reducer.weighted_means(local, sizes).items()}
        for t in transitions:
            if t.floor is None:
                continue
            floor = local[t.name]
            self.floors[t.name] = floor
            target = self.targets[t.name]
            self.floored[t.name] = floor >= target - tol and values[t.name] > target + tol

    @torch.no_grad()
    def _final_radii(self) -> tuple[dict[str, float], dict[str, float]]:
        """Radii and gate saturation re-measured on fresh batches (4 Gaussian batches, or the
        last user batch)."""
        repeats = 4 if self.inputs is None else 1
        total: dict[str, float] = {}
        sat: dict[str, float] = {}
        for i in range(repeats):
            transitions, radii = self._measure(grad=False, final=True, salt=i)
            for k, v in radii.items():
                total[k] = total.get(k, 0.0) + float(v) / repeats
            for k, v in self._saturation(transitions).items():
                sat[k] = sat.get(k, 0.0) + v / repeats
            self._floor_why = {t.name: t.floor_why for t in transitions}
        return total, sat

    def _default_tolerance(self) -> float:
        if self.tolerance is not None:
            return float(self.tolerance)
        return 0.02 if self._is_ffn else 0.05

    # -- the loop ---------------------------------------------------------------------------

    def run(self, num_steps: int | None = None) -> LSCResult:
        """Pre-train until convergence, ``max_steps`` in total, or ``num_steps`` more steps.

        Returns:
            The :class:`LSCResult`. The model holds the best weights seen when the run ends
            (converged, ``max_steps`` reached, or interrupted with Ctrl-C); after a pause by
            ``num_steps`` it keeps its current weights so that ``run()`` can continue. The
            model is measured in ``eval()`` mode (no dropout); its mode is restored.
        """
        was_training = self.model.training
        self.model.eval()  # dropout would make the Jacobian rows disagree
        try:
            return self._run(num_steps)
        finally:
            self.model.train(was_training)

    def _run(self, num_steps: int | None) -> LSCResult:
        from tqdm.auto import tqdm

        if self.radii_before is None:
            if self.reducer.active:  # start from the same weights everywhere (as DDP does)
                with torch.no_grad():
                    for tensor in self.model.state_dict().values():
                        self.reducer.broadcast_(tensor)
            with torch.no_grad():
                transitions, radii = self._measure(grad=False)
            self._is_ffn = not any(t.kind == "time" for t in transitions)
            self.radii_before = {k: float(v) for k, v in radii.items()}
            self.saturation_before = self._saturation(transitions)
        self._is_ffn = getattr(self, "_is_ffn", False)
        tol = self._default_tolerance()
        limit = self.max_steps if num_steps is None else min(self.max_steps,
                                                              self.step + num_steps)
        reason = ""
        bar = tqdm(total=self.max_steps, initial=self.step, disable=None if self.progress else True,
                   desc="LSC pre-training", leave=False)
        try:
            while not self.converged and self.step < limit:
                self._one_step(tol)
                bar.update(1)
                last = self.history[-1]
                bar.set_postfix(dev=f"{last['window_dev']:.3f}")
        except KeyboardInterrupt:
            reason = f"interrupted at step {self.step}"
        finally:
            bar.close()
        if self.converged:
            reason = (f"converged: the mean radius of every transition over the last "
                      f"{self.patience} steps is within {tol} of its target (each step within "
                      f"{2 * tol})")
        elif not reason:
            if self.step >= self.max_steps:
                worst = self.history[-1]["window_dev"] if self.history else math.nan
                reason = (f"not converged after max_steps={self.max_steps}: the largest "
                          f"deviation from the target is {worst:.4f} (tolerance {tol}); "
                          "raise max_steps or tolerance, or check that the drivers can reach "
                          "the target")
            else:
                reason = f"paused after {self.step} steps (call run() to continue)"
        finished = self.converged or not reason.startswith("paused")
        if finished and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        after, sat_after = self._final_radii()
        status, notes = {}, []
        for k, target in self.targets.items():
            reached = abs(after[k] - target) <= 2 * tol
            why = ""
            if not reached and self.floored.get(k, False):
                why = (f"floored: the radius tends to ~{self.floors[k]:.3f} as its drivers go "
                       f"to 0, above the target {target:g} (" + self._floor_why.get(k, "") +
                       "); the drivers were left alone rather than driven to degenerate "
                       "values")
            elif not reached:
                why = "not within tolerance when pre-training stopped (" + reason + ")"
            status[k] = {"target": target, "reached": reached, "floor": self.floors.get(k),
                         "why": why}
        floored = [k for k, st in status.items() if st["why"].startswith("floored")]
        if floored:
            notes.append(f"LSC: {len(floored)} transition(s) cannot reach their target with "
                         f"kernels alone and were left at their floor: {floored} (see "
                         "LSCResult.status)")
        sb, sa = (self.saturation_before or {}).get("all"), sat_after.get("all")
        if sb is not None and sa is not None and sa > 0.1 and sa > sb + 0.05:
            notes.append(f"LSC pre-training saturated the network: {sa:.1%} of gate "
                         f"pre-activations have |z| > {self.saturation_threshold:g} after, "
                         f"{sb:.1%} before; gradients through those gates vanish")
        for note in notes:
            warnings.warn(note, RuntimeWarning, stacklevel=3)
        return LSCResult(
            converged=self.converged, steps=self.step, radii_before=dict(self.radii_before),
            radii_after=after, targets=dict(self.targets),
            history=copy.deepcopy(self.history), best_step=self.best_step, reason=reason,
            status=status, saturation_before=dict(self.saturation_before or {}),
            saturation_after=sat_after, warnings=notes)

    def _window(self) -> dict[str, float]:
        """Mean radius of each transition over the last ``patience`` steps."""
        window = self.history[-self.patience:]
        return {k: sum(h["radii"][k] for h in window) / len(window) for k in self.targets}

    def _one_step(self, tol: float) -> None:
        transitions, radii = self._measure(grad=self.grad_step)
        targets = self.targets
        values = {k: float(v.detach()) for k, v in radii.items()}
        self._update_floors(transitions, values, tol)
        active = [k for k in values if not self.floored.get(k, False)] or list(values)
        devs = {k: abs(values[k] - targets[k]) for k in values}
        loss = sum((radii[k] - targets[k]) ** 2 for k in active) / len(active)
        self.history.append({"step": self.step, "radii": values, "loss": float(loss.detach()),
                             "max_dev": max(devs[k] for k in active),
                             "floored": sorted(k for k in values if self.floored.get(k))})
        window = self._window()
        window_dev = max(abs(window[k] - targets[k]) for k in active)
        self.history[-1]["window_dev"] = window_dev
        # best weights: small windowed deviation AND a small deviation of this very step (the
        # window mixes the weights of several steps)
        score = window_dev + self.history[-1]["max_dev"]
        if score < self.best_score:
            self.best_score, self.best_step = score, self.step
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        spread = max(h["max_dev"] for h in self.history[-self.patience:])
        if len(self.history) >= self.patience and window_dev <= tol and spread <= 2 * tol:
            self.converged = True
            return
        if self.grad_step:
            self.optimizer.zero_grad()
            if loss.requires_grad:
                loss.backward()
                if self.reducer.active:  # each rank holds its term: sum them
                    for p in self.model.parameters():
                        if p.grad is not None:
                            self.reducer.sum_(p.grad)
                self.optimizer.step()
            self.optimizer.zero_grad()
        del radii, loss
        lo, hi = self.clip
        with torch.no_grad():
            for t in transitions:
                name = t.name
                if devs[name] <= tol:
                    self.near[name] = self.near.get(name, 0) + 1
                elif devs[name] > 3 * tol:
                    self.near[name] = 0
                if not t.drivers or self.floored.get(name, False):
                    continue  # a floored transition is left alone, not driven to degeneracy
                # Stochastic-approximation damping: once in tolerance, average the noisy
                # corrections (exponent 1/(1+k) after k in-tolerance steps, at least 1/5).
                gain = max(1.0 / (1 + self.near.get(name, 0)), 0.2)
                ratio = targets[name] / max(values[name], 1e-12)
                factor = min(max(ratio**gain, lo), hi)
                for d in t.drivers:
                    d.rescale_(factor, self.max_magnitude)
                    self._follow(d, factor=factor)
            self.step += 1
            if self.shuffle_every:
                do_shuffle = self.step % self.shuffle_every == 0
            else:
                do_shuffle = self.shuffle > 0 and float(
                    torch.rand((), generator=self._shared_generator)) < self.shuffle
            if do_shuffle:
                for t in transitions:
                    for d in t.drivers:
                        perm = d.shuffle_(self._shared_generator)
                        if perm is not None:
                            self._follow(d, perm=perm)

    def _follow(self, driver, factor: float | None = None,
                perm: torch.Tensor | None = None) -> None:
        """Carry the optimiser state of a rescaled or shuffled tensor along with it.

        A plain parameter's Lookahead slow copy is multiplied by the same factor (or permuted),
        and its moments are permuted; for any other driver (parametrized tensors, eigenvalue
        magnitudes, bias shifts) the slow copy is reset to the new value.
        """
        if self.optimizer is None:
            return
        param = driver.module._parameters.get(driver.name)
        states = [self.optimizer.state]
        inner = getattr(self.optimizer, "optimizer", None)
        if isinstance(inner, Optimizer):
            states.append(inner.state)
        params = [param] if param is not None else list(driver.module.parameters())
        plain = param is not None and driver.mode == "scale"
        for p in params:
            for state in states:
                st = state.get(p)
                if not st:
                    continue
                for key, v in st.items():
                    if not isinstance(v, torch.Tensor) or v.shape != p.shape:
                        continue
                    if key == "slow_param":
                        if plain and factor is not None:
                            v.mul_(float(factor) ** driver.exponent)
                        elif plain and perm is not None:
                            v.copy_(v.reshape(-1)[perm].reshape(v.shape))
                        else:
                            v.copy_(p.detach())
                    elif perm is not None and plain:
                        v.copy_(v.reshape(-1)[perm].reshape(v.shape))

    # -- checkpointing ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: weights, best weights, counters, history, RNG, optimiser."""
        return {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "best_state": self.best_state, "best_score": self.best_score,
            "best_step": self.best_step, "step": self.step, "batch_index": self.batch_index,
            "near": dict(self.near), "history": copy.deepcopy(self.history),
            "radii_before": self.radii_before, "targets": self.targets,
            "converged": self.converged, "is_ffn": getattr(self, "_is_ffn", None),
            "floors": dict(self.floors), "floored": dict(self.floored),
            "saturation_before": self.saturation_before,
            "generator": self.generator.get_state(),
            "shared_generator": self._shared_generator.get_state(),
            "data_generator": (None if self._data_generator is None
                               else self._data_generator.get_state()),
            "optimizer": None if self.optimizer is None else copy.deepcopy(
                self.optimizer.state_dict()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (same model architecture and settings)."""
        self.model.load_state_dict(state["model"])
        self.best_state = state["best_state"]
        self.best_score, self.best_step = state["best_score"], state["best_step"]
        self.step, self.batch_index = state["step"], state["batch_index"]
        self.near, self.history = dict(state["near"]), copy.deepcopy(state["history"])
        self.radii_before, self.targets = state["radii_before"], state["targets"]
        self.converged = state["converged"]
        self.floors, self.floored = dict(state["floors"]), dict(state["floored"])
        self.saturation_before = state["saturation_before"]
        if state["is_ffn"] is not None:
            self._is_ffn = state["is_ffn"]
        self.generator.set_state(state["generator"])
        if state.get("shared_generator") is not None:
            self._shared_generator.set_state(state["shared_generator"])
        if state.get("data_generator") is not None and self._data_generator is not None:
            self._data_generator.set_state(state["data_generator"])
        if state["optimizer"] is not None:
            if self.optimizer is None:
                raise ValueError("the checkpoint has optimiser state but grad_step=False")
            self.optimizer.load_state_dict(state["optimizer"])
        self._iter = None
        if isinstance(self.inputs, Iterable) and not isinstance(
                self.inputs, torch.Tensor | list | tuple):
            # resume a plain iterable where it was (a DataLoader reshuffles on its own RNG)
            self._iter = itertools.islice(iter(self.inputs), self.batch_index, None)
