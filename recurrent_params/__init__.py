"""recurrent_params: parametrizations, a fast linear scan and recurrent cells for long memory.

References:
    Zucchet & Orvieto, "Recurrent neural networks: vanishing and exploding gradients are not
    the end of the story", arXiv 2405.21064.
"""

from recurrent_params.assign import assign_
from recurrent_params.cells import (
    ALIF,
    LRU,
    S4D,
    DenseRNN,
    DiagonalRNN,
    FastSigmoid,
    Surrogate,
    Triangular,
)
from recurrent_params.complex_safe import ComplexSafeModule
from recurrent_params.data import (
    BrownCorpus,
    DataIntegrityError,
    DataNotFoundError,
    SequentialImages,
    Vocabulary,
    batchify,
    bptt_batches,
    data_dir,
    fixed_permutation,
    load_brown,
    load_sequential_fashion_mnist,
    load_sequential_mnist,
)
from recurrent_params.deep import RecurrentStack, ResidualBlock, StackState, TorchRNNStack
from recurrent_params.input_norm import GAMMA_KINDS, InputNorm, input_gamma, normalize_input
from recurrent_params.parametrizations import (
    EigenParametrization,
    ExpMag,
    OptimalTanh,
    Polar,
    RealImag,
    ScaledAngle,
)
from recurrent_params.scan import linear_scan

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # Eigenvalue parametrizations (torch.nn.utils.parametrize modules)
    "ExpMag",
    "Polar",
    "ScaledAngle",
    "OptimalTanh",
    "EigenParametrization",
    "RealImag",
    # Input normalisation
    "InputNorm",
    "input_gamma",
    "normalize_input",
    "GAMMA_KINDS",
    # Scan core and cells
    "linear_scan",
    "DenseRNN",
    "DiagonalRNN",
    "LRU",
    "S4D",
    # Spiking cell and surrogate gradients
    "ALIF",
    "Surrogate",
    "Triangular",
    "FastSigmoid",
    # Deep models: residual blocks and stacks of any cell, torch RNN baselines
    "ResidualBlock",
    "RecurrentStack",
    "TorchRNNStack",
    "StackState",
    # Real data (recurrent_params.data: sequential MNIST / Fashion-MNIST, Brown for PTB)
    "load_sequential_mnist",
    "load_sequential_fashion_mnist",
    "SequentialImages",
    "fixed_permutation",
    "load_brown",
    "BrownCorpus",
    "Vocabulary",
    "batchify",
    "bptt_batches",
    "data_dir",
    "DataNotFoundError",
    "DataIntegrityError",
    # Utilities
    "assign_",
    "ComplexSafeModule",
]
