r"""The pre-training loop: :class:`LSCPretrainer`, ``LSCPretrainer(model).run()``.

The algorithm, step by step, is in the package docstring (:mod:`optim.lsc`).

Why this file is above 400 lines: it is one class, whose constructor, measurement and loop
share the run's state, and about 110 of its lines are the class docstring, the user's
reference for every argument.

References:
    Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
    arXiv 2308.12075.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from diagnostics.distributed import ShardReducer, unwrap_model
from diagnostics.radii import transition_radii
from diagnostics.transitions import Transition, first_tensor, model_transitions
from optim.adabelief import AdaBelief
from optim.lookahead_optimizer import lookahead as make_lookahead
from optim.lsc.batches import BatchSource, final_seed, rank_seed
from optim.lsc.checkpoint import load_pretrainer_state_, pretrainer_state
from optim.lsc.drivers import carry_optimizer_state_, rescale_, shuffle_, with_gate_bias_shift
from optim.lsc.frozen import driver_name, frozen_drivers, is_frozen
from optim.lsc.measure import gate_saturation, mean_floors, saturation_warning
from optim.lsc.options import LSCOptions, option_names
from optim.lsc.precision import adabelief_eps, in_float32
from optim.lsc.result import LSCResult, transition_status
from optim.lsc.targets import resolve_targets

__all__ = ["LSCPretrainer", "GAIN_FLOOR", "RESET_DEVIATIONS", "SPREAD_TOLERANCES",
           "FFN_TOLERANCE", "RNN_TOLERANCE"]

FFN_TOLERANCE = 0.02
"""Default tolerance of a feed-forward network: the reference's 0.02 (REFERENCE section 3)."""
RNN_TOLERANCE = 0.05
"""Default tolerance of a recurrent network: ours; the reference stops at 0.08, on the mean of
all radii (this loop asks it of every transition's windowed mean)."""

# Heuristics of the loop. None of them is in the reference, which applies the clipped factor
# rho_t / rho at full gain every step and stops on |mean radius - target| < 0.08 for 20 steps
# (REFERENCE section 3); they are ours, for a stopping rule on noisy radii.

GAIN_FLOOR = 0.2
"""Stochastic-approximation damping: after k consecutive in-tolerance steps the factor is
(rho_t / rho) ** max(1 / (1 + k), GAIN_FLOOR), so noisy corrections are averaged rather
than followed; the floor keeps a fifth of each correction, so the radius still tracks a
drift. Ours (a Robbins-Monro 1/k gain, bounded below by judgement)."""
RESET_DEVIATIONS = 3
"""The in-tolerance count k restarts at 0 once a step is off by more than this many
tolerances (between 1 and this many it is kept: one noisy step does not undo the damping).
Ours."""
SPREAD_TOLERANCES = 2
"""Convergence also needs every single step of the window within this many tolerances (the
windowed mean alone could hide an outlier), and a transition's radius after pre-training
counts as reached within it. Ours."""


