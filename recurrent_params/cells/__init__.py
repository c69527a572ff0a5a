"""Recurrent cells (batch-first, sequence and step modes): the linear cells on the scan core
and the ALIF spiking cell with its surrogate gradients."""

from recurrent_params.cells._base import RecurrentCell
from recurrent_params.cells.alif import ALIF
from recurrent_params.cells.dense_rnn import DenseRNN
from recurrent_params.cells.diagonal_rnn import DiagonalRNN
from recurrent_params.cells.lru import LRU
from recurrent_params.cells.s4d import S4D
from recurrent_params.cells.surrogates import FastSigmoid, Surrogate, Triangular

__all__ = ["RecurrentCell", "ALIF", "DenseRNN", "DiagonalRNN", "LRU", "S4D", "Surrogate",
           "Triangular", "FastSigmoid"]
