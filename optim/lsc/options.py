r"""The tuning knobs of :class:`~optim.LSCPretrainer`, in one dataclass.

``LSCPretrainer(model, inputs, **options)`` accepts every field below as a keyword argument
(``LSCPretrainer(model, max_steps=50)``), or a whole :class:`LSCOptions` as ``options=``
(keywords then override its fields). Every option is also readable on the pre-trainer
(``pre.max_steps``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

from diagnostics.transitions import DEFAULT_SEQ_LEN
from optim.lsc.drivers import MAX_MAGNITUDE
from optim.lsc.measure import SATURATION_THRESHOLD

__all__ = ["LSCOptions", "CLIP", "SHUFFLE_PROBABILITY", "REFERENCE_LR", "REFERENCE_WEIGHT_DECAY",
           "REFERENCE_LOOKAHEAD", "METHODS", "option_names"]

CLIP = (0.85, 1.15)
"""Bounds of the multiplicative factor per step: the reference's ``clip(t/rho, 0.85, 1.15)``."""
SHUFFLE_PROBABILITY = 1 / 3
"""Probability per step of permuting every kernel: the reference's "about 1/3"."""
METHODS = ("auto", "exact", "matrix_free")
"""The radius computations :func:`diagnostics.transition_radii` offers."""
REFERENCE_LR, REFERENCE_WEIGHT_DECAY, REFERENCE_LOOKAHEAD = 7.2e-3, 1e-4, (6, 0.5)
"""The reference's AdaBelief learning rate and weight decay, and its Lookahead ``(k, alpha)``."""


