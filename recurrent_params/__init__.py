"""recurrent_params: parametrizations, a fast linear scan and recurrent cells for long memory.

References:
    Zucchet & Orvieto, "Recurrent neural networks: vanishing and exploding gradients are not
    the end of the story", arXiv 2405.21064.
"""

from recurrent_params.assign import assign_
from recurrent_params.cells import DenseRNN, DiagonalRNN
from recurrent_params.complex_safe import ComplexSafeModule
from recurrent_params.parametrizations import RealImag
from recurrent_params.scan import linear_scan

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # Parametrizations (torch.nn.utils.parametrize modules)
    "RealImag",
    # Scan core and cells
    "linear_scan",
    "DenseRNN",
    "DiagonalRNN",
    # Utilities
    "assign_",
    "ComplexSafeModule",
]
