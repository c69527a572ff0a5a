"""Parametrizations for ``torch.nn.utils.parametrize``: eigenvalue maps and complex storage."""

from recurrent_params.parametrizations._eigen_base import EigenParametrization
from recurrent_params.parametrizations.exp_mag import ExpMag
from recurrent_params.parametrizations.optimal_tanh import OptimalTanh
from recurrent_params.parametrizations.polar import Polar
from recurrent_params.parametrizations.real_imag import RealImag
from recurrent_params.parametrizations.scaled_angle import ScaledAngle

__all__ = [
    "EigenParametrization",
    "ExpMag",
    "OptimalTanh",
    "Polar",
    "RealImag",
    "ScaledAngle",
]