@dataclass
class LSCOptions:
    r"""How :class:`~optim.LSCPretrainer` measures, steps and stops.

    Attributes:
        target: a radius, ``"unbalanced"``, a ``{transition: radius}`` dict, or ``None``:
            1.0 for FFNs and single-layer recurrent models, 0.5 when there is more than one
            recurrent layer.
        tolerance: allowed $|\bar\rho-\rho_t|$ of the radius averaged over the last
            ``patience`` steps; default 0.02 for FFNs, 0.05 for recurrent models.
        patience: length of that window (steps); it stops when every windowed mean is within
            ``tolerance`` and no single measurement in the window is off by more than twice
            that (the radii are noisy estimates: they are re-measured on a new batch each
            step).
        max_steps: the hard limit on steps (it never runs longer); 0 only measures the radii
            (before and after are then the same weights, ``converged=False``).
        batch_size: Gaussian batch size.
        seq_len: Gaussian sequence length (default ``DEFAULT_SEQ_LEN`` = 20).
        input_shape: declared per-sample shape of the Gaussian inputs (``(T, d)`` for
            recurrent models, time first; transposed for ``batch_first=False``), overriding
            the inferred one.
        clip: bounds ``(lo, hi)`` of the multiplicative factor per step.
        grad_step: also take a gradient step on $\mathrm{mean}(\bar\rho-\rho_t)^2$ (over
            the transitions that can reach their target), on all parameters, every step.
        lr: learning rate of the default optimiser (the reference's 7.2e-3).
        weight_decay: weight decay of the default optimiser (the reference's 1e-4).
        lookahead: ``(k, alpha)`` of the default optimiser's Lookahead (``None``: plain
            AdaBelief).
        shuffle: probability per step of permuting the entries of every multiplied 2-D
            kernel (the reference's 1/3; 0 switches it off). Biases are never shuffled.
        shuffle_every: instead of ``shuffle``, shuffle deterministically every this many
            steps (``None``: use ``shuffle``).
        gate_bias_shift: opt in to shifting the LSTM forget / GRU update gate bias by
            $\log c$ as a further time driver (:func:`optim.lsc.with_gate_bias_shift`). Off
            by default: it reaches an LSTM time radius below the forget-gate floor only by
            making the cell forget at every step (measured: forget bias -6.7 at target 0.5,
            and the network then trained worse).
        saturation_threshold: $|z|$ above which a gate pre-activation counts as saturated.
        method: radius computation, ``"auto"``, ``"exact"`` or ``"matrix_free"``.
        max_exact: largest transition size computed exactly by ``"auto"``.
        krylov_dim: Arnoldi subspace size of the matrix-free radii (above ``max_exact``).
            From the second step on (except right after a shuffle) Arnoldi starts from the
            previous step's dominant Ritz vectors with 3/4 of it (``transition_radii``'s
            ``warm_start``), as accurate as a cold pass of the full size.
        max_restarts: Arnoldi passes at most. The default single pass of 32 vectors (24
            warm) keeps a step at about 5x of a forward+backward for an LSTM of width 256; its
            mean radii were within 1.5% of the exact ones there (benchmarks/lsc.py), well
            inside the tolerance. ``transition_radii`` itself restarts up to 4 times.
        max_magnitude: cap on $|\lambda|$ when eigenvalues are rescaled.
        seed: seeds the generator used for inputs, time steps, shuffles and start vectors.
        progress: show a tqdm bar.

    Every field is checked once, here (and again by :func:`dataclasses.replace`), so a bad
    value fails at construction, naming the option and the range it must lie in.

    Raises:
        TypeError: a field of the wrong type (e.g. ``max_steps=1.5``, ``grad_step="yes"``,
            a ``bool`` where a number is expected).
        ValueError: a value outside its range: ``target`` not a positive finite radius (nor
            ``"unbalanced"``, ``None`` or a dict of such radii), ``tolerance`` not positive and
            finite, ``max_steps < 0``, ``patience``/``batch_size``/``seq_len``/
            ``krylov_dim``/``max_restarts``/``shuffle_every`` below 1, ``max_exact < 0``,
            ``clip`` not ``0 < lo <= 1 <= hi``, a probability (``shuffle``, Lookahead's
            ``alpha``) outside [0, 1], ``lr``/``weight_decay`` negative or not finite,
            ``saturation_threshold`` not positive, ``max_magnitude`` outside (0, 1], an
            unknown ``method``, an ``input_shape`` with a non-positive size, ``seed`` outside
            [0, 2**63).
    """

    target: float | str | dict[str, float] | None = None
    tolerance: float | None = None
    patience: int = 5
    max_steps: int = 200
    batch_size: int = 64
    seq_len: int = DEFAULT_SEQ_LEN
    input_shape: tuple[int, ...] | None = None
    clip: tuple[float, float] = CLIP
    grad_step: bool = True
    lr: float = REFERENCE_LR
    weight_decay: float = REFERENCE_WEIGHT_DECAY
    lookahead: tuple[int, float] | None = REFERENCE_LOOKAHEAD
    shuffle: float = SHUFFLE_PROBABILITY
    shuffle_every: int | None = None
    gate_bias_shift: bool = False
    saturation_threshold: float = SATURATION_THRESHOLD
    method: str = "auto"
    max_exact: int = 128
    krylov_dim: int = 32
    max_restarts: int = 1
    max_magnitude: float = MAX_MAGNITUDE
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        self.target = _target(self.target)
        if self.tolerance is not None:
            self.tolerance = _real("tolerance", self.tolerance, "a positive finite number (or "
                                   "None for the default)", lambda v: v > 0)
        self.patience = _count("patience", self.patience, 1)
        self.max_steps = _count("max_steps", self.max_steps, 0)
        self.batch_size = _count("batch_size", self.batch_size, 1)
        self.seq_len = _count("seq_len", self.seq_len, 1)
        if self.input_shape is not None:
            if isinstance(self.input_shape, int | str) or not hasattr(self.input_shape,
                                                                      "__iter__"):
                raise TypeError(f"LSCOptions.input_shape must be None or a tuple of sizes, got "
                                f"{self.input_shape!r}")
            self.input_shape = tuple(_count("input_shape", d, 1) for d in self.input_shape)
            if not self.input_shape:
                raise ValueError("LSCOptions.input_shape must hold at least one size, got ()")
        self.clip = _clip(self.clip)
        self.grad_step = _flag("grad_step", self.grad_step)
        self.lr = _real("lr", self.lr, "a finite number >= 0", lambda v: v >= 0)
        self.weight_decay = _real("weight_decay", self.weight_decay, "a finite number >= 0",
                                  lambda v: v >= 0)
        if self.lookahead is not None:
            if isinstance(self.lookahead, str) or len(tuple(self.lookahead)) != 2:
                raise TypeError(f"LSCOptions.lookahead must be None or a pair (k, alpha), got "
                                f"{self.lookahead!r}")
            k, alpha = tuple(self.lookahead)
            self.lookahead = (_count("lookahead k", k, 1),
                              _real("lookahead alpha", alpha, "a probability in [0, 1]",
                                    lambda v: 0 <= v <= 1))
        self.shuffle = _real("shuffle", self.shuffle, "a probability in [0, 1]",
                             lambda v: 0 <= v <= 1)
        if self.shuffle_every is not None:
            self.shuffle_every = _count("shuffle_every", self.shuffle_every, 1)
        self.gate_bias_shift = _flag("gate_bias_shift", self.gate_bias_shift)
        self.saturation_threshold = _real("saturation_threshold", self.saturation_threshold,
                                          "a positive finite number", lambda v: v > 0)
        if self.method not in METHODS:
            raise ValueError(f"LSCOptions.method must be one of {list(METHODS)}, got "
                             f"{self.method!r}")
        self.max_exact = _count("max_exact", self.max_exact, 0)
        self.krylov_dim = _count("krylov_dim", self.krylov_dim, 1)
        self.max_restarts = _count("max_restarts", self.max_restarts, 1)
        self.max_magnitude = _real("max_magnitude", self.max_magnitude,
                                   "a number in (0, 1]", lambda v: 0 < v <= 1)
        self.seed = _count("seed", self.seed, 0)
        if self.seed >= 2**63:  # torch.Generator takes 64 bits; the derived seeds add strides
            raise ValueError(f"LSCOptions.seed must be an int in [0, 2**63), got {self.seed}")
        self.progress = _flag("progress", self.progress)


