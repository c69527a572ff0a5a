r"""The linear teacher RNN of the curse-of-memory experiments, and loading it into students.

The teacher (Zucchet & Orvieto, arXiv 2405.21064, teacher-student task) is a real linear RNN
$h_t = A h_{t-1} + B x_t$, $y_t = C h_t + D x_t$ with 1-D input and output. $A$ starts as a Gaussian
matrix; every eigenvalue $l$ of it is moved radially to magnitude
$\nu_0 + (1 - \nu_0)\tanh(|l|)$ (so all magnitudes lie in $[\nu_0, 1)$) and $A$ is rebuilt
from its eigenvectors. Conjugate pairs stay conjugate, so $A$ is real.

Any student of this package can be set to the teacher's function exactly
(:func:`load_teacher`): a :class:`~recurrent_params.DenseRNN` copies $(A, B, C, D)$; a complex
:class:`~recurrent_params.DiagonalRNN` or an :class:`~recurrent_params.LRU` receives the
diagonalisation $A = P \Lambda P^{-1}$: $\lambda = \mathrm{eig}(A)$, $B' = P^{-1} B$,
$C' = C P$, $D' = D$, so that $\mathrm{Re}(C' h'_t) = C h_t$ (the imaginary part is zero up
to rounding because eigenvalues and eigenvectors come in conjugate pairs). Parametrized tensors
(``ExpMag`` on ``lam``, ``InputNorm`` on ``B``) are set through
:func:`~recurrent_params.assign_`. A student with more states than the teacher gets the
teacher in its first ``d_state`` states and zero input and output weights elsewhere.

Public helpers (used by the ``hessian`` and ``teacher-student`` experiments):
:func:`make_teacher`, :func:`teacher_data`, :func:`load_teacher`, class :class:`Teacher`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from recurrent_params import LRU, DenseRNN, DiagonalRNN, InputNorm, assign_

__all__ = ["Teacher", "load_teacher", "make_teacher", "remap_magnitudes", "teacher_data"]


@dataclass
class Teacher:
    """A linear teacher RNN ``h_t = A h_{t-1} + B x_t``, ``y_t = C h_t + D x_t``.

    Attributes:
        A: ``(N, N)`` real recurrent matrix.
        B: ``(N, 1)`` input weights.
        C: ``(1, N)`` output weights.
        D: ``(1, 1)`` feed-through (``N(0, 1)`` as in the authors' code; zero with
            ``make_teacher(..., feedthrough=False)``).
        nu0: the magnitude floor used to build ``A``.
        seed: the seed it was drawn with.
    """

    A: torch.Tensor
    B: torch.Tensor
    C: torch.Tensor
    D: torch.Tensor
    nu0: float
    seed: int

    @property
    def d_state(self) -> int:
        """Number of hidden units $N$."""
        return self.A.shape[0]

    @property
    def dtype(self) -> torch.dtype:
        """Real dtype of the weights."""
        return self.A.dtype

    def eigendecomposition(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lam, P)`` with ``A = P diag(lam) P^-1`` (complex, in the complex dtype)."""
        return torch.linalg.eig(self.A)

    @property
    def eigenvalues(self) -> torch.Tensor:
        """Complex eigenvalues of ``A`` ``(N,)``."""
        return torch.linalg.eigvals(self.A)

    def module(self, dtype: torch.dtype | None = None) -> DenseRNN:
        """The teacher as a :class:`~recurrent_params.DenseRNN` (in ``dtype``, default its own)."""
        rnn = DenseRNN(1, self.d_state, 1).to(dtype=dtype or self.dtype, device=self.A.device)
        load_teacher(rnn, self)
        return rnn

    @torch.no_grad()
    def impulse_response(self, length: int) -> torch.Tensor:
        """$R_0 = C B + D$, $R_k = C A^k B$: ``(length, 1, 1)``, computed in float64 and
        returned in the teacher's dtype (see ``RecurrentCell.impulse_response``)."""
        return self.module(torch.float64).impulse_response(length).to(self.dtype)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher outputs ``(batch, length, 1)`` for inputs ``x`` ``(batch, length, 1)``."""
        if x.dim() != 3 or x.shape[-1] != 1:
            raise ValueError(f"expected x of shape (batch, length, 1), got {tuple(x.shape)}")
        return self.module()(x.to(self.dtype))[0]


@torch.no_grad()
def remap_magnitudes(a: torch.Tensor, nu0: float = 0.0) -> torch.Tensor:
    r"""$\mathrm{Re}(V \Lambda' V^{-1})$: each eigenvalue $l$ of ``a`` becomes
    $(\nu_0 + (1 - \nu_0)\tanh|l|)\, l/|l|$ (phase kept; computed in float64, returned in
    ``a``'s dtype).

    With ``nu0`` the magnitudes land in $[\nu_0, 1)$ (the teacher); with ``nu0 = 0`` they become
    $\tanh|l|$ (the authors' dense student, radius about 0.76 at most for a Gaussian
    $N(0, 1/N)$ matrix).
    """
    lam, v = torch.linalg.eig(a.double())
    mag = lam.abs().clamp_min(1e-30)
    lam = lam / mag * (nu0 + (1.0 - nu0) * torch.tanh(mag))
    return (v @ torch.diag(lam) @ torch.linalg.inv(v)).real.to(a.dtype)


def make_teacher(
    nu0: float,
    d_state: int = 10,
    *,
    seed: int = 0,
    feedthrough: bool = True,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Teacher:
    r"""Draw a teacher whose eigenvalue magnitudes lie in $[\nu_0, 1)$.

    $A_0$ has i.i.d. $N(0, 1/N)$ entries; each eigenvalue $l$ of $A_0$ becomes
    $(\nu_0 + (1 - \nu_0)\tanh|l|)\, l/|l|$ and $A = \mathrm{Re}(P \Lambda' P^{-1})$. $B$ and
    $C$ have i.i.d. $N(0, 1)$ and $N(0, 1/N)$ entries, the feed-through $D \sim N(0, 1)$
    (drawn after $C$, so $A, B, C$ do not depend on ``feedthrough``).

    Args:
        nu0: magnitude floor in $[0, 1)$ (the paper sweeps 0.36 ... 0.99).
        d_state: hidden units $N$ (10 in the paper).
        seed: random seed (the draw is done in float64 on the CPU, then cast).
        feedthrough: draw $D$ (the authors' teacher); ``False`` sets $D = 0$.
        dtype: real dtype of the weights.
        device: device of the weights.

    Returns:
        A :class:`Teacher`.

    References:
        Zucchet & Orvieto, "Recurrent neural networks: vanishing and exploding gradients are
        not the end of the story", arXiv 2405.21064 (https://arxiv.org/abs/2405.21064).

    Examples:
        >>> t = make_teacher(0.99, d_state=6, seed=1)
        >>> mags = t.eigenvalues.abs()
        >>> bool(((mags >= 0.99) & (mags < 1)).all()), t.A.dtype
        (True, torch.float64)
    """
    if not 0.0 <= nu0 < 1.0:
        raise ValueError(f"nu0 must be in [0, 1), got {nu0}")
    if not isinstance(d_state, int) or d_state < 1:
        raise ValueError(f"d_state must be a positive int, got {d_state!r}")
    gen = torch.Generator().manual_seed(seed)
    a0 = torch.randn(d_state, d_state, dtype=torch.float64, generator=gen) / math.sqrt(d_state)
    a = remap_magnitudes(a0, nu0)
    b = torch.randn(d_state, 1, dtype=torch.float64, generator=gen)
    c = torch.randn(1, d_state, dtype=torch.float64, generator=gen) / math.sqrt(d_state)
    d = torch.randn(1, 1, dtype=torch.float64, generator=gen)
    if not feedthrough:
        d.zero_()
    to = dict(dtype=dtype, device=device)
    return Teacher(A=a.to(**to), B=b.to(**to), C=c.to(**to), D=d.to(**to), nu0=nu0, seed=seed)


def teacher_data(
    teacher: Teacher,
    batch_size: int,
    length: int,
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``x ~ N(0, 1)`` ``(batch, length, 1)`` and teacher outputs ``y`` (same shape).

    Args:
        teacher: the teacher.
        batch_size: number of sequences.
        length: sequence length $T$ (300 in the paper).
        generator: random generator for the inputs (drawn on the CPU, then moved).
        seed: convenience alternative to ``generator``.

    Examples:
        >>> t = make_teacher(0.9, d_state=4)
        >>> x, y = teacher_data(t, 2, 50, seed=0)
        >>> tuple(x.shape), tuple(y.shape), y.dtype
        ((2, 50, 1), (2, 50, 1), torch.float64)
    """
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, length, 1, dtype=teacher.dtype, generator=generator)
    x = x.to(teacher.A.device)  # (B, T, 1)
    return x, teacher(x)


@torch.no_grad()
def load_teacher(student: nn.Module, teacher: Teacher) -> nn.Module:
    """Set a student cell so that it computes exactly the teacher's function.

    Supported students: :class:`~recurrent_params.DenseRNN` (copies ``A, B, C``),
    complex :class:`~recurrent_params.DiagonalRNN` and :class:`~recurrent_params.LRU`
    (``lam = eig(A)``, ``B' = P^-1 B``, ``C' = C P``), with 1-D input and output and at least
    ``teacher.d_state`` states; ``D`` is the teacher's. A learned normaliser on ``B``
    (``InputNorm("learned")`` or ``"learned-direct"``) is re-initialised at
    $\\gamma = \\sqrt{1 - |\\lambda|^2}$ of the loaded eigenvalues (the value a freshly
    initialised cell would hold), and the stored ``B`` compensates, so the effective ``B`` is
    exactly ``P^-1 B``.

    Args:
        student: the cell to overwrite (in place).
        teacher: the teacher.

    Returns:
        The student.

    Raises:
        TypeError: unsupported student (e.g. a real ``DiagonalRNN``, which cannot represent
            complex eigenvalues).
        ValueError: wrong input/output sizes or too few states.

    Examples:
        >>> import torch
        >>> t = make_teacher(0.95, d_state=4)
        >>> student = load_teacher(DiagonalRNN(1, 4, 1).double(), t)
        >>> x, y = teacher_data(t, 2, 30, seed=0)
        >>> float((student(x)[0] - y).abs().max()) < 1e-12
        True
    """
    name = type(student).__name__
    if getattr(student, "d_input", None) != 1 or getattr(student, "d_output", None) != 1:
        raise ValueError(f"{name}: the teacher needs d_input = d_output = 1")
    n, ns = teacher.d_state, getattr(student, "d_state", 0)
    if ns < n:
        raise ValueError(f"{name} has d_state={ns}, the teacher needs at least {n}")
    real = student.real_dtype if hasattr(student, "real_dtype") else teacher.dtype
    device = next(student.parameters()).device
    if isinstance(student, DenseRNN):
        a = student.A.detach().clone()
        a[:n, :] = 0
        a[:, :n] = 0
        a[:n, :n] = teacher.A.to(a)
        b = torch.zeros(ns, 1, dtype=teacher.dtype)
        b[:n] = teacher.B.cpu()
        c = torch.zeros(1, ns, dtype=teacher.dtype)
        c[:, :n] = teacher.C.cpu()
        for key, value in (("A", a), ("B", b), ("C", c)):
            assign_(student, key, value.to(dtype=real, device=device))
        assign_(student, "D", teacher.D.reshape(student.D.shape).to(student.D))
        return student
    if isinstance(student, (DiagonalRNN, LRU)):
        if not student.is_complex:
            raise TypeError(
                f"{name} is real: it cannot hold the teacher's complex eigenvalues; build it "
                "with complex=True"
            )
        lam_t, p = teacher.eigendecomposition()  # (N,), (N, N)
        b_t = torch.linalg.solve(p, teacher.B.to(p.dtype))  # (N, 1) = P^-1 B
        c_t = teacher.C.to(p.dtype) @ p  # (1, N) = C P
        cplx = student.lam.dtype if student.lam.is_complex() else p.dtype
        lam = student.lam.detach().clone().to(cplx)
        lam[:n] = lam_t.to(device=device)
        b = torch.zeros(ns, 1, dtype=cplx, device=device)
        b[:n] = b_t.to(device)
        c = torch.zeros(1, ns, dtype=cplx, device=device)
        c[:, :n] = c_t.to(device)
        assign_(student, "lam", lam)
        _reset_learned_gamma(student, lam)
        assign_(student, "B", b)
        assign_(student, "C", c)
        assign_(student, "D", teacher.D.reshape(student.D.shape).to(student.D))
        return student
    raise TypeError(f"load_teacher: unsupported student {name}; expected DenseRNN, DiagonalRNN "
                    "or LRU")


def _reset_learned_gamma(student: nn.Module, lam: torch.Tensor) -> None:
    from torch.nn.utils import parametrize

    if not parametrize.is_parametrized(student, "B"):
        return
    for module in student.parametrizations.B:
        if isinstance(module, InputNorm):
            module.reset_gamma_(lam)
