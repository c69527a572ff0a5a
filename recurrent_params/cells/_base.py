"""Private base class of the recurrent cells: input checks, states, step/sequence plumbing."""

from __future__ import annotations

import math

import torch

from recurrent_params.complex_safe import ComplexSafeModule

__all__ = [
    "MODES",
    "RecurrentCell",
    "all_finite",
    "check_number",
    "check_positive_ints",
    "ring_init",
]

MODES = ("fft", "scan")  # how a linear time-invariant cell runs a sequence
#: real dtypes a complex cell runs in (its state is complex64 / complex128).
_COMPLEX_CELL_DTYPES = (torch.float32, torch.float64)


def all_finite(x: torch.Tensor) -> bool:
    """Whether every entry of ``x`` is finite: one ``isfinite().all()`` reduction.

    Inside a ``torch.func`` transform that batches ``x`` (``vmap``) a data-dependent check
    cannot run, and a meta tensor has no data; there it answers ``True`` (the caller's fast
    path)."""
    if x.is_meta:
        return True
    try:
        return bool(torch.isfinite(x).all())
    except RuntimeError:
        if not torch._C._are_functorch_transforms_active():
            raise
        return True


def check_positive_ints(owner: str, **values) -> None:
    """Raise ``ValueError`` unless every value is an int >= 1 (``bool`` is not a size)."""
    for name, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{owner}: expected {name} a positive int, got {v!r}")


