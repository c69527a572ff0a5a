"""optim: pre-training to the Local Stability Condition and complex-safe optimisers.

References:
    Herranz-Celotti & Rouat, "Stabilizing RNN gradients through pre-training",
    arXiv 2308.12075.
"""

from optim.adabelief import AdaBelief
from optim.complex_safe_optimizer import ComplexSafeOptimizer
from optim.lookahead_optimizer import lookahead
from optim.lsc import LSCOptions, LSCPretrainer, LSCResult
from optim.stacked import StackedTrainer, cosine_lr

__all__ = [
    # LSC pre-training
    "LSCPretrainer",
    "LSCResult",
    "LSCOptions",
    # Complex-safe optimisers
    "AdaBelief",
    "ComplexSafeOptimizer",
    "lookahead",
    # Many models side by side
    "StackedTrainer",
    "cosine_lr",
]