def _count(name: str, value, low: int) -> int:
    """An integer option (a bool is refused) of at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"LSCOptions.{name} must be an int >= {low}, got "
                        f"{type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"LSCOptions.{name} must be an int >= {low}, got {value}")
    return int(value)


def _real(name: str, value, expected: str, ok) -> float:
    """A finite real option (a bool is refused) that satisfies ``ok``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"LSCOptions.{name} must be {expected}, got {type(value).__name__} "
                        f"{value!r}")
    value = float(value)
    if not math.isfinite(value) or not ok(value):
        raise ValueError(f"LSCOptions.{name} must be {expected}, got {value}")
    return value


def _flag(name: str, value) -> bool:
    """A yes/no option: a bool (numpy's included) or the ints 0 and 1."""
    if isinstance(value, bool) or type(value).__name__ in ("bool_", "bool"):
        return bool(value)
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    raise TypeError(f"LSCOptions.{name} must be True or False, got {value!r}")


def _radius(name: str, value) -> float:
    return _real(name, value, "a positive finite radius", lambda v: v > 0)


def _target(target):
    if target is None:
        return None
    if isinstance(target, str):
        if target != "unbalanced":
            raise ValueError(f"LSCOptions.target must be a positive finite radius, "
                             f"'unbalanced', a {{transition: radius}} dict or None, got "
                             f"{target!r}")
        return target
    if isinstance(target, dict):
        return {k: _radius(f"target[{k!r}]", v) for k, v in target.items()}
    return _radius("target", target)


def _clip(clip) -> tuple[float, float]:
    if isinstance(clip, str) or not hasattr(clip, "__len__") or len(clip) != 2:
        raise TypeError(f"LSCOptions.clip must be a pair (lo, hi), got {clip!r}")
    lo = _real("clip lo", clip[0], "a finite number", lambda v: True)
    hi = _real("clip hi", clip[1], "a finite number", lambda v: True)
    if not 0 < lo <= 1 <= hi:
        raise ValueError(f"LSCOptions.clip must satisfy 0 < lo <= 1 <= hi, got {tuple(clip)}")
    return lo, hi


def option_names() -> tuple[str, ...]:
    """The fields of :class:`LSCOptions` (the keyword arguments ``LSCPretrainer`` accepts)."""
    return tuple(f.name for f in fields(LSCOptions))
