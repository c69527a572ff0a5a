"""Bad inputs to the core package: parametrizations, input normalisation, scan, cells."""

from __future__ import annotations

import torch

from recurrent_params import DiagonalRNN
from tests.bad_inputs.case import Case

CASES: list = [
    Case(
        "diagonal_rnn-wrong-feature-size",
        lambda: DiagonalRNN(2, 4, 2)(torch.randn(3, 5, 7)),
        raises=ValueError,
        match="2",
    ),
]
