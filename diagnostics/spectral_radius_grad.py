r"""The spectral radius of a batch of matrices, differentiable where eigenvalues repeat.

``torch.linalg.eigvals(m).abs().amax(-1)`` has the right value but a fragile gradient: the
backward of ``eigvals`` solves with the whole eigenvector matrix $V$, which is singular as soon
as *any* eigenvalue of $m$ repeats or is defective (a rank-1 Jacobian has $n-1$ zero
eigenvalues), even when the dominant eigenvalue, the only one the radius depends on, is
simple. :func:`differentiable_spectral_radius` differentiates the dominant eigenvalue alone.
"""

from __future__ import annotations

import torch

__all__ = ["differentiable_spectral_radius"]


def _tolerances(dtype: torch.dtype) -> tuple[float, float]:
    eps = torch.finfo(dtype).eps
    return eps ** 0.5, eps ** 0.5  # (modulus ties, eigenvalue conditioning |u^H v|)


def _is_zero(rho: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """rho <= eps ||M||_F, or below the smallest normal number (no phase is computed there)."""
    info = torch.finfo(M.real.dtype)
    return rho <= (info.eps * torch.linalg.matrix_norm(M)).clamp_min(info.tiny)


def _phase(lam: torch.Tensor) -> torch.Tensor:
    """lam / |lam| through the angle (finite for subnormal lam, where complex division is NaN)."""
    return torch.polar(torch.ones_like(lam.real), lam.angle())


def _projector(M: torch.Tensor, lam: torch.Tensor, mult: int, tol: float
               ) -> torch.Tensor | None:
    r"""Spectral projector of the eigenvalue cluster ``lam`` (``mult`` eigenvalues) of one
    matrix, from the null spaces of $(M-\lambda I)^{p}$ with the smallest $p$ (the index of
    $\lambda$: 1 when it is semisimple) at which they reach dimension ``mult``; ``None`` when
    they do not, do not pair, or LAPACK fails. Each power is rescaled to unit norm."""
    n = M.shape[-1]
    A = M - lam * torch.eye(n, dtype=M.dtype, device=M.device)
    Ap = A
    for _ in range(mult):
        norm = torch.linalg.matrix_norm(Ap)
        if float(norm) == 0.0:  # M = lam I on the whole space (or a nilpotent power)
            eye = torch.eye(n, dtype=M.dtype, device=M.device)
            return eye if mult == n else None
        Ap = Ap / norm
        try:
            U, sv, Vh = torch.linalg.svd(Ap)
        except torch.linalg.LinAlgError:
            return None
        if float(sv[n - mult]) <= tol * float(sv[0]):  # nullity reached mult
            Um, Vm = U[:, n - mult:], Vh[n - mult:].mH  # left / right generalized eigenspaces
            S = Um.mH @ Vm  # (mult, mult), invertible iff the two spaces pair
            if float(torch.linalg.svdvals(S)[-1]) < tol:
                return None
            return Vm @ torch.linalg.solve(S, Um.mH)
        Ap = Ap @ A
    return None


def _general_gradient(M: torch.Tensor, vals: torch.Tensor) -> torch.Tensor:
    """Gradient of the radius of ONE matrix whose dominant eigenvalue is not simple.

    Computed in float64 / complex128 (no subnormal powers for float32 input) with the
    tolerances of ``M``'s own dtype; returned in ``vals``' dtype.
    """
    tie, cond = _tolerances(M.real.dtype)
    mod = vals.abs()
    rho = mod.max()
    if bool(_is_zero(rho, M)):
        return torch.zeros_like(M, dtype=vals.dtype)  # rho = 0: the fallback's value is 0
    top = vals[mod >= rho * (1 - tie)].to(torch.complex128)
    clusters: list[list[torch.Tensor]] = []
    for lam in top:  # group the tied eigenvalues that are (numerically) equal
        for c in clusters:
            if float((lam - torch.stack(c).mean()).abs()) <= tie ** 0.5 * float(rho):
                c.append(lam)
                break
        else:
            clusters.append([lam])
    G = torch.zeros_like(M, dtype=torch.complex128)
    for c in clusters:
        lam = torch.stack(c).mean()
        if not M.is_complex() and abs(float(lam.imag)) <= tie * float(rho):
            lam = lam.real  # a real eigenvalue of a real matrix: real SVDs (4x cheaper)
            P = _projector(M.double(), lam, len(c), cond)
        else:
            P = _projector(M.to(torch.complex128), lam, len(c), cond)
        if P is None:
            return _radial_fallback(M, rho).to(vals.dtype)
        G = G + _phase(lam) * P.mH
    return (G / len(top)).to(vals.dtype)


def _radial_fallback(M: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    r"""$\rho\,M/\|M\|_F^2$: the part of the gradient fixed by $\rho(cM)=c\,\rho(M)$ alone."""
    big = M.abs().amax((-2, -1), keepdim=True)
    ok = big > torch.finfo(M.real.dtype).tiny  # else: rho = 0 and the gradient is 0
    big = torch.where(ok, big, torch.ones_like(big))
    Ms = M / big  # scaled so that ||Ms||_F^2 neither underflows nor overflows
    fro2 = (Ms.abs() ** 2).sum((-2, -1), keepdim=True)
    return torch.where(ok, (rho[..., None, None] / big) * Ms / fro2, torch.zeros_like(M))


def _radius_gradient(M: torch.Tensor, vals: torch.Tensor) -> torch.Tensor:
    """d rho / d M for a batch ``(N, n, n)`` (complex; the caller takes the real part)."""
    tie, cond = _tolerances(M.real.dtype)
    N = M.shape[0]
    mod = vals.abs()
    rho, idx = mod.max(-1)
    rows = torch.arange(N, device=M.device)
    lam = vals[rows, idx]  # (N,)
    ties = (mod >= rho[:, None] * (1 - tie)).sum(-1)
    simple = ties == 1
    if not M.is_complex():  # a real matrix: lam and conj(lam) give the same real gradient
        pair = (vals - lam.conj()[:, None]).abs() <= tie * rho[:, None]
        simple |= (ties == 2) & (lam.imag.abs() > tie * rho) & pair.any(-1)
    simple &= ~_is_zero(rho, M)
    G = torch.zeros(M.shape, dtype=vals.dtype, device=M.device)
    if bool(simple.any()):
        Gs = _simple_gradient(M[simple], lam[simple], rho[simple], cond)
        if Gs is None:  # LAPACK did not converge on the batch: one matrix at a time
            simple[:] = False
        else:
            G[simple] = Gs
    for i in torch.nonzero(~simple).flatten().tolist():
        G[i] = _general_gradient(M[i], vals[i])
    return G


def _simple_gradient(M: torch.Tensor, lam: torch.Tensor, rho: torch.Tensor, cond: float
                     ) -> torch.Tensor | None:
    """The perturbation formula for a batch of simple dominant eigenvalues ``lam``."""
    n = M.shape[-1]
    tiny = torch.finfo(M.real.dtype).tiny
    big = M.abs().amax((-2, -1)).clamp_min(tiny)  # the vectors do not depend on the scale
    Ms = (M / big[:, None, None]).to(lam.dtype)
    Ms = torch.where(Ms.abs() < tiny, torch.zeros_like(Ms), Ms)  # no subnormals for LAPACK
    eye = torch.eye(n, dtype=lam.dtype, device=M.device)
    try:
        U, _, Vh = torch.linalg.svd(Ms - (lam / big)[:, None, None] * eye)
    except torch.linalg.LinAlgError:
        return None
    u, v = U[..., -1], Vh[..., -1, :].conj()  # left / right eigenvectors (unit norm)
    c = (u.conj() * v).sum(-1)  # u^H v; |c| = 1 / (condition number of lam)
    ok = c.abs() >= cond
    G = (_phase(lam) / torch.where(ok, c.conj(), torch.ones_like(c)))[:, None, None] * (
        u[:, :, None] * v.conj()[:, None, :])
    if not bool(ok.all()):  # numerically defective: the radial fallback
        G[~ok] = _radial_fallback(M[~ok], rho[~ok]).to(lam.dtype)
    return G


class _SpectralRadius(torch.autograd.Function):
    @staticmethod
    def forward(M: torch.Tensor) -> torch.Tensor:
        vals = torch.linalg.eigvals(M)
        return vals.abs().amax(-1), vals

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], output[1])
        ctx.mark_non_differentiable(output[1])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_rho, _grad_vals):
        M, vals = ctx.saved_tensors
        n = M.shape[-1]
        batch = M.shape[:-2]
        G = _radius_gradient(M.reshape(-1, n, n), vals.reshape(-1, n)).reshape(M.shape)
        if not M.is_complex():
            G = G.real
        return G * grad_rho.reshape(*batch, 1, 1).to(G.real.dtype)


