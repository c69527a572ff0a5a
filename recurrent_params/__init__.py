"""recurrent_params: parametrizations, a fast linear scan and recurrent cells for long memory.

References:
    Zucchet & Orvieto, "Recurrent neural networks: vanishing and exploding gradients are not
    the end of the story", arXiv 2405.21064.
"""

__version__ = "0.1.0"

__all__ = [
    "__version__",
]
