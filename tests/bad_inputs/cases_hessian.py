"""Bad inputs to the Hessian tools: HessianOperator, the estimators, hessian_diagonality.

Documented behaviour for NaN: the operator and the Hutchinson estimates pass it through (NaN in,
NaN out); ``eigsh`` and ``hessian_diagonality`` raise a ``ValueError`` naming it.
"""

from __future__ import annotations

import math

import torch

from diagnostics import FunctionOperator, HessianOperator, eigsh, hessian_diagonality, hutchinson
from tests.bad_inputs.case import Case

DT = torch.float64


def _mse(out, target):
    return 0.5 * ((out - target) ** 2).mean()


def _problem(nan: bool = False):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2).double()
    x, y = torch.randn(5, 3, dtype=DT), torch.randn(5, 2, dtype=DT)
    if nan:
        x[0, 0] = float("nan")
    return model, _mse, (x, y)


def _op(nan: bool = False, **kwargs):
    return HessianOperator(*_problem(nan), progress=False, **kwargs)


def _spd(n: int = 4) -> torch.Tensor:
    m = torch.randn(n, n, dtype=DT, generator=torch.Generator().manual_seed(0))
    return m @ m.T + torch.eye(n, dtype=DT)


def _nan_matrix() -> torch.Tensor:
    a = _spd()
    a[1, 2] = a[2, 1] = float("nan")
    return a


def _all_nan(t: torch.Tensor) -> None:
    assert bool(torch.isnan(t).all()), t


def _nan_estimate(est) -> None:
    assert math.isnan(est.frobenius_sq) and bool(torch.isnan(est.diag).any())


def _frozen_model():
    model = torch.nn.Linear(2, 1).double()
    model.requires_grad_(False)
    return model


