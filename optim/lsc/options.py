r"""The tuning knobs of :class:`~optim.LSCPretrainer`, in one dataclass.

``LSCPretrainer(model, inputs, **options)`` accepts every field below as a keyword argument
(``LSCPretrainer(model, max_steps=50)``), or a whole :class:`LSCOptions` as ``options=``
(keywords then override its fields). Every option is also readable on the pre-trainer
(``pre.max_steps``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from diagnostics.transitions import DEFAULT_SEQ_LEN
from optim.lsc.drivers import MAX_MAGNITUDE
from optim.lsc.measure import SATURATION_THRESHOLD

__all__ = ["LSCOptions", "CLIP", "SHUFFLE_PROBABILITY", "REFERENCE_LR", "REFERENCE_WEIGHT_DECAY",
           "REFERENCE_LOOKAHEAD", "option_names"]

CLIP = (0.85, 1.15)
"""Bounds of the multiplicative factor per step: the reference's ``clip(t/rho, 0.85, 1.15)``."""
SHUFFLE_PROBABILITY = 1 / 3
"""Probability per step of permuting every kernel: the reference's "about 1/3"."""
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
        max_steps: the hard limit on steps (it never runs longer).
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
        max_restarts: Arnoldi passes at most. The default single pass of 32 vectors keeps a
            step within 10x of a forward+backward for an LSTM of width 256; its mean radii
            were within 1.5% of the exact ones there (benchmarks/lsc.py), well inside the
            tolerance. ``transition_radii`` itself restarts up to 4 times.
        max_magnitude: cap on $|\lambda|$ when eigenvalues are rescaled.
        seed: seeds the generator used for inputs, time steps, shuffles and start vectors.
        progress: show a tqdm bar.

    Raises:
        ValueError: a probability outside [0, 1], ``clip`` not ``0 < lo <= 1 <= hi``, a count
            below 1.
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
        if not 0.0 <= self.shuffle <= 1.0:
            raise ValueError(f"shuffle is a probability in [0, 1], got {self.shuffle}")
        lo, hi = self.clip
        if not 0 < lo <= 1 <= hi:
            raise ValueError(f"clip must satisfy 0 < lo <= 1 <= hi, got {self.clip}")
        if (self.max_steps < 1 or self.patience < 1 or self.batch_size < 1
                or self.seq_len < 1):
            raise ValueError("max_steps, patience, batch_size and seq_len must be >= 1")
        if self.shuffle_every is not None and self.shuffle_every < 1:
            raise ValueError(f"shuffle_every must be None or >= 1, got {self.shuffle_every}")
        self.input_shape = None if self.input_shape is None else tuple(self.input_shape)
        self.clip = (float(lo), float(hi))
        self.shuffle = float(self.shuffle)
        self.gate_bias_shift = bool(self.gate_bias_shift)
        self.saturation_threshold = float(self.saturation_threshold)


def option_names() -> tuple[str, ...]:
    """The fields of :class:`LSCOptions` (the keyword arguments ``LSCPretrainer`` accepts)."""
    return tuple(f.name for f in fields(LSCOptions))