def check_number(owner: str, name: str, value, *, low: float = -math.inf,
                 closed: bool = True) -> float:
    """``value`` as a float, or ``ValueError`` unless it is a finite real number ``>= low``
    (``> low`` with ``closed=False``)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and (value >= low if closed else value > low)
    if not ok:
        rng = "" if low == -math.inf else f" {'>=' if closed else '>'} {low:g}"
        raise ValueError(f"{owner}: expected {name} a finite number{rng}, got {value!r}")
    return value


def ring_init(
    n: int, r_min: float, r_max: float, max_phase: float, complex: bool = True
) -> torch.Tensor:
    r"""Eigenvalues uniform on a ring: $|\lambda|^2 \sim U[r_{min}^2, r_{max}^2]$,
    $\arg\lambda \sim U[0, \theta_{max}]$ (real: the magnitude only, positive)."""
    if not 0.0 <= r_min <= r_max <= 1.0:
        raise ValueError(f"expected 0 <= r_min <= r_max <= 1, got r_min={r_min}, r_max={r_max}")
    check_number("ring_init", "max_phase", max_phase, low=0.0)
    u = torch.rand(n, dtype=torch.float64)
    r = torch.sqrt(u * (r_max**2 - r_min**2) + r_min**2)  # (n,)
    r = r.clamp(1e-8, 1.0 - 1e-7)  # |lam| = 1 would make gamma zero; 0 has no ExpMag original
    if not complex:
        return r.to(torch.get_default_dtype())
    theta = max_phase * torch.rand(n, dtype=torch.float64)
    cdtype = torch.complex128 if torch.get_default_dtype() == torch.float64 else torch.complex64
    return torch.polar(r, theta).to(cdtype)


def normal(*shape: int, std: float, complex: bool = False) -> torch.Tensor:
    """Gaussian init; complex values have E|z|^2 = std^2 (std/sqrt 2 per part)."""
    if complex:
        return torch.complex(torch.randn(*shape), torch.randn(*shape)) * (std / math.sqrt(2))
    return torch.randn(*shape) * std


class RecurrentCell(ComplexSafeModule):
    r"""Base class of every recurrent cell of the package: $h_t = f(h_{t-1}, x_t)$,
    $y_t = g(h_t, x_t)$.

    ``forward`` / ``step`` / ``readout`` validate their inputs and fill in the state, then call
    ``_sequence(x, state, mode)`` / ``_step(x_t, state)`` / ``_readout(x_t, state)`` of the
    subclass (``mode`` is how this call runs the sequence, ``"scan"`` or ``"fft"``: the
    cell's :attr:`mode` except where the FFT mode's non-finite fallback asks for the scan,
    which it does without writing to the module, so concurrent calls never see each other's
    mode); a subclass's ``_step`` computes the new state and returns
    ``(self._readout(x_t, h), h)``, so that ``step`` and ``readout`` cannot disagree.

    Subclasses set ``d_input``, ``d_state``, ``d_output``, ``is_complex`` and own a real
    parameter ``D`` (used as the reference for device and dtype; override ``_reference``
    otherwise). Code that needs to know whether a module is one of the package's cells (the
    transition tracer of :mod:`diagnostics.transitions`) tests ``isinstance(m, RecurrentCell)``.
    """

    d_input: int
    d_state: int
    d_output: int
    is_complex: bool

    @property
    def mode(self) -> str:
        """``"fft"`` (causal convolution with the kernel, by FFT) or ``"scan"`` (the
        recurrence): how ``forward`` runs a sequence; ``step`` always runs the recurrence."""
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"{self._name}: mode must be one of {MODES}, got {value!r}")
        self._mode = value

    # reference tensor for the cell's device and real dtype
    def _reference(self) -> torch.Tensor:
        return self.D

    @property
    def real_dtype(self) -> torch.dtype:
        """The floating dtype of the cell's real parameters."""
        return self._reference().dtype

    @property
    def state_dtype(self) -> torch.dtype:
        """dtype of the hidden state (complex for complex cells)."""
        real = self.real_dtype
        if not self.is_complex:
            return real
        return torch.complex128 if real == torch.float64 else torch.complex64

    def _apply(self, fn, recurse=True):
        # A complex cell has no half / bfloat16 form (no complex bfloat16, complex32 ops are
        # missing on CPU): refuse the conversion up front, before any tensor is converted.
        if getattr(self, "is_complex", False):
            ref = self._reference()
            probe = fn(torch.zeros(1, dtype=ref.dtype, device=ref.device))
            if probe.is_floating_point() and probe.dtype not in _COMPLEX_CELL_DTYPES:
                raise TypeError(
                    f"{self._name}: a complex cell runs in float32 or float64 (complex64 / "
                    f"complex128 state), got a conversion to {probe.dtype}"
                )
        return super()._apply(fn, recurse)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """Zero state ``(batch_size, d_state)`` on the cell's device, in its state dtype."""
        ref = self._reference()
        return torch.zeros(batch_size, self.d_state, dtype=self.state_dtype, device=ref.device)

    @property
    def _name(self) -> str:
        # parametrize swaps in a subclass named "Parametrized<Cell>"; errors name the cell.
        cls = type(self)
        return cls.__bases__[0].__name__ if cls.__name__.startswith("Parametrized") else \
            cls.__name__

    def _check_input(self, x: torch.Tensor, sequence: bool) -> None:
        name = self._name
        expected = "(batch, length, d_input)" if sequence else "(batch, d_input)"
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: expected a tensor {expected}, got {type(x).__name__}")
        real = self.real_dtype
        if self.is_complex and real not in _COMPLEX_CELL_DTYPES:
            raise TypeError(
                f"{name}: a complex cell runs in float32 or float64 (complex64 / complex128 "
                f"state), but its parameters are {real}; call .float() or .double()"
            )
        ndim = 3 if sequence else 2
        if x.dim() != ndim or x.shape[-1] != self.d_input:
            shape = "(batch, length, " if sequence else "(batch, "
            raise ValueError(
                f"{name}: expected input of shape {shape}{self.d_input}), got {tuple(x.shape)}"
            )
        ref = self._reference()
        if x.dtype != ref.dtype:
            raise TypeError(f"{name}: expected input dtype {ref.dtype}, got {x.dtype}")
        if x.device != ref.device:
            raise ValueError(f"{name}: expected input on {ref.device}, got {x.device}")

    def _check_state(self, state: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if state is None:
            return None
        name = self._name
        if not isinstance(state, torch.Tensor) or state.shape != (batch, self.d_state):
            got = tuple(state.shape) if isinstance(state, torch.Tensor) else type(state).__name__
            raise ValueError(
                f"{name}: expected state of shape ({batch}, {self.d_state}), got {got}"
            )
        if state.dtype != self.state_dtype:
            raise TypeError(f"{name}: expected state dtype {self.state_dtype}, got {state.dtype}")
        ref = self._reference()
        if state.device != ref.device:
            raise ValueError(f"{name}: expected state on {ref.device}, got {state.device}")
        return state

    def forward(
        self, x: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run a whole sequence.

        Args:
            x: ``(batch, length, d_input)`` inputs.
            state: ``(batch, d_state)`` state before the first step; zeros if ``None``.

        Returns:
            ``(y, last_state)``: outputs ``(batch, length, d_output)`` and the state after the
            last step ``(batch, d_state)`` (pass it back in to continue the sequence). An
            empty batch gives empty outputs of these shapes.

        Raises:
            ValueError: a wrong shape or device, or a sequence of length 0.
            TypeError: a wrong dtype, or a complex cell in a dtype other than float32/float64.

        Non-finite input: the recurrence is causal, so a NaN or inf at step $t$ of a sequence
        makes that sequence's outputs and states NaN/inf from step $t$ on and leaves the earlier
        steps and the other sequences as they were. The FFT mode would smear it over the whole
        sequence (the transform mixes all steps), so in ``mode="fft"`` one reduction per
        call (the input's sum is finite) detects it and runs the sequences that hold a
        non-finite value on the scan instead: their outputs equal ``mode="scan"``'s. (Inside
        ``torch.func.vmap`` over the input the check cannot run and is skipped.)
        """
        self._check_input(x, sequence=True)
        state = self._check_state(state, x.shape[0])
        if x.shape[1] == 0:
            raise ValueError(
                f"{self._name}: expected a sequence of length >= 1, got input of shape "
                f"{tuple(x.shape)}"
            )
        # one reduction: a NaN/inf anywhere makes the sum non-finite (11x cheaper than
        # isfinite().all(); a rare overflow of the sum alone is sorted out row by row)
        mode = getattr(self, "_mode", "scan")
        if mode == "fft" and (x.shape[0] == 0 or not all_finite(x.detach().sum())):
            return self._scan_nonfinite_rows(x, state)
        return self._sequence(x, state, mode)

    def _scan_nonfinite_rows(self, x: torch.Tensor, state: torch.Tensor | None):
        """FFT mode's fallback: the sequences with a NaN/inf (and an empty batch) run on the
        scan, the others on the FFT; the rows are put back in order."""
        bad = ~torch.isfinite(x).flatten(1).all(1)  # (B,)
        if x.shape[0] == 0 or bool(bad.all()):
            return self._sequence(x, state, "scan")
        if not bool(bad.any()):  # every entry finite: only the sum overflowed
            return self._sequence(x, state, "fft")
        good = ~bad

        def rows(t, m):
            return None if t is None else t[m]

        y_bad, h_bad = self._sequence(x[bad], rows(state, bad), "scan")
        y_good, h_good = self._sequence(x[good], rows(state, good), "fft")
        y = y_good.new_zeros(x.shape[0], *y_good.shape[1:])
        h = h_good.new_zeros(x.shape[0], *h_good.shape[1:])
        y = y.index_put((good,), y_good).index_put((bad,), y_bad)  # (B, L, d_out)
        h = h.index_put((good,), h_good).index_put((bad,), h_bad)  # (B, d_state)
        return y, h

    def step(
        self, x_t: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance one time step.

        Args:
            x_t: ``(batch, d_input)`` input at this step.
            state: ``(batch, d_state)`` previous state; zeros if ``None``.

        Returns:
            ``(y_t, new_state)`` with ``y_t`` of shape ``(batch, d_output)``.
        """
        self._check_input(x_t, sequence=False)
        state = self._check_state(state, x_t.shape[0])
        if state is None:
            state = self.initial_state(x_t.shape[0])
        return self._step(x_t, state)

    def readout(self, x_t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        r"""The output $y_t = g(h_t, x_t)$ of the cell at a state and the same step's input.

        ``step(x_t, h_prev)`` returns ``(readout(x_t, h_t), h_t)`` with $h_t$ the new state, so
        this is the output map alone: e.g. $y_t = \mathrm{Re}(C h_t) + D x_t$ for the linear
        cells, the spikes of the state for :class:`~recurrent_params.ALIF`. The argument order
        is ``step``'s: input first, then state.

        Args:
            x_t: ``(batch, d_input)`` input at this step.
            state: ``(batch, d_state)`` state after this step's update (complex for complex
                cells).

        Returns:
            ``(batch, d_output)`` real output.

        Raises:
            ValueError: wrong shapes, a missing state, or a device mismatch.
            TypeError: wrong dtypes.

        Examples:
            >>> import torch
            >>> from recurrent_params import DenseRNN, assign_
            >>> cell = DenseRNN(1, 1, 1)
            >>> for name, v in zip("ABCD", (0.5, 1.0, 3.0, 2.0)):
            ...     assign_(cell, name, torch.tensor([[v]]))
            >>> cell.readout(torch.tensor([[1.0]]), torch.tensor([[2.0]]))  # C h + D x
            tensor([[8.]], grad_fn=<AddBackward0>)
        """
        self._check_input(x_t, sequence=False)
        if state is None:
            raise ValueError(f"{self._name}: readout needs a state (batch, {self.d_state}), "
                             "got None")
        state = self._check_state(state, x_t.shape[0])
        return self._readout(x_t, state)

    def impulse_response(self, length: int) -> torch.Tensor:
        r"""The cell's output kernel: $y_t = \sum_{k=0}^{t} R_k x_{t-k}$ from a zero state.

        For a linear time-invariant cell $h_t = A h_{t-1} + B x_t$, $y_t = C h_t + D x_t$,
        $R_0 = C B + D$ and $R_k = C A^k B$ (diagonal cells: $\mathrm{Re}$ of the complex
        sum, input normalisation included): the response at lag $k$ to a unit impulse on
        each input. Computed in closed form (baby-step giant-step powers, no loop over time) and
        differentiable in every parameter, through the parametrizations.

        Args:
            length: number of lags $L \ge 1$.

        Returns:
            ``(length, d_output, d_input)`` real tensor.

        Raises:
            TypeError: the cell is not linear time-invariant.
            ValueError: ``length`` is not a positive int.

        Examples:
            >>> import torch
            >>> from recurrent_params import DenseRNN, assign_
            >>> cell = DenseRNN(1, 1, 1)
            >>> for name, v in zip("ABCD", (0.5, 1.0, 1.0, 2.0)):
            ...     assign_(cell, name, torch.tensor([[v]]))
            >>> cell.impulse_response(3).flatten()  # C B + D, C A B, C A^2 B
            tensor([3.0000, 0.5000, 0.2500], grad_fn=<ViewBackward0>)
        """
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"{self._name}: expected length a positive int, got {length!r}")
        K, D = self._kernel(length)  # (L, d_out, d_in), (d_out, d_in)
        return torch.cat([K[:1] + D, K[1:]], 0)

    def _kernel(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(K, D)``: the kernel without the skip term and the skip matrix."""
        raise TypeError(f"{self._name} is not linear time-invariant: it has no impulse response")

    def _sequence(self, x, state, mode):  # pragma: no cover - abstract
        raise NotImplementedError

    def _step(self, x_t, state):  # pragma: no cover - abstract
        raise NotImplementedError

    def _readout(self, x_t, state):  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (
            f"d_input={self.d_input}, d_state={self.d_state}, d_output={self.d_output}, "
            f"complex={self.is_complex}"
        )
