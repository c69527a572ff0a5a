"""Recurrent cells on the linear-scan core (batch-first, sequence and step modes)."""

from recurrent_params.cells.dense_rnn import DenseRNN
from recurrent_params.cells.diagonal_rnn import DiagonalRNN
from recurrent_params.cells.lru import LRU
from recurrent_params.cells.s4d import S4D

__all__ = ["DenseRNN", "DiagonalRNN", "LRU", "S4D"]
