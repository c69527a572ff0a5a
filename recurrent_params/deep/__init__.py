"""Deep models: a pre-norm residual block around any recurrent layer of the package, residual
stacks of such blocks for sequence classification and causal language modelling, and the same
heads around ``nn.LSTM`` / ``nn.GRU`` for baselines.

References:
    Orvieto et al., "Resurrecting recurrent neural networks for long sequences",
    arXiv 2303.06349 (https://arxiv.org/abs/2303.06349).
"""

from recurrent_params.deep._base import POOLINGS, TASKS
from recurrent_params.deep.block import NORMS, ResidualBlock, make_norm
from recurrent_params.deep.mixer import MIXERS, ChannelMixer
from recurrent_params.deep.stack import RecurrentStack
from recurrent_params.deep.state import StackState
from recurrent_params.deep.torch_rnn import KINDS, TorchRNNStack

__all__ = [
    # blocks
    "ResidualBlock",
    "ChannelMixer",
    "make_norm",
    # models
    "RecurrentStack",
    "TorchRNNStack",
    "StackState",
    # accepted names
    "NORMS",
    "MIXERS",
    "TASKS",
    "POOLINGS",
    "KINDS",
]