def differentiable_spectral_radius(m: torch.Tensor) -> torch.Tensor:
    r"""Spectral radius $\rho(M)=\max_i|\lambda_i(M)|$ of ``(..., n, n)`` matrices, with a
    gradient that stays defined when eigenvalues repeat.

    **Value**: that of ``torch.linalg.eigvals(m).abs().amax(-1)`` (``torch.linalg.eigvals``).

    **Gradient** (first-order perturbation of the dominant eigenvalue only). Let $\lambda$ be
    a simple eigenvalue of $M$ with right and left eigenvectors $Mv=\lambda v$,
    $u^H M=\lambda u^H$. Then $d\lambda = u^H\,dM\,v\,/\,(u^H v)$ (the standard eigenvalue
    perturbation formula: Magnus, "On differentiating eigenvalues and eigenvectors",
    Econometric Theory 1, 1985; Golub & Van Loan, *Matrix Computations*, sec. 7.2.2), and with
    $d|\lambda| = \mathrm{Re}(\bar\lambda\,d\lambda)/|\lambda|$,

    $$\frac{\partial\rho}{\partial M} = \frac{\lambda}{|\lambda|}\,
    \frac{u\,v^H}{\overline{u^H v}}$$

    in PyTorch's convention ($d\rho=\mathrm{Re}\sum_{ij}\overline{G_{ij}}\,dM_{ij}$; its real
    part for a real $M$). $u$ and $v$ are the left and right singular vectors of
    $M-\lambda I$ for its smallest singular value, so no eigenvector matrix is inverted: the
    other eigenvalues may repeat, vanish or be defective. Where the dominant eigenvalue is
    simple this is the gradient autograd gives through ``eigvals`` (to rounding).

    **Ties**: eigenvalues whose modulus is within a relative $\sqrt{\epsilon}$ of $\rho$ all
    count as dominant, and the gradient is that of their **mean modulus** (each counted with
    its algebraic multiplicity), the rule ``amax`` applies to exact ties. A complex-conjugate
    pair of a real matrix gives twice the same gradient. Tied eigenvalues equal to within
    $\epsilon^{1/4}\rho$ form a cluster $c$ of $m_c$ eigenvalues whose *sum* is differentiable
    even when $\lambda_c$ is repeated or defective: $d\sum_{i\in c}\lambda_i=\mathrm{tr}(P_c\,
    dM)$ with $P_c$ the spectral projector onto the generalized eigenspace (the null spaces
    of $(M-\lambda_cI)^{p}$ and of its adjoint, paired, with $p$ the smallest power at
    which they have dimension $m_c$: 1 for a semisimple $\lambda_c$); the cluster contributes
    $m_c$ times the gradient of $|\bar\lambda_c|$, the modulus of its mean eigenvalue, which
    is the mean modulus to first order when $\lambda_c$ is semisimple (the individual moduli
    are not differentiable when it is defective). So the identity gets $I/n$,
    $\mathrm{diag}(2,2,1)$ gets $\mathrm{diag}(\tfrac12,\tfrac12,0)$ and a Jordan block
    $J_n(\lambda)$ gets $\tfrac{\lambda}{|\lambda|}I/n$.

    **Fallback** (finite, never an error): where the dominant eigenvalue is numerically
    defective without being recognised as a cluster ($|u^Hv| < \sqrt{\epsilon}$ for unit
    $u, v$: condition number above $1/\sqrt{\epsilon}$, $6.7\times 10^{7}$ in float64,
    2900 in float32, where the exact derivative is unbounded), where a cluster's null spaces
    do not pair, or where LAPACK's SVD does not converge, the gradient is
    $\rho\,M/\|M\|_F^2$, the part of any gradient fixed by homogeneity
    ($\rho(cM)=c\,\rho(M)$ gives $\langle G, M\rangle=\rho$): exact along $M$, zero across.
    Where $\rho \le \epsilon\|M\|_F$ (the zero matrix, a nilpotent one) or $\rho$ is below
    the smallest normal number of the dtype (an underflowed Jacobian) the gradient is 0.

    $\epsilon$ is the machine epsilon of ``m``'s dtype; clusters are computed in float64
    (complex128 for complex eigenvalues). The backward costs one batched SVD of
    $M-\lambda I$ (about what ``eigvals``' own backward costs), plus one SVD per power for
    each matrix with tied eigenvalues. It is not itself differentiable (no second
    derivatives).

    Args:
        m: ``(..., n, n)`` real or complex floating matrices, $n \ge 1$, finite.

    Returns:
        ``(...)`` real radii (``m.real``'s dtype).

    Raises:
        TypeError: ``m`` is not a floating or complex tensor.
        ValueError: ``m`` is not a batch of square matrices of size at least 1.
        FloatingPointError: ``m`` contains NaN or inf (checked before LAPACK sees it).

    Examples:
        >>> import torch
        >>> m = torch.eye(3, requires_grad=True)  # eigenvalue 1 three times
        >>> differentiable_spectral_radius(m).backward()
        >>> m.grad.diagonal()
        tensor([0.3333, 0.3333, 0.3333])
    """
    if not isinstance(m, torch.Tensor) or not (m.is_floating_point() or m.is_complex()):
        raise TypeError("m must be a floating or complex tensor of (..., n, n) matrices, got "
                        f"{m.dtype if isinstance(m, torch.Tensor) else type(m).__name__}")
    if m.ndim < 2 or m.shape[-1] != m.shape[-2] or m.shape[-1] == 0:
        raise ValueError("m must be (..., n, n) square matrices with n >= 1, got shape "
                         f"{tuple(m.shape)}")
    if not bool(torch.isfinite(m.detach()).all()):
        raise FloatingPointError("m contains NaN or inf; a spectral radius needs finite "
                                 "matrices (check the model's weights, states and inputs)")
    return _SpectralRadius.apply(m)[0]
