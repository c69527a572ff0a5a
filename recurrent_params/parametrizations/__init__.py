"""Parametrizations for ``torch.nn.utils.parametrize``: eigenvalue maps and complex storage."""

from recurrent_params.parametrizations.real_imag import RealImag

__all__ = [
    "RealImag",
]