class LSCPretrainer:
    r"""Pre-train a model so that every transition has the target mean radius.

    Args:
        model: ``nn.Sequential`` of ``nn.Linear`` and activations; ``nn.RNN``/``nn.GRU``/
            ``nn.LSTM`` (any ``num_layers``, ``batch_first`` or not); a stack
            (``nn.Sequential``/``nn.ModuleList``) of ``nn.RNNCell``/``GRUCell``/``LSTMCell``
            or of this package's cells (:class:`recurrent_params.RecurrentCell`; the spiking
            ``ALIF`` included: state ``[v, a]``, Jacobians through the surrogate derivative,
            its time radius floored by the decays $\alpha, \rho$), with per-step modules in
            between; or any model with an ``lsc_transitions(inputs)`` method returning
            :class:`diagnostics.Transition` objects (and an ``lsc_input_shape`` attribute to
            use Gaussian inputs).
        inputs: ``None`` (standard Gaussian inputs of the inferred shape: ``(B, d)`` for an
            FFN, ``(B, seq_len, d)`` for recurrent models, time first for ``batch_first=False``),
            one batch tensor, a list of batches, or any iterable such as a ``DataLoader``
            (cycled; a ``(x, y)`` item uses ``x``). Batches are in the model's own layout.
            Task batches are what the reference pre-trains on; Gaussian inputs are the
            fallback.
        data: alias of ``inputs``, by keyword. Alias policy: ``inputs`` is the name; ``data``
            is a permanent keyword-only alias (task code calls its batches data), accepted
            without a warning; giving both is a ``ValueError``. There is no other alias.
        options: an :class:`~optim.lsc.LSCOptions` (all the tuning knobs); keywords
            override its fields.
        optimizer: optimiser for the gradient step: an ``Optimizer`` over the model's
            parameters, or a callable ``params -> Optimizer``; default, as the reference,
            ``Lookahead(AdaBelief(lr=lr, weight_decay=weight_decay), k=6, alpha=0.5)``
            (torch-optimizer's Lookahead). It is built once and its state persists across
            steps (and in ``state_dict``); rescaled and shuffled kernels carry their Lookahead
            slow copy and moments along.
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
        **overrides: any field of :class:`~optim.lsc.LSCOptions` (``target``, ``tolerance``,
            ``patience``, ``max_steps``, ``batch_size``, ``seq_len``, ``input_shape``,
            ``clip``, ``grad_step``, ``lr``, ``weight_decay``, ``lookahead``, ``shuffle``,
            ``shuffle_every``, ``gate_bias_shift``, ``saturation_threshold``, ``method``,
            ``max_exact``, ``krylov_dim``, ``max_restarts``, ``max_magnitude``, ``seed``,
            ``progress``); each is readable on the pre-trainer afterwards (``pre.max_steps``).

    ``model`` may be a ``DistributedDataParallel`` module: its ``.module`` is pre-trained
    directly (DDP's forward and gradient hooks never run; the gradient is reduced as said
    above). FSDP-sharded models are refused.

    Transitions that cannot reach their target with kernels alone (an LSTM time transition
    whose forget-gate floor lies above the target) are not pushed there: their drivers are
    left alone while the floor blocks them, they leave the loss and the convergence test, and
    :attr:`LSCResult.status` reports them. A warning is issued when that happens, and when
    pre-training raised the fraction of saturated gates.

    Frozen tensors: a tensor that does not require grad (``requires_grad_(False)``, a buffer)
    is never moved: not rescaled, not shuffled, not in the optimiser (a parametrized driver is
    frozen when any of its stored originals is; :mod:`optim.lsc.frozen`). The drivers left
    alone are listed in :attr:`LSCResult.frozen` and the result's repr; a transition whose
    drivers are all frozen is still measured, but leaves the loss and the convergence test and
    is reported as not driven (``status[name]["driven"] is False``), not as failing. A
    model with no parameter, or with every parameter frozen, is refused with a
    ``ValueError`` at construction (there is nothing to pre-train; measure it with
    :func:`diagnostics.transition_radii`), and so is a run in which every driver of every
    transition is frozen (at its first measurement).

    Half precision: a ``float16`` / ``bfloat16`` model is run and differentiated in its own
    dtype, and the eigenvalues of its Jacobians are computed in float32
    (:mod:`optim.lsc.precision`; LAPACK has no half-precision eigen solver).

    NaN and inf: the pre-trainer never feeds a non-finite number to LAPACK. A batch with
    NaN or inf raises ``FloatingPointError("an input batch contains NaN or inf")``, and a
    parameter with NaN or inf raises ``FloatingPointError`` naming it, at the measurement
    that meets it (before any eigendecomposition; the weights are left as they were at that
    step). A non-finite state reached inside the model raises ``FloatingPointError`` from
    :func:`diagnostics.spectral_radius`, naming the transition.

    Raises:
        TypeError: an unknown keyword argument, an option of the wrong type, or a batch of
            a dtype the model cannot take (an integer batch for an FFN).
        ValueError: ``inputs`` and ``data`` both given, an optimiser with
            ``grad_step=False``, an invalid option (see :class:`~optim.lsc.LSCOptions`),
            a model with no parameter, every parameter frozen or its parameters on the
            ``meta`` device, an empty list of batches; from :meth:`run`: an empty batch or
            one whose shape does not fit the model (the message names the shape it takes),
            every driver frozen.
        FloatingPointError: from :meth:`run`, NaN or inf in a batch or a parameter.

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
                 options: LSCOptions | None = None,
                 optimizer: Optimizer | Callable[[Iterable], Optimizer] | None = None,
                 process_group: Any = None, **overrides: Any):
        model = unwrap_model(model)
        if data is not None:
            if inputs is not None:
                raise ValueError("give the batches as `inputs` or as `data`, not both")
            inputs = data
        unknown = sorted(set(overrides) - set(option_names()))
        if unknown:
            raise TypeError(f"LSCPretrainer got unexpected keyword argument(s) {unknown}; the "
                            f"options are {list(option_names())}")
        opts = dataclasses.replace(options or LSCOptions(), **overrides)
        self.options = opts
        self.model = model
        _check_model(model)
        self.generator = torch.Generator().manual_seed(opts.seed)
        self._like = first_tensor(model)
        device = self._like.device if self._like is not None else "cpu"
        self.reducer = ShardReducer(1, process_group=process_group, device=device,
                                    check=(sum(p.numel() for p in model.parameters()),))
        self._rank = (torch.distributed.get_rank(self.reducer.group)
                      if self.reducer.active else 0)
        # with a group, shuffles and the seeds of each step's measurement come from a generator
        # seeded alike and consumed alike on every rank (a shard's own draws, e.g. one time step
        # per sample, depend on its size), Gaussian inputs from one seeded by the rank; in one
        # process the single generator serves everything
        self._shared_generator = (torch.Generator().manual_seed(opts.seed)
                                  if self.reducer.active else self.generator)
        self._data_generator = (torch.Generator().manual_seed(rank_seed(opts.seed, self._rank))
                                if self.reducer.active else None)
        self.optimizer: Optimizer | None = None
        if opts.grad_step:
            params = [p for p in model.parameters() if p.requires_grad]
            if optimizer is None:
                inner = AdaBelief(params, lr=opts.lr, weight_decay=opts.weight_decay,
                                  eps=adabelief_eps(params))
                self.optimizer = (inner if opts.lookahead is None
                                  else make_lookahead(inner, *opts.lookahead))
            elif isinstance(optimizer, Optimizer):
                self.optimizer = optimizer
            else:
                self.optimizer = optimizer(params)
        elif optimizer is not None:
            raise ValueError("an optimizer was given but grad_step=False")
        self.batches = BatchSource(model, inputs, opts.batch_size, opts.seq_len,
                                   opts.input_shape, self._like)
        # progress state (what state_dict saves)
        self.step = 0
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
        self._is_ffn: bool | None = None  # known at the first measurement: no time transition
        self._floor_why: dict[str, str] = {}  # per transition, from the final measurement
        self.frozen: list[str] = []  # drivers left alone (requires_grad=False), by name
        self.undriven: dict[str, list[str]] = {}  # transitions whose drivers are all frozen
        # the previous step's dominant Ritz vectors, per matrix-free transition: the next
        # step's Arnoldi starts there with 3/4 of the Krylov dimension (weights move by a few %
        # per step, so the dominant eigenvectors barely move); emptied by a shuffle
        self.krylov_start: dict[str, torch.Tensor] = {}

    def __getattr__(self, name: str) -> Any:
        # the options read as attributes (pre.max_steps); only reached for missing names
        options = self.__dict__.get("options")
        if options is not None and name in option_names():
            return getattr(options, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def inputs(self) -> Any:
        """The user's batches (``None``: Gaussian inputs)."""
        return self.batches.inputs

    @property
    def batch_index(self) -> int:
        """Batches drawn so far."""
        return self.batches.index

    # -- measuring --------------------------------------------------------------------------

    def _data_generator_for(self, final: bool, gen: torch.Generator, salt: int):
        """The generator of Gaussian inputs: per rank with a group, else the step's own."""
        if not self.reducer.active:
            return gen if final else self.generator
        if not final:
            return self._data_generator
        return torch.Generator().manual_seed(
            rank_seed(final_seed(self.seed, self.step, salt), self._rank))

    def _measure(self, grad: bool, final: bool = False, salt: int = 0
                 ) -> tuple[list[Transition], dict[str, torch.Tensor]]:
        if final:  # kept apart from the run's generator, so that pausing changes nothing
            gen = torch.Generator().manual_seed(final_seed(self.seed, self.step, salt))
        elif self.reducer.active:  # a fresh generator per step, seeded alike on every rank
            gen = torch.Generator().manual_seed(
                int(torch.randint(0, 2**62, (1,), generator=self._shared_generator)))
        else:
            gen = self.generator
        self._check_weights()
        x = self.batches.next(self._data_generator_for(final, gen, salt), final)
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            raise FloatingPointError("an input batch contains NaN or inf")
        transitions = model_transitions(self.model, x, gen)
        if self.gate_bias_shift:
            transitions = with_gate_bias_shift(transitions)
        self._find_frozen(transitions)
        transitions = in_float32(transitions)  # half types: eigenvalues in float32
        if self.targets is None:
            self.targets = resolve_targets(transitions, self.target, self.seq_len)
        with torch.set_grad_enabled(grad):
            radii = transition_radii(transitions, method=self.method, max_exact=self.max_exact,
                                     krylov_dim=self.krylov_dim,
                                     max_restarts=self.max_restarts, generator=gen,
                                     as_tensors=True, process_group="local",
                                     warm_start=None if final else self.krylov_start)
            if self.reducer.active:  # the group's radii, differentiable in this rank's term
                radii = self.reducer.weighted_means(
                    radii, {t.name: int(t.point.shape[0]) for t in transitions})
        return transitions, radii

    def _find_frozen(self, transitions: list[Transition]) -> None:
        """Record the frozen drivers and the transitions they leave undriven; refuse a run in
        which no driver can move."""
        self.frozen, undriven = frozen_drivers(self.model, transitions)
        self.undriven = {t.name: [driver_name(self.model, d) for d in t.drivers]
                         for t in transitions if t.name in undriven}
        drivers = [d for t in transitions for d in t.drivers]
        if drivers and all(is_frozen(d) for d in drivers):
            raise ValueError(
                "every driver of every transition is frozen (requires_grad=False): "
                f"{self.frozen}; LSC pre-training would leave them all as they are. Unfreeze "
                "them (requires_grad_(True)) to pre-train, or measure the radii only with "
                "diagnostics.transition_radii")

    def _check_weights(self) -> None:
        """Name the first non-finite parameter (before any LAPACK call can see it).

        One fused test first: a sum of floats is NaN or inf whenever an entry is, so a finite
        sum of the per-tensor sums clears every parameter at once (one pass, one sync); only
        when it is not finite (a bad entry, or an overflow of the sum) is each tensor tested
        on its own, to name it.
        """
        params = [p.detach() for p in self.model.parameters()]
        if params and len({p.device for p in params}) == 1 and bool(torch.isfinite(
                torch.stack([p.sum().abs().float() for p in params]).sum())):
            return
        for name, p in self.model.named_parameters():
            if not bool(torch.isfinite(p.detach()).all()):
                raise FloatingPointError(f"parameter {name!r} of the model contains NaN or inf")

    def _saturation(self, transitions: list[Transition]) -> dict[str, float]:
        return gate_saturation(transitions, self.saturation_threshold, self.reducer)

    def _update_floors(self, transitions: list[Transition], values: dict[str, float],
                       tol: float) -> None:
        """Estimate each floor; mark a transition floored when the floor blocks its target."""
        for name, floor in mean_floors(transitions, self.reducer).items():
            self.floors[name] = floor
            target = self.targets[name]
            self.floored[name] = floor >= target - tol and values[name] > target + tol

    @torch.no_grad()
    def _final_radii(self) -> tuple[dict[str, float], dict[str, float]]:
        """Radii and gate saturation re-measured on fresh batches (4 Gaussian batches, or the
        last user batch)."""
        repeats = 4 if self.batches.gaussian else 1
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
        return FFN_TOLERANCE if self._is_ffn else RNN_TOLERANCE

    # -- the loop ---------------------------------------------------------------------------

    def run(self, num_steps: int | None = None) -> LSCResult:
        """Pre-train until convergence, ``max_steps`` in total, or ``num_steps`` more steps.

        Returns:
            The :class:`LSCResult`. The model holds the best weights seen when the run ends
            (converged, ``max_steps`` reached, or interrupted with Ctrl-C); after a pause by
            ``num_steps`` it keeps its current weights so that ``run()`` can continue. The
            model is measured in ``eval()`` mode (no dropout); its mode is restored.
        """
        with self._in_eval_mode():
            return self._run(num_steps)

    def take_step(self) -> dict[str, Any]:
        r"""One pre-training step, as :meth:`run` takes each: measure every transition's
        radius on the next batch, take the gradient step on the mean of
        $(\bar\rho - \text{target})^2$ and rescale (and maybe shuffle) the drivers. The first
        step (of this or :meth:`run`) also measures the radii before. Nothing of the end of a
        run happens (best weights restored, final radii, warnings): call :meth:`run` for
        those, or to go on. A step that finds the run converged measures only and sets
        :attr:`converged`. ``max_steps`` does not bound these calls. A collective call with a
        process group.

        Returns:
            The step's record, the last entry of :attr:`history`: ``radii``, ``loss``,
            ``max_dev``, ``window_dev``, ``floored`` and ``step``.
        """
        with self._in_eval_mode():
            self._begin()
            self._one_step(self._default_tolerance())
        return self.history[-1]

    @contextlib.contextmanager
    def _in_eval_mode(self):
        """The model in ``eval()`` mode (dropout would make the Jacobian rows disagree), its
        own mode restored afterwards."""
        was_training = self.model.training
        self.model.eval()
        try:
            yield
        finally:
            self.model.train(was_training)

    def _begin(self) -> None:
        """The first measurement (radii and saturation before), once; the model kind."""
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
        if self._is_ffn is None:
            self._is_ffn = False

    def _run(self, num_steps: int | None) -> LSCResult:
        from tqdm.auto import tqdm

        self._begin()
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
                      f"{SPREAD_TOLERANCES * tol})")
        elif not reason:
            if self.max_steps == 0:
                reason = "max_steps=0: the radii were measured, no step was taken"
            elif self.step >= self.max_steps:
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
        status = transition_status(after, self.targets, SPREAD_TOLERANCES * tol, self.floored,
                                   self.floors, self._floor_why, reason, self.undriven)
        notes = []
        floored = [k for k, st in status.items() if st["why"].startswith("floored")]
        if floored:
            notes.append(f"LSC: {len(floored)} transition(s) cannot reach their target with "
                         f"kernels alone and were left at their floor: {floored} (see "
                         "LSCResult.status)")
        saturated = saturation_warning(self.saturation_before, sat_after,
                                       self.saturation_threshold)
        if saturated is not None:
            notes.append(saturated)
        for note in notes:
            warnings.warn(note, RuntimeWarning, stacklevel=3)
        return LSCResult(
            converged=self.converged, steps=self.step, radii_before=dict(self.radii_before),
            radii_after=after, targets=dict(self.targets),
            history=copy.deepcopy(self.history), best_step=self.best_step, reason=reason,
            status=status, saturation_before=dict(self.saturation_before or {}),
            saturation_after=sat_after, warnings=notes, frozen=list(self.frozen))

    def _window(self) -> dict[str, float]:
        """Mean radius of each transition over the last ``patience`` steps."""
        window = self.history[-self.patience:]
        return {k: sum(h["radii"][k] for h in window) / len(window) for k in self.targets}

    def _one_step(self, tol: float) -> None:
        transitions, radii = self._measure(grad=self.grad_step)
        targets = self.targets
        values = {k: float(v.detach()) for k, v in radii.items()}
        self._update_floors(transitions, values, tol)
        # frozen-driven transitions are measured only; floored ones leave the loss unless all are
        driven = [k for k in values if k not in self.undriven]
        active = [k for k in driven if not self.floored.get(k, False)] or driven
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
        if (len(self.history) >= self.patience and window_dev <= tol
                and spread <= SPREAD_TOLERANCES * tol):
            self.converged = True
            return
        if self.grad_step:
            self._gradient_step(loss)
        del radii, loss
        with torch.no_grad():
            self._rescale(transitions, values, devs, tol)
            self.step += 1
            self._shuffle(transitions)

    def _gradient_step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad()
        if loss.requires_grad:
            loss.backward()
            if self.reducer.active:  # each rank holds its term: sum them
                for p in self.model.parameters():
                    if p.grad is not None:
                        self.reducer.sum_(p.grad)
            self.optimizer.step()
        self.optimizer.zero_grad()

    def _rescale(self, transitions: list[Transition], values: dict[str, float],
                 devs: dict[str, float], tol: float) -> None:
        lo, hi = self.clip
        for t in transitions:
            name = t.name
            if devs[name] <= tol:
                self.near[name] = self.near.get(name, 0) + 1
            elif devs[name] > RESET_DEVIATIONS * tol:
                self.near[name] = 0
            if not t.drivers or self.floored.get(name, False) or name in self.undriven:
                continue  # a floored transition is left alone, not driven to degeneracy
            gain = max(1.0 / (1 + self.near.get(name, 0)), GAIN_FLOOR)
            ratio = self.targets[name] / max(values[name], 1e-12)
            factor = min(max(ratio**gain, lo), hi)
            for d in t.drivers:
                if is_frozen(d):
                    continue  # never move a tensor that does not require grad
                rescale_(d, factor, self.max_magnitude)
                carry_optimizer_state_(self.optimizer, d, factor=factor)

    def _shuffle(self, transitions: list[Transition]) -> None:
        if self.shuffle_every:
            do_shuffle = self.step % self.shuffle_every == 0
        else:
            do_shuffle = self.shuffle > 0 and float(
                torch.rand((), generator=self._shared_generator)) < self.shuffle
        if do_shuffle:
            self.krylov_start.clear()  # permuted kernels: the eigenvectors are new
            for t in transitions:
                for d in t.drivers:
                    perm = shuffle_(d, self._shared_generator)
                    if perm is not None:
                        carry_optimizer_state_(self.optimizer, d, perm=perm)

    # -- checkpointing ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: weights, best weights, counters, history, RNG, optimiser."""
        return pretrainer_state(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (same model architecture and settings)."""
        load_pretrainer_state_(self, state)


def _check_model(model: nn.Module) -> None:
    """Refuse a model LSC cannot move: no parameter, every parameter frozen, or no data."""
    params = list(model.parameters())
    if not params:
        raise ValueError(f"{type(model).__name__} has no parameters: there is nothing to "
                         "pre-train")
    if any(p.is_meta for p in params):
        raise ValueError(f"{type(model).__name__} has parameters on the meta device (no data): "
                         "materialise them first (model.to_empty(device=...) and initialise)")
    if not any(p.requires_grad for p in params):
        raise ValueError(
            f"every parameter of {type(model).__name__} is frozen (requires_grad=False): LSC "
            "pre-training never moves a frozen tensor, so it would leave the model as it is. "
            "Unfreeze the tensors to pre-train (requires_grad_(True)), or measure the radii "
            "only with diagnostics.transition_radii")