CASES: list = [
    # eigsh (issue 21: a non-symmetric matrix gave a wrong eigenvalue, NaN a LinAlgError)
    Case("eigsh-non-symmetric-matrix",
         lambda: eigsh(torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=DT), 1), match="symmetric"),
    Case("eigsh-non-symmetric-operator",
         lambda: eigsh(FunctionOperator(lambda v: torch.triu(_spd()) @ v, 4), 1),
         match="symmetric"),
    Case("eigsh-nan-matrix", lambda: eigsh(_nan_matrix(), 1), match="NaN"),
    Case("eigsh-nan-matrix-scipy", lambda: eigsh(_nan_matrix(), 1, method="scipy"), match="NaN"),
    Case("eigsh-nan-in-hessian-batch", lambda: eigsh(_op(nan=True), 1), match="NaN"),
    Case("eigsh-nan-in-hessian-batch-scipy", lambda: eigsh(_op(nan=True), 1, method="scipy"),
         match="NaN"),
    Case("eigsh-not-square", lambda: eigsh(torch.zeros(3, 4, dtype=DT), 1), match="square"),
    Case("eigsh-no-shape", lambda: eigsh([[1.0]], 1), match="shape"),
    Case("eigsh-complex-matrix", lambda: eigsh(torch.eye(2, dtype=torch.complex128), 1),
         raises=TypeError, match="dtype"),
    Case("eigsh-k-zero", lambda: eigsh(_spd(), 0), match="k must be"),
    Case("eigsh-k-above-size", lambda: eigsh(_spd(), 5), match="k must be"),
    Case("eigsh-scipy-k-equal-size", lambda: eigsh(_spd(), 4, method="scipy"), match="k"),
    Case("eigsh-bad-which", lambda: eigsh(_spd(), 1, which="BE"), match="which"),
    Case("eigsh-bad-method", lambda: eigsh(_spd(), 1, method="arpack"), match="method"),
    Case("eigsh-block-size-zero", lambda: eigsh(_spd(), 1, block_size=0), match="block_size"),
    # hutchinson: NaN passes through (documented)
    Case("hutchinson-nan-matrix-passes-through", lambda: hutchinson(_nan_matrix(), 5),
         raises=None, check=_nan_estimate),
    Case("hutchinson-nan-in-hessian-passes-through", lambda: hutchinson(_op(nan=True), 5),
         raises=None, check=_nan_estimate),
    Case("hutchinson-two-probes", lambda: hutchinson(_spd(), 2), match="num_probes"),
    Case("hutchinson-chunk-size-zero", lambda: hutchinson(_spd(), 5, chunk_size=-1),
         match="chunk_size"),
    Case("hutchinson-block-reversed", lambda: hutchinson(_spd(), 5, block=(3, 1)),
         match="block"),
    Case("hutchinson-block-past-end", lambda: hutchinson(_spd(), 5, block=(0, 9)),
         match="block"),
    Case("hutchinson-unknown-block-name", lambda: _op().hutchinson(5, block="nope"),
         match="unknown block"),
    # FunctionOperator
    Case("function-operator-size-zero", lambda: FunctionOperator(lambda v: v, 0), match="size"),
    Case("function-operator-not-callable", lambda: FunctionOperator(3, 2), raises=TypeError,
         match="matmat"),
    # HessianOperator: construction and products; NaN passes through (documented)
    Case("hessian-operator-nan-batch-passes-through", lambda: _op(nan=True).dense(),
         raises=None, check=_all_nan),
    Case("hessian-operator-loss-not-callable",
         lambda: HessianOperator(_problem()[0], "mse", _problem()[2]), raises=TypeError,
         match="loss_fn"),
    Case("hessian-operator-batch-not-a-pair",
         lambda: HessianOperator(_problem()[0], _mse, (torch.zeros(2, 3),)), match="batch"),
    Case("hessian-operator-chunk-size-zero", lambda: _op(chunk_size=0), match="chunk_size"),
    Case("hessian-operator-bad-backend", lambda: _op(backend="jax"), match="backend"),
    Case("hessian-operator-unknown-param", lambda: _op(param_names=["nope"]),
         match="unknown parameter"),
    Case("hessian-operator-every-param-frozen",
         lambda: HessianOperator(_frozen_model(), _mse, (torch.zeros(2, 2, dtype=DT),
                                                         torch.zeros(2, 1, dtype=DT))),
         match="no trainable"),
    Case("hessian-operator-loss-not-scalar",
         lambda: HessianOperator(_problem()[0], lambda o, t: o - t, _problem()[2],
                                 progress=False).dense(), match="scalar"),
    Case("hessian-operator-wrong-vector-length", lambda: _op() @ torch.zeros(3, dtype=DT),
         match="length"),
    Case("hessian-operator-complex-vector",
         lambda: _op().hvp(torch.zeros(8, dtype=torch.complex128)), raises=TypeError,
         match="real"),
    # hessian_diagonality (issue 21: a loss independent of the parameters raised IndexError)
    Case("diagonality-loss-independent-of-parameters",
         lambda: hessian_diagonality(_problem()[0], lambda o, t: (t**2).sum(), _problem()[2],
                                     progress=False), match="Hessian is zero"),
    Case("diagonality-loss-independent-matrix-free",
         lambda: hessian_diagonality(_problem()[0], lambda o, t: (t**2).sum(), _problem()[2],
                                     k=1, method="matrix-free", progress=False),
         match="Hessian is zero"),
    Case("diagonality-nan-in-batch",
         lambda: hessian_diagonality(*_problem(nan=True), progress=False), match="NaN"),
    Case("diagonality-nan-in-batch-matrix-free",
         lambda: hessian_diagonality(*_problem(nan=True), k=1, method="matrix-free",
                                     progress=False), match="NaN"),
    Case("diagonality-bad-method",
         lambda: hessian_diagonality(*_problem(), method="dense"), match="method"),
    Case("diagonality-k-zero", lambda: hessian_diagonality(*_problem(), k=0), match="k must be"),
    Case("diagonality-block-probes-one",
         lambda: hessian_diagonality(*_problem(), method="matrix-free", block_probes=1),
         match="block_probes"),
    Case("diagonality-model-without-loss",
         lambda: hessian_diagonality(_problem()[0]), match="loss_fn"),
    Case("diagonality-operator-with-operator-options",
         lambda: hessian_diagonality(_op(), chunk_size=4), match="operator options"),
]
