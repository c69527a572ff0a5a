r"""Input normalisation $\gamma(\lambda)$ of a diagonal recurrence.

$h_t = \lambda \odot h_{t-1} + \gamma(\lambda) \odot (B x_t)$ keeps $E[|h_t|^2]$ of order one
however close $|\lambda|$ gets to 1.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["GAMMA_KINDS", "InputNorm", "input_gamma", "normalize_input"]

#: every value accepted as ``kind``.
GAMMA_KINDS: tuple[str, ...] = ("iid", "correlated", "l1", "none", "learned", "learned-direct")
#: the kinds that own a parameter instead of reading lam.
_LEARNED_KINDS = ("learned", "learned-direct")


def _squared_magnitude(lam: torch.Tensor) -> torch.Tensor:
    # |lam|^2 without the non-differentiable sqrt of abs() at 0.
    return lam.real**2 + lam.imag**2 if lam.is_complex() else lam**2


def _check_rho(rho: float) -> float:
    try:
        rho = float(rho)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"rho (input autocorrelation) must be a number in (-1, 1), got {rho!r}"
        ) from err
    if not -1.0 < rho < 1.0 or math.isnan(rho):
        raise ValueError(f"rho (input autocorrelation) must lie in (-1, 1), got {rho}")
    return rho


def input_gamma(
    lam: torch.Tensor, kind: str = "iid", rho: float = 0.0
) -> torch.Tensor:
    r"""Normaliser $\gamma(\lambda)$, a real tensor of ``lam``'s shape.

    * ``"iid"``: $\sqrt{1 - |\lambda|^2}$, exact for i.i.d. unit-variance inputs (the LRU choice).
    * ``"correlated"``: $\sqrt{(1-\lambda^2)(1-\rho\lambda)/(1+\rho\lambda)}$, exact for real
      $\lambda$ and inputs with autocorrelation $E[x_t x_{t+d}] = \rho^{|d|}$.
    * ``"l1"``: $1 - |\lambda|$.
    * ``"none"``: ones.

    With the exact normaliser, $E[h^2] = 1$ in the stationary regime.

    Args:
        lam: eigenvalues, real or complex, every $|\lambda| \le 1$.
        kind: one of ``"iid"``, ``"correlated"``, ``"l1"``, ``"none"``.
        rho: input autocorrelation for ``"correlated"``, in $(-1, 1)$.

    Raises:
        ValueError: unknown kind, $|\lambda| > 1$ or NaN, complex ``lam`` with ``"correlated"``.

    References:
        Zucchet & Orvieto, https://arxiv.org/abs/2405.21064 (section 3.1).

    Examples:
        >>> import torch
        >>> input_gamma(torch.tensor([0.6, 0.8j]))
        tensor([0.8000, 0.6000])
        >>> input_gamma(torch.tensor([0.5]), "correlated", rho=0.5)  # sqrt(0.75 * 0.75 / 1.25)
        tensor([0.6708])
    """
    if not isinstance(lam, torch.Tensor):
        raise TypeError(f"input_gamma: lam must be a tensor, got {type(lam).__name__}")
    if kind in _LEARNED_KINDS:
        raise ValueError(
            f"input_gamma: {kind!r} needs parameters; use InputNorm({kind!r}, lam=...)"
        )
    if kind not in GAMMA_KINDS:
        raise ValueError(f"input_gamma: kind must be one of {GAMMA_KINDS}, got {kind!r}")
    r2 = _squared_magnitude(lam)
    bad = torch.isnan(r2) | (r2 > 1)
    try:
        any_bad = bool(bad.any())
    except RuntimeError:  # inside torch.func.vmap data-dependent checks are impossible: skip
        if not torch._C._are_functorch_transforms_active():
            raise
        any_bad = False
    if any_bad:
        raise ValueError(
            f"input_gamma needs every |lam| <= 1 and no NaN: {int(bad.sum())} of {lam.numel()} "
            f"entries are not (max |lam|^2 = {r2.max().item():.6g})"
        )
    if kind == "iid":
        return torch.sqrt(1 - r2)
    if kind == "l1":
        return 1 - torch.sqrt(r2)
    if kind == "none":
        return torch.ones_like(r2)
    rho = _check_rho(rho)
    if lam.is_complex():
        raise ValueError("input_gamma: the 'correlated' normaliser is defined for real lam only")
    return torch.sqrt((1 - r2) * (1 - rho * lam) / (1 + rho * lam))


class InputNorm(nn.Module):
    r"""$\gamma(\lambda)$ as a module, usable as a parametrization of an input matrix ``B``.

    ``InputNorm(kind).gamma(lam)`` evaluates the normaliser; ``kind="learned"`` owns a
    parameter ``gamma_log`` (one per eigenvalue) initialised at
    $\log\sqrt{1-|\lambda_0|^2}$ from the eigenvalues ``lam`` given at construction, with
    $\gamma = \exp(\gamma_{\log})$ (the LRU choice); ``kind="learned-direct"`` owns a
    parameter ``gamma_direct`` that *is* $\gamma$, initialised at $\sqrt{1-|\lambda_0|^2}$
    (the authors' learned normaliser for eigenvalues in real/imaginary or polar coordinates,
    arXiv 2405.21064). A learned $\gamma$ never reads $\lambda$, so it stays defined when a
    trained eigenvalue leaves the unit disk, where $\sqrt{1-|\lambda|^2}$ is not.

    Bound to a module by :func:`normalize_input`, it becomes a parametrization of that module's
    input matrix: the effective ``B`` is $\gamma(\lambda)$ broadcast along ``state_dim`` times the
    stored ``B``, where $\lambda$ is read from the same module at every call (so it follows
    training, and a parametrized ``lam`` works too).

    Args:
        kind: ``"iid"``, ``"correlated"``, ``"l1"``, ``"none"``, ``"learned"`` or
            ``"learned-direct"``.
        rho: input autocorrelation for ``"correlated"``.
        lam: initial eigenvalues, required for ``"learned"`` and ``"learned-direct"``.

    References:
        Zucchet & Orvieto, https://arxiv.org/abs/2405.21064 (section 3.1);
        Orvieto et al., https://arxiv.org/abs/2303.06349 (learned normalisation).

    Examples:
        >>> import torch
        >>> norm = InputNorm("learned", lam=torch.tensor([0.6, 0.8]))
        >>> norm.gamma(torch.tensor([0.6, 0.8]))
        tensor([0.8000, 0.6000], grad_fn=<ExpBackward0>)
    """

    def __init__(self, kind: str = "iid", rho: float = 0.0, lam: torch.Tensor | None = None):
        super().__init__()
        if kind not in GAMMA_KINDS:
            raise ValueError(f"InputNorm: kind must be one of {GAMMA_KINDS}, got {kind!r}")
        self.kind = kind
        self.rho = _check_rho(rho) if kind == "correlated" else float(rho)
        if kind in _LEARNED_KINDS:
            if lam is None:
                raise ValueError(f"InputNorm({kind!r}) needs the initial eigenvalues: lam=...")
            init = input_gamma(lam.detach(), "iid")
            if (init <= 0).any():
                raise ValueError(f"InputNorm({kind!r}) needs every initial |lam| < 1")
            setattr(self, self._held_name, nn.Parameter(self._stored(init)))
        # Binding to the owning module, set by normalize_input. Stored outside _modules so that
        # state_dict / .to() / repr do not recurse into the owner; deepcopy maps it through memo.
        object.__setattr__(self, "_owner", None)
        self.eig_name = "lam"
        self.state_dim = 0
        self._registering = False

    @property
    def _held_name(self) -> str:
        # the parameter a learned kind owns: log(gamma) for "learned", gamma itself otherwise
        return "gamma_log" if self.kind == "learned" else "gamma_direct"

    def _stored(self, gamma: torch.Tensor) -> torch.Tensor:
        return torch.log(gamma) if self.kind == "learned" else gamma

    def gamma(self, lam: torch.Tensor) -> torch.Tensor:
        """The normaliser for eigenvalues ``lam`` (a real tensor of ``lam``'s shape)."""
        if self.kind in _LEARNED_KINDS:
            held = getattr(self, self._held_name)
            if lam.shape != held.shape:
                raise ValueError(
                    f"InputNorm({self.kind!r}) holds {self._held_name} of shape "
                    f"{tuple(held.shape)} but got lam of shape {tuple(lam.shape)}"
                )
            return torch.exp(held) if self.kind == "learned" else held
        return input_gamma(lam, self.kind, self.rho)

    @torch.no_grad()
    def reset_gamma_(self, lam: torch.Tensor) -> None:
        """Set a learned $\\gamma$ to $\\sqrt{1 - |\\lambda|^2}$ of ``lam``, the value a fresh
        one would hold for these eigenvalues; the fixed kinds, which read ``lam`` at every
        call, have nothing to reset."""
        if self.kind in _LEARNED_KINDS:
            held = getattr(self, self._held_name)
            held.copy_(self._stored(torch.sqrt(1 - lam.abs() ** 2)).to(held.dtype))

    def _broadcast_gamma(self, B: torch.Tensor) -> torch.Tensor:
        owner = self._owner
        if owner is None:
            raise RuntimeError(
                "InputNorm is not bound to a module; register it with "
                "recurrent_params.normalize_input(module, 'B', ...)"
            )
        g = self.gamma(getattr(owner, self.eig_name))
        dim = self.state_dim % B.dim()
        if B.shape[dim] != g.numel():
            raise ValueError(
                f"InputNorm: {self.eig_name} has {g.numel()} entries but the normalised tensor "
                f"has size {B.shape[dim]} along state_dim={self.state_dim}"
            )
        shape = [1] * B.dim()
        shape[dim] = -1
        return g.reshape(shape).to(B.real.dtype)

    def forward(self, B: torch.Tensor) -> torch.Tensor:
        """Effective input matrix $\\gamma(\\lambda) \\odot B$ (broadcast along ``state_dim``)."""
        return self._broadcast_gamma(B) * B

    def right_inverse(self, B: torch.Tensor) -> torch.Tensor:
        """Stored matrix whose normalised value is ``B`` (identity while registering).

        Raises:
            ValueError: $\\gamma(\\lambda)$ is 0 or not finite for some eigenvalue (e.g.
                $|\\lambda| = 1$ with ``"iid"``): no stored matrix gives that effective ``B``.
        """
        if self._registering:
            return B
        with torch.no_grad():
            g = self._broadcast_gamma(B)
            bad = (g == 0) | ~torch.isfinite(g)
            if bool(bad.any()):
                raise ValueError(
                    f"InputNorm({self.kind!r}): cannot set the effective input matrix: "
                    f"gamma({self.eig_name}) is 0 or not finite for "
                    f"{int(bad.sum())} of {g.numel()} eigenvalues (|{self.eig_name}| = 1 gives "
                    "gamma = 0 for 'iid' and 'l1'), so no stored matrix has that value; move "
                    f"{self.eig_name} inside the unit disk first"
                )
            return B / g

    def extra_repr(self) -> str:
        text = f"kind={self.kind!r}, eig_name={self.eig_name!r}, state_dim={self.state_dim}"
        return text + (f", rho={self.rho}" if self.kind == "correlated" else "")


def normalize_input(
    module: nn.Module,
    tensor_name: str = "B",
    *,
    eig_name: str = "lam",
    kind: str = "iid",
    rho: float = 0.0,
    state_dim: int = 0,
    keep_value: bool = False,
) -> InputNorm:
    r"""Register :class:`InputNorm` on ``module.<tensor_name>`` and return it.

    Afterwards ``module.B`` reads $\gamma(\lambda) \odot B_{\text{stored}}$ with $\lambda$ taken
    from ``module.<eig_name>`` at each access. By default the current ``B`` becomes the stored
    matrix, so the normalisation is applied on top of the existing weights; with
    ``keep_value=True`` the effective ``B`` is left unchanged instead (the stored matrix is
    divided by $\gamma$). Assigning ``module.B = value`` later sets the effective matrix.

    Args:
        module: owner of both tensors.
        tensor_name: the input matrix to normalise.
        eig_name: the eigenvalue tensor (plain or parametrized) of the same module.
        kind: see :class:`InputNorm`.
        rho: input autocorrelation for ``"correlated"``.
        state_dim: the dimension of the input matrix that indexes the state (rows by default).
        keep_value: keep the effective value instead of the stored one.

    Raises:
        ValueError: ``module`` has no tensor ``eig_name``, or ``module.<tensor_name>`` already
            carries an :class:`InputNorm` (a second one would multiply by $\gamma$ twice).

    Examples:
        >>> import torch
        >>> m = torch.nn.Module()
        >>> m.lam = torch.nn.Parameter(torch.tensor([0.6, 0.8]))
        >>> m.B = torch.nn.Parameter(torch.ones(2, 3))
        >>> _ = normalize_input(m, "B", kind="iid")
        >>> m.B[:, 0]
        tensor([0.8000, 0.6000], grad_fn=<SelectBackward0>)
    """
    lam = getattr(module, eig_name, None)
    if not isinstance(lam, torch.Tensor):
        raise ValueError(f"normalize_input: {type(module).__name__} has no tensor {eig_name!r}")
    target = getattr(module, tensor_name, None)
    if not isinstance(target, torch.Tensor):
        raise ValueError(
            f"normalize_input: {type(module).__name__} has no tensor {tensor_name!r} to normalise"
        )
    if isinstance(state_dim, bool) or not isinstance(state_dim, int) or \
            not -target.dim() <= state_dim < target.dim():
        raise ValueError(
            f"normalize_input: state_dim must be an int in [{-target.dim()}, {target.dim()}) "
            f"for {tensor_name!r} of shape {tuple(target.shape)}, got {state_dim!r}"
        )
    if parametrize.is_parametrized(module, tensor_name):
        held = [p for p in module.parametrizations[tensor_name] if isinstance(p, InputNorm)]
        if held:
            owner = type(module).__name__.removeprefix("Parametrized")
            raise ValueError(
                f"normalize_input: {owner}.{tensor_name} is already normalised by "
                f"InputNorm(kind={held[0].kind!r}); a second InputNorm would multiply it by "
                "gamma twice. Build the cell with normalization=None to choose gamma yourself, "
                f"or call parametrize.remove_parametrizations(module, {tensor_name!r}) first"
            )
    norm = InputNorm(kind, rho=rho, lam=lam.detach() if kind in _LEARNED_KINDS else None)
    norm.to(device=lam.device, dtype=lam.real.dtype)
    object.__setattr__(norm, "_owner", module)
    norm.eig_name = eig_name
    norm.state_dim = state_dim
    norm._registering = not keep_value
    try:
        parametrize.register_parametrization(module, tensor_name, norm)
    finally:
        norm._registering = False
    return norm
