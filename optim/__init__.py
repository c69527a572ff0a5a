"""optim: pre-training to the Local Stability Condition and complex-safe optimisers.

References:
    Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
    arXiv 2308.12075.
"""

__all__: list[str] = []
